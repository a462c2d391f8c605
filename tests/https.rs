//! https end to end: servers started here on 127.0.0.1 speak real TLS (rustls) with a
//! certificate authority made in the test (rcgen), and the real binary talks to them — webhooks
//! and Grafana annotations of a run, `annotate`, and `scan` against the Prometheus
//! `query_range` API. With the CA file (flag, environment or config key) every request
//! arrives; without it, or for a certificate of another host name, each fails with one plain
//! line naming the server and what to do, and the exit code it has for any unreachable server.

mod common;

use common::{bin, fast_run};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A CA of the test's own and the server configuration of a leaf certificate it signed.
struct Pki {
    /// The CA certificate, PEM (what `--ca-file` gets).
    ca_pem: String,
    /// Serves the leaf.
    server: Arc<rustls::ServerConfig>,
}

/// A new CA and a leaf for `names` (IP addresses become IP SANs).
fn pki(names: &[&str]) -> Pki {
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "leak-sentinel test CA");
    let ca_key = KeyPair::generate().expect("ca key");
    let ca_cert = ca.self_signed(&ca_key).expect("ca cert");
    let issuer = Issuer::new(ca, ca_key);
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let leaf_key = KeyPair::generate().expect("leaf key");
    let leaf = CertificateParams::new(names)
        .expect("leaf params")
        .signed_by(&leaf_key, &issuer)
        .expect("leaf cert");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![
                leaf.der().clone(),
                CertificateDer::from(ca_cert.der().to_vec()),
            ],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
        )
        .expect("server config");
    Pki {
        ca_pem: ca_cert.pem(),
        server: Arc::new(server),
    }
}

/// One request as the server read it: method, path with query, headers (lower-case names),
/// body.
#[derive(Debug, Clone)]
struct Request {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: String,
}

type Log = Arc<Mutex<Vec<Request>>>;

/// An https server on 127.0.0.1 (one thread per connection, one request each): every request
/// it reads is logged and answered with `answer(request)` as JSON. Handshakes the client
/// refuses end the connection without a request. Runs until the test process ends.
fn serve(pki: &Pki, answer: fn(&Request) -> String) -> (u16, Log) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let log: Log = Arc::new(Mutex::new(Vec::new()));
    let (config, rec) = (pki.server.clone(), log.clone());
    std::thread::spawn(move || {
        for tcp in listener.incoming().flatten() {
            let (config, rec) = (config.clone(), rec.clone());
            std::thread::spawn(move || {
                let _ = tcp.set_read_timeout(Some(Duration::from_secs(10)));
                let conn = rustls::ServerConnection::new(config).expect("connection");
                let mut tls = rustls::StreamOwned::new(conn, tcp);
                if let Some(req) = read_request(&mut tls) {
                    let body = answer(&req);
                    rec.lock().expect("lock").push(req);
                    let _ = write!(
                        tls,
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    tls.conn.send_close_notify();
                    let _ = tls.flush();
                }
            });
        }
    });
    (port, log)
}

