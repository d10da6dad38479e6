//! The compile cache: components compiled by a host's engine, kept on disk as wasmtime's
//! own serialized artifacts (one file per component and engine configuration), each checked
//! against a digest before wasmtime reads it back.
//!
//! Guests built by real toolchains are large, and Cranelift's time grows with them; a host
//! with a cache directory ([`crate::WasmConfig::cache_dir`]) compiles a component once per
//! engine configuration, and every later load of the same bytes, in this process or another,
//! reads the compiled code instead.
//!
//! # wasmtime's serialized artifacts, not wasmtime's `cache` feature
//!
//! wasmtime 48.0.8 offers two ways to keep compiled code. Its `cache` feature
//! (`Config::cache`, the `wasmtime-internal-cache` crate) does cover `Component::new`
//! (`CodeBuilder::compile_component` goes through `compile_cached` in
//! `src/compile/runtime.rs`), but on a hit it hands the bytes it found under the key straight
//! to wasmtime's loader: nothing checks a digest of them, so only wasmtime's header check
//! stands between a damaged file and code that will be executed, and there is no hook to
//! check one in between. It also does not tell the caller whether a load hit, and it brings a
//! zstd build, a TOML configuration file and a background cleanup thread. So this cache uses
//! `Component::serialize` and `Component::deserialize`, keyed the way wasmtime keys its own
//! cache (SHA-256 over the engine's `precompile_compatibility_hash` and the component
//! bytes), and verifies each entry before the `unsafe` call.
//!
//! # An entry
//!
//! One file per key, `<key>.entry`, where the key is the hex SHA-256 of a tag naming this
//! layout, the SHA-256 of the engine's precompile compatibility hash (compiler target,
//! flags and CPU features, tunables such as fuel metering and epoch interruption, wasm
//! features, the wasmtime version) and the component's binary bytes. The file is a header of
//! [`HEADER_LEN`] bytes (the magic `switchyard-cc-1\n`, the key, the SHA-256 of the
//! artifact, the artifact's length as a little-endian `u64`) followed by the artifact:
//! `Component::serialize`'s bytes, unchanged. Without its header an entry is a `.cwasm` that
//! wasmtime itself reads; the header is only what wasmtime's format does not carry (a digest
//! of the whole, and the key it was made for).
//!
//! Pooling does not change compiled code (wasmtime documents `.cwasm` files as usable with
//! and without the pooling allocator, and leaves it out of the compatibility hash), so hosts
//! with and without pooling share entries; fuel metering does, so they do not.
//!
//! # Before an entry is used
//!
//! It must be a regular file of at most [`MAX_ENTRY_BYTES`]; its header must be complete,
//! start with the magic and name the key it was looked up by (a file copied or renamed under
//! another key's name is refused); the artifact's length must be the one in the header (a
//! truncated or extended file is refused) and its SHA-256 the one in the header (a flipped
//! byte is refused). Only then is it deserialized, and wasmtime checks its own header
//! (version, target, flags, tunables, features) against the engine. A refused entry is
//! counted ([`CompileCacheStats::corrupt`] or [`CompileCacheStats::incompatible`], the
//! reason in [`CompileCacheStats::last_problem`]), the component is compiled, and the entry
//! is written anew. A bad entry never fails a load and never panics.
//!
//! # Writing
//!
//! An entry is written to a temporary file in the same directory
//! (`<key>.entry.tmp-<pid>-<n>`, created exclusively), synced, and renamed over the entry's
//! name, so a reader sees a complete old entry or a complete new one, and a crash leaves at
//! most a temporary file, never a partial entry. There is no lock: two processes that miss
//! the same key at once both compile, both rename, and the last rename wins with an entry as
//! good as the other. A write that fails is counted ([`CompileCacheStats::write_failures`])
//! and the load still succeeds. Nothing is evicted and stray temporary files are not removed:
//! delete the directory to reclaim its space.
//!
//! # Trust
//!
//! The digest detects damage (a short write, a flipped bit, a file under the wrong name),
//! not malice: whoever can write the directory can write a valid entry holding any native
//! code. So the cache is opened only in a directory nobody else can change, and reads only
//! entries nobody else can change (`trust.rs` has the rule: owned by this process's user,
//! writable by nobody else, under directories nobody else can replace it in). A directory
//! that fails is refused when the host is built, with the reason; an entry that fails is
//! counted ([`CompileCacheStats::untrusted`]), compiled anew and replaced by ours. New
//! directories are created readable and writable by their owner only, new entries likewise.

