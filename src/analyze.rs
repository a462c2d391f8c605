//! `analyze`: reads a CSV of samples (the format `report --csv` exports), classifies its
//! columns into memory / FD / thread / other metrics, and runs the detector on each.

use crate::detect::{self, Judgement, Params, Verdict};
use crate::units::MIB;
use std::path::Path;

/// Minimum data rows a CSV must have to be judged at all.
pub const MIN_ROWS: usize = 5;

/// Bad input, with the line and column it was found at.
#[derive(Debug, thiserror::Error)]
pub enum CsvError {
    /// The file could not be read.
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

/// A parsed sample table: time in seconds from the first row, and the metric columns.
#[derive(Debug, Clone, Default)]
pub struct Table {
    /// Seconds since the first row.
    pub t: Vec<f64>,
    /// Metric columns in file order: name and values (NaN where a cell was empty).
    pub columns: Vec<(String, Vec<f64>)>,
}

/// Reads a CSV file into a [`Table`].
pub fn read_csv(path: &Path) -> Result<Table, CsvError> {
    let file = std::fs::File::open(path).map_err(|source| CsvError::Io {
        path: path.display().to_string(),
        source,
    })?;
    parse_csv(std::io::BufReader::new(file), &path.display().to_string())
}

/// Parses CSV text (header row first). `name` is used in error messages.
pub fn parse_csv<R: std::io::Read>(reader: R, name: &str) -> Result<Table, CsvError> {
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
    let time_col = headers
        .iter()
        .position(|h| h == "t_seconds")
        .or_else(|| headers.iter().position(|h| h == "timestamp"))
        .ok_or_else(|| {
            err("line 1: no time column; the header needs 't_seconds' or 'timestamp'".into())
        })?;
    let time_is_stamp = &headers[time_col] == "timestamp";
    if let Some(first_number) = headers.iter().find(|h| h.parse::<f64>().is_ok()) {
        return Err(err(format!(
            "line 1: header cell '{first_number}' is a number; the first row must name the columns"
        )));
    }
    let metric_cols: Vec<usize> = (0..headers.len()).filter(|i| *i != time_col).collect();
    let mut table = Table {
        t: Vec::new(),
        columns: metric_cols
            .iter()
            .map(|i| (headers[*i].to_string(), Vec::new()))
            .collect(),
    };
    let mut t0: Option<f64> = None;
    let mut last: Option<f64> = None;
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
        if let Some(prev) = last {
            if ts == prev {
                return Err(err(format!("line {line}: duplicate timestamp '{cell}'")));
            }
            if ts < prev {
                return Err(err(format!(
                    "line {line}: timestamp '{cell}' goes backwards; rows must be sorted by time"
                )));
            }
        }
        last = Some(ts);
        let base = *t0.get_or_insert(ts);
        table.t.push(ts - base);
        for (k, col) in metric_cols.iter().enumerate() {
            let cell = rec.get(*col).unwrap_or("");
            let v = if cell.is_empty() {
                f64::NAN
            } else {
                match cell.parse::<f64>() {
                    Ok(v) if v.is_finite() => v,
                    _ => {
                        return Err(err(format!(
                            "line {line}, column '{}': '{cell}' is not a number",
                            &headers[*col]
                        )));
                    }
                }
            };
            table.columns[k].1.push(v);
        }
    }
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
    /// `*_bytes`: judged in MiB/min.
    Memory,
    /// `fds` and `fds_*`: FD/min.
    Fds,
    /// `threads`: threads/min.
    Threads,
    /// Anything else: units/min.
    Other,
}

impl MetricKind {
    /// Classifies a column by its name.
    pub fn of(name: &str) -> MetricKind {
        if name.ends_with("_bytes") {
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
    /// Overall: leak if any metric leaks, clean if all are clean.
    pub verdict: Verdict,
    /// Per column, in file order (columns with no values at all are left out).
    pub metrics: Vec<MetricResult>,
    /// Seconds covered by the table.
    pub span_s: f64,
    /// Warm-up seconds used.
    pub warmup_s: f64,
}

/// Judges every column of `table`.
pub fn analyze_table(table: &Table, settings: &Settings) -> Analysis {
    let span = table.t.last().copied().unwrap_or(0.0);
    let warmup_s = settings.warmup_s.unwrap_or(0.1 * span);
    let metrics: Vec<MetricResult> = table
        .columns
        .iter()
        .filter(|(_, v)| v.iter().any(|x| x.is_finite()))
        .map(|(name, values)| judge_column(name, &table.t, values, settings, warmup_s))
        .collect();
    Analysis {
        verdict: Verdict::combine(metrics.iter().map(|m| m.judgement.verdict)),
        metrics,
        span_s: span,
        warmup_s,
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
    MetricResult {
        name: name.to_string(),
        kind,
        judgement: detect::judge(t, &y, &p),
        last_value: y.iter().rev().find(|v| v.is_finite()).copied(),
    }
}