/// Reads one HTTP/1.1 request (head and a `Content-Length` body); `None` when the handshake or
/// the read fails.
fn read_request(stream: &mut impl Read) -> Option<Request> {
    let mut r = BufReader::new(stream);
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let mut words = line.split_whitespace();
    let (method, target) = (words.next()?.to_string(), words.next()?.to_string());
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.push((k.trim().to_lowercase(), v.trim().to_string()));
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    r.read_exact(&mut body).ok()?;
    Some(Request {
        method,
        target,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// What a Grafana answers to an annotation.
fn grafana_answer(_: &Request) -> String {
    r#"{"id": 7, "message": "Annotation added"}"#.into()
}

/// End of the range every scan asks for (Unix seconds), so the canned series are the same in
/// every chunk the range is split into.
const END: f64 = 1_700_000_000.0;

/// A Prometheus `query_range` answer for the asked start, end and step: `api` grows by
/// 1 MiB/min from 100 MiB two hours before [`END`], `db` stays at 200 MiB.
fn prometheus_answer(req: &Request) -> String {
    let param = |name: &str| -> f64 {
        let query = req.target.split_once('?').map_or("", |(_, q)| q);
        query
            .split('&')
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.trim_end_matches('s').parse().ok())
            .unwrap_or_else(|| panic!("{name} in {}", req.target))
    };
    let (start, end, step) = (param("start"), param("end"), param("step"));
    let mib = 1_048_576.0;
    let series = |instance: &str, f: &dyn Fn(f64) -> f64| {
        let mut values = Vec::new();
        let mut t = start;
        while t <= end + 1e-6 {
            values.push(serde_json::json!([t, format!("{}", f(t - (END - 7200.0)))]));
            t += step;
        }
        serde_json::json!({"metric": {"__name__": "rss_bytes", "instance": instance}, "values": values})
    };
    serde_json::json!({
        "status": "success",
        "data": {"resultType": "matrix", "result": [
            series("api", &|dt| (100.0 + dt / 60.0) * mib),
            series("db", &|_| 200.0 * mib),
        ]},
    })
    .to_string()
}

/// Writes the CA certificate where `--ca-file` can read it.
fn ca_file(dir: &Path, pki: &Pki) -> PathBuf {
    let p = dir.join("ca.pem");
    std::fs::write(&p, &pki.ca_pem).expect("write ca");
    p
}

/// `leak-sentinel ARGS`, without a CA file from the environment of whoever runs the tests.
fn cmd(args: &[&str]) -> Command {
    let mut c = Command::new(bin());
    c.args(args).env_remove("LEAK_SENTINEL_CA_FILE");
    c
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn annotate(url: &str) -> Command {
    let mut c = cmd(&["annotate", "--text", "W2 deployed", "--tags", "milestone"]);
    c.args(["--grafana-url", url]).env("GRAFANA_TOKEN", "tok");
    c
}

fn scan(url: &str) -> Command {
    cmd(&[
        "scan",
        "--url",
        url,
        "--query",
        "rss_bytes",
        "--range",
        "2h",
        "--step",
        "30s",
        "--json",
        "--end",
        &END.to_string(),
    ])
}

/// A short run of the clean workload with `extra` flags (passes, exit 0, when they are
/// valid): as in tests/monitoring.rs, 5 MiB/min because these runs test delivery, not verdicts.
fn run(state: &Path, name: &str, extra: &[&str]) -> Command {
    // What a live run adds here is delivery over TLS, not a verdict: thresholds wide enough
    // that 4 s of data ends the run (passed or inconclusive) on any machine.
    let mut flags = vec!["--detail-every", "1s", "--duration", "4s"];
    flags.extend(common::WIDE_THRESHOLDS);
    flags.extend(extra);
    let mut c = fast_run(state, name, &flags, &["clean"]);
    c.env_remove("LEAK_SENTINEL_CA_FILE");
    c
}

/// `scan` of an https server whose certificate names `names`, with its CA in `--ca-file`:
/// the server's port and requests, and the output.
fn scan_with_its_ca(names: &[&str]) -> (u16, Log, Output) {
    let pki = pki(names);
    let (port, log) = serve(&pki, prometheus_answer);
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = ca_file(dir.path(), &pki);
    let out = scan(&format!("https://127.0.0.1:{port}"))
        .arg("--ca-file")
        .arg(&ca)
        .output()
        .expect("runs");
    (port, log, out)
}

/// The one error line of a command that failed with exit 2.
fn failure(out: &Output) -> String {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {err}");
    lines[0].to_string()
}

/// The message for a certificate of an unknown authority at `port`.
fn untrusted_ca(line: &str, port: u16) {
    assert!(
        line.contains(&format!(
            "the certificate of https://127.0.0.1:{port} was not trusted"
        )) && line.contains("it is signed by an unknown certificate authority")
            && line.contains("--ca-file FILE or LEAK_SENTINEL_CA_FILE"),
        "{line}"
    );
    assert!(
        !line.contains("UnknownIssuer") && !line.contains("rustls"),
        "{line}"
    );
}

#[test]
#[cfg_attr(
    not(feature = "live"),
    ignore = "live tier: cargo test --features live"
)]
fn a_run_delivers_webhooks_and_annotations_over_https_with_the_config_files_ca() {
    let pki = pki(&["127.0.0.1", "localhost"]);
    let (port, log) = serve(&pki, grafana_answer);
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = ca_file(dir.path(), &pki);
    // The config key, relative to the working directory: stored absolute with the run.
    let config = dir.path().join("leak-sentinel.toml");
    std::fs::write(&config, "ca_file = \"ca.pem\"\n").expect("config");
    let base = format!("https://127.0.0.1:{port}");
    let state = dir.path().join("state");
    let hook = format!("{base}/T0/B0/secret");
    let out = run(&state, "tls", &["--notify", &hook, "--grafana-url", &base])
        .current_dir(dir.path())
        .env("GRAFANA_TOKEN", "tok")
        .output()
        .expect("runs");
    common::assert_ran_to_its_end(&state, "tls", out.status.code(), &stderr(&out));
    assert!(
        !stderr(&out).contains("notification failed"),
        "{}",
        stderr(&out)
    );
    let reqs = log.lock().expect("lock").clone();
    let hooks: Vec<Value> = reqs
        .iter()
        .filter(|r| r.target == "/T0/B0/secret")
        .map(|r| serde_json::from_str(&r.body).expect("json body"))
        .collect();
    let events: Vec<&str> = hooks.iter().filter_map(|b| b["event"].as_str()).collect();
    assert_eq!(events.first(), Some(&"start"), "{events:?}");
    assert_eq!(events.last(), Some(&"completed"), "{events:?}");
    assert_eq!(hooks[0]["run"], "tls");
    let ann = reqs
        .iter()
        .find(|r| r.method == "POST" && r.target == "/api/annotations")
        .expect("an annotation");
    assert!(
        ann.headers
            .contains(&("authorization".into(), "Bearer tok".into()))
    );
    assert!(
        reqs.iter()
            .any(|r| r.method == "PATCH" && r.target == "/api/annotations/7"),
        "the run's region got its end"
    );
    // Stored absolute with the run, so `resume` from another directory reads the same file.
    let store = leak_sentinel::store::Store::open(&state).expect("store");
    let row = store.find_run("tls").expect("query").expect("run");
    let settings: Value = serde_json::from_str(&row.settings).expect("settings json");
    let stored = PathBuf::from(settings["ca_file"].as_str().expect("ca_file stored"));
    assert!(stored.is_absolute(), "{stored:?}");
    assert_eq!(
        std::fs::canonicalize(&stored).expect("stored path"),
        std::fs::canonicalize(&ca).expect("ca path")
    );
}

#[test]
fn annotate_over_https_with_the_ca_file_from_the_environment() {
    let pki = pki(&["127.0.0.1"]);
    let (port, log) = serve(&pki, grafana_answer);
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = ca_file(dir.path(), &pki);
    let out = annotate(&format!("https://127.0.0.1:{port}"))
        .env("LEAK_SENTINEL_CA_FILE", &ca)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("annotation added"));
    let reqs = log.lock().expect("lock").clone();
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    assert_eq!(
        (reqs[0].method.as_str(), reqs[0].target.as_str()),
        ("POST", "/api/annotations")
    );
    let body: Value = serde_json::from_str(&reqs[0].body).expect("json");
    assert_eq!(body["text"], "W2 deployed");
    assert_eq!(body["tags"], serde_json::json!(["milestone"]));
}

