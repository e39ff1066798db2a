//! Copies of a directory tree (a bundle, to analyze or resume a copy of it). Also compiled
//! into `benches/analyze_scale.rs`, which analyzes a fresh copy of a bundle each round.

use std::path::Path;

/// Copies the tree `from` to `to`: files with their permission bits (`std::fs::copy`), and
/// each directory's permission bits too (a bundle's folders are private).
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let (src, dst) = (e.path(), to.join(e.file_name()));
        if e.file_type().unwrap().is_dir() {
            copy_tree(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
    let mode = std::fs::metadata(from).unwrap().permissions();
    std::fs::set_permissions(to, mode).unwrap();
}
