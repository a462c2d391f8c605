//! The whole sentinel's cost as users run it, beside psrecord in the same run: a 100-process
//! tree (a `sh` whose children are 99 `sleep 3600`) sampled every 100 ms for 20 s by
//! `leak-sentinel run --pid ROOT` and by `psrecord ROOT --include-children --interval 0.1` at
//! the same time. Each one's whole-process CPU (user + system, from wait4's rusage: startup,
//! checks, diagnosis and the final report included) is divided by its process-samples. Then the
//! CPU the sentinel spends before its first sample (startup: argument parsing, the store, the
//! tree scan), read from /proc/PID/task/*/schedstat when the first sample lands in the store.
//!
//! `cargo bench --bench wholecost` (needs psrecord: `pip install psrecord`). No assertions.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn sentinel() -> PathBuf {
    // target/release/deps/wholecost-… → target/release/leak-sentinel
    let exe = std::env::current_exe().expect("own path");
    exe.parent()
        .and_then(Path::parent)
        .map(|d| d.join("leak-sentinel"))
        .expect("target dir")
}

struct Tree(Child);

impl Tree {
    fn spawn(n: usize) -> Tree {
        let script = format!("for i in $(seq {}); do sleep 3600 & done; wait", n - 1);
        let child = Command::new("sh")
            .args(["-c", &script])
            .process_group(0)
            .spawn()
            .expect("sh");
        Tree(child)
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(self.0.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = self.0.wait();
    }
}

/// Waits for `child` and returns its CPU (user + system) in seconds.
fn wait_cpu(child: &Child) -> f64 {
    let mut status = 0;
    // SAFETY: all-zero is a valid rusage; wait4 fills it for our own child.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid out-pointers; the PID is our child.
    let r = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut ru) };
    assert!(r > 0, "wait4");
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// CPU time of every thread of `pid` so far, seconds (schedstat: nanoseconds on a CPU).
fn schedstat_cpu(pid: i32) -> f64 {
    let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0.0;
    };
    rd.flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .sum::<f64>()
        / 1e9
}

fn samples_in(state: &Path) -> usize {
    let Ok(store) = leak_sentinel::store::Store::open(state) else {
        return 0;
    };
    store
        .latest_run()
        .ok()
        .flatten()
        .and_then(|r| store.samples(r.id).ok())
        .map_or(0, |s| s.len())
}

fn run_args(state: &Path, root: u32) -> Command {
    let mut c = Command::new(sentinel());
    c.arg("--state-dir").arg(state);
    c.args([
        "run",
        "--name",
        "cost",
        "--plain",
        "--pid",
        &root.to_string(),
    ]);
    c.args([
        "--sample-every",
        "100ms",
        "--warmup",
        "2s",
        "--check-every",
        "5s",
    ]);
    c.args(["--duration", "18s"]);
    c.stdout(Stdio::null()).stderr(Stdio::null());
    c
}

// Children are reaped by wait4 (for their rusage), which clippy cannot see.
#[allow(clippy::zombie_processes)]
fn main() {
    const N: usize = 100;
    let tree = Tree::spawn(N);
    std::thread::sleep(Duration::from_millis(500));
    let root = tree.0.id();

    // 1. The same 20 s, side by side.
    let state = tempfile::tempdir().expect("tempdir");
    let log = state.path().join("psrecord.log");
    let ls = run_args(state.path(), root).spawn().expect("leak-sentinel");
    let psr = Command::new("psrecord")
        .arg(root.to_string())
        .args([
            "--include-children",
            "--interval",
            "0.1",
            "--duration",
            "20",
            "--log",
        ])
        .arg(&log)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let ls_cpu = wait_cpu(&ls);
    let ls_samples = samples_in(state.path());
    let psr_result = psr.ok().map(|p| {
        let cpu = wait_cpu(&p);
        let lines = std::fs::read_to_string(&log)
            .map(|t| t.lines().filter(|l| !l.starts_with('#')).count())
            .unwrap_or(0);
        (cpu, lines)
    });
    let per = |cpu: f64, samples: usize| cpu * 1e6 / (samples.max(1) * N) as f64;
    println!("whole-process CPU over a 20 s run of a {N}-process tree at 100 ms:");
    println!(
        "  leak-sentinel: {:.3} s CPU, {ls_samples} samples, {:.2} µs per process-sample",
        ls_cpu,
        per(ls_cpu, ls_samples)
    );
    match psr_result {
        Some((cpu, lines)) if lines > 0 => {
            println!(
                "  psrecord:      {:.3} s CPU, {lines} samples, {:.2} µs per process-sample ({:.1}× leak-sentinel)",
                cpu,
                per(cpu, lines),
                per(cpu, lines) / per(ls_cpu, ls_samples)
            );
        }
        _ => println!("  psrecord: not available (pip install psrecord)"),
    }

    // 2. Startup: CPU before the first sample, median of 5.
    let mut startup = Vec::new();
    for _ in 0..5 {
        let st = tempfile::tempdir().expect("tempdir");
        let mut c = run_args(st.path(), root).spawn().expect("leak-sentinel");
        let pid = c.id() as i32;
        let t0 = Instant::now();
        let mut cpu = None;
        while t0.elapsed() < Duration::from_secs(10) {
            let now = schedstat_cpu(pid);
            if samples_in(st.path()) > 0 {
                cpu = Some(now);
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let _ = c.kill();
        let _ = c.wait();
        if let Some(c) = cpu {
            startup.push(c * 1e3);
        }
    }
    startup.sort_by(f64::total_cmp);
    if let Some(m) = startup.get(startup.len() / 2) {
        println!(
            "startup CPU before the first sample (median of {}): {m:.1} ms (all: {:?})",
            startup.len(),
            startup
                .iter()
                .map(|x| format!("{x:.1}"))
                .collect::<Vec<_>>()
        );
    }
    drop(tree);
}
