//! `--now` / `CSJOBS_NOW`: any text, through the configuration as the command line gives it.
//! No panic; a moment that is taken prints back as RFC 3339 that parses to the same moment.
#![no_main]

use std::path::Path;

use csjobs::core::config::{Config, ConfigSource};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let source = ConfigSource { now: Some(text.to_string()), ..Default::default() };
    if let Ok(c) = Config::from_toml("", Path::new("/fuzz/csjobs.toml"), &source, &|_| None) {
        let again = chrono::DateTime::parse_from_rfc3339(&c.now.to_rfc3339()).expect("prints as RFC 3339");
        assert_eq!(again, c.now);
    }
});
