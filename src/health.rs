//! Health checks: asking one component whether it is well, and a runtime-wide readiness
//! summary.
//!
//! [`crate::RuntimeHandle::health`] puts a *probe* into the component's outcome lane, which
//! its turn reads before any letter (`crate::turn`), so the probe is answered at the
//! component's next step however many letters wait in its mailbox; a full mailbox does
//! not refuse it (the lane is unbounded). The handler answers with [`Handler::health`];
//! the caller waits for the answer up to its timeout. Callers that ask while a probe is
//! still in the lane wait for that probe instead of adding another, so a host that polls a
//! stuck component adds at most one probe to its lane, however often it asks.
//!
//! Every probe ends answered, exactly once: by the handler (or a panic or trap in its
//! check), with `Restarting` when the component enters a restart backoff first, or with
//! `Stopped` by whoever drains the component once it closed (`crate::component`). The
//! protocol is in `docs/design.md` ("Health checks").
//!
//! [`crate::RuntimeHandle::readiness`] asks nobody: it reads each component's state.
//!
//! [`Handler::health`]: crate::Handler::health

use std::time::{Duration, Instant};

use crate::component::Component;
use crate::id::ComponentId;
use crate::mailbox::Wake;
use crate::runtime::{Inner, deadline_after};
use crate::sync::{Arc, Condvar, Mutex, Ordering};

/// A component's own answer to a health check: what [`crate::Handler::health`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// The component works.
    Healthy,
    /// The component runs but cannot do its job (a backend it needs is down, ...).
    Unhealthy {
        /// Why, in the component's words.
        reason: String,
    },
}

impl Health {
    /// [`Health::Unhealthy`] with `reason`.
    pub fn unhealthy(reason: impl Into<String>) -> Self {
        Health::Unhealthy { reason: reason.into() }
    }

    /// True for [`Health::Healthy`].
    pub fn is_healthy(&self) -> bool {
        matches!(self, Health::Healthy)
    }
}

/// The answer to [`crate::RuntimeHandle::health`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HealthStatus {
    /// The component's handler answered that it is healthy (a handler without a check of
    /// its own, and a WASM guest without a `health` export, answer so while they run).
    Healthy,
    /// The handler answered that it is unhealthy (the component keeps running), or its
    /// check panicked or trapped: then the handler is replaced at once by a fresh one from
    /// the component's factory (its in-memory state is lost, its mailbox kept). That is not
    /// counted as a restart: a failing health check never brings a component closer to its
    /// restart limit, so whoever may ask for health checks cannot stop it by asking. Only a
    /// handler that then cannot be made counts, as a crash.
    Unhealthy {
        /// The handler's reason, or what the panic or trap said.
        reason: String,
    },
    /// The component has no handler now: it crashed and waits out a restart backoff.
    /// Answered at once, without asking it.
    Restarting,
    /// The component is closed: stopped by its supervision (restart limit, or a policy
    /// that does not restart), or the runtime shut down, or it was unregistered while the
    /// check waited. It will never answer again. Answered at once when the component was
    /// closed already.
    Stopped,
    /// No answer within the timeout: the handler is busy (a message it has not finished),
    /// or so is the worker it shares with other components. The probe stays in the
    /// component's lane, and the next check waits for the same probe.
    NoAnswer,
    /// No component is registered under the id on this runtime, nor (in a cluster) served
    /// by any other node.
    NoSuchComponent,
}

impl HealthStatus {
    /// True for [`HealthStatus::Healthy`].
    pub fn is_healthy(&self) -> bool {
        matches!(self, HealthStatus::Healthy)
    }
}

impl From<Health> for HealthStatus {
    fn from(health: Health) -> Self {
        match health {
            Health::Healthy => HealthStatus::Healthy,
            Health::Unhealthy { reason } => HealthStatus::Unhealthy { reason },
        }
    }
}

/// The runtime's readiness: [`crate::RuntimeHandle::readiness`]. Read from each
/// component's state (closed, waiting out a restart backoff, mailbox length) without
/// asking any component, so it is cheap and never waits; a component whose handler hangs
/// counts as running (ask it with [`crate::RuntimeHandle::health`] to find out).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Readiness {
    /// Components registered on this runtime (not those of other nodes).
    pub registered: usize,
    /// Registered components neither stopped nor restarting.
    pub running: usize,
    /// Components waiting out a restart backoff, sorted.
    pub restarting: Vec<ComponentId>,
    /// Components closed for good (stopped by their supervision, or by shutdown), sorted.
    pub stopped: Vec<ComponentId>,
    /// Components whose mailbox is full now, sorted: sends to them are refused with
    /// [`crate::SendError::Full`].
    pub full: Vec<ComponentId>,
    /// True once shutdown began: host sends and registrations are refused.
    pub shutting_down: bool,
    /// True when the runtime accepts work and every component can take it: not shutting
    /// down, no component stopped or restarting, no mailbox full.
    pub ready: bool,
}

