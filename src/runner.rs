//! The soak-test loop: tick, sample, store, check, status, stop. One run at a time per name
//! (an flock that the kernel releases when its holder dies, so a crash never leaves it stale).

use crate::analyze::{self, MetricResult, Settings};
use crate::config::{RunSettings, TargetSpec};
use crate::detect::Verdict;
use crate::diagnose::fds::{Inventory, Tracker};
use crate::diagnose::maps::MapsSummary;
use crate::diagnose::{Diagnosis, Runtime};
use crate::exit::{Exit, usage};
use crate::probe::{Metric, Sample};
use crate::publish::write_atomic;
use crate::render::report::{self as rr, StatusDoc};
use crate::store::{RunRow, Store};
use crate::target::{Target, TargetExit, TargetInfo, read_pid_file};
use anyhow::{Context, Result};
use serde_json::{Value, json};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Level change against a `--baseline` that counts as a regression, percent.
pub const BASELINE_TOLERANCE_PCT: f64 = 10.0;

/// Consecutive failed sample writes that end a run.
const MAX_WRITE_FAILURES: u32 = 10;

/// How often the process tree is searched for new descendants.
pub const TREE_REFRESH: Duration = Duration::from_secs(5);

/// Wall-clock now, Unix seconds (stored and shown; intervals use `Instant`).
pub fn now_unix() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Where a run's files live.
pub fn run_dir(state: &Path, name: &str) -> PathBuf {
    state.join("runs").join(name)
}

/// Path of the live status file of a run.
pub fn status_path(state: &Path, name: &str) -> PathBuf {
    run_dir(state, name).join("status.json")
}

/// The exclusive lock of a live run.
pub struct RunLock {
    _lock: nix::fcntl::Flock<std::fs::File>,
}

/// Takes the run's lock, or says who holds it.
pub fn lock_run(state: &Path, name: &str) -> Result<RunLock> {
    use std::io::{Seek, Write};
    use std::os::unix::fs::OpenOptionsExt;
    let dir = run_dir(state, name);
    crate::store::private_dir(&dir)?;
    let path = dir.join("lock");
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock) {
        Ok(mut lock) => {
            let _ = lock.set_len(0);
            let _ = lock.rewind();
            let _ = writeln!(lock, "{}", std::process::id());
            Ok(RunLock { _lock: lock })
        }
        Err((_, _)) => {
            let holder = std::fs::read_to_string(&path).unwrap_or_default();
            Err(usage(format!(
                "run '{name}' is already live (sentinel PID {}); pick another --name",
                holder.trim()
            )))
        }
    }
}

/// Whether a sentinel currently holds the run's lock.
pub fn run_is_live(state: &Path, name: &str) -> bool {
    let path = run_dir(state, name).join("lock");
    let Ok(file) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
    else {
        return false;
    };
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockSharedNonblock).is_err()
}

/// The metrics a check judges (the gate): memory, FDs, threads.
pub fn gate_metrics(target: &TargetInfo, samples: &[Sample]) -> Vec<Metric> {
    let memory = if target.kind == "cgroup"
        && samples
            .iter()
            .any(|s| s.get(Metric::CgroupMemoryBytes).is_some())
    {
        Metric::CgroupMemoryBytes
    } else {
        Metric::RssBytes
    };
    vec![memory, Metric::Fds, Metric::Threads]
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

/// Why the loop ended.
#[derive(Debug, Clone, PartialEq)]
enum End {
    Passed,
    Leak(String),
    Inconclusive(String),
    TargetExited(TargetExit),
    Interrupted(String),
}

/// Messages to the loop from other threads.
enum Wake {
    Signal(i32),
}

struct Live<'a> {
    state: &'a Path,
    store: Store,
    run_id: i64,
    s: RunSettings,
    target: Target,
    started_at: f64,
    samples: Vec<Sample>,
    checks_total: usize,
    checks_failed: usize,
    last_failed_t: Option<f64>,
    last_check_t: Option<f64>,
    last_results: Vec<MetricResult>,
    view: View,
    warned: std::collections::HashSet<String>,
    /// Signal forwarded to a spawned target when the run stops (SIGTERM unless one was received).
    stop_signal: nix::sys::signal::Signal,
    /// First-seen times of open descriptors.
    tracker: Tracker,
    /// The last FD inventory.
    last_inv: Inventory,
    /// Whether a maps snapshot after warm-up (the diagnosis baseline) exists.
    maps_baseline_taken: bool,
    /// When the last maps snapshot was taken, and what it cost.
    last_maps: Option<(Instant, Duration)>,
    /// Runtime of the target, once detected.
    runtime: Option<Runtime>,
    /// The Prometheus endpoint, when `--metrics-addr` is set.
    exporter: Option<crate::publish::metrics::Exporter>,
    /// Webhooks and Grafana, when configured.
    notifier: Option<crate::publish::notify::Notifier>,
    /// Consecutive samples the store refused.
    write_failures: u32,
}

/// Live terminal view (indicatif) or plain log lines.
enum View {
    Bar(indicatif::ProgressBar),
    Plain,
}

