//! `sslmode=require`: csjobs reaches a server that takes only TLS connections, verifying its
//! certificate as libpq's verify-full does (a CA it trusts, the host's name). The server is
//! a PostgreSQL cluster of the test's own (initdb, pg_ctl), since the machine's server is not
//! ours to reconfigure.

mod common;

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use common::*;

/// A throwaway cluster on a free loopback port with a certificate for 127.0.0.1 signed by a
/// test CA (which it also trusts for client certificates), and the pg_hba.conf it is given;
/// stopped on drop.
struct TlsCluster {
    dir: tempfile::TempDir,
    port: u16,
    ca: PathBuf,
}

/// Runs `script` with sh, as the `postgres` user when we are root (initdb refuses root).
fn sh_as_server(script: &str) -> std::process::ExitStatus {
    let mut c = if rustix::process::geteuid().is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", "sh", "-c", script]);
        c
    } else {
        let mut c = Command::new("sh");
        c.args(["-c", script]);
        c
    };
    c.status().expect("sh")
}

impl TlsCluster {
    /// Only `hostssl`, trusted: TLS or nothing.
    fn start() -> TlsCluster {
        TlsCluster::start_with("hostssl all all 127.0.0.1/32 trust", &[])
    }

    /// `hba` for the TCP connections (local ones are trusted); `sql` run as postgres once up.
    fn start_with(hba: &str, sql: &[&str]) -> TlsCluster {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let (ca, cert, key) = certificates(d);
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let bindir = String::from_utf8(Command::new("pg_config").arg("--bindir").output().unwrap().stdout)
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| Path::new(s).join("initdb").exists())
            .unwrap_or_else(|| "/usr/lib/postgresql/15/bin".into());
        if rustix::process::geteuid().is_root() {
            let ok = Command::new("sh")
                .args([
                    "-c",
                    &format!(
                        "chmod 755 '{0}' && chown postgres '{0}' '{1}' '{2}'",
                        d.display(),
                        cert.display(),
                        key.display()
                    ),
                ])
                .status()
                .unwrap();
            assert!(ok.success());
        }
        let script = format!(
            "set -e; cd '{d}'; chmod 600 '{key}'
             '{bindir}/initdb' -D data -U postgres -A trust -E UTF8 --locale=C --no-sync > initdb.log 2>&1
             cat >> data/postgresql.conf <<EOF
port = {port}
listen_addresses = '127.0.0.1'
unix_socket_directories = '{d}'
ssl = on
ssl_cert_file = '{cert}'
ssl_key_file = '{key}'
ssl_ca_file = '{ca}'
fsync = off
EOF
             printf 'local all all trust\\n{hba}\\n' > data/pg_hba.conf
             '{bindir}/pg_ctl' -D data -l server.log -w -t 60 start > /dev/null",
            d = d.display(),
            key = key.display(),
            cert = cert.display(),
            ca = ca.display(),
            hba = hba.replace('\n', "\\n"),
        );
        let ok = sh_as_server(&script);
        let log = |n: &str| std::fs::read_to_string(d.join(n)).unwrap_or_default();
        assert!(ok.success(), "the TLS cluster did not start:\n{}\n{}", log("initdb.log"), log("server.log"));
        for statement in sql {
            let psql = format!(
                "'{bindir}/psql' -X -q -v ON_ERROR_STOP=1 -h '{}' -p {port} -U postgres -d postgres",
                d.display()
            );
            let ok = sh_as_server(&format!("{psql} -c \"{}\"", statement.replace('"', "\\\"")));
            assert!(ok.success(), "{statement}");
        }
        TlsCluster { dir, port, ca }
    }

    fn url(&self, host: &str, sslmode: &str) -> String {
        format!("postgres://postgres@{host}:{}/postgres?sslmode={sslmode}", self.port)
    }
}

impl Drop for TlsCluster {
    fn drop(&mut self) {
        let bindir = String::from_utf8(Command::new("pg_config").arg("--bindir").output().unwrap().stdout)
            .unwrap_or_default();
        let pg_ctl = Path::new(bindir.trim()).join("pg_ctl");
        let pg_ctl = if pg_ctl.exists() { pg_ctl } else { "/usr/lib/postgresql/15/bin/pg_ctl".into() };
        sh_as_server(&format!(
            "'{}' -D '{}/data' -m immediate stop > /dev/null 2>&1",
            pg_ctl.display(),
            self.dir.path().display()
        ));
    }
}