/// A probe in a component's outcome lane, shared by the callers waiting for its answer.
#[derive(Clone)]
pub(crate) struct HealthProbe(Arc<ProbeAnswer>);

struct ProbeAnswer {
    answer: Mutex<Option<HealthStatus>>,
    answered: Condvar,
}

impl HealthProbe {
    fn new() -> Self {
        Self(Arc::new(ProbeAnswer { answer: Mutex::new(None), answered: Condvar::new() }))
    }

    fn same(&self, other: &HealthProbe) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// True once answered.
    pub(crate) fn is_answered(&self) -> bool {
        self.0.answer.lock().is_some()
    }

    /// The answer, if given yet (for the loom models, and the cluster's health answers,
    /// which look without blocking their thread).
    #[cfg(any(loom, feature = "cluster"))]
    pub(crate) fn answered(&self) -> Option<HealthStatus> {
        self.0.answer.lock().clone()
    }

    /// Records the answer (the first one stays) and wakes every waiting caller.
    fn answer(&self, status: HealthStatus) {
        let mut answer = self.0.answer.lock();
        if answer.is_none() {
            *answer = Some(status);
            // Under the lock: a caller between its check and its sleep cannot miss it.
            self.0.answered.notify_all();
        }
    }

    /// Waits for the answer until `deadline`.
    fn wait_until(&self, deadline: Instant) -> Option<HealthStatus> {
        let mut answer = self.0.answer.lock();
        loop {
            if let Some(status) = answer.as_ref() {
                return Some(status.clone());
            }
            if Instant::now() >= deadline {
                return None;
            }
            let _ = self.0.answered.wait_until(&mut answer, deadline);
        }
    }
}

/// A component's health-check state: the probe in its lane, if any, and whether it waits
/// out a restart backoff. Both change under one lock, so a check either sees the backoff
/// or leaves a probe that entering the backoff answers.
pub(crate) struct HealthChecks {
    state: Mutex<ChecksState>,
}

#[derive(Default)]
struct ChecksState {
    /// The probe in the outcome lane not answered yet.
    pending: Option<HealthProbe>,
    /// Set from the start of a restart backoff to its end.
    restarting: bool,
}

impl HealthChecks {
    pub(crate) fn new() -> Self {
        Self { state: Mutex::new(ChecksState::default()) }
    }

    /// True while the component waits out a restart backoff.
    pub(crate) fn is_restarting(&self) -> bool {
        self.state.lock().restarting
    }

    /// The component starts a restart backoff (its handler was dropped): a probe waiting
    /// in its lane is answered `Restarting` now rather than after the backoff.
    pub(crate) fn enter_backoff(&self) {
        let mut state = self.state.lock();
        state.restarting = true;
        if let Some(probe) = state.pending.take() {
            probe.answer(HealthStatus::Restarting);
        }
    }

    /// The backoff ended: the component is back on its run queue to start a handler.
    pub(crate) fn leave_backoff(&self) {
        self.state.lock().restarting = false;
    }

    /// Answers `probe`, taken from the outcome lane, with `status`.
    pub(crate) fn answer(&self, probe: &HealthProbe, status: HealthStatus) {
        let mut state = self.state.lock();
        if state.pending.as_ref().is_some_and(|p| p.same(probe)) {
            state.pending = None;
        }
        drop(state);
        probe.answer(status);
    }
}

impl Inner {
    /// Asks the component registered as `id` for its health, waiting up to `timeout` (no
    /// wait on a worker thread); see [`crate::RuntimeHandle::health`].
    pub(crate) fn health(&self, id: &ComponentId, timeout: Duration) -> HealthStatus {
        let Some(comp) = self.registry.component(id) else {
            #[cfg(all(feature = "cluster", not(loom)))]
            if let Some(bridge) = self.remote_bridge(id) {
                return self.remote_health(bridge, std::slice::from_ref(id), timeout).remove(0).1;
            }
            return HealthStatus::NoSuchComponent;
        };
        // A worker must not block: it may be the one that has to answer.
        let timeout = if crate::workers::on_worker_thread() { Duration::ZERO } else { timeout };
        let deadline = deadline_after(timeout);
        match self.probe(&comp) {
            Ok(probe) => probe.wait_until(deadline).unwrap_or(HealthStatus::NoAnswer),
            Err(status) => status,
        }
    }

