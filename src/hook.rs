//! The snapshot hook: `--on-leak 'gcore -o {dir}/core {pid}'` runs once at failure, with a time
//! limit; its exit status, output and the files it left in `{dir}` are recorded in the report.

use serde::{Deserialize, Serialize};
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Most output kept per stream, bytes (the tail is kept: errors come last).
const KEEP: usize = 64 * 1024;

/// What the hook did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HookResult {
    /// The command after substitution.
    pub command: String,
    /// Exit code, when it exited.
    pub exit_code: Option<i32>,
    /// Killed at the time limit.
    pub timed_out: bool,
    /// Seconds it ran.
    pub elapsed_s: f64,
    /// Tail of its standard output.
    pub stdout: String,
    /// Tail of its standard error.
    pub stderr: String,
    /// The snapshot directory.
    pub dir: String,
    /// Files it left there: name and size in bytes.
    pub files: Vec<(String, u64)>,
}

pub use crate::units::{sh_quote, shell_line};

/// Substitutes `{pid}` and `{dir}` (shell-quoted) into the hook command.
pub fn expand(template: &str, pid: Option<i32>, dir: &Path) -> String {
    template
        .replace("{pid}", &pid.map_or_else(String::new, |p| p.to_string()))
        .replace("{dir}", &sh_quote(&dir.display().to_string()))
}

fn tail(mut bytes: Vec<u8>) -> String {
    if bytes.len() > KEEP {
        bytes.drain(..bytes.len() - KEEP);
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Runs the hook with `sh -c` in `dir` (created private), killing it at `limit`.
pub fn run(template: &str, pid: Option<i32>, dir: &Path, limit: Duration) -> HookResult {
    let command = expand(template, pid, dir);
    let mut res = HookResult {
        command: command.clone(),
        exit_code: None,
        timed_out: false,
        elapsed_s: 0.0,
        stdout: String::new(),
        stderr: String::new(),
        dir: dir.display().to_string(),
        files: Vec::new(),
    };
    if let Err(e) = crate::files::private_dir(dir) {
        res.stderr = format!("cannot create {}: {e:#}", dir.display());
        return res;
    }
    // The hook runs inside the directory, so hand it an absolute path.
    let dir = &std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let command = expand(template, pid, dir);
    res.command = command.clone();
    res.dir = dir.display().to_string();
    let start = Instant::now();
    let child = Command::new("sh")
        .arg("-c")
        .arg(&command)
        .current_dir(dir)
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            res.stderr = format!("cannot run sh: {e}");
            return res;
        }
    };
    // Drain the pipes on threads so a chatty hook cannot block on a full pipe.
    let mut out = child.stdout.take();
    let mut err = child.stderr.take();
    let t_out = std::thread::spawn(move || {
        let mut b = Vec::new();
        if let Some(o) = out.as_mut() {
            let _ = o.read_to_end(&mut b);
        }
        b
    });
    let t_err = std::thread::spawn(move || {
        let mut b = Vec::new();
        if let Some(e) = err.as_mut() {
            let _ = e.read_to_end(&mut b);
        }
        b
    });
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                res.exit_code = status.code();
                break;
            }
            Ok(None) if start.elapsed() >= limit => {
                res.timed_out = true;
                // The whole group: `sh -c` may have children holding the pipes open.
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(child.id() as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(_) => break,
        }
    }
    res.elapsed_s = start.elapsed().as_secs_f64();
    res.stdout = tail(t_out.join().unwrap_or_default());
    res.stderr = tail(t_err.join().unwrap_or_default());
    if let Ok(rd) = std::fs::read_dir(dir) {
        let mut files: Vec<(String, u64)> = rd
            .flatten()
            .map(|e| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    e.metadata().map(|m| m.len()).unwrap_or(0),
                )
            })
            .collect();
        files.sort();
        res.files = files;
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_records_output_and_files_and_times_out() {
        let d = tempfile::tempdir().expect("tempdir");
        let dir = d.path().join("snap it's");
        let r = run(
            "echo pid={pid}; echo oops >&2; echo data > {dir}/dump.txt",
            Some(42),
            &dir,
            Duration::from_secs(10),
        );
        assert_eq!(r.exit_code, Some(0));
        assert_eq!(r.stdout, "pid=42\n");
        assert_eq!(r.stderr, "oops\n");
        assert_eq!(r.files, vec![("dump.txt".to_string(), 5)]);
        let r = run("sleep 5", None, &dir, Duration::from_millis(200));
        assert!(r.timed_out);
        assert!(r.elapsed_s < 3.0);
    }
}