impl View {
    fn new(plain: bool, s: &RunSettings) -> View {
        if plain || !std::io::stdout().is_terminal() {
            return View::Plain;
        }
        let bar = indicatif::ProgressBar::new(s.duration_s.max(1.0) as u64);
        let style = indicatif::ProgressStyle::with_template(
            "{prefix:.bold} clean {bar:30.green/white} {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("█▉▊▋▌▍▎▏ ");
        bar.set_style(style);
        bar.set_prefix(s.name.clone());
        View::Bar(bar)
    }

    fn log(&self, line: &str) {
        let stamp = chrono::Local::now().format("%Y-%m-%dT%H:%M:%S%:z");
        match self {
            View::Bar(b) => b.println(format!("{stamp} {line}")),
            View::Plain => println!("{stamp} {line}"),
        }
    }

    fn progress(&self, streak: f64, msg: String) {
        if let View::Bar(b) = self {
            b.set_position(streak.max(0.0) as u64);
            b.set_message(msg);
        }
    }

    fn finish(&self) {
        if let View::Bar(b) = self {
            b.finish_and_clear();
        }
    }
}

fn fmt_value(m: Metric, v: f64) -> String {
    if m.name().ends_with("_bytes") {
        format!("{:.1} MiB", v / crate::units::MIB)
    } else {
        format!("{v:.0}")
    }
}

impl<'a> Live<'a> {
    /// A live run over what the store already holds (nothing for a new run).
    #[allow(clippy::too_many_arguments)]
    fn new(
        state: &'a Path,
        store: Store,
        run_id: i64,
        s: RunSettings,
        target: Target,
        started_at: f64,
        samples: Vec<Sample>,
        checks: &[crate::store::CheckRow],
        view: View,
    ) -> Live<'a> {
        Live {
            state,
            store,
            run_id,
            s,
            target,
            started_at,
            samples,
            checks_total: checks.len(),
            checks_failed: checks.iter().filter(|c| c.failed).count(),
            last_failed_t: checks.iter().filter(|c| c.failed).map(|c| c.t).next_back(),
            last_check_t: checks.last().map(|c| c.t),
            last_results: Vec::new(),
            view,
            warned: Default::default(),
            stop_signal: nix::sys::signal::Signal::SIGTERM,
            tracker: Tracker::default(),
            last_inv: Inventory::default(),
            maps_baseline_taken: false,
            last_maps: None,
            runtime: None,
            exporter: None,
            notifier: None,
            write_failures: 0,
        }
    }

    /// Starts the Prometheus endpoint and the notification worker the settings ask for.
    fn start_publishers(&mut self) -> Result<()> {
        use crate::publish::notify::{Notifier, Targets, grafana_token};
        if let Some(addr) = &self.s.metrics_addr {
            let e = crate::publish::metrics::Exporter::start(
                addr,
                &self.s.name,
                self.s.profile.name(),
            )?;
            self.view
                .log(&format!("metrics on http://{}/metrics", e.addr));
            self.exporter = Some(e);
        }
        let targets = Targets {
            webhooks: self.s.notify.clone(),
            format: self.s.notify_format,
            grafana_url: self.s.grafana_url.clone(),
            grafana_token: if self.s.grafana_url.is_some() {
                grafana_token(self.s.grafana_token_file.as_deref())?
            } else {
                None
            },
        };
        if targets.any() {
            self.notifier = Some(Notifier::start(targets));
        }
        Ok(())
    }

    /// Queues a notification (no-op without targets).
    fn notify(&self, event: &str, text: String, extra: Value) {
        if let Some(n) = &self.notifier {
            n.send(crate::publish::notify::Note {
                event: event.into(),
                run: self.s.name.clone(),
                profile: self.s.profile.name().into(),
                text,
                t: now_unix(),
                extra,
            });
        }
    }

    /// Records what the notification worker delivered (or failed to).
    fn drain_outcomes(&self) {
        let Some(n) = &self.notifier else { return };
        while let Ok(o) = n.outcomes.try_recv() {
            let kind = if o.ok { "notified" } else { "notify_failed" };
            self.event(kind, &format!("{} {}: {}", o.channel, o.event, o.detail));
        }
    }

    /// On resume: the open descriptors and snapshots recorded so far.
    fn restore_diagnosis_state(&mut self) -> Result<()> {
        let open = self.store.fd_state_at(self.run_id, f64::MAX)?;
        for (e, t) in &open {
            self.tracker.seed(e, *t);
        }
        self.last_inv = Inventory {
            entries: open.into_iter().map(|(e, _)| e).collect(),
            partial: false,
        };
        self.maps_baseline_taken = self
            .store
            .latest_snapshot(self.run_id, "maps")?
            .is_some_and(|(t, _)| t >= self.warmup_end());
        Ok(())
    }

    /// Takes an FD inventory: kinds into the sample, changes into the store.
    fn take_inventory(&mut self, s: &mut Sample) -> Result<()> {
        let inv = self.target.inventory();
        if !inv.entries.is_empty() || !inv.partial {
            let mut kinds = [0.0; 5];
            for e in &inv.entries {
                kinds[e.kind.bucket()] += 1.0;
            }
            let metrics = [
                Metric::FdsSocket,
                Metric::FdsPipe,
                Metric::FdsFile,
                Metric::FdsAnonInode,
                Metric::FdsOther,
            ];
            for (m, v) in metrics.into_iter().zip(kinds) {
                s.set(m, Some(v));
            }
        }
        let changes = self.tracker.update(s.t, &inv, &self.last_inv);
        self.store
            .append_fd_changes(self.run_id, s.t, &changes.opened, &changes.closed)?;
        let mut inv = inv;
        if inv.partial {
            // Keep what a partial read missed, so it is not reported as newly opened later.
            let read: std::collections::HashSet<i32> = inv.entries.iter().map(|e| e.pid).collect();
            let missed: Vec<_> = self
                .last_inv
                .entries
                .iter()
                .filter(|e| !read.contains(&e.pid))
                .cloned()
                .collect();
            inv.entries.extend(missed);
        }
        self.last_inv = inv;
        Ok(())
    }

