//! Sales reconciliation (сверка продаж), rules.md §6: per shift of a cash, per shop and day,
//! per department of a shift.
//!
//! read: one SQL query per report (the `.sql` files beside this module) sums money exactly
//! in the database and hands it over in kopecks (quantities in thousandths) → plan: the rows
//! become a polars DataFrame, the derived columns (revenue = sales − returns, drawer = cash
//! revenue + cash_in − cash_out) are integer column arithmetic, so no f64 ever touches money →
//! write: one writer per format (`write`). The column names and order of each report are
//! fixed here, once.

pub mod job;
pub mod write;

use polars::prelude::*;

/// What a column holds, which decides how each writer shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An integer (ids, counts, codes).
    Int,
    /// Money in kopecks (i64), shown with exactly 2 fraction digits.
    Money,
    /// A quantity in thousandths (i64), shown with exactly 3 fraction digits.
    Quantity,
    /// A time `YYYY-MM-DDTHH:MM:SS` or a date `YYYY-MM-DD`, or null.
    Text,
    /// true / false.
    Flag,
}

/// One column of a report: its name in every format, and its kind.
#[derive(Debug, Clone, Copy)]
pub struct Col {
    pub name: &'static str,
    pub kind: Kind,
}

const fn col(name: &'static str, kind: Kind) -> Col {
    Col { name, kind }
}

/// The money columns the per-shift and per-day reports share, in their order (what
/// [`money_columns`] computes): sales, returns and revenue cash / non-cash, the drawer.
const MONEY: [Col; 7] = [
    col("sales_cash", Kind::Money),
    col("sales_noncash", Kind::Money),
    col("returns_cash", Kind::Money),
    col("returns_noncash", Kind::Money),
    col("revenue_cash", Kind::Money),
    col("revenue_noncash", Kind::Money),
    col("drawer", Kind::Money),
];

/// `head`, then [`MONEY`], then `tail`, as one array (const: the lists are fixed at compile
/// time, and a wrong length does not compile).
const fn with_money<const N: usize>(head: &[Col], tail: &[Col]) -> [Col; N] {
    assert!(head.len() + MONEY.len() + tail.len() == N);
    let mut out = [col("", Kind::Int); N];
    let mut i = 0;
    while i < N {
        out[i] = if i < head.len() {
            head[i]
        } else if i < head.len() + MONEY.len() {
            MONEY[i - head.len()]
        } else {
            tail[i - head.len() - MONEY.len()]
        };
        i += 1;
    }
    out
}

const PER_SHIFT: [Col; 13] = with_money(
    &[
        col("workshiftid", Kind::Int),
        col("shift", Kind::Int),
        col("opened", Kind::Text),
        col("closed", Kind::Text),
        col("checks", Kind::Int),
    ],
    &[col("exported", Kind::Flag)],
);

const PER_SHOP_DAY: [Col; 9] = with_money(&[col("date", Kind::Text), col("documents", Kind::Int)], &[]);

const PER_DEPARTMENT: &[Col] = &[
    col("dept", Kind::Int),
    col("quantity", Kind::Quantity),
    col("sales", Kind::Money),
    col("returns", Kind::Money),
    col("revenue", Kind::Money),
];

/// The three reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportKind {
    /// `--cash N`: one row per shift.
    PerShift,
    /// `--shop N`: one row per day.
    PerShopDay,
    /// `--departments --shift ID`: one row per department (отдел).
    PerDepartment,
}

impl ReportKind {
    /// The columns, in order, with the names of rules.md §6.
    pub fn columns(self) -> &'static [Col] {
        match self {
            ReportKind::PerShift => &PER_SHIFT,
            ReportKind::PerShopDay => &PER_SHOP_DAY,
            ReportKind::PerDepartment => PER_DEPARTMENT,
        }
    }

    /// The query of the report (parameters: see the file's head comment), with the shared
    /// cash/non-cash split (`pay_split.sql`) in place.
    pub fn sql(self) -> String {
        let template = match self {
            ReportKind::PerShift => include_str!("per_shift.sql"),
            ReportKind::PerShopDay => include_str!("per_shop_day.sql"),
            ReportKind::PerDepartment => include_str!("per_department.sql"),
        };
        template.replace("{PAY_SPLIT}", PAY_SPLIT)
    }
}

/// The cash/non-cash sums of pay_split.sql (its head comment travels along as SQL comments).
const PAY_SPLIT: &str = include_str!("pay_split.sql");

/// A report ready to be written: its kind, a title line for people, and its frame, whose
/// columns are exactly `kind.columns()`.
#[derive(Debug, Clone)]
pub struct Report {
    pub kind: ReportKind,
    pub title: String,
    pub frame: DataFrame,
}

/// `YYYY-MM-DDTHH:MM:SS`, the time format of every report.
pub fn time_text(t: Option<chrono::NaiveDateTime>) -> Option<String> {
    t.map(|t| t.format("%Y-%m-%dT%H:%M:%S").to_string())
}

/// The columns the queries return, before the derived ones are added.
#[derive(Debug, Default)]
pub struct Sums {
    pub sales_cash: Vec<i64>,
    pub sales_noncash: Vec<i64>,
    pub returns_cash: Vec<i64>,
    pub returns_noncash: Vec<i64>,
    pub cash_in: Vec<i64>,
    pub cash_out: Vec<i64>,
}

