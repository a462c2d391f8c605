//! `leak-sentinel analyze` end to end: the contract JSON, exit codes, and one-line errors; and
//! peers' recordings made by the real tools (psrecord's plain and CSV logs, procpath's SQLite
//! recording and its CSV export through sqlite3) of the built-in leaky and clean workloads.

mod common;

use assert_cmd::Command;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;

fn bin() -> Command {
    Command::cargo_bin("leak-sentinel").expect("binary built")
}

fn trace(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/traces")
        .join(name)
        .display()
        .to_string()
}

fn csv(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::Builder::new()
        .suffix(".csv")
        .tempfile()
        .expect("temp file");
    f.write_all(text.as_bytes()).expect("write");
    f
}

#[test]
fn json_contract_on_a_leak() {
    let out = bin()
        .args(["analyze", &trace("d4_c_malloc_leak.csv"), "--json"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["verdict"], "leak");
    let rss = &v["metrics"]["rss_bytes"];
    assert_eq!(rss["verdict"], "leak");
    assert_eq!(rss["unit"], "MiB/min");
    assert_eq!(rss["threshold_per_min"], 0.1);
    let slope = rss["slope_per_min"].as_f64().expect("number");
    assert!((slope - 1.875).abs() < 0.05, "slope {slope}");
    assert!(rss["ci_low"].as_f64().expect("number") <= slope);
    assert!(rss["ci_high"].as_f64().expect("number") >= slope);
    assert_eq!(v["metrics"]["fds"]["verdict"], "clean");
    assert_eq!(v["metrics"]["fds"]["unit"], "FD/min");
}

#[test]
fn clean_trace_exits_zero_and_prints_a_table() {
    let out = bin()
        .args(["analyze", &trace("d7_python_thread_pool_warmup.csv")])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("overall: clean"), "{text}");
    assert!(text.contains("proven growth ≤"), "{text}");
}

#[test]
fn thresholds_are_honoured() {
    // 1.875 MiB/min is within a 2 MiB/min threshold (as 2048KiB/min).
    let out = bin()
        .args([
            "analyze",
            &trace("d4_c_malloc_leak.csv"),
            "--json",
            "--memory-threshold",
            "2048KiB/min",
        ])
        .output()
        .expect("runs");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_ne!(v["metrics"]["rss_bytes"]["verdict"], "leak");
    assert!(
        (v["metrics"]["rss_bytes"]["threshold_per_min"]
            .as_f64()
            .expect("number")
            - 2.0)
            .abs()
            < 1e-9
    );
}

#[test]
fn short_series_is_inconclusive_exit_3() {
    let mut text = String::from("t_seconds,rss_bytes\n");
    for i in 0..8 {
        text.push_str(&format!("{i},{}\n", 1_000_000 + i * 1000));
    }
    let f = csv(&text);
    let out = bin()
        .args(["analyze", &f.path().display().to_string(), "--json"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(3));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["verdict"], "inconclusive");
}

