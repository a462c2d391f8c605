//! Pushing a run's series to a Prometheus-compatible engine by the remote-write protocol
//! (`run --remote-write URL`): Prometheus with `--web.enable-remote-write-receiver`,
//! VictoriaMetrics, Mimir, Cortex, Thanos Receive.
//!
//! The sampling loop hands points to [`RemoteWriter::push`], which only takes a lock for the
//! time of a copy into a bounded queue ([`outbox`]); a thread of its own per endpoint batches,
//! sends and retries with backoff. Nothing here can block sampling: a receiver that is down or
//! hangs costs the oldest queued points (counted), never a sample. What was delivered so far
//! is written to a small progress file of the run, so that `resume` after a kill can say what
//! the dead sentinel's queue held.

pub mod outbox;
pub mod proto;

use crate::publish::notify::{redact_in, redact_url};
use crate::publish::pushed;
use crate::publish::tls::{self, CaBundle};
use outbox::{Counts, Limits, Next, Outbox, Point, Sent};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Distinct series one endpoint keeps labels for at most. A run has a few dozen (metrics ×
/// kinds × bounds); the bound only guards against a bug turning values into labels.
const MAX_SERIES: usize = 4096;

/// Time limit of one request, connection included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The progress file is rewritten at most this often.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// Largest part of an error answer quoted in messages, bytes.
const MAX_ERROR_BODY: u64 = 512;

/// What the session (status.json, the report) shows of one endpoint.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Stats {
    /// The URL, credentials (if any) redacted.
    pub url: String,
    /// Counts so far (this session).
    #[serde(flatten)]
    pub counts: Counts,
    /// Points waiting (queued and in flight).
    pub queued: usize,
    /// Points the queue holds at most.
    pub capacity: usize,
    /// Latest sample time the receiver accepted, Unix seconds.
    pub delivered_until: Option<f64>,
    /// Whether the last request failed (and is being retried).
    pub failing: bool,
    /// The last failure.
    pub last_error: Option<String>,
}

/// A series as the session names it: family name and its own labels.
type SeriesKey = (&'static str, Vec<(&'static str, String)>);

/// Label sets of the series sent so far, interned: a queued point is 24 bytes, not its labels.
#[derive(Debug, Default)]
struct Series {
    ids: HashMap<SeriesKey, u32>,
    labels: Vec<Vec<proto::Label>>,
    /// Time of each series' latest point, Unix ms.
    last_ms: Vec<i64>,
}

struct Inner {
    outbox: Outbox,
    series: Series,
    /// Points whose series could not be interned (over [`MAX_SERIES`]).
    refused: u64,
    closing: bool,
    failing: bool,
}

struct Shared {
    inner: Mutex<Inner>,
    /// Signalled when points arrive or the writer closes (the sender waits on it), and when
    /// the sender has nothing left (a flush waits on it).
    cond: Condvar,
    base: Vec<(String, String)>,
    url: String,
    capacity: usize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Plain counters and a queue: consistent enough to go on after a panic elsewhere.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// How to reach an endpoint.
#[derive(Clone)]
pub struct Endpoint {
    /// Its URL (without credentials: they come from `auth`).
    pub url: String,
    /// The `Authorization` header value, when configured (never written anywhere).
    pub auth: Option<String>,
    /// Certificate authorities trusted besides the built-in roots.
    pub ca: Option<CaBundle>,
    /// Where to record delivery progress (the run directory's `remote-write-N.json`).
    pub progress_file: Option<PathBuf>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the credentials.
        write!(f, "Endpoint({})", redact_url(&self.url))
    }
}

