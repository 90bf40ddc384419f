//! The PostgreSQL harness of the integration tests: a fresh database per test, built by the
//! same migration code as production, dropped afterwards; temporary queue directories; and
//! a runner for the real `csjobs` binary.
//!
//! The server: `CSJOBS_TEST_DATABASE_URL` (any database on it; tests create their own),
//! else postgres@127.0.0.1:5432. `scripts/test.sh` sets it up.
#![allow(dead_code)]

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Output},
    sync::atomic::{AtomicU32, Ordering},
    time::{Duration, SystemTime},
};

use csjobs::core::db::{self, Database};
use tokio_postgres::{config::Host, Client, Config, NoTls};

pub const DICTIONARY: &str = include_str!("../../fixtures/dictionary.sql");

fn admin_config() -> Config {
    let url = std::env::var("CSJOBS_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    url.parse().expect("CSJOBS_TEST_DATABASE_URL is a valid connection string")
}

/// A `key=value` connection string for database `dbname` on the test server.
fn conninfo(cfg: &Config, dbname: &str) -> String {
    let mut parts = Vec::new();
    if let Some(h) = cfg.get_hosts().first() {
        match h {
            Host::Tcp(h) => parts.push(format!("host={h}")),
            Host::Unix(p) => parts.push(format!("host={}", p.display())),
        }
    }
    if let Some(p) = cfg.get_ports().first() {
        parts.push(format!("port={p}"));
    }
    if let Some(u) = cfg.get_user() {
        parts.push(format!("user={u}"));
    }
    if let Some(pw) = cfg.get_password() {
        parts.push(format!("password='{}'", String::from_utf8_lossy(pw).replace('\'', "\\'")));
    }
    parts.push(format!("dbname={dbname}"));
    parts.join(" ")
}

async fn connect(info: &str) -> Client {
    let (client, conn) = tokio_postgres::connect(info, NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the test server ({e}); see scripts/test.sh"));
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

/// A database of its own for one test.
pub struct TestDb {
    pub name: String,
    pub url: String,
    admin: String,
    pub client: Client,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl TestDb {
    /// A migrated cash server DB with the fixture dictionaries.
    pub async fn cashserver() -> TestDb {
        let db = TestDb::empty("cs").await;
        let mut client = connect(&db.url).await;
        db::migrate(&mut client, Database::CashServer).await.expect("migrate");
        client.batch_execute(DICTIONARY).await.expect("dictionary");
        db
    }

    /// A migrated bonus DB.
    pub async fn bonus() -> TestDb {
        let db = TestDb::empty("bonus").await;
        let mut client = connect(&db.url).await;
        db::migrate(&mut client, Database::Bonus).await.expect("migrate bonus");
        db
    }

    /// A database with nothing in it.
    pub async fn empty(tag: &str) -> TestDb {
        let cfg = admin_config();
        let admin = conninfo(&cfg, cfg.get_dbname().unwrap_or("postgres"));
        let name = format!(
            "csjobs_t_{tag}_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst),
            SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().subsec_nanos()
        );
        let a = connect(&admin).await;
        a.batch_execute(&format!("create database {name}")).await.expect("create database");
        let url = conninfo(&cfg, &name);
        let client = connect(&url).await;
        TestDb { name, url, admin, client }
    }

    pub async fn scalar_i64(&self, sql: &str) -> i64 {
        self.client.query_one(sql, &[]).await.unwrap_or_else(|e| panic!("{sql}: {e}")).get(0)
    }

    /// The rows of `sql` as text, one string per row (columns joined by `|`).
    pub async fn rows(&self, sql: &str) -> Vec<String> {
        let wrapped = format!("select t::text from ({sql}) t");
        self.client
            .query(&wrapped, &[])
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .iter()
            .map(|r| r.get::<_, String>(0))
            .collect()
    }

    /// Everything the loader writes, without generated ids and load moments: what must be
    /// equal after an interrupted and an uninterrupted load of the same files. Also checks
    /// the invariant of `revenue_hour` (the sums the database keeps) against the documents.
    pub async fn sales_state(&self) -> Vec<String> {
        self.assert_revenue_hour_agrees().await;
        self.rows(
            "select w.cashcode, w.shopcode, w.shiftnum, w.time_beg, w.time_end,
                    d.docnum, d.doctype, d.time_beg as d_beg, d.time_end as d_end, d.total,
                    (select string_agg(concat_ws('/', g.posnum, g.ware, g.name, g.dept, g.quantity,
                                                 g.price, g.discount, g.total), ';' order by g.posnum)
                       from goodsitem g where g.documentid = d.documentid) as items,
                    (select string_agg(concat_ws('/', p.paynum, p.paytype, p.amount, p.change), ';'
                                       order by p.paynum)
                       from payment p where p.documentid = d.documentid) as payments
               from workshift w left join document d using (workshiftid)
              order by 1, 2, 3, 4, 5, 6",
        )
        .await
    }

    /// `revenue_hour` holds, for every shift, day and hour, exactly Σ sale − Σ return of the
    /// closed documents of that hour and their number (migrations 0007, 0009): the rows where
    /// the two differ.
    pub async fn revenue_hour_disagreements(&self) -> Vec<String> {
        self.rows(
            "select workshiftid, day, hour, sum(amount), sum(checks) from (
                 select workshiftid, day, hour, amount, checks from revenue_hour
                 union all
                 select workshiftid, time_end::date, extract(hour from time_end)::smallint,
                        -(case doctype when 'sale' then total else -total end), -1
                   from document where doctype in ('sale', 'return') and time_end is not null) x
              group by 1, 2, 3 having sum(amount) <> 0 or sum(checks) <> 0 order by 1, 2, 3",
        )
        .await
    }

    /// After documents written by hand (fixtures), the sums load-sales would have kept, made
    /// as a DBA would: `revenue_hour_rebuild()` (migration 0007).
    pub async fn rebuild_revenue_hour(&self) {
        self.client.batch_execute("select revenue_hour_rebuild()").await.expect("revenue_hour_rebuild");
    }

    pub async fn assert_revenue_hour_agrees(&self) {
        let wrong = self.revenue_hour_disagreements().await;
        assert!(wrong.is_empty(), "revenue_hour disagrees with the documents: {wrong:?}");
    }

    /// Per shift, keyed by cash, number and open time (not by `workshiftid`, which a killed
    /// transaction burns): closed?, exported to ASTU?
    pub async fn astu_flags(&self) -> Vec<String> {
        self.rows(
            "select cashcode, shiftnum, time_beg, time_end is not null as closed,
                    astu_exported_at is not null as exported
               from workshift order by 1, 2, 3",
        )
        .await
    }

    /// Every file under the ASTU outbox `dir` with its content, sorted, the `workshiftid` in
    /// its name and in its lines replaced by the shift's open time, so that two databases
    /// that gave the same shifts other ids compare equal. Temporary files show as they are.
    pub async fn astu_outbox(&self, dir: &Path) -> Vec<String> {
        let key: std::collections::HashMap<String, String> = self
            .client
            .query("select workshiftid::text, coalesce(time_beg::text, 'no open time') from workshift", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let mut files: Vec<String> = walkdir::WalkDir::new(dir)
            .into_iter()
            .map(|e| e.unwrap())
            .filter(|e| e.file_type().is_file())
            .map(|e| {
                let rel = e.path().strip_prefix(dir).unwrap().display().to_string();
                let text = fs::read_to_string(e.path()).unwrap();
                let Some(id) = rel.strip_suffix(".csv").and_then(|s| s.rsplit('-').next()) else {
                    return format!("{rel}\n{text}");
                };
                let shift = key.get(id).cloned().unwrap_or_else(|| format!("unknown workshiftid {id}"));
                let lines: Vec<String> = text
                    .lines()
                    .enumerate()
                    .map(|(i, l)| {
                        let mut f: Vec<&str> = l.split(';').collect();
                        if i > 0 && f.len() > 3 {
                            assert_eq!(f[3], id, "{rel}: the workshiftid column");
                            f[3] = &shift;
                        }
                        f.join(";")
                    })
                    .collect();
                format!(
                    "{} @ {shift}\n{}",
                    rel.strip_suffix(&format!("-{id}.csv")).unwrap(),
                    lines.join("\n")
                )
            })
            .collect();
        files.sort();
        files
    }

    /// The load log as (file, disposition, reason, disposed?), sorted.
    pub async fn load_log(&self) -> Vec<String> {
        self.rows(
            "select file_name, disposition, coalesce(reason, ''), disposed_at is not null
               from load_log order by 1, 2, 3",
        )
        .await
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        // Our own runtime on a thread: Drop cannot await on the test's.
        let _ = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
                if let Ok((c, conn)) = tokio_postgres::connect(&admin, NoTls).await {
                    tokio::spawn(conn);
                    let _ = c.batch_execute(&format!("drop database if exists {name} with (force)")).await;
                }
            })
        })
        .join();
    }
}

