//! Judging a run: which metrics gate it, the detector settings a run implies, each check's
//! verdicts, and the check policy — the run-level (group-sequential) rule, the failed-check
//! budget and the clean streak against the target duration — that turns a sequence of checks
//! into the run's outcome. Pure: samples and times in, decisions out; the live session and
//! `analyze --as-run` both call it.
//!
//! ## The run-level rule
//! A run asks the detector at every check (72 times in a 6 h standard run) and fails on the
//! first `leak`, so a per-check 95 % interval gives no bound on the run's false-alarm rate. A
//! check therefore fails a metric only when the detector says `leak` (growth above the
//! threshold across at least six of the series' own fluctuation scales, see `detect`) **and**
//! 1. its standardised evidence against the threshold (`Evidence::z_vs_threshold`) reaches the
//!    group-sequential boundary `b(τ) = min(c/√τ, Z_CAP)`, at least the nominal `z` of the
//!    run's confidence, where `τ` = judged time / target duration (the information fraction)
//!    and `c = Φ⁻¹(1 − α/2)` with the run-level `α` = [`RUN_ALPHA`]. `c/√τ` is the
//!    O'Brien–Fleming boundary (O'Brien & Fleming 1979, Biometrics 35:549) in its
//!    continuous-monitoring form: for a Brownian score process `W(τ)`,
//!    `P(sup_{τ≤1} W(τ) ≥ c) = 2(1 − Φ(c)) = α` by the reflection principle, so any discrete
//!    schedule of checks spends at most `α` (Lan & DeMets 1983, Biometrika 70:659). The cap
//!    `Z_CAP` is a Haybittle–Peto-style interim boundary: overwhelming evidence fails at once
//!    instead of waiting for `c/√τ` to come down;
//! 2. the judged span is at least [`min_fail_span`]: the longest fluctuation the run assumes it
//!    may meet before the data has shown it (a load cycle's rising half, an arena regrowing
//!    before its first trim). Within a shorter span nothing tells the steep part of a slow cycle
//!    from a leak; past it, the series' own scale (read from the data) decides.
//!
//! A `leak` below the boundary makes the check `inconclusive` for that metric, never `leak`.
//! The figures per profile and family are in the README ("Calibration").

use crate::analyze::{self, MetricResult, Settings};
use crate::detect::stats::normal_quantile;
use crate::detect::{Judgement, Verdict, fmt_bound, human_secs};
use crate::gauges::Series;
use crate::observed::{Gap, Observed, max_gap};
use crate::sample::{Metric, Readings, Sample};
use crate::settings::{MemoryMetric, RunSettings};

/// The names of the metrics that may gate with these readings ([`analyze::gating_names`]).
fn names_with_readings(readings: &Readings) -> Vec<&'static str> {
    analyze::gating_names(Metric::ALL.iter().map(|m| (m.name(), readings.count(*m))))
}

/// The metric named `name`.
fn metric_named(name: &str) -> Option<Metric> {
    Metric::ALL.iter().copied().find(|m| m.name() == name)
}

/// The memory figure that gates a run, and why ([`analyze::gate_of`], the one rule).
pub fn memory_gate(choice: MemoryMetric, readings: &Readings) -> (Metric, &'static str) {
    let g = analyze::gate_of(choice, &names_with_readings(readings));
    (
        g.memory
            .as_deref()
            .and_then(metric_named)
            .unwrap_or(Metric::RssBytes),
        g.memory_reason,
    )
}

/// The FD figure that gates a run, and why ([`analyze::gate_of`]): the descriptors that
/// outlived their group's churn once an FD inventory counted them, else the total (a live target
/// always has the total).
pub fn fd_gate(choice: MemoryMetric, readings: &Readings) -> (Metric, &'static str) {
    let mut names = names_with_readings(readings);
    names.push("fds");
    let g = analyze::gate_of(choice, &names);
    (
        g.fds
            .as_deref()
            .and_then(metric_named)
            .unwrap_or(Metric::Fds),
        g.fd_reason,
    )
}

/// The metrics a check judges (the gate, by [`analyze::gate_of`]): memory, FDs and threads
/// (a live target always has the two counts, read or not yet).
pub fn gate_metrics(s: &RunSettings, readings: &Readings) -> Vec<Metric> {
    let mut names = names_with_readings(readings);
    names.extend(["fds", "threads"]);
    analyze::gate_of(s.memory_metric, &names)
        .metrics
        .iter()
        .filter_map(|n| metric_named(n))
        .collect()
}

