//! HTML report cost for a 6-hour, 1-second-sampled run (21,600 samples per metric): generation
//! time (median of 5) and file size. `cargo bench --bench report`.

use leak_sentinel::analyze::{Settings, judge_column};
use leak_sentinel::detect::synth::{Family, generate};
use leak_sentinel::render::html::{Chart, Report, Series, render};
use std::time::Instant;

fn main() {
    let n = 21_600.0;
    let settings = Settings::default();
    let mut charts = Vec::new();
    for (metric, family, leak, unit) in [
        ("rss_bytes", Family::Sawtooth, 0.3, "MiB"),
        ("pss_bytes", Family::Ar1Heavy, 0.0, "MiB"),
        ("fds", Family::FdBlips, 0.0, "FDs"),
        ("threads", Family::Steps, 0.0, "threads"),
    ] {
        let s = generate(family, leak, n - 1.0, 1.0, 7);
        // Memory columns are bytes for the detector; the synthetic series is in MiB.
        let scale = if metric.ends_with("_bytes") {
            1_048_576.0
        } else {
            1.0
        };
        let raw: Vec<f64> = s.y.iter().map(|v| v * scale).collect();
        let m = judge_column(metric, &s.t, &raw, &settings, 600.0);
        charts.push(Chart {
            metric: metric.into(),
            title: metric.into(),
            unit: unit.into(),
            series: vec![Series {
                name: metric.into(),
                points: s.t.iter().copied().zip(s.y.iter().copied()).collect(),
            }],
            stacked: Vec::new(),
            judgement: Some(m.judgement),
        });
    }
    let report = Report {
        title: "bench".into(),
        verdict_words: "LEAK DETECTED".into(),
        warmup_s: 600.0,
        checks: (1..=72)
            .map(|k| (600.0 + 300.0 * f64::from(k), k > 70))
            .collect(),
        charts,
        ..Report::default()
    };
    let mut times = Vec::new();
    let mut size = 0;
    for _ in 0..5 {
        let t0 = Instant::now();
        let html = render(&report).expect("renders");
        times.push(t0.elapsed().as_secs_f64() * 1e3);
        size = html.len();
    }
    times.sort_by(f64::total_cmp);
    println!(
        "HTML report, 4 charts × 21,600 samples (6 h at 1 s): median {:.1} ms (min {:.1} ms), {:.0} KiB",
        times[2],
        times[0],
        size as f64 / 1024.0
    );
}
