//! The `csjobs` binary: command line → typed config → one job, run through
//! `core::runner::run_command` (pings, exit code). It parses and dispatches; the frame of a
//! run (locks, run log, stop handling, exit code) is `core::runner`'s.

use std::{io::Write, path::PathBuf, process::ExitCode};

use clap::{parser::ValueSource, ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use csjobs::{
    archive::job::{self as archive, ArchiveOptions},
    core::{
        config::{Config, ConfigSource, Origin, Setting},
        db::{self, Database},
        logging::{self, LogFormat, Stream},
        output, runner, JobError, Outcome,
    },
    export_astu::{self, job::ExportOptions},
    load_sales::{self, job::LoadOptions, replay::ReplayOptions},
    receive::{
        chain::{self as receive_chain, ChainOptions},
        job::{self as receive, ReceiveOptions},
    },
    reconcile::job::{self as reconcile, ReconcileOptions},
    report::job::{self as report, ReportOptions},
    revenue_watch::{self, job::WatchOptions},
    status::job::{self as status, StatusOptions},
    transfer::job::{self as transfer, TransferOptions},
    trim_db::{self, job::TrimOptions},
    trim_dicts::{self, TrimDictsOptions},
};

/// `csjobs --version`: the version and the commit it was built from.
const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("CSJOBS_COMMIT"), ")");

/// Batch jobs of the cash server (кассовый сервер): load sales files (and replay them from the
/// archives), transfer bonus data, archive processed files, empty the dictionary directory, trim
/// the database, export shifts to ASTU, reconcile sales, show the state of it all, migrate the
/// databases.
///
/// Each job starts, does its work, writes its run log and exits. Exit codes: 0 done;
/// 1 failed (a database or file system could not be used; what was done stays consistent);
/// 2 usage or configuration error; 3 done, but some inputs were rejected (status: problems
/// found); 4 not run,
/// another run of the same job holds its lock; 5 not run, the request needs --yes.
#[derive(Debug, Parser)]
#[command(name = "csjobs", version = VERSION, max_term_width = 100)]
struct Cli {
    /// TOML config file [default: /etc/csjobs/csjobs.toml, optional when env variables are set]
    #[arg(long, global = true, env = "CSJOBS_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,

    /// The moment the job takes as "now" (RFC 3339, e.g. 2026-11-23T03:33:00+03:00)
    /// [default: the real clock]
    #[arg(long, global = true, env = "CSJOBS_NOW", value_name = "TIMESTAMP")]
    now: Option<String>,

    /// Log format on stderr [default: human on a terminal, json otherwise]
    #[arg(long, global = true, env = "CSJOBS_LOG_FORMAT", value_enum, value_name = "FORMAT")]
    log_format: Option<LogFormat>,

