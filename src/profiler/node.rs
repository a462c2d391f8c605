//! Node.js heap snapshots, for targets the sentinel spawns: `run --attribute` adds
//! `--heapsnapshot-signal=SIGUSR2 --diagnostic-dir=DIR` to the target's `NODE_OPTIONS` (after
//! the user's own), so every Node process of the tree writes a V8 heap snapshot (live objects
//! only: V8 collects first) into the run's attribution directory when it receives SIGUSR2. The
//! sentinel signals the process only when it handles SIGUSR2 (`SigCgt`: the option took
//! effect; an unhandled SIGUSR2 would kill it), waits for a new snapshot file of that PID whose
//! size has settled, summarises it with the target's own `node` (`summarize.js`: self sizes by
//! constructor; closures, strings, arrays and the engine's own objects by kind) and removes it.

use super::Place;
use crate::attribution::Entry;
use crate::files::Dir;
use anyhow::{Context, Result};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// The mechanism, in the report's words.
pub const MECHANISM: &str = "V8 heap snapshot";

/// Summarises one heap snapshot: `node summarize.js SNAPSHOT`, one JSON line per constructor.
pub const SUMMARIZE: &str = include_str!("node_summarize.js");

/// Writes the summariser into the run's attribution directory.
pub fn prepare(dir: &Dir) -> Result<()> {
    dir.write_atomic("summarize.js", SUMMARIZE.as_bytes(), 0o600)
}

/// `NODE_OPTIONS` for a spawned target: the user's (from `--env` or the sentinel's own
/// environment), then the snapshot signal and directory.
pub fn node_options(dir: &Path, env: &[(String, String)]) -> String {
    let user = env
        .iter()
        .rev()
        .find(|(k, _)| k == "NODE_OPTIONS")
        .map(|(_, v)| v.clone())
        .or_else(|| std::env::var("NODE_OPTIONS").ok())
        .unwrap_or_default();
    let ours = format!(
        "--heapsnapshot-signal=SIGUSR2 --diagnostic-dir={}",
        dir.display()
    );
    match user.trim() {
        "" => ours,
        u => format!("{u} {ours}"),
    }
}

/// Whether `pid` handles SIGUSR2 now (`SigCgt` in `/proc/PID/status`).
fn catches_sigusr2(pid: i32) -> bool {
    super::jvm::catches_signal(pid, libc::SIGUSR2)
}

/// Heap snapshot files of `pid` in the directory (`Heap.DATE.TIME.PID.THREAD.SEQ.heapsnapshot`).
fn snapshots_of(dir: &Dir, pid: i32) -> Vec<String> {
    let needle = format!(".{pid}.");
    let mut v: Vec<String> = dir
        .names(100_000)
        .into_iter()
        .filter(|n| n.starts_with("Heap.") && n.ends_with(".heapsnapshot") && n.contains(&needle))
        .collect();
    v.sort();
    v
}

/// One heap snapshot of the Node process `place.pid`, summarised, within `limit`.
pub fn snapshot(place: &Place, limit: Duration) -> Result<Vec<Entry>> {
    if !place.spawned {
        anyhow::bail!(
            "a Node.js heap snapshot needs --heapsnapshot-signal from the start: attribution of Node.js works for targets the sentinel spawns"
        );
    }
    let pid = place.pid;
    if !catches_sigusr2(pid) {
        anyhow::bail!(
            "Node.js PID {pid} does not handle SIGUSR2 (NODE_OPTIONS replaced, or a Node without --heapsnapshot-signal): no heap snapshot"
        );
    }
    let start = Instant::now();
    let dir = Dir::open_private(&place.dir, false)?;
    let before = snapshots_of(&dir, pid);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGUSR2,
    )
    .with_context(|| format!("signalling PID {pid}"))?;
    // V8 writes the file in place: it is done when its size has stopped changing.
    let mut last: Option<(String, i64)> = None;
    let file = loop {
        if start.elapsed() >= limit {
            anyhow::bail!(
                "PID {pid} wrote no heap snapshot within {}",
                crate::detect::human_secs(limit.as_secs_f64())
            );
        }
        std::thread::sleep(Duration::from_millis(250));
        let Some(name) = snapshots_of(&dir, pid)
            .into_iter()
            .find(|n| !before.contains(n))
        else {
            continue;
        };
        let Some(st) = dir.lstat(&name)? else {
            continue;
        };
        if st.st_mode & libc::S_IFMT != libc::S_IFREG {
            anyhow::bail!("{} is not a regular file", place.dir.join(&name).display());
        }
        let size = st.st_size;
        match &last {
            Some((n, s)) if *n == name && *s == size && size > 0 => break name,
            _ => last = Some((name, size)),
        }
    };
    let exe = std::fs::read_link(format!("/proc/{pid}/exe"))
        .with_context(|| format!("reading the node executable of PID {pid}"))?;
    let mut cmd = Command::new(&exe);
    cmd.env_remove("NODE_OPTIONS")
        .arg(place.dir.join("summarize.js"))
        .arg(place.dir.join(&file));
    super::summarise(cmd, "the heap snapshot summary", &dir, &file, start, limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_options_come_after_the_users() {
        let dir = Path::new("/s/runs/r/attribution");
        let o = node_options(
            dir,
            &[("NODE_OPTIONS".into(), "--max-old-space-size=64".into())],
        );
        assert_eq!(
            o,
            "--max-old-space-size=64 --heapsnapshot-signal=SIGUSR2 --diagnostic-dir=/s/runs/r/attribution"
        );
    }
}
