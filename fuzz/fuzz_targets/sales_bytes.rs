//! The sales file as bytes: what the reader does with any content, plain or as a gzip stream
//! (the first byte chooses), within a small size limit. No panic; a broken verdict names a
//! rule of the format (1–9), a path and a reason; a file that validates also plans.
#![no_main]

use csjobs::load_sales::{
    format::{parse, read_bytes, ReadError},
    plan::Planner,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else { return };
    let gz = first & 1 == 1;
    let raw = match read_bytes(rest.to_vec(), gz, 1 << 20) {
        Ok(raw) => raw,
        Err(ReadError::Broken { broken, .. }) => {
            assert!(broken.rule == 1 || broken.rule == 9, "{broken}");
            return;
        }
        Err(ReadError::Io(e)) => panic!("bytes cannot fail on I/O: {e}"),
    };
    match parse(&raw.content) {
        Err(b) => assert!((1..=9).contains(&b.rule) && !b.message.is_empty() && !b.path.is_empty(), "{b}"),
        Ok(file) => {
            let mut planner = Planner::new();
            let asked = planner.missing([&file]);
            planner.add_db_rows(&asked, vec![], vec![(file.cash, file.shop)], vec![file.shop]);
            planner.plan_file(0, &file).expect("a valid file plans against an empty database");
        }
    }
});
