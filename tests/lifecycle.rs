//! Process lifecycle of a live run: every orphan the sentinel inherits is reaped, a reused PID
//! is never taken for the process that had it, and a resumed run whose spawned root already
//! exited still stops what is left of its tree.

mod common;

use common::{bin, ls, wait_for};
use leak_sentinel::probe::process::ProcHandle;
use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// (pid, start time) of the zombies whose parent is `parent`.
fn zombies_of(parent: i32) -> Vec<(i32, u64)> {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| {
            let st = leak_sentinel::probe::process::parse_stat(
                &std::fs::read(format!("/proc/{pid}/stat")).ok()?,
            )?;
            (st.zombie && st.ppid == parent).then_some((pid, st.starttime))
        })
        .collect()
}

#[test]
#[cfg_attr(
    not(feature = "live"),
    ignore = "live tier: cargo test --features live"
)]
fn a_fork_storm_leaves_no_zombie() {
    let dir = tempfile::tempdir().expect("tempdir");
    // ~50 short-lived orphans a second, reparented to the sentinel (their subreaper).
    let storm =
        "while :; do for i in 1 2 3 4 5 6 7 8 9 10; do (sleep 0.01 &); done; sleep 0.2; done";
    let mut child = ls(dir.path())
        .args([
            "run",
            "--name",
            "storm",
            "--plain",
            "--warmup",
            "1s",
            "--check-every",
            "1s",
            "--sample-every",
            "200ms",
            "--duration",
            "6s",
            "--",
            "sh",
            "-c",
            storm,
        ])
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn");
    let sentinel = child.id() as i32;
    let mut first_seen: HashMap<(i32, u64), Instant> = HashMap::new();
    let mut oldest = Duration::ZERO;
    let mut seen = 0;
    let started = Instant::now();
    while child.try_wait().expect("wait").is_none() && started.elapsed() < Duration::from_secs(30) {
        let now = Instant::now();
        let z = zombies_of(sentinel);
        seen += z.len();
        first_seen.retain(|k, _| z.contains(k));
        for k in z {
            let at = *first_seen.entry(k).or_insert(now);
            oldest = oldest.max(now - at);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let status = child.wait().expect("ends");
    assert_ne!(status.code(), Some(2), "the run itself worked");
    // Reaped at every sample (200 ms): none may outlive a few of them.
    assert!(
        oldest < Duration::from_millis(1500),
        "a zombie survived {oldest:?} ({seen} zombie sightings)"
    );
}

#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: sets the next PID through /proc/sys/kernel/ns_last_pid"
)]
fn a_reused_pid_is_never_taken_for_the_original_process() {
    // Needs to choose the next PID (root: /proc/sys/kernel/ns_last_pid); CI runs as root.
    let mut reused = None;
    for _ in 0..20 {
        let mut a = Command::new("sleep").arg("600").spawn().expect("sleep");
        let pid = a.id() as i32;
        let mut h = ProcHandle::open(pid).expect("handle on the original");
        let start = h.starttime;
        a.kill().expect("kill");
        a.wait().expect("reap");
        // Start times are in clock ticks (10 ms): make the new process's differ.
        std::thread::sleep(Duration::from_millis(50));
        std::fs::write("/proc/sys/kernel/ns_last_pid", format!("{}", pid - 1))
            .expect("set the next PID (needs root)");
        let b = Command::new("sleep").arg("600").spawn().expect("sleep");
        if b.id() as i32 == pid {
            reused = Some((h, start, common::Kill(b)));
            break;
        }
        drop(common::Kill(b));
        let _ = h.read_stat();
    }
    let (mut h, start, b) =
        reused.expect("the PID was reused (another process raced for it 20 times)");
    let pid = b.0.id() as i32;
    // The held handle still means the original: gone, and it signals nothing.
    assert!(
        h.read_stat().is_err(),
        "the old handle reads the new process"
    );
    assert!(!h.signal(libc::SIGKILL), "signalled a reused PID");
    assert!(
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z ")),
        "the new process is alive"
    );
    // A fresh handle is the new process, with another start time.
    let fresh = ProcHandle::open(pid).expect("handle on the new process");
    assert_ne!(fresh.starttime, start);
    // Re-attaching by PID and the old start time (what resume does) refuses the new process.
    let err = leak_sentinel::target::Target::attach(pid, true, Some(start))
        .err()
        .expect("refused");
    assert!(format!("{err:#}").contains("start"), "{err:#}");
}

#[test]
#[cfg_attr(
    not(feature = "live"),
    ignore = "live tier: cargo test --features live"
)]
fn a_resumed_run_stops_what_is_left_of_a_spawned_tree_whose_root_exited() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pid_file = dir.path().join("leftover.pid");
    let script = format!(
        "sleep 300 & echo $! > '{}'; sleep 3; exit 0",
        pid_file.display()
    );
    let mut child = ls(dir.path())
        .args([
            "run",
            "--name",
            "leftover",
            "--plain",
            "--warmup",
            "1s",
            "--check-every",
            "1s",
            "--sample-every",
            "200ms",
            "--duration",
            "60s",
            "--",
            "sh",
            "-c",
            &script,
        ])
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn");
    wait_for("the leftover's PID", Duration::from_secs(20), || {
        std::fs::read_to_string(&pid_file).is_ok_and(|s| s.trim().parse::<i32>().is_ok())
    });
    let leftover: i32 = std::fs::read_to_string(&pid_file)
        .expect("pid")
        .trim()
        .parse()
        .expect("number");
    std::thread::sleep(Duration::from_millis(600));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill the sentinel");
    let _ = child.wait();
    // The root (sh) exits 3 s in, while no sentinel runs; its `sleep 300` stays behind.
    std::thread::sleep(Duration::from_secs(4));
    let alive = |pid: i32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
    };
    assert!(alive(leftover), "the leftover runs before the resume");
    let out = Command::new(bin())
        .arg("--state-dir")
        .arg(dir.path())
        .args(["resume", "leftover"])
        .output()
        .expect("resume");
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    wait_for(
        "the leftover to be stopped",
        Duration::from_secs(10),
        || !alive(leftover),
    );
}
