//! The one door through which the concurrency core reaches atomics, locks, channels, maps
//! and threads.
//!
//! Normal builds get `std` atomics, `parking_lot` locks, `crossbeam-channel` queues and a
//! sharded `DashMap`. Under `RUSTFLAGS="--cfg loom"` the same names resolve to loom's
//! instrumented primitives and to small loom-visible stand-ins for the crossbeam channel and
//! the DashMap (loom cannot see inside those crates), so the loom models in `loom-tests/`
//! explore the real routing, scheduling and shutdown code rather than a copy of it.
//!
//! The stand-ins keep the exact contract the core relies on: a bounded channel whose
//! `try_send` hands the value back when full, an unbounded channel, and a map whose reads
//! exclude concurrent removal of the same key.

#[cfg(not(loom))]
pub(crate) use std::sync::Arc;
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

#[cfg(loom)]
pub(crate) use loom::sync::Arc;
#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Statistics counters.
///
/// They are plain `std` atomics in every build, loom included: they carry no
/// synchronization (every access is `Relaxed`) and are only read after the threads that
/// wrote them were joined, so letting loom explore their interleavings would only grow the
/// state space without checking anything.
pub(crate) mod stat {
    pub(crate) use std::sync::atomic::AtomicU64 as StatCounter;
}

/// Keeps a value on cache lines of its own (128 bytes: two lines, as adjacent-line
/// prefetchers pull pairs), so writes by one thread to it do not slow reads or writes of
/// neighbouring fields by another thread (false sharing).
#[repr(align(128))]
#[derive(Default)]
pub(crate) struct CacheAligned<T>(pub(crate) T);

impl<T> std::ops::Deref for CacheAligned<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// A gate a sender holds shared for one push and a closer passes exclusively once, after
/// setting `CLOSED` (see `docs/design.md`, "Pinned and counted senders"): afterwards every
/// sender that held it either saw `CLOSED` or finished its push. What the registry's shard
/// lock is to a routed send, this is to a send through a `ComponentRef`; its lock word is
/// touched by senders and closers only, never by the component's worker.
pub(crate) struct Gate {
    #[cfg(not(loom))]
    lock: parking_lot::RwLock<()>,
    #[cfg(loom)]
    lock: loom::sync::RwLock<()>,
}

/// A sender's hold on a [`Gate`], for one push.
#[cfg(not(loom))]
pub(crate) type GateHold<'a> = parking_lot::RwLockReadGuard<'a, ()>;
#[cfg(loom)]
pub(crate) type GateHold<'a> = loom::sync::RwLockReadGuard<'a, ()>;

impl Gate {
    pub(crate) fn new() -> Self {
        #[cfg(not(loom))]
        let lock = parking_lot::RwLock::new(());
        #[cfg(loom)]
        let lock = loom::sync::RwLock::new(());
        Self { lock }
    }

    /// A sender's hold, for the length of one push.
    #[inline]
    pub(crate) fn hold(&self) -> GateHold<'_> {
        #[cfg(not(loom))]
        return self.lock.read();
        #[cfg(loom)]
        return self.lock.read().unwrap_or_else(std::sync::PoisonError::into_inner);
    }

    /// The closer's pass: waits for the senders holding the gate now.
    pub(crate) fn pass(&self) {
        #[cfg(not(loom))]
        drop(self.lock.write());
        #[cfg(loom)]
        drop(self.lock.write().unwrap_or_else(std::sync::PoisonError::into_inner));
    }
}

