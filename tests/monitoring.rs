//! The monitoring stack end to end: a real Prometheus (Debian's package, started here on
//! loopback) scrapes a live run and its stored values match the run's samples; a test HTTP
//! receiver records webhooks and Grafana annotations (paths, headers, bodies, order; the token
//! never lands on disk or in output); a receiver that hangs or fails does not delay sampling; the
//! dashboard queries only series a live /metrics serves; `promtool check metrics` accepts the text
//! format; content negotiation answers text 0.0.4 or OpenMetrics.

mod common;

use assert_cmd::cargo::cargo_bin;
use common::{Kill, WIDE_THRESHOLDS, assert_ran_to_its_end, free_port};
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

/// What Prometheus 2.x sends.
const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// GET with an optional Accept header: (Content-Type, body).
fn scrape(url: &str, accept: Option<&str>) -> Option<(String, String)> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .into();
    let mut req = agent.get(url);
    if let Some(a) = accept {
        req = req.header("Accept", a);
    }
    let mut resp = req.call().ok()?;
    let ctype = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    Some((ctype, resp.body_mut().read_to_string().ok()?))
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'-' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `promtool check metrics` (Debian's prometheus package) must accept `text` with no finding.
fn promtool_check(text: &str) {
    use std::io::Write;
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is installed (Debian's prometheus package)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("promtool");
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

type Labels = Vec<(String, String)>;
/// A label matcher: name, operator (`=`, `!=`, `=~`, `!~`), value.
type Matcher = (String, String, String);

/// The series of a text-format exposition: name and labels (values unescaped).
fn series(exposition: &str) -> Vec<(String, Labels)> {
    exposition
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (name, rest) = l
                .split_once('{')
                .unwrap_or((l.split(' ').next().unwrap_or(l), ""));
            let body = rest.rsplit_once('}').map_or("", |(b, _)| b);
            (
                name.to_string(),
                matchers(body).into_iter().map(|(k, _, v)| (k, v)).collect(),
            )
        })
        .collect()
}

/// `k="v", k!="v", k=~"v"` → (k, op, v), honouring quotes and backslash escapes.
fn matchers(body: &str) -> Vec<Matcher> {
    let mut out = Vec::new();
    let mut chars = body.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String =
            std::iter::from_fn(|| chars.next_if(|c| c.is_alphanumeric() || *c == '_')).collect();
        if key.is_empty() {
            return out;
        }
        let op: String = std::iter::from_fn(|| chars.next_if(|c| "=!~".contains(*c))).collect();
        assert_eq!(chars.next(), Some('"'), "a quoted value in {body}");
        let mut value = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(e) => value.push(e),
                    None => break,
                },
                '"' => break,
                c => value.push(c),
            }
        }
        out.push((key, op, value));
    }
}

/// Whether every `leak_sentinel_…` selector of a PromQL query matches a live series (equality
/// and inequality matchers checked; regex matchers such as `run=~"$run"` are the dashboard's
/// variables).
fn served(live: &[(String, Labels)], query: &str) -> Result<(), String> {
    let selectors = selectors(query);
    if selectors.is_empty() {
        return Err("names no leak-sentinel metric".into());
    }
    for (name, matchers) in selectors {
        let found = live.iter().any(|(n, labels)| {
            *n == name
                && matchers.iter().all(|(k, op, v)| {
                    let have = labels.iter().find(|(lk, _)| lk == k).map(|(_, lv)| lv);
                    match op.as_str() {
                        "=" => have == Some(v),
                        "!=" => have.is_some_and(|h| h != v),
                        _ => true,
                    }
                })
        });
        if !found {
            return Err(format!("no live series {name}{matchers:?}"));
        }
    }
    Ok(())
}

