//! Database access shared by all jobs: connecting (with the password masked in every
//! message), the versioned migrations of `sql/`, and the classification of PostgreSQL
//! errors into "this input was refused" and "the database cannot be used".

use anyhow::Context;
use sha2::{Digest, Sha256};
use tokio_postgres::{error::SqlState, Client, NoTls};

use super::{config::DbUrl, conninfo::Tls};

/// One migration file `sql/<database>/NNNN_name.sql`, embedded at build time.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: i32,
    pub name: &'static str,
    pub sql: &'static str,
}

impl Migration {
    pub fn checksum(&self) -> String {
        hex::encode(Sha256::digest(self.sql.as_bytes()))
    }
}

/// The migrations of both databases.
pub mod migrations {
    use super::Migration;
    include!(concat!(env!("OUT_DIR"), "/migrations.rs"));
}

/// Which database a connection or migration set is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Database {
    /// Кассовый сервер (КС).
    CashServer,
    /// Бонусный сервер (БС).
    Bonus,
}

impl Database {
    pub fn label(self) -> &'static str {
        match self {
            Database::CashServer => "cash server DB",
            Database::Bonus => "bonus DB",
        }
    }
    pub fn migrations(self) -> &'static [Migration] {
        match self {
            Database::CashServer => migrations::CASHSERVER,
            Database::Bonus => migrations::BONUS,
        }
    }
}

/// The session of a monitoring read (status, report, revenue-watch): JIT off, and
/// `work_mem` 64 MB. Short queries run every minute, whose cost at chain size passes
/// `jit_above_cost`, so compiling takes longer than it saves (about half a second of a
/// second, scripts/bench-status.sh); and their hash aggregates over a month of a chain's
/// hourly sums (tens of thousands of groups) spill to disk at the default 4 MB (a third of
/// report --from --to's time, scripts/bench-watch.sh). The setting is this session's only.
pub async fn monitoring_session(client: &Client) -> anyhow::Result<()> {
    client
        .batch_execute("set jit = off; set work_mem = '64MB'")
        .await
        .context("cannot set up the session (jit = off, work_mem = 64MB)")
}

/// Connects and drives the connection on the current runtime. `application_name` shows
/// the job in `pg_stat_activity`. A connection string without a password takes it where
/// libpq would (`PGPASSWORD`, then the password file: see `pgpass`).
pub async fn connect(url: &DbUrl, db: Database, application: &str) -> anyhow::Result<Client> {
    let mut config = url.config().clone();
    if config.get_application_name().is_none() {
        config.application_name(application);
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(std::time::Duration::from_secs(10));
    }
    // An empty password is no password, as in libpq.
    if config.get_password().is_none_or(|p| p.is_empty()) {
        let env = |k: &str| std::env::var(k).ok();
        let mut warn = |w: String| tracing::warn!("{w}");
        if let Some(password) = password_for(&config, &env, &mut warn) {
            config.password(password);
        }
    }
    let cannot = || format!("cannot connect to the {} at {url}", db.label());
    let client = if config.get_ssl_mode() == tokio_postgres::config::SslMode::Require {
        let tls = tls_connector(url.tls()).with_context(cannot)?;
        let (client, connection) = config.connect(tls).await.with_context(cannot)?;
        tokio::spawn(watch(connection));
        client
    } else {
        let (client, connection) = config.connect(NoTls).await.with_context(cannot)?;
        tokio::spawn(watch(connection));
        client
    };
    Ok(client)
}

/// libpq's default socket directory, which password files name `localhost`.
const DEFAULT_SOCKET_DIRS: &[&str] = &["/var/run/postgresql", "/run/postgresql", "/tmp"];

