//! The target's own gauges (`--target-metrics URL`, `--target-gauge NAME`): what a runtime
//! knows and /proc cannot see — a Go service's goroutines, a Node.js heap, a JVM's heap as its
//! exporter reports it, an application's pool sizes. The endpoint (Prometheus text or
//! OpenMetrics) is read at the sample cadence; each named gauge is one more series of the run,
//! judged by the same detector and gate as the sentinel's own metrics, with its own threshold.
//!
//! A gauge is named by a selector, `name` or `name{label="value",…}`; the series it yields is
//! the sum of the endpoint's series with that name that carry those labels (so
//! `jvm_memory_used_bytes{area="heap"}` sums the JVM's heap pools). Its column in the store,
//! reports, CSV and JSON is `gauge:` followed by the selector.

use serde::{Deserialize, Serialize};

/// What starts the column of a gauge: `gauge:go_goroutines`.
pub const PREFIX: &str = "gauge:";

/// Most gauges a run reads (each is a series judged at every check).
pub const MAX_GAUGES: usize = 16;

/// Most of an endpoint's answer read, bytes (a large exporter's page is a few hundred KiB).
pub const MAX_BODY: u64 = 4 << 20;

/// Longest selector accepted, characters.
const MAX_SELECTOR: usize = 256;

/// The gauges judged when `--target-metrics` names none: those of the common runtimes'
/// exporters (Go's client library, Node's prom-client, the JVM's Micrometer/simpleclient), each
/// only when the endpoint has it.
pub const DEFAULTS: [&str; 4] = [
    "go_goroutines",
    "process_open_fds",
    "nodejs_heap_size_used_bytes",
    "jvm_memory_used_bytes{area=\"heap\"}",
];

/// One gauge a run judges.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GaugeSpec {
    /// The metric name.
    pub name: String,
    /// The labels a series must carry, as given.
    pub labels: Labels,
    /// Growth that counts as a leak, per minute in the judged unit (MiB for `*_bytes`).
    pub threshold_per_min: f64,
    /// Whether the user named it (a named gauge the endpoint lacks is inconclusive; a default
    /// one it lacks is left out).
    pub named: bool,
}

/// The thresholds a gauge without its own takes, by kind (the run's, per minute).
#[derive(Debug, Clone, Copy)]
pub struct KindThresholds {
    /// MiB/min for `*_bytes` gauges.
    pub memory: f64,
    /// FD/min for `*_fds` gauges.
    pub fds: f64,
    /// Per minute for goroutines and threads.
    pub threads: f64,
}

impl GaugeSpec {
    /// Parses `name`, `name{label="value",…}`, either followed by `=RATE` (its threshold: e.g.
    /// `app_sessions=5`, `cache_bytes=1MiB/min`). Without a rate, `*_bytes` take the memory
    /// threshold, `*_fds` the FD threshold, goroutines and `*_threads` the thread threshold;
    /// another gauge must give its own.
    pub fn parse(s: &str, named: bool, t: KindThresholds) -> Result<GaugeSpec, String> {
        let s = s.trim();
        if s.len() > MAX_SELECTOR {
            return Err(format!(
                "a gauge selector is at most {MAX_SELECTOR} characters ('{}…')",
                s.chars().take(24).collect::<String>()
            ));
        }
        let (selector, rate) = match s.rfind('=') {
            // The last '=' outside the braces starts the rate.
            Some(i) if !s[i..].contains('}') && !s[i..].contains('"') => {
                (s[..i].trim(), Some(s[i + 1..].trim()))
            }
            _ => (s, None),
        };
        let (name, labels) =
            parse_selector(selector).map_err(|e| format!("'{s}' is not a gauge selector: {e}"))?;
        let kind = kind_of(&format!("{PREFIX}{name}")).unwrap_or(Kind::Other);
        let threshold_per_min = match rate {
            Some(r) => {
                let rk = if kind == Kind::Memory {
                    crate::units::RateKind::Memory
                } else {
                    crate::units::RateKind::Count
                };
                crate::units::parse_rate(r, rk).map_err(|e| format!("gauge {selector}: {e}"))?
            }
            None => match kind {
                Kind::Memory => t.memory,
                Kind::Fds => t.fds,
                Kind::Threads => t.threads,
                Kind::Other => {
                    return Err(format!(
                        "gauge {selector}: give its threshold per minute, e.g. {selector}=1 (only *_bytes, *_fds, goroutines and *_threads have a default)"
                    ));
                }
            },
        };
        Ok(GaugeSpec {
            name,
            labels,
            threshold_per_min,
            named,
        })
    }

