//! Calibration checks with fixed seeds, at the level that matters: the *run*. Each profile's
//! real check schedule (warm-up, a check every interval, the clean streak against the duration,
//! zero failed checks tolerated) is replayed through the live runner's check gate
//! (`gate::replay`) on the synthetic families, and on the labelled real traces in
//! tests/data/traces. Fewer runs than the bench (`cargo bench --bench calibrate`, ≥ 1,000 per
//! family) and samples every 30 s instead of 5 s (10 s instead of 1 s in the quick profile) so the file stays under a minute in
//! release; the seeds are fixed, so a result never flickers.

use leak_sentinel::analyze::{self, Settings};
use leak_sentinel::detect::Verdict;
use leak_sentinel::detect::synth::{Family, generate, recording_len};
use leak_sentinel::gate::{self, Outcome, Replay, Schedule};
use leak_sentinel::settings::Profile;
use leak_sentinel::units::MIB;
use std::path::Path;

const DT_S: f64 = 30.0;

fn schedule(p: Profile) -> Schedule {
    let (duration_s, check_every_s, _, _) = p.defaults();
    Schedule {
        warmup_s: (0.1 * duration_s).min(1800.0),
        check_every_s,
        duration_s,
        max_failed: 0,
        confidence: 0.95,
    }
}

fn run(f: Family, mult: f64, sch: &Schedule, seed: u64) -> Replay {
    // The quick profile samples every second and checks every minute: 30 s samples would leave
    // two per check, so it gets 10 s (six per check, a block or two of the detector's 15 s).
    let dt = if sch.duration_s <= 3600.0 { 10.0 } else { DT_S };
    run_at(f, mult, sch, seed, dt)
}

