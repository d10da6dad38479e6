//! A worker's parking spot: a one-token parker (the algorithm of std's generic parker).
//!
//! `unpark` leaves a token; `park` consumes it or sleeps until one arrives. Because the
//! token is remembered, an `unpark` that happens before the matching `park` is not lost:
//! the worker that re-checks its run queue, finds it empty and parks returns at once if a
//! sender unparked it in between.
//!
//! State word: `EMPTY` (no token, not sleeping), `PARKED` (sleeping or about to),
//! `NOTIFIED` (a token is waiting). Transitions are named at each operation.

use crate::sync::{AtomicUsize, Condvar, Mutex, Ordering};

const EMPTY: usize = 0;
const PARKED: usize = 1;
const NOTIFIED: usize = 2;

/// A one-token parker for one worker thread.
pub struct Parker {
    state: AtomicUsize,
    lock: Mutex<()>,
    cvar: Condvar,
    #[cfg(loom)]
    fault: crate::mailbox::Fault,
}

impl Default for Parker {
    fn default() -> Self {
        Self::new()
    }
}

impl Parker {
    /// A parker with no token.
    pub fn new() -> Self {
        Self {
            state: AtomicUsize::new(EMPTY),
            lock: Mutex::new(()),
            cvar: Condvar::new(),
            #[cfg(loom)]
            fault: crate::mailbox::Fault::None,
        }
    }

    /// A parker with a deliberate bug (loom builds only).
    #[cfg(loom)]
    pub(crate) fn with_fault(fault: crate::mailbox::Fault) -> Self {
        Self { fault, ..Self::new() }
    }

    /// Blocks until a token is available, then consumes it.
    ///
    /// Only the owning worker calls this.
    pub fn park(&self) {
        // NOTIFIED -> EMPTY: consume a waiting token without sleeping. Acquire pairs with
        // the Release swap in `unpark`, so the unparker's run-queue push is visible.
        if self.state.compare_exchange(NOTIFIED, EMPTY, Ordering::Acquire, Ordering::Relaxed).is_ok() {
            return;
        }
        let mut guard = self.lock.lock();
        // EMPTY -> PARKED, under the lock so `unpark` cannot notify between this and the wait.
        match self.state.compare_exchange(EMPTY, PARKED, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => {}
            Err(NOTIFIED) => {
                // A token arrived meanwhile: NOTIFIED -> EMPTY. `swap` (an RMW) rather than
                // `store`, and Acquire to pair with `unpark`'s Release.
                self.state.swap(EMPTY, Ordering::Acquire);
                return;
            }
            Err(_) => unreachable!("a parker is parked by one thread only"),
        }
        loop {
            self.cvar.wait(&mut guard);
            // PARKED -> EMPTY once a token came (NOTIFIED); spurious wake-ups loop. Acquire
            // pairs with the Release swap in `unpark`.
            if self.state.compare_exchange(NOTIFIED, EMPTY, Ordering::Acquire, Ordering::Relaxed).is_ok() {
                return;
            }
        }
    }

    /// Leaves a token, waking the worker if it sleeps.
    pub fn unpark(&self) {
        // any -> NOTIFIED. Release pairs with the Acquire in `park`, publishing whatever the
        // caller pushed to the run queue before unparking.
        match self.state.swap(NOTIFIED, Ordering::Release) {
            EMPTY | NOTIFIED => {}
            PARKED => {
                // Taking the lock orders this notify after the parker's EMPTY -> PARKED and
                // before or inside its wait, so the notification cannot slip between them.
                #[cfg(loom)]
                let skip_lock = self.fault == crate::mailbox::Fault::NotifyWithoutLock;
                #[cfg(not(loom))]
                let skip_lock = false;
                if !skip_lock {
                    drop(self.lock.lock());
                }
                self.cvar.notify_one();
            }
            _ => unreachable!("invalid parker state"),
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn unpark_before_park_is_not_lost() {
        let p = Parker::new();
        p.unpark();
        p.park(); // returns at once: the token was kept
    }

    #[test]
    fn unpark_wakes_a_parked_thread() {
        let p = Arc::new(Parker::new());
        let (tx, rx) = crossbeam_channel::bounded(1);
        let p2 = p.clone();
        let t = std::thread::spawn(move || {
            tx.send(()).unwrap();
            p2.park();
        });
        rx.recv().unwrap();
        p.unpark();
        t.join().unwrap();
    }
}
