//! Attribution: which classes or allocation sites grew between a baseline snapshot (the end of
//! warm-up) and a later one (the end of the run), from the runtime's own accounting — a JVM's
//! class histogram (`jcmd PID GC.class_histogram`), CPython's tracemalloc statistics by
//! traceback. Pure: snapshots are parsed from text and diffed here; taking them is the edges'
//! job (`profiler`). Attribution never changes a verdict: it names what the verdict is about.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Sites kept in a report (the largest growers by bytes).
pub const MAX_SITES: usize = 10;
/// Entries kept per snapshot (the largest by bytes). A site below the smallest kept one at the
/// baseline and above it later is counted from zero, overstating its growth by less than that
/// smallest kept size; real histograms have a few thousand classes.
pub const MAX_ENTRIES: usize = 20_000;
/// Longest site text kept, characters (a class name or a few frames).
pub const MAX_SITE_CHARS: usize = 400;

/// What `analyze` says of a recording: samples name no code.
pub const NOT_IN_RECORDINGS: &str = "a recording holds samples only, no allocation sites or classes: run the target under 'leak-sentinel run --attribute' to name the code that grows";

/// The `attribution` of an `analyze` document: none, and why.
pub fn none_in_recordings() -> Attribution {
    Attribution::failed("none", NOT_IN_RECORDINGS.into(), 0.0)
}

/// One line of a snapshot: a class or an allocation site, what it holds now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// The class (`Order`, `[B`) or the allocation site (`record_request (app.py:12) ← …`).
    pub site: String,
    /// Bytes held, at the snapshot.
    pub bytes: u64,
    /// Objects (instances, or tracemalloc blocks) held.
    pub objects: u64,
}

/// One snapshot, as stored with the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Which mechanism took it (`jcmd GC.class_histogram`, `tracemalloc`).
    pub mechanism: String,
    /// The process it was taken of.
    pub pid: i32,
    /// When, Unix seconds.
    pub t: f64,
    /// What it holds, largest first.
    pub entries: Vec<Entry>,
}

/// A site that grew between the two snapshots.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Site {
    /// The class or the allocation site.
    pub site: String,
    /// Bytes grown (negative: shrank).
    pub grown_bytes: i64,
    /// Objects grown.
    pub grown_objects: i64,
    /// Bytes per minute over the span between the snapshots.
    pub rate_per_min: f64,
    /// Whether that rate reaches the run's memory threshold.
    pub above_threshold: bool,
}

/// The attribution of a run, as the report carries it (JSON `attribution`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Attribution {
    /// The mechanism that ran (`jcmd GC.class_histogram`, `tracemalloc`), or what would have.
    pub mechanism: String,
    /// The process attributed.
    pub pid: Option<i32>,
    /// Baseline snapshot time, Unix seconds.
    pub baseline_t: Option<f64>,
    /// Second snapshot time, Unix seconds.
    pub t: Option<f64>,
    /// Seconds between the two snapshots.
    pub span_s: Option<f64>,
    /// The run's memory threshold, bytes per minute (what `above_threshold` compares with).
    pub threshold_bytes_per_min: f64,
    /// The largest growers, by bytes, at most [`MAX_SITES`].
    pub sites: Vec<Site>,
    /// Why there is no attribution or what limits it (one line), when so.
    pub note: Option<String>,
}

impl Attribution {
    /// An attribution that could not be made: the mechanism and a one-line note.
    pub fn failed(mechanism: &str, note: String, threshold_bytes_per_min: f64) -> Attribution {
        Attribution {
            mechanism: mechanism.into(),
            threshold_bytes_per_min,
            note: Some(note),
            ..Attribution::default()
        }
    }

    /// The attribution from two snapshots of the same process.
    pub fn from_snapshots(
        base: &Snapshot,
        now: &Snapshot,
        threshold_bytes_per_min: f64,
    ) -> Attribution {
        let span = now.t - base.t;
        let mut a = Attribution {
            mechanism: now.mechanism.clone(),
            pid: Some(now.pid),
            baseline_t: Some(base.t),
            t: Some(now.t),
            span_s: Some(span),
            threshold_bytes_per_min,
            ..Attribution::default()
        };
        if base.pid != now.pid {
            a.note = Some(format!(
                "the baseline was taken of PID {} and the process attributed now is PID {}: no diff",
                base.pid, now.pid
            ));
            return a;
        }
        a.sites = diff(
            &base.entries,
            &now.entries,
            span,
            threshold_bytes_per_min,
            MAX_SITES,
        );
        a
    }

    /// The report's lines for people: a heading, then one line per site.
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut head = format!("attribution by {}", self.mechanism);
        if let Some(pid) = self.pid {
            head.push_str(&format!(" of PID {pid}"));
        }
        if let Some(span) = self.span_s {
            head.push_str(&format!(
                " over {}",
                crate::detect::human_secs(span.max(0.0))
            ));
        }
        out.push(head);
        for s in &self.sites {
            out.push(site_line(s));
        }
        if self.sites.is_empty() && self.note.is_none() {
            out.push("no site grew".into());
        }
        if let Some(n) = &self.note {
            out.push(format!("note: {n}"));
        }
        out
    }
}