use std::fmt::Write as _;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
// Not in `crate::sync`: the temporary-name counter is process-wide, nothing here is
// model-checked (see the module doc of `wasm`).
use std::sync::atomic::AtomicU64;

use parking_lot::Mutex;
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use super::load::{self, LoadError};
use super::trust;
use crate::sync::Ordering;
use crate::sync::stat::StatCounter;

/// The first bytes of every entry; the digit is this layout's version.
const MAGIC: [u8; 16] = *b"switchyard-cc-1\n";
/// Bytes of an entry's header: magic, key, artifact digest, artifact length.
pub(crate) const HEADER_LEN: usize = 16 + 32 + 32 + 8;
/// The largest entry read or written: 1 GiB, four times the largest component file
/// ([`load::MAX_COMPONENT_FILE_BYTES`]). A larger file is refused unread.
pub(crate) const MAX_ENTRY_BYTES: u64 = 4 * load::MAX_COMPONENT_FILE_BYTES;
/// Mixed into every key, so that another layout can never read this one's entries.
const KEY_TAG: &[u8] = b"switchyard compile cache, layout 1\0";

/// What a host's compile cache did since the host was built: a plain copy, read with
/// [`crate::WasmHost::cache_stats`].
///
/// Every load of a host with a cache counts exactly one hit or one miss.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CompileCacheStats {
    /// Loads served from an entry (no compilation).
    pub hits: u64,
    /// Loads compiled by Cranelift: there was no entry, or it was refused.
    pub misses: u64,
    /// Entries refused by this cache's checks (not a regular file, too large, truncated,
    /// another layout, made for another key, digest mismatch), then rebuilt.
    pub corrupt: u64,
    /// Entries that passed those checks but that wasmtime refused (another wasmtime
    /// version, engine configuration or CPU), then rebuilt.
    pub incompatible: u64,
    /// Entries that could not be read (an I/O error other than "not found"); the
    /// component was compiled.
    pub unreadable: u64,
    /// Entries refused unread because someone else could have written them (owned by
    /// another user, writable by group or others, or a symbolic link), then rebuilt.
    pub untrusted: u64,
    /// Entries written.
    pub written: u64,
    /// Entries that could not be written (the load succeeded all the same).
    pub write_failures: u64,
    /// The latest refused, unreadable or unwritable entry: its path and what was wrong.
    pub last_problem: Option<String>,
}

/// The counters behind [`CompileCacheStats`]. Every access is `Relaxed`: they order
/// nothing, and a snapshot is a set of separate reads.
#[derive(Default)]
struct Counters {
    hits: StatCounter,
    misses: StatCounter,
    corrupt: StatCounter,
    incompatible: StatCounter,
    unreadable: StatCounter,
    untrusted: StatCounter,
    written: StatCounter,
    write_failures: StatCounter,
}

/// A compile cache in one directory, for one engine. Shared by the host's loads, which
/// may run on several threads at once.
pub(crate) struct CompileCache {
    dir: PathBuf,
    /// SHA-256 of the engine's precompile compatibility hash.
    engine_digest: [u8; 32],
    counters: Counters,
    /// Written only when an entry is refused or cannot be read or written. parking_lot's
    /// lock directly (`crate::sync` names it for storage; nothing here is model-checked).
    last_problem: Mutex<Option<String>>,
}

/// Why an entry was not used.
enum Refusal {
    /// This cache's checks failed.
    Corrupt(String),
    /// It could not be read.
    Unreadable(io::Error),
    /// Someone else could have written it.
    Untrusted(String),
    /// wasmtime's checks failed.
    Incompatible(String),
}

