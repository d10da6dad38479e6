//! The runtime's one timer: request deadlines and restart backoffs, on one thread.
//!
//! Entries sit in an ordered map keyed by `(deadline, sequence number)`. Adding an entry
//! takes a short lock and wakes the timer thread only when the new entry is due before the
//! instant the thread sleeps until, so a steady stream of requests does not cost a wake-up
//! (or a thread) per request. A request that completes before its deadline cancels its entry
//! (the key is kept in its pending-table entry), so the timer holds one entry per request
//! *in flight* and per restart backoff, never entries of requests already answered.

use std::collections::BTreeMap;
use std::time::Instant;

use crate::component::Component;
use crate::sync::{Arc, Condvar, Mutex};

/// What happens when an entry is due.
pub(crate) enum TimerEvent {
    /// A request's deadline: expire it if it is still pending under this entry's key.
    ExpireRequest(crate::envelope::MessageId),
    /// A restart backoff ended: put the component back on its run queue.
    Resume(Arc<Component>),
}

/// Identifies one timer entry: its deadline, and a number that makes it unique (and
/// orders entries with the same deadline by the time they were made).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct TimerKey {
    at: Instant,
    seq: u64,
}

impl TimerKey {
    /// The number that makes it unique.
    pub(crate) fn seq(&self) -> u64 {
        self.seq
    }

    /// When the entry is due.
    #[cfg(all(feature = "cluster", not(loom)))]
    pub(crate) fn at(&self) -> Instant {
        self.at
    }
}

struct Queue {
    entries: BTreeMap<TimerKey, TimerEvent>,
    stopped: bool,
    /// What the timer thread is doing, so `schedule` wakes it only when it must.
    thread: ThreadState,
}

/// The timer thread's state, read by `schedule` under the queue's lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ThreadState {
    /// Awake (firing, or about to look at the queue again): nothing to do.
    Awake,
    /// Asleep until this instant: wake it only for an entry due earlier.
    Until(Instant),
    /// Asleep with nothing queued: wake it for any entry.
    Idle,
}

/// The timer's queue; the thread that serves it is started by the runtime.
pub(crate) struct Timer {
    queue: Mutex<Queue>,
    cvar: Condvar,
    /// Source of sequence numbers. A `std` atomic under loom too: it only hands out
    /// distinct numbers and orders nothing.
    seq: std::sync::atomic::AtomicU64,
}

impl Timer {
    pub(crate) fn new() -> Self {
        Self {
            queue: Mutex::new(Queue { entries: BTreeMap::new(), stopped: false, thread: ThreadState::Awake }),
            cvar: Condvar::new(),
            seq: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// A fresh key for an entry due at `at` (not scheduled yet).
    pub(crate) fn key(&self, at: Instant) -> TimerKey {
        TimerKey { at, seq: self.seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed) }
    }

    /// Adds an entry under `key` (from [`Timer::key`]). Hands the event back if the timer
    /// has stopped.
    pub(crate) fn schedule(&self, key: TimerKey, event: TimerEvent) -> Result<(), TimerEvent> {
        let wake = {
            let mut q = self.queue.lock();
            if q.stopped {
                return Err(event);
            }
            // A cancelled entry does not wake the thread, which may still sleep until a
            // deadline that no longer exists: compare with what it sleeps until, not with
            // the queue's first entry (comparing with the queue would wake it for nearly
            // every request once answered requests leave the queue).
            let wake = match q.thread {
                ThreadState::Awake => false,
                ThreadState::Until(until) => key.at < until,
                ThreadState::Idle => true,
            };
            if wake {
                // Woken now; it looks at the queue before it sleeps again.
                q.thread = ThreadState::Awake;
            }
            q.entries.insert(key, event);
            wake
        };
        if wake {
            self.cvar.notify_one();
        }
        Ok(())
    }

    /// Adds an entry due at `at`. Hands the event back if the timer has stopped.
    pub(crate) fn schedule_at(&self, at: Instant, event: TimerEvent) -> Result<(), TimerEvent> {
        self.schedule(self.key(at), event)
    }

    /// Removes the entry under `key`, if it has not fired yet. Never wakes the timer
    /// thread: an entry that goes away only means it sleeps until the next one.
    pub(crate) fn cancel(&self, key: TimerKey) {
        let removed = self.queue.lock().entries.remove(&key);
        // Dropped outside the lock (a `Resume` may hold the last reference to a component).
        drop(removed);
    }

    /// Serves the queue until [`Timer::stop`], calling `fire` for each due entry (without
    /// the lock held).
    #[cfg(not(loom))]
    pub(crate) fn run(&self, mut fire: impl FnMut(TimerKey, TimerEvent)) {
        let mut q = self.queue.lock();
        loop {
            if q.stopped {
                return;
            }
            let now = Instant::now();
            match q.entries.first_key_value().map(|(k, _)| k.at) {
                Some(at) if at <= now => {
                    let (key, event) = q.entries.pop_first().expect("peeked");
                    drop(q);
                    fire(key, event);
                    q = self.queue.lock();
                }
                Some(at) => {
                    q.thread = ThreadState::Until(at);
                    let _ = self.cvar.wait_until(&mut q, at);
                    q.thread = ThreadState::Awake;
                }
                None => {
                    q.thread = ThreadState::Idle;
                    self.cvar.wait(&mut q);
                    q.thread = ThreadState::Awake;
                }
            }
        }
    }

    /// Stops the timer and returns the entries that never fired.
    pub(crate) fn stop(&self) -> Vec<TimerEvent> {
        let rest = {
            let mut q = self.queue.lock();
            q.stopped = true;
            std::mem::take(&mut q.entries).into_values().collect()
        };
        self.cvar.notify_all();
        rest
    }

    /// Entries waiting.
    pub(crate) fn len(&self) -> usize {
        self.queue.lock().entries.len()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_cancelled_entry_leaves_the_queue_and_never_fires() {
        let t = Timer::new();
        let soon = t.key(Instant::now());
        let later = t.key(Instant::now() + Duration::from_secs(3600));
        assert!(t.schedule(later, TimerEvent::ExpireRequest("later".into())).is_ok());
        assert!(t.schedule(soon, TimerEvent::ExpireRequest("soon".into())).is_ok());
        t.cancel(soon);
        assert_eq!(t.len(), 1);
        t.cancel(soon); // twice is harmless
        assert_eq!(t.len(), 1);
        let rest = t.stop();
        assert!(matches!(rest.as_slice(), [TimerEvent::ExpireRequest(id)] if id == "later"));
        assert!(t.schedule_at(Instant::now(), TimerEvent::ExpireRequest("x".into())).is_err(), "stopped");
    }

    #[test]
    fn keys_with_one_deadline_are_distinct_and_ordered_by_creation() {
        let t = Timer::new();
        let at = Instant::now();
        let (a, b) = (t.key(at), t.key(at));
        assert_ne!(a, b);
        assert!(a < b);
    }
}
