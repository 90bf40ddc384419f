//! ASTU export (выгрузка продаж в АСТУ, the accounting system): one `;`-separated file per
//! shift, rules.md §5. This module owns the file's layout (name, header, columns, number
//! and time formats); `export` reads the shift from the database, writes the file safely
//! and marks the shift exported; `state` owns the shifts' export flags (every statement
//! that sets them); `job` is the `export-astu` command.

pub mod export;
pub mod job;
pub mod state;

use std::path::PathBuf;

use chrono::NaiveDateTime;
use rust_decimal::Decimal;

use crate::core::csv::{self, CsvError, Separator};

/// The columns of every ASTU file, in order: its header line.
pub const COLUMNS: [&str; 13] = [
    "shop",
    "cash",
    "shift",
    "workshiftid",
    "docnum",
    "doctype",
    "time_end",
    "ware",
    "dept",
    "quantity",
    "price",
    "discount",
    "total",
];

/// The shift a file is about (смена).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShiftHead {
    pub workshiftid: i64,
    pub shop: i32,
    pub cash: i32,
    pub shiftnum: i32,
}

impl ShiftHead {
    /// `<shopcode>/<cashcode>-<shiftnum>-<workshiftid>.csv`, relative to the outbox.
    pub fn relative_path(&self) -> PathBuf {
        PathBuf::from(self.shop.to_string())
            .join(format!("{}-{}-{}.csv", self.cash, self.shiftnum, self.workshiftid))
    }
}

/// One goods item of a closed `sale`/`return` document: one line of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemLine {
    pub docnum: i32,
    pub doctype: String,
    pub time_end: NaiveDateTime,
    pub ware: String,
    pub dept: i32,
    pub quantity: Option<Decimal>,
    pub price: Option<Decimal>,
    pub discount: Option<Decimal>,
    pub total: Option<Decimal>,
}

/// The whole file: header, then one line per item in the order given (the query orders by
/// `docnum`, then position), `;`-separated, `\n` line ends, UTF-8 (`core::csv`: a text field
/// holding `;`, a quote or a line break is quoted, so a line is always one record of 13
/// fields).
pub fn render(shift: &ShiftHead, items: &[ItemLine]) -> Result<Vec<u8>, CsvError> {
    let [shop, cash, shiftnum] = [shift.shop, shift.cash, shift.shiftnum].map(|n| n.to_string());
    let workshiftid = shift.workshiftid.to_string();
    let mut w = csv::Writer::new(Vec::with_capacity(128 + items.len() * 96), Separator::Semicolon);
    w.record(COLUMNS)?;
    for i in items {
        w.record([
            shop.as_str(),
            &cash,
            &shiftnum,
            &workshiftid,
            &i.docnum.to_string(),
            &i.doctype,
            &i.time_end.format("%Y-%m-%dT%H:%M:%S").to_string(),
            &i.ware,
            &i.dept.to_string(),
            &fixed(i.quantity, 3),
            &fixed(i.price, 2),
            &fixed(i.discount, 2),
            &fixed(i.total, 2),
        ])?;
    }
    w.finish()
}

/// A decimal with exactly `digits` fraction digits (`.` separator); empty when null. The
/// database columns already have that scale, so this never rounds a stored value.
pub fn fixed(d: Option<Decimal>, digits: usize) -> String {
    match d {
        Some(d) => format!("{d:.digits$}"),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f").unwrap()
    }

    fn d(s: &str) -> Option<Decimal> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn a_file_is_header_and_fixed_format_lines() {
        let head = ShiftHead { workshiftid: 501, shop: 8, cash: 17, shiftnum: 412 };
        let items = vec![
            ItemLine {
                docnum: 1,
                doctype: "sale".into(),
                time_end: at("2026-11-20T09:04:05.250"),
                ware: "4601234567890".into(),
                dept: 3,
                quantity: d("2"),
                price: d("89.9"),
                discount: d("10"),
                total: d("169.80"),
            },
            ItemLine {
                docnum: 2,
                doctype: "return".into(),
                time_end: at("2026-11-20T23:59:59"),
                ware: "a;b \"c\"".into(),
                dept: 0,
                quantity: d("0.125"),
                price: d("1000000.00"),
                discount: None,
                total: d("125000.00"),
            },
        ];
        let text = String::from_utf8(render(&head, &items).unwrap()).unwrap();
        assert_eq!(
            text,
            "shop;cash;shift;workshiftid;docnum;doctype;time_end;ware;dept;quantity;price;discount;total\n\
             8;17;412;501;1;sale;2026-11-20T09:04:05;4601234567890;3;2.000;89.90;10.00;169.80\n\
             8;17;412;501;2;return;2026-11-20T23:59:59;\"a;b \"\"c\"\"\";0;0.125;1000000.00;;125000.00\n"
        );
        assert_eq!(head.relative_path(), PathBuf::from("8/17-412-501.csv"));
    }

    #[test]
    fn a_shift_without_items_is_just_the_header() {
        let head = ShiftHead { workshiftid: 1, shop: 9, cash: 21, shiftnum: 1 };
        assert_eq!(render(&head, &[]).unwrap(), format!("{}\n", COLUMNS.join(";")).into_bytes());
    }
}
