//! The report page: one HTML document with its one style sheet inline, no script and nothing
//! fetched from anywhere (it works opened from disk and behind any web server), written from
//! maud templates (every value escaped where it is written). Top down: health and problems,
//! open alerts, revenue per shop (a summary table, then per shop the chart and its registers
//! coloured by state), connections, queues, jobs, error messages.

use chrono::{DateTime, FixedOffset, Timelike};
use maud::{html, Markup};
use rust_decimal::Decimal;

use super::{chart, Series};
use crate::monitoring::{
    alert_rows::{describe, AlertRow},
    html::{self as pieces, STATE_CSS},
    revenue::{percent, ShopVerdict, Verdict},
    sections,
    sections::money,
    time_text, Register, RegisterState, Status,
};

/// One shop's part of the page.
pub struct ShopPanel<'a> {
    pub verdict: &'a ShopVerdict,
    pub series: Series,
    pub registers: Vec<&'a Register>,
}

/// What the page shows.
pub struct Page<'a> {
    pub status: &'a Status,
    /// The shops, or why revenue could not be read.
    pub shops: Result<Vec<ShopPanel<'a>>, String>,
    /// The open alerts (table `alert`).
    pub alerts: Vec<AlertRow>,
    pub threshold: Decimal,
    pub host: String,
}

