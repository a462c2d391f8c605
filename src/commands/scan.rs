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
    let kind = match a.kind.as_str() {
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
    let limits = limits_from_env()?;
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
            warmup_s: dur("warmup", &a.warmup)?,
        };
        let result = fleet::scan_with(&spec, &limits)?;
        let overall =
            crate::detect::Verdict::combine(result.iter().map(|s| s.result.judgement.verdict));
        if let Some(path) = &a.html {
            let page =
                render::html::render(&super::report_data::scan_report(&a.query, &result, overall))?;
            write_user_file(path, page.as_bytes())?;
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

/// The scan's bounds: defaults, or `LEAK_SENTINEL_SCAN_MAX_BYTES` (bytes, `KiB`/`MiB`/`GiB`
/// suffixes allowed), `LEAK_SENTINEL_SCAN_MAX_POINTS` and `LEAK_SENTINEL_SCAN_TIMEOUT` (a
/// duration: the total deadline of one request).
fn limits_from_env() -> Result<crate::fleet::Limits> {
    let mut l = crate::fleet::Limits::default();
    if let Ok(v) = std::env::var("LEAK_SENTINEL_SCAN_MAX_BYTES") {
        let t = v.trim();
        let (num, mult) = match t {
            _ if t.ends_with("GiB") => (&t[..t.len() - 3], 1u64 << 30),
            _ if t.ends_with("MiB") => (&t[..t.len() - 3], 1 << 20),
            _ if t.ends_with("KiB") => (&t[..t.len() - 3], 1 << 10),
            _ => (t, 1),
        };
        l.max_bytes = num
            .trim()
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(mult))
            .filter(|n| *n >= 1024)
            .ok_or_else(|| {
                usage(format!(
                    "LEAK_SENTINEL_SCAN_MAX_BYTES: '{v}' is not a size of at least 1024 bytes (e.g. 64MiB)"
                ))
            })?;
    }
    if let Ok(v) = std::env::var("LEAK_SENTINEL_SCAN_MAX_POINTS") {
        l.max_total_points = v
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| (2..=1_000_000_000).contains(n))
            .ok_or_else(|| {
                usage(format!(
                    "LEAK_SENTINEL_SCAN_MAX_POINTS: '{v}' is not a number of points from 2 to 1000000000"
                ))
            })?;
    }
    if let Ok(v) = std::env::var("LEAK_SENTINEL_SCAN_TIMEOUT") {
        let d = parse_duration(&v)
            .map_err(|e| usage(format!("LEAK_SENTINEL_SCAN_TIMEOUT: {e}")))?
            .as_secs_f64();
        if d <= 0.0 {
            return Err(usage(format!(
                "LEAK_SENTINEL_SCAN_TIMEOUT: '{v}' must be longer than 0s"
            )));
        }
        l.total_s = d;
        l.read_s = l.read_s.min(d);
        l.connect_s = l.connect_s.min(d);
    }
    Ok(l)
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
