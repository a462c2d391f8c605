//! A diagnostic command sent to a HotSpot JVM through its attach mechanism, as `jcmd PID
//! COMMAND` does, without needing `jcmd` (a JDK tool; servers often have only a JRE).
//!
//! Written by hand: the protocol is a few bytes over a Unix socket and no maintained crate
//! speaks it. The JVM listens on `/tmp/.java_pidNSPID` (its own /tmp and PID namespace, reached
//! as `/proc/PID/root/tmp`) once asked: a trigger file `.attach_pidNSPID` in its working
//! directory (or /tmp) and a SIGQUIT. A request is `1\0jcmd\0COMMAND\0\0\0` (protocol 1, the
//! `jcmd` operation, three arguments); the answer is a return code line, then the output.
//!
//! Hostile ground: the socket is used only when it is a socket (not a link) owned by the JVM's
//! user or root; the trigger file is created exclusively without following links and removed
//! afterwards; the answer read is bounded in size and time. A JVM started with
//! `-XX:+DisableAttachMechanism` ignores the trigger and prints a thread dump on the SIGQUIT:
//! that costs it a dump, once per request, and the request fails with a timeout.

use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// At most this much of an answer is read.
const MAX_ANSWER: u64 = 64 * 1024;

/// Why a command could not be run.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    /// The process is gone or its status unreadable.
    #[error("PID {0} is gone or unreadable")]
    NoProcess(i32),
    /// The JVM did not open its attach socket in time.
    #[error(
        "the JVM (PID {pid}) did not open its attach socket within {secs:.0} s (attach disabled with -XX:+DisableAttachMechanism, or another user's JVM)"
    )]
    NoSocket {
        /// The JVM.
        pid: i32,
        /// The time waited.
        secs: f64,
    },
    /// The JVM does not catch SIGQUIT yet (it is starting): the signal would kill it.
    #[error("the JVM (PID {0}) does not catch SIGQUIT yet (still starting): not signalled")]
    NotReady(i32),
    /// Something at the socket's path is not the JVM's socket.
    #[error("{0} is not the JVM's attach socket (a link, or another user's file): not used")]
    Untrusted(PathBuf),
    /// The JVM answered with an error.
    #[error("the JVM refused '{command}': {answer}")]
    Refused {
        /// The command.
        command: String,
        /// Its first line of output.
        answer: String,
    },
    /// Reading or writing failed.
    #[error("attach to PID {pid}: {source}")]
    Io {
        /// The JVM.
        pid: i32,
        /// The error.
        source: std::io::Error,
    },
}

/// Runs the diagnostic command `command` (e.g. `GC.run`) in JVM `pid`, waiting at most
/// `timeout` for the socket and for the answer; returns its output (bounded).
pub fn jcmd(pid: i32, command: &str, timeout: Duration) -> Result<String, AttachError> {
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    let status = std::fs::read_to_string(proc_dir.join("status"))
        .map_err(|_| AttachError::NoProcess(pid))?;
    let (nspid, euid) = super::hsperf::parse_status(&status, pid);
    let socket = proc_dir.join("root/tmp").join(format!(".java_pid{nspid}"));
    let deadline = Instant::now() + timeout;
    if !is_trusted_socket(&socket, euid)? {
        // A JVM catches SIGQUIT only once its signal handling is set up; before, the signal's
        // default action ends it. `SigCgt` in /proc/PID/status says which signals it catches
        // (what the JDK's own attach checks before signalling).
        if !catches_sigquit(&status) {
            return Err(AttachError::NotReady(pid));
        }
        start_listener(pid, &proc_dir, nspid, &socket, euid, deadline).map_err(|e| match e {
            AttachError::NoSocket { pid, .. } => AttachError::NoSocket {
                pid,
                secs: timeout.as_secs_f64(),
            },
            e => e,
        })?;
    }
    let io = |source| AttachError::Io { pid, source };
    let mut s = UnixStream::connect(&socket).map_err(io)?;
    let left = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(100));
    s.set_write_timeout(Some(left)).map_err(io)?;
    s.set_read_timeout(Some(left)).map_err(io)?;
    let mut req = Vec::with_capacity(command.len() + 16);
    req.extend_from_slice(b"1\0jcmd\0");
    req.extend_from_slice(command.as_bytes());
    req.extend_from_slice(b"\0\0\0");
    s.write_all(&req).map_err(io)?;
    let mut answer = Vec::new();
    s.take(MAX_ANSWER).read_to_end(&mut answer).map_err(io)?;
    let text = String::from_utf8_lossy(&answer).into_owned();
    let (code, rest) = text.split_once('\n').unwrap_or((text.as_str(), ""));
    if code.trim() == "0" {
        Ok(rest.to_string())
    } else {
        Err(AttachError::Refused {
            command: command.to_string(),
            answer: rest.lines().next().unwrap_or(code).trim().to_string(),
        })
    }
}

