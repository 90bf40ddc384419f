//! The Debian package (shared/spec/operations.md) as an admin gets it: built by
//! scripts/package.sh, listed with dpkg-deb, judged by lintian, installed with dpkg on this
//! machine, its units checked by systemd-analyze, its man pages rendered, its completions
//! loaded, its alerting rules checked by promtool, then removed and purged, checking what
//! stays and what goes.
//!
//! Needs root (dpkg -i) and the Debian tools lintian, systemd (systemd-analyze), man-db,
//! prometheus (promtool):
//! scripts/test.sh installs what is missing. It packages the binary this test suite built.

mod common;

use std::{
    collections::BTreeMap,
    fs,
    path::Path,
    process::{Command, Output},
};

use common::csjobs_bin;

fn sh(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The timers and their schedules, as shared/spec/operations.md gives them.
const SCHEDULES: [(&str, &[&str]); 9] = [
    ("load-sales", &["OnActiveSec=30s", "OnUnitInactiveSec=30s"]),
    ("transfer", &["OnActiveSec=30s", "OnUnitInactiveSec=30s"]),
    ("export-astu", &["OnCalendar=*:0/15"]),
    ("archive", &["OnCalendar=*-*-* 03:33:00", "Persistent=true"]),
    ("trim-dicts", &["OnCalendar=*-*-* 03:33:00"]),
    ("trim-db", &["OnCalendar=*-*-* 04:30:00", "Persistent=true", "RandomizedDelaySec=10min"]),
    ("status", &["OnCalendar=minutely"]),
    ("revenue-watch", &["OnCalendar=*:0/15"]),
    ("report", &["OnCalendar=*:0/5"]),
];

#[test]
fn the_package_installs_runs_and_goes_away_as_debian_expects() {
    assert!(
        rustix::process::geteuid().is_root(),
        "this test installs a package with dpkg: run it as root (CI does)"
    );
    let root = env!("CARGO_MANIFEST_DIR");
    let out = tempfile::tempdir().unwrap();
    let built = sh(Command::new(format!("{root}/scripts/package.sh"))
        .env("CSJOBS_BIN", csjobs_bin())
        .env("CSJOBS_PACKAGE_OUT", out.path()));
    let deb = text(&built).trim().to_string();
    assert!(deb.ends_with(&format!("csjobs_{}_amd64.deb", env!("CARGO_PKG_VERSION"))), "{deb}");

    // Exactly these files, with these modes, all root's.
    let listing = text(&sh(Command::new("dpkg-deb").args(["-c", &deb])));
    let files: BTreeMap<String, String> = listing
        .lines()
        .filter(|l| !l.starts_with('d'))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(f[1], "root/root", "{l}");
            (f[5].trim_start_matches('.').to_string(), f[0].to_string())
        })
        .collect();
    let mut want: BTreeMap<String, String> = BTreeMap::new();
    want.insert("/usr/bin/csjobs".into(), "-rwxr-xr-x".into());
    want.insert("/etc/csjobs/csjobs.toml".into(), "-rw-r-----".into());
    want.insert("/usr/share/lintian/overrides/csjobs".into(), "-rw-r--r--".into());
    for (job, _) in SCHEDULES {
        for kind in ["service", "timer"] {
            want.insert(format!("/lib/systemd/system/csjobs-{job}.{kind}"), "-rw-r--r--".into());
        }
    }
    // receive --follow runs on its own: a service, no timer.
    want.insert("/lib/systemd/system/csjobs-receive.service".into(), "-rw-r--r--".into());
    for page in [
        "",
        "-migrate",
        "-load-sales",
        "-transfer",
        "-trim-db",
        "-archive",
        "-trim-dicts",
        "-export-astu",
        "-reconcile",
        "-status",
        "-revenue-watch",
        "-report",
        "-receive",
        "-receive-chain",
        "-config",
    ] {
        want.insert(format!("/usr/share/man/man1/csjobs{page}.1.gz"), "-rw-r--r--".into());
    }
    for f in [
        "/usr/share/bash-completion/completions/csjobs",
        "/usr/share/zsh/vendor-completions/_csjobs",
        "/usr/share/fish/vendor_completions.d/csjobs.fish",
        "/usr/share/doc/csjobs/copyright",
        "/usr/share/doc/csjobs/changelog.gz",
        "/usr/share/csjobs/prometheus/csjobs.rules.yml",
    ] {
        want.insert(f.into(), "-rw-r--r--".into());
    }
    assert_eq!(files, want);
    let conffiles = text(&sh(Command::new("dpkg-deb").args(["--info", &deb, "conffiles"])));
    assert_eq!(conffiles.trim(), "/etc/csjobs/csjobs.toml");

    // lintian: no error, no warning.
    let l = Command::new("lintian")
        .args(["--allow-root", "--fail-on", "error,warning", &deb])
        .output()
        .expect("lintian");
    assert!(l.status.success(), "lintian:\n{}{}", text(&l), String::from_utf8_lossy(&l.stderr));

    // Install on this machine (a leftover of an earlier run goes first).
    let _ = Command::new("dpkg").args(["--purge", "csjobs"]).output();
    let data = Path::new("/opt/cashserver/queue");
    let data_was_there = data.exists();
    fs::create_dir_all(data).unwrap();
    let sales = data.join("csjobs-package-test.json");
    fs::write(&sales, b"{}").unwrap();
    sh(Command::new("dpkg").args(["-i", &deb]));
    let installed = (|| {
        let v = text(&sh(Command::new("/usr/bin/csjobs").arg("--version")));
        assert!(v.starts_with(&format!("csjobs {} (commit ", env!("CARGO_PKG_VERSION"))), "{v}");
        assert!(text(&sh(Command::new("getent").args(["passwd", "csjobs"]))).contains(":/nonexistent:/usr/sbin/nologin"));
        sh(Command::new("getent").args(["group", "csjobs"]));
        let st = text(&sh(Command::new("stat").args(["-c", "%U %G %a", "/etc/csjobs/csjobs.toml"])));
        assert_eq!(st.trim(), "root csjobs 640", "the config may hold passwords");
        // Installing enables nothing.
        for (job, _) in SCHEDULES {
            assert!(!Path::new(&format!("/etc/systemd/system/timers.target.wants/csjobs-{job}.timer")).exists());
        }
        // The installed binary reads the installed (all commented) config: the defaults.
        let cfg = text(&sh(Command::new("/usr/bin/csjobs").args(["config"]).env_clear()));
        assert!(cfg.lines().any(|l| l.starts_with("paths.queue") && l.ends_with("default")), "{cfg}");

        // Every unit passes systemd-analyze verify; each timer's schedule is the spec's.
        let units: Vec<String> = SCHEDULES
            .iter()
            .flat_map(|(j, _)| [format!("/lib/systemd/system/csjobs-{j}.service"), format!("/lib/systemd/system/csjobs-{j}.timer")])
            .chain(["/lib/systemd/system/csjobs-receive.service".to_string()])
            .collect();
        let v = Command::new("systemd-analyze").arg("verify").args(&units).output().expect("systemd-analyze");
        assert!(v.status.success() && v.stderr.is_empty(), "verify: {}{}", text(&v), String::from_utf8_lossy(&v.stderr));
        for (job, lines) in SCHEDULES {
            let timer = fs::read_to_string(format!("/lib/systemd/system/csjobs-{job}.timer")).unwrap();
            for l in lines {
                assert!(timer.lines().any(|t| t == *l), "csjobs-{job}.timer lacks {l}");
                if let Some(cal) = l.strip_prefix("OnCalendar=") {
                    sh(Command::new("systemd-analyze").args(["calendar", cal]));
                }
            }
            let service = fs::read_to_string(format!("/lib/systemd/system/csjobs-{job}.service")).unwrap();
            for h in ["Type=oneshot", "User=csjobs", "NoNewPrivileges=yes", "PrivateTmp=yes", "ProtectHome=yes"] {
                assert!(service.lines().any(|s| s == h), "csjobs-{job}.service lacks {h}");
            }
            assert!(service.contains("ProtectSystem=strict") || job == "trim-dicts", "csjobs-{job}.service");
        }
        let calendar = text(&sh(Command::new("systemd-analyze").args(["calendar", "*:0/15", "*-*-* 04:30:00"])));
        assert!(calendar.contains("Normalized form: *-*-* *:00/15:00") && calendar.contains("Normalized form: *-*-* 04:30:00"), "{calendar}");
        let receive = fs::read_to_string("/lib/systemd/system/csjobs-receive.service").unwrap();
        for h in [
            "ExecStart=/usr/bin/csjobs receive --follow",
            "Restart=on-failure",
            "User=csjobs",
            "NoNewPrivileges=yes",
            "ProtectSystem=strict",
            "PrivateTmp=yes",
            "ProtectHome=yes",
            "ReadWritePaths=-/opt/cashserver/queue",
        ] {
            assert!(receive.lines().any(|s| s == h), "csjobs-receive.service lacks {h}");
        }
        assert!(!Path::new("/etc/systemd/system/multi-user.target.wants/csjobs-receive.service").exists());
        let status = fs::read_to_string("/lib/systemd/system/csjobs-status.service").unwrap();
        assert!(status.contains("--output /var/lib/prometheus/node-exporter/csjobs.prom"));
        assert!(status.contains("ReadWritePaths=-/var/lib/prometheus/node-exporter\n"), "status writes only its textfile");
        let report = fs::read_to_string("/lib/systemd/system/csjobs-report.service").unwrap();
        assert!(report.contains("ExecStart=/usr/bin/csjobs report --output /var/lib/csjobs/report.html\n"));
        assert!(report.contains("StateDirectory=csjobs\n"), "systemd makes /var/lib/csjobs for it");

        // The alerting rules are the project's (tests/alert_rules.rs tests them), and the
        // installed file passes promtool where it lies.
        let rules = "/usr/share/csjobs/prometheus/csjobs.rules.yml";
        assert_eq!(
            fs::read(rules).unwrap(),
            fs::read(format!("{root}/scripts/prometheus/csjobs.rules.yml")).unwrap(),
            "{rules}"
        );
        let p = Command::new("promtool")
            .args(["check", "rules", rules])
            .output()
            .expect("promtool (Debian package prometheus; scripts/test.sh installs it)");
        assert!(p.status.success(), "promtool check rules {rules}: {}{}", text(&p), String::from_utf8_lossy(&p.stderr));

        // Man pages render; completions load in bash.
        for page in ["csjobs", "csjobs-status", "csjobs-load-sales"] {
            let m = sh(Command::new("man").args(["-l", &format!("/usr/share/man/man1/{page}.1.gz")]).env("MANWIDTH", "80").env("MAN_KEEP_FORMATTING", "0"));
            // Bold and underline come as overstrikes ("S\x08S") when man writes to a pipe.
            let mut page_text = String::new();
            for ch in text(&m).chars() {
                if ch == '\x08' {
                    page_text.pop();
                } else {
                    page_text.push(ch);
                }
            }
            assert!(page_text.contains("SYNOPSIS") && page_text.contains(&format!("{page} ")), "{page}: {page_text}");
            assert!(m.stderr.is_empty(), "{page}: {}", String::from_utf8_lossy(&m.stderr));
        }
        let c = text(&sh(Command::new("bash").args(["-c", "source /usr/share/bash-completion/completions/csjobs && complete -p csjobs"])));
        assert!(c.contains("csjobs"), "{c}");
        sh(Command::new("bash").args(["-c", "source /usr/share/bash-completion/completions/csjobs && COMP_WORDS=(csjobs sta); COMP_CWORD=1; COMP_LINE='csjobs sta'; COMP_POINT=10; _csjobs csjobs sta csjobs && printf '%s\\n' \"${COMPREPLY[@]}\" | grep -qx status"]));
    })
    .pipe_catch();

    // Remove: the config and the data stay, the binary and units go.
    sh(Command::new("dpkg").args(["--remove", "csjobs"]));
    let removed = (|| {
        assert!(!Path::new("/usr/bin/csjobs").exists());
        assert!(!Path::new("/lib/systemd/system/csjobs-load-sales.service").exists());
        assert!(!Path::new("/usr/share/csjobs").exists(), "remove takes the alerting rules");
        assert!(Path::new("/etc/csjobs/csjobs.toml").exists(), "remove keeps the config");
        assert!(sales.exists(), "remove keeps the data");
    })
    .pipe_catch();
    // Purge: the config and the report page go; the sales files and the system user stay.
    let state_was_there = Path::new("/var/lib/csjobs").exists();
    fs::create_dir_all("/var/lib/csjobs").unwrap();
    fs::write("/var/lib/csjobs/report.html", b"<!DOCTYPE html>").unwrap();
    // A page a killed report run left half written goes too.
    fs::write("/var/lib/csjobs/.report.html.csjobs-tmp-test", b"<!DOCTYPE").unwrap();
    // What the admin keeps beside them is not the package's: it stays (and so does the
    // directory holding it) when the directory was there before.
    let admins = Path::new("/var/lib/csjobs/admin-notes.txt");
    if state_was_there {
        fs::write(admins, b"mine").unwrap();
    }
    sh(Command::new("dpkg").args(["--purge", "csjobs"]));
    let purged = (|| {
        assert!(!Path::new("/etc/csjobs").exists(), "purge removes the config");
        assert!(!Path::new("/var/lib/csjobs/report.html").exists(), "purge removes the report page");
        assert!(
            !Path::new("/var/lib/csjobs/.report.html.csjobs-tmp-test").exists(),
            "purge removes a half-written report page"
        );
        if state_was_there {
            assert!(admins.exists(), "purge keeps what is not the package's");
            let _ = fs::remove_file(admins);
        } else {
            assert!(!Path::new("/var/lib/csjobs").exists(), "purge removes the directory it emptied");
        }
        assert!(sales.exists(), "purge never removes sales files");
        sh(Command::new("getent").args(["passwd", "csjobs"]));
        let overrides = text(&sh(Command::new("dpkg-statoverride").arg("--list")));
        assert!(!overrides.contains("/etc/csjobs"), "{overrides}");
    })
    .pipe_catch();
    fs::remove_file(&sales).unwrap();
    if !data_was_there {
        let _ = fs::remove_dir(data);
        let _ = fs::remove_dir("/opt/cashserver");
    }
    for r in [installed, removed, purged] {
        if let Err(e) = r {
            std::panic::resume_unwind(e);
        }
    }
}

/// Runs a check and keeps its panic, so that the package is removed and purged whatever
/// happens, and the first failure is reported after.
trait PipeCatch {
    fn pipe_catch(self) -> std::thread::Result<()>;
}

impl<F: FnOnce()> PipeCatch for F {
    fn pipe_catch(self) -> std::thread::Result<()> {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(self))
    }
}
