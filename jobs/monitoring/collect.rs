//! The read stage of `status`: the directories, the two databases, and what the cash server
//! DB holds about queues, jobs and registers. Only reads; nothing is judged here beyond turning
//! rows into the model of `status` (times into now's offset, a run without an end into
//! running or killed).

use fs_err as fs;
use std::{
    io,
    path::Path,
    time::{Instant, SystemTime},
};

use anyhow::Context;
use chrono::{DateTime, NaiveDateTime, NaiveTime, TimeZone, Timelike, Utc};
use rust_decimal::Decimal;
use std::collections::HashMap;
use tokio_postgres::Client;

use super::{
    hours::ShopHours, AstuDue, Connection, Dictionary, DirFiles, Directory, ErrorMessage, HoursRow,
    JobStatus, LinkState, Moment, QueueFacts, Register, RegisterState, Run, ShopToday, Staged,
};
use crate::{
    core::{
        config::{Config, DbUrl},
        db::{self, Database},
        queue,
        runlog::host_name,
    },
    load_sales::format,
    transfer::types::Table,
};

/// The jobs that keep a run log (`job_run`): every job (cli.md). `archive` keeps it when the
/// cash server DB is configured and answers (it archives without one).
pub const JOBS_WITH_RUN_LOG: [&str; 6] = [
    crate::load_sales::job::JOB,
    crate::transfer::job::JOB,
    crate::export_astu::job::JOB,
    crate::trim_db::job::JOB,
    crate::trim_dicts::JOB,
    crate::archive::job::JOB,
];

/// How many of the latest error messages are shown.
const LATEST_ERRORS: i64 = 10;

/// A time of the database (`timestamptz`) in now's offset.
fn moment(now: Moment, t: DateTime<Utc>) -> Moment {
    t.with_timezone(now.offset())
}

/// A shop wall-clock time (`timestamp`) read in now's offset (monitoring.md: compared with
/// now's wall clock).
pub fn local_moment(now: Moment, t: NaiveDateTime) -> Option<Moment> {
    now.offset().from_local_datetime(&t).single()
}

fn age(now: Moment, t: Moment) -> i64 {
    (now - t).num_seconds().max(0)
}

fn system_moment(now: Moment, t: SystemTime) -> Moment {
    moment(now, DateTime::<Utc>::from(t))
}

// ---- directories ------------------------------------------------------------------------

/// Every `paths.*` directory, and what is wrong with each.
pub fn directories(cfg: &Config) -> Vec<Directory> {
    let p = &cfg.paths;
    [
        ("paths.queue", "CSJOBS_QUEUE_DIR", &p.queue),
        ("paths.processed", "CSJOBS_PROCESSED_DIR", &p.processed),
        ("paths.error", "CSJOBS_ERROR_DIR", &p.error),
        ("paths.broken", "CSJOBS_BROKEN_DIR", &p.broken),
        ("paths.backup", "CSJOBS_BACKUP_DIR", &p.backup),
        ("paths.astu_outbox", "CSJOBS_ASTU_OUTBOX", &p.astu_outbox),
    ]
    .into_iter()
    .map(|(setting, env, path)| Directory {
        setting,
        env: Some(env),
        path: path.clone(),
        error: directory_error(path),
    })
    .collect()
}

/// `None` for a directory that can be listed; otherwise what is wrong, in words.
pub fn directory_error(path: &Path) -> Option<String> {
    match fs::metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Some("the directory is missing".into()),
        Err(e) => Some(format!("cannot be read: {e}")),
        Ok(m) if !m.is_dir() => Some("is not a directory".into()),
        Ok(_) => fs::read_dir(path).err().map(|e| format!("cannot be read: {e}")),
    }
}

