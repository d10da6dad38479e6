//! One guest instance: made from a component's current code in a `Store` of its own,
//! armed with a fresh fuel budget and deadline before every call, and turned into a typed
//! failure when a call traps. [`WasmHandler`] runs it as a component's `Handler` on its
//! worker; [`DetachedInstance`] calls it on the caller's thread.
//!
//! A trap ends only that call: the handler reports a crash with its [`crate::TrapKind`], the
//! runtime dead-letters the message as trapped and restarts the component from its
//! factory, which makes a fresh instance (a trapped instance cannot be entered again).

use std::time::Duration;

use wasmtime::Store;

use super::bindings::Guest;
use super::config::{WasmConfig, WasmOptions};
use super::host::{ComponentShared, HostShared};
use super::imports::types::{GuestError, guest_envelope, guest_failure, request_error};
use super::load::LIFECYCLE_EXPORT;
use super::state::HostState;
use super::stats::WasmStatsSnapshot;
use super::trap::{classify, classify_instantiation};
use crate::envelope::MessageEnvelope;
use crate::error::{HandlerError, RequestError};
use crate::failure::GuestErrorCode;
use crate::handler::{Context, Handler};
use crate::health::Health;
use crate::sync::{Arc, Ordering};

/// A guest instance called directly on the caller's thread; see
/// [`crate::WasmHost::instantiate_detached`].
pub struct DetachedInstance {
    pub(super) handler: WasmHandler,
}

impl DetachedInstance {
    /// Calls the guest's `handle-message` with `msg`, under the same fuel budget and
    /// deadline as a registered component. Returns the guest's reply payload, if any.
    ///
    /// # Errors
    /// A guest failure ([`HandlerError::guest_code`]), or a trap
    /// ([`HandlerError::trap_kind`], [`HandlerError::is_crash`]). After a trap this
    /// instance cannot be entered again: make a new one.
    pub fn call(&mut self, msg: &MessageEnvelope) -> Result<Option<Vec<u8>>, HandlerError> {
        self.handler.call_handle_message(msg, None)
    }

    /// Calls, fuel and traps of this instance so far.
    pub fn stats(&self) -> WasmStatsSnapshot {
        self.handler.host.snapshot(&self.handler.shared)
    }
}

/// One guest instance running as a component's handler.
pub(super) struct WasmHandler {
    host: Arc<HostShared>,
    shared: Arc<ComponentShared>,
    store: Store<HostState>,
    guest: Guest,
    instance: wasmtime::component::Instance,
    generation: u64,
    has_init: bool,
    has_health: bool,
}

impl WasmHandler {
    /// An instance of the component's current code. A trap of the guest's start code, or an
    /// initial memory over its cap, fails as a trap of its kind; anything else as a crash.
    pub(super) fn instantiate(host: &Arc<HostShared>, shared: &Arc<ComponentShared>) -> Result<Self, HandlerError> {
        let (generation, code) = shared.code.code.read().clone();
        let state = HostState::new(host, shared).map_err(HandlerError::crash)?;
        let mut store = Store::new(&host.engine, state);
        store.limiter(|s| s.limiter());
        Self::arm(&host.config, &shared.options, &mut store)?;
        let instance = code.pre.instance_pre().instantiate(&mut store).map_err(|e| {
            let detail = format!("instantiation failed: {e:#}");
            match classify_instantiation(&e) {
                Some(kind) => {
                    shared.stats.trap(kind);
                    #[cfg(feature = "tracing")]
                    crate::trace::trap(&shared.id, kind, &detail);
                    HandlerError::trap(kind, detail)
                }
                None => HandlerError::crash(detail),
            }
        })?;
        let guest = Guest::new(&mut store, &instance).map_err(|e| HandlerError::crash(format!("{e:#}")))?;
        shared.stats.instantiations.fetch_add(1, Ordering::Relaxed);
        Ok(Self {
            host: host.clone(),
            shared: shared.clone(),
            store,
            guest,
            instance,
            generation,
            has_init: code.has_init,
            has_health: code.has_health,
        })
    }

    /// Sets the fuel budget and deadline for the next call.
    fn arm(config: &WasmConfig, options: &WasmOptions, store: &mut Store<HostState>) -> Result<(), HandlerError> {
        store.data_mut().arm(options.deadline);
        if config.fuel_metering {
            store.set_fuel(options.fuel_per_message).map_err(|e| HandlerError::crash(format!("{e:#}")))?;
        }
        let tick = config.epoch_tick.max(Duration::from_micros(100)).as_nanos();
        let ticks = options.deadline.as_nanos().div_ceil(tick).max(1);
        store.set_epoch_deadline(u64::try_from(ticks).unwrap_or(u64::MAX));
        Ok(())
    }

    /// Accounts for one finished call; turns a trap into a crash of its kind.
    fn finish<T>(&mut self, result: wasmtime::Result<T>) -> Result<T, HandlerError> {
        // A line the guest left unfinished on stdout or stderr is its last for this call.
        self.store.data().end_call();
        let stats = &self.shared.stats;
        stats.calls.fetch_add(1, Ordering::Relaxed);
        if self.host.config.fuel_metering {
            let left = self.store.get_fuel().unwrap_or(0);
            stats.fuel_consumed.fetch_add(self.shared.options.fuel_per_message.saturating_sub(left), Ordering::Relaxed);
        }
        result.map_err(|e| {
            let kind = classify(&e);
            stats.trap(kind);
            let detail = format!("{e:#}");
            #[cfg(feature = "tracing")]
            crate::trace::trap(&self.shared.id, kind, &detail);
            HandlerError::trap(kind, detail)
        })
    }