    /// Takes a maps snapshot when one is due: the baseline right after warm-up, then every
    /// 10 detail intervals (and never more often than 100 × its own cost), and `force`d at the end.
    fn maybe_maps(&mut self, t: f64, force: bool) -> Result<()> {
        let after_warmup = t >= self.warmup_end();
        let due = force
            || (after_warmup && !self.maps_baseline_taken)
            || self.last_maps.is_none_or(|(at, cost)| {
                at.elapsed()
                    >= Duration::from_secs_f64(10.0 * self.s.detail_every_s).max(cost * 100)
            });
        if !due {
            return Ok(());
        }
        let t0 = Instant::now();
        let maps = self.target.maps(t);
        self.last_maps = Some((Instant::now(), t0.elapsed()));
        if maps.region_count == 0 {
            return Ok(());
        }
        self.store
            .append_snapshot(self.run_id, t, "maps", &serde_json::to_string(&maps)?)?;
        self.maps_baseline_taken |= after_warmup;
        if self.runtime.is_none() {
            if let Some(pid) = self
                .target
                .info
                .pid
                .or_else(|| self.target.pids().first().copied())
            {
                let rt = crate::diagnose::detect_runtime(pid, Some(&maps));
                self.runtime = Some(rt);
                self.store.append_snapshot(
                    self.run_id,
                    t,
                    "runtime",
                    &serde_json::to_string(&rt)?,
                )?;
            }
        }
        Ok(())
    }

    /// The diagnosis: baseline at the end of warm-up, current state now (read afresh when the
    /// target is still there).
    fn diagnosis(&mut self, now: f64, alive: bool, leaking: &[String]) -> Result<Diagnosis> {
        if alive {
            let mut scratch = Sample::at(now);
            self.take_inventory(&mut scratch)?;
            self.maybe_maps(now, true)?;
        }
        let parse = |j: Option<(f64, String)>| {
            j.and_then(|(_, s)| serde_json::from_str::<MapsSummary>(&s).ok())
        };
        let base =
            parse(
                self.store
                    .baseline_snapshot(self.run_id, "maps", self.warmup_end(), now)?,
            );
        let cur = parse(self.store.latest_snapshot(self.run_id, "maps")?);
        let base_t = base.as_ref().map_or(self.warmup_end(), |m| m.t);
        let fds_before: Vec<_> = self
            .store
            .fd_state_at(self.run_id, base_t)?
            .into_iter()
            .map(|(e, _)| e)
            .collect();
        let fds_now = self.store.fd_state_at(self.run_id, f64::MAX)?;
        let thread_at = |t: f64| {
            self.samples
                .iter()
                .filter(|s| s.t >= t)
                .find_map(|s| s.get(Metric::Threads))
        };
        let threads = match (
            thread_at(base_t),
            self.samples
                .iter()
                .rev()
                .find_map(|s| s.get(Metric::Threads)),
        ) {
            (Some(a), Some(b)) => Some((a, b)),
            _ => None,
        };
        if self.runtime.is_none() {
            self.runtime = self
                .store
                .latest_snapshot(self.run_id, "runtime")?
                .and_then(|(_, j)| serde_json::from_str(&j).ok());
        }
        Ok(crate::diagnose::diagnose(&crate::diagnose::Input {
            fds_before: &fds_before,
            fds_now: &fds_now,
            maps_before: base.as_ref(),
            maps_now: cur.as_ref(),
            threads,
            runtime: self.runtime,
            leaking,
            now,
            baseline_t: Some(base_t),
            partial: self.last_inv.partial || cur.as_ref().is_some_and(|m| m.partial),
        }))
    }

    /// Runs the loop to its end and finishes the run; losing the store ends the run, but the
    /// target is still stopped and the reason recorded.
    fn drive(mut self, wake: &mpsc::Receiver<Wake>) -> Result<Exit> {
        let end = match self.run_loop(wake) {
            Ok(end) => end,
            Err(e) => {
                self.event("error", &format!("{e:#}"));
                End::Interrupted(format!("sentinel error: {e:#}"))
            }
        };
        self.finish(end)
    }

    fn event(&self, kind: &str, detail: &str) {
        if let Err(e) = self
            .store
            .append_event(self.run_id, now_unix(), kind, detail)
        {
            self.view
                .log(&format!("warning: could not record event {kind}: {e:#}"));
        }
    }

    fn warmup_end(&self) -> f64 {
        self.started_at + self.s.warmup_s
    }

    fn streak(&self, now: f64) -> f64 {
        now - self
            .last_failed_t
            .unwrap_or(self.warmup_end())
            .max(self.warmup_end())
    }

