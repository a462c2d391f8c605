//! The self-contained HTML report: a header with the verdict in words and colour, one inline
//! SVG chart per metric (drawn with plotters' SVG backend) showing the series, the envelope the
//! detector judged, the fitted trend with its interval, the threshold slope, warm-up, checks and
//! events, then the verdict table and the diagnosis. No scripts, fonts or fetches: it opens
//! offline and can be attached to a ticket. Data in, a string out.

use crate::detect::{Judgement, Verdict};
use anyhow::Result;
use plotters::prelude::*;
use std::fmt::Write as _;

/// Plot width in pixels; also the number of columns of the min/max downsampling.
pub const WIDTH: u32 = 960;
const HEIGHT: u32 = 300;
/// Width kept right of the plot for the legend, pixels.
const LEGEND_W: u32 = 170;

/// One line (or stacked band) of a chart. Times in seconds from the start, values in the
/// chart's unit.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend name.
    pub name: String,
    /// Points, time ascending.
    pub points: Vec<(f64, f64)>,
}

/// One chart.
#[derive(Debug, Clone)]
pub struct Chart {
    /// Metric name (`rss_bytes`), used as the figure's id.
    pub metric: String,
    /// Title.
    pub title: String,
    /// Unit of the y axis (`MiB`, `FDs`).
    pub unit: String,
    /// The series (drawn as lines; the first is the judged one).
    pub series: Vec<Series>,
    /// Bands stacked under the lines (FDs by kind).
    pub stacked: Vec<Series>,
    /// The detector's judgement of the first series, with its envelope (y in the chart unit).
    pub judgement: Option<Judgement>,
}

/// Everything the report shows.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Page title (run name or file).
    pub title: String,
    /// Header facts: label and value.
    pub facts: Vec<(String, String)>,
    /// Overall verdict.
    pub verdict: Option<Verdict>,
    /// Verdict in words (`PASSED`, `LEAK DETECTED`…).
    pub verdict_words: String,
    /// Why it failed or stopped.
    pub reason: Option<String>,
    /// Warm-up end, seconds from the start.
    pub warmup_s: f64,
    /// Checks: seconds from the start, failed.
    pub checks: Vec<(f64, bool)>,
    /// Events: seconds from the start, kind, detail.
    pub events: Vec<(f64, String, String)>,
    /// Charts, one per metric.
    pub charts: Vec<Chart>,
    /// The run's span, seconds from the start: every chart's time axis ends here, whatever its
    /// series cover (detail metrics stop at the last detail sample).
    pub span_s: f64,
    /// Verdict table rows: metric, verdict, rate, low, high, threshold, unit.
    pub table: Vec<[String; 7]>,
    /// Diagnosis findings and suggestions.
    pub findings: Vec<String>,
    /// Suggested next steps.
    pub suggestions: Vec<String>,
    /// Extra sections: heading and lines (baseline comparison, snapshot hook…).
    pub sections: Vec<(String, Vec<String>)>,
    /// The attribution (`--attribute`), when the run had one.
    pub attribution: Option<crate::attribution::Attribution>,
}

/// Shape-preserving downsampling for drawing (never for statistics): per pixel column, the
/// first, minimum, maximum and last point, in time order. Series shorter than that are kept.
pub fn downsample(points: &[(f64, f64)], columns: usize) -> Vec<(f64, f64)> {
    if points.len() <= 2 * columns || columns == 0 {
        return points.to_vec();
    }
    let (t0, t1) = (points[0].0, points[points.len() - 1].0);
    let width = ((t1 - t0) / columns as f64).max(f64::MIN_POSITIVE);
    let mut out = Vec::with_capacity(4 * columns);
    let mut i = 0;
    while i < points.len() {
        let col = ((points[i].0 - t0) / width).floor();
        let mut j = i;
        let (mut lo, mut hi) = (i, i);
        while j < points.len() && ((points[j].0 - t0) / width).floor() == col {
            if points[j].1 < points[lo].1 {
                lo = j;
            }
            if points[j].1 > points[hi].1 {
                hi = j;
            }
            j += 1;
        }
        let mut idx = vec![i, lo, hi, j - 1];
        idx.sort_unstable();
        idx.dedup();
        out.extend(idx.into_iter().map(|k| points[k]));
        i = j;
    }
    out
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn colour(v: Option<Verdict>) -> &'static str {
    match v {
        Some(Verdict::Clean) => "#1a7f37",
        Some(Verdict::Leak) => "#cf222e",
        _ => "#9a6700",
    }
}

