//! File-queue mechanics shared by the jobs that move files (`load-sales`, `archive`,
//! replay): listing a directory in processing order, moving a file into a directory without
//! ever overwriting what is there, and making renames durable with a directory fsync.
//! Nothing here knows what a file contains.

use fs_err as fs;
use std::{
    io,
    path::{Path, PathBuf},
    time::SystemTime,
};

use rustix::fs::{renameat_with, RenameFlags, CWD};

/// A file waiting in a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedFile {
    pub path: PathBuf,
    pub name: String,
    pub size: u64,
    pub mtime: SystemTime,
}

/// The regular files directly in `dir` whose name `accept`s, ordered by
/// (modification time, name). Sub-directories, links to directories and names that are not
/// UTF-8 are skipped.
pub fn list(dir: &Path, accept: impl Fn(&str) -> bool) -> io::Result<Vec<QueuedFile>> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if !accept(&name) {
            continue;
        }
        let meta = match fs::metadata(entry.path()) {
            Ok(m) => m,
            // Moved away by someone else between readdir and stat.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if !meta.is_file() {
            continue;
        }
        files.push(QueuedFile { path: entry.path(), name, size: meta.len(), mtime: meta.modified()? });
    }
    sort_in_processing_order(&mut files);
    Ok(files)
}

/// The processing order of queued files: oldest modification time first, then by name.
pub fn sort_in_processing_order(files: &mut [QueuedFile]) {
    files.sort_by(|a, b| a.mtime.cmp(&b.mtime).then_with(|| a.name.cmp(&b.name)));
}

/// `name` with the numeric suffix `k` put before its extension, so the result keeps the
/// extension its readers look for: `a.json` → `a.1.json`, `a.json.gz` → `a.1.json.gz`,
/// `README` → `README.1`.
pub fn suffixed_name(name: &str, k: u32) -> String {
    const DOUBLE: [&str; 3] = [".json.gz", ".tar.gz", ".csv.gz"];
    if let Some(ext) = DOUBLE.iter().find(|ext| name.len() > ext.len() && name.ends_with(*ext)) {
        return format!("{}.{k}{ext}", &name[..name.len() - ext.len()]);
    }
    match name.rfind('.') {
        Some(dot) if dot > 0 => format!("{}.{k}{}", &name[..dot], &name[dot..]),
        _ => format!("{name}.{k}"),
    }
}

/// Moves `src` into `dest_dir` under its own name or, when that name is taken, under the
/// first free [`suffixed_name`]. Never overwrites: the rename itself refuses an existing
/// target (`RENAME_NOREPLACE`), so two movers cannot clobber each other. Returns the new
/// path. Does not fsync; call [`fsync_dir`] on both directories once a batch is moved.
pub fn move_no_overwrite(src: &Path, dest_dir: &Path) -> io::Result<PathBuf> {
    let name = src
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "file name is not UTF-8"))?;
    for k in 0..100_000u32 {
        let candidate = if k == 0 { name.to_string() } else { suffixed_name(name, k) };
        let dest = dest_dir.join(&candidate);
        match rename_noreplace(src, &dest) {
            Ok(()) => return Ok(dest),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other(format!("no free name for {name} in {} after 100000 tries", dest_dir.display())))
}

/// Renames `src` to `dest`, failing with `AlreadyExists` instead of replacing an existing `dest`.
pub fn rename_noreplace(src: &Path, dest: &Path) -> io::Result<()> {
    match renameat_with(CWD, src, CWD, dest, RenameFlags::NOREPLACE) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::EXIST) => Err(io::ErrorKind::AlreadyExists.into()),
        // File systems without RENAME_NOREPLACE: link(2) refuses an existing name too.
        Err(rustix::io::Errno::INVAL) | Err(rustix::io::Errno::NOSYS) => {
            fs::hard_link(src, dest)?;
            fs::remove_file(src)
        }
        // Another file system: copy to a temporary name, fsync, link into place, then
        // remove the source. A crash leaves at worst both copies, never none.
        Err(rustix::io::Errno::XDEV) => copy_across(src, dest),
        Err(e) => Err(e.into()),
    }
}

/// The mark of the temporary name [`move_no_overwrite`] copies through across file systems.
/// Such a file is a move in flight: other jobs (archive) leave it alone.
pub const TEMP_MARK: &str = ".csjobs-tmp-";

/// Whether `name` is a move in flight (see [`TEMP_MARK`]).
pub fn is_move_in_flight(name: &str) -> bool {
    name.starts_with('.') && name.contains(TEMP_MARK)
}

