//! A run's outputs: the live `status.json`, the final JSON report, the CSV export and the
//! terminal summary. Data in, bytes out.

use crate::analyze::MetricResult;
use crate::render::analysis::{judgement_json, sensitivity_words, verdict_word};
use crate::sample::{Metric, Sample};
use crate::store::{CheckRow, EventRow, RunStatus};
use serde::Serialize;
use serde_json::{Value, json};

/// Schema version of status.json and of the report; bump only when adding fields.
pub const SCHEMA_VERSION: u32 = 1;

pub use crate::clock::rfc3339;

/// Trend word of status.json for one metric's latest judgement.
pub fn trend_word(j: Option<&MetricResult>, warming_up: bool) -> &'static str {
    use crate::detect::Verdict;
    if warming_up {
        return "warming_up";
    }
    match j {
        None => "inconclusive",
        Some(m) => match m.judgement.verdict {
            Verdict::Clean => "stable",
            Verdict::Leak => "leaking",
            Verdict::Inconclusive if m.judgement.slope_per_min > m.judgement.threshold_per_min => {
                "growing"
            }
            Verdict::Inconclusive => "inconclusive",
        },
    }
}

/// status.json: the seed's fields first, then more. Written at every check and at the end.
#[derive(Debug, Clone, Serialize)]
pub struct StatusDoc {
    /// Run name.
    pub run_name: String,
    /// Where the run stands.
    pub status: RunStatus,
    /// RFC 3339.
    pub start_time: String,
    /// Target clean duration, hours.
    pub target_hours: f64,
    /// Current clean streak, hours.
    pub clean_hours_count: f64,
    /// RFC 3339 of the last check.
    pub last_check: Option<String>,
    /// The memory figure that gates the run (`rss_anon_bytes`, `rss_bytes`, …).
    pub memory_gate: String,
    /// Why that figure gates it.
    pub memory_gate_reason: String,
    /// The FD figure that gates the run (`fds_surviving` once an inventory counted the
    /// descriptors that outlived their group's churn, else `fds`).
    pub fd_gate: String,
    /// Why that figure gates it.
    pub fd_gate_reason: String,
    /// warming_up, stable, growing, leaking, inconclusive.
    pub memory_trend: String,
    /// Same for FDs.
    pub fd_trend: String,
    /// Same for threads.
    pub thread_trend: String,
    /// RFC 3339, when finished.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<String>,
    /// When finished.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub passed: Option<bool>,
    /// Clean hours at the end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub final_clean_hours: Option<f64>,
    /// Path of the final report.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report_file: Option<String>,
    /// Why it failed or stopped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    /// Document version.
    pub schema_version: u32,
    /// What the last check said of the run (`clean`, `undecided`, `leak_suspected`,
    /// `failed`): the one vocabulary of the log, `status` and `report`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check_state: Option<crate::gate::CheckState>,
    /// The last check's words, as the log printed them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check_words: Option<String>,
    /// quick, standard, production.
    pub profile: String,
    /// Root PID of the target, when there is one.
    pub pid: Option<i32>,
    /// PID of the sentinel.
    pub sentinel_pid: u32,
    /// Seconds since the start.
    pub elapsed_s: f64,
    /// Warm-up, seconds.
    pub warmup_s: f64,
    /// Checks run and failed.
    pub checks_total: usize,
    /// Failed checks.
    pub checks_failed: usize,
    /// Failed checks tolerated.
    pub max_failed_checks: u32,
    /// Samples recorded.
    pub samples: usize,
    /// Latest values (bytes, counts).
    pub current: serde_json::Map<String, Value>,
    /// Latest per-metric judgements (contract shape).
    pub metrics: serde_json::Map<String, Value>,
    /// Final overall verdict (clean, leak, inconclusive), when finished with one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<String>,
    /// Exit code of the run, when finished.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Each `--remote-write` endpoint: `url`, `sent`, `dropped_full`, `rejected`, `retries`,
    /// `queued`, `capacity` (points), `delivered_until` (Unix seconds), `failing`, `last_error`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub remote_write: Option<serde_json::Value>,
}

/// The fields of status.json that say how a run ended.
const END_FIELDS: [&str; 7] = [
    "completion_time",
    "passed",
    "final_clean_hours",
    "report_file",
    "failure_reason",
    "verdict",
    "exit_code",
];

