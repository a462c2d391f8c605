//! Nightly schedules: cron expressions (validated with the `croner` crate), their next fire
//! times, the crontab line and the systemd service + timer that run `schedule run NAME`, and the
//! schedule file itself (the seed's `config/w3_scheduled_W3-Prep.json` role).

use crate::cli::RunArgs;
use crate::exit::usage;
use anyhow::Result;
use chrono::{DateTime, Local};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// A validated five-field cron expression.
#[derive(Debug, Clone, PartialEq)]
pub struct CronExpr {
    /// The expression as given (nicknames expanded).
    pub text: String,
    fields: Vec<String>,
    cron: croner::Cron,
}

/// Parses a standard five-field cron expression (`m h dom mon dow`, names allowed) or a
/// nickname (`@hourly`, `@daily`, `@weekly`, `@monthly`, `@yearly`).
pub fn parse_cron(s: &str) -> Result<CronExpr> {
    // Real expressions are short; a bound keeps the expansion below and the messages small.
    if s.len() > 256 {
        return Err(usage(format!(
            "--cron: '{}…' is longer than 256 characters; a cron expression has 5 short fields",
            s.chars().take(32).collect::<String>()
        )));
    }
    if s.chars().any(|c| c.is_control() && c != ' ' && c != '\t') {
        return Err(usage(format!(
            "--cron: '{}' holds a control character",
            s.escape_debug()
        )));
    }
    let text = match s.trim() {
        "@hourly" => "0 * * * *".to_string(),
        "@daily" | "@midnight" => "0 0 * * *".to_string(),
        "@weekly" => "0 0 * * 0".to_string(),
        "@monthly" => "0 0 1 * *".to_string(),
        "@yearly" | "@annually" => "0 0 1 1 *".to_string(),
        other => other.to_string(),
    };
    let fields: Vec<String> = text.split_whitespace().map(String::from).collect();
    if fields.len() != 5 {
        return Err(usage(format!(
            "--cron: '{s}' has {} fields; a cron expression has 5: minute hour day-of-month month day-of-week (e.g. \"0 3 * * *\")",
            fields.len()
        )));
    }
    // Expanding every field first names the field at fault ("minute 61 is outside 0-59") and
    // rejects what croner accepts beyond standard cron (L, #, W, ?).
    for (i, f) in fields.iter().enumerate() {
        expand_field(f, FIELDS[i]).map_err(|e| usage(format!("--cron: '{s}': {e}")))?;
    }
    let cron = croner::Cron::from_str(&text).map_err(|e| {
        usage(format!(
            "--cron: '{s}' is not a valid cron expression ({e})"
        ))
    })?;
    let c = CronExpr { text, fields, cron };
    if c.next_fires(chrono::Local::now(), 1).is_empty() {
        return Err(usage(format!("--cron: '{s}' never fires (no such date)")));
    }
    Ok(c)
}

impl CronExpr {
    /// The next `n` fire times after `after`.
    pub fn next_fires(&self, after: DateTime<Local>, n: usize) -> Vec<DateTime<Local>> {
        self.cron.iter_after(after).take(n).collect()
    }
}

#[derive(Clone, Copy)]
struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const MONTHS: &[&str] = &[
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAYS: &[&str] = &["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
const FIELDS: [Field; 5] = [
    Field {
        name: "minute",
        min: 0,
        max: 59,
        names: &[],
    },
    Field {
        name: "hour",
        min: 0,
        max: 23,
        names: &[],
    },
    Field {
        name: "day of month",
        min: 1,
        max: 31,
        names: &[],
    },
    Field {
        name: "month",
        min: 1,
        max: 12,
        names: MONTHS,
    },
    Field {
        name: "day of week",
        min: 0,
        max: 7,
        names: DAYS,
    },
];

fn value(s: &str, f: Field) -> Result<u32, String> {
    let lower = s.to_ascii_lowercase();
    if let Some(i) = f.names.iter().position(|n| *n == lower) {
        // Months are 1-based; days 0-based (Sunday = 0).
        return Ok(if f.min == 1 { i as u32 + 1 } else { i as u32 });
    }
    let v: u32 = s
        .parse()
        .map_err(|_| format!("'{s}' is not a valid {}", f.name))?;
    if v < f.min || v > f.max {
        return Err(format!("{} {v} is outside {}-{}", f.name, f.min, f.max));
    }
    Ok(v)
}

/// Expands one cron field to its sorted values (`None` for `*`).
fn expand_field(s: &str, f: Field) -> Result<Option<Vec<u32>>, String> {
    if s == "*" {
        return Ok(None);
    }
    let mut out = std::collections::BTreeSet::new();
    for part in s.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, st)) => (
                r,
                st.parse::<u32>()
                    .ok()
                    .filter(|v| *v > 0)
                    .ok_or_else(|| format!("'{st}' is not a valid step"))?,
            ),
            None => (part, 1),
        };
        let (lo, hi) = if range == "*" {
            (f.min, f.max)
        } else if let Some((a, b)) = range.split_once('-') {
            (value(a, f)?, value(b, f)?)
        } else {
            let v = value(range, f)?;
            (v, if part.contains('/') { f.max } else { v })
        };
        if lo > hi {
            return Err(format!("range {range} of {} runs backwards", f.name));
        }
        let mut v = lo;
        while v <= hi {
            // Day of week 7 is Sunday, as 0.
            out.insert(if f.max == 7 && v == 7 { 0 } else { v });
            // A huge step ends the range instead of wrapping around.
            match v.checked_add(step) {
                Some(next) => v = next,
                None => break,
            }
        }
    }
    Ok(Some(out.into_iter().collect()))
}

