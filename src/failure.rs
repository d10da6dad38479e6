//! Why a handler failed, typed: the kind of a WebAssembly trap, or the error code a WASM
//! guest returned.
//!
//! These are core types (no wasmtime in them), so a [`crate::DeadLetterReason`] and a
//! [`crate::RequestError`] can carry them in every build; the WASM executor produces
//! them (`src/wasm/trap.rs` classifies traps, `src/wasm/imports/types.rs` maps the WIT codes).

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a guest call trapped. A trap is treated like a panic: the instance is discarded
/// and the component restarts from its factory under its supervision policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum TrapKind {
    /// The fuel budget of the call ran out.
    OutOfFuel,
    /// The wall-clock deadline of the call passed.
    Deadline,
    /// The instance tried to grow memory or tables past its cap.
    ResourceLimit,
    /// `unreachable` was executed (a guest panic or abort).
    Unreachable,
    /// An out-of-bounds memory or table access.
    OutOfBounds,
    /// The guest passed or returned data the canonical ABI refuses (a pointer or length
    /// outside its memory, a misaligned pointer, invalid UTF-8, a bad discriminant).
    InvalidData,
    /// Stack overflow, integer traps and other faults.
    Other,
}

impl TrapKind {
    /// All kinds, in the order of `WasmStatsSnapshot::traps`.
    pub const ALL: [TrapKind; 7] = [
        TrapKind::OutOfFuel,
        TrapKind::Deadline,
        TrapKind::ResourceLimit,
        TrapKind::Unreachable,
        TrapKind::OutOfBounds,
        TrapKind::InvalidData,
        TrapKind::Other,
    ];

    /// A short stable name (`"out_of_fuel"`, ...).
    pub fn name(self) -> &'static str {
        match self {
            TrapKind::OutOfFuel => "out_of_fuel",
            TrapKind::Deadline => "deadline",
            TrapKind::ResourceLimit => "resource_limit",
            TrapKind::Unreachable => "unreachable",
            TrapKind::OutOfBounds => "out_of_bounds",
            TrapKind::InvalidData => "invalid_data",
            TrapKind::Other => "other",
        }
    }

    /// The position in [`TrapKind::ALL`].
    #[cfg_attr(not(feature = "wasm"), allow(dead_code))]
    pub(crate) fn index(self) -> usize {
        Self::ALL.iter().position(|k| *k == self).expect("every kind is listed in ALL")
    }
}

impl fmt::Display for TrapKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The error code of a WASM guest's error: the `error-code` enum of `wit/switchyard.wit`,
/// case for case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum GuestErrorCode {
    /// No component is registered under the target id.
    NoSuchComponent,
    /// The target's mailbox is full.
    MailboxFull,
    /// The target is closed or the runtime is shutting down.
    Closed,
    /// The payload, key or value is larger than allowed.
    TooLarge,
    /// An argument is malformed.
    InvalidArgument,
    /// The component's capabilities do not allow this.
    PermissionDenied,
    /// A storage quota would be exceeded.
    QuotaExceeded,
    /// Storage failed.
    Storage,
    /// A request got no response in time.
    Timeout,
    /// The handler failed.
    HandlerFailed,
    /// Anything else.
    Internal,
}

impl GuestErrorCode {
    /// The case's name in the WIT (`"too-large"`, ...).
    pub fn name(self) -> &'static str {
        match self {
            GuestErrorCode::NoSuchComponent => "no-such-component",
            GuestErrorCode::MailboxFull => "mailbox-full",
            GuestErrorCode::Closed => "closed",
            GuestErrorCode::TooLarge => "too-large",
            GuestErrorCode::InvalidArgument => "invalid-argument",
            GuestErrorCode::PermissionDenied => "permission-denied",
            GuestErrorCode::QuotaExceeded => "quota-exceeded",
            GuestErrorCode::Storage => "storage",
            GuestErrorCode::Timeout => "timeout",
            GuestErrorCode::HandlerFailed => "handler-failed",
            GuestErrorCode::Internal => "internal",
        }
    }
}

impl fmt::Display for GuestErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trap_kinds_have_distinct_indexes_in_all() {
        for (i, kind) in TrapKind::ALL.iter().enumerate() {
            assert_eq!(kind.index(), i, "{kind}");
        }
    }
}
