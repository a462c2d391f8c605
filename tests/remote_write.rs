//! `run --remote-write` against real engines started here on 127.0.0.1: Debian's Prometheus
//! (with `--web.enable-remote-write-receiver`) and VictoriaMetrics. Runs of real programs (a
//! CPython loop that leaks 1 MiB every 100 ms, and one that sleeps) push their samples, checks
//! and outcome; PromQL finds them under the documented names and labels. An engine that is
//! down for a while loses nothing that fits in the queue; a full queue's drops are counted and
//! equal to what never arrived; a sentinel killed mid-run loses at most its queue, and `resume`
//! says how much. The fast tier checks the command line's refusals.

mod common;

use common::{Kill, bin, free_port, ls};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A CPython loop that leaks 1 MiB every 100 ms.
const LEAK: &str =
    "import time\nkeep = []\nwhile True:\n    keep.append(b'x' * (1 << 20)); time.sleep(0.1)";
/// A CPython process that holds still.
const IDLE: &str = "import time\ntime.sleep(600)";

fn wait_ready(url: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if ureq::get(url).call().is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{url} never became ready");
}

/// Prometheus with the remote-write receiver on `port`; its base URL.
fn prometheus(dir: &Path, port: u16) -> (Kill, String) {
    let cfg = dir.join("prometheus.yml");
    std::fs::write(&cfg, "global:\n  scrape_interval: 1h\n").expect("cfg");
    let k = Kill(
        Command::new("prometheus")
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("prom").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--web.enable-remote-write-receiver")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus is installed (.ci/run installs Debian's prometheus)"),
    );
    let url = format!("http://127.0.0.1:{port}");
    wait_ready(&format!("{url}/-/ready"));
    (k, url)
}

/// VictoriaMetrics on `port` with extra flags; its base URL (`scheme` http or https).
fn victoria(dir: &Path, port: u16, extra: &[String], scheme: &str) -> (Kill, String) {
    let k = Kill(
        Command::new("victoria-metrics")
            .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
            .arg(format!("-storageDataPath={}", dir.join("vm").display()))
            .arg("-retentionPeriod=100y")
            // Samples appear to queries at once, not after VictoriaMetrics' 30 s cache window.
            .arg("-search.latencyOffset=0s")
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("victoria-metrics is installed (.ci/run installs Debian's victoria-metrics)"),
    );
    let url = format!("{scheme}://127.0.0.1:{port}");
    if scheme == "http" {
        wait_ready(&format!("{url}/health"));
    } else {
        // Readiness over TLS is what the run checks; a plain connect is enough here.
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "victoria-metrics never listened");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    (k, url)
}

/// An instant PromQL query (at now) against `url`; its `data.result`.
fn query(url: &str, q: &str) -> Vec<Value> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    // At a time just ahead: "now" as an engine rounds it may leave out the last second.
    let at = common_now() + 5;
    let mut r = agent
        .get(&format!("{url}/api/v1/query"))
        .query("query", q)
        .query("time", at.to_string())
        .call()
        .unwrap_or_else(|e| panic!("query {q}: {e}"));
    let v: Value = r.body_mut().read_json().expect("json");
    assert_eq!(v["status"], "success", "{q}: {v}");
    v["data"]["result"].as_array().cloned().unwrap_or_default()
}

/// The single value of a query that must return one series.
fn one(url: &str, q: &str) -> f64 {
    let r = query(url, q);
    assert_eq!(r.len(), 1, "{q} on {url}: {r:?}");
    r[0]["value"][1]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{q}: {r:?}"))
}

/// Makes what VictoriaMetrics received searchable now.
fn vm_flush(url: &str) {
    ureq::get(&format!("{url}/internal/force_flush"))
        .call()
        .expect("flush");
}