/// Corrects a status document (status.json as read) from the store, the single source of truth:
/// a sentinel killed while finishing, or one that could not write the file, leaves it behind the
/// store. Its state is the store's; an ended run gets the end fields from the stored run and its
/// final `report` (when there is one), a running one has none. Returns whether the document was
/// behind the store (anything but the `verdict` and `exit_code` an older version never wrote).
pub fn reconcile_status(
    doc: &mut serde_json::Map<String, Value>,
    row: &crate::store::RunRow,
    report: Option<&Value>,
) -> bool {
    let before = doc.clone();
    doc.insert("status".into(), json!(row.status));
    let ended = row.status != RunStatus::Running && row.ended_at.is_some();
    if !ended {
        for k in END_FIELDS {
            doc.remove(k);
        }
        return *doc != before;
    }
    let mut set = |k: &str, v: Value| {
        if v.is_null() {
            doc.remove(k);
        } else {
            doc.insert(k.into(), v);
        }
    };
    set("completion_time", json!(row.ended_at.map(rfc3339)));
    set(
        "passed",
        report
            .and_then(|r| r.get("passed").cloned())
            .unwrap_or_else(|| json!(row.exit_code == Some(0))),
    );
    if let Some(h) = report.and_then(|r| r["final_clean_hours"].as_f64()) {
        set("final_clean_hours", json!((h * 1e6).round() / 1e6));
    }
    set("report_file", json!(row.report_file));
    set("failure_reason", json!(row.failure_reason));
    set("verdict", json!(row.verdict));
    set("exit_code", json!(row.exit_code));
    // A file written before these two fields existed is not behind for lacking them.
    let mut compared = doc.clone();
    for k in ["verdict", "exit_code"] {
        if !before.contains_key(k) && before.contains_key("completion_time") {
            compared.remove(k);
        }
    }
    compared != before
}

/// Latest non-empty value of each metric.
pub fn current_values(samples: &[Sample]) -> serde_json::Map<String, Value> {
    let mut out = serde_json::Map::new();
    for m in Metric::ALL {
        if let Some(v) = samples.iter().rev().find_map(|s| s.get(m)) {
            out.insert(m.name().into(), json!(v));
        }
    }
    out
}

/// Per-metric judgements as a JSON object.
pub fn metrics_json(results: &[MetricResult]) -> serde_json::Map<String, Value> {
    results
        .iter()
        .map(|m| {
            let mut v = judgement_json(&m.judgement, m.kind.rate_unit());
            if let Some(o) = v.as_object_mut() {
                o.insert("last_value".into(), json!(m.last_value));
            }
            (m.name.clone(), v)
        })
        .collect()
}

/// The samples as CSV in the `analyze` format: `t_seconds` from the run start and one column per
/// metric that has any value (empty cell where a sample lacks it), then one per target gauge
/// (read with the samples, at their times; a selector with labels is quoted).
pub fn samples_csv(samples: &[Sample], gauges: &[crate::gauges::Series], start: f64) -> String {
    let cols: Vec<Metric> = Metric::ALL
        .into_iter()
        .filter(|m| samples.iter().any(|s| s.get(*m).is_some()))
        .collect();
    let mut out = String::from("t_seconds");
    for m in &cols {
        out.push(',');
        out.push_str(m.name());
    }
    for g in gauges {
        out.push(',');
        out.push_str(&csv_field(&g.column));
    }
    out.push('\n');
    // Each gauge's next unread value (its times are a subset of the samples', in order).
    let mut at = vec![0usize; gauges.len()];
    for s in samples {
        out.push_str(&format!("{:.3}", s.t - start));
        for m in &cols {
            out.push(',');
            if let Some(v) = s.get(*m) {
                out.push_str(&format!("{v}"));
            }
        }
        for (g, i) in gauges.iter().zip(at.iter_mut()) {
            out.push(',');
            while *i < g.t.len() && g.t[*i] < s.t {
                *i += 1;
            }
            if *i < g.t.len() && g.t[*i] == s.t {
                out.push_str(&format!("{}", g.v[*i]));
            }
        }
        out.push('\n');
    }
    out
}

/// A CSV field, quoted when it holds a comma, a quote or a line break.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Checks as JSON (detail parsed back).
pub fn checks_json(checks: &[CheckRow]) -> Value {
    Value::Array(
        checks
            .iter()
            .map(|c| {
                json!({
                    "time": rfc3339(c.t),
                    "t": c.t,
                    "failed": c.failed,
                    "metrics": serde_json::from_str::<Value>(&c.detail).unwrap_or(Value::Null),
                })
            })
            .collect(),
    )
}

/// Events as JSON.
pub fn events_json(events: &[EventRow]) -> Value {
    Value::Array(
        events
            .iter()
            .map(|e| json!({"time": rfc3339(e.t), "t": e.t, "kind": e.kind, "detail": e.detail}))
            .collect(),
    )
}

