//! `scan` against real servers started here on loopback: Prometheus (blocks backfilled with
//! promtool) and VictoriaMetrics (its import API), loaded with labelled series. Each series'
//! verdict must match its label and equal what `analyze` says on the same data; errors are one
//! line with exit 2.

mod common;

use assert_cmd::cargo::cargo_bin;
use common::{Kill, free_port};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const STEP: i64 = 30;
const POINTS: i64 = 241; // 2 hours
const MIB: f64 = 1_048_576.0;

fn ready(url: &str) -> bool {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(2)))
        .build()
        .into();
    agent.get(url).call().is_ok()
}

fn wait_ready(url: &str) {
    let t0 = Instant::now();
    while !ready(url) {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "{url} never came up"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The labelled series: (instance, expected, values in bytes at t = 0, 30, 60 … s).
fn series() -> Vec<(&'static str, &'static str, Vec<f64>)> {
    let noise = |i: i64, k: f64| ((i as f64 * 12.9898 + k).sin() * 43758.5453).fract() * 2.0 - 1.0;
    let mk = |f: &dyn Fn(i64) -> f64| (0..POINTS).map(f).collect::<Vec<f64>>();
    vec![
        (
            "leak-fast",
            "leak",
            mk(&|i| (100.0 + 1.0 * (i * STEP) as f64 / 60.0 + 2.0 * noise(i, 1.0)) * MIB),
        ),
        (
            "leak-slow",
            "leak",
            mk(&|i| (300.0 + 0.5 * (i * STEP) as f64 / 60.0 + 1.0 * noise(i, 2.0)) * MIB),
        ),
        (
            "flat",
            "clean",
            mk(&|i| (200.0 + 0.5 * noise(i, 3.0)) * MIB),
        ),
        // A collector every 5 minutes, 40 MiB of garbage, flat floor.
        (
            "sawtooth",
            "clean",
            mk(&|i| {
                (150.0 + 40.0 * (((i * STEP) % 300) as f64 / 300.0) + 0.2 * noise(i, 4.0)) * MIB
            }),
        ),
    ]
}

/// End of the data: on the step grid, a few minutes ago.
fn grid_end() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    (now - 600) / STEP * STEP
}

fn scan(url: &str, end: i64) -> Value {
    let out = Command::new(cargo_bin("leak-sentinel"))
        .args([
            "scan",
            "--url",
            url,
            "--query",
            "fleet_rss_bytes",
            "--range",
            "2h",
            "--step",
            "30s",
            "--json",
        ])
        // No warm-up: the verdicts are compared with `analyze --warmup 0s` on the same data.
        .args([
            "--end",
            &end.to_string(),
            "--max-points",
            "100",
            "--warmup",
            "0s",
        ])
        .output()
        .expect("runs");
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("json: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(out.status.code(), Some(1), "a leak in the fleet exits 1");
    v
}

fn check(v: &Value, dir: &Path) {
    let all = series();
    let got = v["series"].as_array().expect("series");
    assert_eq!(got.len(), all.len(), "{v}");
    assert_eq!(v["verdict"], "leak");
    assert_eq!(got[0]["verdict"], "leak", "most severe first");
    for (inst, expect, values) in &all {
        let s = got
            .iter()
            .find(|s| s["labels"]["instance"] == *inst)
            .expect("series present");
        assert_eq!(s["labels"]["expect"], *expect);
        assert_eq!(s["points"], POINTS, "{inst}: every point, across chunks");
        if *expect == "leak" {
            assert_eq!(s["verdict"], "leak", "{inst}: {s}");
        } else {
            assert_ne!(s["verdict"], "leak", "{inst}: {s}");
        }
        assert_eq!(s["unit"], "MiB/min");
        // analyze on the same data says the same.
        let csv = dir.join(format!("{inst}.csv"));
        let mut text = String::from("t_seconds,value_bytes\n");
        for (i, x) in values.iter().enumerate() {
            text.push_str(&format!("{},{x}\n", i as i64 * STEP));
        }
        std::fs::write(&csv, text).expect("csv");
        let out = Command::new(cargo_bin("leak-sentinel"))
            .arg("analyze")
            .arg(&csv)
            .args(["--json", "--warmup", "0s"])
            .output()
            .expect("runs");
        let a: Value = serde_json::from_slice(&out.stdout).expect("json");
        assert_eq!(
            a["metrics"]["value_bytes"]["verdict"], s["verdict"],
            "{inst}"
        );
        let (x, y) = (
            a["metrics"]["value_bytes"]["slope_per_min"]
                .as_f64()
                .expect("slope"),
            s["slope_per_min"].as_f64().expect("slope"),
        );
        assert!((x - y).abs() < 1e-6, "{inst}: {x} vs {y}");
    }
}

#[test]
#[cfg_attr(
    not(feature = "live"),
    ignore = "live tier: cargo test --features live"
)]
fn scan_prometheus_with_backfilled_blocks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let end = grid_end();
    let start = end - (POINTS - 1) * STEP;
    let mut om = String::from(
        "# HELP fleet_rss_bytes RSS of fleet processes.\n# TYPE fleet_rss_bytes gauge\n",
    );
    for (inst, expect, values) in series() {
        for (i, x) in values.iter().enumerate() {
            om.push_str(&format!(
                "fleet_rss_bytes{{job=\"api\",instance=\"{inst}\",expect=\"{expect}\"}} {x} {}\n",
                start + i as i64 * STEP
            ));
        }
    }
    om.push_str("# EOF\n");
    let input = dir.path().join("data.om");
    std::fs::write(&input, om).expect("write");
    let tsdb = dir.path().join("tsdb");
    let out = Command::new("promtool")
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&input)
        .arg(&tsdb)
        .output()
        .expect("promtool is installed (Debian's prometheus package)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let port = free_port();
    let cfg = dir.path().join("p.yml");
    std::fs::write(&cfg, "global:\n  scrape_interval: 1h\n").expect("cfg");
    let _prom = Kill(
        Command::new("prometheus")
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!("--storage.tsdb.path={}", tsdb.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus"),
    );
    let url = format!("http://127.0.0.1:{port}");
    wait_ready(&format!("{url}/-/ready"));
    // max-points 100 splits the 241 points into 3 chunks fetched concurrently.
    let v = scan(&url, end);
    check(&v, dir.path());
    // Errors: bad PromQL (the server's message), an empty result, an unreachable server.
    for (query, needle) in [
        ("rate(", "rejected the query"),
        ("no_such_metric_anywhere", "no series"),
    ] {
        let out = Command::new(cargo_bin("leak-sentinel"))
            .args(["scan", "--url", &url, "--query", query, "--range", "1h"])
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(2), "{query}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains(needle), "{err}");
    }
    let out = Command::new(cargo_bin("leak-sentinel"))
        .args([
            "scan",
            "--url",
            &format!("http://127.0.0.1:{}", free_port()),
            "--query",
            "up",
        ])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot connect to"));
    // --watch reports every series once, then only changes (none here).
    let out = Command::new(cargo_bin("leak-sentinel"))
        .args([
            "scan",
            "--url",
            &url,
            "--query",
            "fleet_rss_bytes",
            "--range",
            "2h",
            "--step",
            "30s",
        ])
        .args([
            "--end",
            &end.to_string(),
            "--watch",
            "1s",
            "--watch-count",
            "2",
        ])
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.lines().filter(|l| l.contains("new → ")).count(),
        4,
        "{text}"
    );
    assert_eq!(
        text.lines().count(),
        4,
        "no changes in the second round: {text}"
    );
}

