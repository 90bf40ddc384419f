//! receive (shared/spec/receive.md): sales files that arrive as AMQP 0-9-1 messages. This
//! module is the pure part: how a message's body becomes the bytes and the name of one file
//! of the queue directory, or why it cannot ([`Rejection`]); the broker, the files and the
//! acknowledgements are `job`'s.

pub mod chain;
pub mod job;
pub mod probe;

use std::io::Read;

use sha2::{Digest, Sha256};

use crate::load_sales::format::{self, ReadError};

/// How a body is compressed, from its `content_encoding` property and its `compressMethod`
/// header (the register agent's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Plain,
    Gzip,
    /// A zip archive holding exactly one file.
    Zip,
}

/// Why a message cannot become a sales file: it is rejected without requeueing (so the
/// broker dead-letters it to `<queue>.rejected`) and logged with this reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Rejection(pub String);

fn reject(reason: impl Into<String>) -> Rejection {
    Rejection(reason.into())
}

/// The compression a message declares. `compressMethod` (compared without case; absent or
/// empty: none) is `gzip` or `zip`, anything else is refused; `content_encoding: gzip` means
/// gzip too. Another `content_encoding` (publishers write `utf-8` there) says nothing about
/// compression and is left alone; gzip there with `compressMethod` zip is a contradiction.
pub fn compression(
    content_encoding: Option<&str>,
    compress_method: Option<&str>,
) -> Result<Compression, Rejection> {
    let gzip_encoded = content_encoding.is_some_and(|e| e.trim().eq_ignore_ascii_case("gzip"));
    let method = compress_method.map(str::trim).filter(|m| !m.is_empty());
    match method.map(str::to_ascii_lowercase).as_deref() {
        None => Ok(if gzip_encoded { Compression::Gzip } else { Compression::Plain }),
        Some("gzip") => Ok(Compression::Gzip),
        Some("zip") if gzip_encoded => {
            Err(reject("content_encoding gzip and header compressMethod zip contradict each other"))
        }
        Some("zip") => Ok(Compression::Zip),
        Some(_) => Err(reject(format!(
            "unknown compressMethod {:?} (known: gzip, zip, or none)",
            clip(method.unwrap_or_default())
        ))),
    }
}

/// A header's value as written in a log line: at most 100 characters.
fn clip(s: &str) -> String {
    match s.char_indices().nth(100) {
        None => s.to_string(),
        Some((at, _)) => format!("{}…", &s[..at]),
    }
}

/// The sales file a body holds: decompressed as `how` says, within `max_bytes`
/// (`sales.max_file_bytes`). An empty body or file, compression that does not decode, a zip
/// without exactly one file, or more than `max_bytes` decompressed is a [`Rejection`].
/// Whether the bytes are a valid sales file is load-sales' judgement, not this one's.
pub fn decode(body: &[u8], how: Compression, max_bytes: u64) -> Result<Vec<u8>, Rejection> {
    if body.is_empty() {
        return Err(reject("the body is empty"));
    }
    let too_large =
        || reject(format!("the decompressed body is larger than sales.max_file_bytes = {max_bytes}"));
    let content = match how {
        Compression::Plain if body.len() as u64 > max_bytes => return Err(too_large()),
        Compression::Plain => body.to_vec(),
        Compression::Gzip => match format::read_bytes(body.to_vec(), true, max_bytes) {
            Ok(raw) => raw.content,
            Err(ReadError::Broken { broken, .. }) if broken.rule == 9 => return Err(too_large()),
            Err(ReadError::Broken { broken, .. }) => {
                return Err(reject(format!("gzip does not decode: {}", broken.message)))
            }
            Err(ReadError::Io(e)) => return Err(reject(format!("gzip does not decode: {e}"))),
        },
        Compression::Zip => unzip_one(body, max_bytes)?,
    };
    if content.is_empty() {
        return Err(reject("the decompressed body is empty"));
    }
    Ok(content)
}