/// The directories of one test: queue, processed, error, broken, the ASTU outbox; backup.
pub struct Dirs {
    pub tmp: tempfile::TempDir,
    pub queue: PathBuf,
    pub processed: PathBuf,
    pub error: PathBuf,
    pub broken: PathBuf,
    pub astu: PathBuf,
}

impl Dirs {
    pub fn new() -> Dirs {
        let tmp = tempfile::tempdir().unwrap();
        let d = |n: &str| {
            let p = tmp.path().join(n);
            fs::create_dir_all(&p).unwrap();
            p
        };
        Dirs {
            queue: d("queue"),
            processed: d("processed"),
            error: d("error"),
            broken: d("broken"),
            astu: d("astu"),
            tmp,
        }
    }

    /// File names in `dir`, sorted.
    pub fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> =
            fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        v.sort();
        v
    }

    /// Writes a queue file with a modification time `secs` after an arbitrary epoch, so
    /// tests fix the processing order.
    pub fn put(&self, name: &str, content: &[u8], secs: u64) -> PathBuf {
        let p = self.queue.join(name);
        fs::write(&p, content).unwrap();
        set_mtime(&p, secs);
        p
    }
}

pub fn set_mtime(p: &Path, secs: u64) {
    let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_790_000_000 + secs);
    fs::File::options().write(true).open(p).unwrap().set_modified(t).unwrap();
}