    fn status_doc(&self, now: f64, status: &str) -> StatusDoc {
        let gate = gate_metrics(&self.target.info, &self.samples);
        let warming = now < self.warmup_end() || self.last_check_t.is_none();
        let find = |m: Metric| self.last_results.iter().find(|r| r.name == m.name());
        StatusDoc {
            run_name: self.s.name.clone(),
            status: status.into(),
            start_time: rr::rfc3339(self.started_at),
            target_hours: self.s.duration_s / 3600.0,
            clean_hours_count: (self.streak(now).max(0.0) / 3600.0 * 1e6).round() / 1e6,
            last_check: self.last_check_t.map(rr::rfc3339),
            memory_trend: rr::trend_word(find(gate[0]), warming).into(),
            fd_trend: rr::trend_word(find(Metric::Fds), warming).into(),
            thread_trend: rr::trend_word(find(Metric::Threads), warming).into(),
            completion_time: None,
            passed: None,
            final_clean_hours: None,
            report_file: None,
            failure_reason: None,
            schema_version: rr::SCHEMA_VERSION,
            profile: self.s.profile.name().into(),
            pid: self.target.info.pid,
            sentinel_pid: std::process::id(),
            elapsed_s: now - self.started_at,
            warmup_s: self.s.warmup_s,
            checks_total: self.checks_total,
            checks_failed: self.checks_failed,
            max_failed_checks: self.s.max_failed_checks,
            samples: self.samples.len(),
            current: rr::current_values(&self.samples),
            metrics: rr::metrics_json(&self.last_results),
        }
    }

    fn write_status(&self, doc: &StatusDoc) {
        let path = status_path(self.state, &self.s.name);
        let bytes = serde_json::to_vec_pretty(doc).unwrap_or_default();
        if let Err(e) = write_atomic(&path, &bytes) {
            self.view.log(&format!(
                "warning: could not write {}: {e:#}",
                path.display()
            ));
        }
    }

    fn warn_once(&mut self, key: &str, msg: &str) {
        if self.warned.insert(key.to_string()) {
            self.view.log(&format!("warning: {msg}"));
            self.event("warning", msg);
        }
    }

    /// One check: judge the gate metrics on all data after warm-up.
    fn check(&mut self, now: f64) -> Result<Option<End>> {
        let gate = gate_metrics(&self.target.info, &self.samples);
        let results = judge_run(&self.samples, self.started_at, &self.s, &gate);
        let failed = results.iter().any(|r| r.judgement.verdict == Verdict::Leak);
        let detail: serde_json::Map<String, Value> = results
            .iter()
            .map(|r| {
                (
                    r.name.clone(),
                    json!({
                        "verdict": r.judgement.verdict.as_str(),
                        "slope_per_min": r.judgement.slope_per_min,
                        "ci_low": crate::render::analysis::judgement_json(&r.judgement, "")["ci_low"],
                        "ci_high": crate::render::analysis::judgement_json(&r.judgement, "")["ci_high"],
                    }),
                )
            })
            .collect();
        self.store
            .append_check(self.run_id, now, failed, &Value::Object(detail).to_string())?;
        self.checks_total += 1;
        self.last_check_t = Some(now);
        self.last_results = results;
        let words: Vec<String> = self
            .last_results
            .iter()
            .map(|r| {
                format!(
                    "{} {} {:.3} {}",
                    r.name,
                    r.judgement.verdict,
                    r.judgement.slope_per_min,
                    r.kind.rate_unit()
                )
            })
            .collect();
        if failed {
            self.checks_failed += 1;
            self.last_failed_t = Some(now);
            let leaks: Vec<String> = self
                .last_results
                .iter()
                .filter(|r| r.judgement.verdict == Verdict::Leak)
                .map(|r| format!("{}: {}", r.name, r.judgement.reason))
                .collect();
            self.event("check_failed", &leaks.join("; "));
            self.notify(
                "check_failed",
                format!("check {} failed: {}", self.checks_total, leaks.join("; ")),
                json!({"check": self.checks_total, "failed_checks": self.checks_failed}),
            );
            self.view.log(&format!(
                "{} check {} FAILED ({} of {} tolerated): {}",
                self.s.name,
                self.checks_total,
                self.checks_failed,
                self.s.max_failed_checks,
                words.join(", ")
            ));
            if self.checks_failed as u32 > self.s.max_failed_checks {
                return Ok(Some(End::Leak(format!(
                    "leak detected: {}",
                    leaks.join("; ")
                ))));
            }
        } else {
            self.view.log(&format!(
                "{} check {} ok, clean {} of {}: {}",
                self.s.name,
                self.checks_total,
                crate::detect::human_secs(self.streak(now)),
                crate::detect::human_secs(self.s.duration_s),
                words.join(", ")
            ));
        }
        if let Some(e) = &self.exporter {
            e.check(
                &self.last_results,
                failed,
                self.streak(now),
                self.s.duration_s,
            );
        }
        self.write_status(&self.status_doc(now, "running"));
        if self.streak(now) + 1e-6 >= self.s.duration_s {
            let overall = Verdict::combine(self.last_results.iter().map(|r| r.judgement.verdict));
            return Ok(Some(match overall {
                Verdict::Clean => End::Passed,
                _ => {
                    let why: Vec<String> = self
                        .last_results
                        .iter()
                        .filter(|r| r.judgement.verdict != Verdict::Clean)
                        .map(|r| {
                            let sens = rr::sensitivity_line(r);
                            if sens.is_empty() {
                                format!("{}: {}", r.name, r.judgement.reason)
                            } else {
                                format!("{}: {} ({sens})", r.name, r.judgement.reason)
                            }
                        })
                        .collect();
                    End::Inconclusive(format!(
                        "inconclusive after {}: {}",
                        crate::detect::human_secs(self.s.duration_s),
                        why.join("; ")
                    ))
                }
            }));
        }
        Ok(None)
    }

