//! `history TAG`: the nights of a tagged soak from the store — each night's outcome and the growth
//! rates of its last check — and the change-point of each rate across them
//! ([`crate::history::change_point`]).

use super::{open_existing, write_user_file};
use crate::analyze::MetricKind;
use crate::exit::{Exit, usage};
use crate::history::{Change, Night, change_point, sentence, sig};
use crate::settings::RunSettings;
use crate::store::{RunRow, RunStatus, Store};
use anyhow::Result;
use serde_json::json;
use std::path::Path;

/// Most nights shown (`--last`).
pub const MAX_NIGHTS: usize = 10_000;

/// The three rates: name, unit, the night's value, and the floor of their scatter (a
/// difference below it is no change: 1 KiB/min, 0.01 FD or thread a minute).
type Rate = (&'static str, &'static str, fn(&Night) -> Option<f64>, f64);
const RATES: [Rate; 3] = [
    ("memory", "MiB/min", |n| n.memory_mib_per_min, 1.0 / 1024.0),
    ("fds", "FDs/min", |n| n.fds_per_min, 0.01),
    ("threads", "threads/min", |n| n.threads_per_min, 0.01),
];

fn outcome(r: &RunRow) -> String {
    match (r.status, r.exit_code) {
        (RunStatus::Running, _) => "running".into(),
        (_, Some(0)) => "passed".into(),
        (_, Some(1)) => "leak".into(),
        (_, Some(3)) => "inconclusive".into(),
        (_, Some(4)) => "target_exited".into(),
        (_, Some(5)) => "interrupted".into(),
        (s, _) => s.to_string(),
    }
}

/// One night from the store: `None` when the run is not of `tag`.
fn night(store: &Store, r: &RunRow, tag: &str) -> Result<Option<Night>> {
    // Settings written by older versions may lack fields: a run that cannot be read is not one
    // of this tag's (its name may still be, so fall back on it).
    let settings: Option<RunSettings> = serde_json::from_str(&r.settings).ok();
    let run_tag = settings
        .as_ref()
        .and_then(|s| s.tag.clone())
        .unwrap_or_else(|| crate::publish::pushed::tag_of(&r.name));
    if !crate::history::tag_matches(tag, &run_tag) {
        return Ok(None);
    }
    let label = |k: &str| {
        settings
            .as_ref()
            .and_then(|s| s.labels.iter().find(|(key, _)| key == k))
            .map(|(_, v)| v.clone())
    };
    let mut n = Night {
        date: crate::render::report::rfc3339(r.started_at)
            .get(..10)
            .unwrap_or("-")
            .to_string(),
        started_at: r.started_at,
        run: r.name.clone(),
        outcome: outcome(r),
        verdict: r.verdict.clone(),
        exit_code: r.exit_code,
        memory_mib_per_min: None,
        fds_per_min: None,
        threads_per_min: None,
        commit: label("commit").or_else(|| label("version")),
    };
    let checks = store.checks(r.id)?;
    if let Some(last) = checks.last() {
        let detail: serde_json::Value = serde_json::from_str(&last.detail).unwrap_or_default();
        if let Some(o) = detail.as_object() {
            for (name, v) in o {
                let Some(rate) = v["slope_per_min"].as_f64().filter(|x| x.is_finite()) else {
                    continue;
                };
                let slot = match MetricKind::of(name) {
                    MetricKind::Memory => &mut n.memory_mib_per_min,
                    MetricKind::Fds => &mut n.fds_per_min,
                    MetricKind::Threads => &mut n.threads_per_min,
                    MetricKind::Other => continue,
                };
                slot.get_or_insert(rate);
            }
        }
    }
    Ok(Some(n))
}

/// A change-point of one rate, with the nights it indexes.
pub struct Found<'a> {
    /// `memory`, `fds` or `threads`.
    pub what: &'static str,
    /// Its unit.
    pub unit: &'static str,
    /// The change.
    pub change: Change,
    /// The nights that had this rate, in order (`change.at` indexes them).
    pub nights: Vec<&'a Night>,
    /// The sentence.
    pub words: String,
}

/// The change-points of every rate over `nights`.
pub fn changes(nights: &[Night]) -> Vec<Found<'_>> {
    let mut out = Vec::new();
    for (what, unit, get, floor) in RATES {
        let with: Vec<&Night> = nights.iter().filter(|n| get(n).is_some()).collect();
        let v: Vec<f64> = with.iter().filter_map(|n| get(n)).collect();
        if let Some(c) = change_point(&v, floor) {
            let words = sentence(what, unit, &c, &with);
            out.push(Found {
                what,
                unit,
                change: c,
                nights: with,
                words,
            });
        }
    }
    out
}

