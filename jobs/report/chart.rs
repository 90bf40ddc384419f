//! A shop's revenue chart as inline SVG (no script, no external resource): the day from 0:00
//! to 24:00 across, cumulative revenue up; today in blue up to now, the profile in grey, the
//! alert line dashed red, now as a vertical line. Numbers are drawn from the series only.

use std::fmt::Write;

use maud::{html, Markup};
use rust_decimal::{prelude::ToPrimitive, Decimal};

use super::{Point, Series};

const WIDTH: f64 = 560.0;
const HEIGHT: f64 = 220.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 28.0;

/// A round upper bound and step for the revenue axis: steps of 1, 2, 2.5 or 5 × 10ⁿ, at most
/// five of them up to the first step at or above the maximum.
pub(super) fn axis(max: f64) -> (f64, f64) {
    if max <= 0.0 {
        return (100.0, 25.0);
    }
    let raw = max / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step =
        [1.0, 2.0, 2.5, 5.0, 10.0].into_iter().map(|k| k * mag).find(|s| *s >= raw).unwrap_or(10.0 * mag);
    ((max / step).ceil() * step, step)
}

/// An amount for an axis label: 12 500 → "12.5k", 3 000 000 → "3M".
pub(super) fn short(v: f64) -> String {
    let (x, unit) = match v.abs() {
        a if a >= 1e6 => (v / 1e6, "M"),
        a if a >= 1e3 => (v / 1e3, "k"),
        _ => (v, ""),
    };
    let s = format!("{x:.1}");
    format!("{}{unit}", s.trim_end_matches('0').trim_end_matches('.'))
}

fn points(p: &[Point], x: impl Fn(u32) -> f64, y: impl Fn(Decimal) -> f64) -> String {
    let mut out = String::new();
    for (i, &(m, v)) in p.iter().enumerate() {
        let _ = write!(out, "{}{:.1},{:.1}", if i == 0 { "" } else { " " }, x(m), y(v));
    }
    out
}

fn f1(v: f64) -> String {
    format!("{v:.1}")
}

/// The chart of shop `shop` (`title` for screen readers and the tooltip), now at `now_minute`.
/// Every SVG element is closed explicitly (`<line …></line>`): inside `<svg>` an HTML parser
/// would otherwise nest what follows.
pub fn svg(shop: i32, title: &str, s: &Series, now_minute: u32) -> Markup {
    let max = s.today.iter().chain(&s.profile).map(|(_, v)| v.to_f64().unwrap_or(0.0)).fold(0.0, f64::max);
    let (top, step) = axis(max);
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let x = |m: u32| LEFT + plot_w * f64::from(m.min(1440)) / 1440.0;
    let y = |v: Decimal| TOP + plot_h * (1.0 - (v.to_f64().unwrap_or(0.0) / top).clamp(-0.05, 1.0));
    let mut levels = Vec::new();
    let mut v = 0.0;
    while v <= top + step / 2.0 {
        levels.push(v);
        v += step;
    }
    html! {
        svg.chart data-shop=(shop) xmlns="http://www.w3.org/2000/svg" viewBox=(format!("0 0 {WIDTH} {HEIGHT}"))
            width=(WIDTH) height=(HEIGHT) role="img" {
            title { (title) }
            @for v in &levels {
                @let gy = TOP + plot_h * (1.0 - v / top);
                line.grid x1=(LEFT) y1=(f1(gy)) x2=(f1(WIDTH - RIGHT)) y2=(f1(gy)) {}
                text.axis x=(f1(LEFT - 6.0)) y=(f1(gy + 4.0)) text-anchor="end" { (short(*v)) }
            }
            @for h in (0..=24).step_by(3) {
                @let gx = x(h * 60);
                line.grid x1=(f1(gx)) y1=(TOP) x2=(f1(gx)) y2=(f1(TOP + plot_h)) {}
                text.axis x=(f1(gx)) y=(f1(HEIGHT - 8.0)) text-anchor="middle" { (h) ":00" }
            }
            line.now x1=(f1(x(now_minute))) y1=(TOP) x2=(f1(x(now_minute))) y2=(f1(TOP + plot_h)) {}
            @if !s.profile.is_empty() {
                polyline."alert-line" points=(points(&s.alert_line, x, y)) {}
                polyline.profile points=(points(&s.profile, x, y)) {}
            }
            polyline.today points=(points(&s.today, x, y)) {}
        }
    }
}

/// The chart's styles, for the page's one `<style>`.
pub const CSS: &str = "\
svg.chart { background: #fff; border: 1px solid #ddd; }
svg.chart .grid { stroke: #eee; stroke-width: 1; }
svg.chart .axis { font: 11px sans-serif; fill: #666; }
svg.chart .now { stroke: #999; stroke-width: 1; stroke-dasharray: 2 3; }
svg.chart polyline { fill: none; stroke-linejoin: round; }
svg.chart .today { stroke: #1f6feb; stroke-width: 2.5; }
svg.chart .profile { stroke: #8c959f; stroke-width: 1.5; }
svg.chart .alert-line { stroke: #cf222e; stroke-width: 1.5; stroke-dasharray: 6 4; }
.legend .today { color: #1f6feb; } .legend .profile { color: #8c959f; } .legend .alert-line { color: #cf222e; }
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_axis_ends_on_a_round_step_above_the_maximum() {
        assert_eq!(axis(0.0), (100.0, 25.0));
        assert_eq!(axis(9_000.0), (10_000.0, 2_000.0));
        assert_eq!(axis(10_000.0), (10_000.0, 2_000.0));
        assert_eq!(axis(123_456.0), (125_000.0, 25_000.0));
        let (top, step) = axis(123_456.0);
        assert!(top >= 123_456.0 && top <= 123_456.0 + step, "{top} {step}");
        assert!([1.0, 2.0, 2.5, 5.0]
            .iter()
            .any(|k| (step / 10f64.powf(step.log10().floor()) - k).abs() < 1e-9));
    }

    #[test]
    fn labels_are_short() {
        assert_eq!(short(0.0), "0");
        assert_eq!(short(2_500.0), "2.5k");
        assert_eq!(short(3_000_000.0), "3M");
        assert_eq!(short(750.0), "750");
    }

    #[test]
    fn curves_are_drawn_only_when_there_is_a_profile() {
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        let s = Series { today: vec![(0, d("0")), (720, d("500"))], profile: vec![], alert_line: vec![] };
        let svg1 = svg(7, "Shop <7>", &s, 720).into_string();
        assert!(svg1.contains("class=\"today\"") && !svg1.contains("class=\"profile\""));
        assert!(svg1.contains("<title>Shop &lt;7&gt;</title>"));
        let s = Series {
            profile: vec![(0, d("0")), (1440, d("1000"))],
            alert_line: vec![(0, d("0")), (1440, d("600"))],
            ..s
        };
        let svg2 = svg(7, "Shop 7", &s, 720).into_string();
        assert!(svg2.contains("class=\"profile\"") && svg2.contains("class=\"alert-line\""));
        // The today line ends at noon: halfway across the plot.
        assert!(svg2.contains(&format!("{:.1},", LEFT + (WIDTH - LEFT - RIGHT) / 2.0)));
    }
}