    /// Takes one sample (and, when `detail`, the FD inventory and maybe a maps snapshot).
    /// Returns the time the maps snapshot took, if one was taken.
    fn take_sample(&mut self, detail: bool) -> Result<Duration> {
        let (mut s, err) = self.target.sample(now_unix(), detail);
        if let Some(e) = err {
            self.warn_once(&format!("{e}"), &format!("{e}"));
        }
        let mut maps_cost = Duration::ZERO;
        if detail {
            self.take_inventory(&mut s)?;
            let t0 = Instant::now();
            self.maybe_maps(s.t, false)?;
            maps_cost = t0.elapsed();
        }
        // A write that fails once (a busy database shared with another run, a full disk for a
        // moment) costs that sample and a warning; only a store that keeps failing ends the run.
        match self.store.append_sample(self.run_id, &s) {
            Ok(()) => self.write_failures = 0,
            Err(e) => {
                self.write_failures += 1;
                self.view
                    .log(&format!("warning: sample not recorded: {e:#}"));
                if self.write_failures >= MAX_WRITE_FAILURES {
                    return Err(e.context(format!(
                        "{MAX_WRITE_FAILURES} samples in a row could not be recorded"
                    )));
                }
            }
        }
        if let Some(e) = &self.exporter {
            e.sample(&s);
        }
        self.drain_outcomes();
        let msg: Vec<String> = gate_metrics(&self.target.info, &self.samples)
            .into_iter()
            .filter_map(|m| {
                s.get(m)
                    .map(|v| format!("{} {}", m.name(), fmt_value(m, v)))
            })
            .collect();
        let now = s.t;
        self.samples.push(s);
        let since = if now < self.warmup_end() {
            format!(
                "warming up {}",
                crate::detect::human_secs(self.warmup_end() - now)
            )
        } else {
            format!(
                "{} / {}",
                crate::detect::human_secs(self.streak(now)),
                crate::detect::human_secs(self.s.duration_s)
            )
        };
        self.view.progress(
            if now < self.warmup_end() {
                0.0
            } else {
                self.streak(now)
            },
            format!(
                "{since} · {} · checks {} ({} failed)",
                msg.join(" · "),
                self.checks_total,
                self.checks_failed
            ),
        );
        Ok(maps_cost)
    }

    /// The loop. Returns why it ended.
    fn run_loop(&mut self, wake: &mpsc::Receiver<Wake>) -> Result<End> {
        let sample_every = Duration::from_secs_f64(self.s.sample_every_s);
        let mut next_sample = Instant::now();
        // Checks fall on warm-up end + k × check interval (run time), so a resumed run keeps its
        // rhythm.
        let (warmup_end, every) = (self.warmup_end(), self.s.check_every_s);
        let next_check_after =
            |now: f64| warmup_end + (((now - warmup_end) / every).floor().max(0.0) + 1.0) * every;
        let mut next_check = next_check_after(now_unix());
        let mut last_detail: Option<Instant> = None;
        let mut detail_cost = Duration::ZERO;
        let mut last_status = Instant::now();
        let mut last_tree: Option<Instant> = None;
        loop {
            let now_i = Instant::now();
            if next_sample > now_i {
                match wake.recv_timeout(next_sample - now_i) {
                    Ok(Wake::Signal(sig)) => {
                        let signal = nix::sys::signal::Signal::try_from(sig)
                            .unwrap_or(nix::sys::signal::Signal::SIGTERM);
                        // Forward SIGINT/SIGTERM as received; SIGHUP becomes SIGTERM.
                        if signal != nix::sys::signal::Signal::SIGHUP {
                            self.stop_signal = signal;
                        }
                        let name = signal.as_str().to_string();
                        self.event("signal", &name);
                        return Ok(End::Interrupted(format!("interrupted by {name}")));
                    }
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    Err(mpsc::RecvTimeoutError::Disconnected) => {}
                }
                continue;
            }
            next_sample += sample_every;
            if next_sample < Instant::now() {
                // Fell behind (suspended host, slow disk): skip, do not burst.
                next_sample = Instant::now() + sample_every;
            }
            if let Some(exit) = self.target.poll_exit() {
                self.event("target_exit", &exit.description);
                return Ok(End::TargetExited(exit));
            }
            // New descendants are looked for every few seconds, not every sample: listing /proc
            // costs more than sampling a small tree (benches/sampler.rs), and a soak test
            // loses nothing by seeing a new worker a few seconds late.
            if last_tree.is_none_or(|t| t.elapsed() >= TREE_REFRESH.max(sample_every)) {
                self.target.refresh_tree();
                last_tree = Some(Instant::now());
            }
            // Expensive fields at the detail cadence, and never more than ~1 % of a core:
            // smaps_rollup walks every page, so a big process costs more.
            let detail_due = last_detail.is_none_or(|t| {
                let gap = Duration::from_secs_f64(self.s.detail_every_s).max(detail_cost * 100);
                t.elapsed() >= gap
            });
            let t0 = Instant::now();
            let maps_cost = self.take_sample(detail_due)?;
            if detail_due {
                last_detail = Some(t0);
                // The maps snapshot has its own pacing: leave it out of this one.
                detail_cost = t0.elapsed().saturating_sub(maps_cost);
            }
            let now = now_unix();
            if let Some(limit) = self.s.timeout_s {
                if now - self.started_at >= limit {
                    self.event(
                        "timeout",
                        &format!("{} reached", crate::detect::human_secs(limit)),
                    );
                    return Ok(End::Interrupted(format!(
                        "timed out after {}",
                        crate::detect::human_secs(limit)
                    )));
                }
            }
            if now >= next_check {
                if let Some(end) = self.check(now)? {
                    return Ok(end);
                }
                next_check = next_check_after(now);
                last_status = Instant::now();
            } else if last_status.elapsed() >= Duration::from_secs(10) {
                self.write_status(&self.status_doc(now, "running"));
                last_status = Instant::now();
            }
        }
    }

