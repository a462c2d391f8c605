//! Two runs compared (`compare RUN_A RUN_B`), data → data: settings, steady-state levels and growth rates side by side, the change
//! in each and whether it is beyond noise — the question after an optimisation.

use crate::detect::stats::quantile_in_place;
use crate::gate::judge_run;
use crate::sample::{Metric, Sample};
use crate::settings::RunSettings;
use anyhow::Result;
use serde_json::{Map, Value, json};

const METRICS: [Metric; 5] = [
    Metric::RssBytes,
    Metric::PssBytes,
    Metric::UssBytes,
    Metric::Fds,
    Metric::Threads,
];

/// One run's stored data.
pub struct RunData {
    /// Run name.
    pub name: String,
    /// Its settings.
    pub settings: RunSettings,
    /// Start, Unix seconds.
    pub started_at: f64,
    /// Every sample.
    pub samples: Vec<Sample>,
}

struct Side {
    settings: RunSettings,
    levels: Vec<(Metric, f64, f64, f64)>,
    rates: Map<String, Value>,
}

fn side(run: &RunData) -> Side {
    let (settings, samples) = (run.settings.clone(), &run.samples);
    let from = run.started_at + settings.warmup_s;
    let mut levels = Vec::new();
    for m in METRICS {
        let mut v: Vec<f64> = samples
            .iter()
            .filter(|s| s.t >= from)
            .filter_map(|s| s.get(m))
            .collect();
        if let (Some(p25), Some(p50), Some(p75)) = (
            quantile_in_place(&mut v, 0.25),
            quantile_in_place(&mut v, 0.5),
            quantile_in_place(&mut v, 0.75),
        ) {
            levels.push((m, p50, p25, p75));
        }
    }
    let mut rates = Map::new();
    for r in judge_run(samples, run.started_at, &settings, &METRICS) {
        let b = |v: f64| (v > f64::MIN && v < f64::MAX).then_some(v);
        rates.insert(
            r.name.clone(),
            json!({"slope_per_min": r.judgement.slope_per_min, "ci_low": b(r.judgement.ci_low),
                   "ci_high": b(r.judgement.ci_high), "verdict": r.judgement.verdict.as_str(),
                   "unit": r.kind.rate_unit()}),
        );
    }
    Side {
        settings,
        levels,
        rates,
    }
}

fn direction(d: f64) -> &'static str {
    if d > 0.0 {
        "up"
    } else if d < 0.0 {
        "down"
    } else {
        "same"
    }
}

/// The comparison as JSON.
pub fn compare(a: &RunData, b: &RunData) -> Result<Value> {
    let (sa, sb) = (side(a), side(b));
    let ja = serde_json::to_value(&sa.settings)?;
    let jb = serde_json::to_value(&sb.settings)?;
    let mut settings = Map::new();
    if let (Some(oa), Some(ob)) = (ja.as_object(), jb.as_object()) {
        for (k, va) in oa {
            let vb = ob.get(k).cloned().unwrap_or(Value::Null);
            if k != "name" && *va != vb {
                settings.insert(k.clone(), json!({"a": va, "b": vb}));
            }
        }
    }
    let mut metrics = Map::new();
    for (m, med_a, p25a, p75a) in &sa.levels {
        let Some((_, med_b, p25b, p75b)) = sb.levels.iter().find(|x| x.0 == *m) else {
            continue;
        };
        let delta = med_b - med_a;
        let noise = (p75a - p25a).max(p75b - p25b);
        // A level change is beyond noise when it exceeds both runs' interquartile range (and
        // 1 % of the level, so that perfectly flat counters are not "significant" by a hair).
        let beyond = delta.abs() > noise && delta.abs() > 0.01 * med_a.abs();
        let ra = &sa.rates.get(m.name()).cloned().unwrap_or(Value::Null);
        let rb = &sb.rates.get(m.name()).cloned().unwrap_or(Value::Null);
        let (sla, slb) = (
            ra["slope_per_min"].as_f64().unwrap_or(0.0),
            rb["slope_per_min"].as_f64().unwrap_or(0.0),
        );
        let rate_beyond = match (
            ra["ci_low"].as_f64(),
            ra["ci_high"].as_f64(),
            rb["ci_low"].as_f64(),
            rb["ci_high"].as_f64(),
        ) {
            (Some(al), Some(ah), Some(bl), Some(bh)) => bl > ah || bh < al,
            _ => false,
        };
        metrics.insert(
            m.name().into(),
            json!({
                "level_a": med_a, "level_b": med_b,
                "level_change_pct": if *med_a != 0.0 { Some(100.0 * delta / med_a.abs()) } else { None },
                "level_direction": direction(delta), "level_beyond_noise": beyond,
                "rate_a": ra, "rate_b": rb,
                "rate_change_per_min": slb - sla,
                "rate_direction": direction(slb - sla), "rate_beyond_noise": rate_beyond,
            }),
        );
    }
    Ok(json!({"a": a.name, "b": b.name, "settings_changed": settings, "metrics": metrics}))
}