/// Declares a thread-local of the core: std's `thread_local!` (const-initialised) in normal
/// builds, loom's under loom. Loom runs model threads as coroutines on one OS thread, so a
/// std thread-local would be shared by every model thread and hide per-thread state.
#[cfg(not(loom))]
macro_rules! core_thread_local {
    ($(#[$attr:meta])* static $name:ident: $t:ty = $init:expr;) => {
        std::thread_local! { $(#[$attr])* static $name: $t = const { $init }; }
    };
}
#[cfg(loom)]
macro_rules! core_thread_local {
    ($(#[$attr:meta])* static $name:ident: $t:ty = $init:expr;) => {
        loom::thread_local! { $(#[$attr])* static $name: $t = $init; }
    };
}
pub(crate) use core_thread_local;

/// A value made on first use, or up front: std's `OnceLock` in normal builds (a lazy
/// mailbox's queue is allocated by the first push, so an idle component costs no slots;
/// every mailbox's outcome lane is allocated by its first outcome).
///
/// Under loom the value is made at once, when the cell is created: loom runs model
/// threads as coroutines on one OS thread, and a thread switched out inside `OnceLock`'s
/// initialiser would leave the next caller blocked on a futex no model thread can release.
/// Making it up front removes only the race between two first users, which `OnceLock`
/// settles (its initialiser runs once and completes before any `get` returns it: std's
/// guarantee, outside what the models check, as crossbeam's internals are); everything
/// done with the value afterwards is the same.
pub(crate) struct Lazy<T> {
    #[cfg(not(loom))]
    cell: std::sync::OnceLock<T>,
    #[cfg(loom)]
    value: T,
}

impl<T> Lazy<T> {
    /// An empty cell (under loom: holding `make()` already).
    #[cfg_attr(not(loom), allow(unused_variables))]
    pub(crate) fn new(make: impl FnOnce() -> T) -> Self {
        #[cfg(not(loom))]
        return Self { cell: std::sync::OnceLock::new() };
        #[cfg(loom)]
        return Self { value: make() };
    }

    /// A cell holding `value` already.
    pub(crate) fn ready(value: T) -> Self {
        #[cfg(not(loom))]
        return Self { cell: std::sync::OnceLock::from(value) };
        #[cfg(loom)]
        return Self { value };
    }

    /// The value, if made.
    #[inline]
    pub(crate) fn get(&self) -> Option<&T> {
        #[cfg(not(loom))]
        return self.cell.get();
        #[cfg(loom)]
        return Some(&self.value);
    }

    /// The value, made now by `make` if no one made it yet.
    #[inline]
    #[cfg_attr(loom, allow(unused_variables))]
    pub(crate) fn get_or_init(&self, make: impl FnOnce() -> T) -> &T {
        #[cfg(not(loom))]
        return self.cell.get_or_init(make);
        #[cfg(loom)]
        return &self.value;
    }
}

/// Hints for spin loops; loom needs an explicit yield to make progress in one.
pub(crate) fn spin_hint() {
    #[cfg(not(loom))]
    std::hint::spin_loop();
    #[cfg(loom)]
    loom::thread::yield_now();
}

/// Gives up the rest of the time slice.
pub(crate) fn yield_now() {
    #[cfg(not(loom))]
    std::thread::yield_now();
    #[cfg(loom)]
    loom::thread::yield_now();
}

#[cfg(not(loom))]
pub(crate) use lock::MutexGuard;
pub(crate) use lock::{Condvar, Mutex};
/// Reader-writer lock, used only by storage (compiled out under loom).
#[cfg(not(loom))]
pub(crate) use parking_lot::RwLock;

#[cfg(not(loom))]
mod lock {
    pub(crate) use parking_lot::{Condvar, Mutex, MutexGuard};
}

#[cfg(loom)]
mod lock {
    //! parking_lot-shaped wrappers over loom's std-shaped `Mutex` and `Condvar`.

    use std::ops::{Deref, DerefMut};

    pub(crate) struct Mutex<T>(loom::sync::Mutex<T>);

    pub(crate) struct MutexGuard<'a, T>(Option<loom::sync::MutexGuard<'a, T>>);

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Self {
            Self(loom::sync::Mutex::new(value))
        }

        pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
            MutexGuard(Some(self.0.lock().unwrap_or_else(|e| e.into_inner())))
        }

        pub(crate) fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
            self.0.try_lock().ok().map(|g| MutexGuard(Some(g)))
        }
    }

    impl<T> Deref for MutexGuard<'_, T> {
        type Target = T;
        fn deref(&self) -> &T {
            self.0.as_ref().expect("guard present outside of a condvar wait")
        }
    }

    impl<T> DerefMut for MutexGuard<'_, T> {
        fn deref_mut(&mut self) -> &mut T {
            self.0.as_mut().expect("guard present outside of a condvar wait")
        }
    }

    pub(crate) struct Condvar(loom::sync::Condvar);

    /// The result of [`Condvar::wait_until`] under loom: never a timeout.
    pub(crate) struct WaitResult;

    impl WaitResult {
        pub(crate) fn timed_out(&self) -> bool {
            false
        }
    }

    impl Condvar {
        pub(crate) fn new() -> Self {
            Self(loom::sync::Condvar::new())
        }

        pub(crate) fn wait<T>(&self, guard: &mut MutexGuard<'_, T>) {
            let inner = guard.0.take().expect("guard present");
            guard.0 = Some(self.0.wait(inner).unwrap_or_else(|e| e.into_inner()));
        }

        /// Loom does not model time: this waits like [`Condvar::wait`] and never times out,
        /// so a protocol that relies on a timed wait to recover from a lost wake-up shows up
        /// as a deadlock in the models.
        pub(crate) fn wait_until<T>(&self, guard: &mut MutexGuard<'_, T>, _deadline: std::time::Instant) -> WaitResult {
            self.wait(guard);
            WaitResult
        }

        pub(crate) fn notify_one(&self) {
            self.0.notify_one();
        }

        pub(crate) fn notify_all(&self) {
            self.0.notify_all();
        }
    }
}