/// `run` of `python3 -c code` with fast settings (a sample every 200 ms, a check every 2 s, a
/// warm-up of 2 s unless `extra` sets one) and `extra` flags.
fn run(state: &Path, name: &str, extra: &[&str], code: &str) -> Command {
    let mut c = ls(state);
    c.args(["run", "--name", name, "--plain", "--sample-every", "200ms"])
        .args(["--check-every", "2s"]);
    if !extra.contains(&"--warmup") {
        c.args(["--warmup", "2s"]);
    }
    // A few seconds decide memory; descriptors and threads of a process that holds still
    // would need a minute to be shown clean at 0.1/min, so their thresholds are wide here.
    c.args(["--fd-threshold", "60", "--thread-threshold", "60"])
        .args(extra)
        .args(["--", "python3", "-c", code]);
    c
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn report(state: &Path, name: &str) -> Value {
    common::report_json(state, name)
}

#[test]
#[cfg_attr(
    not(feature = "live"),
    ignore = "live tier: cargo test --features live"
)]
fn two_runs_push_to_prometheus_and_victoria_metrics_and_promql_finds_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_p, prom) = prometheus(dir.path(), free_port());
    let (_v, vm) = victoria(dir.path(), free_port(), &[], "http");
    let state = dir.path().join("state");
    let rw = [
        "--remote-write".to_string(),
        format!("{prom}/api/v1/write"),
        "--remote-write".to_string(),
        format!("{vm}/api/v1/write"),
    ];
    let rw: Vec<&str> = rw.iter().map(String::as_str).collect();
    let leaky = {
        let mut a = rw.clone();
        a.extend([
            "--duration",
            "20s",
            "--label",
            "commit=abc123",
            "--tag",
            "nightly",
        ]);
        run(&state, "rw-leak-20261207", &a, LEAK)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("runs")
    };
    let mut a = rw.clone();
    a.extend(["--duration", "4s", "--label", "commit=abc123"]);
    let clean = run(&state, "rw-clean-20261207", &a, IDLE)
        .output()
        .expect("runs");
    let leaky = leaky.wait_with_output().expect("runs");
    assert_eq!(leaky.status.code(), Some(1), "{}", text(&leaky));
    assert_eq!(clean.status.code(), Some(0), "{}", text(&clean));
    vm_flush(&vm);
    for (name, tag, outcome, verdict) in [
        ("rw-leak-20261207", "nightly", "leak", "leak"),
        ("rw-clean-20261207", "rw-clean", "passed", "clean"),
    ] {
        let r = report(&state, name);
        let samples = r["samples"].as_u64().expect("samples") as f64;
        let checks = r["checks"]["total"].as_u64().expect("checks") as f64;
        let rw = r["remote_write"]
            .as_array()
            .expect("remote_write in the report");
        assert_eq!(rw.len(), 2, "{rw:?}");
        for e in rw {
            assert_eq!(e["dropped_full"], 0, "{e}");
            assert_eq!(e["rejected"], 0, "{e}");
            assert_eq!(e["queued"], 0, "{e}");
            assert!(e["sent"].as_u64().unwrap_or(0) > 0, "{e}");
        }
        let status: Value = serde_json::from_slice(
            &std::fs::read(state.join("runs").join(name).join("status.json")).expect("status"),
        )
        .expect("status json");
        assert_eq!(status["remote_write"].as_array().map(Vec::len), Some(2));
        let sel = format!(
            "run=\"{name}\",tag=\"{tag}\",host=~\".+\",target=~\"python3 -c .*\",profile=\"standard\",commit=\"abc123\""
        );
        for url in [&prom, &vm] {
            // Every sample arrived: as many points of the gate memory as samples recorded.
            let n = one(
                url,
                &format!(
                    "count_over_time(leak_sentinel_memory_bytes{{kind=\"private\",{sel}}}[10m])"
                ),
            );
            assert_eq!(n, samples, "{name} on {url}");
            for q in [
                format!("leak_sentinel_open_fds{{kind=\"all\",{sel}}}[10m]"),
                format!("leak_sentinel_threads{{{sel}}}[10m]"),
                format!("leak_sentinel_memory_bytes{{kind=\"rss\",{sel}}}[10m]"),
            ] {
                assert_eq!(
                    one(url, &format!("count_over_time({q})")),
                    samples,
                    "{q} on {url}"
                );
            }
            assert_eq!(
                one(
                    url,
                    &format!("count_over_time(leak_sentinel_check_failed{{{sel}}}[10m])")
                ),
                checks,
                "{name}: every check on {url}"
            );
            assert_eq!(
                one(
                    url,
                    &format!(
                        "last_over_time(leak_sentinel_run_outcome{{outcome=\"{outcome}\",{sel}}}[10m])"
                    )
                ),
                1.0,
                "{name} on {url}"
            );
            assert_eq!(
                one(
                    url,
                    &format!(
                        "last_over_time(leak_sentinel_run_verdict{{verdict=\"{verdict}\",{sel}}}[10m])"
                    )
                ),
                1.0
            );
            assert_eq!(
                one(
                    url,
                    &format!("last_over_time(leak_sentinel_run_exit_code{{{sel}}}[10m])")
                ),
                r["exit_code"].as_f64().expect("exit code")
            );
            let growth = one(
                url,
                &format!(
                    "last_over_time(leak_sentinel_memory_growth_bytes_per_second{{kind=\"private\",bound=\"estimate\",{sel}}}[10m])"
                ),
            );
            let threshold = one(
                url,
                &format!(
                    "last_over_time(leak_sentinel_memory_growth_threshold_bytes_per_second{{kind=\"private\",{sel}}}[10m])"
                ),
            );
            assert!(
                (threshold - 0.1 * 1048576.0 / 60.0).abs() < 1e-6,
                "{threshold}"
            );
            if outcome == "leak" {
                // 10 MiB/s leaked; the estimate is in bytes per second.
                assert!(growth > 1e6, "{name} on {url}: {growth}");
            } else {
                assert!(growth.abs() < threshold, "{name} on {url}: {growth}");
            }
        }
    }
    // `scan` re-judges the pushed runs from the engine: the leaking run's gate memory leaks,
    // the quiet one's does not; a query over pushed FDs is judged as FDs without --kind.
    for url in [&prom, &vm] {
        let out = Command::new(bin())
            .args([
                "scan", "--url", url, "--range", "2m", "--step", "200ms", "--warmup", "2s",
            ])
            .args([
                "--query",
                "leak_sentinel_memory_bytes{kind=\"private\",commit=\"abc123\"}",
                "--json",
            ])
            .output()
            .expect("scan");
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        let v: Value = serde_json::from_slice(&out.stdout).expect("scan json");
        let series = v["series"].as_array().expect("series");
        assert_eq!(series.len(), 2, "{v}");
        for x in series {
            let want = match x["labels"]["run"].as_str() {
                Some("rw-leak-20261207") => "leak",
                _ => "clean",
            };
            assert_eq!(x["verdict"], want, "{url}: {x}");
            assert_eq!(x["unit"], "MiB/min");
        }
        let out = Command::new(bin())
            .args([
                "scan", "--url", url, "--range", "2m", "--step", "200ms", "--warmup", "2s",
            ])
            .args(["--query", "leak_sentinel_open_fds{kind=\"all\"}", "--json"])
            .output()
            .expect("scan");
        let v: Value =
            serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
        assert_eq!(v["series"][0]["unit"], "FD/min", "{v}");
    }
    // Every query of `grafana dashboard --pushed` (panels, markers, selectors) finds series.
    let out = Command::new(bin())
        .args(["grafana", "dashboard", "--pushed"])
        .output()
        .expect("grafana dashboard");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let d: Value = serde_json::from_slice(&out.stdout).expect("dashboard json");
    let mut exprs: Vec<String> = Vec::new();
    for p in d["panels"].as_array().expect("panels") {
        for t in p["targets"].as_array().expect("targets") {
            exprs.push(t["expr"].as_str().expect("expr").to_string());
        }
    }
    for a in d["annotations"]["list"].as_array().expect("annotations") {
        if let Some(e) = a["expr"].as_str() {
            exprs.push(e.to_string());
        }
    }
    for v in d["templating"]["list"].as_array().expect("variables") {
        if let Some(q) = v["query"]
            .as_str()
            .and_then(|q| q.strip_prefix("label_values("))
        {
            let (selector, _) = q.rsplit_once(',').expect("label_values(selector, label)");
            exprs.push(selector.to_string());
        }
    }
    assert!(exprs.len() >= 12, "{exprs:?}");
    for e in &exprs {
        let e = e
            .replace("$tag", ".*")
            .replace("$host", ".*")
            .replace("$run", ".*")
            .replace("$__range", "1h");
        for url in [&prom, &vm] {
            assert!(!query(url, &e).is_empty(), "{e} finds nothing on {url}");
        }
    }
    // The query of the docs' example: the nights of a tag and their outcomes.
    let r = query(
        &prom,
        "last_over_time(leak_sentinel_run_outcome{outcome=\"leak\"}[1h]) == 1",
    );
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0]["metric"]["run"], "rw-leak-20261207");
}

