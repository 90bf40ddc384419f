//! The code names the documents quote must exist. ARCHITECTURE.md and every docs/*.md page
//! are read; every name quoted in backticks in the form `path::name` (an inline code span
//! that is exactly such a path, or a token of a fenced block without a language, the
//! diagrams) must resolve:
//!
//! - the longest leading part of the path that names a module maps to exactly one file
//!   under jobs/ (`a::b` is jobs/…/a/b.rs or jobs/…/a/b/mod.rs, matched on the path's
//!   suffix: `engine` is jobs/load_sales/engine.rs, `core::config` jobs/core/config.rs);
//! - what follows is one name defined in that file (`fn`, `struct`, `enum`, `const`,
//!   `static`, `mod`, `trait`, `type`, or a `pub use` re-export), or `Type::member` where
//!   `Type` is a struct, enum, trait or type there and `member` is a variant of that enum or
//!   a `fn`/`const` inside an `impl` (or the trait) of that type.
//!
//! A module path that matches two files (`job`) is ambiguous and fails: write
//! `load_sales::job::run`. `Type::member` alone is looked up in the one file that defines `Type`.
//! Names of other crates (`serde_json::…`, see `EXTERNAL`) are left alone. Pure Rust, no
//! database.

use std::{
    fs,
    path::{Path, PathBuf},
};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Crates the documents may name (`serde_json::Number::as_str`); their names are not checked.
const EXTERNAL: &[&str] =
    &["std", "clap", "serde_json", "tokio_postgres", "rustls", "polars", "libfuzzer_sys"];

/// Every Rust file under jobs/, as module paths: jobs/load_sales/engine.rs is ["load_sales", "engine"],
/// jobs/status/mod.rs is ["status"], jobs/lib.rs and jobs/main.rs are [].
fn modules() -> Vec<(Vec<String>, PathBuf)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let jobs = Path::new(ROOT).join("jobs");
    let mut files = Vec::new();
    walk(&jobs, &mut files);
    files
        .into_iter()
        .map(|f| {
            let rel = f.strip_prefix(&jobs).unwrap().with_extension("");
            let mut segs: Vec<String> = rel.iter().map(|s| s.to_string_lossy().into_owned()).collect();
            if matches!(segs.last().map(String::as_str), Some("mod" | "lib" | "main")) {
                segs.pop();
            }
            (segs, f)
        })
        .collect()
}

/// A code name as the test reads it: identifiers joined by `::`, at least two of them.
fn is_path(s: &str) -> bool {
    let segs: Vec<&str> = s.split("::").collect();
    segs.len() >= 2
        && segs.iter().all(|g| {
            let mut c = g.chars();
            c.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && c.all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
}

/// The names a document quotes, with their line numbers.
fn quoted_names(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut fence: Option<bool> = None; // Some(true): a fence without a language (a diagram)
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let t = line.trim_start();
        if let Some(rest) = t.strip_prefix("```") {
            fence = match fence {
                None => Some(rest.trim().is_empty()),
                Some(_) => None,
            };
            continue;
        }
        match fence {
            Some(true) => {
                for tok in line.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':')) {
                    let tok = tok.trim_matches(':');
                    if is_path(tok) {
                        out.push((n, tok.to_string()));
                    }
                }
            }
            Some(false) => {}
            None => {
                // Inline code spans: the text between pairs of backticks on the line.
                let parts: Vec<&str> = line.split('`').collect();
                for (k, span) in parts.iter().enumerate() {
                    if k % 2 == 1 && k + 1 < parts.len() {
                        let s = span.trim().trim_end_matches("()");
                        if is_path(s) {
                            out.push((n, s.to_string()));
                        }
                    }
                }
            }
        }
    }
    out
}