    /// Quieter logs (-q: warnings, -qq: errors only); overrides RUST_LOG
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "verbose")]
    quiet: u8,

    /// More verbose logs (-v: debug, -vv: trace); overrides RUST_LOG
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create or upgrade the database schemas from sql/ (idempotent)
    ///
    /// With neither flag, migrates every database whose URL is configured.
    Migrate(MigrateArgs),
    /// Load the sales files of the queue into the cash server DB
    ///
    /// Files (*.json, *.json.gz) are taken in order of (modification time, name). Each file
    /// is all or nothing and is moved only after its transaction committed: to processed/
    /// when loaded, error/ when the database refused it (unknown cash or shop, cash of
    /// another shop, open date NULL in file and database, a constraint), broken/ when it
    /// violates the file format. The reason of every refusal is in the load log (table
    /// load_log) and the logs. Exit code 3 when any file went to error/ or broken/.
    ///
    /// With astu.auto_export (default on), every closed shift that a committed file closes or
    /// changes is written to the ASTU outbox right after its batch, and what an earlier run
    /// still owed (killed, or its write failed) at the start of the next run. A write that
    /// fails leaves the sales loaded and ends the run with exit code 1.
    ///
    /// With --replay --from DATE --to DATE: loads again the files whose shift opened in the
    /// period (both days included; the open date as the register wrote it), from processed/
    /// and the archives in <backup>/processed_archive (read straight from the .tgz), through
    /// the same rules as the queue: replaying data already loaded changes nothing. Files are
    /// not moved. A period of 7 days or more needs --yes (without it and without a terminal:
    /// exit code 5, nothing loaded). Holds the archive lock, so archive never runs under it
    /// (exit code 4 for whichever comes second); a listed file that cannot be read is exit 1.
    LoadSales(LoadSalesArgs),
    /// Move the staged rows of the cash server DB into the bonus DB, each exactly once
    ///
    /// accountpincodetemp → pincode (the newest pin per card wins), changeaccountbalancetemp
    /// → one asset row per staged row (a balance moves by exactly the sum of its staged
    /// amounts), changecardaccounttemp → cardaccounting and card.status (per card in id
    /// order). Missing cards and accounts are created. Rows still being inserted by open
    /// transactions are taken by a later run. A row the bonus DB refuses is recorded with its
    /// reason (changeaccountbalancetemp.transfer_error etc.) and skipped: exit code 3. Staged
    /// rows are kept; what is done is in transfer_done and transfer_watermark, what waits in
    /// the view transfer_pending. Safe to kill at any moment and to run from a timer every
    /// few minutes.
    Transfer(TransferOptions),
    /// Delete old sales (whole shifts) from the cash server DB, without stalling loading
    ///
    /// A shift goes when its close time (its open time if never closed) is more than
    /// --keep-days days before now; exactly that many days stays. Shifts without either time
    /// are never deleted and are listed. A closed shift never exported to ASTU is kept unless
    /// --include-unexported. Works in batches of whole shifts, each its own short
    /// transaction; shifts a running load-sales holds are skipped for the next run. Also
    /// trims the load log and job run log past retention, error messages older than 3 days,
    /// and transferred staged rows past retention.
    TrimDb(TrimOptions),
    /// Pack processed/, error/ and broken/ into dated .tgz archives; delete expired archives
    ///
    /// Every regular file present when the run starts (recursively; sub-directories stay) goes
    /// into <backup>/<name>_archive/<name>-YY-MM-DD.tgz (.2.tgz, .3.tgz for later runs of the
    /// day; never overwritten), with its relative path, modification time and mode. A source
    /// file is deleted only after its archive is on disk (fsync), renamed into place, read back
    /// and checked entry by entry; a killed run is finished by the next one. Archives of that
    /// naming dated more than archive.retention_days (30) days before now are deleted; nothing
    /// else in the backup directories is touched. Archiving needs no database; the run log is
    /// written in the cash server DB when it is configured and answers (else a warning). Never
    /// runs during load-sales --replay (one lock file: the second exits 4). Exit code 1 when a
    /// source directory is missing, a file cannot be read or the disk is full: what was not
    /// safely archived stays where it is.
    Archive(ArchiveOptions),
    /// Empty the dictionary directory named by the cash server setting
    /// SEND_DICTS_ON_CASHES_BY_URL_LOCAL_DIRECTORY
    ///
    /// Removes every file and sub-directory inside it (not the directory itself); a symbolic
    /// link inside is removed as a link, its target untouched. Nothing is removed when the cash
    /// server DB cannot be reached (exit code 1) or the setting is missing or empty (exit code
    /// 2), nor when it names a relative path, a missing path, a non-directory, a symbolic link,
    /// / or a system directory, a directory inside /usr, /etc, /boot, /proc, /sys, /dev, /run,
    /// /lib*, /bin, /sbin, /root or /var/lib, a home directory or one holding a home, or a
    /// directory that is, holds or lies inside one of csjobs' own paths.* (judged also with
    /// links and .. resolved; exit code 2, naming the setting, the value and the rule).
    TrimDicts(TrimDictsOptions),
    /// Write ASTU sales files (выгрузка в АСТУ) for closed shifts not yet exported
    ///
    /// One file per shift: <astu_outbox>/<shop>/<cash>-<shiftnum>-<workshiftid>.csv, UTF-8,
    /// ';'-separated, a header line, one line per goods item of the closed sale and return
    /// documents (by document number, then position). Written to a temporary name, fsynced
    /// and renamed (a re-export replaces the file); astu_exported_at is set only then. Without
    /// --shift: every closed shift never exported or changed since, and every shift an auto
    /// export of load-sales still owes. With --shift, exactly those shifts, open or closed,
    /// exported again if they were. Exit code 1 when a file cannot be written (outbox
    /// missing, disk full): those shifts stay unexported and the sales stay loaded; 3 when a
    /// --shift id does not exist.
    ExportAstu(ExportOptions),
    /// Sales reconciliation (сверка продаж): per shift, per shop and day, per department
    ///
    /// --cash N: one row per shift of the cash (by open time): checks, sales, returns and
    /// revenue cash / non-cash, cash in drawer, exported to ASTU. --shop N: one row per day (of
    /// the documents' close time). --departments --shift ID: one row per department. Only
    /// closed documents count; cash = payment type cash (amount − change), non-cash = every
    /// other type. --from/--to (days, both included) limit the shifts (by their open day) or
    /// the days. Output: table (on a terminal), csv, json (money as "1234.50" strings), xlsx
    /// (needs --output). Shifts not exported to ASTU are marked: they are the ones to
    /// re-export. Read-only.
    Reconcile(ReconcileOptions),
    /// The state of the cash server: links, queues, jobs, every register's sync state
    ///
    /// Connections (cash server DB and bonus DB: ok, unreachable, read_only, not_configured;
    /// version, migration, round trip), queues (sales files waiting, error/ and broken/, staged
    /// rows not yet transferred and refused, closed shifts owed an ASTU file, the dictionary
    /// directory), jobs (last run, last success, a run still going or killed, error messages of
    /// 3 days) and every register (касса) with its state over the window --since: never (no
    /// file ever), duplicate (files from 2 or more machines: one register identity copied onto
    /// several PCs), errors (a file in error/ or broken/ not made good by a later one), stale
    /// (its shop has been open longer than status.stale_after and it has sent nothing for
    /// longer), ok.
    ///
    /// Formats: table (a terminal), json (csjobs-status/1), prometheus (the node_exporter
    /// textfile), and the register checklist as csv, xlsx, html. Exit codes: 0 healthy; 3
    /// problems, each one sentence; 1 the cash server DB cannot be read (the output is still
    /// written, with csjobs_up{database="cashserver"} 0). Writes to no database and takes no
    /// lock.
    Status(StatusOptions),
    /// Revenue today against its usual profile, and silent registers; alerts by e-mail and webhook
    ///
    /// Per shop, revenue so far today (closed sales − returns) against the profile: the median,
    /// over the last watch.weeks same weekdays with any revenue, of the revenue up to the same
    /// time of day (fewer than watch.min_weeks such days: no verdict). revenue_low when
    /// (profile − today) / profile > watch.threshold, the profile is at least watch.min_profile
    /// and the shop has been open longer than watch.start_after today. register_silent for a
    /// register of an open shop whose last file is older than watch.silent_after.
    ///
    /// Alerts (table alert) are sent once when they fire, again every alerts.repeat_after while
    /// they hold, and once more when resolved, all due ones in one message per run: e-mail
    /// (alerts.smtp_url, alerts.from, alerts.to) and/or a webhook (alerts.webhook_url,
    /// Alertmanager's payload). A delivery that fails stays owed (exit 1) and the next run sends
    /// it. Exit codes: 0 no open alert; 3 open alerts; 1 a database or a delivery failed; 2 no
    /// delivery configured, or a bad setting; 4 another run holds the lock.
    RevenueWatch(WatchOptions),
    /// One self-contained HTML page of it all: health, alerts, revenue charts, registers
    ///
    /// Overall health and its problems; the open alerts; per shop, today's revenue against
    /// its profile as a chart (cumulative by hour: today, the profile, and the alert line at
    /// 1 − watch.threshold of the profile) with the deviation and the shop's registers
    /// coloured by state; connections, queues, jobs and error messages, as `status` sees them.
    /// No script, style sheet, font or image from anywhere: it works opened from disk and
    /// behind any web server. Written whole (a temporary name, then renamed). Writes to no
    /// database and takes no lock: meant for a timer every few minutes.
    ///
    /// Exit codes: 0 all well; 3 problems or open alerts (the page shows them); 1 the cash
    /// server DB cannot be read (the page is written with what needs no database); 2 a bad
    /// option or setting.
    Report(ReportOptions),
    /// Receive sales as AMQP 0-9-1 messages (RabbitMQ) into the queue directory
    ///
    /// Declares receive.exchange (fanout), receive.queue (a durable quorum queue bound to it,
    /// dead-lettering to <queue>.rejected) and <queue>.rejected, idempotently (an object that
    /// exists with other arguments: exit code 2, naming it). Each message becomes the file
    /// amqp-<first 32 hex digits of the SHA-256 of its content>.json in the queue directory
    /// (plain, gzip, or a zip of one file: header compressMethod, property content_encoding),
    /// acknowledged only once durable (written unnamed, or under a temporary name where the
    /// file system has no unnamed files; the batch's data synced to disk, then each file
    /// linked or renamed into place and the names synced; then one ack for the batch), so a
    /// message delivered twice is one file. A message that cannot become a sales file (empty,
    /// unknown compressMethod, compression that does not decode, a zip without exactly one
    /// file, larger than sales.max_file_bytes decompressed) is rejected without requeueing,
    /// dead-lettered to <queue>.rejected, and logged with its reason.
    ///
    /// Without --follow: until the queue has been empty for receive.idle_exit (2s) or --limit
    /// N messages were taken. With --follow: until SIGTERM or SIGINT, reconnecting with backoff
    /// when the broker goes away. Exit codes: 0 done; 1 the broker could not be reached or the
    /// queue directory could not be written (what was not acknowledged goes back to the
    /// queue); 2 no or a bad receive.amqp_url, or a mismatching broker object; 3 done, but
    /// some messages were rejected.
    Receive(ReceiveOptions),
    /// Pass this store server's sales on to the central server (a RabbitMQ shovel)
    ///
    /// Run on the store server's broker host, as root. Declares on the central broker
    /// (CSJOBS_CHAIN_CENTRAL_URL) the objects its receive declares, then on the store's broker
    /// (receive.amqp_url) receive's objects and a second durable quorum queue,
    /// <queue>.central, bound to receive.exchange; then sets the dynamic shovel <queue>.central
    /// (rabbitmq_shovel plugin, through rabbitmqctl import_definitions on standard input:
    /// the password is on no command line) from that queue to the central broker's
    /// receive.exchange with ack-mode on-confirm. A message leaves the store only once the
    /// central broker holds it: while the link is down, every message waits in the store's
    /// queue. Idempotent; the central URL's password is never printed.
    ///
    /// --check shows the shovel and the queue; --remove removes both (a queue that still holds
    /// messages only with --yes). Exit codes: 0 done (--check: running); 1 a broker or
    /// rabbitmqctl could not be used (the shovel plugin off, the vhost not on this host's
    /// node); 2 a bad or missing URL, a mismatching broker object; 3 --check found problems;
    /// 5 --remove of a queue that holds messages, without --yes.
    ReceiveChain(ChainOptions),
    /// The effective configuration, each key with where its value came from
    ///
    /// Every key of the config file with its value and origin: default, file (which one),
    /// env (which variable), flag. Passwords are masked. Exit code 2 on a bad file or value,
    /// as every job would. --example prints a commented config file with every key, its
    /// default and its environment variable instead.
    Config(ConfigArgs),
    /// Write man pages or shell completions, generated from this command line (packaging)
    #[command(hide = true)]
    Generate(GenerateArgs),
}

