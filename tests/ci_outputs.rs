//! CI outputs of `run`, `resume` and `scan`: the JUnit file validated against the JUnit schema
//! subset (`tests/data/junit.xsd`, with xmllint) and read by a real consumer (Python's
//! junitparser); the markdown summary's verdict table (rendered with Python-Markdown when it is
//! installed); `$GITHUB_STEP_SUMMARY` appended to. Live runs of the built-in workloads; scans
//! against a recorded PromQL answer served on loopback.

mod common;

use common::{bin, free_port, ls};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

fn xsd() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/junit.xsd")
}

/// The file validates against the schema subset (xmllint must be installed: `.ci/run` does).
fn assert_valid_junit(path: &Path) {
    let out = Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(xsd())
        .arg(path)
        .output()
        .expect("xmllint (Debian libxml2-utils) is installed");
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(path).unwrap_or_default()
    );
}

/// What junitparser reads: per suite its counts and per case (name, result kind, message).
fn junitparser(path: &Path) -> Value {
    let script = r#"
import json, sys
from junitparser import JUnitXml
out = []
for s in JUnitXml.fromfile(sys.argv[1]):
    out.append({"name": s.name, "tests": s.tests, "failures": s.failures, "errors": s.errors,
                "skipped": s.skipped, "time": s.time,
                "cases": [{"name": c.name, "classname": c.classname, "time": c.time,
                           "results": [{"kind": type(r).__name__, "message": r.message,
                                        "type": r.type, "text": r.text} for r in c.result]}
                          for c in s]})
print(json.dumps(out))
"#;
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(path)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "junitparser (pip install junitparser) failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

/// The markdown rendered to HTML by Python-Markdown (tables extension), when installed: the
/// table rows' cell texts.
fn rendered_rows(md: &str) -> Option<Vec<Vec<String>>> {
    let script = r#"
import json, sys, html.parser
try:
    import markdown
except ImportError:
    print("null"); sys.exit(0)
h = markdown.markdown(sys.stdin.read(), extensions=["tables"])
class P(html.parser.HTMLParser):
    rows, cell, cur = [], None, None
    def handle_starttag(self, t, a):
        if t == "tr": self.cur = []
        if t in ("td", "th"): self.cell = ""
    def handle_endtag(self, t):
        if t in ("td", "th"): self.cur.append(self.cell.strip()); self.cell = None
        if t == "tr": self.rows.append(self.cur)
    def handle_data(self, d):
        if self.cell is not None: self.cell += d
p = P(); p.feed(h); print(json.dumps(p.rows))
"#;
    use std::io::Write;
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(md.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("python3");
    serde_json::from_slice(&out.stdout).expect("json")
}

/// The verdict table's rows as cell texts, read from the markdown itself.
fn table_rows(md: &str) -> Vec<Vec<String>> {
    md.lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("|---"))
        .map(|l| {
            l.trim_matches('|')
                .split(" | ")
                .map(|c| c.trim().replace('\\', ""))
                .collect()
        })
        .collect()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
#[cfg_attr(
    not(feature = "live"),
    ignore = "live tier: cargo test --features live"
)]
fn a_leaking_run_writes_junit_summary_and_appends_the_step_summary() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (junit, md, step) = (
        dir.path().join("leak.xml"),
        dir.path().join("leak.md"),
        dir.path().join("step_summary"),
    );
    std::fs::write(&step, "## an earlier step's summary\n\n").expect("write");
    let o = ls(&dir.path().join("state"))
        .args([
            "run",
            "--name",
            "ci-leaky",
            "--plain",
            "--warmup",
            "2s",
            "--check-every",
            "2s",
            "--sample-every",
            "200ms",
            // The workload's own churn repeats every 48 ticks (9.6 s): 30 s held three such
            // stretches, one degree of freedom, and the leak ended held by the run-level rule
            // in two CI runs on a busy machine.
            "--duration",
            "60s",
        ])
        .arg("--junit")
        .arg(&junit)
        .arg("--summary-md")
        .arg(&md)
        .env("GITHUB_STEP_SUMMARY", &step)
        .arg("--")
        .arg(bin())
        .args(["workload", "leaky"])
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert_valid_junit(&junit);
    let suites = junitparser(&junit);
    let s = &suites[0];
    assert_eq!(s["name"], "leak-sentinel run ci-leaky");
    assert_eq!(s["tests"], 3, "one testcase per gate metric: {s}");
    let names: Vec<&str> = s["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(|c| c["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["rss_anon_bytes", "fds", "threads"]);
    let mem = &s["cases"][0]["results"][0];
    assert_eq!(mem["kind"], "Failure", "{s}");
    assert_eq!(mem["type"], "leak");
    let msg = mem["message"].as_str().expect("message");
    assert!(
        msg.starts_with("leak: +") && msg.contains("MiB/min") && msg.contains("95% interval ["),
        "{msg}"
    );
    let body = mem["text"].as_str().expect("text");
    for needle in [
        "rate: +",
        "95% interval: [",
        "threshold: 0.1 MiB/min",
        "smallest detectable leak: ",
        "report: ",
    ] {
        assert!(body.contains(needle), "{needle} in {body}");
    }
    // The report path in the failure is the run's real report.
    let report = body
        .lines()
        .find_map(|l| l.strip_prefix("report: "))
        .expect("report line");
    let r: Value = serde_json::from_str(
        &std::fs::read_to_string(if Path::new(report).is_absolute() {
            Path::new(report).to_path_buf()
        } else {
            std::env::current_dir().expect("cwd").join(report)
        })
        .expect("the report named in the JUnit file exists"),
    )
    .expect("report json");
    assert_eq!(r["verdict"], "leak");
    // Markdown: the verdict table of the gate metrics, with the smallest detectable leak.
    let summary = std::fs::read_to_string(&md).expect("summary");
    let rows = table_rows(&summary);
    assert_eq!(
        rows[0],
        [
            "metric",
            "verdict",
            "rate",
            "95% interval",
            "threshold",
            "smallest detectable leak"
        ]
    );
    assert_eq!(rows.len(), 4, "{summary}");
    assert_eq!(rows[1][0], "rss_anon_bytes");
    assert!(rows[1][1].contains("LEAK"), "{summary}");
    assert!(
        rows[1][2].ends_with("MiB/min") && rows[1][5].ends_with("MiB/min"),
        "{summary}"
    );
    let min_det = r["metrics"]["rss_anon_bytes"]["evidence"]["min_detectable_per_min"]
        .as_f64()
        .expect("min detectable");
    assert_eq!(rows[1][5], format!("{min_det:.3} MiB/min"));
    if let Some(html_rows) = rendered_rows(&summary) {
        assert_eq!(html_rows.len(), 4, "{html_rows:?}");
        assert_eq!(html_rows[1][0], "rss_anon_bytes", "escapes render away");
        assert_eq!(html_rows[1][5], format!("{min_det:.3} MiB/min"));
    }
    // GitHub's step summary: appended to, not replaced.
    let appended = std::fs::read_to_string(&step).expect("step summary");
    assert!(
        appended.starts_with("## an earlier step's summary\n\n"),
        "{appended}"
    );
    assert!(appended.ends_with(&summary), "{appended}");
}

