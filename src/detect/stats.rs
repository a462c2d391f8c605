//! Small statistics kit for the detector: least-squares lines and bends, the time scale of a
//! series' own fluctuation, Student's t, normal quantiles and robust location helpers. Pure
//! functions of slices; no I/O, no clock.
//!
//! References:
//! - Batch means: the variance of a mean of correlated data from means of batches long enough
//!   to be nearly independent (Conway 1963; Schmeiser 1982, "Batch size effects in the analysis
//!   of simulation output", Operations Research 30:556), here applied to a slope.
//! - Abramowitz & Stegun (1964), 26.7.3–4: Student's t distribution for integer degrees of
//!   freedom.
//! - Acklam (2003), "An algorithm for computing the inverse normal cumulative distribution
//!   function": rational approximation, relative error < 1.15e-9.

/// Inverse of the standard normal CDF (the probit), for `p` in (0, 1).
///
/// Written here rather than pulling in a statistics crate for one function: Acklam's rational
/// approximation is 20 lines and accurate to 1e-9, far below anything the detector can resolve.
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    if p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if p >= 1.0 {
        return f64::INFINITY;
    }
    let p_low = 0.024_25;
    if p < p_low {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if p <= 1.0 - p_low {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        -normal_quantile(1.0 - p)
    }
}

/// Median of a slice (reorders it). `None` when empty.
pub fn median_in_place(v: &mut [f64]) -> Option<f64> {
    quantile_in_place(v, 0.5)
}

/// Quantile `q` in [0, 1] by linear interpolation between order statistics (reorders the slice).
pub fn quantile_in_place(v: &mut [f64], q: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let pos = q.clamp(0.0, 1.0) * (v.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let frac = pos - lo as f64;
    let (_, lo_v, rest) = v.select_nth_unstable_by(lo, f64::total_cmp);
    let lo_v = *lo_v;
    if frac == 0.0 || rest.is_empty() {
        return Some(lo_v);
    }
    let hi_v = rest.iter().copied().fold(f64::INFINITY, f64::min);
    Some(lo_v + frac * (hi_v - lo_v))
}

/// Lag-1 autocorrelation of a series (mean-centred); 0 for degenerate input.
pub fn lag1_autocorrelation(x: &[f64]) -> f64 {
    let n = x.len();
    if n < 3 {
        return 0.0;
    }
    let mean = x.iter().sum::<f64>() / n as f64;
    let c0: f64 = x.iter().map(|v| (v - mean) * (v - mean)).sum();
    if c0 <= 0.0 {
        return 0.0;
    }
    let c1: f64 = (0..n - 1).map(|i| (x[i] - mean) * (x[i + 1] - mean)).sum();
    c1 / c0
}

/// A straight line fitted by least squares, with what its slope's interval needs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LineFit {
    /// Slope, units of y per unit of t.
    pub slope: f64,
    /// Value of the line at the mean of `t`.
    pub level: f64,
    /// Mean of `t`.
    pub t_mean: f64,
    /// Standard error of the slope (0 when the points lie on the line).
    pub se: f64,
    /// Residual degrees of freedom (points − 2).
    pub df: usize,
}

impl LineFit {
    /// The fitted value at `t`.
    pub fn at(&self, t: f64) -> f64 {
        self.level + self.slope * (t - self.t_mean)
    }
}

/// Least-squares line through `(t, y)`; `None` with fewer than 3 points or no spread in `t`.
pub fn line_fit(t: &[f64], y: &[f64]) -> Option<LineFit> {
    let n = t.len().min(y.len());
    if n < 3 {
        return None;
    }
    let nf = n as f64;
    let t_mean = t[..n].iter().sum::<f64>() / nf;
    let y_mean = y[..n].iter().sum::<f64>() / nf;
    let sxx: f64 = t[..n].iter().map(|v| (v - t_mean) * (v - t_mean)).sum();
    if sxx <= 0.0 {
        return None;
    }
    let sxy: f64 = (0..n).map(|i| (t[i] - t_mean) * (y[i] - y_mean)).sum();
    let slope = sxy / sxx;
    let sse: f64 = (0..n)
        .map(|i| {
            let e = y[i] - y_mean - slope * (t[i] - t_mean);
            e * e
        })
        .sum();
    let df = n - 2;
    Some(LineFit {
        slope,
        level: y_mean,
        t_mean,
        se: (sse / df as f64 / sxx).sqrt(),
        df,
    })
}

/// Sen's slope (Sen 1968, JASA 63:1379): the median of the slopes between all pairs of points,
/// robust to a minority of points off the line (a fill's tail, one step). O(n² log n): callers
/// pass block summaries, never raw samples. `None` with fewer than 2 points at distinct times.
pub fn sen_slope(t: &[f64], y: &[f64]) -> Option<f64> {
    let n = t.len().min(y.len());
    let mut slopes = Vec::with_capacity(n * n.saturating_sub(1) / 2);
    for i in 0..n {
        for j in (i + 1)..n {
            let dt = t[j] - t[i];
            if dt > 0.0 {
                slopes.push((y[j] - y[i]) / dt);
            }
        }
    }
    median_in_place(&mut slopes)
}

