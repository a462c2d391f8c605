//! Reading a recording for `analyze` off the disk: opens the file, bounds what is read from it,
//! lets `analyze` recognise the format from the first line, streams text formats to its
//! parsers and runs procpath's SQLite database through its query. All the I/O of `analyze`
//! lives here; the parsing and judging stay pure in `analyze`.

use crate::analyze::{
    self, CsvError, InputFormat, MAX_FILE_BYTES, MAX_LINE_BYTES, MAX_ROWS, Table,
};
use std::io::Read;
use std::path::Path;

/// Reads a recording into a [`Table`], whatever its format: the file's first bytes decide
/// (SQLite header, psrecord's `# Elapsed time` line, psrecord's or procpath's CSV header, else a
/// CSV with `t_seconds` or `timestamp`; see [`analyze::recognise`]).
pub fn read(path: &Path) -> Result<Table, CsvError> {
    let name = path.display().to_string();
    let io = |source| CsvError::Io {
        path: name.clone(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if meta.is_dir() {
        return Err(CsvError::Content(format!(
            "{name}: is a directory, not a recording"
        )));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(too_big(&name, meta.len()));
    }
    // The first line (or the first 64 KiB), kept and replayed in front of the rest, so pipes
    // and devices work as well as files.
    let mut head = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    while head.len() < MAX_LINE_BYTES && !head.contains(&b'\n') {
        let n = file.read(&mut chunk).map_err(io)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&chunk[..n]);
    }
    let format = analyze::recognise(&name, &head)?;
    if format == InputFormat::ProcpathSqlite {
        if !meta.is_file() {
            return Err(CsvError::Content(format!(
                "{name}: a SQLite database must be a regular file"
            )));
        }
        return read_procpath_sqlite(path, &name);
    }
    let rest = Capped {
        inner: file,
        left: MAX_FILE_BYTES.saturating_sub(head.len() as u64),
        line: head.len() - head.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1),
        name: name.clone(),
    };
    let reader = std::io::Cursor::new(head).chain(rest);
    analyze::parse_text(reader, &name, format, host_page_size())
}

/// This machine's page size, bytes: what procpath's `stat_rss` pages are taken to be when the
/// recording does not say.
fn host_page_size() -> f64 {
    crate::probe::process::page_size() as f64
}

fn too_big(name: &str, len: u64) -> CsvError {
    CsvError::Content(format!(
        "{name}: {} MiB; analyze reads at most {} MiB (cut the recording to the span to judge)",
        len / (1 << 20),
        MAX_FILE_BYTES / (1 << 20)
    ))
}

/// A reader that fails past `left` bytes (for inputs whose size the metadata does not tell,
/// such as pipes and devices) and on a line longer than [`MAX_LINE_BYTES`], so that no parser
/// ever buffers an unbounded record.
struct Capped<R> {
    inner: R,
    left: u64,
    /// Bytes since the last newline.
    line: usize,
    name: String,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            let mut one = [0u8; 1];
            return match self.inner.read(&mut one)? {
                0 => Ok(0),
                _ => Err(std::io::Error::other(format!(
                    "{} is larger than {} MiB, the most analyze reads",
                    self.name,
                    MAX_FILE_BYTES / (1 << 20)
                ))),
            };
        }
        let n = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let got = self.inner.read(&mut buf[..n])?;
        self.left -= got as u64;
        for b in &buf[..got] {
            self.line = if *b == b'\n' { 0 } else { self.line + 1 };
            if self.line > MAX_LINE_BYTES {
                return Err(std::io::Error::other(format!(
                    "a line longer than {} KiB",
                    MAX_LINE_BYTES / 1024
                )));
            }
        }
        Ok(got)
    }
}

/// procpath's SQLite recording, opened read-only; the processes of each timestamp are summed
/// by SQLite (`GROUP BY ts`), so only one row per time point is ever held.
fn read_procpath_sqlite(path: &Path, name: &str) -> Result<Table, CsvError> {
    use rusqlite::{Connection, OpenFlags};
    let err = |msg: String| CsvError::Content(format!("{name}: {msg}"));
    let db = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| err(format!("cannot open the SQLite database read-only ({e})")))?;
    let _ = db.busy_timeout(std::time::Duration::from_secs(2));
    let sql_err = |e: rusqlite::Error| err(format!("reading the SQLite database: {e}"));
    // Only ordinary tables are read: a view (or a virtual table) named like procpath's could
    // make a SELECT run for ever or call into a module.
    let plain_table = |t: &str| {
        db.query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1 AND sql NOT LIKE 'CREATE VIRTUAL%'",
            [t],
            |r| r.get::<_, i64>(0),
        )
        .is_ok_and(|n| n == 1)
    };
    if !plain_table("record") {
        return Err(err(
            "a SQLite database without procpath's 'record' table; for a leak-sentinel state directory use 'report NAME --csv'".into(),
        ));
    }
    let header: Vec<String> = {
        let mut st = db
            .prepare("SELECT name FROM pragma_table_info('record')")
            .map_err(sql_err)?;
        let rows = st
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(sql_err)?;
        let mut v = Vec::new();
        for r in rows.take(analyze::MAX_COLUMNS + 1) {
            v.push(r.map_err(sql_err)?);
        }
        v
    };
    let query = analyze::procpath_query(name, header)?;
    // The page size of the machine that recorded (procpath keeps it in `meta`).
    let recorded = plain_table("meta")
        .then(|| {
            db.query_row(
                "SELECT CAST(value AS REAL) FROM meta WHERE key = 'page_size'",
                [],
                |r| r.get::<_, f64>(0),
            )
            .ok()
        })
        .flatten();
    let page = analyze::procpath_page_size(recorded, host_page_size());
    // Identifiers come from analyze's plan (procpath's own column names) and were found in the
    // table: quoting them is enough; no value from the file reaches the SQL text.
    let sums = query.sums();
    let exprs: Vec<String> = sums
        .iter()
        .map(|sources| {
            let cols: Vec<String> = sources.iter().map(|s| format!("\"{s}\"")).collect();
            let all_null = cols
                .iter()
                .map(|c| format!("{c} IS NULL"))
                .collect::<Vec<_>>()
                .join(" AND ");
            let sum = cols
                .iter()
                .map(|c| format!("COALESCE({c}, 0)"))
                .collect::<Vec<_>>()
                .join(" + ");
            format!("SUM(CASE WHEN {all_null} THEN NULL ELSE {sum} END)")
        })
        .collect();
    let sql = format!(
        "SELECT ts, {}, COUNT(*) FROM record WHERE ts IS NOT NULL GROUP BY ts ORDER BY ts LIMIT {}",
        exprs.join(", "),
        MAX_ROWS + 1
    );
    let mut st = db.prepare(&sql).map_err(sql_err)?;
    let mut rows = st.query([]).map_err(sql_err)?;
    let mut table = query.rows(page)?;
    while let Some(row) = rows.next().map_err(sql_err)? {
        table.push(
            row.get::<_, f64>(0).map_err(|e| e.to_string()),
            |k| row.get::<_, Option<f64>>(k + 1).map_err(|e| e.to_string()),
            || row.get::<_, f64>(sums.len() + 1).map_err(|e| e.to_string()),
        )?;
    }
    table.finish()
}
