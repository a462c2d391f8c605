//! Parsing of what users type for durations (`500ms`, `90s`, `45m`, `6h`, `1h30m`) and growth
//! rates (`0.1`, `100KiB/min`, `2MiB/h`, `6/h`), and the unit constants every output uses.

use std::time::Duration;

/// Bytes in one MiB: memory rates are in MiB/min everywhere.
pub const MIB: f64 = 1_048_576.0;

/// The longest duration accepted anywhere (10 years, in seconds): longer ones are typos, and
/// bounding them keeps every later computation (`Duration`, `Instant` + duration, sample counts)
/// far from overflow.
pub const MAX_DURATION_S: f64 = 10.0 * 365.0 * 86400.0;

/// The largest rate accepted anywhere, per minute in the metric's unit (MiB for memory): far
/// beyond any real threshold, and far from overflow.
pub const MAX_RATE_PER_MIN: f64 = 1e9;

/// Longest text a duration or rate may be (anything longer is not a duration someone typed).
const MAX_LEN: usize = 64;

/// Parses a duration. A bare number is seconds (the seed's `check_interval: 300`). Never
/// panics: anything negative, not finite or longer than [`MAX_DURATION_S`] is an error.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    if s.len() > MAX_LEN {
        return Err(format!(
            "'{}…' is not a valid duration (longer than {MAX_LEN} characters)",
            s.chars().take(16).collect::<String>()
        ));
    }
    let too_long = || format!("'{s}' is longer than the maximum of 3650d (10 years)");
    if let Ok(secs) = s.parse::<f64>() {
        return if !(secs.is_finite() && secs >= 0.0) {
            Err(format!("'{s}' is not a valid duration"))
        } else if secs > MAX_DURATION_S {
            Err(too_long())
        } else {
            Ok(Duration::from_secs_f64(secs))
        };
    }
    let d = match humantime::parse_duration(s) {
        Ok(d) => d,
        Err(e) => match fractional(s) {
            Some(Ok(d)) => d,
            Some(Err(())) => return Err(too_long()),
            None => {
                return Err(format!(
                    "'{s}' is not a valid duration ({e}); write e.g. 90s, 45m, 6h, 1h30m"
                ));
            }
        },
    };
    if d.as_secs_f64() > MAX_DURATION_S {
        return Err(too_long());
    }
    Ok(d)
}

/// `1.5h`, `0.25d`: one fractional number with one unit (humantime takes integers only; the
/// seed's Makefile passes `hours=…`). `Some(Err(()))` when beyond [`MAX_DURATION_S`].
fn fractional(s: &str) -> Option<Result<Duration, ()>> {
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
    if !(secs.is_finite() && secs >= 0.0) {
        return if secs.is_nan() || secs < 0.0 {
            None
        } else {
            Some(Err(()))
        };
    }
    if secs > MAX_DURATION_S {
        return Some(Err(()));
    }
    Some(Ok(Duration::from_secs_f64(secs)))
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
/// per minute in the metric's unit. Never panics: anything negative, not finite or above
/// [`MAX_RATE_PER_MIN`] is an error.
pub fn parse_rate(s: &str, kind: RateKind) -> Result<f64, String> {
    let raw = s.trim();
    if raw.len() > MAX_LEN {
        return Err(format!(
            "'{}…' is not a valid rate (longer than {MAX_LEN} characters)",
            raw.chars().take(16).collect::<String>()
        ));
    }
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
    let per_minute = value * scale * per_min;
    if !per_minute.is_finite() || per_minute > MAX_RATE_PER_MIN {
        return Err(format!(
            "'{raw}' is above the maximum rate of {MAX_RATE_PER_MIN:e} per minute"
        ));
    }
    Ok(per_minute)
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
        assert!(parse_duration("99999999999999999999h").is_err());
        assert!(parse_duration("1e300").is_err());
        assert!(parse_duration("1e30").is_err());
        assert!(parse_duration("99999y").is_err());
        assert!(parse_duration("NaN").is_err());
        assert!(parse_duration("inf").is_err());
        assert_eq!(
            parse_duration("3650d"),
            Ok(Duration::from_secs(315_360_000))
        );
        assert!(parse_duration("3651d").is_err());
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
        assert!(parse_rate("1e300GiB/s", RateKind::Memory).is_err());
        assert!(parse_rate("1e308", RateKind::Count).is_err());
        assert!(parse_rate("NaN", RateKind::Count).is_err());
    }
}