/// Judges the gate metrics, then the target's gauges ([`judge_gauges`]); one without any
/// reading yet (a JVM's live set before its first old-space collection, a named gauge the
/// endpoint has not shown) is `inconclusive`, never left out — a run cannot pass on what it did
/// not see.
pub fn judge_gate(
    samples: &[Sample],
    gauges: &[Series],
    start: f64,
    s: &RunSettings,
) -> Vec<MetricResult> {
    let gate = gate_metrics(s, &Readings::of(samples));
    let mut results = judge_run(samples, start, s, &gate);
    let settings = analyze_settings(s);
    let t: Vec<f64> = samples.iter().map(|x| x.t - start).collect();
    for (i, m) in gate.iter().enumerate() {
        if !results.iter().any(|r| r.name == m.name()) {
            let none = vec![f64::NAN; samples.len()];
            let mut r = analyze::judge_column(m.name(), &t, &none, &settings, s.warmup_s);
            r.judgement.reason = format!("no reading of {} yet", m.name());
            results.insert(i.min(results.len()), r);
        }
    }
    results.extend(judge_gauges(gauges, start, s));
    results
}

/// Judges the target's gauges of a run (`s.target_gauges`), each with its own threshold: a
/// gauge the user named without a reading yet is `inconclusive`; a default one the endpoint
/// does not have is left out (it is not the target's runtime).
pub fn judge_gauges(gauges: &[Series], start: f64, s: &RunSettings) -> Vec<MetricResult> {
    let settings = analyze_settings(s);
    let mut out = Vec::new();
    for g in &s.target_gauges {
        let column = g.column();
        match gauges.iter().find(|x| x.column == column) {
            Some(x) if !x.t.is_empty() => {
                let t: Vec<f64> = x.t.iter().map(|t| t - start).collect();
                out.push(analyze::judge_column(
                    &column, &t, &x.v, &settings, s.warmup_s,
                ));
            }
            _ if g.named => {
                let mut r =
                    analyze::judge_column(&column, &[0.0], &[f64::NAN], &settings, s.warmup_s);
                r.judgement.reason = format!(
                    "no reading of {column} yet (the endpoint has no such series, or could not be read)"
                );
                out.push(r);
            }
            _ => {}
        }
    }
    out
}

/// Whether the result named `name` is part of the gate: one of `gate`'s metrics, or a target
/// gauge (every gauge judged gates).
pub fn in_gate(gate: &[Metric], name: &str) -> bool {
    crate::gauges::is_gauge(name) || gate.iter().any(|g| g.name() == name)
}

/// Detector settings of a run.
pub fn analyze_settings(s: &RunSettings) -> Settings {
    Settings {
        memory_threshold: s.memory_threshold,
        fd_threshold: s.fd_threshold,
        thread_threshold: s.thread_threshold,
        other_threshold: s.fd_threshold,
        column_thresholds: s
            .target_gauges
            .iter()
            .map(|g| (g.column(), g.threshold_per_min))
            .collect(),
        warmup_s: Some(s.warmup_s),
        confidence: s.confidence,
    }
}

/// Judges `metrics` over a run's samples (times relative to `start`).
pub fn judge_run(
    samples: &[Sample],
    start: f64,
    s: &RunSettings,
    metrics: &[Metric],
) -> Vec<MetricResult> {
    let settings = analyze_settings(s);
    let t: Vec<f64> = samples.iter().map(|x| x.t - start).collect();
    metrics
        .iter()
        .filter_map(|m| {
            let v: Vec<f64> = samples
                .iter()
                .map(|x| x.get(*m).unwrap_or(f64::NAN))
                .collect();
            v.iter()
                .any(|x| x.is_finite())
                .then(|| analyze::judge_column(m.name(), &t, &v, &settings, s.warmup_s))
        })
        .collect()
}

/// The sensitivity of a judgement in words a user can act on.
pub fn sensitivity_words(j: &Judgement, unit: &str) -> String {
    let mut parts = Vec::new();
    if j.ci_high < f64::MAX && j.verdict != Verdict::Leak {
        parts.push(format!(
            "proven growth ≤ {} {unit} at {:.0} %",
            fmt_bound(j.ci_high),
            j.confidence * 100.0
        ));
    }
    if let Some(m) = j.evidence.min_detectable_per_min {
        parts.push(format!("smallest leak this data can catch ≈ {m:.3} {unit}"));
    }
    if let Some(s) = j.evidence.more_time_needed_s {
        parts.push(format!("needs roughly {} more to decide", human_secs(s)));
    }
    parts.join("; ")
}