#[test]
#[cfg_attr(
    not(feature = "live"),
    ignore = "live tier: cargo test --features live"
)]
fn an_engine_down_for_a_while_loses_nothing_that_fits_in_the_queue() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    // The engine is down when the run starts and comes up 3 s later.
    let child = run(
        &state,
        "outage",
        &[
            "--duration",
            "4s",
            "--remote-write",
            &format!("{url}/api/v1/write"),
        ],
        IDLE,
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("runs");
    std::thread::sleep(Duration::from_secs(3));
    let (_v, vm) = victoria(dir.path(), port, &[], "http");
    let out = child.wait_with_output().expect("runs");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let log = text(&out);
    assert!(
        log.contains(&format!("remote write to {url}/api/v1/write failing")),
        "{log}"
    );
    assert!(log.contains("delivering again"), "{log}");
    let r = report(&state, "outage");
    let e = &r["remote_write"][0];
    assert_eq!(e["dropped_full"], 0, "{e}");
    assert_eq!(e["queued"], 0, "{e}");
    assert!(e["retries"].as_u64().unwrap_or(0) >= 1, "{e}");
    vm_flush(&vm);
    let samples = r["samples"].as_f64().expect("samples");
    assert_eq!(
        one(
            &vm,
            "count_over_time(leak_sentinel_memory_bytes{kind=\"private\",run=\"outage\"}[10m])"
        ),
        samples
    );
    // Every point the run counts as sent is in the engine.
    let total = one(&vm, "sum(count_over_time({run=\"outage\"}[10m]))");
    assert_eq!(Some(total as u64), e["sent"].as_u64(), "{e}");
}

