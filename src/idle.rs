//! What a worker does when it has nothing to run: its idle strategy.
//!
//! The same line Aeron offers its agents: spinning answers a message within nanoseconds
//! but burns its core, parking burns nothing but costs every message to an idle worker a
//! wake-up (a futex call on each side, microseconds). A trading gateway that dedicates
//! cores wants [`IdleStrategy::BusySpin`]; a plugin host that shares its machine wants
//! [`IdleStrategy::Park`]; the default, [`IdleStrategy::Backoff`], spins briefly and then
//! parks, which keeps a steady stream cheap and an idle runtime asleep.
//!
//! Two places use the strategy: the worker's loop when its run queue is empty, and the
//! *linger* after a turn that emptied a component's mailbox (the worker keeps the
//! component scheduled for a while, so a steady sender finds it scheduled and neither
//! pushes it onto the run queue nor unparks anyone).
//!
//! Whatever the strategy, a worker parks once shutdown has begun: the drain's quiescence
//! check counts parked workers, and a worker that never parks would hold it up.

/// Default spins before an idle worker parks ([`IdleStrategy::Backoff`]).
pub const DEFAULT_SPINS: u32 = 200;

/// Spins a backing-off worker lingers on a component whose mailbox it just emptied.
const BACKOFF_LINGER_SPINS: u32 = 256;

/// Most spins or yields [`IdleStrategy::Backoff`] accepts (about a second of spinning; a
/// strategy that wants more wants [`IdleStrategy::BusySpin`]).
pub const MAX_BACKOFF_STEPS: u32 = 1 << 24;

/// What a worker does when its run queue is empty (and how long it lingers on a component
/// it just emptied, so that a steady sender finds it still scheduled).
///
/// Spinning answers a message within nanoseconds but burns its core; parking burns nothing
/// but costs every message to an idle worker a wake-up. Whatever the strategy, a worker
/// parks once shutdown has begun, so the drain can see it idle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdleStrategy {
    /// Never sleeps: the worker spins on its run queue, and after a turn it keeps the
    /// component it ran for as long as nothing else is queued, so the next message is
    /// picked up within nanoseconds. Each general worker keeps one core at 100%: use it
    /// only with as many workers as cores dedicated to the runtime (and consider
    /// [`crate::RuntimeBuilder::pin_workers`]). I/O workers, which wait on the disk,
    /// back off with the default settings instead.
    BusySpin,
    /// Spins `spins` times, then yields the thread `yields` times, then parks until a
    /// sender wakes it. Lingers briefly on a component it just emptied.
    Backoff {
        /// Spin-loop hints before yielding (at most [`MAX_BACKOFF_STEPS`]).
        spins: u32,
        /// `sched_yield` calls before parking (at most [`MAX_BACKOFF_STEPS`]).
        yields: u32,
    },
    /// Parks as soon as the run queue is empty and never lingers: no CPU spent while idle;
    /// every message to an idle worker pays a wake-up.
    Park,
}

impl Default for IdleStrategy {
    /// `Backoff { spins: 200, yields: 0 }`.
    fn default() -> Self {
        IdleStrategy::Backoff { spins: DEFAULT_SPINS, yields: 0 }
    }
}

impl IdleStrategy {
    /// The strategy an I/O worker follows when the runtime's is `self`.
    pub(crate) fn for_io_worker(self) -> Self {
        match self {
            IdleStrategy::BusySpin => IdleStrategy::default(),
            other => other,
        }
    }

    /// Why this strategy is refused, if it is.
    pub(crate) fn invalid(&self) -> Option<String> {
        match *self {
            IdleStrategy::Backoff { spins, yields } if spins > MAX_BACKOFF_STEPS || yields > MAX_BACKOFF_STEPS => {
                Some(format!(
                    "idle strategy backoff with {spins} spins and {yields} yields; at most {MAX_BACKOFF_STEPS} each \
                     (use BusySpin to never park)"
                ))
            }
            _ => None,
        }
    }

    /// How long a worker lingers on a component it just emptied: `None` for as long as
    /// nothing else needs the worker.
    pub(crate) fn linger_spins(&self) -> Option<u32> {
        match self {
            IdleStrategy::BusySpin => None,
            IdleStrategy::Backoff { .. } => Some(BACKOFF_LINGER_SPINS),
            IdleStrategy::Park => Some(0),
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn the_default_backs_off_then_parks() {
        assert_eq!(IdleStrategy::default(), IdleStrategy::Backoff { spins: 200, yields: 0 });
        assert_eq!(IdleStrategy::default().linger_spins(), Some(256));
    }

    #[test]
    fn io_workers_never_busy_spin() {
        assert_eq!(IdleStrategy::BusySpin.for_io_worker(), IdleStrategy::default());
        assert_eq!(IdleStrategy::Park.for_io_worker(), IdleStrategy::Park);
    }

    #[test]
    fn absurd_backoff_counts_are_refused() {
        let s = IdleStrategy::Backoff { spins: u32::MAX, yields: 0 };
        assert!(s.invalid().unwrap().contains("4294967295 spins"));
        assert!(IdleStrategy::Backoff { spins: 10, yields: MAX_BACKOFF_STEPS }.invalid().is_none());
    }
}
