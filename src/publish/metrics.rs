//! The Prometheus exposition endpoint of a live run (`run --metrics-addr`): sampled values,
//! growth-rate estimates with their interval bounds and thresholds, the clean streak, check
//! counters and the run state, served from its own threads so a slow or hostile scraper never
//! touches the sampling loop.
//!
//! Names follow the Prometheus conventions: one unit per family with the unit as suffix
//! (`leak_sentinel_memory_bytes{kind=…}`, `…_growth_bytes_per_second`), counts without a unit
//! (`leak_sentinel_open_fds{kind=…}`), counters ending in `_total`, and every series carries the
//! `run` and `profile` labels. The body is the Prometheus text format 0.0.4 unless the client's
//! `Accept` header prefers OpenMetrics 1.0.0 (what `promhttp` in Go does).
//!
//! The server is a small HTTP/1.1 responder rather than a general-purpose one because its limits
//! are the point: at most [`Limits::max_connections`] requests at a time (the rest wait in the
//! kernel's backlog), a request head of at most [`Limits::max_request_bytes`] read within
//! [`Limits::read_timeout`], one request per connection, and an accept loop that backs off and
//! keeps going on any error (EMFILE, ENFILE, ENOMEM…) instead of dying.

use crate::store::RunStatus;
use anyhow::Result;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Every sample name the exporter can serve, as it appears in the text format (counters with
/// their `_total`). The Grafana dashboard queries only these.
pub const METRIC_NAMES: &[&str] = &[
    "leak_sentinel_memory_bytes",
    "leak_sentinel_open_fds",
    "leak_sentinel_threads",
    "leak_sentinel_processes",
    "leak_sentinel_last_sample_timestamp_seconds",
    "leak_sentinel_target_stopped",
    "leak_sentinel_samples_total",
    "leak_sentinel_memory_growth_bytes_per_second",
    "leak_sentinel_memory_growth_threshold_bytes_per_second",
    "leak_sentinel_fd_growth_per_second",
    "leak_sentinel_fd_growth_threshold_per_second",
    "leak_sentinel_thread_growth_per_second",
    "leak_sentinel_thread_growth_threshold_per_second",
    "leak_sentinel_metric_verdict",
    "leak_sentinel_checks_total",
    "leak_sentinel_clean_streak_seconds",
    "leak_sentinel_target_clean_seconds",
    "leak_sentinel_run_state",
    "leak_sentinel_exporter_errors_total",
];

/// Families served only when the target has JVMs with readable counters.
pub const JVM_METRIC_NAMES: &[&str] = &[
    "leak_sentinel_jvm_gc_collections_total",
    "leak_sentinel_jvm_gc_seconds_total",
];

/// Families served only when the run reads the target's own gauges (`--target-metrics`).
pub const GAUGE_METRIC_NAMES: &[&str] = &[
    "leak_sentinel_target_gauge",
    "leak_sentinel_target_gauge_growth_per_second",
    "leak_sentinel_target_gauge_growth_threshold_per_second",
];

/// Run states exported by `leak_sentinel_run_state`.
/// Verdicts exported by `leak_sentinel_metric_verdict`.
const VERDICTS: [&str; 3] = ["leak", "clean", "inconclusive"];
/// Reasons counted by `leak_sentinel_exporter_errors_total`.
const ERROR_REASONS: [&str; 5] = [
    "accept",
    "read_timeout",
    "too_large",
    "bad_request",
    "write",
];

/// The two exposition formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text format 0.0.4 (what `promtool check metrics` lints).
    Text,
    /// OpenMetrics text 1.0.0.
    OpenMetrics,
}

impl Format {
    /// The `Content-Type` of a body in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }

    /// Picks the format for an `Accept` header (several headers joined with `,`): the
    /// acceptable media range with the highest `q` wins, the first listed on a tie; OpenMetrics
    /// only when asked for (version 1.0.0, 0.0.1 or none), text 0.0.4 for `text/plain`, `*/*`,
    /// no header, or nothing we can serve — as Go's `promhttp` negotiates.
    pub fn negotiate(accept: Option<&str>) -> Format {
        let Some(accept) = accept else {
            return Format::Text;
        };
        let mut best: Option<(f64, Format)> = None;
        for range in accept.split(',').take(32) {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or("").to_ascii_lowercase();
            let (mut q, mut version) = (1.0_f64, None::<String>);
            for p in parts {
                if let Some((k, v)) = p.split_once('=') {
                    let v = v.trim().trim_matches('"');
                    match k.trim().to_ascii_lowercase().as_str() {
                        "q" => q = v.parse().unwrap_or(0.0),
                        "version" => version = Some(v.to_string()),
                        _ => {}
                    }
                }
            }
            if q.is_nan() || q <= 0.0 {
                continue;
            }
            let v = version.as_deref();
            let format = match media.as_str() {
                "application/openmetrics-text" if matches!(v, None | Some("1.0.0" | "0.0.1")) => {
                    Format::OpenMetrics
                }
                "text/plain" if matches!(v, None | Some("0.0.4")) => Format::Text,
                "*/*" | "text/*" => Format::Text,
                _ => continue,
            };
            if best.is_none_or(|(bq, _)| q > bq) {
                best = Some((q, format));
            }
        }
        best.map_or(Format::Text, |(_, f)| f)
    }
}

/// The server's limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections served at once; more wait in the kernel's listen backlog.
    pub max_connections: usize,
    /// Time allowed to receive the whole request head, from accept (seconds as a `Duration`).
    pub read_timeout: Duration,
    /// Time allowed for each write of the response.
    pub write_timeout: Duration,
    /// Largest request head (request line and headers), bytes; larger gets 431.
    pub max_request_bytes: usize,
    /// Longest pause of the accept loop after repeated accept errors.
    pub max_backoff: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        // A scraper sends its request right after connecting and reads a few kB: these bounds
        // are generous for Prometheus (default scrape timeout 10 s) and keep an idle or slow
        // client from holding a slot for long.
        Limits {
            max_connections: 8,
            read_timeout: Duration::from_secs(3),
            write_timeout: Duration::from_secs(5),
            max_request_bytes: 8 * 1024,
            max_backoff: Duration::from_millis(500),
        }
    }
}

