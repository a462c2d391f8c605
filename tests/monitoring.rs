//! The monitoring stack end to end: a real Prometheus (Debian's package, started here on
//! loopback) scrapes a live run and its stored values match the run's samples; a test HTTP
//! receiver records webhooks and Grafana annotations (paths, headers, bodies, order; the token
//! never lands on disk or in output); a receiver that hangs or fails does not delay sampling; the
//! dashboard queries only metrics the exporter serves.

mod common;

use assert_cmd::cargo::cargo_bin;
use common::{Kill, free_port};
use leak_sentinel::probe::Metric;
use leak_sentinel::store::Store;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn get(url: &str) -> Option<String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .into();
    agent.get(url).call().ok()?.body_mut().read_to_string().ok()
}

fn run_cmd(state: &Path, name: &str, duration: &str, extra: &[&str]) -> Command {
    let mut c = Command::new(cargo_bin("leak-sentinel"));
    c.arg("--state-dir").arg(state);
    c.args([
        "run",
        "--name",
        name,
        "--plain",
        "--warmup",
        "2s",
        "--check-every",
        "2s",
    ]);
    c.args([
        "--sample-every",
        "200ms",
        "--detail-every",
        "1s",
        "--duration",
        duration,
    ]);
    c.args(extra);
    c.arg("--")
        .arg(cargo_bin("leak-sentinel"))
        .args(["workload", "clean"]);
    c
}

#[test]
fn prometheus_scrapes_a_live_run_and_the_dashboard_queries_real_metrics() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mport, pport) = (free_port(), free_port());
    let cfg = dir.path().join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: leak-sentinel\n    static_configs:\n      - targets: ['127.0.0.1:{mport}']\n"
        ),
    )
    .expect("config");
    let prom = Kill(
        Command::new("prometheus")
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{pport}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus is installed (.ci/run installs Debian's prometheus)"),
    );
    let api = format!("http://127.0.0.1:{pport}");
    let t0 = Instant::now();
    while get(&format!("{api}/-/ready")).is_none() {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "prometheus did not start"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut run = run_cmd(
        dir.path(),
        "prom",
        "12s",
        &["--metrics-addr", &format!("127.0.0.1:{mport}")],
    )
    .stdout(Stdio::null())
    .spawn()
    .expect("runs");
    // The exporter's own output, read live, holds every metric the dashboard uses.
    let mut exposition = String::new();
    let t0 = Instant::now();
    while !exposition.contains("leak_sentinel_checks_total") {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "no checks exported: {exposition}"
        );
        std::thread::sleep(Duration::from_millis(300));
        exposition = get(&format!("http://127.0.0.1:{mport}/metrics")).unwrap_or_default();
    }
    let dash: Value = serde_json::from_slice(
        &Command::new(cargo_bin("leak-sentinel"))
            .args(["grafana", "dashboard"])
            .output()
            .expect("runs")
            .stdout,
    )
    .expect("dashboard json");
    let panels = dash["panels"].as_array().expect("panels");
    assert!(panels.len() >= 6);
    for p in panels {
        for t in p["targets"].as_array().expect("targets") {
            let expr = t["expr"].as_str().expect("expr");
            let names: Vec<&str> = leak_sentinel::publish::metrics::METRIC_NAMES
                .iter()
                .copied()
                .filter(|n| expr.contains(n))
                .collect();
            assert!(
                !names.is_empty(),
                "panel query names no exported metric: {expr}"
            );
            for n in names {
                assert!(
                    exposition.contains(n),
                    "{n} is not in the live /metrics output"
                );
            }
        }
    }
    assert_eq!(run.wait().expect("wait").code(), Some(0));
    // Prometheus's copy equals the run's own samples.
    let store = Store::open(dir.path()).expect("store");
    let r = store.find_run("prom").expect("q").expect("run");
    let samples = store.samples(r.id).expect("samples");
    let rss: Vec<f64> = samples
        .iter()
        .filter_map(|s| s.get(Metric::RssBytes))
        .collect();
    let (start, end) = (r.started_at.floor(), r.ended_at.expect("ended").ceil());
    let q = format!(
        "{api}/api/v1/query_range?query=leak_sentinel_target_value%7Bfield%3D%22rss_bytes%22%2Crun%3D%22prom%22%7D&start={start}&end={end}&step=1"
    );
    let v: Value = serde_json::from_str(&get(&q).expect("query")).expect("json");
    let values = v["data"]["result"][0]["values"]
        .as_array()
        .expect("a scraped series")
        .clone();
    assert!(values.len() >= 5, "{v}");
    for pair in &values {
        let x: f64 = pair[1].as_str().expect("value").parse().expect("number");
        assert!(rss.contains(&x), "{x} is not one of the run's samples");
    }
    let q = format!(
        "{api}/api/v1/query?query=max_over_time(leak_sentinel_checks_total%7Brun%3D%22prom%22%2Cresult%3D%22passed%22%7D%5B5m%5D)&time={end}"
    );
    let v: Value = serde_json::from_str(&get(&q).expect("query")).expect("json");
    let passed: f64 = v["data"]["result"][0]["value"][1]
        .as_str()
        .expect("checks")
        .parse()
        .expect("number");
    let checks = store.checks(r.id).expect("checks").len() as f64;
    assert!(passed >= 1.0 && passed <= checks, "{passed} of {checks}");
    drop(prom);
}

