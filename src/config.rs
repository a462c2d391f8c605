//! Run settings: the profile's defaults, then the TOML config file, then the flags — read raw
//! first, then resolved into validated [`RunSettings`] (durations in seconds, rates per minute).

use crate::cli::RunArgs;
use crate::exit::usage;
use crate::settings::{
    MemoryMetric, NotifyFormat, Profile, RunSettings, TargetSpec, default_hook_timeout,
    validate_name,
};
use crate::units::{RateKind, parse_duration, parse_rate};
use anyhow::Result;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The config file as written (every field optional; flags override).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Run name.
    pub name: Option<String>,
    /// Profile.
    pub profile: Option<String>,
    /// Durations as strings (`6h`).
    pub duration: Option<String>,
    /// Check interval.
    pub check_every: Option<String>,
    /// Sample interval.
    pub sample_every: Option<String>,
    /// Detail interval.
    pub detail_every: Option<String>,
    /// Warm-up.
    pub warmup: Option<String>,
    /// Memory threshold (`0.1`, `100KiB/min`).
    pub memory_threshold: Option<String>,
    /// Memory that gates the run (`private`, `rss`, `pss`, `cgroup`).
    pub memory_metric: Option<String>,
    /// FD threshold.
    pub fd_threshold: Option<String>,
    /// Thread threshold.
    pub thread_threshold: Option<String>,
    /// Failed checks tolerated.
    pub max_failed_checks: Option<u32>,
    /// Hard stop.
    pub timeout: Option<String>,
    /// Command to spawn.
    pub command: Option<Vec<String>>,
    /// PID to attach to.
    pub pid: Option<i32>,
    /// PID file.
    pub pid_file: Option<PathBuf>,
    /// cgroup v2 directory.
    pub cgroup: Option<PathBuf>,
    /// Measure only the given process.
    pub no_children: Option<bool>,
    /// A full GC of the target's JVMs before each check.
    pub jvm_gc_before_check: Option<bool>,
    /// Environment added to a spawned target.
    pub env: Option<BTreeMap<String, String>>,
    /// File a spawned target's output goes to.
    pub target_output: Option<PathBuf>,
    /// Snapshot hook at failure.
    pub on_leak: Option<String>,
    /// Prometheus endpoint address.
    pub metrics_addr: Option<String>,
    /// Webhook URLs.
    pub notify: Option<Vec<String>>,
    /// Webhook body format.
    pub notify_format: Option<String>,
    /// Grafana base URL.
    pub grafana_url: Option<String>,
    /// Grafana token file.
    pub grafana_token_file: Option<PathBuf>,
    /// PEM file of certificate authorities trusted for https.
    pub ca_file: Option<PathBuf>,
    /// Remote-write URLs.
    pub remote_write: Option<Vec<String>>,
    /// Labels of pushed series.
    pub labels: Option<BTreeMap<String, String>>,
    /// The `tag` label of pushed series.
    pub tag: Option<String>,
    /// Points each remote-write queue holds at most.
    pub remote_write_queue: Option<usize>,
    /// Remote-write bearer token file.
    pub remote_write_token_file: Option<PathBuf>,
    /// Remote-write basic auth file (`user:password`).
    pub remote_write_basic_auth_file: Option<PathBuf>,
    /// Its time limit.
    pub on_leak_timeout: Option<String>,
    /// Attribution of allocation sites or classes (`--attribute`).
    pub attribute: Option<bool>,
    /// Time limit of one attribution snapshot.
    pub attribute_timeout: Option<String>,
    /// The target's own metrics endpoint.
    pub target_metrics: Option<String>,
    /// The target's gauges judged there.
    pub target_gauges: Option<Vec<String>>,
    /// A Go target's heap profile URL (`--pprof`).
    pub pprof: Option<String>,
    /// JUnit XML file written at the end.
    pub junit: Option<PathBuf>,
    /// Markdown summary file written at the end.
    pub summary_md: Option<PathBuf>,
}

/// Largest config file read, bytes (a real one is a few hundred; a bound keeps `--config
/// /dev/zero` or a runaway file from eating memory).
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Reads a TOML config file; errors name the key and line.
pub fn read_file_config(path: &Path) -> Result<FileConfig> {
    let text = crate::files::read_bounded(path, MAX_CONFIG_BYTES, "config")?;
    toml::from_str::<FileConfig>(&text).map_err(|e| {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
        let msg: String = e.message().replace('\n', " ").chars().take(300).collect();
        match line {
            Some(l) => usage(format!("config '{}', line {l}: {msg}", path.display())),
            None => usage(format!("config '{}': {msg}", path.display())),
        }
    })
}

