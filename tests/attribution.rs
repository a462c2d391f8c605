//! Attribution (`--attribute`) with real runtimes: a Java service whose `OrderCache` keeps every
//! `Order` (class histograms through jcmd) and a Python handler whose `record_request` keeps
//! every record (tracemalloc through the injected sitecustomize) and a C server whose
//! `remember_request` keeps every record (heaptrack's preload library) and a Go service whose
//! `rememberOrder` keeps 64 KiB a call (its own pprof heap profile, `--pprof`) are named among
//! the top three growing sites of their reports — terminal, JSON and HTML — while their clean twins show
//! no site above the run's threshold; a native run with `--attribute` is judged as without it; `analyze` of a recording says it has no attribution.

mod common;

use common::{bin, ls, report_json};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// One JVM at a time (a 2-core machine with a CI run alongside).
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn data() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/attribution")
}

/// Whether java and jcmd are here (asserted when LEAK_SENTINEL_REQUIRE_JAVA is set, as in CI).
fn jdk_available() -> bool {
    let ok = ["java", "jcmd"].iter().all(|t| {
        Command::new(t)
            .arg(if *t == "java" { "-version" } else { "-h" })
            .output()
            .is_ok_and(|o| o.status.success())
    });
    assert!(
        ok || std::env::var_os("LEAK_SENTINEL_REQUIRE_JAVA").is_none(),
        "java and jcmd are required here (LEAK_SENTINEL_REQUIRE_JAVA is set); .ci/run installs openjdk-17-jdk-headless"
    );
    if !ok {
        eprintln!("note: no java/jcmd on this machine; the JVM attribution tests did not run");
    }
    ok
}

/// `run --attribute` with a short schedule and a 1 MiB/min memory threshold; returns the exit
/// code, the output and the JSON report.
fn attributed_run(
    state: &Path,
    name: &str,
    warmup: &str,
    duration: &str,
    target: &[&str],
) -> (Option<i32>, String, Value) {
    attributed_run_with(state, name, (warmup, duration, "1MiB/min"), &[], target)
}