#[derive(Debug, Args)]
struct ConfigArgs {
    /// Print a commented config file with every key at its default instead
    #[arg(long)]
    example: bool,
    /// Print docs/configuration.md, the reference of every setting
    #[arg(long, hide = true, conflicts_with = "example")]
    reference: bool,
}

#[derive(Debug, Args)]
struct GenerateArgs {
    #[command(subcommand)]
    what: Generate,
}

#[derive(Debug, Subcommand)]
enum Generate {
    /// Man pages: csjobs.1 and csjobs-COMMAND.1 for each command, into DIR
    Man { dir: PathBuf },
    /// A completion script for SHELL on stdout
    Completions { shell: clap_complete::Shell },
}

#[derive(Debug, Args)]
struct MigrateArgs {
    /// Migrate the cash server DB (cashserver.database_url / CSJOBS_CASHSERVER_DATABASE_URL)
    #[arg(long)]
    cashserver: bool,
    /// Migrate the bonus DB (bonus.database_url / CSJOBS_BONUS_DATABASE_URL)
    #[arg(long)]
    bonus: bool,
}

#[derive(Debug, Args)]
struct LoadSalesArgs {
    /// Validate and plan every file (which shift, new or merged; which would go to error/ or
    /// broken/) and print it; write nothing to the database and move no file
    #[arg(long)]
    dry_run: bool,
    /// Handle at most N files of the queue (the oldest first)
    #[arg(long, value_name = "N")]
    limit: Option<usize>,
    /// First move the sales files of error/ back into the queue, to load them again (after
    /// a dictionary was fixed, say)
    #[arg(long, conflicts_with = "replay")]
    retry_errors: bool,
    /// Load again, from processed/ and the archives, the files whose shift opened from
    /// --from to --to
    #[arg(long, requires_all = ["from", "to"], conflicts_with_all = ["dry_run", "limit"])]
    replay: bool,
    /// First day of the replayed period (YYYY-MM-DD)
    #[arg(long, value_name = "DATE", requires = "replay")]
    from: Option<chrono::NaiveDate>,
    /// Last day of the replayed period, included (YYYY-MM-DD)
    #[arg(long, value_name = "DATE", requires = "replay")]
    to: Option<chrono::NaiveDate>,
    /// Replay only this cash register's files (repeatable) [default: all]
    #[arg(long = "cash", value_name = "N", requires = "replay")]
    cashes: Vec<i32>,
    /// Confirm a replay of 7 days or more without asking
    #[arg(long, requires = "replay")]
    yes: bool,
}

