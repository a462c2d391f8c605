//! How a run's endings stay consistent on disk. The store is the single source of truth: an end
//! is recorded there first, in one transaction, and the report file and status.json are copies
//! written after it, which readers correct from the store ([`status_from_store`]) and `resume`
//! rewrites ([`repair_files`]). What a killed sentinel left half written is removed by the next
//! sentinel of the run.

use super::driver::Session;
use crate::clock::Clock;
use crate::files::{read_bounded_from, write_atomic};
use crate::render::report::{self as rr, reconcile_status};
use crate::rundir::{open_run_dir, remove_stale_temps, report_path};
use crate::store::{RunEnd, RunRow, Store};
use anyhow::{Context, Result};
use serde_json::{Map, Value, json};
use std::path::{Path, PathBuf};

/// Largest status.json read back (it is a few KiB).
const STATUS_MAX: u64 = 16 << 20;

impl<C: Clock> Session<'_, C> {
    /// Records the end of the run in the store. An end that cannot be recorded leaves the run
    /// `running` in the store, so `resume` can still end it.
    pub(super) fn record_end(&self, end: &RunEnd<'_>, event: (&str, &str)) -> Result<()> {
        let result = self.store.end_run(self.run_id, end, event);
        result.with_context(|| {
            format!(
                "recording the end of run '{0}' in the store (it stays resumable: 'leak-sentinel resume {0}')",
                self.s.name
            )
        })
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

    /// The run is over: its stale temporary files go.
    pub(super) fn tidy(&self) {
        remove_stale_temps(self.state, &self.s.name, self.started_at);
    }
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
    let report = match row.status.as_str() {
        "running" => None,
        _ => store
            .final_report(row.id)?
            .and_then(|t| serde_json::from_str::<Value>(&t).ok()),
    };
    let changed = reconcile_status(&mut doc, row, report.as_ref());
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
/// report, status.json corrected, its temporary files removed. Returns the files rewritten.
/// Call with the run's lock held.
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
    Ok(fixed)
}
