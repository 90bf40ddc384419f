//! A graceful stop: SIGTERM or Ctrl-C sets a flag that a job checks between units of work
//! (a batch), so what is under way commits and the rest waits for the next run.

use std::sync::{
    atomic::{AtomicBool, Ordering},
    Arc,
};

#[derive(Clone)]
pub struct StopFlag(Arc<AtomicBool>);

impl StopFlag {
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
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async {
                match term.as_mut() {
                    Some(t) => { t.recv().await; }
                    None => std::future::pending().await,
                }
            } => {}
        }
        tracing::warn!("stop requested: finishing the current batch; the rest waits for the next run");
        f.store(true, Ordering::SeqCst);
    });
    StopFlag(flag)
}
