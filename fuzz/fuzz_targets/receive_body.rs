//! A message body as `receive` decodes it (receive.md, "A message"): the compression its
//! `content_encoding` property and `compressMethod` header declare (the first byte picks
//! them), then the body plain, gzip or a zip of one file, within `sales.max_file_bytes`.
//! No panic; a rejection has a reason; what decodes is non-empty, within the limit, the
//! body itself when plain, and gets a name load-sales takes. With the first byte's top bit
//! set, the rest is the content and the target compresses it itself as declared: decoding
//! must give it back exactly (or refuse it as empty or too large).
#![no_main]

use std::io::Write;

use csjobs::{
    load_sales::format::is_sales_file_name,
    receive::{compression, decode, file_name, Compression},
};
use libfuzzer_sys::fuzz_target;

const MAX: u64 = 4096;

const ENCODINGS: [Option<&str>; 4] = [None, Some("gzip"), Some("utf-8"), Some(" GZip ")];
const METHODS: [Option<&str>; 8] =
    [None, Some(""), Some("gzip"), Some("zip"), Some(" ZIP"), Some("rar"), Some("deflate"), Some("Gzip")];

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn zip_of_one(data: &[u8], stored: bool) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let method = if stored { zip::CompressionMethod::Stored } else { zip::CompressionMethod::Deflated };
    w.start_file("sales.json", zip::write::SimpleFileOptions::default().compression_method(method)).unwrap();
    w.write_all(data).unwrap();
    w.finish().unwrap().into_inner()
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else { return };
    let encoding = ENCODINGS[usize::from(first & 0b11)];
    let method = METHODS[usize::from((first >> 2) & 0b111)];
    let how = match compression(encoding, method) {
        Ok(how) => how,
        Err(rejection) => {
            let m = method.map(str::trim).unwrap_or_default().to_ascii_lowercase();
            assert!(!rejection.0.is_empty());
            assert!(!m.is_empty() && m != "gzip", "{encoding:?} {method:?} refused: {rejection}");
            return;
        }
    };
    let wrap = first & 0x80 != 0;
    let body = match (wrap, how) {
        (false, _) | (true, Compression::Plain) => rest.to_vec(),
        (true, Compression::Gzip) => gzip(rest),
        (true, Compression::Zip) => zip_of_one(rest, first & 0x40 != 0),
    };
    match decode(&body, how, MAX) {
        Ok(content) => {
            assert!(!content.is_empty() && content.len() as u64 <= MAX, "{how:?}: {} bytes", content.len());
            if how == Compression::Plain || wrap {
                assert_eq!(content, rest, "{how:?}: decoding gives the content back");
            }
            let name = file_name(&content);
            assert!(name.starts_with("amqp-") && name.len() == 5 + 32 + 5 && is_sales_file_name(&name), "{name}");
        }
        Err(rejection) => {
            assert!(!rejection.0.is_empty());
            if wrap || how == Compression::Plain {
                // Its own compression of the content decodes: only the content's size can refuse it.
                let expected = match rest.len() as u64 {
                    0 => "empty",
                    n if n > MAX => "larger than sales.max_file_bytes",
                    _ => panic!("{how:?}: {} bytes of content refused: {rejection}", rest.len()),
                };
                assert!(rejection.0.contains(expected), "{how:?}, {} bytes: {rejection}", rest.len());
            }
        }
    }
});
