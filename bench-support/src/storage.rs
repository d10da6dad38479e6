//! Workload 6: storage operations through switchyard's `RedbBackend` against raw redb.
//!
//! Both sides use a file in a fresh temporary directory. "Durable" is one fsync'd redb commit
//! per write (`DurabilityMode::Immediate`; raw redb's default `Durability::Immediate`).
//! Group commit is measured twice: one writer (each write waits up to `max_delay` for
//! company) and [`GROUP_WRITERS`] concurrent writers (amortised time per write). Every read
//! checks the value it got and every listing checks its key count.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use redb::{Database, ReadableDatabase, TableDefinition};
use switchyard::{DurabilityMode, RedbBackend};

/// Keys listed by the `list_keys` operation.
pub const LIST_KEYS: usize = 1000;
/// Concurrent writers in the amortised group-commit measurement.
pub const GROUP_WRITERS: usize = 8;
/// Group-commit settings used by the bench.
pub const GROUP_COMMIT: DurabilityMode =
    DurabilityMode::GroupCommit { max_delay: Duration::from_millis(1), max_batch: GROUP_WRITERS };

const RAW_TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("raw");
const NS: &str = "bench";
const VALUE: &[u8] = &[7u8; 64];

/// A temporary directory removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates a fresh directory under the system temp dir.
    pub fn new(label: &str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("switchyard-bench-{label}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("temp dir");
        TempDir(path)
    }

    /// The directory.
    pub fn path(&self) -> &std::path::Path {
        &self.0
    }

    fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn key(i: u64) -> Vec<u8> {
    format!("key-{i:08}").into_bytes()
}

/// switchyard's storage backend on a file, with a namespace holding [`LIST_KEYS`] keys.
pub struct SwitchyardStore {
    store: RedbBackend,
    _dir: TempDir,
    next: u64,
}

impl SwitchyardStore {
    /// Opens a backend with `durability` and fills the listing namespace.
    pub fn new(durability: DurabilityMode) -> Self {
        let dir = TempDir::new("sy");
        let store = RedbBackend::builder().durability(durability).open(dir.file("db.redb")).expect("open");
        let mut txn = store.transaction();
        for i in 0..LIST_KEYS as u64 {
            txn.add_operation(switchyard::StorageOperation::Set {
                namespace: NS.into(),
                key: key(i),
                value: VALUE.to_vec(),
            })
            .expect("add");
        }
        txn.commit().expect("fill");
        SwitchyardStore { store, _dir: dir, next: 0 }
    }

    /// `iters` gets of existing keys.
    pub fn get(&mut self, iters: u64) -> Duration {
        let start = Instant::now();
        for i in 0..iters {
            let v = self.store.get(NS, &key(i % LIST_KEYS as u64)).expect("get");
            assert_eq!(v.as_deref(), Some(VALUE), "wrong value read");
        }
        start.elapsed()
    }

    /// `iters` sets of new keys from this thread.
    pub fn set(&mut self, iters: u64) -> Duration {
        let start = Instant::now();
        for _ in 0..iters {
            self.next += 1;
            self.store.set("writes", &key(self.next), VALUE).expect("set");
        }
        start.elapsed()
    }

    /// `iters` sets in all from [`GROUP_WRITERS`] threads; returns wall time.
    pub fn set_concurrent(&mut self, iters: u64) -> Duration {
        let per = iters.div_ceil(GROUP_WRITERS as u64);
        let base = self.next;
        self.next += per * GROUP_WRITERS as u64;
        let store = &self.store;
        let start = Instant::now();
        std::thread::scope(|s| {
            for w in 0..GROUP_WRITERS as u64 {
                s.spawn(move || {
                    for k in 0..per {
                        store.set("writes", &key(base + 1 + w * per + k), VALUE).expect("set");
                    }
                });
            }
        });
        start.elapsed()
    }

    /// `iters` listings of the [`LIST_KEYS`]-key namespace.
    pub fn list_keys(&mut self, iters: u64) -> Duration {
        let start = Instant::now();
        for _ in 0..iters {
            let keys = self.store.list_keys(NS, b"key-").expect("list");
            assert_eq!(keys.len(), LIST_KEYS, "wrong key count listed");
        }
        start.elapsed()
    }
}

/// Raw redb on a file: one table, keys prefixed with the namespace, as a floor.
pub struct RawRedb {
    db: Database,
    _dir: TempDir,
    next: u64,
}

fn raw_key(ns: &str, k: &[u8]) -> Vec<u8> {
    let mut full = Vec::with_capacity(ns.len() + 1 + k.len());
    full.extend_from_slice(ns.as_bytes());
    full.push(0);
    full.extend_from_slice(k);
    full
}

impl RawRedb {
    /// Creates the database and fills the listing namespace.
    pub fn new() -> Self {
        let dir = TempDir::new("raw");
        let db = Database::create(dir.file("raw.redb")).expect("create");
        let txn = db.begin_write().expect("write");
        {
            let mut table = txn.open_table(RAW_TABLE).expect("table");
            for i in 0..LIST_KEYS as u64 {
                table.insert(raw_key(NS, &key(i)).as_slice(), VALUE).expect("insert");
            }
        }
        txn.commit().expect("fill");
        RawRedb { db, _dir: dir, next: 0 }
    }

    /// `iters` gets of existing keys.
    pub fn get(&mut self, iters: u64) -> Duration {
        let start = Instant::now();
        for i in 0..iters {
            let txn = self.db.begin_read().expect("read");
            let table = txn.open_table(RAW_TABLE).expect("table");
            let v = table.get(raw_key(NS, &key(i % LIST_KEYS as u64)).as_slice()).expect("get");
            assert_eq!(v.map(|g| g.value().to_vec()).as_deref(), Some(VALUE), "wrong value read");
        }
        start.elapsed()
    }

    /// `iters` durable sets of new keys (one `Durability::Immediate` commit each).
    pub fn set(&mut self, iters: u64) -> Duration {
        let start = Instant::now();
        for _ in 0..iters {
            self.next += 1;
            let txn = self.db.begin_write().expect("write");
            {
                let mut table = txn.open_table(RAW_TABLE).expect("table");
                table.insert(raw_key("writes", &key(self.next)).as_slice(), VALUE).expect("insert");
            }
            txn.commit().expect("commit");
        }
        start.elapsed()
    }

    /// `iters` listings of the [`LIST_KEYS`]-key namespace (a range scan, keys copied out).
    pub fn list_keys(&mut self, iters: u64) -> Duration {
        let start = Instant::now();
        let lo = raw_key(NS, b"key-");
        let hi = raw_key(NS, b"key.");
        for _ in 0..iters {
            let txn = self.db.begin_read().expect("read");
            let table = txn.open_table(RAW_TABLE).expect("table");
            let keys: Vec<Vec<u8>> = table
                .range(lo.as_slice()..hi.as_slice())
                .expect("range")
                .map(|e| e.expect("entry").0.value()[NS.len() + 1..].to_vec())
                .collect();
            assert_eq!(keys.len(), LIST_KEYS, "wrong key count listed");
        }
        start.elapsed()
    }
}

impl Default for RawRedb {
    fn default() -> Self {
        Self::new()
    }
}