/// One remote-write endpoint with its queue and sender thread.
pub struct RemoteWriter {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RemoteWriter {
    /// Starts the sender of `endpoint`; every series gets the `base` labels.
    pub fn start(endpoint: Endpoint, base: Vec<(String, String)>, limits: Limits) -> RemoteWriter {
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                outbox: Outbox::new(limits),
                series: Series::default(),
                refused: 0,
                closing: false,
                failing: false,
            }),
            cond: Condvar::new(),
            base,
            url: redact_url(&endpoint.url),
            capacity: limits.capacity,
        });
        let s = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("remote-write".into())
            .spawn(move || send_loop(&s, &endpoint))
            .ok();
        RemoteWriter { shared, thread }
    }

    /// Queues `values` at `t` (Unix seconds). Never waits on the network.
    pub fn push(&self, t: f64, values: &[pushed::Value]) {
        let t_ms = (t * 1000.0).round() as i64;
        let mut g = self.shared.lock();
        let inner = &mut *g;
        for v in values {
            if !v.v.is_finite() {
                continue;
            }
            match intern(&mut inner.series, &self.shared.base, v) {
                Some(series) => {
                    // A receiver refuses a second value at the same millisecond ("duplicate
                    // sample for timestamp") and an older one: the end of a run that follows
                    // its last check within a millisecond goes one millisecond later.
                    let last = &mut inner.series.last_ms[series as usize];
                    let t = if t_ms <= *last { *last + 1 } else { t_ms };
                    *last = t;
                    inner.outbox.push(Point {
                        series,
                        t_ms: t,
                        v: v.v,
                    })
                }
                None => inner.refused += 1,
            }
        }
        drop(g);
        self.shared.cond.notify_all();
    }

    /// What was sent, dropped and is still queued.
    pub fn stats(&self) -> Stats {
        let g = self.shared.lock();
        let mut counts = g.outbox.counts;
        counts.rejected += g.refused;
        Stats {
            url: self.shared.url.clone(),
            counts,
            queued: g.outbox.held(),
            capacity: self.shared.capacity,
            delivered_until: g.outbox.delivered_until_ms.map(|ms| ms as f64 / 1000.0),
            failing: g.failing,
            last_error: g.outbox.last_error.clone(),
        }
    }

    /// Waits until everything queued was sent (or dropped), at most `limit`; whether it was.
    pub fn flush(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        let mut g = self.shared.lock();
        g.outbox.flushing = true;
        self.shared.cond.notify_all();
        while g.outbox.held() > 0 {
            let now = Instant::now();
            if now >= deadline || self.thread.is_none() {
                return false;
            }
            g = match self.shared.cond.wait_timeout(g, deadline - now) {
                Ok((g, _)) => g,
                Err(e) => e.into_inner().0,
            };
        }
        true
    }
}

impl Drop for RemoteWriter {
    /// Stops the sender. A request in flight is not waited for (it has its own time limit): a
    /// run does not outlive its receiver.
    fn drop(&mut self) {
        self.shared.lock().closing = true;
        self.shared.cond.notify_all();
        if let Some(t) = self.thread.take() {
            if t.is_finished() {
                let _ = t.join();
            }
        }
    }
}

/// The series id of `v` with the run's labels, sorted by name as receivers require.
fn intern(series: &mut Series, base: &[(String, String)], v: &pushed::Value) -> Option<u32> {
    let key = (v.name, v.labels.clone());
    if let Some(id) = series.ids.get(&key) {
        return Some(*id);
    }
    if series.labels.len() >= MAX_SERIES {
        return None;
    }
    let mut labels: Vec<proto::Label> = Vec::with_capacity(base.len() + v.labels.len() + 1);
    labels.push(proto::Label {
        name: "__name__".into(),
        value: v.name.into(),
    });
    for (k, val) in &v.labels {
        labels.push(proto::Label {
            name: (*k).into(),
            value: val.clone(),
        });
    }
    for (k, val) in base {
        // The family's own label wins over a run label of the same name (none by validation).
        if !labels.iter().any(|l| &l.name == k) {
            labels.push(proto::Label {
                name: k.clone(),
                value: val.clone(),
            });
        }
    }
    labels.sort_by(|a, b| a.name.cmp(&b.name));
    let id = series.labels.len() as u32;
    series.labels.push(labels);
    series.last_ms.push(i64::MIN);
    series.ids.insert(key, id);
    Some(id)
}

/// The request of a batch: its points grouped by series, each series' samples in time order.
pub fn request(
    batch: &[Point],
    labels_of: &dyn Fn(u32) -> Vec<proto::Label>,
) -> proto::WriteRequest {
    let mut order: Vec<u32> = Vec::new();
    let mut by: HashMap<u32, Vec<proto::Sample>> = HashMap::new();
    for p in batch {
        by.entry(p.series)
            .or_insert_with(|| {
                order.push(p.series);
                Vec::new()
            })
            .push(proto::Sample {
                value: p.v,
                timestamp: p.t_ms,
            });
    }
    proto::WriteRequest {
        timeseries: order
            .into_iter()
            .map(|id| {
                let mut samples = by.remove(&id).unwrap_or_default();
                samples.sort_by_key(|s| s.timestamp);
                proto::TimeSeries {
                    labels: labels_of(id),
                    samples,
                }
            })
            .collect(),
    }
}

fn agent(ca: Option<&CaBundle>) -> ureq::Agent {
    tls::agent(ca, REQUEST_TIMEOUT)
}

