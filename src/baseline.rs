//! Baselines (the seed's `monitoring/baselines/w2_gc_baseline.json` role): a run's steady-state
//! levels (median and p95 after warm-up), growth rates with intervals and sawtooth amplitude,
//! saved to a file and compared with later runs to flag regressions.

use crate::detect::stats::quantile_in_place;
use crate::gate::judge_run;
use crate::sample::{Metric, Sample};
use crate::settings::RunSettings;
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// Schema version of baseline files; bump only when adding fields.
pub const SCHEMA_VERSION: u32 = 1;

/// Level change against a `--baseline` that counts as a regression, percent.
pub const TOLERANCE_PCT: f64 = 10.0;

/// Metrics summarised.
const METRICS: [Metric; 8] = [
    Metric::RssAnonBytes,
    Metric::JvmLiveBytes,
    Metric::JvmHeapCommittedBytes,
    Metric::RssBytes,
    Metric::PssBytes,
    Metric::UssBytes,
    Metric::Fds,
    Metric::Threads,
];

/// Steady-state level of one metric (bytes or count).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Level {
    /// Median after warm-up.
    pub median: f64,
    /// 95th percentile after warm-up.
    pub p95: f64,
}

/// Growth rate of one metric (MiB/min for memory, per minute otherwise).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rate {
    /// Estimate.
    pub slope_per_min: f64,
    /// Interval bounds (`None` when unbounded).
    pub ci_low: Option<f64>,
    /// Upper bound.
    pub ci_high: Option<f64>,
    /// Unit of the rate.
    pub unit: String,
    /// Verdict of the run.
    pub verdict: String,
}

/// A baseline file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    /// Schema version.
    pub schema_version: u32,
    /// The run it was taken from.
    pub run_name: String,
    /// RFC 3339.
    pub created: String,
    /// Seconds after the start the summary covers (warm-up excluded).
    pub window_s: (f64, f64),
    /// Samples summarised.
    pub samples: usize,
    /// Levels by metric name.
    pub levels: BTreeMap<String, Level>,
    /// Rates by metric name.
    pub rates: BTreeMap<String, Rate>,
    /// Sawtooth amplitude by metric, MiB (memory metrics the detector saw as a sawtooth).
    pub sawtooth_amplitude_mib: BTreeMap<String, f64>,
    /// The run's settings.
    pub settings: serde_json::Value,
}

/// Summarises a run's samples after warm-up. `created` stamps it (RFC 3339, in the caller's
/// time zone: see `clock::rfc3339`).
pub fn summarize(
    s: &RunSettings,
    samples: &[Sample],
    started_at: f64,
    created: String,
) -> Baseline {
    let from = started_at + s.warmup_s;
    let steady: Vec<&Sample> = samples.iter().filter(|x| x.t >= from).collect();
    let mut levels = BTreeMap::new();
    for m in METRICS {
        let mut v: Vec<f64> = steady.iter().filter_map(|x| x.get(m)).collect();
        if let (Some(median), Some(p95)) = (
            quantile_in_place(&mut v.clone(), 0.5),
            quantile_in_place(&mut v, 0.95),
        ) {
            levels.insert(m.name().to_string(), Level { median, p95 });
        }
    }
    // A JVM's collections per minute and share of time in GC over the steady window (from its
    // cumulative counters): a GC change is compared on the figures that matter.
    let counter = |m: Metric| {
        let first = steady.iter().find_map(|x| x.get(m).map(|v| (x.t, v)));
        let last = steady.iter().rev().find_map(|x| x.get(m).map(|v| (x.t, v)));
        first.zip(last).filter(|(a, b)| b.0 > a.0)
    };
    if let Some(((t0, c0), (t1, c1))) = counter(Metric::JvmGcTotal) {
        let v = (c1 - c0) / ((t1 - t0) / 60.0);
        levels.insert("jvm_gc_per_min".into(), Level { median: v, p95: v });
    }
    if let Some(((t0, c0), (t1, c1))) = counter(Metric::JvmGcSecondsTotal) {
        let v = 100.0 * (c1 - c0) / (t1 - t0);
        levels.insert("jvm_gc_time_pct".into(), Level { median: v, p95: v });
    }
    let mut rates = BTreeMap::new();
    let mut saw = BTreeMap::new();
    for r in judge_run(samples, started_at, s, &METRICS) {
        let j = &r.judgement;
        let b = |v: f64| (v > f64::MIN && v < f64::MAX).then_some(v);
        rates.insert(
            r.name.clone(),
            Rate {
                slope_per_min: j.slope_per_min,
                ci_low: b(j.ci_low),
                ci_high: b(j.ci_high),
                unit: r.kind.rate_unit().into(),
                verdict: j.verdict.as_str().into(),
            },
        );
        if let Some(st) = j.evidence.sawtooth {
            saw.insert(r.name.clone(), st.amplitude);
        }
    }
    Baseline {
        schema_version: SCHEMA_VERSION,
        run_name: s.name.clone(),
        created,
        window_s: (
            s.warmup_s,
            steady.last().map_or(s.warmup_s, |x| x.t - started_at),
        ),
        samples: steady.len(),
        levels,
        rates,
        sawtooth_amplitude_mib: saw,
        settings: serde_json::to_value(s).unwrap_or_default(),
    }
}