/// Whether the process whose /proc/PID/status is `status` catches SIGQUIT (bit 3 − 1 of the
/// hexadecimal `SigCgt` mask).
fn catches_sigquit(status: &str) -> bool {
    status
        .lines()
        .find_map(|l| l.strip_prefix("SigCgt:"))
        .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
        .is_some_and(|mask| mask & (1 << (libc::SIGQUIT - 1)) != 0)
}

/// Whether `path` is the JVM's attach socket: a socket, not a link, owned by the JVM's
/// effective user or root. Nothing there is `false`; anything else there is an error.
fn is_trusted_socket(path: &Path, euid: Option<u32>) -> Result<bool, AttachError> {
    use std::os::unix::fs::FileTypeExt;
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() && (Some(m.uid()) == euid || m.uid() == 0) => Ok(true),
        Ok(_) => Err(AttachError::Untrusted(path.to_path_buf())),
        Err(_) => Ok(false),
    }
}

/// Asks the JVM to open its attach socket: a trigger file, then SIGQUIT; waits for the socket
/// until `deadline`. The trigger file is removed whatever happens.
fn start_listener(
    pid: i32,
    proc_dir: &Path,
    nspid: i32,
    socket: &Path,
    euid: Option<u32>,
    deadline: Instant,
) -> Result<(), AttachError> {
    let name = format!(".attach_pid{nspid}");
    // The working directory first (what the JVM looks at first), then its /tmp.
    let trigger = [
        proc_dir.join("cwd").join(&name),
        proc_dir.join("root/tmp").join(&name),
    ]
    .into_iter()
    .find(|p| {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(p)
            .is_ok()
    });
    let signalled = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGQUIT,
    );
    let mut found = Ok(false);
    if signalled.is_ok() {
        let mut wait = Duration::from_millis(20);
        loop {
            found = is_trusted_socket(socket, euid);
            if !matches!(found, Ok(false)) || Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(wait.min(deadline.saturating_duration_since(Instant::now())));
            wait = (wait * 2).min(Duration::from_millis(200));
        }
    }
    if let Some(t) = trigger {
        let _ = std::fs::remove_file(t);
    }
    match (signalled, found) {
        (Err(_), _) => Err(AttachError::NoProcess(pid)),
        (_, Ok(true)) => Ok(()),
        (_, Err(e)) => Err(e),
        (_, Ok(false)) => Err(AttachError::NoSocket { pid, secs: 0.0 }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigquit_is_sent_only_to_a_process_that_catches_it() {
        assert!(catches_sigquit("Name:\tjava\nSigCgt:\t0000000000000004\n"));
        assert!(catches_sigquit("SigCgt:\t2000000181005ccf\n"));
        assert!(!catches_sigquit("SigCgt:\t0000000000000000\n"));
        assert!(!catches_sigquit("SigCgt:\t0000000000000002\n"));
        assert!(!catches_sigquit("Name:\tjava\n"));
        // A process that does not catch it is not signalled (this test process does not).
        let me = std::process::id() as i32;
        assert!(matches!(
            jcmd(me, "GC.run", Duration::from_millis(100)),
            Err(AttachError::NotReady(_))
        ));
    }

    #[test]
    fn a_link_or_a_stranger_at_the_socket_path_is_not_used() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(".java_pid1");
        assert!(!is_trusted_socket(&path, Some(0)).expect("nothing there"));
        std::fs::write(dir.path().join("elsewhere"), b"").expect("file");
        std::os::unix::fs::symlink(dir.path().join("elsewhere"), &path).expect("link");
        assert!(matches!(
            is_trusted_socket(&path, Some(0)),
            Err(AttachError::Untrusted(_))
        ));
        std::fs::remove_file(&path).expect("unlink");
        let _l = std::os::unix::net::UnixListener::bind(&path).expect("bind");
        let me = nix::unistd::geteuid().as_raw();
        assert!(is_trusted_socket(&path, Some(me)).expect("own socket"));
        if me != 0 {
            // Owned by neither the JVM's user (here: someone else) nor root.
            assert!(is_trusted_socket(&path, Some(me + 1)).is_err());
        }
    }
}
