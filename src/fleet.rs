//! `scan`: the detector over every series of a PromQL range query against a Prometheus-compatible
//! HTTP API (Prometheus, VictoriaMetrics, Thanos, Mimir). The range is split into chunks that
//! respect the server's points-per-series limit, fetched concurrently with a bound, parsed from
//! the response stream into compact typed values within the scan's bounds (`answer`: memory
//! follows the points kept, never the bytes read), merged per series and judged in parallel.

use crate::analyze::{MetricKind, MetricResult, Settings, judge_column};
use crate::detect::Verdict;
use crate::exit::usage;
use crate::publish::tls::{self, CaBundle};
use anyhow::{Result, anyhow};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

mod answer;
use answer::{Bounds, Point, RawSeries, Stop};

/// What to scan.
#[derive(Debug, Clone)]
pub struct Scan {
    /// Base URL of the API (`http://prometheus:9090`, VictoriaMetrics' `http://vm:8428`).
    pub url: String,
    /// PromQL.
    pub query: String,
    /// Start and end, Unix seconds.
    pub start: f64,
    /// End.
    pub end: f64,
    /// Step, seconds.
    pub step: f64,
    /// Threshold per minute in the kind's unit (MiB for memory).
    pub threshold: f64,
    /// How values are read: memory (bytes → MiB), fds, threads, generic.
    pub kind: MetricKind,
    /// Largest number of points per series the server returns in one answer.
    pub max_points: usize,
    /// Concurrent requests.
    pub concurrency: usize,
    /// Warm-up excluded from each series, seconds.
    pub warmup_s: f64,
    /// Certificate authorities trusted beyond the built-in roots (`--ca-file`).
    pub ca: Option<CaBundle>,
}

/// Bounds of one scan, so a hostile or broken server cannot make it run out of memory or hang.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Bytes read from one answer at most (`LEAK_SENTINEL_SCAN_MAX_BYTES`).
    pub max_bytes: u64,
    /// Points held over the whole scan at most, all series together (16 bytes each;
    /// `LEAK_SENTINEL_SCAN_MAX_POINTS`). Series labels may take as many bytes as these points,
    /// and at least 16 MiB.
    pub max_total_points: usize,
    /// Connecting (DNS, TCP, TLS), seconds.
    pub connect_s: f64,
    /// Waiting for the answer's headers, seconds.
    pub read_s: f64,
    /// One whole request, body included, seconds (`LEAK_SENTINEL_SCAN_TIMEOUT`).
    pub total_s: f64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            // A Prometheus answer of 11,000 points for 1,000 series is about 300 MB of JSON;
            // chunks keep real answers far below this.
            max_bytes: 512 << 20,
            // 320 MB of compact values: 10,000 series × 2,000 points.
            max_total_points: 20_000_000,
            connect_s: 10.0,
            read_s: 60.0,
            total_s: 120.0,
        }
    }
}

/// One judged series.
#[derive(Debug, Clone)]
pub struct SeriesVerdict {
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// The judgement (rates in the kind's unit per minute).
    pub result: MetricResult,
    /// Points judged.
    pub points: usize,
}

/// One chunk's answer, by chunk index.
type ChunkResult = (usize, Result<Vec<RawSeries>>);
/// A series' labels and its merged times and values.
type Merged = (BTreeMap<String, String>, (Vec<f64>, Vec<f64>));

fn agent(l: &Limits, ca: Option<&CaBundle>) -> ureq::Agent {
    let secs = |s: f64| Some(Duration::from_secs_f64(s.clamp(0.001, 86400.0)));
    ureq::Agent::config_builder()
        .tls_config(tls::config(ca))
        .timeout_connect(secs(l.connect_s))
        .timeout_recv_response(secs(l.read_s))
        .timeout_global(secs(l.total_s))
        .http_status_as_error(false)
        .build()
        .into()
}

/// The base URL as it may be shown: credentials replaced by `***`.
fn shown(url: &str) -> String {
    crate::publish::notify::redact_url(url)
}

/// Authorization from the environment: `LEAK_SENTINEL_BEARER_TOKEN`, or
/// `LEAK_SENTINEL_BASIC_AUTH=user:password`.
fn auth_header() -> Option<String> {
    use base64::Engine;
    if let Ok(t) = std::env::var("LEAK_SENTINEL_BEARER_TOKEN") {
        return Some(format!("Bearer {}", t.trim()));
    }
    std::env::var("LEAK_SENTINEL_BASIC_AUTH").ok().map(|up| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(up.trim())
        )
    })
}