fn list(v: &[u32], width: usize) -> String {
    v.iter()
        .map(|x| format!("{x:0width$}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// systemd `OnCalendar=` values equivalent to the cron expression. Cron fires when either the
/// day of month or the day of week matches (when both are restricted); systemd requires both,
/// so that case becomes two `OnCalendar=` lines, whose union is the cron schedule.
pub fn on_calendar(c: &CronExpr) -> Result<Vec<String>> {
    let e = |i: usize| expand_field(&c.fields[i], FIELDS[i]).map_err(usage);
    let (min, hour, dom, mon, dow) = (e(0)?, e(1)?, e(2)?, e(3)?, e(4)?);
    let hm = format!(
        "{}:{}:00",
        hour.as_deref().map_or("*".into(), |v| list(v, 2)),
        min.as_deref().map_or("*".into(), |v| list(v, 2))
    );
    let month = mon.as_deref().map_or("*".into(), |v| list(v, 2));
    let days = |v: &[u32]| {
        v.iter()
            .map(|d| ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"][*d as usize])
            .collect::<Vec<_>>()
            .join(",")
    };
    Ok(match (&dom, &dow) {
        (Some(d), Some(w)) => vec![
            format!("*-{month}-{} {hm}", list(d, 2)),
            format!("{} *-{month}-* {hm}", days(w)),
        ],
        (Some(d), None) => vec![format!("*-{month}-{} {hm}", list(d, 2))],
        (None, Some(w)) => vec![format!("{} *-{month}-* {hm}", days(w))],
        (None, None) => vec![format!("*-{month}-* {hm}")],
    })
}

/// A schedule, stored as `STATE/schedules/NAME.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    /// Schedule name; runs are named NAME-YYYYMMDD.
    pub name: String,
    /// When: `{"cron": "0 3 * * *", "timezone": "local"}`.
    pub schedule: BTreeMap<String, String>,
    /// Hard limit of each run (`7h`).
    pub max_run_time: Option<String>,
    /// Notify on start / completion / failure (webhook URLs come with the monitoring features).
    pub notifications: BTreeMap<String, serde_json::Value>,
    /// Environment presets for the target.
    pub environment: BTreeMap<String, String>,
    /// The run's flags and target, as `run` takes them.
    pub run: RunArgs,
    /// Directory runs start in (absolute).
    pub working_dir: PathBuf,
    /// State directory of the runs (absolute).
    pub state_dir: PathBuf,
    /// When the schedule was written (RFC 3339).
    pub created: String,
}

/// Path of a schedule file.
pub fn schedule_path(state: &Path, name: &str) -> PathBuf {
    state.join("schedules").join(format!("{name}.json"))
}

/// Single-quotes for `sh`.
pub fn sh_quote(s: &str) -> String {
    crate::hook::sh_quote(s)
}

/// The crontab line: `m h dom mon dow cd DIR && EXE --state-dir STATE schedule run NAME >> LOG 2>&1`,
/// every word quoted for `sh`, and every `%` escaped as cron requires (an unescaped `%` ends
/// the command in a crontab).
pub fn crontab_line(c: &CronExpr, s: &Schedule, exe: &Path) -> String {
    let log = s
        .state_dir
        .join("schedules")
        .join(format!("{}.log", s.name));
    let cmd = format!(
        "cd {} && {} --state-dir {} schedule run {} >> {} 2>&1",
        sh_quote(&s.working_dir.display().to_string()),
        sh_quote(&exe.display().to_string()),
        sh_quote(&s.state_dir.display().to_string()),
        sh_quote(&s.name),
        sh_quote(&log.display().to_string()),
    );
    format!("{} {}", c.fields.join(" "), cmd.replace('%', "\\%"))
}

/// Quotes one word for a systemd `ExecStart=` line: double quotes, `\` and `"` escaped,
/// `%` (specifiers) doubled and `$` (variable expansion) doubled.
pub fn systemd_quote(s: &str) -> String {
    let inner = s
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('%', "%%")
        .replace('$', "$$");
    format!("\"{inner}\"")
}

/// The `.service` and `.timer` units (file contents).
pub fn systemd_units(
    c: &CronExpr,
    s: &Schedule,
    exe: &Path,
    timeout_s: Option<f64>,
) -> Result<(String, String)> {
    let exec = [
        exe.display().to_string(),
        "--state-dir".into(),
        s.state_dir.display().to_string(),
        "schedule".into(),
        "run".into(),
        s.name.clone(),
    ]
    .iter()
    .map(|w| systemd_quote(w))
    .collect::<Vec<_>>()
    .join(" ");
    let runtime = timeout_s
        .map(|t| {
            format!(
                "# The sentinel stops itself at the timeout and writes its report; systemd's limit is a\n# backstop 5 minutes later.\nRuntimeMaxSec={}\n",
                t.ceil() as u64 + 300
            )
        })
        .unwrap_or_default();
    let service = format!(
        "[Unit]\nDescription=leak-sentinel soak test {name}\nAfter=network.target\n\n[Service]\nType=exec\nWorkingDirectory={wd}\nExecStart={exec}\n{runtime}",
        name = s.name,
        wd = s.working_dir.display().to_string().replace('%', "%%"),
    );
    let mut timer = format!(
        "[Unit]\nDescription=Schedule of leak-sentinel soak test {} ({})\n\n[Timer]\n",
        s.name, c.text
    );
    for oc in on_calendar(c)? {
        timer.push_str(&format!("OnCalendar={oc}\n"));
    }
    timer.push_str("Persistent=true\n\n[Install]\nWantedBy=timers.target\n");
    Ok((service, timer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_and_bad_expressions() {
        for ok in [
            "0 3 * * *",
            "*/15 * * * *",
            "0 9-17 * * MON-FRI",
            "30 2 1,15 * *",
            "@daily",
            "0 0 * JAN,JUL 0",
        ] {
            assert!(parse_cron(ok).is_ok(), "{ok}");
        }
        for (bad, why) in [
            ("0 3 * *", "has 4 fields"),
            ("61 3 * * *", "minute"),
            ("0 25 * * *", ""),
            ("0 3 * * * *", "has 6 fields"),
            ("zero 3 * * *", ""),
            ("0 3 L * *", ""),
            ("", "has 0 fields"),
            ("0 3 31 2 *", "never fires"),
        ] {
            let e = parse_cron(bad).expect_err(bad).to_string();
            assert!(!e.contains('\n'), "one line: {e}");
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn next_fire_times() {
        use chrono::TimeZone;
        let c = parse_cron("0 3 * * *").expect("valid");
        let start = Local
            .with_ymd_and_hms(2026, 11, 24, 12, 0, 0)
            .single()
            .expect("time");
        let next = c.next_fires(start, 3);
        let want: Vec<String> = ["2026-11-25 03:00", "2026-11-26 03:00", "2026-11-27 03:00"]
            .map(String::from)
            .to_vec();
        assert_eq!(
            next.iter()
                .map(|d| d.format("%Y-%m-%d %H:%M").to_string())
                .collect::<Vec<_>>(),
            want
        );
    }

    #[test]
    fn on_calendar_translation() {
        let oc = |s: &str| on_calendar(&parse_cron(s).expect("valid")).expect("translates");
        assert_eq!(oc("0 3 * * *"), vec!["*-*-* 03:00:00"]);
        assert_eq!(oc("*/15 * * * *"), vec!["*-*-* *:00,15,30,45:00"]);
        assert_eq!(
            oc("0 9-17 * * MON-FRI"),
            vec!["Mon,Tue,Wed,Thu,Fri *-*-* 09,10,11,12,13,14,15,16,17:00:00"]
        );
        assert_eq!(
            oc("30 2 1,15 * 0"),
            vec!["*-*-01,15 02:30:00", "Sun *-*-* 02:30:00"]
        );
        assert_eq!(oc("0 0 * 7 7"), vec!["Sun *-07-* 00:00:00"]);
    }

    #[test]
    fn systemd_quoting() {
        assert_eq!(
            systemd_quote(r#"a "b" $HOME 100% c\d"#),
            r#""a \"b\" $$HOME 100%% c\\d""#
        );
    }
}
