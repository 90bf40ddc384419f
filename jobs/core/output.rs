//! What a job prints for people on stdout (summaries, dry-run listings). A closed pipe
//! (`csjobs … | head`) must not turn a finished run into a panic: write errors are ignored,
//! the logs and the run log carry the same facts.

use std::io::Write;

/// Writes `text` to stdout as is.
pub fn say(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// Writes a report or document that is the run's product (not a summary) to stdout. A reader
/// that stops early (`| head`) is not a failure; any other write error (a full disk behind
/// `>`) is, or a cut report would pass for a whole one.
pub fn product(bytes: &[u8]) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        written => written,
    }
}

/// Writes one line to stdout.
pub fn line(text: &str) {
    say(&format!("{text}\n"));
}
