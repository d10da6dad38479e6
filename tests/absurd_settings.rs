//! Absurd settings get a typed error naming the setting, before anything is allocated or
//! started (a mailbox's slots and a worker's thread are allocated up front).

mod common;

use common::*;
use switchyard::{
    BuildError, ComponentSpec, MAX_DEAD_LETTER_CAPACITY, MAX_MAILBOX_CAPACITY, MAX_WORKERS, RegisterError, Runtime,
    handler_fn,
};

#[test]
fn a_runtime_with_absurdly_many_workers_is_refused() {
    for workers in [MAX_WORKERS + 1, 1 << 32, usize::MAX] {
        match Runtime::builder().workers(workers).build() {
            Err(BuildError::InvalidConfig(why)) => assert!(why.contains("workers"), "{why}"),
            other => panic!("workers = {workers}: expected InvalidConfig, got {:?}", other.map(|_| "a runtime")),
        }
    }
    assert!(Runtime::builder().workers(MAX_WORKERS.min(8)).build().is_ok());
}

#[test]
fn an_absurd_dead_letter_queue_is_refused() {
    let r = Runtime::builder().workers(1).dead_letter_capacity(MAX_DEAD_LETTER_CAPACITY + 1).build();
    assert!(matches!(r, Err(BuildError::InvalidConfig(why)) if why.contains("dead_letter_capacity")));
}

#[test]
fn an_absurd_mailbox_is_refused_at_registration() {
    let (rt, _dead) = runtime(1);
    for capacity in [MAX_MAILBOX_CAPACITY + 1, 1 << 40, usize::MAX] {
        let spec = ComponentSpec::new(|| handler_fn(|_c, _m| Ok(None))).mailbox_capacity(capacity);
        match rt.register(id("big"), spec) {
            Err(RegisterError::InvalidConfig(why)) => assert!(why.contains("mailbox_capacity"), "{why}"),
            other => panic!("capacity {capacity}: expected InvalidConfig, got {other:?}"),
        }
    }
    let spec = ComponentSpec::new(|| handler_fn(|_c, _m| Ok(None))).mailbox_capacity(MAX_MAILBOX_CAPACITY);
    rt.register(id("largest"), spec).unwrap();
}