#[test]
fn timestamps_in_rfc3339_and_unix() {
    let mut rfc = String::from("timestamp,fds\n");
    let mut unix = String::from("timestamp,fds\n");
    for i in 0..600 {
        let fds = 10 + i / 10;
        rfc.push_str(&format!(
            "2026-11-25T10:{:02}:{:02}Z,{fds}\n",
            i / 60,
            i % 60
        ));
        unix.push_str(&format!("{},{fds}\n", 1_790_000_000 + i));
    }
    for text in [rfc, unix] {
        let f = csv(&text);
        let out = bin()
            .args(["analyze", &f.path().display().to_string(), "--json"])
            .output()
            .expect("runs");
        assert_eq!(
            out.status.code(),
            Some(1),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        assert!(
            (v["metrics"]["fds"]["slope_per_min"]
                .as_f64()
                .expect("number")
                - 6.0)
                .abs()
                < 0.1
        );
    }
}

fn bad(text: &str, needle: &str) {
    let f = csv(text);
    let out = bin()
        .args(["analyze", &f.path().display().to_string()])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(err.contains(needle), "{needle:?} not in {err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn bad_csv_gets_one_line_naming_line_and_column() {
    bad("", "missing header");
    bad("1,2\n3,4\n", "no time column");
    bad("rss_bytes,fds\n1,2\n", "no time column");
    bad(
        "t_seconds,rss_bytes\n0,1\n1,2\n2,abc\n3,4\n4,5\n5,6\n",
        "line 4, column 'rss_bytes': 'abc' is not a number",
    );
    bad(
        "t_seconds,rss_bytes\n0,1\n2,2\n1,3\n3,4\n4,5\n",
        "line 4: timestamp '1' goes backwards",
    );
    bad(
        "t_seconds,rss_bytes\n0,1\n1,2\n1,3\n3,4\n4,5\n",
        "line 4: duplicate timestamp",
    );
    bad("t_seconds,rss_bytes\n0,1\n1,2\n", "2 data rows; at least 5");
    bad(
        "timestamp,fds\nyesterday,1\n",
        "line 2, column 'timestamp': 'yesterday' is not a time",
    );
}

#[test]
fn bad_flags_get_one_line_and_exit_2() {
    for args in [
        vec!["analyze", "x.csv", "--memory-threshold", "lots"],
        vec!["analyze", "x.csv", "--warmup", "forever"],
        vec!["analyze", "/nonexistent/file.csv"],
        vec!["analyze", "x.csv", "--bogus"],
    ] {
        let out = bin().args(&args).output().expect("runs");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
    }
}

#[test]
fn a_csv_with_only_empty_cells_is_bad_input() {
    bad(
        "t_seconds,rss_bytes\n0,\n1,\n2,\n3,\n4,\n5,\n",
        "every metric cell is empty",
    );
}

/// A leaky or clean workload recorded at once by psrecord (plain and CSV logs) and procpath
/// (SQLite, exported to CSV with sqlite3 as procpath's README does): the four files.
fn record_with_peers(dir: &Path, workload: &[&str], procfiles: Option<&str>) -> [PathBuf; 4] {
    const SECS: u32 = 12;
    let target = common::Kill(
        std::process::Command::new(common::bin())
            .arg("workload")
            .args(workload)
            .args(["--seconds", &(SECS + 3).to_string()])
            .stdout(Stdio::null())
            .spawn()
            .expect("workload starts"),
    );
    let pid = target.0.id().to_string();
    let files = [
        dir.join("psrecord.log"),
        dir.join("psrecord.csv"),
        dir.join("procpath.sqlite"),
        dir.join("procpath.csv"),
    ];
    let quiet = |c: &mut std::process::Command| {
        c.stdout(Stdio::null()).stderr(Stdio::null());
    };
    let mut plain = std::process::Command::new("psrecord");
    plain.arg(&pid).arg("--log").arg(&files[0]);
    let mut csv_log = std::process::Command::new("psrecord");
    csv_log
        .arg(&pid)
        .arg("--log")
        .arg(&files[1])
        .args(["--log-format", "csv"]);
    for c in [&mut plain, &mut csv_log] {
        c.args(["--interval", "0.2", "--duration", &SECS.to_string()]);
        quiet(c);
    }
    let mut pp = std::process::Command::new("procpath");
    pp.args(["record", "-i", "0.25", "-r", &(SECS * 4).to_string(), "-d"])
        .arg(&files[2]);
    if let Some(f) = procfiles {
        pp.args(["-f", f]);
    }
    // The target and its subtree, as procpath's README records a process.
    pp.arg(format!("$..children[?(@.stat.pid == {pid})]"));
    quiet(&mut pp);
    let recorders: Vec<std::process::Child> = [plain, csv_log, pp]
        .iter_mut()
        .map(|c| {
            c.spawn()
                .expect("psrecord and procpath are installed (.ci/run installs them with pip)")
        })
        .collect();
    for mut r in recorders {
        assert!(r.wait().expect("recorder").success());
    }
    drop(target);
    let export = std::process::Command::new("sqlite3")
        .args(["-csv", "-header"])
        .arg(&files[2])
        .arg("SELECT * FROM record")
        .output()
        .expect("sqlite3 is installed (.ci/run)");
    assert!(export.status.success());
    std::fs::write(&files[3], export.stdout).expect("write csv");
    files
}

fn analyze_json(file: &Path) -> (Option<i32>, serde_json::Value) {
    let out = bin()
        .arg("analyze")
        .arg(file)
        .arg("--json")
        .output()
        .expect("runs");
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "{}: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code(), v)
}

const FORMATS: [&str; 4] = [
    "psrecord",
    "psrecord-csv",
    "procpath-sqlite",
    "procpath-csv",
];

#[test]
#[cfg_attr(
    not(feature = "live"),
    ignore = "live tier: cargo test --features live"
)]
fn real_psrecord_and_procpath_recordings_of_a_leak_are_leaks() {
    let dir = tempfile::tempdir().expect("tempdir");
    // 120 MiB/min and 60 FD/min; procpath records status (private memory) and fd too.
    let files = record_with_peers(
        dir.path(),
        &["leaky", "--mib-per-min", "120", "--fds-per-min", "60"],
        Some("stat,status,fd"),
    );
    let mut rss_rates = Vec::new();
    for (file, format) in files.iter().zip(FORMATS) {
        let (code, v) = analyze_json(file);
        assert_eq!(code, Some(1), "{format}: {v}");
        assert_eq!(v["verdict"], "leak", "{format}");
        assert_eq!(v["input_format"], format);
        let memory_gate = v["gate"][0].as_str().expect("a memory gate");
        assert_eq!(v["metrics"][memory_gate]["verdict"], "leak", "{format}");
        assert_eq!(v["metrics"][memory_gate]["unit"], "MiB/min");
        rss_rates.push(
            v["metrics"]["rss_bytes"]["slope_per_min"]
                .as_f64()
                .expect("rss rate"),
        );
        if format.starts_with("procpath") {
            // Private memory gates when recorded, and the leaked sockets are seen.
            assert_eq!(memory_gate, "rss_anon_bytes");
            assert_eq!(v["metrics"]["fds"]["verdict"], "leak", "{v}");
            assert_eq!(v["metrics"]["fds_socket"]["verdict"], "leak");
        } else {
            assert_eq!(v["gate"], serde_json::json!(["rss_bytes"]));
            assert_eq!(v["metrics"]["cpu_percent"]["gate"], false);
        }
    }
    // The same process's RSS growth, read from four files in three units (psrecord's "MB",
    // procpath's pages): the rates agree. psrecord's MB read as 10^6 bytes would be 4.6 % off.
    let (lo, hi) = rss_rates
        .iter()
        .fold((f64::MAX, f64::MIN), |(l, h), r| (l.min(*r), h.max(*r)));
    eprintln!(
        "rss_bytes rates (MiB/min) psrecord, psrecord-csv, procpath-sqlite, procpath-csv: {rss_rates:?}"
    );
    assert!(hi / lo < 1.03, "rss rates disagree: {rss_rates:?}");
    assert!(lo > 90.0 && hi < 130.0, "{rss_rates:?}");
    // The table names the format too.
    let out = bin().arg("analyze").arg(&files[0]).output().expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("input: psrecord ("), "{text}");
    assert!(text.contains("decided by rss_bytes"), "{text}");
}