fn migrate(url: &str, ssl_cert_file: &Path) -> Run {
    let dirs = Dirs::new();
    let mut c = csjobs(url, &dirs);
    c.env("SSL_CERT_FILE", ssl_cert_file).arg("migrate");
    run(c)
}

#[test]
fn sslmode_require_connects_over_verified_tls_and_refuses_what_it_cannot_verify() {
    let server = TlsCluster::start();

    // Trusting the test CA: connected (the server takes nothing but TLS), migrated.
    let r = migrate(&server.url("127.0.0.1", "require"), &server.ca);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("0008_transfer_done"), "{}", r.stdout);

    // libpq's spelling of the same: accepted, and verified the same way.
    let r = migrate(&server.url("127.0.0.1", "verify-full"), &server.ca);
    assert_eq!(r.code, 0, "{}", r.stderr);

    // Without TLS the server refuses: the run above did use it.
    let r = migrate(&server.url("127.0.0.1", "disable"), &server.ca);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("pg_hba.conf") || r.stderr.contains("no encryption"), "{}", r.stderr);

    // A CA csjobs does not trust: no connection, exit 1, the reason named.
    let other = tempfile::tempdir().unwrap();
    let (untrusted, _, _) = certificates(other.path());
    let r = migrate(&server.url("127.0.0.1", "require"), &untrusted);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.to_lowercase().contains("certificate"), "{}", r.stderr);

    // The right CA, the wrong name (the certificate names 127.0.0.1 only): refused too, and
    // verify-ca is held to the same check.
    let r = migrate(&server.url("localhost", "verify-ca"), &server.ca);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.to_lowercase().contains("certificate"), "{}", r.stderr);
}

/// `csjobs migrate` with `url` and nothing else of the caller's environment that libpq reads:
/// `env` sets what the case needs (HOME points at an empty directory unless given).
fn migrate_with(url: &str, env: &[(&str, &Path)], vars: &[(&str, &str)]) -> Run {
    let dirs = Dirs::new();
    let home = tempfile::tempdir().unwrap();
    let mut c = csjobs(url, &dirs);
    c.env_remove("PGPASSWORD").env_remove("PGPASSFILE").env_remove("SSL_CERT_FILE").env("HOME", home.path());
    for (k, v) in env {
        c.env(k, v);
    }
    for (k, v) in vars {
        c.env(k, v);
    }
    c.arg("migrate");
    run(c)
}

