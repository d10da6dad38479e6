//! The registry: which destination answers to which [`ComponentId`], how components are
//! registered and unregistered, and the barrier a closer passes to order itself after
//! every sender.
//!
//! The map is sharded (`DashMap` through [`crate::sync::map`]); a send pins its target's
//! entry (a shard read lock) for the whole push, so no global lock is taken and no `Arc`
//! is cloned per message. Entries are [`Destination`]s: a component in this process, or
//! (with the `cluster` feature) one hosted by other nodes, reached through the cluster
//! bridge's outbound queue. A local component always wins over a remote one of the same
//! id: registering replaces the remote entry, and unregistering lets the bridge put it
//! back if other nodes still host the id.

use crate::component::Component;
use crate::deadletter::DeadLetterReason;
use crate::error::{RegisterError, UnregisterError};
use crate::id::{ComponentId, PrehashedBuildHasher};
use crate::mailbox::MailboxState;
use crate::runtime::Inner;
use crate::spec::ComponentSpec;
use crate::stats::ComponentStatsSnapshot;
use crate::sync::map::{MapRef, ShardedMap};
use crate::sync::{Arc, AtomicUsize, Mutex, Ordering};

/// Where messages for an id go.
///
/// One variant per kind of destination, the way crossbeam's `Sender` holds one of its
/// channel flavors: the send path matches on it and each arm does its own I/O.
pub(crate) enum Destination {
    /// A component hosted by this runtime: its mailbox, pushed into directly.
    Local(Arc<Component>),
    /// A component hosted by other nodes of the cluster (none here).
    #[cfg(all(feature = "cluster", not(loom)))]
    Remote(std::sync::Arc<crate::cluster::RemoteTarget>),
}

impl Destination {
    /// The local component behind this destination, if it is one.
    pub(crate) fn local(&self) -> Option<&Arc<Component>> {
        match self {
            Destination::Local(comp) => Some(comp),
            #[cfg(all(feature = "cluster", not(loom)))]
            Destination::Remote(_) => None,
        }
    }
}

/// The registry's map, the components being closed, and the round-robin of homes.
pub(crate) struct Registry {
    map: ShardedMap<ComponentId, Destination, PrehashedBuildHasher>,
    /// Unregistered components whose worker has not drained them yet (shutdown drains
    /// what is left).
    closing: Mutex<Vec<Arc<Component>>>,
    /// Next home worker (round-robin).
    next_worker: AtomicUsize,
    /// Entries that are remote destinations (for the count of local components).
    #[cfg(all(feature = "cluster", not(loom)))]
    remote_entries: std::sync::atomic::AtomicUsize,
}

