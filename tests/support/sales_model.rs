//! Valid sales files built from a typed model (shared/spec/sales-file.md), then hostile
//! leaves put into them: the generator behind the coverage-guided fuzz target
//! `fuzz/fuzz_targets/sales_file.rs` and the property tests of `tests/parser_props.rs`.
//!
//! Noise from bytes almost never carries every required field, so it stops in serde at
//! "missing field `shop`" and validation is never reached. A file built from this model is
//! valid by construction (sums, payments, unique numbers and positions, ranges), so with no
//! mutation it must validate, and a few mutated leaves reach every check of `validate()`
//! and the planner behind it.
//!
//! Shared by `#[path]` include, so both users build the same files from the same bytes.
#![allow(dead_code)]

use arbitrary::{Arbitrary, Result, Unstructured};
use serde_json::{json, Value};

/// A whole test case: the file, where it is mutated, and how it is stored.
#[derive(Debug)]
pub struct Case {
    pub file: Value,
    /// The hostile leaves put in (empty: the file is valid by construction).
    pub mutations: Vec<String>,
    /// Stored as `.json.gz`.
    pub gzip: bool,
    /// The rows the database holds for the file's cash and shift number, for the planner.
    pub shift_rows: Vec<ShiftRowModel>,
}

/// A `workshift` row the database holds already for the file's cash and shift number.
#[derive(Debug, Clone, Arbitrary)]
pub struct ShiftRowModel {
    pub time_beg: Option<Moment>,
    pub time_end: Option<Moment>,
}

/// A local timestamp within 2020–2035, maybe with microseconds.
#[derive(Debug, Clone, Copy, Arbitrary)]
pub struct Moment {
    seconds: u32,
    micros: Option<u32>,
}

impl Moment {
    pub fn naive(self) -> chrono::NaiveDateTime {
        let base = chrono::NaiveDate::from_ymd_opt(2020, 1, 1).unwrap().and_hms_opt(0, 0, 0).unwrap();
        let t = base + chrono::TimeDelta::seconds(i64::from(self.seconds % (15 * 365 * 86_400)));
        match self.micros {
            Some(us) => t + chrono::TimeDelta::microseconds(i64::from(us % 1_000_000)),
            None => t,
        }
    }
    fn text(self) -> String {
        let t = self.naive();
        if self.micros.is_some() {
            t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
        } else {
            t.format("%Y-%m-%dT%H:%M:%S").to_string()
        }
    }
}

#[derive(Debug, Arbitrary)]
enum Kind {
    Sale,
    Return,
    CashIn,
    CashOut,
}

#[derive(Debug, Arbitrary)]
struct ItemModel {
    ware: String,
    name: Option<String>,
    dept: u16,
    quantity_milli: u32,
    price_cents: u32,
    discount_share: u8,
}

/// Numbers near the limits: a hostile leaf that sets an amount to this reaches the sums and
/// products of validation with values rust_decimal cannot carry (the model's own amounts
/// stay small, so they always balance).
#[derive(Debug, Arbitrary)]
enum Huge {
    /// 26 nines and a fraction: the largest money a decimal of 28 digits carries.
    Money,
    /// 10^k for k up to 27.
    Power(u8),
}

impl Huge {
    fn render(&self) -> Value {
        match self {
            Huge::Money => Value::String(format!("{}.99", "9".repeat(26))),
            Huge::Power(k) => Value::String(format!("1{}", "0".repeat(usize::from(*k % 28)))),
        }
    }
}

#[derive(Debug, Arbitrary)]
struct DocModel {
    kind: Kind,
    opened: Moment,
    closed: Option<Moment>,
    items: Vec<ItemModel>,
    /// How the total is split over payments, and which are cash (may give change).
    splits: Vec<(u8, bool, u16)>,
    noncash_word: u8,
}

/// A hostile value for one leaf.
#[derive(Debug, Arbitrary)]
enum Hostile {
    Text(String),
    Nul,
    Surrogate,
    Int(i64),
    NumberText(NumberText),
    Huge(Huge),
    Null,
    Bool(bool),
    EmptyArray,
    EmptyObject,
    Remove,
    Duplicate,
}

