//! Private files: every file the tool writes is created 0600 in a 0700 directory, never
//! through a symlink, and its text passes the secret redactor first.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use crate::secret;

/// Creates `dir` (and missing parents) with mode 0700. Fails when `dir` is a symlink.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    if let Ok(meta) = fs::symlink_metadata(dir) {
        if meta.file_type().is_symlink() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{} is a symlink; refusing to write through it",
                    dir.display()
                ),
            ));
        }
        if meta.is_dir() {
            return Ok(());
        }
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
}

/// Creates a new directory that must not exist yet (an evidence bundle is never reused).
pub fn create_new_private_dir(dir: &Path) -> io::Result<()> {
    if fs::symlink_metadata(dir).is_ok() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "{} already exists; a new run never writes into an existing bundle",
                dir.display()
            ),
        ));
    }
    if let Some(parent) = dir.parent() {
        if !parent.as_os_str().is_empty() {
            create_private_dir(parent)?;
        }
    }
    fs::DirBuilder::new().mode(0o700).create(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
}

fn open_options(append: bool) -> OpenOptions {
    let mut o = OpenOptions::new();
    o.write(true).mode(0o600).custom_flags(libc::O_NOFOLLOW);
    if append {
        o.append(true).create(true);
    } else {
        o.create(true).truncate(true);
    }
    o
}

/// Writes `bytes` (redacted) to `path` atomically: a 0600 temp file, fsync, rename.
pub fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let bytes = secret::redactor().redact_bytes(bytes);
    let tmp = tmp_path(path);
    {
        let mut f = open_options(false).open(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
    }
    replace_with(&tmp, path)
}

/// A private file written piece by piece (each piece redacted: a piece is one whole record,
/// so a secret cannot straddle two), so a large file is never held in memory whole. It
/// replaces `path` atomically on [`PieceWriter::commit`]; dropped before, it leaves `path` as
/// it was.
pub struct PieceWriter {
    path: PathBuf,
    tmp: PathBuf,
    out: Option<io::BufWriter<File>>,
    /// SHA-256 of the bytes written so far (as redacted): the file's hash without reading it
    /// back.
    hasher: sha2::Sha256,
    /// Bytes written so far, and the disk writes started for them.
    written: u64,
    writeback: Writeback,
}

impl PieceWriter {
    pub fn create(path: &Path) -> io::Result<Self> {
        let tmp = tmp_path(path);
        let f = open_options(false).open(&tmp)?;
        Ok(PieceWriter {
            path: path.to_path_buf(),
            tmp,
            out: Some(io::BufWriter::with_capacity(1 << 20, f)),
            hasher: sha2::Digest::new(),
            written: 0,
            writeback: Writeback::default(),
        })
    }

    /// Appends one piece, redacted.
    pub fn piece(&mut self, bytes: &[u8]) -> io::Result<()> {
        let bytes = secret::redactor().redact_bytes(bytes);
        self.put_redacted(&bytes)
    }

    /// [`PieceWriter::piece`] of text: redacted as it is (no UTF-8 check of its bytes).
    pub fn piece_str(&mut self, text: &str) -> io::Result<()> {
        let text = secret::redactor().redact(text);
        self.put_redacted(text.as_bytes())
    }

    fn put_redacted(&mut self, bytes: &[u8]) -> io::Result<()> {
        let Some(w) = self.out.as_mut() else {
            return Err(io::Error::other("the file was already committed"));
        };
        sha2::Digest::update(&mut self.hasher, bytes);
        w.write_all(bytes)?;
        self.written += bytes.len() as u64;
        // What the buffer still holds has not reached the file yet.
        let handed = self.written - w.buffer().len() as u64;
        self.writeback.advance(w.get_ref(), handed);
        Ok(())
    }

    /// Flushes, syncs and puts the file in place.
    pub fn commit(self) -> io::Result<()> {
        self.commit_hashed().map(drop)
    }

    /// [`PieceWriter::commit`], returning the lowercase hex SHA-256 of the file's bytes.
    pub fn commit_hashed(mut self) -> io::Result<String> {
        if let Some(w) = self.out.take() {
            let f = w.into_inner().map_err(|e| e.into_error())?;
            f.sync_all()?;
        }
        replace_with(&self.tmp, &self.path)?;
        let hasher = std::mem::take(&mut self.hasher);
        Ok(hex::encode(sha2::Digest::finalize(hasher)))
    }
}

