//! Group commit: many callers' commits made durable by one fsync.
//!
//! Algorithm (the classic leader-less group commit with a dedicated committer thread):
//!
//! 1. A writer commits its redb transaction with `Durability::None`. The commit is visible but
//!    not on disk.
//! 2. [`GroupCommit::commit_and_record`] numbers it: `seq = ++committed`. The number is
//!    taken *after* the redb commit returned, so every commit numbered `<= n` is already in
//!    redb's in-memory state when `committed == n` is observed; and the commit and its
//!    numbering happen under one lock that `flush` also takes, so a flush covers every
//!    commit visible before it was called.
//! 3. The committer thread waits until a batch is due (`max_batch` waiting commits, or
//!    `max_delay` after the first one, or a flush or shutdown), reads `target = committed`,
//!    and runs one `Durability::Immediate` commit. redb makes a durable commit persist every
//!    earlier non-durable commit, so on success everything numbered `<= target` is durable:
//!    `durable = target`.
//! 4. The writer waits on a condition variable until `durable >= seq` (success) or
//!    `failed_through >= seq` (the fsync of its batch failed: [`StorageError::NotDurable`]).
//!
//! All fields are guarded by one mutex; no atomics. After shutdown the committer is gone, so a
//! writer still waiting (a transaction committed through a `Weak` handle while the backend was
//! being dropped) runs the durable commit itself.

use std::time::{Duration, Instant};

use crate::sync::{Condvar, Mutex, MutexGuard};

use crate::storage::error::StorageError;

/// Shared state of the committer thread and the writers waiting on it.
#[derive(Debug)]
pub(crate) struct GroupCommit {
    max_delay: Duration,
    max_batch: u64,
    /// Held across a writer's redb commit and its numbering, and by `flush` while it reads
    /// `committed`: so a commit that a flusher (or anyone it heard from) could already see
    /// in redb is numbered by the time the flusher picks its target.
    order: Mutex<()>,
    state: Mutex<GroupState>,
    /// Wakes the committer: first commit of a batch, full batch, flush, shutdown.
    work: Condvar,
    /// Wakes waiting writers after each durable commit attempt.
    done: Condvar,
}

#[derive(Debug, Default)]
struct GroupState {
    /// Number of non-durable commits recorded so far (the last `seq` handed out).
    committed: u64,
    /// Every commit with `seq <= durable` is durable.
    durable: u64,
    /// Every commit with `durable < seq <= failed_through` was in a batch whose fsync failed.
    failed_through: u64,
    /// The error of the last failed batch.
    failure: Option<StorageError>,
    /// When the first commit of the current batch was recorded.
    first_pending: Option<Instant>,
    flush_requested: bool,
    shutdown: bool,
}

impl GroupState {
    fn settled(&self) -> u64 {
        self.durable.max(self.failed_through)
    }

    fn pending(&self) -> u64 {
        self.committed - self.settled()
    }

    fn settle(&mut self, target: u64, result: Result<(), StorageError>) {
        match result {
            Ok(()) => self.durable = self.durable.max(target),
            Err(err) => {
                self.failed_through = self.failed_through.max(target);
                self.failure = Some(err);
            }
        }
    }
}

impl GroupCommit {
    pub(crate) fn new(max_delay: Duration, max_batch: usize) -> Self {
        GroupCommit {
            max_delay,
            max_batch: (max_batch as u64).max(1),
            order: Mutex::new(()),
            state: Mutex::new(GroupState::default()),
            work: Condvar::new(),
            done: Condvar::new(),
        }
    }

    /// Runs a writer's redb commit (`Durability::None`) and numbers it, with no flush
    /// choosing its target in between (see `order`).
    pub(crate) fn commit_and_record<E>(&self, commit: impl FnOnce() -> Result<(), E>) -> Result<u64, E> {
        let _order = self.order.lock();
        commit()?;
        Ok(self.record_commit())
    }

    /// Numbers a commit that has just returned from redb with `Durability::None`.
    fn record_commit(&self) -> u64 {
        let mut st = self.state.lock();
        st.committed += 1;
        let seq = st.committed;
        if st.first_pending.is_none() {
            st.first_pending = Some(Instant::now());
            self.work.notify_one();
        } else if st.pending() >= self.max_batch {
            self.work.notify_one();
        }
        seq
    }

    /// The number of the last recorded commit.
    pub(crate) fn last_seq(&self) -> u64 {
        self.state.lock().committed
    }

    /// Blocks until the commit numbered `seq` (and so every earlier one) is durable.
    ///
    /// `sync` runs one durable commit; it is used only after shutdown, when no committer is
    /// left to do it.
    pub(crate) fn wait_durable(
        &self,
        seq: u64,
        sync: impl Fn() -> Result<(), StorageError>,
    ) -> Result<(), StorageError> {
        let mut st = self.state.lock();
        loop {
            if st.durable >= seq {
                return Ok(());
            }
            if st.failed_through >= seq {
                let cause = st.failure.clone().unwrap_or(StorageError::Closed);
                return Err(StorageError::NotDurable(Box::new(cause)));
            }
            if st.shutdown {
                let target = st.committed;
                let result = MutexGuard::unlocked(&mut st, &sync);
                st.settle(target, result);
                self.done.notify_all();
                continue;
            }
            self.done.wait(&mut st);
        }
    }

    /// Asks the committer to make everything committed so far durable now, and waits for it.
    pub(crate) fn flush(&self, sync: impl Fn() -> Result<(), StorageError>) -> Result<(), StorageError> {
        let target = {
            // Every commit already visible in redb is numbered once this is taken.
            let _order = self.order.lock();
            let mut st = self.state.lock();
            if st.settled() < st.committed {
                st.flush_requested = true;
                self.work.notify_one();
            }
            st.committed
        };
        self.wait_durable(target, sync)
    }

    /// Tells the committer to make the last batch durable and exit.
    pub(crate) fn shutdown(&self) {
        let mut st = self.state.lock();
        st.shutdown = true;
        self.work.notify_one();
    }

    /// The committer thread's loop; returns after [`shutdown`](Self::shutdown) once nothing is
    /// pending.
    pub(crate) fn run_committer(&self, sync: impl Fn() -> Result<(), StorageError>) {
        let mut st = self.state.lock();
        loop {
            if st.pending() == 0 {
                if st.shutdown {
                    return;
                }
                self.work.wait(&mut st);
                continue;
            }
            let due_now = st.shutdown || st.flush_requested || st.pending() >= self.max_batch;
            if !due_now && let Some(first) = st.first_pending {
                let deadline = first + self.max_delay;
                if Instant::now() < deadline {
                    // Woken early by a full batch, a flush or shutdown; otherwise times out
                    // when the batch is due. Either way the loop re-evaluates.
                    self.work.wait_until(&mut st, deadline);
                    continue;
                }
            }
            let target = st.committed;
            st.first_pending = None;
            st.flush_requested = false;
            let result = MutexGuard::unlocked(&mut st, &sync);
            st.settle(target, result);
            self.done.notify_all();
        }
    }
}
