//! Classifying a failed guest call into a [`TrapKind`], from wasmtime's typed errors, and
//! the memory and table caps of an instance, whose refusals are typed errors of our own.
//!
//! wasmtime 48 returns typed errors for some failures and plain messages for others:
//! - a [`Trap`] for faults of compiled code (fuel, epoch deadline, `unreachable`, out of
//!   bounds, stack overflow, ...) and for canonical-ABI checks done in compiled adapters
//!   (string or list out of bounds, bad discriminant, unaligned pointer, invalid `char`);
//! - a [`std::str::Utf8Error`] when a string the guest passes is not UTF-8;
//! - our own [`BlockedPastDeadline`] when a WASI call waited until the call's deadline
//!   (`wasi/bounded.rs`): a deadline, as when guest code runs past it;
//! - plain messages (`bail!`) when the host lifts or lowers a value and finds a pointer or
//!   length outside the guest's memory, a misaligned pointer or an impossible
//!   discriminant, and for growth refused by its own `StoreLimits`.
//!
//! So the instance's caps are enforced by [`Limiter`], which refuses with a typed
//! [`GrowRefused`]; and a failed call that is none of the typed errors above (nor an
//! allocation failure of the host) is the canonical ABI refusing the guest's data: on a
//! guest call that is the only source of untyped errors left (the handler's exports are
//! type-checked at load, and our imports never fail a call).

use std::fmt;

use wasmtime::component::ResourceTableError;
use wasmtime::{OutOfMemory, ResourceLimiter, Trap};

use super::wasi::BlockedPastDeadline;
use crate::failure::TrapKind;

/// Classifies the error of a failed guest call.
pub(crate) fn classify(e: &wasmtime::Error) -> TrapKind {
    if let Some(trap) = e.downcast_ref::<Trap>() {
        return of_trap(*trap);
    }
    if e.is::<GrowRefused>() {
        TrapKind::ResourceLimit
    } else if e.is::<ResourceTableError>() {
        // The instance's resource table is full (`WasmOptions::max_resources`).
        TrapKind::ResourceLimit
    } else if e.is::<BlockedPastDeadline>() {
        TrapKind::Deadline
    } else if e.is::<OutOfMemory>() {
        TrapKind::Other
    } else {
        // A `Utf8Error`, or one of the canonical ABI's plain messages (see the module doc).
        TrapKind::InvalidData
    }
}

/// Classifies the error of a failed instantiation: a trap of the guest's start code, or
/// an initial memory or table over its cap. `None` for anything else (the pool has no free
/// slot, ...): then the host could not make the instance, and the guest did not trap.
pub(crate) fn classify_instantiation(e: &wasmtime::Error) -> Option<TrapKind> {
    if let Some(trap) = e.downcast_ref::<Trap>() {
        Some(of_trap(*trap))
    } else if e.is::<GrowRefused>() {
        Some(TrapKind::ResourceLimit)
    } else {
        None
    }
}

fn of_trap(trap: Trap) -> TrapKind {
    match trap {
        Trap::OutOfFuel => TrapKind::OutOfFuel,
        Trap::Interrupt => TrapKind::Deadline,
        Trap::UnreachableCodeReached => TrapKind::Unreachable,
        Trap::MemoryOutOfBounds | Trap::TableOutOfBounds => TrapKind::OutOfBounds,
        Trap::StringOutOfBounds
        | Trap::ListOutOfBounds
        | Trap::InvalidDiscriminant
        | Trap::UnalignedPointer
        | Trap::InvalidChar => TrapKind::InvalidData,
        _ => TrapKind::Other,
    }
}

/// What an instance tried to grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resource {
    Memory,
    Table,
}

/// The limiter refused to grow a memory or table past its cap: a trap of kind
/// [`TrapKind::ResourceLimit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct GrowRefused {
    resource: Resource,
    /// Bytes (memory) or elements (table) asked for; `None` when the host could not
    /// provide what the cap allowed.
    desired: Option<usize>,
    limit: usize,
}