#[test]
#[cfg_attr(
    not(feature = "live"),
    ignore = "live tier: cargo test --features live"
)]
fn scan_victoria_metrics_loaded_through_its_import_api() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let _vm = Kill(
        Command::new("victoria-metrics")
            .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
            .arg(format!(
                "-storageDataPath={}",
                dir.path().join("vm").display()
            ))
            .arg("-retentionPeriod=100y")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("victoria-metrics is installed (.ci/run installs Debian's victoria-metrics)"),
    );
    let url = format!("http://127.0.0.1:{port}");
    wait_ready(&format!("{url}/health"));
    let end = grid_end();
    let start = end - (POINTS - 1) * STEP;
    let mut lines = String::new();
    for (inst, expect, values) in series() {
        let ts: Vec<i64> = (0..POINTS).map(|i| (start + i * STEP) * 1000).collect();
        lines.push_str(
            &serde_json::json!({
                "metric": {"__name__": "fleet_rss_bytes", "job": "api", "instance": inst, "expect": expect},
                "values": values, "timestamps": ts
            })
            .to_string(),
        );
        lines.push('\n');
    }
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    agent
        .post(&format!("{url}/api/v1/import"))
        .send(lines.as_str())
        .expect("import");
    agent
        .get(&format!("{url}/internal/force_flush"))
        .call()
        .expect("flush");
    let v = scan(&url, end);
    check(&v, dir.path());
}