    /// Asks every component of `ids` at once and waits for all the answers within one
    /// `timeout`; see [`crate::RuntimeHandle::health_all`].
    pub(crate) fn health_all(&self, ids: &[ComponentId], timeout: Duration) -> Vec<HealthStatus> {
        let timeout = if crate::workers::on_worker_thread() { Duration::ZERO } else { timeout };
        let deadline = deadline_after(timeout);
        let probes: Vec<Result<HealthProbe, HealthStatus>> = ids
            .iter()
            .map(|id| match self.registry.component(id) {
                Some(comp) => self.probe(&comp),
                None => Err(HealthStatus::NoSuchComponent),
            })
            .collect();
        // Those of other nodes: asked of them, all at once, meanwhile.
        #[cfg(all(feature = "cluster", not(loom)))]
        let mut remote = {
            let remote_ids: Vec<ComponentId> = ids
                .iter()
                .zip(&probes)
                .filter(|(id, p)| matches!(p, Err(HealthStatus::NoSuchComponent)) && self.registry.is_remote(id))
                .map(|(id, _)| id.clone())
                .collect();
            match self.cluster.get() {
                Some(bridge) if !remote_ids.is_empty() => {
                    remote_ids.iter().cloned().zip(self.remote_health(bridge, &remote_ids, timeout)).collect()
                }
                _ => std::collections::HashMap::new(),
            }
        };
        ids.iter()
            .zip(probes)
            .map(|(_id, p)| match p {
                Ok(probe) => probe.wait_until(deadline).unwrap_or(HealthStatus::NoAnswer),
                #[cfg(all(feature = "cluster", not(loom)))]
                Err(HealthStatus::NoSuchComponent) if remote.contains_key(_id) => {
                    remote.remove(_id).map_or(HealthStatus::NoAnswer, |(_, s)| s)
                }
                Err(status) => status,
            })
            .collect()
    }

    /// The bridge through which `id`, a component of another node, is reached.
    #[cfg(all(feature = "cluster", not(loom)))]
    fn remote_bridge(&self, id: &ComponentId) -> Option<&std::sync::Arc<crate::cluster::Bridge>> {
        self.cluster.get().filter(|_| self.registry.is_remote(id))
    }

    /// Asks the nodes serving `ids` for their health (never waiting on a worker thread).
    #[cfg(all(feature = "cluster", not(loom)))]
    pub(crate) fn remote_health(
        &self,
        bridge: &crate::cluster::Bridge,
        ids: &[ComponentId],
        timeout: Duration,
    ) -> Vec<(Option<String>, HealthStatus)> {
        let timeout = if crate::workers::on_worker_thread() { Duration::ZERO } else { timeout };
        bridge.health(ids, timeout)
    }

    /// The probe to wait for: the one in the lane, or a new one pushed there. `Err` is an
    /// answer given at once (closed, restarting).
    pub(crate) fn probe(&self, comp: &Arc<Component>) -> Result<HealthProbe, HealthStatus> {
        if comp.mailbox.is_closed() {
            return Err(HealthStatus::Stopped);
        }
        let mut state = comp.health.state.lock();
        if state.restarting {
            return Err(HealthStatus::Restarting);
        }
        if let Some(probe) = &state.pending {
            return Ok(probe.clone());
        }
        let probe = HealthProbe::new();
        // Pushed under the lock, so the owner cannot answer it before it is recorded as
        // pending (answering takes the lock), and `enter_backoff` finds it.
        let wake = comp.mailbox.push_probe(probe.clone()).map_err(|_closed| HealthStatus::Stopped)?;
        state.pending = Some(probe.clone());
        drop(state);
        if wake == Wake::Schedule {
            self.enqueue(comp.clone());
        }
        Ok(probe)
    }

    /// The readiness summary; see [`crate::RuntimeHandle::readiness`].
    pub(crate) fn readiness(&self) -> Readiness {
        let mut comps = self.registry.components();
        comps.sort_by(|a, b| a.id.cmp(&b.id));
        let (mut restarting, mut stopped, mut full) = (Vec::new(), Vec::new(), Vec::new());
        for comp in &comps {
            if comp.mailbox.is_closed() {
                stopped.push(comp.id.clone());
                continue;
            }
            if comp.health.is_restarting() {
                restarting.push(comp.id.clone());
            }
            if comp.mailbox.len() >= comp.mailbox.capacity() {
                full.push(comp.id.clone());
            }
        }
        // Acquire pairs with the Release swap in `begin_shutdown` (as `register` reads it).
        let shutting_down = !self.accepting.load(Ordering::Acquire);
        let ready = !shutting_down && restarting.is_empty() && stopped.is_empty() && full.is_empty();
        Readiness {
            registered: comps.len(),
            running: comps.len() - restarting.len() - stopped.len(),
            restarting,
            stopped,
            full,
            shutting_down,
            ready,
        }
    }
}
