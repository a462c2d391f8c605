//! `analyze`: parses a recording of samples — leak-sentinel's CSV (the format `report --csv`
//! exports, or any CSV with a time column), a psrecord log, or a procpath recording (the rows of
//! its SQLite database or a CSV of it) — classifies its columns into memory / FD / thread / other
//! metrics, and runs the detector on each; the gate columns decide the overall verdict.
//!
//! Pure: the bytes come from a reader and the database rows from a callback, both supplied by
//! the edge that opens the file (`recording`), and so does the page size. Everything parsed is
//! bounded ([`MAX_FILE_BYTES`] by that reader; [`MAX_ROWS`], [`MAX_COLUMNS`], [`MAX_VALUES`],
//! [`MAX_LINE_BYTES`] here); bad input is a one-line [`CsvError`], never a panic.

mod peers;

pub use peers::{ProcpathQuery, ProcpathRows, procpath_page_size, procpath_query};

use crate::detect::{self, Judgement, Params, Verdict};
use crate::units::MIB;
use std::io::Read;

/// Minimum data rows a recording must have to be judged at all.
pub const MIN_ROWS: usize = 5;
/// Largest file `analyze` reads, bytes (a week at one sample a second is far below it).
pub const MAX_FILE_BYTES: u64 = 512 * 1024 * 1024;
/// Most time points (rows after grouping) kept.
pub const MAX_ROWS: usize = 2_000_000;
/// Most columns in a header.
pub const MAX_COLUMNS: usize = 1024;
/// Most values held in memory (time points × metric columns): 256 MB of `f64`.
pub const MAX_VALUES: usize = 32_000_000;
/// Longest line, bytes (a procpath row with a long command line fits easily).
pub const MAX_LINE_BYTES: usize = 1024 * 1024;

/// Bad input, with the line and column it was found at.
#[derive(Debug, thiserror::Error)]
pub enum CsvError {
    /// The file could not be read (made by the reader of the file, `recording`).
    #[error("cannot read '{path}': {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Something in the content is wrong.
    #[error("{0}")]
    Content(String),
}

/// The recording formats `analyze` recognises, named in its output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub enum InputFormat {
    /// A CSV with a `t_seconds` or `timestamp` column (what `report --csv` writes).
    #[default]
    #[serde(rename = "csv")]
    Csv,
    /// psrecord's plain log (`psrecord PID --log FILE`).
    #[serde(rename = "psrecord")]
    Psrecord,
    /// psrecord's CSV log (`--log-format csv`).
    #[serde(rename = "psrecord-csv")]
    PsrecordCsv,
    /// procpath's SQLite recording (`procpath record -d FILE`).
    #[serde(rename = "procpath-sqlite")]
    ProcpathSqlite,
    /// A CSV of procpath's `record` table (`sqlite3 -csv -header FILE 'SELECT * FROM record'`).
    #[serde(rename = "procpath-csv")]
    ProcpathCsv,
}

impl InputFormat {
    /// The name used in the output (`"input_format"`).
    pub fn name(self) -> &'static str {
        match self {
            InputFormat::Csv => "csv",
            InputFormat::Psrecord => "psrecord",
            InputFormat::PsrecordCsv => "psrecord-csv",
            InputFormat::ProcpathSqlite => "procpath-sqlite",
            InputFormat::ProcpathCsv => "procpath-csv",
        }
    }

    /// What was read and how its units were converted, for people.
    pub fn describe(self) -> &'static str {
        match self {
            InputFormat::Csv => {
                "CSV with a time column; *_kb/*_kib, *_mb/*_mib columns read as memory"
            }
            InputFormat::Psrecord => {
                "psrecord log; Real (MB) and Virtual (MB) are MiB (psrecord divides by 1024²), read as rss_bytes and vms_bytes"
            }
            InputFormat::PsrecordCsv => {
                "psrecord CSV log; mem_real and mem_virtual are MiB, read as rss_bytes and vms_bytes"
            }
            InputFormat::ProcpathSqlite => {
                "procpath SQLite recording; every recorded process summed at each timestamp"
            }
            InputFormat::ProcpathCsv => {
                "CSV of procpath's record table; every recorded process summed at each timestamp, stat_rss in pages of this machine's size"
            }
        }
    }
}

/// A parsed sample table: time in seconds from the first row, and the metric columns.
#[derive(Debug, Clone, Default)]
pub struct Table {
    /// Seconds since the first row.
    pub t: Vec<f64>,
    /// Metric columns in file order: name and values (NaN where a cell was empty). Memory
    /// columns are in bytes whatever the file's unit (`heap_mb` values are multiplied by 2²⁰).
    pub columns: Vec<(String, Vec<f64>)>,
    /// The format the table was read from.
    pub format: InputFormat,
}

