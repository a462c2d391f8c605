//! Calibration checks with fixed seeds: false alarms on clean synthetic series, detection of
//! leaks at 5× the threshold, and a live-run replay (a verdict at every check, zero tolerance)
//! on the real labelled traces in tests/data/traces.

use leak_sentinel::analyze::{self, Settings};
use leak_sentinel::detect::synth::{Family, generate};
use leak_sentinel::detect::{Params, Verdict, judge};
use std::path::Path;

fn params(f: Family, span: f64) -> Params {
    let mut p = Params::new(0.1);
    p.warmup_s = 0.1 * span;
    p.quantum = f.quantum();
    p
}

#[test]
fn false_alarms_at_most_one_percent_per_family() {
    for f in Family::ALL {
        let n = 1000;
        let alarms = (0..n)
            .filter(|seed| {
                let s = generate(f, 0.0, 3.0 * 3600.0, 5.0, *seed);
                let span = s.t[s.t.len() - 1];
                judge(&s.t, &s.y, &params(f, span)).verdict == Verdict::Leak
            })
            .count();
        assert!(
            alarms * 100 <= n as usize,
            "{}: {alarms} false alarms in {n}",
            f.name()
        );
    }
}

#[test]
fn leaks_at_five_times_threshold_detected() {
    for f in Family::ALL {
        let n = 200;
        let caught = (0..n)
            .filter(|seed| {
                let s = generate(f, 0.5, 3.0 * 3600.0, 5.0, 10_000 + *seed);
                let span = s.t[s.t.len() - 1];
                judge(&s.t, &s.y, &params(f, span)).verdict == Verdict::Leak
            })
            .count();
        assert!(
            caught * 100 >= 95 * n as usize,
            "{}: caught {caught} of {n}",
            f.name()
        );
    }
}

#[derive(serde::Deserialize)]
struct Label {
    file: String,
    expected_memory: String,
    expected_fds: String,
    expected_threads: String,
}

fn labels() -> Vec<Label> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/traces");
    let text = std::fs::read_to_string(dir.join("labels.json")).expect("labels.json in tests/data");
    serde_json::from_str(&text).expect("labels.json parses")
}

#[test]
fn real_traces_get_their_labels() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/traces");
    for lab in labels() {
        let table = analyze::read_csv(&dir.join(&lab.file)).expect("trace parses");
        let a = analyze::analyze_table(&table, &Settings::default());
        for (col, want) in [
            ("rss_bytes", &lab.expected_memory),
            ("pss_bytes", &lab.expected_memory),
            ("fds", &lab.expected_fds),
            ("threads", &lab.expected_threads),
        ] {
            let m = a
                .metrics
                .iter()
                .find(|m| m.name == col)
                .expect("column present");
            let got = m.judgement.verdict;
            if want == "leak" {
                assert_eq!(
                    got,
                    Verdict::Leak,
                    "{} {col}: {}",
                    lab.file,
                    m.judgement.reason
                );
            } else {
                assert_ne!(
                    got,
                    Verdict::Leak,
                    "{} {col}: {}",
                    lab.file,
                    m.judgement.reason
                );
            }
        }
    }
}

/// As `../shared/tools/replay_checks.py` does: warm-up fixed at 20 % of the trace, then a verdict
/// on every prefix each minute from 3 minutes after warm-up. No check may false-alarm and every
/// leak must be caught.
#[test]
fn replay_every_check_on_real_traces() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/traces");
    for lab in labels() {
        let table = analyze::read_csv(&dir.join(&lab.file)).expect("trace parses");
        let end = table.t[table.t.len() - 1];
        let warmup = 0.2 * end;
        let settings = Settings {
            warmup_s: Some(warmup),
            ..Settings::default()
        };
        for (col, want) in [
            ("rss_bytes", &lab.expected_memory),
            ("fds", &lab.expected_fds),
            ("threads", &lab.expected_threads),
        ] {
            let values = &table
                .columns
                .iter()
                .find(|(n, _)| n == col)
                .expect("column")
                .1;
            let mut caught = false;
            let mut check = warmup + 180.0;
            while check <= end + 1e-9 {
                let k = table.t.partition_point(|v| *v <= check);
                let m = analyze::judge_column(col, &table.t[..k], &values[..k], &settings, warmup);
                if m.judgement.verdict == Verdict::Leak {
                    assert_eq!(
                        want, "leak",
                        "{} {col}: false alarm at {check} s: {}",
                        lab.file, m.judgement.reason
                    );
                    caught = true;
                }
                check += 60.0;
            }
            if want == "leak" {
                assert!(caught, "{} {col}: leak never caught", lab.file);
            }
        }
    }
}