fn fetch(
    agent: &ureq::Agent,
    s: &Scan,
    l: &Limits,
    bounds: &Bounds,
    (from, to): (f64, f64),
) -> Result<Vec<RawSeries>> {
    let url = format!("{}/api/v1/query_range", s.url.trim_end_matches('/'));
    let redact = |text: String| crate::publish::notify::redact_in(&text, &s.url);
    let mut req = agent
        .get(&url)
        .query("query", &s.query)
        .query("start", format!("{from:.3}"))
        .query("end", format!("{to:.3}"))
        // Float seconds without a unit: Prometheus' duration syntax has no fractions ("0.2s"
        // is refused), while its float form ("0.2") is accepted by every engine of the API.
        .query("step", format!("{}", s.step));
    if let Some(a) = auth_header() {
        req = req.header("Authorization", &a);
    }
    let mut resp = req
        .call()
        .map_err(|e| match tls::untrusted(&e, &url, s.ca.as_ref()) {
            Some(u) => anyhow::Error::new(u),
            None => anyhow!(redact(format!(
                "cannot reach {}: {}",
                shown(&url),
                deadline_or(&e, l)
            ))),
        })?;
    let status = resp.status().as_u16();
    // Parsed straight from the response stream into compact values (no text copy of the body),
    // within the bounds: memory follows the points kept, not the bytes read.
    let (parsed, stop) = answer::read(resp.body_mut().as_reader(), l.max_bytes, bounds);
    match stop {
        Some(Stop::Bytes) => {
            return Err(anyhow!(
                "the answer from {} is larger than the limit of {} bytes (max-bytes, LEAK_SENTINEL_SCAN_MAX_BYTES); narrow the query or shorten --range",
                shown(&s.url),
                l.max_bytes
            ));
        }
        Some(Stop::LongString) => {
            return Err(anyhow!(
                "HTTP {status}: not a Prometheus API answer (a string longer than {} bytes)",
                answer::MAX_STRING
            ));
        }
        Some(Stop::Labels) => {
            return Err(anyhow!(
                "the answers from {} hold more than {} bytes of series labels (16 bytes per point of max-points, at least 16 MiB; LEAK_SENTINEL_SCAN_MAX_POINTS); narrow the query",
                shown(&s.url),
                bounds.max_label_bytes
            ));
        }
        None => {}
    }
    match parsed {
        Ok(r) if r.status == "success" => {
            let d = r.data.ok_or_else(|| anyhow!("the answer has no data"))?;
            if d.result_type != "matrix" {
                return Err(anyhow!(
                    "expected a range vector (matrix), got {}",
                    d.result_type
                ));
            }
            Ok(d.result)
        }
        Ok(r) => Err(anyhow!(
            "the server rejected the query: {}: {}",
            r.error_type.unwrap_or_default(),
            r.error.unwrap_or_default()
        )),
        Err(e) if e.is_io() => Err(anyhow!(redact(format!(
            "HTTP {status}: the answer from {} broke off: {}",
            shown(&s.url),
            io_deadline(&e.to_string(), l)
        )))),
        Err(e) => Err(anyhow!("HTTP {status}: not a Prometheus API answer ({e})")),
    }
}

/// A ureq error, naming the deadline when one was hit.
fn deadline_or(e: &ureq::Error, l: &Limits) -> String {
    match e {
        ureq::Error::Timeout(t) => {
            let (what, secs) = match t {
                ureq::Timeout::Connect | ureq::Timeout::Resolve => ("connect", l.connect_s),
                ureq::Timeout::RecvResponse => ("read", l.read_s),
                _ => ("total", l.total_s),
            };
            format!("the {what} deadline of {secs}s passed ({t})")
        }
        e => e.to_string(),
    }
}

fn io_deadline(text: &str, l: &Limits) -> String {
    if text.contains("timeout") || text.contains("timed out") {
        format!(
            "the total deadline of {}s passed ({text}; LEAK_SENTINEL_SCAN_TIMEOUT)",
            l.total_s
        )
    } else {
        text.to_string()
    }
}

/// Fetches and judges, within the default [`Limits`].
pub fn scan(s: &Scan) -> Result<Vec<SeriesVerdict>> {
    scan_with(s, &Limits::default())
}

