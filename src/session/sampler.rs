//! Taking one sample of a live run: read the target (and at the detail cadence the FD inventory
//! and maybe a maps snapshot), record it, feed the exporter, update the live view.

use super::driver::Session;
use super::view::fmt_value;
use crate::clock::Clock;
use crate::gate::gate_metrics;
use anyhow::Result;
use std::time::Duration;

/// Consecutive failed sample writes that end a run.
const MAX_WRITE_FAILURES: u32 = 10;

impl<C: Clock> Session<'_, C> {
    /// Takes one sample (and, when `detail`, the FD inventory and maybe a maps snapshot).
    /// Returns the time the maps snapshot took, if one was taken.
    pub(super) fn take_sample(&mut self, detail: bool) -> Result<Duration> {
        let (mut s, err) = self.target.sample(self.clock.wall(), detail);
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
                .maybe_maps(&self.target, &self.store, s.t, &|| clock.mono(), false)?;
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
        if let Some(e) = &self.publishers.exporter {
            e.sample(&s);
        }
        self.drain_outcomes();
        let msg: Vec<String> = gate_metrics(&self.s, &self.samples)
            .into_iter()
            .filter_map(|m| {
                s.get(m)
                    .map(|v| format!("{} {}", m.name(), fmt_value(m, v)))
            })
            .collect();
        let now = s.t;
        self.samples.push(s);
        let human = crate::detect::human_secs;
        let warming = now < self.warmup_end();
        let since = if warming {
            format!("warming up {}", human(self.warmup_end() - now))
        } else {
            format!(
                "{} / {}",
                human(self.gate.streak(now)),
                human(self.s.duration_s)
            )
        };
        self.view.progress(
            if warming { 0.0 } else { self.gate.streak(now) },
            format!(
                "{since} · {} · checks {} ({} failed)",
                msg.join(" · "),
                self.gate.total,
                self.gate.failed
            ),
        );
        Ok(maps_cost)
    }
}
