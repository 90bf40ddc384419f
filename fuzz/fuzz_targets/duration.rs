//! Durations of settings and options (`30m`, `2h`, `1d`): no panic, and a span that parses
//! prints back to text that parses to the same span.
#![no_main]

use csjobs::core::duration::Span;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(span) = text.parse::<Span>() {
        let again: Span = span.to_string().parse().expect("a span prints as text that parses");
        assert_eq!(again, span);
        let _ = span.as_duration();
    }
});
