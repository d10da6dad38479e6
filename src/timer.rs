//! The runtime's one timer: request deadlines and restart backoffs, on one thread.
//!
//! Entries sit in a binary heap ordered by deadline. Adding an entry takes a short lock and
//! wakes the timer thread only when the new entry is due before everything already queued,
//! so a steady stream of requests does not cost a wake-up (or a thread) per request.
//! An entry whose request completed earlier stays in the heap until its deadline and then
//! finds nothing to expire; the heap therefore holds at most one entry per request made
//! within the longest timeout.

use std::cmp::Ordering as CmpOrdering;
use std::collections::BinaryHeap;
use std::time::Instant;

use crate::component::Component;
use crate::sync::{Arc, Condvar, Mutex};

/// What happens when an entry is due.
pub(crate) enum TimerEvent {
    /// A request's deadline: expire it if still pending.
    ExpireRequest(String),
    /// A restart backoff ended: put the component back on its run queue.
    Resume(Arc<Component>),
}

struct Entry {
    at: Instant,
    seq: u64,
    event: TimerEvent,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at && self.seq == other.seq
    }
}

impl Eq for Entry {}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}

impl Ord for Entry {
    fn cmp(&self, other: &Self) -> CmpOrdering {
        // Reversed: BinaryHeap is a max-heap and we want the earliest first.
        other.at.cmp(&self.at).then_with(|| other.seq.cmp(&self.seq))
    }
}

struct Queue {
    heap: BinaryHeap<Entry>,
    seq: u64,
    stopped: bool,
}

/// The timer's queue; the thread that serves it is started by the runtime.
pub(crate) struct Timer {
    queue: Mutex<Queue>,
    cvar: Condvar,
}

impl Timer {
    pub(crate) fn new() -> Self {
        Self { queue: Mutex::new(Queue { heap: BinaryHeap::new(), seq: 0, stopped: false }), cvar: Condvar::new() }
    }

    /// Adds an entry. Hands the event back if the timer has stopped.
    pub(crate) fn schedule(&self, at: Instant, event: TimerEvent) -> Result<(), TimerEvent> {
        let wake = {
            let mut q = self.queue.lock();
            if q.stopped {
                return Err(event);
            }
            let wake = q.heap.peek().is_none_or(|top| at < top.at);
            q.seq += 1;
            let seq = q.seq;
            q.heap.push(Entry { at, seq, event });
            wake
        };
        if wake {
            self.cvar.notify_one();
        }
        Ok(())
    }

    /// Serves the queue until [`Timer::stop`], calling `fire` for each due entry (without
    /// the lock held).
    #[cfg(not(loom))]
    pub(crate) fn run(&self, mut fire: impl FnMut(TimerEvent)) {
        let mut q = self.queue.lock();
        loop {
            if q.stopped {
                return;
            }
            let now = Instant::now();
            match q.heap.peek().map(|e| e.at) {
                Some(at) if at <= now => {
                    let entry = q.heap.pop().expect("peeked");
                    drop(q);
                    fire(entry.event);
                    q = self.queue.lock();
                }
                Some(at) => {
                    let _ = self.cvar.wait_until(&mut q, at);
                }
                None => self.cvar.wait(&mut q),
            }
        }
    }

    /// Stops the timer and returns the entries that never fired.
    pub(crate) fn stop(&self) -> Vec<TimerEvent> {
        let rest = {
            let mut q = self.queue.lock();
            q.stopped = true;
            std::mem::take(&mut q.heap).into_iter().map(|e| e.event).collect()
        };
        self.cvar.notify_all();
        rest
    }

    /// Entries waiting.
    pub(crate) fn len(&self) -> usize {
        self.queue.lock().heap.len()
    }
}
