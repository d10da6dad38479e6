//! The worker pool: one run queue and parker per worker, the loop a worker thread runs,
//! how a runnable component is scheduled on its home worker, and the quiescence that
//! shutdown waits for.
//!
//! Each component has a home worker, chosen round-robin at registration; only that worker
//! runs it, so its handler stays on one thread. A worker pops runnable components from its
//! run queue, runs one turn each, and when the queue is empty follows its
//! [`IdleStrategy`] (spin, yield, park).
//! Whoever makes a component runnable (a sender that set `SCHEDULED`, the timer ending a
//! backoff, a worker re-queueing after a turn) pushes it onto its home's run queue and
//! unparks that worker, unless the caller *is* that worker (it looks at its queue after
//! the turn anyway).

use std::cell::Cell;
use std::time::Instant;

use crate::component::Component;
use crate::idle::IdleStrategy;
use crate::parker::Parker;
use crate::runtime::Inner;
use crate::sync::channel::{Receiver, Sender, unbounded};
use crate::sync::{Arc, AtomicBool, Condvar, Mutex, Ordering};
use crate::turn::run_turn;

/// True when idle spinning and lingering are compiled in. Under loom they are not: every
/// spin would be a branch to explore, a spin only reads (the run queue's length, the
/// mailbox's), and a worker that spins and then finds work does what one that parked and
/// was unparked does, minus the parker's handshake, which the models keep.
const IDLE_SPINS: bool = !cfg!(loom);

/// Which worker of which runtime this thread is: `(runtime id, worker index)`. Runtime ids
/// start at 1, so `(0, _)` means "not a worker". A host may run several runtimes in one
/// process: the index alone does not say whose worker a thread is.
type WorkerIdentity = (u64, usize);
const NOT_A_WORKER: WorkerIdentity = (0, usize::MAX);

crate::sync::core_thread_local! {
    static WORKER: Cell<WorkerIdentity> = Cell::new(NOT_A_WORKER);
}

/// True on a worker thread (of any runtime): such threads must never block.
pub(crate) fn on_worker_thread() -> bool {
    WORKER.with(|w| w.get().0 != 0)
}

/// Marks the calling thread as worker `index` of runtime `runtime`.
pub(crate) fn become_worker(runtime: u64, index: usize) {
    WORKER.with(|w| w.set((runtime, index)));
}

/// One worker: its run queue and its parking spot.
pub(crate) struct Worker {
    tx: Sender<Arc<Component>>,
    rx: Receiver<Arc<Component>>,
    parker: Parker,
    /// What this worker does when its run queue is empty.
    strategy: IdleStrategy,
    /// True while parked (or about to be); read by the quiescence check.
    idle: AtomicBool,
}

/// The workers, and the flags that stop them and drain them.
pub(crate) struct WorkerPool {
    /// The general workers (`0..general`), then the I/O workers (`general..`).
    workers: Vec<Worker>,
    general: usize,
    /// Set once by `stop_workers`: workers leave their loop between messages.
    stop: AtomicBool,
    /// Set once by `begin_shutdown`: a worker going idle then reports it.
    draining: AtomicBool,
    /// Bumped (under its lock) by each worker that goes idle while draining.
    quiesce: Mutex<u64>,
    quiesce_cv: Condvar,
}

impl WorkerPool {
    pub(crate) fn new(general: usize, io: usize, strategy: IdleStrategy) -> Self {
        Self::with_parkers(general, io, strategy, Parker::new)
    }

    /// A pool (no I/O workers) whose parkers carry a deliberate bug (loom builds only).
    #[cfg(loom)]
    pub(crate) fn with_fault(workers: usize, fault: crate::mailbox::Fault) -> Self {
        Self::with_parkers(workers, 0, IdleStrategy::default(), || Parker::with_fault(fault))
    }

    fn with_parkers(general: usize, io: usize, strategy: IdleStrategy, parker: impl Fn() -> Parker) -> Self {
        let general = general.max(1);
        let workers = (0..general + io)
            .map(|i| {
                let (tx, rx) = unbounded();
                let strategy = if i < general { strategy } else { strategy.for_io_worker() };
                Worker { tx, rx, parker: parker(), strategy, idle: AtomicBool::new(false) }
            })
            .collect();
        Self {
            workers,
            general,
            stop: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            quiesce: Mutex::new(0),
            quiesce_cv: Condvar::new(),
        }
    }
}

