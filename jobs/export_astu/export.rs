//! Exports shifts to the ASTU outbox: the apply and dispose stages of the ASTU export, used
//! by `export-astu` and by `load-sales` (auto export when a file closes a shift).
//!
//! For a group of shifts, in one transaction: lock the shift rows (`for update`, so no
//! loader changes a shift between reading it and marking it), read the items, write each
//! file to a temporary name, fsync it, rename it over the final name, fsync the directory,
//! and only then set `astu_exported_at` (and clear `astu_export_due`) of the shifts whose
//! file is safely on disk. A write that fails (directory missing, disk full) leaves the
//! shift's flags as they were and the sales untouched; a crash after the rename but before
//! the commit leaves them too, and the next export writes the same file again.

use fs_err as fs;
use std::{
    collections::{BTreeMap, BTreeSet},
    io,
    path::{Path, PathBuf},
};

use tokio_postgres::Client;

use super::{render, state, ItemLine, ShiftHead};
use crate::core::queue::{fsync_dir, replace_file};

/// Shifts exported per transaction: bounds the memory the items of a group take.
const GROUP: usize = 16;

/// What exporting a list of shifts gave.
#[derive(Debug, Default)]
pub struct ExportReport {
    /// Shifts whose file is written and whose `astu_exported_at` is set: (workshiftid, file).
    pub exported: Vec<(i64, PathBuf)>,
    /// Shifts whose file could not be written: (workshiftid, what went wrong). Their flag is
    /// unchanged.
    pub failed: Vec<(i64, String)>,
    /// Asked-for shifts that are not in the database.
    pub missing: Vec<i64>,
}

impl ExportReport {
    /// What to tell the operator about the shifts whose file could not be written into
    /// `outbox` (both `export-astu` and the auto export of `load-sales` say it), or `None`.
    pub fn failure_message(&self, outbox: &Path) -> Option<String> {
        if self.failed.is_empty() {
            return None;
        }
        let lines: Vec<String> =
            self.failed.iter().map(|(id, why)| format!("  workshiftid {id}: {why}")).collect();
        Some(format!(
            "{} shifts were not exported to ASTU (their astu_exported_at stays null; the sales stay \
             loaded). Fix the outbox {} (setting paths.astu_outbox / CSJOBS_ASTU_OUTBOX) and run \
             `csjobs export-astu`:\n{}",
            self.failed.len(),
            outbox.display(),
            lines.join("\n")
        ))
    }

    fn append(&mut self, mut other: ExportReport) {
        self.exported.append(&mut other.exported);
        self.failed.append(&mut other.failed);
        self.missing.append(&mut other.missing);
    }
}

/// Exports `ids` (deduplicated, in order) into `outbox`. Fails only when the database
/// cannot be used; a file that cannot be written is reported in `failed`.
pub async fn export_shifts(
    client: &mut Client,
    outbox: &Path,
    ids: &[i64],
) -> Result<ExportReport, tokio_postgres::Error> {
    let mut seen = BTreeSet::new();
    let ids: Vec<i64> = ids.iter().copied().filter(|id| seen.insert(*id)).collect();
    let mut report = ExportReport::default();
    for group in ids.chunks(GROUP) {
        report.append(export_group(client, outbox, group).await?);
    }
    Ok(report)
}

async fn export_group(
    client: &mut Client,
    outbox: &Path,
    ids: &[i64],
) -> Result<ExportReport, tokio_postgres::Error> {
    let tx = client.transaction().await?;
    let heads: Vec<ShiftHead> = tx
        .query(
            "select workshiftid, shopcode, cashcode, shiftnum from workshift \
             where workshiftid = any($1) order by workshiftid for update",
            &[&ids],
        )
        .await?
        .iter()
        .map(|r| ShiftHead { workshiftid: r.get(0), shop: r.get(1), cash: r.get(2), shiftnum: r.get(3) })
        .collect();
    let rows = tx
        .query(
            "select d.workshiftid, d.docnum, d.doctype, d.time_end, g.ware, g.dept, \
                    g.quantity, g.price, g.discount, g.total \
             from document d join goodsitem g on g.documentid = d.documentid \
             where d.workshiftid = any($1) and d.time_end is not null \
               and d.doctype in ('sale', 'return') \
             order by d.workshiftid, d.docnum, g.posnum",
            &[&ids],
        )
        .await?;
    let mut items: BTreeMap<i64, Vec<ItemLine>> = BTreeMap::new();
    for r in &rows {
        items.entry(r.get(0)).or_default().push(ItemLine {
            docnum: r.get(1),
            doctype: r.get(2),
            time_end: r.get(3),
            ware: r.get(4),
            dept: r.get(5),
            quantity: r.get(6),
            price: r.get(7),
            discount: r.get(8),
            total: r.get(9),
        });
    }
    drop(rows);

    let mut report = ExportReport {
        missing: ids.iter().copied().filter(|id| !heads.iter().any(|h| h.workshiftid == *id)).collect(),
        ..Default::default()
    };
    let mut written: Vec<(i64, PathBuf)> = Vec::new();
    for h in &heads {
        let path = outbox.join(h.relative_path());
        let written_whole = render(h, items.get(&h.workshiftid).map(Vec::as_slice).unwrap_or(&[]))
            .map_err(|e| io::Error::other(e.to_string()))
            .and_then(|bytes| write_file(outbox, &path, &bytes));
        match written_whole {
            Ok(()) => written.push((h.workshiftid, path)),
            Err(e) => report.failed.push((h.workshiftid, format!("cannot write {}: {e}", path.display()))),
        }
    }
    // The renames are durable once their directories are synced.
    let dirs: BTreeSet<PathBuf> =
        written.iter().filter_map(|(_, p)| p.parent().map(Path::to_path_buf)).collect();
    for d in dirs {
        if let Err(e) = fsync_dir(&d) {
            let (gone, kept): (Vec<_>, Vec<_>) =
                written.into_iter().partition(|(_, p)| p.parent() == Some(&d));
            written = kept;
            for (id, p) in gone {
                report.failed.push((id, format!("cannot fsync the directory of {}: {e}", p.display())));
            }
        }
    }
    let done: Vec<i64> = written.iter().map(|(id, _)| *id).collect();
    state::mark_exported(&tx, &done).await?;
    tx.commit().await?;
    report.exported = written;
    Ok(report)
}

/// Writes `bytes` as `path` so that `path` is either its old content or the whole new
/// one: a temporary name beside it, fsync, rename over. The shop directory is created when
/// missing, the outbox itself is not (a missing outbox is a setting or a mount to fix).
fn write_file(outbox: &Path, path: &Path, bytes: &[u8]) -> io::Result<()> {
    if !outbox.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "the ASTU outbox {} does not exist or is not a directory (setting paths.astu_outbox / \
                 CSJOBS_ASTU_OUTBOX)",
                outbox.display()
            ),
        ));
    }
    let dir = path.parent().expect("a file in a shop directory");
    if !dir.is_dir() {
        match fs::create_dir(dir) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
            _ => fsync_dir(outbox)?,
        }
    }
    // One fixed temporary name per file: the shift's row lock keeps two exports of it apart,
    // and a killed run's leftover is overwritten by the next export of the shift.
    replace_file(path, bytes, "astu")
}