/// Growth that bends: the least-squares quadratic through `(t, y)` seen as a rate that changes
/// along the span.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bend {
    /// Rate (units of y per unit of t) at the first point.
    pub rate_first: f64,
    /// Rate at the last point.
    pub rate_last: f64,
    /// Curvature's t statistic (negative: decelerating).
    pub t_curvature: f64,
    /// Its degrees of freedom (points − 3).
    pub df: usize,
}

/// Fits `y = a + b·x + c·w(x)` with `x = t − mean(t)` and `w` the part of `x²` orthogonal to 1
/// and `x`, so `c` and its standard error come from one projection each. `None` with fewer
/// than 4 points.
pub fn bend(t: &[f64], y: &[f64]) -> Option<Bend> {
    let n = t.len().min(y.len());
    if n < 4 {
        return None;
    }
    let nf = n as f64;
    let t_mean = t[..n].iter().sum::<f64>() / nf;
    let y_mean = y[..n].iter().sum::<f64>() / nf;
    let x: Vec<f64> = t[..n].iter().map(|v| v - t_mean).collect();
    let sxx: f64 = x.iter().map(|v| v * v).sum();
    if sxx <= 0.0 {
        return None;
    }
    let x2_mean = sxx / nf;
    let sx3: f64 = x.iter().map(|v| v * v * v).sum();
    let w: Vec<f64> = x.iter().map(|v| v * v - x2_mean - sx3 / sxx * v).collect();
    let sww: f64 = w.iter().map(|v| v * v).sum();
    if sww <= 0.0 {
        return None;
    }
    let b = (0..n).map(|i| x[i] * (y[i] - y_mean)).sum::<f64>() / sxx;
    let c = (0..n).map(|i| w[i] * (y[i] - y_mean)).sum::<f64>() / sww;
    let sse: f64 = (0..n)
        .map(|i| {
            let e = y[i] - y_mean - b * x[i] - c * w[i];
            e * e
        })
        .sum();
    let df = n - 3;
    let se_c = (sse / df as f64 / sww).sqrt();
    // d/dx of c·w(x) is c·(2x − Σx³/Σx²).
    let rate = |xv: f64| b + c * (2.0 * xv - sx3 / sxx);
    Some(Bend {
        rate_first: rate(x[0]),
        rate_last: rate(x[n - 1]),
        t_curvature: if se_c > 0.0 {
            c / se_c
        } else if c < 0.0 {
            -1e6
        } else {
            1e6
        },
        df,
    })
}

/// The time scale of a series' own fluctuation, read from the autocorrelation of `resid` (the
/// residuals about a line, one per time block): `(blocks, cycle)`.
///
/// It is the lag of the autocorrelation's first clear peak after it first reaches zero when
/// there is one (a cycle: a load pattern, a collector, an arena trimmed and regrown, repeating
/// steps), else the lag at which it first reaches zero (the decorrelation time of noise that
/// wanders). Blocks this long or longer are nearly independent of each other. When the
/// autocorrelation stays positive for half the series (one slow swing, a rise that stopped) the
/// scale is the whole series: it has not shown its own fluctuation yet.
pub fn fluctuation_scale(resid: &[f64]) -> (usize, bool) {
    let n = resid.len();
    if n < 4 {
        return (n.max(1), false);
    }
    let mean = resid.iter().sum::<f64>() / n as f64;
    let d: Vec<f64> = resid.iter().map(|v| v - mean).collect();
    let c0: f64 = d.iter().map(|v| v * v).sum();
    // Residuals at rounding level (a line, a constant) carry no fluctuation.
    let size = resid.iter().fold(0.0f64, |a, v| a.max(v.abs()));
    if c0 <= 0.0 || c0.sqrt() <= 1e-12 * size.max(1.0) * n as f64 {
        return (1, false);
    }
    let acf = |k: usize| (0..n - k).map(|i| d[i] * d[i + k]).sum::<f64>() / c0;
    let max_lag = n / 2;
    let Some(k0) = (1..=max_lag).find(|&k| acf(k) <= 0.0) else {
        return (n, false);
    };
    // The first lobe that climbs back above CYCLE_MIN_ACF, and its top: the cycle's own
    // period, not a multiple of it (an irregular cycle's autocorrelation at two or three
    // periods can top its first peak by chance).
    let mut peak = (0usize, f64::MIN);
    for k in (k0 + 1)..=max_lag {
        let r = acf(k);
        if r >= CYCLE_MIN_ACF && r > peak.1 {
            peak = (k, r);
        } else if peak.1 >= CYCLE_MIN_ACF && r < CYCLE_MIN_ACF {
            break;
        }
    }
    if peak.1 >= CYCLE_MIN_ACF && peak.0 > 2 * k0 {
        (peak.0, true)
    } else {
        (k0.min(n), false)
    }
}

