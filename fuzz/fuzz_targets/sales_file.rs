//! The sales file from its typed model: a valid file (plain or gzip) with up to three hostile
//! leaves, read, validated and planned. The properties are `sales_model::check`, shared
//! with tests/parser_props.rs: no panic; a file without mutations validates; a file that
//! validates also plans (refused only by the NULL-date rule).
#![no_main]

#[path = "../../tests/support/sales_model.rs"]
mod sales_model;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(case) = sales_model::case(&mut arbitrary::Unstructured::new(data)) {
        sales_model::check(&case);
    }
});