/// What a sampled field or a judged metric is, in exported terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Resource {
    /// Bytes; `kind` is rss, pss, uss, swap, anon, file, cgroup, private…
    Memory,
    /// Open descriptors; `kind` is all, socket, pipe, file, anon_inode, other.
    Fds,
    /// Threads of the tree.
    Threads,
    /// Processes of the tree.
    Processes,
    /// One of the target's own gauges; `kind` is its selector (`go_goroutines`).
    Gauge,
}

impl Resource {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Resource::Memory => "memory",
            Resource::Fds => "fds",
            Resource::Threads => "threads",
            Resource::Processes => "processes",
            Resource::Gauge => "gauge",
        }
    }
}

/// Maps a sample field or column name to its resource and `kind` label. By name rather than by
/// `probe::Metric` so that a field added to the sampler (e.g. the tree's private memory) is
/// exported without touching this file.
pub(crate) fn classify(name: &str) -> Option<(Resource, String)> {
    if let Some(selector) = name.strip_prefix(crate::gauges::PREFIX) {
        return Some((Resource::Gauge, selector.to_string()));
    }
    if let Some(stem) = name.strip_suffix("_bytes") {
        let kind = match stem {
            "cgroup_memory" => "cgroup",
            // The tree's private memory (anonymous resident + swapped), SPEC's memory gate.
            "rss_anon" | "private" => "private",
            other => other,
        };
        return Some((Resource::Memory, kind.to_string()));
    }
    match name {
        "fds" => Some((Resource::Fds, "all".into())),
        "threads" => Some((Resource::Threads, "all".into())),
        "processes" => Some((Resource::Processes, "all".into())),
        _ => name
            .strip_prefix("fds_")
            .map(|k| (Resource::Fds, k.to_string())),
    }
}

/// One growth estimate at the last check, per second in the resource's unit.
#[derive(Debug, Clone, Copy)]
struct Growth {
    /// (estimate, low, high); `None` where the data could not bound the interval.
    bounds: [Option<f64>; 3],
    /// The threshold.
    threshold: f64,
    /// The verdict word.
    verdict: &'static str,
}

/// The values the runner has reported, rendered afresh on every scrape.
#[derive(Debug, Default)]
struct State {
    /// Latest sampled values: (resource, kind) → bytes or count.
    values: BTreeMap<(Resource, String), f64>,
    /// Unix seconds of the latest sample.
    last_sample_t: Option<f64>,
    /// 1 when the target was stopped or frozen at the latest sample that said, else 0.
    target_stopped: Option<f64>,
    /// The JVMs' collections and time in them so far (their own counters), when any.
    jvm_gc: (Option<f64>, Option<f64>),
    /// Samples reported since the exporter started.
    samples: u64,
    /// The last check's judgements (replaced as a whole at each check).
    growth: BTreeMap<(Resource, String), Growth>,
    /// Checks reported, passed and failed.
    checks: [u64; 2],
    /// Clean streak at the last check, seconds.
    streak_s: Option<f64>,
    /// Clean streak needed to pass, seconds.
    target_s: Option<f64>,
    /// The run state.
    state: RunStatus,
}

/// Counters the server keeps about itself (lock-free: read on every scrape).
#[derive(Debug, Default)]
struct ServerStats {
    errors: [AtomicU64; ERROR_REASONS.len()],
}

