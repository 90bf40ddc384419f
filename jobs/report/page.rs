//! The report page: one HTML document with its one style sheet inline, no script and nothing
//! fetched from anywhere (it works opened from disk and behind any web server). Top down:
//! health and problems, open alerts, revenue per shop (a summary table, then per shop the
//! chart and its registers coloured by state), connections, queues, jobs, error messages.

use std::fmt::Write;

use chrono::{DateTime, FixedOffset, Timelike};
use rust_decimal::Decimal;

use super::{chart, Series};
use crate::{
    revenue_watch::{alerts::describe, job::percent, read::AlertRow, ShopVerdict, Verdict},
    status::{
        render::{self, html_escape, Section, STATE_CSS},
        time_text, Register, RegisterState, Status,
    },
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
article.shop { margin: 1.2em 0; padding: 0.6em 0.8em; border: 1px solid #ddd; border-radius: 6px; }
article.shop.verdict-low { border-color: #cf222e; box-shadow: 0 0 0 1px #cf222e; }
.figures span { margin-right: 1.4em; } .verdict-low .deviation { color: #cf222e; font-weight: bold; }
.legend span { margin-right: 1.2em; font-size: 0.9em; }
.muted { color: #666; }
";

fn money(d: Decimal) -> String {
    let d = d.round_dp(2);
    let s = format!("{:.2}", d);
    // Thousands separated by a thin space: 1 234 567.89.
    let (int, frac) = s.split_once('.').unwrap_or((&s, "00"));
    let (sign, digits) = int.strip_prefix('-').map_or(("", int), |x| ("-", x));
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push('\u{202f}');
        }
        grouped.push(c);
    }
    format!("{sign}{grouped}.{frac}")
}

fn section_table(out: &mut String, s: &Section) {
    let _ = write!(out, "<table class=\"{}\">\n<thead><tr>", s.title);
    for h in s.headers {
        let _ = write!(out, "<th>{h}</th>");
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for (row, bad) in s.rows.iter().zip(&s.bad) {
        out.push_str(if *bad { "<tr class=\"bad\">" } else { "<tr>" });
        for cell in row {
            let _ = write!(out, "<td>{}</td>", html_escape(cell));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
    for n in &s.notes {
        let _ = writeln!(out, "<p class=\"bad\">{}</p>", html_escape(n));
    }
}

fn t(m: &DateTime<FixedOffset>) -> String {
    html_escape(&time_text(m))
}

/// The whole page.
pub fn html(p: &Page) -> String {
    let s = p.status;
    let now = s.checked_at;
    let title = format!("csjobs report — {} — {}", p.host, time_text(&now));
    let mut out = String::with_capacity(64 * 1024);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{}</title>\n\
         <style>\n{CSS}{STATE_CSS}{}</style>\n</head>\n<body>\n<h1>{}</h1>\n",
        html_escape(&title),
        chart::CSS,
        html_escape(&title)
    );
    let open_alerts = p.alerts.len();
    let low = p.shops.as_ref().map_or(0, |v| v.iter().filter(|x| x.verdict.verdict == Verdict::Low).count());
    let healthy = s.healthy && open_alerts == 0;
    let _ = writeln!(
        out,
        "<p><span id=\"health\" class=\"health {}\">{}</span> <span class=\"muted\">csjobs {} · {} \
         problem(s) · {} open alert(s) · {} shop(s) with low revenue</span></p>",
        if healthy { "healthy" } else { "unhealthy" },
        if healthy { "healthy" } else { "needs attention" },
        s.csjobs_version,
        s.problems.len(),
        open_alerts,
        low
    );
    if !s.problems.is_empty() {
        out.push_str("<ul class=\"problems\">\n");
        for pr in &s.problems {
            let _ = writeln!(out, "<li>{}</li>", html_escape(pr));
        }
        out.push_str("</ul>\n");
    }
    out.push_str(
        "<nav><a href=\"#alerts\">alerts</a><a href=\"#revenue\">revenue</a><a href=\"#connections\">connections</a>\
         <a href=\"#queues\">queues</a><a href=\"#jobs\">jobs</a><a href=\"#errors\">error messages</a></nav>\n",
    );

    // Open alerts.
    let _ = writeln!(out, "<section id=\"alerts\">\n<h2>Open alerts ({open_alerts})</h2>");
    if p.alerts.is_empty() {
        out.push_str("<p class=\"muted\">none</p>\n");
    } else {
        out.push_str(
            "<table class=\"alerts\">\n<thead><tr><th>kind</th><th>shop</th><th>cash</th><th>what</th>\
             <th>since</th><th>last sent</th></tr></thead>\n<tbody>\n",
        );
        for a in &p.alerts {
            let at = |m: &chrono::DateTime<chrono::Utc>| t(&m.with_timezone(now.offset()));
            let _ = writeln!(
                out,
                "<tr class=\"alert\" data-kind=\"{0}\" data-shop=\"{1}\"><td>{0}</td><td class=\"num\"><a \
                 href=\"#shop-{1}\">{1}</a></td><td class=\"num\">{2}</td><td>{3}</td><td class=\"time\">{4}</td>\
                 <td class=\"time\">{5}</td></tr>",
                html_escape(&a.kind),
                a.shop,
                a.cash.map_or(String::new(), |c| c.to_string()),
                html_escape(&describe(a)),
                at(&a.opened_at),
                a.last_sent_at.as_ref().map_or("not yet".into(), at)
            );
        }
        out.push_str("</tbody>\n</table>\n");
    }
    out.push_str("</section>\n");

    // Revenue per shop.
    out.push_str("<section id=\"revenue\">\n<h2>Revenue today</h2>\n");
    match &p.shops {
        Err(why) => {
            let _ = writeln!(out, "<p class=\"bad\">revenue could not be read: {}</p>", html_escape(why));
        }
        Ok(shops) => {
            let keep = percent(Decimal::ONE - p.threshold);
            let _ = writeln!(
                out,
                "<p class=\"legend\"><span class=\"today\">━ today</span><span class=\"profile\">━ profile (the \
                 median of the same weekdays)</span><span class=\"alert-line\">╍ alert line ({keep} of the \
                 profile)</span></p>"
            );
            out.push_str(
                "<table class=\"shops\">\n<thead><tr><th>shop</th><th>name</th><th>place</th><th>today</th>\
                 <th>profile</th><th>deviation</th><th>verdict</th><th>registers</th></tr></thead>\n<tbody>\n",
            );
            for sp in shops {
                let v = sp.verdict;
                let bad = sp.registers.iter().filter(|r| r.state != RegisterState::Ok).count();
                let _ = writeln!(
                    out,
                    "<tr class=\"verdict-{}\"><td class=\"num\"><a href=\"#shop-{}\">{}</a></td><td>{}</td><td>{}</td>\
                     <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td>\
                     <td class=\"num\">{}{}</td></tr>",
                    v.verdict.name(),
                    v.shop,
                    v.shop,
                    html_escape(&v.name),
                    html_escape(&v.place()),
                    money(v.today),
                    v.profile.map_or("-".into(), money),
                    v.deviation.map_or("-".into(), percent),
                    v.verdict.name(),
                    sp.registers.len(),
                    if bad > 0 { format!(" ({bad} not ok)") } else { String::new() }
                );
            }
            out.push_str("</tbody>\n</table>\n");
            let now_minute = now.time().num_seconds_from_midnight() / 60;
            for sp in shops {
                let v = sp.verdict;
                let heading = format!("Shop {} — {}{}", v.shop, v.name, {
                    let pl = v.place();
                    if pl.is_empty() {
                        String::new()
                    } else {
                        format!(" · {pl}")
                    }
                });
                let _ = writeln!(
                    out,
                    "<article class=\"shop verdict-{}\" id=\"shop-{}\" data-shop=\"{}\">\n<h3>{}</h3>",
                    v.verdict.name(),
                    v.shop,
                    v.shop,
                    html_escape(&heading)
                );
                let _ = writeln!(
                    out,
                    "<p class=\"figures\"><span>today <b>{}</b></span><span>profile {}</span><span \
                     class=\"deviation\">deviation {}</span><span>verdict <b>{}</b></span></p>",
                    money(v.today),
                    v.profile.map_or("-".into(), money),
                    v.deviation.map_or("-".into(), percent),
                    v.verdict.name()
                );
                out.push_str(&chart::svg(v.shop, &heading, &sp.series, now_minute));
                out.push_str(&render::register_table_html(sp.registers.iter().copied()));
                out.push_str("</article>\n");
            }
        }
    }
    out.push_str("</section>\n");

    for (id, section) in
        [("connections", render::connections(s)), ("queues", render::queues(s)), ("jobs", render::jobs(s))]
    {
        let mut title = section.title.to_string();
        title[..1].make_ascii_uppercase();
        let _ = writeln!(out, "<section id=\"{id}\">\n<h2>{title}</h2>");
        section_table(&mut out, &section);
        out.push_str("</section>\n");
    }

    out.push_str("<section id=\"errors\">\n");
    match s.errors_3d {
        None => out
            .push_str("<h2>Error messages</h2>\n<p class=\"bad\">the cash server DB could not be read</p>\n"),
        Some(n) => {
            let _ = writeln!(out, "<h2>Error messages of the last 3 days ({n})</h2>");
            if !s.latest_errors.is_empty() {
                out.push_str("<table class=\"errors\">\n<thead><tr><th>at</th><th>job</th><th>subject</th><th>message</th></tr></thead>\n<tbody>\n");
                for e in &s.latest_errors {
                    let _ = writeln!(
                        out,
                        "<tr><td class=\"time\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                        t(&e.created_at),
                        html_escape(&e.job),
                        html_escape(e.subject.as_deref().unwrap_or("")),
                        html_escape(&e.message)
                    );
                }
                out.push_str("</tbody>\n</table>\n");
            }
        }
    }
    out.push_str("</section>\n");
    let _ = writeln!(
        out,
        "<p class=\"muted\">Written by <code>csjobs report</code> on {} at {}. Registers over {} (since {}).</p>",
        html_escape(&p.host),
        t(&now),
        html_escape(&s.window),
        t(&s.window_start)
    );
    out.push_str("</body>\n</html>\n");
    out
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
