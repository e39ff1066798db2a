//! Data parallelism over consecutive spans of a slice, on the machine's cores, with scoped std
//! threads (no pool to start or keep). Owns the rule for how many threads a pass gets and how
//! a thread's panic reaches the caller (it resumes there, as if the work ran inline).
//!
//! Used where one pass over a million orders would otherwise leave a core idle: the rebuild's
//! sort of the order keys and the move of the orders into that order ([`permuted`]), the
//! diff's key look-ups, the baseline profile, the identifier pattern and the verdicts
//! ([`map_into`]). [`collect`], [`map_into`] and [`permuted`] write each result straight to
//! its place in the vector they return: the only unsafe code here, kept to those three.

/// The threads a pass over `n` items uses: every core, each with at least `min_per_thread`
/// items (fewer items: one thread does them all).
pub fn threads_for(n: usize, min_per_thread: usize) -> usize {
    threads_within(
        std::thread::available_parallelism().map_or(1, |t| t.get()),
        n,
        min_per_thread,
    )
}

/// [`threads_for`] with at most `threads` instead of every core.
pub fn threads_within(threads: usize, n: usize, min_per_thread: usize) -> usize {
    threads.min(n.div_ceil(min_per_thread.max(1))).max(1)
}

/// `f(first, span)` for consecutive spans of `items`, one per thread of `threads`; the results
/// in span order. `first` is the index of the span's first item in `items`. One thread (or
/// one item) runs `f` once, inline, over everything.
pub fn map_spans<'a, T: Sync, R: Send>(
    items: &'a [T],
    threads: usize,
    f: impl Fn(usize, &'a [T]) -> R + Sync,
) -> Vec<R> {
    if threads <= 1 || items.len() <= 1 {
        return vec![f(0, items)];
    }
    let span = items.len().div_ceil(threads);
    on_threads(items.chunks(span), span, f)
}

/// `f(first, span)` over consecutive spans of `out`, one per thread of `threads`, each span
/// written in place by its own thread. `first` is the index of the span's first slot.
pub fn fill_spans<T: Send>(out: &mut [T], threads: usize, f: impl Fn(usize, &mut [T]) + Sync) {
    if threads <= 1 || out.len() <= 1 {
        f(0, out);
        return;
    }
    let span = out.len().div_ceil(threads);
    on_threads(out.chunks_mut(span), span, f);
}

/// `a()` on a scoped thread of its own while `b()` runs here; both results. A panic in `a`
/// resumes here (after `b` ends), as if it ran inline. If no thread can be started, `a` runs
/// here after `b`.
pub fn join<A: Send, B>(a: impl FnOnce() -> A + Send, b: impl FnOnce() -> B) -> (A, B) {
    // Kept here, not moved into the thread: a thread that cannot start gives it back.
    let a = std::sync::Mutex::new(Some(a));
    let take = || a.lock().unwrap_or_else(|e| e.into_inner()).take();
    std::thread::scope(|s| {
        let running = std::thread::Builder::new().spawn_scoped(s, || take().map(|a| a()));
        let b = b();
        let ran = match running {
            Ok(t) => t.join().unwrap_or_else(|p| std::panic::resume_unwind(p)),
            Err(_) => None,
        };
        let a = ran
            .or_else(|| take().map(|a| a()))
            .expect("`a` ran on its thread or here");
        (a, b)
    })
}

/// A vector of `n` items, `f(i)` at index `i`: its spans are made on `threads` threads, each
/// item written straight to its place (no per-thread vectors joined after).
pub fn collect<T: Send>(n: usize, threads: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let mut out: Vec<T> = Vec::with_capacity(n);
    fill_spans(
        &mut out.spare_capacity_mut()[..n],
        threads,
        |first, span| {
            for (j, slot) in span.iter_mut().enumerate() {
                slot.write(f(first + j));
            }
        },
    );
    // SAFETY: every one of the first `n` slots was written above (a panic there resumes
    // before this line, and the items written leak: none is dropped twice).
    #[allow(unsafe_code)]
    unsafe {
        out.set_len(n);
    }
    out
}

/// The items of a vector, owned by nobody until each is taken, once, by index, from any
/// thread. The vector keeps only its buffer (freed when it goes, its items not dropped): an
/// item never taken leaks, none is dropped twice.
struct Taken<'v, T> {
    items: *const T,
    len: usize,
    _buffer: std::marker::PhantomData<&'v mut Vec<T>>,
}

