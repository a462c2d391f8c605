//! Pacing of the live loop on the session's monotonic clock: when the next sample is due
//! (falling behind skips rather than bursts), when to look for new descendants, when the
//! expensive detail fields are due (paced by their own measured cost), and when to refresh the
//! status file between checks.

use std::time::Duration;

/// How often /proc is listed for new descendants when they cannot be found at every sample
/// through children files (a kernel without them, a cgroup target, a walk that missed something).
pub const TREE_REFRESH: Duration = Duration::from_secs(5);

/// How often /proc is listed anyway when every sample walks the children files: the safety net
/// for a child the kernel's list missed while it was built (proc(5)).
pub const TREE_FULL_SCAN: Duration = Duration::from_secs(30);

/// The status file is rewritten at least this often between checks.
const STATUS_EVERY: Duration = Duration::from_secs(10);

/// Due times of the loop's periodic work, monotonic.
#[derive(Debug, Clone)]
pub struct Ticker {
    sample_every: Duration,
    detail_every: Duration,
    next_sample: Duration,
    last_tree: Option<Duration>,
    last_detail: Option<Duration>,
    detail_cost: Duration,
    last_status: Duration,
}

impl Ticker {
    /// A ticker whose first sample is due at `now`.
    pub fn new(now: Duration, sample_every_s: f64, detail_every_s: f64) -> Ticker {
        Ticker {
            sample_every: Duration::from_secs_f64(sample_every_s),
            detail_every: Duration::from_secs_f64(detail_every_s),
            next_sample: now,
            last_tree: None,
            // The first detail sample comes one detail interval in (or at warm-up end, for the
            // diagnosis baseline): the first sample stays cheap, so startup stays cheap.
            last_detail: Some(now),
            detail_cost: Duration::ZERO,
            last_status: now,
        }
    }

    /// Time left until the next sample (`None`: due now).
    pub fn until_sample(&self, now: Duration) -> Option<Duration> {
        (self.next_sample > now).then(|| self.next_sample - now)
    }

    /// A sample is being taken at `now`: the next one is one interval later, or one interval
    /// from now when the loop fell behind (suspended host, slow disk) — skip, do not burst.
    pub fn sampled(&mut self, now: Duration) {
        self.next_sample += self.sample_every;
        if self.next_sample < now {
            self.next_sample = now + self.sample_every;
        }
    }

    /// Whether to list /proc for new descendants now. Listing /proc costs more than sampling a
    /// small tree (benches/sampler.rs). `walking`: every sample finds new children through the
    /// children files ([`crate::target::Target::walks_children`]), so the listing is only the
    /// safety net ([`TREE_FULL_SCAN`]); otherwise it is the only way and comes every
    /// [`TREE_REFRESH`].
    pub fn tree_due(&mut self, now: Duration, walking: bool) -> bool {
        let every = if walking {
            TREE_FULL_SCAN
        } else {
            TREE_REFRESH
        };
        let due = self
            .last_tree
            .is_none_or(|t| now.saturating_sub(t) >= every.max(self.sample_every));
        if due {
            self.last_tree = Some(now);
        }
        due
    }

    /// Whether the expensive fields are due: at the detail cadence, and never more than ~1 % of
    /// a core (smaps_rollup walks every page, so a big process costs more).
    pub fn detail_due(&self, now: Duration) -> bool {
        self.last_detail
            .is_none_or(|t| now.saturating_sub(t) >= self.detail_every.max(self.detail_cost * 100))
    }

    /// A detail sample started at `start` cost `cost` (without the maps snapshot, which has its
    /// own pacing).
    pub fn detail_taken(&mut self, start: Duration, cost: Duration) {
        self.last_detail = Some(start);
        self.detail_cost = cost;
    }

    /// Whether the status file is due for a refresh between checks.
    pub fn status_due(&self, now: Duration) -> bool {
        now.saturating_sub(self.last_status) >= STATUS_EVERY
    }

    /// The status file was written at `now`.
    pub fn status_written(&mut self, now: Duration) {
        self.last_status = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn samples_on_the_interval_and_skips_when_behind() {
        let mut t = Ticker::new(S(0), 1.0, 10.0);
        assert_eq!(t.until_sample(S(0)), None);
        t.sampled(S(0));
        assert_eq!(t.until_sample(S(0)), Some(S(1)));
        t.sampled(S(1));
        // Ten seconds lost (a suspend): the next sample is one interval from now, not ten at once.
        t.sampled(S(12));
        assert_eq!(t.until_sample(S(12)), Some(S(1)));
    }

    #[test]
    fn tree_detail_and_status_pacing() {
        let mut t = Ticker::new(S(0), 1.0, 10.0);
        assert!(t.tree_due(S(0), false));
        assert!(!t.tree_due(S(4), false));
        assert!(t.tree_due(S(5), false));
        assert!(
            !t.tree_due(S(29), true),
            "walking the children files: a listing every 30 s"
        );
        assert!(t.tree_due(S(35), true));
        assert!(!t.detail_due(S(0)), "not on the very first sample");
        assert!(t.detail_due(S(10)));
        t.detail_taken(S(0), Duration::from_millis(200));
        // 100 × 200 ms = 20 s beats the 10 s detail interval.
        assert!(!t.detail_due(S(15)));
        assert!(t.detail_due(S(20)));
        assert!(!t.status_due(S(9)));
        assert!(t.status_due(S(10)));
        t.status_written(S(10));
        assert!(!t.status_due(S(19)));
    }
}
