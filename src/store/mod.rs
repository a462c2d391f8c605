//! The run store: one SQLite database (`STATE/leak-sentinel.db`) holding runs, samples, checks
//! and events. The only SQL in the project.
//!
//! Crash-safety contract: the database runs in WAL mode with `synchronous=NORMAL`, and every
//! sample, check and event is its own committed transaction. A `kill -9` of the sentinel (or any
//! crash of the process) therefore loses at most the sample being read when it died; what was
//! committed survives and `resume` carries on from it. (A power cut may lose the last few
//! commits still in the OS page cache: `synchronous=NORMAL` trades that for no fsync per sample.)

use crate::probe::{Metric, Sample};
use anyhow::{Context, Result};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Version of the schema this build writes; older databases are migrated forward on open.
pub const SCHEMA_VERSION: i64 = 1;

/// One run as stored.
#[derive(Debug, Clone, Serialize)]
pub struct RunRow {
    /// Row id.
    pub id: i64,
    /// Unique run name.
    pub name: String,
    /// Resolved settings, JSON.
    pub settings: String,
    /// Target description, JSON.
    pub target: String,
    /// running, completed, failed, interrupted.
    pub status: String,
    /// Unix seconds.
    pub started_at: f64,
    /// Unix seconds, when finished.
    pub ended_at: Option<f64>,
    /// Final overall verdict.
    pub verdict: Option<String>,
    /// Exit code of the run.
    pub exit_code: Option<i64>,
    /// Why it failed or stopped.
    pub failure_reason: Option<String>,
    /// Path of the final JSON report.
    pub report_file: Option<String>,
}

/// One check as stored.
#[derive(Debug, Clone, Serialize)]
pub struct CheckRow {
    /// Unix seconds.
    pub t: f64,
    /// True when any metric was judged `leak`.
    pub failed: bool,
    /// Per-metric verdicts and rates, JSON.
    pub detail: String,
}

/// One event as stored.
#[derive(Debug, Clone, Serialize)]
pub struct EventRow {
    /// Unix seconds.
    pub t: f64,
    /// start, resume, gap, check_failed, target_exit, signal, timeout, finish, warning…
    pub kind: String,
    /// Free text or JSON.
    pub detail: String,
}

/// An open store.
pub struct Store {
    conn: Connection,
    /// Path of the database file.
    pub path: PathBuf,
}

/// Creates `dir` (and parents) private to the user (0700).
pub fn private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("creating {}", dir.display()))?;
    }
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    Ok(())
}