/// Copies `src` to `dest` on another file system: to a temporary name, with the source's
/// modification time (the queue's order is by mtime, so a moved file keeps its place) and
/// fsynced, then linked into place (refusing an existing `dest`), the directory fsynced, and
/// the source removed. A failing step removes the temporary copy and reports the error.
fn copy_across(src: &Path, dest: &Path) -> io::Result<()> {
    let dir = dest.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}{TEMP_MARK}{}",
        dest.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        std::process::id()
    ));
    let copied = (|| {
        let mtime = fs::metadata(src)?.modified()?;
        fs::copy(src, &tmp)?;
        let f = fs::File::options().write(true).open(&tmp)?;
        f.set_modified(mtime)?;
        f.sync_all()?;
        fs::hard_link(&tmp, dest)
    })();
    let removed = fs::remove_file(&tmp);
    copied?;
    removed?;
    fsync_dir(dir)?;
    fs::remove_file(src)
}

/// Writes `bytes` as `path` so that `path` holds either its old content or the whole new
/// one: a temporary file beside it (`.<name>.csjobs-tmp-<tag>`), fsync, rename over `path`.
/// The temporary file is removed when a step fails. The rename is durable once the caller
/// fsyncs the directory ([`fsync_dir`]); a caller writing many files does that once per
/// directory.
pub fn replace_file(path: &Path, bytes: &[u8], tag: &str) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}{TEMP_MARK}{tag}"));
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        io::Write::write_all(&mut f, bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Makes renames into or out of `dir` durable.
pub fn fsync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn suffix_keeps_the_extension() {
        assert_eq!(suffixed_name("a.json", 1), "a.1.json");
        assert_eq!(suffixed_name("shift.412.json.gz", 2), "shift.412.2.json.gz");
        assert_eq!(suffixed_name("README", 3), "README.3");
        assert_eq!(suffixed_name(".hidden", 1), ".hidden.1");
    }

    #[test]
    fn move_never_overwrites_an_existing_name() {
        let d = tempfile::tempdir().unwrap();
        let (q, p) = (d.path().join("q"), d.path().join("p"));
        fs::create_dir_all(&q).unwrap();
        fs::create_dir_all(&p).unwrap();
        fs::write(p.join("a.json"), "old").unwrap();
        fs::write(p.join("a.1.json"), "older").unwrap();
        fs::write(q.join("a.json"), "new").unwrap();
        let moved = move_no_overwrite(&q.join("a.json"), &p).unwrap();
        assert_eq!(moved, p.join("a.2.json"));
        assert_eq!(fs::read_to_string(p.join("a.json")).unwrap(), "old");
        assert_eq!(fs::read_to_string(p.join("a.1.json")).unwrap(), "older");
        assert_eq!(fs::read_to_string(&moved).unwrap(), "new");
        assert!(!q.join("a.json").exists());
    }

    /// A move to another file system (tmpfs /dev/shm → the disk of the temporary directory)
    /// copies: the copy keeps the modification time (the queue's order) and the content.
    #[test]
    fn a_move_across_file_systems_keeps_the_modification_time() {
        use std::os::unix::fs::MetadataExt;
        let shm = Path::new("/dev/shm");
        let src_dir = tempfile::tempdir_in(shm).expect("a tmpfs at /dev/shm");
        let dest_dir = tempfile::tempdir().unwrap();
        let dev = |p: &Path| fs::metadata(p).unwrap().dev();
        assert_ne!(dev(src_dir.path()), dev(dest_dir.path()), "the test needs two file systems");
        let src = src_dir.path().join("a.json");
        fs::write(&src, "sales").unwrap();
        let mtime = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_123);
        fs::File::options().write(true).open(&src).unwrap().set_modified(mtime).unwrap();
        let moved = move_no_overwrite(&src, dest_dir.path()).unwrap();
        assert_eq!(moved, dest_dir.path().join("a.json"));
        assert!(!src.exists());
        assert_eq!(fs::read_to_string(&moved).unwrap(), "sales");
        assert_eq!(fs::metadata(&moved).unwrap().modified().unwrap(), mtime);
        let left: Vec<_> = fs::read_dir(dest_dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left.len(), 1, "no temporary copy is left: {left:?}");
    }

    #[test]
    fn list_orders_by_mtime_then_name_and_filters() {
        let d = tempfile::tempdir().unwrap();
        let base = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        for (name, secs) in [("c.json", 5), ("b.json", 1), ("a.json", 1), ("x.tmp", 0)] {
            let p = d.path().join(name);
            fs::write(&p, "{}").unwrap();
            fs::File::options()
                .write(true)
                .open(&p)
                .unwrap()
                .set_modified(base + Duration::from_secs(secs))
                .unwrap();
        }
        fs::create_dir(d.path().join("sub.json")).unwrap();
        let names: Vec<_> =
            list(d.path(), |n| n.ends_with(".json")).unwrap().into_iter().map(|f| f.name).collect();
        assert_eq!(names, ["a.json", "b.json", "c.json"]);
    }
}
