//! Where a connection's password comes from when its connection string has none, as libpq
//! has it (cli.md): `PGPASSWORD`, then the password file `PGPASSFILE` or `~/.pgpass`.
//!
//! The file has one `hostname:port:database:username:password` a line; `#` starts a
//! comment line; each of the first four fields may be `*` (anything); `\` escapes `:` and
//! `\` in any field. The first line that matches wins. A file that group or others may
//! read or write, or that is not a plain file, is ignored with a warning, as libpq does:
//! a password that others can read is not one to send.

use std::{os::unix::fs::MetadataExt, path::PathBuf};

/// What a connection is matched on. `host` is the host name, or `localhost` for the default
/// Unix socket directory (libpq's rule); `port` and `database` are as connected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target<'a> {
    pub host: &'a str,
    pub port: u16,
    pub database: &'a str,
    pub user: &'a str,
}

/// The password libpq would use for `target` when the connection string gives none:
/// `env("PGPASSWORD")`, else the matching line of the password file. `warn` gets what is
/// wrong with a password file that is ignored (never its content).
pub fn lookup(
    target: &Target<'_>,
    env: &dyn Fn(&str) -> Option<String>,
    warn: &mut dyn FnMut(String),
) -> Option<String> {
    // An empty PGPASSWORD is no password: libpq goes on to the file.
    if let Some(pw) = env("PGPASSWORD").filter(|p| !p.is_empty()) {
        return Some(pw);
    }
    let path = match env("PGPASSFILE") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        // Never `./.pgpass` of the working directory when HOME is empty.
        _ => PathBuf::from(env("HOME").filter(|h| !h.is_empty())?).join(".pgpass"),
    };
    let meta = match std::fs::metadata(&path) {
        Ok(m) => m,
        Err(_) => return None, // no file: no password from it (libpq is silent too)
    };
    if !meta.is_file() {
        warn(format!("password file {} is not a plain file: it is ignored", path.display()));
        return None;
    }
    if meta.mode() & 0o077 != 0 {
        warn(format!(
            "password file {} has group or world access ({:o}); permissions should be u=rw (0600) or \
             less: it is ignored",
            path.display(),
            meta.mode() & 0o777
        ));
        return None;
    }
    match fs_err::read_to_string(&path) {
        Ok(text) => find(&text, target),
        Err(e) => {
            warn(format!("{e}: the password file is ignored"));
            None
        }
    }
}

/// The password of the first line of a password file's `text` that matches `target`.
pub fn find(text: &str, target: &Target<'_>) -> Option<String> {
    let port = target.port.to_string();
    let wanted = [target.host, port.as_str(), target.database, target.user];
    text.lines().map(|l| l.strip_suffix('\r').unwrap_or(l)).find_map(|line| {
        if line.is_empty() || line.starts_with('#') {
            return None;
        }
        let fields = split(line);
        if fields.len() < 5 {
            return None; // libpq skips a line without all five fields
        }
        let matches = fields[..4].iter().zip(wanted).all(|(f, w)| f.raw == "*" || f.value == w);
        matches.then(|| fields[4].value.clone())
    })
}

struct Field<'a> {
    /// As written (`*` only matches anything when written bare).
    raw: &'a str,
    /// With its `\` escapes undone.
    value: String,
}

/// Splits at every unescaped `:`. The fifth field is the password: it ends at the next
/// unescaped `:`, as libpq reads it.
fn split(line: &str) -> Vec<Field<'_>> {
    let mut fields = Vec::with_capacity(5);
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            ':' => {
                let raw = &line[start..i];
                fields.push(Field { raw, value: unescape(raw) });
                start = i + 1;
            }
            _ => {}
        }
    }
    let raw = &line[start..];
    fields.push(Field { raw, value: unescape(raw) });
    fields
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c == '\\' {
            if let Some(next) = it.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Target<'static> = Target { host: "db.local", port: 5432, database: "cash", user: "csjobs" };

    #[test]
    fn the_first_matching_line_wins_and_stars_match_anything() {
        let text = "# comment\n\nother:5432:cash:csjobs:no\ndb.local:5433:*:*:wrong port\n\
                    db.local:5432:cash:csjobs:first\n*:*:*:*:second\n";
        assert_eq!(find(text, &T).as_deref(), Some("first"));
        assert_eq!(find("*:*:*:*:any\n", &T).as_deref(), Some("any"));
        assert_eq!(find("db.local:*:*:nobody:x\n", &T), None);
    }

    #[test]
    fn backslash_escapes_colons_and_backslashes_in_every_field() {
        let t = Target { host: "h:1", port: 5432, database: "d\\b", user: "u" };
        assert_eq!(
            find("h\\:1:5432:d\\\\b:u:p\\:w\\\\d:x\r\n", &t).as_deref(),
            Some("p:w\\d"),
            "the password ends at an unescaped colon"
        );
        // An escaped star is a star, not "anything".
        assert_eq!(find("\\*:*:*:*:x\n", &T), None);
        assert_eq!(find("short:line\n", &T), None);
    }

    #[test]
    fn pgpassword_comes_first_and_a_file_others_can_read_is_ignored() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pass");
        std::fs::write(&file, "*:*:*:*:from-file\n").unwrap();
        let path = file.display().to_string();
        let env = |pw: Option<&'static str>| {
            let path = path.clone();
            move |k: &str| match k {
                "PGPASSWORD" => pw.map(str::to_string),
                "PGPASSFILE" => Some(path.clone()),
                _ => None,
            }
        };
        let mut warnings = Vec::new();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(
            lookup(&T, &env(Some("from-env")), &mut |w| warnings.push(w)).as_deref(),
            Some("from-env")
        );
        assert_eq!(lookup(&T, &env(None), &mut |w| warnings.push(w)).as_deref(), Some("from-file"));
        assert!(warnings.is_empty());
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert_eq!(lookup(&T, &env(None), &mut |w| warnings.push(w)), None);
        assert!(
            warnings[0].contains("group or world access") && !warnings[0].contains("from-file"),
            "{warnings:?}"
        );
    }
}