// SAFETY: an item is moved to the one thread that takes it, which `T: Send` allows; the
// callers take each index once.
#[allow(unsafe_code)]
unsafe impl<T: Send> Sync for Taken<'_, T> {}

impl<'v, T> Taken<'v, T> {
    fn from(items: &'v mut Vec<T>) -> Self {
        let len = items.len();
        // SAFETY: the items are no longer the vector's (it drops none of them); each is read
        // out at most once through `take`.
        #[allow(unsafe_code)]
        unsafe {
            items.set_len(0);
        }
        Taken {
            items: items.as_ptr(),
            len,
            _buffer: std::marker::PhantomData,
        }
    }

    /// Moves item `i` out.
    ///
    /// # Safety
    /// Each `i` is taken once at most.
    #[allow(unsafe_code)]
    unsafe fn take(&self, i: usize) -> T {
        assert!(i < self.len, "item {i} of {}", self.len);
        // SAFETY: `i` is within the buffer, which outlives `self`, and its item was not taken
        // before (the caller's promise).
        unsafe { std::ptr::read(self.items.add(i)) }
    }
}

/// `f(i, item)` for each item of `items`, the results in order: a parallel
/// `into_iter().enumerate().map(..).collect()`, each item moved once into its call, the
/// results made in spans on `threads` threads and written straight to their places.
pub fn map_into<T: Send, U: Send>(
    mut items: Vec<T>,
    threads: usize,
    f: impl Fn(usize, T) -> U + Sync,
) -> Vec<U> {
    let n = items.len();
    let taken = Taken::from(&mut items);
    // SAFETY: `collect` calls its function once per index in `0..n`.
    #[allow(unsafe_code)]
    collect(n, threads, |i| f(i, unsafe { taken.take(i) }))
}

/// `items` in the order `from` gives: position `i` of the result holds `items[from[i]]`. Each
/// item is moved once, straight to its place, the result's spans filled on `threads` threads
/// (the reads are scattered; the writes are not). Cheaper than following the permutation's
/// cycles in place, which swaps (three moves per item) on one thread.
///
/// Panics, before any item is moved, when `from` is not a permutation of `0..items.len()`.
pub fn permuted<T: Send>(mut items: Vec<T>, from: &[u32], threads: usize) -> Vec<T> {
    let n = items.len();
    assert_eq!(from.len(), n, "a permutation of {n} items has {n} entries");
    let mut seen = vec![false; n];
    for &i in from {
        let i = i as usize;
        assert!(
            i < n && !seen[i],
            "not a permutation: {i} out of range or repeated"
        );
        seen[i] = true;
    }
    drop(seen);
    let taken = Taken::from(&mut items);
    // SAFETY: `collect` calls its function once per index, and `from` holds each index of
    // the items once (checked above).
    #[allow(unsafe_code)]
    collect(n, threads, |i| unsafe { taken.take(from[i] as usize) })
}