/// Number-like text aimed at the decimal code: digits, a fraction, an exponent at any size.
#[derive(Debug, Arbitrary)]
struct NumberText {
    negative: bool,
    int_digits: u8,
    frac_digits: u8,
    exponent: Option<i64>,
    as_string: bool,
}

impl NumberText {
    fn render(&self) -> Value {
        let mut s = String::new();
        if self.negative {
            s.push('-');
        }
        s.push_str(&"9".repeat(usize::from(self.int_digits % 40) + 1));
        if self.frac_digits > 0 {
            s.push('.');
            s.push_str(&"5".repeat(usize::from(self.frac_digits % 40)));
        }
        if let Some(e) = self.exponent {
            s.push_str(&format!("e{e}"));
        }
        if self.as_string {
            return Value::String(s);
        }
        // With serde_json's arbitrary_precision a number keeps its text, whatever its size.
        serde_json::from_str(&s).unwrap_or(Value::String(s))
    }
}

/// The marker a surrogate leaf holds until the text is written (a Rust string cannot hold
/// an unpaired surrogate; the JSON text can, as `\ud800`).
pub const SURROGATE_MARK: &str = "\u{E000}surrogate\u{E000}";

/// `u`'s file as JSON text (surrogates put in).
pub fn to_text(case: &Case) -> Vec<u8> {
    let text = serde_json::to_string(&case.file).unwrap();
    text.replace(SURROGATE_MARK, "\\ud800").into_bytes()
}

fn text_field(s: &str, min: usize, max: usize) -> String {
    let t: String = s.chars().filter(|c| *c != '\0').take(max).collect();
    if t.chars().count() < min {
        "0".repeat(min)
    } else {
        t
    }
}