    /// The gauge's column: `gauge:` and its selector, labels in the order given.
    pub fn column(&self) -> String {
        let mut c = format!("{PREFIX}{}", self.name);
        if !self.labels.is_empty() {
            let l: Vec<String> = self
                .labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                .collect();
            c.push('{');
            c.push_str(&l.join(","));
            c.push('}');
        }
        c
    }

    /// Whether a series of the endpoint belongs to this gauge.
    fn matches(&self, name: &str, labels: &Labels) -> bool {
        name == self.name
            && self
                .labels
                .iter()
                .all(|(k, v)| labels.iter().any(|(k2, v2)| k == k2 && v == v2))
    }
}

/// The gauges of a run: those named, or [`DEFAULTS`] when none is.
pub fn specs(named: &[String], t: KindThresholds) -> Result<Vec<GaugeSpec>, String> {
    let out: Vec<GaugeSpec> = if named.is_empty() {
        DEFAULTS
            .iter()
            .map(|d| GaugeSpec::parse(d, false, t))
            .collect::<Result<_, _>>()?
    } else {
        named
            .iter()
            .map(|d| GaugeSpec::parse(d, true, t))
            .collect::<Result<_, _>>()?
    };
    if out.len() > MAX_GAUGES {
        return Err(format!("at most {MAX_GAUGES} gauges (--target-gauge)"));
    }
    for (i, g) in out.iter().enumerate() {
        if out[..i].iter().any(|o| o.column() == g.column()) {
            return Err(format!("gauge {} is named twice", g.column()));
        }
    }
    Ok(out)
}

/// What a gauge measures, which decides its unit and default threshold (`analyze` maps it to
/// its own kinds; this module stays below it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `*_bytes` (Prometheus names carry base units): judged in MiB/min.
    Memory,
    /// `*_fds`: descriptors.
    Fds,
    /// Goroutines and `*_threads`.
    Threads,
    /// Anything else: a count of its own.
    Other,
}

/// The kind of a gauge column (`gauge:NAME{…}`) by its metric name; `None` for a column that is
/// not a gauge.
pub fn kind_of(column: &str) -> Option<Kind> {
    let rest = column.strip_prefix(PREFIX)?;
    let name = rest.split('{').next().unwrap_or(rest);
    Some(if name.ends_with("_bytes") {
        Kind::Memory
    } else if name.ends_with("_fds") {
        Kind::Fds
    } else if name.ends_with("goroutines") || name.ends_with("_threads") {
        Kind::Threads
    } else {
        Kind::Other
    })
}

/// Whether a column is a target gauge (gauges named by the user always gate).
pub fn is_gauge(column: &str) -> bool {
    column.starts_with(PREFIX)
}

/// The value of each of `specs` in an exposition `text` (Prometheus text format 0.0.4 or
/// OpenMetrics): the sum of the matching series, `None` when none matched or a value is not
/// finite. Lines that are not samples (comments, `# EOF`, garbage) are skipped.
pub fn read_values(text: &str, specs: &[GaugeSpec]) -> Vec<Option<f64>> {
    let mut out = vec![None; specs.len()];
    let mut bad = vec![false; specs.len()];
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((name, labels, value)) = parse_sample_line(line) else {
            continue;
        };
        for (i, g) in specs.iter().enumerate() {
            if g.matches(name, &labels) {
                if value.is_finite() {
                    *out[i].get_or_insert(0.0) += value;
                } else {
                    bad[i] = true;
                }
            }
        }
    }
    for (o, b) in out.iter_mut().zip(bad) {
        if b {
            *o = None;
        }
    }
    out
}

