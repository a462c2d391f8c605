//! Renders an [`Analysis`] (from `analyze` or a run's final check) as the contract JSON of
//! SPEC.md or as a table for people.

use crate::analyze::{Analysis, MetricResult};
use crate::detect::{Judgement, Verdict, human_secs};
use crate::gate::{Outcome, Replay, Schedule};
use serde_json::{Map, Value, json};

/// Schema version of the analysis JSON; bump only when adding fields.
pub const SCHEMA_VERSION: u32 = 1;

/// An interval bound as JSON: `null` when the data could not bound it.
fn bound(v: f64) -> Value {
    if v <= f64::MIN || v >= f64::MAX {
        Value::Null
    } else {
        json!(round6(v))
    }
}

fn round6(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

/// One metric's judgement in the contract shape (`verdict`, `slope_per_min`, `ci_low`,
/// `ci_high`, `threshold_per_min`, `unit`) plus evidence.
pub fn judgement_json(j: &Judgement, unit: &str) -> Value {
    json!({
        "verdict": j.verdict.as_str(),
        "slope_per_min": round6(j.slope_per_min),
        "ci_low": bound(j.ci_low),
        "ci_high": bound(j.ci_high),
        "threshold_per_min": j.threshold_per_min,
        "unit": unit,
        "confidence": j.confidence,
        "reason": j.reason,
        "evidence": j.evidence,
    })
}

fn metric_json(m: &MetricResult) -> Value {
    let mut v = judgement_json(&m.judgement, m.kind.rate_unit());
    if let Some(obj) = v.as_object_mut() {
        obj.insert("kind".into(), json!(m.kind));
        obj.insert("last_value".into(), json!(m.last_value.map(round6)));
    }
    v
}

/// The `analyze --json` document.
pub fn to_json(a: &Analysis) -> Value {
    let metrics: Map<String, Value> = a
        .metrics
        .iter()
        .map(|m| {
            let mut v = metric_json(m);
            if let Some(obj) = v.as_object_mut() {
                obj.insert("gate".into(), json!(a.gate.contains(&m.name)));
            }
            (m.name.clone(), v)
        })
        .collect();
    json!({
        "schema_version": SCHEMA_VERSION,
        "verdict": a.verdict.as_str(),
        "input_format": a.input_format.name(),
        "gate": a.gate,
        "span_s": round6(a.span_s),
        "warmup_s": round6(a.warmup_s),
        "metrics": metrics,
        "attribution": crate::attribution::none_in_recordings(),
    })
}

use crate::detect::fmt_bound as fmt_rate;

/// The verdict in capitals for tables.
pub fn verdict_word(v: Verdict) -> &'static str {
    match v {
        Verdict::Leak => "LEAK",
        Verdict::Clean => "clean",
        Verdict::Inconclusive => "inconclusive",
    }
}

pub use crate::gate::sensitivity_words;

/// The human-readable table of `analyze`.
pub fn to_text(a: &Analysis) -> String {
    let mut out = format!(
        "input: {} ({})\n\n",
        a.input_format.name(),
        a.input_format.describe()
    );
    // Peers' recordings bring longer names (io_write_bytes_total): the column fits them.
    let w = a
        .metrics
        .iter()
        .map(|m| m.name.len())
        .max()
        .unwrap_or(0)
        .max(14);
    out.push_str(&format!(
        "{:<w$} {:<13} {:>10} {:>24} {:>10}  {}\n",
        "metric", "verdict", "rate", "95% interval", "threshold", "unit"
    ));
    for m in &a.metrics {
        let j = &m.judgement;
        out.push_str(&format!(
            "{:<w$} {:<13} {:>10.3} {:>24} {:>10}  {}\n",
            m.name,
            verdict_word(j.verdict),
            j.slope_per_min,
            format!("[{}, {}]", fmt_rate(j.ci_low), fmt_rate(j.ci_high)),
            j.threshold_per_min,
            m.kind.rate_unit()
        ));
    }
    out.push_str(&format!(
        "\noverall: {} ({} of data, warm-up {}; decided by {})\n",
        verdict_word(a.verdict),
        human_secs(a.span_s),
        human_secs(a.warmup_s),
        a.gate.join(", ")
    ));
    for m in &a.metrics {
        let j = &m.judgement;
        out.push_str(&format!("  {}: {}\n", m.name, j.reason));
        let s = sensitivity_words(j, m.kind.rate_unit());
        if !s.is_empty() {
            out.push_str(&format!("  {:width$}  {s}\n", "", width = m.name.len()));
        }
    }
    out.push_str(&format!(
        "attribution: none — {}\n",
        crate::attribution::NOT_IN_RECORDINGS
    ));
    out
}