fn money(cents: u64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

/// Builds a case: a valid file, then `0..=3` hostile leaves.
pub fn case(u: &mut Unstructured<'_>) -> Result<Case> {
    let shop = u.int_in_range(1..=9999u32)?;
    let cash = u.int_in_range(1..=99_999u32)?;
    let numbers_as_json_numbers = bool::arbitrary(u)?;
    let number = u.int_in_range(1..=i32::MAX as u32)?;
    let opened: Option<Moment> = Option::arbitrary(u)?;
    let closed: Option<Moment> = Option::arbitrary(u)?;
    let docs: Vec<DocModel> = u.arbitrary_iter()?.take(8).collect::<Result<_>>()?;
    let first_doc = u.int_in_range(1..=1_000_000u32)?;
    let decimal = |s: String| -> Value {
        if numbers_as_json_numbers {
            serde_json::from_str(&s).unwrap_or(Value::String(s))
        } else {
            Value::String(s)
        }
    };
    let mut documents = Vec::new();
    for (di, d) in docs.into_iter().enumerate() {
        let closed_at = d.closed.map(|c| {
            // Closed at or after it opened.
            let o = d.opened.naive();
            let c = c.naive();
            if c < o {
                d.opened.text()
            } else {
                c.format("%Y-%m-%dT%H:%M:%S").to_string()
            }
        });
        let goods = matches!(d.kind, Kind::Sale | Kind::Return);
        let mut items = Vec::new();
        let mut total: u64 = 0;
        if goods {
            for (ii, it) in d.items.iter().take(6).enumerate() {
                let q = u64::from(it.quantity_milli % 100_000_000) + 1;
                let p = u64::from(it.price_cents % 10_000_000);
                let rounded = (q * p + 500) / 1000; // half away from zero: all non-negative
                let discount = rounded * u64::from(it.discount_share) / 255;
                let sum = rounded - discount;
                total += sum;
                let mut item = json!({
                    "pos": ii + 1,
                    "ware": text_field(&it.ware, 1, 64),
                    "dept": it.dept,
                    "quantity": decimal(format!("{}.{:03}", q / 1000, q % 1000)),
                    "price": decimal(money(p)),
                    "sum": decimal(money(sum)),
                });
                if discount > 0 {
                    item["discount"] = decimal(money(discount));
                }
                if let Some(n) = &it.name {
                    item["name"] = Value::String(text_field(n, 0, 256));
                }
                items.push(item);
            }
            if items.is_empty() && closed_at.is_some() {
                // A closed sale or return needs items: one free item.
                items.push(json!({"pos": 1, "ware": "1", "dept": 0, "quantity": "1.000", "price": "0.00", "sum": "0.00"}));
            }
        }
        let words = ["card", "sbp", "bonus", "certificate"];
        let mut payments = Vec::new();
        if goods {
            // amount − change over the payments sums to the items' total.
            let parts: Vec<&(u8, bool, u16)> = d.splits.iter().take(3).collect();
            if parts.is_empty() || total == 0 {
                let change = parts.first().map_or(0, |p| u64::from(p.2));
                let change = if total == 0 { change.max(1) } else { change };
                payments.push(json!({"type": "cash", "amount": decimal(money(total + change)), "change": decimal(money(change))}));
            } else {
                let weights: u64 = parts.iter().map(|p| u64::from(p.0) + 1).sum();
                let mut left = total;
                for (pi, p) in parts.iter().enumerate() {
                    let share =
                        if pi + 1 == parts.len() { left } else { total * (u64::from(p.0) + 1) / weights };
                    let share = share.min(left);
                    left -= share;
                    if share == 0 {
                        continue;
                    }
                    if p.1 {
                        let change = u64::from(p.2);
                        let mut pay = json!({"type": "cash", "amount": decimal(money(share + change))});
                        if change > 0 {
                            pay["change"] = decimal(money(change));
                        }
                        payments.push(pay);
                    } else {
                        let word = words[usize::from(d.noncash_word) % words.len()];
                        payments.push(json!({"type": word, "amount": decimal(money(share))}));
                    }
                }
            }
        } else if closed_at.is_some() || !d.splits.is_empty() {
            let amount = d.splits.first().map_or(100, |p| u64::from(p.2) + 1);
            payments.push(json!({"type": "cash", "amount": decimal(money(amount))}));
        }
        let kind = match d.kind {
            Kind::Sale => "sale",
            Kind::Return => "return",
            Kind::CashIn => "cash_in",
            Kind::CashOut => "cash_out",
        };
        let mut doc = json!({
            "number": first_doc as usize + di,
            "type": kind,
            "opened_at": d.opened.text(),
            "closed_at": closed_at,
            "payments": payments,
        });
        if goods || bool::arbitrary(u)? {
            doc["items"] = Value::Array(items);
        }
        documents.push(doc);
    }
    let mut file = json!({
        "format": "csjobs-sales/1",
        "shop": shop,
        "cash": cash,
        "shift": {
            "number": number,
            "opened_at": opened.map(Moment::text),
        },
        "documents": documents,
    });
    if let Some(c) = closed {
        file["shift"]["closed_at"] = Value::String(c.text());
    }
    if bool::arbitrary(u)? {
        let host: String = String::arbitrary(u)?;
        file["source"] = json!({"host": text_field(&host, 0, 64), "ip": "10.0.0.1", "software": "4.6"});
    }
    if bool::arbitrary(u)? {
        file["x_unknown_extension"] = json!({"anything": [1, "two", null]});
    }
    let gzip = bool::arbitrary(u)?;
    let shift_rows: Vec<ShiftRowModel> = u.arbitrary_iter()?.take(3).collect::<Result<_>>()?;
    let mut case = Case { file, mutations: Vec::new(), gzip, shift_rows };
    let n = u.int_in_range(0..=3u8)?;
    for _ in 0..n {
        mutate(&mut case, u)?;
    }
    Ok(case)
}

/// Every leaf's JSON pointer, and the pointer of every array and object (for Remove and
/// Duplicate).
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let p = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                out.push(p.clone());
                pointers(x, p, out);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                let p = format!("{at}/{i}");
                out.push(p.clone());
                pointers(x, p, out);
            }
        }
        _ => {}
    }
}