/// The source with comments, string and char literals blanked (same length, same lines),
/// so that braces and words inside them count for nothing.
fn code_only(src: &str) -> String {
    let b: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == '/' && b.get(i + 1) == Some(&'/') {
            while i < b.len() && b[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c == '/' && b.get(i + 1) == Some(&'*') {
            let mut depth = 0;
            loop {
                if i >= b.len() {
                    break;
                }
                if b[i] == '/' && b.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if b[i] == '*' && b.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(if b[i] == '\n' { '\n' } else { ' ' });
                    i += 1;
                }
            }
        } else if c == 'r'
            && (b.get(i + 1) == Some(&'"') || b.get(i + 1) == Some(&'#'))
            && (i == 0 || !(b[i - 1].is_alphanumeric() || b[i - 1] == '_'))
        {
            // Raw string r"…" / r#"…"#.
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            loop {
                if j >= b.len() {
                    break;
                }
                if b[j] == '"' && (0..hashes).all(|h| b.get(j + 1 + h) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            for &ch in &b[i..j.min(b.len())] {
                out.push(if ch == '\n' { '\n' } else { ' ' });
            }
            i = j;
        } else if c == '"' {
            out.push(' ');
            i += 1;
            while i < b.len() && b[i] != '"' {
                if b[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                if i < b.len() {
                    out.push(if b[i] == '\n' { '\n' } else { ' ' });
                    i += 1;
                }
            }
            out.push(' ');
            i += 1;
        } else if c == '\''
            && (b.get(i + 2) == Some(&'\'') || (b.get(i + 1) == Some(&'\\') && b.get(i + 3) == Some(&'\'')))
        {
            // A char literal ('{', '\n'); a lifetime ('a) has no closing quote there.
            let len = if b[i + 1] == '\\' { 4 } else { 3 };
            out.push_str(&" ".repeat(len));
            i += len;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// The text between the `{` that follows `from` and its matching `}`.
fn block_after(code: &str, from: usize) -> Option<&str> {
    let open = from + code[from..].find('{')?;
    // A `;` before the `{` ends an item without a body (`struct A;`, `mod a;`).
    if code[from..open].contains(';') {
        return None;
    }
    let mut depth = 0;
    for (k, ch) in code[open..].char_indices() {
        match ch {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(&code[open + 1..open + k]);
                }
            }
            _ => {}
        }
    }
    None
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Byte offsets where `word` stands as a whole word.
fn word_at<'a>(code: &'a str, word: &'a str) -> impl Iterator<Item = usize> + 'a {
    code.match_indices(word).map(|(i, _)| i).filter(move |&i| {
        let before = code[..i].chars().next_back().is_none_or(|c| !is_ident_char(c));
        let after = code[i + word.len()..].chars().next().is_none_or(|c| !is_ident_char(c));
        before && after
    })
}

/// Offsets just after `<keyword> <name>` items (`fn name`, `struct name`, …).
fn items<'a>(code: &'a str, keywords: &'a [&'a str], name: &'a str) -> Vec<usize> {
    let mut found = Vec::new();
    for i in word_at(code, name) {
        let before = code[..i].trim_end();
        if keywords.iter().any(|k| {
            before.ends_with(k)
                && before[..before.len() - k.len()].chars().next_back().is_none_or(|c| !is_ident_char(c))
        }) {
            found.push(i + name.len());
        }
    }
    found
}

/// Whether `name` is an item of the file: defined there, or re-exported with `pub use`.
fn defines(code: &str, name: &str) -> bool {
    const KINDS: &[&str] =
        &["fn", "struct", "enum", "const", "static", "mod", "trait", "type", "macro_rules!"];
    if !items(code, KINDS, name).is_empty() {
        return true;
    }
    // `pub use a::{b, name}` / `pub use a::name;`
    code.match_indices("pub use ").any(|(i, _)| {
        let end = i + code[i..].find(';').unwrap_or(code.len() - i);
        word_at(&code[i..end], name).next().is_some()
    })
}

/// Whether `member` is a variant of enum `ty`, or a fn/const of an `impl … ty` or `trait ty`.
fn defines_member(code: &str, ty: &str, member: &str) -> bool {
    for at in items(code, &["enum"], ty) {
        if let Some(body) = block_after(code, at) {
            // Variants: at depth 0 of the body, a name followed by `,` `(` `{` `=` or the end.
            let mut depth = 0;
            let mut start = true;
            let mut k = 0;
            let bytes: Vec<char> = body.chars().collect();
            while k < bytes.len() {
                let c = bytes[k];
                match c {
                    '{' | '(' | '[' => depth += 1,
                    '}' | ')' | ']' => depth -= 1,
                    ',' if depth == 0 => start = true,
                    '#' if depth == 0 => {
                        // an attribute: skip to its closing ]
                        while k < bytes.len() && bytes[k] != ']' {
                            k += 1;
                        }
                    }
                    c if depth == 0 && start && is_ident_char(c) => {
                        let w: String = bytes[k..].iter().take_while(|c| is_ident_char(**c)).collect();
                        if w == member {
                            return true;
                        }
                        k += w.chars().count();
                        start = false;
                        continue;
                    }
                    _ => {}
                }
                k += 1;
            }
        }
    }
    let mut bodies = Vec::new();
    for (i, _) in code.match_indices("impl") {
        let ok_before = code[..i].chars().next_back().is_none_or(|c| !is_ident_char(c));
        let ok_after = code[i + 4..].chars().next().is_some_and(|c| c == '<' || c.is_whitespace());
        if !(ok_before && ok_after) {
            continue;
        }
        let Some(open) = code[i..].find('{').map(|o| i + o) else { continue };
        let header = &code[i..open];
        // The self type is the last path of the header: after ` for `, else after `impl<…>`.
        let self_part = header.rsplit(" for ").next().unwrap_or(header);
        let self_part = self_part.split(" where ").next().unwrap_or(self_part);
        if word_at(self_part, ty).next().is_some() {
            bodies.extend(block_after(code, i));
        }
    }
    for at in items(code, &["trait"], ty) {
        bodies.extend(block_after(code, at));
    }
    bodies.iter().any(|b| !items(b, &["fn", "const", "type"], member).is_empty())
}

/// `None` when `name` resolves; otherwise why not.
fn resolve(name: &str, mods: &[(Vec<String>, PathBuf)]) -> Option<String> {
    let mut segs: Vec<&str> = name.split("::").collect();
    if matches!(segs[0], "crate" | "csjobs") {
        segs.remove(0);
    }
    if EXTERNAL.contains(&segs[0]) {
        return None; // another crate's name: not ours to check
    }
    for k in (1..segs.len()).rev() {
        let module = &segs[..k];
        let files: Vec<&PathBuf> = mods
            .iter()
            .filter(|(m, _)| m.len() >= module.len() && m[m.len() - module.len()..].iter().eq(module.iter()))
            .map(|(_, f)| f)
            .collect();
        if files.is_empty() {
            continue;
        }
        let shown = |f: &PathBuf| f.strip_prefix(ROOT).unwrap().display().to_string();
        if files.len() > 1 {
            let list: Vec<String> = files.iter().map(|f| shown(f)).collect();
            return Some(format!(
                "`{}` is ambiguous ({}): name its parent module too",
                module.join("::"),
                list.join(", ")
            ));
        }
        let code = code_only(&fs::read_to_string(files[0]).unwrap());
        let rest = &segs[k..];
        return match rest {
            [item] if defines(&code, item) => None,
            [ty, member] if defines(&code, ty) && defines_member(&code, ty, member) => None,
            [_] | [_, _] => Some(format!("`{}` is not defined in {}", rest.join("::"), shown(files[0]))),
            _ => Some(format!("`{}` is too deep below {}", rest.join("::"), shown(files[0]))),
        };
    }
    // `Type::member` without its module: the type must be defined in exactly one file.
    if let [ty, member] = segs[..] {
        let files: Vec<String> = mods
            .iter()
            .map(|(_, f)| code_only(&fs::read_to_string(f).unwrap()))
            .filter(|code| !items(code, &["struct", "enum", "trait", "type"], ty).is_empty())
            .collect();
        return match files.len() {
            0 => Some(format!("no module or type `{ty}` under jobs/")),
            1 if defines_member(&files[0], ty, member) => None,
            1 => Some(format!("`{ty}` has no `{member}`")),
            n => Some(format!("`{ty}` is defined in {n} files: name its module")),
        };
    }
    Some("no module of that path under jobs/".to_string())
}

fn documents() -> Vec<PathBuf> {
    let mut docs = vec![Path::new(ROOT).join("ARCHITECTURE.md")];
    let mut pages: Vec<PathBuf> = fs::read_dir(Path::new(ROOT).join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    pages.sort();
    docs.extend(pages);
    docs
}

/// The failures of one document's text.
fn check(text: &str, mods: &[(Vec<String>, PathBuf)]) -> Vec<String> {
    quoted_names(text)
        .into_iter()
        .filter_map(|(line, name)| resolve(&name, mods).map(|why| format!("line {line}: `{name}`: {why}")))
        .collect()
}

#[test]
fn every_code_name_in_the_documents_exists() {
    let mods = modules();
    let mut failures = Vec::new();
    let mut checked = 0;
    for doc in documents() {
        let text = fs::read_to_string(&doc).unwrap();
        checked += quoted_names(&text).len();
        for f in check(&text, &mods) {
            failures.push(format!("{}: {f}", doc.strip_prefix(ROOT).unwrap().display()));
        }
    }
    assert!(checked > 20, "only {checked} code names found: is the scanner broken?");
    assert!(failures.is_empty(), "{} code names do not resolve:\n{}", failures.len(), failures.join("\n"));
}

/// The checker itself: names that exist pass, a renamed or moved one fails.
#[test]
fn the_checker_catches_renamed_and_moved_names() {
    let mods = modules();
    for good in [
        "engine::consume",
        "core::config::shown_url",
        "format::Broken",
        "engine::AfterCommit::Stay",
        "core::exit_code",
        "load_sales::apply",
        "load_sales::job::run",
        "core::budget::ByteBudget",
        "AfterCommit::Move",
        "FromReader::from_reading",
    ] {
        assert_eq!(resolve(good, &mods), None, "{good} exists");
    }
    for bad in [
        "engine::consume_all",      // a renamed function
        "job::dispose",             // ambiguous module, and the function moved
        "load_sales::job::dispose", // moved to engine
        "engine::AfterCommit::Go",  // no such variant
        "format::Missing",          // no such type
        "nowhere::thing",           // no such module
        "archive::job::archive_kind",
        "AfterCommit::Later", // a type-qualified name that does not exist
        "Nothing::here",
    ] {
        assert!(resolve(bad, &mods).is_some(), "{bad} must not resolve");
    }
    let text =
        "see `engine::consume` and `engine::consumed`\n```\n──job::dispose──▶\n```\n```sh\nx::y\n```\n";
    let names: Vec<String> = quoted_names(text).into_iter().map(|(_, n)| n).collect();
    assert_eq!(names, ["engine::consume", "engine::consumed", "job::dispose"]);
    assert_eq!(check(text, &mods).len(), 2);
}
