//! Parsing of what users type for durations (`500ms`, `90s`, `45m`, `6h`, `1h30m`) and growth
//! rates (`0.1`, `100KiB/min`, `2MiB/h`, `6/h`), and the unit constants every output uses.

use std::time::Duration;

/// Bytes in one MiB: memory rates are in MiB/min everywhere.
pub const MIB: f64 = 1_048_576.0;

/// Parses a duration. A bare number is seconds (the seed's `check_interval: 300`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    if let Ok(secs) = s.parse::<f64>() {
        return if secs.is_finite() && secs >= 0.0 {
            Ok(Duration::from_secs_f64(secs))
        } else {
            Err(format!("'{s}' is not a valid duration"))
        };
    }
    humantime::parse_duration(s)
        .or_else(|e| fractional(s).ok_or(e))
        .map_err(|e| format!("'{s}' is not a valid duration ({e}); write e.g. 90s, 45m, 6h, 1h30m"))
}

/// `1.5h`, `0.25d`: one fractional number with one unit (humantime takes integers only; the
/// seed's Makefile passes `hours=…`).
fn fractional(s: &str) -> Option<Duration> {
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (num, unit) = s.split_at(split);
    let v: f64 = num.parse().ok()?;
    let secs = match unit.trim() {
        "ms" => v / 1000.0,
        "s" | "sec" => v,
        "m" | "min" => v * 60.0,
        "h" | "hour" | "hours" => v * 3600.0,
        "d" | "day" | "days" => v * 86400.0,
        _ => return None,
    };
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs))
}

/// What a rate measures, which decides the units it may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateKind {
    /// Memory: result in MiB/min; accepts B, KiB, MiB, GiB (and decimal kB, MB, GB).
    Memory,
    /// A count (FDs, threads, anything else): result in units/min.
    Count,
}

/// Parses a growth rate into units per minute (MiB/min for memory). A bare number is already
/// per minute in the metric's unit.
pub fn parse_rate(s: &str, kind: RateKind) -> Result<f64, String> {
    let raw = s.trim();
    let bad = |why: &str| {
        format!("'{raw}' is not a valid rate ({why}); write e.g. 0.1, 100KiB/min, 2MiB/h")
    };
    let (amount, per) = match raw.split_once('/') {
        Some((a, p)) => (a.trim(), Some(p.trim())),
        None => (raw, None),
    };
    let split = amount
        .find(|c: char| {
            !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+' || c == 'e' || c == 'E')
        })
        .unwrap_or(amount.len());
    let (num, unit) = amount.split_at(split);
    let value: f64 = num.trim().parse().map_err(|_| bad("no number"))?;
    if !value.is_finite() || value < 0.0 {
        return Err(bad("must be a non-negative number"));
    }
    let unit = unit.trim();
    let scale = match (kind, unit) {
        (_, "") => 1.0,
        (RateKind::Memory, "B") => 1.0 / MIB,
        (RateKind::Memory, "KiB") => 1024.0 / MIB,
        (RateKind::Memory, "MiB") => 1.0,
        (RateKind::Memory, "GiB") => 1024.0,
        (RateKind::Memory, "kB" | "KB") => 1e3 / MIB,
        (RateKind::Memory, "MB") => 1e6 / MIB,
        (RateKind::Memory, "GB") => 1e9 / MIB,
        (RateKind::Count, "fd" | "fds" | "FD" | "FDs" | "thread" | "threads") => 1.0,
        _ => return Err(bad(&format!("unknown unit '{unit}'"))),
    };
    let per_min = match per {
        None | Some("min" | "m" | "minute") => 1.0,
        Some("s" | "sec" | "second") => 60.0,
        Some("h" | "hour") => 1.0 / 60.0,
        Some("d" | "day") => 1.0 / 1440.0,
        Some(other) => return Err(bad(&format!("unknown time unit '/{other}'"))),
    };
    Ok(value * scale * per_min)
}

/// Unix seconds → RFC 3339 in local time with offset (`2025-05-24T20:25:00+08:00`).
pub fn rfc3339(t: f64) -> String {
    use chrono::TimeZone;
    let secs = t.floor() as i64;
    let nanos = ((t - t.floor()) * 1e9) as u32;
    chrono::Local
        .timestamp_opt(secs, nanos)
        .single()
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, false))
        .unwrap_or_default()
}

/// Single-quotes a string for `sh`.
pub fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// A command line as a shell would need it typed: words quoted only when they must be (empty,
/// or holding anything but letters, digits and `-_./=:,+@%`).
pub fn shell_line(words: &[String]) -> String {
    let plain = |w: &str| {
        !w.is_empty()
            && w.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c))
    };
    words
        .iter()
        .map(|w| if plain(w) { w.clone() } else { sh_quote(w) })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("6h"), Ok(Duration::from_secs(21600)));
        assert_eq!(parse_duration("300"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("0.001h"), Ok(Duration::from_millis(3600)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-5").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn rates() {
        let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
        assert!(close(parse_rate("0.1", RateKind::Memory).expect("ok"), 0.1));
        assert!(close(
            parse_rate("100KiB/min", RateKind::Memory).expect("ok"),
            100.0 / 1024.0
        ));
        assert!(close(
            parse_rate("2MiB/h", RateKind::Memory).expect("ok"),
            2.0 / 60.0
        ));
        assert!(close(parse_rate("6/h", RateKind::Count).expect("ok"), 0.1));
        assert!(close(parse_rate("1/s", RateKind::Count).expect("ok"), 60.0));
        assert!(parse_rate("2MiB/h", RateKind::Count).is_err());
        assert!(parse_rate("fast", RateKind::Memory).is_err());
        assert!(parse_rate("-1", RateKind::Memory).is_err());
        assert!(parse_rate("1MiB/fortnight", RateKind::Memory).is_err());
    }
}