fn dur(flag: &str, s: &str) -> Result<f64> {
    parse_duration(s)
        .map(|d| d.as_secs_f64())
        .map_err(|e| usage(format!("--{flag}: {e}")))
}

fn rate(flag: &str, s: &str, kind: RateKind) -> Result<f64> {
    parse_rate(s, kind).map_err(|e| usage(format!("--{flag}: {e}")))
}

/// A CI output file (`--junit`, `--summary-md`): made absolute, so a `resume` from another
/// directory writes the same file, and its directory must exist now — not six hours from now.
pub fn ci_output(flag: &str, p: Option<&PathBuf>) -> Result<Option<PathBuf>> {
    let Some(p) = p else { return Ok(None) };
    if p.as_os_str().is_empty() || p.file_name().is_none() {
        return Err(usage(format!(
            "--{flag}: '{}' does not name a file",
            p.display()
        )));
    }
    let abs =
        std::path::absolute(p).map_err(|e| usage(format!("--{flag}: '{}': {e}", p.display())))?;
    let dir = abs.parent().unwrap_or(Path::new("/"));
    if !dir.is_dir() {
        return Err(usage(format!(
            "--{flag}: directory '{}' does not exist",
            dir.display()
        )));
    }
    if abs.is_dir() {
        return Err(usage(format!("--{flag}: '{}' is a directory", p.display())));
    }
    Ok(Some(abs))
}

/// A remote-write URL: http(s), without credentials (those come from the environment or a
/// file, never the command line, where `ps` and shell histories show them).
pub fn remote_write_url(u: &str) -> Result<()> {
    let shown = crate::publish::notify::redact_url(u);
    let rest = u
        .strip_prefix("http://")
        .or_else(|| u.strip_prefix("https://"))
        .ok_or_else(|| usage(format!("--remote-write: '{shown}' is not an http(s) URL")))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() {
        return Err(usage(format!("--remote-write: '{shown}' has no host")));
    }
    if authority.contains('@') {
        return Err(usage(format!(
            "--remote-write: '{shown}' carries credentials; put them in LEAK_SENTINEL_REMOTE_WRITE_BASIC_AUTH or --remote-write-basic-auth-file instead"
        )));
    }
    Ok(())
}

/// A file holding a secret: absolute (a `resume` elsewhere reads the same), and readable now —
/// not hours from now.
fn secret_file(flag: &str, p: Option<&PathBuf>) -> Result<Option<PathBuf>> {
    let Some(p) = p else { return Ok(None) };
    crate::publish::remote_write::read_secret(p)
        .map_err(|e| usage(format!("--{flag}: {}", crate::exit::one_line(&e))))?;
    Ok(Some(std::path::absolute(p).unwrap_or_else(|_| p.clone())))
}