#[test]
#[cfg_attr(
    not(feature = "live"),
    ignore = "live tier: cargo test --features live"
)]
fn real_psrecord_and_procpath_recordings_of_a_clean_program_are_not_leaks() {
    let dir = tempfile::tempdir().expect("tempdir");
    // procpath's default procfiles (stat, cmdline): RSS in pages gates memory.
    let files = record_with_peers(dir.path(), &["clean"], None);
    let before = std::fs::read(&files[2]).expect("sqlite bytes");
    for (file, format) in files.iter().zip(FORMATS) {
        let (code, v) = analyze_json(file);
        assert_eq!(v["input_format"], format);
        assert_ne!(v["verdict"], "leak", "{format}: {v}");
        assert!(matches!(code, Some(0 | 3)), "{format}: exit {code:?}");
        if format.starts_with("procpath") {
            assert_eq!(v["gate"], serde_json::json!(["rss_bytes", "threads"]));
        }
    }
    // Read-only: the recording is untouched and no journal is left beside it.
    assert_eq!(std::fs::read(&files[2]).expect("sqlite bytes"), before);
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .expect("dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("-wal") || n.contains("-shm") || n.contains("-journal"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn bad_peer_recordings_get_one_line_and_exit_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases: Vec<(PathBuf, &str)> = {
        let p = |name: &str, body: &[u8]| {
            let f = dir.path().join(name);
            std::fs::write(&f, body).expect("write");
            f
        };
        // A SQLite database that is not a procpath recording.
        let other = dir.path().join("other.sqlite");
        rusqlite::Connection::open(&other)
            .and_then(|c| c.execute_batch("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1);"))
            .expect("sqlite");
        // A view named like procpath's table is not read (it could recurse for ever).
        let view = dir.path().join("view.sqlite");
        rusqlite::Connection::open(&view)
            .and_then(|c| {
                c.execute_batch(
                    "CREATE VIEW record AS WITH RECURSIVE n(ts) AS (SELECT 1 UNION ALL SELECT ts + 1 FROM n) SELECT ts, ts AS stat_rss FROM n;",
                )
            })
            .expect("sqlite");
        // A sparse file beyond the size limit costs no disk.
        let huge = dir.path().join("huge.csv");
        std::fs::File::create(&huge)
            .and_then(|f| f.set_len(leak_sentinel::analyze::MAX_FILE_BYTES + 1))
            .expect("sparse");
        vec![
            (
                p(
                    "short.log",
                    b"# Elapsed time   CPU (%)   Real (MB)   Virtual (MB)\n 0.0 1 2\n",
                ),
                "line 2: 3 fields; psrecord's header has 4",
            ),
            (
                p("pp.csv", b"ts,stat_pid,stat_rss\n1,2,x\n"),
                "line 2, column 'stat_rss': 'x' is not a number",
            ),
            (other, "without procpath's 'record' table"),
            (view, "without procpath's 'record' table"),
            (huge, "analyze reads at most 512 MiB"),
            (PathBuf::from("/dev/zero"), "line 1 is longer than"),
            (dir.path().to_path_buf(), "is a directory"),
        ]
    };
    for (file, needle) in cases {
        let out = bin().arg("analyze").arg(&file).output().expect("runs");
        assert_eq!(out.status.code(), Some(2), "{}", file.display());
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        assert!(err.contains(needle), "{needle:?} not in {err}");
    }
}

