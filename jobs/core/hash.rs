//! SHA-256 of a stream (sha2 0.11 no longer implements `io::Write`, so `io::copy` into a
//! hasher is gone): one place reads in blocks and updates the hash.

use std::io::{self, Read};

use sha2::{Digest, Sha256};

/// The SHA-256 of everything `r` yields, read in 64 KiB blocks.
pub fn sha256_of(r: &mut impl Read) -> io::Result<[u8; 32]> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => h.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(h.finalize().into())
}

/// The size and SHA-256 (hex) of a file, streamed: never read whole into memory.
pub fn sha256_of_file(path: &std::path::Path) -> io::Result<(u64, String)> {
    let mut f = fs_err::File::open(path)?;
    let size = f.metadata()?.len();
    Ok((size, hex::encode(sha256_of(&mut f)?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_as_hashing_at_once() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let at_once: [u8; 32] = Sha256::digest(&data).into();
        assert_eq!(sha256_of(&mut &data[..]).unwrap(), at_once);
        assert_eq!(
            hex::encode(sha256_of(&mut &b""[..]).unwrap()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