/// Run-level one-sided false-alarm probability the sequential boundary spends over a whole run
/// (per gate metric; the calibration measures the whole run's rate per profile).
pub const RUN_ALPHA: f64 = 0.01;
/// Haybittle–Peto-style cap on the early boundary: evidence this strong fails at once.
pub const Z_CAP: f64 = 7.0;
/// The longest minimum judged span before a check may fail, seconds (see [`min_fail_span`]):
/// two hours, the slowest turn the rule assumes (a sawtooth — an arena trimmed, an old
/// generation collected — rises for its whole period; a load cycle for half of it).
pub const MAX_MIN_FAIL_SPAN_S: f64 = 7200.0;
/// Share of the target duration the minimum failing span is, below its cap.
pub const MIN_FAIL_SHARE: f64 = 1.0;

/// The boundary the standardised evidence must reach at information fraction `tau` (judged
/// time / target duration) for a `leak` to fail the check: O'Brien–Fleming `c/√τ` capped at
/// [`Z_CAP`], never below the nominal `z` of `confidence` (two-sided).
pub fn boundary(tau: f64, confidence: f64) -> f64 {
    let c = normal_quantile(1.0 - RUN_ALPHA / 2.0);
    let nominal = normal_quantile(0.5 + confidence / 2.0);
    let tau = tau.clamp(1e-9, 1.0);
    (c / tau.sqrt()).min(Z_CAP).max(nominal)
}

/// The shortest judged span (seconds) on which a check may fail: two check intervals, and
/// [`MIN_FAIL_SHARE`] of the target duration up to [`MAX_MIN_FAIL_SPAN_S`] (the whole hour of
/// the quick profile, 2 h in standard and production); never more than the duration. It is the
/// one assumption the rule makes about what the data has not shown yet: the series'
/// fluctuations turn within this span — a sawtooth (an arena trimmed and regrown, an old
/// generation collected) rises for its whole period, a load cycle for half of it — so a rise
/// that is only a fluctuation has turned before a check may fail on it. Past it, a check fails
/// only on growth that persists across the series' own fluctuation scale.
pub fn min_fail_span(check_every_s: f64, duration_s: f64) -> f64 {
    let d = duration_s.max(0.0);
    (2.0 * check_every_s)
        .max((MIN_FAIL_SHARE * d).min(MAX_MIN_FAIL_SPAN_S))
        .min(d)
}

/// How a run ended, as far as its checks decide it.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The clean streak reached the target duration and the last check was clean.
    Passed,
    /// Failed checks exceeded the tolerance; the reason names the leaking metrics.
    Leak(String),
    /// The streak reached the target duration without proof either way; the reason says why.
    Inconclusive(String),
}

/// What one check decided.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckDecision {
    /// Some gate metric was judged `leak`.
    pub failed: bool,
    /// `metric: reason` of each leaking metric (empty when not failed).
    pub leaks: Vec<String>,
    /// The run ends here.
    pub end: Option<Outcome>,
    /// The check's verdict per gate metric after the run-level rule (a `leak` below the
    /// boundary is `inconclusive` here), in the order of the results.
    pub verdicts: Vec<(String, Verdict)>,
    /// `metric: why` of each `leak` the run-level rule held back (made `inconclusive`).
    pub held: Vec<String>,
}

impl CheckDecision {
    /// What the check says of the run (see [`CheckState`]).
    pub fn state(&self) -> CheckState {
        CheckState::of(
            self.failed,
            !self.held.is_empty(),
            self.verdicts.iter().map(|v| v.1),
        )
    }

    /// The `why` of each metric the run-level rule held back, by metric name.
    pub fn held_reason(&self, metric: &str) -> Option<&str> {
        self.held
            .iter()
            .find_map(|h| h.strip_prefix(metric)?.strip_prefix(": "))
    }

    /// Rewrites `results` (those passed to [`CheckGate::record`]) to the check's verdicts: a
    /// `leak` held back by the run-level rule becomes `inconclusive`, its reason saying why.
    pub fn apply(&self, results: &mut [MetricResult]) {
        for r in results.iter_mut() {
            if let Some(why) = self.held_reason(&r.name) {
                r.judgement.verdict = Verdict::Inconclusive;
                r.judgement.reason = format!("{} ({why})", r.judgement.reason);
            }
        }
    }
}

