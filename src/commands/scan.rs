//! `scan`: the detector over every series of a PromQL range query.

use super::{rate, write_user_file};
use crate::analyze;
use crate::clock::now_unix;
use crate::exit::{Exit, usage};
use crate::render;
use crate::units::{RateKind, parse_duration};
use anyhow::Result;
use std::time::Duration;

/// Runs `scan`.
pub fn scan(a: &crate::cli::ScanArgs) -> Result<Exit> {
    use crate::fleet;
    // A query over the series `run --remote-write` pushes says its own kind: the open FDs of
    // past runs are judged in FD/min without `--kind fds`.
    let kind_word = match &a.kind {
        Some(k) => k.clone(),
        None => crate::publish::pushed::kind_of_query(&a.query)
            .unwrap_or("memory")
            .to_string(),
    };
    let kind = match kind_word.as_str() {
        "memory" => analyze::MetricKind::Memory,
        "fds" => analyze::MetricKind::Fds,
        "threads" => analyze::MetricKind::Threads,
        "generic" => analyze::MetricKind::Other,
        other => {
            return Err(usage(format!(
                "--kind: '{other}' is not memory, fds, threads or generic"
            )));
        }
    };
    if !(a.url.starts_with("http://") || a.url.starts_with("https://")) {
        return Err(usage(format!(
            "--url: '{}' is not an http(s) URL",
            crate::publish::notify::redact_url(&a.url)
        )));
    }
    let limits = limits(a)?;
    let ca = crate::publish::tls::CaBundle::load_opt(a.ca_file.as_deref())?;
    let junit = crate::config::ci_output("junit", a.junit.as_ref())?;
    let summary_md = crate::config::ci_output("summary-md", a.summary_md.as_ref())?;
    if a.max_points < 2 {
        return Err(usage("--max-points must be at least 2"));
    }
    if a.concurrency == 0 {
        return Err(usage("--concurrency must be at least 1"));
    }
    let dur = |flag: &str, s: &str| -> Result<f64> {
        Ok(parse_duration(s)
            .map_err(|e| usage(format!("--{flag}: {e}")))?
            .as_secs_f64())
    };
    let range = dur("range", &a.range)?;
    let step = dur("step", &a.step)?;
    // Default warm-up: 10 % of the range, as `analyze` takes 10 % of a file's span — a series
    // that starts inside the range starts with its process (a server's own start-up, caches
    // filling), and that climb is not a leak.
    let warmup_s = match &a.warmup {
        Some(w) => dur("warmup", w)?,
        None => 0.1 * range,
    };
    if !(warmup_s.is_finite() && warmup_s < range) {
        return Err(usage(format!(
            "--warmup: '{}' must be shorter than --range '{}'",
            a.warmup.as_deref().unwrap_or_default(),
            a.range
        )));
    }
    let threshold = match &a.threshold {
        Some(t) => rate(
            "threshold",
            t,
            if kind == analyze::MetricKind::Memory {
                RateKind::Memory
            } else {
                RateKind::Count
            },
        )?,
        None => 0.1,
    };
    let watch = match &a.watch {
        Some(w) => Some(dur("watch", w)?),
        None => None,
    };
    let mut previous: std::collections::BTreeMap<String, crate::detect::Verdict> =
        Default::default();
    let mut round = 0u64;
    loop {
        let end = match &a.end {
            Some(e) => parse_time_arg(e)?,
            None => now_unix(),
        };
        let spec = fleet::Scan {
            url: a.url.clone(),
            query: a.query.clone(),
            start: end - range,
            end,
            step,
            threshold,
            kind,
            max_points: a.max_points.max(2),
            concurrency: a.concurrency,
            warmup_s,
            ca: ca.clone(),
        };
        let result =
            fleet::scan_with(&spec, &limits).map_err(|e| plain_connect_error(e, &a.url))?;
        let overall =
            crate::detect::Verdict::combine(result.iter().map(|s| s.result.judgement.verdict));
        if let Some(path) = &a.html {
            let page = render::html::render(&super::report_data::scan_report(
                &a.query, &result, overall, warmup_s,
            ))?;
            write_user_file(path, page.as_bytes())?;
        }
        let last_round = watch.is_none() || a.watch_count.is_some_and(|n| round + 1 >= n);
        if last_round {
            // CI outputs once, from the last round (a step summary is appended, not replaced).
            let html = a.html.as_ref().map(|p| p.display().to_string());
            let (q, r, html) = (&a.query, &result, html.as_deref());
            for w in crate::session::ci::write_outputs(
                junit.as_deref(),
                summary_md.as_deref(),
                || render::junit::from_scan(q, r, end, range, warmup_s, html),
                || render::markdown::from_scan(q, r, end, range, warmup_s, html),
            ) {
                eprintln!("warning: {w}");
            }
        }
        let Some(every) = watch else {
            if a.json {
                println!("{}", crate::render::scan::to_json(&result));
            } else {
                print!("{}", crate::render::scan::to_text(&result));
            }
            return Ok(Exit::of_verdict(overall));
        };
        // --watch: only what changed since the last round (everything on the first).
        let now: std::collections::BTreeMap<String, crate::detect::Verdict> = result
            .iter()
            .map(|s| {
                (
                    crate::render::scan::label_text(&s.labels),
                    s.result.judgement.verdict,
                )
            })
            .collect();
        for (series, v) in &now {
            let before = previous.get(series);
            if before != Some(v) {
                let line = serde_json::json!({
                    "time": render::report::rfc3339(now_unix()), "series": series,
                    "from": before.map(|b| b.as_str()), "to": v.as_str(),
                });
                if a.json {
                    println!("{line}");
                } else {
                    println!(
                        "{} {series}: {} → {}",
                        render::report::rfc3339(now_unix()),
                        before.map_or("new", |b| b.as_str()),
                        v.as_str()
                    );
                }
            }
        }
        for gone in previous.keys().filter(|k| !now.contains_key(*k)) {
            println!("{} {gone}: gone", render::report::rfc3339(now_unix()));
        }
        previous = now;
        round += 1;
        if a.watch_count.is_some_and(|n| round >= n) {
            return Ok(Exit::of_verdict(overall));
        }
        std::thread::sleep(Duration::from_secs_f64(every));
    }
}

