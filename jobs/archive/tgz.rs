//! The archive format, in one place: a POSIX/GNU tar stream compressed as a series of
//! independent gzip members (RFC 1952 allows any number of members in one file; GNU tar,
//! gzip and every zlib reader decompress them as one stream). Independent members let
//! several threads compress at once while the file stays a plain `.tgz`.
//!
//! Writing: one thread walks the files and builds the tar stream (hashing each file's bytes
//! as they pass), cutting it into chunks; worker threads compress the chunks; one thread
//! writes the members in order and fsyncs the file. Memory is bounded by the chunks in
//! flight. Reading: [`read_entries`] streams an archive back and hashes every entry, which
//! is both the read-back check of `archive` and what replay and recovery use.

use fs_err::File;
use std::{
    fs::Metadata,
    io::{self, BufReader, Read, Write},
    os::unix::{ffi::OsStrExt, fs::MetadataExt},
    path::{Path, PathBuf},
    sync::{
        mpsc::{sync_channel, Receiver, SyncSender},
        Arc, Mutex,
    },
    thread::JoinHandle,
};

use flate2::read::MultiGzDecoder;
use sha2::{Digest, Sha256};

/// Uncompressed bytes per gzip member. Each member starts with an empty dictionary; at
/// 1 MiB that costs well under 1 % of compression against one long stream.
pub const CHUNK: usize = 1 << 20;

/// libdeflate level. libdeflate compresses better than zlib at the same level: its level 5
/// gives archives the size of `gzip -6` (GNU tar's default) at about four times gzip's
/// speed per core (scripts/bench-archive.sh prints both).
const LEVEL: i32 = 5;

/// A file to pack, as it was when the run listed it.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub path: PathBuf,
    /// Path inside the archive: relative to the source directory, `/`-separated.
    pub rel: PathBuf,
    pub size: u64,
    pub mtime: i64,
    pub mtime_nsec: i64,
    pub mode: u32,
    pub ino: u64,
}

impl SourceFile {
    pub fn new(path: PathBuf, rel: PathBuf, meta: &Metadata) -> Self {
        SourceFile {
            path,
            rel,
            size: meta.len(),
            mtime: meta.mtime(),
            mtime_nsec: meta.mtime_nsec(),
            mode: meta.mode() & 0o7777,
            ino: meta.ino(),
        }
    }

    /// True when `meta` still describes the file this was made from (same inode, size and
    /// modification time): deleting it then deletes what was archived.
    pub fn unchanged(&self, meta: &Metadata) -> bool {
        meta.is_file()
            && meta.ino() == self.ino
            && meta.len() == self.size
            && meta.mtime() == self.mtime
            && meta.mtime_nsec() == self.mtime_nsec
    }
}

/// One entry of an archive: what the read-back compares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub rel: PathBuf,
    pub size: u64,
    pub mtime: u64,
    pub mode: u32,
    pub sha256: [u8; 32],
}

/// Why packing stopped.
#[derive(Debug, thiserror::Error)]
pub enum PackError {
    /// A source file failed while being read: the archive is not usable.
    #[error("cannot read {path}: {source}")]
    Source { path: PathBuf, source: io::Error },
    /// Writing or compressing the archive failed (disk full, I/O error).
    #[error("cannot write the archive: {0}")]
    Write(io::Error),
}

/// What [`write`] produced.
#[derive(Debug)]
pub struct Packed {
    pub entries: Vec<Entry>,
    /// Files that could not be opened: not in the archive, left where they are.
    pub unreadable: Vec<(PathBuf, io::Error)>,
    /// Files that shrank while being read: their entries are padded with zeros to the size
    /// listed (as GNU tar does), so they are not the file; the file stays for the next run.
    pub shrank: Vec<PathBuf>,
    pub compressed_bytes: u64,
}

