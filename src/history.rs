//! `history TAG`: one tagged soak across nights, data → data. Each night's outcome and the
//! growth rates of its last check, and the change-point of those rates over the nights: the night
//! where a rate's level changes the most, stated only when the change is beyond the nights' own
//! scatter. Pure: nights in, nights and change-points out; `commands::history` reads the store
//! (or an engine) and renders.

use serde::Serialize;

/// One night of a tagged soak.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Night {
    /// Start date, `YYYY-MM-DD` (UTC).
    pub date: String,
    /// Start, Unix seconds.
    pub started_at: f64,
    /// Run name.
    pub run: String,
    /// How it ended (`passed`, `leak`, `inconclusive`, `failed`, `interrupted`, `running`).
    pub outcome: String,
    /// Final gate verdict, when one was reached.
    pub verdict: Option<String>,
    /// Exit code, when it ended.
    pub exit_code: Option<i64>,
    /// Memory growth of the last check, MiB/min.
    pub memory_mib_per_min: Option<f64>,
    /// FD growth of the last check, FDs/min.
    pub fds_per_min: Option<f64>,
    /// Thread growth of the last check, threads/min.
    pub threads_per_min: Option<f64>,
    /// The `commit` label (else `version`), when the run had one.
    pub commit: Option<String>,
}

/// A change of level in a series of nightly rates.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    /// Index (into the series given) of the first night at the new level.
    pub at: usize,
    /// Median of the nights before.
    pub before: f64,
    /// Median of the nights from `at` on.
    pub after: f64,
    /// The nights' scatter: 1.4826 × the median absolute deviation from each segment's own
    /// median (a robust standard deviation), floored.
    pub scatter: f64,
    /// `|after − before| / scatter`.
    pub score: f64,
}

/// Each side of a change holds at least this many nights: one odd night is an outlier, not a
/// new level (so a change on the very last night is named the night after).
pub const MIN_SEGMENT: usize = 2;

/// A change is stated when the two levels differ by more than this many robust standard
/// deviations of the nights' scatter.
pub const THRESHOLD: f64 = 4.0;