#[test]
fn procpath_database_page_size_comes_from_its_meta_table() {
    // A recording made on a machine with 16 KiB pages, read here.
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("arm.sqlite");
    let c = rusqlite::Connection::open(&db).expect("sqlite");
    c.execute_batch(
        "CREATE TABLE record (record_id INTEGER PRIMARY KEY, ts REAL NOT NULL, stat_pid INTEGER,
                              stat_rss INTEGER, stat_num_threads INTEGER, cmdline TEXT);
         CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL);
         INSERT INTO meta VALUES ('page_size', '16384');",
    )
    .expect("schema");
    for i in 0..120 {
        for (pid, rss) in [(1, 1000 + i * 64), (2, 100)] {
            c.execute(
                "INSERT INTO record (ts, stat_pid, stat_rss, stat_num_threads, cmdline) VALUES (?1, ?2, ?3, 2, 'x')",
                rusqlite::params![1_790_000_000.0 + f64::from(i) * 5.0, pid, rss],
            )
            .expect("row");
        }
    }
    drop(c);
    let (code, v) = analyze_json(&db);
    assert_eq!(code, Some(1), "{v}");
    assert_eq!(v["input_format"], "procpath-sqlite");
    // 64 pages of 16 KiB every 5 s = 1 MiB per 5 s = 12 MiB/min.
    let rate = v["metrics"]["rss_bytes"]["slope_per_min"]
        .as_f64()
        .expect("rate");
    assert!((rate - 12.0).abs() < 1e-6, "{rate}");
    let last = v["metrics"]["rss_bytes"]["last_value"]
        .as_f64()
        .expect("last");
    assert!((last - f64::from(1000 + 119 * 64 + 100) * 16384.0 / 1_048_576.0).abs() < 1e-6);
    assert_eq!(v["metrics"]["threads"]["last_value"], 4.0);
    assert_eq!(v["metrics"]["processes"]["last_value"], 2.0);
}

#[test]
fn unit_suffixed_columns_are_memory_in_the_contract_json() {
    let mut text = String::from("t_seconds,heap_mb,cache_kib,queue_len\n");
    for i in 0..300 {
        // heap: +1 MB (MiB) per minute; cache: flat; queue: growing but not a gate.
        text.push_str(&format!(
            "{},{},{},{}\n",
            i * 5,
            100.0 + f64::from(i) * 5.0 / 60.0,
            2048,
            i
        ));
    }
    let f = csv(&text);
    let (code, v) = analyze_json(f.path());
    assert_eq!(code, Some(1), "{v}");
    assert_eq!(v["input_format"], "csv");
    assert_eq!(v["gate"], serde_json::json!(["heap_mb"]));
    assert_eq!(v["metrics"]["heap_mb"]["unit"], "MiB/min");
    assert_eq!(v["metrics"]["heap_mb"]["kind"], "memory");
    let rate = v["metrics"]["heap_mb"]["slope_per_min"]
        .as_f64()
        .expect("rate");
    assert!((rate - 1.0).abs() < 1e-6, "{rate}");
    assert_eq!(v["metrics"]["cache_kib"]["last_value"], 2.0);
    assert_eq!(v["metrics"]["queue_len"]["gate"], false);
}

