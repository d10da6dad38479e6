//! Workload 6, storage: get, durable set, group-commit set and key listing through
//! switchyard's `RedbBackend`, against raw redb as the floor.

use std::time::Duration;

use switchyard::DurabilityMode;
use switchyard_bench_support::storage::{GROUP_COMMIT, GROUP_WRITERS, LIST_KEYS, RawRedb, SwitchyardStore};
use switchyard_bench_support::workloads::Engine;

use super::Plan;
use super::report::{Check, Row};

/// Workload 6: storage through `RedbBackend` against raw redb (the baseline column stays
/// empty: the earlier system's sled/RocksDB store is not reproduced).
pub(super) fn storage(plan: &Plan) -> Vec<Row> {
    let per = |d: Duration, n: u64| d.as_secs_f64() * 1e6 / n as f64;
    let mut durable = SwitchyardStore::new(DurabilityMode::Immediate);
    let mut group = SwitchyardStore::new(GROUP_COMMIT);
    let mut raw = RawRedb::new();
    durable.get(1000);
    raw.get(1000);
    let n = plan.storage_writes;
    let writers_metric = format!("set, group commit, {GROUP_WRITERS} writers (amortised)");
    vec![
        Row::new("st_get", "6 storage", "get (64 B value)", "us/op")
            .target("< 1 ms (seed)", Check::AtMost(1000.0))
            .set(Engine::Switchyard, per(durable.get(plan.storage_reads), plan.storage_reads))
            .set(Engine::Floor, per(raw.get(plan.storage_reads), plan.storage_reads)),
        Row::new("st_set", "6 storage", "set, durable (fsync per write)", "us/op")
            .target("< 1 ms (seed)", Check::AtMost(1000.0))
            .set(Engine::Switchyard, per(durable.set(n), n))
            .set(Engine::Floor, per(raw.set(n), n)),
        Row::new("st_group1", "6 storage", "set, group commit, 1 writer", "us/op")
            .target("< 1 ms (seed)", Check::AtMost(1000.0))
            .set(Engine::Switchyard, per(group.set(n), n)),
        Row::new("st_group8", "6 storage", writers_metric, "us/op")
            .target("< 1 ms (seed)", Check::AtMost(1000.0))
            .set(Engine::Switchyard, per(group.set_concurrent(n * 4), n * 4)),
        Row::new("st_list", "6 storage", format!("list_keys of {LIST_KEYS} keys"), "ms/op")
            .target("< 10 ms (seed)", Check::AtMost(10.0))
            .set(Engine::Switchyard, per(durable.list_keys(plan.listings), plan.listings) / 1000.0)
            .set(Engine::Floor, per(raw.list_keys(plan.listings), plan.listings) / 1000.0),
    ]
}
