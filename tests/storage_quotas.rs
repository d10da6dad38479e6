//! Size limits and per-namespace quotas: typed errors, nothing written on failure, and an exact
//! usage report after every kind of write.

mod storage_common;

use storage_common::TempDir;
use switchyard::{
    DEFAULT_MAX_KEY_SIZE, DEFAULT_MAX_VALUE_SIZE, QuotaResource, RedbBackend, StorageError, StorageOperation,
    StorageQuota, StorageUsage,
};

fn usage(s: &RedbBackend, ns: &str) -> (u64, u64) {
    let StorageUsage { used_bytes, key_count, .. } = s.usage(ns).unwrap();
    (used_bytes, key_count)
}

#[test]
fn keys_and_values_at_the_limit_are_accepted_and_one_byte_more_is_rejected() {
    let s = RedbBackend::builder().max_key_size(8).max_value_size(16).in_memory().unwrap();
    s.set("ns", &[1; 8], &[2; 16]).unwrap();
    assert_eq!(s.set("ns", &[1; 9], b"v").unwrap_err().to_string(), "key of 9 bytes exceeds the maximum of 8 bytes");
    assert!(matches!(s.set("ns", b"k", &[2; 17]), Err(StorageError::ValueTooLarge { len: 17, max: 16 })));
    assert!(matches!(s.get("ns", &[1; 9]), Err(StorageError::KeyTooLarge { len: 9, max: 8 })));
    assert!(matches!(s.delete("ns", &[1; 9]), Err(StorageError::KeyTooLarge { .. })));
    assert_eq!(s.list_keys("ns", b"").unwrap(), vec![vec![1; 8]]);
    assert_eq!(usage(&s, "ns"), (24, 1));
}

#[test]
fn default_limits_are_4_kib_keys_and_1_mib_values() {
    let s = RedbBackend::in_memory().unwrap();
    assert_eq!((DEFAULT_MAX_KEY_SIZE, DEFAULT_MAX_VALUE_SIZE), (4096, 1 << 20));
    s.set("ns", &vec![0; DEFAULT_MAX_KEY_SIZE], &vec![0; DEFAULT_MAX_VALUE_SIZE]).unwrap();
    assert!(matches!(s.set("ns", b"k", &vec![0; DEFAULT_MAX_VALUE_SIZE + 1]), Err(StorageError::ValueTooLarge { .. })));
}

#[test]
fn a_write_over_the_byte_quota_fails_and_writes_nothing() {
    let s = RedbBackend::builder().default_quota(StorageQuota::new(10, 100)).in_memory().unwrap();
    s.set("ns", b"k", b"123456789").unwrap(); // 1 + 9 = 10 bytes: exactly the quota
    assert_eq!(usage(&s, "ns"), (10, 1));
    let err = s.set("ns", b"x", b"").unwrap_err();
    match err {
        StorageError::QuotaExceeded { namespace, resource, limit, requested } => {
            assert_eq!(namespace, "ns");
            assert_eq!(resource, QuotaResource::Bytes);
            assert_eq!((limit, requested), (10, 11));
        }
        other => panic!("expected QuotaExceeded, got {other:?}"),
    }
    let err = s.set("ns", b"k", b"1234567890").unwrap_err(); // overwrite growing by 1
    assert!(matches!(err, StorageError::QuotaExceeded { .. }));
    assert_eq!(s.get("ns", b"k").unwrap(), Some(b"123456789".to_vec()));
    assert_eq!(s.get("ns", b"x").unwrap(), None);
    assert_eq!(usage(&s, "ns"), (10, 1));
}

#[test]
fn a_write_over_the_key_quota_fails_and_writes_nothing() {
    let s = RedbBackend::builder().quota("ns", StorageQuota::new(u64::MAX, 2)).in_memory().unwrap();
    s.set("ns", b"a", b"1").unwrap();
    s.set("ns", b"b", b"1").unwrap();
    assert!(matches!(
        s.set("ns", b"c", b"1"),
        Err(StorageError::QuotaExceeded { resource: QuotaResource::Keys, limit: 2, requested: 3, .. })
    ));
    // Overwriting an existing key adds no key, so it is allowed at the limit.
    s.set("ns", b"a", b"2").unwrap();
    assert_eq!(s.list_keys("ns", b"").unwrap(), vec![b"a".to_vec(), b"b".to_vec()]);
    assert_eq!(usage(&s, "ns"), (4, 2));
    // Other namespaces use the default (unlimited) quota.
    for k in 0..5u8 {
        s.set("other", &[k], b"1").unwrap();
    }
    assert_eq!(s.usage("other").unwrap().quota, StorageQuota::UNLIMITED);
}