/// Packs `files` into `out` (a new, empty file) with `threads` compressing threads, then
/// flushes and fsyncs it. A file that cannot be opened is skipped and reported; a file that
/// shrinks while being read is padded with zeros and reported in [`Packed::shrank`] (one
/// file rewritten under the run does not stop the others); a file that fails while being
/// read fails the whole archive. `progress` is told the size of each file once it is in the
/// stream.
pub fn write(
    out: File,
    files: &[SourceFile],
    threads: usize,
    progress: &dyn Fn(u64),
) -> Result<Packed, PackError> {
    let stream = ParallelGz::new(out, threads.max(1));
    let mut tar = tar::Builder::new(stream);
    let mut entries = Vec::with_capacity(files.len());
    let mut unreadable = Vec::new();
    let mut shrank = Vec::new();
    let mut failed: Option<PackError> = None;
    for f in files {
        let file = match File::open(&f.path) {
            Ok(file) => file,
            Err(e) => {
                unreadable.push((f.path.clone(), e));
                continue;
            }
        };
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(f.size);
        header.set_mode(f.mode);
        header.set_mtime(f.mtime.max(0) as u64);
        if let Ok(meta) = file.metadata() {
            header.set_uid(meta.uid() as u64);
            header.set_gid(meta.gid() as u64);
        }
        let mut reader = HashingReader::new(file, f.size);
        match tar.append_data(&mut header, &f.rel, &mut reader) {
            Ok(()) => {
                entries.push(Entry {
                    rel: f.rel.clone(),
                    size: f.size,
                    mtime: f.mtime.max(0) as u64,
                    mode: f.mode,
                    sha256: reader.hasher.finalize().into(),
                });
                if reader.shrank {
                    shrank.push(f.path.clone());
                }
                progress(f.size);
            }
            Err(e) if reader.source_error => {
                failed = Some(PackError::Source { path: f.path.clone(), source: e });
                break;
            }
            Err(e) => {
                failed = Some(PackError::Write(e));
                break;
            }
        }
    }
    let stream = match (failed, tar.into_inner()) {
        (Some(e), _) => return Err(e),
        (None, Err(e)) => return Err(PackError::Write(e)),
        (None, Ok(stream)) => stream,
    };
    let compressed_bytes = stream.finish().map_err(PackError::Write)?;
    Ok(Packed { entries, unreadable, shrank, compressed_bytes })
}

/// Reads a file for the tar stream: exactly `size` bytes (a file that shrank is padded with
/// zeros and marked, bytes it grew by are not taken), hashing them on the way.
struct HashingReader {
    inner: io::Take<BufReader<File>>,
    remaining: u64,
    hasher: Sha256,
    source_error: bool,
    /// The file ended before `size` bytes: the rest of the entry is zeros.
    shrank: bool,
}

impl HashingReader {
    fn new(file: File, size: u64) -> Self {
        HashingReader {
            inner: BufReader::with_capacity(256 * 1024, file).take(size),
            remaining: size,
            hasher: Sha256::new(),
            source_error: false,
            shrank: false,
        }
    }
}

impl Read for HashingReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = match self.inner.read(buf) {
            Ok(0) if self.remaining > 0 && !buf.is_empty() => {
                // Rewritten under the run (truncated, then written): the tar header holds the
                // size listed, so the entry is made up to it with zeros.
                self.shrank = true;
                let n = buf.len().min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
                buf[..n].fill(0);
                n
            }
            Ok(n) => n,
            Err(e) => {
                self.source_error = true;
                return Err(e);
            }
        };
        self.hasher.update(&buf[..n]);
        self.remaining -= n as u64;
        Ok(n)
    }
}

type Member = io::Result<Vec<u8>>;

/// A `Write` that compresses what it is given as independent gzip members on worker
/// threads and writes them, in order, to a file.
struct ParallelGz {
    buf: Vec<u8>,
    jobs: Option<SyncSender<(Vec<u8>, SyncSender<Member>)>>,
    order: Option<SyncSender<Receiver<Member>>>,
    workers: Vec<JoinHandle<()>>,
    writer: Option<JoinHandle<io::Result<u64>>>,
    /// The first error of the writer thread, so a failed `write` says why (disk full).
    error: Arc<Mutex<Option<(io::ErrorKind, String)>>>,
}

impl ParallelGz {
    fn new(out: File, threads: usize) -> Self {
        let (jobs_tx, jobs_rx) = sync_channel::<(Vec<u8>, SyncSender<Member>)>(threads);
        let jobs_rx = Arc::new(Mutex::new(jobs_rx));
        let workers = (0..threads)
            .map(|i| {
                let rx = Arc::clone(&jobs_rx);
                std::thread::Builder::new()
                    .name(format!("gzip-{i}"))
                    .spawn(move || {
                        let mut compressor = libdeflater::Compressor::new(
                            libdeflater::CompressionLvl::new(LEVEL).expect("a valid level"),
                        );
                        loop {
                            let job = rx.lock().expect("job queue lock").recv();
                            let Ok((chunk, done)) = job else { return };
                            let _ = done.send(compress(&mut compressor, &chunk));
                        }
                    })
                    .expect("spawn a compressing thread")
            })
            .collect();
        let (order_tx, order_rx) = sync_channel::<Receiver<Member>>(threads * 4);
        let error = Arc::new(Mutex::new(None));
        let err = Arc::clone(&error);
        let writer = std::thread::Builder::new()
            .name("archive-writer".into())
            .spawn(move || {
                let result = write_members(out, order_rx);
                if let Err(e) = &result {
                    *err.lock().expect("error slot") = Some((e.kind(), e.to_string()));
                }
                result
            })
            .expect("spawn the archive writer");
        ParallelGz {
            buf: Vec::with_capacity(CHUNK),
            jobs: Some(jobs_tx),
            order: Some(order_tx),
            workers,
            writer: Some(writer),
            error,
        }
    }