/// "cannot connect to URL" in plain words when the server could not be reached at all
/// (connection refused, unknown host, no answer to the connect), instead of which chunk of the
/// range failed; other errors pass unchanged.
fn plain_connect_error(e: anyhow::Error, url: &str) -> anyhow::Error {
    let text = format!("{e:#}");
    let lower = text.to_lowercase();
    let why = if lower.contains("connection refused") {
        "connection refused (is the server running, and is the port right?)"
    } else if lower.contains("host not found")
        || lower.contains("failed to lookup address")
        || lower.contains("name or service not known")
        || lower.contains("temporary failure in name resolution")
    {
        "host not found"
    } else if lower.contains("the connect deadline") {
        "no answer to the connection (a firewall, or the wrong host?)"
    } else if lower.contains("network is unreachable") || lower.contains("no route to host") {
        "no route to the host"
    } else {
        return e;
    };
    usage(format!(
        "cannot connect to {}: {why}",
        crate::publish::notify::redact_url(url)
    ))
}

/// The scan's bounds: defaults, then the environment (`LEAK_SENTINEL_SCAN_MAX_BYTES`,
/// `LEAK_SENTINEL_SCAN_MAX_POINTS`, `LEAK_SENTINEL_SCAN_TIMEOUT`), then the flags
/// `--max-bytes`, `--max-points-total`, `--timeout`.
fn limits(a: &crate::cli::ScanArgs) -> Result<crate::fleet::Limits> {
    let env = |k: &str| std::env::var(k).ok();
    let pick = |flag: &Option<String>, name: &'static str, var: &'static str| {
        flag.clone()
            .map(|v| (v, name))
            .or_else(|| env(var).map(|v| (v, var)))
    };
    let mut l = crate::fleet::Limits::default();
    if let Some((v, what)) = pick(&a.max_bytes, "--max-bytes", "LEAK_SENTINEL_SCAN_MAX_BYTES") {
        l.max_bytes = parse_size(&v).filter(|n| *n >= 1024).ok_or_else(|| {
            usage(format!(
                "{what}: '{v}' is not a size of at least 1024 bytes (e.g. 64MiB)"
            ))
        })?;
    }
    if let Some((v, what)) = pick(
        &a.max_points_total,
        "--max-points-total",
        "LEAK_SENTINEL_SCAN_MAX_POINTS",
    ) {
        l.max_total_points = v
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| (2..=1_000_000_000).contains(n))
            .ok_or_else(|| {
                usage(format!(
                    "{what}: '{v}' is not a number of points from 2 to 1000000000"
                ))
            })?;
    }
    if let Some((v, what)) = pick(&a.timeout, "--timeout", "LEAK_SENTINEL_SCAN_TIMEOUT") {
        let d = parse_duration(&v)
            .map_err(|e| usage(format!("{what}: {e}")))?
            .as_secs_f64();
        if !(d > 0.0 && d <= 86_400.0) {
            return Err(usage(format!(
                "{what}: '{v}' must be longer than 0s and at most 24h"
            )));
        }
        l.total_s = d;
        l.read_s = l.read_s.min(d);
        l.connect_s = l.connect_s.min(d);
    }
    Ok(l)
}

/// `4096`, `64KiB`, `64MiB`, `1GiB` → bytes.
fn parse_size(v: &str) -> Option<u64> {
    let t = v.trim();
    let (num, mult) = match t {
        _ if t.ends_with("GiB") => (&t[..t.len() - 3], 1u64 << 30),
        _ if t.ends_with("MiB") => (&t[..t.len() - 3], 1 << 20),
        _ if t.ends_with("KiB") => (&t[..t.len() - 3], 1 << 10),
        _ => (t, 1),
    };
    num.trim()
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
}

fn parse_time_arg(s: &str) -> Result<f64> {
    if s == "now" {
        return Ok(now_unix());
    }
    if let Ok(v) = s.parse::<f64>() {
        return Ok(v);
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|d| d.timestamp_micros() as f64 / 1e6)
        .map_err(|_| {
            usage(format!(
                "--end: '{s}' is not RFC 3339, Unix seconds or 'now'"
            ))
        })
}
