//! The seed's method specifications for `StorageBackend`, `StorageOperation` and
//! `StorageTransaction`, checked through the trait (as hosts use it) on `RedbBackend`, plus a
//! trivial third-party implementation to show the trait is implementable and object safe.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::thread;

use async_trait::async_trait;
use switchyard::{
    MAX_NAMESPACE_LEN, RedbBackend, StorageBackend, StorageError, StorageOperation, StorageTransaction, block_on,
};

fn store() -> Arc<dyn StorageBackend> {
    Arc::new(RedbBackend::in_memory().expect("in-memory backend opens"))
}

fn set_op(ns: &str, key: &[u8], value: &[u8]) -> StorageOperation {
    StorageOperation::Set { namespace: ns.into(), key: key.to_vec(), value: value.to_vec() }
}

// ---- get ----

#[test]
fn get_returns_the_value_of_an_existing_key() {
    let s = store();
    block_on(s.set("ns", b"k", b"v")).unwrap();
    assert_eq!(block_on(s.get("ns", b"k")).unwrap(), Some(b"v".to_vec()));
}

#[test]
fn get_of_a_missing_key_returns_none() {
    let s = store();
    assert_eq!(block_on(s.get("ns", b"missing")).unwrap(), None);
    block_on(s.set("ns", b"other", b"v")).unwrap();
    assert_eq!(block_on(s.get("ns", b"missing")).unwrap(), None);
}

#[test]
fn get_distinguishes_empty_value_from_missing_key() {
    let s = store();
    block_on(s.set("ns", b"empty", b"")).unwrap();
    assert_eq!(block_on(s.get("ns", b"empty")).unwrap(), Some(Vec::new()));
    block_on(s.set("ns", b"", b"empty key")).unwrap();
    assert_eq!(block_on(s.get("ns", b"")).unwrap(), Some(b"empty key".to_vec()));
}

#[test]
fn get_of_a_one_megabyte_value_round_trips() {
    let s = store();
    let value: Vec<u8> = (0..1024 * 1024).map(|i| (i % 251) as u8).collect();
    block_on(s.set("ns", b"big", &value)).unwrap();
    assert_eq!(block_on(s.get("ns", b"big")).unwrap(), Some(value));
}

// ---- set ----

#[test]
fn set_creates_a_missing_key() {
    let s = store();
    block_on(s.set("ns", b"new", b"1")).unwrap();
    assert_eq!(block_on(s.list_keys("ns", b"")).unwrap(), vec![b"new".to_vec()]);
}

#[test]
fn set_overwrites_an_existing_value() {
    let s = store();
    block_on(s.set("ns", b"k", b"first")).unwrap();
    block_on(s.set("ns", b"k", b"second")).unwrap();
    assert_eq!(block_on(s.get("ns", b"k")).unwrap(), Some(b"second".to_vec()));
    assert_eq!(block_on(s.list_keys("ns", b"")).unwrap().len(), 1);
}

// ---- delete ----

#[test]
fn delete_removes_the_key() {
    let s = store();
    block_on(s.set("ns", b"k", b"v")).unwrap();
    block_on(s.delete("ns", b"k")).unwrap();
    assert_eq!(block_on(s.get("ns", b"k")).unwrap(), None);
    assert!(block_on(s.list_keys("ns", b"")).unwrap().is_empty());
}

#[test]
fn delete_of_a_missing_key_is_not_an_error() {
    let s = store();
    block_on(s.delete("ns", b"never-set")).unwrap();
    block_on(s.set("ns", b"k", b"v")).unwrap();
    block_on(s.delete("ns", b"k")).unwrap();
    block_on(s.delete("ns", b"k")).unwrap();
    assert_eq!(block_on(s.get("ns", b"k")).unwrap(), None);
}

// ---- list_keys ----

#[test]
fn list_keys_returns_the_keys_starting_with_the_prefix_sorted() {
    let s = store();
    for key in [&b"user/2"[..], b"user/1", b"config", b"user/10", b"usex"] {
        block_on(s.set("ns", key, b"v")).unwrap();
    }
    assert_eq!(
        block_on(s.list_keys("ns", b"user/")).unwrap(),
        vec![b"user/1".to_vec(), b"user/10".to_vec(), b"user/2".to_vec()]
    );
}

#[test]
fn list_keys_with_an_empty_prefix_returns_the_whole_namespace() {
    let s = store();
    for key in [&b"b"[..], b"a", b"c"] {
        block_on(s.set("ns", key, b"v")).unwrap();
    }
    block_on(s.set("other", b"z", b"v")).unwrap();
    assert_eq!(block_on(s.list_keys("ns", b"")).unwrap(), vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]);
}

