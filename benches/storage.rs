//! Storage: get, set (durable and group commit) and list_keys of 1000 keys through
//! switchyard's `RedbBackend`, against raw redb on the same kind of file. Reads check the
//! value read; listings check the key count.
//!
//! Run: `cargo bench --bench storage` (add `-- --quick` for a short run). Durable writes
//! fsync, so their figures depend on the disk.

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use switchyard::DurabilityMode;
use switchyard_bench_support::storage::{GROUP_COMMIT, RawRedb, SwitchyardStore};

fn storage(c: &mut Criterion) {
    let mut durable = SwitchyardStore::new(DurabilityMode::Immediate);
    let mut group_commit = SwitchyardStore::new(GROUP_COMMIT);
    let mut raw = RawRedb::new();

    let mut g = c.benchmark_group("storage/get");
    g.bench_function("switchyard", |b| b.iter_custom(|n| durable.get(n)));
    g.bench_function("raw_redb", |b| b.iter_custom(|n| raw.get(n)));
    g.finish();

    let mut g = c.benchmark_group("storage/set");
    g.sample_size(10);
    g.bench_function("switchyard_durable", |b| b.iter_custom(|n| durable.set(n)));
    g.bench_function("raw_redb_durable", |b| b.iter_custom(|n| raw.set(n)));
    g.bench_function("switchyard_group_commit_1_writer", |b| b.iter_custom(|n| group_commit.set(n)));
    g.bench_function("switchyard_group_commit_8_writers", |b| b.iter_custom(|n| group_commit.set_concurrent(n)));
    g.finish();

    let mut g = c.benchmark_group("storage/list_keys_1000");
    g.bench_function("switchyard", |b| b.iter_custom(|n| durable.list_keys(n)));
    g.bench_function("raw_redb", |b| b.iter_custom(|n| raw.list_keys(n)));
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = storage
}
criterion_main!(benches);