/// The password for a connection whose string has none, matched as libpq does: on the first
/// host (with its port), the database (the user's name when none is given) and the user (the
/// login name when none is given).
pub fn password_for(
    config: &tokio_postgres::Config,
    env: &dyn Fn(&str) -> Option<String>,
    warn: &mut dyn FnMut(String),
) -> Option<String> {
    use tokio_postgres::config::Host;
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        Some(Host::Unix(dir)) if !DEFAULT_SOCKET_DIRS.iter().any(|d| dir.as_os_str() == *d) => {
            dir.display().to_string()
        }
        _ => "localhost".to_string(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let login;
    let user = match config.get_user() {
        Some(u) => u,
        None => {
            login = whoami::username().unwrap_or_default();
            &login
        }
    };
    let database = config.get_dbname().unwrap_or(user);
    super::pgpass::lookup(&super::pgpass::Target { host: &host, port, database, user }, env, warn)
}

async fn watch<F: std::future::Future<Output = Result<(), tokio_postgres::Error>>>(connection: F) {
    if let Err(e) = connection.await {
        tracing::debug!(error = %e, "database connection ended");
    }
}

/// TLS for `sslmode=require` (and libpq's `verify-ca`/`verify-full`), verified as libpq's
/// `verify-full`: the server's certificate must chain to a trusted CA and name the host
/// connected to. Encryption that a man in the middle could terminate would only look safe.
/// The trusted CAs are the file `sslrootcert` names (that connection only; libpq's `system`
/// means the system store), else the system store (or `SSL_CERT_FILE`, for a private CA).
/// `sslcert` and `sslkey` give the client certificate (PEM) for `cert` authentication.
fn tls_connector(tls: &Tls) -> anyhow::Result<tokio_postgres_rustls::MakeRustlsConnect> {
    use rustls::pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};
    let mut roots = rustls::RootCertStore::empty();
    match tls.root_cert.as_deref() {
        Some(file) if file != "system" => {
            let certs = CertificateDer::pem_file_iter(file)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| anyhow::anyhow!("sslrootcert {file}: cannot read the CA certificates: {e}"))?;
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                anyhow::bail!("sslrootcert {file}: no CA certificate in it");
            }
        }
        _ => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                anyhow::bail!(
                    "sslmode=require, but no trusted CA certificate was found (the system store, or the \
                     file SSL_CERT_FILE names; or give sslrootcert){}",
                    found.errors.first().map(|e| format!(": {e}")).unwrap_or_default()
                );
            }
        }
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS setup")?
        .with_root_certificates(roots);
    let config = match (&tls.client_cert, &tls.client_key) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| anyhow::anyhow!("sslcert {cert}: cannot read the client certificate: {e}"))?;
            key_file_is_private(key)?;
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| anyhow::anyhow!("sslkey {key}: cannot read the client key: {e}"))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| anyhow::anyhow!("sslcert {cert} with sslkey: {e}"))?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// libpq refuses a client key that others may read (unless root owns it, mode 0640 at most,
/// for a key shared with a group), and so does csjobs: a key others can read is no secret.
fn key_file_is_private(file: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta = fs_err::metadata(file).map_err(|e| anyhow::anyhow!("sslkey: {e}"))?;
    let mode = meta.mode() & 0o777;
    let private = if meta.uid() == 0 { mode & 0o037 == 0 } else { mode & 0o077 == 0 };
    if !private {
        anyhow::bail!(
            "sslkey {file} has group or world access ({mode:o}); permissions should be u=rw (0600) or \
             less, or u=rw,g=r (0640) when root owns it"
        );
    }
    Ok(())
}

/// What to do with a PostgreSQL error raised while applying one input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The data was refused (constraint, value out of range, a DBA's trigger): the input
    /// goes to error/ and the run goes on.
    Refused,
    /// Serialization failure or deadlock: try the same work again.
    Retry,
    /// The database cannot be used (connection lost, server shutting down, out of disk,
    /// permissions, our own SQL wrong): stop the run.
    Fatal,
}