/// One recorded request: method, path, headers (lower-case names), body.
type Recorded = (String, String, Vec<(String, String)>, String);
type Log = Arc<Mutex<Vec<Recorded>>>;

/// A recording HTTP receiver; `hang` and `fail` pick paths that misbehave.
fn receiver(hang: &'static str, fail: &'static str) -> (u16, Log) {
    let server = tiny_http::Server::http("127.0.0.1:0").expect("bind");
    let port = server.server_addr().to_ip().expect("ip").port();
    let log = Arc::new(Mutex::new(Vec::new()));
    let rec = log.clone();
    std::thread::spawn(move || {
        for mut req in server.incoming_requests() {
            let mut body = String::new();
            let _ = req.as_reader().read_to_string(&mut body);
            let headers = req
                .headers()
                .iter()
                .map(|h| (h.field.to_string().to_lowercase(), h.value.to_string()))
                .collect();
            let url = req.url().to_string();
            rec.lock()
                .expect("lock")
                .push((req.method().to_string(), url.clone(), headers, body));
            if !hang.is_empty() && url.starts_with(hang) {
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_secs(30));
                    let _ = req.respond(tiny_http::Response::from_string("late"));
                });
                continue;
            }
            let resp = if !fail.is_empty() && url.starts_with(fail) {
                tiny_http::Response::from_string("boom").with_status_code(500)
            } else {
                tiny_http::Response::from_string("{\"id\": 7, \"message\": \"ok\"}")
            };
            let _ = req.respond(resp);
        }
    });
    (port, log)
}

fn files_contain(dir: &Path, needle: &str) -> bool {
    std::fs::read_dir(dir).is_ok_and(|rd| {
        rd.flatten().any(|e| {
            let p = e.path();
            if p.is_dir() {
                files_contain(&p, needle)
            } else {
                std::fs::read(&p)
                    .is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle.as_bytes()))
            }
        })
    })
}

#[test]
fn webhooks_and_annotations_arrive_in_order_and_the_token_stays_secret() {
    let (port, log) = receiver("", "");
    let dir = tempfile::tempdir().expect("tempdir");
    let base = format!("http://127.0.0.1:{port}");
    let token = "s3cr3t-token-for-tests";
    let out = run_cmd(
        dir.path(),
        "hooks",
        "4s",
        &[
            "--notify",
            &format!("{base}/hook"),
            "--notify",
            &format!("{base}/slack"),
            "--grafana-url",
            &base,
        ],
    )
    .env("GRAFANA_TOKEN", token)
    .output()
    .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let reqs = log.lock().expect("lock").clone();
    let hook: Vec<Value> = reqs
        .iter()
        .filter(|r| r.1 == "/hook")
        .map(|r| serde_json::from_str(&r.3).expect("json body"))
        .collect();
    let events: Vec<&str> = hook.iter().filter_map(|b| b["event"].as_str()).collect();
    assert_eq!(events.first(), Some(&"start"), "{events:?}");
    assert_eq!(events.last(), Some(&"completed"), "{events:?}");
    assert_eq!(hook.last().expect("completion")["details"]["passed"], true);
    assert_eq!(hook[0]["run"], "hooks");
    let anns: Vec<&Recorded> = reqs
        .iter()
        .filter(|r| r.1.starts_with("/api/annotations"))
        .collect();
    assert_eq!(anns[0].0, "POST");
    assert_eq!(anns[0].1, "/api/annotations");
    let auth = anns[0]
        .2
        .iter()
        .find(|(k, _)| k == "authorization")
        .map(|(_, v)| v.as_str());
    assert_eq!(auth, Some(format!("Bearer {token}").as_str()));
    let first: Value = serde_json::from_str(&anns[0].3).expect("json");
    assert_eq!(first["tags"][0], "leak-sentinel");
    assert!(first["time"].as_i64().expect("ms") > 1_000_000_000_000);
    // The run's region: the start annotation (id 7 from the receiver) gets its end.
    let patch = anns.iter().find(|r| r.0 == "PATCH").expect("region end");
    assert_eq!(patch.1, "/api/annotations/7");
    let end: Value = serde_json::from_str(&patch.3).expect("json");
    assert!(end["timeEnd"].as_i64().expect("ms") >= first["time"].as_i64().expect("ms"));
    assert!(
        end["tags"]
            .as_array()
            .expect("tags")
            .iter()
            .any(|t| t == "clean")
    );
    // Deliveries are recorded as events; the token is nowhere on disk or in the output.
    let store = Store::open(dir.path()).expect("store");
    let r = store.find_run("hooks").expect("q").expect("run");
    assert!(
        store
            .events(r.id)
            .expect("events")
            .iter()
            .any(|e| e.kind == "notified")
    );
    assert!(
        !files_contain(dir.path(), token),
        "token written under the state dir"
    );
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains(token)
            && !String::from_utf8_lossy(&out.stderr).contains(token)
    );
}