/// Smallest autocorrelation at a peak for the peak to count as a cycle (noise that wanders
/// shows peaks of ±2/√n; a cycle seen a few times reaches 1 − lag/n).
pub const CYCLE_MIN_ACF: f64 = 0.3;

/// Student's t distribution function `P(T ≤ t)` for `df` degrees of freedom, by the closed
/// forms for integer degrees of freedom (Abramowitz & Stegun 26.7.3–4). Above 200 degrees of
/// freedom the normal is used.
///
/// Written here for the same reason as [`normal_quantile`]: the statistics crates that have it
/// pull in a linear-algebra crate for one function, and the closed form is a dozen lines.
pub fn student_t_cdf(t: f64, df: usize) -> f64 {
    if df == 0 || t.is_nan() {
        return f64::NAN;
    }
    if df > 200 {
        return normal_cdf(t);
    }
    let theta = (t.abs() / (df as f64).sqrt()).atan();
    let (s, c) = theta.sin_cos();
    let c2 = c * c;
    // A = P(|T| ≤ |t|).
    let a = if df % 2 == 1 {
        let mut sum = 0.0;
        if df > 1 {
            let mut term = c;
            sum = term;
            let mut k = 2.0;
            while k < (df - 1) as f64 {
                term *= c2 * k / (k + 1.0);
                sum += term;
                k += 2.0;
            }
        }
        2.0 / std::f64::consts::PI * (theta + s * sum)
    } else {
        let mut term = 1.0;
        let mut sum = 1.0;
        let mut k = 1.0;
        while k < (df - 1) as f64 {
            term *= c2 * k / (k + 1.0);
            sum += term;
            k += 2.0;
        }
        s * sum
    };
    let upper = 0.5 * (1.0 - a);
    if t >= 0.0 { 1.0 - upper } else { upper }
}

