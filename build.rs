//! Embeds the SQL migrations of `sql/<database>/NNNN_name.sql` into the binary, so that
//! `csjobs migrate` works wherever the binary is installed and tests use the very same files;
//! and the commit the binary is built from (`csjobs --version`): `CSJOBS_COMMIT` when set (a
//! build from a source tarball), else `git rev-parse`, else "unknown".
use std::{env, fmt::Write, fs, path::Path};

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("sql");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut out = String::new();
    for (konst, dir) in [("CASHSERVER", "cashserver"), ("BONUS", "bonus")] {
        let dir = root.join(dir);
        println!("cargo:rerun-if-changed={}", dir.display());
        let mut files: Vec<_> = fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
            .map(|e| e.expect("dir entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "sql"))
            .collect();
        files.sort();
        writeln!(out, "pub const {konst}: &[Migration] = &[").unwrap();
        for path in files {
            let stem = path.file_stem().unwrap().to_str().expect("utf-8 name");
            let (version, name) =
                stem.split_once('_').unwrap_or_else(|| panic!("{}: expected NNNN_name.sql", path.display()));
            let version: i32 =
                version.parse().unwrap_or_else(|_| panic!("{}: expected NNNN_name.sql", path.display()));
            writeln!(
                out,
                "    Migration {{ version: {version}, name: {name:?}, sql: include_str!({:?}) }},",
                path.display().to_string()
            )
            .unwrap();
        }
        writeln!(out, "];").unwrap();
    }
    fs::write(Path::new(&env::var("OUT_DIR").unwrap()).join("migrations.rs"), out).unwrap();
    commit();
}

fn commit() {
    println!("cargo:rerun-if-env-changed=CSJOBS_COMMIT");
    // A new commit moves HEAD or the branch it points to. In a git worktree `.git` is a file:
    // HEAD is in the worktree's own git directory, the branches in the common one.
    let ask = |what: &str| {
        std::process::Command::new("git")
            .args(["rev-parse", "--path-format=absolute", what])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| std::path::PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
    };
    let fallback = Path::new(env!("CARGO_MANIFEST_DIR")).join(".git");
    let git = ask("--git-dir").unwrap_or_else(|| fallback.clone());
    let common = ask("--git-common-dir").unwrap_or(fallback);
    for f in [git.join("HEAD"), common.join("packed-refs")] {
        if f.exists() {
            println!("cargo:rerun-if-changed={}", f.display());
        }
    }
    if let Some(r) = fs::read_to_string(git.join("HEAD"))
        .ok()
        .and_then(|h| h.strip_prefix("ref: ").map(|r| r.trim().to_string()))
    {
        println!("cargo:rerun-if-changed={}", common.join(r).display());
    }
    let commit = env::var("CSJOBS_COMMIT").ok().filter(|c| !c.is_empty()).or_else(|| {
        std::process::Command::new("git")
            .args(["rev-parse", "--short=12", "HEAD"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    });
    println!("cargo:rustc-env=CSJOBS_COMMIT={}", commit.unwrap_or_else(|| "unknown".into()));
}