/// Channels: crossbeam's in normal builds, a loom-visible `Mutex<VecDeque>` under loom.
pub(crate) mod channel {
    #[cfg(not(loom))]
    pub(crate) use crossbeam_channel::{Receiver, Sender, TrySendError, bounded, unbounded};

    #[cfg(loom)]
    pub(crate) use loom_channel::{Receiver, Sender, TrySendError, bounded, unbounded};

    #[cfg(loom)]
    mod loom_channel {
        use std::collections::VecDeque;

        use super::super::{Arc, Mutex};

        struct Shared<T> {
            queue: Mutex<VecDeque<T>>,
            cap: usize,
        }

        pub(crate) struct Sender<T>(Arc<Shared<T>>);
        pub(crate) struct Receiver<T>(Arc<Shared<T>>);

        impl<T> Clone for Sender<T> {
            fn clone(&self) -> Self {
                Self(self.0.clone())
            }
        }

        impl<T> Clone for Receiver<T> {
            fn clone(&self) -> Self {
                Self(self.0.clone())
            }
        }

        #[derive(Debug)]
        pub(crate) enum TrySendError<T> {
            Full(T),
            #[allow(dead_code)]
            Disconnected(T),
        }

        #[derive(Debug)]
        pub(crate) enum TryRecvError {
            Empty,
            #[allow(dead_code)]
            Disconnected,
        }

        pub(crate) fn bounded<T>(cap: usize) -> (Sender<T>, Receiver<T>) {
            let shared = Arc::new(Shared { queue: Mutex::new(VecDeque::new()), cap });
            (Sender(shared.clone()), Receiver(shared))
        }

        pub(crate) fn unbounded<T>() -> (Sender<T>, Receiver<T>) {
            bounded(usize::MAX)
        }

        impl<T> Sender<T> {
            pub(crate) fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
                let mut q = self.0.queue.lock();
                if q.len() >= self.0.cap {
                    return Err(TrySendError::Full(value));
                }
                q.push_back(value);
                Ok(())
            }

            pub(crate) fn send(&self, value: T) -> Result<(), TrySendError<T>> {
                self.try_send(value)
            }

            pub(crate) fn len(&self) -> usize {
                self.0.queue.lock().len()
            }
        }

        impl<T> Receiver<T> {
            pub(crate) fn try_recv(&self) -> Result<T, TryRecvError> {
                self.0.queue.lock().pop_front().ok_or(TryRecvError::Empty)
            }

            pub(crate) fn is_empty(&self) -> bool {
                self.0.queue.lock().is_empty()
            }

            pub(crate) fn len(&self) -> usize {
                self.0.queue.lock().len()
            }
        }
    }
}