#[test]
#[cfg_attr(
    not(feature = "live"),
    ignore = "live tier: cargo test --features live"
)]
fn a_full_queue_drops_the_oldest_and_counts_exactly_what_never_arrived() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let child = run(
        &state,
        "overflow",
        &[
            "--duration",
            "5s",
            "--remote-write-queue",
            "100",
            "--remote-write",
            &format!("{url}/api/v1/write"),
        ],
        IDLE,
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("runs");
    std::thread::sleep(Duration::from_secs(4));
    let (_v, vm) = victoria(dir.path(), port, &[], "http");
    let out = child.wait_with_output().expect("runs");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let log = text(&out);
    assert!(log.contains("points dropped so far"), "{log}");
    let r = report(&state, "overflow");
    let e = &r["remote_write"][0];
    let dropped = e["dropped_full"].as_u64().expect("dropped");
    let sent = e["sent"].as_u64().expect("sent");
    assert!(dropped > 0, "{e}");
    assert_eq!(e["queued"], 0, "{e}");
    vm_flush(&vm);
    let total = one(&vm, "sum(count_over_time({run=\"overflow\"}[10m]))");
    assert_eq!(total as u64, sent, "{e}");
    // The outcome was queued last and survived the drops.
    assert_eq!(
        one(
            &vm,
            "last_over_time(leak_sentinel_run_outcome{outcome=\"passed\",run=\"overflow\"}[10m])"
        ),
        1.0
    );
    let status: Value = serde_json::from_slice(
        &std::fs::read(state.join("runs/overflow/status.json")).expect("status"),
    )
    .expect("json");
    assert_eq!(
        status["remote_write"][0]["dropped_full"].as_u64(),
        Some(dropped)
    );
}