impl Drop for PieceWriter {
    fn drop(&mut self) {
        if self.out.is_some() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// Starts the disk writes of a file being written, a range at a time, so that its final sync
/// waits only for the last range: the writes of a large file (the orders CSV of a million
/// orders is hundreds of MiB) then go on beside the work that follows, instead of all of
/// them in the sync at the end. Only a hint: the sync still writes and reports everything.
#[derive(Default)]
struct Writeback {
    /// Bytes from the start of the file whose disk writes were started.
    started: u64,
}

impl Writeback {
    /// Bytes written between two starts.
    const STEP: u64 = 8 << 20;

    /// Notes that the first `handed` bytes of `file` reached it; starts their disk writes
    /// once a step of them waits.
    fn advance(&mut self, file: &File, handed: u64) {
        if handed >= self.started + Self::STEP {
            start_writeback(file, self.started, handed - self.started);
            self.started = handed;
        }
    }
}

/// Asks the kernel to start writing `len` bytes of `file` from `from` to disk, not waiting.
#[cfg(target_os = "linux")]
fn start_writeback(file: &File, from: u64, len: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(from), Ok(len)) = (i64::try_from(from), i64::try_from(len)) else {
        return;
    };
    // SAFETY: `sync_file_range` takes an open descriptor (borrowed for the call) and two
    // numbers; it touches no memory of ours. Its error, if any, is left to the final sync.
    #[allow(unsafe_code)]
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), from, len, libc::SYNC_FILE_RANGE_WRITE);
    }
}

#[cfg(not(target_os = "linux"))]
fn start_writeback(_: &File, _: u64, _: u64) {}

/// Renames the finished temp file `tmp` over `path`, never through a symlink.
fn replace_with(tmp: &Path, path: &Path) -> io::Result<()> {
    if let Ok(meta) = fs::symlink_metadata(path) {
        if meta.file_type().is_symlink() {
            let _ = fs::remove_file(tmp);
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{} is a symlink; refusing to write through it",
                    path.display()
                ),
            ));
        }
    }
    fs::rename(tmp, path)
}

/// Syncs the directory `dir`: the names created, renamed or removed in it are on disk.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Removes the files `paths` (one already gone is no error) and syncs the folders they were
/// in, so the removals are on disk when it returns.
pub fn remove_files(paths: &[PathBuf]) -> io::Result<()> {
    let mut dirs = std::collections::BTreeSet::new();
    for p in paths {
        match fs::remove_file(p) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        dirs.extend(p.parent().map(Path::to_path_buf));
    }
    for d in dirs {
        match sync_dir(&d) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

/// Removes the folder `dir` when it is empty, then syncs its parent; a folder with anything in
/// it, none at all or a symlink in its place is left as it is. Returns whether it removed it.
pub fn remove_dir_if_empty(dir: &Path) -> io::Result<bool> {
    match fs::symlink_metadata(dir) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => return Ok(false),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    }
    match fs::remove_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        // Not empty (or filled in the meantime by another step's own files): left.
        Err(_) if fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some()) => return Ok(false),
        Err(e) => return Err(e),
    }
    if let Some(parent) = dir.parent() {
        sync_dir(parent)?;
    }
    Ok(true)
}

/// Opens `path` for appending (0600, no symlink). Callers redact what they write.
pub fn open_append_private(path: &Path) -> io::Result<File> {
    open_options(true).open(path)
}

/// Copies a user file into the bundle unmodified (no redaction: it is the user's original),
/// synced before it is put in place, returning the SHA-256 of the bytes copied.
pub fn copy_private(src: &Path, dst: &Path) -> io::Result<String> {
    copy_hashed(src, dst, true)
}

/// Copies a file into a bundle being assembled ([`copy_private`] without the per-file sync:
/// the caller syncs the whole tree once with [`sync_filesystem`] before relying on it),
/// returning the SHA-256 of the bytes copied, read once.
pub fn copy_private_unsynced(src: &Path, dst: &Path) -> io::Result<String> {
    copy_hashed(src, dst, false)
}

