//! `history TAG` end to end: ten nights of a tagged soak in a real store, their samples judged at
//! each check by the tool's own gate (as a live run stores them), read back by the binary; a
//! leak that starts at night 7 is named with its commit, a clean history names no change.

mod common;

use common::ls;
use leak_sentinel::gate::judge_gate;
use leak_sentinel::sample::{Metric, Sample};
use leak_sentinel::settings::{Profile, RunSettings};
use leak_sentinel::store::{EventKind, RunEnd, RunStatus, Store};
use std::path::Path;

const MIB: f64 = 1024.0 * 1024.0;
/// 2026-11-24T02:00:00Z: night 1.
const FIRST: f64 = 1_795_485_600.0;

/// One night (its noise differs from night to night): 40 minutes sampled every 5 s, memory growing `mib_per_min` with a sawtooth of
/// allocator noise, 30 FDs and 8 threads; checks every 5 minutes after a 5-minute warm-up, each
/// judged by the gate on the samples so far and stored as a live run stores its checks.
fn night(store: &Store, name: &str, t0: f64, mib_per_min: f64, commit: &str) {
    let seed = (t0 / 86_400.0) as usize;
    let mut s = RunSettings::defaults(name, Profile::Quick, vec!["./api".into()]);
    s.warmup_s = 300.0;
    s.labels = vec![("commit".into(), commit.into())];
    let settings = serde_json::to_string(&s).expect("settings");
    let id = store.create_run(name, &settings, "{}", t0).expect("run");
    let mut last_failed = false;
    for i in 0..=480 {
        let t = t0 + 5.0 * i as f64;
        let mut x = Sample::at(t);
        let noise = ((i * 7919 + seed * 104_729) % 13) as f64 / 13.0 * 0.4 * MIB;
        x.set(
            Metric::RssBytes,
            Some(200.0 * MIB + mib_per_min * MIB * (t - t0) / 60.0 + noise),
        );
        x.set(Metric::Fds, Some(30.0));
        x.set(Metric::Threads, Some(8.0));
        store.append_sample(id, &x).expect("sample");
        if i >= 120 && i % 60 == 0 {
            let samples = store.samples(id).expect("samples");
            let results = judge_gate(&samples, &[], t0, &s);
            let detail: serde_json::Map<String, serde_json::Value> = results
                .iter()
                .map(|r| {
                    (
                        r.name.clone(),
                        serde_json::json!({"verdict": r.judgement.verdict.as_str(),
                            "slope_per_min": r.judgement.slope_per_min}),
                    )
                })
                .collect();
            last_failed = results
                .iter()
                .any(|r| r.judgement.verdict.as_str() == "leak");
            store
                .append_check(
                    id,
                    t,
                    last_failed,
                    &serde_json::Value::Object(detail).to_string(),
                )
                .expect("check");
        }
    }
    let (verdict, code) = if last_failed {
        ("leak", 1)
    } else {
        ("clean", 0)
    };
    store
        .end_run(
            id,
            &RunEnd {
                status: if last_failed {
                    RunStatus::Failed
                } else {
                    RunStatus::Completed
                },
                ended_at: t0 + 2400.0,
                verdict: Some(verdict),
                exit_code: code,
                failure_reason: None,
                report_file: None,
                report_json: None,
            },
            (EventKind::Finish, "done"),
        )
        .expect("end");
}

/// Ten nights `api-2026MMDD`, a day apart; from night `leak_from` (1-based) on, memory grows
/// 0.9 MiB/min instead of 0.02 and the commit is `def` instead of `abc`.
fn nights(state: &Path, leak_from: Option<usize>) {
    let store = Store::open(state).expect("store");
    for k in 1..=10 {
        let t0 = FIRST + 86_400.0 * (k - 1) as f64;
        let day = chrono::DateTime::from_timestamp(t0 as i64, 0)
            .expect("date")
            .format("%Y%m%d")
            .to_string();
        let leaky = leak_from.is_some_and(|f| k >= f);
        let rate = if leaky { 0.9 } else { 0.02 };
        let commit = if leaky {
            "def".to_string()
        } else {
            format!("abc{k}")
        };
        night(&store, &format!("api-{day}"), t0, rate, &commit);
    }
    // Another soak in the same store is not part of api's history.
    night(&store, "db-20261201", FIRST, 5.0, "zzz");
}

