//! The apply stage of `load-sales`: the only part that talks to the database. One batch of
//! read files is one transaction: lock the shift rows the files name, plan (pure, in
//! `plan`), then write shifts, replaced documents, the new documents with their items and
//! payments (binary COPY), and a load log row per file. Either the whole batch commits or
//! nothing of it does; `job` then moves the files. The ASTU flags of the batch's shifts are
//! set through `export_astu::state`, their one owner, in the same transaction.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, NaiveDateTime, Utc};
use rust_decimal::Decimal;
use tokio_postgres::{
    binary_copy::BinaryCopyInWriter,
    types::{ToSql, Type},
    Client, GenericClient, Transaction,
};

use super::{
    format::{Broken, SalesFile},
    plan::{BatchWrites, PlannedFile, Planner, ShiftAction, ShiftRef, ShiftRow},
    types::{AstuMarking, Disposition, FileResult, ReadFile, JOB},
};
use crate::export_astu::state as astu_state;

/// Reads the rows the planner is missing from the database (shifts by cash and number, cash
/// and shop dictionary rows) and hands them to it ([`Planner::add_db_rows`]). `lock` takes the
/// shift rows FOR UPDATE, so a concurrent trim or loader cannot change them under the plan.
async fn read_planner_rows<C: GenericClient>(
    db: &C,
    planner: &mut Planner,
    files: &[ReadFile],
    lock: bool,
) -> Result<(), tokio_postgres::Error> {
    let asked = planner.missing(files.iter().filter_map(|f| f.content.as_ref().ok()));
    let (pairs, cashes, shops) = &asked;
    let (pc, pn): (Vec<i32>, Vec<i32>) = pairs.iter().copied().unzip();
    let sql = format!(
        "select w.cashcode, w.shiftnum, w.workshiftid, w.time_beg, w.time_end \
         from workshift w \
         join unnest($1::int[], $2::int[]) as k(cashcode, shiftnum) using (cashcode, shiftnum) \
         order by w.workshiftid{}",
        if lock { " for update of w" } else { "" }
    );
    let rows = if pairs.is_empty() { vec![] } else { db.query(&sql, &[&pc, &pn]).await? };
    let rows = rows
        .iter()
        .map(|r| {
            (
                (r.get::<_, i32>(0), r.get::<_, i32>(1)),
                ShiftRow { id: ShiftRef::Existing(r.get(2)), time_beg: r.get(3), time_end: r.get(4) },
            )
        })
        .collect();
    let cash_rows = db
        .query("select cashcode, shopcode from cash where cashcode = any($1)", &[cashes])
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let shop_rows = db
        .query("select shopcode from shop where shopcode = any($1)", &[shops])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    planner.add_db_rows(&asked, rows, cash_rows, shop_rows);
    Ok(())
}

/// Plans `files` without writing anything (`--dry-run`). The planner carries on across
/// batches, so later files see the shifts earlier ones would create.
pub async fn plan_only(
    client: &Client,
    planner: &mut Planner,
    files: &[ReadFile],
) -> Result<Vec<FileResult>, tokio_postgres::Error> {
    read_planner_rows(client, planner, files, false).await?;
    let results = files
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let plan = match &f.content {
                Ok(sf) => planner.plan_file(i, sf),
                Err(_) => Err(String::new()),
            };
            FileResult::of(f, &plan)
        })
        .collect();
    planner.take_writes();
    Ok(results)
}

/// Loads one batch in one transaction and returns each file's result (with its load log
/// id). On any error nothing of the batch is in the database.
pub async fn apply_batch(
    client: &mut Client,
    files: &[ReadFile],
    run_id: Option<i64>,
    astu: AstuMarking,
) -> Result<Vec<FileResult>, tokio_postgres::Error> {
    let tx = client.transaction().await?;
    let mut planner = Planner::new();
    read_planner_rows(&tx, &mut planner, files, true).await?;
    let mut results = Vec::with_capacity(files.len());
    for (i, f) in files.iter().enumerate() {
        let plan = match &f.content {
            Ok(sf) => planner.plan_file(i, sf),
            Err(_) => Err(String::new()),
        };
        results.push(FileResult::of(f, &plan));
    }
    let writes = planner.take_writes();
    let new_ids = write_sales(&tx, files, &writes).await?;
    for r in &mut results {
        if let Some(PlannedFile { shift: ShiftRef::New(k), .. }) = r.shift {
            r.workshiftid = Some(new_ids[k]);
        }
    }
    mark_astu(&tx, astu, files, &results, &writes, &new_ids).await?;
    write_load_log(&tx, files, &mut results, run_id).await?;
    tx.commit().await?;
    Ok(results)
}

