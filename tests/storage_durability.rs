//! Durability: reopen keeps committed data, group commit batches many callers into one fsync,
//! and the documented loss window of group commit, checked with a redb storage backend that
//! simulates a crash by keeping only what was fsynced.

mod storage_common;

use std::io;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use storage_common::TempDir;
use switchyard::{DurabilityMode, RedbBackend, StorageConfig, StorageError, StorageOperation};

/// How long a test waits for something that must happen before calling it a hang. Only ever
/// reached on failure; no test sleeps to let something happen.
const HANG: Duration = Duration::from_secs(60);

fn group(max_delay: Duration, max_batch: usize) -> StorageConfig {
    RedbBackend::builder().durability(DurabilityMode::GroupCommit { max_delay, max_batch })
}

// ---- reopen ----

#[test]
fn reopen_after_drop_keeps_committed_data() {
    let dir = TempDir::new("reopen-drop");
    let path = dir.file("store.redb");
    {
        let s = RedbBackend::open(&path).unwrap();
        s.set("ns", b"a", b"1").unwrap();
        s.set("ns", b"b", b"2").unwrap();
        s.delete("ns", b"b").unwrap();
        let mut tx = s.transaction();
        tx.add_operation(StorageOperation::Set {
            namespace: "other".into(),
            key: b"t".to_vec(),
            value: b"tx".to_vec(),
        })
        .unwrap();
        tx.commit().unwrap();
        let mut abandoned = s.transaction();
        abandoned
            .add_operation(StorageOperation::Set {
                namespace: "ns".into(),
                key: b"never".to_vec(),
                value: b"x".to_vec(),
            })
            .unwrap();
    }
    let s = RedbBackend::open(&path).unwrap();
    assert_eq!(s.list_keys("ns", b"").unwrap(), vec![b"a".to_vec()]);
    assert_eq!(s.get("other", b"t").unwrap(), Some(b"tx".to_vec()));
}

#[test]
fn reopen_after_close_keeps_committed_data_in_both_modes() {
    for config in [RedbBackend::builder(), group(Duration::from_millis(1), 1000)] {
        let dir = TempDir::new("reopen-close");
        let path = dir.file("store.redb");
        let s = config.clone().open(&path).unwrap();
        s.set("ns", b"k", b"v").unwrap();
        s.close().unwrap();
        let s = config.open(&path).unwrap();
        assert_eq!(s.get("ns", b"k").unwrap(), Some(b"v".to_vec()));
        assert_eq!(s.usage("ns").unwrap().key_count, 1);
    }
}

#[test]
fn opening_a_file_that_is_already_open_fails_with_already_open() {
    let dir = TempDir::new("already-open");
    let path = dir.file("store.redb");
    let _first = RedbBackend::open(&path).unwrap();
    assert!(matches!(RedbBackend::open(&path), Err(StorageError::AlreadyOpen(_))));
}

#[test]
fn dropping_a_group_commit_backend_makes_the_pending_batch_durable_and_releases_the_file() {
    let dir = TempDir::new("join");
    let path = dir.file("store.redb");
    // A window so long that only shutdown can close the batch.
    let s = group(Duration::from_secs(3600), 1000).open(&path).unwrap();
    let mut tx = s.transaction();
    tx.add_operation(StorageOperation::Set { namespace: "ns".into(), key: b"k".to_vec(), value: b"v".to_vec() })
        .unwrap();
    let committer = thread::spawn(move || tx.commit());

    // Gate: the transaction is committed (visible) and its caller waits for the batch.
    let start = Instant::now();
    while s.get("ns", b"k").unwrap().is_none() {
        assert!(start.elapsed() < HANG, "commit never became visible");
        thread::yield_now();
    }
    drop(s); // shuts the committer down, which makes the batch durable first
    committer.join().unwrap().unwrap();

    // If the committer thread (which holds the database) were still alive, this would fail
    // with AlreadyOpen.
    let s = RedbBackend::open(&path).unwrap();
    assert_eq!(s.get("ns", b"k").unwrap(), Some(b"v".to_vec()));
}

// ---- group commit with real files ----