/// What a recording is, from its first bytes `head` (the first line, or the first
/// [`MAX_LINE_BYTES`] when no newline came): a SQLite header is procpath's database,
/// psrecord's `# Elapsed time` line its plain log, psrecord's or procpath's CSV header theirs,
/// anything else a CSV with `t_seconds` or `timestamp`. `name` is used in error messages.
pub fn recognise(name: &str, head: &[u8]) -> Result<InputFormat, CsvError> {
    if head.len() >= MAX_LINE_BYTES && !head.contains(&b'\n') {
        return Err(CsvError::Content(format!(
            "{name}: line 1 is longer than {} KiB; not a recording",
            MAX_LINE_BYTES / 1024
        )));
    }
    if head.starts_with(b"SQLite format 3\0") {
        return Ok(InputFormat::ProcpathSqlite);
    }
    let first_line = head.split(|b| *b == b'\n').next().unwrap_or(&[]);
    let first_line = String::from_utf8_lossy(first_line);
    let first_line = first_line.trim_start_matches('\u{feff}').trim();
    if first_line.starts_with('#') && first_line.contains("Elapsed time") {
        return Ok(InputFormat::Psrecord);
    }
    let cells: Vec<String> = first_line
        .split(',')
        .map(|c| c.trim().trim_matches('"').to_ascii_lowercase())
        .collect();
    if cells.len() >= 5 && cells[..5] == ["elapsed_time", "nproc", "cpu", "mem_real", "mem_virtual"]
    {
        return Ok(InputFormat::PsrecordCsv);
    }
    if cells.iter().any(|c| c == "ts") && cells.iter().any(|c| c.starts_with("stat_")) {
        return Ok(InputFormat::ProcpathCsv);
    }
    Ok(InputFormat::Csv)
}

/// Parses a text recording of `format` (what [`recognise`] said) from `reader`, the whole
/// recording from its first byte. `page_size` (bytes) converts procpath's `stat_rss` pages: a
/// CSV of its table does not say the recording machine's, so the caller passes its own.
/// procpath's SQLite database is not text: read it with [`procpath_query`].
pub fn parse_text<R: Read>(
    reader: R,
    name: &str,
    format: InputFormat,
    page_size: f64,
) -> Result<Table, CsvError> {
    match format {
        InputFormat::Csv => parse_csv(reader, name),
        InputFormat::Psrecord => peers::parse_psrecord_log(std::io::BufReader::new(reader), name),
        InputFormat::PsrecordCsv => parse_delimited(reader, name, InputFormat::PsrecordCsv),
        InputFormat::ProcpathCsv => peers::parse_procpath_csv(reader, name, page_size),
        InputFormat::ProcpathSqlite => Err(CsvError::Content(format!(
            "{name}: a SQLite database is read through its rows, not as text"
        ))),
    }
}

/// Bytes per unit of a memory column, from its name's suffix (case-insensitive): `_bytes` 1,
/// `_kb`/`_kib` 1024, `_mb`/`_mib` 2²⁰, `_gb`/`_gib` 2³⁰. `None` for a column that is not
/// memory. "kB" and "MB" are binary here, as in /proc ("VmRSS: … kB") and psrecord ("Real (MB)"
/// is RSS / 1024²), the places such numbers come from.
pub fn memory_unit(name: &str) -> Option<f64> {
    let n = name.to_ascii_lowercase();
    [
        ("_bytes", 1.0),
        ("_kib", 1024.0),
        ("_kb", 1024.0),
        ("_mib", MIB),
        ("_mb", MIB),
        ("_gib", MIB * 1024.0),
        ("_gb", MIB * 1024.0),
    ]
    .iter()
    .find(|(suffix, _)| n.ends_with(suffix))
    .map(|(_, f)| *f)
}

/// Collects rows into a [`Table`], enforcing order and the size limits.
struct Builder {
    name: String,
    table: Table,
    t0: Option<f64>,
    last: Option<f64>,
}

impl Builder {
    fn new(name: &str, format: InputFormat, columns: Vec<String>) -> Result<Builder, CsvError> {
        let err = |msg: String| CsvError::Content(format!("{name}: {msg}"));
        if columns.len() > MAX_COLUMNS {
            return Err(err(format!(
                "{} columns; analyze reads at most {MAX_COLUMNS}",
                columns.len()
            )));
        }
        for (i, c) in columns.iter().enumerate() {
            if columns[..i].contains(c) {
                return Err(err(format!("column '{c}' appears twice")));
            }
        }
        Ok(Builder {
            name: name.to_string(),
            table: Table {
                t: Vec::new(),
                columns: columns.into_iter().map(|c| (c, Vec::new())).collect(),
                format,
            },
            t0: None,
            last: None,
        })
    }

    fn err(&self, msg: String) -> CsvError {
        CsvError::Content(format!("{}: {msg}", self.name))
    }