/// [`attributed_run`] with a memory threshold of its own and more options before the target.
fn attributed_run_with(
    state: &Path,
    name: &str,
    (warmup, duration, threshold): (&str, &str, &str),
    options: &[&str],
    target: &[&str],
) -> (Option<i32>, String, Value) {
    let out = ls(state)
        .args(["run", "--name", name, "--plain", "--attribute"])
        .args([
            "--warmup",
            warmup,
            "--check-every",
            "3s",
            "--sample-every",
            "250ms",
        ])
        .args(["--duration", duration, "--memory-threshold", threshold])
        .args(options)
        .arg("--")
        .args(target)
        .output()
        .expect("runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let r = report_json(state, name);
    (out.status.code(), text, r)
}

fn sites(r: &Value) -> Vec<Value> {
    r["attribution"]["sites"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The first of the report's three largest growers whose site `matches` (`what` names it in
/// the failure message).
fn in_top_three(r: &Value, matches: impl Fn(&str) -> bool, what: &str) -> Value {
    sites(r)
        .into_iter()
        .take(3)
        .find(|s| s["site"].as_str().is_some_and(&matches))
        .unwrap_or_else(|| panic!("{what} is not among the top three: {}", r["attribution"]))
}

/// The report's terminal and HTML forms show the same attribution as its JSON.
fn assert_shown(state: &Path, name: &str, site: &str) {
    let out = ls(state).args(["report", name]).output().expect("report");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("attribution by"), "{text}");
    assert!(text.contains(site), "{text}");
    let html = state.join(format!("{name}.html"));
    let out = ls(state)
        .args(["report", name, "--html"])
        .arg(&html)
        .output()
        .expect("report --html");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let page = std::fs::read_to_string(&html).expect("html");
    let table = page
        .split("<table id=\"attribution\">")
        .nth(1)
        .and_then(|t| t.split("</table>").next())
        .unwrap_or_else(|| panic!("no attribution table in the page"));
    assert!(table.contains(&format!("<code>{site}")), "{table}");
}

#[test]
#[cfg_attr(
    not(feature = "live"),
    ignore = "live tier: cargo test --features live"
)]
fn a_java_order_cache_leak_names_the_order_class() {
    if !jdk_available() {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let state = tempfile::tempdir().expect("tempdir");
    let cp = data().display().to_string();
    let (code, text, r) = attributed_run(
        state.path(),
        "jvm-orders-leak",
        "10s",
        "30s",
        &[
            "java", "-Xmx256m", "-cp", &cp, "Orders", "leak", "5000", "1",
        ],
    );
    // The verdict is the detector's, attribution or not: a leak, failed or held back.
    assert!(matches!(code, Some(1) | Some(3)), "exit {code:?}\n{text}");
    let a = &r["attribution"];
    assert_eq!(a["mechanism"], "jcmd GC.class_histogram", "{a}");
    assert_eq!(a["pid"], r["target"]["pid"], "{a}");
    assert!(a["note"].is_null(), "{a}");
    let order = in_top_three(&r, |s| s == "Order", "Order");
    // 5,000 orders a second of 72 bytes each: ~20 MiB/min, far above 1 MiB/min.
    assert!(
        order["grown_objects"].as_i64().unwrap_or(0) > 50_000,
        "{order}"
    );
    assert!(
        order["rate_per_min"].as_f64().unwrap_or(0.0) > 4.0 * 1_048_576.0,
        "{order}"
    );
    assert_eq!(order["above_threshold"], true, "{order}");
    assert_shown(state.path(), "jvm-orders-leak", "Order");
}

#[test]
#[cfg_attr(
    not(feature = "live"),
    ignore = "live tier: cargo test --features live"
)]
fn a_bounded_java_order_cache_shows_no_site_above_the_threshold() {
    if !jdk_available() {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let state = tempfile::tempdir().expect("tempdir");
    let cp = data().display().to_string();
    let (code, text, r) = attributed_run(
        state.path(),
        "jvm-orders-clean",
        "10s",
        "30s",
        &[
            "java", "-Xmx256m", "-cp", &cp, "Orders", "clean", "5000", "1",
        ],
    );
    assert!(matches!(code, Some(0) | Some(3)), "exit {code:?}\n{text}");
    let a = &r["attribution"];
    assert_eq!(a["mechanism"], "jcmd GC.class_histogram", "{a}");
    assert!(a["note"].is_null(), "{a}");
    assert!(a["span_s"].as_f64().unwrap_or(0.0) >= 25.0, "{a}");
    let above: Vec<&Value> = a["sites"]
        .as_array()
        .expect("sites")
        .iter()
        .filter(|s| s["above_threshold"] == true)
        .collect();
    assert!(above.is_empty(), "{above:?}");
}

#[test]
#[cfg_attr(
    not(feature = "live"),
    ignore = "live tier: cargo test --features live"
)]
fn a_python_record_request_leak_is_named_by_tracemalloc() {
    let state = tempfile::tempdir().expect("tempdir");
    let script = data().join("service.py").display().to_string();
    let (code, text, r) = attributed_run(
        state.path(),
        "py-leak",
        "5s",
        "15s",
        &["python3", &script, "leak", "1000"],
    );
    assert!(matches!(code, Some(1) | Some(3)), "exit {code:?}\n{text}");
    let a = &r["attribution"];
    assert_eq!(a["mechanism"], "tracemalloc", "{a}");
    assert!(a["note"].is_null(), "{a}");
    let site = in_top_three(
        &r,
        |s| s.starts_with("record_request (service.py:"),
        "record_request",
    );
    assert_eq!(site["above_threshold"], true, "{site}");
    assert!(
        site["grown_objects"].as_i64().unwrap_or(0) > 5_000,
        "{site}"
    );
    assert_shown(state.path(), "py-leak", "record_request (service.py:");
    // The hook's snapshots were removed once summarised; only small control files remain.
    let dir = state.path().join("runs/py-leak/attribution");
    let left: Vec<String> = std::fs::read_dir(&dir)
        .expect("attribution dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("snap-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
#[cfg_attr(
    not(feature = "live"),
    ignore = "live tier: cargo test --features live"
)]
fn a_bounded_python_handler_shows_no_site_above_the_threshold() {
    let state = tempfile::tempdir().expect("tempdir");
    let script = data().join("service.py").display().to_string();
    let (code, text, r) = attributed_run(
        state.path(),
        "py-clean",
        "5s",
        "15s",
        &["python3", &script, "clean", "1000"],
    );
    assert!(matches!(code, Some(0) | Some(3)), "exit {code:?}\n{text}");
    let a = &r["attribution"];
    assert_eq!(a["mechanism"], "tracemalloc", "{a}");
    assert!(a["note"].is_null(), "{a}");
    assert!(
        sites(&r).iter().all(|s| s["above_threshold"] == false),
        "{a}"
    );
}

