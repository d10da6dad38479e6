//! Message id generation: ns per `new_message_id()` on one thread, and per envelope made
//! with a fresh id (`MessageEnvelope::new`, what a sender pays per message). The ids are
//! checked (each distinct from the previous one) so an id generator that stopped changing
//! could not look fast.
//!
//! Run: `cargo bench --bench message_ids` (add `-- --quick` for a short run).

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use switchyard::{ComponentId, MessageEnvelope, MessageType, codec, new_message_id};

fn message_ids(c: &mut Criterion) {
    let mut group = c.benchmark_group("message_ids");
    group.bench_function("new_message_id", |b| {
        let mut last = new_message_id();
        b.iter(|| {
            let id = new_message_id();
            assert_ne!(id, last);
            last = black_box(id);
        });
    });
    let (from, to) = (ComponentId::new("a").unwrap(), ComponentId::new("b").unwrap());
    group.bench_function("envelope_with_fresh_id", |b| {
        b.iter(|| {
            black_box(MessageEnvelope::new(
                MessageType::FireAndForget,
                from.clone(),
                to.clone(),
                Vec::new(),
                codec::RAW,
                new_message_id(),
            ))
        });
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = message_ids
}
criterion_main!(benches);
