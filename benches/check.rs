//! A live check's cost against the length of the run: 1 h, 24 h and 7 days of 1-s samples
//! (private memory, FDs and threads, as a spawned target gives them), judged the way a check
//! judges them — the run's thinned series (`thinned::Thinned`, at most 8,192 points, kept as the
//! samples come) through `gate::judge_gate` — beside judging every sample, as a check did before
//! (that figure leaves out reading them back from SQLite, which came on top). Prints the median
//! latency of several checks, the cost of keeping one sample, and the memory the series holds.
//! `cargo bench --bench check`.

use leak_sentinel::detect::synth::{Family, generate};
use leak_sentinel::gate::judge_gate;
use leak_sentinel::sample::{Metric, Sample};
use leak_sentinel::settings::{Profile, RunSettings};
use leak_sentinel::thinned::{CAP, Thinned};
use leak_sentinel::units::MIB;
use std::time::Instant;

/// `n` samples a second apart: memory a GC sawtooth with a small leak, FDs and threads flat.
fn samples(n: usize) -> Vec<Sample> {
    let mem = generate(Family::Sawtooth, 0.05, n as f64 - 1.0, 1.0, 7);
    mem.t
        .iter()
        .zip(&mem.y)
        .enumerate()
        .map(|(i, (t, y))| {
            let mut s = Sample::at(*t);
            s.set(Metric::RssAnonBytes, Some(y * MIB));
            s.set(Metric::RssBytes, Some(y * MIB + 20.0 * MIB));
            s.set(Metric::Fds, Some(12.0 + (i % 3) as f64));
            s.set(Metric::Threads, Some(4.0));
            s
        })
        .collect()
}

/// Median milliseconds of `reps` calls of `f`.
fn median_ms(reps: usize, mut f: impl FnMut()) -> f64 {
    let mut v: Vec<f64> = (0..reps)
        .map(|_| {
            let t0 = Instant::now();
            f();
            t0.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let mut s = RunSettings::defaults("bench", Profile::Production, vec!["./api".into()]);
    s.warmup_s = 1800.0;
    println!(
        "one check of a run sampled every second (memory, FDs, threads); thinned series: at most {CAP} points, {} KiB held",
        CAP * std::mem::size_of::<Sample>() / 1024
    );
    for (label, n) in [("1 h", 3_600), ("24 h", 86_400), ("7 days", 604_800)] {
        let all = samples(n);
        let mut th = Thinned::new(Sample::at(f64::NAN));
        let t0 = Instant::now();
        for x in &all {
            th.push(x.clone());
        }
        let push_ns = t0.elapsed().as_secs_f64() * 1e9 / n as f64;
        let reps = if n > 100_000 { 5 } else { 11 };
        let thinned = median_ms(reps, || {
            std::hint::black_box(judge_gate(th.points(), &[], 0.0, &s));
        });
        let whole = median_ms(reps, || {
            std::hint::black_box(judge_gate(&all, &[], 0.0, &s));
        });
        let verdicts: Vec<String> = judge_gate(th.points(), &[], 0.0, &s)
            .iter()
            .map(|r| format!("{} {}", r.name, r.judgement.verdict.as_str()))
            .collect();
        println!(
            "{label:>7}: {n:>7} samples → {:>5} points (stride {:>3}); check {thinned:7.2} ms (every sample judged: {whole:8.2} ms); keeping a sample {push_ns:.0} ns; {}",
            th.points().len(),
            th.stride(),
            verdicts.join(", ")
        );
    }
}