#[test]
#[cfg_attr(
    not(feature = "live"),
    ignore = "live tier: cargo test --features live"
)]
fn resume_keeps_the_ci_outputs_of_the_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let junit = dir.path().join("clean.xml");
    // A relative --junit, resumed from another directory, lands where the run said.
    let mut child = ls(&state)
        .current_dir(dir.path())
        .args([
            "run",
            "--name",
            "ci-clean",
            "--plain",
            "--warmup",
            "2s",
            "--check-every",
            "2s",
            "--sample-every",
            "200ms",
            "--duration",
            "6s",
            "--junit",
            "clean.xml",
        ])
        .env_remove("GITHUB_STEP_SUMMARY")
        .arg("--")
        .arg(bin())
        .args(["workload", "clean"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let status = state.join("runs/ci-clean/status.json");
    common::wait_for("status file", Duration::from_secs(20), || status.exists());
    std::thread::sleep(Duration::from_millis(500));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill");
    let _ = child.wait();
    assert!(!junit.exists(), "nothing written before the end");
    let o = Command::new(bin())
        .arg("--state-dir")
        .arg(&state)
        .args(["resume", "ci-clean"])
        .current_dir("/")
        .env_remove("GITHUB_STEP_SUMMARY")
        .output()
        .expect("runs");
    assert!(matches!(o.status.code(), Some(0) | Some(3)), "{}", text(&o));
    assert_valid_junit(&junit);
    let s = &junitparser(&junit)[0];
    assert_eq!(s["name"], "leak-sentinel run ci-clean");
    assert_eq!(s["failures"], 0, "{s}");
    assert_eq!(s["errors"], 0, "{s}");
}

#[test]
fn bad_ci_output_paths_are_usage_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    for flag in ["--junit", "--summary-md"] {
        let o = ls(dir.path())
            .args([
                "run",
                "--name",
                "x",
                flag,
                "/no/such/dir/out.xml",
                "--",
                "true",
            ])
            .output()
            .expect("runs");
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(
            err.contains(&flag[2..]) && err.contains("does not exist"),
            "{err}"
        );
    }
}

