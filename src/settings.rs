//! Validated settings of a run: the profile, the schedule (durations in seconds), thresholds
//! (per minute, in the metric's unit), the target and the publishers. Resolved from flags and
//! the config file by `config`; stored with the run so `resume` continues with the same ones.
//! Pure data: no clap types, no I/O.

use crate::exit::usage;
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// A soak-test profile (SPEC.md, "Profiles").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Profile {
    /// 1 h, check every 60 s, sample every 1 s.
    Quick,
    /// 6 h, check every 300 s, sample every 5 s.
    Standard,
    /// 6 h, check every 600 s, sample every 5 s.
    Production,
}

impl Profile {
    /// Parses a profile name.
    pub fn parse(s: &str) -> Result<Profile> {
        match s {
            "quick" => Ok(Profile::Quick),
            "standard" => Ok(Profile::Standard),
            "production" => Ok(Profile::Production),
            other => Err(usage(format!(
                "unknown profile '{other}'; choose quick, standard or production"
            ))),
        }
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Quick => "quick",
            Profile::Standard => "standard",
            Profile::Production => "production",
        }
    }

    /// (target duration, check every, sample every, detail every), seconds.
    pub fn defaults(self) -> (f64, f64, f64, f64) {
        match self {
            Profile::Quick => (3600.0, 60.0, 1.0, 10.0),
            Profile::Standard => (21600.0, 300.0, 5.0, 30.0),
            Profile::Production => (21600.0, 600.0, 5.0, 60.0),
        }
    }
}

/// Body format of webhooks (`--notify-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotifyFormat {
    /// `{"event": …, "run": …, …}`.
    Json,
    /// `{"text": …}` (Slack incoming webhooks, Mattermost, Rocket.Chat…).
    Slack,
}

/// Which memory figure gates a run (`--memory-metric`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemoryMetric {
    /// Anonymous resident + swap over the tree (a cgroup's memory.stat anon + swap).
    #[default]
    Private,
    /// Resident set size summed over the tree (shared pages counted once per process).
    Rss,
    /// Proportional set size (shared pages split among their users; detail cadence).
    Pss,
    /// The cgroup's charged memory (memory.current / memory.usage_in_bytes, page cache included).
    Cgroup,
}

impl MemoryMetric {
    /// Parses `private`, `rss`, `pss` or `cgroup`.
    pub fn parse(s: &str) -> Result<MemoryMetric> {
        match s {
            "private" => Ok(MemoryMetric::Private),
            "rss" => Ok(MemoryMetric::Rss),
            "pss" => Ok(MemoryMetric::Pss),
            "cgroup" => Ok(MemoryMetric::Cgroup),
            other => Err(usage(format!(
                "--memory-metric: '{other}' is not private, rss, pss or cgroup"
            ))),
        }
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            MemoryMetric::Private => "private",
            MemoryMetric::Rss => "rss",
            MemoryMetric::Pss => "pss",
            MemoryMetric::Cgroup => "cgroup",
        }
    }
}

/// What to measure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetSpec {
    /// Spawn this command.
    Spawn(Vec<String>),
    /// Attach to a PID.
    Pid(i32),
    /// Attach to the PID in a file.
    PidFile(PathBuf),
    /// A cgroup v2 directory.
    Cgroup(PathBuf),
}