/// The one file of a zip archive (directories in it are not counted).
fn unzip_one(body: &[u8], max_bytes: u64) -> Result<Vec<u8>, Rejection> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(body))
        .map_err(|e| reject(format!("zip does not decode: {e}")))?;
    let mut files = Vec::new();
    for i in 0..zip.len() {
        let entry = zip.by_index_raw(i).map_err(|e| reject(format!("zip does not decode: {e}")))?;
        if !entry.is_dir() {
            files.push(i);
        }
    }
    let [index] = files[..] else {
        return Err(reject(format!("the zip holds {} files, not exactly one", files.len())));
    };
    let entry = zip.by_index(index).map_err(|e| reject(format!("zip does not decode: {e}")))?;
    let mut content = Vec::new();
    entry
        .take(max_bytes.saturating_add(1))
        .read_to_end(&mut content)
        .map_err(|e| reject(format!("zip does not decode: {e}")))?;
    if content.len() as u64 > max_bytes {
        return Err(reject(format!(
            "the decompressed body is larger than sales.max_file_bytes = {max_bytes}"
        )));
    }
    Ok(content)
}

/// The prefix of every file `receive` writes.
pub const FILE_PREFIX: &str = "amqp-";

/// The name of the file that holds `content`: `amqp-<first 32 hex digits of its SHA-256>.json`.
/// The same content always gets the same name, so a message delivered twice is one file.
pub fn file_name(content: &[u8]) -> String {
    let digest = Sha256::digest(content);
    format!("{FILE_PREFIX}{}.json", &hex::encode(digest)[..32])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn zipped(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for (name, data) in files {
            let opts =
                zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
            w.start_file(*name, opts).unwrap();
            w.write_all(data).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    #[test]
    fn the_name_is_the_hash_of_the_decompressed_content() {
        let name = file_name(b"{}");
        // sha256("{}") = 44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a
        assert_eq!(name, "amqp-44136fa355b3678a1146ad16f7e8649e.json");
        assert!(format::is_sales_file_name(&name));
        let body = b"{\"format\":\"csjobs-sales/1\"}";
        let plain = decode(body, Compression::Plain, 1000).unwrap();
        let gzipped = decode(&gz(body), Compression::Gzip, 1000).unwrap();
        let zip = decode(&zipped(&[("a.json", body)]), Compression::Zip, 1000).unwrap();
        assert_eq!((&plain, &gzipped, &zip), (&body.to_vec(), &body.to_vec(), &body.to_vec()));
    }

    #[test]
    fn compression_follows_the_header_and_the_property() {
        assert_eq!(compression(None, None), Ok(Compression::Plain));
        assert_eq!(compression(Some("utf-8"), Some("")), Ok(Compression::Plain));
        assert_eq!(compression(Some("gzip"), None), Ok(Compression::Gzip));
        assert_eq!(compression(None, Some("gzip")), Ok(Compression::Gzip));
        assert_eq!(compression(None, Some("ZIP")), Ok(Compression::Zip));
        assert!(compression(None, Some("rar")).unwrap_err().0.contains("unknown compressMethod \"rar\""));
        assert!(compression(Some("gzip"), Some("zip")).is_err());
    }

    #[test]
    fn what_cannot_become_a_sales_file_is_rejected_with_its_reason() {
        let r = |body: &[u8], how| decode(body, how, 100).unwrap_err().0;
        assert_eq!(r(b"", Compression::Plain), "the body is empty");
        assert!(r(b"not gzip", Compression::Gzip).starts_with("gzip does not decode"));
        assert!(r(b"not zip", Compression::Zip).starts_with("zip does not decode"));
        assert_eq!(r(&zipped(&[]), Compression::Zip), "the zip holds 0 files, not exactly one");
        assert_eq!(
            r(&zipped(&[("a", b"x"), ("b", b"y")]), Compression::Zip),
            "the zip holds 2 files, not exactly one"
        );
        assert_eq!(r(&gz(b""), Compression::Gzip), "the decompressed body is empty");
        let big = vec![b' '; 101];
        for (body, how) in [
            (big.clone(), Compression::Plain),
            (gz(&big), Compression::Gzip),
            (zipped(&[("a", &big)]), Compression::Zip),
        ] {
            assert!(r(&body, how).contains("larger than sales.max_file_bytes = 100"), "{how:?}");
        }
        assert_eq!(decode(&big[..100], Compression::Plain, 100).unwrap().len(), 100);
    }
}
