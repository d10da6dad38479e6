//! Transactions: all-or-nothing commit, rollback, drop-rollback, and what `Get` / `List`
//! inside a transaction mean (they run inside the write transaction, in order, and
//! `commit_with_results` returns what they saw).

use switchyard::{
    OperationResult, RedbBackend, StorageBackend, StorageError, StorageOperation, StorageQuota, block_on,
};

fn set(ns: &str, key: &[u8], value: &[u8]) -> StorageOperation {
    StorageOperation::Set { namespace: ns.into(), key: key.to_vec(), value: value.to_vec() }
}

fn get(ns: &str, key: &[u8]) -> StorageOperation {
    StorageOperation::Get { namespace: ns.into(), key: key.to_vec() }
}

fn delete(ns: &str, key: &[u8]) -> StorageOperation {
    StorageOperation::Delete { namespace: ns.into(), key: key.to_vec() }
}

fn list(ns: &str, prefix: &[u8]) -> StorageOperation {
    StorageOperation::List { namespace: ns.into(), prefix: prefix.to_vec() }
}

#[test]
fn commit_applies_every_operation_together() {
    let s = RedbBackend::in_memory().unwrap();
    s.set("ns", b"old", b"x").unwrap();
    let mut tx = s.transaction();
    tx.add_operation(set("ns", b"a", b"1")).unwrap();
    tx.add_operation(set("other", b"b", b"2")).unwrap();
    tx.add_operation(delete("ns", b"old")).unwrap();
    assert_eq!(tx.operations().len(), 3);
    tx.commit().unwrap();
    assert_eq!(s.get("ns", b"a").unwrap(), Some(b"1".to_vec()));
    assert_eq!(s.get("other", b"b").unwrap(), Some(b"2".to_vec()));
    assert_eq!(s.get("ns", b"old").unwrap(), None);
}

#[test]
fn operations_are_not_executed_before_commit() {
    let s = RedbBackend::in_memory().unwrap();
    let mut tx = s.transaction();
    tx.add_operation(set("ns", b"a", b"1")).unwrap();
    assert_eq!(s.get("ns", b"a").unwrap(), None);
    // Another writer is not blocked by the open transaction.
    s.set("ns", b"b", b"2").unwrap();
    tx.commit().unwrap();
    assert_eq!(s.list_keys("ns", b"").unwrap(), vec![b"a".to_vec(), b"b".to_vec()]);
}

#[test]
fn a_failing_operation_makes_the_whole_transaction_write_nothing() {
    let s = RedbBackend::builder().quota("limited", StorageQuota::new(1000, 1)).in_memory().unwrap();
    s.set("free", b"keep", b"before").unwrap();
    let mut tx = s.transaction();
    tx.add_operation(set("free", b"keep", b"after")).unwrap();
    tx.add_operation(set("free", b"new", b"x")).unwrap();
    tx.add_operation(set("limited", b"one", b"x")).unwrap();
    tx.add_operation(set("limited", b"two", b"x")).unwrap(); // second key: over quota
    let err = tx.commit().unwrap_err();
    assert!(matches!(err, StorageError::QuotaExceeded { .. }), "{err:?}");
    assert_eq!(s.get("free", b"keep").unwrap(), Some(b"before".to_vec()));
    assert_eq!(s.get("free", b"new").unwrap(), None);
    assert!(s.list_keys("limited", b"").unwrap().is_empty());
    assert_eq!(s.usage("free").unwrap().key_count, 1);
    assert_eq!(s.usage("limited").unwrap().key_count, 0);
}

#[test]
fn rollback_discards_every_operation() {
    let s = RedbBackend::in_memory().unwrap();
    let mut tx = s.transaction();
    tx.add_operation(set("ns", b"a", b"1")).unwrap();
    tx.add_operation(delete("ns", b"b")).unwrap();
    s.set("ns", b"b", b"stays").unwrap();
    tx.rollback();
    assert_eq!(s.get("ns", b"a").unwrap(), None);
    assert_eq!(s.get("ns", b"b").unwrap(), Some(b"stays".to_vec()));
}

#[test]
fn dropping_an_uncommitted_transaction_rolls_it_back() {
    let s = RedbBackend::in_memory().unwrap();
    {
        let mut tx = block_on(StorageBackend::begin_transaction(&s)).unwrap();
        block_on(tx.add_operation(set("ns", b"a", b"1"))).unwrap();
    }
    {
        let mut tx = s.transaction();
        tx.add_operation(set("ns", b"b", b"1")).unwrap();
    }
    assert!(s.list_keys("ns", b"").unwrap().is_empty());
    assert_eq!(s.usage("ns").unwrap().key_count, 0);
    // And the store still accepts writes afterwards (nothing was left locked).
    s.set("ns", b"c", b"1").unwrap();
}

