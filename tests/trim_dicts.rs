//! `csjobs trim-dicts` through the binary against a real cash server DB and real files:
//! rules.md §3, every refused path, links inside the directory, and the cases where nothing
//! may be removed.

mod common;

use std::{fs, path::Path};

use common::*;

async fn set_dir(db: &TestDb, value: Option<&str>) {
    let c = &db.client;
    c.execute("delete from settings where name = 'SEND_DICTS_ON_CASHES_BY_URL_LOCAL_DIRECTORY'", &[])
        .await
        .unwrap();
    if let Some(v) = value {
        c.execute(
            "insert into settings (name, value) values ('SEND_DICTS_ON_CASHES_BY_URL_LOCAL_DIRECTORY', $1)",
            &[&v],
        )
        .await
        .unwrap();
    }
}

fn trim_dicts(db_url: &str, dirs: &Dirs, args: &[&str]) -> Run {
    let mut c = csjobs(db_url, dirs);
    c.arg("trim-dicts").args(args);
    run(c)
}

/// `trim-dicts` as nobody, for the cases that name the machine's own directories (`/etc`,
/// `/usr`, a home): should a guard ever regress, the run could remove nothing of them. A
/// regressed guard tested as root once emptied this machine's /usr/local.
fn trim_dicts_as_nobody(db_url: &str, dirs: &Dirs) -> Run {
    let mut c = csjobs(db_url, dirs);
    c.arg("trim-dicts");
    run(as_nobody(c))
}

/// A dictionary directory with files, nested directories, and links pointing outside it.
fn populate(dicts: &Path, outside: &Path) {
    fs::create_dir_all(dicts.join("shop8/cash17")).unwrap();
    fs::write(dicts.join("goods.zip"), "zip").unwrap();
    fs::write(dicts.join(".hidden"), "h").unwrap();
    fs::write(dicts.join("shop8/cash17/prices.zip"), "p").unwrap();
    fs::create_dir_all(outside.join("keep")).unwrap();
    fs::write(outside.join("keep/precious.txt"), "precious").unwrap();
    fs::write(outside.join("file.txt"), "file").unwrap();
    std::os::unix::fs::symlink(outside.join("keep"), dicts.join("link-to-dir")).unwrap();
    std::os::unix::fs::symlink(outside.join("file.txt"), dicts.join("link-to-file")).unwrap();
    std::os::unix::fs::symlink("/nonexistent/target", dicts.join("dangling")).unwrap();
    std::os::unix::fs::symlink(outside.join("keep"), dicts.join("shop8/inner-link")).unwrap();
}

fn outside_untouched(outside: &Path) {
    assert_eq!(fs::read_to_string(outside.join("keep/precious.txt")).unwrap(), "precious");
    assert_eq!(fs::read_to_string(outside.join("file.txt")).unwrap(), "file");
}