/// The log stream before the command line is parsed, for a usage error: `--log-format`
/// as written, else `CSJOBS_LOG_FORMAT`, else human on a terminal and JSON otherwise.
fn early_stream() -> Stream {
    let args: Vec<String> = std::env::args().collect();
    let from_args = args.iter().enumerate().find_map(|(i, a)| match a.strip_prefix("--log-format") {
        Some("") => args.get(i + 1).cloned(),
        Some(v) => v.strip_prefix('=').map(str::to_string),
        None => None,
    });
    let format = match from_args.or_else(|| std::env::var("CSJOBS_LOG_FORMAT").ok()).as_deref() {
        Some("json") => LogFormat::Json,
        Some("human") => LogFormat::Human,
        _ => LogFormat::default_for_stderr(),
    };
    Stream { format, journal: logging::stderr_is_journal(std::env::var("JOURNAL_STREAM").ok().as_deref()) }
}

/// Where a global option's value came from, as clap saw it.
fn origin(m: &ArgMatches, id: &str, flag: &'static str, env: &'static str) -> Option<Origin> {
    match m.value_source(id) {
        Some(ValueSource::CommandLine) => Some(Origin::Flag(flag)),
        Some(ValueSource::EnvVariable) => Some(Origin::Env(env)),
        _ => None,
    }
}