/// Every `leak_sentinel_…` selector in a PromQL expression with its label matchers.
fn selectors(expr: &str) -> Vec<(String, Vec<Matcher>)> {
    let mut out = Vec::new();
    let mut rest = expr;
    while let Some(i) = rest.find("leak_sentinel_") {
        rest = &rest[i..];
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        let name = rest[..end].to_string();
        rest = &rest[end..];
        let mut m = Vec::new();
        if let Some(body) = rest.strip_prefix('{') {
            let close = body.find('}').expect("closing brace");
            m = matchers(&body[..close]);
            rest = &body[close..];
        }
        out.push((name, m));
    }
    out
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
    // These runs test monitoring, not verdicts: the clean workload's private memory moves by a
    // few pages, which a run of seconds cannot bound within 0.1 MiB/min (it would end
    // inconclusive), nor on a busy machine within 5 MiB/min. The tests assert that the run ran
    // to its end, passed or inconclusive, and that what was published agrees with its report.
    c.args(WIDE_THRESHOLDS);
    c.args(extra);
    c.arg("--")
        .arg(cargo_bin("leak-sentinel"))
        .args(["workload", "clean"]);
    c
}

#[test]
#[cfg_attr(
    not(feature = "live"),
    ignore = "live tier: cargo test --features live"
)]
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
    // The exporter's own output, read live, holds every series the dashboard queries.
    let url = format!("http://127.0.0.1:{mport}/metrics");
    let mut exposition = String::new();
    let t0 = Instant::now();
    while !exposition.contains("leak_sentinel_clean_streak_seconds{")
        || !exposition.contains("kind=\"pss\"")
    {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "no checks exported: {exposition}"
        );
        std::thread::sleep(Duration::from_millis(300));
        exposition = scrape(&url, None).map(|r| r.1).unwrap_or_default();
    }
    // Content negotiation: text 0.0.4 by default and for text/plain, OpenMetrics when asked.
    let (ctype, text) = scrape(&url, Some("text/plain;version=0.0.4")).expect("text");
    assert_eq!(ctype, "text/plain; version=0.0.4; charset=utf-8");
    assert!(!text.contains("# EOF"));
    let (ctype, om) = scrape(&url, Some(PROMETHEUS_ACCEPT)).expect("openmetrics");
    assert_eq!(
        ctype,
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    assert!(om.ends_with("# EOF\n"), "{om}");
    assert!(om.contains("# TYPE leak_sentinel_checks counter\n"));
    // promtool lints the live text format: names, units, HELP lines, counters.
    promtool_check(&exposition);
    let live = series(&exposition);
    for n in leak_sentinel::publish::metrics::METRIC_NAMES {
        assert!(
            live.iter().any(|(name, _)| name == n),
            "{n} is not in the live /metrics output:\n{exposition}"
        );
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
    let mut queries: Vec<String> = dash["templating"]["list"]
        .as_array()
        .expect("templating")
        .iter()
        .filter_map(|v| v["query"].as_str())
        .filter(|q| q.contains("leak_sentinel_"))
        .map(str::to_string)
        .collect();
    for p in panels {
        for t in p["targets"].as_array().expect("targets") {
            queries.push(t["expr"].as_str().expect("expr").to_string());
        }
    }
    for q in &queries {
        if let Err(e) = served(&live, q) {
            panic!("dashboard query {q}: {e}\n{exposition}");
        }
    }
    // The check is not vacuous: a wrong name or label value is caught.
    for wrong in [
        "leak_sentinel_target_value{field=\"rss_bytes\"}",
        "leak_sentinel_memory_bytes{kind=\"rss_bytes\",run=~\"$run\"}",
        "rate(cpu_seconds_total[5m])",
    ] {
        assert!(served(&live, wrong).is_err(), "{wrong}");
    }
    let code = run.wait().expect("wait").code();
    assert_ran_to_its_end(dir.path(), "prom", code, "");
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
        "{api}/api/v1/query_range?query=leak_sentinel_memory_bytes%7Bkind%3D%22rss%22%2Crun%3D%22prom%22%7D&start={start}&end={end}&step=1"
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
    // Prometheus scraped OpenMetrics (its Accept prefers it) without a parse error, and stored
    // the new families: the memory gate (private memory) threshold in bytes/s, the FD threshold
    // per second, descriptors by kind, the sample counter.
    let v: Value = serde_json::from_str(&get(&format!("{api}/api/v1/targets")).expect("targets"))
        .expect("json");
    let target = &v["data"]["activeTargets"][0];
    assert_eq!(target["lastError"], "", "{target}");
    for (query, at_least) in [
        (
            "leak_sentinel_memory_growth_threshold_bytes_per_second{kind=\"private\",run=\"prom\"}",
            1747.0,
        ),
        (
            "leak_sentinel_fd_growth_threshold_per_second{kind=\"all\",run=\"prom\"}",
            0.0016,
        ),
        ("leak_sentinel_open_fds{kind=\"all\",run=\"prom\"}", 1.0),
        ("leak_sentinel_samples_total{run=\"prom\"}", 5.0),
    ] {
        let q = format!(
            "{api}/api/v1/query?query=max_over_time({}[5m])&time={end}",
            urlencode(query)
        );
        let v: Value = serde_json::from_str(&get(&q).expect("query")).expect("json");
        let x: f64 = v["data"]["result"][0]["value"][1]
            .as_str()
            .unwrap_or_else(|| panic!("{query}: {v}"))
            .parse()
            .expect("number");
        assert!(x >= at_least, "{query} = {x}");
    }
    drop(prom);
}

#[test]
#[cfg_attr(
    not(feature = "live"),
    ignore = "live tier: cargo test --features live"
)]
fn promtool_accepts_every_family_with_awkward_label_values() {
    use leak_sentinel::analyze::{Settings, judge_column};
    use leak_sentinel::probe::Sample;
    use leak_sentinel::publish::metrics::{Exporter, Format};
    let e = Exporter::start(
        "127.0.0.1:0",
        "W3 \"nightly\" C:\\soak\nline 2 ünïcode",
        "production",
    )
    .expect("bind");
    let mut s = Sample::at(1_790_000_000.25);
    for (i, m) in Metric::ALL.iter().enumerate() {
        s.set(*m, Some(4096.0 * (i + 1) as f64));
    }
    e.sample(&s);
    let t: Vec<f64> = (0..100).map(|i| f64::from(i) * 10.0).collect();
    let results: Vec<_> = ["rss_bytes", "cgroup_memory_bytes", "fds", "threads"]
        .iter()
        .map(|n| {
            let v: Vec<f64> = t.iter().map(|x| 1e6 + x * 3.0).collect();
            judge_column(n, &t, &v, &Settings::default(), 60.0)
        })
        .collect();
    e.check(&results, true, 0.0, 21600.0);
    e.set_state(leak_sentinel::store::RunStatus::Failed);
    let (ctype, body) = scrape(&format!("http://{}/metrics", e.addr), None).expect("scrape");
    assert!(ctype.starts_with("text/plain; version=0.0.4"));
    assert_eq!(body, e.render_as(Format::Text));
    promtool_check(&body);
    // Label values come back unescaped.
    let live = series(&body);
    assert!(
        live.iter()
            .all(|(_, l)| l[0].1 == "W3 \"nightly\" C:\\soak\nline 2 ünïcode")
    );
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
#[cfg_attr(
    not(feature = "live"),
    ignore = "live tier: cargo test --features live"
)]
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
    let code = out.status.code();
    let report = assert_ran_to_its_end(
        dir.path(),
        "hooks",
        code,
        &String::from_utf8_lossy(&out.stdout),
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
    // The completion tells what the run's report says, whichever way four seconds went.
    let details = &hook.last().expect("completion")["details"];
    assert_eq!(details["passed"], report["passed"], "{details}");
    assert_eq!(details["verdict"], report["verdict"], "{details}");
    assert_eq!(
        details["exit_code"].as_i64(),
        code.map(i64::from),
        "{details}"
    );
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
            .any(|t| *t == report["verdict"]),
        "the region's end is tagged with the verdict: {end}"
    );
    // Deliveries are recorded as events; the token is nowhere on disk or in the output.
    let store = Store::open(dir.path()).expect("store");
    let r = store.find_run("hooks").expect("q").expect("run");
    assert!(
        store
            .events(r.id)
            .expect("events")
            .iter()
            .any(|e| e.kind == leak_sentinel::store::EventKind::Notified)
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
#[cfg_attr(
    not(feature = "live"),
    ignore = "live tier: cargo test --features live"
)]
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
    assert_ran_to_its_end(
        dir.path(),
        "slow",
        out.status.code(),
        &String::from_utf8_lossy(&out.stdout),
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
            .any(|e| e.kind == leak_sentinel::store::EventKind::NotifyFailed
                && e.detail.contains("HTTP 500")),
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
