//! The series a run pushes by remote write (`run --remote-write URL`): their names and labels,
//! built from a sample, a check or the run's outcome. Pure: values in, series out; the sender
//! (`publish::remote_write`) adds the run's labels and ships them; `grafana dashboard --pushed`
//! and `scan --pushed` read the same names from here.
//!
//! Names are those of the `/metrics` endpoint where the meaning is the same (one unit per family,
//! `kind` labels, `_total` counters), so one dashboard idiom covers both; the families a live
//! endpoint has no use for (a run's outcome) are added. Every series also carries the run's
//! labels: `run`, `tag`, `host`, `target`, `profile` and each `--label key=value`.

use crate::analyze::{MetricKind, MetricResult};
use crate::publish::metrics::{Resource, classify};
use crate::sample::{Metric, Sample};

/// The run's own labels, in the order they are documented.
pub const RUN_LABELS: [&str; 5] = ["run", "tag", "host", "target", "profile"];

/// Label names the pushed families use themselves: a `--label` may not take them.
pub const FAMILY_LABELS: [&str; 7] = [
    "kind", "bound", "resource", "verdict", "result", "state", "outcome",
];

/// Sampled memory, bytes, by `kind` (`private`, `rss`, `pss`, `uss`, `swap`, `anon`, `file`,
/// `cgroup`, `jvm_heap_used`, …).
pub const MEMORY: &str = "leak_sentinel_memory_bytes";
/// Open descriptors by `kind` (`all`, `socket`, `pipe`, `file`, `anon_inode`, `other`).
pub const FDS: &str = "leak_sentinel_open_fds";
/// Threads of the tree.
pub const THREADS: &str = "leak_sentinel_threads";
/// Processes of the tree.
pub const PROCESSES: &str = "leak_sentinel_processes";
/// 1 when the target was stopped or frozen at the sample.
pub const STOPPED: &str = "leak_sentinel_target_stopped";
/// One point per check: 1 when it failed, else 0.
pub const CHECK_FAILED: &str = "leak_sentinel_check_failed";
/// Checks so far by `result` (`passed`, `failed`).
pub const CHECKS: &str = "leak_sentinel_checks_total";
/// Memory growth at a check, bytes/s, by `kind` and `bound` (`estimate`, `low`, `high`).
pub const MEMORY_GROWTH: &str = "leak_sentinel_memory_growth_bytes_per_second";
/// Memory threshold, bytes/s, by `kind`.
pub const MEMORY_THRESHOLD: &str = "leak_sentinel_memory_growth_threshold_bytes_per_second";
/// FD growth at a check, per second, by `kind` and `bound`.
pub const FD_GROWTH: &str = "leak_sentinel_fd_growth_per_second";
/// FD threshold, per second.
pub const FD_THRESHOLD: &str = "leak_sentinel_fd_growth_threshold_per_second";
/// Thread growth at a check, per second, by `bound`.
pub const THREAD_GROWTH: &str = "leak_sentinel_thread_growth_per_second";
/// Thread threshold, per second.
pub const THREAD_THRESHOLD: &str = "leak_sentinel_thread_growth_threshold_per_second";
/// 1 for each gate metric's verdict at a check (`resource`, `kind`, `verdict`), else 0.
pub const VERDICT: &str = "leak_sentinel_metric_verdict";
/// Clean streak at a check, seconds.
pub const STREAK: &str = "leak_sentinel_clean_streak_seconds";
/// Clean streak needed to pass, seconds.
pub const TARGET_CLEAN: &str = "leak_sentinel_target_clean_seconds";
/// 1 for the run's state (`state` = running, completed, failed, interrupted), else 0.
pub const STATE: &str = "leak_sentinel_run_state";
/// At the end: 1 for how the run ended (`outcome` = passed, leak, inconclusive,
/// target_exited, interrupted), else 0.
pub const OUTCOME: &str = "leak_sentinel_run_outcome";
/// At the end: 1 for the run's final gate verdict (`verdict` = leak, clean, inconclusive).
pub const RUN_VERDICT: &str = "leak_sentinel_run_verdict";
/// At the end: the run's exit code.
pub const EXIT_CODE: &str = "leak_sentinel_run_exit_code";
/// At the end: the run's length, seconds.
pub const ELAPSED: &str = "leak_sentinel_run_elapsed_seconds";