#[test]
fn usage_is_exact_after_set_overwrite_delete_and_transaction() {
    let s = RedbBackend::in_memory().unwrap();
    assert_eq!(usage(&s, "ns"), (0, 0));
    s.set("ns", b"ab", b"12345").unwrap();
    assert_eq!(usage(&s, "ns"), (7, 1));
    s.set("ns", b"ab", b"1").unwrap(); // shrink
    assert_eq!(usage(&s, "ns"), (3, 1));
    s.set("ns", b"ab", b"1234567890").unwrap(); // grow
    assert_eq!(usage(&s, "ns"), (12, 1));
    s.set("ns", b"c", b"").unwrap();
    assert_eq!(usage(&s, "ns"), (13, 2));
    s.delete("ns", b"missing").unwrap();
    assert_eq!(usage(&s, "ns"), (13, 2));
    s.delete("ns", b"ab").unwrap();
    assert_eq!(usage(&s, "ns"), (1, 1));

    let mut tx = s.transaction();
    for op in [
        StorageOperation::Set { namespace: "ns".into(), key: b"t1".to_vec(), value: b"xyz".to_vec() },
        StorageOperation::Set { namespace: "ns".into(), key: b"t1".to_vec(), value: b"x".to_vec() },
        StorageOperation::Delete { namespace: "ns".into(), key: b"c".to_vec() },
        StorageOperation::Set { namespace: "ns2".into(), key: b"k".to_vec(), value: b"vv".to_vec() },
    ] {
        tx.add_operation(op).unwrap();
    }
    tx.commit().unwrap();
    assert_eq!(usage(&s, "ns"), (3, 1));
    assert_eq!(usage(&s, "ns2"), (3, 1));
    s.delete("ns", b"t1").unwrap();
    assert_eq!(usage(&s, "ns"), (0, 0));
}

#[test]
fn a_lowered_quota_still_allows_shrinking_writes_but_not_growing_ones() {
    let s = RedbBackend::in_memory().unwrap();
    for k in 0..4u8 {
        s.set("ns", &[k], &[0; 9]).unwrap(); // 4 keys, 40 bytes
    }
    s.set_quota("ns", StorageQuota::new(20, 2)).unwrap();
    assert_eq!(s.usage("ns").unwrap().quota, StorageQuota::new(20, 2));
    // Growing (new key or bigger value) is refused...
    assert!(matches!(s.set("ns", &[9], b""), Err(StorageError::QuotaExceeded { .. })));
    assert!(matches!(s.set("ns", &[0], &[0; 10]), Err(StorageError::QuotaExceeded { .. })));
    // ...shrinking is allowed although the namespace stays over quota.
    s.set("ns", &[0], b"").unwrap();
    s.delete("ns", &[1]).unwrap();
    assert_eq!(usage(&s, "ns"), (21, 3));
}

#[test]
fn a_transaction_over_quota_in_one_namespace_writes_nothing_anywhere() {
    let s = RedbBackend::builder().quota("small", StorageQuota::new(4, 10)).in_memory().unwrap();
    let mut tx = s.transaction();
    tx.add_operation(StorageOperation::Set { namespace: "big".into(), key: b"k".to_vec(), value: vec![0; 100] })
        .unwrap();
    tx.add_operation(StorageOperation::Set { namespace: "small".into(), key: b"k".to_vec(), value: vec![0; 4] })
        .unwrap();
    assert!(matches!(
        tx.commit(),
        Err(StorageError::QuotaExceeded { ref namespace, .. }) if namespace == "small"
    ));
    assert_eq!(usage(&s, "big"), (0, 0));
    assert_eq!(s.get("big", b"k").unwrap(), None);
}

#[test]
fn usage_survives_reopen() {
    let dir = TempDir::new("quota-reopen");
    let path = dir.file("store.redb");
    {
        let s = RedbBackend::builder().default_quota(StorageQuota::new(100, 3)).open(&path).unwrap();
        s.set("ns", b"a", b"1234").unwrap();
        s.set("ns", b"b", b"12").unwrap();
    }
    let s = RedbBackend::builder().default_quota(StorageQuota::new(100, 3)).open(&path).unwrap();
    assert_eq!(usage(&s, "ns"), (8, 2));
    s.set("ns", b"c", b"").unwrap();
    assert!(matches!(s.set("ns", b"d", b""), Err(StorageError::QuotaExceeded { .. })));
}
