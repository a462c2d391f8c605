//! The markdown summary of a run, a scan or an analysis (`--summary-md`, GitHub Actions'
//! `$GITHUB_STEP_SUMMARY`): a heading with the outcome, the verdict table of the gate metrics
//! (metric, verdict, rate, interval, threshold, smallest detectable leak) and where the full
//! report is. GitHub-flavoured markdown; every value from outside is escaped. Data in, bytes out.

use super::ci::{CiDoc, CiRow, interval_text, min_detectable_text, rate_text, threshold_text};
use crate::analyze::Analysis;
use crate::detect::Verdict;
use crate::fleet::SeriesVerdict;
use std::fmt::Write as _;

/// Escaped for a table cell or a line of text: markdown punctuation backslashed, HTML
/// characters as entities, line breaks as spaces.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\n' | '\r' | '\t' => out.push(' '),
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '~' | '#' | '!' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

fn verdict_cell(v: Verdict) -> &'static str {
    match v {
        Verdict::Leak => "❌ **LEAK**",
        Verdict::Clean => "✅ clean",
        Verdict::Inconclusive => "⚠️ inconclusive",
    }
}

fn outcome_icon(d: &CiDoc) -> &'static str {
    match (d.exit_code, d.verdict) {
        (Some(0), _) => "✅",
        (Some(3), _) => "⚠️",
        (None, Verdict::Clean) => "✅",
        (None, Verdict::Inconclusive) => "⚠️",
        _ => "❌",
    }
}

/// The verdict table's header and rows; `first`: the first column's title.
fn table(out: &mut String, first: &str, rows: &[&CiRow]) {
    let _ = writeln!(
        out,
        "| {first} | verdict | rate | 95% interval | threshold | smallest detectable leak |"
    );
    out.push_str("|---|---|---:|---|---:|---:|\n");
    for r in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            escape(&r.metric),
            verdict_cell(r.verdict),
            // Numbers and units of our own: nothing to escape but the unit (`|` never in one).
            rate_text(r.slope_per_min, &r.unit),
            interval_text(r),
            threshold_text(r),
            min_detectable_text(r),
        );
    }
}

fn reasons(out: &mut String, rows: &[&CiRow]) {
    for r in rows.iter().filter(|r| r.verdict != Verdict::Clean) {
        let _ = writeln!(out, "- {}: {}", escape(&r.metric), escape(&r.reason));
    }
}

/// One suite (a run or an analysis) as a summary section.
pub fn doc_md(d: &CiDoc) -> String {
    let mut out = format!(
        "### {} leak-sentinel {} {}: {}\n\n",
        outcome_icon(d),
        d.kind,
        escape(&d.name),
        escape(&d.outcome)
    );
    if let Some(r) = &d.failure_reason {
        let _ = writeln!(out, "{}\n", escape(r));
    }
    let rows: Vec<&CiRow> = d.rows.iter().collect();
    table(&mut out, "metric", &rows);
    out.push('\n');
    if rows.iter().any(|r| r.verdict != Verdict::Clean) {
        reasons(&mut out, &rows);
        out.push('\n');
    }
    let mut facts = vec![format!(
        "{} of data",
        crate::detect::human_secs(d.elapsed_s)
    )];
    for (k, v) in &d.properties {
        if matches!(k.as_str(), "profile" | "input_format") {
            facts.push(format!("{k} {}", escape(v)));
        }
    }
    if let Some(p) = &d.report {
        facts.push(format!("report: {}", escape(p)));
    }
    let _ = writeln!(out, "{}\n", facts.join(" · "));
    out
}

/// A run's final report (JSON) as a summary section.
pub fn from_report(report: &serde_json::Value) -> String {
    doc_md(&super::ci::from_report(report))
}

/// An analysis of `file` as a summary section (for `analyze --summary-md`).
pub fn from_analysis(file: &str, a: &Analysis, report: Option<&str>) -> String {
    doc_md(&super::ci::from_analysis(file, a, report))
}

/// A fleet scan as a summary section: one table, a row per series (most severe first, as the
/// scan orders them).
pub fn from_scan(
    query: &str,
    series: &[SeriesVerdict],
    end_unix: f64,
    range_s: f64,
    warmup_s: f64,
    report: Option<&str>,
) -> String {
    let docs = super::ci::from_scan(query, series, end_unix, range_s, warmup_s, report);
    let overall = Verdict::combine(docs.iter().map(|d| d.verdict));
    let count = |v: Verdict| docs.iter().filter(|d| d.verdict == v).count();
    let icon = match overall {
        Verdict::Leak => "❌",
        Verdict::Clean => "✅",
        Verdict::Inconclusive => "⚠️",
    };
    let mut out = format!(
        "### {icon} leak-sentinel scan: {}\n\n{} — {} series: {} leak, {} clean, {} inconclusive\n\n",
        overall.as_str(),
        escape(query),
        docs.len(),
        count(Verdict::Leak),
        count(Verdict::Clean),
        count(Verdict::Inconclusive)
    );
    let rows: Vec<CiRow> = docs
        .iter()
        .flat_map(|d| {
            d.rows.iter().map(|r| CiRow {
                metric: d.name.clone(),
                ..r.clone()
            })
        })
        .collect();
    let refs: Vec<&CiRow> = rows.iter().collect();
    table(&mut out, "series", &refs);
    out.push('\n');
    let _ = write!(
        out,
        "range {}, warm-up {} per series",
        crate::detect::human_secs(range_s),
        crate::detect::human_secs(warmup_s)
    );
    if let Some(p) = report {
        let _ = write!(out, " · report: {}", escape(p));
    }
    out.push_str("\n\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_cannot_break_the_table_or_inject_html() {
        assert_eq!(escape("a|b"), "a\\|b");
        assert_eq!(escape("<script>"), "&lt;script&gt;");
        assert_eq!(escape("rss_anon_bytes"), "rss\\_anon\\_bytes");
        assert_eq!(escape("x\ny"), "x y");
    }
}