#[test]
#[cfg_attr(
    not(feature = "live"),
    ignore = "live tier: cargo test --features live"
)]
fn attribution_of_a_native_target_leaves_the_verdict_as_it_is() {
    let state = tempfile::tempdir().expect("tempdir");
    let mut verdicts = Vec::new();
    for (name, attr) in [("native-attr", true), ("native-plain", false)] {
        let mut c = ls(state.path());
        c.args(["run", "--name", name, "--plain", "--warmup", "2s"])
            .args([
                "--check-every",
                "2s",
                "--sample-every",
                "200ms",
                "--duration",
                "4s",
            ]);
        if attr {
            c.arg("--attribute");
        }
        c.arg("--").arg(bin()).args(["workload", "clean"]);
        let out = c.output().expect("runs");
        let r = report_json(state.path(), name);
        let code = out.status.code();
        assert!(matches!(code, Some(0) | Some(3)), "{name}: exit {code:?}");
        verdicts.push((code, r["memory_gate"].clone()));
        if attr {
            // A native target: heaptrack when installed, else a one-line note.
            let a = &r["attribution"];
            assert_eq!(a["mechanism"], "heaptrack", "{a}");
            let note = a["note"].as_str().unwrap_or("");
            assert!(note.lines().count() <= 1, "{a}");
        } else {
            assert!(r["attribution"].is_null(), "{}", r["attribution"]);
        }
    }
    // Attribution never changes how a run is judged.
    assert_eq!(verdicts[0].1, verdicts[1].1);
}

#[test]
fn analyze_of_a_recording_says_it_has_no_attribution() {
    let dir = tempfile::tempdir().expect("tempdir");
    let csv = dir.path().join("r.csv");
    let mut text = String::from("t_seconds,rss_bytes\n");
    for i in 0..120 {
        text.push_str(&format!("{i},{}\n", 100_000_000 + i * 1000));
    }
    std::fs::write(&csv, text).expect("write");
    let out = Command::new(bin())
        .arg("analyze")
        .arg(&csv)
        .arg("--json")
        .output()
        .expect("analyze");
    let doc: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(doc["attribution"]["mechanism"], "none", "{doc}");
    assert!(
        doc["attribution"]["sites"]
            .as_array()
            .is_some_and(|s| s.is_empty())
    );
    assert!(
        doc["attribution"]["note"]
            .as_str()
            .is_some_and(|n| n.contains("--attribute")),
        "{doc}"
    );
    let out = Command::new(bin())
        .arg("analyze")
        .arg(&csv)
        .output()
        .expect("analyze");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("attribution: none"), "{text}");
}

#[test]
fn a_bad_attribute_timeout_is_a_usage_error() {
    let state = tempfile::tempdir().expect("tempdir");
    let out = ls(state.path())
        .args([
            "run",
            "--attribute",
            "--attribute-timeout",
            "0s",
            "--",
            "true",
        ])
        .output()
        .expect("runs");
    common::assert_error(&out, 2, "--attribute-timeout 0s");
    let cfg = state.path().join("c.toml");
    std::fs::write(&cfg, "attribute = \"yes\"\n").expect("write");
    let out = ls(state.path())
        .args(["run", "--config"])
        .arg(&cfg)
        .args(["--", "true"])
        .output()
        .expect("runs");
    let err = common::assert_error(&out, 2, "attribute = \"yes\"");
    assert!(err.contains("line 1"), "{err}");
}

