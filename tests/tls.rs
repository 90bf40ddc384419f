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

/// A throwaway cluster on a free loopback port whose pg_hba.conf has only `hostssl`, with a
/// certificate for 127.0.0.1 signed by a test CA; stopped on drop.
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
    fn start() -> TlsCluster {
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
fsync = off
EOF
             printf 'local all all trust\\nhostssl all all 127.0.0.1/32 trust\\n' > data/pg_hba.conf
             '{bindir}/pg_ctl' -D data -l server.log -w -t 60 start > /dev/null",
            d = d.display(),
            key = key.display(),
            cert = cert.display(),
        );
        let ok = sh_as_server(&script);
        let log = |n: &str| std::fs::read_to_string(d.join(n)).unwrap_or_default();
        assert!(ok.success(), "the TLS cluster did not start:\n{}\n{}", log("initdb.log"), log("server.log"));
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