impl ServerStats {
    fn count(&self, reason: &str) {
        if let Some(i) = ERROR_REASONS.iter().position(|r| *r == reason) {
            self.errors[i].fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The type of a family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Type {
    Gauge,
    Counter,
}

/// One metric family ready to encode: `name` is the family name (for counters without the
/// `_total` the samples carry).
struct Family {
    name: &'static str,
    help: &'static str,
    kind: Type,
    unit: Option<&'static str>,
    samples: Vec<(Vec<(&'static str, String)>, f64)>,
}

/// The values and the run's labels; the render side of the exporter (no sockets).
struct Shared {
    state: Mutex<State>,
    stats: ServerStats,
    base: Vec<(&'static str, String)>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock must not take the endpoint down with it: the values are
        // plain numbers, always consistent enough to serve.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn families(&self) -> Vec<Family> {
        let s = self.lock();
        let mut out = Vec::new();
        let mut fam = |name, help, kind, unit, samples: Vec<(Vec<(&'static str, String)>, f64)>| {
            if !samples.is_empty() {
                out.push(Family {
                    name,
                    help,
                    kind,
                    unit,
                    samples,
                });
            }
        };
        let values = |r: Resource, with_kind: bool| {
            s.values
                .iter()
                .filter(|((res, _), _)| *res == r)
                .map(|((_, k), v)| {
                    let labels = if with_kind {
                        vec![("kind", k.clone())]
                    } else {
                        Vec::new()
                    };
                    (labels, *v)
                })
                .collect::<Vec<_>>()
        };
        fam(
            "leak_sentinel_memory_bytes",
            "Latest sampled memory of the target's process tree in bytes, by kind (rss, pss, uss, swap, anon, file, cgroup, private); kinds overlap, pick one rather than summing",
            Type::Gauge,
            Some("bytes"),
            values(Resource::Memory, true),
        );
        fam(
            "leak_sentinel_open_fds",
            "Open file descriptors of the target's process tree, by kind (all; socket, pipe, file, anon_inode and other add up to all)",
            Type::Gauge,
            None,
            values(Resource::Fds, true),
        );
        fam(
            "leak_sentinel_threads",
            "Threads of the target's process tree",
            Type::Gauge,
            None,
            values(Resource::Threads, false),
        );
        fam(
            "leak_sentinel_processes",
            "Processes in the target's process tree",
            Type::Gauge,
            None,
            values(Resource::Processes, false),
        );
        fam(
            "leak_sentinel_target_gauge",
            "Latest value of each of the target's own gauges read from its metrics endpoint (--target-metrics), by kind (the gauge's selector)",
            Type::Gauge,
            None,
            values(Resource::Gauge, true),
        );
        fam(
            "leak_sentinel_last_sample_timestamp_seconds",
            "Unix time of the latest sample, seconds",
            Type::Gauge,
            Some("seconds"),
            s.last_sample_t
                .map(|t| (Vec::new(), t))
                .into_iter()
                .collect(),
        );
        fam(
            "leak_sentinel_target_stopped",
            "1 when the target was stopped (SIGSTOP) or frozen at the latest sample, else 0; that time does not count toward the clean streak",
            Type::Gauge,
            None,
            s.target_stopped
                .map(|v| (Vec::new(), v))
                .into_iter()
                .collect(),
        );
        fam(
            "leak_sentinel_jvm_gc_collections",
            "Garbage collections of the target's JVMs so far, all collectors (hsperfdata)",
            Type::Counter,
            None,
            s.jvm_gc.0.map(|v| (Vec::new(), v)).into_iter().collect(),
        );
        fam(
            "leak_sentinel_jvm_gc_seconds",
            "Time the target's JVMs spent in garbage collection so far, seconds (hsperfdata)",
            Type::Counter,
            Some("seconds"),
            s.jvm_gc.1.map(|v| (Vec::new(), v)).into_iter().collect(),
        );
        fam(
            "leak_sentinel_samples",
            "Samples recorded since the exporter started",
            Type::Counter,
            None,
            vec![(Vec::new(), s.samples as f64)],
        );
        let growth = |r: Resource, with_kind: bool| {
            let mut v = Vec::new();
            for ((res, k), g) in &s.growth {
                if *res != r {
                    continue;
                }
                for (bound, x) in ["estimate", "low", "high"].into_iter().zip(g.bounds) {
                    if let Some(x) = x {
                        let mut l = Vec::new();
                        if with_kind {
                            l.push(("kind", k.clone()));
                        }
                        l.push(("bound", bound.to_string()));
                        v.push((l, x));
                    }
                }
            }
            v
        };
        let threshold = |r: Resource, with_kind: bool| {
            s.growth
                .iter()
                .filter(|((res, _), _)| *res == r)
                .map(|((_, k), g)| {
                    let l = if with_kind {
                        vec![("kind", k.clone())]
                    } else {
                        Vec::new()
                    };
                    (l, g.threshold)
                })
                .collect::<Vec<_>>()
        };
        fam(
            "leak_sentinel_memory_growth_bytes_per_second",
            "Memory growth rate at the last check, bytes per second, by kind; bound=estimate|low|high (the confidence interval)",
            Type::Gauge,
            Some("bytes_per_second"),
            growth(Resource::Memory, true),
        );
        fam(
            "leak_sentinel_memory_growth_threshold_bytes_per_second",
            "Largest acceptable memory growth, bytes per second, by kind",
            Type::Gauge,
            Some("bytes_per_second"),
            threshold(Resource::Memory, true),
        );
        fam(
            "leak_sentinel_fd_growth_per_second",
            "Open file descriptor growth rate at the last check, descriptors per second, by kind; bound=estimate|low|high",
            Type::Gauge,
            None,
            growth(Resource::Fds, true),
        );
        fam(
            "leak_sentinel_fd_growth_threshold_per_second",
            "Largest acceptable open file descriptor growth, descriptors per second, by kind",
            Type::Gauge,
            None,
            threshold(Resource::Fds, true),
        );
        fam(
            "leak_sentinel_thread_growth_per_second",
            "Thread growth rate at the last check, threads per second; bound=estimate|low|high",
            Type::Gauge,
            None,
            growth(Resource::Threads, false),
        );
        fam(
            "leak_sentinel_thread_growth_threshold_per_second",
            "Largest acceptable thread growth, threads per second",
            Type::Gauge,
            None,
            threshold(Resource::Threads, false),
        );
        fam(
            "leak_sentinel_target_gauge_growth_per_second",
            "Growth rate of each of the target's gauges at the last check, per second in the gauge's unit, by kind (its selector); bound=estimate|low|high",
            Type::Gauge,
            None,
            growth(Resource::Gauge, true),
        );
        fam(
            "leak_sentinel_target_gauge_growth_threshold_per_second",
            "Largest acceptable growth of each of the target's gauges, per second, by kind",
            Type::Gauge,
            None,
            threshold(Resource::Gauge, true),
        );
        let mut verdicts = Vec::new();
        for ((r, k), g) in &s.growth {
            for v in VERDICTS {
                verdicts.push((
                    vec![
                        ("resource", r.label().to_string()),
                        ("kind", k.clone()),
                        ("verdict", v.to_string()),
                    ],
                    if g.verdict == v { 1.0 } else { 0.0 },
                ));
            }
        }
        fam(
            "leak_sentinel_metric_verdict",
            "1 for each gate metric's verdict at the last check (verdict=leak|clean|inconclusive), else 0; resource=memory|fds|threads|gauge",
            Type::Gauge,
            None,
            verdicts,
        );
        fam(
            "leak_sentinel_checks",
            "Checks run since the exporter started, by result (passed|failed)",
            Type::Counter,
            None,
            vec![
                (vec![("result", "passed".into())], s.checks[0] as f64),
                (vec![("result", "failed".into())], s.checks[1] as f64),
            ],
        );
        fam(
            "leak_sentinel_clean_streak_seconds",
            "Clean streak at the last check: seconds since warm-up ended or the last failed check",
            Type::Gauge,
            Some("seconds"),
            s.streak_s.map(|v| (Vec::new(), v)).into_iter().collect(),
        );
        fam(
            "leak_sentinel_target_clean_seconds",
            "Clean streak needed to pass, seconds",
            Type::Gauge,
            Some("seconds"),
            s.target_s.map(|v| (Vec::new(), v)).into_iter().collect(),
        );
        fam(
            "leak_sentinel_run_state",
            "1 for the run's current state (state=running|completed|failed|interrupted), else 0",
            Type::Gauge,
            None,
            RunStatus::ALL
                .iter()
                .map(|st| {
                    (
                        vec![("state", st.to_string())],
                        if *st == s.state { 1.0 } else { 0.0 },
                    )
                })
                .collect(),
        );
        fam(
            "leak_sentinel_exporter_errors",
            "Requests or connections the /metrics server dropped, by reason (accept|read_timeout|too_large|bad_request|write)",
            Type::Counter,
            None,
            ERROR_REASONS
                .iter()
                .zip(&self.stats.errors)
                .map(|(r, n)| {
                    (
                        vec![("reason", r.to_string())],
                        n.load(Ordering::Relaxed) as f64,
                    )
                })
                .collect(),
        );
        out
    }

    fn render(&self, format: Format) -> String {
        encode(&self.families(), &self.base, format)
    }
}

/// Escapes a label value (both formats) or, with `quote = false`, a text-format HELP line.
fn escape(s: &str, quote: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quote => out.push_str("\\\""),
            c => out.push(c),
        }
    }
    out
}

/// A sample value: shortest round-trip decimal, `+Inf`/`-Inf`/`NaN` spelled as both formats
/// want them.
fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

/// Encodes families in `format`. Counters: the text format names the family `…_total` in HELP
/// and TYPE (what `promtool` expects); OpenMetrics names the family without it and its samples
/// with it, and ends with `# EOF`.
fn encode(families: &[Family], base: &[(&'static str, String)], format: Format) -> String {
    let mut out = String::new();
    for f in families {
        let sample_name = match f.kind {
            Type::Counter => format!("{}_total", f.name),
            Type::Gauge => f.name.to_string(),
        };
        let type_word = match f.kind {
            Type::Counter => "counter",
            Type::Gauge => "gauge",
        };
        match format {
            Format::Text => {
                out.push_str(&format!(
                    "# HELP {sample_name} {}\n# TYPE {sample_name} {type_word}\n",
                    escape(f.help, false)
                ));
            }
            Format::OpenMetrics => {
                out.push_str(&format!("# TYPE {} {type_word}\n", f.name));
                if let Some(u) = f.unit {
                    out.push_str(&format!("# UNIT {} {u}\n", f.name));
                }
                out.push_str(&format!("# HELP {} {}\n", f.name, escape(f.help, true)));
            }
        }
        for (labels, v) in &f.samples {
            out.push_str(&sample_name);
            out.push('{');
            let all = base.iter().chain(labels.iter());
            for (i, (k, val)) in all.enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&format!("{k}=\"{}\"", escape(val, true)));
            }
            out.push_str("} ");
            out.push_str(&number(*v));
            out.push('\n');
        }
    }
    if format == Format::OpenMetrics {
        out.push_str("# EOF\n");
    }
    out
}

/// The endpoint: the values the runner reports and the server threads that serve them.
pub struct Exporter {
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    /// Address actually bound (port 0 resolved).
    pub addr: SocketAddr,
}

impl Exporter {
    /// Binds `addr` and starts serving /metrics on a background thread.
    pub fn start(addr: &str, run: &str, profile: &str) -> Result<Exporter> {
        Exporter::start_with(addr, run, profile, Limits::default())
    }

    /// [`Exporter::start`] with explicit server limits.
    pub fn start_with(addr: &str, run: &str, profile: &str, limits: Limits) -> Result<Exporter> {
        let listener = TcpListener::bind(addr).map_err(|e| {
            crate::exit::usage(format!("--metrics-addr: cannot listen on '{addr}': {e}"))
        })?;
        let bound = listener.local_addr().map_err(|e| {
            crate::exit::usage(format!(
                "--metrics-addr: '{addr}' has no local address: {e}"
            ))
        })?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                state: RunStatus::Running,
                ..State::default()
            }),
            stats: ServerStats::default(),
            base: vec![("run", run.to_string()), ("profile", profile.to_string())],
        });
        let stop = Arc::new(AtomicBool::new(false));
        let (sh, st) = (shared.clone(), stop.clone());
        std::thread::Builder::new()
            .name("metrics".into())
            .spawn(move || accept_loop(listener, sh, st, limits))?;
        Ok(Exporter {
            shared,
            stop,
            addr: bound,
        })
    }

