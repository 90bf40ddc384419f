//! Terminal tables for people (`status`, `revenue-watch`, `reconcile`): columns padded to the
//! widest cell by display width, so Cyrillic names and wide characters line up; no borders,
//! two spaces between columns, `indent` spaces before the first. Colours, when asked for, paint a whole
//! row after padding, so an escape never shifts a column.

use comfy_table::{presets::NOTHING, CellAlignment, ContentArrangement, Table};

/// `headers` and `rows` as a table, each line after `indent` spaces; the columns in `right`
/// aligned right (numbers); `colour` the ANSI start sequence for data row `i`, if any.
pub fn render(
    indent: usize,
    headers: &[&str],
    rows: &[Vec<String>],
    right: &[usize],
    colour: impl Fn(usize) -> Option<&'static str>,
) -> String {
    let mut t = Table::new();
    t.load_style(NOTHING).set_content_arrangement(ContentArrangement::Disabled).set_header(headers.to_vec());
    // One row, one line: a line break or an escape inside a cell (a sender's host name, a
    // database's multi-line error) would split the row or drive the terminal.
    for r in rows {
        t.add_row(r.iter().map(|c| one_line(c)).collect::<Vec<_>>());
    }
    for (i, c) in t.column_iter_mut().enumerate() {
        c.set_padding((0, 2));
        if right.contains(&i) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    let mut out = String::new();
    for (i, line) in t.lines().enumerate() {
        let line = format!("{:indent$}{}", "", line.trim_end());
        match i.checked_sub(1).and_then(&colour) {
            Some(code) => out.push_str(&format!("{code}{line}\x1b[0m\n")),
            None => {
                out.push_str(&line);
                out.push('\n');
            }
        }
    }
    out
}

/// `cell` with every control character (line breaks, tabs, ESC) shown as a space.
fn one_line(cell: &str) -> String {
    cell.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use unicode_width::UnicodeWidthStr;

    fn col(line: &str, needle: char) -> usize {
        let at = line.find(needle).unwrap();
        line[..at].width()
    }

    #[test]
    fn columns_line_up_by_display_width() {
        let t = render(
            2,
            &["NAME", "N"],
            &[
                vec!["Касса".into(), "x".into()],
                vec!["ab".into(), "y".into()],
                vec!["收银台".into(), "z".into()],
            ],
            &[],
            |_| None,
        );
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "  NAME    N");
        assert_eq!(col(lines[1], 'x'), 10);
        assert_eq!(col(lines[2], 'y'), 10);
        assert_eq!(col(lines[3], 'z'), 10, "wide characters take two columns: {t}");
    }

    #[test]
    fn a_line_break_or_an_escape_in_a_cell_stays_on_its_row() {
        let rows = vec![vec!["pos\nevil\r\x1b[2J".to_string(), "1".into()], vec!["b".into(), "2".into()]];
        let t = render(2, &["HOST", "N"], &rows, &[], |i| Some(["\x1b[31m", "\x1b[33m"][i]));
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3, "a header and one line per row: {t:?}");
        assert!(
            lines[1].starts_with("\x1b[31m  pos evil  [2J") && lines[2].starts_with("\x1b[33m  b"),
            "{t:?}"
        );
    }

    #[test]
    fn numbers_align_right_and_colour_wraps_the_padded_row() {
        let t = render(
            2,
            &["A", "SUM"],
            &[vec!["a".into(), "5".into()], vec!["b".into(), "12345".into()]],
            &[1],
            |i| (i == 0).then_some("\x1b[31m"),
        );
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[1], "\x1b[31m  a      5\x1b[0m");
        assert_eq!(lines[2], "  b  12345");
    }
}
