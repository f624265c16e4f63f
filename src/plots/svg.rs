//! Drawing a [`Plot`] as SVG, by pipe itself.
//!
//! No chart library and no script: a plot is a few kilobytes of SVG that
//! any browser (or an image viewer, or a Markdown file) shows offline. Each
//! template is one function here: lines and points with numeric or
//! categorical x (linear, simple, scatter, smooth), a matrix of counts per
//! series (confusion, confusion_normalized), horizontal bars grouped by
//! category. Every chart has a title, axes with round ticks, axis labels
//! and a legend; points carry a `<title>`, which browsers show on hover.
//! All text goes through [`escape`].

use std::fmt::Write;

use super::request::Template;
use super::{data::format_number, Plot, Series, Value};

/// Series colours (Tableau 10, as Vega's default scheme).
pub const COLORS: [&str; 10] = [
    "#4c78a8", "#f58518", "#e45756", "#72b7b2", "#54a24b", "#eeca3b", "#b279a2", "#ff9da6",
    "#9d755d", "#bab0ac",
];

/// Text made safe for HTML and SVG, in content and in quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// How to draw an x axis of numbers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// A log scale (for values that span decades, all positive).
    pub log_x: bool,
}

const W: f64 = 560.0;
const H: f64 = 340.0;
const LEFT: f64 = 64.0;
const TOP: f64 = 36.0;
const LEGEND: f64 = 220.0;
const PAD: f64 = 8.0;

/// The plot as one `<svg>` element (nothing when it has no data).
pub fn draw(plot: &Plot, options: Options) -> Option<String> {
    let series = plot.series();
    if series.iter().all(|s| s.points.is_empty()) {
        return None;
    }
    Some(if plot.template.is_confusion() {
        confusion(plot, series)
    } else if plot.template.is_bar() {
        bars(plot, series)
    } else {
        lines(plot, series, options)
    })
}

/// Round tick values covering `lo..hi`, about `n` of them.
fn ticks(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    let span = (hi - lo).abs().max(f64::EPSILON);
    let raw = span / n as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|m| m * mag)
        .find(|s| span / s <= n as f64)
        .unwrap_or(10.0 * mag);
    let start = (lo / step).ceil() * step;
    let mut out = Vec::new();
    let mut t = start;
    while t <= hi + step * 1e-9 {
        out.push(if t.abs() < step * 1e-9 { 0.0 } else { t });
        t += step;
    }
    out
}

/// `lo..hi` widened to round numbers (and never empty).
fn nice(lo: f64, hi: f64) -> (f64, f64) {
    if lo == hi {
        let pad = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
        return (lo - pad, hi + pad);
    }
    let t = ticks(lo, hi, 6);
    let step = if t.len() > 1 { t[1] - t[0] } else { hi - lo };
    ((lo / step).floor() * step, (hi / step).ceil() * step)
}

fn tick_text(v: f64) -> String {
    let s = format_number((v * 1e9).round() / 1e9);
    if s.contains('e') {
        format!("{v:.2e}")
    } else {
        s
    }
}

fn header(out: &mut String, width: f64, height: f64, title: &str) {
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="plot" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="{t}" font-family="sans-serif" font-size="12">"#,
        t = escape(title)
    );
    let _ = write!(
        out,
        r#"<text x="{LEFT}" y="20" font-size="15" font-weight="bold">{}</text>"#,
        escape(title)
    );
}

