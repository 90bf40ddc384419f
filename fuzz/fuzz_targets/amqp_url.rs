//! The broker URL of `receive.amqp_url` and `chain.central_url` (receive.md: amqp:// and
//! amqps://, a vhost, the query's cacertfile, certfile and keyfile) as `receive::job::Broker`
//! parses it, and the shovel's destination URI `receive-chain` builds from it. With the first
//! byte even, the rest is the text as it is; odd, the URL is built from a typed model
//! (scheme, user, password, host, port, vhost, query keys and values, each percent-encoded),
//! so the deep checks are reached. No panic; the password never shows in an error, in the
//! URL as shown or in the Debug form; a parsed model has the vhost, user and password it was
//! built with, and a client certificate exactly when it was given both halves.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use csjobs::receive::{chain::destination_uri, job::Broker};
use libfuzzer_sys::fuzz_target;

const KEYS: [&str; 5] = ["cacertfile", "certfile", "keyfile", "heartbeat", ""];
const HOSTS: [&str; 5] = ["mq.local", "127.0.0.1", "[::1]", "", "h%41"];

#[derive(Arbitrary, Debug)]
struct Model {
    tls: bool,
    user: String,
    password: String,
    host: u8,
    port: Option<u16>,
    vhost: String,
    query: Vec<(u8, String)>,
}

/// Every byte that is not a letter or a digit as %XX.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

/// What may be shown of `text` as a broker URL: the error, or the URL as shown, its Debug
/// form and the shovel URI's error.
fn shown(text: &str) -> String {
    match Broker::parse(text) {
        Ok(b) => format!("{} {b:?} {}", b.shown, destination_uri(&b).err().unwrap_or_default()),
        Err(e) => e,
    }
}

/// The password (`raw` as written in `text`, and as `plain` once decoded) never shows where
/// the URL may be shown: whatever of it shows there shows just as well when the text holds
/// another password in its place (the words of a message, another part of the URL).
fn hidden(text: &str, raw: &str, plain: &str) {
    if raw.is_empty() {
        return;
    }
    let said = shown(text);
    let other = shown(&text.replacen(raw, &"Z".repeat(raw.len()), 1));
    for p in [raw, plain] {
        if p.len() >= 4 && said.contains(p) {
            assert!(other.contains(p), "{text:?} shows its password {p:?}: {said}");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else { return };
    if first % 2 == 0 {
        let Ok(text) = std::str::from_utf8(rest) else { return };
        // The password as a URL holds it: in the authority (up to the first / ? #), in the
        // user information before its last @, after the first :.
        let rest = text.strip_prefix("amqp://").or_else(|| text.strip_prefix("amqps://"));
        let authority = rest.map(|r| r.split(['/', '?', '#']).next().unwrap_or(""));
        let userinfo = authority.and_then(|a| a.rsplit_once('@')).map(|(u, _)| u);
        if let Some(password) = userinfo.and_then(|u| u.split_once(':')).map(|(_, p)| p.to_string()) {
            hidden(text, &password, &password);
        } else {
            shown(text);
        }
        return;
    }
    let Ok(m) = Model::arbitrary(&mut Unstructured::new(rest)) else { return };
    let host = HOSTS[usize::from(m.host) % HOSTS.len()];
    let port = m.port.map(|p| format!(":{p}")).unwrap_or_default();
    let userinfo = match (m.user.is_empty(), m.password.is_empty()) {
        (true, true) => String::new(),
        _ => format!("{}:{}@", enc(&m.user), enc(&m.password)),
    };
    let query: Vec<String> =
        m.query.iter().map(|(k, v)| format!("{}={}", KEYS[usize::from(*k) % KEYS.len()], enc(v))).collect();
    let query = if query.is_empty() { String::new() } else { format!("?{}", query.join("&")) };
    let scheme = if m.tls { "amqps" } else { "amqp" };
    let text = format!("{scheme}://{userinfo}{host}{port}/{}{query}", enc(&m.vhost));
    let parsed = Broker::parse(&text);
    hidden(&text, &enc(&m.password), &m.password);
    let keys: Vec<&str> = m.query.iter().map(|(k, _)| KEYS[usize::from(*k) % KEYS.len()]).collect();
    let (cert, key) = (keys.contains(&"certfile"), keys.contains(&"keyfile"));
    match &parsed {
        Ok(b) => {
            assert_eq!(b.tls, m.tls);
            assert_eq!(b.vhost, if m.vhost.is_empty() { "/" } else { m.vhost.as_str() }, "{text:?}");
            assert!(m.vhost != "." && m.vhost != "..", "{text:?}: a dot segment taken as a vhost");
            if !userinfo.is_empty() && !m.user.is_empty() {
                assert_eq!(b.user, m.user, "{text:?}");
            }
            assert_eq!(b.client_cert.is_some(), cert && key, "{text:?}");
            assert!(m.tls || keys.is_empty(), "{text:?}: amqp:// takes no query");
            let _ = destination_uri(b);
        }
        Err(e) => {
            if m.tls
                && cert != key
                && !keys.iter().any(|k| !["cacertfile", "certfile", "keyfile"].contains(k))
            {
                // Half of the pair, and nothing else wrong with the query: said so, unless
                // the URL failed before (no host, a vhost that is a dot segment).
                let before = host.is_empty() || m.vhost == "." || m.vhost == "..";
                assert!(e.contains("go together") || before, "{text:?}: {e}");
            }
        }
    }
});