impl CompileCache {
    /// A cache in `dir` for `engine`; creates the directory (and its parents, private to
    /// this user) if missing.
    ///
    /// # Errors
    /// The directory cannot be created, or may not be trusted with native code (see
    /// `trust.rs`): a sentence saying which directory and why.
    pub(crate) fn open(dir: &Path, engine: &Engine) -> Result<Self, String> {
        trust::create_private_dir(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        trust::check_private_dir(dir).map_err(|why| format!("refusing to run native code from it: {why}"))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            engine_digest: engine_digest(engine),
            counters: Counters::default(),
            last_problem: Mutex::new(None),
        })
    }

    /// The compiled component for `binary` (a component's binary bytes): read from its
    /// entry when that passes every check, otherwise compiled and written to the entry.
    ///
    /// # Errors
    /// [`LoadError::Compile`] when wasmtime cannot compile the bytes; cache problems are
    /// counted, never returned.
    pub(crate) fn load(&self, engine: &Engine, binary: &[u8]) -> Result<Component, LoadError> {
        let key = self.key(binary);
        let path = self.entry_path(&key);
        match self.read(engine, &path, &key) {
            Ok(Some(component)) => {
                self.counters.hits.fetch_add(1, Ordering::Relaxed);
                return Ok(component);
            }
            Ok(None) => {}
            Err(refusal) => self.refused(&path, refusal),
        }
        self.counters.misses.fetch_add(1, Ordering::Relaxed);
        let component = compile(engine, binary)?;
        match self.write(&path, &key, &component) {
            Ok(()) => {
                self.counters.written.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                self.counters.write_failures.fetch_add(1, Ordering::Relaxed);
                self.problem(&path, &format!("not written: {e}"));
            }
        }
        Ok(component)
    }

    /// A plain copy of the counters.
    pub(crate) fn stats(&self) -> CompileCacheStats {
        let c = &self.counters;
        let l = |a: &StatCounter| a.load(Ordering::Relaxed);
        CompileCacheStats {
            hits: l(&c.hits),
            misses: l(&c.misses),
            corrupt: l(&c.corrupt),
            incompatible: l(&c.incompatible),
            unreadable: l(&c.unreadable),
            untrusted: l(&c.untrusted),
            written: l(&c.written),
            write_failures: l(&c.write_failures),
            last_problem: self.last_problem.lock().clone(),
        }
    }

    /// The key of `binary` under this cache's engine.
    fn key(&self, binary: &[u8]) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(KEY_TAG);
        h.update(self.engine_digest);
        h.update((binary.len() as u64).to_le_bytes());
        h.update(binary);
        h.finalize().into()
    }

    fn entry_path(&self, key: &[u8; 32]) -> PathBuf {
        self.dir.join(format!("{}.entry", hex(key)))
    }

    /// The entry at `path` as a component: `Ok(None)` when there is none.
    fn read(&self, engine: &Engine, path: &Path, key: &[u8; 32]) -> Result<Option<Component>, Refusal> {
        let Some(file) = read_entry_file(path)? else {
            return Ok(None);
        };
        let artifact = verify(&file, key).map_err(|why| Refusal::Corrupt(why.to_string()))?;
        // SAFETY: `Component::deserialize` trusts its input to be an artifact that wasmtime
        // produced and maps its code as executable. What was verified: `artifact` is the
        // byte sequence whose SHA-256 and length are recorded in the header of this file,
        // and that header names the key we looked up, which is the SHA-256 of these
        // component bytes and this engine's precompile compatibility hash; a header is
        // only ever written (by `write`, here or in another process sharing the directory)
        // in front of the output of `Component::serialize` for exactly that key. The bytes
        // are in memory owned here, so they cannot change between the check and the call.
        // wasmtime then checks its own header (version, target, flags, tunables, features)
        // and returns an error on a mismatch. Not verified, and not verifiable with a
        // digest: that whoever wrote the directory was honest (the module doc, "Trust").
        let deserialized = unsafe { Component::deserialize(engine, artifact) };
        deserialized.map(Some).map_err(|e| Refusal::Incompatible(format!("{e:#}")))
    }

    /// Writes `component`'s artifact as the entry for `key`, atomically (module doc).
    fn write(&self, path: &Path, key: &[u8; 32], component: &Component) -> io::Result<()> {
        let artifact = component.serialize().map_err(|e| io::Error::other(format!("{e:#}")))?;
        if (HEADER_LEN + artifact.len()) as u64 > MAX_ENTRY_BYTES {
            return Err(io::Error::other(format!(
                "the compiled component ({} bytes) is larger than an entry may be ({MAX_ENTRY_BYTES} bytes)",
                artifact.len()
            )));
        }
        let (tmp, file) = self.create_temporary(path)?;
        let written = fill(file, &header(key, &artifact), &artifact).and_then(|()| fs::rename(&tmp, path));
        if written.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        written
    }

    /// A new temporary file beside `path`, created exclusively (never someone else's).
    fn create_temporary(&self, path: &Path) -> io::Result<(PathBuf, fs::File)> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        loop {
            let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let mut name = path.as_os_str().to_owned();
            name.push(format!(".tmp-{}-{n}", std::process::id()));
            let tmp = PathBuf::from(name);
            let mut options = fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            match options.open(&tmp) {
                Ok(file) => return Ok((tmp, file)),
                // Left by a crashed process that had our pid: take the next number.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
    }

    fn refused(&self, path: &Path, refusal: Refusal) {
        let (counter, text) = match refusal {
            Refusal::Corrupt(why) => (&self.counters.corrupt, format!("corrupt, rebuilt: {why}")),
            Refusal::Incompatible(why) => (&self.counters.incompatible, format!("refused by wasmtime, rebuilt: {why}")),
            Refusal::Unreadable(e) => (&self.counters.unreadable, format!("unreadable: {e}")),
            Refusal::Untrusted(why) => (&self.counters.untrusted, format!("untrusted, rebuilt: {why}")),
        };
        counter.fetch_add(1, Ordering::Relaxed);
        self.problem(path, &text);
    }

    fn problem(&self, path: &Path, text: &str) {
        *self.last_problem.lock() = Some(format!("{}: {text}", path.display()));
    }
}