/// A series' labels, `(name, value)` in the order written.
pub type Labels = Vec<(String, String)>;

/// One sample line: `name{labels} value [timestamp]`.
fn parse_sample_line(line: &str) -> Option<(&str, Labels, f64)> {
    let end = line
        .find(|c: char| c == '{' || c.is_whitespace())
        .unwrap_or(line.len());
    let name = &line[..end];
    if !valid_name(name) {
        return None;
    }
    let mut rest = &line[end..];
    let mut labels = Vec::new();
    if rest.starts_with('{') {
        let (l, after) = parse_labels(rest).ok()?;
        labels = l;
        rest = after;
    }
    let value = rest.split_whitespace().next()?;
    let v = match value {
        "+Inf" | "Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        v => v.parse().ok()?,
    };
    Some((name, labels, v))
}

/// A selector: a metric name and optional `{label="value",…}`.
fn parse_selector(s: &str) -> Result<(String, Labels), String> {
    let end = s.find('{').unwrap_or(s.len());
    let name = s[..end].trim();
    if !valid_name(name) {
        return Err(format!(
            "'{name}' is not a metric name (letters, digits, '_' and ':', not starting with a digit)"
        ));
    }
    let mut labels = Vec::new();
    if end < s.len() {
        let (l, rest) = parse_labels(&s[end..])?;
        if !rest.trim().is_empty() {
            return Err(format!("unexpected '{}' after the labels", rest.trim()));
        }
        labels = l;
    }
    Ok((name.to_string(), labels))
}

/// `{a="x",b="y"}` at the start of `s` (escapes `\\`, `\"`, `\n` in values); the labels and
/// what follows the closing brace.
fn parse_labels(s: &str) -> Result<(Labels, &str), String> {
    let mut chars = s.char_indices().peekable();
    if chars.next().map(|c| c.1) != Some('{') {
        return Err("labels start with '{'".into());
    }
    let mut labels = Vec::new();
    loop {
        while chars
            .next_if(|c| c.1.is_whitespace() || c.1 == ',')
            .is_some()
        {}
        match chars.next() {
            Some((i, '}')) => return Ok((labels, &s[i + 1..])),
            Some((i, c)) if c.is_ascii_alphabetic() || c == '_' => {
                let mut j = i + c.len_utf8();
                while let Some((k, c)) =
                    chars.next_if(|c| c.1.is_ascii_alphanumeric() || c.1 == '_')
                {
                    j = k + c.len_utf8();
                }
                let key = s[i..j].to_string();
                while chars.next_if(|c| c.1.is_whitespace()).is_some() {}
                if chars.next().map(|c| c.1) != Some('=') {
                    return Err(format!("label {key} has no '='"));
                }
                while chars.next_if(|c| c.1.is_whitespace()).is_some() {}
                if chars.next().map(|c| c.1) != Some('"') {
                    return Err(format!("the value of label {key} is not quoted"));
                }
                let mut value = String::new();
                loop {
                    match chars.next().map(|c| c.1) {
                        Some('"') => break,
                        Some('\\') => match chars.next().map(|c| c.1) {
                            Some('n') => value.push('\n'),
                            Some(c) => value.push(c),
                            None => return Err("unterminated label value".into()),
                        },
                        Some(c) => value.push(c),
                        None => return Err("unterminated label value".into()),
                    }
                }
                labels.push((key, value));
            }
            Some((_, c)) => return Err(format!("unexpected '{c}' in the labels")),
            None => return Err("labels without a closing '}'".into()),
        }
    }
}

/// A Prometheus metric name: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
fn valid_name(name: &str) -> bool {
    let mut c = name.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_' || f == ':')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_' || x == ':')
}

