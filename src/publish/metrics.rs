//! The Prometheus exposition endpoint of a live run (`run --metrics-addr`): sampled values,
//! growth-rate estimates with their interval bounds, the clean streak, check counters and the run
//! state, in the text format (encoded by the `prometheus-client` crate), served by `tiny_http`
//! on its own thread so a slow scraper never touches the sampling loop.
//!
//! Names follow Prometheus conventions: base units (bytes, seconds), `_total` for counters; every
//! series carries `run` and `profile` labels.

use anyhow::Result;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

type Labels = Vec<(String, String)>;
type G = Family<Labels, Gauge<f64, AtomicU64>>;

/// Every metric name the exporter serves (the Grafana dashboard uses only these).
pub const METRIC_NAMES: [&str; 9] = [
    "leak_sentinel_target_value",
    "leak_sentinel_growth_per_second",
    "leak_sentinel_threshold_per_second",
    "leak_sentinel_clean_streak_seconds",
    "leak_sentinel_target_clean_seconds",
    "leak_sentinel_checks_total",
    "leak_sentinel_run_state",
    "leak_sentinel_metric_verdict",
    "leak_sentinel_samples_total",
];

/// The registry and the handles the runner updates.
pub struct Exporter {
    registry: Arc<Mutex<Registry>>,
    base: Labels,
    value: G,
    growth: G,
    threshold: G,
    streak: G,
    target_clean: G,
    checks: Family<Labels, Counter>,
    state: G,
    verdict: G,
    samples: Family<Labels, Counter>,
    /// Address actually bound (port 0 resolved).
    pub addr: std::net::SocketAddr,
}

/// The sampled fields and their exported unit suffix: the value is exported as-is (bytes,
/// counts), under `leak_sentinel_target_value{field=…}`.
fn labels(base: &Labels, extra: &[(&str, &str)]) -> Labels {
    let mut l = base.clone();
    l.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    l
}

impl Exporter {
    /// Binds `addr` and starts serving /metrics on a background thread.
    pub fn start(addr: &str, run: &str, profile: &str) -> Result<Exporter> {
        let server = tiny_http::Server::http(addr).map_err(|e| {
            crate::exit::usage(format!("--metrics-addr: cannot listen on '{addr}': {e}"))
        })?;
        let bound = server.server_addr().to_ip().ok_or_else(|| {
            crate::exit::usage(format!("--metrics-addr: '{addr}' is not an IP address"))
        })?;
        let mut reg = Registry::default();
        let value = G::default();
        let growth = G::default();
        let threshold = G::default();
        let streak = G::default();
        let target_clean = G::default();
        let checks = Family::<Labels, Counter>::default();
        let state = G::default();
        let verdict = G::default();
        let samples = Family::<Labels, Counter>::default();
        reg.register(
            "leak_sentinel_target_value",
            "Latest sampled value of the target (bytes for *_bytes fields, else a count), by field",
            value.clone(),
        );
        reg.register(
            "leak_sentinel_growth_per_second",
            "Detector's growth-rate estimate and interval bounds (bound=estimate|low|high), field units per second",
            growth.clone(),
        );
        reg.register(
            "leak_sentinel_threshold_per_second",
            "Largest acceptable growth, field units per second",
            threshold.clone(),
        );
        reg.register(
            "leak_sentinel_clean_streak_seconds",
            "Seconds since warm-up ended or the last failed check",
            streak.clone(),
        );
        reg.register(
            "leak_sentinel_target_clean_seconds",
            "Clean streak needed to pass, seconds",
            target_clean.clone(),
        );
        // prometheus-client appends _total to counters.
        reg.register(
            "leak_sentinel_checks",
            "Checks run, by result (passed|failed)",
            checks.clone(),
        );
        reg.register(
            "leak_sentinel_run_state",
            "1 for the run's current state (running|completed|failed|interrupted), else 0",
            state.clone(),
        );
        reg.register(
            "leak_sentinel_metric_verdict",
            "1 for each gate field's latest verdict (leak|clean|inconclusive), else 0",
            verdict.clone(),
        );
        reg.register("leak_sentinel_samples", "Samples recorded", samples.clone());
        let registry = Arc::new(Mutex::new(reg));
        let served = registry.clone();
        std::thread::Builder::new()
            .name("metrics".into())
            .spawn(move || {
                for req in server.incoming_requests() {
                    let resp = if req.url() == "/metrics" || req.url().starts_with("/metrics?") {
                        let mut body = String::new();
                        let ok = served
                            .lock()
                            .map(|r| encode(&mut body, &r).is_ok())
                            .unwrap_or(false);
                        if ok {
                            let mut r = tiny_http::Response::from_string(body);
                            if let Ok(h) = tiny_http::Header::from_bytes(
                                &b"Content-Type"[..],
                                &b"application/openmetrics-text; version=1.0.0; charset=utf-8"[..],
                            ) {
                                r = r.with_header(h);
                            }
                            r
                        } else {
                            tiny_http::Response::from_string("encoding failed")
                                .with_status_code(500)
                        }
                    } else {
                        tiny_http::Response::from_string("leak-sentinel: see /metrics\n")
                            .with_status_code(404)
                    };
                    let _ = req.respond(resp);
                }
            })?;
        let base: Labels = vec![
            ("run".into(), run.into()),
            ("profile".into(), profile.into()),
        ];
        let e = Exporter {
            registry,
            base,
            value,
            growth,
            threshold,
            streak,
            target_clean,
            checks,
            state,
            verdict,
            samples,
            addr: bound,
        };
        e.set_state("running");
        Ok(e)
    }

