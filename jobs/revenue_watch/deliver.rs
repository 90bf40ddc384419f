//! Delivery of a run's message: e-mail over SMTP (lettre: `smtp://` with STARTTLS when the
//! server offers it, `smtps://` with TLS from the first byte, user and password from the URL)
//! and/or one JSON POST to a webhook (ureq), shaped as Alertmanager's payload version 4. The
//! settings are checked before anything is read or written, so a typo is exit 2 naming the key.

use std::time::Duration;

use lettre::{
    message::{header::ContentType, Mailbox},
    transport::smtp::{
        authentication::Credentials,
        client::{Tls, TlsParameters},
    },
    Message as Email, SmtpTransport, Transport,
};

use super::alerts::Message;
use crate::core::config::{scrub_url, shown_url, AlertSettings};

/// How long one delivery may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The SMTP side, checked.
pub struct Smtp {
    transport: SmtpTransport,
    from: Mailbox,
    to: Vec<Mailbox>,
    /// The URL as it may be shown (`shown_url`), for messages.
    shown: String,
}

/// Where messages go, checked: at least one of the two.
pub struct Delivery {
    pub smtp: Option<Smtp>,
    pub webhook: Option<(ureq::Agent, String)>,
}

/// A setting that cannot be used, naming its key (exit 2).
#[derive(Debug, thiserror::Error)]
#[error("{key} ({var}): {why}")]
pub struct BadSetting {
    pub key: &'static str,
    pub var: &'static str,
    pub why: String,
}

fn bad(key: &'static str, var: &'static str, why: impl Into<String>) -> BadSetting {
    BadSetting { key, var, why: why.into() }
}

impl Delivery {
    /// Checks the alert settings; `None` when neither SMTP nor a webhook is configured.
    pub fn from_settings(a: &AlertSettings) -> Result<Option<Delivery>, BadSetting> {
        let smtp = match &a.smtp_url {
            None => None,
            Some(url) => Some(smtp(url, a)?),
        };
        let webhook = match &a.webhook_url {
            None => None,
            Some(url) => {
                let parsed = url::Url::parse(url).map_err(|e| {
                    bad("alerts.webhook_url", "CSJOBS_ALERTS_WEBHOOK_URL", format!("not a URL: {e}"))
                })?;
                if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
                    return Err(bad(
                        "alerts.webhook_url",
                        "CSJOBS_ALERTS_WEBHOOK_URL",
                        "expected http://host/… or https://host/…",
                    ));
                }
                let tls = ureq::tls::TlsConfig::builder()
                    .root_certs(ureq::tls::RootCerts::PlatformVerifier)
                    .build();
                let agent = ureq::Agent::config_builder()
                    .timeout_global(Some(TIMEOUT))
                    .tls_config(tls)
                    .build()
                    .into();
                Some((agent, url.clone()))
            }
        };
        Ok((smtp.is_some() || webhook.is_some()).then_some(Delivery { smtp, webhook }))
    }

    /// Sends `m` every configured way; the failures, in words (empty: delivered).
    pub fn send(&self, m: &Message) -> Vec<String> {
        let mut failed = Vec::new();
        if let Some(s) = &self.smtp {
            if let Err(e) = s.send(m) {
                failed.push(format!("e-mail through {}: {e}", s.shown));
            }
        }
        if let Some((agent, url)) = &self.webhook {
            let body = m.webhook.to_string();
            let sent = agent.post(url).header("content-type", "application/json").send(body.as_bytes());
            if let Err(e) = sent {
                failed.push(format!("webhook {}: {}", shown_url(url), scrub_url(&e.to_string(), url)));
            }
        }
        failed
    }
}