/// What one check says of the run. The one vocabulary of a run's checks: the log line, `status`,
/// `report` and status.json all take their words from here (through [`check_words`]), so a leak
/// the run-level rule holds back reads `leak suspected` everywhere, never `ok` or `clean`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckState {
    /// Every gate metric was judged clean.
    Clean,
    /// Neither clean nor a leak yet (too little data, or growth within its interval).
    Undecided,
    /// Some metric was judged `leak`, but the run-level rule held it back (too early, or the
    /// evidence below the boundary): not a failed check, not clean either.
    LeakSuspected,
    /// A gate metric was judged `leak` past the run-level rule: the check failed.
    Failed,
}

impl CheckState {
    /// The state of a check that `failed`, `held` a leak back, with the gate `verdicts`.
    pub fn of(failed: bool, held: bool, verdicts: impl IntoIterator<Item = Verdict>) -> Self {
        if failed {
            CheckState::Failed
        } else if held {
            CheckState::LeakSuspected
        } else if Verdict::combine(verdicts) == Verdict::Clean {
            CheckState::Clean
        } else {
            CheckState::Undecided
        }
    }

    /// As stored and in JSON: `clean`, `undecided`, `leak_suspected`, `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckState::Clean => "clean",
            CheckState::Undecided => "undecided",
            CheckState::LeakSuspected => "leak_suspected",
            CheckState::Failed => "failed",
        }
    }

    /// In words, for people.
    pub fn words(self) -> &'static str {
        match self {
            CheckState::Clean => "clean",
            CheckState::Undecided => "not decided yet",
            CheckState::LeakSuspected => "leak suspected",
            CheckState::Failed => "FAILED",
        }
    }
}

/// A check's state and its words, from what is stored of it: whether it `failed`, and its
/// per-metric `detail` (`{"metric": {"verdict": …, "held": "why"?}, …}`, as the live session
/// writes it). `leak suspected — rss_anon_bytes held by the run-level rule (z 3.67 < 4.15 at
/// 38 % of the run)`; a failed check names its leaking metrics.
pub fn check_words(failed: bool, detail: &serde_json::Value) -> (CheckState, String) {
    let empty = serde_json::Map::new();
    let metrics = detail.as_object().unwrap_or(&empty);
    let held: Vec<String> = metrics
        .iter()
        .filter_map(|(name, m)| Some(format!("{name} {}", m["held"].as_str()?)))
        .collect();
    let verdicts = metrics
        .values()
        .map(|m| match m["verdict"].as_str() {
            Some("clean") => Verdict::Clean,
            Some("leak") => Verdict::Leak,
            _ => Verdict::Inconclusive,
        })
        .collect::<Vec<_>>();
    let state = CheckState::of(failed, !held.is_empty(), verdicts);
    let words = match state {
        CheckState::LeakSuspected => format!("{} — {}", state.words(), held.join("; ")),
        CheckState::Failed => {
            let leaking: Vec<&str> = metrics
                .iter()
                .filter(|(_, m)| m["verdict"].as_str() == Some("leak"))
                .map(|(n, _)| n.as_str())
                .collect();
            format!("{} — leak in {}", state.words(), leaking.join(", "))
        }
        _ => state.words().to_string(),
    };
    (state, words)
}

/// The check sequence of one run: counts, the clean streak in observed time and the failed-check
/// budget.
#[derive(Debug, Clone)]
pub struct CheckGate {
    /// End of warm-up, run time (seconds, same clock as the check times).
    pub warmup_end: f64,
    /// Clean time needed to pass, seconds.
    pub duration_s: f64,
    /// Failed checks tolerated.
    pub max_failed: u32,
    /// Checks so far.
    pub total: usize,
    /// Failed checks so far.
    pub failed: usize,
    /// Time of the last failed check.
    pub last_failed_t: Option<f64>,
    /// Time of the last check.
    pub last_check_t: Option<f64>,
    /// Seconds between checks (sets the shortest span a check may fail on).
    pub check_every_s: f64,
    /// Confidence of the detector's intervals (the boundary never goes below its z).
    pub confidence: f64,
    /// Observed (watched) time so far.
    observed: Observed,
    /// Observed time when the streak started (warm-up end or the last failed check).
    streak_base: Option<f64>,
}

impl CheckGate {
    /// A gate for run settings `s` of a run started at `started_at`, continuing after the
    /// `samples` and `checks` (time, failed) already recorded.
    pub fn new(
        s: &RunSettings,
        started_at: f64,
        samples: &[Sample],
        checks: &[(f64, bool)],
    ) -> CheckGate {
        let mut g = CheckGate::resuming(s, started_at, checks);
        let mut fails = checks.iter().filter(|c| c.1).map(|c| c.0).peekable();
        for x in samples {
            g.replay(x, &mut fails);
        }
        g
    }

