//! A run's series in bounded memory, for its checks: at most [`CAP`] points, thinned by whole
//! powers of two as the run grows, so that a check's cost and memory do not depend on how long
//! the run has lasted (a 7-day run sampled every second judges 8,192 points, not 604,800).
//!
//! ## The rule
//! After `n` samples the stride `s` is the smallest power of two with `⌈n / s⌉ ≤ CAP`, and the
//! series holds one point per group of `s` consecutive samples (samples `j·s … j·s + s − 1`):
//! the group's first time, and for each metric the group's first reading of it (a metric read
//! only at the detail cadence keeps its readings while they are rarer than the stride). Up to
//! `CAP` samples nothing is thinned: every default profile (6 h every 5 s, 1 h every second)
//! judges every sample. Past it the series is an evenly spaced subsample, which the detector
//! summarises in the same ~240 time blocks; each block then holds fewer points (at least 17).
//!
//! [`Thinned`] builds that series one sample at a time in a buffer allocated (and touched) once;
//! [`column`] computes the same series from a whole recording, for the views that read a run
//! back (`report` of a live run, `analyze --as-run`), so that every view judges what the
//! checks judged.

use crate::sample::Sample;

/// Most points a thinned series holds.
pub const CAP: usize = 8192;

/// A value of a series that a group can be summarised into: its first member, with what that
/// one lacks taken from the later members in order.
pub trait Thin: Clone {
    /// Takes from `later` (a later member of the same group) what `self` has no reading of.
    fn fill_from(&mut self, later: &Self);
}

impl Thin for Sample {
    fn fill_from(&mut self, later: &Self) {
        for m in crate::sample::Metric::ALL {
            if self.get(m).is_none() {
                self.set(m, later.get(m));
            }
        }
    }
}

/// A point of a single series (time, value): the group's first point.
impl Thin for (f64, f64) {
    fn fill_from(&mut self, _later: &Self) {}
}

/// The stride after `n` samples with room for `cap` points.
pub fn stride_for(n: usize, cap: usize) -> usize {
    let mut s = 1;
    while n.div_ceil(s) > cap.max(1) {
        s *= 2;
    }
    s
}

/// A series thinned as it grows (see the module's rule).
#[derive(Debug, Clone)]
pub struct Thinned<T> {
    slots: Vec<T>,
    len: usize,
    total: usize,
    stride: usize,
}

impl<T: Thin> Thinned<T> {
    /// An empty series of at most [`CAP`] points; `filler` fills the buffer, which is allocated
    /// and written once here, so that the memory it takes does not grow with the run.
    pub fn new(filler: T) -> Self {
        Self::with_cap(filler, CAP)
    }

    /// As [`Thinned::new`] with room for `cap` points (at least 2).
    pub fn with_cap(filler: T, cap: usize) -> Self {
        Thinned {
            slots: vec![filler; cap.max(2)],
            len: 0,
            total: 0,
            stride: 1,
        }
    }

    /// Adds the next sample.
    pub fn push(&mut self, x: T) {
        if self.total % self.stride != 0 {
            // The last group is not complete: this sample belongs to it.
            self.slots[self.len - 1].fill_from(&x);
        } else {
            if self.len == self.slots.len() {
                self.halve();
            }
            self.slots[self.len] = x;
            self.len += 1;
        }
        self.total += 1;
    }

    /// Merges neighbouring groups pairwise: half as many points, twice the stride.
    fn halve(&mut self) {
        let half = self.len / 2;
        for j in 0..half {
            // Slot j is written only after slots 2j and 2j + 1 (both ≥ j) were read.
            let mut first = self.slots[2 * j].clone();
            first.fill_from(&self.slots[2 * j + 1]);
            self.slots[j] = first;
        }
        self.len = half;
        self.stride *= 2;
    }

    /// The points, oldest first.
    pub fn points(&self) -> &[T] {
        &self.slots[..self.len]
    }

    /// Samples pushed so far.
    pub fn total(&self) -> usize {
        self.total
    }

    /// Samples per point.
    pub fn stride(&self) -> usize {
        self.stride
    }
}

/// The samples of a whole recording as a [`Thinned`] series built from them would hold.
pub fn samples(all: &[Sample]) -> Vec<Sample> {
    groups(all.len(), CAP, |from, to| {
        let mut first = all[from].clone();
        for later in &all[from + 1..to] {
            first.fill_from(later);
        }
        first
    })
}

/// A run's stored gauge series thinned as the live run's are (each on its own).
pub fn gauges(all: &[crate::gauges::Series]) -> Vec<crate::gauges::Series> {
    all.iter()
        .map(|g| {
            let (t, v) = column(&g.t, &g.v);
            crate::gauges::Series {
                column: g.column.clone(),
                t,
                v,
            }
        })
        .collect()
}

/// One column of a recording (times `t`, values `v`, NaN where not read) thinned as a run's
/// checks see it: the group's first time and first finite value (NaN when none).
pub fn column(t: &[f64], v: &[f64]) -> (Vec<f64>, Vec<f64>) {
    column_with(t, v, CAP)
}

/// As [`column`] with room for `cap` points.
pub fn column_with(t: &[f64], v: &[f64], cap: usize) -> (Vec<f64>, Vec<f64>) {
    let n = t.len().min(v.len());
    groups(n, cap, |from, to| {
        let first = v[from..to]
            .iter()
            .copied()
            .find(|x| x.is_finite())
            .unwrap_or(f64::NAN);
        (t[from], first)
    })
    .into_iter()
    .unzip()
}

