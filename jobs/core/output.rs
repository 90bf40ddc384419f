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

/// Writes a run's product whole: to `path` through a temporary name beside it (per process,
/// so two runs writing one file do not mix), fsynced, renamed into place and the rename made
/// durable, so a reader (a web server, the textfile collector) never sees half of it; or to
/// stdout when there is no path.
pub fn product_to(path: Option<&std::path::Path>, bytes: &[u8]) -> std::io::Result<()> {
    use crate::core::queue::{fsync_dir, replace_file};
    match path {
        None => product(bytes),
        Some(path) => {
            replace_file(path, bytes, &std::process::id().to_string())?;
            fsync_dir(path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(".".as_ref()))
        }
    }
}