fn main() -> ExitCode {
    let matches = match Cli::command().try_get_matches() {
        Ok(m) => m,
        Err(e) if !e.use_stderr() => {
            // --help, --version: what was asked for, on stdout.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let stream = early_stream();
            match stream.format {
                LogFormat::Human => {
                    let _ = e.print();
                }
                LogFormat::Json => {
                    let text = e.render().to_string();
                    let _ = std::io::stderr().write_all(stream.error_line(text.trim_end(), 2).as_bytes());
                }
            }
            return ExitCode::from(2);
        }
    };
    let cli = Cli::from_arg_matches(&matches).expect("the matches of this very command line");
    let job = matches.subcommand_name().unwrap_or("csjobs").to_string();
    let verbosity = match (cli.quiet, cli.verbose) {
        (0, 0) => None,
        (q, v) => Some(v as i8 - q as i8),
    };
    let format = cli.log_format.unwrap_or_else(LogFormat::default_for_stderr);
    let stream = Stream {
        format,
        journal: logging::stderr_is_journal(std::env::var("JOURNAL_STREAM").ok().as_deref()),
    };
    logging::init(stream, verbosity);
    // A panic (a bug) is logged like every other error: one JSON line under --log-format json.
    std::panic::set_hook(Box::new(|info| {
        let thread = std::thread::current();
        tracing::error!(thread = thread.name().unwrap_or("main"), "internal error: {info}");
    }));

    if let Command::Generate(g) = &cli.command {
        return ExitCode::from(generate(&g.what));
    }
    let log_format = Setting {
        key: "log_format",
        env: Some("CSJOBS_LOG_FORMAT"),
        value: match format {
            LogFormat::Human => "human".into(),
            LogFormat::Json => "json".into(),
        },
        origin: origin(&matches, "log_format", "--log-format", "CSJOBS_LOG_FORMAT")
            .unwrap_or(Origin::Default),
    };
    let source = ConfigSource {
        file: cli.config.clone(),
        file_origin: origin(&matches, "config", "--config", "CSJOBS_CONFIG"),
        now: cli.now.clone(),
        now_origin: origin(&matches, "now", "--now", "CSJOBS_NOW"),
        extra: vec![log_format],
    };
    let cfg = match Config::load(&source, &|k| std::env::var(k).ok()) {
        Err(e) => return ExitCode::from(runner::report(&Err(JobError::Usage(e.to_string())), stream)),
        Ok(cfg) => cfg,
    };
    if let Command::Config(args) = &cli.command {
        use csjobs::core::config::{example, reference};
        output::say(&match (args.example, args.reference) {
            (true, _) => example(),
            (_, true) => reference(),
            _ => config_table(&cfg),
        });
        return ExitCode::SUCCESS;
    }
    let code = runner::run_command(&job, cfg.notify_ping_url.as_deref(), stream, run(cli.command, &cfg));
    ExitCode::from(code)
}