/// The fitted trend through the judged envelope: intercept from the median of y − b·t (Sen).
fn trend_line(j: &Judgement) -> Option<(f64, f64, f64, f64)> {
    let pts = &j.evidence.envelope_points;
    if pts.is_empty() || !j.bounded() {
        return None;
    }
    let b = j.slope_per_min / 60.0;
    let mut r: Vec<f64> = pts.iter().map(|(t, y)| y - b * t).collect();
    let a = crate::detect::stats::median_in_place(&mut r)?;
    let mut ts: Vec<f64> = pts.iter().map(|p| p.0).collect();
    let pivot = crate::detect::stats::median_in_place(&mut ts)?;
    Some((a, b, pivot, a + b * pivot))
}

/// Draws one chart as an SVG string.
pub fn chart_svg(
    c: &Chart,
    warmup_s: f64,
    span_s: f64,
    checks: &[(f64, bool)],
    events: &[(f64, String, String)],
) -> Result<String> {
    let mut buf = String::new();
    let all = c
        .series
        .iter()
        .chain(&c.stacked)
        .flat_map(|s| s.points.iter());
    let (mut x1, mut y0, mut y1) = (span_s / 60.0, f64::INFINITY, f64::NEG_INFINITY);
    for (t, y) in all {
        x1 = x1.max(*t / 60.0);
        y0 = y0.min(*y);
        y1 = y1.max(*y);
    }
    if !c.stacked.is_empty() {
        let total: f64 = c
            .stacked
            .iter()
            .filter_map(|s| s.points.last().map(|p| p.1))
            .sum();
        y1 = y1.max(total);
        y0 = y0.min(0.0);
    }
    if !y0.is_finite() {
        (y0, y1) = (0.0, 1.0);
    }
    if x1 <= 0.0 {
        x1 = 1.0;
    }
    let x1 = x1 * 1.02;
    // Counts get whole-number axes at least 2 apart (a constant 1 thread is not 0.9990–1.0008).
    let counts = !c.unit.contains("MiB");
    let (y0, y1) = if counts {
        ((y0 - 1.0).floor().max(0.0_f64.min(y0)), (y1 + 1.0).ceil())
    } else {
        let pad = ((y1 - y0) * 0.08).max(1e-3);
        (y0 - pad, y1 + pad)
    };
    let pad = (y1 - y0) * 0.05;
    let e = |e: &dyn std::fmt::Display| anyhow::anyhow!("drawing {}: {e}", c.metric);
    {
        let root = SVGBackend::with_string(&mut buf, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(|x| e(&x))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(&c.title, ("sans-serif", 16))
            .margin(8)
            // Room on the right for the legend, outside the data.
            .margin_right(LEGEND_W + 8)
            .x_label_area_size(32)
            .y_label_area_size(64)
            .build_cartesian_2d(0.0..x1, y0..y1)
            .map_err(|x| e(&x))?;
        let whole = |v: &f64| format!("{v:.0}");
        let mut mesh = chart.configure_mesh();
        mesh.x_desc("minutes since start").y_desc(c.unit.as_str());
        if counts {
            mesh.y_label_formatter(&whole)
                .y_labels(((y1 - y0) as usize + 1).min(10));
        }
        mesh.light_line_style(RGBColor(240, 240, 240))
            .draw()
            .map_err(|x| e(&x))?;
        if warmup_s > 0.0 {
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(0.0, y0), ((warmup_s / 60.0).min(x1), y1)],
                    RGBColor(235, 235, 235).filled(),
                )))
                .map_err(|x| e(&x))?
                .label("warm-up")
                .legend(|(x, y)| {
                    Rectangle::new(
                        [(x, y - 5), (x + 12, y + 5)],
                        RGBColor(235, 235, 235).filled(),
                    )
                });
        }
        // Stacked bands (FDs by kind).
        let palette = [
            RGBColor(121, 192, 255),
            RGBColor(255, 188, 121),
            RGBColor(160, 220, 160),
            RGBColor(220, 170, 230),
            RGBColor(200, 200, 200),
        ];
        let mut base: Vec<(f64, f64)> = Vec::new();
        for (k, s) in c.stacked.iter().enumerate() {
            let top: Vec<(f64, f64)> = s
                .points
                .iter()
                .enumerate()
                .map(|(i, (t, y))| (*t / 60.0, y + base.get(i).map_or(0.0, |b| b.1)))
                .collect();
            let mut poly = top.clone();
            let bottom: Vec<(f64, f64)> = if base.is_empty() {
                top.iter().rev().map(|(t, _)| (*t, 0.0)).collect()
            } else {
                base.iter().rev().copied().collect()
            };
            poly.extend(bottom);
            let col = palette[k % palette.len()];
            chart
                .draw_series(std::iter::once(Polygon::new(poly, col.mix(0.6).filled())))
                .map_err(|x| e(&x))?
                .label(s.name.clone())
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], col.filled()));
            base = top;
        }
        // Interval band and fitted trend over the judged span, and the threshold slope.
        if let Some(j) = &c.judgement {
            let (from, to) = (j.evidence.judged_from_s, j.evidence.judged_to_s);
            if let Some((a, b, pivot, ypivot)) = trend_line(j) {
                let (lo, hi) = (j.ci_low / 60.0, j.ci_high / 60.0);
                let band = vec![
                    (from / 60.0, ypivot + lo * (from - pivot)),
                    (to / 60.0, ypivot + lo * (to - pivot)),
                    (to / 60.0, ypivot + hi * (to - pivot)),
                    (from / 60.0, ypivot + hi * (from - pivot)),
                ];
                chart
                    .draw_series(std::iter::once(Polygon::new(
                        band,
                        RGBColor(31, 111, 235).mix(0.12).filled(),
                    )))
                    .map_err(|x| e(&x))?
                    .label(format!("{:.0} % interval", j.confidence * 100.0))
                    .legend(|(x, y)| {
                        Rectangle::new(
                            [(x, y - 5), (x + 12, y + 5)],
                            RGBColor(31, 111, 235).mix(0.12).filled(),
                        )
                    });
                chart
                    .draw_series(LineSeries::new(
                        [(from / 60.0, a + b * from), (to / 60.0, a + b * to)],
                        RGBColor(31, 111, 235).stroke_width(2),
                    ))
                    .map_err(|x| e(&x))?
                    .label(format!("trend {:.3} {}/min", j.slope_per_min, c.unit))
                    .legend(|(x, y)| {
                        PathElement::new(
                            [(x, y), (x + 12, y)],
                            RGBColor(31, 111, 235).stroke_width(2),
                        )
                    });
                let start = a + b * from;
                let thr = j.threshold_per_min / 60.0;
                chart
                    .draw_series(DashedLineSeries::new(
                        [(from / 60.0, start), (to / 60.0, start + thr * (to - from))],
                        6,
                        4,
                        RGBColor(207, 34, 46).stroke_width(1),
                    ))
                    .map_err(|x| e(&x))?
                    .label(format!("threshold {} {}/min", j.threshold_per_min, c.unit))
                    .legend(|(x, y)| {
                        PathElement::new([(x, y), (x + 12, y)], RGBColor(207, 34, 46))
                    });
            }
            if !j.evidence.envelope_points.is_empty() {
                let env: Vec<(f64, f64)> = j
                    .evidence
                    .envelope_points
                    .iter()
                    .map(|(t, y)| (t / 60.0, *y))
                    .collect();
                chart
                    .draw_series(LineSeries::new(env, RGBColor(130, 80, 223).stroke_width(1)))
                    .map_err(|x| e(&x))?
                    .label(format!("{:?} envelope", j.evidence.envelope).to_lowercase())
                    .legend(|(x, y)| {
                        PathElement::new([(x, y), (x + 12, y)], RGBColor(130, 80, 223))
                    });
            }
        }
        let line_colours = [
            RGBColor(36, 41, 47),
            RGBColor(191, 135, 0),
            RGBColor(9, 105, 218),
        ];
        for (k, s) in c.series.iter().enumerate() {
            let col = line_colours[k % line_colours.len()];
            let pts = downsample(&s.points, WIDTH as usize);
            chart
                .draw_series(LineSeries::new(
                    pts.into_iter().map(|(t, y)| (t / 60.0, y)),
                    col.stroke_width(1),
                ))
                .map_err(|x| e(&x))?
                .label(s.name.clone())
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 12, y)], col));
        }
        // Checks along the top edge (green passed, red failed) and events as vertical lines.
        chart
            .draw_series(checks.iter().map(|(t, failed)| {
                Circle::new(
                    (*t / 60.0, y1 - pad * 0.4),
                    3,
                    if *failed {
                        RGBColor(207, 34, 46).filled()
                    } else {
                        RGBColor(26, 127, 55).filled()
                    },
                )
            }))
            .map_err(|x| e(&x))?;
        for (t, kind, _) in events
            .iter()
            .filter(|(_, k, _)| k != "start" && k != "finish")
        {
            let col = if kind == "resume" {
                RGBColor(130, 80, 223)
            } else {
                RGBColor(207, 34, 46)
            };
            chart
                .draw_series(DashedLineSeries::new(
                    [(*t / 60.0, y0), (*t / 60.0, y1)],
                    3,
                    3,
                    col.stroke_width(1),
                ))
                .map_err(|x| e(&x))?;
        }
        let plot_w = chart.plotting_area().dim_in_pixel().0 as i32;
        chart
            .configure_series_labels()
            // Just right of the plotting area (coordinates are relative to it).
            .position(SeriesLabelPosition::Coordinate(plot_w + 12, 0))
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(200, 200, 200))
            .label_font(("sans-serif", 11))
            .draw()
            .map_err(|x| e(&x))?;
        root.present().map_err(|x| e(&x))?;
    }
    // The XML prolog is not allowed inside HTML.
    Ok(buf.trim_start_matches(|c| c != '<').replacen(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>",
        "",
        1,
    ))
}

