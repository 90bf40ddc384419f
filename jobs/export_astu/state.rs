//! The ASTU export state of a shift, `workshift.astu_exported_at` and
//! `workshift.astu_export_due` (rules.md §5), owned here: every statement that sets them,
//! and the lists of shifts they make owed a file. `export` marks a shift exported once its
//! file is on disk; load-sales (`load_sales::apply`) marks the shifts a batch changes stale
//! and the closed ones due, in the load's own transaction; `export-astu` and the auto export
//! read what is owed. Other jobs only read the flags inside their own queries (status: how
//! many are owed; trim-db: an unexported shift is kept; reconcile: the exported column).

use tokio_postgres::{Client, GenericClient};

/// What `export-astu` without `--shift` exports, oldest first: the closed shifts never
/// exported (or changed since), and the shifts an auto export still owes a file
/// (`astu_export_due`: its write failed, or its run was killed before it).
pub async fn unexported_closed(client: &Client) -> Result<Vec<i64>, tokio_postgres::Error> {
    let rows = client
        .query(
            "select workshiftid from workshift where astu_exported_at is null and time_end is not null \
             union \
             select workshiftid from workshift where astu_export_due \
             order by 1",
            &[],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// The shifts the auto export of `load-sales` owes a file (`astu_export_due`), oldest
/// first: all of them, or only those among `within` (the shifts of a batch just loaded).
pub async fn due(client: &Client, within: Option<&[i64]>) -> Result<Vec<i64>, tokio_postgres::Error> {
    let rows = client
        .query(
            "select workshiftid from workshift \
             where astu_export_due and ($1::bigint[] is null or workshiftid = any($1)) \
             order by workshiftid",
            &[&within],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// A shift whose documents changed loses `astu_exported_at`: its file is out of date.
pub async fn mark_stale<C: GenericClient>(db: &C, ids: &[i64]) -> Result<(), tokio_postgres::Error> {
    if ids.is_empty() {
        return Ok(());
    }
    db.execute(
        "update workshift set astu_exported_at = null \
         where workshiftid = any($1) and astu_exported_at is not null",
        &[&ids],
    )
    .await?;
    Ok(())
}

/// The closed shifts among `ids` get `astu_export_due`: the auto export owes them a file.
pub async fn mark_due<C: GenericClient>(db: &C, ids: &[i64]) -> Result<(), tokio_postgres::Error> {
    if ids.is_empty() {
        return Ok(());
    }
    db.execute(
        "update workshift set astu_export_due = true \
         where workshiftid = any($1) and time_end is not null and not astu_export_due",
        &[&ids],
    )
    .await?;
    Ok(())
}

/// The shifts `ids`, whose files are on disk, are exported: `astu_exported_at` set, nothing
/// owed any more. Called in the transaction that holds their rows `for update`.
pub async fn mark_exported<C: GenericClient>(db: &C, ids: &[i64]) -> Result<(), tokio_postgres::Error> {
    db.execute(
        "update workshift set astu_exported_at = now(), astu_export_due = false where workshiftid = any($1)",
        &[&ids],
    )
    .await?;
    Ok(())
}