/// One site in words: `+2.3 MiB (+33,500 objects, 1.1 MiB/min) Order`, marked when above the
/// threshold.
pub fn site_line(s: &Site) -> String {
    format!(
        "{}{} ({:+} objects, {}/min) {}",
        if s.above_threshold { "* " } else { "  " },
        signed_bytes(s.grown_bytes as f64),
        s.grown_objects,
        bytes_words(s.rate_per_min),
        s.site
    )
}

/// Bytes for people, with a sign.
pub fn signed_bytes(b: f64) -> String {
    let sign = if b < 0.0 { "-" } else { "+" };
    format!("{sign}{}", bytes_words(b.abs()))
}

/// Bytes for people (B, KiB, MiB, GiB).
pub fn bytes_words(b: f64) -> String {
    let a = b.abs();
    if a >= 1024.0 * crate::units::MIB {
        format!("{:.2} GiB", b / (1024.0 * crate::units::MIB))
    } else if a >= crate::units::MIB {
        format!("{:.1} MiB", b / crate::units::MIB)
    } else if a >= 1024.0 {
        format!("{:.1} KiB", b / 1024.0)
    } else {
        format!("{b:.0} B")
    }
}

/// The sites that grew from `before` to `after`, largest growth in bytes first, at most
/// `limit`; `span_s` gives the rate (bytes per minute), compared with `threshold_per_min`.
/// Sites are matched by their text; one only in `after` grew from zero.
pub fn diff(
    before: &[Entry],
    after: &[Entry],
    span_s: f64,
    threshold_per_min: f64,
    limit: usize,
) -> Vec<Site> {
    let mut base: HashMap<&str, (u64, u64)> = HashMap::with_capacity(before.len());
    for e in before {
        let v = base.entry(e.site.as_str()).or_default();
        v.0 += e.bytes;
        v.1 += e.objects;
    }
    let mut now: HashMap<&str, (u64, u64)> = HashMap::with_capacity(after.len());
    for e in after {
        let v = now.entry(e.site.as_str()).or_default();
        v.0 += e.bytes;
        v.1 += e.objects;
    }
    let minutes = span_s / 60.0;
    let mut sites: Vec<Site> = now
        .iter()
        .map(|(site, (b, o))| {
            let (b0, o0) = base.get(site).copied().unwrap_or((0, 0));
            let grown_bytes = *b as i64 - b0 as i64;
            let rate = if minutes > 0.0 {
                grown_bytes as f64 / minutes
            } else {
                0.0
            };
            Site {
                site: (*site).to_string(),
                grown_bytes,
                grown_objects: *o as i64 - o0 as i64,
                rate_per_min: rate,
                above_threshold: minutes > 0.0 && rate >= threshold_per_min,
            }
        })
        .filter(|s| s.grown_bytes > 0)
        .collect();
    // Largest growth first; equal growth by name, so the order is the same every time.
    sites.sort_by(|a, b| {
        b.grown_bytes
            .cmp(&a.grown_bytes)
            .then_with(|| a.site.cmp(&b.site))
    });
    sites.truncate(limit);
    sites
}

/// Keeps the [`MAX_ENTRIES`] largest entries (by bytes), sites cut to [`MAX_SITE_CHARS`].
pub fn bound(mut entries: Vec<Entry>) -> Vec<Entry> {
    entries.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.site.cmp(&b.site)));
    entries.truncate(MAX_ENTRIES);
    for e in &mut entries {
        if e.site.chars().count() > MAX_SITE_CHARS {
            e.site = e.site.chars().take(MAX_SITE_CHARS).collect::<String>() + "…";
        }
    }
    entries
}

/// Parses the output of `jcmd PID GC.class_histogram` (HotSpot 8 to 25):
/// ```text
/// 17093:
///  num     #instances         #bytes  class name (module)
/// -------------------------------------------------------
///    1:         17500        1260000  Order
///    2:          7206         332824  [B (java.base@17.0.15)
/// Total         57820        3735768
/// ```
/// The module in parentheses is dropped (one class, one site across JDK updates). Fails when
/// no line is a histogram row (jcmd printed an error instead).
pub fn parse_class_histogram(text: &str) -> Result<Vec<Entry>, String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut it = line.split_whitespace();
        let Some(num) = it.next() else { continue };
        if !num.ends_with(':') || num[..num.len() - 1].parse::<u64>().is_err() {
            continue;
        }
        let (Some(inst), Some(bytes), Some(class)) = (it.next(), it.next(), it.next()) else {
            continue;
        };
        let (Ok(objects), Ok(bytes)) = (inst.parse::<u64>(), bytes.parse::<u64>()) else {
            continue;
        };
        out.push(Entry {
            site: class.to_string(),
            bytes,
            objects,
        });
    }
    if out.is_empty() {
        let first = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.ends_with(':'))
            .unwrap_or("no output");
        return Err(format!(
            "not a class histogram: {}",
            first.chars().take(200).collect::<String>()
        ));
    }
    Ok(bound(out))
}