#[tokio::test]
async fn empties_the_directory_and_removes_links_as_links() {
    let db = TestDb::cashserver().await;
    let dirs = Dirs::new();
    let dicts = dirs.tmp.path().join("dicts");
    let outside = dirs.tmp.path().join("outside");
    populate(&dicts, &outside);
    set_dir(&db, Some(dicts.to_str().unwrap())).await;

    let r = trim_dicts(&db.url, &dirs, &["--dry-run"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains(&format!("remove\t{}", dicts.join("goods.zip").display())), "{}", r.stdout);
    assert_eq!(Dirs::names(&dicts).len(), 6, "a dry run removes nothing");

    let r = trim_dicts(&db.url, &dirs, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(dicts.is_dir(), "the directory itself stays");
    assert!(Dirs::names(&dicts).is_empty(), "{:?}", Dirs::names(&dicts));
    outside_untouched(&outside);
    assert_eq!(
        db.scalar_i64("select count(*) from job_run where job = 'trim-dicts' and exit_code = 0").await,
        1
    );

    // An empty directory is fine too.
    assert_eq!(trim_dicts(&db.url, &dirs, &[]).code, 0);
}

#[tokio::test]
async fn a_missing_or_empty_setting_removes_nothing() {
    let db = TestDb::cashserver().await;
    let dirs = Dirs::new();
    let dicts = dirs.tmp.path().join("dicts");
    populate(&dicts, &dirs.tmp.path().join("outside"));
    for value in [None, Some(""), Some("   ")] {
        set_dir(&db, value).await;
        let r = trim_dicts(&db.url, &dirs, &[]);
        assert_eq!(r.code, 2, "{value:?}: {}", r.stderr);
        assert!(r.stderr.contains("SEND_DICTS_ON_CASHES_BY_URL_LOCAL_DIRECTORY"), "{}", r.stderr);
        assert!(r.stderr.contains("nothing was removed"), "{}", r.stderr);
        assert_eq!(Dirs::names(&dicts).len(), 6);
    }
}

#[tokio::test]
async fn an_unreachable_database_removes_nothing() {
    let dirs = Dirs::new();
    let dicts = dirs.tmp.path().join("dicts");
    populate(&dicts, &dirs.tmp.path().join("outside"));
    let r = trim_dicts("postgres://postgres@127.0.0.1:1/none?connect_timeout=2", &dirs, &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("nothing was removed"), "{}", r.stderr);
    assert_eq!(Dirs::names(&dicts).len(), 6);
}

/// A directory of this test inside a system tree (the tests run as root), with a sentinel
/// file; removed when dropped.
struct Scratch(std::path::PathBuf);

impl Scratch {
    fn new(tree: &str) -> Scratch {
        let dir = Path::new(tree).join(format!("csjobs-test-{}-{}", std::process::id(), tree.len()));
        fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("this test needs root to create {}: {e}", dir.display()));
        fs::write(dir.join("sentinel"), "keep").unwrap();
        Scratch(dir)
    }

    fn untouched(&self) {
        assert_eq!(fs::read_to_string(self.0.join("sentinel")).unwrap(), "keep", "{}", self.0.display());
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[tokio::test]
async fn every_refused_path_removes_nothing() {
    let db = TestDb::cashserver().await;
    let dirs = Dirs::new();
    let t = dirs.tmp.path();
    let dicts = t.join("dicts");
    let outside = t.join("outside");
    populate(&dicts, &outside);
    fs::write(t.join("a-file"), "f").unwrap();
    std::os::unix::fs::symlink(&dicts, t.join("link-to-dicts")).unwrap();
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let scratch: Vec<Scratch> =
        ["/usr/local", "/var/lib", "/etc"].iter().map(|tree| Scratch::new(tree)).collect();
    let cases = [
        ("dicts".to_string(), "not an absolute path"),
        ("./dicts".to_string(), "not an absolute path"),
        (s(&t.join("nope")), "does not exist"),
        (s(&t.join("a-file")), "is not a directory"),
        (s(&t.join("link-to-dicts")), "symbolic link"),
        (format!("{}/../dicts", s(&outside)), ".."),
        ("/".to_string(), "system directory"),
        ("/etc".to_string(), "system directory"),
        ("/usr/".to_string(), "system directory"),
        ("/var".to_string(), "system directory"),
        ("/proc".to_string(), "system directory"),
        ("/root".to_string(), "system directory"),
        ("/sys".to_string(), "system directory"),
        ("/dev".to_string(), "system directory"),
        ("/boot".to_string(), "system directory"),
        ("/run".to_string(), "system directory"),
        ("/bin".to_string(), "system directory"),
        ("/sbin".to_string(), "system directory"),
        ("/lib".to_string(), "system directory"),
        // csjobs' own directories: emptying them would lose sales files.
        (s(t), "csjobs directory"),
        (s(&dirs.processed), "csjobs directory"),
        // Inside a system tree, not only the tree itself (rules.md §3), by the canonical path.
        // Scratch directories of this test (a sentinel file each), never a real one: a
        // regression must not empty /usr/local or /var/lib/postgresql.
        (s(&scratch[0].0), "inside the system directory /usr"),
        (s(&scratch[1].0), "inside the system directory /var/lib"),
        (s(&t.join("etc-link").join(scratch[2].0.file_name().unwrap())), "inside the system directory /etc"),
        ("/usr/local/csjobs-no-such-dir".to_string(), "inside the system directory /usr"),
        ("/var/lib".to_string(), "system directory"),
        // Inside one of csjobs' own directories, directly and through a link.
        (s(&t.join("backup/processed_archive")), "inside the csjobs directory"),
        (s(&t.join("processed-link/sub")), "inside the csjobs directory"),
    ];
    fs::create_dir_all(t.join("backup/processed_archive")).unwrap();
    fs::create_dir_all(dirs.processed.join("sub")).unwrap();
    std::os::unix::fs::symlink("/etc", t.join("etc-link")).unwrap();
    std::os::unix::fs::symlink(&dirs.processed, t.join("processed-link")).unwrap();
    for (value, why) in cases {
        set_dir(&db, Some(&value)).await;
        let ours = !value.starts_with('/') || Path::new(&value).starts_with(t);
        let r = if ours { trim_dicts(&db.url, &dirs, &[]) } else { trim_dicts_as_nobody(&db.url, &dirs) };
        assert_eq!(r.code, 2, "{value}: {}", r.stderr);
        // The logs are JSON lines: read the messages, not the escaped text.
        let messages: String = r
            .stderr
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|v| v["message"].as_str().map(String::from))
            .collect::<Vec<_>>()
            .join("\n");
        assert!(messages.contains(why), "{value}: want {why:?} in {}", r.stderr);
        assert!(messages.contains(&format!("{value:?}")), "the message names the value: {}", r.stderr);
        assert!(
            messages.contains("SEND_DICTS_ON_CASHES_BY_URL_LOCAL_DIRECTORY")
                && messages.contains("rules.md §3"),
            "the message names the setting and the rule: {}",
            r.stderr
        );
        assert_eq!(Dirs::names(&dicts).len(), 6, "{value}");
        outside_untouched(&outside);
        for sc in &scratch {
            sc.untouched();
        }
    }
    // A home directory itself.
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    if Path::new(&home).is_dir() {
        set_dir(&db, Some(&home)).await;
        let r = trim_dicts_as_nobody(&db.url, &dirs);
        assert_eq!(r.code, 2, "{home}: {}", r.stderr);
    }
}