/// The files of queue/ (sales files only: what load-sales takes), error/ or broken/ (every
/// regular file but a move in flight).
pub fn dir_files(now: Moment, dir: &'static str, path: &Path) -> DirFiles {
    let accept: fn(&str) -> bool = if dir == "queue" {
        |n| format::is_sales_file_name(n) && !queue::is_move_in_flight(n)
    } else {
        |n| !queue::is_move_in_flight(n)
    };
    let mut d = DirFiles {
        dir,
        path: path.to_path_buf(),
        listed: false,
        files: 0,
        bytes: 0,
        oldest: None,
        newest: None,
        oldest_age_seconds: None,
    };
    if let Ok(files) = queue::list(path, accept) {
        d.listed = true;
        d.files = files.len() as u64;
        d.bytes = files.iter().map(|f| f.size).sum();
        // Listed in (mtime, name) order.
        d.oldest = files.first().map(|f| system_moment(now, f.mtime));
        d.newest = files.iter().map(|f| f.mtime).max().map(|t| system_moment(now, t));
        d.oldest_age_seconds = d.oldest.map(|t| age(now, t));
    }
    d
}

/// The dictionary directory named by the cash server setting: its files and bytes.
pub fn dictionary(value: Option<String>) -> Dictionary {
    let Some(path) =
        value.map(|v| v.trim().to_string()).filter(|v| !v.is_empty()).map(std::path::PathBuf::from)
    else {
        return Dictionary { path: None, files: 0, bytes: 0, error: None };
    };
    let mut d = Dictionary { files: 0, bytes: 0, error: directory_error(&path), path: Some(path.clone()) };
    if d.error.is_none() {
        for entry in walkdir::WalkDir::new(&path).min_depth(1) {
            match entry {
                Ok(e) if e.file_type().is_file() => {
                    d.files += 1;
                    d.bytes += e.metadata().map(|m| m.len()).unwrap_or(0);
                }
                Ok(_) => {}
                Err(e) => {
                    d.error = Some(format!("cannot be read: {e}"));
                    break;
                }
            }
        }
    }
    d
}

// ---- connections ------------------------------------------------------------------------

/// The latest migration of `db` this binary carries, as `NNNN_name`.
pub fn expected_migration(db: Database) -> String {
    db.migrations().last().map(|m| format!("{:04}_{}", m.version, m.name)).unwrap_or_default()
}

fn label(db: Database) -> &'static str {
    match db {
        Database::CashServer => "cashserver",
        Database::Bonus => "bonus",
    }
}

/// Connects to a database and says how it is: state, version, migration, round trip. The
/// client is handed back when the database can be read.
pub async fn probe(url: Option<&DbUrl>, db: Database) -> (Connection, Option<Client>) {
    let mut c = Connection {
        database: label(db),
        state: LinkState::NotConfigured,
        error: None,
        server_version: None,
        migration: None,
        expected_migration: Some(expected_migration(db)),
        latency_seconds: None,
    };
    let Some(url) = url else {
        return (c, None);
    };
    let client = match db::connect(url, db, "csjobs status").await {
        Ok(client) => client,
        Err(e) => {
            c.state = LinkState::Unreachable;
            c.error = Some(format!("{e:#}"));
            return (c, None);
        }
    };
    match describe(&client, &mut c).await {
        Ok(()) => (c, Some(client)),
        Err(e) => {
            c.state = LinkState::Unreachable;
            c.error = Some(format!("{e:#}"));
            (c, None)
        }
    }
}

async fn describe(client: &Client, c: &mut Connection) -> Result<(), tokio_postgres::Error> {
    let started = Instant::now();
    client.simple_query("select 1").await?;
    c.latency_seconds = Some(started.elapsed().as_secs_f64());
    let row = client
        .query_one(
            "select current_setting('server_version'), \
                    pg_is_in_recovery() or current_setting('transaction_read_only') = 'on', \
                    to_regclass('csjobs_schema_migrations') is not null",
            &[],
        )
        .await?;
    c.server_version = Some(row.get(0));
    c.state = if row.get(1) { LinkState::ReadOnly } else { LinkState::Ok };
    if row.get::<_, bool>(2) {
        c.migration = client
            .query_opt(
                "select lpad(version::text, 4, '0') || '_' || name from csjobs_schema_migrations \
                 order by version desc limit 1",
                &[],
            )
            .await?
            .map(|r| r.get(0));
    }
    Ok(())
}

// ---- the broker ---------------------------------------------------------------------------

