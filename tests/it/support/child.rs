//! One test of this binary run again in a child process, for what needs a process of its own:
//! a panic hook, a panic that must end the process, output printed at full verbosity.

use std::process::Command;

use super::respond::Ran;

/// Runs the test `name` (its module path, e.g. `engine::panic_helper`) of this test binary in
/// a child process with `var=1` in its environment (the test checks it to act as the child),
/// its output uncaptured; `ignored` when the test is a helper marked `#[ignore]`.
pub fn run_test_in_child(name: &str, var: &str, ignored: bool) -> Ran {
    let mut c = Command::new(std::env::current_exe().expect("this test binary"));
    if ignored {
        c.arg("--ignored");
    }
    let o = c
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(var, "1")
        .output()
        .expect("run this test binary");
    Ran {
        code: o.status.code(),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}
