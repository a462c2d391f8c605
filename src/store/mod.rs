//! The run store: one SQLite database (`STATE/leak-sentinel.db`) holding runs, samples, checks
//! and events. The only SQL in the project.
//!
//! Crash-safety contract: the database runs in WAL mode with `synchronous=NORMAL`, and every
//! sample, check and event is its own committed transaction. A `kill -9` of the sentinel (or any
//! crash of the process) therefore loses at most the sample being read when it died; what was
//! committed survives and `resume` carries on from it. (A power cut may lose the last few
//! commits still in the OS page cache: `synchronous=NORMAL` trades that for no fsync per sample.)
//!
//! The store is the single source of truth about how a run ended: the end of a run (its state,
//! verdict, exit code, reason, the `finish` event and the final report's JSON) is one
//! transaction, committed before the report file and the last status.json are written. Those
//! files are copies that readers correct from the store (a sentinel killed in between leaves
//! them behind, never ahead).

use crate::sample::{Metric, Sample};
use anyhow::{Context, Result};
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Version of the schema this build writes; older databases are migrated forward on open.
pub const SCHEMA_VERSION: i64 = 8;

/// Where a run stands: `runs.status` in the store, `status` in status.json, the report and
/// `list --json`, the `state` label of `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Being run (or a sentinel died during it: `resume` carries on). Where a run starts.
    #[default]
    Running,
    /// Ended with a verdict (passed, or inconclusive).
    Completed,
    /// Ended with a leak, or its target died.
    Failed,
    /// Stopped before a verdict (a signal, the timeout, a sentinel error); resumable.
    Interrupted,
}

impl RunStatus {
    /// Every state, in the order `/metrics` lists them.
    pub const ALL: [RunStatus; 4] = [
        RunStatus::Running,
        RunStatus::Completed,
        RunStatus::Failed,
        RunStatus::Interrupted,
    ];

    /// The stored word.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Completed => "completed",
            RunStatus::Failed => "failed",
            RunStatus::Interrupted => "interrupted",
        }
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A word in the store that this version does not know (a foreign or newer database).
#[derive(Debug, thiserror::Error)]
#[error("unknown {what} '{word}' in the store (written by another version of leak-sentinel?)")]
pub struct UnknownWord {
    /// What kind of word (run state, event kind).
    pub what: &'static str,
    /// The word as stored.
    pub word: String,
}

impl ToSql for RunStatus {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

impl FromSql for RunStatus {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let word = value.as_str()?;
        RunStatus::ALL
            .into_iter()
            .find(|s| s.as_str() == word)
            .ok_or_else(|| {
                FromSqlError::Other(Box::new(UnknownWord {
                    what: "run state",
                    word: word.to_string(),
                }))
            })
    }
}

/// What an event records. Stored as its snake-case word (`check_failed`), which is also what
/// the report's events list and the HTML report's markers show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A run started; detail: the target as JSON.
    Start,
    /// `resume` carried a run on; detail: the gap.
    Resume,
    /// Time nobody observed (the sentinel dead, the machine suspended).
    Gap,
    /// A check judged a leak; detail: the leaking metrics.
    CheckFailed,
    /// The target exited or crashed; detail: how.
    TargetExit,
    /// The target was stopped (SIGSTOP, a debugger, a frozen cgroup): not observed.
    TargetStopped,
    /// The wall clock stepped; sample times follow the monotonic clock.
    ClockStep,
    /// SIGINT, SIGTERM or SIGHUP stopped the run.
    Signal,
    /// `--timeout` was reached.
    Timeout,
    /// An error in the sentinel stopped the run.
    Error,
    /// A warning worth keeping with the run.
    Warning,
    /// The run's end was decided (before the report and files are written); detail: the end.
    Ending,
    /// The run's end was recorded.
    Finish,
    /// A lasting write failure (a full disk) stopped the run.
    WriteFailed,
    /// A notification was delivered.
    Notified,
    /// A notification failed.
    NotifyFailed,
    /// The `--on-leak` hook ran.
    SnapshotHook,
    /// `report --html` wrote a page; detail: its path.
    HtmlReport,
}

impl EventKind {
    /// Every kind, as stored.
    pub const ALL: [EventKind; 18] = [
        EventKind::Start,
        EventKind::Resume,
        EventKind::Gap,
        EventKind::CheckFailed,
        EventKind::TargetExit,
        EventKind::TargetStopped,
        EventKind::ClockStep,
        EventKind::Signal,
        EventKind::Timeout,
        EventKind::Error,
        EventKind::Warning,
        EventKind::Ending,
        EventKind::Finish,
        EventKind::WriteFailed,
        EventKind::Notified,
        EventKind::NotifyFailed,
        EventKind::SnapshotHook,
        EventKind::HtmlReport,
    ];