/// Compiles without the cache.
pub(crate) fn compile(engine: &Engine, binary: &[u8]) -> Result<Component, LoadError> {
    Component::new(engine, binary).map_err(|e| LoadError::Compile(format!("{e:#}")))
}

/// The SHA-256 of what wasmtime hashes to decide whether compiled code is compatible.
fn engine_digest(engine: &Engine) -> [u8; 32] {
    use std::hash::Hash;
    let mut hasher = DigestHasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hasher.0.finalize().into()
}

/// A `Hasher` that feeds SHA-256, as wasmtime's own cache hashes its keys: the same
/// configuration gives the same digest in every process on this machine.
struct DigestHasher(Sha256);

impl std::hash::Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        let digest: [u8; 32] = self.0.clone().finalize().into();
        u64::from_le_bytes([digest[0], digest[1], digest[2], digest[3], digest[4], digest[5], digest[6], digest[7]])
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

/// The header written in front of `artifact` in the entry for `key`.
fn header(key: &[u8; 32], artifact: &[u8]) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..16].copy_from_slice(&MAGIC);
    h[16..48].copy_from_slice(key);
    h[48..80].copy_from_slice(&Sha256::digest(artifact));
    h[80..].copy_from_slice(&(artifact.len() as u64).to_le_bytes());
    h
}

/// Writes a header and an artifact to a new file, syncs and closes it.
fn fill(mut file: fs::File, header: &[u8], artifact: &[u8]) -> io::Result<()> {
    file.write_all(header)?;
    file.write_all(artifact)?;
    file.sync_all()
}

