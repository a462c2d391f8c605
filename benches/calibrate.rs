//! Calibration harness: replays each profile's real check schedule (quick, standard,
//! production: warm-up, a check every interval, the clean streak against the duration, zero
//! failed checks tolerated) through the live runner's check gate (`gate::replay`) on every
//! synthetic family of `detect::synth`, and prints per profile and family: the run-level
//! false-alarm rate on clean runs, the shares of clean runs that pass and end inconclusive,
//! detection within the run at 2×, 3×, 5× and 20× the threshold, and the median minutes from
//! warm-up end to the failing check at 3× and 10×. Families held out of tuning
//! (`Family::HELD_OUT`) are reported in a table of their own. Then the labelled real traces of
//! `../shared/traces` (or `$LEAK_SENTINEL_TRACES`) replayed as a run.
//!
//! `cargo bench --bench calibrate` (env `CALIBRATE_N` = clean runs per family and profile,
//! default 1000; `CALIBRATE_LEAK_N` = runs per leak multiple, default 200; `CALIBRATE_PROFILES`
//! = comma-separated subset; `CALIBRATE_FAMILIES` = comma-separated family names;
//! `CALIBRATE_SHOW_FAILS` set: print every false alarm's seed, time and reason).

use leak_sentinel::analyze::Settings;
use leak_sentinel::detect::stats;
use leak_sentinel::detect::synth::{Family, Series, generate, recording_len};
use leak_sentinel::gate::{self, Outcome, Replay, Schedule};
use leak_sentinel::settings::Profile;
use leak_sentinel::units::MIB;
use std::path::PathBuf;

const THRESHOLD: f64 = 0.1;

/// The run schedule and sampling interval of a profile, as `run` resolves them by default.
fn schedule(p: Profile) -> (Schedule, f64) {
    let (duration_s, check_every_s, sample_s, _) = p.defaults();
    (
        Schedule {
            warmup_s: (0.1 * duration_s).min(1800.0),
            check_every_s,
            duration_s,
            max_failed: 0,
            confidence: 0.95,
        },
        sample_s,
    )
}

/// One run of `family` with a leak of `mult` × the threshold, replayed on `profile`'s schedule.
fn run(f: Family, mult: f64, sch: &Schedule, dt: f64, seed: u64) -> Replay {
    replay(f, series(f, mult, sch, dt, seed), sch)
}

/// The recording of one run of `family` with a leak of `mult` × the threshold.
fn series(f: Family, mult: f64, sch: &Schedule, dt: f64, seed: u64) -> Series {
    generate(
        f,
        mult * THRESHOLD,
        recording_len(f, sch.warmup_s, sch.duration_s),
        dt,
        seed,
    )
}

/// `s` replayed as a run on `sch`.
fn replay(f: Family, s: Series, sch: &Schedule) -> Replay {
    let column = if f.is_count() {
        (f.column().to_string(), s.y)
    } else {
        (
            f.column().to_string(),
            s.y.iter().map(|v| v * MIB).collect(),
        )
    };
    gate::replay(&s.t, &[column], &Settings::default(), sch)
}

/// Leak multiples of the threshold the detection columns are measured at.
const MULTS: [f64; 4] = [2.0, 3.0, 5.0, 20.0];