/// One step of a worker's loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WorkerStep {
    /// Ran one turn of a component.
    Ran,
    /// Found work while spinning.
    Spun,
    /// Parked and was unparked.
    Parked,
    /// Told to stop.
    Stop,
}

impl Inner {
    /// Puts an owned component on its worker's run queue and wakes the worker.
    pub(crate) fn enqueue(&self, comp: Arc<Component>) {
        let index = comp.worker;
        #[cfg(any(loom, debug_assertions))]
        comp.mark_enqueued();
        let w = &self.pool.workers[index];
        // The run queue is unbounded and we hold its receiver: the send cannot fail.
        let _ = w.tx.send(comp);
        // A worker that schedules a component homed on itself will look at its run queue
        // after its turn: no unpark needed. Any other thread (a host thread, the timer,
        // another worker, a worker of another runtime) must unpark it.
        #[cfg(loom)]
        let me_too = if self.fault == crate::mailbox::Fault::WorkerIndexOnly {
            WORKER.with(|c| c.get().1 == index)
        } else {
            WORKER.with(|c| c.get()) == (self.id, index)
        };
        #[cfg(not(loom))]
        let me_too = WORKER.with(|c| c.get()) == (self.id, index);
        if !me_too {
            w.parker.unpark();
        }
    }

    /// One iteration of worker `index`'s loop.
    pub(crate) fn worker_iteration(&self, index: usize) -> WorkerStep {
        let w = &self.pool.workers[index];
        // Acquire pairs with the Release store in `stop_workers`.
        if self.pool.stop.load(Ordering::Acquire) {
            return WorkerStep::Stop;
        }
        if self.run_one(index) {
            return WorkerStep::Ran;
        }
        if IDLE_SPINS && self.idle_wait(w) {
            return WorkerStep::Spun;
        }
        // SeqCst: the shutdown thread reads `idle` and the run queues in its quiescence
        // check, and this store must not be reordered after the `draining` load below
        // (store-load pair with `begin_shutdown`, which stores `draining` then reads `idle`).
        w.idle.store(true, Ordering::SeqCst);
        // SeqCst: the load half of that pair.
        if self.pool.draining.load(Ordering::SeqCst) {
            *self.pool.quiesce.lock() += 1;
            self.pool.quiesce_cv.notify_all();
        }
        w.parker.park();
        // SeqCst: as the store above (a worker that is busy again is not quiescent).
        w.idle.store(false, Ordering::SeqCst);
        WorkerStep::Parked
    }

    /// The idle strategy's wait before parking: true if work arrived meanwhile (the caller
    /// runs it), false to park. A busy-spinning worker waits here until work arrives or
    /// shutdown begins (it then parks like the others, so the drain can see it idle).
    fn idle_wait(&self, w: &Worker) -> bool {
        match w.strategy {
            IdleStrategy::BusySpin => loop {
                if !w.rx.is_empty() {
                    return true;
                }
                if self.shutting_down() {
                    return false;
                }
                crate::sync::spin_hint();
            },
            IdleStrategy::Backoff { spins, yields } => {
                for _ in 0..spins {
                    crate::sync::spin_hint();
                    if !w.rx.is_empty() {
                        return true;
                    }
                }
                for _ in 0..yields {
                    crate::sync::yield_now();
                    if !w.rx.is_empty() {
                        return true;
                    }
                }
                false
            }
            IdleStrategy::Park => false,
        }
    }

    /// True once shutdown began (draining or stopping): a busy-spinning worker then parks.
    fn shutting_down(&self) -> bool {
        // Relaxed: a hint to stop spinning; the park path that follows re-reads both with
        // the orderings the drain protocol needs.
        self.pool.draining.load(Ordering::Relaxed) || self.pool.stop.load(Ordering::Relaxed)
    }

    /// After a turn that emptied `comp`'s queues: if its worker has nothing else to run,
    /// keeps ownership for a while (the idle strategy says how long) in case the next
    /// message is about to arrive. A sender that finds the component still scheduled just
    /// pushes (no run-queue entry, no unpark), which is what makes a steady one-producer
    /// stream cheap. Returns true if a message came (the caller runs the component again);
    /// false to release ownership.
    pub(crate) fn linger(&self, comp: &Component) -> bool {
        if !IDLE_SPINS {
            return false;
        }
        let w = &self.pool.workers[comp.worker];
        let limit = w.strategy.linger_spins();
        let mut spun = 0u32;
        loop {
            if !w.rx.is_empty() || self.workers_stopping() || comp.is_closing() {
                return false;
            }
            if comp.mailbox.has_queued() {
                return true;
            }
            match limit {
                Some(limit) if spun >= limit => return false,
                Some(_) => spun += 1,
                // Lingering without end holds the component scheduled, which the drain's
                // quiescence check waits for: let go once shutdown begins.
                None if self.shutting_down() => return false,
                None => {}
            }
            crate::sync::spin_hint();
        }
    }