/// The broker of `receive.amqp_url` (receive.md, "Monitoring"): its link as a connection
/// `broker`, and its two queues; `None` when receive is not configured.
pub async fn broker(cfg: &Config) -> Option<(Connection, QueueFacts, QueueFacts)> {
    cfg.receive.amqp_url.as_ref()?;
    let f = crate::receive::probe::probe(&cfg.receive).await;
    let state = match f.state {
        crate::receive::probe::BrokerState::Ok => LinkState::Ok,
        crate::receive::probe::BrokerState::Unreachable => LinkState::Unreachable,
        crate::receive::probe::BrokerState::NotConfigured => LinkState::NotConfigured,
    };
    let version = match (f.product, f.version) {
        (Some(p), Some(v)) => Some(format!("{p} {v}")),
        (p, v) => p.or(v),
    };
    let link = Connection {
        database: "broker",
        state,
        error: f.error,
        server_version: version,
        migration: None,
        expected_migration: None,
        latency_seconds: f.round_trip.map(|d| d.as_secs_f64()),
    };
    Some((link, f.queue, f.rejected))
}

// ---- the cash server DB -----------------------------------------------------------------

/// What the cash server DB says, read in one go.
pub struct CashServerFacts {
    pub registers: Vec<Register>,
    pub shops: Vec<ShopToday>,
    pub staged: Vec<Staged>,
    pub astu: AstuDue,
    pub dictionary: Dictionary,
    pub jobs: Vec<JobStatus>,
    pub errors_3d: i64,
    pub latest_errors: Vec<ErrorMessage>,
}

/// `--shop N…` checked against table `shop`: a shop the cash server DB does not know is a
/// mistyped option (exit 2 naming them), not an empty answer.
pub async fn check_shops(client: &Client, shops: &[i32]) -> Result<(), crate::core::JobError> {
    let unknown = unknown_shops(client, shops).await?;
    if unknown.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = unknown.iter().map(i32::to_string).collect();
    Err(crate::core::JobError::usage(format!(
        "--shop {}: no such shop in the cash server DB (table shop)",
        list.join(", ")
    )))
}