/// Copies `src` to a private temp file beside `dst` a piece at a time (never the whole file
/// in memory), hashing the bytes as they pass, synced when `sync`, then renamed to `dst`. A
/// failed copy leaves no temp file.
fn copy_hashed(src: &Path, dst: &Path, sync: bool) -> io::Result<String> {
    use sha2::{Digest, Sha256};
    let mut from = fs::File::open(src)?;
    let tmp = tmp_path(dst);
    let mut hasher = Sha256::new();
    let copied = (|| {
        let mut to = open_options(false).open(&tmp)?;
        let mut buf = vec![0u8; 1 << 20];
        let (mut written, mut writeback) = (0u64, Writeback::default());
        loop {
            let n = match io::Read::read(&mut from, &mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            hasher.update(&buf[..n]);
            to.write_all(&buf[..n])?;
            written += n as u64;
            if sync {
                writeback.advance(&to, written);
            }
        }
        if sync {
            to.sync_all()?;
        }
        Ok(())
    })();
    if let Err(e) = copied {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    fs::rename(&tmp, dst)?;
    Ok(hex::encode(hasher.finalize()))
}

/// [`copy_private_unsynced`] for each `(source, destination)`, on a few threads (largest
/// files first, each taken by the next free thread: hashing is the CPU-bound part of a copy,
/// and one file may be a large share of the bytes). Returns each copy's result in the order
/// given.
pub fn copy_private_many(pairs: &[(PathBuf, PathBuf)]) -> Vec<io::Result<String>> {
    copy_private_many_on(pairs, file_threads())
}

/// [`copy_private_many`] on at most `threads` threads (one: a copy that runs beside other
/// work, leaving it the other cores).
pub fn copy_private_many_on(
    pairs: &[(PathBuf, PathBuf)],
    threads: usize,
) -> Vec<io::Result<String>> {
    largest_first(
        pairs,
        threads,
        |(from, _)| fs::metadata(from).map_or(0, |m| m.len()),
        |(from, to)| copy_private_unsynced(from, to),
    )
    .into_iter()
    .map(|r| r.unwrap_or_else(|| Err(io::Error::other("a copy thread panicked"))))
    .collect()
}

/// The threads a pass over many files may use: every core, at most four (the disk, not the
/// CPU, limits more).
pub fn file_threads() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 4)
}

/// `f` of every item, on up to `threads` threads: the largest items (by `size`) first, each
/// taken by the next free thread, so one large file does not end last on a thread that also
/// had many small ones. Results in the order given; `None` where `f` panicked.
pub fn largest_first<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    size: impl Fn(&T) -> u64,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<Option<R>> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;
    let threads = threads.min(items.len());
    if threads <= 1 {
        return items
            .iter()
            .map(|t| std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(t))).ok())
            .collect();
    }
    let mut order: Vec<(u64, usize)> = items
        .iter()
        .enumerate()
        .map(|(i, t)| (size(t), i))
        .collect();
    order.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                let Some(&(_, i)) = order.get(k) else {
                    break;
                };
                // A panic is this item's `None`; the thread goes on with the next.
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&items[i])));
                results.lock().unwrap_or_else(|e| e.into_inner())[i] = r.ok();
            });
        }
    });
    results.into_inner().unwrap_or_else(|e| e.into_inner())
}

/// Syncs files written without syncing each ([`copy_private_unsynced`]) to disk, several at
/// a time: the filesystem commits concurrent syncs together, so a tree of thousands of files
/// costs a few commits instead of one each.
pub fn sync_files(paths: &[PathBuf]) -> io::Result<()> {
    const THREADS: usize = 16;
    if paths.is_empty() {
        return Ok(());
    }
    let per = paths.len().div_ceil(THREADS);
    std::thread::scope(|scope| {
        let parts: Vec<_> = paths
            .chunks(per)
            .map(|part| {
                scope.spawn(move || -> io::Result<()> {
                    for p in part {
                        fs::File::open(p)?.sync_all()?;
                    }
                    Ok(())
                })
            })
            .collect();
        parts.into_iter().try_for_each(|h| {
            h.join()
                .unwrap_or_else(|_| Err(io::Error::other("a sync thread panicked")))
        })
    })
}