impl Registry {
    pub(crate) fn new() -> Self {
        Self {
            map: ShardedMap::new(),
            closing: Mutex::new(Vec::new()),
            next_worker: AtomicUsize::new(0),
            #[cfg(all(feature = "cluster", not(loom)))]
            remote_entries: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// Pins the destination of `id` (a shard read lock) until the guard drops: a closer
    /// passing [`Registry::barrier`] for `id` waits for it.
    #[inline]
    pub(crate) fn get(&self, id: &ComponentId) -> Option<MapRef<'_, ComponentId, Destination, PrehashedBuildHasher>> {
        self.map.get(id)
    }

    /// The local component registered as `id`.
    pub(crate) fn component(&self, id: &ComponentId) -> Option<Arc<Component>> {
        self.map.with(id, |d| d.local().cloned()).flatten()
    }

    /// Every component registered now, and those still closing.
    pub(crate) fn all_components(&self) -> Vec<Arc<Component>> {
        let mut comps: Vec<_> = self.map.values_with(|d| d.local().cloned()).into_iter().flatten().collect();
        comps.extend(self.closing.lock().drain(..));
        comps
    }

    /// Unregistered components not yet out of the closing list (drained or not).
    #[cfg(all(feature = "metrics", not(loom)))]
    pub(crate) fn closing_components(&self) -> Vec<Arc<Component>> {
        self.closing.lock().clone()
    }

    /// Registered components now (not those closing).
    pub(crate) fn components(&self) -> Vec<Arc<Component>> {
        self.map.values_with(|d| d.local().cloned()).into_iter().flatten().collect()
    }

    /// Makes `id` reach other nodes, unless something (a local component) has the id.
    #[cfg(all(feature = "cluster", not(loom)))]
    pub(crate) fn add_remote(&self, id: ComponentId, target: std::sync::Arc<crate::cluster::RemoteTarget>) {
        // Counted before the insert (and taken back if it fails), so the count is never
        // below the entries and `local_len` never goes past them.
        self.remote_entries.fetch_add(1, Ordering::Relaxed);
        if self.map.insert_new(id, Destination::Remote(target)).is_err() {
            self.remote_entries.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// The ids that reach other nodes, sorted.
    #[cfg(all(feature = "cluster", not(loom)))]
    pub(crate) fn remote_ids(&self) -> Vec<ComponentId> {
        let mut ids: Vec<ComponentId> = self
            .map
            .values_with(|d| match d {
                Destination::Remote(t) => Some(t.id.clone()),
                Destination::Local(_) => None,
            })
            .into_iter()
            .flatten()
            .collect();
        ids.sort();
        ids
    }

    /// True when `id` reaches another node (not a local component).
    #[cfg(all(feature = "cluster", not(loom)))]
    pub(crate) fn is_remote(&self, id: &ComponentId) -> bool {
        self.map.with(id, |d| d.local().is_none()).unwrap_or(false)
    }

    /// Takes out the remote destination of `id`, if that is what the id has.
    #[cfg(all(feature = "cluster", not(loom)))]
    pub(crate) fn remove_remote(&self, id: &ComponentId) {
        if self.map.remove_if(id, |d| d.local().is_none()).is_some() {
            self.remote_entries.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Local components registered (not those of other nodes).
    pub(crate) fn local_len(&self) -> usize {
        #[cfg(all(feature = "cluster", not(loom)))]
        return self.map.len().saturating_sub(self.remote_entries.load(Ordering::Relaxed));
        #[cfg(not(all(feature = "cluster", not(loom))))]
        self.map.len()
    }
}

impl Inner {
    /// Registers a component and schedules its `init` on its home worker.
    pub(crate) fn register(&self, id: ComponentId, spec: ComponentSpec) -> Result<(), RegisterError> {
        spec.config.validate()?;
        // Acquire pairs with the Release swap in `begin_shutdown`.
        if !self.accepting.load(Ordering::Acquire) {
            return Err(RegisterError::ShuttingDown);
        }
        // Relaxed: only spreads components over workers.
        let n = self.registry.next_worker.fetch_add(1, Ordering::Relaxed);
        let worker = self.home_for(n, spec.config.blocking_io);
        #[cfg_attr(not(all(feature = "metrics", not(loom))), allow(unused_mut))]
        let mut comp = Component::new(id.clone(), spec, worker, self.new_state());
        #[cfg(all(feature = "metrics", not(loom)))]
        {
            if self.config.timing_metrics {
                comp.handler_seconds = Some(crate::metrics::handler_histogram(&id));
            }
            comp.incarnation = self.exported.next_incarnation();
        }
        let comp = Arc::new(comp);
        #[cfg(not(all(feature = "cluster", not(loom))))]
        self.registry
            .map
            .insert_new(id.clone(), Destination::Local(comp.clone()))
            .map_err(|_| RegisterError::AlreadyRegistered(id.clone()))?;
        // A local component takes the place of a remote one of the same id.
        #[cfg(all(feature = "cluster", not(loom)))]
        self.registry
            .map
            .insert_or_replace(id.clone(), Destination::Local(comp.clone()), |d| d.local().is_none())
            .map(|replaced| {
                if replaced.is_some() {
                    self.registry.remote_entries.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
                }
            })
            .map_err(|_| RegisterError::AlreadyRegistered(id.clone()))?;
        comp.registered();
        #[cfg(all(feature = "cluster", not(loom)))]
        if let Some(bridge) = self.cluster.get() {
            bridge.host(id);
        }
        // Run `init` now, on the component's own worker: schedule it with no message.
        if comp.mailbox.try_schedule() {
            self.enqueue(comp);
        }
        Ok(())
    }

    /// Removes a component, closes it and lets its owner drain it.
    pub(crate) fn unregister(&self, id: &ComponentId) -> Result<(), UnregisterError> {
        let comp = match self.registry.map.remove_if(id, |d| d.local().is_some()).as_ref().and_then(Destination::local)
        {
            Some(comp) => comp.clone(),
            None => return Err(UnregisterError::NoSuchComponent(id.clone())),
        };
        // Other nodes may host the id too: the bridge stops serving it here and puts the
        // remote entry back if so.
        #[cfg(all(feature = "cluster", not(loom)))]
        if let Some(bridge) = self.cluster.get() {
            bridge.unhost(id.clone());
        }
        comp.unregistered();
        comp.close(DeadLetterReason::Unregistered);
        self.drop_subscriptions(id);
        // Components that finished closing leave the list; their last counts go into the
        // metrics now (after the lock: a scrape takes its own lock, then this one).
        #[cfg_attr(not(all(feature = "metrics", not(loom))), allow(unused_variables))]
        let finished: Vec<Arc<Component>> = {
            let mut closing = self.registry.closing.lock();
            let (done, open): (Vec<_>, Vec<_>) = closing.drain(..).partition(|c| c.is_terminated());
            *closing = open;
            closing.push(comp.clone());
            done
        };
        #[cfg(all(feature = "metrics", not(loom)))]
        for done in &finished {
            self.retire_metrics(done);
        }
        // Whoever owns it (a worker mid-turn, the run queue, the timer) will see CLOSED;
        // if nobody does, take it and let its worker drain it.
        if comp.mailbox.try_schedule() {
            self.enqueue(comp);
        }
        Ok(())
    }

    /// Orders a closer after every sender that pinned `comp`, in the registry or through
    /// its references' gate: afterwards each of them either saw `CLOSED` or finished its
    /// push (see `crate::mailbox`).
    pub(crate) fn registry_barrier(&self, comp: &Component) {
        comp.mailbox.pass_gate();
        #[cfg(loom)]
        if comp.mailbox.skips_registry_barrier() {
            return;
        }
        self.registry.map.barrier(&comp.id);
    }

    pub(crate) fn component_stats(&self, id: &ComponentId) -> Option<ComponentStatsSnapshot> {
        self.registry.map.with(id, |d| d.local().map(|c| c.snapshot())).flatten()
    }

    pub(crate) fn component_ids(&self) -> Vec<ComponentId> {
        let mut ids: Vec<_> =
            self.registry.map.values_with(|d| d.local().map(|c| c.id.clone())).into_iter().flatten().collect();
        ids.sort();
        ids
    }

    pub(crate) fn component_count(&self) -> usize {
        self.registry.local_len()
    }

    /// A fresh state word (with the model's deliberate bug under loom).
    fn new_state(&self) -> MailboxState {
        #[cfg(loom)]
        return MailboxState::with_fault(self.fault);
        #[cfg(not(loom))]
        MailboxState::new()
    }
}