/// cli.md: a connection string without a password takes PGPASSWORD, then PGPASSFILE or
/// ~/.pgpass (libpq's format and matching, `\` escapes; a file others can read is ignored with
/// a warning), against a server of our own that requires scram-sha-256.
#[test]
fn passwords_come_from_pgpassword_then_the_password_file_as_libpq_has_it() {
    use std::os::unix::fs::PermissionsExt;
    let server = TlsCluster::start_with(
        "host all all 127.0.0.1/32 scram-sha-256\nhostssl all all 127.0.0.1/32 scram-sha-256",
        &[
            "set password_encryption = 'scram-sha-256'; create role app login password 'pa:ss\\word'",
            "create database appdb owner app",
            "create database bonusdb owner app",
        ],
    );
    let url = format!("postgres://app@127.0.0.1:{}/appdb?sslmode=disable", server.port);
    let files = tempfile::tempdir().unwrap();
    let passfile = |name: &str, text: &str, mode: u32| {
        let p = files.path().join(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    };

    // No password anywhere: the server refuses, exit 1.
    let r = migrate_with(&url, &[], &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("password"), "{}", r.stderr);

    // PGPASSWORD, and it wins over the file.
    let wrong = passfile("wrong", "*:*:*:*:wrong\n", 0o600);
    let r = migrate_with(&url, &[("PGPASSFILE", &wrong)], &[("PGPASSWORD", "pa:ss\\word")]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("0008_transfer_done"), "{}", r.stdout);

    // PGPASSFILE: the first matching line, with escaped `:` and `\`; other lines skipped.
    let port = server.port;
    let good = passfile(
        "good",
        &format!(
            "# csjobs\n127.0.0.1:{port}:otherdb:app:wrong\nlocalhost:{port}:appdb:app:wrong\n\
             127.0.0.1:{port}:appdb:app:pa\\:ss\\\\word\n*:*:*:*:wrong\n"
        ),
        0o600,
    );
    let r = migrate_with(&url, &[("PGPASSFILE", &good)], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);

    // The same file readable by others: ignored, with a warning naming it; no connection.
    std::fs::set_permissions(&good, std::fs::Permissions::from_mode(0o644)).unwrap();
    let r = migrate_with(&url, &[("PGPASSFILE", &good)], &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("group or world access") && r.stderr.contains("good"), "{}", r.stderr);
    assert!(!r.stderr.contains("pa:ss"), "{}", r.stderr);

    // ~/.pgpass when PGPASSFILE is not set; for the bonus DB too (transfer's URL).
    let home = tempfile::tempdir().unwrap();
    let pgpass = home.path().join(".pgpass");
    std::fs::write(&pgpass, format!("127.0.0.1:{port}:*:app:pa\\:ss\\\\word\n")).unwrap();
    std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o600)).unwrap();
    let dirs = Dirs::new();
    let mut c = csjobs(&url, &dirs);
    c.env_remove("PGPASSWORD").env_remove("PGPASSFILE").env("HOME", home.path());
    c.env("CSJOBS_BONUS_DATABASE_URL", format!("postgres://app@127.0.0.1:{port}/bonusdb"))
        .args(["migrate", "--bonus"]);
    let r = run(c);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("bonus"), "{}", r.stdout);
}

/// libpq's sslrootcert (that connection's CA file, with no SSL_CERT_FILE at all) and a client
/// certificate (sslcert/sslkey) against a server that authenticates by certificate; a key
/// others can read is refused, as libpq refuses it.
#[test]
fn sslrootcert_and_a_client_certificate_work_as_in_libpq() {
    use std::os::unix::fs::PermissionsExt;
    let server = TlsCluster::start_with(
        "hostssl all certuser 127.0.0.1/32 cert",
        &["create role certuser login", "create database certdb owner certuser"],
    );
    let (cert, key) = client_certificate(server.dir.path(), "certuser");
    let url = |extra: &str| {
        format!(
            "host=127.0.0.1 port={} user=certuser dbname=certdb sslmode=verify-full sslrootcert='{}' {extra}",
            server.port,
            server.ca.display()
        )
    };
    let with_cert = url(&format!("sslcert='{}' sslkey='{}'", cert.display(), key.display()));
    let r = migrate_with(&with_cert, &[], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("0008_transfer_done"), "{}", r.stdout);

    // The server's CA is trusted through sslrootcert alone: without a client certificate
    // the TLS connection is made and the server refuses the login (not the certificate).
    let r = migrate_with(&url(""), &[], &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("client certificate"), "the server's refusal: {}", r.stderr);
    assert!(!r.stderr.contains("invalid peer certificate"), "the server was trusted: {}", r.stderr);

    // Another CA file: the server's certificate is not trusted.
    let other = tempfile::tempdir().unwrap();
    let (untrusted, _, _) = certificates(other.path());
    let r = migrate_with(
        &with_cert.replace(&server.ca.display().to_string(), &untrusted.display().to_string()),
        &[],
        &[],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.to_lowercase().contains("certificate"), "{}", r.stderr);

    // The TLS files without a TLS mode would be silently unused: a configuration error.
    let r = migrate_with(&with_cert.replace("sslmode=verify-full", "sslmode=prefer"), &[], &[]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("need sslmode=require"), "{}", r.stderr);

    // One without the other is a configuration error; a key others can read is refused.
    let r = migrate_with(&url(&format!("sslcert='{}'", cert.display())), &[], &[]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("sslcert and sslkey go together"), "{}", r.stderr);
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let r = migrate_with(&with_cert, &[], &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("group or world access"), "{}", r.stderr);
}