impl Store {
    /// Opens (creating if needed) the store under `state_dir`.
    pub fn open(state_dir: &Path) -> Result<Store> {
        private_dir(state_dir)?;
        let path = state_dir.join("leak-sentinel.db");
        let conn = Connection::open(&path)
            .with_context(|| format!("opening the store {}", path.display()))?;
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
        }
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let store = Store { conn, path };
        store.migrate()?;
        Ok(store)
    }

    fn migrate(&self) -> Result<()> {
        let version: i64 = self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version > SCHEMA_VERSION {
            anyhow::bail!(
                "the store {} was written by a newer leak-sentinel (schema {version} > {SCHEMA_VERSION})",
                self.path.display()
            );
        }
        if version < 1 {
            let cols: Vec<String> = Metric::ALL
                .iter()
                .map(|m| format!("{} REAL", m.name()))
                .collect();
            let sql = format!(
                "BEGIN;
                 CREATE TABLE IF NOT EXISTS runs (
                     id INTEGER PRIMARY KEY,
                     name TEXT NOT NULL UNIQUE,
                     settings TEXT NOT NULL,
                     target TEXT NOT NULL,
                     status TEXT NOT NULL,
                     started_at REAL NOT NULL,
                     ended_at REAL,
                     verdict TEXT,
                     exit_code INTEGER,
                     failure_reason TEXT,
                     report_file TEXT);
                 CREATE TABLE IF NOT EXISTS samples (run_id INTEGER NOT NULL, t REAL NOT NULL, {});
                 CREATE INDEX IF NOT EXISTS samples_run_t ON samples(run_id, t);
                 CREATE TABLE IF NOT EXISTS checks (
                     run_id INTEGER NOT NULL, t REAL NOT NULL, failed INTEGER NOT NULL, detail TEXT NOT NULL);
                 CREATE INDEX IF NOT EXISTS checks_run ON checks(run_id, t);
                 CREATE TABLE IF NOT EXISTS events (
                     run_id INTEGER NOT NULL, t REAL NOT NULL, kind TEXT NOT NULL, detail TEXT NOT NULL);
                 CREATE INDEX IF NOT EXISTS events_run ON events(run_id, t);
                 PRAGMA user_version = 1;
                 COMMIT;",
                cols.join(", ")
            );
            self.conn
                .execute_batch(&sql)
                .context("creating the store schema")?;
        }
        Ok(())
    }

    /// Creates a run; fails if the name exists.
    pub fn create_run(&self, name: &str, settings: &str, target: &str, t: f64) -> Result<i64> {
        self.conn.execute(
            "INSERT INTO runs (name, settings, target, status, started_at) VALUES (?1, ?2, ?3, 'running', ?4)",
            params![name, settings, target, t],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Deletes a run and everything recorded for it.
    pub fn delete_run(&self, id: i64) -> Result<()> {
        let tx = self.conn.unchecked_transaction()?;
        for table in ["samples", "checks", "events"] {
            tx.execute(&format!("DELETE FROM {table} WHERE run_id = ?1"), [id])?;
        }
        tx.execute("DELETE FROM runs WHERE id = ?1", [id])?;
        tx.commit()?;
        Ok(())
    }

    fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RunRow> {
        Ok(RunRow {
            id: r.get(0)?,
            name: r.get(1)?,
            settings: r.get(2)?,
            target: r.get(3)?,
            status: r.get(4)?,
            started_at: r.get(5)?,
            ended_at: r.get(6)?,
            verdict: r.get(7)?,
            exit_code: r.get(8)?,
            failure_reason: r.get(9)?,
            report_file: r.get(10)?,
        })
    }

    const RUN_COLS: &'static str = "id, name, settings, target, status, started_at, ended_at, verdict, exit_code, failure_reason, report_file";

    /// A run by name.
    pub fn find_run(&self, name: &str) -> Result<Option<RunRow>> {
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {} FROM runs WHERE name = ?1", Self::RUN_COLS),
                [name],
                Self::row,
            )
            .optional()?)
    }

    /// The most recently started run.
    pub fn latest_run(&self) -> Result<Option<RunRow>> {
        Ok(self
            .conn
            .query_row(
                &format!(
                    "SELECT {} FROM runs ORDER BY started_at DESC, id DESC LIMIT 1",
                    Self::RUN_COLS
                ),
                [],
                Self::row,
            )
            .optional()?)
    }

    /// All runs, oldest first.
    pub fn list_runs(&self) -> Result<Vec<RunRow>> {
        let mut st = self.conn.prepare(&format!(
            "SELECT {} FROM runs ORDER BY started_at, id",
            Self::RUN_COLS
        ))?;
        let rows = st
            .query_map([], Self::row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Updates the stored target description (after a re-attach).
    pub fn set_target(&self, id: i64, target: &str) -> Result<()> {
        self.conn.execute(
            "UPDATE runs SET target = ?2 WHERE id = ?1",
            params![id, target],
        )?;
        Ok(())
    }

    /// Marks a run as running again (resume) or interrupted etc. without finishing it.
    pub fn set_status(&self, id: i64, status: &str) -> Result<()> {
        self.conn.execute(
            "UPDATE runs SET status = ?2 WHERE id = ?1",
            params![id, status],
        )?;
        Ok(())
    }

    /// Records the end of a run.
    #[allow(clippy::too_many_arguments)]
    pub fn finish_run(
        &self,
        id: i64,
        status: &str,
        ended_at: f64,
        verdict: &str,
        exit_code: i32,
        failure_reason: Option<&str>,
        report_file: &str,
    ) -> Result<()> {
        self.conn.execute(
            "UPDATE runs SET status = ?2, ended_at = ?3, verdict = ?4, exit_code = ?5, failure_reason = ?6, report_file = ?7 WHERE id = ?1",
            params![id, status, ended_at, verdict, exit_code, failure_reason, report_file],
        )?;
        Ok(())
    }

    /// Appends one sample (committed on return).
    pub fn append_sample(&self, id: i64, s: &Sample) -> Result<()> {
        let placeholders: Vec<String> = (0..Metric::ALL.len())
            .map(|i| format!("?{}", i + 3))
            .collect();
        let names: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
        let sql = format!(
            "INSERT INTO samples (run_id, t, {}) VALUES (?1, ?2, {})",
            names.join(", "),
            placeholders.join(", ")
        );
        let mut st = self.conn.prepare_cached(&sql)?;
        let mut values: Vec<rusqlite::types::Value> = vec![id.into(), s.t.into()];
        values.extend(s.values.iter().map(|v| match v {
            Some(x) => rusqlite::types::Value::Real(*x),
            None => rusqlite::types::Value::Null,
        }));
        st.execute(rusqlite::params_from_iter(values))?;
        Ok(())
    }

    /// All samples of a run, in time order.
    pub fn samples(&self, id: i64) -> Result<Vec<Sample>> {
        let names: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
        let mut st = self.conn.prepare(&format!(
            "SELECT t, {} FROM samples WHERE run_id = ?1 ORDER BY t",
            names.join(", ")
        ))?;
        let rows = st
            .query_map([id], |r| {
                let mut s = Sample::at(r.get(0)?);
                for (i, m) in Metric::ALL.iter().enumerate() {
                    s.set(*m, r.get::<_, Option<f64>>(i + 1)?);
                }
                Ok(s)
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Appends a check.
    pub fn append_check(&self, id: i64, t: f64, failed: bool, detail: &str) -> Result<()> {
        self.conn.execute(
            "INSERT INTO checks (run_id, t, failed, detail) VALUES (?1, ?2, ?3, ?4)",
            params![id, t, failed, detail],
        )?;
        Ok(())
    }

    /// All checks of a run.
    pub fn checks(&self, id: i64) -> Result<Vec<CheckRow>> {
        let mut st = self
            .conn
            .prepare("SELECT t, failed, detail FROM checks WHERE run_id = ?1 ORDER BY t")?;
        let rows = st
            .query_map([id], |r| {
                Ok(CheckRow {
                    t: r.get(0)?,
                    failed: r.get(1)?,
                    detail: r.get(2)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Appends an event.
    pub fn append_event(&self, id: i64, t: f64, kind: &str, detail: &str) -> Result<()> {
        self.conn.execute(
            "INSERT INTO events (run_id, t, kind, detail) VALUES (?1, ?2, ?3, ?4)",
            params![id, t, kind, detail],
        )?;
        Ok(())
    }

    /// All events of a run.
    pub fn events(&self, id: i64) -> Result<Vec<EventRow>> {
        let mut st = self
            .conn
            .prepare("SELECT t, kind, detail FROM events WHERE run_id = ?1 ORDER BY t, rowid")?;
        let rows = st
            .query_map([id], |r| {
                Ok(EventRow {
                    t: r.get(0)?,
                    kind: r.get(1)?,
                    detail: r.get(2)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let id = {
            let s = Store::open(dir.path()).expect("open");
            let id = s.create_run("r1", "{}", "{}", 100.0).expect("create");
            let mut smp = Sample::at(101.0);
            smp.set(Metric::RssBytes, Some(1048576.0));
            smp.set(Metric::Fds, Some(7.0));
            s.append_sample(id, &smp).expect("append");
            s.append_check(id, 102.0, false, "{}").expect("check");
            s.append_event(id, 100.0, "start", "x").expect("event");
            assert!(
                s.create_run("r1", "{}", "{}", 1.0).is_err(),
                "names are unique"
            );
            id
        };
        let s = Store::open(dir.path()).expect("reopen");
        let got = s.samples(id).expect("samples");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].get(Metric::RssBytes), Some(1048576.0));
        assert_eq!(got[0].get(Metric::PssBytes), None);
        assert_eq!(s.checks(id).expect("checks").len(), 1);
        assert_eq!(s.events(id).expect("events")[0].kind, "start");
        assert_eq!(
            s.latest_run().expect("latest").map(|r| r.name),
            Some("r1".into())
        );
    }
}