/// The target's own gauges (`--target-metrics`), by `kind` (the gauge's selector).
pub const TARGET_GAUGE: &str = "leak_sentinel_target_gauge";
/// Growth of a target gauge at a check, per second in its unit, by `kind` and `bound`.
pub const GAUGE_GROWTH: &str = "leak_sentinel_target_gauge_growth_per_second";
/// A target gauge's threshold, per second, by `kind`.
pub const GAUGE_THRESHOLD: &str = "leak_sentinel_target_gauge_growth_threshold_per_second";

/// Every family name a run can push, for the dashboard's checks and the docs.
pub const NAMES: &[&str] = &[
    MEMORY,
    FDS,
    THREADS,
    PROCESSES,
    STOPPED,
    CHECK_FAILED,
    CHECKS,
    MEMORY_GROWTH,
    MEMORY_THRESHOLD,
    FD_GROWTH,
    FD_THRESHOLD,
    THREAD_GROWTH,
    THREAD_THRESHOLD,
    VERDICT,
    STREAK,
    TARGET_CLEAN,
    STATE,
    OUTCOME,
    RUN_VERDICT,
    EXIT_CODE,
    ELAPSED,
    TARGET_GAUGE,
    GAUGE_GROWTH,
    GAUGE_THRESHOLD,
];

/// One value of one family: its name and its own labels (the run's are added when sent).
#[derive(Debug, Clone, PartialEq)]
pub struct Value {
    /// Family name.
    pub name: &'static str,
    /// Its own labels (`kind`, `bound`, …).
    pub labels: Vec<(&'static str, String)>,
    /// The value.
    pub v: f64,
}

fn value(name: &'static str, labels: Vec<(&'static str, String)>, v: f64) -> Value {
    Value { name, labels, v }
}

/// The series of one sample: every field it read.
pub fn sample(s: &Sample) -> Vec<Value> {
    let mut out = Vec::new();
    for m in Metric::ALL {
        let Some(v) = s.get(m) else { continue };
        match m {
            Metric::TargetStopped => out.push(value(STOPPED, vec![], v)),
            Metric::JvmGcTotal => {
                out.push(value("leak_sentinel_jvm_gc_collections_total", vec![], v))
            }
            Metric::JvmGcSecondsTotal => {
                out.push(value("leak_sentinel_jvm_gc_seconds_total", vec![], v))
            }
            _ => match classify(m.name()) {
                Some((Resource::Memory, k)) => out.push(value(MEMORY, vec![("kind", k)], v)),
                Some((Resource::Fds, k)) => out.push(value(FDS, vec![("kind", k)], v)),
                Some((Resource::Threads, _)) => out.push(value(THREADS, vec![], v)),
                Some((Resource::Processes, _)) => out.push(value(PROCESSES, vec![], v)),
                Some((Resource::Gauge, _)) | None => {}
            },
        }
    }
    out
}

/// The series of the target's gauges read with a sample (`(column, value)`).
pub fn gauges(values: &[(String, f64)]) -> Vec<Value> {
    values
        .iter()
        .filter_map(|(column, v)| match classify(column) {
            Some((Resource::Gauge, k)) => Some(value(TARGET_GAUGE, vec![("kind", k)], *v)),
            _ => None,
        })
        .collect()
}

/// The series of the judgements of a check (or of the end): growth with its bounds, the
/// threshold and the verdict of each gate metric. Rates go out per second, memory in bytes.
pub fn judgements(results: &[MetricResult]) -> Vec<Value> {
    let mut out = Vec::new();
    for r in results {
        let Some((res, kind)) = classify(&r.name) else {
            continue;
        };
        let (growth, threshold, per_s) = match res {
            Resource::Memory => (MEMORY_GROWTH, MEMORY_THRESHOLD, crate::units::MIB / 60.0),
            Resource::Fds => (FD_GROWTH, FD_THRESHOLD, 1.0 / 60.0),
            Resource::Threads => (THREAD_GROWTH, THREAD_THRESHOLD, 1.0 / 60.0),
            Resource::Gauge => (GAUGE_GROWTH, GAUGE_THRESHOLD, crate::units::MIB / 60.0),
            Resource::Processes => continue,
        };
        // Judgements are per minute in the judged unit (MiB for memory).
        let per_s = if r.kind == MetricKind::Memory {
            per_s
        } else {
            1.0 / 60.0
        };
        let with_kind = |mut l: Vec<(&'static str, String)>| {
            if res != Resource::Threads {
                l.insert(0, ("kind", kind.clone()));
            }
            l
        };
        let j = &r.judgement;
        // f64::MIN / f64::MAX stand for "unbounded": left out rather than sent as ±Inf.
        for (bound, x) in [
            ("estimate", j.slope_per_min),
            ("low", j.ci_low),
            ("high", j.ci_high),
        ] {
            if x > f64::MIN && x < f64::MAX {
                out.push(value(
                    growth,
                    with_kind(vec![("bound", bound.into())]),
                    x * per_s,
                ));
            }
        }
        out.push(value(
            threshold,
            with_kind(vec![]),
            j.threshold_per_min * per_s,
        ));
        for v in ["leak", "clean", "inconclusive"] {
            out.push(value(
                VERDICT,
                vec![
                    ("kind", kind.clone()),
                    ("resource", res.label().into()),
                    ("verdict", v.into()),
                ],
                if j.verdict.as_str() == v { 1.0 } else { 0.0 },
            ));
        }
    }
    out
}

