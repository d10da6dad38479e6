//! Concurrency: readers run alongside the single writer and never observe a partly applied
//! transaction; the backend is shared by plain threads.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use switchyard::{DurabilityMode, RedbBackend, StorageOperation};

const KEYS_PER_TX: usize = 3;
const TRANSACTIONS: u32 = 60;

/// One writer commits transactions of three keys (plus a counter); readers list and read
/// concurrently and must always see whole transactions, in commit order.
fn readers_see_whole_transactions(store: RedbBackend) {
    let store = Arc::new(store);
    let done = Arc::new(AtomicBool::new(false));

    let readers: Vec<_> = (0..3)
        .map(|_| {
            let store = Arc::clone(&store);
            let done = Arc::clone(&done);
            thread::spawn(move || {
                let mut last_seen = 0;
                let mut observations = 0u64;
                loop {
                    // Read the flag before the snapshot: if the writer had finished, the
                    // snapshot taken after it shows every transaction.
                    // Acquire pairs with the writer's Release store after its last commit.
                    let finished = done.load(Ordering::Acquire);
                    let keys = store.list_keys("ns", b"tx/").unwrap();
                    assert_eq!(keys.len() % KEYS_PER_TX, 0, "partial transaction visible");
                    assert!(keys.len() >= last_seen, "a committed transaction disappeared");
                    last_seen = keys.len();
                    observations += 1;
                    if finished {
                        assert_eq!(keys.len(), TRANSACTIONS as usize * KEYS_PER_TX);
                        return observations;
                    }
                }
            })
        })
        .collect();

    for n in 0..TRANSACTIONS {
        let mut tx = store.transaction();
        for part in 0..KEYS_PER_TX {
            tx.add_operation(StorageOperation::Set {
                namespace: "ns".into(),
                key: format!("tx/{n:04}/{part}").into_bytes(),
                value: n.to_be_bytes().to_vec(),
            })
            .unwrap();
        }
        tx.add_operation(StorageOperation::Set {
            namespace: "ns".into(),
            key: b"counter".to_vec(),
            value: n.to_be_bytes().to_vec(),
        })
        .unwrap();
        tx.commit().unwrap();
    }
    // Release pairs with the readers' Acquire load: they see every commit made before this.
    done.store(true, Ordering::Release);
    for r in readers {
        assert!(r.join().unwrap() > 0);
    }
    assert_eq!(store.get("ns", b"counter").unwrap(), Some((TRANSACTIONS - 1).to_be_bytes().to_vec()));
}

#[test]
fn readers_never_see_a_partial_transaction_in_immediate_mode() {
    readers_see_whole_transactions(RedbBackend::in_memory().unwrap());
}

#[test]
fn readers_never_see_a_partial_transaction_in_group_commit_mode() {
    readers_see_whole_transactions(
        RedbBackend::builder()
            .durability(DurabilityMode::GroupCommit { max_delay: Duration::from_micros(200), max_batch: 8 })
            .in_memory()
            .unwrap(),
    );
}

/// Many threads writing the same namespace: every write lands and the usage row, updated by
/// each write transaction, loses no update.
#[test]
fn concurrent_writers_to_one_namespace_keep_usage_exact() {
    let store = Arc::new(RedbBackend::in_memory().unwrap());
    let threads = 4u8;
    let per_thread = 25u8;
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let store = Arc::clone(&store);
            thread::spawn(move || {
                for i in 0..per_thread {
                    store.set("shared", &[t, i], &[0; 10]).unwrap();
                    if i % 2 == 0 {
                        store.set("shared", &[t, i], &[0; 4]).unwrap();
                    }
                    if i % 5 == 0 {
                        store.delete("shared", &[t, i]).unwrap();
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let mut bytes = 0;
    let mut keys = 0;
    for i in 0..per_thread {
        if i % 5 != 0 {
            keys += 1;
            bytes += 2 + if i % 2 == 0 { 4 } else { 10 };
        }
    }
    let usage = store.usage("shared").unwrap();
    assert_eq!((usage.used_bytes, usage.key_count), (bytes * u64::from(threads), keys * u64::from(threads)));
    assert_eq!(store.list_keys("shared", b"").unwrap().len() as u64, keys * u64::from(threads));
}
