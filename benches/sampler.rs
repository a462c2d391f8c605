//! Sampler overhead: the CPU that leak-sentinel spends per process per sample, against a minimal
//! raw /proc reader (the floor) and against psrecord (when python3 can import it).
//!
//! For process trees of 1, 100 and 1,000 processes started here (a root `sh` whose descendants
//! are `sleep 3600`; the tree of 1 is a lone `sleep`), at a pace of 0.1 s and 1 s between
//! samples, it measures the thread CPU time (CLOCK_THREAD_CPUTIME_ID: sleep excluded, cache
//! coldness after the sleep included) of each sample and prints medians per process-sample:
//!
//! * leak-sentinel's cheap path: `Target::refresh_tree` + `Target::sample(t, false)`
//!   (RSS, private memory, threads, FD count); the share spent in `refresh_tree` (the /proc
//!   scan) is shown too;
//! * the raw floor: held fds of /proc/PID/stat and /proc/PID/statm read with pread and parsed by
//!   hand, plus fstatat(/proc/PID, "fd") whose st_size is the FD count on Linux >= 6.2;
//! * the cost of one read of statm against one of status (the two ways to get private memory);
//! * the detail path (`Target::sample(t, true)` + `Target::inventory()`: smaps_rollup and the FD
//!   inventory), at the 1 s pace;
//! * psrecord's per-sample psutil calls over the 100-process tree at 1 s, timed by the python
//!   script itself with `time.thread_time()`.
//!
//! Trees run one at a time and are killed (SIGKILL to their process group) at the end, on a
//! panic (Drop) and on SIGINT/SIGTERM/SIGHUP. No timing assertions.
//!
//! `cargo bench --bench sampler`

use leak_sentinel::probe::Metric;
use leak_sentinel::session::ticker::{TREE_FULL_SCAN, TREE_REFRESH};
use leak_sentinel::target::Target;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

const SIZES: [usize; 3] = [1, 100, 1000];
/// (pace, samples): 20 samples at 0.1 s, 8 at 1 s.
const PACES: [(Duration, usize); 2] = [
    (Duration::from_millis(100), 20),
    (Duration::from_secs(1), 8),
];
const DETAIL_SAMPLES: usize = 5;
const PSRECORD_TREE: usize = 100;
const PSRECORD_SAMPLES: usize = 8;

/// Process groups alive now, for the signal handler and Drop (0 = free slot).
static PGIDS: [AtomicI32; 4] = [const { AtomicI32::new(0) }; 4];

fn kill_registered() {
    for slot in &PGIDS {
        let g = slot.swap(0, Ordering::SeqCst);
        if g > 0 {
            // SAFETY: killpg is a plain, async-signal-safe syscall.
            unsafe {
                libc::killpg(g, libc::SIGKILL);
            }
        }
    }
}

fn install_signal_cleanup() {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only does atomic swaps, killpg and _exit (all async-signal-safe).
        let r = unsafe {
            signal_hook::low_level::register(sig, move || {
                kill_registered();
                libc::_exit(128 + sig);
            })
        };
        r.expect("register signal handler");
    }
}

/// One process tree of `n` processes in its own process group.
struct Tree {
    root: Child,
    pgid: i32,
    slot: usize,
}

impl Tree {
    fn spawn(n: usize) -> Tree {
        let mut cmd = if n <= 1 {
            let mut c = Command::new("sleep");
            c.arg("3600");
            c
        } else {
            let mut c = Command::new("sh");
            c.arg("-c").arg(format!(
                "for i in $(seq {}); do sleep 3600 & done; wait",
                n - 1
            ));
            c
        };
        cmd.process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        let root = cmd.spawn().expect("spawn tree root");
        let pgid = i32::try_from(root.id()).expect("pid fits i32");
        let slot = PGIDS
            .iter()
            .position(|s| {
                s.compare_exchange(0, pgid, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok()
            })
            .expect("free pgid slot");
        let tree = Tree { root, pgid, slot };
        // Wait until every child has exec'd `sleep`.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let sleeping = count_sleeps_in_group(pgid);
            if (n <= 1 && sleeping == 1) || (n > 1 && sleeping == n - 1) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "tree of {n}: only {sleeping} sleeps after 60 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        tree
    }

    fn root_pid(&self) -> i32 {
        self.pgid
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        if PGIDS[self.slot]
            .compare_exchange(self.pgid, 0, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            // SAFETY: plain syscall.
            unsafe {
                libc::killpg(self.pgid, libc::SIGKILL);
            }
        }
        let _ = self.root.wait();
        // We are the children's subreaper: reap the orphaned sleeps of this group.
        loop {
            // SAFETY: plain syscall; a null status pointer is allowed.
            let r = unsafe { libc::waitpid(-self.pgid, std::ptr::null_mut(), 0) };
            if r <= 0 {
                break;
            }
        }
    }
}

/// Processes of group `pgid` whose command is `sleep` (field 5 of stat is the pgrp).
fn count_sleeps_in_group(pgid: i32) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir("/proc").expect("read /proc").flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (text.find('('), text.rfind(')')) else {
            continue;
        };
        let comm = &text[open + 1..close];
        let pgrp = text[close + 2..]
            .split(' ')
            .nth(2)
            .and_then(|s| s.parse::<i32>().ok());
        if comm == "sleep" && pgrp == Some(pgid) {
            n += 1;
        }
    }
    n
}

fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid out-pointer.
    let r = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(r, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn now_unix() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// One measured sample: thread CPU of the whole sample and the processes it covered.
#[derive(Clone, Copy)]
struct Cost {
    ns: u64,
    procs: usize,
}

impl Cost {
    fn us_per_proc(self) -> f64 {
        self.ns as f64 / 1e3 / self.procs.max(1) as f64
    }
}

/// Sleeps until the next tick, then times `f` (which returns the processes it read).
fn paced(samples: usize, pace: Duration, mut f: impl FnMut() -> usize) -> Vec<Cost> {
    let mut out = Vec::with_capacity(samples);
    let mut next = Instant::now();
    for _ in 0..samples {
        next += pace;
        if let Some(d) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
        let c0 = thread_cpu_ns();
        let procs = f();
        let c1 = thread_cpu_ns();
        out.push(Cost { ns: c1 - c0, procs });
    }
    out
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

/// Total CPU over total process-samples (amortises the occasional tree scan).
fn mean_us_per_proc(c: &[Cost]) -> f64 {
    c.iter().map(|c| c.ns).sum::<u64>() as f64
        / 1e3
        / c.iter().map(|c| c.procs.max(1)).sum::<usize>() as f64
}

fn median_us_per_proc(c: &[Cost]) -> f64 {
    median(c.iter().map(|c| c.us_per_proc()).collect())
}

// ---------------------------------------------------------------- the raw floor

struct RawProc {
    stat: File,
    statm: File,
    dir: OwnedFd,
}

fn raw_open(pids: &[i32]) -> Vec<RawProc> {
    pids.iter()
        .map(|pid| {
            let stat = File::open(format!("/proc/{pid}/stat")).expect("open /proc/PID/stat");
            let statm = File::open(format!("/proc/{pid}/statm")).expect("open /proc/PID/statm");
            let path = std::ffi::CString::new(format!("/proc/{pid}")).expect("no NUL");
            // SAFETY: valid C string; the returned fd is owned below.
            let fd = unsafe {
                libc::open(
                    path.as_ptr(),
                    libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
                )
            };
            assert!(fd >= 0, "open /proc/{pid}");
            // SAFETY: fd is a fresh, valid descriptor that nobody else owns.
            let dir = unsafe { OwnedFd::from_raw_fd(fd) };
            RawProc { stat, statm, dir }
        })
        .collect()
}

fn parse_u64(b: &[u8]) -> u64 {
    b.iter()
        .take_while(|c| c.is_ascii_digit())
        .fold(0u64, |a, c| a * 10 + u64::from(c - b'0'))
}

/// FD count from fstatat(/proc/PID, "fd"): st_size on Linux >= 6.2.
fn raw_fd_count(dir: &OwnedFd) -> u64 {
    // SAFETY: all-zero is a valid libc::stat.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: valid dirfd, C string and out-pointer.
    let r = unsafe { libc::fstatat(dir.as_raw_fd(), c"fd".as_ptr(), &mut st, 0) };
    if r == 0 { st.st_size as u64 } else { 0 }
}

/// Anonymous resident pages from a statm line (resident − shared).
fn raw_anon_pages(p: &RawProc, buf: &mut [u8]) -> u64 {
    let Ok(len) = p.statm.read_at(buf, 0) else {
        return 0;
    };
    let mut it = buf[..len].split(|&c| c == b' ');
    let _size = it.next();
    let resident = it.next().map_or(0, parse_u64);
    let shared = it.next().map_or(0, parse_u64);
    resident.saturating_sub(shared)
}

/// One raw sample of all processes: returns how many were read; sums go to `sink`.
fn raw_sample(procs: &[RawProc], buf: &mut [u8], page: u64, sink: &mut [u64; 4]) -> usize {
    let mut n = 0;
    for p in procs {
        let Ok(len) = p.stat.read_at(buf, 0) else {
            continue;
        };
        let line = &buf[..len];
        let Some(close) = line.iter().rposition(|&c| c == b')') else {
            continue;
        };
        // After ") " comes field 3 (state); field k is token k - 3.
        let mut threads = 0;
        let mut rss = 0;
        for (i, tok) in line[close + 2..].split(|&c| c == b' ').enumerate() {
            match i + 3 {
                20 => threads = parse_u64(tok),
                24 => {
                    rss = parse_u64(tok);
                    break;
                }
                _ => {}
            }
        }
        sink[0] += rss * page;
        sink[1] += threads;
        sink[2] += raw_fd_count(&p.dir);
        sink[3] += raw_anon_pages(p, buf) * page;
        n += 1;
    }
    n
}

/// Median thread-CPU µs of one pread of /proc/PID/FILE through a held fd, over `pids` × 50.
fn per_read_us(pids: &[i32], file: &str, buf: &mut Vec<u8>) -> f64 {
    buf.resize(4096, 0);
    let files: Vec<File> = pids
        .iter()
        .map(|p| File::open(format!("/proc/{p}/{file}")).expect("open"))
        .collect();
    let mut per = Vec::new();
    for _ in 0..50 {
        let c0 = thread_cpu_ns();
        for f in &files {
            let n = f.read_at(buf, 0).unwrap_or(0);
            std::hint::black_box(&buf[..n]);
        }
        per.push((thread_cpu_ns() - c0) as f64 / 1e3 / files.len() as f64);
    }
    buf.resize(1024, 0);
    median(per)
}

// ---------------------------------------------------------------- psrecord

/// Mirrors psrecord 1.4's `monitor()` loop body with `--include-children --log FILE`
/// (psrecord/main.py): `pr.status()` and its zombie check, `get_percent(pr)` =
/// `cpu_percent()`, `get_memory(pr)` = `memory_info()`, then `all_children(pr)` =
/// `pr.children(recursive=True)` merged into psrecord's global list with its `child not in
/// children` test, and for each child `cpu_percent()` + `memory_info()` inside try/except,
/// then one formatted log line written and flushed (to /dev/null here). The helpers are
/// imported from psrecord itself, so its own code runs. psrecord sleeps the full interval after
/// each sample, as here. The first sample (priming cpu_percent and building the child list,
/// like our attach) is not reported.
const PSRECORD_SCRIPT: &str = r#"
import importlib, os, sys, time
import psutil
m = importlib.import_module("psrecord.main")  # the package re-exports main() over the module name
pid, n, interval = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
pr = psutil.Process(pid)
f = open(os.devnull, "w")
start_time = time.time()
for i in range(n + 1):
    t0 = time.thread_time()
    elapsed_time = time.time() - start_time
    pr_status = pr.status()
    if pr_status in [psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD]:
        break
    current_cpu = m.get_percent(pr)
    current_mem = m.get_memory(pr)
    current_mem_real = current_mem.rss / 1024.0**2
    current_mem_virtual = current_mem.vms / 1024.0**2
    n_proc = 1
    for child in m.all_children(pr):
        try:
            current_cpu += m.get_percent(child)
            current_mem = m.get_memory(child)
            current_mem_real += current_mem.rss / 1024.0**2
            current_mem_virtual += current_mem.vms / 1024.0**2
            n_proc += 1
        except Exception:
            continue
    f.write(f"{elapsed_time:12.3f} {current_cpu:12.3f} {current_mem_real:12.3f} {current_mem_virtual:12.3f}")
    f.write("\n")
    f.flush()
    dt = time.thread_time() - t0
    if i > 0:
        print(n_proc, dt * 1e6 / n_proc, flush=True)
    time.sleep(interval)
"#;

fn python_has_psrecord() -> bool {
    Command::new("python3")
        .args(["-c", "import psrecord, psutil"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// psrecord availability: importable, or installable once with pip; else a note why not.
fn psrecord_ready() -> Result<(), String> {
    if python_has_psrecord() {
        return Ok(());
    }
    let pip = Command::new("python3")
        .args(["-m", "pip", "install", "-q", "psrecord", "psutil"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if python_has_psrecord() {
        Ok(())
    } else {
        Err(format!(
            "psrecord skipped: python3 cannot import psrecord/psutil and `pip install psrecord psutil` failed ({})",
            match pip {
                Ok(s) => s.to_string(),
                Err(e) => e.to_string(),
            }
        ))
    }
}

/// Runs the psrecord mirror over `root`; median µs per process-sample and processes seen.
fn run_psrecord(root: i32) -> Result<(f64, usize), String> {
    let out = Command::new("python3")
        .arg("-c")
        .arg(PSRECORD_SCRIPT)
        .arg(root.to_string())
        .arg(PSRECORD_SAMPLES.to_string())
        .arg("1.0")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("psrecord run failed: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "psrecord run failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let mut us = Vec::new();
    let mut procs = 0;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let mut it = line.split_whitespace();
        if let (Some(n), Some(v)) = (it.next(), it.next()) {
            procs = n.parse().unwrap_or(procs);
            if let Ok(v) = v.parse::<f64>() {
                us.push(v);
            }
        }
    }
    if us.is_empty() {
        return Err("psrecord run printed no samples".into());
    }
    Ok((median(us), procs))
}

// ---------------------------------------------------------------- main

struct Row {
    tree: usize,
    pace: Duration,
    ours: f64,
    ours_median: f64,
    scan: f64,
    floor: f64,
    floor_median: f64,
    detail: Option<f64>,
    psrecord: Option<f64>,
}

fn fmt_opt(v: Option<f64>, w: usize) -> String {
    match v {
        Some(v) => format!("{v:>w$.2}"),
        None => format!("{:>w$}", "-"),
    }
}

fn main() {
    install_signal_cleanup();
    // Orphaned sleeps (their sh is killed first) come back to us to be reaped, not to a PID 1
    // that may not reap.
    nix::sys::prctl::set_child_subreaper(true).expect("become child subreaper");
    let page = procfs::page_size();
    let psrecord = psrecord_ready();
    let mut notes: Vec<String> = Vec::new();
    if let Err(e) = &psrecord {
        notes.push(e.clone());
    }
    let mut rows: Vec<Row> = Vec::new();
    let mut share_1000_1s = None;
    let mut sink = [0u64; 4];
    let mut private_costs: Option<(f64, f64)> = None;
    let started = Instant::now();

    for &n in &SIZES {
        eprintln!("tree of {n}: starting processes…");
        let tree = Tree::spawn(n);
        let root = tree.root_pid();
        let mut target = Target::attach(root, true, None).expect("attach to the tree root");
        let pids = target.pids();
        assert_eq!(pids.len(), n, "leak-sentinel sees the whole tree");
        let raw = raw_open(&pids);
        let mut buf = vec![0u8; 1024];

        if n == SIZES[1] {
            // How to read private memory on every sample: statm (resident − shared, swap from
            // the detail path) or status (RssAnon + VmSwap)? Thread-CPU per process-read.
            let statm_us = per_read_us(&pids, "statm", &mut buf);
            let status_us = per_read_us(&pids, "status", &mut buf);
            private_costs = Some((statm_us, status_us));
        }
        if n == SIZES[0] {
            // Does st_size of /proc/PID/fd give the FD count on this kernel?
            let by_size = raw_fd_count(&raw[0].dir);
            let by_walk = std::fs::read_dir(format!("/proc/{root}/fd"))
                .map(|d| d.count() as u64)
                .unwrap_or(0);
            notes.push(format!(
                "fstat(/proc/PID/fd).st_size = {by_size}, directory walk = {by_walk} on kernel {}: {}",
                std::fs::read_to_string("/proc/sys/kernel/osrelease")
                    .unwrap_or_default()
                    .trim(),
                if by_size > 0 && by_size == by_walk {
                    "st_size is the FD count (fast path works)"
                } else {
                    "st_size is NOT the FD count (procfs falls back to a directory walk)"
                }
            ));
        }

        for &(pace, samples) in &PACES {
            eprintln!("tree of {n}, pace {pace:?}: leak-sentinel, then raw floor…");
            let mut scan_ns = Vec::with_capacity(samples);
            // As the runner does: every sample walks the children files (inside `sample`); /proc
            // is listed every TREE_FULL_SCAN while that works, every TREE_REFRESH otherwise.
            let mut last_refresh: Option<Instant> = None;
            let ours = paced(samples, pace, || {
                let c0 = thread_cpu_ns();
                let every = if target.walks_children() {
                    TREE_FULL_SCAN
                } else {
                    TREE_REFRESH
                };
                if last_refresh.is_none_or(|t| t.elapsed() >= every.max(pace)) {
                    target.refresh_tree();
                    last_refresh = Some(Instant::now());
                }
                scan_ns.push(thread_cpu_ns() - c0);
                let (s, err) = target.sample(now_unix(), false);
                if let Some(e) = err {
                    panic!("sample error: {e}");
                }
                std::hint::black_box(&s);
                s.get(Metric::Processes).unwrap_or(0.0) as usize
            });
            let floor = paced(samples, pace, || {
                raw_sample(&raw, &mut buf, page, &mut sink)
            });
            for c in ours.iter().chain(&floor) {
                assert_eq!(c.procs, n, "a sample covered the whole tree");
            }
            // Amortised over the samples: the scan runs on some samples only.
            let scan = scan_ns.iter().sum::<u64>() as f64
                / 1e3
                / ours.iter().map(|c| c.procs.max(1)).sum::<usize>() as f64;
            let slow = pace >= Duration::from_secs(1);
            let detail = slow.then(|| {
                eprintln!("tree of {n}, pace {pace:?}: detail path…");
                let d = paced(DETAIL_SAMPLES, pace, || {
                    // As a detail sample of the runner: smaps_rollup plus the FD inventory.
                    let (s, _) = target.sample(now_unix(), true);
                    std::hint::black_box(&s);
                    std::hint::black_box(target.inventory());
                    s.get(Metric::Processes).unwrap_or(0.0) as usize
                });
                median_us_per_proc(&d)
            });
            if n == 1000 && slow {
                let per_sample_us =
                    ours.iter().map(|c| c.ns as f64 / 1e3).sum::<f64>() / ours.len().max(1) as f64;
                share_1000_1s = Some(per_sample_us / pace.as_secs_f64() / 1e6 * 100.0);
            }
            let psr = if n == PSRECORD_TREE && slow && psrecord.is_ok() {
                eprintln!("tree of {n}, pace {pace:?}: psrecord…");
                match run_psrecord(root) {
                    Ok((us, seen)) => {
                        if seen != n {
                            notes.push(format!("psrecord saw {seen} processes, not {n}"));
                        }
                        Some(us)
                    }
                    Err(e) => {
                        notes.push(e);
                        None
                    }
                }
            } else {
                None
            };
            rows.push(Row {
                tree: n,
                pace,
                ours: mean_us_per_proc(&ours),
                ours_median: median_us_per_proc(&ours),
                scan,
                floor: mean_us_per_proc(&floor),
                floor_median: median_us_per_proc(&floor),
                detail,
                psrecord: psr,
            });
        }
        drop(target);
        drop(tree);
    }
    std::hint::black_box(sink);

    println!();
    println!(
        "Thread-CPU µs per process-sample ({} samples at 0.1 s, {} at 1 s, {DETAIL_SAMPLES} detail; psrecord at 1 s over the {PSRECORD_TREE}-process tree)",
        PACES[0].1, PACES[1].1
    );
    println!(
        "{:>5} {:>5} {:>14} {:>10} {:>10} {:>7} {:>12} {:>10} {:>10} {:>8}",
        "tree",
        "pace",
        "leak-sentinel",
        "(of which",
        "raw floor",
        "ratio",
        "median ls/",
        "detail",
        "psrecord",
        "ratio"
    );
    println!(
        "{:>5} {:>5} {:>14} {:>10} {:>10} {:>7} {:>12} {:>10} {:>10} {:>8}",
        "", "", "µs", "scan) µs", "µs", "ls/raw", "raw µs", "µs", "µs", "psr/ls"
    );
    for r in &rows {
        println!(
            "{:>5} {:>4}s {:>14.2} {:>10.2} {:>10.2} {:>7.2} {:>12} {} {} {}",
            r.tree,
            r.pace.as_secs_f64(),
            r.ours,
            r.scan,
            r.floor,
            r.ours / r.floor,
            format!("{:.1}/{:.1}", r.ours_median, r.floor_median),
            fmt_opt(r.detail, 10),
            fmt_opt(r.psrecord, 10),
            fmt_opt(r.psrecord.map(|p| p / r.ours), 8),
        );
    }
    println!();
    if let Some((statm, status)) = private_costs {
        println!(
            "private memory per process-read (100-process tree, pread through a held fd): statm {statm:.2} µs, status {status:.2} µs ({:.1}× statm) — the sampler reads statm",
            status / statm
        );
    }
    if let Some(p) = share_1000_1s {
        println!(
            "CPU share of one core, 1,000-process tree sampled every 1 s (cheap path): {p:.3} %"
        );
    }
    println!(
        "scan = Target::refresh_tree (lists /proc every 30 s while the children files are walked at every sample inside Target::sample, every 5 s otherwise, as the runner does; the raw floor knows its PIDs). leak-sentinel, scan and floor are means over all samples; median ls/raw are medians per sample; detail is a median."
    );
    for n in &notes {
        println!("note: {n}");
    }
    println!("total bench time: {:.0} s", started.elapsed().as_secs_f64());
}
