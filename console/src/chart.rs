//! Line charts drawn on the server as inline SVG (no script, no library):
//! one series over the sampler's 15-minute window, the newest point at the
//! right edge, the scale from 0 to the series' maximum, and its latest and
//! largest values written beside it.

use std::fmt::Write;

use crate::html::esc;
use crate::sampler::WINDOW;

const W: f64 = 600.0;
const H: f64 = 120.0;
/// Room on the left for the scale's labels.
const LEFT: f64 = 48.0;

/// A figure: caption with `label`, the latest and the largest value in
/// `unit`, and the SVG (`id`) of `points` (ms since the epoch, value) ending
/// at `now_ms`. Without points it says that sampling has not produced any yet.
pub fn line(id: &str, label: &str, unit: &str, points: &[(i64, f64)], now_ms: i64) -> String {
    let Some(&(_, last)) = points.last() else {
        return format!(
            "<figure class=\"chart\"><figcaption>{}</figcaption><p class=\"notice info\" id=\"{}-empty\">No samples yet: the console samples the cluster every console.sample.interval.ms.</p></figure>",
            esc(label),
            esc(id)
        );
    };
    let max = points.iter().map(|p| p.1).fold(0.0_f64, f64::max);
    let scale = if max > 0.0 { max } else { 1.0 };
    let window = WINDOW.as_millis() as f64;
    let start = now_ms as f64 - window;
    let mut pts = String::new();
    for (t, v) in points {
        let x = LEFT + ((*t as f64 - start) / window).clamp(0.0, 1.0) * (W - LEFT);
        let y = H - 4.0 - (v / scale) * (H - 16.0);
        let _ = write!(pts, "{x:.1},{y:.1} ");
    }
    format!(
        "<figure class=\"chart\"><figcaption>{label}: <b id=\"{id}-last\">{last}</b> {unit} now, \
at most <b id=\"{id}-max\">{max}</b> {unit} in the last 15 minutes</figcaption>\
<svg id=\"{id}\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {W} {H}\" width=\"{W}\" height=\"{H}\" role=\"img\" aria-label=\"{label}\">\
<line x1=\"{LEFT}\" y1=\"{bottom}\" x2=\"{W}\" y2=\"{bottom}\" stroke=\"#99a\"/>\
<line x1=\"{LEFT}\" y1=\"12\" x2=\"{W}\" y2=\"12\" stroke=\"#dde\"/>\
<text x=\"2\" y=\"16\" font-size=\"10\">{max}</text><text x=\"2\" y=\"{bottom}\" font-size=\"10\">0</text>\
<text x=\"{LEFT}\" y=\"{H}\" font-size=\"9\">-15 min</text><text x=\"{now_x}\" y=\"{H}\" font-size=\"9\">now</text>\
<polyline fill=\"none\" stroke=\"#1f6fb2\" stroke-width=\"1.5\" points=\"{}\"/></svg></figure>",
        pts.trim_end(),
        label = esc(label),
        id = esc(id),
        unit = esc(unit),
        last = fmt(last),
        max = fmt(max),
        bottom = H - 4.0,
        now_x = W - 20.0,
    )
}

/// A rate or count short enough for a label: integers as such, else one decimal.
fn fmt(v: f64) -> String {
    if v.fract() == 0.0 || v.abs() >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_across_the_window() {
        let now = 10_000_000;
        let w = WINDOW.as_millis() as i64;
        let svg = line(
            "c<",
            "Produce",
            "msg/s",
            &[(now - w, 0.0), (now - w / 2, 50.0), (now, 100.0)],
            now,
        );
        assert!(svg.contains("id=\"c&lt;\""), "{svg}");
        // Left edge at the bottom, middle half way up, right edge at the top.
        assert!(
            svg.contains("points=\"48.0,116.0 324.0,64.0 600.0,12.0\""),
            "{svg}"
        );
        assert!(svg.contains(">100</b> msg/s now"), "{svg}");
        let empty = line("c", "Produce", "msg/s", &[], now);
        assert!(!empty.contains("<svg") && empty.contains("No samples yet"));
        assert_eq!(fmt(2.24), "2.2");
        assert_eq!(fmt(3.0), "3");
    }
}