/// One POST of a body; how it went.
fn post(agent: &ureq::Agent, e: &Endpoint, body: &[u8]) -> Sent {
    let mut req = agent
        .post(&e.url)
        .header("Content-Encoding", "snappy")
        .header("Content-Type", "application/x-protobuf")
        .header(
            "User-Agent",
            concat!("leak-sentinel/", env!("CARGO_PKG_VERSION")),
        )
        .header("X-Prometheus-Remote-Write-Version", "0.1.0");
    if let Some(a) = &e.auth {
        req = req.header("Authorization", a);
    }
    match req.send(body) {
        Ok(mut r) => {
            let code = r.status().as_u16();
            if r.status().is_success() {
                return Sent::Ok;
            }
            let text = r
                .body_mut()
                .with_config()
                .limit(MAX_ERROR_BODY)
                .read_to_string()
                .unwrap_or_default();
            let text: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
            let said: String = text.chars().take(200).collect();
            let why = match said.is_empty() {
                true => format!("HTTP {code}"),
                false => format!("HTTP {code}: {said}"),
            };
            let why = redact_in(&why, &e.url);
            // 429 and 5xx may pass later (Prometheus' own sender retries exactly these);
            // any other answer would be the same next time.
            if code == 429 || code >= 500 {
                Sent::Retry(why)
            } else {
                Sent::Rejected(why)
            }
        }
        Err(err) => match tls::untrusted(&err, &e.url, e.ca.as_ref()) {
            Some(u) => Sent::Retry(u.to_string()),
            None => Sent::Retry(redact_in(&err.to_string().replace('\n', " "), &e.url)),
        },
    }
}

fn send_loop(s: &Shared, e: &Endpoint) {
    let agent = agent(e.ca.as_ref());
    let origin = Instant::now();
    let mut last_progress: Option<Instant> = None;
    loop {
        let body = {
            let mut g = s.lock();
            loop {
                if g.closing {
                    return;
                }
                let now = origin.elapsed();
                let inner = &mut *g;
                let series = &inner.series;
                match inner.outbox.next(now) {
                    Next::Send(batch) => {
                        let req = request(batch, &|id| {
                            series.labels.get(id as usize).cloned().unwrap_or_default()
                        });
                        break proto::body(&req);
                    }
                    Next::Wait(d) => {
                        g = match s.cond.wait_timeout(g, d) {
                            Ok((g, _)) => g,
                            Err(e) => e.into_inner().0,
                        };
                    }
                    Next::Idle => {
                        // Wakes a flush waiting for the queue to empty.
                        s.cond.notify_all();
                        g = match s.cond.wait(g) {
                            Ok(g) => g,
                            Err(e) => e.into_inner(),
                        };
                    }
                }
            }
        };
        let how = post(&agent, e, &body);
        let progress = {
            let mut g = s.lock();
            // Failing means retrying; a refused batch is dropped (and said as such), not retried.
            g.failing = matches!(how, Sent::Retry(_));
            g.outbox.sent(origin.elapsed(), how);
            let due =
                last_progress.is_none_or(|t| t.elapsed() >= PROGRESS_EVERY) || g.outbox.held() == 0;
            due.then(|| progress_json(&s.url, &g))
        };
        if let (Some(doc), Some(path)) = (progress, &e.progress_file) {
            last_progress = Some(Instant::now());
            // Best effort: a missing progress file only makes `resume` less precise.
            let _ = crate::files::write_atomic(path, doc.to_string().as_bytes());
        }
        s.cond.notify_all();
    }
}

fn progress_json(url: &str, g: &Inner) -> serde_json::Value {
    serde_json::json!({
        "url": url,
        "delivered_until": g.outbox.delivered_until_ms.map(|ms| ms as f64 / 1000.0),
        "sent": g.outbox.counts.sent,
        "dropped": g.outbox.counts.dropped() + g.refused,
        "queued": g.outbox.held(),
    })
}

/// The first line of a file holding a secret (at most 64 KiB read); an empty one is an error.
pub fn read_secret(path: &std::path::Path) -> anyhow::Result<String> {
    let text = crate::files::read_bounded(path, 64 << 10, "secret file")?;
    text.lines()
        .next()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .ok_or_else(|| anyhow::anyhow!("'{}' is empty", path.display()))
}

