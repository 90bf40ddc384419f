//! `csjobs trim-dicts`: empties the directory where the cash server keeps the dictionary
//! archives it sends to the cash registers (справочники для касс), named by the cash server
//! setting `SEND_DICTS_ON_CASHES_BY_URL_LOCAL_DIRECTORY`.
//!
//! read (the setting) → validate ([`check_directory`], pure but for `stat`) → plan (the
//! entries inside) → dispose (remove them). Removing never follows a symbolic link: a link
//! inside the directory is removed as a link, its target untouched.

use fs_err as fs;
use std::{
    io,
    os::unix::ffi::OsStrExt,
    path::{Component, Path, PathBuf},
};

use anyhow::Context;

use crate::core::{
    config::Config,
    db::{self, Database},
    output,
    runner::{Frame, Ran},
    JobError, Outcome,
};

pub const JOB: &str = "trim-dicts";
/// The cash server setting (table `settings`) naming the directory.
pub const SETTING: &str = "SEND_DICTS_ON_CASHES_BY_URL_LOCAL_DIRECTORY";

/// Directories that are never emptied, whatever the setting says: `/`, the system
/// directories of rules.md §3 and, as the safer reading, the other top-level directories of
/// the FHS that hold other people's data.
const PROTECTED: &[&str] = &[
    "/", "/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/root", "/run",
    "/sbin", "/sys", "/usr", "/var", "/home", "/opt", "/srv", "/tmp", "/mnt", "/media",
];

/// The system trees of rules.md §3: nothing inside them (nor they) is emptied. `/lib*` is
/// every top-level directory whose name starts with `lib` (see [`system_tree`]).
const SYSTEM_TREES: &[&str] =
    &["/usr", "/etc", "/boot", "/proc", "/sys", "/dev", "/run", "/bin", "/sbin", "/root", "/var/lib"];

/// The options of `csjobs trim-dicts` (its `--help` is these doc comments).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TrimDictsOptions {
    /// List what would be removed; remove nothing
    #[arg(long)]
    pub dry_run: bool,
}

/// Why a configured directory is refused. Each names the rule; the caller names the setting
/// and the value.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Refused {
    #[error("is not an absolute path")]
    Relative,
    #[error("contains `..`")]
    DotDot,
    #[error("does not exist")]
    Missing,
    #[error("is a symbolic link (the directory itself must be named, not a link to it)")]
    Symlink,
    #[error("is not a directory")]
    NotDirectory,
    #[error("is {0}, a system directory that is never emptied")]
    System(String),
    #[error("is {path}, inside the system directory {tree} (nothing inside {tree} is ever emptied)")]
    InsideSystem { path: String, tree: String },
    #[error("is a home directory ({0})")]
    Home(String),
    #[error("is {path}, which contains the home directory {home}")]
    HoldsHome { path: String, home: String },
    #[error("is the csjobs directory {0} (a paths.* setting)")]
    Ours(String),
    #[error("is {path}, which contains the csjobs directory {ours} (a paths.* setting)")]
    HoldsOurs { path: String, ours: String },
    #[error("is {path}, inside the csjobs directory {ours} (a paths.* setting)")]
    InsideOurs { path: String, ours: String },
    #[error("cannot be inspected: {0}")]
    Io(String),
}

/// Validates the configured directory. `homes` are the users' home directories,
/// `ours` the directories csjobs works in (queue, processed, …): emptying a directory that
/// is, holds or lies inside one of them would lose sales files or archives. Judged on the
/// path as written and on its canonical path (links and `..` resolved), so a link higher up
/// cannot make a forbidden directory look innocent.
pub fn check_directory(value: &str, homes: &[PathBuf], ours: &[&Path]) -> Result<PathBuf, Refused> {
    let path = Path::new(value);
    if !path.is_absolute() {
        return Err(Refused::Relative);
    }
    if path.components().any(|c| c == Component::ParentDir) {
        return Err(Refused::DotDot);
    }
    // Lexically normal: no `.`, no doubled or trailing slashes.
    let path: PathBuf = path.components().collect();
    let homes: Vec<PathBuf> = homes.iter().map(|h| canonical_or_lexical(h)).collect();
    let ours: Vec<PathBuf> = ours.iter().map(|o| canonical_or_lexical(o)).collect();
    protected(&path, &homes)?;
    let meta = match fs::symlink_metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(Refused::Missing),
        Err(e) => return Err(Refused::Io(e.to_string())),
    };
    if meta.file_type().is_symlink() {
        return Err(Refused::Symlink);
    }
    if !meta.is_dir() {
        return Err(Refused::NotDirectory);
    }
    // A link higher up (/opt/x → /) could make an innocent-looking path a system one: check
    // the real path as well.
    let real = fs::canonicalize(&path).map_err(|e| Refused::Io(e.to_string()))?;
    protected(&real, &homes)?;
    for p in [&path, &real] {
        for o in &ours {
            if p == o {
                return Err(Refused::Ours(o.display().to_string()));
            }
            if o.starts_with(p) {
                return Err(Refused::HoldsOurs {
                    path: p.display().to_string(),
                    ours: o.display().to_string(),
                });
            }
            if p.starts_with(o) {
                return Err(Refused::InsideOurs {
                    path: p.display().to_string(),
                    ours: o.display().to_string(),
                });
            }
        }
    }
    Ok(path)
}