    /// The stored word.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Start => "start",
            EventKind::Resume => "resume",
            EventKind::Gap => "gap",
            EventKind::CheckFailed => "check_failed",
            EventKind::TargetExit => "target_exit",
            EventKind::TargetStopped => "target_stopped",
            EventKind::ClockStep => "clock_step",
            EventKind::Signal => "signal",
            EventKind::Timeout => "timeout",
            EventKind::Error => "error",
            EventKind::Warning => "warning",
            EventKind::Ending => "ending",
            EventKind::Finish => "finish",
            EventKind::WriteFailed => "write_failed",
            EventKind::Notified => "notified",
            EventKind::NotifyFailed => "notify_failed",
            EventKind::SnapshotHook => "snapshot_hook",
            EventKind::HtmlReport => "html_report",
        }
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ToSql for EventKind {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

impl FromSql for EventKind {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let word = value.as_str()?;
        EventKind::ALL
            .into_iter()
            .find(|k| k.as_str() == word)
            .ok_or_else(|| {
                FromSqlError::Other(Box::new(UnknownWord {
                    what: "event kind",
                    word: word.to_string(),
                }))
            })
    }
}

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
    /// Where it stands.
    pub status: RunStatus,
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

/// How a run ended (or stopped), recorded in one transaction with its `finish` (or
/// `write_failed`) event.
#[derive(Debug, Clone)]
pub struct RunEnd<'a> {
    /// Completed, failed or interrupted.
    pub status: RunStatus,
    /// Unix seconds.
    pub ended_at: f64,
    /// Final overall verdict (none when the run stopped before one was reached).
    pub verdict: Option<&'a str>,
    /// Exit code of the run.
    pub exit_code: i32,
    /// Why it failed or stopped.
    pub failure_reason: Option<&'a str>,
    /// Path of the final JSON report.
    pub report_file: Option<&'a str>,
    /// The final report itself, JSON (the report file is a copy of it).
    pub report_json: Option<&'a str>,
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
    /// What happened.
    pub kind: EventKind,
    /// Free text or JSON.
    pub detail: String,
}

/// An open store.
pub struct Store {
    conn: Connection,
    /// Path of the database file.
    pub path: PathBuf,
}

/// The database's file name inside the state directory.
pub const DB_FILE: &str = "leak-sentinel.db";