fn history_json(state: &Path) -> serde_json::Value {
    let out = ls(state)
        .args(["history", "api", "--json"])
        .output()
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

#[test]
fn a_leak_from_night_seven_is_named_with_its_commit() {
    let d = tempfile::tempdir().expect("tempdir");
    nights(d.path(), Some(7));
    let v = history_json(d.path());
    let n = v["nights"].as_array().expect("nights");
    assert_eq!(n.len(), 10, "{v}");
    assert_eq!(n[0]["run"], "api-20261124");
    assert_eq!(n[0]["outcome"], "passed");
    assert_eq!(n[6]["outcome"], "leak");
    assert_eq!(n[6]["exit_code"], 1);
    assert_eq!(n[6]["commit"], "def");
    let m = n[8]["memory_mib_per_min"].as_f64().expect("rate");
    assert!((m - 0.9).abs() < 0.05, "{m}");
    assert_eq!(n[8]["fds_per_min"], 0.0);
    let c = &v["changes"]["memory"];
    assert_eq!(c["to_run"], "api-20261130", "{v}");
    assert_eq!(c["from_run"], "api-20261129");
    assert_eq!(
        (&c["from_commit"], &c["to_commit"]),
        (&"abc6".into(), &"def".into())
    );
    assert!(v["changes"].get("fds").is_none(), "{v}");
    assert!(v["changes"].get("threads").is_none(), "{v}");
    // The terminal says it in words, and the page charts it.
    let page = d.path().join("h.html");
    let out = ls(d.path())
        .args(["history", "api", "--html"])
        .arg(&page)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(
            "memory growth rose from 0.02 to 0.9 MiB/min between the runs of 2026-11-29 and \
             2026-11-30 (api-20261129 -> api-20261130) (commits abc6 -> def)"
        ),
        "{text}"
    );
    let html = std::fs::read_to_string(&page).expect("page");
    assert!(html.contains("<figure id=\"chart-memory\"><svg"), "{html}");
    assert!(html.contains("at api-20261130"), "{html}");
}

#[test]
fn ten_clean_nights_name_no_change() {
    let d = tempfile::tempdir().expect("tempdir");
    nights(d.path(), None);
    let v = history_json(d.path());
    assert_eq!(v["nights"].as_array().map(Vec::len), Some(10));
    // `*` takes in the other soak of the store too.
    let out = ls(d.path())
        .args(["history", "*", "--json"])
        .output()
        .expect("runs");
    let all: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(all["nights"].as_array().map(Vec::len), Some(11), "{all}");
    assert_eq!(v["changes"], serde_json::json!({}), "{v}");
    let out = ls(d.path())
        .args(["history", "api"])
        .output()
        .expect("runs");
    assert!(String::from_utf8_lossy(&out.stdout).contains("no change"));
}

#[test]
fn bad_input_is_one_line_and_exit_2() {
    let d = tempfile::tempdir().expect("tempdir");
    nights(d.path(), None);
    for args in [
        vec!["history", "nosuch"],
        vec!["history", "api", "--last", "0"],
        vec!["history", ""],
    ] {
        let out = ls(d.path()).args(&args).output().expect("runs");
        common::assert_error(&out, 2, &format!("{args:?}"));
    }
    let empty = tempfile::tempdir().expect("tempdir");
    let out = ls(empty.path())
        .args(["history", "api"])
        .output()
        .expect("runs");
    common::assert_error(&out, 2, "no store");
}

