//! Benchmark support for switchyard (not published): used by the criterion benches and by
//! the compare report, `switchyard bench` (`cli/src/bench.rs`).
//!
//! - [`baseline`]: the async baseline, the tokio broker design of the earlier system, built
//!   faithfully.
//! - [`workloads`]: the messaging workloads, each runnable on switchyard, the baseline and a
//!   raw crossbeam floor, verifying a checksum of everything handled.
//! - [`storage`]: the storage workload, switchyard's `RedbBackend` against raw redb.
//! - `wasm` (feature `wasm`): the WASM dispatch workload, through the runtime with fuel on
//!   and off, against direct calls of the same component.

pub mod baseline;
pub mod storage;
#[cfg(feature = "wasm")]
pub mod wasm;
pub mod workloads;