    fn stopped(&self) -> io::Error {
        match &*self.error.lock().expect("error slot") {
            Some((kind, msg)) => io::Error::new(*kind, msg.clone()),
            None => io::Error::other("the archive writer stopped"),
        }
    }

    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        let (done_tx, done_rx) = sync_channel(1);
        let order = self.order.as_ref().expect("open");
        if order.send(done_rx).is_err() {
            return Err(self.stopped());
        }
        if self.jobs.as_ref().expect("open").send((chunk, done_tx)).is_err() {
            return Err(self.stopped());
        }
        Ok(())
    }

    /// Compresses what is left, waits for every member to be written, fsyncs the file and
    /// returns its size.
    fn finish(mut self) -> io::Result<u64> {
        let sent = self.send();
        self.jobs.take();
        self.order.take();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
        let written = self.writer.take().expect("writer").join().expect("archive writer panicked");
        sent.and(written)
    }
}

impl Write for ParallelGz {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for ParallelGz {
    fn drop(&mut self) {
        self.jobs.take();
        self.order.take();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
    }
}

/// One complete gzip member (header, deflate stream, CRC-32 and size) of `chunk`.
fn compress(compressor: &mut libdeflater::Compressor, chunk: &[u8]) -> Member {
    let mut out = vec![0u8; compressor.gzip_compress_bound(chunk.len())];
    let n = compressor.gzip_compress(chunk, &mut out).map_err(|e| io::Error::other(format!("{e:?}")))?;
    out.truncate(n);
    Ok(out)
}

fn write_members(mut out: File, order: Receiver<Receiver<Member>>) -> io::Result<u64> {
    let mut total = 0u64;
    for done in order {
        let member = done.recv().map_err(|_| io::Error::other("a compressing thread died"))??;
        out.write_all(&member)?;
        total += member.len() as u64;
    }
    out.sync_all()?;
    Ok(total)
}

/// Streams an archive and returns its regular-file entries with their content hashes,
/// calling `each` with every entry and, when `keep_content` asks for them, its bytes (handed
/// over, not copied: replay parses them; the read-back check keeps none). Fails on a corrupt
/// gzip or tar stream.
pub fn read_entries(
    path: &Path,
    mut each: impl FnMut(&Entry, Vec<u8>) -> io::Result<()>,
    keep_content: impl Fn(&Path, u64) -> bool,
) -> io::Result<Vec<Entry>> {
    let file = File::open(path)?;
    let gz = MultiGzDecoder::new(BufReader::with_capacity(256 * 1024, file));
    let mut archive = tar::Archive::new(gz);
    let mut out = Vec::new();
    let mut buf = vec![0u8; 256 * 1024];
    for entry in archive.entries()? {
        let mut entry = entry?;
        if entry.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let rel = PathBuf::from(std::ffi::OsStr::from_bytes(&entry.path_bytes()));
        let size = entry.size();
        let keep = keep_content(&rel, size);
        let mut content = if keep { Vec::with_capacity(size as usize) } else { Vec::new() };
        let mut hasher = Sha256::new();
        let mut read = 0u64;
        loop {
            let n = entry.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            if keep {
                content.extend_from_slice(&buf[..n]);
            }
            read += n as u64;
        }
        if read != size {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("entry {} is cut short ({read} of {size} bytes)", rel.display()),
            ));
        }
        let e = Entry {
            rel,
            size,
            mtime: entry.header().mtime()?,
            mode: entry.header().mode()? & 0o7777,
            sha256: hasher.finalize().into(),
        };
        each(&e, content)?;
        out.push(e);
    }
    Ok(out)
}

