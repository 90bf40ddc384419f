//! PostgreSQL connection strings as libpq reads them, in both forms (`key=value …` and
//! `postgres://…`), split into their parameters before tokio-postgres sees them.
//!
//! tokio-postgres knows most of libpq's parameters but not `sslrootcert`, `sslcert`,
//! `sslkey` and the `sslmode` values `verify-ca` and `verify-full`: it refuses the string
//! whole. Rewriting the text to hide them edited passwords that merely contained such words
//! (`password='a sslmode=verify-full b'`). Here the string is read once into (key, value)
//! pairs with the same grammar as tokio-postgres (and libpq); the libpq-only parameters are
//! taken out as [`Tls`], and the rest are handed to tokio-postgres as `key='value'` pairs,
//! which it parses exactly as it would have parsed the original (a fuzz target checks this
//! against tokio-postgres' own parser).

use std::borrow::Cow;

/// The TLS parameters libpq has and tokio-postgres does not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tls {
    /// `sslmode=verify-ca` or `verify-full` was given (both verified fully, see `db`).
    pub verify: bool,
    /// `sslrootcert`: the CA file(s) this connection trusts, instead of the system's.
    pub root_cert: Option<String>,
    /// `sslcert` and `sslkey`: the client certificate and its key.
    pub client_cert: Option<String>,
    pub client_key: Option<String>,
}

/// A connection string split: what tokio-postgres gets, and what csjobs handles itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// The parameters for tokio-postgres, in order, `sslmode=verify-*` given as `require`.
    pub params: Vec<(String, String)>,
    /// The password as bytes (a URL may percent-encode any byte).
    pub password: Option<Vec<u8>>,
    pub tls: Tls,
}

impl Parsed {
    /// The parameters as a `key='value'` string for `tokio_postgres::Config::from_str`.
    /// Holds no password.
    pub fn keyword_string(&self) -> String {
        let mut out = String::new();
        for (k, v) in &self.params {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(k);
            out.push_str("='");
            for c in v.chars() {
                if c == '\'' || c == '\\' {
                    out.push('\\');
                }
                out.push(c);
            }
            out.push('\'');
        }
        out
    }
}

/// Why a connection string could not be read. Never holds the string's text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadConnInfo(pub String);

fn bad(s: impl Into<String>) -> BadConnInfo {
    BadConnInfo(s.into())
}

/// Splits a connection string into its parameters.
pub fn parse(text: &str) -> Result<Parsed, BadConnInfo> {
    let (raw, url_password) = match url_body(text) {
        Some(body) => parse_url(body)?,
        None => (parse_keywords(text)?, None),
    };
    let mut parsed = Parsed { params: Vec::new(), password: url_password, tls: Tls::default() };
    for (key, value) in raw {
        // Only names libpq knows: tokio-postgres stops reading at an `=` where a name should
        // be and takes what it read before, so a URL key like `=x` (or one percent-encoded
        // to hold `sslmode=disable`) would drop or inject parameters on the way.
        if !KNOWN.contains(&key.as_str()) {
            return Err(bad(format!(
                "{} is not a connection parameter csjobs knows (the name is not shown: it may be a \
                 mistyped password)",
                if key.is_empty() { "an empty name" } else { "a name" }
            )));
        }
        match key.as_str() {
            "password" => parsed.password = Some(value.into_owned().into_bytes()),
            "sslrootcert" => parsed.tls.root_cert = Some(value.into_owned()),
            "sslcert" => parsed.tls.client_cert = Some(value.into_owned()),
            "sslkey" => parsed.tls.client_key = Some(value.into_owned()),
            "sslmode" if value == "verify-full" || value == "verify-ca" => {
                parsed.tls.verify = true;
                parsed.params.push((key, "require".into()));
            }
            "sslmode" => {
                parsed.tls.verify = false;
                parsed.params.push((key, value.into_owned()));
            }
            _ => parsed.params.push((key, value.into_owned())),
        }
    }
    Ok(parsed)
}

/// A URL's part after `postgres://` or `postgresql://`; `None` for the keyword form.
fn url_body(text: &str) -> Option<&str> {
    ["postgres://", "postgresql://"].iter().find_map(|p| text.strip_prefix(p))
}

type Pairs<'a> = Vec<(String, Cow<'a, str>)>;