    /// Ends the run: stop a spawned target, final judgement, report, status, exit code.
    fn finish(&mut self, end: End) -> Result<Exit> {
        self.view.finish();
        let now = now_unix();
        let gate = gate_metrics(&self.target.info, &self.samples);
        let mut all: Vec<Metric> = gate.clone();
        all.extend(
            Metric::ALL
                .iter()
                .filter(|m| !gate.contains(m) && **m != Metric::Processes),
        );
        let results = judge_run(&self.samples, self.started_at, &self.s, &all);
        let gate_results: Vec<&MetricResult> = results
            .iter()
            .filter(|r| gate.iter().any(|g| g.name() == r.name))
            .collect();
        let verdict = Verdict::combine(gate_results.iter().map(|r| r.judgement.verdict));
        // Diagnosis and snapshot hook while the target still runs; then stop it.
        let alive = !matches!(end, End::TargetExited(_)) && !self.target.pids().is_empty();
        let leaking: Vec<String> = gate_results
            .iter()
            .filter(|r| r.judgement.verdict == Verdict::Leak)
            .map(|r| r.name.clone())
            .collect();
        let hook = match (&end, &self.s.on_leak) {
            (End::Leak(_), Some(cmd)) if alive => {
                let dir = run_dir(self.state, &self.s.name)
                    .join(format!("snapshot-{}", now.floor() as i64));
                self.view
                    .log(&format!("running the --on-leak hook in {}", dir.display()));
                let r = crate::diagnose::hook::run(
                    cmd,
                    self.target.info.pid,
                    &dir,
                    Duration::from_secs_f64(self.s.on_leak_timeout_s),
                );
                self.event(
                    "snapshot_hook",
                    &format!(
                        "{} → exit {:?}{}, {} file(s)",
                        r.command,
                        r.exit_code,
                        if r.timed_out { " (timed out)" } else { "" },
                        r.files.len()
                    ),
                );
                Some(r)
            }
            _ => None,
        };
        let diagnosis = match self.diagnosis(now, alive, &leaking) {
            Ok(d) => Some(d),
            Err(e) => {
                self.view.log(&format!("warning: diagnosis failed: {e:#}"));
                None
            }
        };
        let stop_exit = self
            .target
            .stop(Duration::from_secs_f64(self.s.grace_s), self.stop_signal);
        let baseline_cmp = match &self.s.baseline {
            Some(path) => match crate::baseline::load(path) {
                Ok(b) => {
                    let cur = crate::baseline::summarize(&self.s, &self.samples, self.started_at);
                    Some(json!({
                        "baseline_file": path,
                        "baseline_run": b.run_name,
                        "tolerance_pct": BASELINE_TOLERANCE_PCT,
                        "changes": crate::baseline::compare(&b, &cur, BASELINE_TOLERANCE_PCT),
                    }))
                }
                Err(e) => {
                    self.view.log(&format!("warning: {e:#}"));
                    None
                }
            },
            None => None,
        };
        let (status, exit, reason, passed) = match &end {
            End::Passed => ("completed", Exit::Passed, None, true),
            End::Leak(r) => ("failed", Exit::Leak, Some(r.clone()), false),
            End::Inconclusive(r) => ("completed", Exit::Inconclusive, Some(r.clone()), false),
            End::TargetExited(e) => (
                "failed",
                Exit::TargetExited,
                Some(format!(
                    "{}: a soak test cannot pass without its target",
                    e.description
                )),
                false,
            ),
            End::Interrupted(r) => ("interrupted", Exit::Interrupted, Some(r.clone()), false),
        };
        let clean_s = if passed || matches!(end, End::Inconclusive(_)) {
            self.streak(now).max(0.0)
        } else if matches!(end, End::Leak(_)) {
            0.0
        } else {
            self.streak(now).max(0.0)
        };
        self.event(
            "finish",
            &format!(
                "{status}, exit {}{}",
                exit.code(),
                reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            ),
        );
        let reports = self.state.join("reports");
        let report_path = reports.join(format!(
            "leak_sentinel_{}_{}.json",
            self.s.name,
            now.floor() as i64
        ));
        let mut metrics = rr::metrics_json(&results);
        for (name, v) in metrics.iter_mut() {
            if let Some(o) = v.as_object_mut() {
                o.insert("gate".into(), json!(gate.iter().any(|g| g.name() == name)));
            }
        }
        let checks = self.store.checks(self.run_id)?;
        let events = self.store.events(self.run_id)?;
        let target_exit = match &end {
            End::TargetExited(e) => Some(e.clone()),
            _ => stop_exit,
        };
        let report = json!({
            "schema_version": rr::SCHEMA_VERSION,
            "run_name": self.s.name,
            "status": status,
            "passed": passed,
            "verdict": verdict.as_str(),
            "exit_code": exit.code(),
            "failure_reason": reason,
            "start_time": rr::rfc3339(self.started_at),
            "completion_time": rr::rfc3339(now),
            "elapsed_s": now - self.started_at,
            "target_hours": self.s.duration_s / 3600.0,
            "final_clean_hours": clean_s / 3600.0,
            "profile": self.s.profile.name(),
            "settings": self.s,
            "target": {
                "kind": self.target.info.kind,
                "command": self.target.info.command,
                "pid": self.target.info.pid,
                "cgroup": self.target.info.cgroup,
                "include_children": self.target.info.include_children,
                "exit": target_exit,
            },
            "samples": self.samples.len(),
            "sample_span_s": self.samples.last().map_or(0.0, |s| s.t - self.started_at),
            "metrics": metrics,
            "checks": {
                "total": checks.len(),
                "failed": checks.iter().filter(|c| c.failed).count(),
                "list": rr::checks_json(&checks),
            },
            "events": rr::events_json(&events),
            "diagnosis": diagnosis,
            "baseline_comparison": baseline_cmp,
            "snapshot_hook": hook,
            "report_file": report_path.display().to_string(),
            "status_file": status_path(self.state, &self.s.name).display().to_string(),
        });
        write_atomic(
            &report_path,
            serde_json::to_string_pretty(&report)?.as_bytes(),
        )?;
        self.store.finish_run(
            self.run_id,
            status,
            now,
            verdict.as_str(),
            exit.code(),
            reason.as_deref(),
            &report_path.display().to_string(),
        )?;
        self.last_results = gate_results.into_iter().cloned().collect();
        let mut doc = self.status_doc(now, status);
        doc.completion_time = Some(rr::rfc3339(now));
        doc.passed = Some(passed);
        doc.final_clean_hours = Some((clean_s / 3600.0 * 1e6).round() / 1e6);
        doc.report_file = Some(report_path.display().to_string());
        doc.failure_reason = reason;
        self.write_status(&doc);
        if let Some(e) = &self.exporter {
            e.set_state(status);
        }
        let event = match &end {
            End::TargetExited(_) => "target_exit",
            _ => status,
        };
        self.notify(
            if event == "completed" && !passed { "completed" } else { event },
            format!(
                "{} — {}{}",
                if passed { "passed" } else { status },
                verdict.as_str(),
                doc.failure_reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default()
            ),
            json!({"verdict": verdict.as_str(), "passed": passed, "exit_code": exit.code(), "report_file": report_path}),
        );
        if let Some(n) = &self.notifier {
            // Give the last notification a chance; a dead receiver costs at most this.
            if !n.flush(Duration::from_secs(20)) {
                self.view
                    .log("warning: notifications still pending at exit");
            }
        }
        self.drain_outcomes();
        print!("{}", rr::summary_text(&report));
        Ok(exit)
    }
}