/// `csjobs config`: key, value, origin; aligned.
fn config_table(cfg: &Config) -> String {
    let width = cfg.settings.iter().map(|s| s.key.len()).max().unwrap_or(0);
    let vwidth = cfg.settings.iter().map(|s| s.value.chars().count()).max().unwrap_or(0).min(60);
    let mut out = String::new();
    for s in &cfg.settings {
        let pad = vwidth.saturating_sub(s.value.chars().count());
        out.push_str(&format!("{:<width$}  {}{}  {}\n", s.key, s.value, " ".repeat(pad), s.origin));
    }
    out
}

/// `csjobs generate`: man pages and completions from the one clap definition.
fn generate(what: &Generate) -> u8 {
    let mut cmd = Cli::command();
    match what {
        Generate::Man { dir } => match write_man_pages(&cmd, dir) {
            Ok(()) => 0,
            Err(e) => {
                tracing::error!("cannot write the man pages to {}: {e}", dir.display());
                1
            }
        },
        Generate::Completions { shell } => {
            clap_complete::generate(*shell, &mut cmd, "csjobs", &mut std::io::stdout());
            0
        }
    }
}

/// csjobs.1 and one csjobs-COMMAND.1 per visible command.
fn write_man_pages(cmd: &clap::Command, dir: &std::path::Path) -> std::io::Result<()> {
    fs_err::create_dir_all(dir)?;
    let cmd = cmd.clone().version(VERSION);
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut buf)?;
    fs_err::write(dir.join("csjobs.1"), &buf)?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("csjobs-{}", sub.get_name());
        // clap names are 'static; this runs once per page in a packaging step.
        let page = sub.clone().name(&*Box::leak(name.clone().into_boxed_str())).version(VERSION);
        let mut buf = Vec::new();
        clap_mangen::Man::new(page).render(&mut buf)?;
        fs_err::write(dir.join(format!("{name}.1")), &buf)?;
    }
    Ok(())
}

