//! Property tests of the sales file parser. The deep ones build valid files from the typed
//! model of `support/sales_model.rs` (the generator of the coverage-guided fuzz target
//! `sales_file`) and put hostile leaves into them, so validation and the planner are
//! reached: noise from bytes stops in serde at "missing field `shop`". The byte-level ones
//! remain for the reading layer (rule 1). Random garbage in the queue ends in broken/ with a
//! reason in the load log.

mod common;
#[path = "support/sales_model.rs"]
mod sales_model;
#[path = "support/synth.rs"]
mod synth;

use csjobs::load_sales::format::{parse, Broken};
use proptest::prelude::*;

const GOOD: &str = include_str!("../fixtures/sales/good/8-17-412-b.json");

fn verdict_is_sound(r: &Result<csjobs::load_sales::format::SalesFile, Broken>) {
    if let Err(b) = r {
        assert!((1..=9).contains(&b.rule), "{b}");
        assert!(!b.message.is_empty() && !b.path.is_empty(), "{b}");
    }
}

/// The case the model builds from `bytes` (`None`: the bytes ran out before a whole case).
fn model_case(bytes: &[u8]) -> Option<sales_model::Case> {
    sales_model::case(&mut arbitrary::Unstructured::new(bytes)).ok()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    /// Valid files with up to three hostile leaves: validated, then planned (the checks are
    /// `sales_model::check`, the fuzz target's own).
    #[test]
    fn model_files_with_hostile_leaves_validate_and_plan(bytes in proptest::collection::vec(any::<u8>(), 64..4096)) {
        if let Some(case) = model_case(&bytes) {
            sales_model::check(&case);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let r = parse(&bytes);
        verdict_is_sound(&r);
    }

    #[test]
    fn mutated_valid_files_never_panic(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8)
    ) {
        let mut b = GOOD.as_bytes().to_vec();
        for (at, byte, kind) in edits {
            if b.is_empty() { break; }
            let i = at.index(b.len());
            match kind {
                0 => b[i] = byte,
                1 => { b.remove(i); }
                _ => b.insert(i, byte),
            }
        }
        verdict_is_sound(&parse(&b));
    }
}

/// The model reaches what it is for: most cases without mutations validate (the generator
/// and the validator agree), and with mutations every rule of validation is seen. Counted
/// over a fixed stream of cases, so the test cannot pass on cases that never got deep.
#[test]
fn the_model_reaches_validation_and_every_rule_it_aims_at() {
    let mut rng = synth::SplitMix(20);
    let (mut valid, mut total) = (0, 0);
    let mut rules = std::collections::BTreeSet::new();
    for _ in 0..3000 {
        let bytes: Vec<u8> = (0..2048).map(|_| rng.next_u64() as u8).collect();
        let Some(case) = model_case(&bytes) else { continue };
        sales_model::check(&case);
        total += 1;
        match parse(&sales_model::to_text(&case)) {
            Ok(_) => valid += 1,
            Err(b) => {
                rules.insert(b.rule);
            }
        }
    }
    assert!(total > 2500, "the model builds a case from most byte strings: {total}");
    assert!(valid * 5 > total, "a good share validates and is planned: {valid} of {total}");
    for rule in [1, 3, 4, 5, 6, 7] {
        assert!(rules.contains(&rule), "rule {rule} is reached: {rules:?}");
    }
}

