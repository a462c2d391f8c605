//! Detector speed: one verdict over 21,600 samples (6 h at 1 s) and over 1,000,000 samples.
//! Prints the median of several repetitions. `cargo bench --bench detector`.

use leak_sentinel::detect::synth::{Family, generate};
use leak_sentinel::detect::{Params, judge};
use std::time::Instant;

fn bench(label: &str, family: Family, n: usize, reps: usize) {
    let s = generate(family, 0.3, n as f64 - 1.0, 1.0, 42);
    let mut p = Params::new(0.1);
    p.warmup_s = 600.0;
    let mut times = Vec::with_capacity(reps);
    let mut verdict = None;
    for _ in 0..reps {
        let t0 = Instant::now();
        let j = judge(&s.t, &s.y, &p);
        times.push(t0.elapsed().as_secs_f64() * 1e3);
        verdict = Some(j.verdict);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "{label:34} n={:>9}  median {:8.2} ms  min {:8.2} ms  ({reps} reps, verdict {})",
        s.t.len(),
        times[times.len() / 2],
        times[0],
        verdict.map_or("-", |v| v.as_str())
    );
}

fn main() {
    for f in [Family::White, Family::Sawtooth, Family::Steps] {
        bench(&format!("6 h at 1 s, {}", f.name()), f, 21_600, 21);
    }
    for f in [Family::White, Family::Sawtooth] {
        bench(&format!("1,000,000 samples, {}", f.name()), f, 1_000_000, 5);
    }
}
