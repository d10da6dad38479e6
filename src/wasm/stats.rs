//! Per-component WASM counters: fuel, calls, instances, upgrades, capability denials and
//! traps by kind, shared by all instances of a component and read as a plain snapshot.
//!
//! Every access is `Relaxed`: the counters order nothing, and a snapshot is a set of
//! separate reads, not a consistent cut.

use crate::sync::Ordering;
use crate::sync::stat::StatCounter;

use crate::failure::TrapKind;

/// Per-component WASM counters.
#[derive(Default)]
pub(crate) struct WasmStats {
    pub(crate) fuel_consumed: StatCounter,
    pub(crate) calls: StatCounter,
    pub(crate) instantiations: StatCounter,
    pub(crate) upgrades: StatCounter,
    pub(crate) capability_denials: StatCounter,
    pub(crate) output_dropped_bytes: StatCounter,
    traps: [StatCounter; TrapKind::ALL.len()],
}

impl WasmStats {
    pub(crate) fn trap(&self, kind: TrapKind) {
        self.traps[kind.index()].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> WasmStatsSnapshot {
        let l = |a: &StatCounter| a.load(Ordering::Relaxed);
        WasmStatsSnapshot {
            fuel_consumed: l(&self.fuel_consumed),
            calls: l(&self.calls),
            instantiations: l(&self.instantiations),
            upgrades: l(&self.upgrades),
            capability_denials: l(&self.capability_denials),
            output_dropped_bytes: l(&self.output_dropped_bytes),
            log_lines_dropped: 0,
            traps: std::array::from_fn(|i| l(&self.traps[i])),
        }
    }
}

/// A plain copy of one WASM component's counters.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct WasmStatsSnapshot {
    /// Fuel consumed by all calls (0 with fuel metering off).
    pub fuel_consumed: u64,
    /// Guest calls made (init, messages, callbacks).
    pub calls: u64,
    /// Instances made (the first, restarts, upgrades).
    pub instantiations: u64,
    /// Code upgrades applied.
    pub upgrades: u64,
    /// Host calls refused by the capability checks.
    pub capability_denials: u64,
    /// Bytes of stdout, stderr and `log` output dropped for going over a call's budget
    /// ([`crate::WasmOptions::max_output_bytes`]).
    pub output_dropped_bytes: u64,
    /// Log lines (and lines of stdout and stderr) dropped because the host's log sink fell
    /// behind: its queue was full (`WasmHost::flush_logs`).
    pub log_lines_dropped: u64,
    /// Traps by kind, indexed like [`TrapKind::ALL`].
    pub traps: [u64; TrapKind::ALL.len()],
}

impl WasmStatsSnapshot {
    /// Traps of one kind.
    pub fn traps_of(&self, kind: TrapKind) -> u64 {
        self.traps[kind.index()]
    }

    /// All traps.
    pub fn total_traps(&self) -> u64 {
        self.traps.iter().sum()
    }
}