/// Validated settings of a run (stored with it, so `resume` continues with the same ones).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSettings {
    /// Unique run name.
    pub name: String,
    /// Profile the defaults came from.
    pub profile: Profile,
    /// Clean time needed to pass, seconds.
    pub duration_s: f64,
    /// Seconds between checks.
    pub check_every_s: f64,
    /// Seconds between samples.
    pub sample_every_s: f64,
    /// Seconds between expensive samples (at least; paced by their measured cost).
    pub detail_every_s: f64,
    /// Warm-up not judged, seconds.
    pub warmup_s: f64,
    /// MiB/min.
    pub memory_threshold: f64,
    /// Which memory figure gates the run (runs stored before it existed: private, falling back
    /// to RSS when they have no private-memory samples).
    #[serde(default)]
    pub memory_metric: MemoryMetric,
    /// FD/min.
    pub fd_threshold: f64,
    /// Threads/min.
    pub thread_threshold: f64,
    /// Failed checks tolerated.
    pub max_failed_checks: u32,
    /// Hard stop, seconds from the start.
    pub timeout_s: Option<f64>,
    /// Confidence of the detector's intervals.
    pub confidence: f64,
    /// What to measure.
    pub target: TargetSpec,
    /// Measure descendants of an attached PID.
    pub include_children: bool,
    /// Before each check, ask the tree's JVMs for a full collection (`GC.run` through the
    /// attach mechanism): a live-set point when none would come. Intrusive, opt-in.
    #[serde(default)]
    pub jvm_gc_before_check: bool,
    /// Environment added to a spawned target.
    pub env: Vec<(String, String)>,
    /// File a spawned target's stdout and stderr go to (appended), instead of the terminal.
    #[serde(default)]
    pub target_output: Option<PathBuf>,
    /// Seconds between SIGTERM and SIGKILL when stopping a spawned target.
    pub grace_s: f64,
    /// Snapshot hook run once at failure (`{pid}`, `{dir}` substituted).
    #[serde(default)]
    pub on_leak: Option<String>,
    /// Time limit of the hook, seconds.
    #[serde(default = "default_hook_timeout")]
    pub on_leak_timeout_s: f64,
    /// Attribution (`--attribute`): snapshot allocation sites or classes at the end of warm-up
    /// and at the end, by the runtime's own mechanism; the report lists what grew.
    #[serde(default)]
    pub attribute: bool,
    /// Time limit of one attribution snapshot, seconds.
    #[serde(default = "default_attribute_timeout")]
    pub attribute_timeout_s: f64,
    /// The heap profile's URL of a Go target (`--pprof`, always ending in its path:
    /// `http://127.0.0.1:6060/debug/pprof/heap`): attribution reads it. Implies `attribute`.
    #[serde(default)]
    pub pprof: Option<String>,
    /// Baseline file to compare the run with.
    #[serde(default)]
    pub baseline: Option<PathBuf>,
    /// Prometheus endpoint address.
    #[serde(default)]
    pub metrics_addr: Option<String>,
    /// Webhook URLs.
    #[serde(default)]
    pub notify: Vec<String>,
    /// Webhook body format.
    #[serde(default)]
    pub notify_format: Option<NotifyFormat>,
    /// Grafana base URL.
    #[serde(default)]
    pub grafana_url: Option<String>,
    /// Grafana token file (the token itself is never stored).
    #[serde(default)]
    pub grafana_token_file: Option<PathBuf>,
    /// PEM file of certificate authorities trusted for https besides the built-in roots
    /// (absolute, so `resume` elsewhere reads the same).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Remote-write URLs the run pushes its series to.
    #[serde(default)]
    pub remote_write: Vec<String>,
    /// Labels added to every pushed series (`--label`), validated.
    #[serde(default)]
    pub labels: Vec<(String, String)>,
    /// The `tag` label (`--tag`); `None`: the run name without a trailing date.
    #[serde(default)]
    pub tag: Option<String>,
    /// Points each remote-write queue holds at most.
    #[serde(default)]
    pub remote_write_queue: Option<usize>,
    /// File with the remote-write bearer token (the token itself is never stored).
    #[serde(default)]
    pub remote_write_token_file: Option<PathBuf>,
    /// File with the remote-write `user:password` (never stored itself).
    #[serde(default)]
    pub remote_write_basic_auth_file: Option<PathBuf>,
    /// The target's own metrics endpoint, read at the sample cadence (`--target-metrics`).
    #[serde(default)]
    pub target_metrics: Option<String>,
    /// The target's gauges judged there (`--target-gauge`, or the defaults), each with its
    /// threshold resolved.
    #[serde(default)]
    pub target_gauges: Vec<crate::gauges::GaugeSpec>,
    /// JUnit XML written at the end of the run (absolute, so `resume` elsewhere writes the same).
    #[serde(default)]
    pub junit: Option<PathBuf>,
    /// Markdown summary written at the end of the run (absolute).
    #[serde(default)]
    pub summary_md: Option<PathBuf>,
}