/// The `Authorization` header of the remote-write requests: a bearer token from
/// `LEAK_SENTINEL_REMOTE_WRITE_TOKEN` or `token_file`, else basic auth (`user:password`) from
/// `LEAK_SENTINEL_REMOTE_WRITE_BASIC_AUTH` or `basic_file`. Held in memory only.
pub fn auth_header(
    token_file: Option<&std::path::Path>,
    basic_file: Option<&std::path::Path>,
) -> anyhow::Result<Option<String>> {
    use base64::Engine;
    let env = |k: &str| {
        std::env::var(k)
            .ok()
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let token = match env("LEAK_SENTINEL_REMOTE_WRITE_TOKEN") {
        Some(t) => Some(t),
        None => token_file.map(read_secret).transpose()?,
    };
    if let Some(t) = token {
        return Ok(Some(format!("Bearer {t}")));
    }
    let basic = match env("LEAK_SENTINEL_REMOTE_WRITE_BASIC_AUTH") {
        Some(b) => Some(b),
        None => basic_file.map(read_secret).transpose()?,
    };
    Ok(basic.map(|b| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(b)
        )
    }))
}

/// The progress file of endpoint `index` of run `name`.
pub fn progress_path(state: &std::path::Path, name: &str, index: usize) -> PathBuf {
    crate::rundir::run_dir(state, name).join(format!("remote-write-{index}.json"))
}

/// What a progress file says: (URL, delivered until, Unix seconds).
pub fn read_progress(path: &std::path::Path) -> Option<(String, Option<f64>)> {
    let text = crate::files::read_bounded(path, 64 * 1024, "remote-write progress").ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    Some((
        v["url"].as_str()?.to_string(),
        v["delivered_until"].as_f64(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_groups_points_by_series_with_sorted_labels() {
        let mut series = Series::default();
        let base = vec![
            ("run".to_string(), "r1".to_string()),
            ("Commit".to_string(), "abc".to_string()),
        ];
        let v = |kind: &str, x: f64| pushed::Value {
            name: pushed::MEMORY,
            labels: vec![("kind", kind.into())],
            v: x,
        };
        let a = intern(&mut series, &base, &v("private", 0.0)).expect("id");
        let b = intern(&mut series, &base, &v("rss", 0.0)).expect("id");
        assert_eq!(intern(&mut series, &base, &v("private", 9.0)), Some(a));
        let pts = [
            Point {
                series: a,
                t_ms: 1000,
                v: 1.0,
            },
            Point {
                series: b,
                t_ms: 1000,
                v: 2.0,
            },
            Point {
                series: a,
                t_ms: 2000,
                v: 3.0,
            },
        ];
        let req = request(&pts, &|id| series.labels[id as usize].clone());
        assert_eq!(req.timeseries.len(), 2);
        let names: Vec<&str> = req.timeseries[0]
            .labels
            .iter()
            .map(|l| l.name.as_str())
            .collect();
        assert_eq!(names, ["Commit", "__name__", "kind", "run"]);
        let vals: Vec<(i64, f64)> = req.timeseries[0]
            .samples
            .iter()
            .map(|s| (s.timestamp, s.value))
            .collect();
        assert_eq!(vals, [(1000, 1.0), (2000, 3.0)]);
        assert_eq!(req.timeseries[1].labels[2].value, "rss");
    }

    #[test]
    fn credentials_come_from_files_as_headers() {
        // The environment variables take precedence; this test only holds without them.
        if std::env::var_os("LEAK_SENTINEL_REMOTE_WRITE_TOKEN").is_some()
            || std::env::var_os("LEAK_SENTINEL_REMOTE_WRITE_BASIC_AUTH").is_some()
        {
            return;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let token = dir.path().join("token");
        let basic = dir.path().join("basic");
        std::fs::write(&token, "abc.def\nignored\n").expect("write");
        std::fs::write(&basic, "pusher:pw\n").expect("write");
        assert_eq!(
            auth_header(Some(&token), Some(&basic)).expect("reads"),
            Some("Bearer abc.def".to_string())
        );
        assert_eq!(
            auth_header(None, Some(&basic)).expect("reads"),
            Some("Basic cHVzaGVyOnB3".to_string())
        );
        assert_eq!(auth_header(None, None).expect("nothing"), None);
        std::fs::write(&token, "\n").expect("write");
        let e = auth_header(Some(&token), None).expect_err("empty");
        assert!(e.to_string().contains("is empty"), "{e}");
    }

    #[test]
    fn series_are_bounded() {
        let mut series = Series::default();
        for i in 0..MAX_SERIES {
            let v = pushed::Value {
                name: pushed::MEMORY,
                labels: vec![("kind", i.to_string())],
                v: 0.0,
            };
            assert!(intern(&mut series, &[], &v).is_some());
        }
        let v = pushed::Value {
            name: pushed::MEMORY,
            labels: vec![("kind", "one more".into())],
            v: 0.0,
        };
        assert_eq!(intern(&mut series, &[], &v), None);
    }
}