// ---- scan ----

const END: i64 = 1_700_003_600;
const MIB: f64 = 1_048_576.0;

/// A recorded `query_range` answer: two series over [END-1h, END] every 30 s — `leaky` grows
/// 1 MiB/min, `flat` stays; `startup`, when asked, climbs 60 MiB in the first 5 minutes (a
/// server's own start-up), then stays flat.
fn answer(with_startup: bool) -> String {
    let noise = |i: i64, k: f64| ((i as f64 * 12.9898 + k).sin() * 43758.5453).fract() * 2.0 - 1.0;
    let points = |f: &dyn Fn(i64) -> f64| -> Vec<Value> {
        (0..=120)
            .map(|i| {
                let t = END - 3600 + i * 30;
                serde_json::json!([t, format!("{}", f(i))])
            })
            .collect()
    };
    let mut result = vec![];
    if with_startup {
        result.push(serde_json::json!({"metric": {"job": "api", "instance": "startup"},
            "values": points(&|i| (100.0 + 60.0 * (i.min(10) as f64 / 10.0) + 0.3 * noise(i, 3.0)) * MIB)}));
    } else {
        result.push(
            serde_json::json!({"metric": {"job": "api", "instance": "leaky|<b>"},
            "values": points(&|i| (100.0 + (i * 30) as f64 / 60.0 + 0.5 * noise(i, 1.0)) * MIB)}),
        );
        result.push(
            serde_json::json!({"metric": {"job": "api", "instance": "flat"},
            "values": points(&|i| (200.0 + 0.5 * noise(i, 2.0)) * MIB)}),
        );
    }
    serde_json::json!({"status": "success", "data": {"resultType": "matrix", "result": result}})
        .to_string()
}

/// Serves `body` to every request on loopback (after `delay`), for as long as the test runs.
fn serve(body: String, delay: Duration) -> String {
    let server = tiny_http::Server::http("127.0.0.1:0").expect("bind");
    let port = server.server_addr().to_ip().expect("ip").port();
    std::thread::spawn(move || {
        for req in server.incoming_requests() {
            let body = body.clone();
            std::thread::spawn(move || {
                std::thread::sleep(delay);
                let _ = req.respond(
                    tiny_http::Response::from_string(body).with_header(
                        "Content-Type: application/json"
                            .parse::<tiny_http::Header>()
                            .expect("header"),
                    ),
                );
            });
        }
    });
    format!("http://127.0.0.1:{port}")
}

