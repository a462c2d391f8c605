//! Readers of other tools' recordings, turned into leak-sentinel's columns and units: psrecord's
//! plain and CSV logs (MiB → bytes) and procpath's recordings (its SQLite database or a CSV of
//! its `record` table: one row per process and timestamp, summed over the processes; pages and
//! kB → bytes).
//!
//! The formats, as the tools write them (psrecord 1.4, procpath 1.15):
//! - psrecord `--log`: `# Elapsed time   CPU (%)   Real (MB)   Virtual (MB)` (plus `Read count
//!   Write count Read bytes Write bytes` with `--include-io`), then whitespace-separated rows.
//!   "MB" is `rss / 1024.0**2`: MiB. `--log-format csv`: `elapsed_time,nproc,cpu,mem_real,
//!   mem_virtual[,read_count,write_count,read_bytes,write_bytes]`.
//! - procpath `record`: table `record` (`ts` Unix seconds, `stat_*` from /proc/PID/stat with
//!   `stat_rss` in pages, `status_*` memory in kB, `smaps_rollup_*` in kB, `fd_*` counts per
//!   kind) and table `meta` (`page_size`, …).

use super::{Builder, CsvError, InputFormat, MAX_COLUMNS, MAX_LINE_BYTES, Table};
use crate::units::MIB;
use std::io::BufRead;

/// The table name and factor of a psrecord CSV column.
pub(super) fn psrecord_column(header: &str) -> (String, f64) {
    match header {
        "nproc" => ("processes".into(), 1.0),
        "cpu" => ("cpu_percent".into(), 1.0),
        "mem_real" => ("rss_bytes".into(), MIB),
        "mem_virtual" => ("vms_bytes".into(), MIB),
        // Cumulative I/O counters: `_total`, so that `*_bytes` (memory) does not claim them.
        "read_count" => ("io_read_count_total".into(), 1.0),
        "write_count" => ("io_write_count_total".into(), 1.0),
        "read_bytes" => ("io_read_bytes_total".into(), 1.0),
        "write_bytes" => ("io_write_bytes_total".into(), 1.0),
        other => (other.to_string(), 1.0),
    }
}

/// Reads one line of at most [`MAX_LINE_BYTES`]; `None` at the end.
fn bounded_line<R: BufRead>(
    r: &mut R,
    buf: &mut Vec<u8>,
    name: &str,
    line: usize,
) -> Result<Option<()>, CsvError> {
    buf.clear();
    let n = std::io::Read::take(&mut *r, MAX_LINE_BYTES as u64 + 1)
        .read_until(b'\n', buf)
        .map_err(|e| CsvError::Content(format!("{name}: line {line}: {e}")))?;
    if n == 0 {
        return Ok(None);
    }
    if buf.len() > MAX_LINE_BYTES {
        return Err(CsvError::Content(format!(
            "{name}: line {line} is longer than {} KiB",
            MAX_LINE_BYTES / 1024
        )));
    }
    Ok(Some(()))
}

/// psrecord's plain log (`psrecord PID --log FILE`).
pub(super) fn parse_psrecord_log<R: BufRead>(mut r: R, name: &str) -> Result<Table, CsvError> {
    let err = |msg: String| CsvError::Content(format!("{name}: {msg}"));
    let mut buf = Vec::new();
    let mut line = 0usize;
    let mut b: Option<Builder> = None;
    let mut width = 0usize;
    let mut values = Vec::new();
    while bounded_line(&mut r, &mut buf, name, line + 1)?.is_some() {
        line += 1;
        let text = String::from_utf8_lossy(&buf);
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        if text.starts_with('#') {
            if b.is_none() {
                if !text.contains("Real (MB)") || !text.contains("Virtual (MB)") {
                    return Err(err(format!(
                        "line {line}: not a psrecord header (no 'Real (MB)' and 'Virtual (MB)')"
                    )));
                }
                let mut cols = vec!["cpu_percent", "rss_bytes", "vms_bytes"];
                if text.contains("Read count") {
                    cols.extend([
                        "io_read_count_total",
                        "io_write_count_total",
                        "io_read_bytes_total",
                        "io_write_bytes_total",
                    ]);
                }
                width = cols.len() + 1;
                b = Some(Builder::new(
                    name,
                    InputFormat::Psrecord,
                    cols.into_iter().map(str::to_string).collect(),
                )?);
            }
            continue;
        }
        let Some(builder) = b.as_mut() else {
            return Err(err(format!(
                "line {line}: data before psrecord's '# Elapsed time' header"
            )));
        };
        let cells: Vec<&str> = text.split_whitespace().take(width + 1).collect();
        if cells.len() != width {
            return Err(err(format!(
                "line {line}: {} fields; psrecord's header has {width}",
                cells.len()
            )));
        }
        let mut nums = Vec::with_capacity(width);
        for (k, c) in cells.iter().enumerate() {
            match c.parse::<f64>() {
                Ok(v) if v.is_finite() => nums.push(v),
                _ => {
                    return Err(err(format!(
                        "line {line}, field {}: '{c}' is not a number",
                        k + 1
                    )));
                }
            }
        }
        // Real and Virtual are MiB (psrecord divides by 1024.0**2).
        values.clear();
        values.push(nums[1]);
        values.push(nums[2] * MIB);
        values.push(nums[3] * MIB);
        values.extend_from_slice(&nums[4..]);
        builder.push(&format!("line {line}"), cells[0], nums[0], &values)?;
    }
    match b {
        Some(b) => b.finish(),
        None => Err(err("no psrecord header line".into())),
    }
}