    pub(super) fn call_init(&mut self) -> Result<(), HandlerError> {
        if !self.has_init {
            return Ok(());
        }
        match self.call_lifecycle("init")? {
            Ok(()) => Ok(()),
            Err(e) => Err(HandlerError::guest(e.code.into(), format!("init: {}", e.message))),
        }
    }

    /// The guest's `lifecycle.health`, or healthy without one. A trap is `Err` (a crash:
    /// the instance cannot be entered again).
    fn call_health(&mut self) -> Result<Health, HandlerError> {
        if !self.has_health {
            return Ok(Health::Healthy);
        }
        Ok(match self.call_lifecycle("health")? {
            Ok(()) => Health::Healthy,
            Err(e) if e.message.is_empty() => Health::unhealthy(GuestErrorCode::from(e.code).name()),
            Err(e) => Health::unhealthy(crate::text::cap_foreign(e.message)),
        })
    }

    /// Calls the lifecycle function `name` (`func() -> result<_, error>`) under a fresh
    /// fuel budget and deadline.
    fn call_lifecycle(&mut self, name: &str) -> Result<Result<(), GuestError>, HandlerError> {
        // The export was checked at load: not finding it is a broken handler, not a trap.
        let store = &mut self.store;
        let instance = self.instance;
        let func = instance
            .get_export_index(&mut *store, None, LIFECYCLE_EXPORT)
            .and_then(|iface| instance.get_export_index(&mut *store, Some(&iface), name))
            .ok_or_else(|| HandlerError::crash(format!("{LIFECYCLE_EXPORT}#{name} vanished")))?;
        let func = instance
            .get_typed_func::<(), (Result<(), GuestError>,)>(&mut *store, &func)
            .map_err(|e| HandlerError::crash(format!("{LIFECYCLE_EXPORT}#{name}: {e:#}")))?;
        Self::arm(&self.host.config, &self.shared.options, &mut self.store)?;
        let r = func.call(&mut self.store, ()).map(|(out,)| out);
        self.finish(r)
    }

    /// One `handle-message` call under a fresh fuel budget and deadline. `None` for the
    /// reply when the guest handed its request on or kept it (`delegation`).
    fn call_handle_message(
        &mut self,
        msg: &MessageEnvelope,
        ticket: Option<crate::request::Ticket>,
    ) -> Result<Option<Vec<u8>>, HandlerError> {
        Self::arm(&self.host.config, &self.shared.options, &mut self.store)?;
        self.store.data_mut().begin_message(msg, ticket);
        let handler = self.guest.switchyard_component_handler();
        let r = handler.call_handle_message(&mut self.store, &guest_envelope(msg));
        let answered = self.store.data_mut().end_message();
        let reply = self.finish(r)?.map_err(guest_failure)?;
        Ok(reply.filter(|_| !answered))
    }

    /// Switches to upgraded code at a message boundary.
    fn follow_upgrades(&mut self, ctx: &mut Context<'_>) -> Result<(), HandlerError> {
        // Acquire, paired with the Release store in `WasmHost::upgrade`; a stale value only
        // delays the switch to the next message.
        let current = self.shared.code.generation.load(Ordering::Acquire);
        if current == self.generation {
            return Ok(());
        }
        let mut fresh = Self::instantiate(&self.host, &self.shared)?;
        fresh.init(ctx)?;
        *self = fresh;
        self.shared.stats.upgrades.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

impl Handler for WasmHandler {
    fn init(&mut self, ctx: &mut Context<'_>) -> Result<(), HandlerError> {
        self.store.data_mut().attach(ctx);
        self.call_init()
    }

    fn handle(&mut self, ctx: &mut Context<'_>, msg: &MessageEnvelope) -> Result<Option<Vec<u8>>, HandlerError> {
        self.follow_upgrades(ctx)?;
        self.call_handle_message(msg, ctx.ticket())
    }

    /// Asks the instance that runs now (an upgrade is followed at the next message).
    fn health(&mut self, ctx: &mut Context<'_>) -> Health {
        self.call_health().unwrap_or_else(|e| {
            if e.trap_kind().is_some() {
                // This instance cannot be entered again: the runtime replaces it with a
                // fresh one (not counted as a restart, see `HealthStatus::Unhealthy`).
                ctx.report_crash();
            }
            Health::unhealthy(format!("health check failed: {e}"))
        })
    }

    fn handle_callback(
        &mut self,
        ctx: &mut Context<'_>,
        request_id: &str,
        outcome: Result<&MessageEnvelope, &RequestError>,
    ) -> Result<(), HandlerError> {
        // The request's place among the guest's requests in flight is free again.
        self.shared.holdings.request_done();
        self.follow_upgrades(ctx)?;
        Self::arm(&self.host.config, &self.shared.options, &mut self.store)?;
        let outcome = match outcome {
            Ok(env) => Ok(guest_envelope(env)),
            Err(e) => Err(request_error(e)),
        };
        let handler = self.guest.switchyard_component_handler();
        let r = handler.call_handle_callback(&mut self.store, request_id, outcome.as_ref());
        self.finish(r)?.map_err(guest_failure)
    }
}