pub fn csjobs_bin() -> &'static str {
    env!("CARGO_BIN_EXE_csjobs")
}

/// A `csjobs` command with the test's database and directories, JSON logs, and no
/// CSJOBS_* variable inherited from the caller.
pub fn csjobs(db_url: &str, dirs: &Dirs) -> Command {
    let mut c = Command::new(csjobs_bin());
    for (k, _) in std::env::vars() {
        if k.starts_with("CSJOBS_") || k == "RUST_LOG" {
            c.env_remove(k);
        }
    }
    c.env("CSJOBS_CASHSERVER_DATABASE_URL", db_url)
        .env("CSJOBS_QUEUE_DIR", &dirs.queue)
        .env("CSJOBS_PROCESSED_DIR", &dirs.processed)
        .env("CSJOBS_ERROR_DIR", &dirs.error)
        .env("CSJOBS_BROKEN_DIR", &dirs.broken)
        .env("CSJOBS_BACKUP_DIR", dirs.tmp.path().join("backup"))
        .env("CSJOBS_ASTU_OUTBOX", &dirs.astu)
        .env("CSJOBS_LOG_FORMAT", "json");
    c
}

/// `csjobs transfer ARGS` between a cash server DB and a bonus DB.
pub fn transfer(cash: &TestDb, bonus: &TestDb, dirs: &Dirs, args: &[&str]) -> Run {
    let mut c = csjobs(&cash.url, dirs);
    c.env("CSJOBS_BONUS_DATABASE_URL", &bonus.url).arg("transfer").args(args);
    run(c)
}