    /// After each sample.
    pub fn sample(&self, s: &crate::probe::Sample) {
        for m in crate::probe::Metric::ALL {
            if let Some(v) = s.get(m) {
                self.value
                    .get_or_create(&labels(&self.base, &[("field", m.name())]))
                    .set(v);
            }
        }
        self.samples.get_or_create(&self.base).inc();
    }

    /// After each check: rates per second in the field's own unit (bytes for memory).
    pub fn check(
        &self,
        results: &[crate::analyze::MetricResult],
        failed: bool,
        streak_s: f64,
        target_s: f64,
    ) {
        for r in results {
            let per_s = if r.name.ends_with("_bytes") {
                crate::units::MIB / 60.0
            } else {
                1.0 / 60.0
            };
            let j = &r.judgement;
            for (bound, v) in [
                ("estimate", j.slope_per_min),
                ("low", j.ci_low),
                ("high", j.ci_high),
            ] {
                if v > f64::MIN && v < f64::MAX {
                    self.growth
                        .get_or_create(&labels(&self.base, &[("field", &r.name), ("bound", bound)]))
                        .set(v * per_s);
                }
            }
            self.threshold
                .get_or_create(&labels(&self.base, &[("field", &r.name)]))
                .set(j.threshold_per_min * per_s);
            for v in ["leak", "clean", "inconclusive"] {
                self.verdict
                    .get_or_create(&labels(&self.base, &[("field", &r.name), ("verdict", v)]))
                    .set(if j.verdict.as_str() == v { 1.0 } else { 0.0 });
            }
        }
        self.checks
            .get_or_create(&labels(
                &self.base,
                &[("result", if failed { "failed" } else { "passed" })],
            ))
            .inc();
        self.streak.get_or_create(&self.base).set(streak_s.max(0.0));
        self.target_clean.get_or_create(&self.base).set(target_s);
    }

    /// The run's state.
    pub fn set_state(&self, state: &str) {
        for s in ["running", "completed", "failed", "interrupted"] {
            self.state
                .get_or_create(&labels(&self.base, &[("state", s)]))
                .set(if s == state { 1.0 } else { 0.0 });
        }
    }

    /// The current exposition text (for tests and `--metrics-addr` debugging).
    pub fn render(&self) -> String {
        let mut body = String::new();
        if let Ok(r) = self.registry.lock() {
            let _ = encode(&mut body, &r);
        }
        body
    }
}
