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

use super::config::Capabilities;
use super::stats::WasmStats;
use crate::id::ComponentId;
use crate::sync::{Arc, Ordering};
use types::{ErrorCode, GuestError, error};

/// The component an instance acts for: its id, what it may do, and the counters its
/// refusals are charged to. Shared, read-only, by every interface's view.
pub(crate) struct Principal {
    pub(crate) id: ComponentId,
    pub(crate) caps: Arc<Capabilities>,
    stats: Arc<WasmStats>,
}

impl Principal {
    pub(crate) fn new(id: ComponentId, caps: Arc<Capabilities>, stats: Arc<WasmStats>) -> Self {
        Self { id, caps, stats }
    }

    /// Refuses a call the capabilities do not allow, and counts the refusal.
    pub(crate) fn denied(&self, what: &str) -> GuestError {
        self.stats.capability_denials.fetch_add(1, Ordering::Relaxed);
        error(ErrorCode::PermissionDenied, format!("{} may not {what}", self.id))
    }
}
