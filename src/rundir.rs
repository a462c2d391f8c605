//! Where a run's files live under the state directory, and the per-run lock: one live sentinel
//! per run name, an flock that the kernel releases when its holder dies, so a crash never leaves
//! it stale.

use crate::exit::usage;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// Where a run's files live.
pub fn run_dir(state: &Path, name: &str) -> PathBuf {
    state.join("runs").join(name)
}

/// Path of the live status file of a run.
pub fn status_path(state: &Path, name: &str) -> PathBuf {
    run_dir(state, name).join("status.json")
}

/// The exclusive lock of a live run.
pub struct RunLock {
    _lock: nix::fcntl::Flock<std::fs::File>,
}

/// Takes the run's lock, or says who holds it.
pub fn lock_run(state: &Path, name: &str) -> Result<RunLock> {
    use std::io::{Seek, Write};
    use std::os::unix::fs::OpenOptionsExt;
    let dir = run_dir(state, name);
    crate::files::private_dir(&dir)?;
    let path = dir.join("lock");
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock) {
        Ok(mut lock) => {
            let _ = lock.set_len(0);
            let _ = lock.rewind();
            let _ = writeln!(lock, "{}", std::process::id());
            Ok(RunLock { _lock: lock })
        }
        Err((_, _)) => {
            let holder = std::fs::read_to_string(&path).unwrap_or_default();
            Err(usage(format!(
                "run '{name}' is already live (sentinel PID {}); pick another --name",
                holder.trim()
            )))
        }
    }
}

/// Whether a sentinel currently holds the run's lock.
pub fn run_is_live(state: &Path, name: &str) -> bool {
    let path = run_dir(state, name).join("lock");
    let Ok(file) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
    else {
        return false;
    };
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockSharedNonblock).is_err()
}