/// `p` with links and `..` resolved when it exists; else lexically normal (a csjobs
/// directory not created yet is still judged by its name).
fn canonical_or_lexical(p: &Path) -> PathBuf {
    fs::canonicalize(p).unwrap_or_else(|_| p.components().collect())
}

/// `/`, a system directory, a directory inside a system tree, a home directory, or one that
/// holds a home directory.
fn protected(p: &Path, homes: &[PathBuf]) -> Result<(), Refused> {
    if let Some(sys) = PROTECTED.iter().find(|s| p == Path::new(s)) {
        return Err(Refused::System(sys.to_string()));
    }
    if let Some(tree) = system_tree(p) {
        if p == Path::new(&tree) {
            return Err(Refused::System(tree));
        }
        return Err(Refused::InsideSystem { path: p.display().to_string(), tree });
    }
    if let Some(h) = homes.iter().find(|h| p == *h) {
        return Err(Refused::Home(h.display().to_string()));
    }
    if p.parent() == Some(Path::new("/home")) {
        return Err(Refused::Home(p.display().to_string()));
    }
    if let Some(h) = homes.iter().find(|h| h.starts_with(p)) {
        return Err(Refused::HoldsHome { path: p.display().to_string(), home: h.display().to_string() });
    }
    Ok(())
}

/// The system tree `p` is (`/var/lib`) or lies inside (`/usr/local`, `/lib64/x`), if any.
fn system_tree(p: &Path) -> Option<String> {
    if let Some(tree) = SYSTEM_TREES.iter().find(|t| p.starts_with(t)) {
        return Some(tree.to_string());
    }
    match p.components().nth(1) {
        Some(Component::Normal(top)) if top.to_str().is_some_and(|t| t.starts_with("lib")) => {
            Some(format!("/{}", top.to_string_lossy()))
        }
        _ => None,
    }
}

/// The home directories of the users in /etc/passwd.
fn home_directories() -> Vec<PathBuf> {
    let Ok(passwd) = fs::read_to_string("/etc/passwd") else { return Vec::new() };
    passwd.lines().filter_map(|l| l.split(':').nth(5)).filter(|h| h.len() > 1).map(PathBuf::from).collect()
}

/// What emptying the directory did.
#[derive(Debug, Default, serde::Serialize)]
pub struct Removed {
    pub entries: u64,
    pub failed: u64,
}

/// Removes every entry inside `dir` (not `dir` itself). Sub-directories go with their
/// content; links are removed as links. Returns the failures with their paths.
///
/// The directory is opened once (no link followed) and must still be the one that was
/// checked: its real path is read back from the open descriptor. Everything below is found
/// and removed relative to descriptors (`openat`, `unlinkat`), never by path again, so
/// whoever can write a parent directory cannot swap in a link between the check and the
/// removal and have csjobs empty another directory (its own queue, a system one).
pub fn empty_directory(dir: &Path, removed: &mut Removed) -> io::Result<Vec<String>> {
    use rustix::fs::{Mode, OFlags};
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = rustix::fs::open(dir, flags, Mode::empty())?;
    let opened = fs::read_link(format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&fd)))?;
    let checked = fs::canonicalize(dir)?;
    if opened != checked {
        return Err(io::Error::other(format!(
            "{} changed since it was checked (it is now {}): nothing was removed",
            dir.display(),
            opened.display()
        )));
    }
    let mut failures = Vec::new();
    empty_at(&fd, dir, removed, &mut failures, true)?;
    Ok(failures)
}