fn mutate(case: &mut Case, u: &mut Unstructured<'_>) -> Result<()> {
    let mut all = Vec::new();
    pointers(&case.file, String::new(), &mut all);
    if all.is_empty() {
        return Ok(());
    }
    let at = all[u.choose_index(all.len())?].clone();
    let hostile = Hostile::arbitrary(u)?;
    let (parent, key) = at.rsplit_once('/').expect("a pointer below the root");
    let value = match &hostile {
        Hostile::Text(s) => Value::String(s.clone()),
        Hostile::Nul => Value::String("a\u{0}b".into()),
        Hostile::Surrogate => Value::String(SURROGATE_MARK.into()),
        Hostile::Int(i) => json!(i),
        Hostile::NumberText(n) => n.render(),
        Hostile::Huge(h) => h.render(),
        Hostile::Null => Value::Null,
        Hostile::Bool(b) => Value::Bool(*b),
        Hostile::EmptyArray => json!([]),
        Hostile::EmptyObject => json!({}),
        Hostile::Remove | Hostile::Duplicate => Value::Null,
    };
    let Some(container) = case.file.pointer_mut(parent) else { return Ok(()) };
    match (&hostile, container) {
        (Hostile::Remove, Value::Object(m)) => {
            m.remove(key);
        }
        (Hostile::Remove, Value::Array(a)) => {
            if let Ok(i) = key.parse::<usize>() {
                if i < a.len() {
                    a.remove(i);
                }
            }
        }
        (Hostile::Duplicate, Value::Array(a)) => {
            if let Some(x) = key.parse::<usize>().ok().and_then(|i| a.get(i).cloned()) {
                a.push(x);
            }
        }
        (Hostile::Duplicate, _) => return Ok(()),
        (_, Value::Object(m)) => {
            m.insert(key.replace("~1", "/").replace("~0", "~"), value);
        }
        (_, Value::Array(a)) => {
            if let Some(slot) = key.parse::<usize>().ok().and_then(|i| a.get_mut(i)) {
                *slot = value;
            }
        }
        _ => return Ok(()),
    }
    case.mutations.push(format!("{at} := {hostile:?}"));
    Ok(())
}

/// The properties every case holds, checked the same way by the fuzz target and the
/// property tests: reading (plain or gzip) gives the text back; parsing ends in a verdict
/// (never a panic); a file without mutations validates; a broken verdict names a rule of
/// the format, a path and a reason; a file that validates also plans, refused only by the
/// NULL-date rule, and plans each of its documents once.
pub fn check(case: &Case) {
    use csjobs::load_sales::{
        format::{parse, read_bytes, ReadError},
        plan::{Planner, ShiftRef, ShiftRow},
    };
    use std::io::Write;
    let text = to_text(case);
    let stored = if case.gzip {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&text).unwrap();
        gz.finish().unwrap()
    } else {
        text.clone()
    };
    let raw = match read_bytes(stored, case.gzip, 64 << 20) {
        Ok(raw) => raw,
        Err(ReadError::Broken { broken, .. }) => panic!("a sound gzip stream is refused: {broken}"),
        Err(ReadError::Io(e)) => panic!("reading bytes cannot fail on I/O: {e}"),
    };
    assert_eq!(raw.content, text, "reading gives the text back");
    let shown = || String::from_utf8_lossy(&text).into_owned();
    let file = match parse(&raw.content) {
        Ok(f) => f,
        Err(b) => {
            assert!(!case.mutations.is_empty(), "a file valid by construction is refused: {b}\n{}", shown());
            assert!((1..=9).contains(&b.rule), "{b}");
            assert!(!b.message.is_empty() && !b.path.is_empty(), "{b}");
            return;
        }
    };
    let mut planner = Planner::new();
    let asked = planner.missing([&file]);
    let rows: Vec<_> = case
        .shift_rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let row = ShiftRow {
                id: ShiftRef::Existing(i as i64 + 1),
                time_beg: r.time_beg.map(Moment::naive),
                time_end: r.time_end.map(Moment::naive),
            };
            ((file.cash, file.shift.number), row)
        })
        .collect();
    let null_in_db = rows.iter().any(|(_, r)| r.time_beg.is_none());
    planner.add_db_rows(&asked, rows, vec![(file.cash, file.shop)], vec![file.shop]);
    match planner.plan_file(0, &file) {
        Ok(_) => {
            let writes = planner.take_writes();
            assert_eq!(writes.documents.len(), file.documents.len(), "each document planned once");
        }
        Err(reason) => assert!(
            file.shift.opened_at.is_none() && null_in_db && reason.contains("open date is NULL"),
            "a valid file is refused by the planner: {reason}\n{}",
            shown()
        ),
    }
}