fn run_at(f: Family, mult: f64, sch: &Schedule, seed: u64, dt_s: f64) -> Replay {
    let s = generate(
        f,
        mult * 0.1,
        recording_len(f, sch.warmup_s, sch.duration_s),
        dt_s,
        seed,
    );
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

/// Runs `count` seeds from `first` on two threads; returns the replays' outcomes.
fn outcomes(f: Family, mult: f64, sch: &Schedule, first: u64, count: u64) -> Vec<Replay> {
    std::thread::scope(|s| {
        let half = count / 2;
        let a = s.spawn(move || {
            (first..first + half)
                .map(|seed| run(f, mult, sch, seed))
                .collect::<Vec<_>>()
        });
        let mut b: Vec<Replay> = (first + half..first + count)
            .map(|seed| run(f, mult, sch, seed))
            .collect();
        let mut all = a.join().expect("worker thread");
        all.append(&mut b);
        all
    })
}

#[test]
fn run_level_false_alarm_at_most_one_percent_per_profile() {
    for profile in [Profile::Quick, Profile::Standard, Profile::Production] {
        let sch = schedule(profile);
        // 150 runs: at 100, one family's two alarms were 2 % while its rate was 0.3 % (recycled
        // workers at 30-s samples, with a one-hour minimum span: 3 of 1,000); more would take
        // the fast tier past two minutes.
        let n = 150;
        for f in Family::ALL {
            let alarms = outcomes(f, 0.0, &sch, 0, n)
                .iter()
                .filter(|r| r.failed_at_s.is_some())
                .count();
            // The quick profile's hour cannot show a fluctuation of 20 min to 2 h turning (the
            // rule's one assumption, README "How the verdict is reached"): on those families it
            // is bounded at 8 %, not 1 % (load cycles: 5.5 % of the first 200 seeds, 5.7 % of 300
            // in the bench).
            // The generational collector's old generation, collected every 20–90 min ± 30 %,
            // ramps through the whole quick hour in about a tenth of the runs (13 % in the
            // bench).
            let allowed = if f == Family::GenerationalGc && profile == Profile::Quick {
                16
            } else if profile == Profile::Quick && f.slower_than_an_hour() {
                8
            } else {
                1
            };
            assert!(
                alarms as u64 * 100 <= allowed * n,
                "{} {}: {alarms} of {n} clean runs failed",
                profile.name(),
                f.name()
            );
        }
    }
}

/// Clean runs pass, not merely avoid failing: in the standard profile, sampled every 5 s as
/// it is by default, at least 90 % of clean runs on each family whose fluctuations turn within
/// an hour.
#[test]
fn clean_runs_pass_in_the_standard_profile() {
    let sch = schedule(Profile::Standard);
    let n = 30;
    for f in [
        Family::White,
        Family::Ar1Heavy,
        Family::Sawtooth,
        Family::FdBlips,
        Family::Gaps,
        Family::SlowSawtooth,
        Family::LoadCycle,
        Family::ArenaTrimHourly,
        Family::RandomGc,
        Family::FdPool,
        Family::ThreadPool,
        Family::HeavyTail,
    ] {
        let passed = std::thread::scope(|s| {
            let a = s.spawn(move || {
                (60_000..60_000 + n / 2)
                    .filter(|seed| {
                        run_at(f, 0.0, &sch, *seed, 5.0).outcome == Some(Outcome::Passed)
                    })
                    .count()
            });
            let b = (60_000 + n / 2..60_000 + n)
                .filter(|seed| run_at(f, 0.0, &sch, *seed, 5.0).outcome == Some(Outcome::Passed))
                .count();
            a.join().expect("worker thread") + b
        });
        assert!(
            passed as u64 * 100 >= 90 * n,
            "{}: {passed} of {n} clean runs passed",
            f.name()
        );
    }
}

/// Intervals stay finite whatever the shape: every check of every family, clean or leaking,
/// that judged at least a few samples has both bounds.
#[test]
fn intervals_are_always_finite() {
    let sch = schedule(Profile::Standard);
    for f in Family::ALL {
        for mult in [0.0, 3.0] {
            for r in outcomes(f, mult, &sch, 70_000, 4) {
                for c in &r.checks {
                    for m in c.metrics.iter().filter(|m| {
                        m.judgement.evidence.blocks >= leak_sentinel::detect::MIN_BLOCKS
                    }) {
                        assert!(
                            m.judgement.bounded(),
                            "{} at {} s: {}",
                            f.name(),
                            c.t_s,
                            m.judgement.reason
                        );
                    }
                }
            }
        }
    }
}

/// One verdict on a whole 3 h AR(1) series (the detector alone, no run-level rule): the AR(1)
/// variance floor under Hamed–Rao keeps this at ≤ 1 % (without it: ~2 %).
#[test]
fn single_verdict_false_alarms_on_ar1_noise() {
    let n = 400;
    let alarms = (0..n)
        .filter(|seed| {
            let s = generate(Family::Ar1Heavy, 0.0, 3.0 * 3600.0, 5.0, *seed);
            let mut p = leak_sentinel::detect::Params::new(0.1);
            p.warmup_s = 1080.0;
            leak_sentinel::detect::judge(&s.t, &s.y, &p).verdict == Verdict::Leak
        })
        .count();
    assert!(alarms * 100 <= n as usize, "{alarms} of {n}");
}

#[test]
fn leaks_at_five_times_threshold_fail_within_the_standard_run() {
    let sch = schedule(Profile::Standard);
    let n = 40;
    for f in Family::ALL {
        if Family::FALSE_PASS.contains(&f) || Family::HELD_OUT.contains(&f) {
            continue;
        }
        let caught = outcomes(f, 5.0, &sch, 10_000, n)
            .iter()
            .filter(|r| r.failed_at_s.is_some())
            .count();
        // Two families fall short, measured and documented (docs/calibration.md): a one-time
        // fill that lands before the first check allowed to fail (2 h of judged time) widens
        // the interval for the rest of the run, and an old generation growing up to six times
        // the leak between collections 20–90 min apart leaves wide intervals; those leaks end
        // inconclusive, not passed (37 of these 40 each).
        let needed = if matches!(f, Family::CacheFill | Family::GenerationalGc) {
            90
        } else {
            95
        };
        assert!(
            caught as u64 * 100 >= needed * n,
            "{}: {caught} of {n} leaks at 5× failed the run",
            f.name()
        );
    }
}

#[test]
fn false_pass_families_never_pass() {
    for profile in [Profile::Quick, Profile::Standard, Profile::Production] {
        let sch = schedule(profile);
        for f in Family::FALSE_PASS {
            // At 5× and 20×: a paused leak at 2× the threshold in the quick profile grows for
            // 14 minutes of the judged hour, which averages below the threshold (a run may
            // honestly pass it).
            for mult in [5.0, 20.0] {
                for r in outcomes(f, mult, &sch, 20_000, 30) {
                    assert_ne!(
                        r.outcome,
                        Some(Outcome::Passed),
                        "{} {} at {mult}×: a leaking run passed",
                        profile.name(),
                        f.name()
                    );
                }
            }
        }
    }
}

/// `+X every T` is a leak at `X/T`: a run on repeating steps fails (when the span holds two
/// step intervals) with the rate near the true one, and never passes.
#[test]
fn repeating_steps_fail_as_a_leak_at_x_over_t() {
    let sch = schedule(Profile::Standard);
    let runs = outcomes(Family::RepeatingSteps, 5.0, &sch, 40_000, 20);
    let failed: Vec<&Replay> = runs.iter().filter(|r| r.failed_at_s.is_some()).collect();
    assert!(failed.len() >= 10, "{} of 20 failed", failed.len());
    for r in &failed {
        let rate = r
            .checks
            .last()
            .and_then(|c| c.metrics.first())
            .map_or(0.0, |m| m.judgement.slope_per_min);
        assert!(
            (rate - 0.5).abs() < 0.2,
            "steps of 5× the threshold (0.5/min) judged at {rate}/min"
        );
    }
}

/// A steady leak fails at the first check past the minimum span (two hours of judged time in
/// the standard profile), no sooner: within them a load cycle's rising half, or the ramp of an
/// old generation not yet collected, looks the same.
#[test]
fn a_steady_leak_fails_at_the_first_check_past_the_minimum_span() {
    let sch = schedule(Profile::Standard);
    let first = sch.warmup_s + gate::min_fail_span(sch.check_every_s, sch.duration_s);
    let times: Vec<f64> = (50_000..50_020)
        .filter_map(|seed| run_at(Family::White, 10.0, &sch, seed, 5.0).failed_at_s)
        .collect();
    assert_eq!(times.len(), 20, "every 10× leak fails");
    assert!(times.iter().all(|t| (t - first).abs() < 1e-6), "{times:?}");
}

#[test]
fn an_overwhelming_leak_fails_at_the_first_check_allowed() {
    // 50× the threshold in white noise, sampled at the profile's 5 s: failed at the first check
    // past the minimum span.
    let sch = schedule(Profile::Standard);
    let first = sch.warmup_s + gate::min_fail_span(sch.check_every_s, sch.duration_s);
    for seed in 30_000..30_010 {
        let r = run_at(Family::White, 50.0, &sch, seed, 5.0);
        let t = r.failed_at_s.expect("a 50× leak fails");
        assert!(
            t <= first + 1e-6,
            "failed at {t} s, first allowed {first} s"
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

fn traces() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/traces")
}

fn labels() -> Vec<Label> {
    let text =
        std::fs::read_to_string(traces().join("labels.json")).expect("labels.json in tests/data");
    serde_json::from_str(&text).expect("labels.json parses")
}

/// d10 (a JVM committing heap) is not scored for memory: from RSS alone it is growth like a
/// leak's, and no rule may be tuned to call it clean (its note in labels.json).
fn scored(want: &str) -> bool {
    want == "leak" || want == "clean"
}

#[test]
fn real_traces_get_their_labels() {
    for lab in labels() {
        let table =
            leak_sentinel::recording::read(&traces().join(&lab.file)).expect("trace parses");
        let a = analyze::analyze_table(&table, &Settings::default());
        for (col, want) in [
            ("rss_bytes", &lab.expected_memory),
            ("pss_bytes", &lab.expected_memory),
            ("fds", &lab.expected_fds),
            ("threads", &lab.expected_threads),
        ] {
            if !scored(want) {
                continue;
            }
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

/// As `../shared/tools/replay_checks.py` does with `analyze --as-run`: warm-up 20 % of the
/// trace, a check every minute, the duration the rest of the trace. No clean trace may fail the
/// run and every leak must.
#[test]
fn real_traces_replayed_as_a_run() {
    for lab in labels() {
        let table =
            leak_sentinel::recording::read(&traces().join(&lab.file)).expect("trace parses");
        let end = table.t[table.t.len() - 1];
        let sch = Schedule {
            warmup_s: (0.2 * end).round(),
            check_every_s: 60.0,
            duration_s: (end - (0.2 * end).round()).round(),
            max_failed: 0,
            confidence: 0.95,
        };
        for (col, want) in [
            ("rss_bytes", &lab.expected_memory),
            ("fds", &lab.expected_fds),
            ("threads", &lab.expected_threads),
        ] {
            if !scored(want) {
                continue;
            }
            let values = table
                .columns
                .iter()
                .find(|(n, _)| n == col)
                .expect("column");
            let r = gate::replay(
                &table.t,
                std::slice::from_ref(values),
                &Settings::default(),
                &sch,
            );
            match (want.as_str(), r.failed_at_s) {
                ("clean", Some(t)) => {
                    panic!("{} {col}: false alarm at {t} s: {:?}", lab.file, r.outcome)
                }
                ("leak", None) => panic!("{} {col}: leak never caught", lab.file),
                _ => {}
            }
        }
    }
}

/// Memory has a minimum rise as counts do: 600 KiB over five judged minutes (0.12 MiB/min, in
/// whole 4 KiB pages, as an allocator's arenas move) is not yet a leak, while the same rate
/// kept up for an hour is.
#[test]
fn memory_needs_a_minimum_rise_before_it_can_leak() {
    let page = 4096.0;
    let series = |minutes: u32| -> (Vec<f64>, Vec<f64>) {
        let t: Vec<f64> = (0..=minutes * 12).map(|i| f64::from(i) * 5.0).collect();
        let v = t
            .iter()
            .map(|s| {
                let pages = (0.12 * MIB / page * (s - 60.0).max(0.0) / 60.0).floor();
                50.0 * MIB + pages * page
            })
            .collect();
        (t, v)
    };
    let (t, v) = series(6);
    let r = analyze::judge_column("rss_bytes", &t, &v, &Settings::default(), 60.0);
    assert_eq!(
        r.judgement.verdict,
        Verdict::Inconclusive,
        "{}",
        r.judgement.reason
    );
    let (t, v) = series(60);
    let r = analyze::judge_column("rss_bytes", &t, &v, &Settings::default(), 60.0);
    assert_eq!(r.judgement.verdict, Verdict::Leak, "{}", r.judgement.reason);
}

/// A square-wave load (two levels switching every 10–50 min ± 40 %) is summarised by batch
/// means: a batch's median jumps between the two levels as their shares cross one half, which
/// left most clean runs inconclusive (44 % passed in the bench with medians, 85 % with means);
/// and its last switch up, to a level it held before, is not a late rise (89 % pass).
#[test]
fn square_loads_pass_on_batch_means() {
    let sch = schedule(Profile::Standard);
    let n = 40;
    let passed = outcomes(Family::SquareLoad, 0.0, &sch, 80_000, n)
        .iter()
        .filter(|r| r.outcome == Some(Outcome::Passed))
        .count();
    assert!(
        passed as u64 * 100 >= 80 * n,
        "{passed} of {n} clean square-load runs passed"
    );
}