fn scan(url: &str, extra: &[&str]) -> std::process::Command {
    let mut c = Command::new(bin());
    c.args([
        "scan",
        "--url",
        url,
        "--query",
        "process_resident_memory_bytes",
        "--range",
        "1h",
        "--step",
        "30s",
    ])
    .args(["--end", &END.to_string()])
    .args(extra)
    .env_remove("GITHUB_STEP_SUMMARY");
    c
}

#[test]
#[cfg_attr(
    not(feature = "live"),
    ignore = "live tier (validated with xmllint and junitparser): cargo test --features live"
)]
fn a_scan_writes_one_testsuite_per_series_and_a_summary_table() {
    let url = serve(answer(false), Duration::ZERO);
    let dir = tempfile::tempdir().expect("tempdir");
    let (junit, md, step) = (
        dir.path().join("scan.xml"),
        dir.path().join("scan.md"),
        dir.path().join("step"),
    );
    let o = scan(&url, &[])
        .arg("--junit")
        .arg(&junit)
        .arg("--summary-md")
        .arg(&md)
        .env("GITHUB_STEP_SUMMARY", &step)
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert_valid_junit(&junit);
    let suites = junitparser(&junit);
    assert_eq!(suites.as_array().expect("suites").len(), 2, "{suites}");
    let leaky = suites
        .as_array()
        .expect("suites")
        .iter()
        .find(|s| s["name"].as_str().is_some_and(|n| n.contains("leaky|<b>")))
        .expect("the leaking series, its label intact");
    assert_eq!(leaky["tests"], 1);
    assert_eq!(leaky["cases"][0]["name"], "process_resident_memory_bytes");
    assert_eq!(leaky["cases"][0]["results"][0]["kind"], "Failure");
    let flat = suites
        .as_array()
        .expect("suites")
        .iter()
        .find(|s| s["name"].as_str().is_some_and(|n| n.contains("flat")))
        .expect("flat");
    assert_eq!(flat["failures"], 0, "{flat}");
    let summary = std::fs::read_to_string(&md).expect("summary");
    let rows = table_rows(&summary);
    assert_eq!(rows[0][0], "series");
    assert_eq!(rows.len(), 3, "{summary}");
    assert!(rows[1][1].contains("LEAK"), "most severe first: {summary}");
    assert!(
        !summary.contains("<b>"),
        "labels cannot inject HTML: {summary}"
    );
    if let Some(html_rows) = rendered_rows(&summary) {
        assert_eq!(
            html_rows.len(),
            3,
            "the | in a label does not split a row: {html_rows:?}"
        );
        assert_eq!(html_rows[1][0], "{instance=\"leaky|<b>\", job=\"api\"}");
    }
    assert_eq!(std::fs::read_to_string(&step).expect("step"), summary);
}

#[test]
#[cfg_attr(
    not(feature = "live"),
    ignore = "live tier (validated with xmllint and junitparser): cargo test --features live"
)]
fn scan_warms_up_a_tenth_of_the_range_by_default() {
    let url = serve(answer(true), Duration::ZERO);
    let dir = tempfile::tempdir().expect("tempdir");
    let junit = dir.path().join("w.xml");
    let judged = |extra: &[&str]| -> (Option<i32>, Value) {
        let o = scan(&url, extra)
            .arg("--junit")
            .arg(&junit)
            .output()
            .expect("runs");
        (o.status.code(), junitparser(&junit)[0].clone())
    };
    // Default: 10 % of 1 h = 6 min skipped, so the start-up climb (first 5 min) is not judged.
    let (code, s) = judged(&[]);
    assert_ne!(code, Some(1), "{s}");
    let t = s["cases"][0]["time"].as_f64().expect("time");
    assert!((3000.0..=3240.0).contains(&t), "judged {t} s of 3600: {s}");
    // --warmup 0s judges the whole hour, the climb included.
    let (_, s0) = judged(&["--warmup", "0s"]);
    let t0 = s0["cases"][0]["time"].as_f64().expect("time");
    assert!(t0 > 3500.0, "{s0}");
    // A warm-up as long as the range is refused.
    let o = scan(&url, &["--warmup", "2h"]).output().expect("runs");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

#[test]
fn scan_says_plainly_when_it_cannot_connect() {
    let url = format!("http://127.0.0.1:{}", free_port());
    // The default 6 h range is fetched in 4 chunks: the error is about the server, not a chunk.
    let o = Command::new(bin())
        .args(["scan", "--url", &url, "--query", "up"])
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!("cannot connect to {url}: connection refused")),
        "{err}"
    );
    assert!(!err.contains("chunk"), "{err}");
}