    /// As [`CheckGate::new`] before any sample: feed it the run's stored samples in order with
    /// [`CheckGate::replay`] (one at a time, nothing kept per sample).
    pub fn resuming(s: &RunSettings, started_at: f64, checks: &[(f64, bool)]) -> CheckGate {
        let schedule = Schedule {
            warmup_s: s.warmup_s,
            check_every_s: s.check_every_s,
            duration_s: s.duration_s,
            max_failed: s.max_failed_checks,
            confidence: s.confidence,
        };
        CheckGate::for_schedule(&schedule, started_at, checks).with_sample_every(s.sample_every_s)
    }

    /// Replays one stored sample; `fails` are the times of the failed checks not yet passed
    /// (a failed check restarts the streak).
    pub fn replay(
        &mut self,
        x: &Sample,
        fails: &mut std::iter::Peekable<impl Iterator<Item = f64>>,
    ) {
        self.observe(x.t, x.get(Metric::TargetStopped) != Some(1.0));
        while fails.next_if(|f| *f <= x.t).is_some() {
            self.streak_base = Some(self.observed.total());
        }
    }

    /// A gate for `schedule` of a run started at `started_at`, continuing after `checks`
    /// (time, failed) already recorded.
    pub fn for_schedule(schedule: &Schedule, started_at: f64, checks: &[(f64, bool)]) -> CheckGate {
        CheckGate {
            warmup_end: started_at + schedule.warmup_s,
            duration_s: schedule.duration_s,
            max_failed: schedule.max_failed,
            total: checks.len(),
            failed: checks.iter().filter(|c| c.1).count(),
            last_failed_t: checks.iter().filter(|c| c.1).map(|c| c.0).next_back(),
            last_check_t: checks.last().map(|c| c.0),
            check_every_s: schedule.check_every_s,
            confidence: schedule.confidence,
            observed: Observed::new(max_gap(0.0)),
            streak_base: None,
        }
    }

    /// Stretches longer than a few `sample_every_s` between samples are gaps, not watched.
    pub fn with_sample_every(mut self, sample_every_s: f64) -> CheckGate {
        self.observed = Observed::new(max_gap(sample_every_s));
        self
    }

    /// Replays recorded `samples` and `checks` through [`CheckGate::observe`]: the streak
    /// restarts at every failed check, in observed time.
    /// Adds a sample at `t` taken while the target was `running` (or stopped/frozen); returns
    /// the stretch it ends that was not watched, if any.
    pub fn observe(&mut self, t: f64, running: bool) -> Option<Gap> {
        let before = self.observed.total();
        let last = self.observed.last_t();
        let gap = self.observed.add(t, running);
        if self.streak_base.is_none() && t >= self.warmup_end {
            // The streak starts at warm-up end itself: of a watched stretch that straddles it,
            // only the part after it counts.
            let counted = self.observed.total() - before;
            let after = match last {
                Some(lt) if lt < self.warmup_end => (t - self.warmup_end).min(counted),
                _ => counted,
            };
            self.streak_base = Some(self.observed.total() - after.max(0.0));
        }
        gap
    }

    /// Clean streak: observed time since warm-up ended or since the last failed check.
    pub fn streak(&self) -> f64 {
        self.streak_base
            .map_or(0.0, |b| (self.observed.total() - b).max(0.0))
    }

