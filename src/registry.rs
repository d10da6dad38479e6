//! The registry: which destination answers to which [`ComponentId`], how components are
//! registered and unregistered, and the barrier a closer passes to order itself after
//! every sender.
//!
//! The map is sharded (`DashMap` through [`crate::sync::map`]); a send pins its target's
//! entry (a shard read lock) for the whole push, so no global lock is taken and no `Arc`
//! is cloned per message. Entries are [`Destination`]s: a component in this process
//! today, one more variant (with its own I/O) when components on other hosts join.

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
}

impl Destination {
    /// The local component behind this destination.
    pub(crate) fn local(&self) -> &Arc<Component> {
        match self {
            Destination::Local(comp) => comp,
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
}

impl Registry {
    pub(crate) fn new() -> Self {
        Self { map: ShardedMap::new(), closing: Mutex::new(Vec::new()), next_worker: AtomicUsize::new(0) }
    }

    /// Pins the destination of `id` (a shard read lock) until the guard drops: a closer
    /// passing [`Registry::barrier`] for `id` waits for it.
    #[inline]
    pub(crate) fn get(&self, id: &ComponentId) -> Option<MapRef<'_, ComponentId, Destination, PrehashedBuildHasher>> {
        self.map.get(id)
    }

    /// The local component registered as `id`.
    pub(crate) fn component(&self, id: &ComponentId) -> Option<Arc<Component>> {
        self.map.with(id, |d| d.local().clone())
    }

    /// Every component registered now, and those still closing.
    pub(crate) fn all_components(&self) -> Vec<Arc<Component>> {
        let mut comps: Vec<_> = self.map.values_with(|d| d.local().clone());
        comps.extend(self.closing.lock().drain(..));
        comps
    }

    /// Registered components now (not those closing).
    pub(crate) fn components(&self) -> Vec<Arc<Component>> {
        self.map.values_with(|d| d.local().clone())
    }

    pub(crate) fn len(&self) -> usize {
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
        let comp = Arc::new(Component::new(id.clone(), spec, worker, self.new_state()));
        self.registry
            .map
            .insert_new(id.clone(), Destination::Local(comp.clone()))
            .map_err(|_| RegisterError::AlreadyRegistered(id))?;
        comp.registered();
        // Run `init` now, on the component's own worker: schedule it with no message.
        if comp.mailbox.try_schedule() {
            self.enqueue(comp);
        }
        Ok(())
    }

    /// Removes a component, closes it and lets its owner drain it.
    pub(crate) fn unregister(&self, id: &ComponentId) -> Result<(), UnregisterError> {
        let comp = match self.registry.map.remove(id) {
            Some(Destination::Local(comp)) => comp,
            None => return Err(UnregisterError::NoSuchComponent(id.clone())),
        };
        comp.unregistered();
        comp.close(DeadLetterReason::Unregistered);
        self.drop_subscriptions(id);
        {
            let mut closing = self.registry.closing.lock();
            closing.retain(|c| !c.is_terminated());
            closing.push(comp.clone());
        }
        // Whoever owns it (a worker mid-turn, the run queue, the timer) will see CLOSED;
        // if nobody does, take it and let its worker drain it.
        if comp.mailbox.try_schedule() {
            self.enqueue(comp);
        }
        Ok(())
    }

    /// Orders a closer after every sender that pinned `comp` in the registry: afterwards
    /// each of them either saw `CLOSED` or finished its push (see `crate::mailbox`).
    pub(crate) fn registry_barrier(&self, comp: &Component) {
        #[cfg(loom)]
        if comp.mailbox.skips_registry_barrier() {
            return;
        }
        self.registry.map.barrier(&comp.id);
    }

    pub(crate) fn component_stats(&self, id: &ComponentId) -> Option<ComponentStatsSnapshot> {
        self.registry.map.with(id, |d| d.local().snapshot())
    }

    pub(crate) fn component_ids(&self) -> Vec<ComponentId> {
        let mut ids: Vec<_> = self.registry.map.values_with(|d| d.local().id.clone());
        ids.sort();
        ids
    }

    pub(crate) fn component_count(&self) -> usize {
        self.registry.len()
    }

    /// A fresh state word (with the model's deliberate bug under loom).
    fn new_state(&self) -> MailboxState {
        #[cfg(loom)]
        return MailboxState::with_fault(self.fault);
        #[cfg(not(loom))]
        MailboxState::new()
    }
}
