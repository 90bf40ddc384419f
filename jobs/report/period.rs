//! The period view of `csjobs report --from DATE --to DATE` (monitoring.md, "the period view"):
//! per shop a table of its days (revenue, checks, that day's profile, the deviation, the days
//! beyond `watch.threshold` marked), a chart of revenue by day against the profile, and per
//! register and day its checks and revenue. One self-contained page, like today's.

use chrono::{Datelike, NaiveDate};
use maud::{html, Markup};
use rust_decimal::{prelude::ToPrimitive, Decimal};

use super::chart;
use crate::monitoring::{
    hours::WEEKDAY_NAMES,
    html as pieces,
    period::{Daily, ShopDay},
    revenue::{percent, Shop},
    sections::money,
    time_text, Moment,
};

/// One shop's part of the period page.
pub struct ShopPeriod<'a> {
    pub shop: &'a Shop,
    pub days: Vec<ShopDay>,
    /// Its registers (cash, name), in cash order.
    pub registers: Vec<(i32, String)>,
}

/// What the period page shows.
pub struct PeriodPage<'a> {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub now: Moment,
    pub host: String,
    pub threshold: Decimal,
    pub shops: Vec<ShopPeriod<'a>>,
    pub daily: &'a Daily,
}

const CSS: &str = "\
body { font-family: system-ui, sans-serif; margin: 1.2em 2em; color: #1f2328; }
h1 { font-size: 1.5em; } h2 { margin-top: 1.4em; border-bottom: 1px solid #ddd; } h3 { margin: 0.2em 0; }
table { border-collapse: collapse; margin: 0.4em 0; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.55em; text-align: left; font-size: 0.9em; }
th { background: #f3f4f6; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.beyond td { background: #ffebe9; color: #cf222e; font-weight: bold; }
article.shop { margin: 1.2em 0; padding: 0.6em 0.8em; border: 1px solid #ddd; border-radius: 6px; overflow-x: auto; }
article.shop.has-beyond { border-color: #cf222e; }
.muted { color: #666; }
nav a { margin-right: 1em; }
svg.daily { background: #fff; border: 1px solid #ddd; }
svg.daily .grid { stroke: #eee; } svg.daily .axis { font: 11px sans-serif; fill: #666; }
svg.daily polyline { fill: none; } svg.daily .revenue { stroke: #1f6feb; stroke-width: 2; }
svg.daily .profile { stroke: #6e7781; stroke-width: 3; }
.tables { display: flex; flex-wrap: wrap; gap: 1.2em; align-items: flex-start; }
svg.daily circle.day { fill: #1f6feb; } svg.daily circle.beyond { fill: #cf222e; }
.legend span { margin-right: 1.2em; font-size: 0.9em; }
.legend .revenue { color: #1f6feb; } .legend .profile { color: #8c959f; } .legend .beyond { color: #cf222e; }
";

fn weekday(d: NaiveDate) -> &'static str {
    WEEKDAY_NAMES[d.weekday().num_days_from_monday() as usize]
}

/// Revenue by day (a line with a dot per day, red beyond the threshold) against the profile
/// of each day (dashed), as inline SVG.
fn chart(shop: i32, title: &str, days: &[ShopDay]) -> Markup {
    const W: f64 = 760.0;
    const H: f64 = 220.0;
    const L: f64 = 64.0;
    const R: f64 = 28.0;
    const T: f64 = 12.0;
    const B: f64 = 30.0;
    let f = |d: Decimal| d.to_f64().unwrap_or(0.0);
    let max = days.iter().flat_map(|d| [f(d.figures.revenue), d.profile.map_or(0.0, f)]).fold(0.0, f64::max);
    // The same round axis as today's chart.
    let (top, step) = chart::axis(max);
    let levels: Vec<f64> =
        (0..).map(|k| f64::from(k) * step).take_while(|v| *v <= top + step / 2.0).collect();
    let n = days.len().max(2) as f64 - 1.0;
    let x = |i: usize| L + (W - L - R) * i as f64 / n;
    let y = |v: f64| T + (H - T - B) * (1.0 - (v / top).clamp(-0.05, 1.0));
    let pts = |vals: Vec<(usize, f64)>| {
        vals.iter().map(|(i, v)| format!("{:.1},{:.1}", x(*i), y(*v))).collect::<Vec<_>>().join(" ")
    };
    let revenue = pts(days.iter().enumerate().map(|(i, d)| (i, f(d.figures.revenue))).collect());
    // The profile as a short dash at each day that has one: days without a profile are not
    // joined across.
    let half = ((W - L - R) / n / 2.0 * 0.8).min(10.0);
    let profile: Vec<(f64, f64)> =
        days.iter().enumerate().filter_map(|(i, d)| d.profile.map(|p| (x(i), y(f(p))))).collect();
    let step = (days.len() / 10).max(1);
    html! {
        svg.daily data-shop=(shop) xmlns="http://www.w3.org/2000/svg" viewBox=(format!("0 0 {W} {H}"))
            width=(W) height=(H) role="img" {
            title { (title) }
            @for v in levels {
                line.grid x1=(L) y1=(format!("{:.1}", y(v))) x2=(W - R) y2=(format!("{:.1}", y(v))) {}
                text.axis x=(L - 6.0) y=(format!("{:.1}", y(v) + 4.0)) text-anchor="end" { (chart::short(v)) }
            }
            @for (i, d) in days.iter().enumerate().step_by(step) {
                text.axis x=(format!("{:.1}", x(i))) y=(H - 10.0) text-anchor="middle" { (d.date.format("%d.%m")) }
            }
            @for (px, py) in &profile {
                line.profile x1=(format!("{:.1}", px - half)) y1=(format!("{py:.1}")) x2=(format!("{:.1}", px + half)) y2=(format!("{py:.1}")) {}
            }
            polyline.revenue points=(revenue) {}
            @for (i, d) in days.iter().enumerate() {
                circle class=(if d.beyond { "beyond" } else { "day" }) data-date=(d.date.to_string())
                    cx=(format!("{:.1}", x(i))) cy=(format!("{:.1}", y(f(d.figures.revenue)))) r=(if d.beyond { "4" } else { "2.5" }) {}
            }
        }
    }
}

fn shop_section(p: &PeriodPage, sp: &ShopPeriod) -> Markup {
    let s = sp.shop;
    let place =
        [s.city.as_deref(), s.address.as_deref()].into_iter().flatten().collect::<Vec<_>>().join(", ");
    let heading = if place.is_empty() {
        format!("Shop {} — {}", s.shop, s.name)
    } else {
        format!("Shop {} — {} · {place}", s.shop, s.name)
    };
    let total: Decimal = sp.days.iter().map(|d| d.figures.revenue).sum();
    let checks: i64 = sp.days.iter().map(|d| d.figures.checks).sum();
    let beyond = sp.days.iter().filter(|d| d.beyond).count();
    html! {
        article class=(if beyond > 0 { "shop has-beyond" } else { "shop" }) id=(format!("shop-{}", s.shop)) data-shop=(s.shop) {
            h3 { (heading) }
            p.muted {
                "revenue " b { (money(total)) } " · checks " b { (checks) } " · " (beyond) " day(s) beyond the threshold"
            }
            (chart(s.shop, &heading, &sp.days))
            div.tables {
            table.days {
                thead { tr { th { "date" } th { "day" } th { "revenue" } th { "checks" } th { "profile" } th { "deviation" } } }
                tbody {
                    @for d in &sp.days {
                        tr class=(if d.beyond { "day beyond" } else { "day" }) data-date=(d.date.to_string()) {
                            td { (d.date) } td { (weekday(d.date)) }
                            td.num { (money(d.figures.revenue)) } td.num { (d.figures.checks) }
                            td.num { (d.profile.map_or("-".into(), money)) }
                            td.num { (d.deviation.map_or("-".into(), percent)) }
                        }
                    }
                }
            }
            @if !sp.registers.is_empty() {
                table.registers-by-day {
                    thead { tr {
                        th { "date" }
                        @for (cash, name) in &sp.registers { th data-cash=(cash) { (cash) " " (name) } }
                    } }
                    tbody {
                        @for d in &sp.days {
                            tr data-date=(d.date.to_string()) {
                                td { (d.date) }
                                @for (cash, _) in &sp.registers {
                                    @let x = p.daily.by_cash.get(&(s.shop, *cash, d.date)).copied().unwrap_or_default();
                                    td.num data-cash=(cash) data-checks=(x.checks) data-revenue=(format!("{:.2}", x.revenue)) {
                                        (x.checks) " / " (money(x.revenue))
                                    }
                                }
                            }
                        }
                    }
                }
            }
            }
        }
    }
}

/// The whole period page.
pub fn html(p: &PeriodPage) -> String {
    let title = format!("csjobs report — {} to {} — {}", p.from, p.to, p.host);
    let keep = percent(Decimal::ONE - p.threshold);
    let body = html! {
        p.muted {
            "Per shop and day: revenue (sales − returns), checks, the profile of that day (the median of the same "
            "weekdays before it) and the deviation; days below " (keep) " of their profile are marked. "
            "Today counts up to " (time_text(&p.now)) "; later days are left out."
        }
        p.legend {
            span.revenue { "━ revenue" } span.profile { "▬ profile of the day" } span.beyond { "● beyond the threshold" }
        }
        nav { @for sp in &p.shops { a href=(format!("#shop-{}", sp.shop.shop)) { (sp.shop.shop) } } }
        @for sp in &p.shops { (shop_section(p, sp)) }
        p.muted { "Written by " code { "csjobs report" } " on " (p.host) " at " (time_text(&p.now)) "." }
    };
    pieces::page(&title, &[CSS], body)
}
