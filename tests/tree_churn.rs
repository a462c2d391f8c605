//! Exact membership under worker churn (issue 22 item 1): a tree whose workers live 3–10 s is
//! sampled every second, spawned and attached, while this test lists all of /proc on its own
//! and counts the processes descending from the tree's root. The sentinel's per-sample process
//! count must match that count within ±1 (the two look a moment apart) in ≥ 95 % of samples,
//! and no diagnosis finding may name what the short-lived workers inherited (a log file, a
//! pipe).

mod common;

use common::{WIDE_THRESHOLDS, assert_ran_to_its_end, bin, report_json, wait_for};
use leak_sentinel::probe::Metric;
use leak_sentinel::store::Store;
use std::collections::{HashMap, HashSet};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A parent that keeps 5 workers alive; each holds 8 MiB of private memory, inherits a log
/// file and a pipe, and exits after a random 3–10 s to be replaced. argv: PID file, log file.
const TREE: &str = r#"
import os, random, sys, time
pid_file, log_file = sys.argv[1], sys.argv[2]
log = open(log_file, "a")
r, w = os.pipe()
workers = set()
tmp = pid_file + ".tmp"
with open(tmp, "w") as f:
    f.write(str(os.getpid()))
os.rename(tmp, pid_file)
while True:
    while len(workers) < 5:
        pid = os.fork()
        if pid == 0:
            mem = bytearray(8 << 20)
            for i in range(0, len(mem), 4096):
                mem[i] = 1
            time.sleep(random.uniform(3, 10))
            os._exit(0)
        workers.add(pid)
    while workers:
        pid, _ = os.waitpid(-1, os.WNOHANG)
        if pid == 0:
            break
        workers.discard(pid)
    time.sleep(0.05)
"#;

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Parent PID and whether it is a zombie, from /proc/PID/stat (fields after the last ')').
fn ppid_and_zombie(pid: i32) -> Option<(i32, bool)> {
    let text = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
    let close = text.iter().rposition(|b| *b == b')')?;
    let rest = std::str::from_utf8(&text[close + 1..]).ok()?;
    let mut it = rest.split_ascii_whitespace();
    let state = it.next()?;
    let ppid = it.next()?.parse().ok()?;
    Some((ppid, state == "Z"))
}

/// One full listing of /proc: the live (not zombie) processes whose ancestry leads to `root`,
/// `root` included.
fn descendants(root: i32) -> Vec<i32> {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut parent: HashMap<i32, i32> = HashMap::new();
    let mut zombies = HashSet::new();
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if let Some((ppid, z)) = ppid_and_zombie(pid) {
            parent.insert(pid, ppid);
            if z {
                zombies.insert(pid);
            }
        }
    }
    parent
        .keys()
        .copied()
        .filter(|p| !zombies.contains(p))
        .filter(|&p| {
            let mut cur = p;
            // Bounded walk up: a loop cannot exist in a real tree, but the listing is not atomic.
            for _ in 0..64 {
                if cur == root {
                    return true;
                }
                match parent.get(&cur) {
                    Some(&pp) if pp > 0 => cur = pp,
                    _ => return false,
                }
            }
            false
        })
        .collect()
}

/// What the scanner saw: (Unix time, processes in the tree) per listing, and every worker PID.
type Seen = (Vec<(f64, usize)>, HashSet<i32>);

