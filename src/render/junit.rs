//! JUnit XML, the test-report format GitLab, Jenkins, Buildkite, Azure Pipelines and GitHub's
//! test-report actions read: `<testsuites>` with one `<testsuite>` per run (per series for a
//! scan), one `<testcase>` per gate metric. Data in, bytes out.
//!
//! How verdicts map, and why:
//! - `leak` → `<failure type="leak">`: the test found what it tests for.
//! - `clean` → a passed testcase (details in `<system-out>`).
//! - `inconclusive` → `<skipped>`: not enough evidence either way is neither a pass nor a
//!   found leak, and CI systems show skipped tests apart from both (a yellow/grey mark, a count
//!   of their own). A failure would claim a leak that was not shown; the command's exit code (3)
//!   still fails the CI step, so an undecided soak test never passes silently.
//! - a run that could not finish (target exited: exit 4; interrupted: exit 5) → `<error>` on
//!   every metric that did not leak: the test itself broke, which JUnit tells from a failure.
//!
//! Attributes follow the common JUnit schema subset (`tests/data/junit.xsd`): `testsuite` has
//! `name`, `tests`, `failures`, `errors`, `skipped`, `time`, `timestamp` (UTC, no zone);
//! `testcase` has `name`, `classname`, `time`; `failure`/`error`/`skipped` have `message` and
//! `type` with the details as text.

use super::ci::{CiDoc, CiRow, interval_text, min_detectable_text, rate_text, threshold_text};
use crate::analyze::Analysis;
use crate::detect::Verdict;
use crate::fleet::SeriesVerdict;
use std::fmt::Write as _;

/// XML 1.0 allows these characters only (a label value from a server may hold others).
fn xml_char_ok(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Escaped for an attribute value (line breaks kept as character references).
fn attr(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars().filter(|c| xml_char_ok(*c)) {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c => out.push(c),
        }
    }
    out
}

