//! Ending a run: the final judgement of every metric, the snapshot hook and the diagnosis while
//! the target still runs, stopping a spawned target, the baseline comparison, then the store's
//! end of the run (with the report, one transaction), the report file, the last status file and
//! the last notification.

use super::driver::{End, Session};
use crate::analyze::MetricResult;
use crate::clock::Clock;
use crate::detect::Verdict;
use crate::exit::Exit;
use crate::gate::{Outcome, gate_metrics, in_gate, judge_gate, judge_run};
use crate::render::report as rr;
use crate::rundir::{report_path, run_dir, status_path};
use crate::sample::Metric;
use crate::store::{RunEnd, RunStatus};
use anyhow::Result;
use serde_json::{Value, json};
use std::time::Duration;

/// How long the end of a run waits at most for its remote-write queues to drain.
const REMOTE_FLUSH: Duration = Duration::from_secs(10);

impl<C: Clock> Session<'_, C> {
    /// Ends the run: stop a spawned target, final judgement, report, status, exit code.
    pub(super) fn finish(&mut self, end: End) -> Result<Exit> {
        self.view.finish();
        // The end is decided: a sentinel killed from here on is finished by `resume` with it.
        self.event(crate::store::EventKind::Ending, &end.to_json().to_string());
        let now = self.now();
        // The series the checks judged (thinned to bounded memory, nothing read back), so the
        // final verdict rests on what the last check saw plus the samples since.
        let samples = self.recent.judged.points().to_vec();
        let readings = crate::sample::Readings::of(&samples);
        let gate = gate_metrics(&self.s, &readings);
        // The gate as the checks judge it (a gate metric without readings is inconclusive),
        // then every other metric as information — counts, flags and counters are never judged.
        let gauges = self.recent.gauge_series();
        let mut results = judge_gate(&samples, &gauges, self.started_at, &self.s);
        // What grows, held back or not, is what the diagnosis looks at.
        let leaking: Vec<String> = results
            .iter()
            .filter(|r| r.judgement.verdict == Verdict::Leak)
            .map(|r| r.name.clone())
            .collect();
        // The verdict the report states is the gate's, in the checks' words: a leak the
        // run-level rule holds back reads as inconclusive with its reason (the run did not fail
        // on it), unless the run ended on a leak, whose failing check already decided.
        if !matches!(end, End::Gate(Outcome::Leak(_))) {
            self.gate.clone().record(now, &results).apply(&mut results);
        }
        let others: Vec<Metric> = Metric::ALL
            .into_iter()
            .filter(|m| !gate.contains(m) && m.judged())
            .collect();
        results.extend(judge_run(&samples, self.started_at, &self.s, &others));
        let gate_results: Vec<&MetricResult> =
            results.iter().filter(|r| in_gate(&gate, &r.name)).collect();
        let verdict = Verdict::combine(gate_results.iter().map(|r| r.judgement.verdict));
        // Diagnosis and snapshot hook while the target still runs; then stop it.
        let alive = !matches!(end, End::TargetExited(_)) && !self.target.pids().is_empty();
        // The diagnosis first: the snapshot hook's own files and sockets (a jcmd attach socket,
        // a core file) must not show up in it.
        let diagnosis = match self.diagnosis(now, alive, &leaking, &samples) {
            Ok(d) => Some(d),
            Err(e) => {
                self.view.log(&format!("warning: diagnosis failed: {e:#}"));
                None
            }
        };
        // Attribution next, while the target still runs (a heap dump by the hook could be long).
        let attribution = self.attribution(now, alive);
        let hook = match (&end, &self.s.on_leak) {
            (End::Gate(Outcome::Leak(_)), Some(cmd)) if alive => Some(self.run_hook(cmd, now)),
            _ => None,
        };
        let stop_exit = self
            .target
            .stop(Duration::from_secs_f64(self.s.grace_s), self.stop_signal);
        let baseline_cmp = self.baseline_comparison(&samples);
        let (status, exit, reason, passed) = match &end {
            End::Gate(Outcome::Passed) => (RunStatus::Completed, Exit::Passed, None, true),
            End::Gate(Outcome::Leak(r)) => (RunStatus::Failed, Exit::Leak, Some(r.clone()), false),
            End::Gate(Outcome::Inconclusive(r)) => (
                RunStatus::Completed,
                Exit::Inconclusive,
                Some(r.clone()),
                false,
            ),
            End::TargetExited(e) => (
                RunStatus::Failed,
                Exit::TargetExited,
                Some(format!(
                    "{}: a soak test cannot pass without its target",
                    e.description
                )),
                false,
            ),
            End::Interrupted(r) => (
                RunStatus::Interrupted,
                Exit::Interrupted,
                Some(r.clone()),
                false,
            ),
        };
        let clean_s = if matches!(end, End::Gate(Outcome::Leak(_))) {
            0.0
        } else {
            self.gate.streak().max(0.0)
        };
        let finish_detail = format!(
            "{status}, exit {}{}",
            exit.code(),
            reason
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        );
        let report_path = report_path(self.state, &self.s.name, self.started_at);
        let mut metrics = rr::metrics_json(&results);
        for (name, v) in metrics.iter_mut() {
            if let Some(o) = v.as_object_mut() {
                o.insert("gate".into(), json!(in_gate(&gate, name)));
            }
        }
        let checks = self.store.checks(self.run_id)?;
        // The events as they will be once the end is recorded (its `finish` event included).
        let mut events = self.store.events(self.run_id)?;
        events.push(crate::store::EventRow {
            t: now,
            kind: crate::store::EventKind::Finish,
            detail: finish_detail.clone(),
        });
        // In the store's order (time, then insertion): a hook's event comes after `now`.
        events.sort_by(|a, b| a.t.total_cmp(&b.t));
        let target_exit = match &end {
            End::TargetExited(e) => Some(e.clone()),
            _ => stop_exit,
        };
        let (fd_metric, fd_why) = crate::gate::fd_gate(self.s.memory_metric, &readings);
        let mut report = json!({
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
            "memory_gate": {
                "metric": gate[0].name(),
                "reason": crate::gate::memory_gate(self.s.memory_metric, &readings).1,
            },
            "fd_gate": {
                "metric": fd_metric.name(),
                "reason": fd_why,
            },
            "target_metrics": self.s.target_metrics.as_ref().map(|u| json!({
                "url": crate::publish::notify::redact_url(u),
                "gauges": self.s.target_gauges.iter().map(|g| json!({
                    "column": g.column(),
                    "threshold_per_min": g.threshold_per_min,
                    "named": g.named,
                    "read": gauges.iter().any(|x| x.column == g.column()),
                })).collect::<Vec<_>>(),
            })),
            "settings": self.s,
            "target": {
                "kind": self.target.info.kind,
                "command": self.target.info.command,
                "pid": self.target.info.pid,
                "cgroup": self.target.info.cgroup,
                "include_children": self.target.info.include_children,
                "exit": target_exit,
            },
            "samples": self.recent.count,
            "sample_span_s": self.recent.last.last().map_or(0.0, |s| s.t - self.started_at),
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
            "attribution": attribution,
            "report_file": report_path.display().to_string(),
            "status_file": status_path(self.state, &self.s.name).display().to_string(),
        });
        // The store first, in one transaction: the end, its event and the report. A kill -9
        // from here on leaves the report file and status.json behind the store, never ahead,
        // and readers correct them from it (`status`, `report`; `resume` rewrites them).
        let report_text = serde_json::to_string_pretty(&report)?;
        let report_file = report_path.display().to_string();
        let record = RunEnd {
            status,
            ended_at: now,
            verdict: Some(verdict.as_str()),
            exit_code: exit.code(),
            failure_reason: reason.as_deref(),
            report_file: Some(&report_file),
            report_json: Some(&report_text),
        };
        self.record_end(&record, (crate::store::EventKind::Finish, &finish_detail))?;
        if !self.publishers.remote.is_empty() {
            let outcome = match &end {
                End::Gate(Outcome::Passed) => "passed",
                End::Gate(Outcome::Leak(_)) => "leak",
                End::Gate(Outcome::Inconclusive(_)) => "inconclusive",
                End::TargetExited(_) => "target_exited",
                End::Interrupted(_) => "interrupted",
            };
            use crate::publish::pushed;
            let finals: Vec<MetricResult> = gate_results.iter().map(|r| (*r).clone()).collect();
            let mut v = pushed::judgements(&finals);
            v.extend(pushed::outcome(
                outcome,
                verdict.as_str(),
                exit.code(),
                now - self.started_at,
                status.as_str(),
            ));
            self.publishers.push(now, &v);
        }
        self.write_report(&report_path, &report_text);
        self.last_results = gate_results.into_iter().cloned().collect();
        let mut doc = self.status_doc(now, status);
        doc.completion_time = Some(rr::rfc3339(now));
        doc.passed = Some(passed);
        doc.final_clean_hours = Some((clean_s / 3600.0 * 1e6).round() / 1e6);
        doc.report_file = Some(report_file.clone());
        doc.failure_reason = reason;
        doc.verdict = Some(verdict.as_str().into());
        doc.exit_code = Some(exit.code());
        self.write_status(&doc);
        if let Some(e) = &self.publishers.exporter {
            e.set_state(status);
        }
        let event = match &end {
            End::TargetExited(_) => "target_exit",
            _ => status.as_str(),
        };
        self.notify(
            event,
            format!(
                "{} — {}{}",
                if passed { "passed" } else { status.as_str() },
                verdict.as_str(),
                doc.failure_reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default()
            ),
            json!({"verdict": verdict.as_str(), "passed": passed, "exit_code": exit.code(), "report_file": report_path}),
        );
        if let Some(n) = &self.publishers.notifier {
            // Give the last notification a chance; a dead receiver costs at most this.
            if !n.flush(Duration::from_secs(20)) {
                self.view
                    .log("warning: notifications still pending at exit");
            }
        }
        let remote = self.flush_remote(now);
        // Every delivery outcome, the last one's too, is an event of the report: the report was
        // recorded before the last notification (which names it), so it is recorded once more,
        // the store first again.
        self.drain_outcomes();
        if let Ok(events) = self.store.events(self.run_id) {
            report["events"] = rr::events_json(&events);
            if let Some(r) = &remote {
                report["remote_write"] = r.clone();
            }
            let text = serde_json::to_string_pretty(&report)?;
            match self.store.update_report(self.run_id, &text) {
                Ok(()) => self.write_report(&report_path, &text),
                Err(e) => self
                    .view
                    .log(&format!("warning: could not update the report: {e:#}")),
            }
        }
        self.tidy();
        // CI outputs from the final report: --junit, --summary-md, $GITHUB_STEP_SUMMARY. A file
        // that cannot be written costs a warning; the verdict and exit code stand.
        for w in super::ci::write_outputs(
            self.s.junit.as_deref(),
            self.s.summary_md.as_deref(),
            || crate::render::junit::from_report(&report),
            || crate::render::markdown::from_report(&report),
        ) {
            self.view.log(&format!("warning: {w}"));
        }
        print!("{}", rr::summary_text(&report));
        Ok(exit)
    }

    /// Gives the remote-write queues a last chance to deliver (the outcome was queued last),
    /// at most [`REMOTE_FLUSH`] in all; says what could not be delivered, pushes the drop
    /// counts, and rewrites the status file with the final figures. `None` without endpoints.
    fn flush_remote(&mut self, now: f64) -> Option<Value> {
        if self.publishers.remote.is_empty() {
            return None;
        }
        let deadline = std::time::Instant::now() + REMOTE_FLUSH;
        for r in &self.publishers.remote {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            r.flush(left);
        }
        self.remote_news();
        let stats = self.publishers.remote_stats();
        for st in &stats {
            let dropped = st.counts.dropped();
            let line = format!(
                "remote write to {}: {} points delivered, {dropped} dropped ({} for a full queue, {} refused), {} not delivered at exit",
                st.url, st.counts.sent, st.counts.dropped_full, st.counts.rejected, st.queued
            );
            if dropped > 0 || st.queued > 0 {
                self.view.log(&format!("warning: {line}"));
                self.event(crate::store::EventKind::Warning, &line);
            } else {
                self.view.log(&line);
            }
        }
        let v = serde_json::to_value(&stats).ok()?;
        if let Ok(path) = std::fs::read(crate::rundir::status_path(self.state, &self.s.name)) {
            if let Ok(mut doc) = serde_json::from_slice::<Value>(&path) {
                doc["remote_write"] = v.clone();
                let bytes = serde_json::to_vec_pretty(&doc).unwrap_or_default();
                let _ = crate::files::write_atomic(
                    &crate::rundir::status_path(self.state, &self.s.name),
                    &bytes,
                );
            }
        }
        let _ = now;
        Some(v)
    }

    /// Runs the `--on-leak` snapshot hook once, in a fresh directory of the run.
    fn run_hook(&self, cmd: &str, now: f64) -> crate::hook::HookResult {
        let dir =
            run_dir(self.state, &self.s.name).join(format!("snapshot-{}", now.floor() as i64));
        self.view
            .log(&format!("running the --on-leak hook in {}", dir.display()));
        let r = crate::hook::run(
            cmd,
            self.target.info.pid,
            &dir,
            Duration::from_secs_f64(self.s.on_leak_timeout_s),
        );
        self.event(
            crate::store::EventKind::SnapshotHook,
            &format!(
                "{} → exit {:?}{}, {} file(s)",
                r.command,
                r.exit_code,
                if r.timed_out { " (timed out)" } else { "" },
                r.files.len()
            ),
        );
        r
    }

    /// The diagnosis now: the inventories are read afresh while the target is still there.
    fn diagnosis(
        &mut self,
        now: f64,
        alive: bool,
        leaking: &[String],
        samples: &[crate::sample::Sample],
    ) -> Result<crate::diagnose::Diagnosis> {
        let procs_now = alive.then(|| self.target.processes());
        if alive {
            let mut scratch = crate::sample::Sample::at(now);
            self.diag
                .take_inventory(&self.target, &self.store, &mut scratch)?;
            let clock = &self.clock;
            self.diag
                .maybe_maps(&mut self.target, &self.store, now, &|| clock.mono(), true)?;
        }
        self.diag
            .diagnose(&self.store, samples, now, leaking, procs_now)
    }

    /// The comparison with `--baseline`, when one was given (an unreadable one costs a warning).
    fn baseline_comparison(&self, samples: &[crate::sample::Sample]) -> Option<Value> {
        let path = self.s.baseline.as_ref()?;
        match crate::files::load_baseline(path) {
            Ok(b) => {
                let cur = crate::baseline::summarize(
                    &self.s,
                    samples,
                    self.started_at,
                    crate::clock::rfc3339(self.now()),
                );
                let tol = crate::baseline::TOLERANCE_PCT;
                Some(json!({
                    "baseline_file": path,
                    "baseline_run": b.run_name,
                    "tolerance_pct": tol,
                    "changes": crate::baseline::compare(&b, &cur, tol),
                }))
            }
            Err(e) => {
                self.view.log(&format!("warning: {e:#}"));
                None
            }
        }
    }
}