/// Prometheus with the remote-write receiver on a free port; its base URL.
fn prometheus(dir: &Path) -> (common::Kill, String) {
    let cfg = dir.join("prometheus.yml");
    std::fs::write(&cfg, "global:\n  scrape_interval: 1h\n").expect("cfg");
    let port = common::free_port();
    let k = common::Kill(
        std::process::Command::new("prometheus")
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("prom").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--web.enable-remote-write-receiver")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("prometheus is installed"),
    );
    let url = format!("http://127.0.0.1:{port}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while ureq::get(&format!("{url}/-/ready")).call().is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "prometheus never ready"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    (k, url)
}

#[test]
#[cfg_attr(
    not(feature = "live"),
    ignore = "live tier: cargo test --features live"
)]
fn runs_pushed_to_prometheus_are_read_back_by_tag() {
    const LEAK: &str =
        "import time\nkeep = []\nwhile True:\n    keep.append(b'x' * (1 << 20)); time.sleep(0.1)";
    const IDLE: &str = "import time\ntime.sleep(600)";
    let dir = tempfile::tempdir().expect("tempdir");
    let (_p, prom) = prometheus(dir.path());
    let state = dir.path().join("state");
    let write = format!("{prom}/api/v1/write");
    // The leak gets 10 s, as in tests/remote_write.rs: a busy machine may judge it late.
    for (name, commit, code, secs, want) in [
        ("hist-a", "c1", IDLE, "4s", 0),
        ("hist-b", "c2", IDLE, "4s", 0),
        ("hist-c", "c3", LEAK, "20s", 1),
    ] {
        let out = ls(&state)
            .args(["run", "--name", name, "--plain", "--sample-every", "200ms"])
            .args(["--check-every", "2s", "--warmup", "2s", "--duration", secs])
            .args(["--fd-threshold", "60", "--thread-threshold", "60"])
            .args(["--remote-write", &write, "--tag", "hist", "--label"])
            .arg(format!("commit={commit}"))
            .args(["--", "python3", "-c", code])
            .output()
            .expect("runs");
        assert_eq!(
            out.status.code(),
            Some(want),
            "{name}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = ls(&state)
        .args(["history", "hist", "--json", "--url", &prom, "--range", "1h"])
        .output()
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let n = v["nights"].as_array().expect("nights");
    let runs: Vec<&str> = n.iter().filter_map(|x| x["run"].as_str()).collect();
    assert_eq!(runs, ["hist-a", "hist-b", "hist-c"], "{v}");
    assert_eq!(n[0]["outcome"], "passed", "{v}");
    assert_eq!(n[2]["outcome"], "leak", "{v}");
    assert_eq!(n[2]["exit_code"], 1);
    assert_eq!(n[2]["verdict"], "leak");
    assert_eq!(n[1]["commit"], "c2");
    // 1 MiB every 100 ms is about 600 MiB/min; the idle runs hold still.
    let leak = n[2]["memory_mib_per_min"].as_f64().expect("rate");
    let idle = n[0]["memory_mib_per_min"].as_f64().expect("rate");
    assert!(leak > 100.0 && idle.abs() < 10.0, "{leak} {idle}");
    // A pattern finds them too.
    let out = ls(&state)
        .args(["history", "h*t", "--json", "--url", &prom, "--range", "1h"])
        .output()
        .expect("runs");
    let p: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(p["nights"].as_array().map(Vec::len), Some(3), "{p}");
    // The store says the same runs.
    let local = ls(&state)
        .args(["history", "hist", "--json"])
        .output()
        .expect("runs");
    let l: serde_json::Value = serde_json::from_slice(&local.stdout).expect("json");
    assert_eq!(l["nights"].as_array().map(Vec::len), Some(3), "{l}");
    // An engine that is not there is a one-line error, exit 2.
    let gone = format!("http://127.0.0.1:{}", common::free_port());
    let out = ls(&state)
        .args(["history", "hist", "--url", &gone])
        .output()
        .expect("runs");
    common::assert_error(&out, 2, "engine gone");
}