    /// Takes one component from worker `index`'s run queue and runs a turn of it.
    pub(crate) fn run_one(&self, index: usize) -> bool {
        match self.pool.workers[index].rx.try_recv() {
            Ok(comp) => {
                #[cfg(any(loom, debug_assertions))]
                comp.mark_dequeued();
                run_turn(self, &comp);
                true
            }
            Err(_) => false,
        }
    }

    /// True once workers were told to stop (checked between messages).
    pub(crate) fn workers_stopping(&self) -> bool {
        // Acquire pairs with the Release store in `stop_workers`.
        self.pool.stop.load(Ordering::Acquire)
    }

    /// Tells every worker to leave its loop (between messages) and unparks it.
    pub(crate) fn stop_workers(&self) {
        // Release pairs with the Acquire load in `worker_iteration` and `workers_stopping`.
        self.pool.stop.store(true, Ordering::Release);
        for w in &self.pool.workers {
            w.parker.unpark();
        }
    }

    /// Each worker's run-queue length and whether it is idle (parked or about to park).
    #[cfg(all(feature = "metrics", not(loom)))]
    pub(crate) fn worker_states(&self) -> Vec<(usize, bool)> {
        self.pool.workers.iter().map(|w| (w.rx.len(), w.idle.load(Ordering::Relaxed))).collect()
    }

    /// Every worker thread: the general ones and the I/O ones.
    pub(crate) fn worker_count(&self) -> usize {
        self.pool.workers.len()
    }

    /// The general workers (what [`crate::RuntimeBuilder::workers`] set).
    pub(crate) fn general_worker_count(&self) -> usize {
        self.pool.general
    }

    /// The workers for components that block on I/O.
    pub(crate) fn io_worker_count(&self) -> usize {
        self.pool.workers.len() - self.pool.general
    }

    /// The home of the `n`-th component registered: round-robin over the I/O workers for
    /// one that blocks on I/O (if there are any), over the general workers otherwise.
    pub(crate) fn home_for(&self, n: usize, blocking_io: bool) -> usize {
        let io = self.pool.workers.len() - self.pool.general;
        if blocking_io && io > 0 { self.pool.general + n % io } else { n % self.pool.general }
    }

    /// The thread name of worker `index`.
    pub(crate) fn worker_name(&self, index: usize) -> String {
        if index < self.pool.general {
            format!("switchyard-worker-{index}")
        } else {
            format!("switchyard-io-worker-{}", index - self.pool.general)
        }
    }

    /// True when no worker has work and no component holds a message or awaits a restart.
    fn quiescent(&self) -> bool {
        // SeqCst: the load half of the store-load pair described in `worker_iteration`.
        let workers_idle = self.pool.workers.iter().all(|w| w.idle.load(Ordering::SeqCst) && w.rx.is_empty());
        workers_idle
            && self
                .registry
                .components()
                .iter()
                .all(|c| c.is_terminated() || (!c.mailbox.is_scheduled() && c.mailbox.len() == 0))
    }

    /// Stops accepting host sends and registrations; workers going idle report it.
    pub(crate) fn begin_shutdown(&self) -> bool {
        // SeqCst: the store half of the store-load pair with `worker_iteration` (this
        // thread then reads `idle` in `quiescent`).
        self.pool.draining.store(true, Ordering::SeqCst);
        // Release pairs with the Acquire loads in `precheck` and `register`.
        self.accepting.swap(false, Ordering::AcqRel)
    }

    /// Waits until quiescent or `deadline`. Returns true if quiescent.
    pub(crate) fn wait_quiescent(&self, deadline: Instant) -> bool {
        loop {
            let generation = *self.pool.quiesce.lock();
            if self.quiescent() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            let mut g = self.pool.quiesce.lock();
            if *g == generation {
                // A worker going idle bumps the generation; a backoff that ends makes a
                // worker busy and then idle again, so this wait always ends in time.
                let _ = self.pool.quiesce_cv.wait_until(&mut g, deadline);
            }
        }
    }
}