/// One point per group of `stride_for(n, cap)` consecutive samples, made by `point(from, to)`.
fn groups<T>(n: usize, cap: usize, point: impl Fn(usize, usize) -> T) -> Vec<T> {
    let s = stride_for(n, cap.max(2));
    (0..n.div_ceil(s))
        .map(|j| point(j * s, ((j + 1) * s).min(n)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::Metric;

    #[test]
    fn nothing_is_thinned_up_to_the_cap() {
        assert_eq!(stride_for(0, 8), 1);
        assert_eq!(stride_for(8, 8), 1);
        assert_eq!(stride_for(9, 8), 2);
        assert_eq!(stride_for(16, 8), 2);
        assert_eq!(stride_for(17, 8), 4);
        assert_eq!(stride_for(604_800, CAP), 128);
        let mut th = Thinned::with_cap((0.0, 0.0), 8);
        for i in 0..8 {
            th.push((f64::from(i), f64::from(i)));
        }
        assert_eq!(th.points().len(), 8);
        assert_eq!(th.stride(), 1);
    }

    /// Pushing sample by sample gives, after every sample, what the whole-recording function
    /// gives on that prefix — with metrics read only now and then.
    #[test]
    fn built_one_sample_at_a_time_it_equals_the_recording_thinned_whole() {
        let cap = 16;
        let mut th = Thinned::with_cap(Sample::at(f64::NAN), cap);
        let mut all = Vec::new();
        for i in 0..200u32 {
            let mut s = Sample::at(f64::from(i) * 0.5);
            s.set(Metric::RssBytes, Some(f64::from(i) * 3.0));
            // Read every 7th sample only (a detail-cadence metric).
            s.set(Metric::FdsSurviving, (i % 7 == 3).then_some(f64::from(i)));
            th.push(s.clone());
            all.push(s);
            let whole = groups(all.len(), cap, |from, to| {
                let mut first = all[from].clone();
                for later in &all[from + 1..to] {
                    first.fill_from(later);
                }
                first
            });
            assert_eq!(th.points(), &whole[..], "after {} samples", all.len());
            let t: Vec<f64> = all.iter().map(|s| s.t).collect();
            let v: Vec<f64> = all
                .iter()
                .map(|s| s.get(Metric::FdsSurviving).unwrap_or(f64::NAN))
                .collect();
            let (ct, cv) = column_with(&t, &v, cap);
            let from_thinned: Vec<f64> = th
                .points()
                .iter()
                .map(|s| s.get(Metric::FdsSurviving).unwrap_or(f64::NAN))
                .collect();
            assert_eq!(ct, th.points().iter().map(|s| s.t).collect::<Vec<_>>());
            assert_eq!(
                format!("{cv:?}"),
                format!("{from_thinned:?}"),
                "after {} samples",
                all.len()
            );
        }
        assert!(th.points().len() <= cap);
        assert_eq!(th.total(), 200);
        assert_eq!(th.stride(), 16);
        // The rare metric kept a reading in every group that had one (stride 16 > 7).
        assert!(
            th.points()
                .iter()
                .all(|s| s.get(Metric::FdsSurviving).is_some())
        );
    }

    #[test]
    fn a_thinned_ramp_keeps_its_slope_and_span() {
        let n = 100_000;
        let t: Vec<f64> = (0..n).map(f64::from).collect();
        let v: Vec<f64> = t.iter().map(|x| 2.0 * x).collect();
        let (ct, cv) = column(&t, &v);
        assert!(ct.len() <= CAP && ct.len() > CAP / 2);
        assert_eq!(ct[0], 0.0);
        assert!(ct[ct.len() - 1] > 99_900.0);
        assert!(ct.iter().zip(&cv).all(|(a, b)| *b == 2.0 * a));
    }

    /// Past the cap a day of 1-s samples judged thinned decides as judged whole: sawtooth and
    /// white-noise clean runs stay clean, 3× leaks under them still fail (memory, MiB).
    #[test]
    fn a_day_judged_thinned_decides_as_judged_whole() {
        use crate::detect::synth::{Family, generate};
        use crate::detect::{Params, Verdict, judge};
        let mut p = Params::new(0.1);
        p.warmup_s = 1800.0;
        p.min_rise = crate::detect::MIN_MEMORY_RISE_MIB;
        for family in [Family::White, Family::Sawtooth, Family::Ar1Heavy] {
            for (leak, seed) in [(0.0, 1), (0.0, 2), (0.3, 3), (0.3, 4)] {
                let s = generate(family, leak, 86_400.0, 1.0, seed);
                let (t, y) = column(&s.t, &s.y);
                assert!(t.len() <= CAP);
                let (whole, thin) = (judge(&s.t, &s.y, &p), judge(&t, &y, &p));
                let want = if leak > 0.0 {
                    Verdict::Leak
                } else {
                    Verdict::Clean
                };
                assert_eq!(
                    (whole.verdict, thin.verdict),
                    (want, want),
                    "{} leak {leak} seed {seed}: whole {} / thinned {}",
                    family.name(),
                    whole.reason,
                    thin.reason
                );
                assert!(
                    (whole.slope_per_min - thin.slope_per_min).abs() < 0.05,
                    "{} seed {seed}: {} vs {}",
                    family.name(),
                    whole.slope_per_min,
                    thin.slope_per_min
                );
            }
        }
    }
}
