//! Taking one sample of a live run: read the target (and at the detail cadence the FD inventory
//! and maybe a maps snapshot), record it, feed the exporter, update the live view.

use super::driver::Session;
use super::view::fmt_value;
use crate::clock::Clock;
use crate::gate::gate_metrics;
use crate::observed::Gap;
use crate::sample::Metric;
use anyhow::Result;
use std::time::Duration;

/// Consecutive failed sample writes that end a run.
const MAX_WRITE_FAILURES: u32 = 10;

impl<C: Clock> Session<'_, C> {
    /// Takes one sample (and, when `detail`, the FD inventory and maybe a maps snapshot).
    /// Returns the time the maps snapshot took, if one was taken.
    pub(super) fn take_sample(&mut self, detail: bool) -> Result<Duration> {
        let (mut s, err) = self.target.sample(self.now(), detail);
        if let Some(e) = err {
            self.warn_once(&format!("{e}"), &format!("{e}"));
        }
        let mut maps_cost = Duration::ZERO;
        if detail {
            self.diag
                .take_inventory(&self.target, &self.store, &mut s)?;
            let t0 = self.clock.mono();
            let clock = &self.clock;
            self.diag
                .maybe_maps(&mut self.target, &self.store, s.t, &|| clock.mono(), false)?;
            maps_cost = self.clock.mono().saturating_sub(t0);
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
        self.record_gauges(s.t);
        if let Some(e) = &self.publishers.exporter {
            e.sample(&s);
        }
        self.publishers
            .push(s.t, &crate::publish::pushed::sample(&s));
        self.drain_outcomes();
        let msg: Vec<String> = gate_metrics(&self.s, &self.recent.readings)
            .into_iter()
            .filter_map(|m| {
                s.get(m)
                    .map(|v| format!("{} {}", m.name(), fmt_value(m, v)))
            })
            .collect();
        let now = s.t;
        let running = s.get(Metric::TargetStopped) != Some(1.0);
        self.recent.push(s);
        self.watch(now, running);
        let human = crate::detect::human_secs;
        let warming = now < self.warmup_end();
        let since = if warming {
            format!("warming up {}", human(self.warmup_end() - now))
        } else {
            format!(
                "clean {} / {}",
                human(self.gate.streak()),
                human(self.s.duration_s)
            )
        };
        self.view.progress(
            if warming { 0.0 } else { self.gate.streak() },
            format!(
                "{since} · {} · checks {} ({} failed)",
                msg.join(" · "),
                self.gate.total,
                self.gate.failed
            ),
        );
        Ok(maps_cost)
    }

    /// Records the target's gauges read since the last sample (if any) at the sample's time
    /// `t`. An endpoint that cannot be read, or a gauge the user named that it lacks, costs a
    /// warning (once), never the sample.
    fn record_gauges(&mut self, t: f64) {
        use crate::probe::scrape::Reading;
        let Some(reading) = self.scraper.as_ref().and_then(|sc| sc.take()) else {
            return;
        };
        let values = match reading {
            Reading::Failed(why) => {
                // A service still starting is not yet listening: said once the warm-up is over
                // or after the endpoint has answered before.
                if !self.last_gauges.is_empty() || t >= self.warmup_end() {
                    self.warn_once("target-metrics", &why);
                }
                return;
            }
            Reading::Values(v) => v,
        };
        let mut read = Vec::new();
        let mut missing = Vec::new();
        for (g, v) in self.s.target_gauges.iter().zip(values) {
            match v {
                Some(v) => read.push((g.column(), v)),
                None if g.named => missing.push(g.column()),
                None => {}
            }
        }
        for column in missing {
            self.warn_once(
                &column,
                &format!(
                    "the target's metrics have no {} (or not a finite value): not read",
                    column.trim_start_matches(crate::gauges::PREFIX)
                ),
            );
        }
        if let Err(e) = self.store.append_gauges(self.run_id, t, &read) {
            self.view
                .log(&format!("warning: the target's gauges not recorded: {e:#}"));
        }
        self.recent.push_gauges(t, &read);
        if let Some(e) = &self.publishers.exporter {
            e.gauges(&read);
        }
        self.publishers
            .push(t, &crate::publish::pushed::gauges(&read));
        self.last_gauges = read;
    }

    /// Observed time: feeds the gate, records the gaps (and what caused them), a target that
    /// stops, and wall-clock steps.
    fn watch(&mut self, t: f64, running: bool) {
        let after_resume = std::mem::take(&mut self.resumed);
        let awake = self.clock.awake();
        let awake_dt = awake.saturating_sub(self.last_awake).as_secs_f64();
        self.last_awake = awake;
        if self.was_running && !running {
            self.event(
                crate::store::EventKind::TargetStopped,
                "the target is stopped (SIGSTOP, a debugger, or a frozen cgroup): not observed",
            );
            self.view
                .log("target stopped: this time is not observed and does not count as clean");
        }
        self.was_running = running;
        if let Some(g) = self.gate.observe(t, running) {
            let why = gap_cause(&g, awake_dt, after_resume);
            let human = crate::detect::human_secs;
            let text = format!(
                "{why} for {} ({} to {}): not observed, not counted as clean",
                human(g.len()),
                crate::clock::rfc3339(g.from),
                crate::clock::rfc3339(g.to)
            );
            self.event(crate::store::EventKind::Gap, &text);
            self.view.log(&format!("gap: {text}"));
        }
        let offset = self.clock.wall() - t;
        if (offset - self.wall_offset).abs() > 2.0 {
            let step = offset - self.wall_offset;
            self.wall_offset = offset;
            self.event(
                crate::store::EventKind::ClockStep,
                &format!(
                    "the wall clock stepped by {step:+.1} s; sample times follow the monotonic clock"
                ),
            );
        }
    }
}

/// Why a stretch was not watched: the target stopped, the sentinel was not running (the first
/// gap after a resume), the machine slept (awake time moved much less than boot time), or the
/// sentinel stalled.
fn gap_cause(g: &Gap, awake_dt: f64, after_resume: bool) -> &'static str {
    if g.cause == "target_stopped" {
        "target stopped"
    } else if after_resume {
        "sentinel not running (resumed)"
    } else if awake_dt < 0.5 * g.len() {
        "machine suspended"
    } else {
        "no samples (sentinel stalled)"
    }
}
