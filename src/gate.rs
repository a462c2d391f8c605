//! Judging a run: which metrics gate it, the detector settings a run implies, each check's
//! verdicts, and the check policy — the failed-check budget and the clean streak against the
//! target duration — that turns a sequence of checks into the run's outcome. Pure: samples and
//! times in, decisions out; the live session and `analyze --as-run` both call it.

use crate::analyze::{self, MetricResult, Settings};
use crate::detect::{Judgement, Verdict, fmt_bound, human_secs};
use crate::observed::{Gap, Observed, max_gap};
use crate::sample::{Metric, Sample};
use crate::settings::{MemoryMetric, RunSettings};

/// The memory figure that gates a run, and why: the one `choice` names when the samples have
/// it, else the nearest that they have (runs recorded before private memory existed: RSS).
pub fn memory_gate(choice: MemoryMetric, samples: &[Sample]) -> (Metric, &'static str) {
    let has = |m: Metric| samples.iter().any(|s| s.get(m).is_some());
    match choice {
        // A JVM's RSS rises as the heap is committed toward -Xmx and stays flat while a leak
        // fills heap already committed: its own counters tell the two apart.
        MemoryMetric::Private if has(Metric::JvmHeapCommittedBytes) => (
            Metric::JvmLiveBytes,
            "JVM: the live set after GC (old generation after collections) and private memory outside the committed heap (outside_heap_bytes), from the JVM's hsperfdata counters: heap growing toward -Xmx is not a leak, a leak inside committed heap is",
        ),
        MemoryMetric::Private if has(Metric::RssAnonBytes) => (
            Metric::RssAnonBytes,
            "private memory (anonymous resident + swap): shared pages and page cache grow without a leak",
        ),
        MemoryMetric::Rss => (Metric::RssBytes, "RSS, as asked (--memory-metric rss)"),
        MemoryMetric::Pss if has(Metric::PssBytes) => (
            Metric::PssBytes,
            "PSS, as asked (--memory-metric pss; read at the detail cadence)",
        ),
        MemoryMetric::Cgroup if has(Metric::CgroupMemoryBytes) => (
            Metric::CgroupMemoryBytes,
            "the cgroup's charged memory, page cache included, as asked (--memory-metric cgroup)",
        ),
        _ => (
            Metric::RssBytes,
            "RSS: the samples have no reading of the memory figure asked for",
        ),
    }
}

/// The metrics a check judges (the gate): memory (see [`memory_gate`]), FDs, threads.
pub fn gate_metrics(s: &RunSettings, samples: &[Sample]) -> Vec<Metric> {
    let memory = memory_gate(s.memory_metric, samples).0;
    let mut gate = vec![memory];
    if memory == Metric::JvmLiveBytes {
        gate.push(Metric::OutsideHeapBytes);
    }
    gate.extend([Metric::Fds, Metric::Threads]);
    gate
}

/// Judges the gate metrics; one without any reading yet (a JVM's live set before its first
/// old-space collection) is `inconclusive`, never left out — a run cannot pass on what it did
/// not see.
pub fn judge_gate(samples: &[Sample], start: f64, s: &RunSettings) -> Vec<MetricResult> {
    let gate = gate_metrics(s, samples);
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
    results
}

/// Detector settings of a run.
pub fn analyze_settings(s: &RunSettings) -> Settings {
    Settings {
        memory_threshold: s.memory_threshold,
        fd_threshold: s.fd_threshold,
        thread_threshold: s.thread_threshold,
        other_threshold: s.fd_threshold,
        column_thresholds: Vec::new(),
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
        let mut g = CheckGate {
            warmup_end: started_at + s.warmup_s,
            duration_s: s.duration_s,
            max_failed: s.max_failed_checks,
            total: checks.len(),
            failed: checks.iter().filter(|c| c.1).count(),
            last_failed_t: checks.iter().filter(|c| c.1).map(|c| c.0).next_back(),
            last_check_t: checks.last().map(|c| c.0),
            observed: Observed::new(max_gap(s.sample_every_s)),
            streak_base: None,
        };
        // Replay: the streak restarts at every failed check, in observed time.
        let mut fails = checks.iter().filter(|c| c.1).map(|c| c.0).peekable();
        for x in samples {
            g.observe(x.t, x.get(Metric::TargetStopped) != Some(1.0));
            while fails.next_if(|f| *f <= x.t).is_some() {
                g.streak_base = Some(g.observed.total());
            }
        }
        g
    }

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
        let failed = results.iter().any(|r| r.judgement.verdict == Verdict::Leak);
        self.total += 1;
        self.last_check_t = Some(now);
        let leaks: Vec<String> = results
            .iter()
            .filter(|r| r.judgement.verdict == Verdict::Leak)
            .map(|r| format!("{}: {}", r.name, r.judgement.reason))
            .collect();
        if failed {
            self.failed += 1;
            self.last_failed_t = Some(now);
            self.streak_base = Some(self.observed.total());
            if self.failed as u32 > self.max_failed {
                let end = Some(Outcome::Leak(format!(
                    "leak detected: {}",
                    leaks.join("; ")
                )));
                return CheckDecision { failed, leaks, end };
            }
        }
        let end = (self.streak() + 1e-6 >= self.duration_s).then(|| {
            match Verdict::combine(results.iter().map(|r| r.judgement.verdict)) {
                Verdict::Clean => Outcome::Passed,
                _ => {
                    let why: Vec<String> = results
                        .iter()
                        .filter(|r| r.judgement.verdict != Verdict::Clean)
                        .map(|r| {
                            let sens = sensitivity_words(&r.judgement, r.kind.rate_unit());
                            if sens.is_empty() {
                                format!("{}: {}", r.name, r.judgement.reason)
                            } else {
                                format!("{}: {} ({sens})", r.name, r.judgement.reason)
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
        CheckDecision { failed, leaks, end }
    }

    /// The next check time after `now`: checks fall on warm-up end + k × `every`, so a resumed
    /// run keeps its rhythm.
    pub fn next_check_after(&self, now: f64, every: f64) -> f64 {
        self.warmup_end + (((now - self.warmup_end) / every).floor().max(0.0) + 1.0) * every
    }
}