    /// Adds one row at `ts` seconds; `at` says where it came from ("line 4"), `cell` is the time
    /// as written, for messages.
    fn push(&mut self, at: &str, cell: &str, ts: f64, values: &[f64]) -> Result<(), CsvError> {
        if let Some(prev) = self.last {
            if ts == prev {
                return Err(self.err(format!("{at}: duplicate timestamp '{cell}'")));
            }
            if ts < prev {
                return Err(self.err(format!(
                    "{at}: timestamp '{cell}' goes backwards; rows must be sorted by time"
                )));
            }
            // Rows closer than this are a unit mix-up (milliseconds read as seconds, or worse),
            // not a recording: the rates would be meaningless.
            if ts - prev < 1e-6 {
                return Err(self.err(format!(
                    "{at}: timestamp '{cell}' is less than 1 µs after the previous row"
                )));
            }
        }
        if self.table.t.len() >= MAX_ROWS {
            return Err(self.err(format!(
                "more than {MAX_ROWS} rows; thin the recording or cut it to the span to judge"
            )));
        }
        if (self.table.t.len() + 1).saturating_mul(self.table.columns.len()) > MAX_VALUES {
            return Err(self.err(format!(
                "more than {MAX_VALUES} values ({} columns); drop columns or thin the rows",
                self.table.columns.len()
            )));
        }
        self.last = Some(ts);
        let base = *self.t0.get_or_insert(ts);
        self.table.t.push(ts - base);
        for (k, col) in self.table.columns.iter_mut().enumerate() {
            col.1.push(values.get(k).copied().unwrap_or(f64::NAN));
        }
        Ok(())
    }

    fn finish(self) -> Result<Table, CsvError> {
        let table = self.table;
        let err = |msg: String| CsvError::Content(format!("{}: {msg}", self.name));
        if table.t.len() < MIN_ROWS {
            return Err(err(format!(
                "{} data rows; at least {MIN_ROWS} are needed",
                table.t.len()
            )));
        }
        if table.columns.is_empty() {
            return Err(err("no metric columns besides the time column".into()));
        }
        if !table
            .columns
            .iter()
            .any(|(_, v)| v.iter().any(|x| x.is_finite()))
        {
            return Err(err("every metric cell is empty: nothing to judge".into()));
        }
        Ok(table)
    }
}

/// Parses CSV text (header row first) with a `t_seconds` or `timestamp` column. `name` is used
/// in error messages. Memory columns with a unit suffix (`_kb`, `_mib`…) are converted to bytes.
pub fn parse_csv<R: Read>(reader: R, name: &str) -> Result<Table, CsvError> {
    parse_delimited(reader, name, InputFormat::Csv)
}

/// The CSV formats: a generic one, or psrecord's CSV log (fixed columns, MiB).
fn parse_delimited<R: Read>(reader: R, name: &str, format: InputFormat) -> Result<Table, CsvError> {
    let err = |msg: String| CsvError::Content(format!("{name}: {msg}"));
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .from_reader(reader);
    let headers = rdr
        .headers()
        .map_err(|e| err(format!("line 1: unreadable header ({e})")))?
        .clone();
    if headers.is_empty() || headers.iter().all(str::is_empty) {
        return Err(err("line 1: missing header row".into()));
    }
    if headers.len() > MAX_COLUMNS {
        return Err(err(format!(
            "line 1: {} columns; analyze reads at most {MAX_COLUMNS}",
            headers.len()
        )));
    }
    let time_names: &[&str] = match format {
        InputFormat::PsrecordCsv => &["elapsed_time"],
        _ => &["t_seconds", "timestamp"],
    };
    let time_col = time_names
        .iter()
        .find_map(|n| headers.iter().position(|h| h == *n))
        .ok_or_else(|| {
            err("line 1: no time column; the header needs 't_seconds' or 'timestamp' (psrecord logs and procpath recordings are recognised by their own headers)".into())
        })?;
    let time_is_stamp = &headers[time_col] == "timestamp";
    if let Some(first_number) = headers.iter().find(|h| h.parse::<f64>().is_ok()) {
        return Err(err(format!(
            "line 1: header cell '{first_number}' is a number; the first row must name the columns"
        )));
    }
    // (index in the file, name in the table, factor to the table's unit)
    let plan: Vec<(usize, String, f64)> = (0..headers.len())
        .filter(|i| *i != time_col)
        .map(|i| {
            let h = &headers[i];
            match format {
                InputFormat::PsrecordCsv => {
                    let (n, f) = peers::psrecord_column(h);
                    (i, n, f)
                }
                _ => (i, h.to_string(), memory_unit(h).unwrap_or(1.0)),
            }
        })
        .collect();
    let mut b = Builder::new(name, format, plan.iter().map(|p| p.1.clone()).collect())?;
    let mut values = vec![f64::NAN; plan.len()];
    for rec in rdr.records() {
        let rec = rec.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line());
            err(format!("line {line}: {e}"))
        })?;
        let line = rec.position().map_or(0, |p| p.line());
        let cell = rec.get(time_col).unwrap_or("");
        let ts = parse_time(cell, time_is_stamp).ok_or_else(|| {
            err(format!(
                "line {line}, column '{}': '{cell}' is not a time",
                &headers[time_col]
            ))
        })?;
        for (k, (col, _, factor)) in plan.iter().enumerate() {
            let cell = rec.get(*col).unwrap_or("");
            values[k] = if cell.is_empty() {
                f64::NAN
            } else {
                match cell.parse::<f64>() {
                    Ok(v) if v.is_finite() && (v * factor).is_finite() => v * factor,
                    _ => {
                        return Err(err(format!(
                            "line {line}, column '{}': '{cell}' is not a number",
                            &headers[*col]
                        )));
                    }
                }
            };
        }
        b.push(&format!("line {line}"), cell, ts, &values)?;
    }
    b.finish()
}