impl fmt::Display for GrowRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (what, unit) = match self.resource {
            Resource::Memory => ("memory", "bytes"),
            Resource::Table => ("table", "elements"),
        };
        match self.desired {
            Some(desired) => write!(f, "refused to grow {what} to {desired} {unit}: the cap is {} {unit}", self.limit),
            None => write!(f, "{what} could not grow (the host refused within the cap of {} {unit})", self.limit),
        }
    }
}

impl std::error::Error for GrowRefused {}

/// The memory and table caps of one instance, over all its memories (tables) together,
/// and how many instances, memories and tables its component may make. A refused growth
/// traps (as wasmtime's `StoreLimits` with `trap_on_grow_failure`), with a typed
/// [`GrowRefused`]; an instantiation past the counts fails with wasmtime's error.
pub(crate) struct Limiter {
    memory_bytes: usize,
    table_elements: usize,
    counts: Counts,
    /// Bytes (elements) of all memories (tables) now, and the growth last allowed (taken
    /// back if the host then fails to grow).
    memory_used: usize,
    last_memory_growth: usize,
    table_used: usize,
    last_table_growth: usize,
}

/// How many core instances, memories and tables one instance of a component may make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) instances: usize,
    pub(crate) memories: usize,
    pub(crate) tables: usize,
}

impl Counts {
    /// wasmtime's own defaults (10 000 each): for tests of the caps alone.
    #[cfg(test)]
    const WASMTIME: Counts = Counts { instances: 10_000, memories: 10_000, tables: 10_000 };
}

impl Limiter {
    pub(crate) fn new(memory_bytes: usize, table_elements: usize, counts: Counts) -> Self {
        Self {
            memory_bytes,
            table_elements,
            counts,
            memory_used: 0,
            last_memory_growth: 0,
            table_used: 0,
            last_table_growth: 0,
        }
    }

    /// Allows `current -> desired` of one of them if all of them together stay within `cap`
    /// (and this one within its own `maximum`); returns the growth allowed.
    fn check(
        resource: Resource,
        used: usize,
        current: usize,
        desired: usize,
        cap: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<usize> {
        let growth = desired.saturating_sub(current);
        let total = used.saturating_add(growth);
        if maximum.is_some_and(|max| desired > max) || total > cap {
            let (desired, limit) = match maximum.filter(|max| desired > *max) {
                Some(max) => (desired, max),
                None => (total, cap),
            };
            return Err(GrowRefused { resource, desired: Some(desired), limit }.into());
        }
        Ok(growth)
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        let growth = Self::check(Resource::Memory, self.memory_used, current, desired, self.memory_bytes, maximum)?;
        self.memory_used += growth;
        self.last_memory_growth = growth;
        Ok(true)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.memory_used = self.memory_used.saturating_sub(std::mem::take(&mut self.last_memory_growth));
        Err(error.context(GrowRefused { resource: Resource::Memory, desired: None, limit: self.memory_bytes }))
    }

    fn table_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        let growth = Self::check(Resource::Table, self.table_used, current, desired, self.table_elements, maximum)?;
        self.table_used += growth;
        self.last_table_growth = growth;
        Ok(true)
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.table_used = self.table_used.saturating_sub(std::mem::take(&mut self.last_table_growth));
        Err(error.context(GrowRefused { resource: Resource::Table, desired: None, limit: self.table_elements }))
    }

    fn instances(&self) -> usize {
        self.counts.instances
    }

    fn memories(&self) -> usize {
        self.counts.memories
    }