/// How long a connection waits for another one's lock before giving up (many runs and readers
/// may start at once on a new state directory).
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Adds a `samples` column for every metric that has none, then sets the schema version (inside
/// the caller's transaction).
fn add_missing_metric_columns(tx: &rusqlite::Transaction<'_>, version: i64) -> Result<()> {
    let have: Vec<String> = {
        let mut st = tx.prepare("PRAGMA table_info(samples)")?;
        st.query_map([], |r| r.get::<_, String>(1))?
            .collect::<rusqlite::Result<_>>()?
    };
    let mut sql = String::new();
    for m in Metric::ALL {
        if !have.iter().any(|c| c == m.name()) {
            sql.push_str(&format!(
                "ALTER TABLE samples ADD COLUMN {} REAL;",
                m.name()
            ));
        }
    }
    sql.push_str(&format!("PRAGMA user_version = {version};"));
    tx.execute_batch(&sql)?;
    Ok(())
}

impl Store {
    /// Opens (creating if needed) the store under `state_dir` for reading and writing.
    ///
    /// Safe on hostile ground: the state directory must be the user's own and private (see
    /// `files`); the database file is created 0600 by us (`O_EXCL|O_NOFOLLOW`) or must be a
    /// regular file of ours with one link; SQLite is told not to follow a symlink either (it
    /// opens its -wal and -shm files with `O_NOFOLLOW` itself).
    ///
    /// Race-free when many sentinels start at once on a new state directory: the busy timeout
    /// is set before anything else, and the schema is created and migrated inside one
    /// `BEGIN IMMEDIATE` transaction that re-reads the schema version under the write lock.
    pub fn open(state_dir: &Path) -> Result<Store> {
        use rusqlite::OpenFlags;
        let dir = crate::files::Dir::open_private(state_dir, true)?;
        drop(dir.own_file(DB_FILE)?);
        let path = state_dir.join(DB_FILE);
        // SQLite's NOFOLLOW refuses a symlink anywhere in the path: it is given the directory's
        // real path (the user's own link to their state directory keeps working).
        let real = dir.real_path()?;
        let conn = Connection::open_with_flags(
            real.join(DB_FILE),
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_NOFOLLOW
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .with_context(|| format!("opening the store {}", path.display()))?;
        if !dir.same_dir(&real) {
            anyhow::bail!(
                "the state directory {} was replaced while opening it",
                state_dir.display()
            );
        }
        conn.busy_timeout(BUSY_TIMEOUT)?;
        let store = Store { conn, path };
        store.migrate()?;
        store.wal()?;
        store
            .conn
            .pragma_update(None, "synchronous", "NORMAL")
            .context("configuring the store")?;
        // SQLite's page cache, bounded: a run writes at the end of its tables and reads little
        // back, so 128 KiB (32 pages: the B-tree paths of the tables it appends to) holds what
        // it touches. The default (2 MiB) filled over the first 5–10 minutes of a run sampling
        // 20 times a second and showed as growth of the sentinel's own memory; 128 KiB fills
        // in about two.
        store
            .conn
            .pragma_update(None, "cache_size", -128)
            .context("configuring the store")?;
        Ok(store)
    }

    /// Opens an existing store for reading only (`list`, `status`, `report`, `compare`,
    /// `baseline save`): works on a read-only state directory and never writes to it. A store
    /// of an older schema is migrated once through [`Store::open`] when the directory is
    /// writable.
    pub fn open_read_only(state_dir: &Path) -> Result<Store> {
        use rusqlite::OpenFlags;
        let dir = crate::files::Dir::open_private(state_dir, false)?;
        match dir.lstat(DB_FILE)? {
            None => {
                return Err(crate::exit::usage(format!(
                    "no runs under '{}' (set --state-dir or LEAK_SENTINEL_DIR)",
                    state_dir.display()
                )));
            }
            Some(st) if st.st_mode & libc::S_IFMT != libc::S_IFREG => {
                anyhow::bail!(
                    "'{}' is not a regular file (a symbolic link?); refusing to open it",
                    state_dir.join(DB_FILE).display()
                );
            }
            Some(_) => {}
        }
        let path = state_dir.join(DB_FILE);
        // SQLite's NOFOLLOW refuses a symlink anywhere in the path: it is given the directory's
        // real path (the user's own link to their state directory keeps working).
        let real = dir.real_path()?.join(DB_FILE);
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NOFOLLOW
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let open = |conn: Connection| -> Result<Store> {
            conn.busy_timeout(BUSY_TIMEOUT)?;
            // The first read: fails here when the database cannot be read this way.
            let _: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
            Ok(Store {
                conn,
                path: path.clone(),
            })
        };
        let first = Connection::open_with_flags(&real, flags)
            .map_err(anyhow::Error::from)
            .and_then(open);
        let store = match first {
            Ok(s) => s,
            // A WAL database on a read-only directory whose -shm file is gone (the last writer
            // closed cleanly) cannot be opened for shared reading; nobody can write there
            // either, so it is read as an immutable file.
            Err(_) => {
                let uri = format!("file:{}?immutable=1", uri_path(&real));
                Connection::open_with_flags(&uri, flags | OpenFlags::SQLITE_OPEN_URI)
                    .map_err(anyhow::Error::from)
                    .and_then(open)
                    .with_context(|| format!("opening the store {} read-only", path.display()))?
            }
        };
        let version: i64 = store
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version > SCHEMA_VERSION {
            anyhow::bail!(
                "the store {} was written by a newer leak-sentinel (schema {version} > {SCHEMA_VERSION})",
                path.display()
            );
        }
        if version < SCHEMA_VERSION {
            drop(store);
            return Store::open(state_dir).with_context(|| {
                format!(
                    "the store {} needs migrating to schema {SCHEMA_VERSION} once with write access",
                    path.display()
                )
            });
        }
        Ok(store)
    }

    /// WAL mode (readers never block the writer). Switching needs a moment alone with the
    /// database; SQLite does not always call the busy handler for it, so it is retried here.
    fn wal(&self) -> Result<()> {
        let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
        loop {
            match self
                .conn
                .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0))
            {
                Ok(_) => return Ok(()),
                Err(rusqlite::Error::SqliteFailure(e, _))
                    if e.code == rusqlite::ErrorCode::DatabaseBusy
                        && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) => {
                    return Err(e).with_context(|| {
                        format!("switching the store {} to WAL", self.path.display())
                    });
                }
            }
        }
    }

    fn migrate(&self) -> Result<()> {
        // The first read: a damaged or foreign file fails here ("file is not a database").
        let version: i64 = self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .with_context(|| format!("reading the store {}", self.path.display()))?;
        if version > SCHEMA_VERSION {
            anyhow::bail!(
                "the store {} was written by a newer leak-sentinel (schema {version} > {SCHEMA_VERSION})",
                self.path.display()
            );
        }
        if version == SCHEMA_VERSION {
            return Ok(());
        }
        // Under the write lock, taken up front (a deferred transaction that reads first and
        // writes later can fail with "database is locked" without waiting), and re-reading the
        // version: another sentinel may have migrated in the meantime.
        let tx = rusqlite::Transaction::new_unchecked(
            &self.conn,
            rusqlite::TransactionBehavior::Immediate,
        )
        .context("locking the store to create its schema")?;
        let version: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version < 1 {
            let cols: Vec<String> = Metric::ALL
                .iter()
                .map(|m| format!("{} REAL", m.name()))
                .collect();
            let sql = format!(
                "CREATE TABLE IF NOT EXISTS runs (
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
                 PRAGMA user_version = 1;",
                cols.join(", ")
            );
            tx.execute_batch(&sql)
                .context("creating the store schema")?;
        }
        if version < 2 {
            // v2: FD inventory changes (one row per descriptor opened or closed, not per sample)
            // and diagnosis snapshots (memory maps) as JSON.
            tx.execute_batch(
                "CREATE TABLE IF NOT EXISTS fd_changes (
                     run_id INTEGER NOT NULL, t REAL NOT NULL, opened INTEGER NOT NULL,
                     pid INTEGER NOT NULL, fd INTEGER NOT NULL, kind TEXT NOT NULL,
                     target TEXT NOT NULL, grp TEXT NOT NULL);
                 CREATE INDEX IF NOT EXISTS fd_changes_run ON fd_changes(run_id, t);
                 CREATE TABLE IF NOT EXISTS snapshots (
                     run_id INTEGER NOT NULL, t REAL NOT NULL, kind TEXT NOT NULL, json TEXT NOT NULL);
                 CREATE INDEX IF NOT EXISTS snapshots_run ON snapshots(run_id, kind, t);
                 PRAGMA user_version = 2;",
            )
            .context("migrating the store to schema 2")?;
        }
        if version < 5 {
            // v3–v5: metrics appended to `Metric::ALL` since (rss_anon_bytes, target_stopped,
            // then the JVM's) get their column.
            add_missing_metric_columns(&tx, 5).context("migrating the store to schema 5")?;
        }
        if version < 6 {
            // v6: the final report's JSON, committed with the run's end (the source the report
            // file and status.json are derived from).
            tx.execute_batch(
                "ALTER TABLE runs ADD COLUMN report_json TEXT;
                 PRAGMA user_version = 6;",
            )
            .context("migrating the store to schema 6")?;
        }
        if version < 7 {
            // v7: fds_surviving (descriptors that outlived their group's churn) gets its column.
            add_missing_metric_columns(&tx, 7).context("migrating the store to schema 7")?;
        }
        if version < 8 {
            // v8: the target's own gauges (--target-metrics), one row per gauge and sample: the
            // gauges are the run's, not a fixed set of columns.
            tx.execute_batch(
                "CREATE TABLE IF NOT EXISTS gauge_samples (
                     run_id INTEGER NOT NULL, t REAL NOT NULL, name TEXT NOT NULL, value REAL NOT NULL);
                 CREATE INDEX IF NOT EXISTS gauge_samples_run ON gauge_samples(run_id, t);
                 PRAGMA user_version = 8;",
            )
            .context("migrating the store to schema 8")?;
        }
        tx.commit().context("committing the store schema")?;
        Ok(())
    }

    /// Records descriptors opened and closed at `t` (one transaction).
    pub fn append_fd_changes(
        &self,
        id: i64,
        t: f64,
        opened: &[crate::diagnose::fds::FdEntry],
        closed: &[crate::diagnose::fds::FdEntry],
    ) -> Result<()> {
        if opened.is_empty() && closed.is_empty() {
            return Ok(());
        }
        let tx = self.conn.unchecked_transaction()?;
        {
            let mut st = tx.prepare_cached(
                "INSERT INTO fd_changes (run_id, t, opened, pid, fd, kind, target, grp) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?;
            for (flag, list) in [(1, opened), (0, closed)] {
                for e in list {
                    let kind = serde_json::to_value(e.kind)?
                        .as_str()
                        .unwrap_or("other")
                        .to_string();
                    st.execute(params![id, t, flag, e.pid, e.fd, kind, e.target, e.group])?;
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// The descriptors open at time `t` (all changes up to `t` replayed), with the time each
    /// was opened.
    pub fn fd_state_at(
        &self,
        id: i64,
        t: f64,
    ) -> Result<Vec<(crate::diagnose::fds::FdEntry, f64)>> {
        let (open, _) = self.replay_fd_changes(id, t)?;
        let mut v: Vec<_> = open.into_values().collect();
        v.sort_by_key(|(e, _)| (e.pid, e.fd));
        Ok(v)
    }

    /// Per group, the longest life of a descriptor recorded open and then closed in run `id`
    /// (what [`crate::diagnose::fds::Tracker`] learns during the run; for resume).
    pub fn fd_churn_ages(&self, id: i64) -> Result<Vec<(String, f64)>> {
        let (_, ages) = self.replay_fd_changes(id, f64::MAX)?;
        Ok(ages.into_iter().collect())
    }

    /// Replays the recorded opens and closes up to `t`: the descriptors then open (with their
    /// opening time) and, per group, the longest life of a closed one.
    #[allow(clippy::type_complexity)]
    fn replay_fd_changes(
        &self,
        id: i64,
        t: f64,
    ) -> Result<(
        std::collections::HashMap<(i32, i32, String), (crate::diagnose::fds::FdEntry, f64)>,
        std::collections::BTreeMap<String, f64>,
    )> {
        use crate::diagnose::fds::{FdEntry, FdKind};
        let mut st = self.conn.prepare(
            "SELECT t, opened, pid, fd, kind, target, grp FROM fd_changes WHERE run_id = ?1 AND t <= ?2 ORDER BY t, rowid",
        )?;
        let mut open = std::collections::HashMap::new();
        let mut ages = std::collections::BTreeMap::<String, f64>::new();
        let rows = st.query_map(params![id, t], |r| {
            Ok((
                r.get::<_, f64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i32>(2)?,
                r.get::<_, i32>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, String>(6)?,
            ))
        })?;
        for row in rows {
            let (t, opened, pid, fd, kind, target, group) = row?;
            let kind: FdKind =
                serde_json::from_value(serde_json::Value::String(kind)).unwrap_or(FdKind::Other);
            let e = FdEntry {
                pid,
                fd,
                kind,
                target,
                group,
            };
            if opened == 1 {
                open.entry(e.key()).or_insert((e, t));
            } else if let Some((_, since)) = open.remove(&e.key()) {
                let age = ages.entry(e.group).or_insert(0.0);
                *age = age.max(t - since);
            }
        }
        Ok((open, ages))
    }

    /// Stores a snapshot (JSON) of `kind` at `t`.
    pub fn append_snapshot(&self, id: i64, t: f64, kind: &str, json: &str) -> Result<()> {
        self.conn.execute(
            "INSERT INTO snapshots (run_id, t, kind, json) VALUES (?1, ?2, ?3, ?4)",
            params![id, t, kind, json],
        )?;
        Ok(())
    }

    /// The diagnosis baseline: the first snapshot of `kind` taken at or after `from` (the end
    /// of warm-up) and before `before`; failing that, the last one before `before`.
    pub fn baseline_snapshot(
        &self,
        id: i64,
        kind: &str,
        from: f64,
        before: f64,
    ) -> Result<Option<(f64, String)>> {
        let first_after = self
            .conn
            .query_row(
                "SELECT t, json FROM snapshots WHERE run_id = ?1 AND kind = ?2 AND t >= ?3 AND t < ?4 ORDER BY t LIMIT 1",
                params![id, kind, from, before],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        if first_after.is_some() {
            return Ok(first_after);
        }
        Ok(self
            .conn
            .query_row(
                "SELECT t, json FROM snapshots WHERE run_id = ?1 AND kind = ?2 AND t < ?3 ORDER BY t DESC LIMIT 1",
                params![id, kind, before],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }

    /// The latest snapshot of `kind`.
    pub fn latest_snapshot(&self, id: i64, kind: &str) -> Result<Option<(f64, String)>> {
        Ok(self
            .conn
            .query_row(
                "SELECT t, json FROM snapshots WHERE run_id = ?1 AND kind = ?2 ORDER BY t DESC LIMIT 1",
                params![id, kind],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }

    /// Creates a run; fails if the name exists.
    pub fn create_run(&self, name: &str, settings: &str, target: &str, t: f64) -> Result<i64> {
        self.conn.execute(
            "INSERT INTO runs (name, settings, target, status, started_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![name, settings, target, RunStatus::Running, t],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Deletes a run and everything recorded for it.
    pub fn delete_run(&self, id: i64) -> Result<()> {
        let tx = self.conn.unchecked_transaction()?;
        for table in [
            "samples",
            "checks",
            "events",
            "fd_changes",
            "snapshots",
            "gauge_samples",
        ] {
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

    /// Records the end of a run and its event (`finish`, `write_failed`) in one transaction:
    /// after a crash the store holds either the whole end or none of it.
    pub fn end_run(&self, id: i64, end: &RunEnd<'_>, event: (EventKind, &str)) -> Result<()> {
        let tx = self.conn.unchecked_transaction()?;
        tx.execute(
            "INSERT INTO events (run_id, t, kind, detail) VALUES (?1, ?2, ?3, ?4)",
            params![id, end.ended_at, event.0, event.1],
        )?;
        tx.execute(
            "UPDATE runs SET status = ?2, ended_at = ?3, verdict = ?4, exit_code = ?5, failure_reason = ?6, report_file = ?7, report_json = ?8 WHERE id = ?1",
            params![
                id,
                end.status,
                end.ended_at,
                end.verdict,
                end.exit_code,
                end.failure_reason,
                end.report_file,
                end.report_json
            ],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Replaces the stored final report (its events grew after the end was recorded).
    pub fn update_report(&self, id: i64, report_json: &str) -> Result<()> {
        self.conn.execute(
            "UPDATE runs SET report_json = ?2 WHERE id = ?1",
            params![id, report_json],
        )?;
        Ok(())
    }

    /// The final report of an ended run, JSON (`None` while running, for a run that stopped
    /// without one, or for one ended by a version that did not store it).
    pub fn final_report(&self, id: i64) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row("SELECT report_json FROM runs WHERE id = ?1", [id], |r| {
                r.get::<_, Option<String>>(0)
            })
            .optional()?
            .flatten())
    }

    /// Opens a stopped run again (resume): running, its earlier end forgotten, and the `resume`
    /// event, in one transaction.
    pub fn reopen_run(&self, id: i64, t: f64, detail: &str) -> Result<()> {
        let tx = self.conn.unchecked_transaction()?;
        tx.execute(
            "UPDATE runs SET status = ?2, ended_at = NULL, verdict = NULL, exit_code = NULL, failure_reason = NULL, report_file = NULL, report_json = NULL WHERE id = ?1",
            params![id, RunStatus::Running],
        )?;
        tx.execute(
            "INSERT INTO events (run_id, t, kind, detail) VALUES (?1, ?2, ?3, ?4)",
            params![id, t, EventKind::Resume, detail],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Appends one sample (committed on return).
    pub fn append_sample(&self, id: i64, s: &Sample) -> Result<()> {
        // The statement's text is built once per process, not at every sample.
        static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        let sql = SQL.get_or_init(|| {
            let placeholders: Vec<String> = (0..Metric::ALL.len())
                .map(|i| format!("?{}", i + 3))
                .collect();
            let names: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
            format!(
                "INSERT INTO samples (run_id, t, {}) VALUES (?1, ?2, {})",
                names.join(", "),
                placeholders.join(", ")
            )
        });
        let mut st = self.conn.prepare_cached(sql)?;
        let mut values: Vec<rusqlite::types::Value> = vec![id.into(), s.t.into()];
        values.extend(Metric::ALL.iter().map(|m| match s.get(*m) {
            Some(x) => rusqlite::types::Value::Real(x),
            None => rusqlite::types::Value::Null,
        }));
        st.execute(rusqlite::params_from_iter(values))?;
        Ok(())
    }

    /// All samples of a run, in time order.
    pub fn samples(&self, id: i64) -> Result<Vec<Sample>> {
        let mut out = Vec::new();
        self.for_each_sample(id, |s| out.push(s))?;
        Ok(out)
    }

    /// Each sample of a run in time order, one at a time: nothing is held per sample (`resume`
    /// rebuilds a session from them).
    pub fn for_each_sample(&self, id: i64, mut f: impl FnMut(Sample)) -> Result<()> {
        let names: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
        let mut st = self.conn.prepare(&format!(
            "SELECT t, {} FROM samples WHERE run_id = ?1 ORDER BY t",
            names.join(", ")
        ))?;
        let mut rows = st.query([id])?;
        while let Some(r) = rows.next()? {
            let mut s = Sample::at(r.get(0)?);
            for (i, m) in Metric::ALL.iter().enumerate() {
                s.set(*m, r.get::<_, Option<f64>>(i + 1)?);
            }
            f(s);
        }
        Ok(())
    }

    /// Appends the target's gauges read at `t` (`(column, value)`, one transaction).
    pub fn append_gauges(&self, id: i64, t: f64, values: &[(String, f64)]) -> Result<()> {
        if values.is_empty() {
            return Ok(());
        }
        let tx = self.conn.unchecked_transaction()?;
        {
            let mut st = tx.prepare_cached(
                "INSERT INTO gauge_samples (run_id, t, name, value) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for (name, v) in values {
                st.execute(params![id, t, name, v])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// The target's gauges of a run, one series per column in the order first read.
    pub fn gauges(&self, id: i64) -> Result<Vec<crate::gauges::Series>> {
        let mut out: Vec<crate::gauges::Series> = Vec::new();
        self.for_each_gauge(id, |name, t, v| {
            let i = match out.iter().position(|s| s.column == name) {
                Some(i) => i,
                None if out.len() < crate::gauges::MAX_GAUGES => {
                    out.push(crate::gauges::Series {
                        column: name.to_string(),
                        ..Default::default()
                    });
                    out.len() - 1
                }
                // A store written by hand with more gauges than a run reads: the rest ignored.
                None => return,
            };
            out[i].t.push(t);
            out[i].v.push(v);
        })?;
        Ok(out)
    }

    /// Each gauge reading of a run (column, time, value) in time order, one at a time.
    pub fn for_each_gauge(&self, id: i64, mut f: impl FnMut(&str, f64, f64)) -> Result<()> {
        let mut st = self.conn.prepare(
            "SELECT t, name, value FROM gauge_samples WHERE run_id = ?1 ORDER BY t, rowid",
        )?;
        let mut rows = st.query([id])?;
        while let Some(r) = rows.next()? {
            let (t, name, v): (f64, String, f64) = (r.get(0)?, r.get(1)?, r.get(2)?);
            f(&name, t, v);
        }
        Ok(())
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
    pub fn append_event(&self, id: i64, t: f64, kind: EventKind, detail: &str) -> Result<()> {
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

/// The kind of lasting write failure an error is, in words (`disk full`, `disk quota exceeded`,
/// `I/O error`, `read-only file system`), or `None` for any other error. Trying again a moment
/// later does not cure these: a live run that meets one stops, resumable (see `session`).
pub fn write_failure(e: &anyhow::Error) -> Option<&'static str> {
    e.chain().find_map(|cause| {
        if let Some(rusqlite::Error::SqliteFailure(f, _)) = cause.downcast_ref::<rusqlite::Error>()
        {
            // SQLite reports ENOSPC and EDQUOT alike as SQLITE_FULL.
            return match f.code {
                rusqlite::ErrorCode::DiskFull => Some("disk full"),
                rusqlite::ErrorCode::SystemIoFailure => Some("I/O error"),
                rusqlite::ErrorCode::ReadOnly => Some("read-only file system"),
                _ => None,
            };
        }
        crate::files::os_write_failure(cause)
    })
}

/// A path as the path part of an SQLite `file:` URI (`?`, `#` and `%` escaped).
fn uri_path(p: &Path) -> String {
    let mut out = String::new();
    for b in p.as_os_str().as_encoded_bytes() {
        match *b {
            b'?' | b'#' | b'%' => out.push_str(&format!("%{b:02X}")),
            b if b.is_ascii_graphic() => out.push(b as char),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gauges_round_trip_per_column_and_go_with_their_run() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = Store::open(dir.path()).expect("open");
        let id = s.create_run("r", "{}", "{}", 0.0).expect("create");
        let other = s.create_run("o", "{}", "{}", 0.0).expect("create");
        let a = "gauge:go_goroutines".to_string();
        let b = r#"gauge:jvm_memory_used_bytes{area="heap"}"#.to_string();
        s.append_gauges(id, 1.0, &[(a.clone(), 10.0), (b.clone(), 5e6)])
            .expect("append");
        s.append_gauges(id, 2.0, &[(b.clone(), 6e6)])
            .expect("append");
        s.append_gauges(other, 1.0, &[(a.clone(), 99.0)])
            .expect("append");
        let g = s.gauges(id).expect("read");
        assert_eq!(g.len(), 2);
        assert_eq!(
            (g[0].column.as_str(), &g[0].t[..], &g[0].v[..]),
            (a.as_str(), &[1.0][..], &[10.0][..])
        );
        assert_eq!(
            (g[1].column.as_str(), &g[1].t[..], &g[1].v[..]),
            (b.as_str(), &[1.0, 2.0][..], &[5e6, 6e6][..])
        );
        s.delete_run(id).expect("delete");
        assert!(s.gauges(id).expect("read").is_empty());
        assert_eq!(s.gauges(other).expect("read")[0].v, vec![99.0]);
    }

    #[test]
    fn run_states_round_trip_and_an_unknown_one_is_a_clear_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = Store::open(dir.path()).expect("open");
        let id = s.create_run("r", "{}", "{}", 0.0).expect("create");
        let stored = |s: &Store| -> String {
            s.conn
                .query_row("SELECT status FROM runs WHERE id = ?1", [id], |r| r.get(0))
                .expect("status")
        };
        assert_eq!(stored(&s), "running");
        for st in RunStatus::ALL {
            let end = RunEnd {
                status: st,
                ended_at: 1.0,
                verdict: None,
                exit_code: 5,
                failure_reason: None,
                report_file: None,
                report_json: None,
            };
            s.end_run(id, &end, (EventKind::Finish, "")).expect("end");
            assert_eq!(stored(&s), st.as_str());
            assert_eq!(serde_json::to_value(st).expect("json"), st.as_str());
            assert_eq!(s.find_run("r").expect("read").map(|r| r.status), Some(st));
        }
        s.conn
            .execute("UPDATE runs SET status = 'exploded' WHERE id = ?1", [id])
            .expect("plant");
        let e = format!("{:#}", s.find_run("r").expect_err("unknown state"));
        assert!(e.contains("unknown run state 'exploded'"), "{e}");
    }

    #[test]
    fn event_kinds_round_trip_and_an_unknown_one_is_a_clear_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = Store::open(dir.path()).expect("open");
        let id = s.create_run("r", "{}", "{}", 0.0).expect("create");
        for (i, kind) in EventKind::ALL.into_iter().enumerate() {
            s.append_event(id, i as f64, kind, "d").expect("append");
            // The JSON word (events lists, the HTML report) is the stored word.
            assert_eq!(serde_json::to_value(kind).expect("json"), kind.as_str());
        }
        let words: Vec<String> = s
            .conn
            .prepare("SELECT kind FROM events WHERE run_id = ?1 ORDER BY t")
            .and_then(|mut st| st.query_map([id], |r| r.get(0))?.collect())
            .expect("stored words");
        let want: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(words, want);
        let read: Vec<EventKind> = s
            .events(id)
            .expect("events")
            .iter()
            .map(|e| e.kind)
            .collect();
        assert_eq!(read, EventKind::ALL);
        s.conn
            .execute("UPDATE events SET kind = 'exploded' WHERE t = 0", [])
            .expect("plant");
        let e = format!("{:#}", s.events(id).expect_err("unknown kind"));
        assert!(e.contains("unknown event kind 'exploded'"), "{e}");
    }

    #[test]
    fn fd_changes_replay() {
        use crate::diagnose::fds::{FdEntry, FdKind};
        let dir = tempfile::tempdir().expect("tempdir");
        let s = Store::open(dir.path()).expect("open");
        let id = s.create_run("r", "{}", "{}", 0.0).expect("create");
        let e = |fd| FdEntry {
            pid: 1,
            fd,
            kind: FdKind::Tcp,
            target: format!("t{fd}"),
            group: "g".into(),
        };
        s.append_fd_changes(id, 1.0, &[e(3), e(4)], &[])
            .expect("append");
        s.append_fd_changes(id, 2.0, &[e(5)], &[e(3)])
            .expect("append");
        let at1: Vec<i32> = s
            .fd_state_at(id, 1.5)
            .expect("replay")
            .iter()
            .map(|(e, _)| e.fd)
            .collect();
        assert_eq!(at1, vec![3, 4]);
        let now = s.fd_state_at(id, f64::MAX).expect("replay");
        assert_eq!(
            now.iter().map(|(e, t)| (e.fd, *t)).collect::<Vec<_>>(),
            vec![(4, 1.0), (5, 2.0)]
        );
        assert_eq!(now[0].0.kind, FdKind::Tcp);
    }

    /// A database written by schema 1 (the first release) opens and is migrated forward.
    #[test]
    fn migrates_a_schema_1_database() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let c = Connection::open(dir.path().join("leak-sentinel.db")).expect("open");
            c.execute_batch(
                "CREATE TABLE runs (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, settings TEXT NOT NULL,
                   target TEXT NOT NULL, status TEXT NOT NULL, started_at REAL NOT NULL, ended_at REAL,
                   verdict TEXT, exit_code INTEGER, failure_reason TEXT, report_file TEXT);
                 CREATE TABLE samples (run_id INTEGER NOT NULL, t REAL NOT NULL, rss_bytes REAL, pss_bytes REAL,
                   uss_bytes REAL, swap_bytes REAL, anon_bytes REAL, file_bytes REAL, cgroup_memory_bytes REAL,
                   fds REAL, fds_socket REAL, fds_pipe REAL, fds_file REAL, fds_anon_inode REAL, fds_other REAL,
                   threads REAL, processes REAL);
                 CREATE TABLE checks (run_id INTEGER NOT NULL, t REAL NOT NULL, failed INTEGER NOT NULL, detail TEXT NOT NULL);
                 CREATE TABLE events (run_id INTEGER NOT NULL, t REAL NOT NULL, kind TEXT NOT NULL, detail TEXT NOT NULL);
                 INSERT INTO runs (name, settings, target, status, started_at) VALUES ('old', '{}', '{}', 'completed', 5.0);
                 INSERT INTO samples (run_id, t, rss_bytes) VALUES (1, 6.0, 1024.0);
                 PRAGMA user_version = 1;",
            )
            .expect("v1 schema");
        }
        let s = Store::open(dir.path()).expect("migrates");
        let r = s.find_run("old").expect("q").expect("kept");
        assert_eq!(
            s.samples(r.id).expect("samples")[0].get(Metric::RssBytes),
            Some(1024.0)
        );
        s.append_snapshot(r.id, 7.0, "maps", "{}")
            .expect("v2 table exists");
    }

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
            s.append_event(id, 100.0, EventKind::Start, "x")
                .expect("event");
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
        assert_eq!(s.events(id).expect("events")[0].kind, EventKind::Start);
        assert_eq!(
            s.latest_run().expect("latest").map(|r| r.name),
            Some("r1".into())
        );
    }
}