pub fn classify(e: &tokio_postgres::Error) -> ErrorClass {
    let Some(code) = e.code() else {
        return ErrorClass::Fatal;
    };
    if *code == SqlState::T_R_SERIALIZATION_FAILURE || *code == SqlState::T_R_DEADLOCK_DETECTED {
        return ErrorClass::Retry;
    }
    match &code.code()[..2] {
        // data exception, integrity constraint violation, raised by a trigger (P0),
        // check violation inside plpgsql
        "22" | "23" | "P0" => ErrorClass::Refused,
        _ => ErrorClass::Fatal,
    }
}

/// The server's own message of a database error (`db_error.message`, detail), for reasons
/// written to the load log.
pub fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut s = db.message().to_string();
            if let Some(detail) = db.detail() {
                s.push_str(" (");
                s.push_str(detail);
                s.push(')');
            }
            s
        }
        None => e.to_string(),
    }
}

/// Result of one migrate run on one database.
#[derive(Debug, Default)]
pub struct MigrateReport {
    pub applied: Vec<(i32, &'static str)>,
    pub already: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error(
        "migration {version} ({name}) of the {db} was changed after it was applied \
         (checksum in csjobs_schema_migrations differs); restore the original file or \
         write a new migration"
    )]
    Changed { db: &'static str, version: i32, name: &'static str },
    #[error("migration {version} ({name}) of the {db} failed: {source}")]
    Failed { db: &'static str, version: i32, name: &'static str, source: tokio_postgres::Error },
    #[error("the {db} cannot be used: {0}", db = .1)]
    Db(tokio_postgres::Error, &'static str),
}

/// The same lock key for every migrate run on a database: concurrent runs take turns.
const MIGRATE_LOCK_KEY: i64 = 0x6373_6a6f_6273_6d67; // "csjobsmg"

/// Applies the pending migrations of `db`, each in its own transaction, in version order.
/// Idempotent; refuses to run when an applied migration's file was changed since.
pub async fn migrate(client: &mut Client, db: Database) -> Result<MigrateReport, MigrateError> {
    let label = db.label();
    let dberr = |e| MigrateError::Db(e, label);
    {
        let tx = client.transaction().await.map_err(dberr)?;
        tx.execute("select pg_advisory_xact_lock($1)", &[&MIGRATE_LOCK_KEY]).await.map_err(dberr)?;
        tx.batch_execute(
            "create table if not exists csjobs_schema_migrations (
                 version    int primary key,
                 name       text not null,
                 checksum   text not null,
                 applied_at timestamptz not null default now()
             )",
        )
        .await
        .map_err(dberr)?;
        tx.commit().await.map_err(dberr)?;
    }
    let mut report = MigrateReport::default();
    for m in db.migrations() {
        let tx = client.transaction().await.map_err(dberr)?;
        tx.execute("select pg_advisory_xact_lock($1)", &[&MIGRATE_LOCK_KEY]).await.map_err(dberr)?;
        let row = tx
            .query_opt("select checksum from csjobs_schema_migrations where version = $1", &[&m.version])
            .await
            .map_err(dberr)?;
        let checksum = m.checksum();
        if let Some(row) = row {
            let applied: String = row.get(0);
            if applied != checksum {
                return Err(MigrateError::Changed { db: label, version: m.version, name: m.name });
            }
            report.already += 1;
            continue;
        }
        let failed = |source| MigrateError::Failed { db: label, version: m.version, name: m.name, source };
        tx.batch_execute(m.sql).await.map_err(failed)?;
        tx.execute(
            "insert into csjobs_schema_migrations (version, name, checksum) values ($1, $2, $3)",
            &[&m.version, &m.name, &checksum],
        )
        .await
        .map_err(failed)?;
        tx.commit().await.map_err(failed)?;
        report.applied.push((m.version, m.name));
    }
    Ok(report)
}

/// Stable 64-bit key for a name (advisory locks): the first 8 bytes of its SHA-256.
pub fn lock_key(name: &str) -> i64 {
    let d = Sha256::digest(name.as_bytes());
    i64::from_be_bytes(d[..8].try_into().expect("8 bytes"))
}