/// Parses the JSON lines our tracemalloc summary prints (`{"site": …, "bytes": …, "objects":
/// …}` per line). Lines that are not entries are skipped; none at all is an error.
pub fn parse_entry_lines(text: &str) -> Result<Vec<Entry>, String> {
    let out: Vec<Entry> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Entry>(l).ok())
        .collect();
    if out.is_empty() && !text.lines().any(|l| l.trim() == "{\"empty\": true}") {
        let first = text
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("no output");
        return Err(format!(
            "no allocation statistics: {}",
            first.chars().take(200).collect::<String>()
        ));
    }
    Ok(bound(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    const H1: &str = "17093:\n num     #instances         #bytes  class name (module)\n-------------------------------------------------------\n   1:         17500        1260000  Order\n   2:          7206         332824  [B (java.base@17.0.15)\n   3:           882         174856  [Ljava.lang.Object; (java.base@17.0.15)\n   4:          1427         175888  java.lang.Class (java.base@17.0.15)\nTotal         27015        1943568\n";
    const H2: &str = "17093:\n num     #instances         #bytes  class name (module)\n-------------------------------------------------------\n   1:         33500        2412000  Order\n   2:          7206         332824  [B (java.base@17.0.15)\n   3:           882         280248  [Ljava.lang.Object; (java.base@17.0.15)\n   4:          1400         170000  java.lang.Class (java.base@17.0.15)\n   5:             1             16  OrderCache\nTotal         43000        3000000\n";

    #[test]
    fn a_histogram_parses_and_diffs_into_the_classes_that_grew() {
        let a = parse_class_histogram(H1).expect("parses");
        assert_eq!(a.len(), 4);
        assert_eq!(a[0].site, "Order");
        assert_eq!(a[1].site, "[B", "the module is dropped");
        let b = parse_class_histogram(H2).expect("parses");
        // 60 s apart, threshold 0.2 MiB/min.
        let sites = diff(&a, &b, 60.0, 0.2 * crate::units::MIB, 10);
        let names: Vec<&str> = sites.iter().map(|s| s.site.as_str()).collect();
        assert_eq!(names, ["Order", "[Ljava.lang.Object;", "OrderCache"]);
        assert_eq!(sites[0].grown_bytes, 2_412_000 - 1_260_000);
        assert_eq!(sites[0].grown_objects, 16_000);
        assert!((sites[0].rate_per_min - 1_152_000.0).abs() < 1e-6);
        assert!(sites[0].above_threshold);
        assert!(!sites[1].above_threshold, "105 KB/min < 0.2 MiB/min");
        assert_eq!(
            sites[2].grown_bytes, 16,
            "new since the baseline: from zero"
        );
        // Shrinking and unchanged classes are not listed; the limit holds.
        assert_eq!(diff(&a, &b, 60.0, 1.0, 1).len(), 1);
        let back = diff(&b, &a, 60.0, 1.0, 10);
        assert_eq!(back.len(), 1, "only java.lang.Class grew back: {back:?}");
        assert_eq!(back[0].site, "java.lang.Class");
    }

    #[test]
    fn what_is_not_a_histogram_is_an_error_with_its_first_line() {
        let e = parse_class_histogram(
            "4711:\ncom.sun.tools.attach.AttachNotSupportedException: Unable to open socket file\n",
        )
        .expect_err("an error");
        assert!(e.contains("AttachNotSupportedException"), "{e}");
        assert!(parse_class_histogram("").is_err());
    }

    #[test]
    fn a_zero_span_has_no_rate_and_nothing_above_the_threshold() {
        let e = |b| Entry {
            site: "x".into(),
            bytes: b,
            objects: 1,
        };
        let s = diff(&[e(1)], &[e(100)], 0.0, 0.0, 10);
        assert_eq!(s[0].rate_per_min, 0.0);
        assert!(!s[0].above_threshold);
    }

    #[test]
    fn entries_are_bounded_and_lines_parse() {
        let long = "f".repeat(1000);
        let v = bound(vec![Entry {
            site: long,
            bytes: 1,
            objects: 1,
        }]);
        assert_eq!(v[0].site.chars().count(), MAX_SITE_CHARS + 1);
        let text =
            "{\"site\": \"record_request (app.py:9)\", \"bytes\": 10, \"objects\": 2}\nnoise\n";
        let v = parse_entry_lines(text).expect("parses");
        assert_eq!(v[0].site, "record_request (app.py:9)");
        assert!(parse_entry_lines("Traceback: boom\n").is_err());
        assert_eq!(parse_entry_lines("{\"empty\": true}\n"), Ok(vec![]));
    }

    #[test]
    fn different_processes_are_not_diffed() {
        let s = |pid| Snapshot {
            mechanism: "m".into(),
            pid,
            t: 0.0,
            entries: vec![],
        };
        let a = Attribution::from_snapshots(&s(1), &s(2), 1.0);
        assert!(a.note.as_deref().is_some_and(|n| n.contains("PID 1")));
        assert!(a.sites.is_empty());
    }
}