fn tmp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    // Unique per call too: concurrent steps may write the same file.
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    path.with_file_name(format!(".{name}.tmp-{}-{n}", std::process::id()))
}

/// Joins a relative path that came from data onto `base`, refusing anything that could
/// escape it (absolute paths, `..`, prefixes).
pub fn safe_join(base: &Path, rel: &str) -> io::Result<PathBuf> {
    let p = Path::new(rel);
    let mut out = base.to_path_buf();
    for c in p.components() {
        match c {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("path {rel:?} would leave the run directory"),
                ))
            }
        }
    }
    Ok(out)
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bytes))
}

/// Sanitizes a string for use as one file-name component.
pub fn file_component(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    while out.starts_with('.') {
        out.replace_range(0..1, "_");
    }
    out.truncate(80);
    if out.is_empty() {
        out.push('_');
    }
    out
}

/// Holds back work on another thread (a copy that would compete with a parallel phase) until
/// it is opened: explicitly, or by being dropped, so every path opens it, errors and panics
/// included. [`Gate::cancel`] tells the waiting side not to start at all.
pub struct Gate(std::sync::mpsc::SyncSender<bool>);

/// The waiting side of a [`Gate`].
pub struct GateWait(std::sync::mpsc::Receiver<bool>);

/// A closed gate and its waiting side.
pub fn gate() -> (Gate, GateWait) {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    (Gate(tx), GateWait(rx))
}

impl Gate {
    /// Opens the gate (the same as dropping it).
    pub fn open(self) {}

    /// The waiting side is told not to start.
    pub fn cancel(self) {
        let _ = self.0.send(false);
    }
}

impl GateWait {
    /// Blocks until the gate is opened (`true`) or cancelled (`false`).
    pub fn wait(self) -> bool {
        // A dropped gate (every path that does not cancel) opens.
        self.0.recv().unwrap_or(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A copy whose source cannot be read (a directory) is an error that leaves nothing
    /// behind: no destination and no temp file beside it.
    #[test]
    fn a_failed_copy_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("a-directory");
        fs::create_dir(&src).unwrap();
        let out = dir.path().join("out");
        fs::create_dir(&out).unwrap();
        let dst = out.join("bot.csv");
        for sync in [true, false] {
            let copied = if sync {
                copy_private(&src, &dst)
            } else {
                copy_private_unsynced(&src, &dst)
            };
            assert!(copied.is_err(), "sync {sync}: {copied:?}");
            let left: Vec<_> = fs::read_dir(&out).unwrap().collect();
            assert!(left.is_empty(), "sync {sync}: {left:?}");
        }
    }

    /// A file written in many pieces, far past its buffer and past two starts of its disk
    /// writes, has exactly the bytes given, and the hash returned is theirs; so has its
    /// synced copy.
    #[test]
    fn a_large_piece_file_is_the_bytes_given_and_their_hash() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.csv");
        let mut w = PieceWriter::create(&path).unwrap();
        let mut all = Vec::new();
        for n in 0..37 {
            let piece = format!("row {n},{}\n", "x".repeat(512 << 10)).into_bytes();
            w.piece(&piece).unwrap();
            all.extend_from_slice(&piece);
        }
        let sha = w.commit_hashed().unwrap();
        let on_disk = fs::read(&path).unwrap();
        assert!(
            on_disk == all,
            "{} bytes on disk, {} given",
            on_disk.len(),
            all.len()
        );
        assert_eq!(sha, sha256_hex(&all));
        assert!(all.len() as u64 > 2 * Writeback::STEP);
        let copy = dir.path().join("copy.csv");
        assert_eq!(copy_private(&path, &copy).unwrap(), sha);
        assert!(fs::read(&copy).unwrap() == all, "the copy differs");
    }

