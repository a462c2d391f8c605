//! Where a run's files live under the state directory, and the per-run lock: one live sentinel
//! per run name, an flock that the kernel releases when its holder dies, so a crash never leaves
//! it stale. The run directory must be private (see `files`); the lock file is opened relative
//! to it and never through a symlink. Also the run's reserve (room kept to record a full disk)
//! and the removal of the temporary files a killed sentinel left.

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

/// The final report's file name: one per run (its name and start time), so a finish that is
/// repeated (a resume after a kill during the first) replaces the file instead of adding one.
pub fn report_name(name: &str, started_at: f64) -> String {
    format!("leak_sentinel_{name}_{}.json", started_at.floor() as i64)
}

/// Path of the final report of a run.
pub fn report_path(state: &Path, name: &str, started_at: f64) -> PathBuf {
    state.join("reports").join(report_name(name, started_at))
}

/// Removes what a sentinel of this run killed mid-write left: the temporary files of its
/// status.json and of its report (only those names; see [`Dir::remove_temps_of`]). Call it with
/// the run's lock held. Returns how many were removed.
pub fn remove_stale_temps(state: &Path, name: &str, started_at: f64) -> usize {
    let mut n = 0;
    if let Ok(dir) = open_run_dir(state, name, false) {
        n += dir.remove_temps_of("status.json");
    }
    let reports = Dir::open_private(state, false).and_then(|d| d.sub("reports", false));
    if let Ok(dir) = reports {
        n += dir.remove_temps_of(&report_name(name, started_at));
    }
    n
}

/// Room kept in the run's directory (`STATE/runs/NAME/reserve`, 1 MiB) while it is live: when
/// the disk fills, releasing it lets the store record why the run stopped. Another writer on the
/// same file system may take the room first, so this raises the odds, not a guarantee.
pub struct Reserve {
    dir: Dir,
}

impl Reserve {
    /// Bytes kept: an SQLite transaction of a few pages, its WAL index and a status.json, many
    /// times over.
    pub const BYTES: usize = 1 << 20;
    const FILE: &'static str = "reserve";

    /// Writes the reserve (replacing one a killed sentinel left).
    pub fn take(state: &Path, name: &str) -> Result<Reserve> {
        let dir = open_run_dir(state, name, true)?;
        // Not zeros: a compressing file system would keep zeros in no room at all. Written in
        // small pieces: a 1 MiB buffer would raise glibc's mmap threshold and leave the
        // sentinel's later allocations resident in its heap.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut chunk = vec![0u8; 16 << 10];
        dir.write_atomic_with(Self::FILE, 0o600, |f| {
            use std::io::Write;
            for _ in 0..Self::BYTES / chunk.len() {
                for word in chunk.chunks_exact_mut(8) {
                    // xorshift64: any bytes that do not compress will do.
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    word.copy_from_slice(&x.to_le_bytes());
                }
                f.write_all(&chunk)?;
            }
            Ok(())
        })?;
        Ok(Reserve { dir })
    }

    /// Gives the room back (true when there was a reserve to remove).
    pub fn release(&self) -> bool {
        self.dir.remove_own_file(Self::FILE).unwrap_or(false)
    }

    /// Removes the reserve a killed sentinel of an ended run left (call with the run's lock).
    pub fn remove_left(state: &Path, name: &str) {
        if let Ok(dir) = open_run_dir(state, name, false) {
            let _ = dir.remove_own_file(Self::FILE);
        }
    }
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
