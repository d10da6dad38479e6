//! Supervision: what happens when a component's handler panics or fails to start.
//!
//! A crash (a panic in `init`, `handle` or `handle_callback`, or a factory that fails)
//! drops the handler. Under a policy that restarts, a fresh handler is made from the
//! component's factory after a backoff; the mailbox, with everything queued in it, is kept
//! across the restart. Restarts are counted in a sliding window: the crash that would make
//! `max_restarts + 1` restarts within `window` stops the component instead, and its queued
//! messages are dead-lettered with [`crate::DeadLetterReason::ComponentStopped`].
//!
//! The backoff does not block a worker: the component is handed to the timer, which puts
//! it back on its run queue when the backoff ends.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// When a component is restarted (Erlang/OTP's child restart types).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RestartPolicy {
    /// Restarted after a crash and after it asked to stop.
    #[default]
    Permanent,
    /// Restarted after a crash only; asking to stop stops it.
    Transient,
    /// Never restarted: the first crash or stop request stops it.
    Temporary,
}

/// A component's restart policy, restart limit and backoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Supervision {
    /// When to restart.
    pub policy: RestartPolicy,
    /// Restarts allowed within `window`; one more crash stops the component.
    pub max_restarts: u32,
    /// The sliding window for `max_restarts`.
    pub window: Duration,
    /// Delay before the first restart; doubled for each further restart in the window.
    pub backoff_initial: Duration,
    /// Upper bound of the backoff.
    pub backoff_max: Duration,
}

impl Default for Supervision {
    fn default() -> Self {
        Self {
            policy: RestartPolicy::Permanent,
            max_restarts: 5,
            window: Duration::from_secs(10),
            backoff_initial: Duration::from_millis(10),
            backoff_max: Duration::from_secs(1),
        }
    }
}

/// Why a handler ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    /// Panicked, or failed to start.
    Crash,
    /// Asked to stop (`Context::stop`).
    Normal,
}

/// The supervisor's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Restart after this delay.
    Restart(Duration),
    /// Stop for good.
    Stop,
}

/// Restart bookkeeping for one component.
#[derive(Debug, Default)]
pub(crate) struct RestartHistory {
    recent: VecDeque<Instant>,
}

impl RestartHistory {
    /// Decides what follows an exit at `now`, recording the restart if there is one.
    pub(crate) fn on_exit(&mut self, s: &Supervision, exit: Exit, now: Instant) -> Verdict {
        let restart = match (s.policy, exit) {
            (RestartPolicy::Permanent, _) => true,
            (RestartPolicy::Transient, Exit::Crash) => true,
            (RestartPolicy::Transient, Exit::Normal) | (RestartPolicy::Temporary, _) => false,
        };
        if !restart {
            return Verdict::Stop;
        }
        while self.recent.front().is_some_and(|t| now.duration_since(*t) > s.window) {
            self.recent.pop_front();
        }
        if self.recent.len() >= s.max_restarts as usize {
            return Verdict::Stop;
        }
        self.recent.push_back(now);
        let doublings = (self.recent.len() - 1).min(30) as u32;
        let backoff = s.backoff_initial.saturating_mul(1u32 << doublings).min(s.backoff_max);
        Verdict::Restart(backoff)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sup(policy: RestartPolicy) -> Supervision {
        Supervision {
            policy,
            max_restarts: 3,
            window: Duration::from_secs(60),
            backoff_initial: Duration::from_millis(10),
            backoff_max: Duration::from_millis(25),
        }
    }

    #[test]
    fn permanent_restarts_with_doubling_capped_backoff_then_stops_at_the_limit() {
        let s = sup(RestartPolicy::Permanent);
        let mut h = RestartHistory::default();
        let t = Instant::now();
        assert_eq!(h.on_exit(&s, Exit::Crash, t), Verdict::Restart(Duration::from_millis(10)));
        assert_eq!(h.on_exit(&s, Exit::Normal, t), Verdict::Restart(Duration::from_millis(20)));
        assert_eq!(h.on_exit(&s, Exit::Crash, t), Verdict::Restart(Duration::from_millis(25)));
        assert_eq!(h.on_exit(&s, Exit::Crash, t), Verdict::Stop);
    }

    #[test]
    fn restarts_outside_the_window_are_forgotten() {
        let s = sup(RestartPolicy::Permanent);
        let mut h = RestartHistory::default();
        let t = Instant::now();
        for _ in 0..3 {
            assert!(matches!(h.on_exit(&s, Exit::Crash, t), Verdict::Restart(_)));
        }
        let later = t + Duration::from_secs(61);
        assert_eq!(h.on_exit(&s, Exit::Crash, later), Verdict::Restart(Duration::from_millis(10)));
    }

    #[test]
    fn transient_restarts_on_crash_only() {
        let s = sup(RestartPolicy::Transient);
        let mut h = RestartHistory::default();
        let t = Instant::now();
        assert!(matches!(h.on_exit(&s, Exit::Crash, t), Verdict::Restart(_)));
        assert_eq!(h.on_exit(&s, Exit::Normal, t), Verdict::Stop);
    }

    #[test]
    fn temporary_never_restarts() {
        let s = sup(RestartPolicy::Temporary);
        let mut h = RestartHistory::default();
        assert_eq!(h.on_exit(&s, Exit::Crash, Instant::now()), Verdict::Stop);
    }
}
