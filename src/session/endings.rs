//! How a run's endings stay consistent on disk. The store is the single source of truth: an end
//! is recorded there first, in one transaction, and the report file and status.json are copies
//! written after it, which readers correct from the store ([`status_from_store`]) and `resume`
//! rewrites ([`repair_files`]). A lasting write failure (disk full, quota, I/O error, read-only)
//! stops a run resumable instead of ending it, and what a killed sentinel left half written is
//! removed by the next sentinel of the run.

use super::driver::Session;
use crate::clock::Clock;
use crate::exit::Exit;
use crate::files::{read_bounded_from, write_atomic};
use crate::render::report::{self as rr, reconcile_status};
use crate::rundir::{open_run_dir, remove_stale_temps, report_path};
use crate::store::{RunEnd, RunRow, RunStatus, Store, write_failure};
use anyhow::{Context, Result};
use serde_json::{Map, Value, json};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Largest status.json read back (it is a few KiB).
const STATUS_MAX: u64 = 16 << 20;

impl<C: Clock> Session<'_, C> {
    /// Records the end of the run in the store; when a lasting write failure refuses it, the
    /// reserve is given back and it is tried once more. An end that cannot be recorded leaves
    /// the run `running` in the store, so `resume` can still end it.
    pub(super) fn record_end(
        &self,
        end: &RunEnd<'_>,
        event: (crate::store::EventKind, &str),
    ) -> Result<()> {
        let first = self.store.end_run(self.run_id, end, event);
        let result = match first {
            Err(e) if write_failure(&e).is_some() && self.release_reserve() => {
                self.store.end_run(self.run_id, end, event)
            }
            r => r,
        };
        result.with_context(|| {
            format!(
                "recording the end of run '{0}' in the store (it stays resumable: 'leak-sentinel resume {0}')",
                self.s.name
            )
        })
    }

    /// Gives the reserve's room back (true when there was one to remove).
    fn release_reserve(&self) -> bool {
        self.reserve.as_ref().is_some_and(|r| r.release())
    }

    /// Writes the report file, a copy of the report the store holds (failing costs a warning).
    pub(super) fn write_report(&self, path: &Path, text: &str) {
        if let Err(e) = write_atomic(path, text.as_bytes()) {
            self.view.log(&format!(
                "warning: could not write {}: {e:#} (the store has the report: 'leak-sentinel report {}')",
                path.display(),
                self.s.name
            ));
        }
    }

    /// The run is over or stopping: its stale temporary files and its reserve go (one a
    /// killed sentinel left too).
    pub(super) fn tidy(&self) {
        remove_stale_temps(self.state, &self.s.name, self.started_at);
        if !self.release_reserve() {
            crate::rundir::Reserve::remove_left(self.state, &self.s.name);
        }
    }

    /// A lasting write failure of the store (`kind` says which): the run stops without a
    /// verdict and stays resumable. The target is left running (a spawned one too, as after a
    /// kill -9), the store records why — `interrupted`, the reason and a `write_failed` event,
    /// in the room the reserve gives back — and no report is written. The one line on stderr
    /// says what happened and how to go on; when even the store cannot record it, the run still
    /// says `running` there and the line says that too.
    pub(super) fn stop_on_write_failure(&mut self, kind: &str, e: &anyhow::Error) -> Exit {
        self.view.finish();
        let now = self.now();
        let name = self.s.name.clone();
        let reason = format!(
            "{kind} writing {}: {}",
            self.store.path.display(),
            cause_line(e)
        );
        self.release_reserve();
        let exit = Exit::Interrupted;
        let record = RunEnd {
            status: RunStatus::Interrupted,
            ended_at: now,
            verdict: None,
            exit_code: exit.code(),
            failure_reason: Some(&reason),
            report_file: None,
            report_json: None,
        };
        let detail = format!("{reason}; the target is left running for 'resume'");
        match self.store.end_run(
            self.run_id,
            &record,
            (crate::store::EventKind::WriteFailed, &detail),
        ) {
            Ok(()) => {
                let mut doc = self.status_doc(now, RunStatus::Interrupted);
                doc.completion_time = Some(rr::rfc3339(now));
                doc.passed = Some(false);
                doc.failure_reason = Some(reason.clone());
                doc.exit_code = Some(exit.code());
                self.write_status(&doc);
                eprintln!(
                    "error: run '{name}' stopped: {reason}; its target is left running: make room, then 'leak-sentinel resume {name}'"
                );
            }
            Err(e2) => eprintln!(
                "error: run '{name}' stopped: {reason}; the store could not record that either ({}), so it still says running: make room, then 'leak-sentinel resume {name}'",
                cause_line(&e2)
            ),
        }
        if let Some(x) = &self.publishers.exporter {
            x.set_state(RunStatus::Interrupted);
        }
        self.notify(
            "interrupted",
            format!("interrupted — {reason}"),
            json!({"exit_code": exit.code(), "resumable": true}),
        );
        if let Some(n) = &self.publishers.notifier {
            n.flush(Duration::from_secs(5));
        }
        self.drain_outcomes();
        self.tidy();
        exit
    }
}