#[test]
#[cfg_attr(
    not(feature = "live"),
    ignore = "live tier: cargo test --features live"
)]
fn report_attribute_on_a_live_run_diffs_a_snapshot_now_with_the_baseline() {
    let state = tempfile::tempdir().expect("tempdir");
    let script = data().join("service.py").display().to_string();
    let mut run = ls(state.path());
    run.args(["run", "--name", "py-live", "--plain", "--attribute"])
        .args([
            "--warmup",
            "3s",
            "--check-every",
            "3s",
            "--sample-every",
            "250ms",
        ])
        .args(["--duration", "180s", "--memory-threshold", "1MiB/min"])
        .args(["--max-failed-checks", "1000"])
        .args(["--", "python3", &script, "leak", "1000"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let sentinel = common::Interrupt(run.spawn().expect("runs"));
    // The baseline is stored right after warm-up; ask once it is there.
    // Generous: on a busy machine the baseline and a snapshot take tens of seconds; the run is
    // interrupted as soon as the site is named.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let mut doc;
    loop {
        let out = ls(state.path())
            .args(["report", "py-live", "--attribute", "--json"])
            .output()
            .expect("report --attribute");
        doc = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        let named = doc["attribution"]["sites"].as_array().is_some_and(|s| {
            s.iter().take(3).any(|x| {
                x["site"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("record_request (service.py:"))
            })
        });
        if named {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "report --attribute never named record_request; last answer: {} {}",
            doc["attribution"],
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert_eq!(doc["attribution"]["mechanism"], "tracemalloc", "{doc}");
    let out = ls(state.path())
        .args(["report", "py-live", "--attribute"])
        .output()
        .expect("report --attribute");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("attribution by tracemalloc of PID"),
        "{text}"
    );
    // SIGINT: the sentinel stops its target and ends the run (interrupted).
    let mut sentinel = sentinel;
    let pid = nix::unistd::Pid::from_raw(sentinel.0.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).expect("SIGINT");
    let status = sentinel.0.wait().expect("the sentinel ends");
    assert_eq!(status.code(), Some(5), "interrupted");
    // A run that is not live has nothing to snapshot: a usage error.
    let out = ls(state.path())
        .args(["report", "py-live", "--attribute"])
        .output()
        .expect("report --attribute");
    let err = common::assert_error(&out, 2, "report --attribute on an ended run");
    assert!(err.contains("not live"), "{err}");
}

/// Whether node is here (asserted in CI, which installs it).
fn node_available() -> bool {
    let ok = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok || std::env::var_os("LEAK_SENTINEL_REQUIRE_JAVA").is_none(),
        "node is required in CI (.ci/run installs nodejs)"
    );
    if !ok {
        eprintln!("note: no node on this machine; the Node.js attribution tests did not run");
    }
    ok
}

#[test]
#[cfg_attr(
    not(feature = "live"),
    ignore = "live tier: cargo test --features live"
)]
fn a_node_worker_keeping_its_sessions_names_the_class() {
    if !node_available() {
        return;
    }
    let state = tempfile::tempdir().expect("tempdir");
    let script = data().join("worker.js").display().to_string();
    let (code, text, r) = attributed_run(
        state.path(),
        "node-leak",
        "5s",
        "15s",
        &["node", &script, "leak", "2000"],
    );
    assert!(matches!(code, Some(1) | Some(3)), "exit {code:?}\n{text}");
    let a = &r["attribution"];
    assert_eq!(a["mechanism"], "V8 heap snapshot", "{a}");
    assert!(a["note"].is_null(), "{a}");
    let site = in_top_three(&r, |s| s == "WorkerSession", "WorkerSession");
    assert_eq!(site["above_threshold"], true, "{site}");
    assert!(
        site["grown_objects"].as_i64().unwrap_or(0) > 5_000,
        "{site}"
    );
    assert_shown(state.path(), "node-leak", "WorkerSession");
}

#[test]
#[cfg_attr(
    not(feature = "live"),
    ignore = "live tier: cargo test --features live"
)]
fn a_bounded_node_worker_shows_no_site_above_the_threshold() {
    if !node_available() {
        return;
    }
    let state = tempfile::tempdir().expect("tempdir");
    let script = data().join("worker.js").display().to_string();
    let (code, text, r) = attributed_run(
        state.path(),
        "node-clean",
        "5s",
        "15s",
        &["node", &script, "clean", "2000"],
    );
    assert!(matches!(code, Some(0) | Some(3)), "exit {code:?}\n{text}");
    let a = &r["attribution"];
    assert_eq!(a["mechanism"], "V8 heap snapshot", "{a}");
    assert!(a["note"].is_null(), "{a}");
    assert!(
        sites(&r).iter().all(|s| s["above_threshold"] == false),
        "{a}"
    );
}