/// Removes the entries of the open directory `fd` (shown as `shown`), depth first.
fn empty_at(
    fd: &std::os::fd::OwnedFd,
    shown: &Path,
    removed: &mut Removed,
    failures: &mut Vec<String>,
    top: bool,
) -> io::Result<()> {
    use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags};
    let mut names = Vec::new();
    for entry in Dir::read_from(fd)? {
        let entry = entry?;
        let name = entry.file_name().to_owned();
        if name.as_bytes() != b"." && name.as_bytes() != b".." {
            names.push((name, entry.file_type()));
        }
    }
    for (name, kind) in names {
        let path = shown.join(std::ffi::OsStr::from_bytes(name.as_bytes()));
        let kind = match kind {
            FileType::Unknown => rustix::fs::statat(fd, name.as_c_str(), AtFlags::SYMLINK_NOFOLLOW)
                .map(|st| FileType::from_raw_mode(st.st_mode))
                .unwrap_or(FileType::Unknown),
            k => k,
        };
        let result: io::Result<()> = if kind == FileType::Directory {
            let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            rustix::fs::openat(fd, name.as_c_str(), flags, Mode::empty())
                .map_err(io::Error::from)
                .and_then(|sub| empty_at(&sub, &path, removed, failures, false))
                .and_then(|()| Ok(rustix::fs::unlinkat(fd, name.as_c_str(), AtFlags::REMOVEDIR)?))
        } else {
            // A file or a link: the link itself goes, its target is never touched.
            rustix::fs::unlinkat(fd, name.as_c_str(), AtFlags::empty()).map_err(io::Error::from)
        };
        match result {
            Ok(()) if top => removed.entries += 1,
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                if top {
                    removed.failed += 1;
                }
                failures.push(format!("cannot remove {}: {e}", path.display()));
            }
        }
    }
    Ok(())
}

/// Runs `csjobs trim-dicts`.
pub async fn run(cfg: &Config, opts: &TrimDictsOptions) -> Result<Outcome, JobError> {
    let url = cfg.cashserver_url()?;
    let mut client = db::connect(url, Database::CashServer, "csjobs trim-dicts")
        .await
        .map_err(|e| anyhow::anyhow!("{e:#}; nothing was removed"))?;
    let value: Option<String> = client
        .query_opt("select value from settings where name = $1", &[&SETTING])
        .await
        .with_context(|| {
            format!("cannot read the setting {SETTING} from the cash server DB; nothing was removed")
        })?
        .and_then(|r| r.get(0));
    let value = value.map(|v| v.trim().to_string()).unwrap_or_default();
    if value.is_empty() {
        return Err(JobError::usage(format!(
            "the cash server setting {SETTING} (table settings) is missing or empty; nothing was removed"
        )));
    }
    let p = &cfg.paths;
    let ours = [&p.queue, &p.processed, &p.error, &p.broken, &p.backup, &p.astu_outbox].map(|p| p.as_path());
    let dir = check_directory(&value, &home_directories(), &ours).map_err(|why| {
        JobError::usage(format!(
            "the directory {value:?} of the cash server setting {SETTING} {why}; nothing was removed \
             (rules.md §3: fix the setting in table settings)"
        ))
    })?;

    if opts.dry_run {
        let mut out = String::new();
        let mut n = 0;
        for entry in fs::read_dir(&dir).with_context(|| format!("cannot list {}", dir.display()))? {
            let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
            out.push_str(&format!("remove\t{}\n", entry.path().display()));
            n += 1;
        }
        out.push_str(&format!("trim-dicts --dry-run: would remove {n} entries inside {}\n", dir.display()));
        output::say(&out);
        return Ok(Outcome::default());
    }

    let frame = Frame::new(JOB).job_lock(url).await?;
    frame
        .run(cfg, &mut client, async |_| {
            let mut removed = Removed::default();
            let result = match empty_directory(&dir, &mut removed) {
                Err(e) => Err(anyhow::Error::new(e).context(format!("cannot list {}", dir.display())).into()),
                Ok(failures) if !failures.is_empty() => {
                    Err(anyhow::anyhow!("{}", failures.join("\n")).into())
                }
                Ok(_) => Ok(Outcome::default()),
            };
            output::line(&format!(
                "trim-dicts: removed {} entries inside {}{}",
                removed.entries,
                dir.display(),
                if removed.failed > 0 {
                    format!(", {} could not be removed", removed.failed)
                } else {
                    String::new()
                }
            ));
            Ran::new(result, serde_json::to_value(&removed).expect("counters serialize"))
        })
        .await
}

