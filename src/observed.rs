//! Observed time: how much of a run was actually watched. A stretch between two samples counts
//! only when it is short (at most a few sample intervals) and the target was running at both
//! ends; anything else — the sentinel dead or stalled, the machine suspended, the target stopped
//! (SIGSTOP) or frozen — is a gap, reported with its length, and never counts toward the clean
//! streak or the target duration. Pure: sample times (seconds) in, seconds out.

/// A stretch that was not watched.
#[derive(Debug, Clone, PartialEq)]
pub struct Gap {
    /// Start, seconds (the time of the last sample before it).
    pub from: f64,
    /// End, seconds (the sample after it).
    pub to: f64,
    /// Why: `no_samples` (sentinel dead or stalled, machine suspended) or `target_stopped`.
    pub cause: &'static str,
}

impl Gap {
    /// Length, seconds.
    pub fn len(&self) -> f64 {
        self.to - self.from
    }

    /// Whether it has no length.
    pub fn is_empty(&self) -> bool {
        self.len() <= 0.0
    }
}

/// The longest stretch between two samples that still counts as watched: three sample
/// intervals, and at least 5 s so that one slow write on a busy machine is not a gap.
pub fn max_gap(sample_every_s: f64) -> f64 {
    (3.0 * sample_every_s).max(5.0)
}

/// Running total of observed time.
#[derive(Debug, Clone)]
pub struct Observed {
    max_gap: f64,
    last: Option<(f64, bool)>,
    total: f64,
    stopped_since: Option<f64>,
}

impl Observed {
    /// Nothing observed yet; stretches longer than `max_gap` seconds are gaps.
    pub fn new(max_gap: f64) -> Observed {
        Observed {
            max_gap,
            last: None,
            total: 0.0,
            stopped_since: None,
        }
    }

    /// Adds a sample at `t` (seconds; earlier or equal times are ignored) taken while the
    /// target was `running` or not. Returns the gap that this sample ends, if any.
    pub fn add(&mut self, t: f64, running: bool) -> Option<Gap> {
        let Some((lt, lrun)) = self.last else {
            self.last = Some((t, running));
            self.stopped_since = (!running).then_some(t);
            return None;
        };
        if t <= lt {
            return None;
        }
        let dt = t - lt;
        self.last = Some((t, running));
        let mut gap = None;
        if dt > self.max_gap {
            gap = Some(Gap {
                from: lt,
                to: t,
                cause: "no_samples",
            });
        } else if lrun && running {
            self.total += dt;
        }
        match (self.stopped_since, running) {
            (None, false) => self.stopped_since = Some(lt),
            (Some(since), true) => {
                self.stopped_since = None;
                if gap.is_none() {
                    gap = Some(Gap {
                        from: since,
                        to: t,
                        cause: "target_stopped",
                    });
                }
            }
            _ => {}
        }
        gap
    }

    /// Observed seconds so far.
    pub fn total(&self) -> f64 {
        self.total
    }

    /// Time of the last sample.
    pub fn last_t(&self) -> Option<f64> {
        self.last.map(|l| l.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_short_stretches_only() {
        let mut o = Observed::new(5.0);
        assert_eq!(o.add(0.0, true), None);
        for i in 1..=10 {
            assert_eq!(o.add(i as f64, true), None);
        }
        assert_eq!(o.total(), 10.0);
        // 70 s without samples (killed and resumed): a gap, not counted.
        let g = o.add(80.0, true).expect("a gap");
        assert_eq!((g.from, g.to, g.cause), (10.0, 80.0, "no_samples"));
        assert_eq!(g.len(), 70.0);
        o.add(81.0, true);
        assert_eq!(o.total(), 11.0);
        // A sample from the past (a clock step back) changes nothing.
        assert_eq!(o.add(50.0, true), None);
        assert_eq!(o.total(), 11.0);
    }

    #[test]
    fn a_stopped_target_is_a_gap_with_its_length() {
        let mut o = Observed::new(5.0);
        o.add(0.0, true);
        o.add(1.0, true);
        assert_eq!(o.add(2.0, false), None);
        for i in 3..=31 {
            assert_eq!(o.add(i as f64, false), None);
        }
        let g = o.add(32.0, true).expect("the stop ends");
        assert_eq!((g.from, g.to, g.cause), (1.0, 32.0, "target_stopped"));
        o.add(33.0, true);
        assert_eq!(o.total(), 2.0);
        assert_eq!(max_gap(1.0), 5.0);
        assert_eq!(max_gap(5.0), 15.0);
    }
}