fn parse_time(cell: &str, stamp: bool) -> Option<f64> {
    if let Ok(v) = cell.parse::<f64>() {
        return v.is_finite().then_some(v);
    }
    if stamp {
        let dt = chrono::DateTime::parse_from_rfc3339(cell).ok()?;
        return Some(dt.timestamp_micros() as f64 / 1e6);
    }
    None
}

/// The family a column belongs to, which decides its threshold and unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricKind {
    /// `*_bytes` (or `_kb`, `_kib`, `_mb`, `_mib`…): judged in MiB/min.
    Memory,
    /// `fds` and `fds_*`: FD/min.
    Fds,
    /// `threads`: threads/min.
    Threads,
    /// Anything else: units/min.
    Other,
}

impl MetricKind {
    /// Classifies a column by its name: memory by a unit suffix ([`memory_unit`]), `fds` and
    /// `fds_*`, `threads`, else other.
    pub fn of(name: &str) -> MetricKind {
        use crate::gauges::Kind;
        if let Some(k) = crate::gauges::kind_of(name) {
            match k {
                Kind::Memory => MetricKind::Memory,
                Kind::Fds => MetricKind::Fds,
                Kind::Threads => MetricKind::Threads,
                Kind::Other => MetricKind::Other,
            }
        } else if memory_unit(name).is_some() {
            MetricKind::Memory
        } else if name == "fds" || name.starts_with("fds_") {
            MetricKind::Fds
        } else if name == "threads" {
            MetricKind::Threads
        } else {
            MetricKind::Other
        }
    }

    /// Unit of rates of this kind.
    pub fn rate_unit(self) -> &'static str {
        match self {
            MetricKind::Memory => "MiB/min",
            MetricKind::Fds => "FD/min",
            MetricKind::Threads => "threads/min",
            MetricKind::Other => "units/min",
        }
    }

    /// Factor from the stored value to the judged unit (bytes → MiB).
    pub fn scale(self) -> f64 {
        if self == MetricKind::Memory {
            1.0 / MIB
        } else {
            1.0
        }
    }
}

/// Thresholds and options for judging a table.
#[derive(Debug, Clone)]
pub struct Settings {
    /// MiB/min.
    pub memory_threshold: f64,
    /// FD/min.
    pub fd_threshold: f64,
    /// Threads/min.
    pub thread_threshold: f64,
    /// Units/min for columns of no known kind, unless named in `column_thresholds`.
    pub other_threshold: f64,
    /// Per-column overrides (column name, rate per minute in the judged unit).
    pub column_thresholds: Vec<(String, f64)>,
    /// Warm-up seconds; `None` = 10 % of the span.
    pub warmup_s: Option<f64>,
    /// Confidence of the interval.
    pub confidence: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            memory_threshold: 0.1,
            fd_threshold: 0.1,
            thread_threshold: 0.1,
            other_threshold: 0.1,
            column_thresholds: Vec::new(),
            warmup_s: None,
            confidence: 0.95,
        }
    }
}

impl Settings {
    /// Threshold for a column.
    pub fn threshold_for(&self, name: &str, kind: MetricKind) -> f64 {
        if let Some((_, v)) = self.column_thresholds.iter().find(|(n, _)| n == name) {
            return *v;
        }
        match kind {
            MetricKind::Memory => self.memory_threshold,
            MetricKind::Fds => self.fd_threshold,
            MetricKind::Threads => self.thread_threshold,
            MetricKind::Other => self.other_threshold,
        }
    }
}

/// The judgement of one column.
#[derive(Debug, Clone)]
pub struct MetricResult {
    /// Column name.
    pub name: String,
    /// Its kind.
    pub kind: MetricKind,
    /// The detector's answer (rates in [`MetricKind::rate_unit`]).
    pub judgement: Judgement,
    /// Last value in the judged unit (MiB for memory).
    pub last_value: Option<f64>,
}