#[test]
fn a_receiver_that_hangs_or_fails_does_not_delay_sampling() {
    let (port, log) = receiver("/api/annotations", "/hook");
    let dir = tempfile::tempdir().expect("tempdir");
    let base = format!("http://127.0.0.1:{port}");
    let out = run_cmd(
        dir.path(),
        "slow",
        "6s",
        &[
            "--notify",
            &format!("{base}/hook"),
            "--notify-format",
            "slack",
            "--grafana-url",
            &base,
        ],
    )
    .env("GRAFANA_TOKEN", "x")
    .output()
    .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let store = Store::open(dir.path()).expect("store");
    let r = store.find_run("slow").expect("q").expect("run");
    let t: Vec<f64> = store
        .samples(r.id)
        .expect("samples")
        .iter()
        .map(|s| s.t)
        .collect();
    let worst = t.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
    // A stalled loop would show a gap of 5 s or more (the request time limit); allow for a busy CI machine.
    assert!(worst < 2.5, "a gap of {worst} s between samples at 200 ms");
    let events = store.events(r.id).expect("events");
    assert!(
        events
            .iter()
            .any(|e| e.kind == "notify_failed" && e.detail.contains("HTTP 500")),
        "{events:?}"
    );
    // Slack-compatible bodies, retried.
    let reqs = log.lock().expect("lock").clone();
    let hooks: Vec<Value> = reqs
        .iter()
        .filter(|r| r.1 == "/hook")
        .map(|r| serde_json::from_str(&r.3).expect("json"))
        .collect();
    assert!(hooks.len() >= 3, "retries: {}", hooks.len());
    assert!(
        hooks[0]["text"]
            .as_str()
            .expect("text")
            .starts_with("leak-sentinel slow")
    );
}

#[test]
fn annotate_command_and_template_file() {
    let (port, log) = receiver("", "");
    let out = Command::new(cargo_bin("leak-sentinel"))
        .args([
            "annotate",
            "--text",
            "W2 GC Optimization Deployed",
            "--tags",
            "milestone,optimization",
        ])
        .args(["--grafana-url", &format!("http://127.0.0.1:{port}")])
        .env("GRAFANA_TOKEN", "tok")
        .output()
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reqs = log.lock().expect("lock").clone();
    let body: Value = serde_json::from_str(&reqs[0].3).expect("json");
    assert_eq!(body["text"], "W2 GC Optimization Deployed");
    assert_eq!(
        body["tags"],
        serde_json::json!(["milestone", "optimization"])
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("grafana_annotations.json");
    let out = Command::new(cargo_bin("leak-sentinel"))
        .args(["grafana", "templates", "-o"])
        .arg(&f)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0));
    let t: Value = serde_json::from_str(&std::fs::read_to_string(&f).expect("file")).expect("json");
    for k in ["milestone", "optimization", "alert"] {
        assert!(t["templates"][k]["tags"].is_array(), "{k}");
    }
    assert!(
        t["webhook_example"]["curl"]
            .as_str()
            .expect("curl")
            .contains("/api/annotations")
    );
    // Bad URLs are usage errors.
    let out = Command::new(cargo_bin("leak-sentinel"))
        .args(["run", "--notify", "ftp://x", "--", "true"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
}