#[test]
fn get_and_list_inside_a_transaction_see_the_earlier_operations() {
    let s = RedbBackend::in_memory().unwrap();
    s.set("ns", b"a", b"old").unwrap();
    let mut tx = s.transaction();
    tx.add_operation(get("ns", b"a")).unwrap();
    tx.add_operation(set("ns", b"a", b"new")).unwrap();
    tx.add_operation(set("ns", b"b", b"1")).unwrap();
    tx.add_operation(get("ns", b"a")).unwrap();
    tx.add_operation(list("ns", b"")).unwrap();
    tx.add_operation(delete("ns", b"a")).unwrap();
    tx.add_operation(get("ns", b"a")).unwrap();
    tx.add_operation(list("ns", b"")).unwrap();
    let results = tx.commit_with_results().unwrap();
    assert_eq!(
        results,
        vec![
            OperationResult::Get(Some(b"old".to_vec())),
            OperationResult::Set,
            OperationResult::Set,
            OperationResult::Get(Some(b"new".to_vec())),
            OperationResult::List(vec![b"a".to_vec(), b"b".to_vec()]),
            OperationResult::Delete,
            OperationResult::Get(None),
            OperationResult::List(vec![b"b".to_vec()]),
        ]
    );
    assert_eq!(s.list_keys("ns", b"").unwrap(), vec![b"b".to_vec()]);
}

#[test]
fn a_read_only_transaction_reads_one_snapshot() {
    let s = RedbBackend::in_memory().unwrap();
    s.set("ns", b"x", b"1").unwrap();
    s.set("ns", b"y", b"2").unwrap();
    let mut tx = s.transaction();
    tx.add_operation(get("ns", b"x")).unwrap();
    tx.add_operation(list("ns", b"")).unwrap();
    tx.add_operation(get("ns", b"missing")).unwrap();
    assert_eq!(
        tx.commit_with_results().unwrap(),
        vec![
            OperationResult::Get(Some(b"1".to_vec())),
            OperationResult::List(vec![b"x".to_vec(), b"y".to_vec()]),
            OperationResult::Get(None),
        ]
    );
}

#[test]
fn an_empty_transaction_commits_with_no_results() {
    let s = RedbBackend::in_memory().unwrap();
    assert_eq!(s.transaction().commit_with_results().unwrap(), Vec::new());
}

#[test]
fn add_operation_rejects_invalid_input_and_keeps_the_valid_operations() {
    let s = RedbBackend::builder().max_key_size(4).max_value_size(4).in_memory().unwrap();
    let mut tx = s.transaction();
    tx.add_operation(set("ns", b"ok", b"ok")).unwrap();
    assert!(matches!(
        tx.add_operation(set("ns", b"too-long", b"v")),
        Err(StorageError::KeyTooLarge { len: 8, max: 4 })
    ));
    assert!(matches!(
        tx.add_operation(set("ns", b"k", b"too-long")),
        Err(StorageError::ValueTooLarge { len: 8, max: 4 })
    ));
    assert!(matches!(tx.add_operation(get("", b"k")), Err(StorageError::InvalidNamespace { .. })));
    assert!(matches!(tx.add_operation(delete("ns", b"too-long")), Err(StorageError::KeyTooLarge { .. })));
    assert!(matches!(tx.add_operation(list("", b"")), Err(StorageError::InvalidNamespace { .. })));
    assert_eq!(tx.operations().len(), 1);
    tx.commit().unwrap();
    assert_eq!(s.get("ns", b"ok").unwrap(), Some(b"ok".to_vec()));
}

#[test]
fn commit_after_the_backend_is_dropped_fails_closed() {
    let s = RedbBackend::in_memory().unwrap();
    let mut tx = s.transaction();
    tx.add_operation(set("ns", b"a", b"1")).unwrap();
    drop(s);
    assert!(matches!(tx.commit(), Err(StorageError::Closed)));
}

#[test]
fn a_transaction_can_net_out_within_quota() {
    // Quota of one key: deleting the old key and adding a new one in one transaction fits.
    let s = RedbBackend::builder().default_quota(StorageQuota::new(1000, 1)).in_memory().unwrap();
    s.set("ns", b"old", b"v").unwrap();
    let mut tx = s.transaction();
    tx.add_operation(set("ns", b"new", b"v")).unwrap();
    tx.add_operation(delete("ns", b"old")).unwrap();
    tx.commit().unwrap();
    assert_eq!(s.list_keys("ns", b"").unwrap(), vec![b"new".to_vec()]);
}