/// The judgement of a whole table.
#[derive(Debug, Clone)]
pub struct Analysis {
    /// Overall, from the gate columns: leak if any leaks, clean if all are clean.
    pub verdict: Verdict,
    /// Per column, in file order (columns with no values at all are left out).
    pub metrics: Vec<MetricResult>,
    /// Names of the columns that decide [`Analysis::verdict`] (see [`gate_columns`]).
    pub gate: Vec<String>,
    /// Seconds covered by the table.
    pub span_s: f64,
    /// Warm-up seconds used.
    pub warmup_s: f64,
    /// The format the table was read from.
    pub input_format: InputFormat,
}

/// Which metrics gate a run or a recording, and why memory is judged on the figure it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Gate {
    /// The gating metrics' names (sample metric names, CSV column names), memory first.
    pub metrics: Vec<String>,
    /// The memory figure that gates, when there is one.
    pub memory: Option<String>,
    /// Why that figure.
    pub memory_reason: &'static str,
    /// The FD figure that gates, when there is one.
    pub fds: Option<String>,
    /// Why that figure.
    pub fd_reason: &'static str,
}

/// The one rule deciding which metrics gate: the live session (through `gate::gate_metrics`),
/// `analyze` and `analyze --as-run` all call it with the names of the metrics that have
/// readings (SPEC.md, "Gate metrics" and "analyze input and output").
///
/// Memory is what `choice` asks for when the data has it: for private memory, a JVM's live set
/// after GC plus what lies outside its committed heap when its hsperfdata counters were read
/// (`jvm_heap_committed_bytes` present; the live set gates even before its first reading), else
/// `rss_anon_bytes`; RSS, PSS or the cgroup's charged memory when asked. Otherwise `rss_bytes`,
/// else the first memory column (`*_bytes`, `*_kb`, …). Then FDs: `fds_surviving` (descriptors
/// that outlived their group's churn, counted from the FD inventory) when the data has it, else
/// the total `fds`; then `threads` when present.
/// Everything else is reported, not deciding — CPU, virtual size or a cumulative counter in a
/// peer's recording must not fail a soak test. A table with none of these (generic columns only)
/// is decided by all of them.
pub fn gate_of(choice: crate::settings::MemoryMetric, names: &[&str]) -> Gate {
    use crate::settings::MemoryMetric as M;
    let has = |n: &str| names.contains(&n);
    let (memory, reason): (Vec<&str>, &'static str) = match choice {
        M::Private if has("jvm_heap_committed_bytes") => (
            vec!["jvm_live_after_gc_bytes", "outside_heap_bytes"],
            "JVM: the live set after GC (old generation after collections) and private memory outside the committed heap (outside_heap_bytes), from the JVM's hsperfdata counters: heap growing toward -Xmx is not a leak, a leak inside committed heap is",
        ),
        M::Private if has("rss_anon_bytes") => (
            vec!["rss_anon_bytes"],
            "private memory (anonymous resident + swap): shared pages and page cache grow without a leak",
        ),
        M::Rss if has("rss_bytes") => (vec!["rss_bytes"], "RSS, as asked (--memory-metric rss)"),
        M::Pss if has("pss_bytes") => (
            vec!["pss_bytes"],
            "PSS, as asked (--memory-metric pss; read at the detail cadence)",
        ),
        M::Cgroup if has("cgroup_memory_bytes") => (
            vec!["cgroup_memory_bytes"],
            "the cgroup's charged memory, page cache included, as asked (--memory-metric cgroup)",
        ),
        _ if has("rss_bytes") => (
            vec!["rss_bytes"],
            "RSS: the samples have no reading of the memory figure asked for",
        ),
        _ => (
            names
                .iter()
                .copied()
                .find(|n| MetricKind::of(n) == MetricKind::Memory)
                .into_iter()
                .collect(),
            "the first memory column: the data has no private memory or RSS",
        ),
    };
    let (fds, fd_reason) = if has("fds_surviving") {
        (
            Some("fds_surviving"),
            "descriptors that outlived their group's churn (open longer than any closed descriptor of the same peer, directory or kind lived): a leaked descriptor survives, a churned one closes; the total (fds) is reported, not gating",
        )
    } else if has("fds") {
        (
            Some("fds"),
            "all open descriptors: no FD inventory to tell survivors from churn (it needs read access to /proc/PID/fd and the detail cadence)",
        )
    } else {
        (None, "the data has no FD count")
    };
    let mut metrics: Vec<String> = memory.iter().map(|m| m.to_string()).collect();
    metrics.extend(fds.map(str::to_string));
    metrics.extend(
        ["threads"]
            .into_iter()
            .filter(|c| has(c))
            .map(str::to_string),
    );
    // The target's own gauges (`gauge:…`), asked for by name, always gate.
    metrics.extend(
        names
            .iter()
            .filter(|n| crate::gauges::is_gauge(n))
            .map(|n| n.to_string()),
    );
    if metrics.is_empty() {
        metrics = names.iter().map(|n| n.to_string()).collect();
    }
    Gate {
        memory: memory.first().map(|m| m.to_string()),
        metrics,
        memory_reason: reason,
        fds: fds.map(str::to_string),
        fd_reason,
    }
}