/// The keyword form: `key = value` pairs separated by white space; a value is bare (up to
/// white space) or single-quoted, and `\` escapes the next character in either.
fn parse_keywords(text: &str) -> Result<Pairs<'_>, BadConnInfo> {
    let mut pairs = Vec::new();
    let mut it = text.char_indices().peekable();
    let skip_ws = |it: &mut std::iter::Peekable<std::str::CharIndices<'_>>| {
        while it.next_if(|(_, c)| c.is_whitespace()).is_some() {}
    };
    loop {
        skip_ws(&mut it);
        let Some(&(start, _)) = it.peek() else { break };
        let mut end = start;
        while let Some((i, c)) = it.next_if(|(_, c)| !c.is_whitespace() && *c != '=') {
            end = i + c.len_utf8();
        }
        if end == start {
            return Err(bad("a parameter has no name before `=`"));
        }
        let key = text[start..end].to_string();
        skip_ws(&mut it);
        if it.next_if(|(_, c)| *c == '=').is_none() {
            return Err(bad(format!("parameter `{}` has no `=` after its name", printable(&key))));
        }
        skip_ws(&mut it);
        let mut value = String::new();
        if it.next_if(|(_, c)| *c == '\'').is_some() {
            loop {
                match it.next() {
                    Some((_, '\'')) => break,
                    Some((_, '\\')) => value.extend(it.next().map(|(_, c)| c)),
                    Some((_, c)) => value.push(c),
                    None => {
                        return Err(bad(format!(
                            "the quoted value of `{}` has no closing quote",
                            printable(&key)
                        )))
                    }
                }
            }
        } else {
            while let Some((_, c)) = it.next_if(|(_, c)| !c.is_whitespace()) {
                if c == '\\' {
                    value.extend(it.next().map(|(_, c)| c));
                } else {
                    value.push(c);
                }
            }
            if value.is_empty() {
                return Err(bad(format!("parameter `{}` has no value", printable(&key))));
            }
        }
        pairs.push((key, Cow::Owned(value)));
    }
    Ok(pairs)
}

/// The URL form, read as libpq and tokio-postgres read it (loosely):
/// `[user[:password]@][host[:port][,…]][/dbname][?key=value[&…]]`, percent-decoded.
/// The password comes apart, as bytes: percent-encoding may give any byte.
fn parse_url(mut s: &str) -> Result<(Pairs<'_>, Option<Vec<u8>>), BadConnInfo> {
    let mut pairs: Pairs<'_> = Vec::new();
    let mut password = None;
    if let Some(at) = s.find('@') {
        let (creds, rest) = s.split_at(at);
        s = &rest[1..];
        let mut it = creds.splitn(2, ':');
        pairs.push(("user".into(), decode("the user name", it.next().unwrap_or(""))?));
        if let Some(p) = it.next() {
            password = Some(percent_encoding::percent_decode(p.as_bytes()).collect());
        }
    }
    let host_end = s.find(['/', '?']).unwrap_or(s.len());
    let (hosts, rest) = s.split_at(host_end);
    s = rest;
    if !hosts.is_empty() {
        for chunk in hosts.split(',') {
            let (host, port) = if let Some(inner) = chunk.strip_prefix('[') {
                let close = inner.find(']').ok_or_else(|| bad("an IPv6 host has no closing `]`"))?;
                let after = &inner[close + 1..];
                let port = match after.strip_prefix(':') {
                    Some(p) => Some(p),
                    None if after.is_empty() => None,
                    None => return Err(bad("text after an IPv6 host's `]` that is not `:port`")),
                };
                (&inner[..close], port)
            } else {
                let mut it = chunk.splitn(2, ':');
                (it.next().unwrap_or(""), it.next())
            };
            pairs.push(("host".into(), url_host(host)?));
            pairs.push(("port".into(), decode("a port", port.unwrap_or("5432"))?));
        }
    }
    if let Some(path) = s.strip_prefix('/') {
        let end = path.find('?').unwrap_or(path.len());
        let (db, rest) = path.split_at(end);
        s = rest;
        if !db.is_empty() {
            pairs.push(("dbname".into(), decode("the database name", db)?));
        }
    }
    if let Some(mut q) = s.strip_prefix('?') {
        while !q.is_empty() {
            let eq = q.find('=').ok_or_else(|| bad("a query parameter has no `=`"))?;
            let key = decode("a parameter name", &q[..eq])?.into_owned();
            q = &q[eq + 1..];
            let end = q.find('&').unwrap_or(q.len());
            let value = &q[..end];
            q = q.get(end + 1..).unwrap_or("");
            if key == "password" {
                password = Some(percent_encoding::percent_decode(value.as_bytes()).collect());
            } else if key == "host" {
                pairs.push((key, url_host(value)?));
            } else {
                let value = decode(&format!("the value of `{}`", printable(&key)), value)?;
                pairs.push((key, value));
            }
        }
    } else if !s.is_empty() {
        // Unreachable by construction (the host part ends at `/` or `?`), kept total.
        return Err(bad("unexpected text after the database name"));
    }
    Ok((pairs, password))
}

