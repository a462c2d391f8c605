//! The live loop of a run: the [`Session`] that holds each seam's state, the loop that waits on
//! the clock and samples, checks or refreshes the status, and how a run ends.

use super::diagnosis::DiagnosisTracker;
use super::publishers::Publishers;
use super::ticker::Ticker;
use super::view::View;
use crate::clock::{Clock, Wake};
use crate::gate::{CheckGate, Outcome};
use crate::sample::Sample;
use crate::settings::RunSettings;
use crate::store::Store;
use crate::target::{Target, TargetExit};
use crate::thinned::Thinned;
use anyhow::Result;
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

/// Why the loop ended.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum End {
    /// The check gate decided (passed, leak, inconclusive).
    Gate(Outcome),
    /// The target exited or crashed.
    TargetExited(TargetExit),
    /// A signal, the timeout or a sentinel error.
    Interrupted(String),
}

impl End {
    /// The end as the `ending` event records it (JSON) when finishing starts, so that a resume
    /// after a kill -9 while finishing completes the same end.
    pub(super) fn to_json(&self) -> serde_json::Value {
        use serde_json::json;
        match self {
            End::Gate(Outcome::Passed) => json!({"end": "passed"}),
            End::Gate(Outcome::Leak(r)) => json!({"end": "leak", "reason": r}),
            End::Gate(Outcome::Inconclusive(r)) => json!({"end": "inconclusive", "reason": r}),
            End::TargetExited(e) => json!({"end": "target_exited", "target_exit": e}),
            End::Interrupted(r) => json!({"end": "interrupted", "reason": r}),
        }
    }

    /// The end an `ending` event recorded (`None` when it is not one).
    pub(super) fn from_json(v: &serde_json::Value) -> Option<End> {
        let reason = || v["reason"].as_str().map(String::from);
        Some(match v["end"].as_str()? {
            "passed" => End::Gate(Outcome::Passed),
            "leak" => End::Gate(Outcome::Leak(reason()?)),
            "inconclusive" => End::Gate(Outcome::Inconclusive(reason()?)),
            "target_exited" => {
                End::TargetExited(serde_json::from_value(v["target_exit"].clone()).ok()?)
            }
            "interrupted" => End::Interrupted(reason()?),
            _ => return None,
        })
    }

    /// The end a sentinel of this run was finishing when it died: the last `ending` event, when
    /// no `finish` (the end recorded), `start` or `resume` came after it.
    pub(super) fn unfinished(events: &[crate::store::EventRow]) -> Option<End> {
        use crate::store::EventKind as K;
        let last = events.iter().rev().find(|e| {
            matches!(
                e.kind,
                K::Start | K::Resume | K::Ending | K::Finish | K::WriteFailed
            )
        })?;
        (last.kind == K::Ending)
            .then(|| serde_json::from_str(&last.detail).ok())
            .flatten()
            .and_then(|v| End::from_json(&v))
    }
}

/// The samples a session keeps in memory, in room fixed when it starts: the last few, how many
/// there were, which metrics have been read at all, and the series its checks judge — every
/// sample and gauge reading thinned to at most [`crate::thinned::CAP`] points, so a check
/// reads nothing back and costs the same at any length of the run.
#[derive(Debug)]
pub(super) struct Recent {
    /// The last [`Recent::KEEP`] samples, oldest first.
    pub(super) last: Vec<Sample>,
    /// Samples recorded so far (this run, all sessions).
    pub(super) count: usize,
    /// How many samples had a reading of each metric (what decides the gate metrics).
    pub(super) readings: crate::sample::Readings,
    /// Every sample, thinned: what the checks and the end judge.
    pub(super) judged: Thinned<Sample>,
    /// Each target gauge's readings (column, series), thinned, in the settings' order.
    pub(super) gauges: Vec<(String, Thinned<(f64, f64)>)>,
}

impl Recent {
    const KEEP: usize = 16;