/// The shops of `--shop` that the cash server DB does not know.
async fn unknown_shops(client: &Client, shops: &[i32]) -> anyhow::Result<Vec<i32>> {
    let rows = client
        .query(
            "select s from unnest($1::int[]) s where not exists (select 1 from shop where shopcode = s) order by 1",
            &[&shops],
        )
        .await
        .context("cannot read the shops (table shop)")?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

pub async fn cashserver(
    client: &Client,
    now: Moment,
    window_start: Moment,
    shops: Option<&[i32]>,
) -> anyhow::Result<CashServerFacts> {
    crate::core::db::monitoring_session(client).await?;
    let (hours, today) = tokio::try_join!(shop_hours(client, shops), today_sums(client, now, shops))
        .context(
            "cannot read the shops' hours and today's sums (tables shop_hours, revenue_hour, document)",
        )?;
    let registers = registers_with(client, now, window_start, shops, &hours, &today)
        .await
        .context("cannot read the registers")?;
    let shops = shops_today(client, now, shops, &hours, &today)
        .await
        .context("cannot read the shops (table shop)")?;
    let staged = staged(client, now, window_start).await.context("cannot read the staging tables")?;
    let astu = astu_due(client, now).await.context("cannot read the shifts owed an ASTU file")?;
    let setting: Option<String> = client
        .query_opt("select value from settings where name = $1", &[&crate::trim_dicts::SETTING])
        .await
        .context("cannot read the cash server settings (table settings)")?
        .and_then(|r| r.get(0));
    let jobs = jobs(client, now).await.context("cannot read the job run log (table job_run)")?;
    let (errors_3d, latest_errors) =
        errors(client, now).await.context("cannot read the error messages (table error_message)")?;
    Ok(CashServerFacts {
        registers,
        shops,
        staged,
        astu,
        dictionary: dictionary(setting),
        jobs,
        errors_3d,
        latest_errors,
    })
}

/// Per register, in the checklist's order (city, address, cash). Replays (load log rows named
/// by a path: `/…/processed/x.json`, `<archive>#<entry>`) are not a register's contact.
const REGISTERS: &str = "
with win as (
    select load_id, finished_at, cashcode, disposition, content_sha256,
           coalesce(nullif(source_host, ''), nullif(source_ip, '')) as sender
      from load_log
     where finished_at >= $1 and cashcode is not null and strpos(file_name, '/') = 0
),
per_cash as (
    select cashcode,
           count(*) filter (where disposition = 'processed') as files,
           count(*) filter (where disposition = 'error') as errors,
           count(*) filter (where disposition = 'broken') as broken,
           array_agg(distinct sender order by sender) filter (where sender is not null) as senders
      from win group by cashcode
),
unresolved as (
    select distinct e.cashcode
      from win e
     where e.disposition <> 'processed'
       and not exists (select 1 from win p
                        where p.content_sha256 = e.content_sha256
                          and p.disposition = 'processed'
                          and (p.finished_at, p.load_id) > (e.finished_at, e.load_id))
)
select c.cashcode, c.shopcode, s.city, s.address, c.name,
       l.finished_at, l.source_host, l.source_ip, l.source_software, ls.last_sale_at,
       coalesce(pc.files, 0), coalesce(pc.errors, 0), coalesce(pc.broken, 0),
       coalesce(pc.senders, '{}'), u.cashcode is not null
  from cash c
  join shop s on s.shopcode = c.shopcode
  left join lateral (
       select finished_at, source_host, source_ip, source_software from load_log
        where cashcode = c.cashcode and strpos(file_name, '/') = 0
        order by finished_at desc limit 1) l on true
  left join lateral (
       select last_sale_at from load_log
        where cashcode = c.cashcode and disposition = 'processed' and last_sale_at is not null
        order by last_sale_at desc limit 1) ls on true
  left join per_cash pc on pc.cashcode = c.cashcode
  left join unresolved u on u.cashcode = c.cashcode
 where $2::int[] is null or c.shopcode = any($2)
 order by s.city nulls last, s.address nulls last, c.cashcode";

/// Checks and revenue of today up to now per shift's shop and register (monitoring.md, "Today
/// per register and per shop"): whole hours before now's hour from the sums load-sales keeps
/// (`revenue_hour`, 0007 and 0009), now's hour up to now from the documents through
/// `document_time_end_idx`; never a scan of documents or items. `$1` today, `$2` now's hour,
/// `$3` its start, `$4` now (wall clock), `$5` only these shops or null: their shifts, and
/// every shift of their registers (a register moved from another shop keeps its figures).
const TODAY: &str = "
select shopcode, cashcode, sum(checks)::bigint, sum(amount)
  from (select w.shopcode, w.cashcode, r.checks::bigint as checks, r.amount
          from revenue_hour r join workshift w on w.workshiftid = r.workshiftid
         where r.day = $1 and r.hour < $2
           and ($5::int[] is null or w.shopcode = any($5)
                or w.cashcode in (select cashcode from cash where shopcode = any($5)))
        union all
        select w.shopcode, w.cashcode, 1, case d.doctype when 'sale' then d.total else -d.total end
          from document d join workshift w on w.workshiftid = d.workshiftid
         where d.doctype in ('sale', 'return') and d.time_end >= $3 and d.time_end <= $4
           and ($5::int[] is null or w.shopcode = any($5)
                or w.cashcode in (select cashcode from cash where shopcode = any($5)))) x
 group by 1, 2";

/// Today's checks and revenue, by register and by shop.
#[derive(Debug, Default)]
pub struct TodaySums {
    pub by_cash: HashMap<i32, (i64, Decimal)>,
    pub by_shop: HashMap<i32, (i64, Decimal)>,
    /// As read: by the shift's shop and register.
    pub by_shop_cash: HashMap<(i32, i32), (i64, Decimal)>,
}

pub async fn today_sums(
    client: &Client,
    now: Moment,
    shops: Option<&[i32]>,
) -> Result<TodaySums, tokio_postgres::Error> {
    let wall = now.naive_local();
    let hour = wall.hour() as i16;
    let hour_start = wall.date().and_hms_opt(wall.hour(), 0, 0).expect("an hour");
    let shops: Option<Vec<i32>> = shops.map(<[i32]>::to_vec);
    let rows = client.query(TODAY, &[&wall.date(), &hour, &hour_start, &wall, &shops]).await?;
    let mut sums = TodaySums::default();
    for r in &rows {
        let (checks, amount): (i64, Decimal) = (r.get(2), r.get(3));
        sums.by_shop_cash.insert((r.get(0), r.get(1)), (checks, amount));
        for (map, key) in [(&mut sums.by_shop, r.get::<_, i32>(0)), (&mut sums.by_cash, r.get(1))] {
            let e = map.entry(key).or_default();
            e.0 += checks;
            e.1 += amount;
        }
    }
    Ok(sums)
}

pub async fn registers(
    client: &Client,
    now: Moment,
    window_start: Moment,
    shops: Option<&[i32]>,
) -> Result<Vec<Register>, tokio_postgres::Error> {
    let (hours, today) = tokio::try_join!(shop_hours(client, shops), today_sums(client, now, shops))?;
    registers_with(client, now, window_start, shops, &hours, &today).await
}

async fn registers_with(
    client: &Client,
    now: Moment,
    window_start: Moment,
    shops: Option<&[i32]>,
    hours: &HashMap<i32, ShopHours>,
    today: &TodaySums,
) -> Result<Vec<Register>, tokio_postgres::Error> {
    let shops: Option<Vec<i32>> = shops.map(<[i32]>::to_vec);
    let rows = client.query(REGISTERS, &[&window_start, &shops]).await?;
    let wall = now.naive_local();
    Ok(rows
        .iter()
        .map(|r| {
            let shop: i32 = r.get(1);
            let cash: i32 = r.get(0);
            let (checks_today, revenue_today) = today.by_cash.get(&cash).copied().unwrap_or_default();
            let opening = hours.get(&shop).map_or(ShopHours::around_the_clock().at(wall), |h| h.at(wall));
            Register {
                city: r.get(2),
                address: r.get(3),
                shop,
                cash,
                cash_name: r.get(4),
                state: RegisterState::Ok,
                last_contact: r.get::<_, Option<DateTime<Utc>>>(5).map(|t| moment(now, t)),
                host: r.get(6),
                ip: r.get(7),
                software: r.get(8),
                last_sale: r.get::<_, Option<NaiveDateTime>>(9).and_then(|t| local_moment(now, t)),
                files: r.get(10),
                errors: r.get(11),
                broken: r.get(12),
                checks_today,
                revenue_today,
                senders: r.get(13),
                unresolved_errors: r.get(14),
                opening: Some(opening),
            }
        })
        .collect())
}

/// Every shop of `shops` (else all), in the registers' order (city, address, shop), with its
/// hours, whether it is open at `now`, its registers and today's sums.
pub async fn shops_today(
    client: &Client,
    now: Moment,
    shops: Option<&[i32]>,
    hours: &HashMap<i32, ShopHours>,
    today: &TodaySums,
) -> Result<Vec<ShopToday>, tokio_postgres::Error> {
    let only: Option<Vec<i32>> = shops.map(<[i32]>::to_vec);
    let rows = client
        .query(
            "select s.shopcode, s.name, s.city, s.address, (select count(*) from cash c where c.shopcode = s.shopcode) \
               from shop s where $1::int[] is null or s.shopcode = any($1) \
              order by s.city nulls last, s.address nulls last, s.shopcode",
            &[&only],
        )
        .await?;
    let wall = now.naive_local();
    let always = ShopHours::around_the_clock();
    Ok(rows
        .iter()
        .map(|r| {
            let shop: i32 = r.get(0);
            let h = hours.get(&shop).unwrap_or(&always);
            let (checks_today, revenue_today) = today.by_shop.get(&shop).copied().unwrap_or_default();
            ShopToday {
                shop,
                name: r.get(1),
                city: r.get(2),
                address: r.get(3),
                hours: h
                    .rows()
                    .into_iter()
                    .map(|(weekday, opens, closes)| HoursRow { weekday, opens, closes })
                    .collect(),
                open_now: h.at(wall).is_open(),
                checks_today,
                revenue_today,
                registers: r.get(4),
            }
        })
        .collect())
}

/// The working hours of every shop that has some (the others are open around the clock).
pub async fn shop_hours(
    client: &Client,
    shops: Option<&[i32]>,
) -> Result<std::collections::HashMap<i32, ShopHours>, tokio_postgres::Error> {
    let shops: Option<Vec<i32>> = shops.map(<[i32]>::to_vec);
    let rows = client
        .query(
            "select shopcode, weekday, opens, closes from shop_hours \
             where $1::int[] is null or shopcode = any($1)",
            &[&shops],
        )
        .await?;
    let mut map = std::collections::HashMap::<i32, ShopHours>::new();
    for r in &rows {
        map.entry(r.get(0)).or_default().set(r.get(1), r.get::<_, NaiveTime>(2), r.get::<_, NaiveTime>(3));
    }
    Ok(map)
}

async fn staged(
    client: &Client,
    now: Moment,
    window_start: Moment,
) -> Result<Vec<Staged>, tokio_postgres::Error> {
    let mut out = Vec::new();
    for t in Table::ALL {
        let name = t.name();
        let sql = format!(
            "select p.n, p.oldest, \
                    (select count(*) from {name} where transfer_error is not null and transferred_at >= $1) \
               from (select count(*) as n, min(created_at) as oldest from transfer_pending \
                      where staging_table = '{name}') p"
        );
        let row = client.query_one(&sql, &[&window_start]).await?;
        let oldest = row.get::<_, Option<DateTime<Utc>>>(1).map(|t| moment(now, t));
        out.push(Staged {
            table: name,
            rows: row.get(0),
            oldest,
            oldest_age_seconds: oldest.map(|t| age(now, t)),
            refused: row.get(2),
        });
    }
    Ok(out)
}

/// The shifts `export-astu` would write (closed and never exported or changed since, or owed by
/// an auto export), with the oldest close and how long the longest-owed one waits: since the
/// load that last touched it (`loaded_at`), when it became owed at the latest.
async fn astu_due(client: &Client, now: Moment) -> Result<AstuDue, tokio_postgres::Error> {
    let row = client
        .query_one(
            "select count(*), min(time_end), min(loaded_at) from (
                 select workshiftid, time_end, loaded_at from workshift
                  where astu_exported_at is null and time_end is not null
                 union
                 select workshiftid, time_end, loaded_at from workshift where astu_export_due) owed",
            &[],
        )
        .await?;
    let owed_since = row.get::<_, Option<DateTime<Utc>>>(2).map(|t| moment(now, t));
    Ok(AstuDue {
        shifts: row.get(0),
        oldest_close: row.get::<_, Option<NaiveDateTime>>(1).and_then(|t| local_moment(now, t)),
        oldest_owed_seconds: owed_since.map(|t| age(now, t)),
    })
}

