//! Gathers what the HTML report and `compare` show — from a stored run or from an `analyze`
//! table — into the renderers' input values.

use crate::analyze::{Analysis, MetricKind, Table};
use crate::clock::rfc3339;
use crate::detect::{Verdict, human_secs};
use crate::gate::judge_run;
use crate::render::html::{Chart, Report, Series};
use crate::sample::{Metric, Sample};
use crate::settings::RunSettings;
use crate::store::{RunRow, Store};
use crate::units::MIB;
use anyhow::{Context, Result};
use serde_json::Value;

use crate::detect::fmt_bound as fmt_b;
use crate::render::report::json_strings;

fn series(samples: &[Sample], start: f64, m: Metric) -> Vec<(f64, f64)> {
    let scale = if m.name().ends_with("_bytes") {
        1.0 / MIB
    } else {
        1.0
    };
    samples
        .iter()
        .filter_map(|s| s.get(m).map(|v| (s.t - start, v * scale)))
        .collect()
}

/// The HTML report of a stored run (finished or not).
pub fn run_report(store: &Store, row: &RunRow) -> Result<Report> {
    let s: RunSettings =
        serde_json::from_str(&row.settings).context("reading the run's settings")?;
    let samples = store.samples(row.id)?;
    let start = row.started_at;
    let judged = [
        Metric::JvmLiveBytes,
        Metric::OutsideHeapBytes,
        Metric::RssAnonBytes,
        Metric::RssBytes,
        Metric::CgroupMemoryBytes,
        Metric::PssBytes,
        Metric::Fds,
        Metric::Threads,
    ];
    // Judged as the run's checks judge: on the series thinned to bounded memory.
    let results = judge_run(&crate::thinned::samples(&samples), start, &s, &judged);
    let find = |m: Metric| {
        results
            .iter()
            .find(|r| r.name == m.name())
            .map(|r| r.judgement.clone())
    };
    let mut charts = Vec::new();
    for (m, title) in [
        (
            Metric::RssAnonBytes,
            "Private memory (anonymous + swap): the memory gate",
        ),
        (Metric::RssBytes, "Resident memory (RSS)"),
        (
            Metric::CgroupMemoryBytes,
            "cgroup memory (charged, page cache included)",
        ),
    ] {
        let pts = series(&samples, start, m);
        if !pts.is_empty() {
            charts.push(Chart {
                metric: m.name().into(),
                title: title.into(),
                unit: "MiB".into(),
                series: vec![Series {
                    name: m.name().into(),
                    points: pts,
                }],
                stacked: Vec::new(),
                judgement: find(m),
            });
        }
    }
    // A JVM: heap used, committed and the live set after GC (one point per old-space reclaim:
    // the GC events) on one chart, judged on the live set; then memory outside the heap.
    let live = series(&samples, start, Metric::JvmLiveBytes);
    let used = series(&samples, start, Metric::JvmHeapUsedBytes);
    if !used.is_empty() {
        let mut lines = vec![Series {
            name: "jvm_heap_used_bytes".into(),
            points: used,
        }];
        for m in [Metric::JvmHeapCommittedBytes, Metric::JvmLiveBytes] {
            let pts = series(&samples, start, m);
            if !pts.is_empty() {
                lines.push(Series {
                    name: m.name().into(),
                    points: pts,
                });
            }
        }
        charts.push(Chart {
            metric: "jvm_live_after_gc_bytes".into(),
            title: format!(
                "Java heap: used, committed, live set after GC ({} collection points)",
                live.len()
            ),
            unit: "MiB".into(),
            series: lines,
            stacked: Vec::new(),
            judgement: find(Metric::JvmLiveBytes),
        });
        let outside = series(&samples, start, Metric::OutsideHeapBytes);
        if !outside.is_empty() {
            charts.push(Chart {
                metric: "outside_heap_bytes".into(),
                title: "Private memory outside the Java heap (metaspace, stacks, direct buffers, malloc)".into(),
                unit: "MiB".into(),
                series: vec![Series {
                    name: "outside_heap_bytes".into(),
                    points: outside,
                }],
                stacked: Vec::new(),
                judgement: find(Metric::OutsideHeapBytes),
            });
        }
    }
    let pss = series(&samples, start, Metric::PssBytes);
    if !pss.is_empty() {
        let mut lines = vec![Series {
            name: "pss_bytes".into(),
            points: pss,
        }];
        let uss = series(&samples, start, Metric::UssBytes);
        if !uss.is_empty() {
            lines.push(Series {
                name: "uss_bytes".into(),
                points: uss,
            });
        }
        charts.push(Chart {
            metric: "pss_bytes".into(),
            title: "Proportional and unique memory (PSS, USS)".into(),
            unit: "MiB".into(),
            series: lines,
            stacked: Vec::new(),
            judgement: find(Metric::PssBytes),
        });
    }
    let kinds = [
        (Metric::FdsSocket, "sockets"),
        (Metric::FdsPipe, "pipes"),
        (Metric::FdsFile, "files"),
        (Metric::FdsAnonInode, "anon_inode"),
        (Metric::FdsOther, "other"),
    ];
    // Stacked bands need one x grid: the detail samples that carry every kind.
    let detail: Vec<&Sample> = samples
        .iter()
        .filter(|x| kinds.iter().all(|(m, _)| x.get(*m).is_some()))
        .collect();
    let stacked: Vec<Series> = kinds
        .iter()
        .map(|(m, name)| Series {
            name: (*name).into(),
            points: detail
                .iter()
                .map(|x| (x.t - start, x.get(*m).unwrap_or(0.0)))
                .collect(),
        })
        .filter(|s| s.points.iter().any(|p| p.1 > 0.0))
        .collect();
    charts.push(Chart {
        metric: "fds".into(),
        title: "Open file descriptors (total, and by kind)".into(),
        unit: "FDs".into(),
        series: vec![Series {
            name: "fds".into(),
            points: series(&samples, start, Metric::Fds),
        }],
        stacked,
        judgement: find(Metric::Fds),
    });
    charts.push(Chart {
        metric: "threads".into(),
        title: "Threads".into(),
        unit: "threads".into(),
        series: vec![Series {
            name: "threads".into(),
            points: series(&samples, start, Metric::Threads),
        }],
        stacked: Vec::new(),
        judgement: find(Metric::Threads),
    });
    // The target's own gauges (--target-metrics), each judged as the checks judge it.
    let gauges = store.gauges(row.id)?;
    for r in crate::gate::judge_gauges(&crate::thinned::gauges(&gauges), start, &s) {
        let Some(g) = gauges.iter().find(|g| g.column == r.name) else {
            continue;
        };
        let memory = r.kind == crate::analyze::MetricKind::Memory;
        let scale = r.kind.scale();
        charts.push(Chart {
            metric: r.name.clone(),
            title: format!(
                "{} (the target's own gauge)",
                r.name.trim_start_matches(crate::gauges::PREFIX)
            ),
            unit: if memory { "MiB" } else { "" }.into(),
            series: vec![Series {
                name: r.name.clone(),
                points: g
                    .t
                    .iter()
                    .zip(&g.v)
                    .map(|(t, v)| (t - start, v * scale))
                    .collect(),
            }],
            stacked: Vec::new(),
            judgement: Some(r.judgement),
        });
    }
    // The final report the store holds; a run ended by an older version has only the file.
    let stored = match row.status {
        crate::store::RunStatus::Running => None,
        _ => store.final_report(row.id)?,
    };
    let report: Option<Value> = stored
        .or_else(|| {
            row.report_file
                .as_ref()
                .and_then(|f| std::fs::read_to_string(f).ok())
        })
        .and_then(|t| serde_json::from_str(&t).ok());
    let verdict = row.verdict.as_deref().map(|v| match v {
        "leak" => Verdict::Leak,
        "clean" => Verdict::Clean,
        _ => Verdict::Inconclusive,
    });
    let verdict_words = match (row.status, row.exit_code) {
        (crate::store::RunStatus::Running, _) => "RUNNING (partial report)".to_string(),
        (_, Some(0)) => "PASSED".into(),
        (_, Some(1)) => "LEAK DETECTED".into(),
        (_, Some(3)) => "INCONCLUSIVE".into(),
        (_, Some(4)) => "FAILED: TARGET EXITED".into(),
        (_, Some(5)) => "INTERRUPTED".into(),
        (st, _) => st.as_str().to_uppercase(),
    };
    let target: Value = serde_json::from_str(&row.target).unwrap_or(Value::Null);
    let command = target_words(&target);
    let checks = store.checks(row.id)?;
    let events = store.events(row.id)?;
    let end = row
        .ended_at
        .or(samples.last().map(|x| x.t))
        .unwrap_or(start);
    let facts = vec![
        ("run".to_string(), row.name.clone()),
        ("target".into(), command),
        ("profile".into(), s.profile_words()),
        ("schedule".into(), s.cadence_words()),
        ("started".into(), rfc3339(start)),
        ("ended".into(), row.ended_at.map_or("—".into(), rfc3339)),
        ("duration".into(), human_secs(end - start)),
        ("target clean time".into(), human_secs(s.duration_s)),
        ("warm-up".into(), human_secs(s.warmup_s)),
        ("samples".into(), samples.len().to_string()),
        (
            "checks".into(),
            format!(
                "{} ({} failed)",
                checks.len(),
                checks.iter().filter(|c| c.failed).count()
            ),
        ),
        (
            "exit code".into(),
            row.exit_code.map_or("—".into(), |c| c.to_string()),
        ),
    ];
    let table = results
        .iter()
        .map(|r| {
            let j = &r.judgement;
            [
                r.name.clone(),
                j.verdict.as_str().into(),
                format!("{:.3}", j.slope_per_min),
                fmt_b(j.ci_low),
                fmt_b(j.ci_high),
                j.threshold_per_min.to_string(),
                r.kind.rate_unit().into(),
            ]
        })
        .collect();
    let (findings, suggestions) = report
        .as_ref()
        .map(|r| {
            (
                json_strings(&r["diagnosis"]["findings"]),
                json_strings(&r["diagnosis"]["suggestions"]),
            )
        })
        .unwrap_or_default();
    let mut sections = Vec::new();
    if let Some(r) = &report {
        if let Some(ch) = r["baseline_comparison"]["changes"].as_array() {
            sections.push((
                "Against the baseline".to_string(),
                ch.iter()
                    .filter_map(|c| c["text"].as_str().map(String::from))
                    .collect(),
            ));
        }
        if r["snapshot_hook"].is_object() {
            let hk = &r["snapshot_hook"];
            sections.push((
                "Snapshot hook".to_string(),
                vec![
                    format!(
                        "{} → exit {}",
                        hk["command"].as_str().unwrap_or(""),
                        hk["exit_code"]
                    ),
                    format!(
                        "files in {}: {}",
                        hk["dir"].as_str().unwrap_or(""),
                        hook_files(&hk["files"])
                    ),
                ],
            ));
        }
    }
    Ok(Report {
        title: row.name.clone(),
        facts,
        verdict,
        verdict_words,
        reason: row.failure_reason.clone(),
        warmup_s: s.warmup_s,
        checks: checks.iter().map(|c| (c.t - start, c.failed)).collect(),
        events: events
            .iter()
            .map(|e| {
                (
                    e.t - start,
                    e.kind.to_string(),
                    event_words(e.kind, &e.detail),
                )
            })
            .collect(),
        span_s: end - start,
        charts,
        table,
        findings,
        suggestions,
        sections,
        attribution: report
            .as_ref()
            .and_then(crate::render::report::attribution_of),
    })
}

