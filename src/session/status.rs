//! The live status file of a run (`STATE/runs/NAME/status.json`, SPEC.md): built from the
//! session's state, written atomically.

use super::driver::Session;
use crate::clock::Clock;
use crate::files::write_atomic;
use crate::gate::{fd_gate, gate_metrics, memory_gate};
use crate::render::report::{self as rr, StatusDoc};
use crate::sample::Metric;
use crate::store::RunStatus;

impl<C: Clock> Session<'_, C> {
    /// The status document at `now` (wall time).
    pub(super) fn status_doc(&self, now: f64, status: RunStatus) -> StatusDoc {
        let gate = gate_metrics(&self.s, &self.recent.readings);
        let warming = now < self.warmup_end() || self.gate.last_check_t.is_none();
        let find = |m: Metric| self.last_results.iter().find(|r| r.name == m.name());
        let (memory, why) = memory_gate(self.s.memory_metric, &self.recent.readings);
        let (fds, fds_why) = fd_gate(self.s.memory_metric, &self.recent.readings);
        StatusDoc {
            run_name: self.s.name.clone(),
            status,
            start_time: rr::rfc3339(self.started_at),
            target_hours: self.s.duration_s / 3600.0,
            clean_hours_count: (self.gate.streak().max(0.0) / 3600.0 * 1e6).round() / 1e6,
            last_check: self.gate.last_check_t.map(rr::rfc3339),
            check_state: self.last_check_words.as_ref().map(|w| w.0),
            check_words: self.last_check_words.as_ref().map(|w| w.1.clone()),
            memory_gate: memory.name().into(),
            memory_gate_reason: why.into(),
            fd_gate: fds.name().into(),
            fd_gate_reason: fds_why.into(),
            memory_trend: rr::trend_word(find(gate[0]), warming).into(),
            fd_trend: rr::trend_word(find(fds), warming).into(),
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
            checks_total: self.gate.total,
            checks_failed: self.gate.failed,
            max_failed_checks: self.s.max_failed_checks,
            samples: self.recent.count,
            current: {
                let mut c = rr::current_values(&self.recent.last);
                for (column, v) in &self.last_gauges {
                    c.insert(column.clone(), serde_json::json!(v));
                }
                c
            },
            metrics: rr::metrics_json(&self.last_results),
            verdict: None,
            exit_code: None,
            remote_write: (!self.publishers.remote.is_empty())
                .then(|| serde_json::to_value(self.publishers.remote_stats()).ok())
                .flatten(),
        }
    }

    /// Writes the status file (a failure costs a warning).
    pub(super) fn write_status(&self, doc: &StatusDoc) {
        let path = crate::rundir::status_path(self.state, &self.s.name);
        let bytes = serde_json::to_vec_pretty(doc).unwrap_or_default();
        if let Err(e) = write_atomic(&path, &bytes) {
            self.view.log(&format!(
                "warning: could not write {}: {e:#}",
                path.display()
            ));
        }
    }
}