const JOBS: &str = "
select j.job,
       l.run_id, l.host, l.pid, l.started_at, l.finished_at, l.outcome, l.exit_code, l.counters,
       s.run_id, s.host, s.pid, s.started_at, s.finished_at, s.outcome, s.exit_code, s.counters,
       u.run_id, u.host, u.pid, u.started_at, u.finished_at, u.outcome, u.exit_code, u.counters
  from unnest($1::text[]) with ordinality as j(job, n)
  left join lateral (select run_id, host, pid, started_at, finished_at, outcome, exit_code, counters from job_run r where r.job = j.job
                      order by started_at desc, run_id desc limit 1) l on true
  left join lateral (select run_id, host, pid, started_at, finished_at, outcome, exit_code, counters from job_run r where r.job = j.job and r.exit_code in (0, 3)
                      order by started_at desc, run_id desc limit 1) s on true
  left join lateral (select run_id, host, pid, started_at, finished_at, outcome, exit_code, counters from job_run r where r.job = j.job and r.finished_at is null
                      order by started_at desc, run_id desc limit 1) u on true
 order by j.n";

async fn jobs(client: &Client, now: Moment) -> Result<Vec<JobStatus>, tokio_postgres::Error> {
    let names: Vec<&str> = JOBS_WITH_RUN_LOG.to_vec();
    let rows = client.query(JOBS, &[&names]).await?;
    let here = host_name();
    let run = |r: &tokio_postgres::Row, at: usize| -> Option<Run> {
        let run_id: i64 = r.get::<_, Option<i64>>(at)?;
        let host: String = r.get(at + 1);
        let pid: i32 = r.get(at + 2);
        let started_at = moment(now, r.get(at + 3));
        let finished_at = r.get::<_, Option<DateTime<Utc>>>(at + 4).map(|t| moment(now, t));
        let outcome = match (finished_at, r.get::<_, Option<String>>(at + 5)) {
            (Some(_), Some(o)) => o,
            (Some(_), None) => "failed".into(),
            (None, _) => unfinished_state(&here, &host, pid, now - started_at).into(),
        };
        Some(Run {
            run_id,
            host,
            pid,
            started_at,
            finished_at,
            outcome,
            exit_code: r.get(at + 6),
            counters: r.get(at + 7),
        })
    };
    Ok(rows
        .iter()
        .zip(JOBS_WITH_RUN_LOG)
        .map(|(r, job)| JobStatus {
            job,
            last_run: run(r, 1),
            last_success: run(r, 9),
            unfinished: run(r, 17),
        })
        .collect())
}

