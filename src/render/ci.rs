//! What the CI outputs (JUnit XML, the markdown step summary) show, taken from a run's final
//! report, a fleet scan or an analysis: one [`CiDoc`] per test suite (a run, a scanned series, an
//! analysed file) with one [`CiRow`] per gate metric. Data in, data out; `junit` and `markdown`
//! turn it into bytes.

use crate::analyze::Analysis;
use crate::detect::Verdict;
use crate::fleet::SeriesVerdict;
use serde_json::Value;

/// One gate metric's verdict, rates in `unit` (per minute).
#[derive(Debug, Clone, PartialEq)]
pub struct CiRow {
    /// Metric name (`rss_anon_bytes`, `fds`) or, for a scan, the series' labels.
    pub metric: String,
    /// leak / clean / inconclusive.
    pub verdict: Verdict,
    /// Estimated sustained growth, unit per minute.
    pub slope_per_min: f64,
    /// Interval bounds, unit per minute (`None`: the data could not bound that side).
    pub ci_low: Option<f64>,
    /// Upper bound.
    pub ci_high: Option<f64>,
    /// Confidence of the interval (0.95).
    pub confidence: f64,
    /// Threshold judged against, unit per minute.
    pub threshold_per_min: f64,
    /// `MiB/min`, `FD/min`, `threads/min`, `units/min`.
    pub unit: String,
    /// The detector's sentence.
    pub reason: String,
    /// Smallest leak (unit per minute) the data would have flagged (the detector's
    /// `evidence.min_detectable_per_min`).
    pub min_detectable_per_min: Option<f64>,
    /// Seconds of data the verdict rests on (after warm-up).
    pub judged_s: f64,
}

/// Why a suite ended without its metrics' own verdicts deciding it (a run whose target exited,
/// an interrupted run, a run failed on checks no final verdict shows).
#[derive(Debug, Clone, PartialEq)]
pub struct Abort {
    /// `target_exited`, `interrupted` or `failed_checks`.
    pub kind: String,
    /// The run's failure reason.
    pub message: String,
    /// An error (the test could not finish) rather than a failure (it found a problem).
    pub error: bool,
}

/// One test suite: a run, a scanned series or an analysed file.
#[derive(Debug, Clone, PartialEq)]
pub struct CiDoc {
    /// `run`, `scan` or `analyze`.
    pub kind: &'static str,
    /// Run name, series labels or file name.
    pub name: String,
    /// Overall verdict of the gate metrics.
    pub verdict: Verdict,
    /// Exit code of the command for this suite, when it is known.
    pub exit_code: Option<i32>,
    /// `passed`, `failed`, `inconclusive`, … in words for people.
    pub outcome: String,
    /// Why it failed or is undecided.
    pub failure_reason: Option<String>,
    /// When the run or scan ended early.
    pub abort: Option<Abort>,
    /// Start, UTC, `YYYY-MM-DDTHH:MM:SS` (JUnit's timestamp has no zone).
    pub timestamp: Option<String>,
    /// Seconds the suite covers.
    pub elapsed_s: f64,
    /// The full report (JSON or HTML), when one was written.
    pub report: Option<String>,
    /// Extra facts (profile, query, warm-up) as name → value.
    pub properties: Vec<(String, String)>,
    /// One per gate metric.
    pub rows: Vec<CiRow>,
}

fn parse_verdict(s: &str) -> Verdict {
    match s {
        "leak" => Verdict::Leak,
        "clean" => Verdict::Clean,
        _ => Verdict::Inconclusive,
    }
}

/// RFC 3339 → JUnit's zone-less UTC timestamp.
fn utc_of_rfc3339(s: &str) -> Option<String> {
    chrono::DateTime::parse_from_rfc3339(s).ok().map(|d| {
        d.with_timezone(&chrono::Utc)
            .format("%Y-%m-%dT%H:%M:%S")
            .to_string()
    })
}

/// Unix seconds → JUnit's zone-less UTC timestamp.
pub fn utc_of_unix(t: f64) -> Option<String> {
    chrono::DateTime::from_timestamp(t.floor() as i64, 0)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%S").to_string())
}