fn median(v: &[f64]) -> f64 {
    let mut s: Vec<f64> = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

/// The change-point of `rates` (one per night, in night order), or `None`.
///
/// The one rule: the candidate night is the best two-level fit in absolute deviations — the split
/// into nights before and from night `k` (each side at least [`MIN_SEGMENT`] nights) whose nights
/// deviate least, in total, from their own side's median. The two levels are the sides' medians;
/// the scatter is 1.4826 × the median of every night's absolute deviation from its own side's
/// median (the MAD, scaled to a standard deviation for normal scatter), at least `floor`. The
/// change is stated when the levels differ by more than [`THRESHOLD`] (4) scatters.
///
/// Why this rule: nightly rates have outliers (a noisy runner, a night cut short) and few points
/// (ten nights), so a least-squares fit and a t-test would be pulled by one bad night; medians,
/// absolute deviations and the MAD are not. The scatter is measured around each side's own level,
/// so the step itself does not inflate it. Four robust standard deviations rather than the usual
/// two or three because the split is chosen from the data (the best of up to n − 3): with ten
/// clean nights a false change needs medians further apart than about five of their own
/// standard errors. `floor` keeps perfectly flat series (zero FD growth every night) from calling
/// a hair's difference a change.
pub fn change_point(rates: &[f64], floor: f64) -> Option<Change> {
    let n = rates.len();
    if n < 2 * MIN_SEGMENT || rates.iter().any(|v| !v.is_finite()) {
        return None;
    }
    // (total absolute deviation, change)
    let mut best: Option<(f64, Change)> = None;
    for k in MIN_SEGMENT..=n - MIN_SEGMENT {
        let (a, b) = rates.split_at(k);
        let (ma, mb) = (median(a), median(b));
        let dev: Vec<f64> = a
            .iter()
            .map(|v| (v - ma).abs())
            .chain(b.iter().map(|v| (v - mb).abs()))
            .collect();
        let cost: f64 = dev.iter().sum();
        let scatter = (1.4826 * median(&dev)).max(floor);
        if scatter <= 0.0 || !scatter.is_finite() {
            continue;
        }
        let change = Change {
            at: k,
            before: ma,
            after: mb,
            scatter,
            score: (mb - ma).abs() / scatter,
        };
        // Equal fits: the larger step.
        let better = best
            .as_ref()
            .is_none_or(|(c, b)| cost < *c || (cost == *c && change.score > b.score));
        if better {
            best = Some((cost, change));
        }
    }
    let best = best.map(|(_, c)| c);
    best.filter(|c| c.score > THRESHOLD)
}

/// The sentence of a change, e.g. `memory growth rose from 0.02 to 0.9 MiB/min between the runs
/// of 2026-11-30 and 2026-12-01 (commits abc -> def)`.
pub fn sentence(what: &str, unit: &str, c: &Change, nights: &[&Night]) -> String {
    let (Some(prev), Some(next)) = (
        c.at.checked_sub(1).and_then(|i| nights.get(i)),
        nights.get(c.at),
    ) else {
        return String::new();
    };
    let dir = if c.after > c.before { "rose" } else { "fell" };
    let commits = match (&prev.commit, &next.commit) {
        (Some(a), Some(b)) => format!(" (commits {a} -> {b})"),
        (None, Some(b)) => format!(" (commit {b})"),
        _ => String::new(),
    };
    format!(
        "{what} growth {dir} from {} to {} {unit} between the runs of {} and {} ({} -> {}){commits}",
        sig(c.before),
        sig(c.after),
        prev.date,
        next.date,
        prev.run,
        next.run
    )
}

/// Whether `tag` matches `pattern`: equal, or with `*` standing for any run of characters
/// (`api*` matches `api` and `api-eu`).
pub fn tag_matches(pattern: &str, tag: &str) -> bool {
    let mut parts = pattern.split('*');
    let Some(first) = parts.next() else {
        return false;
    };
    let Some(mut rest) = tag.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for p in middle {
        match rest.find(p) {
            Some(i) => rest = &rest[i + p.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// A rate with three significant digits at most, without trailing zeros.
pub fn sig(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let digits = (2 - v.abs().log10().floor() as i32).clamp(0, 9) as usize;
    let s = format!("{v:.digits$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noisy(level: f64, i: usize) -> f64 {
        // Deterministic scatter of about ±10 % of 0.02.
        level
            + [
                0.002, -0.001, 0.0015, -0.002, 0.0005, -0.0015, 0.001, 0.0, -0.0005, 0.002,
            ][i % 10]
    }

    #[test]
    fn a_step_at_night_seven_is_found_there() {
        let r: Vec<f64> = (0..10)
            .map(|i| noisy(if i < 6 { 0.02 } else { 0.9 }, i))
            .collect();
        let c = change_point(&r, 1e-3).expect("a change");
        assert_eq!(c.at, 6);
        assert!((c.before - 0.02).abs() < 0.003, "{c:?}");
        assert!((c.after - 0.9).abs() < 0.003, "{c:?}");
    }

    #[test]
    fn a_step_without_scatter_is_placed_at_the_step() {
        let r = [0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.9, 0.9, 0.9, 0.9];
        let c = change_point(&r, 1e-3).expect("a change");
        assert_eq!((c.at, c.before, c.after), (6, 0.02, 0.9));
    }

    #[test]
    fn clean_nights_with_scatter_and_an_outlier_name_no_change() {
        let mut r: Vec<f64> = (0..10).map(|i| noisy(0.02, i)).collect();
        assert_eq!(change_point(&r, 1e-3), None);
        r[4] = 0.5; // one odd night is not a new level
        assert_eq!(change_point(&r, 1e-3), None);
    }

    #[test]
    fn a_fall_is_found_and_flat_series_are_not_changes() {
        let r = [1.0, 1.1, 0.9, 1.0, 0.0, 0.01, 0.0, 0.02];
        let c = change_point(&r, 1e-3).expect("a change");
        assert_eq!((c.at, c.after < c.before), (4, true));
        assert_eq!(change_point(&[0.0; 10], 1e-3), None);
        assert_eq!(
            change_point(&[0.0, 0.0, 0.0, 0.0, 0.0005, 0.0005], 1e-3),
            None
        );
    }

    #[test]
    fn tag_patterns_match_whole_tags_with_stars() {
        assert!(tag_matches("api", "api"));
        assert!(!tag_matches("api", "api-eu"));
        assert!(tag_matches("api*", "api-eu"));
        assert!(tag_matches("*-eu", "api-eu"));
        assert!(tag_matches("a*i*u", "api-eu"));
        assert!(!tag_matches("a*x", "api-eu"));
        assert!(!tag_matches("ab*ba", "aba"));
    }

    #[test]
    fn too_few_nights_or_bad_values_name_nothing() {
        assert_eq!(change_point(&[0.0, 0.0, 5.0], 1e-3), None);
        assert_eq!(change_point(&[0.0, 0.0, f64::NAN, 5.0, 5.0], 1e-3), None);
    }

    #[test]
    fn the_sentence_names_dates_runs_and_commits() {
        let night = |d: &str, c: &str| Night {
            date: d.into(),
            started_at: 0.0,
            run: format!("api-{}", d.replace('-', "")),
            outcome: "passed".into(),
            verdict: None,
            exit_code: Some(0),
            memory_mib_per_min: None,
            fds_per_min: None,
            threads_per_min: None,
            commit: Some(c.into()),
        };
        let (a, b) = (night("2026-11-30", "abc"), night("2026-12-01", "def"));
        let c = Change {
            at: 1,
            before: 0.02,
            after: 0.9,
            scatter: 0.01,
            score: 88.0,
        };
        assert_eq!(
            sentence("memory", "MiB/min", &c, &[&a, &b]),
            "memory growth rose from 0.02 to 0.9 MiB/min between the runs of 2026-11-30 and \
             2026-12-01 (api-20261130 -> api-20261201) (commits abc -> def)"
        );
        assert_eq!(sig(0.123456), "0.123");
        assert_eq!(sig(12.0), "12");
    }
}