fn int(name: &str, v: Vec<i64>) -> Column {
    Column::new(name.into(), v)
}

/// The money columns of the per-shift and per-day reports, in order, from the sums:
/// sales, returns, revenue (sales − returns), drawer (cash revenue + cash_in − cash_out).
fn money_columns(s: Sums) -> PolarsResult<Vec<Column>> {
    let sc = Int64Chunked::from_vec("sales_cash".into(), s.sales_cash);
    let sn = Int64Chunked::from_vec("sales_noncash".into(), s.sales_noncash);
    let rc = Int64Chunked::from_vec("returns_cash".into(), s.returns_cash);
    let rn = Int64Chunked::from_vec("returns_noncash".into(), s.returns_noncash);
    let cin = Int64Chunked::from_vec("cash_in".into(), s.cash_in);
    let cout = Int64Chunked::from_vec("cash_out".into(), s.cash_out);
    let revenue_cash = (&sc - &rc).with_name("revenue_cash".into());
    let revenue_noncash = (&sn - &rn).with_name("revenue_noncash".into());
    let drawer = (&(&revenue_cash + &cin) - &cout).with_name("drawer".into());
    Ok([sc, sn, rc, rn, revenue_cash, revenue_noncash, drawer].into_iter().map(|c| c.into_column()).collect())
}

/// The per-shift frame.
pub struct ShiftRows {
    pub workshiftid: Vec<i64>,
    pub shift: Vec<i64>,
    pub opened: Vec<Option<String>>,
    pub closed: Vec<Option<String>>,
    pub checks: Vec<i64>,
    pub sums: Sums,
    pub exported: Vec<bool>,
}

pub fn shift_frame(r: ShiftRows) -> PolarsResult<DataFrame> {
    let mut cols = vec![
        int("workshiftid", r.workshiftid),
        int("shift", r.shift),
        Column::new("opened".into(), r.opened),
        Column::new("closed".into(), r.closed),
        int("checks", r.checks),
    ];
    cols.extend(money_columns(r.sums)?);
    cols.push(Column::new("exported".into(), r.exported));
    DataFrame::new_infer_height(cols)
}

/// The per-day frame.
pub struct DayRows {
    pub date: Vec<String>,
    pub documents: Vec<i64>,
    pub sums: Sums,
}

pub fn day_frame(r: DayRows) -> PolarsResult<DataFrame> {
    let mut cols = vec![Column::new("date".into(), r.date), int("documents", r.documents)];
    cols.extend(money_columns(r.sums)?);
    DataFrame::new_infer_height(cols)
}

/// The per-department frame.
pub struct DeptRows {
    pub dept: Vec<i64>,
    pub quantity: Vec<i64>,
    pub sales: Vec<i64>,
    pub returns: Vec<i64>,
}

pub fn dept_frame(r: DeptRows) -> PolarsResult<DataFrame> {
    let sales = Int64Chunked::from_vec("sales".into(), r.sales);
    let returns = Int64Chunked::from_vec("returns".into(), r.returns);
    let revenue = (&sales - &returns).with_name("revenue".into());
    DataFrame::new_infer_height(vec![
        int("dept", r.dept),
        int("quantity", r.quantity),
        sales.into_column(),
        returns.into_column(),
        revenue.into_column(),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(df: &DataFrame) -> Vec<String> {
        df.get_column_names().iter().map(|n| n.to_string()).collect()
    }

    fn expected(k: ReportKind) -> Vec<String> {
        k.columns().iter().map(|c| c.name.to_string()).collect()
    }

    #[test]
    fn frames_have_the_report_columns_and_exact_derived_money() {
        let sums = Sums {
            sales_cash: vec![100_050, 0],
            sales_noncash: vec![20_000, 1],
            returns_cash: vec![50, 0],
            returns_noncash: vec![0, 2],
            cash_in: vec![500_000, 0],
            cash_out: vec![10_000, 0],
        };
        let df = shift_frame(ShiftRows {
            workshiftid: vec![1, 2],
            shift: vec![7, 8],
            opened: vec![Some("2026-11-20T08:00:00".into()), None],
            closed: vec![None, None],
            checks: vec![3, 0],
            sums,
            exported: vec![true, false],
        })
        .unwrap();
        assert_eq!(names(&df), expected(ReportKind::PerShift));
        let get = |c: &str| df.column(c).unwrap().i64().unwrap().into_no_null_iter().collect::<Vec<_>>();
        assert_eq!(get("revenue_cash"), vec![100_000, 0]);
        assert_eq!(get("revenue_noncash"), vec![20_000, -1]);
        assert_eq!(get("drawer"), vec![100_000 + 500_000 - 10_000, 0]);

        let df = day_frame(DayRows { date: vec![], documents: vec![], sums: Sums::default() }).unwrap();
        assert_eq!(names(&df), expected(ReportKind::PerShopDay));
        assert_eq!(df.height(), 0);

        let df = dept_frame(DeptRows {
            dept: vec![3],
            quantity: vec![1_500],
            sales: vec![900],
            returns: vec![1_000],
        })
        .unwrap();
        assert_eq!(names(&df), expected(ReportKind::PerDepartment));
        assert_eq!(df.column("revenue").unwrap().i64().unwrap().get(0), Some(-100));
    }
}