/// The HTML report of an `analyze` table.
pub fn analysis_report(name: &str, table: &Table, a: &Analysis) -> Report {
    let charts = a
        .metrics
        .iter()
        .filter_map(|m| {
            let values = &table.columns.iter().find(|(n, _)| *n == m.name)?.1;
            let scale = m.kind.scale();
            let pts: Vec<(f64, f64)> = table
                .t
                .iter()
                .zip(values)
                .filter(|(_, v)| v.is_finite())
                .map(|(t, v)| (*t, v * scale))
                .collect();
            Some(Chart {
                metric: m.name.clone(),
                title: m.name.clone(),
                unit: match m.kind {
                    MetricKind::Memory => "MiB".into(),
                    MetricKind::Fds => "FDs".into(),
                    MetricKind::Threads => "threads".into(),
                    MetricKind::Other => "units".into(),
                },
                series: vec![Series {
                    name: m.name.clone(),
                    points: pts,
                }],
                stacked: Vec::new(),
                judgement: Some(m.judgement.clone()),
            })
        })
        .collect();
    Report {
        title: name.into(),
        facts: vec![
            ("file".into(), name.into()),
            ("span".into(), human_secs(a.span_s)),
            ("warm-up".into(), human_secs(a.warmup_s)),
            ("rows".into(), table.t.len().to_string()),
        ],
        verdict: Some(a.verdict),
        verdict_words: match a.verdict {
            Verdict::Leak => "LEAK".into(),
            Verdict::Clean => "CLEAN".into(),
            Verdict::Inconclusive => "INCONCLUSIVE".into(),
        },
        reason: None,
        warmup_s: a.warmup_s,
        charts,
        table: a
            .metrics
            .iter()
            .map(|m| {
                let j = &m.judgement;
                [
                    m.name.clone(),
                    j.verdict.as_str().into(),
                    format!("{:.3}", j.slope_per_min),
                    fmt_b(j.ci_low),
                    fmt_b(j.ci_high),
                    j.threshold_per_min.to_string(),
                    m.kind.rate_unit().into(),
                ]
            })
            .collect(),
        ..Report::default()
    }
}