    /// Empty, for a run whose target gauges have these columns.
    pub(super) fn new(gauge_columns: impl IntoIterator<Item = String>) -> Recent {
        Recent {
            last: Vec::with_capacity(Self::KEEP + 1),
            count: 0,
            readings: Default::default(),
            judged: Thinned::new(Sample::at(f64::NAN)),
            gauges: gauge_columns
                .into_iter()
                .map(|c| (c, Thinned::new((f64::NAN, f64::NAN))))
                .collect(),
        }
    }

    /// Adds a sample.
    pub(super) fn push(&mut self, s: Sample) {
        self.readings.push(&s);
        self.count += 1;
        self.judged.push(s.clone());
        self.last.push(s);
        if self.last.len() > Self::KEEP {
            self.last.remove(0);
        }
    }

    /// Adds the target's gauges read at `t` (`(column, value)`).
    pub(super) fn push_gauges(&mut self, t: f64, read: &[(String, f64)]) {
        for (column, v) in read {
            if let Some((_, series)) = self.gauges.iter_mut().find(|(c, _)| c == column) {
                series.push((t, *v));
            }
        }
    }

    /// The thinned gauge series, as the gate judges them.
    pub(super) fn gauge_series(&self) -> Vec<crate::gauges::Series> {
        self.gauges
            .iter()
            .map(|(column, th)| crate::gauges::Series {
                column: column.clone(),
                t: th.points().iter().map(|p| p.0).collect(),
                v: th.points().iter().map(|p| p.1).collect(),
            })
            .collect()
    }
}

/// One live run: what it measures, where it records, and the state of each seam.
pub(super) struct Session<'a, C: Clock> {
    pub(super) state: &'a Path,
    pub(super) clock: C,
    pub(super) store: Store,
    pub(super) run_id: i64,
    pub(super) s: RunSettings,
    pub(super) target: Target,
    pub(super) started_at: f64,
    /// The last few samples (current values, the live view) and the thinned series the checks
    /// and the end judge, in memory fixed at the start: nothing grows with the run.
    pub(super) recent: Recent,
    pub(super) gate: CheckGate,
    /// The gate metrics' results of the last check.
    pub(super) last_results: Vec<crate::analyze::MetricResult>,
    /// The last check's state and words (`gate::check_words` of its stored row).
    pub(super) last_check_words: Option<(crate::gate::CheckState, String)>,
    pub(super) diag: DiagnosisTracker,
    /// Attribution snapshots (`--attribute`).
    pub(super) attrib: super::attribution_state::AttributionTracker,
    pub(super) publishers: Publishers,
    pub(super) view: View,
    pub(super) warned: std::collections::HashSet<String>,
    /// Signal forwarded to a spawned target when the run stops (SIGTERM unless one was received).
    pub(super) stop_signal: nix::sys::signal::Signal,
    /// Consecutive samples the store refused.
    pub(super) write_failures: u32,
    /// Room kept to record a full disk (none when it could not be taken).
    pub(super) reserve: Option<crate::rundir::Reserve>,
    /// Time stamps are `anchor.0` (wall time when the session started, Unix seconds) plus the
    /// monotonic time since `anchor.1`: a wall-clock step changes nothing, and they never go
    /// backwards (a resume anchors after the last stored sample).
    pub(super) anchor: (f64, std::time::Duration),
    /// Wall clock minus time stamps when last looked at (a step shows as a change).
    pub(super) wall_offset: f64,
    /// Awake time at the last sample (tells a suspend from a stalled sentinel).
    pub(super) last_awake: std::time::Duration,
    /// Whether the target was running at the last sample.
    pub(super) was_running: bool,
    /// The next gap ends the sentinel's own absence (set on resume).
    pub(super) resumed: bool,
    /// The thread reading the target's own metrics endpoint (`--target-metrics`).
    pub(super) scraper: Option<crate::probe::scrape::Scraper>,
    /// The target's gauges as last read (`(column, value)`), for the status file.
    pub(super) last_gauges: Vec<(String, f64)>,
}