#[test]
#[cfg_attr(
    not(feature = "live"),
    ignore = "live tier: cargo test --features live"
)]
fn a_sentinel_killed_mid_run_loses_at_most_its_queue_and_resume_says_how_much() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    // The engine is down while the first sentinel runs, so everything it samples is in its
    // queue when it is killed.
    let mut first = run(
        &state,
        "killed",
        &[
            "--duration",
            "1h",
            "--warmup",
            "1h",
            "--timeout",
            "9s",
            "--remote-write",
            &format!("{url}/api/v1/write"),
        ],
        IDLE,
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .expect("runs");
    std::thread::sleep(Duration::from_secs(3));
    first.kill().expect("kill -9");
    let _ = first.wait();
    let before = ls(&state)
        .args(["report", "killed", "--csv"])
        .arg(dir.path().join("before.csv"))
        .output()
        .expect("export");
    assert_eq!(before.status.code(), Some(0), "{}", text(&before));
    let recorded = std::fs::read_to_string(dir.path().join("before.csv"))
        .expect("csv")
        .lines()
        .count()
        - 1;
    assert!(recorded > 3, "{recorded}");
    let (_v, vm) = victoria(dir.path(), port, &[], "http");
    let out = ls(&state)
        .args(["resume", "killed"])
        .output()
        .expect("resume");
    let log = text(&out);
    assert_eq!(out.status.code(), Some(5), "timed out: {log}");
    let said = format!(
        "remote write to {url}/api/v1/write: the sentinel that stopped had delivered nothing at all (it recorded no delivery); {recorded} samples recorded from"
    );
    assert!(log.contains(&said), "{said}\n{log}");
    let r = report(&state, "killed");
    let samples = r["samples"].as_u64().expect("samples") as usize;
    vm_flush(&vm);
    let arrived = one(
        &vm,
        "count_over_time(leak_sentinel_memory_bytes{kind=\"private\",run=\"killed\"}[10m])",
    );
    assert_eq!(
        arrived as usize,
        samples - recorded,
        "lost exactly what resume said"
    );
    assert!(
        r["events"].to_string().contains("were lost with its queue"),
        "the loss is an event of the report"
    );
}

