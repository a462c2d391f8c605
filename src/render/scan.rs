//! The fleet scan's outputs: the contract JSON of SPEC.md ("scan output") and the table for
//! people. Data in, bytes out.

use crate::detect::Verdict;
use crate::fleet::SeriesVerdict;
use std::collections::BTreeMap;

/// `{job="api", instance="…"}`.
pub fn label_text(l: &BTreeMap<String, String>) -> String {
    let inner: Vec<String> = l.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    format!("{{{}}}", inner.join(", "))
}

/// The `--json` document of SPEC.md.
pub fn to_json(v: &[SeriesVerdict]) -> serde_json::Value {
    let b = |x: f64| (x > f64::MIN && x < f64::MAX).then_some(x);
    serde_json::json!({
        "verdict": Verdict::combine(v.iter().map(|s| s.result.judgement.verdict)).as_str(),
        "series": v.iter().map(|s| {
            let j = &s.result.judgement;
            serde_json::json!({
                "labels": s.labels, "verdict": j.verdict.as_str(), "slope_per_min": j.slope_per_min,
                "ci_low": b(j.ci_low), "ci_high": b(j.ci_high), "threshold_per_min": j.threshold_per_min,
                "unit": s.result.kind.rate_unit(), "last_value": s.result.last_value, "points": s.points,
                "reason": j.reason,
            })
        }).collect::<Vec<_>>(),
    })
}

/// The table for people.
pub fn to_text(v: &[SeriesVerdict]) -> String {
    let mut out = format!(
        "{:<13} {:>10} {:>24} {:>12}  series\n",
        "verdict", "rate", "95% interval", "last"
    );
    let fb = crate::detect::fmt_bound;
    for s in v {
        let j = &s.result.judgement;
        out.push_str(&format!(
            "{:<13} {:>10.3} {:>24} {:>12}  {}\n",
            super::analysis::verdict_word(j.verdict),
            j.slope_per_min,
            format!("[{}, {}]", fb(j.ci_low), fb(j.ci_high)),
            s.result
                .last_value
                .map_or("-".into(), |x| format!("{x:.1}")),
            label_text(&s.labels)
        ));
    }
    let leaks = v
        .iter()
        .filter(|s| s.result.judgement.verdict == Verdict::Leak)
        .count();
    out.push_str(&format!(
        "\n{} series: {leaks} leak, {} clean, {} inconclusive (rates in {})\n",
        v.len(),
        v.iter()
            .filter(|s| s.result.judgement.verdict == Verdict::Clean)
            .count(),
        v.iter()
            .filter(|s| s.result.judgement.verdict == Verdict::Inconclusive)
            .count(),
        v.first().map_or("units/min", |s| s.result.kind.rate_unit())
    ));
    out
}