/// Fetches and judges within `l`.
pub fn scan_with(s: &Scan, l: &Limits) -> Result<Vec<SeriesVerdict>> {
    if !(s.end > s.start && s.step > 0.0 && (s.end - s.start).is_finite()) {
        return Err(usage("--range and --step must be positive"));
    }
    // Points per series the range asks for: refused before asking when beyond the limit
    // (`--range 3650d --step 1ms` would otherwise mean millions of requests).
    let asked = (s.end - s.start) / s.step + 1.0;
    if asked > l.max_total_points as f64 {
        return Err(usage(format!(
            "--range/--step ask for '{asked:.0}' points per series, more than the limit of {} (max-points, LEAK_SENTINEL_SCAN_MAX_POINTS); raise --step",
            l.max_total_points
        )));
    }
    // Chunks of at most max_points points per series — and, for long ranges, at least one per
    // concurrent request, so the server answers in parallel (benches/scan.rs: 10,000 series ×
    // 720 points went from one 13 s answer to parallel ones).
    let total = ((s.end - s.start) / s.step).floor() as usize + 1;
    let per_chunk = if total > 240 {
        s.max_points
            .max(2)
            .min(total.div_ceil(s.concurrency.max(1)).max(120))
    } else {
        s.max_points.max(2)
    };
    let span = s.step * (per_chunk - 1) as f64;
    let mut chunks = Vec::new();
    let mut from = s.start;
    while from < s.end {
        let to = (from + span).min(s.end);
        chunks.push((from, to));
        from = to + s.step;
    }
    let results: Mutex<Vec<ChunkResult>> = Mutex::new(Vec::new());
    let next = AtomicUsize::new(0);
    let (points, label_bytes) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let bounds = Bounds {
        // A series in one chunk has at most one point per step of the chunk (checked below).
        per_series: per_chunk + 1,
        max_points: l.max_total_points,
        points: &points,
        label_bytes: &label_bytes,
        // Labels may take the memory the points limit allows points (16 bytes each), and at
        // least 16 MiB: a small points limit must not refuse a scan of many short series.
        max_label_bytes: l.max_total_points.saturating_mul(16).max(16 << 20),
    };
    let agent = agent(l, s.ca.as_ref());
    std::thread::scope(|sc| {
        for _ in 0..s.concurrency.clamp(1, 16).min(chunks.len()) {
            sc.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((a, b)) = chunks.get(i) else { break };
                    let r = fetch(&agent, s, l, &bounds, (*a, *b));
                    if let Ok(mut v) = results.lock() {
                        v.push((i, r));
                    }
                }
            });
        }
    });
    let fetched = std::time::Instant::now();
    let mut results = results.into_inner().unwrap_or_default();
    results.sort_by_key(|r| r.0);
    let n = chunks.len();
    let mut merged: BTreeMap<BTreeMap<String, String>, (Vec<f64>, Vec<f64>)> = BTreeMap::new();
    let mut held = 0usize;
    for (i, r) in results {
        let series = r.map_err(|e| {
            let (a, b) = chunks[i];
            if e.is::<tls::Untrusted>() {
                // Every chunk meets the same certificate: said once, without chunk details.
                usage(e.to_string())
            } else if n == 1 {
                usage(e.to_string())
            } else {
                usage(format!(
                    "chunk {} of {n} ({} to {}) failed: {e}",
                    i + 1,
                    crate::clock::rfc3339(a),
                    crate::clock::rfc3339(b)
                ))
            }
        })?;
        for rs in series {
            // A series in one chunk has at most one point per step of the chunk. Judged by the
            // points the answer held (`count`): beyond the bounds they were not all kept.
            if rs.count > per_chunk + 1 {
                return Err(usage(format!(
                    "the answer from {} has {} points in one series, more than the {per_chunk} its chunk asked for (points per chunk)",
                    shown(&s.url),
                    rs.count
                )));
            }
            held += rs.count;
            if held > l.max_total_points {
                return Err(usage(format!(
                    "the answers from {} hold more than {} points (max-points, LEAK_SENTINEL_SCAN_MAX_POINTS); narrow the query or raise --step",
                    shown(&s.url),
                    l.max_total_points
                )));
            }
            let entry = merged.entry(rs.metric).or_default();
            for Point(t, x) in rs.values {
                // NaN and stale markers are gaps, not values.
                if !x.is_finite() || entry.0.last().is_some_and(|last| *last >= t) {
                    continue;
                }
                entry.0.push(t);
                entry.1.push(x);
            }
        }
    }
    if merged.is_empty() {
        return Err(usage(format!("the query returned no series: {}", s.query)));
    }
    let settings = Settings {
        memory_threshold: s.threshold,
        fd_threshold: s.threshold,
        thread_threshold: s.threshold,
        other_threshold: s.threshold,
        ..Settings::default()
    };
    let column = match s.kind {
        MetricKind::Memory => "value_bytes",
        MetricKind::Fds => "fds",
        MetricKind::Threads => "threads",
        MetricKind::Other => "value",
    };
    let work: Vec<Merged> = merged.into_iter().collect();
    // Judged in parallel: one slice per core.
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let per = work.len().div_ceil(cores).max(1);
    let mut out: Vec<SeriesVerdict> = std::thread::scope(|sc| {
        let handles: Vec<_> = work
            .chunks(per)
            .map(|part| {
                let settings = &settings;
                sc.spawn(move || {
                    part.iter()
                        .map(|(labels, (t, v))| {
                            let t0 = t.first().copied().unwrap_or(0.0);
                            let rel: Vec<f64> = t.iter().map(|x| x - t0).collect();
                            SeriesVerdict {
                                labels: labels.clone(),
                                result: judge_column(column, &rel, v, settings, s.warmup_s),
                                points: t.len(),
                            }
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    if std::env::var_os("LEAK_SENTINEL_SCAN_TIMING").is_some() {
        eprintln!(
            "scan: judged {} series in {:.2} s after fetching",
            out.len(),
            fetched.elapsed().as_secs_f64()
        );
    }
    // Most severe first: leaks by rate, then inconclusive, then clean.
    out.sort_by(|a, b| {
        let rank = |v: &SeriesVerdict| match v.result.judgement.verdict {
            Verdict::Leak => 0,
            Verdict::Inconclusive => 1,
            Verdict::Clean => 2,
        };
        rank(a).cmp(&rank(b)).then(
            b.result
                .judgement
                .slope_per_min
                .total_cmp(&a.result.judgement.slope_per_min),
        )
    });
    Ok(out)
}

/// Bytes read from one instant-query answer at most ([`instant`]).
pub const INSTANT_MAX_BYTES: u64 = 32 << 20;

/// One series of an instant query: its labels and its latest point (time, value) — of a vector
/// the evaluation's, of a range vector (`metric[30d]`) the last raw sample's, with its own time.
pub type Latest = (BTreeMap<String, String>, f64, f64);

/// An instant query (`/api/v1/query`) at `base` (the API's base URL), evaluated now: each series'
/// latest point. The answer is read up to [`INSTANT_MAX_BYTES`]; errors are one-line usage errors
/// naming the URL (credentials redacted).
pub fn instant(base: &str, query: &str, ca: Option<&CaBundle>) -> Result<Vec<Latest>> {
    use std::io::Read as _;
    let l = Limits::default();
    let agent = agent(&l, ca);
    let url = format!("{}/api/v1/query", base.trim_end_matches('/'));
    let redact = |text: String| crate::publish::notify::redact_in(&text, base);
    let mut req = agent.get(&url).query("query", query);
    if let Some(a) = auth_header() {
        req = req.header("Authorization", &a);
    }
    let mut resp = req.call().map_err(|e| match tls::untrusted(&e, &url, ca) {
        Some(u) => usage(u.to_string()),
        None => usage(redact(format!(
            "cannot reach {}: {}",
            shown(&url),
            deadline_or(&e, &l)
        ))),
    })?;
    let status = resp.status().as_u16();
    let mut body = Vec::new();
    resp.body_mut()
        .as_reader()
        .take(INSTANT_MAX_BYTES + 1)
        .read_to_end(&mut body)
        .map_err(|e| {
            usage(redact(format!(
                "HTTP {status}: the answer from {} broke off: {e}",
                shown(base)
            )))
        })?;
    if body.len() as u64 > INSTANT_MAX_BYTES {
        return Err(usage(format!(
            "the answer from {} is larger than {INSTANT_MAX_BYTES} bytes; narrow the query",
            shown(base)
        )));
    }
    let v: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| usage(format!("HTTP {status}: not a Prometheus API answer ({e})")))?;
    if v["status"] != "success" {
        return Err(usage(format!(
            "HTTP {status}: the server rejected the query: {}: {}",
            v["errorType"].as_str().unwrap_or("-"),
            v["error"].as_str().unwrap_or("-")
        )));
    }
    let point = |p: &serde_json::Value| -> Option<(f64, f64)> {
        let t = p.get(0)?.as_f64()?;
        let v: f64 = p.get(1)?.as_str()?.parse().ok()?;
        Some((t, v))
    };
    let mut out = Vec::new();
    for s in v["data"]["result"].as_array().into_iter().flatten() {
        let labels: BTreeMap<String, String> = s["metric"]
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
            .collect();
        let last = match s.get("values").and_then(|v| v.as_array()) {
            Some(values) => values.last().and_then(point),
            None => s.get("value").and_then(point),
        };
        if let Some((t, x)) = last {
            out.push((labels, t, x));
        }
    }
    Ok(out)
}