/// Whether heaptrack and cc are here (asserted in CI, where .ci/run installs both).
fn heaptrack_available() -> bool {
    let ok = ["heaptrack_print", "cc"].iter().all(|t| {
        Command::new(t)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    });
    assert!(
        ok || std::env::var_os("LEAK_SENTINEL_REQUIRE_JAVA").is_none(),
        "heaptrack and cc are required in CI (.ci/run installs heaptrack and build-essential)"
    );
    if !ok {
        eprintln!(
            "note: no heaptrack or cc on this machine; the native attribution tests did not run"
        );
    }
    ok
}

/// tests/data/attribution/server.c built with the machine's cc (no optimisation, with debug
/// information: heaptrack names functions and lines from it).
fn native_server(dir: &Path) -> String {
    let exe = dir.join("server");
    let out = Command::new("cc")
        .args(["-g", "-O0", "-fno-omit-frame-pointer", "-o"])
        .arg(&exe)
        .arg(data().join("server.c"))
        .output()
        .expect("cc runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    exe.display().to_string()
}

#[test]
#[cfg_attr(
    not(feature = "live"),
    ignore = "live tier: cargo test --features live"
)]
fn a_native_remember_request_leak_is_named_by_heaptrack() {
    if !heaptrack_available() {
        return;
    }
    let state = tempfile::tempdir().expect("tempdir");
    let build = tempfile::tempdir().expect("tempdir");
    let server = native_server(build.path());
    let (code, text, r) = attributed_run(
        state.path(),
        "c-leak",
        "4s",
        "12s",
        &[&server, "leak", "200"],
    );
    assert!(matches!(code, Some(1) | Some(3)), "exit {code:?}\n{text}");
    let a = &r["attribution"];
    assert_eq!(a["mechanism"], "heaptrack", "{a}");
    assert!(a["note"].is_null(), "{a}");
    let site = in_top_three(
        &r,
        |s| s.starts_with("remember_request (server.c:"),
        "remember_request",
    );
    assert_eq!(site["above_threshold"], true, "{site}");
    assert!(site["grown_objects"].as_i64().unwrap_or(0) > 500, "{site}");
    assert_shown(state.path(), "c-leak", "remember_request (server.c:");
    // The copies of the trace were removed once read.
    let dir = state.path().join("runs/c-leak/attribution");
    let left: Vec<String> = std::fs::read_dir(&dir)
        .expect("attribution dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("heaptrack-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
#[cfg_attr(
    not(feature = "live"),
    ignore = "live tier: cargo test --features live"
)]
fn a_bounded_native_server_shows_no_site_above_the_threshold() {
    if !heaptrack_available() {
        return;
    }
    let state = tempfile::tempdir().expect("tempdir");
    let build = tempfile::tempdir().expect("tempdir");
    let server = native_server(build.path());
    let (code, text, r) = attributed_run(
        state.path(),
        "c-clean",
        "4s",
        "12s",
        &[&server, "clean", "200"],
    );
    assert!(matches!(code, Some(0) | Some(3)), "exit {code:?}\n{text}");
    let a = &r["attribution"];
    assert_eq!(a["mechanism"], "heaptrack", "{a}");
    assert!(a["note"].is_null(), "{a}");
    assert!(
        sites(&r).iter().all(|s| s["above_threshold"] == false),
        "{a}"
    );
}

/// `run --pprof` of the Go service (built here) on a port chosen here (the service listens where
/// `ADDR` says): 5 s of warm-up, 50 s in all; the attribution is checked to be pprof's, without
/// a note. The memory threshold is 8 MiB/min: the service's churn keeps 20 to 60 goroutines
/// alive holding 16–80 KiB each, and its sampled estimate in one profile swings between 0 and
/// ~6 MiB (90 profiles a second apart here), up to 8 MiB/min over the 45-s span — while the leak
/// of 64 KiB every 200 ms is 18.75 MiB/min. Returns the state directory, the exit code, the
/// output and the JSON report.
fn go_run(name: &str, heap_leak_every: &str) -> (tempfile::TempDir, Option<i32>, String, Value) {
    let state = tempfile::tempdir().expect("tempdir");
    let (_build, service) = common::go_service();
    let addr = format!("127.0.0.1:{}", common::free_port());
    let url = format!("http://{addr}");
    let env = format!("ADDR={addr}");
    let (code, text, r) = attributed_run_with(
        state.path(),
        name,
        ("5s", "50s", "8MiB/min"),
        &["--pprof", &url, "--env", &env],
        &[&service, "0", heap_leak_every],
    );
    let a = &r["attribution"];
    assert_eq!(a["mechanism"], "pprof inuse_space", "{a}\n{text}");
    assert!(a["note"].is_null(), "{a}\n{text}");
    assert_eq!(a["pid"], r["target"]["pid"], "{a}");
    (state, code, text, r)
}