fn legend(out: &mut String, series: &[Series], x: f64, y: f64) {
    if series.len() < 2 && series.iter().all(|s| s.note.is_none()) {
        return;
    }
    let _ = write!(out, r#"<g class="legend">"#);
    for (i, s) in series.iter().enumerate() {
        let yy = y + i as f64 * 18.0;
        let mut name = s.name.clone();
        if let Some(note) = &s.note {
            name = format!("{name} ({note})");
        }
        // A long name keeps its end: where files differ (`…/roc/test.json: tpr`).
        let chars = name.chars().count();
        let shown: String = if chars > 34 {
            ['…']
                .into_iter()
                .chain(name.chars().skip(chars - 33))
                .collect()
        } else {
            name.clone()
        };
        let _ = write!(
            out,
            r#"<rect x="{x}" y="{}" width="12" height="12" fill="{}"/><text x="{}" y="{}"><title>{}</title>{}</text>"#,
            yy - 10.0,
            COLORS[i % COLORS.len()],
            x + 18.0,
            yy,
            escape(&name),
            escape(&shown)
        );
    }
    out.push_str("</g>");
}

fn axis_labels(out: &mut String, x_label: &str, y_label: &str, width: f64) {
    let _ = write!(
        out,
        r#"<text x="{}" y="{}" text-anchor="middle">{}</text><text transform="translate(16 {}) rotate(-90)" text-anchor="middle">{}</text>"#,
        LEFT + width / 2.0,
        TOP + H + 40.0,
        escape(x_label),
        TOP + H / 2.0,
        escape(y_label)
    );
}

/// A scale from values to pixels.
struct Scale {
    lo: f64,
    hi: f64,
    from: f64,
    to: f64,
    log: bool,
}

impl Scale {
    fn at(&self, v: f64) -> f64 {
        let (v, lo, hi) = if self.log {
            (v.log10(), self.lo.log10(), self.hi.log10())
        } else {
            (v, self.lo, self.hi)
        };
        self.from + (v - lo) / (hi - lo) * (self.to - self.from)
    }
}

fn lines(plot: &Plot, series: &[Series], options: Options) -> String {
    // x: numbers, or categories in order of first appearance.
    let numeric_x = series
        .iter()
        .flat_map(|s| &s.points)
        .all(|p| matches!(p.x, Value::Num(_)));
    let mut categories: Vec<String> = Vec::new();
    if !numeric_x {
        for p in series.iter().flat_map(|s| &s.points) {
            let t = p.x.text();
            if !categories.contains(&t) {
                categories.push(t);
            }
        }
    }
    let xs: Vec<f64> = series
        .iter()
        .flat_map(|s| &s.points)
        .filter_map(|p| p.x.number())
        .collect();
    let ys: Vec<f64> = series
        .iter()
        .flat_map(|s| &s.points)
        .filter_map(|p| p.y.number())
        .collect();
    let log = options.log_x && numeric_x && xs.iter().all(|x| *x > 0.0);
    let (x_lo, x_hi) = if !numeric_x {
        (-0.5, categories.len() as f64 - 0.5)
    } else if log {
        let lo = xs.iter().cloned().fold(f64::INFINITY, f64::min);
        let hi = xs.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        (
            10f64.powf(lo.log10().floor()),
            10f64.powf(hi.log10().ceil().max(lo.log10().floor() + 1.0)),
        )
    } else {
        nice(
            xs.iter().cloned().fold(f64::INFINITY, f64::min),
            xs.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
        )
    };
    let (y_lo, y_hi) = nice(
        ys.iter().cloned().fold(f64::INFINITY, f64::min),
        ys.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
    );
    // Inside the frame by PAD, so that points on the bounds stay whole.
    let sx = Scale {
        lo: x_lo,
        hi: x_hi,
        from: LEFT + PAD,
        to: LEFT + W - PAD,
        log,
    };
    let sy = Scale {
        lo: y_lo,
        hi: y_hi,
        from: TOP + H - PAD,
        to: TOP + PAD,
        log: false,
    };
    let x_of = |v: &Value| -> f64 {
        match v {
            Value::Num(n) if numeric_x => sx.at(*n),
            other => sx.at(categories
                .iter()
                .position(|c| *c == other.text())
                .unwrap_or(0) as f64),
        }
    };
    let mut out = String::new();
    header(&mut out, LEFT + W + LEGEND, TOP + H + 50.0, &plot.title);
    // Grid and ticks.
    out.push_str(r##"<g class="axes" stroke="#ddd">"##);
    let y_ticks = ticks(y_lo, y_hi, 6);
    for t in &y_ticks {
        let y = sy.at(*t);
        let _ = write!(
            out,
            r#"<line x1="{LEFT}" x2="{}" y1="{y:.1}" y2="{y:.1}"/>"#,
            LEFT + W
        );
    }
    let x_ticks: Vec<(f64, String)> = if !numeric_x {
        let every = categories.len().div_ceil(12).max(1);
        categories
            .iter()
            .enumerate()
            .filter(|(i, _)| i % every == 0)
            .map(|(i, c)| (sx.at(i as f64), c.clone()))
            .collect()
    } else if log {
        let mut t = x_lo;
        let mut v = Vec::new();
        while t <= x_hi * 1.0001 {
            v.push((sx.at(t), tick_text(t)));
            t *= 10.0;
        }
        v
    } else {
        ticks(x_lo, x_hi, 8)
            .into_iter()
            .map(|t| (sx.at(t), tick_text(t)))
            .collect()
    };
    for (x, _) in &x_ticks {
        let _ = write!(
            out,
            r#"<line x1="{x:.1}" x2="{x:.1}" y1="{TOP}" y2="{}"/>"#,
            TOP + H
        );
    }
    out.push_str("</g>");
    let _ = write!(
        out,
        r##"<rect x="{LEFT}" y="{TOP}" width="{W}" height="{H}" fill="none" stroke="#888"/>"##
    );
    out.push_str(r##"<g class="ticks" fill="#333">"##);
    for t in &y_ticks {
        let _ = write!(
            out,
            r#"<text x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
            LEFT - 6.0,
            sy.at(*t) + 4.0,
            tick_text(*t)
        );
    }
    for (x, label) in &x_ticks {
        let shown: String = label.chars().take(14).collect();
        let _ = write!(
            out,
            r#"<text x="{x:.1}" y="{}" text-anchor="middle">{}</text>"#,
            TOP + H + 18.0,
            escape(&shown)
        );
    }
    out.push_str("</g>");
    axis_labels(&mut out, &plot.x_label, &plot.y_label, W);
    for (i, s) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let pts: Vec<(f64, f64, &super::Point)> = s
            .points
            .iter()
            .filter_map(|p| Some((x_of(&p.x), sy.at(p.y.number()?), p)))
            .collect();
        let path = |pts: &[(f64, f64)]| -> String {
            let mut d = String::new();
            for (j, (x, y)) in pts.iter().enumerate() {
                let _ = write!(d, "{}{x:.1},{y:.1}", if j == 0 { "M" } else { "L" });
            }
            d
        };
        let _ = write!(out, r#"<g class="series" data-name="{}">"#, escape(&s.name));
        let line: Vec<(f64, f64)> = match plot.template {
            Template::Scatter => Vec::new(),
            Template::Smooth => smooth(&pts.iter().map(|(x, y, _)| (*x, *y)).collect::<Vec<_>>()),
            _ => pts.iter().map(|(x, y, _)| (*x, *y)).collect(),
        };
        if line.len() > 1 {
            let _ = write!(
                out,
                r#"<path d="{}" fill="none" stroke="{color}" stroke-width="2"/>"#,
                path(&line)
            );
        }
        let (radius, fill, opacity) = match plot.template {
            Template::Linear => (3.0, color, 1.0),
            Template::Scatter => (3.5, color, 0.8),
            Template::Smooth => (2.5, color, 0.35),
            _ => (4.0, "transparent", 1.0),
        };
        // Hover values: every point, but for long plain lines only a
        // sample, so that the page stays small.
        let every = if matches!(plot.template, Template::Simple) {
            pts.len().div_ceil(300).max(1)
        } else {
            1
        };
        let labelled = pts.len() <= 40;
        for (x, y, p) in pts.iter().step_by(every) {
            let _ = write!(
                out,
                r#"<circle cx="{x:.1}" cy="{y:.1}" r="{radius}" fill="{fill}" fill-opacity="{opacity}"><title>{}</title></circle>"#,
                escape(&format!(
                    "{}\n{}: {}\n{}: {}",
                    p.label.as_ref().unwrap_or(&s.name),
                    plot.x_label,
                    p.x.text(),
                    plot.y_label,
                    p.y.text()
                ))
            );
            if let Some(label) = p.label.as_ref().filter(|_| labelled) {
                let _ = write!(
                    out,
                    r##"<text x="{:.1}" y="{:.1}" font-size="10" fill="#555">{}</text>"##,
                    x + 6.0,
                    y - 6.0,
                    escape(label)
                );
            }
        }
        out.push_str("</g>");
    }
    legend(&mut out, series, LEFT + W + 16.0, TOP + 12.0);
    out.push_str("</svg>");
    out
}

/// A moving average over about a twentieth of the points.
fn smooth(pts: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let half = (pts.len() / 40).max(1);
    (0..pts.len())
        .map(|i| {
            let lo = i.saturating_sub(half);
            let hi = (i + half + 1).min(pts.len());
            let mean = pts[lo..hi].iter().map(|p| p.1).sum::<f64>() / (hi - lo) as f64;
            (pts[i].0, mean)
        })
        .collect()
}

/// Classes in a readable order: numbers by value, then text.
fn classes<'a>(values: impl Iterator<Item = &'a Value>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for v in values {
        let t = v.text();
        if !out.contains(&t) {
            out.push(t);
        }
    }
    out.sort_by(|a, b| match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => x.total_cmp(&y),
        (Ok(_), Err(_)) => std::cmp::Ordering::Less,
        (Err(_), Ok(_)) => std::cmp::Ordering::Greater,
        _ => a.cmp(b),
    });
    out
}

fn confusion(plot: &Plot, series: &[Series]) -> String {
    let normalized = plot.template == Template::ConfusionNormalized;
    let all = || series.iter().flat_map(|s| &s.points);
    let predicted = classes(all().map(|p| &p.x));
    let actual = classes(all().map(|p| &p.y));
    let size = 300.0_f64;
    let cw = size / predicted.len().max(1) as f64;
    let ch = size / actual.len().max(1) as f64;
    let panel = size + 110.0;
    let width = LEFT + 40.0 + panel * series.len() as f64;
    let mut out = String::new();
    header(&mut out, width.max(420.0), TOP + size + 100.0, &plot.title);
    for (k, s) in series.iter().enumerate() {
        let ox = LEFT + 40.0 + panel * k as f64;
        let oy = TOP + 30.0;
        let count = |a: &str, p: &str| -> f64 {
            s.points
                .iter()
                .filter(|pt| pt.x.text() == p && pt.y.text() == a)
                .filter_map(|pt| pt.count)
                .sum::<f64>()
                + 0.0
        };
        let row_total = |a: &str| -> f64 { predicted.iter().map(|p| count(a, p)).sum() };
        let value = |a: &str, p: &str| -> f64 {
            let c = count(a, p);
            if normalized {
                let t = row_total(a);
                if t > 0.0 {
                    c / t
                } else {
                    0.0
                }
            } else {
                c
            }
        };
        let max = actual
            .iter()
            .flat_map(|a| predicted.iter().map(move |p| (a, p)))
            .map(|(a, p)| value(a, p))
            .fold(0.0, f64::max)
            .max(f64::MIN_POSITIVE);
        let _ = write!(
            out,
            r#"<g class="matrix" data-name="{}"><text x="{}" y="{}" text-anchor="middle" font-weight="bold">{}</text>"#,
            escape(&s.name),
            ox + size / 2.0,
            oy - 10.0,
            escape(&s.name)
        );
        for (i, a) in actual.iter().enumerate() {
            for (j, p) in predicted.iter().enumerate() {
                let v = value(a, p);
                let shade = v / max;
                let (x, y) = (ox + j as f64 * cw, oy + i as f64 * ch);
                let fill = format!(
                    "rgb({},{},{})",
                    (247.0 - shade * 239.0) as u8,
                    (251.0 - shade * 203.0) as u8,
                    (255.0 - shade * 148.0) as u8
                );
                let text = if normalized {
                    format!("{v:.3}")
                } else {
                    format_number(v)
                };
                let ink = if shade > 0.5 { "#fff" } else { "#222" };
                let _ = write!(
                    out,
                    r##"<rect class="cell" x="{x:.1}" y="{y:.1}" width="{cw:.1}" height="{ch:.1}" fill="{fill}" stroke="#fff"><title>{}</title></rect><text x="{:.1}" y="{:.1}" text-anchor="middle" fill="{ink}">{}</text>"##,
                    escape(&format!(
                        "{}\n{} {a}, {} {p}: {text}",
                        s.name, plot.y_label, plot.x_label
                    )),
                    x + cw / 2.0,
                    y + ch / 2.0 + 4.0,
                    escape(&text)
                );
            }
        }
        for (j, p) in predicted.iter().enumerate() {
            let _ = write!(
                out,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                ox + j as f64 * cw + cw / 2.0,
                oy + size + 16.0,
                escape(p)
            );
        }
        for (i, a) in actual.iter().enumerate() {
            let _ = write!(
                out,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
                ox - 6.0,
                oy + i as f64 * ch + ch / 2.0 + 4.0,
                escape(a)
            );
        }
        let _ = write!(
            out,
            r#"<text x="{}" y="{}" text-anchor="middle">{}</text><text transform="translate({} {}) rotate(-90)" text-anchor="middle">{}</text></g>"#,
            ox + size / 2.0,
            oy + size + 36.0,
            escape(&plot.x_label),
            ox - 30.0,
            oy + size / 2.0,
            escape(&plot.y_label)
        );
    }
    out.push_str("</svg>");
    out
}

fn bars(plot: &Plot, series: &[Series]) -> String {
    let mut categories: Vec<String> = Vec::new();
    for p in series.iter().flat_map(|s| &s.points) {
        let t = p.y.text();
        if !categories.contains(&t) {
            categories.push(t);
        }
    }
    let values: Vec<f64> = series
        .iter()
        .flat_map(|s| &s.points)
        .filter_map(|p| p.x.number())
        .collect();
    let lo = values.iter().cloned().fold(0.0, f64::min);
    let hi = values.iter().cloned().fold(0.0, f64::max);
    let (lo, hi) = nice(lo, hi);
    let band = 22.0 * series.len() as f64 + 8.0;
    let height = band * categories.len() as f64;
    let left = 150.0;
    let sx = Scale {
        lo,
        hi,
        from: left,
        to: left + W - 80.0,
        log: false,
    };
    let mut out = String::new();
    header(
        &mut out,
        left + W + LEGEND - 80.0,
        TOP + height + 60.0,
        &plot.title,
    );
    for t in ticks(lo, hi, 6) {
        let x = sx.at(t);
        let _ = write!(
            out,
            r##"<line x1="{x:.1}" x2="{x:.1}" y1="{TOP}" y2="{}" stroke="#ddd"/><text x="{x:.1}" y="{}" text-anchor="middle">{}</text>"##,
            TOP + height,
            TOP + height + 16.0,
            tick_text(t)
        );
    }
    for (c, cat) in categories.iter().enumerate() {
        let y0 = TOP + c as f64 * band + 4.0;
        let shown: String = cat.chars().take(22).collect();
        let _ = write!(
            out,
            r#"<text x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
            left - 6.0,
            y0 + band / 2.0,
            escape(&shown)
        );
        for (i, s) in series.iter().enumerate() {
            let Some(v) = s
                .points
                .iter()
                .find(|p| p.y.text() == *cat)
                .and_then(|p| p.x.number())
            else {
                continue;
            };
            let (a, b) = (sx.at(0f64.max(lo)), sx.at(v));
            let _ = write!(
                out,
                r#"<rect class="bar" x="{:.1}" y="{:.1}" width="{:.1}" height="18" fill="{}"><title>{}</title></rect>"#,
                a.min(b),
                y0 + i as f64 * 22.0,
                (b - a).abs().max(0.5),
                COLORS[i % COLORS.len()],
                escape(&format!("{}\n{cat}: {}", s.name, format_number(v)))
            );
        }
    }
    let _ = write!(
        out,
        r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
        left + (W - 80.0) / 2.0,
        TOP + height + 40.0,
        escape(&plot.x_label)
    );
    legend(&mut out, series, left + W - 64.0, TOP + 12.0);
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_ticks() {
        assert_eq!(
            ticks(0.0, 1.0, 6),
            [0.0, 0.2, 0.4, 0.6000000000000001, 0.8, 1.0]
        );
        assert_eq!(nice(0.13, 0.97), (0.0, 1.0));
    }

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape(r#"<script>"a"&'b'"#),
            "&lt;script&gt;&quot;a&quot;&amp;&#39;b&#39;"
        );
    }
}