fn smtp(url: &str, a: &AlertSettings) -> Result<Smtp, BadSetting> {
    let (k, v) = ("alerts.smtp_url", "CSJOBS_ALERTS_SMTP_URL");
    let u = url::Url::parse(url).map_err(|e| {
        bad(k, v, format!("not a URL ({e}); expected smtp://[user:password@]host[:port] or smtps://…"))
    })?;
    let host = u.host_str().filter(|h| !h.is_empty()).ok_or_else(|| bad(k, v, "no host"))?.to_string();
    let tls = TlsParameters::new_rustls(host.clone()).map_err(|e| bad(k, v, format!("TLS: {e}")))?;
    let builder = match u.scheme() {
        // STARTTLS when the server offers it, plain otherwise; required with a user
        // (monitoring.md): a password is never sent over a plain connection, so against a
        // server that offers no STARTTLS nothing is sent at all (no AUTH, no mail) and the
        // run fails saying why. Opportunistic TLS would hand the password to anyone on the
        // path who strips STARTTLS from the server's answer.
        "smtp" => {
            let tls = if u.username().is_empty() { Tls::Opportunistic(tls) } else { Tls::Required(tls) };
            SmtpTransport::builder_dangerous(&host).port(u.port().unwrap_or(25)).tls(tls)
        }
        "smtps" => {
            SmtpTransport::builder_dangerous(&host).port(u.port().unwrap_or(465)).tls(Tls::Wrapper(tls))
        }
        other => return Err(bad(k, v, format!("scheme {other}: expected smtp:// or smtps://"))),
    };
    let decode = |s: &str| percent_decode(s);
    let builder = if u.username().is_empty() {
        builder
    } else {
        builder.credentials(Credentials::new(decode(u.username()), decode(u.password().unwrap_or(""))))
    };
    let from: Mailbox = a.from.parse().map_err(|e| {
        bad("alerts.from", "CSJOBS_ALERTS_FROM", format!("{:?} is not an address: {e}", a.from))
    })?;
    if a.to.is_empty() {
        return Err(bad(
            "alerts.to",
            "CSJOBS_ALERTS_TO",
            "no recipient: give one address or more for the e-mail",
        ));
    }
    let to = a
        .to
        .iter()
        .map(|t| {
            t.parse::<Mailbox>()
                .map_err(|e| bad("alerts.to", "CSJOBS_ALERTS_TO", format!("{t:?} is not an address: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Smtp { transport: builder.timeout(Some(TIMEOUT)).build(), from, to, shown: shown_url(url) })
}

/// `%XX` sequences of a URL's user or password, decoded.
fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}

impl Smtp {
    fn send(&self, m: &Message) -> Result<(), String> {
        let mut b = Email::builder().from(self.from.clone()).subject(&m.subject);
        for t in &self.to {
            b = b.to(t.clone());
        }
        let email = b.header(ContentType::TEXT_PLAIN).body(m.text.clone()).map_err(|e| e.to_string())?;
        self.transport.send(&email).map(|_| ()).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::duration::Span;

    fn settings(smtp: Option<&str>, webhook: Option<&str>, to: &[&str]) -> AlertSettings {
        AlertSettings {
            smtp_url: smtp.map(String::from),
            from: "csjobs@cs1.example".into(),
            to: to.iter().map(|s| s.to_string()).collect(),
            webhook_url: webhook.map(String::from),
            repeat_after: Span::hours(4),
        }
    }

    #[test]
    fn bad_settings_name_their_key() {
        let key = |s: AlertSettings| Delivery::from_settings(&s).err().map(|e| e.key);
        assert_eq!(key(settings(Some("http://x"), None, &["a@x.example"])), Some("alerts.smtp_url"));
        assert_eq!(key(settings(Some("not a url"), None, &["a@x.example"])), Some("alerts.smtp_url"));
        assert_eq!(key(settings(Some("smtp://mail.example"), None, &[])), Some("alerts.to"));
        assert_eq!(key(settings(Some("smtp://mail.example"), None, &["not an address"])), Some("alerts.to"));
        assert_eq!(key(settings(None, Some("ftp://x/y"), &[])), Some("alerts.webhook_url"));
        assert!(Delivery::from_settings(&settings(None, None, &[])).unwrap().is_none());
        assert!(Delivery::from_settings(&settings(
            Some("smtps://u:p%40ss@mail.example:465"),
            None,
            &["a@x.example"]
        ))
        .unwrap()
        .is_some());
    }

    #[test]
    fn url_passwords_are_decoded() {
        assert_eq!(percent_decode("p%40ss%2Fw"), "p@ss/w");
        assert_eq!(percent_decode("plain"), "plain");
        assert_eq!(percent_decode("bad%4"), "bad%4");
    }
}