/// A label value escaped for a selector's text.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The series of one gauge column over a run: sample times (Unix seconds) and values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Series {
    /// The column (`gauge:…`).
    pub column: String,
    /// Sample times, Unix seconds.
    pub t: Vec<f64>,
    /// Values, in the gauge's own unit.
    pub v: Vec<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: KindThresholds = KindThresholds {
        memory: 0.5,
        fds: 0.2,
        threads: 0.3,
    };

    const PAGE: &str = r#"# HELP go_goroutines Number of goroutines that currently exist.
# TYPE go_goroutines gauge
go_goroutines 42
# TYPE jvm_memory_used_bytes gauge
jvm_memory_used_bytes{area="heap",id="G1 Eden Space"} 1.5e6
jvm_memory_used_bytes{area="heap",id="G1 Old Gen"} 2500000 1712345678000
jvm_memory_used_bytes{area="nonheap",id="Metaspace"} 9e9
app_sessions{pool="main",note="a \"quoted\", {braced} value"} 7
app_sessions{pool="spare"} 3
broken{pool="x" 5
weird_nan NaN
# EOF
"#;

    #[test]
    fn selectors_sum_their_series_and_skip_what_does_not_parse() {
        let specs = specs(
            &[
                "go_goroutines".into(),
                r#"jvm_memory_used_bytes{area="heap"}"#.into(),
                r#"app_sessions{pool="main"}=2"#.into(),
                "app_sessions=1/s".into(),
                "missing_bytes".into(),
                "weird_nan=1".into(),
            ],
            T,
        )
        .expect("specs");
        let v = read_values(PAGE, &specs);
        assert_eq!(
            v,
            vec![Some(42.0), Some(4e6), Some(7.0), Some(10.0), None, None]
        );
        assert_eq!(specs[0].threshold_per_min, 0.3, "goroutines: threads");
        assert_eq!(specs[1].threshold_per_min, 0.5, "bytes: memory");
        assert_eq!(specs[2].threshold_per_min, 2.0);
        assert_eq!(specs[3].threshold_per_min, 60.0);
        assert_eq!(
            specs[1].column(),
            r#"gauge:jvm_memory_used_bytes{area="heap"}"#
        );
        assert_eq!(kind_of(&specs[1].column()), Some(Kind::Memory));
        assert_eq!(kind_of("gauge:process_open_fds"), Some(Kind::Fds));
        assert_eq!(kind_of("rss_bytes"), None);
    }

    #[test]
    fn defaults_apply_when_none_is_named_and_bad_selectors_say_why() {
        let d = specs(&[], T).expect("defaults");
        assert_eq!(d.len(), DEFAULTS.len());
        assert!(d.iter().all(|g| !g.named));
        for bad in [
            "app_sessions",
            "9lives",
            "x{a=b}",
            "x{a=\"b\"",
            "x{a=\"b\"} y",
            "x=-1",
            "x_bytes=1 parsec",
        ] {
            let e = specs(&[bad.into()], T).expect_err(bad);
            assert!(!e.contains('\n') && !e.is_empty(), "{bad}: {e}");
        }
        let twice = specs(&["go_goroutines".into(), "go_goroutines=2".into()], T);
        assert!(twice.expect_err("twice").contains("twice"));
        let many: Vec<String> = (0..=MAX_GAUGES).map(|i| format!("g{i}_fds")).collect();
        assert!(specs(&many, T).is_err());
    }

    #[test]
    fn a_column_round_trips_through_its_selector() {
        let g = GaugeSpec::parse(r#"x_total{a="q\"uote",b="\\"}=3"#, true, T).expect("parses");
        assert_eq!(
            g.labels,
            vec![("a".into(), "q\"uote".into()), ("b".into(), "\\".into())]
        );
        let again = GaugeSpec::parse(
            &format!("{}=3", g.column().trim_start_matches(PREFIX)),
            true,
            T,
        )
        .expect("its column parses back");
        assert_eq!(again, g);
    }
}
