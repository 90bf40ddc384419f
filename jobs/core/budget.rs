//! A budget of bytes shared by a producer thread and its consumer: what the sales reader
//! hands the writer is held to it, so memory is bounded in bytes, not in files (64 files of
//! 256 MiB each would be 16 GiB). The reader blocks in [`ByteBudget::acquire`] until the
//! writer has dropped enough [`Lease`]s.
//!
//! Hand-written on a `Mutex` and a `Condvar` because the producer is a plain thread and the
//! consumer an async task: tokio's `Semaphore` counts at most `u32` permits per acquire and
//! needs a runtime handle to block on from a thread.

use std::sync::{Arc, Condvar, Mutex};

/// Bytes that may be in flight at once.
#[derive(Debug)]
pub struct ByteBudget {
    total: u64,
    free: Mutex<u64>,
    freed: Condvar,
}

/// Bytes taken from a budget; given back when dropped.
#[derive(Debug)]
pub struct Lease {
    budget: Arc<ByteBudget>,
    bytes: u64,
}

impl ByteBudget {
    pub fn new(total: u64) -> Arc<ByteBudget> {
        let total = total.max(1);
        Arc::new(ByteBudget { total, free: Mutex::new(total), freed: Condvar::new() })
    }

    /// Takes `bytes`, waiting until that much is free. A request larger than the whole
    /// budget takes all of it: it waits until nothing else is in flight, then goes alone.
    pub fn acquire(self: &Arc<Self>, bytes: u64) -> Lease {
        let bytes = bytes.min(self.total);
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        while *free < bytes {
            free = self.freed.wait(free).unwrap_or_else(|p| p.into_inner());
        }
        *free -= bytes;
        Lease { budget: Arc::clone(self), bytes }
    }

    /// Bytes not taken now.
    pub fn free(&self) -> u64 {
        *self.free.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let mut free = self.budget.free.lock().unwrap_or_else(|p| p.into_inner());
        *free += self.bytes;
        self.budget.freed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::{sync::mpsc, time::Duration};

    #[test]
    fn a_producer_waits_until_the_consumer_gives_bytes_back() {
        let budget = ByteBudget::new(100);
        let first = budget.acquire(60);
        assert_eq!(budget.free(), 40);
        let (tx, rx) = mpsc::channel();
        let b = Arc::clone(&budget);
        let producer = std::thread::spawn(move || {
            let lease = b.acquire(50);
            tx.send(()).unwrap();
            lease
        });
        assert!(rx.recv_timeout(Duration::from_millis(200)).is_err(), "50 more bytes do not fit beside 60");
        drop(first);
        rx.recv_timeout(Duration::from_secs(10)).expect("freed: the producer goes on");
        let second = producer.join().unwrap();
        assert_eq!(budget.free(), 50);
        drop(second);
        assert_eq!(budget.free(), 100);
    }

    #[test]
    fn a_request_over_the_budget_goes_alone() {
        let budget = ByteBudget::new(100);
        let huge = budget.acquire(10_000);
        assert_eq!(budget.free(), 0, "it takes the whole budget, no more");
        drop(huge);
        assert_eq!(budget.free(), 100);
    }
}