/// The terminal summary of a finished (or running) run.
pub fn summary_text(report: &Value) -> String {
    let mut out = String::new();
    let s = |k: &str| report[k].as_str().unwrap_or("").to_string();
    out.push_str(&format!(
        "run {}: {} — {}\n",
        s("run_name"),
        s("status"),
        if report["passed"].as_bool() == Some(true) {
            "PASSED".to_string()
        } else if let (Some("running"), Some(w)) =
            (report["status"].as_str(), report["check_words"].as_str())
        {
            // A live run says what its last check said, in the log's words.
            format!("last check: {w}")
        } else {
            format!("verdict {}", s("verdict"))
        }
    ));
    if let Some(r) = report["failure_reason"].as_str() {
        out.push_str(&format!("  reason: {r}\n"));
    }
    for (key, label) in [("memory_gate", "memory"), ("fd_gate", "fd")] {
        if let Some(m) = report[key]["metric"].as_str() {
            out.push_str(&format!(
                "  {label} gate: {m} — {}\n",
                report[key]["reason"].as_str().unwrap_or("")
            ));
        }
    }
    out.push_str(&format!(
        "  target: {}\n  started {}, clean {} of {} needed; checks {} ({} failed)\n",
        report["target"]["command"]
            .as_array()
            .map(|a| crate::units::shell_line(
                &a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect::<Vec<_>>()
            ))
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| report["target"]["kind"].as_str().unwrap_or("").to_string()),
        s("start_time"),
        crate::detect::human_secs(
            report["final_clean_hours"]
                .as_f64()
                .or(report["clean_hours_count"].as_f64())
                .unwrap_or(0.0)
                * 3600.0
        ),
        crate::detect::human_secs(report["target_hours"].as_f64().unwrap_or(0.0) * 3600.0),
        report["checks"]["total"],
        report["checks"]["failed"],
    ));
    if let Some(metrics) = report["metrics"].as_object() {
        out.push_str(&format!(
            "  {:<20} {:<13} {:>10} {:>24} {:>10}  {}\n",
            "metric", "verdict", "rate", "95% interval", "threshold", "unit"
        ));
        for (name, m) in metrics {
            // Informational metrics only when they say something.
            if m["gate"].as_bool() == Some(false) && m["ci_high"].is_null() {
                continue;
            }
            // One formatting for bounds everywhere (`-∞`/`+∞` when unbounded): the JSON has
            // null for an unbounded side.
            let b = |k: &str| match m[k].as_f64() {
                Some(v) => crate::detect::fmt_bound(v),
                None if k == "ci_low" => crate::detect::fmt_bound(f64::MIN),
                None => crate::detect::fmt_bound(f64::MAX),
            };
            let v = m["verdict"].as_str().unwrap_or("");
            let word = match v {
                "leak" => verdict_word(crate::detect::Verdict::Leak),
                "clean" => verdict_word(crate::detect::Verdict::Clean),
                _ => verdict_word(crate::detect::Verdict::Inconclusive),
            };
            out.push_str(&format!(
                "  {:<20} {:<13} {:>10} {:>24} {:>10}  {}{}\n",
                name,
                word,
                b("slope_per_min"),
                format!("[{}, {}]", b("ci_low"), b("ci_high")),
                m["threshold_per_min"],
                m["unit"].as_str().unwrap_or(""),
                if m["gate"].as_bool() == Some(true) {
                    ""
                } else {
                    "  (info)"
                }
            ));
        }
    }
    let d = &report["diagnosis"];
    let findings = json_strings(&d["findings"]);
    if !findings.is_empty() {
        out.push_str(&format!(
            "  diagnosis{} (since the end of warm-up{}):\n",
            d["runtime"]
                .as_str()
                .map(|r| format!(" — runtime {r}"))
                .unwrap_or_default(),
            if d["partial"].as_bool() == Some(true) {
                "; partial: a process vanished mid-read"
            } else {
                ""
            }
        ));
        for f in findings {
            out.push_str(&format!("    {f}\n"));
        }
    }
    let suggestions = json_strings(&d["suggestions"]);
    if !suggestions.is_empty() {
        out.push_str("  what to do next:\n");
        for s in suggestions {
            out.push_str(&format!("    - {s}\n"));
        }
    }
    if let Some(changes) = report["baseline_comparison"]["changes"].as_array() {
        out.push_str(&format!(
            "  against baseline {} (run {}):\n",
            report["baseline_comparison"]["baseline_file"]
                .as_str()
                .unwrap_or(""),
            report["baseline_comparison"]["baseline_run"]
                .as_str()
                .unwrap_or("")
        ));
        for c in changes {
            out.push_str(&format!("    {}\n", c["text"].as_str().unwrap_or("")));
        }
    }
    let hook = &report["snapshot_hook"];
    if hook.is_object() {
        out.push_str(&format!(
            "  snapshot hook: {} → exit {}{}; files in {}: {}\n",
            hook["command"].as_str().unwrap_or(""),
            hook["exit_code"],
            if hook["timed_out"].as_bool() == Some(true) {
                " (timed out)"
            } else {
                ""
            },
            hook["dir"].as_str().unwrap_or(""),
            hook["files"]
                .as_array()
                .map(|a| a
                    .iter()
                    .filter_map(|f| f[0].as_str())
                    .collect::<Vec<_>>()
                    .join(", "))
                .unwrap_or_default()
        ));
    }
    if let Some(a) = attribution_of(report) {
        let lines = a.lines();
        if let Some((head, rest)) = lines.split_first() {
            out.push_str(&format!("  {head}:\n"));
            for l in rest {
                out.push_str(&format!("    {l}\n"));
            }
        }
    }
    if let Some(f) = report["report_file"].as_str() {
        out.push_str(&format!("  report: {f}\n"));
    }
    out
}