#[test]
fn scan_over_https_with_the_ca_file_judges_the_series() {
    let (_, log, out) = scan_with_its_ca(&["127.0.0.1"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a leak exits 1: {}{}",
        stderr(&out),
        String::from_utf8_lossy(&out.stdout)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["verdict"], "leak");
    let series = v["series"].as_array().expect("series");
    assert_eq!(series.len(), 2, "{v}");
    assert_eq!(series[0]["labels"]["instance"], "api");
    assert_eq!(series[0]["verdict"], "leak");
    assert_eq!(series[1]["verdict"], "clean");
    let reqs = log.lock().expect("lock").clone();
    assert!(
        !reqs.is_empty()
            && reqs
                .iter()
                .all(|r| r.target.starts_with("/api/v1/query_range?")),
        "{reqs:?}"
    );
}

#[test]
#[cfg_attr(
    not(feature = "live"),
    ignore = "live tier: cargo test --features live"
)]
fn without_the_ca_file_each_fails_with_one_plain_line() {
    let stranger = pki(&["127.0.0.1"]);
    let pki = pki(&["127.0.0.1"]);
    let (port, log) = serve(&pki, prometheus_answer);
    let base = format!("https://127.0.0.1:{port}");
    // scan and annotate: exit 2, as for a server that cannot be reached.
    untrusted_ca(&failure(&scan(&base).output().expect("runs")), port);
    untrusted_ca(&failure(&annotate(&base).output().expect("runs")), port);
    // A run does not fail for a notification: the failure is a warning and an event, told
    // once (no retries for a certificate), and the webhook's secret path is not shown.
    let dir = tempfile::tempdir().expect("tempdir");
    let hook = format!("{base}/T0/B0/secret");
    let out = run(
        dir.path(),
        "untrusted",
        &["--notify", &hook, "--grafana-url", &base],
    )
    .output()
    .expect("runs");
    common::assert_ran_to_its_end(dir.path(), "untrusted", out.status.code(), &stderr(&out));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    let warning = text
        .lines()
        .find(|l| l.contains("notification failed: webhook start"))
        .unwrap_or_else(|| panic!("{text}"));
    untrusted_ca(warning, port);
    assert!(!text.contains("secret"), "{text}");
    assert!(
        text.contains("notification failed: grafana start: the certificate of"),
        "{text}"
    );
    assert!(
        log.lock().expect("lock").is_empty(),
        "no request got through"
    );
    // With a CA file that lacks the server's authority, the message says so.
    let dir = tempfile::tempdir().expect("tempdir");
    let other = ca_file(dir.path(), &stranger);
    let line = failure(
        &scan(&base)
            .arg("--ca-file")
            .arg(&other)
            .output()
            .expect("runs"),
    );
    assert!(
        line.contains(&format!(
            "the CA file '{}' does not hold the authority that signed it",
            other.display()
        )),
        "{line}"
    );
}