/// One host of a URL. tokio-postgres takes a percent-encoded comma (`%2C`) as part of one
/// host name where the keyword form would split it into two: no host name holds a comma,
/// so csjobs refuses it (found by the conninfo fuzz target).
fn url_host(s: &str) -> Result<Cow<'_, str>, BadConnInfo> {
    let host = decode("a host", s)?;
    if host.contains(',') {
        return Err(bad("a host holds a comma once percent-decoded"));
    }
    Ok(host)
}

fn decode<'a>(what: &str, s: &'a str) -> Result<Cow<'a, str>, BadConnInfo> {
    percent_encoding::percent_decode(s.as_bytes())
        .decode_utf8()
        .map_err(|_| bad(format!("{what} is not valid UTF-8 once percent-decoded")))
}

/// A parameter name as it may be shown in an error: names are not secret, but a name that
/// is really a mistyped password (`secret=`) should not be printed whole.
fn printable(key: &str) -> String {
    if KNOWN.contains(&key) {
        key.to_string()
    } else {
        "(an unknown name)".to_string()
    }
}

/// The parameters a connection string may hold: tokio-postgres' and libpq's TLS files.
const KNOWN: &[&str] = &[
    "host",
    "hostaddr",
    "port",
    "user",
    "password",
    "dbname",
    "options",
    "application_name",
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "sslnegotiation",
    "connect_timeout",
    "tcp_user_timeout",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_retries",
    "target_session_attrs",
    "channel_binding",
    "load_balance_hosts",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(p: &Parsed) -> Vec<String> {
        p.params.iter().map(|(k, v)| format!("{k}={v}")).collect()
    }

    #[test]
    fn a_password_holding_parameter_words_is_left_whole() {
        let p = parse("host=h password='a sslmode=verify-full b' dbname=x").unwrap();
        assert_eq!(p.password.as_deref(), Some(&b"a sslmode=verify-full b"[..]));
        assert_eq!(keys(&p), ["host=h", "dbname=x"]);
        assert!(!p.tls.verify);
        let p = parse("host=h password='se cret' sslmode = verify-full").unwrap();
        assert_eq!(p.password.as_deref(), Some(&b"se cret"[..]));
        assert_eq!(keys(&p), ["host=h", "sslmode=require"]);
        assert!(p.tls.verify);
    }

    #[test]
    fn libpq_tls_parameters_are_taken_out_in_both_forms() {
        for text in [
            "host=db sslmode=verify-ca sslrootcert=/etc/ca.pem sslcert=/c.pem sslkey='/k e y.pem'",
            "postgres://db/?sslmode=verify-ca&sslrootcert=%2Fetc%2Fca.pem&sslcert=/c.pem&sslkey=/k%20e%20y.pem",
        ] {
            let p = parse(text).unwrap();
            assert!(p.tls.verify, "{text}");
            assert_eq!(p.tls.root_cert.as_deref(), Some("/etc/ca.pem"), "{text}");
            assert_eq!(p.tls.client_cert.as_deref(), Some("/c.pem"), "{text}");
            assert_eq!(p.tls.client_key.as_deref(), Some("/k e y.pem"), "{text}");
            assert!(keys(&p).iter().all(|k| !k.starts_with("sslroot") && !k.starts_with("sslkey")));
        }
    }

    #[test]
    fn urls_split_like_tokio_postgres_does() {
        let p =
            parse("postgresql://u%40x:p%3Aw@[::1]:6000,h2/db%20name?application_name=a&connect_timeout=3")
                .unwrap();
        assert_eq!(
            keys(&p),
            [
                "user=u@x",
                "host=::1",
                "port=6000",
                "host=h2",
                "port=5432",
                "dbname=db name",
                "application_name=a",
                "connect_timeout=3"
            ]
        );
        assert_eq!(p.password.as_deref(), Some(&b"p:w"[..]));
    }

    #[test]
    fn what_tokio_postgres_gets_parses_to_what_the_original_did() {
        for text in [
            "host=h port=5433 user=u dbname='d b' application_name='it''s'",
            "host=/var/run/postgresql dbname=x",
            "postgres://u@h:1/x?sslmode=require",
            "postgres://%2Fvar%2Frun%2Fpostgresql/x",
            "postgres://",
            "  host = h   user=\\ u  ",
        ] {
            let direct: Result<tokio_postgres::Config, _> = text.parse();
            let ours = parse(text).map(|p| {
                p.keyword_string().parse::<tokio_postgres::Config>().map(|mut c| {
                    if let Some(pw) = &p.password {
                        c.password(pw);
                    }
                    c
                })
            });
            match (direct, ours) {
                (Ok(d), Ok(Ok(o))) => assert_eq!(format!("{d:?}"), format!("{o:?}"), "{text}"),
                (Err(_), Err(_)) | (Err(_), Ok(Err(_))) => {}
                (d, o) => panic!("{text}: tokio-postgres {:?}, ours {:?}", d.is_ok(), o),
            }
        }
    }

    /// tokio-postgres stops at an `=` where a name should be and connects with what it read
    /// before (here: nothing, so the defaults); csjobs refuses the string. Found by the
    /// conninfo fuzz target.
    #[test]
    fn an_equals_sign_without_a_name_is_refused_not_the_end_of_the_string() {
        let text = "=5433 user=u password='mode=yffull sslrooectrslrootcert=/ca.pem";
        assert!(text.parse::<tokio_postgres::Config>().is_ok(), "tokio-postgres takes it as empty");
        assert_eq!(parse(text).unwrap_err().0, "a parameter has no name before `=`");
        assert!(parse("host=h = x").is_err());
    }

    /// Found by review: a URL key that is empty or percent-encodes an `=` would have reached
    /// tokio-postgres' keyword reader, which stops there and drops what follows
    /// (`sslmode=verify-full`: a plain connection) or takes what the key holds.
    #[test]
    fn url_keys_are_names_libpq_knows() {
        for text in [
            "postgres://u@h/db?=x&sslmode=verify-full",
            "postgres://u@h/db?sslmode%3Ddisable%20application_name=1",
            "postgres://u@h/db?passwrd=s3cret",
            "host=h Pa=ss",
        ] {
            let e = parse(text).unwrap_err().0;
            assert!(e.contains("not a connection parameter"), "{text}: {e}");
            assert!(!e.contains("s3cret") && !e.contains("Pa"), "{e}");
        }
    }

    /// tokio-postgres takes a socket directory that is not UTF-8 (`%F2`); csjobs refuses it.
    /// Found by the conninfo fuzz target.
    #[test]
    fn a_url_host_with_an_encoded_comma_is_refused() {
        for text in ["postgresql://u@%2cs/db", "postgres://u@h/db?host=a%2Cb", "postgres://u@h/db?host=a,b"] {
            assert_eq!(parse(text).unwrap_err().0, "a host holds a comma once percent-decoded", "{text}");
        }
        assert_eq!(
            parse("postgres://u@a,b/db").unwrap().params.iter().filter(|(k, _)| k == "host").count(),
            2
        );
    }

    #[test]
    fn a_host_that_is_not_utf8_is_refused() {
        let text = "postgresql://%2Frun%F2/cash?user=c";
        assert!(text.parse::<tokio_postgres::Config>().is_ok(), "tokio-postgres takes it");
        assert_eq!(parse(text).unwrap_err().0, "a host is not valid UTF-8 once percent-decoded");
    }

    #[test]
    fn errors_never_show_the_text() {
        for text in ["host=h password='unclosed secret", "postgres://[secret", "secret"] {
            let e = parse(text).err().map(|e| e.0).unwrap_or_default();
            assert!(!e.contains("secret"), "{text}: {e}");
        }
    }
}