    /// Records a check at `now` with the gate metrics' `results` and decides whether the run
    /// ends: on failed checks over the tolerance, or when the clean streak reaches the duration.
    pub fn record(&mut self, now: f64, results: &[MetricResult]) -> CheckDecision {
        let judged = now - self.warmup_end;
        let span_needed = min_fail_span(self.check_every_s, self.duration_s);
        let tau = if self.duration_s > 0.0 {
            judged / self.duration_s
        } else {
            1.0
        };
        let bound = boundary(tau, self.confidence);
        let mut verdicts = Vec::with_capacity(results.len());
        let mut held = Vec::new();
        let mut leaks = Vec::new();
        for r in results {
            let j = &r.judgement;
            let mut v = j.verdict;
            if v == Verdict::Leak {
                let z = j.evidence.z_vs_threshold.unwrap_or(f64::INFINITY);
                if judged + 1e-6 < span_needed {
                    v = Verdict::Inconclusive;
                    held.push(format!(
                        "{}: held by the run-level rule ({} judged; a check may fail after {})",
                        r.name,
                        human_secs(judged.max(0.0)),
                        human_secs(span_needed)
                    ));
                } else if z < bound {
                    v = Verdict::Inconclusive;
                    held.push(format!(
                        "{}: held by the run-level rule (z {z:.2} < {bound:.2} at {:.0} % of the run)",
                        r.name,
                        100.0 * tau.clamp(0.0, 1.0)
                    ));
                } else {
                    leaks.push(format!("{}: {}", r.name, j.reason));
                }
            }
            verdicts.push((r.name.clone(), v));
        }
        let failed = !leaks.is_empty();
        self.total += 1;
        self.last_check_t = Some(now);
        if failed {
            self.failed += 1;
            self.last_failed_t = Some(now);
            self.streak_base = Some(self.observed.total());
            if self.failed as u32 > self.max_failed {
                let end = Some(Outcome::Leak(format!(
                    "leak detected: {}",
                    leaks.join("; ")
                )));
                return CheckDecision {
                    failed,
                    leaks,
                    end,
                    verdicts,
                    held,
                };
            }
        }
        let end = (self.streak() + 1e-6 >= self.duration_s).then(|| {
            match Verdict::combine(verdicts.iter().map(|v| v.1)) {
                Verdict::Clean => Outcome::Passed,
                _ => {
                    // A leak held back says so: the reason of an inconclusive end is the
                    // check's, in the check's words.
                    let held_why = |name: &str| {
                        held.iter()
                            .find_map(|h| h.strip_prefix(name)?.strip_prefix(": "))
                    };
                    let why: Vec<String> = results
                        .iter()
                        .filter(|r| r.judgement.verdict != Verdict::Clean)
                        .map(|r| {
                            let sens = sensitivity_words(&r.judgement, r.kind.rate_unit());
                            let reason = match held_why(&r.name) {
                                Some(h) => format!("{} ({h})", r.judgement.reason),
                                None => r.judgement.reason.clone(),
                            };
                            if sens.is_empty() {
                                format!("{}: {reason}", r.name)
                            } else {
                                format!("{}: {reason} ({sens})", r.name)
                            }
                        })
                        .collect();
                    Outcome::Inconclusive(format!(
                        "inconclusive after {}: {}",
                        human_secs(self.duration_s),
                        why.join("; ")
                    ))
                }
            }
        });
        CheckDecision {
            failed,
            leaks,
            end,
            verdicts,
            held,
        }
    }

    /// The next check time after `now`: checks fall on warm-up end + k × `every`, so a resumed
    /// run keeps its rhythm.
    pub fn next_check_after(&self, now: f64, every: f64) -> f64 {
        self.warmup_end + (((now - self.warmup_end) / every).floor().max(0.0) + 1.0) * every
    }
}

/// The schedule of a run, as far as judging it goes (seconds).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    /// Warm-up not judged, seconds.
    pub warmup_s: f64,
    /// Seconds between checks.
    pub check_every_s: f64,
    /// Clean streak needed to pass, seconds.
    pub duration_s: f64,
    /// Failed checks tolerated.
    pub max_failed: u32,
    /// Two-sided confidence of the detector's intervals.
    pub confidence: f64,
}

/// The gate columns of a recorded table ([`analyze::gate_of`], as a live run decides them);
/// empty when the table has none of the gate's metrics.
pub fn gate_columns<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let all: Vec<&str> = names.into_iter().collect();
    let g = analyze::gate_columns(&all);
    if g.len() == all.len() && !all.iter().any(|n| is_gate_name(n)) {
        return Vec::new();
    }
    g
}

/// Whether `name` is one of the metrics the gate knows (memory figures, FDs, threads).
fn is_gate_name(name: &str) -> bool {
    name == "fds"
        || name == "fds_surviving"
        || name == "threads"
        || analyze::MetricKind::of(name) == analyze::MetricKind::Memory
}

/// One check of a replayed run.
#[derive(Debug, Clone)]
pub struct ReplayedCheck {
    /// Check time, seconds from the first sample.
    pub t_s: f64,
    /// Whether it failed (a gate metric leaked under the run-level rule).
    pub failed: bool,
    /// The check's overall verdict (leak if it failed, clean if every gate metric is clean).
    pub verdict: Verdict,
    /// The gate metrics' results, verdicts after the run-level rule.
    pub metrics: Vec<MetricResult>,
}