/// Records a file the database refused while applying it (the batch was retried file by
/// file): a load log row with disposition error, in a transaction of its own.
pub async fn record_refused(
    client: &mut Client,
    file: &ReadFile,
    reason: String,
    run_id: Option<i64>,
) -> Result<FileResult, tokio_postgres::Error> {
    let tx = client.transaction().await?;
    let mut results = vec![FileResult::of(file, &Err(reason))];
    write_load_log(&tx, std::slice::from_ref(file), &mut results, run_id).await?;
    tx.commit().await?;
    Ok(results.pop().expect("one result"))
}

/// `n` fresh values of the identity sequence of `table.column`.
async fn allocate_ids(
    tx: &Transaction<'_>,
    table: &str,
    column: &str,
    n: usize,
) -> Result<Vec<i64>, tokio_postgres::Error> {
    if n == 0 {
        return Ok(vec![]);
    }
    let rows = tx
        .query(
            "select nextval(pg_get_serial_sequence($1, $2)) from generate_series(1, $3::bigint)",
            &[&table, &column, &(n as i64)],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Writes the sales of a batch; returns the `workshiftid` given to each new shift.
async fn write_sales(
    tx: &Transaction<'_>,
    files: &[ReadFile],
    w: &BatchWrites,
) -> Result<Vec<i64>, tokio_postgres::Error> {
    let new_ids = allocate_ids(tx, "workshift", "workshiftid", w.new_shifts.len()).await?;
    if !w.new_shifts.is_empty() {
        let cash: Vec<i32> = w.new_shifts.iter().map(|s| s.cash).collect();
        let shop: Vec<i32> = w.new_shifts.iter().map(|s| s.shop).collect();
        let num: Vec<i32> = w.new_shifts.iter().map(|s| s.shiftnum).collect();
        let beg: Vec<Option<NaiveDateTime>> = w.new_shifts.iter().map(|s| s.time_beg).collect();
        let end: Vec<Option<NaiveDateTime>> = w.new_shifts.iter().map(|s| s.time_end).collect();
        tx.execute(
            "insert into workshift (workshiftid, cashcode, shopcode, shiftnum, time_beg, time_end, loaded_at) \
             select id, c, s, n, b, e, now() \
             from unnest($1::bigint[], $2::int[], $3::int[], $4::int[], $5::timestamp[], $6::timestamp[]) \
                  as t(id, c, s, n, b, e)",
            &[&new_ids, &cash, &shop, &num, &beg, &end],
        )
        .await?;
    }
    if !w.updates.is_empty() {
        let ids: Vec<i64> = w.updates.keys().copied().collect();
        let beg: Vec<Option<NaiveDateTime>> = w.updates.values().map(|u| u.time_beg).collect();
        let end: Vec<Option<NaiveDateTime>> = w.updates.values().map(|u| u.time_end).collect();
        tx.execute(
            "update workshift w set time_beg = coalesce(u.b, w.time_beg), \
                                    time_end = coalesce(u.e, w.time_end), loaded_at = now() \
             from unnest($1::bigint[], $2::timestamp[], $3::timestamp[]) as u(id, b, e) \
             where w.workshiftid = u.id",
            &[&ids, &beg, &end],
        )
        .await?;
    }
    if !w.deletes.is_empty() {
        let (ws, ns): (Vec<i64>, Vec<i32>) = w.deletes.iter().copied().unzip();
        // Items and payments go with their document (on delete cascade); its revenue leaves
        // revenue_hour in the same statement.
        tx.execute(
            "with gone as (delete from document d using unnest($1::bigint[], $2::int[]) as k(w, n) \
                            where d.workshiftid = k.w and d.docnum = k.n \
                            returning d.workshiftid, d.doctype, d.time_end, d.total) \
             update revenue_hour r set amount = r.amount - g.amount, checks = r.checks - g.checks \
               from (select workshiftid, time_end::date as day, extract(hour from time_end)::smallint as hour, \
                            sum(case doctype when 'sale' then total else -total end) as amount, \
                            count(*)::int as checks \
                       from gone where doctype in ('sale', 'return') and time_end is not null \
                      group by 1, 2, 3) g \
              where r.workshiftid = g.workshiftid and r.day = g.day and r.hour = g.hour",
            &[&ws, &ns],
        )
        .await?;
    }
    if w.documents.is_empty() {
        return Ok(new_ids);
    }
    let doc_ids = allocate_ids(tx, "document", "documentid", w.documents.len()).await?;
    let shift_id = |s: ShiftRef| match s {
        ShiftRef::Existing(id) => id,
        ShiftRef::New(k) => new_ids[k],
    };
    let doc_of = |r: &super::plan::DocRef| {
        let f = files[r.file].content.as_ref().expect("planned files are valid");
        &f.documents[r.doc]
    };

    let sink = tx
        .copy_in(
            "copy document (documentid, workshiftid, docnum, doctype, time_beg, time_end, total) \
             from stdin (format binary)",
        )
        .await?;
    let writer = BinaryCopyInWriter::new(
        sink,
        &[Type::INT8, Type::INT8, Type::INT4, Type::TEXT, Type::TIMESTAMP, Type::TIMESTAMP, Type::NUMERIC],
    );
    let mut writer = std::pin::pin!(writer);
    for (r, id) in w.documents.iter().zip(&doc_ids) {
        let d = doc_of(r);
        let wid = shift_id(r.shift);
        let row: [&(dyn ToSql + Sync); 7] =
            [id, &wid, &d.number, &d.doctype.as_str(), &d.opened_at, &d.closed_at, &d.total];
        writer.as_mut().write(&row).await?;
    }
    writer.finish().await?;
    add_revenue(tx, w.documents.iter().map(|r| (shift_id(r.shift), doc_of(r)))).await?;

    let sink = tx
        .copy_in(
            "copy goodsitem (documentid, posnum, ware, name, dept, quantity, price, discount, total) \
             from stdin (format binary)",
        )
        .await?;
    let writer = BinaryCopyInWriter::new(
        sink,
        &[
            Type::INT8,
            Type::INT4,
            Type::TEXT,
            Type::TEXT,
            Type::INT4,
            Type::NUMERIC,
            Type::NUMERIC,
            Type::NUMERIC,
            Type::NUMERIC,
        ],
    );
    let mut writer = std::pin::pin!(writer);
    for (r, id) in w.documents.iter().zip(&doc_ids) {
        for it in &doc_of(r).items {
            let row: [&(dyn ToSql + Sync); 9] =
                [id, &it.pos, &it.ware, &it.name, &it.dept, &it.quantity, &it.price, &it.discount, &it.sum];
            writer.as_mut().write(&row).await?;
        }
    }
    writer.finish().await?;

    let sink = tx
        .copy_in("copy payment (documentid, paynum, paytype, amount, change) from stdin (format binary)")
        .await?;
    let writer =
        BinaryCopyInWriter::new(sink, &[Type::INT8, Type::INT4, Type::TEXT, Type::NUMERIC, Type::NUMERIC]);
    let mut writer = std::pin::pin!(writer);
    for (r, id) in w.documents.iter().zip(&doc_ids) {
        for (n, p) in doc_of(r).payments.iter().enumerate() {
            let paynum = n as i32 + 1;
            let row: [&(dyn ToSql + Sync); 5] = [id, &paynum, &p.paytype, &p.amount, &p.change];
            writer.as_mut().write(&row).await?;
        }
    }
    writer.finish().await?;
    Ok(new_ids)
}

/// The ASTU side of a batch (see [`AstuMarking`]): the shifts whose documents it writes
/// lose `astu_exported_at`; with `StaleAndDue`, those of them that are closed, and the shifts
/// its files close, are marked `astu_export_due`. Marking every closed shift the batch
/// changes, not only the ones a file closes, makes the end state the same however the queue
/// was cut into batches or runs: the last export of a shift always follows its last change.
/// Adds the revenue of the documents just written to `revenue_hour` (migrations 0007, 0009):
/// Σ sale − Σ return of the closed ones and how many they are, per shift, day and hour of
/// their close time, summed here and upserted in one statement.
async fn add_revenue<'a>(
    tx: &Transaction<'_>,
    docs: impl Iterator<Item = (i64, &'a super::format::Document)>,
) -> Result<(), tokio_postgres::Error> {
    use super::format::DocType;
    use chrono::Timelike;
    let mut sums: HashMap<(i64, chrono::NaiveDate, i16), (Decimal, i32)> = HashMap::new();
    for (shift, d) in docs {
        let (Some(closed), sign) = (
            d.closed_at,
            match d.doctype {
                DocType::Sale => Decimal::ONE,
                DocType::Return => Decimal::NEGATIVE_ONE,
                DocType::CashIn | DocType::CashOut => continue,
            },
        ) else {
            continue;
        };
        let e = sums.entry((shift, closed.date(), closed.hour() as i16)).or_default();
        e.0 += sign * d.total;
        e.1 += 1;
    }
    if sums.is_empty() {
        return Ok(());
    }
    let mut shifts = Vec::with_capacity(sums.len());
    let (mut days, mut hours, mut amounts, mut checks) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for ((shift, day, hour), (amount, n)) in sums {
        shifts.push(shift);
        days.push(day);
        hours.push(hour);
        amounts.push(amount);
        checks.push(n);
    }
    tx.execute(
        "insert into revenue_hour as r (workshiftid, day, hour, amount, checks) \
         select * from unnest($1::bigint[], $2::date[], $3::smallint[], $4::numeric[], $5::int[]) \
         on conflict (workshiftid, day, hour) \
         do update set amount = r.amount + excluded.amount, checks = r.checks + excluded.checks",
        &[&shifts, &days, &hours, &amounts, &checks],
    )
    .await?;
    Ok(())
}

async fn mark_astu(
    tx: &Transaction<'_>,
    astu: AstuMarking,
    files: &[ReadFile],
    results: &[FileResult],
    w: &BatchWrites,
    new_ids: &[i64],
) -> Result<(), tokio_postgres::Error> {
    if astu == AstuMarking::Leave {
        return Ok(());
    }
    let changed: BTreeSet<i64> = w
        .documents
        .iter()
        .map(|r| match r.shift {
            ShiftRef::Existing(id) => id,
            ShiftRef::New(k) => new_ids[k],
        })
        .collect();
    let ids: Vec<i64> = changed.iter().copied().collect();
    astu_state::mark_stale(tx, &ids).await?;
    if astu != AstuMarking::StaleAndDue {
        return Ok(());
    }
    let closing = files.iter().zip(results).filter_map(|(f, r)| {
        let closes = f.content.as_ref().is_ok_and(|sf| sf.shift.closed_at.is_some());
        (r.disposition == Disposition::Processed && closes).then_some(r.workshiftid).flatten()
    });
    let due: Vec<i64> = changed.into_iter().chain(closing).collect::<BTreeSet<_>>().into_iter().collect();
    astu_state::mark_due(tx, &due).await
}

/// One load log row per file, and an error message for each refused one; fills in the
/// results' `load_id`.
async fn write_load_log(
    tx: &Transaction<'_>,
    files: &[ReadFile],
    results: &mut [FileResult],
    run_id: Option<i64>,
) -> Result<(), tokio_postgres::Error> {
    let ids = allocate_ids(tx, "load_log", "load_id", files.len()).await?;
    let finished_at = Utc::now();
    let sink = tx
        .copy_in(
            "copy load_log (load_id, run_id, file_name, file_size, file_mtime, content_sha256, \
                 shopcode, cashcode, shiftnum, shift_opened_at, workshiftid, shift_action, \
                 source_host, source_ip, source_software, disposition, broken_rule, json_path, \
                 reason, documents, items, last_sale_at, started_at, finished_at) \
             from stdin (format binary)",
        )
        .await?;
    let writer = BinaryCopyInWriter::new(
        sink,
        &[
            Type::INT8,
            Type::INT8,
            Type::TEXT,
            Type::INT8,
            Type::TIMESTAMPTZ,
            Type::TEXT,
            Type::INT4,
            Type::INT4,
            Type::INT4,
            Type::TIMESTAMP,
            Type::INT8,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::INT2,
            Type::TEXT,
            Type::TEXT,
            Type::INT4,
            Type::INT4,
            Type::TIMESTAMP,
            Type::TIMESTAMPTZ,
            Type::TIMESTAMPTZ,
        ],
    );
    let mut writer = std::pin::pin!(writer);
    let mut messages: Vec<(String, String)> = Vec::new();
    for ((f, r), id) in files.iter().zip(results.iter_mut()).zip(&ids) {
        r.load_id = Some(*id);
        let sf = f.content.as_ref().ok();
        let broken = f.content.as_ref().err();
        let mtime: DateTime<Utc> = f.entry.mtime.into();
        let size = f.size as i64;
        // A broken file whose shop and cash could be read still counts for its register.
        let register = broken.and_then(|b| b.register);
        let shop = sf.map(|s| s.shop).or(register.map(|(shop, _)| shop));
        let cash = sf.map(|s| s.cash).or(register.map(|(_, cash)| cash));
        let shiftnum = sf.map(|s| s.shift.number);
        let opened = sf.and_then(|s| s.shift.opened_at);
        let action = r.shift.map(|p| p.action.as_str());
        // An internal error is no rule of the format: its row has none, its reason says it.
        let rule = broken.filter(|b| b.rule != Broken::INTERNAL).map(|b| i16::from(b.rule));
        let path = broken.map(|b| b.path.as_str());
        let documents = r.documents as i32;
        let items = r.items as i32;
        let last_sale = sf.and_then(|s| s.last_sale_at());
        let row: [&(dyn ToSql + Sync); 24] = [
            id,
            &run_id,
            &f.entry.name,
            &size,
            &mtime,
            &f.sha256,
            &shop,
            &cash,
            &shiftnum,
            &opened,
            &r.workshiftid,
            &action,
            &sf.and_then(|s| s.source.host.as_deref()),
            &sf.and_then(|s| s.source.ip.as_deref()),
            &sf.and_then(|s| s.source.software.as_deref()),
            &r.disposition.as_str(),
            &rule,
            &path,
            &r.reason,
            &documents,
            &items,
            &last_sale,
            &f.started_at,
            &finished_at,
        ];
        writer.as_mut().write(&row).await?;
        if let Some(reason) = &r.reason {
            messages.push((f.entry.name.clone(), format!("{}: {reason}", r.disposition.as_str())));
        }
    }
    writer.finish().await?;
    if !messages.is_empty() {
        let subjects: Vec<Option<&str>> = messages.iter().map(|(s, _)| Some(s.as_str())).collect();
        let texts: Vec<&str> = messages.iter().map(|(_, m)| m.as_str()).collect();
        crate::core::runlog::record_errors(tx, JOB, &subjects, &texts).await?;
    }
    Ok(())
}

/// A committed file whose move out of the queue an interrupted run did not record.
#[derive(Debug, Clone)]
pub struct Undisposed {
    pub load_id: i64,
    pub file_name: String,
    pub sha256: String,
    pub disposition: Disposition,
}

/// The committed files whose move was not recorded. A disposition this code does not know
/// (a table changed by hand) is an error naming it: guessing would move the file wrongly.
pub async fn undisposed(client: &Client) -> anyhow::Result<Vec<Undisposed>> {
    let rows = client
        .query(
            "select load_id, file_name, content_sha256, disposition from load_log \
             where disposed_at is null order by load_id",
            &[],
        )
        .await?;
    rows.iter()
        .map(|r| {
            let (load_id, file_name, value): (i64, String, &str) = (r.get(0), r.get(1), r.get(3));
            let disposition = match value {
                "processed" => Disposition::Processed,
                "error" => Disposition::Error,
                "broken" => Disposition::Broken,
                other => anyhow::bail!(
                    "load log row {load_id} ({file_name}) has the disposition {other:?}, which is none \
                     of processed, error, broken; the file was not moved: correct the row (table \
                     load_log) and run again"
                ),
            };
            Ok(Undisposed { load_id, file_name, sha256: r.get(2), disposition })
        })
        .collect()
}

/// Marks files as moved: `moved` maps load ids to where the file went (None: it was no
/// longer in the queue).
pub async fn mark_disposed(
    client: &Client,
    moved: &HashMap<i64, Option<String>>,
) -> Result<(), tokio_postgres::Error> {
    if moved.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = moved.keys().copied().collect();
    let to: Vec<Option<String>> = ids.iter().map(|i| moved[i].clone()).collect();
    client
        .execute(
            "update load_log l set disposed_at = now(), moved_to = m.t \
             from unnest($1::bigint[], $2::text[]) as m(id, t) where l.load_id = m.id",
            &[&ids, &to],
        )
        .await?;
    Ok(())
}

/// The shift action a result carries, for the dry-run listing.
pub fn describe_shift(r: &FileResult, file: &SalesFile) -> String {
    match r.shift {
        Some(PlannedFile { action: ShiftAction::New, .. }) => format!(
            "new shift {} of cash {} (opened {})",
            file.shift.number,
            file.cash,
            file.shift.opened_at.map(|t| t.to_string()).unwrap_or_else(|| "NULL".into())
        ),
        Some(PlannedFile { shift: ShiftRef::Existing(id), .. }) => {
            format!("merged into workshift {id} (shift {} of cash {})", file.shift.number, file.cash)
        }
        Some(PlannedFile { shift: ShiftRef::New(_), .. }) => {
            format!("merged into the new shift {} of cash {} planned above", file.shift.number, file.cash)
        }
        None => String::new(),
    }
}