/// An error's chain on one line, each cause once (SQLite's `database or disk is full: Error
/// code 13: database or disk is full` becomes `database or disk is full`).
fn cause_line(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let m = cause.to_string().replace('\n', " ");
        if parts.last().is_some_and(|p| m.ends_with(p.as_str())) {
            continue;
        }
        parts.push(m);
    }
    parts.join(": ")
}

/// status.json of a run as the store has it: the file as read (a bare document with the run's
/// name and start when it is missing or unreadable), corrected from the store (see
/// [`reconcile_status`]). The flag says whether the file was behind the store.
pub fn status_from_store(
    state: &Path,
    store: &Store,
    row: &RunRow,
) -> Result<(Map<String, Value>, bool)> {
    let read = read_status(state, &row.name);
    let missing = read.is_none();
    let mut doc = read.unwrap_or_else(|| {
        let mut m = Map::new();
        m.insert("run_name".into(), json!(row.name));
        m.insert("start_time".into(), json!(rr::rfc3339(row.started_at)));
        m
    });
    let report = match row.status {
        RunStatus::Running => None,
        _ => store
            .final_report(row.id)?
            .and_then(|t| serde_json::from_str::<Value>(&t).ok()),
    };
    let changed = reconcile_status(&mut doc, row, report.as_ref());
    // The last check's words, from its stored row: the same function the log line used.
    if let Some(c) = store.checks(row.id)?.last() {
        let detail = serde_json::from_str(&c.detail).unwrap_or_default();
        let (state, words) = crate::gate::check_words(c.failed, &detail);
        doc.insert("check_state".into(), json!(state));
        doc.insert("check_words".into(), json!(words));
    }
    Ok((doc, changed || missing))
}

/// status.json as written, when it is there and is one (never read through a symlink).
fn read_status(state: &Path, name: &str) -> Option<Map<String, Value>> {
    let dir = open_run_dir(state, name, false).ok()?;
    let file = dir.read_file("status.json").ok()??;
    let path = dir.path().join("status.json");
    let text = read_bounded_from(file, &path, STATUS_MAX, "status file").ok()?;
    match serde_json::from_str::<Value>(&text).ok()? {
        Value::Object(m) if m.get("run_name").is_some_and(Value::is_string) => Some(m),
        _ => None,
    }
}

/// Brings the files of an ended run back in line with the store, as its sentinel would have
/// left them had it not been killed while finishing: the report file rewritten from the stored
/// report, status.json corrected, its temporary files and reserve removed. Returns the files
/// rewritten. Call with the run's lock held.
pub fn repair_files(state: &Path, store: &Store, row: &RunRow) -> Result<Vec<PathBuf>> {
    let mut fixed = Vec::new();
    let report = report_path(state, &row.name, row.started_at);
    let name = crate::rundir::report_name(&row.name, row.started_at);
    // Only the run's own report file, named as this version names it.
    let ours = row
        .report_file
        .as_deref()
        .is_some_and(|f| Path::new(f).file_name() == Some(name.as_ref()));
    if let (true, Some(text)) = (ours, store.final_report(row.id)?) {
        let dir = crate::files::Dir::open_private(state, false)?.sub("reports", true)?;
        let current = dir
            .read_file(&name)?
            .and_then(|f| read_bounded_from(f, &report, 256 << 20, "report").ok());
        if current.as_deref() != Some(text.as_str()) {
            dir.write_atomic(&name, text.as_bytes(), 0o600)?;
            fixed.push(report);
        }
    }
    let (doc, behind) = status_from_store(state, store, row)?;
    if behind {
        let path = crate::rundir::status_path(state, &row.name);
        write_atomic(&path, &serde_json::to_vec_pretty(&doc)?)?;
        fixed.push(path);
    }
    remove_stale_temps(state, &row.name, row.started_at);
    crate::rundir::Reserve::remove_left(state, &row.name);
    Ok(fixed)
}