/// Parses a baseline file's text (`path` names it in errors).
pub fn parse(text: &str, path: &Path) -> Result<Baseline> {
    serde_json::from_str(text).map_err(|e| {
        crate::exit::usage(format!(
            "baseline '{}' is not a baseline file: {e}",
            path.display()
        ))
    })
}

/// One line of a comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// Metric name.
    pub metric: String,
    /// `level` (median) or `rate`.
    pub aspect: String,
    /// Baseline value (bytes/count for levels, per minute for rates).
    pub baseline: f64,
    /// This run's value.
    pub current: f64,
    /// Relative change, percent (levels).
    pub change_pct: Option<f64>,
    /// True when it is a regression.
    pub regression: bool,
    /// One line for people.
    pub text: String,
}

fn fmt_level(metric: &str, v: f64) -> String {
    if metric.ends_with("_bytes") {
        format!("{:.1} MiB", v / crate::units::MIB)
    } else if metric.ends_with("_pct") {
        format!("{v:.2} %")
    } else if metric.ends_with("_per_min") {
        format!("{v:.1}/min")
    } else {
        format!("{v:.0}")
    }
}

/// Compares `current` with `base`: a level regression is a median up by more than
/// `tolerance_pct`; a rate regression is growth whose interval lies wholly above the baseline's
/// (beyond noise).
pub fn compare(base: &Baseline, current: &Baseline, tolerance_pct: f64) -> Vec<Change> {
    let mut out = Vec::new();
    for (m, b) in &base.levels {
        let Some(c) = current.levels.get(m) else {
            continue;
        };
        let pct = if b.median.abs() > 0.0 {
            Some(100.0 * (c.median - b.median) / b.median.abs())
        } else {
            None
        };
        let regression = pct.is_some_and(|p| p > tolerance_pct);
        out.push(Change {
            metric: m.clone(),
            aspect: "level".into(),
            baseline: b.median,
            current: c.median,
            change_pct: pct,
            regression,
            text: format!(
                "{}{m} median {} → {} ({}){}",
                if regression { "REGRESSION: " } else { "" },
                fmt_level(m, b.median),
                fmt_level(m, c.median),
                pct.map_or("new".into(), |p| format!("{p:+.1} %")),
                if regression {
                    format!(", more than {tolerance_pct} %")
                } else {
                    String::new()
                }
            ),
        });
    }
    for (m, b) in &base.rates {
        let Some(c) = current.rates.get(m) else {
            continue;
        };
        let regression = match (c.ci_low, b.ci_high) {
            (Some(lo), Some(hi)) => lo > hi && c.slope_per_min > 0.0,
            _ => false,
        };
        out.push(Change {
            metric: m.clone(),
            aspect: "rate".into(),
            baseline: b.slope_per_min,
            current: c.slope_per_min,
            change_pct: None,
            regression,
            text: format!(
                "{}{m} growth {:.3} → {:.3} {}{}",
                if regression { "REGRESSION: " } else { "" },
                b.slope_per_min,
                c.slope_per_min,
                c.unit,
                if regression {
                    " (beyond noise: intervals do not overlap)"
                } else {
                    ""
                }
            ),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(median: f64, slope: f64, lo: f64, hi: f64) -> Baseline {
        Baseline {
            schema_version: 1,
            run_name: "r".into(),
            created: String::new(),
            window_s: (0.0, 1.0),
            samples: 10,
            levels: BTreeMap::from([(
                "rss_bytes".to_string(),
                Level {
                    median,
                    p95: median,
                },
            )]),
            rates: BTreeMap::from([(
                "rss_bytes".to_string(),
                Rate {
                    slope_per_min: slope,
                    ci_low: Some(lo),
                    ci_high: Some(hi),
                    unit: "MiB/min".into(),
                    verdict: "clean".into(),
                },
            )]),
            sawtooth_amplitude_mib: BTreeMap::new(),
            settings: serde_json::Value::Null,
        }
    }

    #[test]
    fn level_and_rate_regressions() {
        let b = base(100.0 * 1048576.0, 0.0, -0.01, 0.01);
        let same = compare(&b, &base(105.0 * 1048576.0, 0.0, -0.01, 0.02), 10.0);
        assert!(same.iter().all(|c| !c.regression), "{same:?}");
        let worse = compare(&b, &base(130.0 * 1048576.0, 0.5, 0.4, 0.6), 10.0);
        assert!(worse.iter().all(|c| c.regression), "{worse:?}");
        assert_eq!(
            worse[0].text,
            "REGRESSION: rss_bytes median 100.0 MiB → 130.0 MiB (+30.0 %), more than 10 %"
        );
    }

    /// A baseline file written by this schema version keeps reading (old files are a contract).
    #[test]
    fn reads_a_version_1_file() {
        let text = r#"{"schema_version":1,"run_name":"W2","created":"2025-05-24T20:25:00+08:00",
            "window_s":[600.0,21600.0],"samples":4200,
            "levels":{"rss_bytes":{"median":104857600.0,"p95":110000000.0}},
            "rates":{"rss_bytes":{"slope_per_min":0.01,"ci_low":-0.02,"ci_high":0.04,"unit":"MiB/min","verdict":"clean"}},
            "sawtooth_amplitude_mib":{},"settings":null}"#;
        let b: Baseline = serde_json::from_str(text).expect("parses");
        assert_eq!(b.levels["rss_bytes"].median, 104857600.0);
    }

    #[test]
    fn jvm_gc_figures_come_from_the_counters_over_the_steady_window() {
        use crate::settings::{Profile, RunSettings};
        let mut settings = RunSettings::defaults("b", Profile::Quick, vec!["true".into()]);
        settings.warmup_s = 60.0;
        // 10 collections and 1.2 s of GC a minute, sampled every 5 s for 10 minutes.
        let samples: Vec<Sample> = (0..120)
            .map(|i| {
                let t = 1000.0 + 5.0 * i as f64;
                let mut x = Sample::at(t);
                let min = (t - 1000.0) / 60.0;
                x.set(Metric::JvmGcTotal, Some((10.0 * min).floor()));
                x.set(Metric::JvmGcSecondsTotal, Some(1.2 * min));
                x
            })
            .collect();
        let b = summarize(
            &settings,
            &samples,
            1000.0,
            "2025-05-24T20:25:00+08:00".into(),
        );
        let per_min = b.levels["jvm_gc_per_min"].median;
        assert!((per_min - 10.0).abs() < 0.3, "{per_min}");
        let pct = b.levels["jvm_gc_time_pct"].median;
        assert!((pct - 2.0).abs() < 1e-6, "{pct}");
        let mut worse = b.clone();
        worse.levels.insert(
            "jvm_gc_per_min".into(),
            Level {
                median: 20.0,
                p95: 20.0,
            },
        );
        let ch = compare(&b, &worse, TOLERANCE_PCT);
        assert!(
            ch.iter()
                .any(|c| c.metric == "jvm_gc_per_min" && c.regression && c.text.contains("/min")),
            "{ch:?}"
        );
    }
}