/// Escaped for element text.
fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars().filter(|c| xml_char_ok(*c)) {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

fn secs(v: f64) -> String {
    format!("{:.3}", if v.is_finite() { v.max(0.0) } else { 0.0 })
}

/// What one testcase says, in words: the reason, rate, interval, threshold, the smallest
/// detectable leak and where the full report is.
fn details(doc: &CiDoc, r: &CiRow) -> String {
    let mut s = format!(
        "{}: {}\nreason: {}\nrate: {}\n{:.0}% interval: {} {}\nthreshold: {}\nsmallest detectable leak: {}\njudged: {:.0} s of data\n",
        r.metric,
        r.verdict.as_str(),
        r.reason,
        rate_text(r.slope_per_min, &r.unit),
        r.confidence * 100.0,
        interval_text(r),
        r.unit,
        threshold_text(r),
        min_detectable_text(r),
        r.judged_s,
    );
    if let Some(a) = &doc.abort {
        let _ = writeln!(s, "run ended: {} ({})", a.message, a.kind);
    }
    if let Some(p) = &doc.report {
        let _ = writeln!(s, "report: {p}");
    }
    s
}

enum Mark {
    Pass,
    Failure(String, String),
    Error(String, String),
    Skipped(String),
}

fn mark(doc: &CiDoc, r: &CiRow) -> Mark {
    let measured = format!(
        "{} ({:.0}% interval {} {}), threshold {}",
        rate_text(r.slope_per_min, &r.unit),
        r.confidence * 100.0,
        interval_text(r),
        r.unit,
        threshold_text(r)
    );
    if r.verdict == Verdict::Leak {
        return Mark::Failure("leak".into(), format!("leak: {measured}: {}", r.reason));
    }
    if let Some(a) = &doc.abort {
        let m = format!(
            "{}: {} (last verdict {}, {measured})",
            a.kind.replace('_', " "),
            a.message,
            r.verdict.as_str()
        );
        return if a.error {
            Mark::Error(a.kind.clone(), m)
        } else {
            Mark::Failure(a.kind.clone(), m)
        };
    }
    match r.verdict {
        Verdict::Clean => Mark::Pass,
        _ => Mark::Skipped(format!("inconclusive: {measured}: {}", r.reason)),
    }
}

/// The XML document of `docs` (one testsuite each).
pub fn to_xml(docs: &[CiDoc]) -> String {
    let mut suites = String::new();
    let (mut tests, mut failures, mut errors, mut skipped, mut time) = (0, 0, 0, 0, 0.0);
    for doc in docs {
        let marks: Vec<Mark> = doc.rows.iter().map(|r| mark(doc, r)).collect();
        let f = marks
            .iter()
            .filter(|m| matches!(m, Mark::Failure(..)))
            .count();
        let e = marks
            .iter()
            .filter(|m| matches!(m, Mark::Error(..)))
            .count();
        let s = marks
            .iter()
            .filter(|m| matches!(m, Mark::Skipped(..)))
            .count();
        tests += marks.len();
        failures += f;
        errors += e;
        skipped += s;
        time += doc.elapsed_s.max(0.0);
        let _ = write!(
            suites,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{f}\" errors=\"{e}\" skipped=\"{s}\" time=\"{}\"",
            attr(&format!("leak-sentinel {} {}", doc.kind, doc.name)),
            marks.len(),
            secs(doc.elapsed_s)
        );
        if let Some(t) = &doc.timestamp {
            let _ = write!(suites, " timestamp=\"{}\"", attr(t));
        }
        suites.push_str(">\n");
        let mut props = doc.properties.clone();
        props.push(("outcome".into(), doc.outcome.clone()));
        if let Some(r) = &doc.failure_reason {
            props.push(("failure_reason".into(), r.clone()));
        }
        suites.push_str("    <properties>\n");
        for (k, v) in &props {
            let _ = writeln!(
                suites,
                "      <property name=\"{}\" value=\"{}\"/>",
                attr(k),
                attr(v)
            );
        }
        suites.push_str("    </properties>\n");
        let classname = format!("leak-sentinel.{}.{}", doc.kind, doc.name);
        for (r, m) in doc.rows.iter().zip(&marks) {
            let _ = writeln!(
                suites,
                "    <testcase name=\"{}\" classname=\"{}\" time=\"{}\">",
                attr(&r.metric),
                attr(&classname),
                secs(r.judged_s)
            );
            let body = text(&details(doc, r));
            match m {
                // A passed case has no element of its own: its details go to its output.
                Mark::Pass => {
                    let _ = writeln!(suites, "      <system-out>{body}</system-out>");
                }
                Mark::Failure(kind, msg) => {
                    let _ = writeln!(
                        suites,
                        "      <failure message=\"{}\" type=\"{}\">{body}</failure>",
                        attr(msg),
                        attr(kind)
                    );
                }
                Mark::Error(kind, msg) => {
                    let _ = writeln!(
                        suites,
                        "      <error message=\"{}\" type=\"{}\">{body}</error>",
                        attr(msg),
                        attr(kind)
                    );
                }
                Mark::Skipped(msg) => {
                    let _ = writeln!(
                        suites,
                        "      <skipped message=\"{}\" type=\"inconclusive\">{body}</skipped>",
                        attr(msg)
                    );
                }
            }
            suites.push_str("    </testcase>\n");
        }
        suites.push_str("  </testsuite>\n");
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"leak-sentinel\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"{skipped}\" time=\"{}\">\n{suites}</testsuites>\n",
        secs(time)
    )
}

/// A run's final report (JSON) as JUnit XML.
pub fn from_report(report: &serde_json::Value) -> String {
    to_xml(&[super::ci::from_report(report)])
}

/// A fleet scan as JUnit XML: one testsuite per series.
pub fn from_scan(
    query: &str,
    series: &[SeriesVerdict],
    end_unix: f64,
    range_s: f64,
    warmup_s: f64,
    report: Option<&str>,
) -> String {
    to_xml(&super::ci::from_scan(
        query, series, end_unix, range_s, warmup_s, report,
    ))
}

/// An analysis of `file` as JUnit XML (for `analyze --junit`).
pub fn from_analysis(file: &str, a: &Analysis, report: Option<&str>) -> String {
    to_xml(&[super::ci::from_analysis(file, a, report)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::ci::CiRow;

    fn row(metric: &str, v: Verdict) -> CiRow {
        CiRow {
            metric: metric.into(),
            verdict: v,
            slope_per_min: 1.5,
            ci_low: Some(1.0),
            ci_high: None,
            confidence: 0.95,
            threshold_per_min: 0.1,
            unit: "MiB/min".into(),
            reason: "grows <fast> & \"steady\"".into(),
            min_detectable_per_min: Some(0.25),
            judged_s: 60.0,
        }
    }

    fn doc(rows: Vec<CiRow>) -> CiDoc {
        CiDoc {
            kind: "run",
            name: "n\u{1}ame".into(),
            verdict: Verdict::Leak,
            exit_code: Some(1),
            outcome: "failed: leak".into(),
            failure_reason: None,
            abort: None,
            timestamp: Some("2025-05-24T12:25:00".into()),
            elapsed_s: 90.0,
            report: Some("/tmp/r.json".into()),
            properties: vec![],
            rows,
        }
    }

    #[test]
    fn verdicts_map_to_failure_pass_and_skipped() {
        let x = to_xml(&[doc(vec![
            row("rss_anon_bytes", Verdict::Leak),
            row("fds", Verdict::Clean),
            row("threads", Verdict::Inconclusive),
        ])]);
        assert!(
            x.contains("tests=\"3\" failures=\"1\" errors=\"0\" skipped=\"1\""),
            "{x}"
        );
        assert!(x.contains("<failure message=\"leak: +1.500 MiB/min (95% interval [1.000, +∞] MiB/min), threshold 0.1 MiB/min: grows &lt;fast&gt; &amp; &quot;steady&quot;\" type=\"leak\">"), "{x}");
        assert!(x.contains("<skipped message=\"inconclusive:"), "{x}");
        assert!(x.contains("smallest detectable leak: 0.250 MiB/min"), "{x}");
        assert!(x.contains("report: /tmp/r.json"), "{x}");
        assert!(!x.contains('\u{1}'), "control characters are dropped");
    }

    #[test]
    fn an_aborted_run_is_an_error_on_metrics_that_did_not_leak() {
        let mut d = doc(vec![
            row("rss_anon_bytes", Verdict::Clean),
            row("fds", Verdict::Leak),
        ]);
        d.abort = Some(crate::render::ci::Abort {
            kind: "target_exited".into(),
            message: "exited with code 3".into(),
            error: true,
        });
        let x = to_xml(&[d]);
        assert!(
            x.contains("failures=\"1\" errors=\"1\" skipped=\"0\""),
            "{x}"
        );
        assert!(
            x.contains("<error message=\"target exited: exited with code 3"),
            "{x}"
        );
    }
}