/// Runs `history TAG`.
pub fn history(
    state: &Path,
    tag: &str,
    json: bool,
    html: Option<&Path>,
    last: usize,
) -> Result<Exit> {
    check_args(tag, last)?;
    let store = open_existing(state)?;
    let mut nights = Vec::new();
    for r in store.list_runs()? {
        if let Some(n) = night(&store, &r, tag)? {
            nights.push(n);
        }
    }
    if nights.is_empty() {
        return Err(usage(format!(
            "history: no runs tagged '{tag}' under '{}'",
            state.display()
        )));
    }
    nights.sort_by(|a, b| a.started_at.total_cmp(&b.started_at));
    let skip = nights.len().saturating_sub(last);
    nights.drain(..skip);
    show(tag, &nights, json, html)
}

/// Runs `history TAG --url URL`: the nights from the series runs pushed by remote write
/// (`leak_sentinel_*{tag="TAG"}`), looking back `range_s` seconds.
pub fn history_url(
    url: &str,
    tag: &str,
    range_s: f64,
    ca_file: Option<&Path>,
    json: bool,
    html: Option<&Path>,
    last: usize,
) -> Result<Exit> {
    use crate::publish::pushed;
    check_args(tag, last)?;
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(usage(format!(
            "history: --url must be http(s), not '{url}'"
        )));
    }
    let ca = crate::publish::tls::CaBundle::load_opt(ca_file)?;
    // `*` in the pattern: a regular expression (anchored by the engine), everything else literal
    // (`\x{..}` escapes in the PromQL string).
    let sel = if tag.contains('*') {
        let literal = |p: &str| -> String {
            p.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                        c.to_string()
                    } else {
                        format!("\\\\x{{{:x}}}", c as u32)
                    }
                })
                .collect()
        };
        let re: Vec<String> = tag.split('*').map(literal).collect();
        format!("tag=~\"{}\"", re.join(".*"))
    } else {
        format!("tag=\"{}\"", tag.replace('\\', "\\\\").replace('"', "\\\""))
    };
    let r = format!("{}s", range_s.round().max(1.0));
    let q = |query: String| crate::fleet::instant(url, &query, ca.as_ref());
    // Each run's end: its exit code's raw sample, pushed once at the end, with its own time.
    let mut nights: Vec<Night> = Vec::new();
    for (labels, t_end, code) in q(format!("{}{{{sel}}}[{r}]", pushed::EXIT_CODE))? {
        let Some(run) = labels.get("run") else {
            continue;
        };
        if nights.iter().any(|n| &n.run == run) {
            continue;
        }
        nights.push(Night {
            date: String::new(),
            started_at: t_end,
            run: run.clone(),
            outcome: "-".into(),
            verdict: None,
            exit_code: Some(code as i64),
            memory_mib_per_min: None,
            fds_per_min: None,
            threads_per_min: None,
            commit: labels
                .get("commit")
                .or_else(|| labels.get("version"))
                .cloned(),
        });
        if nights.len() > MAX_NIGHTS {
            return Err(usage(format!(
                "history: more than {MAX_NIGHTS} runs tagged '{tag}' at {url}; shorten --range"
            )));
        }
    }
    if nights.is_empty() {
        return Err(usage(format!(
            "history: no runs tagged '{tag}' at {} in the last {r}",
            crate::publish::notify::redact_url(url)
        )));
    }
    let mut set = |query: String, f: &dyn Fn(&mut Night, &Labels, f64)| -> Result<()> {
        for (labels, _, v) in q(query)? {
            let Some(run) = labels.get("run") else {
                continue;
            };
            if let Some(n) = nights.iter_mut().find(|n| &n.run == run) {
                f(n, &labels, v);
            }
        }
        Ok(())
    };
    set(format!("{}{{{sel}}}[{r}]", pushed::ELAPSED), &|n, _, v| {
        n.started_at -= v;
    })?;
    set(
        format!("last_over_time({}{{{sel}}}[{r}]) == 1", pushed::OUTCOME),
        &|n, l, _| {
            if let Some(o) = l.get("outcome") {
                n.outcome = o.clone();
            }
        },
    )?;
    set(
        format!("last_over_time({}{{{sel}}}[{r}]) == 1", pushed::RUN_VERDICT),
        &|n, l, _| {
            n.verdict = l.get("verdict").cloned();
        },
    )?;
    let per_min = 60.0 / crate::units::MIB;
    set(
        format!(
            "last_over_time({}{{{sel},bound=\"estimate\"}}[{r}])",
            pushed::MEMORY_GROWTH
        ),
        &|n, _, v| {
            n.memory_mib_per_min.get_or_insert(v * per_min);
        },
    )?;
    set(
        format!(
            "last_over_time({}{{{sel},bound=\"estimate\",kind=\"all\"}}[{r}])",
            pushed::FD_GROWTH
        ),
        &|n, _, v| n.fds_per_min = Some(v * 60.0),
    )?;
    set(
        format!(
            "last_over_time({}{{{sel},bound=\"estimate\"}}[{r}])",
            pushed::THREAD_GROWTH
        ),
        &|n, _, v| n.threads_per_min = Some(v * 60.0),
    )?;
    for n in &mut nights {
        n.date = crate::render::report::rfc3339(n.started_at)
            .get(..10)
            .unwrap_or("-")
            .to_string();
    }
    nights.sort_by(|a, b| a.started_at.total_cmp(&b.started_at));
    let skip = nights.len().saturating_sub(last);
    nights.drain(..skip);
    show(tag, &nights, json, html)
}