#[test]
fn a_certificate_for_another_host_name_is_refused_even_with_its_ca() {
    let (port, log, out) = scan_with_its_ca(&["wrong.example"]);
    let line = failure(&out);
    assert!(
        line.contains(&format!(
            "the certificate of https://127.0.0.1:{port} was not trusted: it was not issued for '127.0.0.1' (it names 'wrong.example')"
        ))
            && line.contains("--ca-file FILE or LEAK_SENTINEL_CA_FILE"),
        "{line}"
    );
    assert!(log.lock().expect("lock").is_empty());
}

#[test]
fn a_missing_or_unparsable_ca_file_is_a_usage_error_before_any_request() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("missing.pem");
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate\n").expect("write");
    let big = dir.path().join("big.pem");
    std::fs::write(&big, vec![b'A'; 5 << 20]).expect("write");
    // Nothing listens at the URL: the file is refused before any connection.
    let url = format!("https://127.0.0.1:{}", common::free_port());
    for (file, says) in [
        (&missing, "cannot read CA file"),
        (&junk, "holds no certificate"),
        (&big, "is larger than"),
    ] {
        let f = file.to_str().expect("utf-8");
        let line = failure(&scan(&url).args(["--ca-file", f]).output().expect("runs"));
        assert!(line.contains(says) && line.contains(f), "{line}");
        let line = failure(
            &annotate(&url)
                .env("LEAK_SENTINEL_CA_FILE", file)
                .output()
                .expect("runs"),
        );
        assert!(line.contains(says), "{line}");
        let out = run(
            &dir.path().join("state"),
            "badca",
            &["--notify", &url, "--ca-file", f],
        )
        .output()
        .expect("runs");
        let line = failure(&out);
        assert!(line.contains(says), "{line}");
    }
}
