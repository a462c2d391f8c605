//! The sentinel must not leak: a second sentinel soak-tests the first while the first samples a
//! workload 20 times a second, and judges its private memory not to be leaking; the first stays
//! under 30 MiB RSS. (Samples live in the store; the session keeps only the last few.)

mod common;

use common::{bin, report_json, wait_for};
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
#[cfg_attr(
    not(feature = "live"),
    ignore = "live tier: cargo test --features live"
)]
fn a_second_sentinel_finds_no_leak_in_the_first() {
    let first_state = tempfile::tempdir().expect("tempdir");
    let second_state = tempfile::tempdir().expect("tempdir");
    let first = common::Interrupt(
        Command::new(bin())
            .arg("--state-dir")
            .arg(first_state.path())
            .args(["run", "--name", "first", "--plain", "--warmup", "5s"])
            .args([
                "--check-every",
                "10s",
                "--sample-every",
                "50ms",
                "--detail-every",
                "5s",
            ])
            .args(["--duration", "10m", "--"])
            .arg(bin())
            .args(["workload", "clean"])
            .stdout(Stdio::null())
            .spawn()
            .expect("first sentinel"),
    );
    let pid = first.0.id().to_string();
    wait_for(
        "the first sentinel to start",
        Duration::from_secs(20),
        || first_state.path().join("runs/first/status.json").exists(),
    );
    let out = Command::new(bin())
        .arg("--state-dir")
        .arg(second_state.path())
        .args([
            "run",
            "--name",
            "second",
            "--plain",
            "--no-children",
            "--pid",
            &pid,
        ])
        .args([
            "--warmup",
            "20s",
            "--check-every",
            "10s",
            "--sample-every",
            "500ms",
        ])
        .args(["--duration", "70s"])
        .output()
        .expect("second sentinel");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    // The first sentinel is killed, so its workload (in its own process group) is stopped here.
    let status: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(first_state.path().join("runs/first/status.json"))
            .unwrap_or_default(),
    )
    .unwrap_or_default();
    // Interrupted, not killed: it stops its target too.
    drop(first);
    if let Some(p) = status["pid"].as_i64() {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(p as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    assert!(matches!(out.status.code(), Some(0) | Some(3)), "{text}");
    let r = report_json(second_state.path(), "second");
    assert_ne!(r["metrics"]["rss_anon_bytes"]["verdict"], "leak", "{text}");
    let store = leak_sentinel::store::Store::open(second_state.path()).expect("store");
    let run = store.find_run("second").expect("q").expect("run");
    let samples = store.samples(run.id).expect("samples");
    let rss: Vec<(f64, f64, f64)> = samples
        .iter()
        .filter_map(|s| {
            Some((
                s.t - run.started_at,
                s.get(leak_sentinel::sample::Metric::RssBytes)? / 1048576.0,
                s.get(leak_sentinel::sample::Metric::Processes)
                    .unwrap_or(0.0),
            ))
        })
        .collect();
    let max_rss = rss.iter().map(|r| r.1).fold(0.0, f64::max);
    assert!(
        max_rss < 30.0,
        "the first sentinel peaked at {max_rss:.1} MiB RSS: (t, MiB, processes) {rss:?}"
    );
}