/// How a procpath value becomes bytes or a count.
#[derive(Debug, Clone, Copy)]
enum Scale {
    /// Already a count or bytes.
    One,
    /// kB as /proc writes it: KiB.
    KiB,
    /// Pages (`stat_rss`).
    Pages,
}

/// One of our columns from procpath's: the first alternative with any of its source columns
/// in the recording wins; the sources of an alternative are added up per process.
struct Derived {
    name: &'static str,
    alternatives: &'static [(&'static [&'static str], Scale)],
}

const FD_ALL: &[&str] = &[
    "fd_anon", "fd_dir", "fd_chr", "fd_blk", "fd_reg", "fd_fifo", "fd_lnk", "fd_sock",
];

/// procpath's columns → ours, in the order of `report --csv`.
const PROCPATH: &[Derived] = &[
    Derived {
        name: "rss_bytes",
        alternatives: &[
            (&["stat_rss"], Scale::Pages),
            (&["status_vmrss"], Scale::KiB),
            (&["smaps_rollup_rss"], Scale::KiB),
        ],
    },
    // The tree's private memory (anonymous resident + swapped): the memory gate when recorded
    // (procpath -f status or smaps_rollup).
    Derived {
        name: "rss_anon_bytes",
        alternatives: &[
            (&["status_rssanon", "status_vmswap"], Scale::KiB),
            (&["smaps_rollup_anonymous", "smaps_rollup_swap"], Scale::KiB),
        ],
    },
    Derived {
        name: "pss_bytes",
        alternatives: &[(&["smaps_rollup_pss"], Scale::KiB)],
    },
    Derived {
        name: "uss_bytes",
        alternatives: &[(
            &["smaps_rollup_private_clean", "smaps_rollup_private_dirty"],
            Scale::KiB,
        )],
    },
    Derived {
        name: "swap_bytes",
        alternatives: &[
            (&["status_vmswap"], Scale::KiB),
            (&["smaps_rollup_swap"], Scale::KiB),
        ],
    },
    Derived {
        name: "anon_bytes",
        alternatives: &[
            (&["smaps_rollup_anonymous"], Scale::KiB),
            (&["status_rssanon"], Scale::KiB),
        ],
    },
    Derived {
        name: "file_bytes",
        alternatives: &[(&["status_rssfile"], Scale::KiB)],
    },
    Derived {
        name: "vms_bytes",
        alternatives: &[(&["stat_vsize"], Scale::One)],
    },
    Derived {
        name: "fds",
        alternatives: &[(FD_ALL, Scale::One)],
    },
    Derived {
        name: "fds_socket",
        alternatives: &[(&["fd_sock"], Scale::One)],
    },
    Derived {
        name: "fds_pipe",
        alternatives: &[(&["fd_fifo"], Scale::One)],
    },
    Derived {
        name: "fds_file",
        alternatives: &[(&["fd_reg", "fd_dir", "fd_chr", "fd_blk"], Scale::One)],
    },
    Derived {
        name: "fds_anon_inode",
        alternatives: &[(&["fd_anon"], Scale::One)],
    },
    Derived {
        name: "fds_other",
        alternatives: &[(&["fd_lnk"], Scale::One)],
    },
    Derived {
        name: "threads",
        alternatives: &[(&["stat_num_threads"], Scale::One)],
    },
];

/// The columns a recording supports: our name, the source columns present (indices into
/// `header`), their scale.
type Plan = Vec<(&'static str, Vec<usize>, Scale)>;

fn plan(header: &[String]) -> Plan {
    let mut out = Vec::new();
    for d in PROCPATH {
        for (sources, scale) in d.alternatives {
            let present: Vec<usize> = sources
                .iter()
                .filter_map(|s| header.iter().position(|h| h == s))
                .collect();
            if !present.is_empty() {
                out.push((d.name, present, *scale));
                break;
            }
        }
    }
    out
}

fn factor(scale: Scale, page_size: f64) -> f64 {
    match scale {
        Scale::One => 1.0,
        Scale::KiB => 1024.0,
        Scale::Pages => page_size,
    }
}

/// Column names of the table a plan yields (plus `processes`, the rows per timestamp).
fn columns(plan: &Plan) -> Vec<String> {
    plan.iter()
        .map(|(n, _, _)| n.to_string())
        .chain(std::iter::once("processes".to_string()))
        .collect()
}

/// A CSV of procpath's `record` table (`sqlite3 -csv -header rec.sqlite 'SELECT * FROM record'`):
/// rows of one timestamp are consecutive; they are summed. `stat_rss` pages are `page` bytes.
pub(super) fn parse_procpath_csv<R: std::io::Read>(
    reader: R,
    name: &str,
    page: f64,
) -> Result<Table, CsvError> {
    let err = |msg: String| CsvError::Content(format!("{name}: {msg}"));
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .flexible(false)
        .from_reader(reader);
    let header: Vec<String> = rdr
        .headers()
        .map_err(|e| err(format!("line 1: unreadable header ({e})")))?
        .iter()
        .map(str::to_string)
        .collect();
    if header.len() > MAX_COLUMNS {
        return Err(err(format!(
            "line 1: {} columns; analyze reads at most {MAX_COLUMNS}",
            header.len()
        )));
    }
    let ts_col = header
        .iter()
        .position(|h| h == "ts")
        .ok_or_else(|| err("line 1: no 'ts' column".into()))?;
    let plan = plan(&header);
    if plan.is_empty() {
        return Err(err(
            "line 1: none of procpath's stat_rss, status_*, smaps_rollup_*, fd_* or stat_num_threads columns".into(),
        ));
    }
    // The CSV does not carry the recording's page size: the caller's machine's is the best
    // guess.
    let mut b = Builder::new(name, InputFormat::ProcpathCsv, columns(&plan))?;
    let mut group: Option<Group> = None;
    for rec in rdr.records() {
        let rec = rec.map_err(|e| {
            let l = e.position().map_or(0, |p| p.line());
            err(format!("line {l}: {e}"))
        })?;
        let line = rec.position().map_or(0, |p| p.line());
        let cell = rec.get(ts_col).unwrap_or("");
        let ts = match cell.parse::<f64>() {
            Ok(v) if v.is_finite() => v,
            _ => {
                return Err(err(format!(
                    "line {line}, column 'ts': '{cell}' is not a Unix time"
                )));
            }
        };
        if group.as_ref().is_some_and(|g| g.ts != ts) {
            if let Some(g) = group.take() {
                g.flush(&mut b)?;
            }
        }
        let g = group.get_or_insert_with(|| Group {
            line,
            cell: cell.to_string(),
            ts,
            sums: vec![f64::NAN; plan.len()],
            processes: 0.0,
        });
        g.processes += 1.0;
        for (k, (_, sources, scale)) in plan.iter().enumerate() {
            let mut v: Option<f64> = None;
            for s in sources {
                let c = rec.get(*s).unwrap_or("");
                if c.is_empty() {
                    continue;
                }
                match c.parse::<f64>() {
                    Ok(x) if x.is_finite() => *v.get_or_insert(0.0) += x,
                    _ => {
                        return Err(err(format!(
                            "line {line}, column '{}': '{c}' is not a number",
                            header[*s]
                        )));
                    }
                }
            }
            if let Some(v) = v {
                let sum = &mut g.sums[k];
                *sum = if sum.is_nan() { 0.0 } else { *sum } + v * factor(*scale, page);
            }
        }
    }
    if let Some(g) = group.take() {
        g.flush(&mut b)?;
    }
    b.finish()
}

/// The rows of one timestamp being summed.
struct Group {
    /// Line of its first row.
    line: u64,
    /// The time as written.
    cell: String,
    /// The time, Unix seconds.
    ts: f64,
    /// Sums per planned column (NaN: no process had a value).
    sums: Vec<f64>,
    /// Rows (processes) seen.
    processes: f64,
}

impl Group {
    fn flush(mut self, b: &mut Builder) -> Result<(), CsvError> {
        self.sums.push(self.processes);
        b.push(
            &format!("line {}", self.line),
            &self.cell,
            self.ts,
            &self.sums,
        )
    }
}

/// procpath's SQLite recording as a query: which of our columns are sums of which columns of
/// its `record` table. The reader of the database (`recording`) runs it (summing the processes
/// of each timestamp with `GROUP BY ts`, so only one row per time point is ever held) and hands
/// each row to [`ProcpathRows`].
#[derive(Debug)]
pub struct ProcpathQuery {
    name: String,
    header: Vec<String>,
    plan: Plan,
}

/// The query for a `record` table with columns `header` (at most [`MAX_COLUMNS`] + 1 of them
/// need be passed); `name` is used in error messages.
pub fn procpath_query(name: &str, header: Vec<String>) -> Result<ProcpathQuery, CsvError> {
    let err = |msg: String| CsvError::Content(format!("{name}: {msg}"));
    if header.is_empty() || !header.iter().any(|h| h == "ts") {
        return Err(err(
            "a SQLite database without procpath's 'record' table (with 'ts'); for a leak-sentinel state directory use 'report NAME --csv'".into(),
        ));
    }
    if header.len() > MAX_COLUMNS {
        return Err(err(format!(
            "the record table has more than {MAX_COLUMNS} columns"
        )));
    }
    let plan = plan(&header);
    if plan.is_empty() {
        return Err(err(
            "the record table has none of stat_rss, status_*, smaps_rollup_*, fd_* or stat_num_threads".into(),
        ));
    }
    Ok(ProcpathQuery {
        name: name.to_string(),
        header,
        plan,
    })
}

/// The page size to convert `stat_rss` with: the recording machine's, from procpath's `meta`
/// table (`page_size`), when it holds a plausible one (512 B to 1 GiB); else `host`'s.
pub fn procpath_page_size(recorded: Option<f64>, host: f64) -> f64 {
    recorded
        .filter(|p| (512.0..=1_073_741_824.0).contains(p))
        .unwrap_or(host)
}

impl ProcpathQuery {
    /// Per column of ours, in order, the `record` columns whose values (per process) add up to
    /// it. Their names are the table's own, found in it; only columns procpath writes are
    /// planned.
    pub fn sums(&self) -> Vec<Vec<&str>> {
        self.plan
            .iter()
            .map(|(_, sources, _)| sources.iter().map(|s| self.header[*s].as_str()).collect())
            .collect()
    }

    /// A table to fill with the query's rows, `stat_rss` pages being `page` bytes.
    pub fn rows(&self, page: f64) -> Result<ProcpathRows<'_>, CsvError> {
        Ok(ProcpathRows {
            query: self,
            b: Builder::new(&self.name, InputFormat::ProcpathSqlite, columns(&self.plan))?,
            values: vec![f64::NAN; self.plan.len() + 1],
            page,
            n: 0,
        })
    }
}

/// The rows of a [`ProcpathQuery`], one per timestamp, being collected into a [`Table`].
pub struct ProcpathRows<'a> {
    query: &'a ProcpathQuery,
    b: Builder,
    values: Vec<f64>,
    page: f64,
    /// Rows pushed so far.
    n: usize,
}