/// The artifact of an entry file, if the file passes every check of this cache for `key`.
fn verify<'a>(file: &'a [u8], key: &[u8; 32]) -> Result<&'a [u8], &'static str> {
    if file.len() < HEADER_LEN {
        return Err("shorter than an entry's header");
    }
    let (header, artifact) = file.split_at(HEADER_LEN);
    if header[..16] != MAGIC {
        return Err("not an entry of this layout (magic)");
    }
    if header[16..48] != key[..] {
        return Err("made for another key");
    }
    let mut len = [0u8; 8];
    len.copy_from_slice(&header[80..]);
    if u64::from_le_bytes(len) != artifact.len() as u64 {
        return Err("the artifact's length differs from its header's (truncated or extended)");
    }
    if Sha256::digest(artifact)[..] != header[48..80] {
        return Err("the artifact's SHA-256 differs from its header's");
    }
    Ok(artifact)
}

/// Reads an entry file: `Ok(None)` when there is none. Refused unread when it is a
/// symbolic link, not a regular file, someone else could have written it (`trust.rs`), or
/// it is larger than any entry. The checks read the opened file, not the name, so the file
/// read is the file checked; the open does not wait (a FIFO put there does not block it).
fn read_entry_file(path: &Path) -> Result<Option<Vec<u8>>, Refusal> {
    let file = match open_entry(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) if is_symlink_refusal(&e) => return Err(Refusal::Untrusted("a symbolic link".into())),
        Err(e) => return Err(Refusal::Unreadable(e)),
    };
    let meta = file.metadata().map_err(Refusal::Unreadable)?;
    if !meta.is_file() {
        return Err(Refusal::Corrupt("not a regular file".into()));
    }
    trust::check_private_file(&meta).map_err(Refusal::Untrusted)?;
    if meta.len() > MAX_ENTRY_BYTES {
        return Err(Refusal::Corrupt(format!("larger than an entry may be ({} bytes)", meta.len())));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(MAX_ENTRY_BYTES + 1).read_to_end(&mut bytes).map_err(Refusal::Unreadable)?;
    if bytes.len() as u64 > MAX_ENTRY_BYTES {
        return Err(Refusal::Corrupt("grew larger than an entry may be while it was read".into()));
    }
    Ok(Some(bytes))
}

/// Opens an entry for reading without following a symbolic link and without waiting.
fn open_entry(path: &Path) -> io::Result<fs::File> {
    let mut options = fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW);
    }
    options.open(path)
}