/// A check's own series: whether it failed, the counts so far, the streak and the state.
pub fn check(
    failed: bool,
    passed_total: u64,
    failed_total: u64,
    streak_s: f64,
    target_s: f64,
) -> Vec<Value> {
    let mut out = vec![
        value(CHECK_FAILED, vec![], f64::from(u8::from(failed))),
        value(
            CHECKS,
            vec![("result", "passed".into())],
            passed_total as f64,
        ),
        value(
            CHECKS,
            vec![("result", "failed".into())],
            failed_total as f64,
        ),
        value(STREAK, vec![], streak_s.max(0.0)),
        value(TARGET_CLEAN, vec![], target_s),
    ];
    out.extend(state("running"));
    out
}

/// The run's state as 1 for `current`, 0 for the others.
pub fn state(current: &str) -> Vec<Value> {
    ["running", "completed", "failed", "interrupted"]
        .into_iter()
        .map(|s| {
            value(
                STATE,
                vec![("state", s.into())],
                f64::from(u8::from(s == current)),
            )
        })
        .collect()
}

/// How a run ended, for [`OUTCOME`].
pub const OUTCOMES: [&str; 5] = [
    "passed",
    "leak",
    "inconclusive",
    "target_exited",
    "interrupted",
];

/// The run's end: its outcome, final verdict, exit code, length and state.
pub fn outcome(
    outcome: &str,
    verdict: &str,
    exit_code: i32,
    elapsed_s: f64,
    status: &str,
) -> Vec<Value> {
    let mut out: Vec<Value> = OUTCOMES
        .into_iter()
        .map(|o| {
            value(
                OUTCOME,
                vec![("outcome", o.into())],
                f64::from(u8::from(o == outcome)),
            )
        })
        .collect();
    for v in ["leak", "clean", "inconclusive"] {
        out.push(value(
            RUN_VERDICT,
            vec![("verdict", v.into())],
            f64::from(u8::from(v == verdict)),
        ));
    }
    out.push(value(EXIT_CODE, vec![], f64::from(exit_code)));
    out.push(value(ELAPSED, vec![], elapsed_s));
    out.extend(state(status));
    out
}

/// The `scan --kind` of a PromQL query over pushed series: the kind of the first family of ours
/// it names (`leak_sentinel_open_fds` → `fds`, `leak_sentinel_threads` → `threads`,
/// `leak_sentinel_memory_bytes` → `memory`); `None` when it names none.
pub fn kind_of_query(query: &str) -> Option<&'static str> {
    let mut rest = query;
    while let Some(at) = rest.find("leak_sentinel_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        // A name, not the middle of a longer identifier.
        let starts_word = rest[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_'));
        if starts_word {
            match &tail[..end] {
                MEMORY => return Some("memory"),
                FDS => return Some("fds"),
                THREADS | PROCESSES => return Some("threads"),
                _ => {}
            }
        }
        rest = &tail[end..];
    }
    None
}

/// Whether `name` may be a `--label` name: a Prometheus label name (`[a-zA-Z_][a-zA-Z0-9_]*`),
/// not reserved (`__…`), not a run label other than `host` (which a container's random host
/// name may need replaced), not one the families use.
pub fn label_name_ok(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let well_formed = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !well_formed {
        return Err("a label name is letters, digits and '_', not starting with a digit".into());
    }
    if name.starts_with("__") {
        return Err("names starting with '__' are reserved by Prometheus".into());
    }
    if name != "host" && RUN_LABELS.contains(&name) {
        return Err(format!("'{name}' is set by leak-sentinel itself"));
    }
    if FAMILY_LABELS.contains(&name) || name == "job" || name == "instance" {
        return Err(format!(
            "'{name}' is a label of leak-sentinel's series or of scraped ones"
        ));
    }
    Ok(())
}