    /// Every item is mapped once, results come back in the order given whatever thread took
    /// them, and the largest items are started first (one thread: in size order).
    #[test]
    fn largest_first_maps_every_item_once_in_order() {
        let items: Vec<u64> = (0..100).map(|i| (i * 37) % 101).collect();
        for threads in [1, 2, 4, 200] {
            let seen = std::sync::Mutex::new(Vec::new());
            let out = largest_first(
                &items,
                threads,
                |x| *x,
                |x| {
                    seen.lock().unwrap().push(*x);
                    x * 2
                },
            );
            let out: Vec<u64> = out.into_iter().map(|r| r.unwrap()).collect();
            assert_eq!(out, items.iter().map(|x| x * 2).collect::<Vec<_>>());
            let mut seen = seen.into_inner().unwrap();
            if threads == 1 {
                assert_eq!(seen, items, "one thread maps in the order given");
            }
            seen.sort_unstable();
            let mut want = items.clone();
            want.sort_unstable();
            assert_eq!(seen, want, "{threads} threads: each item once");
        }
        assert!(largest_first(&[] as &[u64], 4, |x| *x, |x| *x).is_empty());
    }

    /// A panic in one item is that item's `None`; the others are still mapped.
    #[test]
    fn largest_first_reports_a_panicked_item_as_none() {
        let items = [1u64, 2, 3, 4];
        let out = largest_first(
            &items,
            2,
            |x| *x,
            |x| {
                if *x == 3 {
                    panic!("item 3");
                }
                *x
            },
        );
        assert_eq!(out, vec![Some(1), Some(2), None, Some(4)]);
    }

    #[test]
    fn removes_files_some_already_gone_then_the_folder_only_once_empty() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("chunks");
        create_private_dir(&dir).unwrap();
        let (a, b, c) = (dir.join("a.json"), dir.join("b.json"), dir.join("c.json"));
        for p in [&a, &c] {
            write_private(p, b"[]\n").unwrap();
        }
        remove_files(&[a.clone(), b]).unwrap();
        assert!(!a.exists() && c.exists());
        assert!(!remove_dir_if_empty(&dir).unwrap(), "c.json is still in it");
        assert!(dir.exists());
        remove_files(&[c]).unwrap();
        assert!(remove_dir_if_empty(&dir).unwrap());
        assert!(!dir.exists());
        assert!(!remove_dir_if_empty(&dir).unwrap(), "none at all");
    }

    #[test]
    fn a_gate_opens_when_dropped_even_by_a_panic_and_a_cancel_says_so() {
        let (g, w) = gate();
        g.open();
        assert!(w.wait());
        let (g, w) = gate();
        let unwound = std::thread::spawn(move || {
            let _held = g;
            panic!("the analysis failed");
        })
        .join();
        assert!(unwound.is_err());
        assert!(w.wait(), "a gate dropped by a panic opens");
        let (g, w) = gate();
        g.cancel();
        assert!(!w.wait());
        // Across threads: the waiting side returns once the gate is dropped.
        let (g, w) = gate();
        let waiting = std::thread::spawn(move || w.wait());
        drop(g);
        assert!(waiting.join().unwrap());
    }

    #[test]
    fn safe_join_refuses_escape() {
        let base = Path::new("/tmp/run");
        assert!(safe_join(base, "../etc/passwd").is_err());
        assert!(safe_join(base, "/etc/passwd").is_err());
        assert_eq!(
            safe_join(base, "raw/a.json").unwrap(),
            base.join("raw/a.json")
        );
    }

    #[test]
    fn private_files_are_0600_and_refuse_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("bundle");
        create_new_private_dir(&d).unwrap();
        assert_eq!(
            fs::metadata(&d).unwrap().permissions().mode() & 0o777,
            0o700
        );
        let f = d.join("a.txt");
        write_private(&f, b"hello").unwrap();
        assert_eq!(
            fs::metadata(&f).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let target = dir.path().join("target.txt");
        fs::write(&target, b"x").unwrap();
        let link = d.join("link.txt");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(write_private(&link, b"y").is_err());
        assert!(open_append_private(&link).is_err());
        assert_eq!(fs::read(&target).unwrap(), b"x");
        assert!(create_new_private_dir(&d).is_err());
    }

    #[test]
    fn concurrent_writes_of_one_file_do_not_collide() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("same.txt");
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let f = f.clone();
                std::thread::spawn(move || write_private(&f, format!("{i}").as_bytes()))
            })
            .collect();
        for t in threads {
            t.join().unwrap().unwrap();
        }
        assert_eq!(fs::read_to_string(&f).unwrap().len(), 1);
    }
}