/// The read-back check: the archive at `path` holds exactly `expected`, in order, byte for
/// byte. Returns a description of the first difference.
pub fn verify(path: &Path, expected: &[Entry]) -> Result<(), String> {
    let found = read_entries(path, |_, _| Ok(()), |_, _| false)
        .map_err(|e| format!("the archive cannot be read back: {e}"))?;
    if found.len() != expected.len() {
        return Err(format!("the archive holds {} entries, {} were written", found.len(), expected.len()));
    }
    for (f, e) in found.iter().zip(expected) {
        if f != e {
            return Err(format!(
                "entry {} differs from what was written (size {} vs {}, or content/mtime/mode)",
                e.rel.display(),
                f.size,
                e.size
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(dir: &Path, rel: &str, content: &[u8]) -> SourceFile {
        let path = dir.join(rel);
        fs_err::create_dir_all(path.parent().unwrap()).unwrap();
        fs_err::write(&path, content).unwrap();
        let meta = fs_err::metadata(&path).unwrap();
        SourceFile::new(path, PathBuf::from(rel), &meta)
    }

    #[test]
    fn members_round_trip_and_verify() {
        let d = tempfile::tempdir().unwrap();
        let big: Vec<u8> = (0..3 * CHUNK + 77).map(|i| (i % 251) as u8 ^ (i / 4093) as u8).collect();
        let long = format!("sub/{}/x.json", "d".repeat(120));
        let files = vec![
            source(d.path(), "a.json", b"{\"x\":1}"),
            source(d.path(), "empty.json", b""),
            source(d.path(), "sub/big.bin", &big),
            source(d.path(), &long, b"long name"),
        ];
        let out = d.path().join("out.tgz");
        let packed = write(File::create(&out).unwrap(), &files, 2, &|_| {}).unwrap();
        assert_eq!(packed.entries.len(), 4);
        assert!(packed.unreadable.is_empty());
        assert_eq!(packed.compressed_bytes, fs_err::metadata(&out).unwrap().len());
        verify(&out, &packed.entries).unwrap();
        let mut seen = Vec::new();
        read_entries(
            &out,
            |e, c| {
                seen.push((e.rel.clone(), c));
                Ok(())
            },
            |_, _| true,
        )
        .unwrap();
        assert_eq!(seen[2].1, big);
        assert_eq!(seen[3].0, PathBuf::from(&long));

        // A flipped byte in the middle is caught by the read-back.
        let mut bytes = fs_err::read(&out).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x55;
        fs_err::write(&out, &bytes).unwrap();
        assert!(verify(&out, &packed.entries).is_err());
    }

    /// The read-back compares each entry with what was written: an archive whose entry
    /// differs in content (same size), mtime or mode, or that lacks or adds an entry, fails
    /// the check — what allows deleting the sources.
    #[test]
    fn an_entry_that_differs_from_what_was_written_fails_the_read_back() {
        let d = tempfile::tempdir().unwrap();
        let files = vec![source(d.path(), "a.json", b"{\"x\":1}"), source(d.path(), "b.json", b"bbbb")];
        let out = d.path().join("out.tgz");
        let packed = write(File::create(&out).unwrap(), &files, 1, &|_| {}).unwrap();
        verify(&out, &packed.entries).unwrap();
        let changed = |f: &dyn Fn(&mut Vec<Entry>)| {
            let mut e = packed.entries.clone();
            f(&mut e);
            verify(&out, &e)
        };
        let content = changed(&|e| e[1].sha256[0] ^= 1).unwrap_err();
        assert!(content.contains("entry b.json differs"), "{content}");
        assert!(changed(&|e| e[0].mtime += 1).unwrap_err().contains("entry a.json differs"));
        assert!(changed(&|e| e[0].mode ^= 0o100).unwrap_err().contains("entry a.json differs"));
        assert!(changed(&|e| e.swap(0, 1)).unwrap_err().contains("differs"));
        assert!(changed(&|e| {
            e.pop();
        })
        .unwrap_err()
        .contains("holds 2 entries, 1 were written"));
    }

    #[test]
    fn a_file_that_shrank_is_padded_reported_and_the_others_are_packed() {
        let d = tempfile::tempdir().unwrap();
        let mut a = source(d.path(), "a.json", b"0123456789");
        a.size = 20;
        let b = source(d.path(), "b.json", b"{}");
        let out = d.path().join("o.tgz");
        let packed = write(File::create(&out).unwrap(), &[a.clone(), b], 1, &|_| {}).unwrap();
        assert_eq!(packed.shrank, [a.path.clone()]);
        assert_eq!(packed.entries.len(), 2, "the file after it is packed too");
        let padded: [u8; 32] = Sha256::digest(b"0123456789\0\0\0\0\0\0\0\0\0\0").into();
        assert_eq!((packed.entries[0].size, packed.entries[0].sha256), (20, padded));
        verify(&out, &packed.entries).unwrap();
    }
}
