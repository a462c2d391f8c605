//! Calibration harness: scores the detector on labelled synthetic families and on the real
//! traces of `../shared/traces` (or `$LEAK_SENTINEL_TRACES`), printing per family the
//! false-alarm rate on clean series, the share proven clean, the detection rate at 2× and 5×
//! the threshold, and the median minutes of data needed to detect a 5× leak.
//!
//! `cargo bench --bench calibrate` (env `CALIBRATE_N` = clean series per family, default 1000).

use leak_sentinel::analyze::{self, MetricKind};
use leak_sentinel::detect::synth::{Family, generate};
use leak_sentinel::detect::{Params, Verdict, judge};
use std::path::PathBuf;

const THRESHOLD: f64 = 0.1;
const DURATION_S: f64 = 3.0 * 3600.0;
const DT_S: f64 = 5.0;

fn params(f: Family, span: f64) -> Params {
    let mut p = Params::new(THRESHOLD);
    p.warmup_s = 0.1 * span;
    p.quantum = f.quantum();
    p
}

struct Score {
    family: &'static str,
    clean_n: usize,
    false_alarms: usize,
    proven_clean: usize,
    det2: f64,
    det5: f64,
    ttd5_min: f64,
}

fn score_family(f: Family, n: usize) -> Score {
    let mut false_alarms = 0;
    let mut proven_clean = 0;
    for seed in 0..n as u64 {
        let s = generate(f, 0.0, DURATION_S, DT_S, seed);
        let span = s.t[s.t.len() - 1] - s.t[0];
        match judge(&s.t, &s.y, &params(f, span)).verdict {
            Verdict::Leak => false_alarms += 1,
            Verdict::Clean => proven_clean += 1,
            Verdict::Inconclusive => {}
        }
    }
    let leaks = (n / 2).max(50);
    let mut det = [0usize; 2];
    let mut ttd = Vec::new();
    for (k, mult) in [2.0, 5.0].into_iter().enumerate() {
        for seed in 0..leaks as u64 {
            let s = generate(f, mult * THRESHOLD, DURATION_S, DT_S, 1_000_000 + seed);
            let span = s.t[s.t.len() - 1] - s.t[0];
            if judge(&s.t, &s.y, &params(f, span)).verdict == Verdict::Leak {
                det[k] += 1;
            }
            // Time to detect: a live run with a fixed 10-minute warm-up, checked every 5 minutes.
            if mult == 5.0 && seed < 100 {
                let mut p = params(f, span);
                p.warmup_s = 600.0;
                let mut end = 900.0;
                while end <= DURATION_S {
                    let k = s.t.partition_point(|v| *v <= end);
                    if judge(&s.t[..k], &s.y[..k], &p).verdict == Verdict::Leak {
                        ttd.push(end / 60.0);
                        break;
                    }
                    end += 300.0;
                }
            }
        }
    }
    ttd.sort_by(f64::total_cmp);
    Score {
        family: f.name(),
        clean_n: n,
        false_alarms,
        proven_clean,
        det2: det[0] as f64 / leaks as f64,
        det5: det[1] as f64 / leaks as f64,
        ttd5_min: ttd.get(ttd.len() / 2).copied().unwrap_or(f64::NAN),
    }
}

fn real_traces() {
    let dir = std::env::var_os("LEAK_SENTINEL_TRACES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("../shared/traces"));
    let Ok(text) = std::fs::read_to_string(dir.join("labels.json")) else {
        println!("(no labelled traces at {}; skipped)", dir.display());
        return;
    };
    let Ok(labels) = serde_json::from_str::<Vec<serde_json::Value>>(&text) else {
        println!("(labels.json unreadable; skipped)");
        return;
    };
    println!(
        "\nreal traces ({}), default thresholds, warm-up 10 %:",
        dir.display()
    );
    let (mut ok, mut fa, mut miss) = (0, 0, 0);
    for lab in labels {
        let Some(file) = lab["file"].as_str() else {
            continue;
        };
        let Ok(table) = analyze::read_csv(&dir.join(file)) else {
            println!("  {file}: unreadable");
            continue;
        };
        let settings = analyze::Settings::default();
        let result = analyze::analyze_table(&table, &settings);
        for (col, key) in [
            ("rss_bytes", "expected_memory"),
            ("fds", "expected_fds"),
            ("threads", "expected_threads"),
        ] {
            let want = lab[key].as_str().unwrap_or("");
            let Some(m) = result.metrics.iter().find(|m| m.name == col) else {
                continue;
            };
            let got = m.judgement.verdict.as_str();
            let mark = match (want, got) {
                ("clean", "leak") => {
                    fa += 1;
                    "FALSE ALARM"
                }
                ("leak", v) if v != "leak" => {
                    miss += 1;
                    "MISSED"
                }
                _ => {
                    ok += 1;
                    "ok"
                }
            };
            let unit = if m.kind == MetricKind::Memory {
                "MiB/min"
            } else {
                "/min"
            };
            let b = |v: f64| {
                if v <= f64::MIN || v >= f64::MAX {
                    "∞".to_string()
                } else {
                    format!("{v:.3}")
                }
            };
            println!(
                "  {file:40} {col:10} want {want:6} got {got:12} {:8.3} {unit} [{}, {}]  {mark}",
                m.judgement.slope_per_min,
                b(m.judgement.ci_low),
                b(m.judgement.ci_high)
            );
        }
    }
    println!("  real traces: {ok} correct, {fa} false alarms, {miss} missed");
}

fn main() {
    let n: usize = std::env::var("CALIBRATE_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    println!(
        "calibration: {n} clean series per family, {} h at {DT_S} s, threshold {THRESHOLD}/min, warm-up 10 %",
        DURATION_S / 3600.0
    );
    let scores: Vec<Score> = std::thread::scope(|s| {
        let handles: Vec<_> = Family::ALL
            .iter()
            .map(|f| s.spawn(move || score_family(*f, n)))
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    println!(
        "{:18} {:>11} {:>13} {:>9} {:>9} {:>16}",
        "family", "false-alarm", "proven-clean", "det@2x", "det@5x", "median-ttd@5x"
    );
    for s in &scores {
        println!(
            "{:18} {:>10.2}% {:>12.1}% {:>8.1}% {:>8.1}% {:>12.0} min",
            s.family,
            100.0 * s.false_alarms as f64 / s.clean_n as f64,
            100.0 * s.proven_clean as f64 / s.clean_n as f64,
            100.0 * s.det2,
            100.0 * s.det5,
            s.ttd5_min
        );
    }
    real_traces();
}