impl<C: Clock> Session<'_, C> {
    /// Runs the loop to its end and finishes the run. A store that cannot be written any more
    /// (disk full, …) stops the run resumable, its target left running; any other error of the
    /// sentinel ends the run, the target stopped and the reason recorded.
    pub(super) fn drive(mut self, wake: &mpsc::Receiver<Wake>) -> Result<crate::exit::Exit> {
        let end = match self.run_loop(wake) {
            Ok(end) => end,
            Err(e) => {
                if let Some(kind) = crate::store::write_failure(&e) {
                    return Ok(self.stop_on_write_failure(kind, &e));
                }
                self.event(crate::store::EventKind::Error, &format!("{e:#}"));
                End::Interrupted(format!("sentinel error: {e:#}"))
            }
        };
        self.finish(end)
    }

    /// The loop: wait for the next sample (or a signal), sample, then check or refresh status.
    fn run_loop(&mut self, wake: &mpsc::Receiver<Wake>) -> Result<End> {
        let mut tick = Ticker::new(
            self.clock.mono(),
            self.s.sample_every_s,
            self.s.detail_every_s,
        );
        let mut next_check = self.gate.next_check_after(self.now(), self.s.check_every_s);
        loop {
            if let Some(left) = tick.until_sample(self.clock.mono()) {
                if let Some(Wake::Signal(sig)) = self.clock.wait(wake, left) {
                    return Ok(self.on_signal(sig));
                }
                continue;
            }
            tick.sampled(self.clock.mono());
            if let Some(exit) = self.target.poll_exit() {
                self.event(crate::store::EventKind::TargetExit, &exit.description);
                return Ok(End::TargetExited(exit));
            }
            if tick.tree_due(self.clock.mono(), self.target.walks_children()) {
                self.target.refresh_tree();
                for note in self.target.take_notes() {
                    self.warn_once(&note.clone(), &note);
                }
            }
            // A full GC asked for right before the sample a check judges: its live-set point is
            // in that sample.
            if self.s.jvm_gc_before_check && self.now() >= next_check {
                self.request_jvm_gc();
            }
            // The diagnosis baseline is taken right at warm-up end, whatever the detail cadence.
            let detail = tick.detail_due(self.clock.mono()) || self.diag.baseline_due(self.now());
            let t0 = self.clock.mono();
            let maps_cost = self.take_sample(detail)?;
            if detail {
                tick.detail_taken(
                    t0,
                    self.clock
                        .mono()
                        .saturating_sub(t0)
                        .saturating_sub(maps_cost),
                );
            }
            self.attribution_tick();
            let now = self.now();
            if let Some(limit) = self.s.timeout_s {
                if now - self.started_at >= limit {
                    let limit = crate::detect::human_secs(limit);
                    self.event(
                        crate::store::EventKind::Timeout,
                        &format!("{limit} reached"),
                    );
                    return Ok(End::Interrupted(format!("timed out after {limit}")));
                }
            }
            if now >= next_check {
                if let Some(end) = self.check(now)? {
                    return Ok(End::Gate(end));
                }
                next_check = self.gate.next_check_after(now, self.s.check_every_s);
                tick.status_written(self.clock.mono());
            } else if tick.status_due(self.clock.mono()) {
                self.write_status(&self.status_doc(now, crate::store::RunStatus::Running));
                tick.status_written(self.clock.mono());
            }
        }
    }

    /// Asks every JVM of the tree for a full collection (`GC.run` through the attach mechanism,
    /// at most 10 s each); a JVM that cannot be asked costs a warning, once (one still starting,
    /// not yet catching SIGQUIT, is left for the next check).
    fn request_jvm_gc(&mut self) {
        let pids = self.target.jvm_pids();
        let mut done = !pids.is_empty();
        for pid in pids {
            let asked = crate::probe::attach::jcmd(pid, "GC.run", Duration::from_secs(10));
            if let Err(e) = asked {
                done = false;
                // A JVM still starting is asked again at the next check.
                if matches!(e, crate::probe::attach::AttachError::NotReady(_)) {
                    continue;
                }
                let key = format!("jvm-gc-{pid}");
                self.warn_once(
                    &key,
                    &format!(
                        "--jvm-gc-before-check: {e}; its live set waits for its own collections"
                    ),
                );
            }
        }
        if done {
            self.target.jvm_full_gc_done();
        }
    }

    /// A signal stops the run: SIGINT/SIGTERM are forwarded to a spawned target as received,
    /// SIGHUP becomes SIGTERM.
    fn on_signal(&mut self, sig: i32) -> End {
        use nix::sys::signal::Signal;
        let signal = Signal::try_from(sig).unwrap_or(Signal::SIGTERM);
        if signal != Signal::SIGHUP {
            self.stop_signal = signal;
        }
        let name = signal.as_str().to_string();
        self.event(crate::store::EventKind::Signal, &name);
        End::Interrupted(format!("interrupted by {name}"))
    }

    /// Records an event (a failure to record costs a warning, not the run).
    pub(super) fn event(&self, kind: crate::store::EventKind, detail: &str) {
        if let Err(e) = self
            .store
            .append_event(self.run_id, self.now(), kind, detail)
        {
            self.view
                .log(&format!("warning: could not record event {kind}: {e:#}"));
        }
    }

    /// Records what the notification worker delivered (or failed to).
    pub(super) fn drain_outcomes(&self) {
        self.remote_news();
        for (kind, detail) in self.publishers.outcomes() {
            if kind == crate::store::EventKind::NotifyFailed {
                self.view
                    .log(&format!("warning: notification failed: {detail}"));
            }
            self.event(kind, &detail);
        }
    }

    /// Logs and records what changed with the remote-write endpoints.
    pub(super) fn remote_news(&self) {
        for msg in self.publishers.remote_news() {
            self.view.log(&format!("warning: {msg}"));
            self.event(crate::store::EventKind::Warning, &msg);
        }
    }

    /// Queues a notification stamped now.
    pub(super) fn notify(&self, event: &str, text: String, extra: serde_json::Value) {
        self.publishers
            .notify(&self.s, event, text, extra, self.now());
    }

    pub(super) fn warn_once(&mut self, key: &str, msg: &str) {
        if self.warned.insert(key.to_string()) {
            self.view.log(&format!("warning: {msg}"));
            self.event(crate::store::EventKind::Warning, msg);
        }
    }

    /// Now, as stored: the anchor plus monotonic time (see `anchor`).
    pub(super) fn now(&self) -> f64 {
        self.anchor.0
            + self
                .clock
                .mono()
                .saturating_sub(self.anchor.1)
                .as_secs_f64()
    }

    pub(super) fn warmup_end(&self) -> f64 {
        self.started_at + self.s.warmup_s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ending_round_trips_through_its_event() {
        let ends = [
            End::Gate(Outcome::Passed),
            End::Gate(Outcome::Leak("fds grow".into())),
            End::Gate(Outcome::Inconclusive("too noisy".into())),
            End::TargetExited(TargetExit {
                code: Some(3),
                signal: None,
                description: "exited with code 3".into(),
            }),
            End::Interrupted("interrupted by SIGINT".into()),
        ];
        for end in ends {
            use crate::store::EventKind as K;
            let row = |kind: K, detail: String| crate::store::EventRow {
                t: 0.0,
                kind,
                detail,
            };
            let events = vec![
                row(K::Start, "{}".into()),
                row(K::Ending, end.to_json().to_string()),
                row(K::Warning, "x".into()),
            ];
            assert_eq!(End::unfinished(&events), Some(end.clone()));
            let finished = [events.clone(), vec![row(K::Finish, "x".into())]].concat();
            assert_eq!(End::unfinished(&finished), None, "the end was recorded");
            let resumed = [events, vec![row(K::Resume, "gap".into())]].concat();
            assert_eq!(End::unfinished(&resumed), None, "a resume came after it");
        }
        assert_eq!(End::from_json(&serde_json::json!({"end": "leak"})), None);
    }
}
