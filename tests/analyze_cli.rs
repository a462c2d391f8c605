//! `leak-sentinel analyze` end to end: the contract JSON, exit codes, and one-line errors.

use assert_cmd::Command;
use std::io::Write;
use std::path::Path;

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
