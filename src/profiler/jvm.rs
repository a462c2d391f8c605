//! A JVM's class histogram through `jcmd PID GC.class_histogram` (the attach mechanism): every
//! live class with its instances and bytes, after a full collection (so what it counts is what
//! stays reachable, not garbage). jcmd comes from the target's own Java home when it has one
//! (the same JDK speaks the same attach protocol), else from `PATH`.
//!
//! Never point jcmd at a process that is not a JVM: it starts the attach listener with SIGQUIT,
//! which kills most other programs. The caller picks the process by its runtime
//! ([`super::pick_process`]); [`histogram`] checks again that libjvm.so is mapped.

use crate::attribution::{Entry, parse_class_histogram};
use anyhow::Result;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The mechanism, in the report's words.
pub const MECHANISM: &str = "jcmd GC.class_histogram";

/// The jcmd for the JVM `pid`: next to its `java` (`JAVA_HOME/bin/jcmd`), or in the JDK above a
/// JRE (`JAVA_HOME/jre/bin/java` of JDK 8), else `jcmd` from `PATH`.
pub fn find_jcmd(pid: i32) -> Option<PathBuf> {
    if let Ok(exe) = std::fs::read_link(format!("/proc/{pid}/exe")) {
        let bin = exe.parent().map(Path::to_path_buf);
        let candidates = [
            bin.as_ref().map(|b| b.join("jcmd")),
            bin.as_ref()
                .and_then(|b| b.parent())
                .and_then(Path::parent)
                .map(|h| h.join("bin/jcmd")),
        ];
        for c in candidates.into_iter().flatten() {
            if is_executable(&c) {
                return Some(c);
            }
        }
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("jcmd"))
            .find(|c| is_executable(c))
    })
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The class histogram of JVM `pid`, within `limit`.
pub fn histogram(pid: i32, limit: Duration) -> Result<Vec<Entry>> {
    if !super::maps_libjvm(pid) {
        anyhow::bail!("PID {pid} is not a running JVM (no libjvm.so mapped)");
    }
    if !catches_sigquit(pid) {
        anyhow::bail!(
            "JVM PID {pid} does not handle SIGQUIT (started with -Xrs, or not initialised): jcmd cannot attach to it safely"
        );
    }
    let Some(jcmd) = find_jcmd(pid) else {
        anyhow::bail!(
            "no jcmd next to the target's java nor on PATH (it comes with a JDK: Debian's openjdk-17-jdk-headless)"
        );
    };
    let mut cmd = Command::new(&jcmd);
    cmd.arg(pid.to_string()).arg("GC.class_histogram");
    let out = super::run_bounded(
        cmd,
        &format!("{} {pid} GC.class_histogram", jcmd.display()),
        limit,
    )?;
    match parse_class_histogram(&out.stdout) {
        Ok(v) => Ok(v),
        Err(e) => {
            let why = match out.code {
                Some(0) => e,
                _ => format!(
                    "jcmd failed (exit {}): {}",
                    out.code.map_or("by a signal".into(), |c| c.to_string()),
                    super::last_line(&format!("{}\n{}", out.stdout, out.stderr))
                ),
            };
            anyhow::bail!(why)
        }
    }
}

/// Whether `pid` handles SIGQUIT now (`SigCgt` in `/proc/PID/status`): a JVM does once its
/// signal handlers are installed (not with `-Xrs`). jcmd's first attach sends SIGQUIT, which
/// kills a process that does not handle it, so nothing is attached before this holds.
pub fn catches_sigquit(pid: i32) -> bool {
    catches_signal(pid, libc::SIGQUIT)
}

/// Whether `pid` has a handler for signal `sig` now (`SigCgt` in `/proc/PID/status`).
pub fn catches_signal(pid: i32, sig: i32) -> bool {
    use std::io::Read;
    let Ok(f) = std::fs::File::open(format!("/proc/{pid}/status")) else {
        return false;
    };
    let mut s = String::new();
    if f.take(16 << 10).read_to_string(&mut s).is_err() {
        return false;
    }
    s.lines()
        .find_map(|l| l.strip_prefix("SigCgt:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .is_some_and(|mask| mask & (1 << (sig - 1)) != 0)
}

/// Primes JVM `pid` during warm-up with a histogram whose output is dropped: the first attach
/// adds a thread and a socket to the JVM for good, and the first full collection can start GC
/// worker threads, so both happen before the judged time. Errors are left to the snapshot.
pub fn prime(pid: i32, limit: Duration) {
    if !super::maps_libjvm(pid) || !catches_sigquit(pid) {
        return;
    }
    if let Some(jcmd) = find_jcmd(pid) {
        let mut cmd = Command::new(jcmd);
        cmd.arg(pid.to_string()).arg("GC.class_histogram");
        let _ = super::run_bounded(cmd, "jcmd GC.class_histogram", limit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_that_does_not_handle_sigquit_is_never_attached() {
        // The test process handles no SIGQUIT: jcmd would kill it.
        let me = std::process::id() as i32;
        assert!(!catches_sigquit(me));
        let e = histogram(me, Duration::from_secs(1)).expect_err("not a JVM");
        assert!(e.to_string().contains("not a running JVM"), "{e}");
    }
}
