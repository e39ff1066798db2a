//! The process's memory habits: the allocator settings that keep a long export's resident
//! memory flat, and [`drop_beside`], which frees a large structure off the caller's path.
//!
//! glibc serves a block at or above its mmap threshold with a mapping of its own, returned to
//! the system when freed. Left alone, the threshold is dynamic: freeing such a block raises it
//! to that block's size, so the next blocks of that size come from the heap instead, and once
//! freed they stay resident. An export reads page after page whose bodies are hundreds of KiB
//! each: with the dynamic threshold the process's RSS grew with the number of pages read
//! (35 → 59 MiB from 200,000 to 1,000,000 orders) although it holds no history; with the
//! threshold fixed it stays flat (see docs/benchmarks.md, `export_vs_ccxt`).
//!
//! Only the commands that talk to an exchange (or serve as one) fix it: `respond analyze`
//! and `evidence verify` allocate and free large blocks many times over, where a fixed
//! threshold costs a mapping and its page faults each time (about 1.5–2 s more system time
//! at a million orders, measured with `MALLOC_MMAP_THRESHOLD_` on the same build).

/// The threshold: glibc's own starting value (128 KiB), fixed so it no longer moves.
pub const MMAP_THRESHOLD: usize = 128 * 1024;

/// Whether `command` reads an exchange page after page (or serves them), so its allocator
/// threshold is fixed ([`fix_mmap_threshold`]).
pub fn streams(command: &crate::cli::Command) -> bool {
    use crate::cli::Command;
    match command {
        Command::Leak(_) | Command::Drill(_) | Command::Mock(_) | Command::Resume(_) => true,
        Command::Analyze(_) | Command::Evidence(_) | Command::Playbook(_) => false,
    }
}

/// Fixes the allocator's mmap threshold at [`MMAP_THRESHOLD`]. Called at the start of
/// [`crate::run`] for the commands [`streams`] names, before any other thread exists; a no-op
/// where the allocator is not glibc's.
pub fn fix_mmap_threshold() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code)]
    // SAFETY: `mallopt` only sets an allocator parameter; it takes no pointer.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD as libc::c_int);
    }
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    use super::*;

    /// Whether glibc served the block at `p` with a mapping of its own: such a chunk spans
    /// whole pages, its 16-byte header included, so its usable size is a page multiple less
    /// 16 (a heap chunk of 400 KiB has 409,608 usable bytes). Read from the block itself, not
    /// from the process-wide counters other tests' threads change meanwhile.
    #[allow(unsafe_code)]
    fn mapped_on_its_own(p: *const u8) -> bool {
        // SAFETY: `p` is a live block from glibc's malloc (a Vec's buffer).
        let usable = unsafe { libc::malloc_usable_size(p as *mut libc::c_void) };
        (usable + 16) % 4096 == 0
    }

    /// After a large block is freed, a block of a few hundred KiB (a page body's size) still
    /// gets a mapping of its own, so freeing it returns its memory: the threshold did not
    /// rise to the freed block's size, as glibc's dynamic threshold makes it.
    #[test]
    fn a_freed_large_block_does_not_raise_the_threshold() {
        fix_mmap_threshold();
        let large = std::hint::black_box(vec![1u8; 8 << 20]);
        assert!(mapped_on_its_own(large.as_ptr()));
        drop(large);
        let page = std::hint::black_box(vec![2u8; 400 << 10]);
        assert!(
            mapped_on_its_own(page.as_ptr()),
            "a 400 KiB block after an 8 MiB one was freed must be mapped on its own"
        );
    }
}

/// Drops `value` on a thread of its own, not waited for: freeing a large structure (a
/// million orders and their verdicts) takes a noticeable fraction of a second that the
/// caller need not wait through. If no thread can be started, `value` is dropped here (with
/// the closure that owned it).
pub fn drop_beside<T: Send + 'static>(value: T) {
    let _ = std::thread::Builder::new()
        .name("drop".into())
        .spawn(move || drop(value));
}