/// The HTML report of a fleet scan: the table of every series, charts for the 20 most severe.
/// `warmup_s`: the warm-up not judged (shaded, as in a run's report).
pub fn scan_report(
    query: &str,
    series: &[crate::fleet::SeriesVerdict],
    overall: Verdict,
    warmup_s: f64,
) -> Report {
    Report {
        warmup_s,
        title: format!("scan {query}"),
        facts: vec![
            ("query".into(), query.into()),
            ("series".into(), series.len().to_string()),
            (
                "leaking".into(),
                series
                    .iter()
                    .filter(|s| s.result.judgement.verdict == Verdict::Leak)
                    .count()
                    .to_string(),
            ),
        ],
        verdict: Some(overall),
        verdict_words: match overall {
            Verdict::Leak => "LEAK".into(),
            Verdict::Clean => "CLEAN".into(),
            Verdict::Inconclusive => "INCONCLUSIVE".into(),
        },
        charts: series
            .iter()
            .take(20)
            .map(|s| Chart {
                metric: crate::render::scan::label_text(&s.labels),
                title: crate::render::scan::label_text(&s.labels),
                unit: s.result.kind.rate_unit().trim_end_matches("/min").into(),
                series: vec![Series {
                    name: "value".into(),
                    points: s.result.judgement.evidence.envelope_points.clone(),
                }],
                stacked: Vec::new(),
                judgement: Some(s.result.judgement.clone()),
            })
            .collect(),
        table: series
            .iter()
            .map(|s| {
                let j = &s.result.judgement;
                [
                    crate::render::scan::label_text(&s.labels),
                    j.verdict.as_str().into(),
                    format!("{:.3}", j.slope_per_min),
                    fmt_b(j.ci_low),
                    fmt_b(j.ci_high),
                    j.threshold_per_min.to_string(),
                    s.result.kind.rate_unit().into(),
                ]
            })
            .collect(),
        ..Report::default()
    }
}