fn signal_channel() -> Result<mpsc::Receiver<Wake>> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let (tx, rx) = mpsc::channel();
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])
        .context("installing signal handlers")?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                if tx.send(Wake::Signal(sig)).is_err() {
                    break;
                }
            }
        })
        .context("starting the signal thread")?;
    Ok(rx)
}

/// `run`: starts a new run.
pub fn run(state: &Path, s: RunSettings, plain: bool) -> Result<Exit> {
    let store = Store::open(state)?;
    let _lock = lock_run(state, &s.name)?;
    if let Some(old) = store.find_run(&s.name)? {
        if old.status == "running" || old.status == "interrupted" {
            return Err(usage(format!(
                "run '{}' exists and is {} (its sentinel is gone); continue it with 'leak-sentinel resume {}' or pick another --name",
                s.name, old.status, s.name
            )));
        }
        return Err(usage(format!(
            "run '{}' already exists ({}); pick another --name",
            s.name, old.status
        )));
    }
    let wake = signal_channel()?;
    let target = match &s.target {
        TargetSpec::Spawn(cmd) => Target::spawn(cmd, &s.env)?,
        TargetSpec::Pid(pid) => Target::attach(*pid, s.include_children, None)?,
        TargetSpec::PidFile(p) => {
            let pid = read_pid_file(p)?;
            let mut t = Target::attach(pid, s.include_children, None)?;
            t.info.kind = "pid_file".into();
            t.info.pid_file = Some(p.clone());
            t
        }
        TargetSpec::Cgroup(dir) => Target::cgroup(dir.clone())?,
    };
    let started_at = now_unix();
    let mut target = target;
    let run_id = match store.create_run(
        &s.name,
        &serde_json::to_string(&s)?,
        &serde_json::to_string(&target.info)?,
        started_at,
    ) {
        Ok(id) => id,
        Err(e) => {
            // Never leave a spawned target behind when the run cannot even be recorded.
            target.stop(
                Duration::from_secs_f64(s.grace_s),
                nix::sys::signal::Signal::SIGTERM,
            );
            return Err(e);
        }
    };
    let view = View::new(plain, &s);
    let mut live = Live::new(
        state,
        store,
        run_id,
        s,
        target,
        started_at,
        Vec::new(),
        &[],
        view,
    );
    if let Err(e) = live.start_publishers() {
        // Nothing ran yet: stop a spawned target, forget the run, report the bad setting.
        live.target
            .stop(Duration::from_secs(1), nix::sys::signal::Signal::SIGTERM);
        let _ = live.store.delete_run(live.run_id);
        return Err(e);
    }
    live.event("start", &serde_json::to_string(&live.target.info)?);
    live.notify(
        "start",
        format!(
            "started: {} (profile {}, pass after {} clean)",
            live.target.info.command.join(" "),
            live.s.profile.name(),
            crate::detect::human_secs(live.s.duration_s)
        ),
        json!({"pid": live.target.info.pid, "target_hours": live.s.duration_s / 3600.0}),
    );
    live.view.log(&format!(
        "{} started: {} (PID {}), profile {}, pass after {} clean (warm-up {}, check every {}, sample every {}); status {}",
        live.s.name,
        if live.target.info.command.is_empty() { live.target.info.kind.clone() } else { live.target.info.command.join(" ") },
        live.target.info.pid.map_or("-".into(), |p| p.to_string()),
        live.s.profile.name(),
        crate::detect::human_secs(live.s.duration_s),
        crate::detect::human_secs(live.s.warmup_s),
        crate::detect::human_secs(live.s.check_every_s),
        crate::detect::human_secs(live.s.sample_every_s),
        status_path(state, &live.s.name).display()
    ));
    for w in live.target.access_warnings() {
        live.warn_once(&w.clone(), &w);
    }
    live.write_status(&live.status_doc(started_at, "running"));
    live.drive(&wake)
}