async fn run(command: Command, cfg: &Config) -> Result<Outcome, JobError> {
    match command {
        Command::Migrate(args) => migrate(cfg, &args).await,
        Command::LoadSales(args) if args.replay => {
            let (Some(from), Some(to)) = (args.from, args.to) else {
                return Err(JobError::usage("--replay needs --from DATE and --to DATE"));
            };
            let opts = ReplayOptions { from, to, cashes: args.cashes.into_iter().collect(), yes: args.yes };
            load_sales::replay::run(cfg, &opts).await
        }
        Command::LoadSales(args) => {
            let opts =
                LoadOptions { dry_run: args.dry_run, limit: args.limit, retry_errors: args.retry_errors };
            load_sales::job::run(cfg, &opts).await
        }
        Command::TrimDb(opts) => trim_db::job::run(cfg, &opts).await,
        Command::Archive(opts) => archive::run(cfg, &opts).await,
        Command::ExportAstu(opts) => export_astu::job::run(cfg, &opts).await,
        Command::Reconcile(opts) => reconcile::run(cfg, &opts).await,
        Command::Status(opts) => status::run(cfg, &opts).await,
        Command::RevenueWatch(opts) => revenue_watch::job::run(cfg, &opts).await,
        Command::Report(opts) => report::run(cfg, &opts).await,
        Command::Receive(opts) => receive::run(cfg, &opts).await,
        Command::ReceiveChain(opts) => receive_chain::run(cfg, &opts).await,
        Command::Config(_) | Command::Generate(_) => unreachable!("handled before a job runs"),
        Command::TrimDicts(opts) => trim_dicts::run(cfg, &opts).await,
        Command::Transfer(opts) => transfer::run(cfg, &opts).await,
    }
}

async fn migrate(cfg: &Config, args: &MigrateArgs) -> Result<Outcome, JobError> {
    let targets: Vec<(Database, _)> = match (args.cashserver, args.bonus) {
        (false, false) => {
            let t: Vec<_> = [
                (Database::CashServer, cfg.cashserver_url.as_ref()),
                (Database::Bonus, cfg.bonus_url.as_ref()),
            ]
            .into_iter()
            .filter_map(|(d, u)| u.map(|u| (d, u)))
            .collect();
            if t.is_empty() {
                return Err(JobError::usage(
                    "no database is configured: set CSJOBS_CASHSERVER_DATABASE_URL and/or \
                     CSJOBS_BONUS_DATABASE_URL (or the config keys cashserver.database_url, \
                     bonus.database_url)",
                ));
            }
            t
        }
        (cs, bonus) => {
            let mut t = Vec::new();
            if cs {
                t.push((Database::CashServer, cfg.cashserver_url()?));
            }
            if bonus {
                t.push((Database::Bonus, cfg.bonus_url()?));
            }
            t
        }
    };
    for (database, url) in targets {
        let mut client = db::connect(url, database, "csjobs migrate").await?;
        let report = db::migrate(&mut client, database).await.map_err(anyhow::Error::new)?;
        for (version, name) in &report.applied {
            output::line(&format!("{}: applied {version:04}_{name}", database.label()));
        }
        if report.applied.is_empty() {
            output::line(&format!("{}: up to date ({} migrations)", database.label(), report.already));
        }
        tracing::info!(db = database.label(), applied = report.applied.len(), "migrated");
    }
    Ok(Outcome::default())
}