#[test]
fn group_commit_callers_on_several_threads_are_all_durable_after_reopen() {
    let dir = TempDir::new("group-threads");
    let path = dir.file("store.redb");
    let threads = 4u8;
    let per_thread = 25u8;
    {
        let s = Arc::new(group(Duration::from_millis(2), 8).open(&path).unwrap());
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let s = Arc::clone(&s);
                thread::spawn(move || {
                    for i in 0..per_thread {
                        if i % 5 == 0 {
                            let mut tx = s.transaction();
                            for part in 0..3u8 {
                                tx.add_operation(StorageOperation::Set {
                                    namespace: format!("tx{t}"),
                                    key: vec![i, part],
                                    value: vec![t],
                                })
                                .unwrap();
                            }
                            tx.commit().unwrap();
                        } else {
                            s.set(&format!("t{t}"), &[i], &[t, i]).unwrap();
                        }
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        // Every caller returned, so everything is acknowledged; kill nothing, just drop.
    }
    let s = RedbBackend::open(&path).unwrap();
    for t in 0..threads {
        for i in 0..per_thread {
            if i % 5 == 0 {
                for part in 0..3u8 {
                    assert_eq!(s.get(&format!("tx{t}"), &[i, part]).unwrap(), Some(vec![t]));
                }
            } else {
                assert_eq!(s.get(&format!("t{t}"), &[i]).unwrap(), Some(vec![t, i]));
            }
        }
    }
}

// ---- crash simulation: only fsynced bytes survive ----

/// A redb storage backend in memory that remembers the image as of the last `sync_data`.
/// `crash_image()` is what a disk would hold after power loss if nothing unsynced survived.
#[derive(Debug, Clone, Default)]
struct SyncTracking(Arc<Mutex<Images>>);

#[derive(Debug, Default)]
struct Images {
    live: Vec<u8>,
    synced: Vec<u8>,
    syncs: u64,
    /// When set, `sync_data` fails with an I/O error (a dying disk).
    fail_syncs: bool,
}

impl SyncTracking {
    fn from_image(image: Vec<u8>) -> Self {
        SyncTracking(Arc::new(Mutex::new(Images { live: image.clone(), synced: image, syncs: 0, fail_syncs: false })))
    }

    fn crash_image(&self) -> Vec<u8> {
        self.0.lock().unwrap().synced.clone()
    }

    fn fail_syncs_from_now_on(&self) {
        self.0.lock().unwrap().fail_syncs = true;
    }

    fn syncs(&self) -> u64 {
        self.0.lock().unwrap().syncs
    }

    /// Opens what a crash at this moment would leave behind.
    fn reopen_after_crash(&self) -> RedbBackend {
        RedbBackend::builder().open_with_backend(SyncTracking::from_image(self.crash_image())).unwrap()
    }
}

fn out_of_range() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, "out of range")
}

impl redb::StorageBackend for SyncTracking {
    fn len(&self) -> Result<u64, io::Error> {
        Ok(self.0.lock().unwrap().live.len() as u64)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), io::Error> {
        let images = self.0.lock().unwrap();
        let start = usize::try_from(offset).map_err(|_| out_of_range())?;
        let src = images.live.get(start..start + out.len()).ok_or_else(out_of_range)?;
        out.copy_from_slice(src);
        Ok(())
    }

    fn set_len(&self, len: u64) -> Result<(), io::Error> {
        let len = usize::try_from(len).map_err(|_| out_of_range())?;
        self.0.lock().unwrap().live.resize(len, 0);
        Ok(())
    }

    fn sync_data(&self) -> Result<(), io::Error> {
        let mut images = self.0.lock().unwrap();
        if images.fail_syncs {
            return Err(io::Error::other("injected fsync failure"));
        }
        images.synced = images.live.clone();
        images.syncs += 1;
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), io::Error> {
        let mut images = self.0.lock().unwrap();
        let start = usize::try_from(offset).map_err(|_| out_of_range())?;
        let dst = images.live.get_mut(start..start + data.len()).ok_or_else(out_of_range)?;
        dst.copy_from_slice(data);
        Ok(())
    }
}

#[test]
fn immediate_mode_acknowledged_writes_survive_a_crash() {
    let disk = SyncTracking::default();
    let s = RedbBackend::builder().open_with_backend(disk.clone()).unwrap();
    for i in 0..5u8 {
        s.set("ns", &[i], &[i]).unwrap();
        let after = disk.reopen_after_crash();
        assert_eq!(after.list_keys("ns", b"").unwrap().len(), usize::from(i) + 1);
    }
}

#[test]
fn group_commit_acknowledged_writes_survive_a_crash() {
    let disk = SyncTracking::default();
    let s = group(Duration::from_millis(1), 4).open_with_backend(disk.clone()).unwrap();
    for i in 0..5u8 {
        s.set("ns", &[i], &[i]).unwrap();
        let after = disk.reopen_after_crash();
        assert_eq!(after.get("ns", &[i]).unwrap(), Some(vec![i]));
    }
}

/// The documented window: a group-committed write is visible to readers before its batch is
/// fsynced, and a crash in that window loses it (and the whole batch). Its caller has not been
/// acknowledged yet; once it is, the write survives.
#[test]
fn group_commit_loses_only_the_unacknowledged_batch_in_a_crash() {
    let disk = SyncTracking::default();
    {
        let s = RedbBackend::builder().open_with_backend(disk.clone()).unwrap();
        s.set("ns", b"before", b"1").unwrap();
    }
    // A window so long that only flush() closes the batch.
    let s = Arc::new(group(Duration::from_secs(3600), 1000).open_with_backend(disk.clone()).unwrap());

    let (acked_tx, acked_rx) = mpsc::channel();
    let writers: Vec<_> = (0..3u8)
        .map(|w| {
            let s = Arc::clone(&s);
            let acked = acked_tx.clone();
            thread::spawn(move || {
                let result = s.set("ns", &[w], b"in window");
                acked.send((w, result)).unwrap();
            })
        })
        .collect();

    // Gate: wait until all three writes are visible to a reader (they are committed but
    // their callers are still waiting for the fsync).
    let start = Instant::now();
    while s.list_keys("ns", b"").unwrap().len() < 4 {
        assert!(start.elapsed() < HANG, "writes never became visible");
        thread::yield_now();
    }
    assert!(acked_rx.try_recv().is_err(), "no caller acknowledged before the fsync");

    // A crash now loses the whole batch, and nothing older.
    let crashed = disk.reopen_after_crash();
    assert_eq!(crashed.list_keys("ns", b"").unwrap(), vec![b"before".to_vec()]);
    assert_eq!(crashed.usage("ns").unwrap().key_count, 1);
    drop(crashed);

    // Closing the batch acknowledges every caller, and then their writes survive a crash.
    s.flush().unwrap();
    for _ in 0..3 {
        let (_, result) = acked_rx.recv_timeout(HANG).unwrap();
        result.unwrap();
    }
    for w in writers {
        w.join().unwrap();
    }
    let crashed = disk.reopen_after_crash();
    assert_eq!(crashed.list_keys("ns", b"").unwrap().len(), 4);
    assert_eq!(crashed.usage("ns").unwrap().key_count, 4);
}

#[test]
fn group_commit_closes_a_full_batch_without_waiting_for_the_delay() {
    let disk = SyncTracking::default();
    let batch = 4;
    let s = Arc::new(group(Duration::from_secs(3600), batch).open_with_backend(disk.clone()).unwrap());
    let syncs_before = disk.syncs();
    let (done_tx, done_rx) = mpsc::channel();
    for w in 0..batch as u8 {
        let s = Arc::clone(&s);
        let done = done_tx.clone();
        thread::spawn(move || done.send(s.set("ns", &[w], b"v")).unwrap());
    }
    for _ in 0..batch {
        done_rx.recv_timeout(HANG).expect("a full batch is committed without the hour-long delay").unwrap();
    }
    assert_eq!(disk.reopen_after_crash().list_keys("ns", b"").unwrap().len(), batch);
    let syncs = disk.syncs() - syncs_before;
    assert!(
        syncs < batch as u64 * 2,
        "{batch} commits took {syncs} fsyncs; immediate mode would take at least {batch}"
    );
}

#[test]
fn group_commit_closes_a_batch_after_max_delay() {
    let disk = SyncTracking::default();
    let max_delay = Duration::from_millis(30);
    let s = group(max_delay, 1000).open_with_backend(disk.clone()).unwrap();
    let start = Instant::now();
    s.set("ns", b"alone", b"v").unwrap();
    let waited = start.elapsed();
    assert!(waited >= max_delay, "returned after {waited:?}, before the batch was due");
    assert_eq!(disk.reopen_after_crash().get("ns", b"alone").unwrap(), Some(b"v".to_vec()));
}

#[test]
fn group_commit_shares_fsyncs_between_concurrent_callers() {
    // Same workload in both modes on the sync-tracking disk; count fsyncs.
    let run = |config: StorageConfig| {
        let disk = SyncTracking::default();
        let s = Arc::new(config.open_with_backend(disk.clone()).unwrap());
        let before = disk.syncs();
        let handles: Vec<_> = (0..4u8)
            .map(|t| {
                let s = Arc::clone(&s);
                thread::spawn(move || {
                    for i in 0..10u8 {
                        s.set("ns", &[t, i], b"v").unwrap();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(disk.reopen_after_crash().list_keys("ns", b"").unwrap().len(), 40);
        disk.syncs() - before
    };
    let immediate = run(RedbBackend::builder());
    // Four threads, each with one write in flight, and a batch of four: every batch fills
    // (the delay is never what closes it), so 40 writes take exactly 10 durable commits.
    let grouped = run(group(Duration::from_secs(10), 4));
    eprintln!("40 writes from 4 threads: {immediate} fsyncs immediate, {grouped} grouped");
    assert!(grouped * 2 <= immediate, "group commit used {grouped} fsyncs, immediate {immediate}");
}

#[test]
fn writes_that_change_nothing_do_not_fsync() {
    let disk = SyncTracking::default();
    let s = RedbBackend::builder().open_with_backend(disk.clone()).unwrap();
    let before = disk.syncs();
    s.delete("ns", b"missing").unwrap();
    s.transaction().commit().unwrap();
    assert_eq!(disk.syncs(), before);
    s.set("ns", b"k", b"v").unwrap();
    assert!(disk.syncs() > before);
}

#[test]
fn a_failed_fsync_in_immediate_mode_is_an_io_error_and_acknowledges_nothing() {
    let disk = SyncTracking::default();
    let s = RedbBackend::builder().open_with_backend(disk.clone()).unwrap();
    s.set("ns", b"kept", b"1").unwrap();
    disk.fail_syncs_from_now_on();
    let err = s.set("ns", b"lost", b"1").unwrap_err();
    assert!(matches!(err, StorageError::Io(_)), "{err:?}");
    // The disk holds the last acknowledged state.
    let crashed = disk.reopen_after_crash();
    assert_eq!(crashed.list_keys("ns", b"").unwrap(), vec![b"kept".to_vec()]);
}

#[test]
fn a_failed_group_fsync_reports_not_durable_to_every_caller_in_the_batch() {
    let disk = SyncTracking::default();
    let batch = 3;
    let s = Arc::new(group(Duration::from_secs(3600), batch).open_with_backend(disk.clone()).unwrap());
    disk.fail_syncs_from_now_on();
    let (done_tx, done_rx) = mpsc::channel();
    for w in 0..batch as u8 {
        let s = Arc::clone(&s);
        let done = done_tx.clone();
        thread::spawn(move || done.send(s.set("ns", &[w], b"v")).unwrap());
    }
    for _ in 0..batch {
        let result = done_rx.recv_timeout(HANG).expect("caller answered");
        match result {
            Err(StorageError::NotDurable(cause)) => {
                assert!(matches!(*cause, StorageError::Io(_)), "{cause:?}");
            }
            other => panic!("expected NotDurable, got {other:?}"),
        }
    }
    // None of the batch reached the disk.
    let crashed = disk.reopen_after_crash();
    assert!(crashed.list_keys("ns", b"").unwrap().is_empty());
}