#[test]
#[cfg_attr(
    not(feature = "live"),
    ignore = "live tier: cargo test --features live"
)]
fn https_and_basic_auth_from_the_environment_and_secrets_stay_out_of_files() {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let dir = tempfile::tempdir().expect("tempdir");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().expect("key");
    let ca_cert = ca.self_signed(&ca_key).expect("ca");
    let issuer = Issuer::new(ca, ca_key);
    let leaf_key = KeyPair::generate().expect("key");
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .expect("params")
        .signed_by(&leaf_key, &issuer)
        .expect("leaf");
    let (cert, key, ca_file) = (
        dir.path().join("cert.pem"),
        dir.path().join("key.pem"),
        dir.path().join("ca.pem"),
    );
    std::fs::write(&cert, leaf.pem()).expect("cert");
    std::fs::write(&key, leaf_key.serialize_pem()).expect("key");
    std::fs::write(&ca_file, ca_cert.pem()).expect("ca");
    let port = free_port();
    let password = "s3cret-Pa55word";
    let (_v, vm) = victoria(
        dir.path(),
        port,
        &[
            "-tls".into(),
            format!("-tlsCertFile={}", cert.display()),
            format!("-tlsKeyFile={}", key.display()),
            "-httpAuth.username=pusher".into(),
            format!("-httpAuth.password={password}"),
        ],
        "https",
    );
    let state = dir.path().join("state");
    let write = format!("{vm}/api/v1/write");
    let out = run(
        &state,
        "secure",
        &[
            "--duration",
            "3s",
            "--remote-write",
            &write,
            "--ca-file",
            &ca_file.display().to_string(),
        ],
        IDLE,
    )
    .env(
        "LEAK_SENTINEL_REMOTE_WRITE_BASIC_AUTH",
        format!("pusher:{password}"),
    )
    .output()
    .expect("runs");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let r = report(&state, "secure");
    let e = &r["remote_write"][0];
    assert_eq!(e["rejected"], 0, "{e}");
    assert_eq!(e["queued"], 0, "{e}");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::Specific(std::sync::Arc::new(vec![
                    ureq::tls::Certificate::from_der(ca_cert.der()).to_owned(),
                ])))
                .build(),
        )
        .build()
        .into();
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("pusher:{password}"));
    agent
        .get(&format!("{vm}/internal/force_flush"))
        .header("Authorization", &format!("Basic {basic}"))
        .call()
        .expect("flush");
    let mut resp = agent
        .get(&format!("{vm}/api/v1/query"))
        .query(
            "query",
            "count_over_time(leak_sentinel_memory_bytes{kind=\"private\",run=\"secure\"}[10m])",
        )
        .query("time", (common_now() + 5).to_string())
        .header("Authorization", &format!("Basic {basic}"))
        .call()
        .expect("query");
    let v: Value = resp.body_mut().read_json().expect("json");
    let n: f64 = v["data"]["result"][0]["value"][1]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{v}"));
    assert_eq!(n, r["samples"].as_f64().expect("samples"));
    // Without credentials the receiver refuses: counted as rejected, said in the log.
    let out = run(
        &state,
        "anonymous",
        &[
            "--duration",
            "3s",
            "--remote-write",
            &write,
            "--ca-file",
            &ca_file.display().to_string(),
        ],
        IDLE,
    )
    .output()
    .expect("runs");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("HTTP 401"), "{}", text(&out));
    let e = &report(&state, "anonymous")["remote_write"][0];
    assert!(e["rejected"].as_u64().unwrap_or(0) > 0, "{e}");
    // The password is in no file the runs wrote.
    for entry in walk(&state) {
        let bytes = std::fs::read(&entry).unwrap_or_default();
        let hay = String::from_utf8_lossy(&bytes);
        assert!(
            !hay.contains(password) && !hay.contains(&basic),
            "{} holds the secret",
            entry.display()
        );
    }
}

fn common_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn bad_remote_write_settings_are_one_line_usage_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (args, needle) in [
        (
            vec!["--remote-write", "ftp://x/api/v1/write"],
            "is not an http(s) URL",
        ),
        (
            vec!["--remote-write", "http://user:hunter2@h:9090/api/v1/write"],
            "carries credentials",
        ),
        (
            vec!["--remote-write", "http:///api/v1/write"],
            "has no host",
        ),
        (vec!["--label", "commit"], "must be KEY=VALUE"),
        (vec!["--label", "1x=y"], "a label name is letters"),
        (vec!["--label", "run=other"], "set by leak-sentinel itself"),
        (
            vec!["--label", "kind=x"],
            "is a label of leak-sentinel's series",
        ),
        (vec!["--label", "commit="], "must be 1 to 1024 characters"),
        (vec!["--remote-write-queue", "5"], "outside 100 to 10000000"),
        (
            vec!["--remote-write-token-file", "/nonexistent/token"],
            "--remote-write-token-file",
        ),
    ] {
        let out = ls(dir.path())
            .args(["run", "--name", "bad", "--duration", "1s"])
            .args(&args)
            .args(["--", "true"])
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!err.contains("hunter2"), "{err}");
    }
    let _ = bin();
}
