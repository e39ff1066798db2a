//! Data parallelism over consecutive spans of a slice, on the machine's cores, with scoped std
//! threads (no pool to start or keep). Owns the rule for how many threads a pass gets and how
//! a thread's panic reaches the caller (it resumes there, as if the work ran inline).
//!
//! Used where one pass over a million orders would otherwise leave a core idle: the rebuild's
//! sort of the order keys, the diff's key look-ups, the baseline profile and the verdicts.

/// The threads a pass over `n` items uses: every core, each with at least `min_per_thread`
/// items (fewer items: one thread does them all).
pub fn threads_for(n: usize, min_per_thread: usize) -> usize {
    std::thread::available_parallelism()
        .map_or(1, |t| t.get())
        .min(n.div_ceil(min_per_thread.max(1)))
        .max(1)
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

    #[test]
    fn threads_for_keeps_small_passes_on_one_thread() {
        assert_eq!(threads_for(10, 50_000), 1);
        assert_eq!(threads_for(0, 50_000), 1);
        let cores = std::thread::available_parallelism().map_or(1, |t| t.get());
        assert_eq!(threads_for(10_000_000, 1), cores);
    }
}