/// `resume NAME`: continues a run whose sentinel was killed or interrupted.
pub fn resume(state: &Path, name: &str, plain: bool) -> Result<Exit> {
    let store = Store::open(state)?;
    let row: RunRow = store
        .find_run(name)?
        .ok_or_else(|| usage(format!("no run named '{name}'")))?;
    let _lock = lock_run(state, name)?;
    let row = store.find_run(name)?.unwrap_or(row);
    if row.status != "running" && row.status != "interrupted" {
        return Err(usage(format!(
            "run '{name}' has already finished ({}); nothing to resume",
            row.status
        )));
    }
    let s: RunSettings =
        serde_json::from_str(&row.settings).context("reading the run's settings")?;
    let info: TargetInfo = serde_json::from_str(&row.target).context("reading the run's target")?;
    let wake = signal_channel()?;
    let now = now_unix();
    let samples = store.samples(row.id)?;
    let checks = store.checks(row.id)?;
    let last_t = samples.last().map_or(row.started_at, |x| x.t);
    store.set_status(row.id, "running")?;
    let attached = match info.kind.as_str() {
        "cgroup" => info
            .cgroup
            .clone()
            .ok_or_else(|| anyhow::anyhow!("stored cgroup target has no directory"))
            .and_then(Target::cgroup),
        _ => match info.pid {
            Some(pid) => Target::attach(pid, info.include_children, info.starttime),
            None => Err(anyhow::anyhow!("stored target has no PID")),
        },
    };
    let view = View::new(plain, &s);
    let gap = format!(
        "no samples from {} to {} ({})",
        rr::rfc3339(last_t),
        rr::rfc3339(now),
        crate::detect::human_secs(now - last_t)
    );
    store.append_event(row.id, now, "resume", &gap)?;
    let (target, gone) = match attached {
        Ok(mut t) => {
            t.info = TargetInfo {
                command: info.command.clone(),
                ..t.info
            };
            t.info.kind = info.kind.clone();
            t.info.pid_file = info.pid_file.clone();
            if info.kind == "spawn" {
                // It was ours: stop it at the end as if we had spawned it.
                t.adopt_process_group();
            }
            t.refresh_tree();
            (t, None)
        }
        // The target did not survive the sentinel's absence: the run fails, clearly.
        Err(e) => (
            Target::detached(info),
            Some(TargetExit {
                code: None,
                signal: None,
                description: format!("the target is gone: {}", crate::app::one_line(&e)),
            }),
        ),
    };
    let mut live = Live::new(
        state,
        store,
        row.id,
        s,
        target,
        row.started_at,
        samples,
        &checks,
        view,
    );
    if let Some(exit) = gone {
        live.event("target_exit", &exit.description);
        return live.finish(End::TargetExited(exit));
    }
    live.restore_diagnosis_state()?;
    live.start_publishers()?;
    live.notify("resume", format!("resumed after a gap: {gap}"), json!({}));
    live.view.log(&format!("{name} resumed: {gap}"));
    live.drive(&wake)
}