/// The report's attribution, when the run had one (`--attribute`).
pub fn attribution_of(report: &Value) -> Option<crate::attribution::Attribution> {
    serde_json::from_value(report.get("attribution")?.clone()).ok()
}

/// The strings of a JSON array (empty when it is not one).
pub fn json_strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Sensitivity line for a gate metric (used by the live log).
pub fn sensitivity_line(m: &MetricResult) -> String {
    sensitivity_words(&m.judgement, m.kind.rate_unit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(status: RunStatus, ended: bool) -> crate::store::RunRow {
        crate::store::RunRow {
            id: 1,
            name: "r".into(),
            settings: "{}".into(),
            target: "{}".into(),
            status,
            started_at: 1_700_000_000.0,
            ended_at: ended.then_some(1_700_000_100.0),
            verdict: ended.then(|| "clean".into()),
            exit_code: ended.then_some(0),
            failure_reason: None,
            report_file: ended.then(|| "/s/reports/leak_sentinel_r_1700000000.json".into()),
        }
    }

    fn obj(v: Value) -> serde_json::Map<String, Value> {
        v.as_object().cloned().expect("an object")
    }

    #[test]
    fn a_status_file_behind_the_store_is_corrected_from_it() {
        // Killed after the end was recorded, before status.json was: the file still says running.
        let mut doc = obj(json!({"run_name": "r", "status": "running", "samples": 12}));
        let report = json!({"passed": true, "final_clean_hours": 0.25});
        assert!(reconcile_status(
            &mut doc,
            &row(RunStatus::Completed, true),
            Some(&report)
        ));
        assert_eq!(doc["status"], "completed");
        assert_eq!(doc["passed"], true);
        assert_eq!(doc["final_clean_hours"], 0.25);
        assert_eq!(doc["verdict"], "clean");
        assert_eq!(doc["exit_code"], 0);
        assert_eq!(doc["completion_time"], json!(rfc3339(1_700_000_100.0)));
        assert_eq!(
            doc["report_file"],
            "/s/reports/leak_sentinel_r_1700000000.json"
        );
        assert_eq!(doc["samples"], 12, "what the store does not hold is kept");
        // Corrected once, it agrees.
        let mut again = doc.clone();
        assert!(!reconcile_status(
            &mut again,
            &row(RunStatus::Completed, true),
            Some(&report)
        ));
        assert_eq!(again, doc);
    }

    #[test]
    fn a_resumed_run_has_no_end_and_an_old_file_is_not_behind() {
        let mut doc = obj(json!({"run_name": "r", "status": "interrupted",
            "completion_time": "x", "passed": false, "failure_reason": "interrupted by SIGINT"}));
        assert!(reconcile_status(
            &mut doc,
            &row(RunStatus::Running, false),
            None
        ));
        assert_eq!(doc, obj(json!({"run_name": "r", "status": "running"})));
        // Written by a version without `verdict`/`exit_code`, and otherwise in line.
        let mut old = obj(
            json!({"run_name": "r", "status": "completed", "passed": true,
            "completion_time": rfc3339(1_700_000_100.0),
            "report_file": "/s/reports/leak_sentinel_r_1700000000.json"}),
        );
        assert!(!reconcile_status(
            &mut old,
            &row(RunStatus::Completed, true),
            None
        ));
        assert_eq!(old["verdict"], "clean");
    }
}