impl ProcpathRows<'_> {
    /// Adds one row: its timestamp (Unix seconds), the sum of column `k` of [`ProcpathQuery::sums`]
    /// (`None` when no process had a value) and the number of processes, each read when asked
    /// for, in that order, so that the first bad cell is the one reported. An `Err` is why the
    /// database's value could not be read as a number.
    pub fn push(
        &mut self,
        ts: Result<f64, String>,
        mut sum: impl FnMut(usize) -> Result<Option<f64>, String>,
        processes: impl FnOnce() -> Result<f64, String>,
    ) -> Result<(), CsvError> {
        let name = &self.query.name;
        let err = |msg: String| CsvError::Content(format!("{name}: {msg}"));
        self.n += 1;
        let n = self.n;
        let ts = ts.map_err(|e| {
            err(format!(
                "record row group {n}: 'ts' is not a Unix time ({e})"
            ))
        })?;
        let plan = &self.query.plan;
        for (k, (col, _, scale)) in plan.iter().enumerate() {
            let v = sum(k).map_err(|e| err(format!("at ts {ts}: {col} is not a number ({e})")))?;
            self.values[k] = v.map_or(f64::NAN, |v| v * factor(*scale, self.page));
            if !self.values[k].is_nan() && !self.values[k].is_finite() {
                return Err(err(format!("at ts {ts}: {col} is not finite")));
            }
        }
        self.values[plan.len()] =
            processes().map_err(|e| err(format!("reading the SQLite database: {e}")))?;
        self.b
            .push(&format!("ts {ts}"), &ts.to_string(), ts, &self.values)
    }

    /// The table, once every row is in.
    pub fn finish(self) -> Result<Table, CsvError> {
        self.b.finish()
    }
}