/// `c` run through `prefix` (a command that ends by running what follows it, like `setpriv …
/// --` or `unshare … sh -c '…; exec "$0" "$@"'`), with the same environment.
/// `c` run as an unprivileged user (nobody) when the tests run as root, who reads and removes
/// everything: for what must fail on permissions, and for runs that name the machine's own
/// directories (a regressed guard can then remove nothing of them).
pub fn as_nobody(c: Command) -> Command {
    if rustix::process::geteuid().is_root() {
        through(&["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"], &c)
    } else {
        c
    }
}

pub fn through(prefix: &[&str], c: &Command) -> Command {
    let mut w = Command::new(prefix[0]);
    w.args(&prefix[1..]).arg(c.get_program()).args(c.get_args());
    for (k, v) in c.get_envs() {
        match v {
            Some(v) => w.env(k, v),
            None => w.env_remove(k),
        };
    }
    w
}

/// `c` with a tmpfs of `size` (e.g. `16k`) mounted over `dir`, in a mount namespace of its
/// own: a full disk for that directory only. Panics when the machine cannot do it.
pub fn with_small_disk(dir: &Path, size: &str, c: &Command) -> Command {
    let probe = Command::new("unshare").args(["-m", "true"]).status();
    assert!(
        probe.is_ok_and(|s| s.success()),
        "this test needs `unshare -m` and tmpfs mounts (root or CAP_SYS_ADMIN)"
    );
    let mount = format!("mount -t tmpfs -o size={size} tmpfs '{}' && exec \"$0\" \"$@\"", dir.display());
    through(&["unshare", "-m", "--propagation", "private", "sh", "-c", &mount], c)
}

/// [`with_small_disk`], and once the command has ended — still inside its mount namespace,
/// where the tmpfs lives — every entry under `dir` as `type size path` (find's `%y %s %P`),
/// sorted, written to `listing` (which must lie outside `dir`): the full disk's real end
/// state, which vanishes with the namespace. The command's exit code is kept.
pub fn with_small_disk_listed(dir: &Path, size: &str, c: &Command, listing: &Path) -> Command {
    let probe = Command::new("unshare").args(["-m", "true"]).status();
    assert!(
        probe.is_ok_and(|s| s.success()),
        "this test needs `unshare -m` and tmpfs mounts (root or CAP_SYS_ADMIN)"
    );
    assert!(!listing.starts_with(dir), "the listing must survive the namespace");
    let script = format!(
        "mount -t tmpfs -o size={size} tmpfs '{d}' || exit 97
         \"$0\" \"$@\"; rc=$?
         grep -q ' {d} tmpfs ' /proc/self/mounts || exit 98
         (cd '{d}' && find . -mindepth 1 -printf '%y %s %P\\n' | LC_ALL=C sort) > '{l}' || exit 99
         exit $rc",
        d = dir.display(),
        l = listing.display()
    );
    through(&["unshare", "-m", "--propagation", "private", "sh", "-c", &script], c)
}