#[test]
fn scan_limits_are_flags_with_the_environment_as_fallback() {
    let url = serve(answer(false), Duration::ZERO);
    // --max-bytes: the answer (~10 KiB) is over 2 KiB.
    let o = scan(&url, &["--max-bytes", "2KiB"]).output().expect("runs");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("2048 bytes"),
        "{}",
        text(&o)
    );
    // The flag wins over the environment (a bad variable is not even read).
    let o = scan(&url, &["--max-bytes", "64MiB"])
        .env("LEAK_SENTINEL_SCAN_MAX_BYTES", "bogus")
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    // The variable still works alone.
    let o = scan(&url, &[])
        .env("LEAK_SENTINEL_SCAN_MAX_BYTES", "2KiB")
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    // --max-points-total: 121 points per series asked, 50 allowed.
    let o = scan(&url, &["--max-points-total", "50"])
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("limit of 50"),
        "{}",
        text(&o)
    );
    // --timeout: an answer 20 s late is given up after 1 s.
    let slow = serve(answer(false), Duration::from_secs(20));
    let t0 = std::time::Instant::now();
    let o = scan(&slow, &["--timeout", "1s"]).output().expect("runs");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("deadline"),
        "{}",
        text(&o)
    );
    assert!(t0.elapsed() < Duration::from_secs(10));
    // Bad values: one line, exit 2, naming the flag.
    for (flag, v) in [
        ("--max-bytes", "12"),
        ("--max-bytes", "lots"),
        ("--max-points-total", "1"),
        ("--timeout", "0s"),
        ("--timeout", "soon"),
    ] {
        let o = scan(&url, &[flag, v]).output().expect("runs");
        assert_eq!(o.status.code(), Some(2), "{flag} {v}: {}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains(flag), "{err}");
    }
}

/// Serves, to every request, an answer that starts with `head` and repeats `unit` until the
/// client stops reading (60 s at most); the port.
fn serve_endless(head: &'static str, unit: &'static str) -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { break };
            std::thread::spawn(move || {
                let _ = conn.set_read_timeout(Some(Duration::from_millis(500)));
                let _ = conn.read(&mut [0u8; 8192]);
                let chunk = unit.repeat(65536 / unit.len() + 1);
                let started = std::time::Instant::now();
                let _ = conn.write_all(
                    format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n{head}")
                        .as_bytes(),
                );
                while started.elapsed() < Duration::from_secs(60)
                    && conn.write_all(chunk.as_bytes()).is_ok()
                {}
            });
        }
    });
    port
}