fn judged_span(ev: &Value) -> f64 {
    let f = |k: &str| ev.get(k).and_then(Value::as_f64);
    match (f("judged_from_s"), f("judged_to_s")) {
        (Some(a), Some(b)) if b >= a => b - a,
        _ => 0.0,
    }
}

/// A run's final report (the JSON `session::finish` writes, `report NAME --json`): its gate
/// metrics (`"gate": true`) in report order.
pub fn from_report(r: &Value) -> CiDoc {
    let s = |k: &str| r.get(k).and_then(Value::as_str).map(str::to_string);
    let rows: Vec<CiRow> = r
        .get("metrics")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter(|(_, v)| v.get("gate").and_then(Value::as_bool) == Some(true))
                .map(|(name, v)| {
                    let f = |k: &str| v.get(k).and_then(Value::as_f64);
                    let ev = v.get("evidence").cloned().unwrap_or(Value::Null);
                    CiRow {
                        metric: name.clone(),
                        verdict: parse_verdict(
                            v.get("verdict").and_then(Value::as_str).unwrap_or(""),
                        ),
                        slope_per_min: f("slope_per_min").unwrap_or(0.0),
                        ci_low: f("ci_low"),
                        ci_high: f("ci_high"),
                        confidence: f("confidence").unwrap_or(0.95),
                        threshold_per_min: f("threshold_per_min").unwrap_or(0.0),
                        unit: v
                            .get("unit")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_string(),
                        reason: v
                            .get("reason")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_string(),
                        min_detectable_per_min: ev
                            .get("min_detectable_per_min")
                            .and_then(Value::as_f64),
                        judged_s: judged_span(&ev),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let exit_code = r.get("exit_code").and_then(Value::as_i64).map(|c| c as i32);
    let reason = s("failure_reason");
    let any_leak = rows.iter().any(|x| x.verdict == Verdict::Leak);
    // Exit codes of SPEC.md: 4 target exited, 5 interrupted — the run could not finish (an
    // error); 1 without a leaking metric in the final judgement — failed checks decided it.
    let abort = match exit_code {
        Some(4) => Some(("target_exited", true)),
        Some(5) => Some(("interrupted", true)),
        Some(1) if !any_leak => Some(("failed_checks", false)),
        _ => None,
    }
    .map(|(kind, error)| Abort {
        kind: kind.into(),
        message: reason.clone().unwrap_or_else(|| kind.replace('_', " ")),
        error,
    });
    let outcome = match (r.get("passed").and_then(Value::as_bool), exit_code) {
        (Some(true), _) => "passed".to_string(),
        (_, Some(1)) => "failed: leak".into(),
        (_, Some(3)) => "inconclusive".into(),
        (_, Some(4)) => "failed: target exited".into(),
        (_, Some(5)) => "interrupted".into(),
        _ => s("status").unwrap_or_else(|| "unknown".into()),
    };
    let mut properties = Vec::new();
    for k in ["profile", "status", "verdict"] {
        if let Some(v) = s(k) {
            properties.push((k.to_string(), v));
        }
    }
    if let Some(v) = r.get("target_hours").and_then(Value::as_f64) {
        properties.push(("target_hours".into(), format!("{v}")));
    }
    if let Some(v) = r.get("final_clean_hours").and_then(Value::as_f64) {
        properties.push(("final_clean_hours".into(), format!("{v:.4}")));
    }
    if let Some(c) = exit_code {
        properties.push(("exit_code".into(), c.to_string()));
    }
    if let Some(v) = s("report_file") {
        properties.push(("report_file".into(), v));
    }
    CiDoc {
        kind: "run",
        name: s("run_name").unwrap_or_else(|| "run".into()),
        verdict: parse_verdict(&s("verdict").unwrap_or_default()),
        exit_code,
        outcome,
        failure_reason: reason,
        abort,
        timestamp: s("start_time").and_then(|t| utc_of_rfc3339(&t)),
        elapsed_s: r.get("elapsed_s").and_then(Value::as_f64).unwrap_or(0.0),
        report: s("report_file"),
        properties,
        rows,
    }
}

fn row_of(metric: String, m: &crate::analyze::MetricResult) -> CiRow {
    let j = &m.judgement;
    let b = |x: f64| (x > f64::MIN && x < f64::MAX).then_some(x);
    CiRow {
        metric,
        verdict: j.verdict,
        slope_per_min: j.slope_per_min,
        ci_low: b(j.ci_low),
        ci_high: b(j.ci_high),
        confidence: j.confidence,
        threshold_per_min: j.threshold_per_min,
        unit: m.kind.rate_unit().to_string(),
        reason: j.reason.clone(),
        min_detectable_per_min: j.evidence.min_detectable_per_min,
        judged_s: (j.evidence.judged_to_s - j.evidence.judged_from_s).max(0.0),
    }
}

fn outcome_of(v: Verdict) -> (String, i32) {
    match v {
        Verdict::Clean => ("passed".into(), 0),
        Verdict::Leak => ("failed: leak".into(), 1),
        Verdict::Inconclusive => ("inconclusive".into(), 3),
    }
}

/// A fleet scan: one suite per series (its labels name it), one row: the queried value.
/// `end_unix`: the end of the scanned range; `range_s`: its length; `report`: the HTML written.
pub fn from_scan(
    query: &str,
    series: &[SeriesVerdict],
    end_unix: f64,
    range_s: f64,
    warmup_s: f64,
    report: Option<&str>,
) -> Vec<CiDoc> {
    series
        .iter()
        .map(|s| {
            let labels = super::scan::label_text(&s.labels);
            let v = s.result.judgement.verdict;
            let (outcome, code) = outcome_of(v);
            CiDoc {
                kind: "scan",
                name: labels.clone(),
                verdict: v,
                exit_code: Some(code),
                outcome,
                failure_reason: (v != Verdict::Clean).then(|| s.result.judgement.reason.clone()),
                abort: None,
                timestamp: utc_of_unix(end_unix - range_s),
                elapsed_s: range_s,
                report: report.map(str::to_string),
                properties: vec![
                    ("query".into(), query.to_string()),
                    ("points".into(), s.points.to_string()),
                    ("warmup_s".into(), format!("{warmup_s}")),
                ],
                rows: vec![row_of(query.to_string(), &s.result)],
            }
        })
        .collect()
}

/// An `analyze` of a file: one suite, one row per gate column. `report`: a report written next
/// to it (the `--html` file), if any.
pub fn from_analysis(file: &str, a: &Analysis, report: Option<&str>) -> CiDoc {
    let (outcome, code) = outcome_of(a.verdict);
    let rows: Vec<CiRow> = a
        .metrics
        .iter()
        .filter(|m| a.gate.contains(&m.name))
        .map(|m| row_of(m.name.clone(), m))
        .collect();
    CiDoc {
        kind: "analyze",
        name: file.to_string(),
        verdict: a.verdict,
        exit_code: Some(code),
        outcome,
        failure_reason: rows
            .iter()
            .find(|r| r.verdict == a.verdict && a.verdict != Verdict::Clean)
            .map(|r| format!("{}: {}", r.metric, r.reason)),
        abort: None,
        timestamp: None,
        elapsed_s: a.span_s,
        report: report.map(str::to_string),
        properties: vec![
            ("input_format".into(), a.input_format.name().to_string()),
            ("warmup_s".into(), format!("{}", a.warmup_s)),
        ],
        rows,
    }
}

/// `+1.430 MiB/min`.
pub fn rate_text(v: f64, unit: &str) -> String {
    format!("{v:+.3} {unit}")
}

/// `[1.210, 1.660]` (`-∞`/`+∞` for an unbounded side).
pub fn interval_text(r: &CiRow) -> String {
    format!(
        "[{}, {}]",
        r.ci_low.map_or("-∞".into(), |v| format!("{v:.3}")),
        r.ci_high.map_or("+∞".into(), |v| format!("{v:.3}"))
    )
}

/// `0.1 MiB/min`.
pub fn threshold_text(r: &CiRow) -> String {
    format!("{} {}", r.threshold_per_min, r.unit)
}

/// `0.350 MiB/min`, or `—` when the data cannot tell.
pub fn min_detectable_text(r: &CiRow) -> String {
    r.min_detectable_per_min
        .map_or("—".into(), |v| format!("{v:.3} {}", r.unit))
}