    /// After each sample: the latest value of every field it carries.
    pub fn sample(&self, s: &crate::sample::Sample) {
        let mut st = self.shared.lock();
        for m in crate::sample::Metric::ALL {
            let Some(v) = s.get(m) else {
                continue;
            };
            if let Some(key) = classify(m.name()) {
                st.values.insert(key, v);
            } else if m.name() == "target_stopped" {
                st.target_stopped = Some(v);
            } else if m.name() == "jvm_gc_total" {
                st.jvm_gc.0 = Some(v);
            } else if m.name() == "jvm_gc_seconds_total" {
                st.jvm_gc.1 = Some(v);
            }
        }
        st.last_sample_t = Some(s.t);
        st.samples += 1;
    }

    /// The target's gauges read with the latest sample (`(column, value)`).
    pub fn gauges(&self, values: &[(String, f64)]) {
        let mut st = self.shared.lock();
        for (column, v) in values {
            if let Some(key) = classify(column) {
                st.values.insert(key, *v);
            }
        }
    }

    /// After each check: the gate metrics' rates and thresholds per second in their own unit
    /// (bytes for memory), verdicts, the counters and the streak.
    pub fn check(
        &self,
        results: &[crate::analyze::MetricResult],
        failed: bool,
        streak_s: f64,
        target_s: f64,
    ) {
        let mut growth = BTreeMap::new();
        for r in results {
            let Some(key) = classify(&r.name) else {
                continue;
            };
            // Judgements are per minute in the judged unit (MiB for memory).
            let per_s = if r.kind == crate::analyze::MetricKind::Memory {
                crate::units::MIB / 60.0
            } else {
                1.0 / 60.0
            };
            let j = &r.judgement;
            // f64::MIN / f64::MAX stand for "unbounded": left out rather than exported as ±Inf.
            let finite = |v: f64| (v > f64::MIN && v < f64::MAX).then_some(v * per_s);
            growth.insert(
                key,
                Growth {
                    bounds: [finite(j.slope_per_min), finite(j.ci_low), finite(j.ci_high)],
                    threshold: j.threshold_per_min * per_s,
                    verdict: j.verdict.as_str(),
                },
            );
        }
        let mut st = self.shared.lock();
        st.growth = growth;
        st.checks[usize::from(failed)] += 1;
        st.streak_s = Some(streak_s.max(0.0));
        st.target_s = Some(target_s);
    }