struct Row {
    family: &'static str,
    clean_n: usize,
    false_alarms: usize,
    passed: usize,
    det: [f64; 4],
    leak_passed: usize,
    ttd3: f64,
    ttd10: f64,
    oracle: f64,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn score(profile: Profile, f: Family, n: usize, leak_n: usize) -> Row {
    let (sch, dt) = schedule(profile);
    let (mut false_alarms, mut passed) = (0, 0);
    let show = std::env::var_os("CALIBRATE_SHOW_FAILS").is_some();
    let mut slopes = Vec::with_capacity(n);
    for seed in 0..n as u64 {
        let s = series(f, 0.0, &sch, dt, seed);
        slopes.extend(judged_slope(&s, &sch));
        let r = replay(f, s, &sch);
        match r.outcome {
            Some(Outcome::Leak(why)) => {
                false_alarms += 1;
                if show {
                    println!(
                        "  false alarm {} {} seed {seed} at {:.0} min: {why}",
                        profile.name(),
                        f.name(),
                        (r.failed_at_s.unwrap_or(0.0) - sch.warmup_s) / 60.0
                    );
                }
            }
            Some(Outcome::Passed) => passed += 1,
            Some(Outcome::Inconclusive(why))
                if show && std::env::var_os("CALIBRATE_SHOW_INCONCLUSIVE").is_some() =>
            {
                println!(
                    "  clean inconclusive {} {} seed {seed}: {why}",
                    profile.name(),
                    f.name()
                );
            }
            None if show && std::env::var_os("CALIBRATE_SHOW_INCONCLUSIVE").is_some() => {
                println!(
                    "  clean unfinished {} {} seed {seed}: streak {:.0} min at the end of the recording, {} checks",
                    profile.name(),
                    f.name(),
                    r.streak_s / 60.0,
                    r.checks.len()
                );
            }
            _ => {}
        }
    }
    let mut det = [0.0; 4];
    let mut leak_passed = 0;
    let mut ttd3 = Vec::new();
    for (k, mult) in MULTS.into_iter().enumerate() {
        let mut caught = 0;
        for seed in 0..leak_n as u64 {
            let r = run(f, mult, &sch, dt, 1_000_000 + seed);
            caught += usize::from(r.failed_at_s.is_some());
            if mult == 3.0 {
                if let Some(t) = r.failed_at_s {
                    ttd3.push((t - sch.warmup_s) / 60.0);
                }
            }
            if show && mult == 3.0 && r.failed_at_s.is_none() && r.outcome != Some(Outcome::Passed)
            {
                let last = r.checks.last().and_then(|c| c.metrics.first());
                println!(
                    "  leak missed {} {} {mult}× seed {}: {}",
                    profile.name(),
                    f.name(),
                    1_000_000 + seed,
                    last.map_or(String::new(), |m| m.judgement.reason.clone())
                );
            }
            if r.outcome == Some(Outcome::Passed) {
                leak_passed += 1;
                if show {
                    let last = r.checks.last().and_then(|c| c.metrics.first());
                    println!(
                        "  leak passed {} {} {mult}× seed {}: {}",
                        profile.name(),
                        f.name(),
                        1_000_000 + seed,
                        last.map_or(String::new(), |m| m.judgement.reason.clone())
                    );
                }
            }
        }
        det[k] = caught as f64 / leak_n as f64;
    }
    let mut ttd = Vec::new();
    for seed in 0..(leak_n as u64).min(100) {
        let r = run(f, 10.0, &sch, dt, 2_000_000 + seed);
        if let Some(t) = r.failed_at_s {
            ttd.push((t - sch.warmup_s) / 60.0);
        }
    }
    Row {
        family: f.name(),
        clean_n: n,
        false_alarms,
        passed,
        det,
        leak_passed,
        ttd3: median(ttd3),
        ttd10: median(ttd),
        oracle: oracle_pass(&slopes),
    }
}

/// The least-squares slope (unit per minute) of a recording's judged span: warm-up end to
/// warm-up plus duration.
fn judged_slope(s: &Series, sch: &Schedule) -> Option<f64> {
    let to = sch.warmup_s + sch.duration_s;
    let (t, y): (Vec<f64>, Vec<f64>) =
        s.t.iter()
            .zip(&s.y)
            .filter(|(t, _)| **t >= sch.warmup_s && **t <= to)
            .unzip();
    stats::line_fit(&t, &y).map(|f| f.slope * 60.0)
}

/// The share of clean runs an oracle would pass: one that knows the true spread of the
/// least-squares slope over the family (its standard deviation over the clean runs, which no
/// single run can see) and passes a run when its slope plus 1.96 of those deviations is within
/// the threshold. A rough guide, not a bound: the deviation is pooled over the family's random
/// parameters (it flatters families whose draws differ widely), and a rule that reads more than
/// a line (a sawtooth's floor) can beat it. A rule far below it leaves evidence unused; one
/// near it is limited by the data (fluctuations too slow or too large for the span).
fn oracle_pass(slopes: &[f64]) -> f64 {
    let n = slopes.len();
    if n < 2 {
        return f64::NAN;
    }
    let mean = slopes.iter().sum::<f64>() / n as f64;
    let sd = (slopes.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt();
    let passed = slopes
        .iter()
        .filter(|v| **v + 1.96 * sd <= THRESHOLD)
        .count();
    passed as f64 / n as f64
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
        "\nreal traces ({}) replayed as a run: warm-up 20 %, a check every 60 s, zero tolerance:",
        dir.display()
    );
    let (mut ok, mut fa, mut miss) = (0, 0, 0);
    for lab in labels {
        let Some(file) = lab["file"].as_str() else {
            continue;
        };
        let Ok(table) = leak_sentinel::recording::read(&dir.join(file)) else {
            println!("  {file}: unreadable");
            continue;
        };
        let end = table.t.last().copied().unwrap_or(0.0);
        let sch = Schedule {
            warmup_s: 0.2 * end,
            check_every_s: 60.0,
            duration_s: (0.8 * end / 60.0).floor() * 60.0,
            max_failed: 0,
            confidence: 0.95,
        };
        for (col, key) in [
            ("rss_bytes", "expected_memory"),
            ("fds", "expected_fds"),
            ("threads", "expected_threads"),
        ] {
            let want = lab[key].as_str().unwrap_or("");
            let Some(values) = table.columns.iter().find(|(n, _)| n == col) else {
                continue;
            };
            let r = gate::replay(
                &table.t,
                std::slice::from_ref(values),
                &Settings::default(),
                &sch,
            );
            let got = match (&r.outcome, r.failed_at_s) {
                (_, Some(t)) => format!("failed at {:.0} min", t / 60.0),
                (Some(Outcome::Passed), _) => "passed".into(),
                _ => "inconclusive".into(),
            };
            let mark = match (want, r.failed_at_s.is_some()) {
                ("clean", true) => {
                    fa += 1;
                    "FALSE ALARM"
                }
                ("leak", false) => {
                    miss += 1;
                    "MISSED"
                }
                _ => {
                    ok += 1;
                    "ok"
                }
            };
            println!("  {file:40} {col:10} want {want:11} run {got:20} {mark}");
        }
    }
    println!("  real traces: {ok} correct, {fa} false alarms, {miss} missed");
}

fn main() {
    let env = |k: &str, d: usize| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let n = env("CALIBRATE_N", 1000);
    let leak_n = env("CALIBRATE_LEAK_N", 200);
    let profiles: Vec<Profile> = std::env::var("CALIBRATE_PROFILES")
        .unwrap_or_else(|_| "quick,standard,production".into())
        .split(',')
        .filter_map(|p| Profile::parse(p.trim()).ok())
        .collect();
    let families: Vec<Family> = match std::env::var("CALIBRATE_FAMILIES") {
        Ok(list) => Family::ALL
            .into_iter()
            .filter(|f| list.split(',').any(|n| n.trim() == f.name()))
            .collect(),
        Err(_) => Family::ALL.to_vec(),
    };
    let threads = std::thread::available_parallelism().map_or(2, |v| v.get());
    for profile in profiles {
        let (sch, dt) = schedule(profile);
        println!(
            "\nprofile {}: warm-up {:.0} min, a check every {:.0} s, duration {:.0} h, samples every {dt} s; \
             {n} clean runs per family, {leak_n} per leak multiple; threshold {THRESHOLD}/min; \
             run-level rule: O'Brien–Fleming boundary at α = {} capped at z = {}, min failing span {:.0} min",
            profile.name(),
            sch.warmup_s / 60.0,
            sch.check_every_s,
            sch.duration_s / 3600.0,
            gate::RUN_ALPHA,
            gate::Z_CAP,
            gate::min_fail_span(sch.check_every_s, sch.duration_s) / 60.0
        );
        // Families spread over the cores, one at a time per thread.
        let next = std::sync::atomic::AtomicUsize::new(0);
        let rows = std::sync::Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(f) = families.get(i) else { break };
                        let row = score(profile, *f, n, leak_n);
                        if let Ok(mut rows) = rows.lock() {
                            rows.push((i, row));
                        }
                    }
                });
            }
        });
        let mut rows = rows.into_inner().unwrap_or_default();
        rows.sort_by_key(|r| r.0);
        let header = || {
            println!(
                "| {:17} | {:>7} | {:>7} | {:>7} | {:>7} | {:>7} | {:>7} | {:>7} | {:>7} | {:>11} | {:>9} | {:>10} |",
                "family",
                "fail",
                "pass",
                "oracle",
                "inconcl",
                "det@2×",
                "det@3×",
                "det@5×",
                "det@20×",
                "leak passed",
                "ttd@3× m",
                "ttd@10× m"
            );
            println!(
                "|{:-<19}|{:-<9}|{:-<9}|{:-<9}|{:-<9}|{:-<9}|{:-<9}|{:-<9}|{:-<9}|{:-<13}|{:-<11}|{:-<12}|",
                "", "", "", "", "", "", "", "", "", "", "", ""
            );
        };
        header();
        let mut held_out_header = false;
        for (i, r) in rows {
            if Family::HELD_OUT.contains(&families[i]) && !held_out_header {
                held_out_header = true;
                println!("\nheld out of tuning ({}):", profile.name());
                header();
            }
            let pct = |k: usize| 100.0 * k as f64 / r.clean_n.max(1) as f64;
            println!(
                "| {:17} | {:>6.1}% | {:>6.1}% | {:>6.1}% | {:>6.1}% | {:>6.1}% | {:>6.1}% | {:>6.1}% | {:>6.1}% | {:>11} | {:>9.0} | {:>10.0} |",
                r.family,
                pct(r.false_alarms),
                pct(r.passed),
                100.0 * r.oracle,
                100.0 - pct(r.false_alarms) - pct(r.passed),
                100.0 * r.det[0],
                100.0 * r.det[1],
                100.0 * r.det[2],
                100.0 * r.det[3],
                r.leak_passed,
                r.ttd3,
                r.ttd10
            );
        }
    }
    real_traces();
}