/// The names that may gate, from each metric's number of readings: every metric read at least
/// once, but `fds_surviving` only once it has twice the detector's minimum of readings
/// ([`crate::detect::MIN_BLOCKS`]): the inventory comes at the detail cadence, so a short run
/// has few, and part of them fall in the warm-up; with fewer the survivors could not be judged
/// and the total decides (see [`gate_of`]). The live run and `analyze` both call it.
pub fn gating_names<'a>(readings: impl IntoIterator<Item = (&'a str, usize)>) -> Vec<&'a str> {
    readings
        .into_iter()
        .filter(|(name, n)| {
            *n > 0 && (*name != "fds_surviving" || *n >= 2 * crate::detect::MIN_BLOCKS)
        })
        .map(|(name, _)| name)
        .collect()
}

/// The gate of a recorded table with the default memory choice (private memory): see
/// [`gate_of`].
pub fn gate_columns(names: &[&str]) -> Vec<String> {
    gate_of(crate::settings::MemoryMetric::Private, names).metrics
}

/// Judges every column of `table`; the gate columns decide the overall verdict.
pub fn analyze_table(table: &Table, settings: &Settings) -> Analysis {
    let span = table.t.last().copied().unwrap_or(0.0);
    let warmup_s = settings.warmup_s.unwrap_or(0.1 * span);
    let metrics: Vec<MetricResult> = table
        .columns
        .iter()
        .filter(|(_, v)| v.iter().any(|x| x.is_finite()))
        .map(|(name, values)| judge_column(name, &table.t, values, settings, warmup_s))
        .collect();
    let names = gating_names(
        table
            .columns
            .iter()
            .map(|(n, v)| (n.as_str(), v.iter().filter(|x| x.is_finite()).count())),
    );
    let gate = gate_columns(&names);
    Analysis {
        verdict: Verdict::combine(
            metrics
                .iter()
                .filter(|m| gate.contains(&m.name))
                .map(|m| m.judgement.verdict),
        ),
        metrics,
        gate,
        span_s: span,
        warmup_s,
        input_format: table.format,
    }
}

