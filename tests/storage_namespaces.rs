//! Namespace isolation: no namespace/key combination reaches another namespace's data,
//! including the `:` cases that break a `"component:<id>:" + key` string prefix.

mod storage_common;

use std::collections::BTreeMap;

use storage_common::XorShift;
use switchyard::{RedbBackend, StorageOperation};

#[test]
fn colon_in_namespace_or_key_never_collides() {
    let s = RedbBackend::in_memory().unwrap();
    // Pairs that all flatten to the same string under "component:<ns>:<key>".
    let pairs: [(&str, &[u8]); 4] = [("a:b", b"c"), ("a", b"b:c"), ("a:b:c", b""), ("a:", b":b:c")];
    for (i, (ns, key)) in pairs.iter().enumerate() {
        s.set(ns, key, &[i as u8]).unwrap();
    }
    for (i, (ns, key)) in pairs.iter().enumerate() {
        assert_eq!(s.get(ns, key).unwrap(), Some(vec![i as u8]), "{ns:?} {key:?}");
        assert_eq!(s.list_keys(ns, b"").unwrap(), vec![key.to_vec()], "{ns:?}");
    }
    // Overwriting or deleting through one pair leaves the others alone.
    s.set("a", b"b:c", b"overwritten").unwrap();
    s.delete("a:b", b"c").unwrap();
    assert_eq!(s.get("a:b", b"c").unwrap(), None);
    assert_eq!(s.get("a", b"b:c").unwrap(), Some(b"overwritten".to_vec()));
    assert_eq!(s.get("a:b:c", b"").unwrap(), Some(vec![2]));
    assert_eq!(s.get("a:", b":b:c").unwrap(), Some(vec![3]));
}

#[test]
fn component_prefix_style_namespaces_stay_isolated() {
    let s = RedbBackend::in_memory().unwrap();
    s.set("component:a", b"x", b"from a").unwrap();
    s.set("component", b"a:x", b"from component").unwrap();
    assert_eq!(s.get("component:a", b"x").unwrap(), Some(b"from a".to_vec()));
    assert_eq!(s.get("component", b"a:x").unwrap(), Some(b"from component".to_vec()));
    assert_eq!(s.list_keys("component", b"").unwrap(), vec![b"a:x".to_vec()]);
    assert_eq!(s.list_keys("component:a", b"").unwrap(), vec![b"x".to_vec()]);
}

#[test]
fn a_namespace_that_prefixes_another_lists_only_its_own_keys() {
    let s = RedbBackend::in_memory().unwrap();
    s.set("a", b"1", b"v").unwrap();
    s.set("ab", b"2", b"v").unwrap();
    s.set("a\0", b"3", b"v").unwrap();
    s.set("b", b"4", b"v").unwrap();
    assert_eq!(s.list_keys("a", b"").unwrap(), vec![b"1".to_vec()]);
    assert_eq!(s.list_keys("ab", b"").unwrap(), vec![b"2".to_vec()]);
    assert_eq!(s.list_keys("a\0", b"").unwrap(), vec![b"3".to_vec()]);
}

#[test]
fn same_key_in_two_namespaces_is_two_entries() {
    let s = RedbBackend::in_memory().unwrap();
    s.set("component:a", b"config", b"A").unwrap();
    s.set("component:b", b"config", b"B").unwrap();
    s.delete("component:a", b"config").unwrap();
    assert_eq!(s.get("component:a", b"config").unwrap(), None);
    assert_eq!(s.get("component:b", b"config").unwrap(), Some(b"B".to_vec()));
    assert_eq!(s.usage("component:a").unwrap().key_count, 0);
    assert_eq!(s.usage("component:b").unwrap().key_count, 1);
}

#[test]
fn transactions_across_namespaces_keep_them_isolated() {
    let s = RedbBackend::in_memory().unwrap();
    let mut tx = s.transaction();
    for ns in ["x:y", "x"] {
        tx.add_operation(StorageOperation::Set {
            namespace: ns.into(),
            key: b"y:k".to_vec(),
            value: ns.as_bytes().to_vec(),
        })
        .unwrap();
    }
    tx.commit().unwrap();
    assert_eq!(s.get("x:y", b"y:k").unwrap(), Some(b"x:y".to_vec()));
    assert_eq!(s.get("x", b"y:k").unwrap(), Some(b"x".to_vec()));
    assert_eq!(s.get("x", b"y:y:k").unwrap(), None);
}

/// Random operations over tiny alphabets full of separators, checked against a model map.
#[test]
fn random_namespaces_and_keys_behave_like_a_map_of_pairs() {
    let mut rng = XorShift::from_env_or_clock();
    let s = RedbBackend::in_memory().unwrap();
    let mut model: BTreeMap<(String, Vec<u8>), Vec<u8>> = BTreeMap::new();
    let ns_chars = ['a', ':', '\0', 'é', '/'];
    let key_bytes = [b'a', b':', 0u8, 0xff, b'/'];
    let pick_ns = |rng: &mut XorShift| -> String {
        let len = 1 + rng.below(3) as usize;
        (0..len).map(|_| ns_chars[rng.below(ns_chars.len() as u64) as usize]).collect()
    };
    let pick_key = |rng: &mut XorShift| -> Vec<u8> {
        let len = rng.below(4) as usize;
        (0..len).map(|_| key_bytes[rng.below(key_bytes.len() as u64) as usize]).collect()
    };
    for step in 0..300u32 {
        let ns = pick_ns(&mut rng);
        let key = pick_key(&mut rng);
        match rng.below(10) {
            0..=5 => {
                let value = step.to_be_bytes().to_vec();
                s.set(&ns, &key, &value).unwrap();
                model.insert((ns, key), value);
            }
            6..=7 => {
                s.delete(&ns, &key).unwrap();
                model.remove(&(ns, key));
            }
            _ => {
                let expected: Vec<Vec<u8>> =
                    model.keys().filter(|(n, k)| *n == ns && k.starts_with(&key)).map(|(_, k)| k.clone()).collect();
                assert_eq!(s.list_keys(&ns, &key).unwrap(), expected, "{ns:?} {key:?}");
            }
        }
    }
    for ((ns, key), value) in &model {
        assert_eq!(s.get(ns, key).unwrap().as_ref(), Some(value));
    }
    // Usage per namespace matches the model exactly.
    let mut per_ns: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for ((ns, key), value) in &model {
        let e = per_ns.entry(ns.as_str()).or_default();
        e.0 += (key.len() + value.len()) as u64;
        e.1 += 1;
    }
    for (ns, (bytes, keys)) in per_ns {
        let usage = s.usage(ns).unwrap();
        assert_eq!((usage.used_bytes, usage.key_count), (bytes, keys), "{ns:?}");
    }
}