/// The standard normal distribution function, by the complementary error function
/// (Numerical Recipes' Chebyshev fit, relative error < 1.2e-7).
pub fn normal_cdf(z: f64) -> f64 {
    let x = z.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.5 * x);
    let erfc = t
        * (-x * x - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07
                                + t * (-1.135_203_98
                                    + t * (1.488_515_87
                                        + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
            .exp();
    if z >= 0.0 {
        1.0 - 0.5 * erfc
    } else {
        0.5 * erfc
    }
}

/// The upper-tail probability `P(T > t)` of Student's t, without the cancellation of
/// `1 − cdf` far in the tail.
fn student_t_upper(t: f64, df: usize) -> f64 {
    if t >= 0.0 {
        student_t_cdf(-t, df)
    } else {
        1.0 - student_t_cdf(t, df)
    }
}

/// Quantile `p` of Student's t with `df` degrees of freedom, by bisection on
/// [`student_t_cdf`].
pub fn student_t_quantile(p: f64, df: usize) -> f64 {
    if df == 0 || !(0.0..=1.0).contains(&p) {
        return f64::NAN;
    }
    if p == 0.5 {
        return 0.0;
    }
    if p < 0.5 {
        return -student_t_quantile(1.0 - p, df);
    }
    let (mut lo, mut hi) = (0.0f64, 1.0f64);
    while student_t_cdf(hi, df) < p && hi < 1e12 {
        hi *= 2.0;
    }
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if student_t_cdf(mid, df) < p {
            lo = mid;
        } else {
            hi = mid;
        }
        if hi - lo <= 1e-12 * hi.max(1.0) {
            break;
        }
    }
    0.5 * (lo + hi)
}

/// The standard normal z with the same upper-tail probability as `t` on `df` degrees of
/// freedom: a t statistic on few degrees of freedom counts for less, so evidence from spans of
/// different lengths is compared on one scale (the run-level boundary's).
pub fn t_as_z(t: f64, df: usize) -> f64 {
    if t.is_nan() {
        return f64::NAN;
    }
    let q = student_t_upper(t, df);
    if q <= 1e-300 {
        return 40.0;
    }
    if q >= 1.0 {
        return -40.0;
    }
    -normal_quantile(q).clamp(-40.0, 40.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probit_matches_tables() {
        assert!((normal_quantile(0.975) - 1.959_963_985).abs() < 1e-6);
        assert!((normal_quantile(0.5)).abs() < 1e-12);
        assert!((normal_quantile(0.05) + 1.644_853_627).abs() < 1e-6);
        assert!((normal_quantile(0.001) + 3.090_232_306).abs() < 1e-6);
    }

    #[test]
    fn student_t_matches_tables() {
        // Two-sided 95 % critical values: 12.706 (1), 4.303 (2), 2.776 (4), 2.228 (10),
        // 2.042 (30); 90 %: 1.638 (3).
        for (df, want) in [
            (1, 12.706),
            (2, 4.303),
            (4, 2.776),
            (10, 2.228),
            (30, 2.042),
        ] {
            let got = student_t_quantile(0.975, df);
            assert!((got - want).abs() < 2e-3, "df {df}: {got}");
        }
        assert!((student_t_quantile(0.95, 3) - 2.353).abs() < 2e-3);
        assert!((student_t_cdf(0.0, 5) - 0.5).abs() < 1e-12);
        assert!((student_t_cdf(-2.776, 4) - 0.025).abs() < 1e-4);
        // A t of 20 on 2 df is far weaker evidence than a z of 20.
        let z = t_as_z(20.0, 2);
        assert!(z > 2.5 && z < 3.5, "{z}");
        assert!((t_as_z(1.96, 1000) - 1.96).abs() < 1e-3);
        assert!((normal_cdf(1.959_964) - 0.975).abs() < 1e-6);
    }

    #[test]
    fn line_fit_textbook() {
        let t = [1.0, 2.0, 3.0, 4.0, 5.0];
        let y = [2.0, 4.0, 5.0, 4.0, 5.0];
        let f = line_fit(&t, &y).expect("fits");
        // Slope 0.6, residual SS 2.4 on 3 df, Sxx 10: se = √(0.8/10).
        assert!((f.slope - 0.6).abs() < 1e-12);
        assert!((f.se - (0.08f64).sqrt()).abs() < 1e-12);
        assert!((f.at(3.0) - 4.0).abs() < 1e-12);
        assert!(line_fit(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0]).is_none());
    }

    #[test]
    fn bend_tells_deceleration() {
        // y = 10·(1 − e^{−t/5}) on 0..20: rate 2 → ~0.04, strongly negative curvature.
        let t: Vec<f64> = (0..21).map(f64::from).collect();
        let y: Vec<f64> = t.iter().map(|v| 10.0 * (1.0 - (-v / 5.0).exp())).collect();
        let b = bend(&t, &y).expect("fits");
        assert!(b.t_curvature < -5.0, "{b:?}");
        assert!(b.rate_first > 4.0 * b.rate_last.max(0.01), "{b:?}");
        // A straight line does not bend.
        let y: Vec<f64> = t.iter().map(|v| 3.0 * v + 1.0).collect();
        let b = bend(&t, &y).expect("fits");
        assert!((b.rate_first - 3.0).abs() < 1e-9 && (b.rate_last - 3.0).abs() < 1e-9);
    }

    #[test]
    fn fluctuation_scale_finds_cycles_and_decorrelation() {
        // A cycle of 24 blocks seen 10 times.
        let sine: Vec<f64> = (0..240)
            .map(|i| (2.0 * std::f64::consts::PI * f64::from(i) / 24.0).sin())
            .collect();
        let (g, cycle) = fluctuation_scale(&sine);
        assert!(cycle && (23..=25).contains(&g), "{g} {cycle}");
        // Half a cycle: its scale is a quarter of the series or more (at most four batches).
        let half: Vec<f64> = (0..240)
            .map(|i| (std::f64::consts::PI * f64::from(i) / 240.0).cos())
            .collect();
        assert!(
            fluctuation_scale(&half).0 >= 60,
            "{:?}",
            fluctuation_scale(&half)
        );
        // An irregular cycle, periods alternating 20 and 28 blocks: the autocorrelation
        // repeats exactly at 48 (a pair) and only nearly at 20–28; the scale is one cycle, not
        // the pair.
        let mut irregular = Vec::new();
        while irregular.len() < 480 {
            for period in [20, 28] {
                irregular.extend((0..period).map(|i| f64::from(i) / f64::from(period)));
            }
        }
        let (g, cycle) = fluctuation_scale(&irregular[..480]);
        assert!(cycle && (18..=30).contains(&g), "{g} {cycle}");
        // Alternating noise decorrelates at once; a constant has no scale.
        let alt: Vec<f64> = (0..100)
            .map(|i| if i % 2 == 0 { 1.0 } else { -1.0 })
            .collect();
        assert_eq!(fluctuation_scale(&alt), (1, false));
        assert_eq!(fluctuation_scale(&[0.0; 50]), (1, false));
    }

    #[test]
    fn quantiles() {
        let mut v = vec![5.0, 1.0, 3.0, 2.0, 4.0];
        assert_eq!(median_in_place(&mut v), Some(3.0));
        let mut v = vec![1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile_in_place(&mut v, 0.5), Some(2.5));
        assert_eq!(median_in_place(&mut []), None);
    }
}