/// True for the error `O_NOFOLLOW` gives on a symbolic link (`ELOOP`).
fn is_symlink_refusal(e: &io::Error) -> bool {
    #[cfg(unix)]
    return e.raw_os_error() == Some(libc::ELOOP);
    #[cfg(not(unix))]
    {
        let _ = e;
        false
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::with_capacity(2 * bytes.len()), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scratch directory removed on drop.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(label: &str) -> Self {
            let dir = std::env::temp_dir().join(format!("switchyard-cache-{label}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            Scratch(dir)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    /// An engine configured as a host's, without pooling (which compiled code ignores).
    fn engine(fuel: bool) -> Engine {
        let mut config = wasmtime::Config::new();
        config.wasm_component_model(true);
        config.consume_fuel(fuel);
        config.epoch_interruption(true);
        Engine::new(&config).expect("engine")
    }

    fn transform() -> Vec<u8> {
        fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/pipeline/transform.wasm")).expect("transform.wasm")
    }

    /// Replaces the entry for `binary` with `artifact` under a header that passes every
    /// check of this cache, so that only wasmtime's own checks can refuse it.
    fn plant(cache: &CompileCache, binary: &[u8], artifact: &[u8]) {
        let key = cache.key(binary);
        fs::write(cache.entry_path(&key), [&header(&key, artifact)[..], artifact].concat()).expect("entry planted");
    }

    fn artifact_of(cache: &CompileCache, binary: &[u8]) -> Vec<u8> {
        let file = fs::read(cache.entry_path(&cache.key(binary))).expect("entry reads");
        file[HEADER_LEN..].to_vec()
    }

    #[test]
    fn an_entry_from_another_wasmtime_version_is_refused_by_wasmtime_and_rebuilt() {
        let dir = Scratch::new("version");
        let engine = engine(true);
        let binary = transform();
        let cache = CompileCache::open(&dir.0, &engine).expect("cache opens");
        cache.load(&engine, &binary).expect("compiles");
        // wasmtime's engine section (`src/engine/serialization.rs`): a format byte (0), the
        // length of the version string, the version (the major version, "48"), then the
        // target triple as a length-prefixed string.
        let mut artifact = artifact_of(&cache, &binary);
        let at: Vec<usize> = (0..artifact.len().saturating_sub(40))
            .filter(|&i| artifact[i..i + 4] == [0, 2, b'4', b'8'])
            .filter(|&i| {
                let triple = &artifact[i + 5..i + 5 + usize::from(artifact[i + 4]).min(32)];
                triple.starts_with(std::env::consts::ARCH.as_bytes()) && triple.contains(&b'-')
            })
            .collect();
        assert_eq!(at.len(), 1, "one engine section");
        artifact[at[0] + 2..at[0] + 4].copy_from_slice(b"47");
        plant(&cache, &binary, &artifact);

        let next = CompileCache::open(&dir.0, &engine).expect("cache opens");
        next.load(&engine, &binary).expect("compiles anew");
        let s = next.stats();
        assert_eq!((s.hits, s.misses, s.corrupt, s.incompatible, s.written), (0, 1, 0, 1, 1), "{s:?}");
        assert!(s.last_problem.as_deref().is_some_and(|p| p.contains("incompatible version '47'")), "{s:?}");
        let last = CompileCache::open(&dir.0, &engine).expect("cache opens");
        last.load(&engine, &binary).expect("loads");
        assert_eq!(last.stats().hits, 1, "rebuilt");
    }

    #[test]
    fn code_of_another_engine_configuration_under_a_valid_header_is_refused_by_wasmtime() {
        let dir = Scratch::new("config");
        let (metered, unmetered) = (engine(true), engine(false));
        let binary = transform();
        let cache = CompileCache::open(&dir.0, &metered).expect("cache opens");
        let foreign = compile(&unmetered, &binary).expect("compiles").serialize().expect("serializes");
        plant(&cache, &binary, &foreign);
        cache.load(&metered, &binary).expect("compiles anew");
        let s = cache.stats();
        assert_eq!((s.hits, s.misses, s.corrupt, s.incompatible, s.written), (0, 1, 0, 1, 1), "{s:?}");
        assert!(s.last_problem.as_deref().is_some_and(|p| p.contains("fuel")), "{s:?}");
    }

    #[test]
    fn each_kind_of_damage_fails_its_own_check() {
        let key = [7u8; 32];
        let artifact = b"an artifact".to_vec();
        let good = [&header(&key, &artifact)[..], &artifact].concat();
        assert_eq!(verify(&good, &key), Ok(&artifact[..]));
        let damaged = |at: usize| {
            let mut v = good.clone();
            v[at] ^= 0x20;
            v
        };
        assert_eq!(verify(&good[..HEADER_LEN - 1], &key), Err("shorter than an entry's header"));
        assert_eq!(verify(&damaged(3), &key), Err("not an entry of this layout (magic)"));
        assert_eq!(verify(&good, &[8u8; 32]), Err("made for another key"));
        assert!(verify(&good[..good.len() - 1], &key).is_err_and(|e| e.contains("length")));
        assert!(verify(&[&good[..], b"!"].concat(), &key).is_err_and(|e| e.contains("length")));
        assert!(verify(&damaged(good.len() - 2), &key).is_err_and(|e| e.contains("SHA-256")));
        assert!(verify(&damaged(50), &key).is_err_and(|e| e.contains("SHA-256")), "the digest itself");
    }

    #[test]
    fn the_engine_digest_is_stable_and_follows_the_configuration() {
        assert_eq!(engine_digest(&engine(true)), engine_digest(&engine(true)));
        assert_ne!(engine_digest(&engine(true)), engine_digest(&engine(false)));
    }
}