/// Adds `checks` and `run` of `analyze --as-run` (SPEC.md) to the analyze document.
pub fn add_replay_json(doc: &mut Value, r: &Replay, gate: &[String]) {
    let checks: Vec<Value> = r
        .checks
        .iter()
        .map(|c| {
            let metrics: Map<String, Value> = c
                .metrics
                .iter()
                .map(|m| (m.name.clone(), json!(m.judgement.verdict.as_str())))
                .collect();
            let detail: Map<String, Value> = c
                .metrics
                .iter()
                .map(|m| {
                    (
                        m.name.clone(),
                        json!({
                            "slope_per_min": round6(m.judgement.slope_per_min),
                            "ci_low": bound(m.judgement.ci_low),
                            "ci_high": bound(m.judgement.ci_high),
                            "z_vs_threshold": m.judgement.evidence.z_vs_threshold.map(round6),
                            "reason": m.judgement.reason,
                        }),
                    )
                })
                .collect();
            json!({
                "t_s": round6(c.t_s),
                "verdict": c.verdict.as_str(),
                "failed": c.failed,
                "metrics": metrics,
                "detail": detail,
            })
        })
        .collect();
    let (outcome, reason) = outcome_words(r);
    if let Some(obj) = doc.as_object_mut() {
        obj.insert("gate_metrics".into(), json!(gate));
        obj.insert("checks".into(), Value::Array(checks));
        obj.insert(
            "run".into(),
            json!({
                "outcome": outcome,
                "failed_at_s": r.failed_at_s.map(round6),
                "clean_streak_s": round6(r.streak_s),
                "reason": reason,
            }),
        );
    }
}

fn outcome_words(r: &Replay) -> (&'static str, String) {
    match &r.outcome {
        Some(Outcome::Passed) => ("passed", "the clean streak reached the duration".into()),
        Some(Outcome::Leak(why)) => ("failed", why.clone()),
        Some(Outcome::Inconclusive(why)) => ("inconclusive", why.clone()),
        None => (
            "inconclusive",
            format!(
                "the recording ends before the run would: clean streak {} at the last check",
                human_secs(r.streak_s)
            ),
        ),
    }
}

/// `analyze --as-run` for people: one line per check, then how the run ended.
pub fn replay_text(r: &Replay, s: &Schedule) -> String {
    let mut out = format!(
        "replaying a run: warm-up {}, a check every {}, duration {}, {} failed check(s) tolerated\n",
        human_secs(s.warmup_s),
        human_secs(s.check_every_s),
        human_secs(s.duration_s),
        s.max_failed
    );
    for (i, c) in r.checks.iter().enumerate() {
        let words: Vec<String> = c
            .metrics
            .iter()
            .map(|m| {
                format!(
                    "{} {} {:.3} {}",
                    m.name,
                    m.judgement.verdict,
                    m.judgement.slope_per_min,
                    m.kind.rate_unit()
                )
            })
            .collect();
        out.push_str(&format!(
            "check {:>3} at {:>9}: {:<12} {}{}\n",
            i + 1,
            human_secs(c.t_s),
            verdict_word(c.verdict),
            words.join(", "),
            if c.failed { "  FAILED" } else { "" }
        ));
    }
    let (outcome, reason) = outcome_words(r);
    match r.failed_at_s {
        Some(t) => out.push_str(&format!(
            "\nrun: failed at check {} ({}): {reason}\n",
            r.checks.len(),
            human_secs(t)
        )),
        None => out.push_str(&format!("\nrun: {outcome}: {reason}\n")),
    }
    out
}