#[test]
fn list_keys_with_no_match_returns_an_empty_vector() {
    let s = store();
    assert!(block_on(s.list_keys("ns", b"")).unwrap().is_empty());
    block_on(s.set("ns", b"abc", b"v")).unwrap();
    assert!(block_on(s.list_keys("ns", b"abd")).unwrap().is_empty());
    assert!(block_on(s.list_keys("ns", b"abcd")).unwrap().is_empty());
}

#[test]
fn list_keys_prefix_matches_the_key_itself() {
    let s = store();
    block_on(s.set("ns", b"abc", b"v")).unwrap();
    assert_eq!(block_on(s.list_keys("ns", b"abc")).unwrap(), vec![b"abc".to_vec()]);
}

#[test]
fn list_keys_handles_0xff_prefixes_at_the_end_of_the_byte_range() {
    let s = store();
    for key in [&[0xffu8][..], &[0xff, 0xff], &[0xff, 0x00], &[0xfe, 0xff]] {
        block_on(s.set("ns", key, b"v")).unwrap();
    }
    block_on(s.set("nt", &[0xff], b"v")).unwrap();
    assert_eq!(block_on(s.list_keys("ns", &[0xff])).unwrap(), vec![vec![0xff], vec![0xff, 0x00], vec![0xff, 0xff]]);
}

// ---- begin_transaction ----

#[test]
fn begin_transaction_returns_a_transaction_that_commits() {
    let s = store();
    let mut tx: Box<dyn StorageTransaction> = block_on(s.begin_transaction()).unwrap();
    block_on(tx.add_operation(set_op("ns", b"a", b"1"))).unwrap();
    block_on(tx.add_operation(set_op("ns", b"b", b"2"))).unwrap();
    assert_eq!(block_on(s.get("ns", b"a")).unwrap(), None, "not executed before commit");
    block_on(tx.commit()).unwrap();
    assert_eq!(block_on(s.get("ns", b"a")).unwrap(), Some(b"1".to_vec()));
    assert_eq!(block_on(s.get("ns", b"b")).unwrap(), Some(b"2".to_vec()));
}

#[test]
fn transaction_rollback_always_returns_ok_and_discards() {
    let s = store();
    let mut tx = block_on(s.begin_transaction()).unwrap();
    block_on(tx.add_operation(set_op("ns", b"a", b"1"))).unwrap();
    assert!(block_on(tx.rollback()).is_ok());
    assert_eq!(block_on(s.get("ns", b"a")).unwrap(), None);
}

#[test]
fn transaction_add_operation_rejects_an_invalid_operation() {
    let s = store();
    let mut tx = block_on(s.begin_transaction()).unwrap();
    let err = block_on(tx.add_operation(set_op("", b"a", b"1"))).unwrap_err();
    assert!(matches!(err, StorageError::InvalidNamespace { .. }));
    block_on(tx.add_operation(set_op("ns", b"a", b"1"))).unwrap();
    block_on(tx.commit()).unwrap();
    assert_eq!(block_on(s.list_keys("ns", b"")).unwrap(), vec![b"a".to_vec()]);
}

// ---- invalid input: errors, never panics ----

#[test]
fn invalid_namespaces_are_errors_for_every_method() {
    let s = store();
    let long = "n".repeat(MAX_NAMESPACE_LEN + 1);
    for ns in ["", long.as_str()] {
        let is_invalid = |r: Result<(), StorageError>| matches!(r, Err(StorageError::InvalidNamespace { .. }));
        assert!(is_invalid(block_on(s.get(ns, b"k")).map(drop)));
        assert!(is_invalid(block_on(s.set(ns, b"k", b"v"))));
        assert!(is_invalid(block_on(s.delete(ns, b"k"))));
        assert!(is_invalid(block_on(s.list_keys(ns, b"")).map(drop)));
    }
    let longest = "n".repeat(MAX_NAMESPACE_LEN);
    block_on(s.set(&longest, b"k", b"v")).unwrap();
    assert_eq!(block_on(s.get(&longest, b"k")).unwrap(), Some(b"v".to_vec()));
}

#[test]
fn errors_display_what_happened() {
    let s = store();
    let err = block_on(s.set("", b"k", b"v")).unwrap_err();
    assert!(err.to_string().contains("namespace"), "{err}");
}

// ---- StorageOperation ----

#[test]
fn storage_operation_get_creation() {
    let op = StorageOperation::Get { namespace: "ns".into(), key: b"k".to_vec() };
    assert_eq!((op.namespace(), op.operation_type()), ("ns", "get"));
}

#[test]
fn storage_operation_set_creation() {
    let op = set_op("ns", b"k", b"v");
    assert_eq!((op.namespace(), op.operation_type()), ("ns", "set"));
    let StorageOperation::Set { key, value, .. } = &op else {
        panic!("expected Set, got {op:?}");
    };
    assert_eq!((key.as_slice(), value.as_slice()), (&b"k"[..], &b"v"[..]));
}