/// The attribution section: the mechanism, then a table of the top growing sites (or the note).
fn attribution_html(h: &mut String, a: &crate::attribution::Attribution) {
    use crate::attribution::{bytes_words, signed_bytes};
    let lines = a.lines();
    let _ = writeln!(
        h,
        "<h2>What grew: attribution</h2>\n<p id=\"attribution-mechanism\">{}</p>",
        esc(lines.first().map_or("", String::as_str))
    );
    if !a.sites.is_empty() {
        h.push_str("<table id=\"attribution\"><tr><th>site or class</th><th>bytes grown</th><th>objects grown</th><th>rate</th><th>above threshold</th></tr>\n");
        for s in &a.sites {
            let _ = writeln!(
                h,
                "<tr><td><code>{}</code></td><td>{}</td><td>{:+}</td><td>{}/min</td><td class=\"{}\">{}</td></tr>",
                esc(&s.site),
                esc(&signed_bytes(s.grown_bytes as f64)),
                s.grown_objects,
                esc(&bytes_words(s.rate_per_min)),
                if s.above_threshold { "leak" } else { "clean" },
                if s.above_threshold { "yes" } else { "no" }
            );
        }
        h.push_str("</table>\n");
    }
    if let Some(n) = &a.note {
        let _ = writeln!(h, "<p id=\"attribution-note\">{}</p>", esc(n));
    }
}