/// Lists /proc every 200 ms until stopped.
struct Scanner {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Seen>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Scanner {
    fn start(root: i32) -> Scanner {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new((Vec::new(), HashSet::new())));
        let (s, v) = (stop.clone(), seen.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                let t0 = unix_now();
                let tree = descendants(root);
                let t = (t0 + unix_now()) / 2.0;
                if let Ok(mut g) = v.lock() {
                    g.0.push((t, tree.len()));
                    g.1.extend(tree.into_iter().filter(|p| *p != root));
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        Scanner {
            stop,
            seen,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> Seen {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let g = self.seen.lock().expect("scanner lock");
        (g.0.clone(), g.1.clone())
    }
}

/// The tree's process group, killed when the test ends (attached case: the sentinel leaves it).
struct Group(Child);

impl Drop for Group {
    fn drop(&mut self) {
        // SAFETY: killpg with the group this test created; a plain syscall.
        unsafe {
            libc::killpg(self.0.id() as libc::pid_t, libc::SIGKILL);
        }
        let _ = self.0.wait();
    }
}

fn read_pid(path: &Path) -> i32 {
    wait_for("the tree's PID file", Duration::from_secs(20), || {
        path.is_file()
    });
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .expect("a PID in the PID file")
}

/// Runs the sentinel over the churning tree (spawned, or attached to one this test started)
/// and checks its per-sample counts and its diagnosis.
fn churn(attach: bool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let held = dir.path().join("inherited-by-workers");
    std::fs::create_dir(&held).expect("mkdir");
    let pid_file = dir.path().join("tree.pid");
    let log_file = held.join("app.log");
    let name = if attach { "churn-pid" } else { "churn-spawn" };
    let tree_cmd = [
        "python3".to_string(),
        "-c".into(),
        TREE.into(),
        pid_file.display().to_string(),
        log_file.display().to_string(),
    ];
    let _group = attach.then(|| {
        Group(
            Command::new(&tree_cmd[0])
                .args(&tree_cmd[1..])
                .process_group(0)
                .stdin(Stdio::null())
                .spawn()
                .expect("start the tree"),
        )
    });
    let root_if_attached = attach.then(|| read_pid(&pid_file));
    let mut cmd = Command::new(bin());
    cmd.arg("--state-dir").arg(&state).args([
        "run",
        "--name",
        name,
        "--plain",
        "--warmup",
        "5s",
        "--check-every",
        "5s",
        "--sample-every",
        "1s",
        "--detail-every",
        "2s",
        "--duration",
        "35s",
        "--timeout",
        "90s",
    ]);
    cmd.args(WIDE_THRESHOLDS);
    match root_if_attached {
        Some(pid) => {
            cmd.args(["--pid", &pid.to_string()]);
        }
        None => {
            cmd.arg("--").args(&tree_cmd);
        }
    }
    let run = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the sentinel");
    let root = root_if_attached.unwrap_or_else(|| read_pid(&pid_file));
    let scanner = Scanner::start(root);
    let out = run.wait_with_output().expect("the sentinel runs");
    let (scans, workers) = scanner.finish();
    let output = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_ran_to_its_end(&state, name, out.status.code(), &output);
    assert!(
        workers.len() >= 15,
        "only {} workers over the run: no churn to measure",
        workers.len()
    );

    let store = Store::open(&state).expect("store");
    let run = store.find_run(name).expect("query").expect("the run");
    let samples = store.samples(run.id).expect("samples");
    let (from, to) = (
        scans.first().map_or(f64::MAX, |s| s.0),
        scans.last().map_or(0.0, |s| s.0),
    );
    let mut matched = 0;
    let mut agree = 0;
    let mut exact = 0;
    let mut misses = Vec::new();
    for s in samples.iter().filter(|s| s.t >= from && s.t <= to) {
        let Some(count) = s.get(Metric::Processes) else {
            continue;
        };
        let Some(&(ts, independent)) = scans
            .iter()
            .min_by(|a, b| (a.0 - s.t).abs().total_cmp(&(b.0 - s.t).abs()))
        else {
            continue;
        };
        if (ts - s.t).abs() > 0.3 {
            continue; // no listing near enough this sample to compare with
        }
        matched += 1;
        if (count - independent as f64).abs() <= 1.0 {
            agree += 1;
            exact += usize::from(count == independent as f64);
        } else {
            misses.push(format!(
                "t {:.1}: sentinel {count}, /proc {independent}",
                s.t - from
            ));
        }
    }
    eprintln!(
        "{name}: {agree} of {matched} samples within ±1 of the /proc count ({exact} equal); {} workers; misses: {misses:?}",
        workers.len()
    );

    // The workers' inherited descriptors (the log file's directory, the pipe) are not findings.
    let r = report_json(&state, name);
    let d = &r["diagnosis"];
    let held_dir = held.display().to_string();
    let inherited: Vec<String> = d["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f.as_str())
        .filter(|t| t.contains(&held_dir) || t.contains("pipe"))
        .map(str::to_string)
        .chain(
            d["fd_groups"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|g| g.to_string())
                .filter(|t| t.contains(&held_dir) || t.contains("pipe:[")),
        )
        .collect();
    // Both checks are reported together: one failing must not hide the other.
    assert!(
        matched >= 25 && agree as f64 >= 0.95 * matched as f64 && inherited.is_empty(),
        "{name}: {agree} of {matched} samples within ±1 of the /proc count (≥ 95 % of ≥ 25 \
         wanted): {misses:?}; findings or FD groups naming what workers inherited: {inherited:?}"
    );
}

#[test]
#[cfg_attr(
    not(feature = "live"),
    ignore = "live tier: cargo test --features live"
)]
fn spawned_tree_membership_is_exact_under_churn() {
    churn(false);
}

#[test]
#[cfg_attr(
    not(feature = "live"),
    ignore = "live tier: cargo test --features live"
)]
fn attached_tree_membership_is_exact_under_churn() {
    churn(true);
}

/// The clean churning tree passes (issue 22): the same tree, spawned, judged for 10 minutes
/// after a 1-minute warm-up at the default memory threshold (0.1 MiB/min). Sampled every 250 ms,
/// so that each of the detector's time blocks holds several samples and the moments a worker is
/// being replaced (about one sample in 20: a worker gone, or not yet touched its memory) do not
/// move the blocks' medians; FD inventories every 2 s, so that the descriptors that survive the
/// churn gate the FDs. Counts get 0.5/min: a count that stays flat for 10 minutes bounds its
/// growth only to about one unit per 10 minutes (0.1/min, the default), and a verdict on that
/// edge flips between checks. Runs beside the rest of the suite in `.ci/run` (it nearly only
/// waits).
#[test]
#[cfg_attr(
    not(feature = "live"),
    ignore = "live tier: cargo test --features live"
)]
fn a_clean_churning_tree_passes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let pid_file = dir.path().join("tree.pid");
    let log_file = dir.path().join("app.log");
    let out = Command::new(bin())
        .arg("--state-dir")
        .arg(&state)
        .args([
            "run",
            "--name",
            "churn-clean",
            "--plain",
            "--warmup",
            "60s",
            "--check-every",
            "30s",
            "--sample-every",
            "250ms",
            "--detail-every",
            "2s",
            "--duration",
            "10m",
            "--fd-threshold",
            "0.5",
            "--thread-threshold",
            "0.5",
            "--timeout",
            "15m",
            "--",
            "python3",
            "-c",
            TREE,
        ])
        .arg(&pid_file)
        .arg(&log_file)
        .output()
        .expect("the sentinel runs");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let r = report_json(&state, "churn-clean");
    let fd_gate = r["fd_gate"]["metric"].as_str().unwrap_or("fds");
    for m in ["rss_anon_bytes", "threads", fd_gate] {
        let j = &r["metrics"][m];
        println!(
            "{m}: {} {} /min, interval [{}, {}]",
            j["verdict"], j["slope_per_min"], j["ci_low"], j["ci_high"]
        );
    }
    assert_eq!(
        out.status.code(),
        Some(0),
        "the clean churning tree passes: {text}"
    );
    assert_eq!(fd_gate, "fds_surviving", "survivors gate the FDs: {text}");
}