/// A run without an end is `running` while its process lives; it was `killed` when it ran on
/// this host and its process is gone, or ran on another host and started more than a day ago
/// (monitoring.md).
pub fn unfinished_state(
    this_host: &str,
    host: &str,
    pid: i32,
    running_for: chrono::TimeDelta,
) -> &'static str {
    if host == this_host {
        if csjobs_process_alive(pid) {
            "running"
        } else {
            "killed"
        }
    } else if running_for > chrono::TimeDelta::days(1) {
        "killed"
    } else {
        "running"
    }
}

/// True when `pid` is a live csjobs process (a reused pid of another program is not).
fn csjobs_process_alive(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|comm| comm.trim_end() == "csjobs")
}

async fn errors(client: &Client, now: Moment) -> Result<(i64, Vec<ErrorMessage>), tokio_postgres::Error> {
    let since = now - chrono::TimeDelta::days(3);
    let count: i64 = client
        .query_one("select count(*) from error_message where created_at >= $1", &[&since])
        .await?
        .get(0);
    let latest = client
        .query(
            "select created_at, job, subject, message from error_message where created_at >= $1 \
             order by created_at desc, id desc limit $2",
            &[&since, &LATEST_ERRORS],
        )
        .await?
        .iter()
        .map(|r| ErrorMessage {
            created_at: moment(now, r.get(0)),
            job: r.get(1),
            subject: r.get(2),
            message: r.get(3),
        })
        .collect();
    Ok((count, latest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_of_another_host_is_killed_after_a_day() {
        let day = chrono::TimeDelta::days(1);
        assert_eq!(unfinished_state("here", "there", 1, day), "running");
        assert_eq!(unfinished_state("here", "there", 1, day + chrono::TimeDelta::seconds(1)), "killed");
    }

    #[test]
    fn a_run_of_this_host_is_killed_when_its_process_is_gone() {
        // Our own pid is alive but is not called csjobs (the test binary): not ours.
        let me = std::process::id() as i32;
        assert_eq!(unfinished_state("here", "here", me, chrono::TimeDelta::zero()), "killed");
        assert_eq!(unfinished_state("here", "here", i32::MAX, chrono::TimeDelta::zero()), "killed");
    }

    #[test]
    fn directory_errors_are_words() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(directory_error(dir.path()), None);
        assert_eq!(directory_error(&dir.path().join("nope")).as_deref(), Some("the directory is missing"));
        let f = dir.path().join("f");
        fs::write(&f, b"x").unwrap();
        assert_eq!(directory_error(&f).as_deref(), Some("is not a directory"));
    }
}