/// A concurrent hash map: sharded `DashMap` normally, one loom `Mutex<HashMap>` under loom.
///
/// Reads run a closure while the entry is pinned (a shard read lock for DashMap), so a
/// reader and a concurrent `remove` of the same key are ordered: the reader either sees the
/// value or does not, and the remover knows no reader still uses it when `remove` returns.
pub(crate) mod map {
    use std::borrow::Borrow;
    use std::hash::{BuildHasher, Hash};

    #[cfg(not(loom))]
    pub(crate) struct ShardedMap<K, V, S> {
        inner: dashmap::DashMap<K, V, S>,
    }

    /// A pinned value of a [`ShardedMap`].
    #[cfg(not(loom))]
    pub(crate) struct MapRef<'a, K, V, S>(dashmap::mapref::one::Ref<'a, K, V>, std::marker::PhantomData<S>);

    #[cfg(not(loom))]
    impl<K: Eq + Hash, V, S: BuildHasher> std::ops::Deref for MapRef<'_, K, V, S> {
        type Target = V;
        fn deref(&self) -> &V {
            self.0.value()
        }
    }

    #[cfg(not(loom))]
    impl<K: Eq + Hash, V, S: BuildHasher + Clone + Default> ShardedMap<K, V, S> {
        pub(crate) fn new() -> Self {
            Self { inner: dashmap::DashMap::with_hasher(S::default()) }
        }

        /// Runs `f` on the value for `key` while it cannot be removed.
        pub(crate) fn with<Q, R>(&self, key: &Q, f: impl FnOnce(&V) -> R) -> Option<R>
        where
            K: Borrow<Q>,
            Q: Hash + Eq + ?Sized,
        {
            self.inner.get(key).map(|r| f(r.value()))
        }

        /// Pins the value for `key` (a shard read lock) until the returned guard drops.
        /// The key is only borrowed for the lookup itself.
        pub(crate) fn get<Q>(&self, key: &Q) -> Option<MapRef<'_, K, V, S>>
        where
            K: Borrow<Q>,
            Q: Hash + Eq + ?Sized,
        {
            self.inner.get(key).map(|r| MapRef(r, std::marker::PhantomData))
        }

        /// Inserts only if `key` is absent; hands `value` back otherwise.
        pub(crate) fn insert_new(&self, key: K, value: V) -> Result<(), V> {
            match self.inner.entry(key) {
                dashmap::Entry::Occupied(_) => Err(value),
                dashmap::Entry::Vacant(v) => {
                    v.insert(value);
                    Ok(())
                }
            }
        }

        /// Runs `f` on the value for `key`, inserting `make()` first if absent.
        pub(crate) fn upsert<R>(&self, key: K, make: impl FnOnce() -> V, f: impl FnOnce(&mut V) -> R) -> R {
            let mut entry = self.inner.entry(key).or_insert_with(make);
            f(entry.value_mut())
        }

        /// Inserts `value` for `key` if the key is absent or `replace` approves of the value
        /// there (which it returns); otherwise hands `value` back. One critical section.
        #[cfg(feature = "cluster")]
        pub(crate) fn insert_or_replace(
            &self,
            key: K,
            value: V,
            replace: impl FnOnce(&V) -> bool,
        ) -> Result<Option<V>, V> {
            match self.inner.entry(key) {
                dashmap::Entry::Occupied(mut o) => {
                    if replace(o.get()) {
                        Ok(Some(o.insert(value)))
                    } else {
                        Err(value)
                    }
                }
                dashmap::Entry::Vacant(v) => {
                    v.insert(value);
                    Ok(None)
                }
            }
        }

        /// Runs `f` on the value for `key` with exclusive access; `f` returns whether to
        /// keep the entry. The update and the removal are one step under the shard's write
        /// lock: nothing can land in the entry between them.
        pub(crate) fn update_or_remove<Q>(&self, key: &Q, f: impl FnOnce(&mut V) -> bool)
        where
            K: Borrow<Q>,
            Q: Hash + Eq + ?Sized,
        {
            self.inner.remove_if_mut(key, |_, v| !f(v));
        }

        /// Removes the entry for `key` if `f` says so; `f` sees the value under the shard's
        /// write lock.
        pub(crate) fn remove_if<Q>(&self, key: &Q, f: impl FnOnce(&V) -> bool) -> Option<V>
        where
            K: Borrow<Q>,
            Q: Hash + Eq + ?Sized,
        {
            self.inner.remove_if(key, |_, v| f(v)).map(|(_, v)| v)
        }

        /// Keeps the entries for which `f` returns true (`f` may change the value).
        pub(crate) fn retain(&self, f: impl FnMut(&K, &mut V) -> bool) {
            self.inner.retain(f);
        }

        /// Waits until no reader pins a value in `key`'s shard (takes the shard's write
        /// lock once). Readers that pin the key later see everything this thread did
        /// before the call. DashMap's `get_mut` write-locks the shard before looking the
        /// key up, so this works whether or not the key is present.
        pub(crate) fn barrier<Q>(&self, key: &Q)
        where
            K: Borrow<Q>,
            Q: Hash + Eq + ?Sized,
        {
            drop(self.inner.get_mut(key));
        }

        pub(crate) fn len(&self) -> usize {
            self.inner.len()
        }

        /// Maps every value out (for rare whole-map walks such as shutdown).
        pub(crate) fn values_with<R>(&self, mut f: impl FnMut(&V) -> R) -> Vec<R> {
            self.inner.iter().map(|r| f(r.value())).collect()
        }

        /// Removes and returns every entry.
        pub(crate) fn drain(&self) -> Vec<(K, V)>
        where
            K: Clone,
        {
            let keys: Vec<K> = self.inner.iter().map(|r| r.key().clone()).collect();
            keys.into_iter().filter_map(|k| self.inner.remove(&k)).collect()
        }
    }

    /// The loom stand-in, shaped like DashMap: shards of a `HashMap` behind loom
    /// `RwLock`s, the shard picked from the key's hash. Reads take the shard's read lock
    /// (two readers of one key overlap, as in DashMap), writes and the barrier its write
    /// lock, and every operation locks exactly what DashMap's does, so the stand-in adds no
    /// ordering the real map lacks between operations on the same shard. Keys in different
    /// DashMap shards share no lock; here two keys may share a stand-in shard and then
    /// exclude each other, which the real map only does when they share a shard too. The
    /// models use two or three keys over [`LOOM_SHARDS`] shards.
    #[cfg(loom)]
    pub(crate) struct ShardedMap<K, V, S> {
        shards: Vec<loom::sync::RwLock<std::collections::HashMap<K, V, S>>>,
        hasher: S,
    }

    /// Shards of the loom stand-in.
    #[cfg(loom)]
    const LOOM_SHARDS: usize = 16;

    /// A pinned value: the shard's read lock and the (cloned) key of the entry.
    #[cfg(loom)]
    pub(crate) struct MapRef<'a, K, V, S> {
        guard: loom::sync::RwLockReadGuard<'a, std::collections::HashMap<K, V, S>>,
        key: K,
    }

    #[cfg(loom)]
    impl<K: Eq + Hash, V, S: BuildHasher> std::ops::Deref for MapRef<'_, K, V, S> {
        type Target = V;
        fn deref(&self) -> &V {
            self.guard.get(&self.key).expect("pinned entry")
        }
    }

    #[cfg(loom)]
    impl<K: Eq + Hash, V, S: BuildHasher + Clone + Default> ShardedMap<K, V, S> {
        pub(crate) fn new() -> Self {
            let hasher = S::default();
            let shards = (0..LOOM_SHARDS)
                .map(|_| loom::sync::RwLock::new(std::collections::HashMap::with_hasher(hasher.clone())))
                .collect();
            Self { shards, hasher }
        }

        fn shard<Q: Hash + ?Sized>(&self, key: &Q) -> &loom::sync::RwLock<std::collections::HashMap<K, V, S>> {
            // DashMap also picks the shard from the key's hash (its high bits).
            let h = self.hasher.hash_one(key);
            &self.shards[(h >> 32) as usize % LOOM_SHARDS]
        }

        fn read<Q: Hash + ?Sized>(
            &self,
            key: &Q,
        ) -> loom::sync::RwLockReadGuard<'_, std::collections::HashMap<K, V, S>> {
            self.shard(key).read().unwrap_or_else(|e| e.into_inner())
        }

        fn write<Q: Hash + ?Sized>(
            &self,
            key: &Q,
        ) -> loom::sync::RwLockWriteGuard<'_, std::collections::HashMap<K, V, S>> {
            self.shard(key).write().unwrap_or_else(|e| e.into_inner())
        }

        pub(crate) fn with<Q, R>(&self, key: &Q, f: impl FnOnce(&V) -> R) -> Option<R>
        where
            K: Borrow<Q>,
            Q: Hash + Eq + ?Sized,
        {
            self.read(key).get(key).map(f)
        }

        pub(crate) fn get<Q>(&self, key: &Q) -> Option<MapRef<'_, K, V, S>>
        where
            K: Borrow<Q> + Clone,
            Q: Hash + Eq + ?Sized,
        {
            let guard = self.read(key);
            let key = guard.get_key_value(key)?.0.clone();
            Some(MapRef { guard, key })
        }

        pub(crate) fn insert_new(&self, key: K, value: V) -> Result<(), V> {
            let mut map = self.write(&key);
            if map.contains_key(&key) {
                return Err(value);
            }
            map.insert(key, value);
            Ok(())
        }

        pub(crate) fn upsert<R>(&self, key: K, make: impl FnOnce() -> V, f: impl FnOnce(&mut V) -> R) -> R {
            let mut map = self.write(&key);
            f(map.entry(key).or_insert_with(make))
        }

        /// One critical section, as DashMap's `remove_if_mut` holds the shard's write lock
        /// across the update and the removal.
        pub(crate) fn update_or_remove<Q>(&self, key: &Q, f: impl FnOnce(&mut V) -> bool)
        where
            K: Borrow<Q>,
            Q: Hash + Eq + ?Sized,
        {
            let mut map = self.write(key);
            if let Some(v) = map.get_mut(key) {
                if !f(v) {
                    map.remove(key);
                }
            }
        }

        /// Used only by a deliberately broken variant (`Fault::SplitUnsubscribe`).
        pub(crate) fn update<Q>(&self, key: &Q, f: impl FnOnce(&mut V))
        where
            K: Borrow<Q>,
            Q: Hash + Eq + ?Sized,
        {
            if let Some(v) = self.write(key).get_mut(key) {
                f(v);
            }
        }

        pub(crate) fn remove_if<Q>(&self, key: &Q, f: impl FnOnce(&V) -> bool) -> Option<V>
        where
            K: Borrow<Q>,
            Q: Hash + Eq + ?Sized,
        {
            let mut map = self.write(key);
            if map.get(key).is_some_and(f) { map.remove(key) } else { None }
        }

        pub(crate) fn remove<Q>(&self, key: &Q) -> Option<V>
        where
            K: Borrow<Q>,
            Q: Hash + Eq + ?Sized,
        {
            self.write(key).remove(key)
        }

        /// Shard by shard, as DashMap's `retain`.
        pub(crate) fn retain(&self, mut f: impl FnMut(&K, &mut V) -> bool) {
            for shard in &self.shards {
                shard.write().unwrap_or_else(|e| e.into_inner()).retain(|k, v| f(k, v));
            }
        }

        pub(crate) fn barrier<Q>(&self, key: &Q)
        where
            K: Borrow<Q>,
            Q: Hash + Eq + ?Sized,
        {
            drop(self.write(key));
        }

        pub(crate) fn len(&self) -> usize {
            self.shards.iter().map(|s| s.read().unwrap_or_else(|e| e.into_inner()).len()).sum()
        }

        pub(crate) fn values_with<R>(&self, mut f: impl FnMut(&V) -> R) -> Vec<R> {
            let mut out = Vec::new();
            for shard in &self.shards {
                out.extend(shard.read().unwrap_or_else(|e| e.into_inner()).values().map(&mut f));
            }
            out
        }

        pub(crate) fn drain(&self) -> Vec<(K, V)>
        where
            K: Clone,
        {
            let mut out = Vec::new();
            for shard in &self.shards {
                out.extend(shard.write().unwrap_or_else(|e| e.into_inner()).drain());
            }
            out
        }
    }
}
