//! One check of a live run: the gate metrics judged on the run's thinned series after warm-up, the decision of
//! the check gate, and what follows from it — the check row, the log line, the failure event and
//! notification, the exporter's figures and the status file.

use super::driver::Session;
use crate::clock::Clock;
use crate::gate::{Outcome, check_words, judge_gate};
use crate::store::RunStatus;
use anyhow::Result;
use serde_json::{Value, json};

impl<C: Clock> Session<'_, C> {
    /// Judges the gate metrics at `now` (wall time); `Some` when the run ends here.
    pub(super) fn check(&mut self, now: f64) -> Result<Option<Outcome>> {
        // The thinned series kept in memory: nothing is read back, whatever the run's length.
        let gauges = self.recent.gauge_series();
        let mut results = judge_gate(
            self.recent.judged.points(),
            &gauges,
            self.started_at,
            &self.s,
        );
        let decision = self.gate.record(now, &results);
        // A leak the run-level rule holds back shows as inconclusive, with its reason.
        decision.apply(&mut results);
        let detail: serde_json::Map<String, Value> = results
            .iter()
            .map(|r| {
                let j = crate::render::analysis::judgement_json(&r.judgement, "");
                let mut m = json!({
                    "verdict": r.judgement.verdict.as_str(),
                    "slope_per_min": r.judgement.slope_per_min,
                    "ci_low": j["ci_low"],
                    "ci_high": j["ci_high"],
                });
                if let Some(why) = decision.held_reason(&r.name) {
                    m["held"] = json!(why);
                }
                (r.name.clone(), m)
            })
            .collect();
        let detail = Value::Object(detail);
        self.store
            .append_check(self.run_id, now, decision.failed, &detail.to_string())?;
        // The words every view of this check uses, from what was just stored.
        let (state, said) = check_words(decision.failed, &detail);
        self.last_check_words = Some((state, said.clone()));
        self.last_results = results;
        let words: Vec<String> = self
            .last_results
            .iter()
            .map(|r| {
                let verdict = match decision.held_reason(&r.name) {
                    Some(_) => "leak suspected".to_string(),
                    None => r.judgement.verdict.to_string(),
                };
                format!(
                    "{} {verdict} {:.3} {}",
                    r.name,
                    r.judgement.slope_per_min,
                    r.kind.rate_unit()
                )
            })
            .collect();
        // Pushed before a failing check ends the run: the last check is the one that matters.
        if !self.publishers.remote.is_empty() {
            use crate::publish::pushed;
            let mut v = pushed::judgements(&self.last_results);
            v.extend(pushed::check(
                decision.failed,
                self.gate.total.saturating_sub(self.gate.failed) as u64,
                self.gate.failed as u64,
                self.gate.streak(),
                self.s.duration_s,
            ));
            self.publishers.push(now, &v);
        }
        if decision.failed {
            let leaks = decision.leaks.join("; ");
            self.event(crate::store::EventKind::CheckFailed, &leaks);
            self.notify(
                "check_failed",
                format!("check {} failed: {leaks}", self.gate.total),
                json!({"check": self.gate.total, "failed_checks": self.gate.failed}),
            );
            self.view.log(&format!(
                "{} check {}: {said} ({} failed of {} tolerated): {}",
                self.s.name,
                self.gate.total,
                self.gate.failed,
                self.s.max_failed_checks,
                words.join(", ")
            ));
            if let Some(end @ Outcome::Leak(_)) = decision.end {
                return Ok(Some(end));
            }
        } else {
            self.view.log(&format!(
                "{} check {}: {said}; clean streak {} of {}: {}",
                self.s.name,
                self.gate.total,
                crate::detect::human_secs(self.gate.streak()),
                crate::detect::human_secs(self.s.duration_s),
                words.join(", ")
            ));
        }
        if let Some(e) = &self.publishers.exporter {
            e.check(
                &self.last_results,
                decision.failed,
                self.gate.streak(),
                self.s.duration_s,
            );
        }
        self.write_status(&self.status_doc(now, RunStatus::Running));
        Ok(decision.end)
    }
}
