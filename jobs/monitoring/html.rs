//! The pieces of HTML the monitoring pages share (`status --format html`, `report`), as maud
//! templates: every value is escaped where it is written, so a shop name or an error message
//! with `<` or `&` is text, never markup. A page is self-contained: one inline style sheet, no
//! script, nothing fetched from anywhere.

use maud::{html, Markup, PreEscaped, DOCTYPE};

use super::{
    sections::{checklist_row, money, Section, CHECKLIST},
    Register,
};

/// The colours of the register states.
pub const STATE_CSS: &str = "\
tr.state-ok td.state { color: #1a7f37; }
tr.state-stale { background: #fff4c2; }
tr.state-errors { background: #ffd7d5; }
tr.state-duplicate { background: #ff9a9a; font-weight: bold; }
tr.state-never { background: #e6e6e6; color: #555; }
";

/// A whole page: `<title>` and `<h1>` are `title`; `css` our own style sheets (constants of
/// this crate, never outside text), joined into the one `<style>`.
pub fn page(title: &str, css: &[&str], body: Markup) -> String {
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                style { (PreEscaped(css.concat())) }
            }
            body {
                h1 { (title) }
                (body)
            }
        }
    };
    let mut s = page.into_string();
    s.push('\n');
    s
}

fn checklist_class(column: &str) -> Option<&'static str> {
    match column {
        "shop" | "cash" => Some("num"),
        "state" => Some("state"),
        "last_contact" | "last_sale" => Some("time"),
        _ => None,
    }
}

/// The register checklist as a table, each row of class `state-<state>` (coloured by
/// [`STATE_CSS`]), in the order given, then each register's checks and revenue of today.
pub fn register_table<'a>(registers: impl IntoIterator<Item = &'a Register>) -> Markup {
    html! {
        table.registers {
            thead { tr { @for c in CHECKLIST { th { (c) } } th { "checks_today" } th { "revenue_today" } } }
            tbody {
                @for r in registers {
                    tr class=(format!("state-{}", r.state.name())) data-cash=(r.cash) {
                        @for (name, value) in CHECKLIST.iter().zip(checklist_row(r)) {
                            td class=[checklist_class(name)] { (value) }
                        }
                        td.num.checks { (r.checks_today) }
                        td.num.revenue { (money(r.revenue_today)) }
                    }
                }
            }
        }
    }
}

/// A section as a table (rows marked bad in red), and its notes under it.
pub fn section_table(s: &Section) -> Markup {
    html! {
        table class=(s.title) {
            thead { tr { @for h in s.headers { th { (h) } } } }
            tbody {
                @for (row, bad) in s.rows.iter().zip(&s.bad) {
                    tr class=[bad.then_some("bad")] { @for cell in row { td { (cell) } } }
                }
            }
        }
        @for n in &s.notes { p.bad { (n) } }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_everywhere() {
        let s = Section {
            title: "jobs",
            headers: &["a"],
            rows: vec![vec!["<script>alert('x')</script> & \"q\"".into()]],
            bad: vec![true],
            notes: vec!["<b>".into()],
        };
        let h = section_table(&s).into_string();
        assert!(h.contains("&lt;script&gt;alert('x')&lt;/script&gt; &amp; &quot;q&quot;"), "{h}");
        assert!(h.contains("<p class=\"bad\">&lt;b&gt;</p>"), "{h}");
        assert!(h.contains("<tr class=\"bad\">"), "{h}");
        let p = page("a < b", &["body { }"], html! { p { "x" } });
        assert!(p.contains("<title>a &lt; b</title>") && p.contains("<h1>a &lt; b</h1>"), "{p}");
    }
}