/// The tag of a run name: the name without the date a schedule (`NAME-YYYYMMDD`) or the default
/// name (`PROFILE-YYYYMMDD-HHMMSS`) appends, so the nights of one soak share it.
pub fn tag_of(name: &str) -> String {
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    let mut rest = name;
    if let Some((head, time)) = rest.rsplit_once('-') {
        if digits(time, 6) {
            if let Some((head2, date)) = head.rsplit_once('-') {
                if digits(date, 8) && !head2.is_empty() {
                    return head2.to_string();
                }
            }
        }
    }
    if let Some((head, date)) = rest.rsplit_once('-') {
        if digits(date, 8) && !head.is_empty() {
            rest = head;
        }
    }
    rest.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_becomes_the_endpoint_families() {
        let mut s = Sample::at(1.0);
        s.set(Metric::RssAnonBytes, Some(1e6));
        s.set(Metric::RssBytes, Some(2e6));
        s.set(Metric::Fds, Some(7.0));
        s.set(Metric::FdsSocket, Some(3.0));
        s.set(Metric::Threads, Some(4.0));
        s.set(Metric::TargetStopped, Some(0.0));
        let v = sample(&s);
        let find = |name: &str, kind: Option<&str>| {
            v.iter()
                .find(|x| {
                    x.name == name
                        && kind.is_none_or(|k| x.labels.contains(&("kind", k.to_string())))
                })
                .map(|x| x.v)
        };
        assert_eq!(find(MEMORY, Some("private")), Some(1e6));
        assert_eq!(find(MEMORY, Some("rss")), Some(2e6));
        assert_eq!(find(FDS, Some("all")), Some(7.0));
        assert_eq!(find(FDS, Some("socket")), Some(3.0));
        assert_eq!(find(THREADS, None), Some(4.0));
        assert_eq!(find(STOPPED, None), Some(0.0));
        assert_eq!(v.len(), 6, "fields not read are not sent: {v:?}");
        assert!(v.iter().all(|x| NAMES.contains(&x.name)));
    }

    #[test]
    fn the_outcome_marks_one_of_each() {
        let v = outcome("leak", "leak", 1, 60.0, "failed");
        let ones: Vec<String> = v
            .iter()
            .filter(|x| x.v == 1.0 && x.labels.len() == 1)
            .map(|x| format!("{}={}", x.name, x.labels[0].1))
            .collect();
        assert_eq!(
            ones,
            [
                "leak_sentinel_run_outcome=leak",
                "leak_sentinel_run_verdict=leak",
                "leak_sentinel_run_state=failed"
            ]
        );
    }

    #[test]
    fn tags_drop_the_dates_of_schedules_and_default_names() {
        assert_eq!(tag_of("W3-Nightly-20261207"), "W3-Nightly");
        assert_eq!(tag_of("quick-20261207-090001"), "quick");
        assert_eq!(tag_of("W3-Production"), "W3-Production");
        assert_eq!(tag_of("20261207"), "20261207");
        assert_eq!(tag_of("svc-2026"), "svc-2026");
    }

    #[test]
    fn a_query_over_pushed_series_says_its_kind() {
        assert_eq!(
            kind_of_query("leak_sentinel_open_fds{kind=\"all\"}"),
            Some("fds")
        );
        assert_eq!(
            kind_of_query("max by (run) (leak_sentinel_threads{tag=\"x\"})"),
            Some("threads")
        );
        assert_eq!(kind_of_query("leak_sentinel_memory_bytes"), Some("memory"));
        assert_eq!(kind_of_query("process_open_fds"), None);
        assert_eq!(kind_of_query("my_leak_sentinel_open_fds"), None);
        assert_eq!(kind_of_query("leak_sentinel_open_fds_x"), None);
    }

    #[test]
    fn label_names_are_checked() {
        assert!(label_name_ok("commit").is_ok());
        assert!(label_name_ok("host").is_ok());
        for bad in ["", "1x", "a-b", "__x", "run", "tag", "kind", "job"] {
            assert!(label_name_ok(bad).is_err(), "{bad}");
        }
    }
}