#[test]
fn as_run_replays_the_checks_and_ends_the_run() {
    // d2 leaks 1 MiB/min: the replayed run fails, at a check after the minimum judged span.
    let out = bin()
        .args([
            "analyze",
            &trace("d2_python_leak_1mib_per_min.csv"),
            "--as-run",
            "--json",
            "--warmup",
            "300s",
            "--check-every",
            "60s",
            "--duration",
            "1200s",
        ])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let checks = v["checks"].as_array().expect("checks");
    assert!(!checks.is_empty());
    assert_eq!(checks[0]["t_s"], 360.0);
    assert_eq!(checks[0]["failed"], false);
    assert_eq!(checks[0]["metrics"]["rss_bytes"], "inconclusive");
    let last = checks.last().expect("a last check");
    assert_eq!(last["failed"], true);
    assert_eq!(last["verdict"], "leak");
    assert_eq!(last["metrics"]["rss_bytes"], "leak");
    assert_eq!(v["run"]["outcome"], "failed");
    assert_eq!(v["run"]["failed_at_s"], last["t_s"]);
    // The plain analyze document is still there.
    assert_eq!(v["metrics"]["rss_bytes"]["unit"], "MiB/min");
}

#[test]
fn as_run_passes_a_clean_recording_and_prints_each_check() {
    let out = bin()
        .args([
            "analyze",
            &trace("d7_python_thread_pool_warmup.csv"),
            "--as-run",
            "--warmup",
            "300s",
            "--check-every",
            "120s",
            "--duration",
            "1080s",
        ])
        .output()
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("check   1 at"), "{text}");
    assert!(text.contains("run: passed"), "{text}");
}

#[test]
fn as_run_on_a_recording_shorter_than_the_run_is_inconclusive() {
    let out = bin()
        .args([
            "analyze",
            &trace("d5_redis_fixed_keyspace_benchmark.csv"),
            "--as-run",
            "--json",
            "--profile",
            "quick",
        ])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(3));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["run"]["outcome"], "inconclusive");
    assert!(v["run"]["failed_at_s"].is_null());
}

#[test]
fn as_run_flags_are_validated() {
    for args in [
        vec!["analyze", "x.csv", "--as-run", "--profile", "weekly"],
        vec!["analyze", "x.csv", "--as-run", "--check-every", "soon"],
        vec!["analyze", "x.csv", "--profile", "quick"],
    ] {
        let out = bin().args(&args).output().expect("runs");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
    }
}

#[test]
fn detail_columns_never_decide_the_overall_verdict() {
    // Gate columns flat; a sparse PSS column that climbs: reported, but the verdict is clean.
    let mut text = String::from("t_seconds,rss_bytes,pss_bytes,fds\n");
    for i in 0..1200 {
        let pss = if i % 30 == 0 {
            format!("{}", 50_000_000 + i * 20_000)
        } else {
            String::new()
        };
        text.push_str(&format!("{i},80000000,{pss},9\n"));
    }
    let f = csv(&text);
    let out = bin()
        .args(["analyze", &f.path().display().to_string(), "--json"])
        .output()
        .expect("runs");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["metrics"]["pss_bytes"]["verdict"], "leak");
    assert_eq!(v["verdict"], "clean");
    assert_eq!(out.status.code(), Some(0));
}

/// With `--as-run`, `--junit` and `--summary-md` report the replayed run — its last check after
/// the run-level rule and its outcome — not the whole file's verdicts.
#[test]
fn as_run_ci_outputs_report_the_replayed_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let junit = dir.path().join("junit.xml");
    let md = dir.path().join("summary.md");
    // The whole file says leak; the standard profile's 30-minute warm-up outlasts this 25-minute
    // recording, so the replayed run never checked: inconclusive (skipped), exit 3.
    let out = bin()
        .args([
            "analyze",
            &trace("d4_c_malloc_leak.csv"),
            "--as-run",
            "--junit",
            &junit.display().to_string(),
            "--summary-md",
            &md.display().to_string(),
        ])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(3));
    let xml = std::fs::read_to_string(&junit).expect("junit written");
    assert!(!xml.contains("<failure"), "{xml}");
    assert!(xml.contains("<skipped"), "{xml}");
    assert!(xml.contains("ended before the run's first check"), "{xml}");
    let summary = std::fs::read_to_string(&md).expect("summary written");
    assert!(summary.to_lowercase().contains("inconclusive"), "{summary}");
    // The same recording replayed with a schedule that fits: the run fails, and so does the
    // JUnit test case of its memory.
    let out = bin()
        .args([
            "analyze",
            &trace("d4_c_malloc_leak.csv"),
            "--as-run",
            "--warmup",
            "300s",
            "--check-every",
            "60s",
            "--duration",
            "1080s",
            "--junit",
            &junit.display().to_string(),
        ])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let xml = std::fs::read_to_string(&junit).expect("junit written");
    assert!(xml.contains("<failure"), "{xml}");
}