#[test]
#[cfg_attr(
    not(feature = "live"),
    ignore = "live tier: cargo test --features live"
)]
fn a_go_remember_order_leak_is_named_by_the_pprof_heap_profile() {
    if !common::go_available() {
        return;
    }
    let (state, code, text, r) = go_run("go-leak", "200ms");
    assert!(matches!(code, Some(1) | Some(3)), "exit {code:?}\n{text}");
    let site = in_top_three(
        &r,
        |s| s.starts_with("main.rememberOrder (service.go:"),
        "main.rememberOrder",
    );
    // 18.75 MiB/min kept; about 26 of the ~225 allocations of the span are sampled (one in
    // 8.5), so the estimate's spread is ~20 %. Unscaled counts would give ~2.2 MiB/min.
    let rate = site["rate_per_min"].as_f64().unwrap_or(0.0);
    assert!(
        (4.0 * 1_048_576.0..60.0 * 1_048_576.0).contains(&rate),
        "{site}"
    );
    assert!(site["grown_objects"].as_i64().unwrap_or(0) > 20, "{site}");
    assert_shown(state.path(), "go-leak", "main.rememberOrder (service.go:");
}

#[test]
#[cfg_attr(
    not(feature = "live"),
    ignore = "live tier: cargo test --features live"
)]
fn a_clean_go_service_shows_no_site_above_the_threshold() {
    if !common::go_available() {
        return;
    }
    let (_state, code, text, r) = go_run("go-clean", "0");
    assert!(matches!(code, Some(0) | Some(3)), "exit {code:?}\n{text}");
    let a = &r["attribution"];
    assert!(a["span_s"].as_f64().unwrap_or(0.0) >= 40.0, "{a}");
    assert!(
        sites(&r).iter().all(|s| s["above_threshold"] == false),
        "{a}"
    );
}

#[test]
fn a_bad_pprof_url_is_a_usage_error() {
    let state = tempfile::tempdir().expect("tempdir");
    for (url, shown) in [
        ("localhost:6060", "not an http(s) URL"),
        ("http://127.0.0.1:6060/metrics", "neither a base URL"),
    ] {
        let out = ls(state.path())
            .args(["run", "--pprof", url, "--", "true"])
            .output()
            .expect("runs");
        let err = common::assert_error(&out, 2, &format!("--pprof {url}"));
        assert!(err.contains(shown), "{err}");
    }
    let cfg = state.path().join("c.toml");
    std::fs::write(&cfg, "pprof = \"http://u:pw@h:6060\"\n").expect("write");
    let out = ls(state.path())
        .args(["run", "--config"])
        .arg(&cfg)
        .args(["--", "true"])
        .output()
        .expect("runs");
    let err = common::assert_error(&out, 2, "pprof with credentials");
    assert!(err.contains("credentials") && !err.contains("pw"), "{err}");
}

#[test]
#[cfg_attr(
    not(feature = "live"),
    ignore = "live tier: cargo test --features live"
)]
fn a_go_target_without_pprof_gets_a_note_that_says_to_pass_it() {
    if !common::go_available() {
        return;
    }
    let state = tempfile::tempdir().expect("tempdir");
    let (_build, service) = common::go_service();
    let (code, text, r) = attributed_run(
        state.path(),
        "go-nopprof",
        "2s",
        "4s",
        &[&service, "0", "0"],
    );
    // The verdict is not what this test is about: in a 6-s run the Go runtime's own start-up
    // (its heap's first 3 MiB) can be judged a leak at 1 MiB/min (seen once in CI). The note
    // must be there whatever the verdict; a usage or environment error must not.
    assert!(
        matches!(code, Some(0) | Some(1) | Some(3)),
        "exit {code:?}\n{text}"
    );
    let a = &r["attribution"];
    assert_eq!(a["mechanism"], "none", "{a}");
    let note = a["note"].as_str().unwrap_or("");
    assert!(note.contains("--pprof"), "{a}");
    assert_eq!(note.lines().count(), 1, "{a}");
}
