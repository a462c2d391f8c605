//! Where a run's files live under the state directory, and the per-run lock: one live sentinel
//! per run name, an flock that the kernel releases when its holder dies, so a crash never leaves
//! it stale. The run directory must be private (see `files`); the lock file is opened relative
//! to it and never through a symlink.

use crate::exit::usage;
use crate::files::Dir;
use anyhow::Result;
use std::path::{Path, PathBuf};

/// Where a run's files live.
pub fn run_dir(state: &Path, name: &str) -> PathBuf {
    state.join("runs").join(name)
}

/// Path of the live status file of a run.
pub fn status_path(state: &Path, name: &str) -> PathBuf {
    run_dir(state, name).join("status.json")
}

/// Opens (creating if needed) a run's private directory: `STATE/runs/NAME`, each level the
/// user's own and not writable by others.
pub fn open_run_dir(state: &Path, name: &str, create: bool) -> Result<Dir> {
    Dir::open_private(state, create)?
        .sub("runs", create)?
        .sub(name, create)
}

/// The exclusive lock of a live run.
pub struct RunLock {
    _lock: nix::fcntl::Flock<std::fs::File>,
}

/// Takes the run's lock, or says who holds it.
pub fn lock_run(state: &Path, name: &str) -> Result<RunLock> {
    use std::io::{Read, Seek, Write};
    let dir = open_run_dir(state, name, true)?;
    let file = dir.own_file("lock")?;
    match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock) {
        Ok(mut lock) => {
            let _ = lock.set_len(0);
            let _ = lock.rewind();
            let _ = writeln!(lock, "{}", std::process::id());
            Ok(RunLock { _lock: lock })
        }
        Err((file, _)) => {
            // Read from the handle already open: a PID is a few bytes.
            let mut holder = String::new();
            let _ = file.take(32).read_to_string(&mut holder);
            Err(usage(format!(
                "run '{name}' is already live (sentinel PID {}); pick another --name",
                holder.trim()
            )))
        }
    }
}

/// Whether a sentinel currently holds the run's lock (read-only: works on a read-only state
/// directory; a symlink at the lock is not followed).
pub fn run_is_live(state: &Path, name: &str) -> bool {
    use std::os::unix::fs::OpenOptionsExt;
    let path = run_dir(state, name).join("lock");
    let Ok(file) = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(&path)
    else {
        return false;
    };
    if !file.metadata().is_ok_and(|m| m.is_file()) {
        return false;
    }
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockSharedNonblock).is_err()
}