/// The whole page.
pub fn render(r: &Report) -> Result<String> {
    let mut h = String::with_capacity(256 * 1024);
    let col = colour(r.verdict);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>leak-sentinel: {t}</title>\n<style>\
body{{font-family:sans-serif;margin:24px;color:#24292f;max-width:1000px}}\
.verdict{{display:inline-block;padding:6px 14px;border-radius:6px;color:#fff;font-weight:bold;background:{col}}}\
table{{border-collapse:collapse;margin:8px 0}}td,th{{border:1px solid #d0d7de;padding:4px 8px;text-align:left}}\
th{{background:#f6f8fa}}figure{{margin:16px 0}}figcaption{{font-size:13px;color:#57606a}}\
.leak{{color:#cf222e;font-weight:bold}}.clean{{color:#1a7f37}}.inconclusive{{color:#9a6700}}\
</style></head><body>\n<h1>leak-sentinel: {t}</h1>\n<p><span class=\"verdict\" id=\"verdict\">{w}</span></p>\n",
        t = esc(&r.title),
        w = esc(&r.verdict_words),
    );
    if let Some(reason) = &r.reason {
        let _ = writeln!(h, "<p id=\"reason\">{}</p>", esc(reason));
    }
    h.push_str("<table id=\"facts\">\n");
    for (k, v) in &r.facts {
        let _ = writeln!(h, "<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(v));
    }
    h.push_str("</table>\n<h2>Verdicts</h2>\n<table id=\"verdicts\"><tr><th>metric</th><th>verdict</th><th>rate</th><th>interval</th><th>threshold</th><th>unit</th></tr>\n");
    for row in &r.table {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td class=\"{}\">{}</td><td>{}</td><td>[{}, {}]</td><td>{}</td><td>{}</td></tr>",
            esc(&row[0]),
            esc(&row[1]),
            esc(&row[1]),
            esc(&row[2]),
            esc(&row[3]),
            esc(&row[4]),
            esc(&row[5]),
            esc(&row[6])
        );
    }
    h.push_str("</table>\n");
    if !r.findings.is_empty() || !r.suggestions.is_empty() {
        h.push_str("<h2>Diagnosis</h2>\n<ul id=\"findings\">\n");
        for f in &r.findings {
            let _ = writeln!(h, "<li>{}</li>", esc(f));
        }
        h.push_str("</ul>\n<h3>What to do next</h3>\n<ul id=\"suggestions\">\n");
        for s in &r.suggestions {
            let _ = writeln!(h, "<li>{}</li>", esc(s));
        }
        h.push_str("</ul>\n");
    }
    if let Some(a) = &r.attribution {
        attribution_html(&mut h, a);
    }
    for (heading, lines) in &r.sections {
        let _ = writeln!(h, "<h2>{}</h2>\n<ul>", esc(heading));
        for l in lines {
            let _ = writeln!(h, "<li>{}</li>", esc(l));
        }
        h.push_str("</ul>\n");
    }
    h.push_str("<h2>Charts</h2>\n");
    for c in &r.charts {
        let svg = chart_svg(c, r.warmup_s, r.span_s, &r.checks, &r.events)?;
        let drawn = c
            .series
            .first()
            .map_or(0, |s| downsample(&s.points, WIDTH as usize).len());
        let caption = c
            .judgement
            .as_ref()
            .map(|j| format!("{}: {}", j.verdict, j.reason))
            .unwrap_or_default();
        let _ = writeln!(
            h,
            "<figure class=\"chart\" id=\"chart-{m}\" data-metric=\"{m}\" data-points=\"{drawn}\">\n{svg}\n<figcaption>{cap}</figcaption></figure>",
            m = esc(&c.metric),
            cap = esc(&caption)
        );
    }
    if !r.events.is_empty() {
        h.push_str("<h2>Events</h2>\n<table id=\"events\"><tr><th>minute</th><th>event</th><th>detail</th></tr>\n");
        for (t, k, d) in &r.events {
            let _ = writeln!(
                h,
                "<tr><td>{:.1}</td><td>{}</td><td>{}</td></tr>",
                t / 60.0,
                esc(k),
                esc(d)
            );
        }
        h.push_str("</table>\n");
    }
    h.push_str("<p style=\"font-size:12px;color:#57606a\">Generated by leak-sentinel. Grey: warm-up. Dots on top: checks (green passed, red failed). Dashed verticals: events.</p>\n</body></html>\n");
    Ok(h)
}

/// One rate across the nights as an SVG string: a point per night (x = the night's place, its
/// date below), and when the rate changed, the two levels and a dashed line between the nights.
/// `change`: index of the first night at the new level, level before, level after.
pub fn nights_svg(
    title: &str,
    unit: &str,
    points: &[(usize, f64)],
    dates: &[String],
    change: Option<(usize, f64, f64)>,
) -> Result<String> {
    let mut buf = String::new();
    let n = dates.len().max(1) as f64;
    let (mut y0, mut y1) = (0.0_f64, f64::NEG_INFINITY);
    for (_, y) in points {
        y0 = y0.min(*y);
        y1 = y1.max(*y);
    }
    if !y1.is_finite() || y1 <= y0 {
        y1 = y0 + 1.0;
    }
    let pad = (y1 - y0) * 0.08;
    let (y0, y1) = (y0 - pad, y1 + pad);
    let e = |e: &dyn std::fmt::Display| anyhow::anyhow!("drawing {title}: {e}");
    {
        let root = SVGBackend::with_string(&mut buf, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(|x| e(&x))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 16))
            .margin(8)
            .margin_right(LEGEND_W + 8)
            .x_label_area_size(32)
            .y_label_area_size(64)
            .build_cartesian_2d(-0.5..n - 0.5, y0..y1)
            .map_err(|x| e(&x))?;
        let date = |x: &f64| {
            let i = x.round();
            if (x - i).abs() < 1e-6 && i >= 0.0 {
                dates.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        };
        chart
            .configure_mesh()
            .x_desc("night")
            .y_desc(unit)
            .x_labels(dates.len().clamp(2, 12))
            .x_label_formatter(&date)
            .light_line_style(RGBColor(240, 240, 240))
            .draw()
            .map_err(|x| e(&x))?;
        let blue = RGBColor(31, 111, 235);
        let pts: Vec<(f64, f64)> = points.iter().map(|(i, y)| (*i as f64, *y)).collect();
        chart
            .draw_series(LineSeries::new(pts.clone(), blue.stroke_width(1)))
            .map_err(|x| e(&x))?;
        chart
            .draw_series(pts.iter().map(|p| Circle::new(*p, 4, blue.filled())))
            .map_err(|x| e(&x))?
            .label(format!("last check, {unit}"))
            .legend(move |(x, y)| Circle::new((x + 6, y), 4, blue.filled()));
        if let Some((at, before, after)) = change {
            let red = RGBColor(207, 34, 46);
            let x = at as f64 - 0.5;
            chart
                .draw_series(DashedLineSeries::new(
                    [(x, y0), (x, y1)],
                    6,
                    4,
                    red.stroke_width(1),
                ))
                .map_err(|x| e(&x))?
                .label("change")
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 12, y)], red));
            chart
                .draw_series([
                    PathElement::new([(-0.5, before), (x, before)], red.stroke_width(2)),
                    PathElement::new([(x, after), (n - 0.5, after)], red.stroke_width(2)),
                ])
                .map_err(|x| e(&x))?
                .label("levels (medians)")
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 12, y)], red.stroke_width(2)));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .margin(4)
            .legend_area_size(16)
            .border_style(RGBColor(208, 215, 222))
            .background_style(WHITE.mix(0.9))
            .draw()
            .map_err(|x| e(&x))?;
        root.present().map_err(|x| e(&x))?;
    }
    Ok(buf)
}

/// The `history --html` page: the nights' table, the changes in words, one chart per rate.
/// `changes`: rate (`memory`, `fds`, `threads`), the run of the first night at the new level,
/// the levels before and after.
pub fn history_page(
    tag: &str,
    nights: &[crate::history::Night],
    changes: &[(&'static str, String, f64, f64)],
) -> Result<String> {
    use crate::history::sig;
    let mut h = String::with_capacity(64 * 1024);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>leak-sentinel history: {t}</title>\n<style>\
body{{font-family:sans-serif;margin:24px;color:#24292f;max-width:1000px}}\
table{{border-collapse:collapse;margin:8px 0}}td,th{{border:1px solid #d0d7de;padding:4px 8px;text-align:left}}\
th{{background:#f6f8fa}}figure{{margin:16px 0}}.leak{{color:#cf222e;font-weight:bold}}\
</style></head><body>\n<h1>leak-sentinel history: {t}</h1>\n",
        t = esc(tag)
    );
    h.push_str("<h2>Changes</h2>\n<ul id=\"changes\">\n");
    if changes.is_empty() {
        h.push_str("<li>no rate's level changed beyond the nights' scatter</li>\n");
    }
    for (what, run, before, after) in changes {
        let _ = writeln!(
            h,
            "<li>{} growth changed from {} to {} at {}</li>",
            esc(what),
            sig(*before),
            sig(*after),
            esc(run)
        );
    }
    h.push_str("</ul>\n<h2>Nights</h2>\n<table id=\"nights\"><tr><th>date</th><th>run</th><th>outcome</th><th>exit</th><th>MiB/min</th><th>FDs/min</th><th>threads/min</th><th>commit</th></tr>\n");
    let o = |v: Option<f64>| v.map_or("-".to_string(), sig);
    for n in nights {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td class=\"{}\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&n.date),
            esc(&n.run),
            esc(&n.outcome),
            esc(&n.outcome),
            n.exit_code.map_or("-".into(), |c| c.to_string()),
            o(n.memory_mib_per_min),
            o(n.fds_per_min),
            o(n.threads_per_min),
            esc(n.commit.as_deref().unwrap_or("-"))
        );
    }
    h.push_str("</table>\n<h2>Charts</h2>\n");
    let dates: Vec<String> = nights.iter().map(|n| n.date.clone()).collect();
    type Get = fn(&crate::history::Night) -> Option<f64>;
    let rates: [(&str, &str, Get); 3] = [
        ("memory", "MiB/min", |n| n.memory_mib_per_min),
        ("fds", "FDs/min", |n| n.fds_per_min),
        ("threads", "threads/min", |n| n.threads_per_min),
    ];
    for (what, unit, get) in rates {
        let points: Vec<(usize, f64)> = nights
            .iter()
            .enumerate()
            .filter_map(|(i, n)| get(n).map(|v| (i, v)))
            .collect();
        if points.is_empty() {
            continue;
        }
        let change = changes.iter().find(|c| c.0 == what).and_then(|c| {
            let at = nights.iter().position(|n| n.run == c.1)?;
            Some((at, c.2, c.3))
        });
        let svg = nights_svg(
            &format!("{what} growth per night"),
            unit,
            &points,
            &dates,
            change,
        )?;
        let _ = writeln!(h, "<figure id=\"chart-{what}\">{svg}</figure>");
    }
    h.push_str("</body></html>\n");
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downsampling_keeps_extremes_and_order() {
        let pts: Vec<(f64, f64)> = (0..100_000)
            .map(|i| {
                (
                    f64::from(i),
                    if i == 50_000 {
                        99.0
                    } else {
                        (f64::from(i) * 0.01).sin()
                    },
                )
            })
            .collect();
        let d = downsample(&pts, 500);
        assert!(d.len() <= 4 * 500 + 4);
        assert!(d.iter().any(|p| p.1 == 99.0), "the spike survives");
        assert!(d.windows(2).all(|w| w[1].0 > w[0].0));
        assert_eq!(downsample(&pts[..100], 500).len(), 100);
    }
}
