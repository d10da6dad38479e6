//! The host side of the interfaces our world imports: one file per WIT interface, and the
//! [`Principal`] every import acts for.
//!
//! Every import acts only for the calling component: storage uses its own namespace,
//! sends are checked against its capabilities, and every bad argument comes back as a
//! typed `error`, never as a trap or a panic of the host.
//!
//! Each interface keeps what it reaches in a context of its own (`MessagingCtx`,
//! `StorageCtx`, `LoggingCtx`), held by the Store's `HostState`; its host calls run on a
//! view (`MessagingView`, ...) that borrows that context and the [`Principal`], named to the
//! generated `add_to_linker` by a `HasData` marker (`Messaging`, ...). `state.rs` wires
//! them, as wasmtime-wasi wires `WasiCtxView`.

pub(crate) mod delegation;
pub(crate) mod logging;
pub(crate) mod messaging;
pub(crate) mod storage;
pub(crate) mod types;

use std::collections::HashSet;
use std::time::Duration;

use super::config::{Capabilities, WasmOptions};
use super::stats::WasmStats;
use crate::id::ComponentId;
use crate::sync::{Arc, AtomicUsize, Mutex, Ordering};
use types::{ErrorCode, GuestError, error};

/// The component an instance acts for: its id, what it may do, what its guest holds in the
/// host, and the counters its refusals are charged to. Shared, read-only (but for the
/// holdings' own locks), by every interface's view.
pub(crate) struct Principal {
    pub(crate) id: ComponentId,
    pub(crate) caps: Arc<Capabilities>,
    pub(crate) holdings: Arc<Holdings>,
    pub(crate) limits: GuestLimits,
    stats: Arc<WasmStats>,
}

/// How much host state a component's guest may hold through its messaging calls.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GuestLimits {
    pub(crate) max_subscriptions: usize,
    pub(crate) max_pending_requests: usize,
    pub(crate) max_request_timeout: Duration,
}

impl GuestLimits {
    pub(crate) fn of(options: &WasmOptions) -> Self {
        Self {
            max_subscriptions: options.max_subscriptions,
            max_pending_requests: options.max_pending_requests,
            max_request_timeout: options.max_request_timeout,
        }
    }
}

/// What one component's guest holds in the host through its messaging calls, shared by
/// all of its instances (a restart keeps its subscriptions and its requests in flight).
#[derive(Default)]
pub(crate) struct Holdings {
    /// The topics it subscribed to.
    pub(crate) topics: Mutex<HashSet<String>>,
    /// Its requests whose outcome has not reached its `handle-callback` yet.
    pub(crate) pending: AtomicUsize,
}

impl Holdings {
    /// Takes a place for one more request in flight, or `false` when all `max` are taken.
    pub(crate) fn take_request(&self, max: usize) -> bool {
        // Relaxed: a count, changed only by these read-modify-writes.
        self.pending.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| (n < max).then_some(n + 1)).is_ok()
    }

    /// Gives one back: a request's outcome reached the guest, or the request was refused.
    pub(crate) fn request_done(&self) {
        let _ = self.pending.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    }
}

impl Principal {
    pub(crate) fn new(
        id: ComponentId,
        caps: Arc<Capabilities>,
        holdings: Arc<Holdings>,
        limits: GuestLimits,
        stats: Arc<WasmStats>,
    ) -> Self {
        Self { id, caps, holdings, limits, stats }
    }

    /// Refuses a call the capabilities do not allow, and counts the refusal.
    pub(crate) fn denied(&self, what: &str) -> GuestError {
        self.stats.capability_denials.fetch_add(1, Ordering::Relaxed);
        error(ErrorCode::PermissionDenied, format!("{} may not {what}", self.id))
    }

    /// Refuses a call that would hold more than the component may, and counts the refusal
    /// as a capability denial.
    pub(crate) fn over_quota(&self, what: String) -> GuestError {
        self.stats.capability_denials.fetch_add(1, Ordering::Relaxed);
        error(ErrorCode::QuotaExceeded, format!("{}: {what}", self.id))
    }
}