/// Lets `child` run for at most `wait`, SIGKILLs it if it has not ended by then, and reaps
/// it. True when it ended on its own: the crash tests' one way of killing at a moment.
pub fn kill_after(child: &mut std::process::Child, wait: std::time::Duration) -> bool {
    let started = std::time::Instant::now();
    let mut finished = false;
    while started.elapsed() < wait {
        if child.try_wait().unwrap().is_some() {
            finished = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    if !finished {
        child.kill().unwrap(); // SIGKILL
    }
    child.wait().unwrap();
    finished
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

pub fn run(mut c: Command) -> Run {
    let Output { status, stdout, stderr } = c.output().expect("run csjobs");
    Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

pub fn load_sales(db: &TestDb, dirs: &Dirs, args: &[&str]) -> Run {
    let mut c = csjobs(&db.url, dirs);
    c.arg("load-sales").args(args);
    run(c)
}

// ---- building sales files ----------------------------------------------------------------

/// A closed cash sale of one item, balanced.
pub fn sale(number: i64, price: &str) -> serde_json::Value {
    serde_json::json!({
        "number": number, "type": "sale",
        "opened_at": "2026-11-20T10:00:00", "closed_at": "2026-11-20T10:01:00",
        "items": [{ "pos": 1, "ware": "4600000000011", "name": "Хлеб", "dept": 1,
                    "quantity": "1.000", "price": price, "sum": price }],
        "payments": [{ "type": "cash", "amount": price }]
    })
}

/// A sales file of cash `cash` (shop from the fixture dictionary) and shift `number`.
pub fn sales_file(
    shop: i64,
    cash: i64,
    number: i64,
    opened_at: Option<&str>,
    closed_at: Option<&str>,
    documents: Vec<serde_json::Value>,
) -> Vec<u8> {
    serde_json::to_vec_pretty(&serde_json::json!({
        "format": "csjobs-sales/1",
        "shop": shop, "cash": cash,
        "source": { "host": format!("pos-{shop}-{cash}"), "ip": "10.0.0.1", "software": "4.6" },
        "shift": { "number": number, "opened_at": opened_at, "closed_at": closed_at },
        "documents": documents
    }))
    .unwrap()
}

// ---- a local HTTP receiver ---------------------------------------------------------------

/// A local HTTP server on a loopback port that answers every request with `status` and keeps
/// each request's path and body: the far end of pings and webhooks in tests.
pub struct HttpReceiver {
    pub port: u16,
    requests: std::sync::Arc<std::sync::Mutex<Vec<Request>>>,
}

/// A request's path and body.
pub type Request = (String, Vec<u8>);

impl HttpReceiver {
    pub fn start(status: u16) -> HttpReceiver {
        HttpReceiver::start_answering_after(status, std::time::Duration::ZERO)
    }

    /// A receiver that answers each request `delay` after it has read it whole: a slow
    /// webhook, and a wider window for a kill between a notice received and its answer.
    pub fn start_answering_after(status: u16, delay: std::time::Duration) -> HttpReceiver {
        use std::io::{BufRead, Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut s) = stream else { continue };
                let mut r = std::io::BufReader::new(s.try_clone().unwrap());
                let mut request_line = String::new();
                if r.read_line(&mut request_line).is_err() {
                    continue;
                }
                let mut len = 0usize;
                let mut line = String::new();
                let mut headers_ended = false;
                while let Ok(n) = r.read_line(&mut line) {
                    if n == 0 {
                        break;
                    }
                    if line == "\r\n" || line == "\n" {
                        headers_ended = true;
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                    line.clear();
                }
                // A request cut off (its sender killed) is not a request.
                if !headers_ended {
                    continue;
                }
                let mut body = vec![0; len];
                if r.read_exact(&mut body).is_err() {
                    continue;
                }
                let path = request_line.split_whitespace().nth(1).unwrap_or("").to_string();
                kept.lock().unwrap().push((path, body));
                std::thread::sleep(delay);
                let _ = write!(s, "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            }
        });
        HttpReceiver { port, requests }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The requests received since the last call: (path, body).
    pub fn take(&self) -> Vec<Request> {
        std::mem::take(&mut *self.requests.lock().unwrap())
    }

    pub fn take_paths(&self) -> Vec<String> {
        self.take().into_iter().map(|(p, _)| p).collect()
    }
}

/// A CA and a server certificate for 127.0.0.1 (only: a test connects to localhost to see
/// the name refused) signed by it (openssl), in `dir`: (ca, cert, key). csjobs trusts the CA
/// through SSL_CERT_FILE, as an admin's private CA would be.
pub fn certificates(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    certificates_naming(dir, "IP:127.0.0.1")
}

/// [`certificates`] with a server certificate for `names` (a subjectAltName value, such as
/// `IP:127.0.0.1,DNS:localhost`).
pub fn certificates_naming(
    dir: &std::path::Path,
    names: &str,
) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let p = |n: &str| dir.join(n);
    let script = format!(
        "set -e; cd '{}'
         openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key -out ca.pem \
           -days 3 -subj /CN=csjobs-test-ca 2>/dev/null
         openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout srv.key -out srv.csr \
           -subj /CN=127.0.0.1 2>/dev/null
         printf 'subjectAltName={names}\\nbasicConstraints=CA:FALSE\\nextendedKeyUsage=serverAuth\\n' > ext
         openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem -days 3 \
           -extfile ext 2>/dev/null",
        dir.display()
    );
    let s = std::process::Command::new("sh").args(["-c", &script]).status().expect("openssl");
    assert!(s.success(), "openssl could not make the test certificates");
    (p("ca.pem"), p("srv.pem"), p("srv.key"))
}

/// A client certificate for `user`, signed by the test CA of `dir` (made by `certificates`).
pub fn client_certificate(dir: &std::path::Path, user: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let script = format!(
        "set -e; cd '{}'
         openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout {user}.key -out {user}.csr \
           -subj /CN={user} 2>/dev/null
         printf 'basicConstraints=CA:FALSE\\nextendedKeyUsage=clientAuth\\n' > {user}.ext
         openssl x509 -req -in {user}.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out {user}.pem -days 3 \
           -extfile {user}.ext 2>/dev/null
         chmod 600 {user}.key",
        dir.display()
    );
    assert!(std::process::Command::new("sh").args(["-c", &script]).status().unwrap().success(), "openssl");
    (dir.join(format!("{user}.pem")), dir.join(format!("{user}.key")))
}

/// A child whose stderr is read line by line as it comes, so a test can wait for what it
/// says instead of sleeping.
pub struct LoggedChild {
    pub child: std::process::Child,
    log: std::sync::Arc<std::sync::Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl LoggedChild {
    pub fn spawn(mut c: Command) -> LoggedChild {
        let mut child =
            c.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::piped()).spawn().unwrap();
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let kept = log.clone();
        let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
        let reader = std::thread::spawn(move || {
            let mut line = String::new();
            while std::io::BufRead::read_line(&mut err, &mut line).is_ok_and(|n| n > 0) {
                kept.lock().unwrap().push_str(&line);
                line.clear();
            }
        });
        LoggedChild { child, log, reader: Some(reader) }
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// SIGTERM, once.
    pub fn terminate(&self) {
        rustix::process::kill_process(
            rustix::process::Pid::from_child(&self.child),
            rustix::process::Signal::TERM,
        )
        .unwrap();
    }

    /// Waits (at most `timeout`) for the process to end: its exit code (None: a signal) and
    /// its whole stderr.
    pub fn wait(mut self, timeout: Duration) -> (Option<i32>, String) {
        let deadline = std::time::Instant::now() + timeout;
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if std::time::Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("the process did not end within {timeout:?}: {}", self.log());
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        self.reader.take().unwrap().join().unwrap();
        (status.code(), self.log())
    }
}

/// Runs `c`, sends it one SIGTERM once its work is under way (`under_way` holds for the count
/// `sql` gives on `db`, polled for a minute at most; `what` says what never happened), and
/// requires the graceful stop: exit 0 and "stop requested" in its log.
pub async fn stop_once_under_way(
    c: Command,
    db: &TestDb,
    sql: &str,
    under_way: impl Fn(i64) -> bool,
    what: &str,
) {
    let child = LoggedChild::spawn(c);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !under_way(db.scalar_i64(sql).await) {
        assert!(std::time::Instant::now() < deadline, "{what}: {}", child.log());
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    child.terminate();
    let (code, log) = child.wait(Duration::from_secs(60));
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("stop requested"), "{log}");
}

/// promtool's verdict on a textfile.
pub fn promtool_check(file: &Path) {
    let out = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(file).unwrap())
        .output()
        .expect("promtool (Debian package prometheus; scripts/test.sh installs it)");
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
