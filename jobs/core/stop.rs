//! A graceful stop: SIGTERM or Ctrl-C sets a flag that a job checks between units of work
//! (a batch), so what is under way commits and the rest waits for the next run. A second
//! one exits at once (code 1): a batch stuck behind a lock or a slow server does not hold
//! the operator hostage, and every job is safe to kill at any moment (tests/crash.rs,
//! tests/transfer_stress.rs) — what was committed stays, the next run carries on.

use std::sync::{
    atomic::{AtomicBool, Ordering},
    Arc,
};

#[derive(Clone)]
pub struct StopFlag(Arc<AtomicBool>);

impl StopFlag {
    /// A flag that is never set: the frame of a job that does not stop on signals.
    pub fn never() -> StopFlag {
        StopFlag(Arc::new(AtomicBool::new(false)))
    }

    pub fn requested(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Starts listening for SIGTERM and SIGINT on the current runtime.
pub fn install() -> StopFlag {
    let flag = Arc::new(AtomicBool::new(false));
    let f = flag.clone();
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).ok();
        let mut next = async || {
            tokio::select! {
                _ = recv(int.as_mut()) => {}
                _ = recv(term.as_mut()) => {}
            }
        };
        next().await;
        tracing::warn!(
            "stop requested: finishing the current batch; the rest waits for the next run \
             (stop again to exit at once)"
        );
        f.store(true, Ordering::SeqCst);
        next().await;
        tracing::error!(
            "second stop request: exiting now, exit code 1; what was committed stays and the next run \
             carries on"
        );
        std::process::exit(1);
    });
    StopFlag(flag)
}

async fn recv(s: Option<&mut tokio::signal::unix::Signal>) {
    match s {
        Some(s) => {
            s.recv().await;
        }
        None => std::future::pending().await,
    }
}
