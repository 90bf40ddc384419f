//! The `archive` job (архивация: what the cash server's `processed_zip.sh` did every night)
//! and the archive naming both it and replay rely on.
//!
//! - [`tgz`] owns the archive format (parallel gzip members over tar, read-back).
//! - [`job`] runs the job: recover → list → retention → pack → verify → delete sources.

pub mod job;
pub mod tgz;

use std::path::{Path, PathBuf};

use chrono::NaiveDate;

/// The three directories that are archived, each into `<backup>/<name>_archive/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Processed,
    Error,
    Broken,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Processed, Kind::Error, Kind::Broken];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Processed => "processed",
            Kind::Error => "error",
            Kind::Broken => "broken",
        }
    }

    /// `<backup>/<name>_archive`.
    pub fn archive_dir(self, backup: &Path) -> PathBuf {
        backup.join(format!("{}_archive", self.name()))
    }

    /// `<name>-YY-MM-DD.tgz` for the first archive of a day, then `<name>-YY-MM-DD.K.tgz`
    /// with K = 2, 3, …
    pub fn archive_name(self, date: NaiveDate, k: u32) -> String {
        let stem = format!("{}-{}", self.name(), date.format("%y-%m-%d"));
        if k <= 1 {
            format!("{stem}.tgz")
        } else {
            format!("{stem}.{k}.tgz")
        }
    }

    /// The date and sequence number of an archive of our own naming, `None` for any other
    /// name (which the jobs never touch).
    pub fn parse_archive_name(self, file_name: &str) -> Option<(NaiveDate, u32)> {
        let rest = file_name.strip_prefix(self.name())?.strip_prefix('-')?.strip_suffix(".tgz")?;
        let (date, k) = match rest.split_once('.') {
            None => (rest, 1),
            Some((date, k)) => {
                if k.is_empty() || !k.bytes().all(|b| b.is_ascii_digit()) || k.starts_with('0') {
                    return None;
                }
                (date, k.parse().ok()?)
            }
        };
        let b = date.as_bytes();
        let shape = b.len() == 8
            && b[2] == b'-'
            && b[5] == b'-'
            && [0, 1, 3, 4, 6, 7].iter().all(|&i| b[i].is_ascii_digit());
        if !shape {
            return None;
        }
        let date = NaiveDate::parse_from_str(&format!("20{date}"), "%Y-%m-%d").ok()?;
        Some((date, k))
    }
}

/// An archive of our own naming found in an archive directory.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Found {
    pub date: NaiveDate,
    pub k: u32,
    pub path: PathBuf,
}

/// The regular files of our naming in `archive_dir`, oldest first (date, then K); none when
/// the directory does not exist. Anything else there is not ours and not listed.
pub fn list_archives(kind: Kind, archive_dir: &Path) -> std::io::Result<Vec<Found>> {
    let entries = match fs_err::read_dir(archive_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else { continue };
        let Some((date, k)) = kind.parse_archive_name(&name) else { continue };
        if entry.file_type().is_ok_and(|t| t.is_file()) {
            out.push(Found { date, k, path: entry.path() });
        }
    }
    out.sort();
    Ok(out)
}

/// Whether an archive dated `date` is past retention on `today`: dated more than
/// `retention_days` days before it (exactly `retention_days` days old is kept).
pub fn expired(date: NaiveDate, today: NaiveDate, retention_days: u32) -> bool {
    (today - date).num_days() > i64::from(retention_days)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn names_round_trip() {
        let date = d("2026-11-23");
        assert_eq!(Kind::Processed.archive_name(date, 1), "processed-26-11-23.tgz");
        assert_eq!(Kind::Error.archive_name(date, 2), "error-26-11-23.2.tgz");
        for k in [1, 2, 3, 17] {
            let name = Kind::Broken.archive_name(date, k);
            assert_eq!(Kind::Broken.parse_archive_name(&name), Some((date, k)));
        }
    }

    #[test]
    fn foreign_names_are_not_ours() {
        for name in [
            "processed-26-11-23.tar.gz",
            "processed-26-11-23.tgz.bak",
            "processed-26-13-01.tgz",
            "processed-2026-11-23.tgz",
            "processed-26-11-23..tgz",
            "processed-26-11-23.02.tgz",
            "processed-26-11-23.x.tgz",
            "error-26-11-23.tgz",
            "processed_26-11-23.tgz",
            "my-processed-26-11-23.tgz",
            ".csjobs-archive-tmp.tgz",
        ] {
            assert_eq!(Kind::Processed.parse_archive_name(name), None, "{name}");
        }
    }

    #[test]
    fn retention_keeps_exactly_the_retention_days() {
        let today = d("2026-11-23");
        assert!(!expired(d("2026-10-24"), today, 30)); // 30 days old
        assert!(expired(d("2026-10-23"), today, 30)); // 31 days old
        assert!(!expired(today, today, 0));
        assert!(expired(d("2026-11-22"), today, 0));
    }
}