/// Judges one column of raw values (bytes for memory) sampled at `t` seconds.
pub fn judge_column(
    name: &str,
    t: &[f64],
    values: &[f64],
    settings: &Settings,
    warmup_s: f64,
) -> MetricResult {
    let kind = MetricKind::of(name);
    let scale = kind.scale();
    let y: Vec<f64> = values.iter().map(|v| v * scale).collect();
    let integer_valued = kind != MetricKind::Memory
        && values
            .iter()
            .filter(|v| v.is_finite())
            .all(|v| v.fract() == 0.0);
    let mut p = Params::new(settings.threshold_for(name, kind));
    p.warmup_s = warmup_s;
    p.confidence = settings.confidence;
    p.quantum = if integer_valued { 1.0 } else { 0.0 };
    if kind == MetricKind::Memory {
        p.min_rise = detect::MIN_MEMORY_RISE_MIB;
    }
    let mut judgement = detect::judge(t, &y, &p);
    // The detector knows no units: every rate in the reason gets the metric's.
    judgement.reason = judgement
        .reason
        .replace("/min", &format!(" {}", kind.rate_unit()));
    MetricResult {
        name: name.to_string(),
        kind,
        judgement,
        last_value: y.iter().rev().find(|v| v.is_finite()).copied(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> Table {
        parse_csv(text.as_bytes(), "t.csv").expect("parses")
    }

    fn col<'a>(t: &'a Table, name: &str) -> &'a [f64] {
        &t.columns
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no column {name}"))
            .1
    }

    #[test]
    fn the_targets_gauges_always_gate_with_their_own_kind() {
        let g = gate_of(
            crate::settings::MemoryMetric::Private,
            &[
                "rss_anon_bytes",
                "fds",
                "threads",
                "cpu_percent",
                "gauge:go_goroutines",
            ],
        );
        assert_eq!(
            g.metrics,
            vec!["rss_anon_bytes", "fds", "threads", "gauge:go_goroutines"]
        );
        assert_eq!(MetricKind::of("gauge:go_goroutines"), MetricKind::Threads);
        assert_eq!(
            MetricKind::of(r#"gauge:jvm_memory_used_bytes{area="heap"}"#),
            MetricKind::Memory
        );
        // A recording with only gauges is decided by them, as the run was.
        let t = table(
            "t_seconds,cpu_percent,\"gauge:app_pool{pool=\"\"main\"\"}\"\n0,1,5\n1,2,5\n2,1,5\n3,2,5\n4,1,5\n",
        );
        let names: Vec<&str> = t.columns.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, vec!["cpu_percent", "gauge:app_pool{pool=\"main\"}"]);
        assert_eq!(gate_columns(&names), vec!["gauge:app_pool{pool=\"main\"}"]);
    }

    #[test]
    fn unit_suffixes_are_memory_in_binary_units() {
        for (name, f) in [
            ("rss_bytes", Some(1.0)),
            ("heap_kb", Some(1024.0)),
            ("heap_KiB", Some(1024.0)),
            ("RSS_MB", Some(1_048_576.0)),
            ("real_mib", Some(1_048_576.0)),
            ("big_gib", Some(1_073_741_824.0)),
            ("fds", None),
            ("read_bytes_total", None),
            ("kb", None),
        ] {
            assert_eq!(memory_unit(name), f, "{name}");
        }
        assert_eq!(MetricKind::of("heap_mb"), MetricKind::Memory);
        assert_eq!(MetricKind::of("io_read_bytes_total"), MetricKind::Other);
        let t = table(
            "t_seconds,heap_mb,cache_kib,queue_len\n0,1.5,2,3\n1,1.5,2,3\n2,1.5,2,3\n3,1.5,2,3\n4,2,4,3\n",
        );
        assert_eq!(col(&t, "heap_mb")[4], 2.0 * 1_048_576.0);
        assert_eq!(col(&t, "cache_kib")[0], 2048.0);
        assert_eq!(col(&t, "queue_len")[0], 3.0);
        assert_eq!(t.format, InputFormat::Csv);
    }

    #[test]
    fn gate_columns_follow_the_spec() {
        let g = |names: &[&str]| gate_columns(names).join(",");
        // A JVM's export: its live set and what lies outside the heap gate, as live.
        assert_eq!(
            g(&[
                "rss_bytes",
                "rss_anon_bytes",
                "jvm_heap_committed_bytes",
                "jvm_live_after_gc_bytes",
                "outside_heap_bytes",
                "fds",
                "threads"
            ]),
            "jvm_live_after_gc_bytes,outside_heap_bytes,fds,threads"
        );
        assert_eq!(
            g(&[
                "rss_bytes",
                "pss_bytes",
                "rss_anon_bytes",
                "fds",
                "threads",
                "cpu"
            ]),
            "rss_anon_bytes,fds,threads"
        );
        assert_eq!(g(&["cpu_percent", "rss_bytes", "vms_bytes"]), "rss_bytes");
        assert_eq!(
            g(&["queue", "heap_mb", "cache_kib", "threads"]),
            "heap_mb,threads"
        );
        assert_eq!(g(&["queue", "latency"]), "queue,latency");
    }

    #[test]
    fn a_growing_counter_does_not_decide_when_gate_columns_exist() {
        let mut text = String::from("t_seconds,rss_bytes,io_read_bytes_total\n");
        for i in 0..300 {
            text.push_str(&format!("{},{},{}\n", i * 5, 50_000_000, i * 1_000_000));
        }
        let a = analyze_table(&table(&text), &Settings::default());
        assert_eq!(a.gate, ["rss_bytes"]);
        assert_eq!(a.verdict, Verdict::Clean);
        let io = a
            .metrics
            .iter()
            .find(|m| m.name == "io_read_bytes_total")
            .expect("reported");
        assert_eq!(io.judgement.verdict, Verdict::Leak);
    }

    /// psrecord 1.4's plain log, written with its own format strings.
    fn psrecord_log(rows: usize, io: bool) -> String {
        let mut s = format!(
            "# {:^12} {:^12} {:^12} {:^12}",
            "Elapsed time", "CPU (%)", "Real (MB)", "Virtual (MB)"
        );
        if io {
            s.push_str(&format!(
                " {:^12} {:^12} {:^12} {:^12}",
                "Read count", "Write count", "Read bytes", "Write bytes"
            ));
        }
        s.push('\n');
        for i in 0..rows {
            let t = i as f64 * 5.0;
            // 2 MiB per minute.
            let real = 20.0 + t / 60.0 * 2.0;
            s.push_str(&format!(
                "{t:12.3} {:12.3} {real:12.3} {:12.3}",
                (i % 7) as f64,
                100.0
            ));
            if io {
                s.push_str(&format!(" {:12} {:12} {:12} {:12}", i, i, i * 4096, 0));
            }
            s.push('\n');
        }
        s
    }

    #[test]
    fn psrecord_log_is_mib_and_named() {
        let t =
            peers::parse_psrecord_log(psrecord_log(61, true).as_bytes(), "p.log").expect("parses");
        assert_eq!(t.format, InputFormat::Psrecord);
        let names: Vec<&str> = t.columns.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "cpu_percent",
                "rss_bytes",
                "vms_bytes",
                "io_read_count_total",
                "io_write_count_total",
                "io_read_bytes_total",
                "io_write_bytes_total"
            ]
        );
        // 20.000 + 300 s at 2 MiB/min = 30.000 MiB, in bytes.
        assert_eq!(col(&t, "rss_bytes")[60], 30.0 * 1_048_576.0);
        assert_eq!(t.t[60], 300.0);
        let a = analyze_table(&t, &Settings::default());
        let rss = a
            .metrics
            .iter()
            .find(|m| m.name == "rss_bytes")
            .expect("rss");
        assert!(
            (rss.judgement.slope_per_min - 2.0).abs() < 1e-2,
            "{}",
            rss.judgement.slope_per_min
        );
        assert_eq!(rss.last_value, Some(30.0));
        assert_eq!(a.gate, ["rss_bytes"]);
        assert_eq!(a.input_format, InputFormat::Psrecord);
    }

    #[test]
    fn psrecord_log_errors_name_the_line() {
        let bad = |text: &str, needle: &str| {
            let e = peers::parse_psrecord_log(text.as_bytes(), "p.log")
                .expect_err("bad input")
                .to_string();
            assert!(e.contains(needle), "{needle:?} not in {e}");
            assert!(!e.contains('\n'), "{e}");
        };
        let good = psrecord_log(6, false);
        bad(
            &good.replace("      25.000", "      25.000 1"),
            "line 7: 5 fields",
        );
        bad(
            &good.replacen("       0.000        0.000", "       0.000        x", 1),
            "line 2, field 2: 'x'",
        );
        bad("       0.000 1 2 3\n", "line 1: data before psrecord's");
        bad(&psrecord_log(3, false), "3 data rows; at least 5");
        bad("# Elapsed time CPU (%)\n", "not a psrecord header");
        let mut long = "# Elapsed time   CPU (%)   Real (MB)   Virtual (MB)\n".to_string();
        long.push_str(&"1".repeat(MAX_LINE_BYTES + 10));
        bad(&long, "line 2 is longer than");
    }

    #[test]
    fn procpath_csv_sums_processes_per_timestamp() {
        let page = 16384.0;
        let mut text = String::from(
            "record_id,ts,cmdline,fd_sock,fd_reg,fd_anon,stat_pid,stat_num_threads,stat_rss,status_rssanon,status_vmswap\n",
        );
        let mut id = 0;
        for i in 0..20 {
            let ts = 1_790_000_000.0 + f64::from(i) * 2.0;
            for (pid, rss) in [(10, 1000 + i * 10), (11, 500)] {
                id += 1;
                let swap = if pid == 11 { "" } else { "4" };
                text.push_str(&format!(
                    "{id},{ts},\"a, b\nc\",{i},2,,{pid},3,{rss},{},{swap}\n",
                    rss * 4
                ));
            }
        }
        let t = peers::parse_procpath_csv(text.as_bytes(), "pp.csv", page).expect("parses");
        assert_eq!(t.format, InputFormat::ProcpathCsv);
        assert_eq!(t.t.len(), 20);
        assert_eq!(t.t[19], 38.0);
        assert_eq!(col(&t, "rss_bytes")[19], f64::from(1000 + 190 + 500) * page);
        // status_* are kB: (anon of both + swap of the first) × 1024.
        assert_eq!(
            col(&t, "rss_anon_bytes")[0],
            f64::from((1000 + 500) * 4 + 4) * 1024.0
        );
        assert_eq!(col(&t, "fds")[3], 3.0 + 2.0 + 3.0 + 2.0);
        assert_eq!(col(&t, "fds_socket")[3], 6.0);
        assert!(
            col(&t, "fds_anon_inode")[3].is_nan(),
            "no process had a value"
        );
        assert_eq!(col(&t, "threads")[0], 6.0);
        assert_eq!(col(&t, "processes")[0], 2.0);
        let a = analyze_table(&t, &Settings::default());
        assert_eq!(a.gate, ["rss_anon_bytes", "fds", "threads"]);
    }

    #[test]
    fn bounds_and_bad_headers() {
        let err = |text: &str| {
            parse_csv(text.as_bytes(), "t.csv")
                .expect_err("bad")
                .to_string()
        };
        assert!(err("t_seconds,a,a\n0,1,2\n").contains("column 'a' appears twice"));
        let wide: Vec<String> = (0..MAX_COLUMNS + 1).map(|i| format!("c{i}")).collect();
        assert!(err(&format!("t_seconds,{}\n", wide.join(","))).contains("analyze reads at most"));
        assert!(err("t_seconds,a\n0,1\n0.0000001,2\n").contains("less than 1 µs"));
        assert!(err("t_seconds,x_mb\n0,1e308\n").contains("is not a number"));
    }
}