    /// The run's state (running, completed, failed or interrupted).
    pub fn set_state(&self, state: RunStatus) {
        self.shared.lock().state = state;
    }

    /// The current exposition in OpenMetrics (for tests and debugging).
    pub fn render(&self) -> String {
        self.shared.render(Format::OpenMetrics)
    }

    /// The current exposition in `format`.
    pub fn render_as(&self, format: Format) -> String {
        self.shared.render(format)
    }
}

impl Drop for Exporter {
    /// Stops the accept loop and frees the port: a process that runs several soak tests in a
    /// row (schedules, `demo`) does not keep old endpoints alive.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let mut wake = self.addr;
        if wake.ip().is_unspecified() {
            wake.set_ip(match wake {
                SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        // Wakes the blocking accept; the loop sees the flag and returns.
        let _ = TcpStream::connect_timeout(&wake, Duration::from_millis(200));
    }
}

/// A counting gate: at most `max` connections are served at once.
struct Slots {
    busy: Mutex<usize>,
    freed: Condvar,
    max: usize,
}

impl Slots {
    fn acquire(&self) {
        let mut n = self.busy.lock().unwrap_or_else(|e| e.into_inner());
        while *n >= self.max {
            n = self.freed.wait(n).unwrap_or_else(|e| e.into_inner());
        }
        *n += 1;
    }

    fn release(&self) {
        let mut n = self.busy.lock().unwrap_or_else(|e| e.into_inner());
        *n = n.saturating_sub(1);
        self.freed.notify_one();
    }
}

/// Releases a slot when a connection's thread ends, however it ends.
struct SlotGuard(Arc<Slots>);

impl Drop for SlotGuard {
    fn drop(&mut self) {
        self.0.release();
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>, stop: Arc<AtomicBool>, limits: Limits) {
    let slots = Arc::new(Slots {
        busy: Mutex::new(0),
        freed: Condvar::new(),
        max: limits.max_connections.max(1),
    });
    let mut backoff = Duration::ZERO;
    loop {
        // Wait for a free slot before accepting, so that excess connections wait in the kernel
        // backlog instead of costing a thread and a descriptor each.
        slots.acquire();
        let guard = SlotGuard(slots.clone());
        let accepted = listener.accept();
        if stop.load(Ordering::SeqCst) {
            return;
        }
        match accepted {
            Ok((stream, _)) => {
                backoff = Duration::ZERO;
                let sh = shared.clone();
                let spawned = std::thread::Builder::new()
                    .name("metrics-conn".into())
                    .spawn(move || {
                        let _guard = guard;
                        serve(stream, &sh, &limits);
                    });
                if spawned.is_err() {
                    // No thread for it (EAGAIN): the connection is dropped (closed) with the
                    // closure; count it and pause as for any resource error.
                    shared.stats.count("accept");
                    backoff = next_backoff(backoff, limits.max_backoff);
                    std::thread::sleep(backoff);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => {
                // EMFILE/ENFILE/ENOBUFS/ENOMEM, ECONNABORTED…: the pending connection stays in the
                // backlog, so retrying at once would spin. Back off and keep serving once the
                // condition clears.
                drop(guard);
                shared.stats.count("accept");
                backoff = next_backoff(backoff, limits.max_backoff);
                std::thread::sleep(backoff);
            }
        }
    }
}

fn next_backoff(prev: Duration, max: Duration) -> Duration {
    (prev * 2).clamp(Duration::from_millis(5), max.max(Duration::from_millis(5)))
}

/// Why a request head could not be read.
enum HeadError {
    Timeout,
    TooLarge,
    Closed,
}

/// Reads up to the blank line ending the request head, within `deadline` and `max` bytes.
fn read_head(stream: &mut TcpStream, deadline: Instant, max: usize) -> Result<Vec<u8>, HeadError> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(HeadError::Timeout);
        }
        // A per-read timeout alone would let a client trickle one byte at a time forever; the
        // remaining time of one overall deadline bounds the whole head.
        if stream.set_read_timeout(Some(left)).is_err() {
            return Err(HeadError::Closed);
        }
        match stream.read(&mut chunk) {
            Ok(0) => return Err(HeadError::Closed),
            Ok(n) => {
                let from = buf.len().saturating_sub(3);
                buf.extend_from_slice(&chunk[..n]);
                if let Some(end) = find_end(&buf[from..]) {
                    buf.truncate(from + end);
                    return Ok(buf);
                }
                if buf.len() > max {
                    return Err(HeadError::TooLarge);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(HeadError::Timeout);
            }
            Err(_) => return Err(HeadError::Closed),
        }
    }
}

/// Offset just past the first `\r\n\r\n` (or bare `\n\n`).
fn find_end(b: &[u8]) -> Option<usize> {
    (0..b.len()).find_map(|i| {
        if b[i..].starts_with(b"\r\n\r\n") {
            Some(i + 4)
        } else if b[i..].starts_with(b"\n\n") {
            Some(i + 2)
        } else {
            None
        }
    })
}

/// A parsed request head: method, path (no query) and the `Accept` header(s) joined.
struct Request {
    method: String,
    path: String,
    accept: Option<String>,
}

fn parse_head(head: &[u8]) -> Option<Request> {
    let text = std::str::from_utf8(head).ok()?;
    let mut lines = text.split('\n').map(|l| l.trim_end_matches('\r'));
    let mut first = lines.next()?.split(' ');
    let (method, target, version) = (first.next()?, first.next()?, first.next()?);
    if !version.starts_with("HTTP/1.") || method.is_empty() {
        return None;
    }
    let mut accept: Option<String> = None;
    for line in lines {
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':')?;
        if name.trim().eq_ignore_ascii_case("accept") {
            let v = value.trim();
            accept = Some(match accept {
                Some(a) => format!("{a},{v}"),
                None => v.to_string(),
            });
        }
    }
    let path = target.split('?').next().unwrap_or("");
    Some(Request {
        method: method.to_string(),
        path: path.to_string(),
        accept,
    })
}

/// Serves one request on `stream` and closes it.
fn serve(mut stream: TcpStream, shared: &Shared, limits: &Limits) {
    let deadline = Instant::now() + limits.read_timeout;
    let _ = stream.set_write_timeout(Some(limits.write_timeout));
    let head = match read_head(&mut stream, deadline, limits.max_request_bytes) {
        Ok(h) => h,
        Err(HeadError::Timeout) => {
            shared.stats.count("read_timeout");
            respond(
                &mut stream,
                shared,
                408,
                "text/plain",
                b"request timeout\n",
                true,
            );
            return;
        }
        Err(HeadError::TooLarge) => {
            shared.stats.count("too_large");
            respond(
                &mut stream,
                shared,
                431,
                "text/plain",
                b"request head too large\n",
                true,
            );
            return;
        }
        Err(HeadError::Closed) => return,
    };
    let Some(req) = parse_head(&head) else {
        shared.stats.count("bad_request");
        respond(
            &mut stream,
            shared,
            400,
            "text/plain",
            b"bad request\n",
            true,
        );
        return;
    };
    let with_body = req.method != "HEAD";
    if req.method != "GET" && req.method != "HEAD" {
        respond(
            &mut stream,
            shared,
            405,
            "text/plain",
            b"only GET and HEAD\n",
            true,
        );
        return;
    }
    match req.path.as_str() {
        "/metrics" => {
            let format = Format::negotiate(req.accept.as_deref());
            let body = shared.render(format);
            respond(
                &mut stream,
                shared,
                200,
                format.content_type(),
                body.as_bytes(),
                with_body,
            );
        }
        "/" => respond(
            &mut stream,
            shared,
            200,
            "text/plain; charset=utf-8",
            b"leak-sentinel exporter: metrics at /metrics\n",
            with_body,
        ),
        _ => respond(
            &mut stream,
            shared,
            404,
            "text/plain; charset=utf-8",
            b"leak-sentinel: see /metrics\n",
            with_body,
        ),
    }
}

fn respond(
    stream: &mut TcpStream,
    shared: &Shared,
    code: u16,
    content_type: &str,
    body: &[u8],
    with_body: bool,
) {
    let reason = match code {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        _ => "Error",
    };
    let allow = if code == 405 {
        "Allow: GET, HEAD\r\n"
    } else {
        ""
    };
    let head = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nVary: Accept\r\n{allow}Connection: close\r\n\r\n",
        body.len()
    );
    let mut ok = stream.write_all(head.as_bytes()).is_ok();
    if ok && with_body {
        ok = stream.write_all(body).is_ok();
    }
    if ok {
        ok = stream.flush().is_ok();
    }
    if !ok {
        shared.stats.count("write");
    }
    let _ = stream.shutdown(std::net::Shutdown::Write);
    // Lingering close: closing with unread input makes the kernel send a reset that can destroy
    // the response before the client reads it (an oversized head, a body nobody asked for).
    // Drain a bounded amount for a bounded time first.
    let until = Instant::now() + Duration::from_millis(250);
    let mut sink = [0u8; 4096];
    let mut drained = 0usize;
    while drained < 64 * 1024 {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            break;
        }
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(n) => drained += n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::{Metric, Sample};

    fn populated(run: &str, limits: Limits) -> Exporter {
        let e = Exporter::start_with("127.0.0.1:0", run, "quick", limits).expect("bind loopback");
        let mut s = Sample::at(1_790_000_000.5);
        for (i, m) in Metric::ALL.iter().enumerate() {
            let v = if m.name() == "target_stopped" {
                0.0
            } else {
                1000.0 + i as f64
            };
            s.set(*m, Some(v));
        }
        e.sample(&s);
        let t: Vec<f64> = (0..200).map(|i| i as f64 * 5.0).collect();
        let settings = crate::analyze::Settings::default();
        let results: Vec<_> = [
            ("rss_bytes", 1024.0 * 1024.0),
            ("fds", 1.0),
            ("threads", 0.0),
        ]
        .iter()
        .map(|(name, step)| {
            let v: Vec<f64> = t.iter().map(|x| 1e6 + x * step).collect();
            crate::analyze::judge_column(name, &t, &v, &settings, 60.0)
        })
        .collect();
        e.check(&results, true, 0.0, 3600.0);
        e.check(&results, false, 12.5, 3600.0);
        e
    }

    fn sample_names(body: &str) -> Vec<String> {
        body.lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .map(|l| l.split(['{', ' ']).next().unwrap_or("").to_string())
            .collect()
    }

    #[test]
    fn negotiation_follows_accept_and_q_values() {
        use Format::*;
        let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        for (accept, want) in [
            (None, Text),
            (Some(""), Text),
            (Some("*/*"), Text),
            (Some("text/plain"), Text),
            (Some("text/plain; version=0.0.4"), Text),
            (Some(prometheus), OpenMetrics),
            (Some("application/openmetrics-text"), OpenMetrics),
            (
                Some("application/openmetrics-text; version=0.0.1"),
                OpenMetrics,
            ),
            (Some("application/openmetrics-text; version=2.0.0"), Text),
            (
                Some("text/plain;version=0.0.4;q=0.9, application/openmetrics-text;q=0.5"),
                Text,
            ),
            (
                Some("text/plain;q=0.5, application/openmetrics-text;version=1.0.0"),
                OpenMetrics,
            ),
            (Some("application/openmetrics-text;q=0"), Text),
            (Some("application/json"), Text),
            (
                Some("APPLICATION/OpenMetrics-Text; Version=1.0.0"),
                OpenMetrics,
            ),
        ] {
            assert_eq!(Format::negotiate(accept), want, "{accept:?}");
        }
    }

    #[test]
    fn both_formats_name_counters_and_units_as_their_specs_say() {
        let e = populated("W3 \"nightly\" \\ run\nx", Limits::default());
        let text = e.render_as(Format::Text);
        assert!(text.contains("# HELP leak_sentinel_checks_total Checks run"));
        assert!(text.contains("# TYPE leak_sentinel_checks_total counter\n"));
        assert!(text.contains("# TYPE leak_sentinel_memory_bytes gauge\n"));
        assert!(!text.contains("# EOF") && !text.contains("# UNIT"));
        assert!(text.contains(
            "leak_sentinel_checks_total{run=\"W3 \\\"nightly\\\" \\\\ run\\nx\",profile=\"quick\",result=\"failed\"} 1\n"
        ));
        let om = e.render();
        assert!(om.ends_with("# EOF\n"));
        assert!(om.contains("# TYPE leak_sentinel_checks counter\n"));
        assert!(om.contains("# UNIT leak_sentinel_memory_bytes bytes\n"));
        assert!(
            om.contains("# UNIT leak_sentinel_memory_growth_bytes_per_second bytes_per_second\n")
        );
        assert!(!om.contains("# UNIT leak_sentinel_open_fds"));
        // Every UNIT is a suffix of its family's name (OpenMetrics requires it).
        for l in om.lines().filter(|l| l.starts_with("# UNIT ")) {
            let mut w = l.split(' ').skip(2);
            let (name, unit) = (w.next().expect("name"), w.next().expect("unit"));
            assert!(name.ends_with(&format!("_{unit}")), "{l}");
        }
        // Same samples in both formats.
        assert_eq!(sample_names(&text), sample_names(&om));
    }

    #[test]
    fn values_units_and_the_name_list() {
        let e = populated("r", Limits::default());
        let text = e.render_as(Format::Text);
        for line in [
            "leak_sentinel_memory_bytes{run=\"r\",profile=\"quick\",kind=\"rss\"} 1000",
            "leak_sentinel_memory_bytes{run=\"r\",profile=\"quick\",kind=\"cgroup\"} 1006",
            "leak_sentinel_open_fds{run=\"r\",profile=\"quick\",kind=\"all\"} 1007",
            "leak_sentinel_open_fds{run=\"r\",profile=\"quick\",kind=\"anon_inode\"} 1011",
            "leak_sentinel_threads{run=\"r\",profile=\"quick\"} 1013",
            "leak_sentinel_processes{run=\"r\",profile=\"quick\"} 1014",
            "leak_sentinel_memory_bytes{run=\"r\",profile=\"quick\",kind=\"private\"} 1015",
            "leak_sentinel_target_stopped{run=\"r\",profile=\"quick\"} 0",
            "leak_sentinel_last_sample_timestamp_seconds{run=\"r\",profile=\"quick\"} 1790000000.5",
            "leak_sentinel_samples_total{run=\"r\",profile=\"quick\"} 1",
            "leak_sentinel_checks_total{run=\"r\",profile=\"quick\",result=\"passed\"} 1",
            "leak_sentinel_clean_streak_seconds{run=\"r\",profile=\"quick\"} 12.5",
            "leak_sentinel_run_state{run=\"r\",profile=\"quick\",state=\"running\"} 1",
            "leak_sentinel_metric_verdict{run=\"r\",profile=\"quick\",resource=\"memory\",kind=\"rss\",verdict=\"leak\"} 1",
            "leak_sentinel_exporter_errors_total{run=\"r\",profile=\"quick\",reason=\"accept\"} 0",
        ] {
            assert!(
                text.contains(&format!("{line}\n")),
                "{line} missing in\n{text}"
            );
        }
        // Thresholds: 0.1 MiB/min in bytes/s, 0.1 FD/min in FD/s.
        let value = |prefix: &str| -> f64 {
            text.lines()
                .find(|l| l.starts_with(prefix))
                .and_then(|l| l.rsplit(' ').next())
                .and_then(|v| v.parse().ok())
                .unwrap_or(f64::NAN)
        };
        let mem_thr = value("leak_sentinel_memory_growth_threshold_bytes_per_second{");
        assert!(
            (mem_thr - 0.1 * 1_048_576.0 / 60.0).abs() < 1e-6,
            "{mem_thr}"
        );
        let fd_thr = value("leak_sentinel_fd_growth_threshold_per_second{");
        assert!((fd_thr - 0.1 / 60.0).abs() < 1e-12, "{fd_thr}");
        // The synthetic series grows 1 MiB per second.
        let est = value(
            "leak_sentinel_memory_growth_bytes_per_second{run=\"r\",profile=\"quick\",kind=\"rss\",bound=\"estimate\"}",
        );
        assert!((est - 1_048_576.0).abs() < 1.0, "{est}");
        // The name list is exactly what a fully populated exporter serves.
        let mut served = sample_names(&text);
        served.dedup();
        for n in &served {
            assert!(
                METRIC_NAMES.contains(&n.as_str()) || JVM_METRIC_NAMES.contains(&n.as_str()),
                "{n} not in METRIC_NAMES"
            );
        }
        for n in JVM_METRIC_NAMES {
            assert!(served.iter().any(|s| s == n), "{n} never served");
        }
        for n in METRIC_NAMES {
            assert!(served.iter().any(|s| s == n), "{n} never served");
        }
        e.set_state(RunStatus::Failed);
        assert!(
            e.render_as(Format::Text).contains(
                "leak_sentinel_run_state{run=\"r\",profile=\"quick\",state=\"failed\"} 1\n"
            )
        );
    }

    #[test]
    fn a_field_the_sampler_adds_later_is_exported_by_its_name() {
        assert_eq!(
            classify("rss_anon_bytes"),
            Some((Resource::Memory, "private".into()))
        );
        assert_eq!(
            classify("heap_bytes"),
            Some((Resource::Memory, "heap".into()))
        );
        assert_eq!(
            classify("fds_socket"),
            Some((Resource::Fds, "socket".into()))
        );
        assert_eq!(classify("cpu_seconds"), None);
    }

    /// Sends `request` raw and returns (status, head, body); `None` when the server closed
    /// without answering.
    fn raw(addr: SocketAddr, request: &[u8]) -> Option<(u16, String, String)> {
        let mut s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let _ = s.write_all(request);
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        let text = String::from_utf8_lossy(&out).to_string();
        let (head, body) = text.split_once("\r\n\r\n")?;
        let code = head.split(' ').nth(1)?.parse().ok()?;
        Some((code, head.to_string(), body.to_string()))
    }

    #[test]
    fn routes_methods_and_content_types() {
        let e = populated("r", Limits::default());
        let (code, head, body) =
            raw(e.addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").expect("answer");
        assert_eq!(code, 200);
        assert!(
            head.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8"),
            "{head}"
        );
        assert!(body.contains("leak_sentinel_samples_total"));
        let (_, head, body) = raw(
            e.addr,
            b"GET /metrics?x=1 HTTP/1.1\r\naccept: application/openmetrics-text; version=1.0.0\r\n\r\n",
        )
        .expect("answer");
        assert!(
            head.contains("application/openmetrics-text; version=1.0.0"),
            "{head}"
        );
        assert!(body.ends_with("# EOF\n"));
        let (code, head, body) = raw(e.addr, b"HEAD /metrics HTTP/1.0\r\n\r\n").expect("answer");
        assert_eq!(code, 200);
        assert!(body.is_empty() && head.contains("Content-Length: "));
        assert_eq!(
            raw(e.addr, b"GET /nope HTTP/1.1\r\n\r\n")
                .expect("answer")
                .0,
            404
        );
        let (code, head, _) = raw(
            e.addr,
            b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
        )
        .expect("answer");
        assert_eq!(code, 405);
        assert!(head.contains("Allow: GET, HEAD"));
        assert_eq!(raw(e.addr, b"garbage\r\n\r\n").expect("answer").0, 400);
    }

    #[test]
    fn oversized_slow_and_excess_clients_are_bounded() {
        let limits = Limits {
            max_connections: 2,
            read_timeout: Duration::from_millis(600),
            ..Limits::default()
        };
        let e = populated("r", limits);
        // A head beyond the size limit: 431, and the server carries on.
        let mut big = b"GET /metrics HTTP/1.1\r\nX-Fill: ".to_vec();
        big.extend(std::iter::repeat_n(b'a', 64 * 1024));
        big.extend_from_slice(b"\r\n\r\n");
        assert_eq!(raw(e.addr, &big).expect("answer").0, 431);
        // Idle clients that never send a request hold the two slots; they get 408 within the
        // read limit, and a real scrape behind them is served right after.
        let idle: Vec<TcpStream> = (0..6)
            .map(|_| TcpStream::connect(e.addr).expect("connect"))
            .collect();
        // A client trickling its head byte by byte is cut at the same deadline.
        let mut slow = TcpStream::connect(e.addr).expect("connect");
        for b in b"GET /metr" {
            let _ = slow.write_all(&[*b]);
            std::thread::sleep(Duration::from_millis(100));
        }
        let t0 = Instant::now();
        let (code, _, body) = raw(e.addr, b"GET /metrics HTTP/1.1\r\n\r\n").expect("answer");
        assert_eq!(code, 200);
        assert!(body.contains("leak_sentinel_memory_bytes"));
        // 7 clients ahead of it, 2 at a time, 0.6 s each: about 2.4 s; never unbounded.
        assert!(t0.elapsed() < Duration::from_secs(6), "{:?}", t0.elapsed());
        for mut c in idle {
            c.set_read_timeout(Some(Duration::from_secs(5)))
                .expect("timeout");
            let mut out = String::new();
            let _ = c.read_to_string(&mut out);
            assert!(out.starts_with("HTTP/1.1 408"), "{out:?}");
        }
        let text = e.render_as(Format::Text);
        for reason in ["read_timeout", "too_large"] {
            let line = text
                .lines()
                .find(|l| l.contains(&format!("reason=\"{reason}\"")))
                .expect("counter");
            let n: f64 = line
                .rsplit(' ')
                .next()
                .and_then(|v| v.parse().ok())
                .expect("n");
            assert!(n >= 1.0, "{line}");
        }
    }

    #[test]
    fn dropping_the_exporter_frees_the_port() {
        let e = populated("r", Limits::default());
        let addr = e.addr;
        drop(e);
        let t0 = Instant::now();
        loop {
            if TcpListener::bind(addr).is_ok() {
                break;
            }
            assert!(t0.elapsed() < Duration::from_secs(5), "port still bound");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