    fn tables(&self) -> usize {
        self.counts.tables
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_traps_are_classified_through_their_context() {
        let with_backtrace = |e: wasmtime::Error| e.context("error while executing at wasm backtrace: ...");
        assert_eq!(classify(&with_backtrace(Trap::OutOfFuel.into())), TrapKind::OutOfFuel);
        assert_eq!(classify(&with_backtrace(Trap::Interrupt.into())), TrapKind::Deadline);
        assert_eq!(classify(&with_backtrace(Trap::UnreachableCodeReached.into())), TrapKind::Unreachable);
        assert_eq!(classify(&with_backtrace(Trap::MemoryOutOfBounds.into())), TrapKind::OutOfBounds);
        assert_eq!(classify(&with_backtrace(Trap::InvalidDiscriminant.into())), TrapKind::InvalidData);
        assert_eq!(classify(&with_backtrace(Trap::StackOverflow.into())), TrapKind::Other);
    }

    #[test]
    fn a_refused_growth_is_a_resource_limit_whatever_its_text() {
        let mut limiter = Limiter::new(1 << 16, 10, Counts::WASMTIME);
        assert!(limiter.memory_growing(0, 1 << 16, None).unwrap());
        let refused = limiter.memory_growing(1 << 16, 2 << 16, None).unwrap_err();
        assert_eq!(classify(&refused.context("error while executing")), TrapKind::ResourceLimit);
        let mut limiter = Limiter::new(1 << 16, 10, Counts::WASMTIME);
        let table = limiter.table_growing(0, 11, Some(100)).unwrap_err();
        assert_eq!(classify(&table), TrapKind::ResourceLimit);
        assert!(limiter.table_growing(5, 8, Some(7)).is_err(), "the table's own maximum also caps");
        let failed = limiter.memory_grow_failed(wasmtime::Error::msg("mmap failed")).unwrap_err();
        assert_eq!(classify(&failed), TrapKind::ResourceLimit);
    }

    #[test]
    fn the_caps_hold_for_all_memories_and_tables_together() {
        let mut limiter = Limiter::new(4 << 16, 10, Counts::WASMTIME);
        for _ in 0..4 {
            assert!(limiter.memory_growing(0, 1 << 16, None).unwrap(), "four memories of one page");
        }
        let fifth = limiter.memory_growing(0, 1 << 16, None).unwrap_err();
        assert_eq!(fifth.to_string(), "refused to grow memory to 327680 bytes: the cap is 262144 bytes");
        let grown = limiter.memory_growing(1 << 16, 2 << 16, None).unwrap_err();
        assert_eq!(classify(&grown), TrapKind::ResourceLimit, "an existing memory cannot grow past the sum either");
        assert!(limiter.memory_grow_failed(wasmtime::Error::msg("mmap failed")).is_err());
        assert!(limiter.table_growing(0, 6, None).unwrap());
        assert!(limiter.table_growing(0, 5, None).is_err(), "11 elements over two tables");
        assert!(limiter.table_growing(0, 4, None).unwrap());
    }

    #[test]
    fn a_growth_the_host_then_fails_is_taken_back() {
        let mut limiter = Limiter::new(2 << 16, 10, Counts::WASMTIME);
        assert!(limiter.memory_growing(0, 2 << 16, None).unwrap());
        assert!(limiter.memory_grow_failed(wasmtime::Error::msg("mmap failed")).is_err());
        assert!(limiter.memory_growing(0, 2 << 16, None).unwrap(), "the failed growth no longer counts");
    }

    #[test]
    fn only_guest_faults_make_an_instantiation_a_trap() {
        let refused = Limiter::new(1 << 16, 10, Counts::WASMTIME).memory_growing(0, 2 << 16, None).unwrap_err();
        assert_eq!(classify_instantiation(&refused), Some(TrapKind::ResourceLimit));
        assert_eq!(classify_instantiation(&Trap::UnreachableCodeReached.into()), Some(TrapKind::Unreachable));
        assert_eq!(classify_instantiation(&wasmtime::Error::msg("no free slot in the pool")), None);
    }

    #[test]
    fn data_the_canonical_abi_refuses_is_invalid_data() {
        let not_utf8 = std::str::from_utf8(&[0xff, 0xfe][..]).unwrap_err();
        assert_eq!(classify(&wasmtime::Error::from(not_utf8)), TrapKind::InvalidData);
        let bad_pointer = wasmtime::Error::msg("string pointer/length out of bounds of memory");
        assert_eq!(classify(&bad_pointer), TrapKind::InvalidData);
        assert_eq!(classify(&wasmtime::Error::from(OutOfMemory::new(64))), TrapKind::Other);
    }
}