/// A run replayed on recorded samples.
#[derive(Debug, Clone)]
pub struct Replay {
    /// Every check, in order, up to the one that ended the run.
    pub checks: Vec<ReplayedCheck>,
    /// How the run ended; `None` when the recording ended first.
    pub outcome: Option<Outcome>,
    /// Time of the check that ended the run with a leak, seconds from the first sample.
    pub failed_at_s: Option<f64>,
    /// Clean streak at the last check, seconds.
    pub streak_s: f64,
}

/// Replays a soak run over `columns` sampled at `t` (seconds from the first sample): a check
/// every `check_every_s` after warm-up, each judging the gate columns on all data up to it,
/// thinned as a live run's are ([`crate::thinned::column`]), with [`analyze::judge_column`] (as
/// [`judge_run`] does live) and recorded by the same
/// [`CheckGate`] the live session uses.
pub fn replay(
    t: &[f64],
    columns: &[(String, Vec<f64>)],
    settings: &Settings,
    schedule: &Schedule,
) -> Replay {
    let mut gate = CheckGate::for_schedule(schedule, 0.0, &[]);
    let mut out = Replay {
        checks: Vec::new(),
        outcome: None,
        failed_at_s: None,
        streak_s: 0.0,
    };
    let Some(&end) = t.last() else {
        return out;
    };
    if schedule.check_every_s <= 0.0 {
        return out;
    }
    // A check within one sampling interval after the last sample judges the same data a live
    // check would have (the next sample was not due yet).
    let mut dts: Vec<f64> = t.windows(2).map(|w| w[1] - w[0]).collect();
    let end = end + crate::detect::stats::median_in_place(&mut dts).unwrap_or(0.0);
    // Checks fall on warm-up end + k × every, as live (`next_check_after`).
    let mut now = gate.warmup_end + schedule.check_every_s;
    gate = gate
        .with_sample_every(crate::detect::stats::median_in_place(&mut dts.clone()).unwrap_or(0.0));
    let mut observed_to = 0;
    while now <= end + 1e-6 {
        // As live, a check happens at the first sample at or after its time and judges every
        // sample up to that one (within one sampling interval after the last sample, the data
        // so far: the next sample was not due yet).
        let i = t.partition_point(|v| *v < now - 1e-9);
        let (k, at) = match t.get(i) {
            Some(&ti) => (i + 1, ti.max(now)),
            None => (t.len(), now),
        };
        // Only watched time counts toward the streak, as live: every sample up to the check,
        // and, for a check within one sampling interval after the last sample, the time up to
        // it (the next sample was not due yet; a live run's last sample is its check, which the
        // export's first-row origin may have moved a few milliseconds before it).
        for &x in &t[observed_to..k] {
            gate.observe(x, true);
        }
        if i == t.len() && observed_to < k {
            gate.observe(at, true);
        }
        observed_to = k;
        let mut results: Vec<MetricResult> = columns
            .iter()
            .filter(|(_, v)| v[..k.min(v.len())].iter().any(|x| x.is_finite()))
            .map(|(name, v)| {
                // The series a live run's checks judge: thinned to bounded memory.
                let (tt, vv) = crate::thinned::column(&t[..k.min(v.len())], &v[..k.min(v.len())]);
                analyze::judge_column(name, &tt, &vv, settings, schedule.warmup_s)
            })
            .collect();
        let decision = gate.record(at, &results);
        decision.apply(&mut results);
        let verdict = if decision.failed {
            Verdict::Leak
        } else {
            Verdict::combine(decision.verdicts.iter().map(|v| v.1))
        };
        out.checks.push(ReplayedCheck {
            t_s: at,
            failed: decision.failed,
            verdict,
            metrics: results,
        });
        out.streak_s = gate.streak();
        if let Some(end) = decision.end {
            if matches!(end, Outcome::Leak(_)) {
                out.failed_at_s = Some(at);
            }
            out.outcome = Some(end);
            break;
        }
        now = gate.next_check_after(at, schedule.check_every_s);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::Settings;

    fn schedule() -> Schedule {
        Schedule {
            warmup_s: 1800.0,
            check_every_s: 300.0,
            duration_s: 21600.0,
            max_failed: 0,
            confidence: 0.95,
        }
    }

    #[test]
    fn boundary_is_strict_early_and_nominal_late() {
        // c = Φ⁻¹(1 − 0.005) = 2.5758; at τ = 1 the boundary is c (above the nominal 1.96).
        assert!((boundary(1.0, 0.95) - 2.575_829).abs() < 1e-4);
        // At τ = 1/4: c/√τ = 5.152; at τ = 0.1: 8.15 → capped at 7.
        assert!((boundary(0.25, 0.95) - 5.151_66).abs() < 1e-3);
        assert_eq!(boundary(0.1, 0.95), Z_CAP);
        // At τ = 0.5: 2.5758·√2 = 3.643.
        assert!((boundary(0.5, 0.95) - 3.642_7).abs() < 1e-3);
        // Never below the nominal z of the confidence.
        assert!(boundary(1.0, 0.999) >= 3.29);
    }

    #[test]
    fn minimum_span_per_profile() {
        assert_eq!(min_fail_span(60.0, 3600.0), 3600.0);
        assert_eq!(min_fail_span(300.0, 21600.0), 7200.0);
        assert_eq!(min_fail_span(600.0, 21600.0), 7200.0);
        assert_eq!(min_fail_span(60.0, 5400.0), 5400.0);
        assert_eq!(min_fail_span(60.0, 100.0), 100.0);
    }

    #[test]
    fn gate_columns_prefer_private_memory_and_skip_details() {
        let cols = gate_columns([
            "rss_bytes",
            "pss_bytes",
            "rss_anon_bytes",
            "fds",
            "fds_socket",
        ]);
        assert_eq!(cols, vec!["rss_anon_bytes", "fds"]);
        let cols = gate_columns(["pss_bytes", "uss_bytes", "threads"]);
        assert_eq!(cols, vec!["pss_bytes", "threads"]);
        assert!(gate_columns(["load"]).is_empty());
    }

    #[test]
    fn weak_early_evidence_is_inconclusive_and_overwhelming_evidence_fails() {
        // A ramp of 0.3 MiB/min in 2 MiB noise: a `leak` at the first check would be weak.
        let sch = schedule();
        let t: Vec<f64> = (0..=(2400 / 5)).map(|i| f64::from(i) * 5.0).collect();
        let noise = |i: usize| 2.0 * ((i as f64 * 1.7).sin() + (i as f64 * 0.37).cos());
        let mem: Vec<f64> = t
            .iter()
            .enumerate()
            .map(|(i, v)| (100.0 + 0.3 * v / 60.0 + noise(i)) * crate::units::MIB)
            .collect();
        let r = replay(&t, &[("rss_bytes".into(), mem)], &Settings::default(), &sch);
        assert!(r.failed_at_s.is_none(), "{:?}", r.outcome);
        assert!(r.checks.iter().all(|c| c.verdict != Verdict::Leak));
        // 5 MiB/min (50×) with little noise: fails at the first check past the minimum span
        // (two hours of judged time), whether it grew through the warm-up or started with the
        // judged span (a step, a ramp after a collector's drop look like this at first).
        let t: Vec<f64> = (0..=(10800 / 5)).map(|i| f64::from(i) * 5.0).collect();
        for start in [0.0, 1800.0] {
            let mem: Vec<f64> = t
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    (100.0 + 5.0 * (v - start).max(0.0) / 60.0 + 0.1 * noise(i)) * crate::units::MIB
                })
                .collect();
            let r = replay(&t, &[("rss_bytes".into(), mem)], &Settings::default(), &sch);
            assert_eq!(r.failed_at_s, Some(1800.0 + 7200.0), "{:?}", r.outcome);
            assert!(matches!(r.outcome, Some(Outcome::Leak(_))));
        }
        let mem: Vec<f64> = t
            .iter()
            .enumerate()
            .map(|(i, v)| (100.0 + 5.0 * v / 60.0 + 0.1 * noise(i)) * crate::units::MIB)
            .collect();
        let r = replay(&t, &[("rss_bytes".into(), mem)], &Settings::default(), &sch);
        // Before it, the held checks say why.
        assert!(
            r.checks[0].metrics[0]
                .judgement
                .reason
                .contains("held by the run-level rule")
        );
    }

    #[test]
    fn a_clean_recording_passes_when_the_streak_reaches_the_duration() {
        let sch = Schedule {
            warmup_s: 60.0,
            check_every_s: 60.0,
            duration_s: 600.0,
            max_failed: 0,
            confidence: 0.95,
        };
        let t: Vec<f64> = (0..=700).map(f64::from).collect();
        let fds = vec![9.0; t.len()];
        let r = replay(&t, &[("fds".into(), fds)], &Settings::default(), &sch);
        assert_eq!(r.outcome, Some(Outcome::Passed));
        assert_eq!(r.checks.len(), 10);
    }
}