const CSS: &str = "\
body { font-family: system-ui, sans-serif; margin: 1.2em 2em; color: #1f2328; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ddd; }
h3 { margin: 0.2em 0; }
table { border-collapse: collapse; margin: 0.4em 0; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.55em; text-align: left; font-size: 0.92em; }
th { background: #f3f4f6; }
td.num { text-align: right; font-variant-numeric: tabular-nums; } td.time { white-space: nowrap; }
.health { font-size: 1.15em; padding: 0.4em 0.8em; display: inline-block; border-radius: 4px; }
.health.healthy { background: #dafbe1; color: #1a7f37; } .health.unhealthy { background: #ffebe9; color: #cf222e; }
ul.problems li { color: #cf222e; }
tr.bad td { color: #cf222e; }
nav a { margin-right: 1em; }
article.shop { margin: 1.2em 0; padding: 0.6em 0.8em; border: 1px solid #ddd; border-radius: 6px; overflow-x: auto; }
article.shop.verdict-low { border-color: #cf222e; box-shadow: 0 0 0 1px #cf222e; }
.figures span { margin-right: 1.4em; } .verdict-low .deviation { color: #cf222e; font-weight: bold; }
.legend span { margin-right: 1.2em; font-size: 0.9em; }
.muted { color: #666; }
";

fn t(m: &DateTime<FixedOffset>) -> String {
    time_text(m)
}

fn alerts_section(p: &Page, now: &DateTime<FixedOffset>) -> Markup {
    let at = |m: &chrono::DateTime<chrono::Utc>| t(&m.with_timezone(now.offset()));
    html! {
        section #alerts {
            h2 { "Open alerts (" (p.alerts.len()) ")" }
            @if p.alerts.is_empty() {
                p.muted { "none" }
            } @else {
                table.alerts {
                    thead { tr { th { "kind" } th { "shop" } th { "cash" } th { "what" } th { "since" } th { "last sent" } } }
                    tbody {
                        @for a in &p.alerts {
                            tr.alert data-kind=(a.kind) data-shop=(a.shop) {
                                td { (a.kind) }
                                td.num { a href=(format!("#shop-{}", a.shop)) { (a.shop) } }
                                td.num { @if let Some(c) = a.cash { (c) } }
                                td { (describe(a)) }
                                td.time { (at(&a.opened_at)) }
                                td.time { (a.last_sent_at.as_ref().map_or("not yet".into(), at)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn shop_heading(v: &ShopVerdict) -> String {
    let pl = v.place();
    if pl.is_empty() {
        format!("Shop {} — {}", v.shop, v.name)
    } else {
        format!("Shop {} — {} · {pl}", v.shop, v.name)
    }
}

fn revenue_section(p: &Page, now: &DateTime<FixedOffset>) -> Markup {
    let now_minute = now.time().num_seconds_from_midnight() / 60;
    html! {
        section #revenue {
            h2 { "Revenue today" }
            @match &p.shops {
                Err(why) => { p.bad { "revenue could not be read: " (why) } }
                Ok(shops) => {
                    p.legend {
                        span.today { "━ today" }
                        span.profile { "━ profile (the median of the same weekdays)" }
                        span."alert-line" { "╍ alert line (" (percent(Decimal::ONE - p.threshold)) " of the profile)" }
                    }
                    table.shops {
                        thead { tr {
                            th { "shop" } th { "name" } th { "place" } th { "today" } th { "checks" } th { "profile" }
                            th { "deviation" } th { "verdict" } th { "registers" }
                        } }
                        tbody {
                            @for sp in shops {
                                @let v = sp.verdict;
                                @let bad = sp.registers.iter().filter(|r| r.state != RegisterState::Ok).count();
                                tr class=(format!("verdict-{}", v.verdict.name())) {
                                    td.num { a href=(format!("#shop-{}", v.shop)) { (v.shop) } }
                                    td { (v.name) }
                                    td { (v.place()) }
                                    td.num { (money(v.today)) }
                                    td.num { (p.status.shops.iter().find(|x| x.shop == v.shop).map_or(0, |t| t.checks_today)) }
                                    td.num { (v.profile.map_or("-".into(), money)) }
                                    td.num { (v.deviation.map_or("-".into(), percent)) }
                                    td { (v.verdict.name()) }
                                    td.num { (sp.registers.len()) @if bad > 0 { " (" (bad) " not ok)" } }
                                }
                            }
                        }
                    }
                    @for sp in shops {
                        @let v = sp.verdict;
                        @let heading = shop_heading(v);
                        @let today = p.status.shops.iter().find(|x| x.shop == v.shop);
                        article class=(format!("shop verdict-{}", v.verdict.name())) id=(format!("shop-{}", v.shop)) data-shop=(v.shop) {
                            h3 { (heading) }
                            p.figures {
                                span { "today " b { (money(v.today)) } }
                                @if let Some(t) = today {
                                    span.checks { "checks " b { (t.checks_today) } }
                                }
                                span { "profile " (v.profile.map_or("-".into(), money)) }
                                span.deviation { "deviation " (v.deviation.map_or("-".into(), percent)) }
                                span { "verdict " b { (v.verdict.name()) } }
                            }
                            @if let Some(t) = today {
                                p.hours.muted { "hours " (t.hours_text()) " · " (if t.open_now { "open now" } else { "closed now" }) }
                            }
                            (chart::svg(v.shop, &heading, &sp.series, now_minute))
                            (pieces::register_table(sp.registers.iter().copied()))
                        }
                    }
                }
            }
        }
    }
}

fn errors_section(s: &Status) -> Markup {
    html! {
        section #errors {
            @match s.errors_3d {
                None => {
                    h2 { "Error messages" }
                    p.bad { "the cash server DB could not be read" }
                }
                Some(n) => {
                    h2 { "Error messages of the last 3 days (" (n) ")" }
                    @if !s.latest_errors.is_empty() {
                        table.errors {
                            thead { tr { th { "at" } th { "job" } th { "subject" } th { "message" } } }
                            tbody {
                                @for e in &s.latest_errors {
                                    tr {
                                        td.time { (t(&e.created_at)) }
                                        td { (e.job) }
                                        td { (e.subject.as_deref().unwrap_or("")) }
                                        td { (e.message) }
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

/// The whole page.
pub fn html(p: &Page) -> String {
    let s = p.status;
    let now = s.checked_at;
    let title = format!("csjobs report — {} — {}", p.host, time_text(&now));
    let open_alerts = p.alerts.len();
    let low = p.shops.as_ref().map_or(0, |v| v.iter().filter(|x| x.verdict.verdict == Verdict::Low).count());
    let healthy = s.healthy && open_alerts == 0;
    let body = html! {
        p {
            span #health class=(if healthy { "health healthy" } else { "health unhealthy" }) {
                (if healthy { "healthy" } else { "needs attention" })
            }
            " "
            span.muted {
                "csjobs " (s.csjobs_version) " · " (s.problems.len()) " problem(s) · " (open_alerts)
                " open alert(s) · " (low) " shop(s) with low revenue"
            }
        }
        @if !s.problems.is_empty() {
            ul.problems { @for pr in &s.problems { li { (pr) } } }
        }
        nav {
            a href="#alerts" { "alerts" } a href="#revenue" { "revenue" } a href="#connections" { "connections" }
            a href="#queues" { "queues" } a href="#jobs" { "jobs" } a href="#errors" { "error messages" }
        }
        (alerts_section(p, &now))
        (revenue_section(p, &now))
        @for (id, section) in [("connections", sections::connections(s)), ("queues", sections::queues(s)), ("jobs", sections::jobs(s))] {
            section id=(id) {
                h2 { (capitalised(section.title)) }
                (pieces::section_table(&section))
            }
        }
        (errors_section(s))
        p.muted {
            "Written by " code { "csjobs report" } " on " (p.host) " at " (t(&now)) ". Registers over "
            (s.window) " (since " (t(&s.window_start)) ")."
        }
    };
    pieces::page(&title, &[CSS, STATE_CSS, chart::CSS], body)
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_groups_thousands() {
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        assert_eq!(money(d("1234567.891")), "1\u{202f}234\u{202f}567.89");
        assert_eq!(money(d("-1000")), "-1\u{202f}000.00");
        assert_eq!(money(d("999.5")), "999.50");
        assert_eq!(money(d("0")), "0.00");
    }
}
