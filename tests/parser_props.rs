//! Property tests of the sales file parser: arbitrary bytes and mutations of valid files
//! never panic and always end in a verdict (a valid file or a broken rule with a reason);
//! random garbage in the queue ends in broken/ with a reason in the load log.

mod common;

use csjobs::sales::format::{parse, Broken};
use proptest::prelude::*;

const GOOD: &str = include_str!("../fixtures/sales/good/8-17-412-b.json");

fn verdict_is_sound(r: &Result<csjobs::sales::format::SalesFile, Broken>) {
    if let Err(b) = r {
        assert!((1..=9).contains(&b.rule), "{b}");
        assert!(!b.message.is_empty() && !b.path.is_empty(), "{b}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

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

    #[test]
    fn json_shaped_noise_never_panics(s in r#"\{("[a-z_]{1,8}": ?(-?[0-9]{1,20}(\.[0-9]{0,6})?(e-?[0-9]{1,4})?|"[^"\\]{0,10}"|null|true|\[\]|\{\}), ?){0,8}"format": ?"csjobs-sales/1"\}"#) {
        verdict_is_sound(&parse(s.as_bytes()));
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
    let mut rng = csjobs::sales::synth::SplitMix(99);
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