/// The inputs that once stopped a store, each a regression test (issue #20): a decimal
/// exponent that wrapped into a capacity overflow, and strings PostgreSQL text cannot hold.
#[test]
fn hostile_leaves_found_by_hand_are_broken_with_their_path() {
    let with = |pointer: &str, value: &str| {
        let mut v: serde_json::Value = serde_json::from_str(GOOD).unwrap();
        *v.pointer_mut(pointer).unwrap_or_else(|| panic!("{pointer}")) = serde_json::from_str(value).unwrap();
        parse(serde_json::to_string(&v).unwrap().as_bytes()).unwrap_err()
    };
    let b = with("/documents/0/items/0/quantity", r#""1e9223372036854775807""#);
    assert_eq!((b.rule, b.path.as_str()), (4, "documents[0].items[0].quantity"), "{b}");
    let b = with("/documents/0/items/0/quantity", r#""1e-9223372036854775808""#);
    assert_eq!((b.rule, b.path.as_str()), (4, "documents[0].items[0].quantity"), "{b}");
    let b = with("/documents/0/items/0/price", "1e9223372036854775807");
    assert_eq!((b.rule, b.path.as_str()), (4, "documents[0].items[0].price"), "{b}");
    let b = with("/source/host", r#""pos\u0000""#);
    assert_eq!((b.rule, b.path.as_str()), (3, "source.host"), "{b}");
    assert!(b.message.contains("U+0000"), "{b}");
    let b = with("/documents/0/items/0/name", r#""\u0000""#);
    assert_eq!((b.rule, b.path.as_str()), (3, "documents[0].items[0].name"), "{b}");
    let b = with("/documents/0/payments/0/type", r#""ca\u0000sh""#);
    assert_eq!((b.rule, b.path.as_str()), (3, "documents[0].payments[0].type"), "{b}");
    // An unpaired surrogate, written as JSON text (a Rust string cannot hold one).
    let text = GOOD.replacen("\"ware\": \"", "\"ware\": \"\\ud800", 1);
    assert_ne!(text, GOOD, "the fixture has a ware");
    let b = parse(text.as_bytes()).unwrap_err();
    assert_eq!((b.rule, b.path.as_str()), (3, "documents[0].items[0].ware"), "{b}");
    assert!(b.message.contains("surrogate"), "{b}");
    // A trailing surrogate alone, and a leading one followed by another escape.
    for bad in ["\\udc00", "\\ud800\\u0041"] {
        let text = GOOD.replacen("\"ware\": \"", &format!("\"ware\": \"{bad}"), 1);
        let b = parse(text.as_bytes()).unwrap_err();
        assert_eq!((b.rule, b.path.as_str()), (3, "documents[0].items[0].ware"), "{bad}: {b}");
    }
}

/// A very deep nesting and a very long number must not hang or overflow the stack.
#[test]
fn pathological_inputs_end_quickly_as_broken() {
    let deep = "[".repeat(100_000);
    let start = std::time::Instant::now();
    assert_eq!(parse(deep.as_bytes()).unwrap_err().rule, 1);
    let long_number = format!(
        r#"{{"format":"csjobs-sales/1","shop":8,"cash":17,"shift":{{"number":1,"opened_at":null}},
            "documents":[{{"number":1,"type":"sale","opened_at":"2026-11-20T10:00:00","closed_at":null,
            "items":[{{"pos":1,"ware":"1","dept":1,"quantity":"1","price":{},"sum":"1.00"}}],"payments":[]}}]}}"#,
        "9".repeat(200_000)
    );
    assert_eq!(parse(long_number.as_bytes()).unwrap_err().rule, 4);
    let huge_exponent = long_number.replace(&"9".repeat(200_000), "1e999999999");
    assert_eq!(parse(huge_exponent.as_bytes()).unwrap_err().rule, 4);
    // No timed assertion: a hang fails the suite by its timeout instead.
    let _ = start.elapsed();
}

#[tokio::test]
async fn random_garbage_in_the_queue_ends_in_broken_with_a_reason() {
    use common::*;
    let db = TestDb::cashserver().await;
    let dirs = Dirs::new();
    let mut rng = synth::SplitMix(99);
    for i in 0..40u64 {
        let len = rng.range(0, 3000) as usize;
        let mut bytes: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
        if i % 2 == 0 {
            // Half of them start like a sales file.
            bytes.splice(0..0, br#"{"format":"csjobs-sales/1","shop":8,"#.iter().copied());
        }
        let name = if i % 5 == 0 { format!("g{i}.json.gz") } else { format!("g{i}.json") };
        dirs.put(&name, &bytes, i);
    }
    let r = load_sales(&db, &dirs, &[]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert_eq!(Dirs::names(&dirs.broken).len(), 40);
    assert_eq!(
        db.scalar_i64("select count(*) from load_log where disposition = 'broken' and broken_rule between 1 and 9 and reason <> ''").await,
        40
    );
}

/// The synthetic generator (`support/synth.rs`) makes valid files, the same for a seed.
#[test]
fn generated_files_are_valid_and_deterministic() {
    let layout = synth::Layout {
        first_shop: 100,
        shops: 2,
        cashes_per_shop: 2,
        shifts_per_cash: 2,
        fragments_per_shift: 3,
        docs_per_fragment: 4,
        items_per_doc: 5,
        seed: 7,
    };
    let files: Vec<_> = layout.files().collect();
    assert_eq!(files.len(), 2 * 2 * 2 * 3);
    for (name, content) in &files {
        let f = parse(content).unwrap_or_else(|b| panic!("{name}: {b}"));
        assert_eq!(f.item_count(), 20);
    }
    let again: Vec<_> = layout.files().collect();
    assert_eq!(files, again);
}
