//! Synthetic sales files for tests and benchmarks: deterministic for a seed, valid by
//! construction (sums rounded half away from zero, payments balanced), written in the
//! `csjobs-sales/1` shape. Not part of the library: the tests include it by `#[path]`
//! (`#[path = "support/synth.rs"] mod synth;`), and so does the benchmark generator
//! scripts/gen_sales.rs, so both build the same files. `tests/parser_props.rs` checks
//! that what it generates validates.
#![allow(dead_code)]

use chrono::{NaiveDate, NaiveDateTime, TimeDelta};
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::{json, Value};

/// What to generate: `shops × cashes_per_shop` registers, each with `shifts_per_cash`
/// shifts, each sent as `fragments_per_shift` files of `docs_per_fragment` documents.
#[derive(Debug, Clone)]
pub struct Layout {
    pub first_shop: i32,
    pub shops: i32,
    pub cashes_per_shop: i32,
    pub shifts_per_cash: i32,
    pub fragments_per_shift: usize,
    pub docs_per_fragment: usize,
    pub items_per_doc: usize,
    pub seed: u64,
}

impl Layout {
    pub fn cash_code(&self, shop_index: i32, cash_index: i32) -> i32 {
        (self.first_shop + shop_index) * 1000 + cash_index + 1
    }

    /// `insert` statements for the shops and cashes of this layout.
    pub fn dictionary_sql(&self) -> String {
        let mut s = String::new();
        for si in 0..self.shops {
            let shop = self.first_shop + si;
            s.push_str(&format!(
                "insert into shop (shopcode, name) values ({shop}, 'Synthetic shop {shop}') on conflict do nothing;\n"
            ));
            for ci in 0..self.cashes_per_shop {
                let cash = self.cash_code(si, ci);
                s.push_str(&format!(
                    "insert into cash (cashcode, shopcode, name) values ({cash}, {shop}, 'Cash {cash}') on conflict do nothing;\n"
                ));
            }
        }
        s
    }

    /// The files in delivery order: (name, JSON content).
    pub fn files(&self) -> impl Iterator<Item = (String, Vec<u8>)> + '_ {
        let mut rng = SplitMix(self.seed);
        let base = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap().and_hms_opt(8, 0, 0).unwrap();
        (0..self.shifts_per_cash).flat_map(move |shift| {
            (0..self.shops).flat_map(move |si| (0..self.cashes_per_shop).map(move |ci| (shift, si, ci)))
        })
        .flat_map(move |(shift, si, ci)| (0..self.fragments_per_shift).map(move |frag| (shift, si, ci, frag)))
        .map(move |(shift, si, ci, frag)| {
            let shop = self.first_shop + si;
            let cash = self.cash_code(si, ci);
            let opened = base + TimeDelta::days(shift as i64);
            let last = frag + 1 == self.fragments_per_shift;
            let closed = last.then(|| opened + TimeDelta::hours(14));
            let docs: Vec<Value> = (0..self.docs_per_fragment)
                .map(|d| {
                    let number = (frag * self.docs_per_fragment + d + 1) as i64;
                    let at = opened + TimeDelta::seconds(30 * number);
                    document(&mut rng, number, at, self.items_per_doc)
                })
                .collect();
            let file = json!({
                "format": "csjobs-sales/1",
                "shop": shop,
                "cash": cash,
                "source": { "host": format!("pos-{shop}-{cash}"), "ip": "10.0.0.1", "software": "synthetic" },
                "shift": {
                    "number": shift + 1,
                    "opened_at": ts(opened),
                    "closed_at": closed.map(ts),
                },
                "documents": docs,
            });
            let name = format!("{shop}-{cash}-{:05}-{frag:05}.json", shift + 1);
            (name, serde_json::to_vec(&file).expect("serializes"))
        })
    }
}

fn ts(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%dT%H:%M:%S").to_string()
}

fn document(rng: &mut SplitMix, number: i64, at: NaiveDateTime, items: usize) -> Value {
    let mut total = Decimal::ZERO;
    let items: Vec<Value> = (0..items)
        .map(|p| {
            let price = Decimal::new(rng.range(100, 99_999) as i64, 2);
            let quantity = if rng.range(0, 4) == 0 {
                Decimal::new(rng.range(1, 2_500) as i64, 3)
            } else {
                Decimal::new(rng.range(1, 5) as i64, 0)
            };
            let gross = (quantity * price).round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
            let discount =
                if rng.range(0, 9) == 0 { (gross / Decimal::from(10)).round_dp(2) } else { Decimal::ZERO };
            let sum = gross - discount;
            total += sum;
            json!({
                "pos": p + 1,
                "ware": format!("46{:011}", rng.range(0, 99_999)),
                "name": "Товар",
                "dept": rng.range(1, 12),
                "quantity": quantity.to_string(),
                "price": price.to_string(),
                "discount": discount.to_string(),
                "sum": sum.to_string(),
            })
        })
        .collect();
    let payments = if rng.range(0, 2) == 0 {
        let tendered = total.ceil() + Decimal::from(rng.range(0, 50));
        json!([{ "type": "cash", "amount": tendered.round_dp(2).to_string(), "change": (tendered - total).round_dp(2).to_string() }])
    } else {
        json!([{ "type": "card", "amount": total.to_string() }])
    };
    json!({
        "number": number,
        "type": "sale",
        "opened_at": ts(at),
        "closed_at": ts(at + TimeDelta::seconds(20)),
        "items": items,
        "payments": payments,
    })
}

/// A small, fast, seedable generator (SplitMix64): no dependency for test data.
pub struct SplitMix(pub u64);

impl SplitMix {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }
}