/// Runs `scan` against the endless answer on `port` and polls the child's peak resident memory
/// (`VmHWM` in /proc/PID/status is a high-water mark: its last reading is the peak): the exit
/// code, stderr and the peak in bytes.
fn scan_endless(port: u16, env: &[(&str, &str)]) -> (Option<i32>, String, u64) {
    let mut c = scan(&format!("http://127.0.0.1:{port}"), &[]);
    c.envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("spawns");
    let status_file = format!("/proc/{}/status", child.id());
    let mut pipe = child.stderr.take().expect("piped");
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut pipe, &mut s);
        s
    });
    let mut peak = 0u64;
    let status = loop {
        let hwm = std::fs::read_to_string(&status_file)
            .ok()
            .and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix("VmHWM:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            })
            .unwrap_or(0);
        peak = peak.max(hwm * 1024);
        if let Some(st) = child.try_wait().expect("waits") {
            break st;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    (status.code(), err.join().expect("stderr read"), peak)
}

const ENDLESS_SERIES: &str =
    r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"a":"b"},"values":["#;
const ENDLESS_POINT: &str = r#"[1700000000,"104857600"],"#;
const MB64: u64 = 64 << 20;

#[test]
fn an_endless_scan_answer_stops_at_the_byte_cap_in_memory_bounded_by_the_points_kept() {
    let port = serve_endless(ENDLESS_SERIES, ENDLESS_POINT);
    let (code, err, peak) = scan_endless(port, &[("LEAK_SENTINEL_SCAN_MAX_BYTES", "64MiB")]);
    assert_eq!(code, Some(2), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("max-bytes") && err.contains(&MB64.to_string()),
        "{err}"
    );
    // Before the parse kept only the points it may judge, it held every point read: ~50 MiB.
    assert!(
        peak > 0 && peak < MB64 / 4,
        "peak RSS {peak} bytes for {MB64} bytes read"
    );
}

#[test]
#[cfg_attr(
    not(feature = "live"),
    ignore = "live tier (reads 512 MiB): cargo test --features live"
)]
fn an_endless_scan_answer_at_the_default_cap_stays_small() {
    let port = serve_endless(ENDLESS_SERIES, ENDLESS_POINT);
    let (code, err, peak) = scan_endless(port, &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("max-bytes") && err.contains(&(512u64 << 20).to_string()),
        "{err}"
    );
    // It peaked at ~758 MiB before.
    assert!(peak > 0 && peak < 256 << 20, "peak RSS {peak} bytes");
}

#[test]
fn an_endless_string_or_flood_of_series_in_a_scan_answer_is_refused_early() {
    // One string that never ends: serde_json would buffer it whole.
    let port = serve_endless(
        r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"a":""#,
        "leak",
    );
    let (code, err, peak) = scan_endless(port, &[]);
    assert_eq!(code, Some(2), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("a string longer than 1048576 bytes"), "{err}");
    assert!(peak > 0 && peak < MB64 / 4, "peak RSS {peak} bytes");
    // Series without points, forever: their labels are charged to a memory budget (16 bytes per
    // point of max-points, at least 16 MiB), reached after ~1.5 MB read.
    let port = serve_endless(
        r#"{"status":"success","data":{"resultType":"matrix","result":["#,
        r#"{"metric":{"instance":"host-0000000000000000"},"values":[]},"#,
    );
    let (code, err, peak) = scan_endless(port, &[("LEAK_SENTINEL_SCAN_MAX_POINTS", "1000")]);
    assert_eq!(code, Some(2), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("more than 16777216 bytes of series labels"),
        "{err}"
    );
    assert!(peak > 0 && peak < 48 << 20, "peak RSS {peak} bytes");
}

#[test]
#[cfg_attr(
    not(feature = "live"),
    ignore = "live tier (validated with xmllint and junitparser): cargo test --features live"
)]
fn analyze_writes_junit_and_a_summary_for_a_recording() {
    let dir = tempfile::tempdir().expect("tempdir");
    let csv = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/traces/d2_python_leak_1mib_per_min.csv");
    let (xml, md) = (dir.path().join("a.xml"), dir.path().join("a.md"));
    let out = Command::new(bin())
        .arg("analyze")
        .arg(&csv)
        .arg("--junit")
        .arg(&xml)
        .arg("--summary-md")
        .arg(&md)
        .env_remove("GITHUB_STEP_SUMMARY")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_valid_junit(&xml);
    let parsed = junitparser(&xml);
    assert!(parsed.to_string().contains("rss_bytes"), "{parsed}");
    let summary = std::fs::read_to_string(&md).expect("summary");
    assert!(
        table_rows(&summary).iter().any(|r| r
            .first()
            .is_some_and(|c| c.replace('\\', "") == "rss_bytes")
            && r.iter().any(|c| c.contains("LEAK"))),
        "{summary}"
    );
}
