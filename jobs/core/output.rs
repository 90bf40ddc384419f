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

/// Writes one line to stdout.
pub fn line(text: &str) {
    say(&format!("{text}\n"));
}