#[test]
fn storage_operation_delete_creation() {
    let op = StorageOperation::Delete { namespace: "component:x".into(), key: b"k".to_vec() };
    assert_eq!((op.namespace(), op.operation_type()), ("component:x", "delete"));
}

#[test]
fn storage_operation_list_creation() {
    let op = StorageOperation::List { namespace: "ns".into(), prefix: Vec::new() };
    assert_eq!((op.namespace(), op.operation_type()), ("ns", "list"));
}

#[test]
fn storage_operation_serde_round_trips_every_variant() {
    let ops = vec![
        StorageOperation::Get { namespace: "a".into(), key: vec![0, 255] },
        set_op("b", b"k", &[1, 2, 3]),
        StorageOperation::Delete { namespace: "c".into(), key: vec![] },
        StorageOperation::List { namespace: "d:e".into(), prefix: b"p".to_vec() },
    ];
    let json = serde_json::to_string(&ops).unwrap();
    let back: Vec<StorageOperation> = serde_json::from_str(&json).unwrap();
    assert_eq!(back, ops);
}

// ---- trait objects, threads, block_on ----

#[test]
fn backend_trait_object_is_shared_by_plain_threads() {
    let s = store();
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let s = Arc::clone(&s);
            thread::spawn(move || {
                for i in 0..10u8 {
                    block_on(s.set("ns", &[t, i], &[i])).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(block_on(s.list_keys("ns", b"")).unwrap().len(), 40);
}

/// A map-backed implementation from outside the crate: the trait needs nothing private.
#[derive(Default)]
struct MapBackend(Mutex<BTreeMap<NamespacedKey, Vec<u8>>>);

/// `(namespace, key)`.
type NamespacedKey = (String, Vec<u8>);

struct MapTransaction;

#[async_trait]
impl StorageTransaction for MapTransaction {
    async fn add_operation(&mut self, _op: StorageOperation) -> Result<(), StorageError> {
        Ok(())
    }
    async fn commit(self: Box<Self>) -> Result<(), StorageError> {
        Ok(())
    }
    async fn rollback(self: Box<Self>) -> Result<(), StorageError> {
        Ok(())
    }
}

#[async_trait]
impl StorageBackend for MapBackend {
    async fn get(&self, ns: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.0.lock().unwrap().get(&(ns.into(), key.to_vec())).cloned())
    }
    async fn set(&self, ns: &str, key: &[u8], value: &[u8]) -> Result<(), StorageError> {
        self.0.lock().unwrap().insert((ns.into(), key.to_vec()), value.to_vec());
        Ok(())
    }
    async fn delete(&self, ns: &str, key: &[u8]) -> Result<(), StorageError> {
        self.0.lock().unwrap().remove(&(ns.into(), key.to_vec()));
        Ok(())
    }
    async fn list_keys(&self, ns: &str, prefix: &[u8]) -> Result<Vec<Vec<u8>>, StorageError> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .keys()
            .filter(|(n, k)| n == ns && k.starts_with(prefix))
            .map(|(_, k)| k.clone())
            .collect())
    }
    async fn begin_transaction(&self) -> Result<Box<dyn StorageTransaction>, StorageError> {
        Ok(Box::new(MapTransaction))
    }
}

#[test]
fn backends_are_interchangeable_behind_the_trait_object() {
    let backends: Vec<Arc<dyn StorageBackend>> = vec![store(), Arc::new(MapBackend::default())];
    for s in backends {
        block_on(s.set("ns", b"k", b"v")).unwrap();
        assert_eq!(block_on(s.get("ns", b"k")).unwrap(), Some(b"v".to_vec()));
        block_on(s.delete("ns", b"k")).unwrap();
        assert!(block_on(s.list_keys("ns", b"")).unwrap().is_empty());
        let tx = block_on(s.begin_transaction()).unwrap();
        block_on(tx.rollback()).unwrap();
    }
}

/// Pending on first poll; completes once another thread has woken it.
struct WokenByAnotherThread {
    spawned: bool,
    done: Arc<Mutex<bool>>,
}

impl Future for WokenByAnotherThread {
    type Output = &'static str;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if *self.done.lock().unwrap() {
            return Poll::Ready("woken");
        }
        if !self.spawned {
            self.spawned = true;
            let done = Arc::clone(&self.done);
            let waker: Waker = cx.waker().clone();
            thread::spawn(move || {
                *done.lock().unwrap() = true;
                waker.wake();
            });
        }
        Poll::Pending
    }
}

#[test]
fn block_on_parks_until_a_pending_future_is_woken() {
    let fut = WokenByAnotherThread { spawned: false, done: Arc::new(Mutex::new(false)) };
    assert_eq!(block_on(fut), "woken");
}