fn check_args(tag: &str, last: usize) -> Result<()> {
    if tag.is_empty() || tag.len() > 200 {
        return Err(usage("history: TAG must be 1 to 200 characters"));
    }
    if !(1..=MAX_NIGHTS).contains(&last) {
        return Err(usage(format!(
            "history: --last must be 1 to {MAX_NIGHTS}, not {last}"
        )));
    }
    Ok(())
}

/// A series' labels.
type Labels = std::collections::BTreeMap<String, String>;

/// Renders the nights (terminal or JSON, and the HTML page).
pub fn show(tag: &str, nights: &[Night], json: bool, html: Option<&Path>) -> Result<Exit> {
    let found = changes(nights);
    if let Some(path) = html {
        let page = crate::render::html::history_page(tag, nights, &found_marks(&found))?;
        write_user_file(path, page.as_bytes())?;
    }
    if json {
        let ch: serde_json::Map<String, serde_json::Value> = found
            .iter()
            .map(|f| {
                let at = f.nights.get(f.change.at);
                let before = f.change.at.checked_sub(1).and_then(|i| f.nights.get(i));
                (
                    f.what.to_string(),
                    json!({
                        "from_run": before.map(|n| &n.run), "to_run": at.map(|n| &n.run),
                        "from_date": before.map(|n| &n.date), "to_date": at.map(|n| &n.date),
                        "from_commit": before.and_then(|n| n.commit.as_ref()),
                        "to_commit": at.and_then(|n| n.commit.as_ref()),
                        "before": f.change.before, "after": f.change.after,
                        "scatter": f.change.scatter, "score": f.change.score,
                        "unit": f.unit, "words": f.words,
                    }),
                )
            })
            .collect();
        let doc = json!({
            "tag": tag,
            "nights": nights,
            "changes": ch,
            "rule": format!(
                "best two-level fit in absolute deviations (>= {} nights a side); stated when the sides' medians differ by more than {} robust standard deviations (1.4826 x MAD about each side's median)",
                crate::history::MIN_SEGMENT,
                crate::history::THRESHOLD
            ),
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(Exit::Passed);
    }
    println!(
        "{:<10} {:<28} {:<13} {:>4} {:>12} {:>10} {:>12}  commit",
        "date", "run", "outcome", "exit", "MiB/min", "FDs/min", "threads/min"
    );
    let o = |v: Option<f64>| v.map_or("-".to_string(), sig);
    for n in nights {
        println!(
            "{:<10} {:<28} {:<13} {:>4} {:>12} {:>10} {:>12}  {}",
            n.date,
            n.run,
            n.outcome,
            n.exit_code.map_or("-".into(), |c| c.to_string()),
            o(n.memory_mib_per_min),
            o(n.fds_per_min),
            o(n.threads_per_min),
            n.commit.as_deref().unwrap_or("-")
        );
    }
    if found.is_empty() {
        println!(
            "no change: no rate's level changed beyond the nights' scatter ({} nights)",
            nights.len()
        );
    }
    for f in &found {
        println!("{}", f.words);
    }
    Ok(Exit::Passed)
}

/// Where each change is, for the charts: rate name, index into `nights` of the first night at
/// the new level, the levels before and after.
fn found_marks(found: &[Found<'_>]) -> Vec<(&'static str, String, f64, f64)> {
    found
        .iter()
        .filter_map(|f| {
            let n = f.nights.get(f.change.at)?;
            Some((f.what, n.run.clone(), f.change.before, f.change.after))
        })
        .collect()
}