#[cfg(test)]
mod empty_tests {
    use super::*;

    /// The directory is emptied through descriptors: a link inside goes as a link (its target
    /// and what lies there untouched), nested directories go whole, and a path that is no
    /// longer the directory that was checked (here: a link put in its place) removes nothing.
    #[test]
    fn emptying_goes_through_descriptors_and_refuses_a_swapped_directory() {
        let t = tempfile::tempdir().unwrap();
        let dicts = t.path().join("dicts");
        let keep = t.path().join("keep");
        std::fs::create_dir_all(dicts.join("shop8/cash17")).unwrap();
        std::fs::create_dir_all(&keep).unwrap();
        std::fs::write(keep.join("sales.json"), "keep").unwrap();
        std::fs::write(dicts.join("shop8/cash17/a.zip"), "a").unwrap();
        std::fs::write(dicts.join("top.zip"), "t").unwrap();
        std::os::unix::fs::symlink(&keep, dicts.join("link-to-keep")).unwrap();
        std::os::unix::fs::symlink(&keep, dicts.join("shop8/nested-link")).unwrap();

        // Swapped: `dicts` is now a link to `keep` (what a writer of the parent could do
        // between the check and the removal).
        let swapped = t.path().join("swapped");
        std::os::unix::fs::symlink(&keep, &swapped).unwrap();
        let mut removed = Removed::default();
        assert!(empty_directory(&swapped, &mut removed).is_err(), "a link is not opened");
        assert_eq!(std::fs::read_to_string(keep.join("sales.json")).unwrap(), "keep");

        let mut removed = Removed::default();
        let failures = empty_directory(&dicts, &mut removed).unwrap();
        assert!(failures.is_empty(), "{failures:?}");
        assert_eq!(removed.entries, 3, "shop8, top.zip, link-to-keep");
        assert_eq!(std::fs::read_dir(&dicts).unwrap().count(), 0);
        assert_eq!(
            std::fs::read_to_string(keep.join("sales.json")).unwrap(),
            "keep",
            "links' targets untouched"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_the_rule_refuses() {
        let d = tempfile::tempdir().unwrap();
        let ok = d.path().join("dicts");
        fs::create_dir(&ok).unwrap();
        fs::write(d.path().join("file"), "x").unwrap();
        std::os::unix::fs::symlink(&ok, d.path().join("link")).unwrap();
        let s = |p: &Path| p.to_str().unwrap().to_string();
        let none: &[&Path] = &[];
        assert_eq!(check_directory(&s(&ok), &[], none), Ok(ok.clone()));
        assert_eq!(check_directory(&format!("{}/", s(&ok)), &[], none), Ok(ok.clone()));
        assert_eq!(check_directory("dicts", &[], none), Err(Refused::Relative));
        assert_eq!(check_directory(&format!("{}/../dicts", s(&ok)), &[], none), Err(Refused::DotDot));
        assert_eq!(check_directory(&s(&d.path().join("nope")), &[], none), Err(Refused::Missing));
        assert_eq!(check_directory(&s(&d.path().join("file")), &[], none), Err(Refused::NotDirectory));
        assert_eq!(check_directory(&s(&d.path().join("link")), &[], none), Err(Refused::Symlink));
        for sys in ["/", "/etc", "/usr/", "//var", "/proc", "/dev"] {
            assert!(matches!(check_directory(sys, &[], none), Err(Refused::System(_))), "{sys}");
        }
        assert!(matches!(check_directory(&s(&ok), std::slice::from_ref(&ok), none), Err(Refused::Home(_))));
        let queue = ok.join("queue");
        fs::create_dir(&queue).unwrap();
        assert!(matches!(check_directory(&s(&ok), &[], &[queue.as_path()]), Err(Refused::HoldsOurs { .. })));
    }

    /// csjobs' own directories: the directory is one, holds one, or lies inside one, judged
    /// on the canonical paths of both (a link to ours, a link to inside ours).
    #[test]
    fn refuses_our_own_directories_every_way() {
        let d = tempfile::tempdir().unwrap();
        let backup = d.path().join("backup");
        let inside = backup.join("processed_archive");
        let elsewhere = d.path().join("elsewhere");
        fs::create_dir_all(&inside).unwrap();
        fs::create_dir_all(&elsewhere).unwrap();
        std::os::unix::fs::symlink(&backup, elsewhere.join("to-backup")).unwrap();
        let link_parent = d.path().join("via");
        std::os::unix::fs::symlink(&backup, &link_parent).unwrap();
        let s = |p: &Path| p.to_str().unwrap().to_string();
        let ours: &[&Path] = &[backup.as_path()];
        assert_eq!(check_directory(&s(&backup), &[], ours), Err(Refused::Ours(s(&backup))));
        assert!(matches!(check_directory(&s(d.path()), &[], ours), Err(Refused::HoldsOurs { .. })));
        assert!(matches!(check_directory(&s(&inside), &[], ours), Err(Refused::InsideOurs { .. })));
        // /…/via/processed_archive is really /…/backup/processed_archive.
        let via = link_parent.join("processed_archive");
        assert!(matches!(check_directory(&s(&via), &[], ours), Err(Refused::InsideOurs { .. })), "{via:?}");
        // A setting that names our directory through a link (ours given as a link too).
        let ours_link: &[&Path] = &[link_parent.as_path()];
        assert!(matches!(check_directory(&s(&inside), &[], ours_link), Err(Refused::InsideOurs { .. })));
        // A directory beside ours is fine.
        assert_eq!(check_directory(&s(&elsewhere), &[], ours), Ok(elsewhere.clone()));
    }

    /// Inside the system trees, exactly as rules.md §3 lists them; `/var` and `/opt` are not
    /// trees (only the directories themselves are refused).
    #[test]
    fn the_system_trees() {
        for (p, tree) in [
            ("/usr/local", Some("/usr")),
            ("/usr/share/doc", Some("/usr")),
            ("/etc/csjobs", Some("/etc")),
            ("/var/lib/x", Some("/var/lib")),
            ("/lib64/x", Some("/lib64")),
            ("/libexec/y", Some("/libexec")),
            ("/root/dicts", Some("/root")),
            ("/run/user", Some("/run")),
            ("/proc/self", Some("/proc")),
            ("/var/lib", Some("/var/lib")),
            ("/var/cache/dicts", None),
            ("/opt/cashserver/dicts", None),
            ("/usrx/a", None),
            ("/var/library", None),
        ] {
            assert_eq!(system_tree(Path::new(p)).as_deref(), tree, "{p}");
        }
        let none: &[&Path] = &[];
        assert!(matches!(check_directory("/usr/local", &[], none), Err(Refused::InsideSystem { .. })));
        assert!(matches!(check_directory("/var/lib", &[], none), Err(Refused::System(_))));
        // Judged before it is looked up: a missing directory inside /etc is still refused as such.
        assert!(matches!(check_directory("/etc/no/such/dir", &[], none), Err(Refused::InsideSystem { .. })));
    }

    /// A home directory (any user's, /etc/passwd's or under /home) is refused, and so is a
    /// directory that holds one; a directory inside a home is not a home directory.
    #[test]
    fn home_directories() {
        let d = tempfile::tempdir().unwrap();
        let home = d.path().join("users/kassir");
        let dicts = home.join("dicts");
        fs::create_dir_all(&dicts).unwrap();
        let s = |p: &Path| p.to_str().unwrap().to_string();
        let none: &[&Path] = &[];
        let homes = std::slice::from_ref(&home);
        assert_eq!(check_directory(&s(&home), homes, none), Err(Refused::Home(s(&home))));
        assert!(matches!(
            check_directory(&s(&d.path().join("users")), homes, none),
            Err(Refused::HoldsHome { .. })
        ));
        assert_eq!(check_directory(&s(&dicts), homes, none), Ok(dicts.clone()));
        // Through a link higher up, judged by the canonical path.
        let alias = d.path().join("alias");
        std::os::unix::fs::symlink(d.path().join("users"), &alias).unwrap();
        assert_eq!(check_directory(&s(&alias.join("kassir")), homes, none), Err(Refused::Home(s(&home))));
    }
}
