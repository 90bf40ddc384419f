//! The dead man's switch (shared/spec/operations.md): with `notify.ping_url` set, an HTTP GET
//! to `<url>/start` when a job starts and to `<url>/<exit code>` when it ends, as
//! healthchecks-style services expect, so a job that stops running at all is noticed. `{job}`
//! in the URL is replaced by the job's name. A ping that fails (10 s timeout) is a warning in
//! the log and never changes the job's exit code.

use std::time::Duration;

use super::config::{scrub_url, shown_url};

/// How long one ping may take, all in.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// The pings of one run of one job.
pub struct Pinger {
    base: Option<String>,
    agent: ureq::Agent,
}

impl Pinger {
    /// `url`: `notify.ping_url` (none: pings are off); `job`: the job's name for `{job}`.
    pub fn new(url: Option<&str>, job: &str) -> Pinger {
        let tls = ureq::tls::TlsConfig::builder().root_certs(ureq::tls::RootCerts::PlatformVerifier).build();
        let agent =
            ureq::Agent::config_builder().timeout_global(Some(TIMEOUT)).tls_config(tls).build().into();
        Pinger { base: url.map(|u| u.replace("{job}", job).trim_end_matches('/').to_string()), agent }
    }

    /// `<url>/start`.
    pub fn start(&self) {
        self.ping("start");
    }

    /// `<url>/<exit code>`.
    pub fn finish(&self, exit_code: u8) {
        self.ping(&exit_code.to_string());
    }

    /// The URL of one ping.
    pub fn url(&self, what: &str) -> Option<String> {
        self.base.as_ref().map(|b| format!("{b}/{what}"))
    }

    fn ping(&self, what: &str) {
        let Some(url) = self.url(what) else {
            return;
        };
        match self.agent.get(&url).call() {
            Ok(_) => tracing::debug!(url = %shown_url(&url), "pinged"),
            Err(e) => tracing::warn!(
                url = %shown_url(&url),
                error = %scrub_url(&e.to_string(), &url),
                "the dead man's switch ping failed (notify.ping_url); the job's exit code is not affected"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_job_goes_into_the_url_and_the_event_after_it() {
        let p = Pinger::new(Some("https://hc.example/ping/abc-{job}/"), "load-sales");
        assert_eq!(p.url("start").as_deref(), Some("https://hc.example/ping/abc-load-sales/start"));
        assert_eq!(p.url("3").as_deref(), Some("https://hc.example/ping/abc-load-sales/3"));
        assert_eq!(Pinger::new(None, "x").url("start"), None);
    }
}
