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
    path::{Component, Path, PathBuf},
};

use anyhow::Context;

use crate::core::{
    config::Config,
    db::{self, Database},
    lock, output,
    runlog::RunLog,
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

/// The options of `csjobs trim-dicts` (its `--help` is these doc comments).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TrimDictsOptions {
    /// List what would be removed; remove nothing
    #[arg(long)]
    pub dry_run: bool,
}

/// Why a configured directory is refused. Each names the setting and the value.
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
    #[error("is a home directory ({0})")]
    Home(String),
    #[error("holds or is the csjobs directory {0}")]
    Ours(String),
    #[error("cannot be inspected: {0}")]
    Io(String),
}

/// Validates the configured directory. `homes` are the users' home directories,
/// `ours` the directories csjobs works in (queue, processed, …): emptying a directory that
/// is or holds one of them would lose sales files.
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
    protected(&path, homes)?;
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
    protected(&real, homes)?;
    for p in [&path, &real] {
        for o in ours {
            let o_real = fs::canonicalize(o).unwrap_or_else(|_| o.to_path_buf());
            if o.starts_with(p) || o_real.starts_with(p) {
                return Err(Refused::Ours(o.display().to_string()));
            }
        }
    }
    Ok(path)
}

/// `/`, a system directory or a home directory itself.
fn protected(p: &Path, homes: &[PathBuf]) -> Result<(), Refused> {
    if let Some(sys) = PROTECTED.iter().find(|s| p == Path::new(s)) {
        return Err(Refused::System(sys.to_string()));
    }
    if let Some(h) = homes.iter().find(|h| p == *h) {
        return Err(Refused::Home(h.display().to_string()));
    }
    if p.parent() == Some(Path::new("/home")) {
        return Err(Refused::Home(p.display().to_string()));
    }
    Ok(())
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
pub fn empty_directory(dir: &Path, removed: &mut Removed) -> io::Result<Vec<String>> {
    let mut failures = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        // file_type() does not follow links: a link to a directory is a link here.
        let result = match entry.file_type() {
            Ok(t) if t.is_dir() => fs::remove_dir_all(&path),
            Ok(_) => fs::remove_file(&path),
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => removed.entries += 1,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                removed.failed += 1;
                failures.push(format!("cannot remove {}: {e}", path.display()));
            }
        }
    }
    Ok(failures)
}

/// Runs `csjobs trim-dicts`.
pub async fn run(cfg: &Config, opts: &TrimDictsOptions) -> Result<Outcome, JobError> {
    let url = cfg.cashserver_url()?;
    let client = db::connect(url, Database::CashServer, "csjobs trim-dicts")
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
             (fix the setting in table settings)"
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

    let _lock = lock::acquire(url, JOB).await?;
    let run = RunLog::start(&client, JOB).await?;
    let mut removed = Removed::default();
    let result = match empty_directory(&dir, &mut removed) {
        Err(e) => Err(anyhow::Error::new(e).context(format!("cannot list {}", dir.display())).into()),
        Ok(failures) if !failures.is_empty() => Err(anyhow::anyhow!("{}", failures.join("\n")).into()),
        Ok(_) => Ok(Outcome::default()),
    };
    output::line(&format!(
        "trim-dicts: removed {} entries inside {}{}",
        removed.entries,
        dir.display(),
        if removed.failed > 0 { format!(", {} could not be removed", removed.failed) } else { String::new() }
    ));
    let counters = serde_json::to_value(&removed).expect("counters serialize");
    run.close(&client, JOB, &result, &counters).await;
    result
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
        assert!(matches!(check_directory(&s(&ok), &[], &[queue.as_path()]), Err(Refused::Ours(_))));
    }
}