/// A stored target described in full for people: the command (shell-quoted), the PID, the PID
/// file or the cgroup directory.
fn target_words(target: &Value) -> String {
    let command: Vec<String> = target["command"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let pid = target["pid"].as_i64().map(|p| format!("PID {p}"));
    match target["kind"].as_str().unwrap_or("") {
        "spawn" => format!(
            "{}{}",
            crate::units::shell_line(&command),
            pid.map(|p| format!(" ({p})")).unwrap_or_default()
        ),
        "pid_file" => format!(
            "{} from {}",
            pid.unwrap_or_default(),
            target["pid_file"].as_str().unwrap_or("?")
        ),
        "cgroup" => format!("cgroup {}", target["cgroup"].as_str().unwrap_or("?")),
        other => format!("{other} {}", pid.unwrap_or_default())
            .trim()
            .to_string(),
    }
}

/// An event's detail for people: the start event stores the target as JSON.
fn event_words(kind: crate::store::EventKind, detail: &str) -> String {
    if kind == crate::store::EventKind::Start {
        if let Ok(v) = serde_json::from_str::<Value>(detail) {
            return format!("started: {}", target_words(&v));
        }
    }
    detail.to_string()
}

/// The hook's files (`[[name, bytes], …]`) as `name (size)`.
fn hook_files(files: &Value) -> String {
    let list: Vec<String> = files
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|f| {
                    let name = f[0].as_str()?;
                    let bytes = f[1].as_f64().unwrap_or(0.0);
                    Some(if bytes >= MIB {
                        format!("{name} ({:.1} MiB)", bytes / MIB)
                    } else {
                        format!("{name} ({:.1} KiB)", bytes / 1024.0)
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    if list.is_empty() {
        "none".into()
    } else {
        list.join(", ")
    }
}