/// Resolves profile → config file (`--config`, or `leak-sentinel.toml` in the working directory)
/// → flags into validated settings.
pub fn resolve(args: &RunArgs) -> Result<RunSettings> {
    let file = match &args.config {
        Some(p) => read_file_config(p)?,
        None if Path::new("leak-sentinel.toml").exists() => {
            read_file_config(Path::new("leak-sentinel.toml"))?
        }
        None => FileConfig::default(),
    };
    let pick = |flag: &Option<String>, file: &Option<String>| flag.clone().or_else(|| file.clone());
    let profile = match pick(&args.profile, &file.profile) {
        Some(p) => Profile::parse(&p)?,
        None => Profile::Standard,
    };
    let (d_duration, d_check, d_sample, d_detail) = profile.defaults();
    let duration_s = match pick(&args.duration, &file.duration) {
        Some(s) => dur("duration", &s)?,
        None => d_duration,
    };
    let check_every_s = match pick(&args.check_every, &file.check_every) {
        Some(s) => dur("check-every", &s)?,
        None => d_check,
    };
    let sample_every_s = match pick(&args.sample_every, &file.sample_every) {
        Some(s) => dur("sample-every", &s)?,
        None => d_sample,
    };
    let detail_every_s = match pick(&args.detail_every, &file.detail_every) {
        Some(s) => dur("detail-every", &s)?,
        None => d_detail.max(sample_every_s),
    };
    // Default warm-up: 10 % of the target duration, at most 30 minutes.
    let warmup_s = match pick(&args.warmup, &file.warmup) {
        Some(s) => dur("warmup", &s)?,
        None => (0.1 * duration_s).min(1800.0),
    };
    let memory_threshold = match pick(&args.memory_threshold, &file.memory_threshold) {
        Some(s) => rate("memory-threshold", &s, RateKind::Memory)?,
        None => 0.1,
    };
    let memory_metric = match pick(&args.memory_metric, &file.memory_metric) {
        Some(m) => MemoryMetric::parse(&m)?,
        None => MemoryMetric::default(),
    };
    let fd_threshold = match pick(&args.fd_threshold, &file.fd_threshold) {
        Some(s) => rate("fd-threshold", &s, RateKind::Count)?,
        None => 0.1,
    };
    let thread_threshold = match pick(&args.thread_threshold, &file.thread_threshold) {
        Some(s) => rate("thread-threshold", &s, RateKind::Count)?,
        None => 0.1,
    };
    let timeout_s = match pick(&args.timeout, &file.timeout) {
        Some(s) => Some(dur("timeout", &s)?),
        None => None,
    };
    if duration_s <= 0.0 {
        return Err(usage("--duration must be longer than 0s"));
    }
    if sample_every_s < 0.05 {
        return Err(usage(format!(
            "--sample-every: '{sample_every_s}s' is too fast; the minimum is 50ms"
        )));
    }
    if check_every_s < sample_every_s {
        return Err(usage("--check-every must be at least --sample-every"));
    }
    if timeout_s.is_some_and(|t| t <= 0.0) {
        return Err(usage("--timeout must be longer than 0s"));
    }
    let command = if !args.command.is_empty() {
        Some(args.command.clone())
    } else {
        None
    };
    let targets = [
        command.clone().map(TargetSpec::Spawn),
        args.pid.map(TargetSpec::Pid),
        args.pid_file.clone().map(TargetSpec::PidFile),
        args.cgroup.clone().map(TargetSpec::Cgroup),
    ];
    let given: Vec<TargetSpec> = targets.into_iter().flatten().collect();
    let target = match given.len() {
        1 => given.into_iter().next().expect("one element"),
        0 => {
            let from_file = [
                file.command
                    .clone()
                    .filter(|c| !c.is_empty())
                    .map(TargetSpec::Spawn),
                file.pid.map(TargetSpec::Pid),
                file.pid_file.clone().map(TargetSpec::PidFile),
                file.cgroup.clone().map(TargetSpec::Cgroup),
            ];
            let mut f: Vec<TargetSpec> = from_file.into_iter().flatten().collect();
            match f.len() {
                1 => f.remove(0),
                0 => {
                    return Err(usage(
                        "no target: give --pid PID, --pid-file FILE, --cgroup DIR or -- COMMAND ARGS",
                    ));
                }
                _ => return Err(usage("the config file names more than one target")),
            }
        }
        _ => {
            return Err(usage(
                "give only one target: --pid, --pid-file, --cgroup or -- COMMAND",
            ));
        }
    };
    if let TargetSpec::Pid(p) = target {
        if p <= 0 {
            return Err(usage(format!("--pid: '{p}' is not a valid PID")));
        }
    }
    let name = match pick(&args.name, &file.name) {
        Some(n) => n,
        None => format!(
            "{}-{}",
            profile.name(),
            chrono::Local::now().format("%Y%m%d-%H%M%S")
        ),
    };
    validate_name(&name)?;
    let pprof = match pick(&args.pprof, &file.pprof) {
        Some(u) => Some(crate::profiler::go::heap_url(&u).map_err(usage)?),
        None => None,
    };
    Ok(RunSettings {
        name,
        profile,
        duration_s,
        check_every_s,
        sample_every_s,
        detail_every_s,
        warmup_s,
        memory_threshold,
        memory_metric,
        fd_threshold,
        thread_threshold,
        max_failed_checks: args
            .max_failed_checks
            .or(file.max_failed_checks)
            .unwrap_or(0),
        timeout_s,
        confidence: 0.95,
        target,
        include_children: !(args.no_children || file.no_children.unwrap_or(false)),
        jvm_gc_before_check: args.jvm_gc_before_check || file.jvm_gc_before_check.unwrap_or(false),
        env: {
            let mut env: Vec<(String, String)> = file.env.unwrap_or_default().into_iter().collect();
            for kv in &args.env {
                let (k, v) = kv
                    .split_once('=')
                    .filter(|(k, _)| !k.is_empty())
                    .ok_or_else(|| usage(format!("--env: '{kv}' must be KEY=VALUE")))?;
                env.retain(|(old, _)| old != k);
                env.push((k.to_string(), v.to_string()));
            }
            env
        },
        target_output: args.target_output.clone().or(file.target_output),
        grace_s: 5.0,
        on_leak_timeout_s: match pick(&args.on_leak_timeout, &file.on_leak_timeout) {
            Some(s) => dur("on-leak-timeout", &s)?,
            None => default_hook_timeout(),
        },
        on_leak: pick(&args.on_leak, &file.on_leak),
        // A heap profile to read is a request for attribution: `--pprof` alone is enough.
        attribute: args.attribute || file.attribute.unwrap_or(false) || pprof.is_some(),
        pprof,
        attribute_timeout_s: match pick(&args.attribute_timeout, &file.attribute_timeout) {
            Some(s) => match dur("attribute-timeout", &s)? {
                d if d >= 1.0 => d,
                _ => return Err(usage("--attribute-timeout must be at least 1s")),
            },
            None => crate::settings::default_attribute_timeout(),
        },
        target_metrics: match pick(&args.target_metrics, &file.target_metrics) {
            Some(u) => {
                crate::probe::scrape::validate_url(&u).map_err(usage)?;
                Some(u)
            }
            None => None,
        },
        target_gauges: {
            let mut named = file.target_gauges.clone().unwrap_or_default();
            named.extend(args.target_gauge.iter().cloned());
            if pick(&args.target_metrics, &file.target_metrics).is_none() {
                if !named.is_empty() {
                    return Err(usage(
                        "--target-gauge needs --target-metrics URL (the endpoint to read it from)",
                    ));
                }
                Vec::new()
            } else {
                let t = crate::gauges::KindThresholds {
                    memory: memory_threshold,
                    fds: fd_threshold,
                    threads: thread_threshold,
                };
                crate::gauges::specs(&named, t).map_err(usage)?
            }
        },
        metrics_addr: pick(&args.metrics_addr, &file.metrics_addr),
        notify: {
            let mut v = file.notify.clone().unwrap_or_default();
            v.extend(args.notify.iter().cloned());
            for u in &v {
                if !(u.starts_with("http://") || u.starts_with("https://")) {
                    return Err(usage(format!(
                        "--notify: '{}' is not an http(s) URL",
                        crate::publish::notify::redact_url(u)
                    )));
                }
            }
            v
        },
        notify_format: match pick(&args.notify_format, &file.notify_format).as_deref() {
            None | Some("json") => None,
            Some("slack") => Some(NotifyFormat::Slack),
            Some(other) => {
                return Err(usage(format!(
                    "--notify-format: '{other}' is not json or slack"
                )));
            }
        },
        grafana_url: match pick(&args.grafana_url, &file.grafana_url) {
            Some(u) if !(u.starts_with("http://") || u.starts_with("https://")) => {
                return Err(usage(format!(
                    "--grafana-url: '{}' is not an http(s) URL",
                    crate::publish::notify::redact_url(&u)
                )));
            }
            other => other,
        },
        grafana_token_file: args
            .grafana_token_file
            .clone()
            .or(file.grafana_token_file.clone()),
        ca_file: match args.ca_file.as_ref().or(file.ca_file.as_ref()) {
            Some(p) => {
                // Fail now, not at the first notification hours later; absolute, so a
                // `resume` from another directory reads the same file.
                crate::publish::tls::CaBundle::load(p)?;
                Some(std::path::absolute(p).unwrap_or_else(|_| p.clone()))
            }
            None => None,
        },
        remote_write: {
            let mut v = file.remote_write.clone().unwrap_or_default();
            v.extend(args.remote_write.iter().cloned());
            for u in &v {
                remote_write_url(u)?;
            }
            v
        },
        labels: {
            let mut labels: Vec<(String, String)> = file
                .labels
                .clone()
                .unwrap_or_default()
                .into_iter()
                .collect();
            for kv in &args.label {
                let (k, v) = kv
                    .split_once('=')
                    .ok_or_else(|| usage(format!("--label: '{kv}' must be KEY=VALUE")))?;
                labels.retain(|(old, _)| old != k);
                labels.push((k.to_string(), v.to_string()));
            }
            for (k, v) in &labels {
                crate::publish::pushed::label_name_ok(k)
                    .map_err(|why| usage(format!("--label: '{k}': {why}")))?;
                if v.is_empty() || v.len() > 1024 || v.contains('\n') {
                    return Err(usage(format!(
                        "--label: the value of '{k}' must be 1 to 1024 characters on one line"
                    )));
                }
            }
            labels
        },
        tag: match pick(&args.tag, &file.tag) {
            Some(t) if t.is_empty() || t.len() > 256 || t.contains('\n') => {
                return Err(usage("--tag must be 1 to 256 characters on one line"));
            }
            other => other,
        },
        remote_write_queue: match args.remote_write_queue.or(file.remote_write_queue) {
            Some(n) if !(100..=10_000_000).contains(&n) => {
                return Err(usage(format!(
                    "--remote-write-queue: '{n}' is outside 100 to 10000000 points"
                )));
            }
            other => other,
        },
        remote_write_token_file: secret_file(
            "remote-write-token-file",
            args.remote_write_token_file
                .as_ref()
                .or(file.remote_write_token_file.as_ref()),
        )?,
        remote_write_basic_auth_file: secret_file(
            "remote-write-basic-auth-file",
            args.remote_write_basic_auth_file
                .as_ref()
                .or(file.remote_write_basic_auth_file.as_ref()),
        )?,
        junit: ci_output("junit", args.junit.as_ref().or(file.junit.as_ref()))?,
        summary_md: ci_output(
            "summary-md",
            args.summary_md.as_ref().or(file.summary_md.as_ref()),
        )?,
        baseline: match &args.baseline {
            Some(p) => {
                // Fail now, not six hours from now.
                crate::files::load_baseline(p)?;
                Some(std::fs::canonicalize(p).unwrap_or_else(|_| p.clone()))
            }
            None => None,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(cmd: &[&str]) -> RunArgs {
        RunArgs {
            command: cmd.iter().map(|s| s.to_string()).collect(),
            ..RunArgs::default()
        }
    }

    #[test]
    fn profile_defaults_and_overrides() {
        let mut a = args(&["sleep", "1"]);
        a.name = Some("t1".into());
        a.profile = Some("quick".into());
        let s = resolve(&a).expect("valid");
        assert_eq!(
            (s.duration_s, s.check_every_s, s.sample_every_s),
            (3600.0, 60.0, 1.0)
        );
        assert_eq!(s.warmup_s, 360.0);
        a.memory_threshold = Some("512KiB/min".into());
        a.duration = Some("1h30m".into());
        let s = resolve(&a).expect("valid");
        assert_eq!(s.duration_s, 5400.0);
        assert!((s.memory_threshold - 0.5).abs() < 1e-12);
    }

    #[test]
    fn pprof_implies_attribution_and_names_the_heap_profile() {
        let mut a = args(&["./server"]);
        a.name = Some("go".into());
        let s = resolve(&a).expect("valid");
        assert!(!s.attribute && s.pprof.is_none());
        a.pprof = Some("http://127.0.0.1:6060".into());
        let s = resolve(&a).expect("valid");
        assert!(s.attribute, "--pprof alone asks for attribution");
        assert_eq!(
            s.pprof.as_deref(),
            Some("http://127.0.0.1:6060/debug/pprof/heap")
        );
        a.pprof = Some("6060".into());
        let e = resolve(&a).expect_err("not a URL");
        assert_eq!(
            crate::exit::Exit::of_error(&e),
            crate::exit::Exit::Usage,
            "{e}"
        );
    }

    #[test]
    fn bad_values_are_usage_errors() {
        let mut a = args(&["sleep", "1"]);
        a.profile = Some("turbo".into());
        assert!(resolve(&a).is_err());
        let mut a = args(&[]);
        a.name = Some("x".into());
        assert!(resolve(&a).is_err(), "no target");
        let mut a = args(&["sleep", "1"]);
        a.name = Some("../etc".into());
        assert!(resolve(&a).is_err(), "name with a slash");
        let mut a = args(&["sleep", "1"]);
        a.check_every = Some("1s".into());
        a.sample_every = Some("5s".into());
        assert!(resolve(&a).is_err());
    }

    #[test]
    fn config_file_errors_name_key_and_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("c.toml");
        std::fs::write(&p, "name = \"x\"\nprofile = \"quick\"\nbogus_key = 1\n").expect("write");
        let e = read_file_config(&p).expect_err("unknown key").to_string();
        assert!(e.contains("line 3") && e.contains("bogus_key"), "{e}");
        std::fs::write(&p, "max_failed_checks = \"two\"\n").expect("write");
        let e = read_file_config(&p).expect_err("wrong type").to_string();
        assert!(e.contains("line 1"), "{e}");
    }
}