/// Default time limit of one attribution snapshot, seconds: a class histogram of a few GiB of
/// heap takes seconds; a tracemalloc snapshot of a million traced blocks, ten or so.
pub fn default_attribute_timeout() -> f64 {
    60.0
}

/// Default time limit of the `--on-leak` hook, seconds.
pub fn default_hook_timeout() -> f64 {
    120.0
}

impl RunSettings {
    /// The profile as it is in force: its name when the schedule is the profile's own,
    /// `custom (from standard)` when any of duration, warm-up or the check, sample and detail
    /// cadences was set otherwise (the rest still come from that profile).
    pub fn profile_words(&self) -> String {
        let defaults = RunSettings::defaults(&self.name, self.profile, Vec::new());
        let same = |a: f64, b: f64| (a - b).abs() < 1e-9;
        let own = same(self.duration_s, defaults.duration_s)
            && same(self.warmup_s, defaults.warmup_s)
            && same(self.check_every_s, defaults.check_every_s)
            && same(self.sample_every_s, defaults.sample_every_s)
            && same(self.detail_every_s, defaults.detail_every_s);
        if own {
            self.profile.name().to_string()
        } else {
            format!("custom (from {})", self.profile.name())
        }
    }

    /// The cadences in force, in words: `pass after 6h 0m clean (warm-up 36m 0s, check every
    /// 5m 0s, sample every 5s, detail every 30s)`.
    pub fn cadence_words(&self) -> String {
        let h = crate::detect::human_secs;
        format!(
            "pass after {} clean (warm-up {}, check every {}, sample every {}, detail every {})",
            h(self.duration_s),
            h(self.warmup_s),
            h(self.check_every_s),
            h(self.sample_every_s),
            h(self.detail_every_s)
        )
    }

    /// Settings of a profile's defaults for `command` (warm-up 10 % of the duration): what a run
    /// with no flags would use. For tests and examples.
    pub fn defaults(name: &str, profile: Profile, command: Vec<String>) -> RunSettings {
        let (duration_s, check_every_s, sample_every_s, detail_every_s) = profile.defaults();
        RunSettings {
            name: name.into(),
            profile,
            duration_s,
            check_every_s,
            sample_every_s,
            detail_every_s,
            warmup_s: (0.1 * duration_s).min(1800.0),
            memory_threshold: 0.1,
            memory_metric: MemoryMetric::default(),
            fd_threshold: 0.1,
            thread_threshold: 0.1,
            max_failed_checks: 0,
            timeout_s: None,
            confidence: 0.95,
            target: TargetSpec::Spawn(command),
            include_children: true,
            jvm_gc_before_check: false,
            env: Vec::new(),
            target_output: None,
            grace_s: 5.0,
            on_leak: None,
            on_leak_timeout_s: default_hook_timeout(),
            attribute: false,
            attribute_timeout_s: default_attribute_timeout(),
            pprof: None,
            baseline: None,
            metrics_addr: None,
            notify: Vec::new(),
            notify_format: None,
            grafana_url: None,
            grafana_token_file: None,
            ca_file: None,
            remote_write: Vec::new(),
            labels: Vec::new(),
            tag: None,
            remote_write_queue: None,
            remote_write_token_file: None,
            remote_write_basic_auth_file: None,
            target_metrics: None,
            target_gauges: Vec::new(),
            junit: None,
            summary_md: None,
        }
    }
}

/// A run name is used in file names: letters, digits, `.`, `_`, `-`.
pub fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(usage(format!(
            "run name '{name}' may only use letters, digits, '.', '_' and '-' (not starting with '.')"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_cadence_makes_the_profile_custom_and_the_words_show_it() {
        let mut s = RunSettings::defaults("r", Profile::Standard, vec!["x".into()]);
        assert_eq!(s.profile_words(), "standard");
        assert_eq!(
            s.cadence_words(),
            "pass after 6h 0m clean (warm-up 30m 0s, check every 5m 0s, sample every 5s, detail every 30s)"
        );
        s.duration_s = 780.0;
        s.check_every_s = 60.0;
        assert_eq!(s.profile_words(), "custom (from standard)");
        let words = s.cadence_words();
        assert!(words.starts_with("pass after 13m 0s clean"), "{words}");
        assert!(words.contains("detail every 30s"), "{words}");
    }
}