/// `f(first, part)` for each of `parts` (consecutive spans of `span` items) on a scoped
/// thread of its own; the results in order. A thread's panic resumes in the caller.
fn on_threads<P: Send, R: Send>(
    parts: impl Iterator<Item = P>,
    span: usize,
    f: impl Fn(usize, P) -> R + Sync,
) -> Vec<R> {
    let f = &f;
    std::thread::scope(|s| {
        let running: Vec<_> = parts
            .enumerate()
            .map(|(k, part)| s.spawn(move || f(k * span, part)))
            .collect();
        running
            .into_iter()
            .map(|t| t.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every item is seen once, at its own index, whatever the thread count (more threads than
    /// items included), and the results come back in span order.
    #[test]
    fn spans_cover_every_item_once_in_order() {
        let items: Vec<usize> = (0..1001).collect();
        for threads in [1, 2, 3, 7, 2000] {
            let parts = map_spans(&items, threads, |first, span| {
                span.iter()
                    .enumerate()
                    .all(|(j, &x)| x == first + j)
                    .then(|| span.to_vec())
            });
            let seen: Vec<usize> = parts.into_iter().flat_map(|p| p.unwrap()).collect();
            assert_eq!(seen, items, "{threads} threads");

            let mut out = vec![0usize; items.len()];
            fill_spans(&mut out, threads, |first, span| {
                for (j, slot) in span.iter_mut().enumerate() {
                    *slot += first + j + 1;
                }
            });
            assert!(
                out.iter().enumerate().all(|(i, &x)| x == i + 1),
                "{threads} threads"
            );
        }
        assert_eq!(map_spans(&[] as &[u8], 4, |_, s| s.len()), vec![0]);
    }

    /// A thread's panic reaches the caller with its own message.
    #[test]
    fn a_panic_in_a_span_resumes_in_the_caller() {
        let items: Vec<u32> = (0..100).collect();
        let caught = std::panic::catch_unwind(|| {
            map_spans(&items, 4, |first, _| {
                assert!(first < 50, "span at {first}");
            })
        })
        .unwrap_err();
        let msg = caught.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(msg.starts_with("span at "), "{msg}");
    }

    /// Every item lands where the permutation puts it, on any thread count, and each is
    /// dropped exactly once (none lost, none twice).
    #[test]
    fn permuted_moves_each_item_once_to_its_place() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static DROPS: AtomicUsize = AtomicUsize::new(0);
        #[derive(Debug, PartialEq)]
        struct Counted(String);
        impl Drop for Counted {
            fn drop(&mut self) {
                DROPS.fetch_add(1, Ordering::Relaxed);
            }
        }
        let mut seed = 11u64;
        let mut rounds = 0;
        for n in [0usize, 1, 2, 3, 100, 1001] {
            // A shuffled permutation (Fisher–Yates with a fixed generator).
            let mut from: Vec<u32> = (0..n as u32).collect();
            for i in (1..n).rev() {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                from.swap(i, (seed >> 33) as usize % (i + 1));
            }
            for threads in [1, 2, 3, 2000] {
                let items: Vec<Counted> = (0..n).map(|i| Counted(format!("item {i}"))).collect();
                let out = permuted(items, &from, threads);
                assert_eq!(out.len(), n);
                for (i, c) in out.iter().enumerate() {
                    assert_eq!(
                        c.0,
                        format!("item {}", from[i]),
                        "{n} items, {threads} threads"
                    );
                }
                drop(out);
                rounds += n;
                assert_eq!(
                    DROPS.load(Ordering::Relaxed),
                    rounds,
                    "each item dropped once"
                );
            }
        }
    }

    /// `collect` and `map_into` give what their sequential forms give, on any thread count;
    /// `map_into` drops each item once (here: inside its call).
    #[test]
    fn collect_and_map_into_match_their_sequential_forms() {
        for n in [0usize, 1, 2, 3, 1001] {
            for threads in [1, 2, 3, 2000] {
                let made = collect(n, threads, |i| format!("item {i}"));
                let expected: Vec<String> = (0..n).map(|i| format!("item {i}")).collect();
                assert_eq!(made, expected, "{n} items, {threads} threads");
                let lengths = map_into(made, threads, |i, s| (i, s.len()));
                let expected: Vec<(usize, usize)> = expected
                    .iter()
                    .enumerate()
                    .map(|(i, s)| (i, s.len()))
                    .collect();
                assert_eq!(lengths, expected, "{n} items, {threads} threads");
            }
        }
    }

    /// A list that is not a permutation is refused before anything moves.
    #[test]
    fn permuted_refuses_what_is_not_a_permutation() {
        for from in [vec![0u32, 0, 2], vec![0, 1, 3], vec![0, 1]] {
            let items = vec![String::from("a"), String::from("b"), String::from("c")];
            let caught = std::panic::catch_unwind(|| permuted(items, &from, 2));
            assert!(caught.is_err(), "{from:?}");
        }
    }

    /// Both results come back, and a panic in the task on its own thread reaches the caller.
    #[test]
    fn join_returns_both_and_resumes_a_panic() {
        assert_eq!(join(|| 1 + 1, || "b"), (2, "b"));
        let caught = std::panic::catch_unwind(|| join(|| panic!("in a"), || 0)).unwrap_err();
        assert_eq!(caught.downcast_ref::<&str>(), Some(&"in a"));
    }

    #[test]
    fn threads_for_keeps_small_passes_on_one_thread() {
        assert_eq!(threads_for(10, 50_000), 1);
        assert_eq!(threads_for(0, 50_000), 1);
        let cores = std::thread::available_parallelism().map_or(1, |t| t.get());
        assert_eq!(threads_for(10_000_000, 1), cores);
    }
}
