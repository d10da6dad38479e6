//! `switchyard run`: host a manifest's components, inject its messages and then stdin's,
//! print replies, and print the stats table at exit.
//!
//! Replies go to stdout as JSON lines (so they can be piped on); everything meant for a
//! person (the start line, input errors, guest logs, the stats table) goes to stderr.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, bounded, never, select};
use serde_json::json;
use switchyard::{
    BuildError, CompileCacheStats, ComponentId, HostError, LoadError, MessageEnvelope, MessageType, RedbBackend,
    RegisterError, Runtime, StorageError, StorageRights, WaitTimeoutError, WasmComponent, WasmConfig, WasmHost,
    new_message_id,
};

use crate::manifest::{Location, Manifest, ManifestError};
use crate::observe;
use crate::payload;
use crate::table::{self, ComponentRow, StorageRow};

/// What `switchyard run` was asked to do.
#[derive(Debug, Clone)]
pub struct RunArgs {
    /// The manifest file.
    pub manifest: PathBuf,
    /// The redb file for component storage.
    pub storage: PathBuf,
    /// Where compiled components are kept across runs.
    pub cache: CacheChoice,
    /// Send stdin lines as requests and print each reply.
    pub request: bool,
    /// Stop after this long even if input continues.
    pub duration: Option<Duration>,
    /// Read stdin even when it is a terminal.
    pub interactive: bool,
    /// Overrides the manifest's `cluster.url`.
    pub cluster_url: Option<String>,
    /// The `--cluster-*` TLS and credential flags, as `(manifest key, value)`: they replace
    /// the manifest's TLS keys, and its credentials.
    pub cluster_security: Vec<(&'static str, String)>,
    /// Serve `/metrics` and `/health` on this address while the run lasts.
    pub metrics: Option<std::net::SocketAddr>,
    /// Show the components' own reasons in `/health?probe=1` answers.
    pub health_details: bool,
    /// Draw a live view on stdout while it is a terminal.
    pub watch: bool,
}

/// Where `run` keeps compiled components across runs (the compile cache).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheChoice {
    /// [`default_cache_dir`]: the user's own cache directory. If there is none, or it cannot
    /// be made, or it is not private to this user, the run goes on without a cache and says
    /// so (nobody asked for this one).
    UserCache,
    /// This directory (`--cache-dir`). If it cannot be made, the run does not start.
    At(PathBuf),
    /// No cache (`--no-cache`): every component file is compiled.
    Off,
}

/// Why the run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Stdin closed (or was not read).
    EndOfInput,
    /// `--duration` passed.
    Duration,
    /// Ctrl-C (SIGINT).
    Interrupted,
}

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stop::EndOfInput => "end of input",
            Stop::Duration => "--duration elapsed",
            Stop::Interrupted => "interrupted",
        })
    }
}

/// How a run went, once it ended normally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunOutcome {
    /// Why it stopped.
    pub stop: Stop,
    /// Input lines or messages that were rejected (malformed, or refused by the runtime).
    pub rejected_inputs: u64,
}

/// Why a run could not start.
#[derive(Debug)]
#[non_exhaustive]
pub enum RunError {
    /// The manifest is unreadable or wrong.
    Manifest(ManifestError),
    /// The storage file could not be opened.
    Storage {
        /// The file.
        path: PathBuf,
        /// Why.
        error: StorageError,
    },
    /// The WASM host did not start.
    Host(HostError),
    /// The runtime did not start.
    Runtime(BuildError),
    /// The `--metrics` endpoint could not start (the address cannot be bound).
    Metrics(String),
    /// A `--cluster-*` flag is wrong (a file that cannot be read, two kinds of credential).
    ClusterFlag(String),
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Manifest(e) => e.fmt(f),
            RunError::Storage { path, error } => write!(f, "cannot open storage {}: {error}", path.display()),
            RunError::Host(e) => e.fmt(f),
            RunError::Runtime(e) => e.fmt(f),
            RunError::Metrics(why) => write!(f, "--metrics: {why}"),
            RunError::ClusterFlag(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for RunError {}

impl From<ManifestError> for RunError {
    fn from(e: ManifestError) -> Self {
        RunError::Manifest(e)
    }
}

fn at(manifest: &Path, loc: &Location, message: String) -> RunError {
    RunError::Manifest(ManifestError {
        file: manifest.to_path_buf(),
        position: Some(loc.position),
        field: Some(loc.field.clone()),
        message,
    })
}

fn load_error(file: &Path, e: &LoadError) -> String {
    match e {
        // These already name the path.
        LoadError::Io { .. } | LoadError::NotAFile { .. } | LoadError::TooLarge { .. } => e.to_string(),
        _ => format!("{}: {e}", file.display()),
    }
}

/// The pooling allocator reserves the same memory for every instance: make it large
/// enough for the largest `memory_limit`, with an instance slot for every component (a
/// restart drops the old instance before it makes the new one, so one slot each is enough;
/// with fewer slots than components the last ones would fail to start).
pub fn wasm_config(manifest: &Manifest) -> WasmConfig {
    let default = WasmConfig::default();
    let largest = manifest.components.iter().map(|c| c.options.memory_limit).max().unwrap_or(0);
    let components = u32::try_from(manifest.components.len()).unwrap_or(u32::MAX);
    WasmConfig {
        pool_memory_bytes: default.pool_memory_bytes.max(largest),
        pool_instances: default.pool_instances.max(components),
        ..default
    }
}

/// The compile cache `run` uses unless told otherwise: `switchyard/compile` in the user's
/// cache directory (`$XDG_CACHE_HOME`, else `~/.cache`), a place nobody else can write (the
/// cache's entries are native code); `None` when neither variable names an absolute path.
/// Not the working directory, nor beside the storage file: those may be shared.
pub fn default_cache_dir() -> Option<PathBuf> {
    let absolute = |var: &str| std::env::var_os(var).map(PathBuf::from).filter(|p| p.is_absolute());
    let base = absolute("XDG_CACHE_HOME").or_else(|| absolute("HOME").map(|home| home.join(".cache")))?;
    Some(base.join("switchyard").join("compile"))
}

/// What the compile cache did while the components loaded, for the start of a run.
pub fn cache_line(dir: &Path, s: &CompileCacheStats) -> String {
    let mut line = format!("compile cache {}: {} loaded from it, {} compiled", dir.display(), s.hits, s.misses);
    let rebuilt = s.corrupt + s.incompatible;
    if rebuilt > 0 {
        line.push_str(&format!(
            ", {rebuilt} entr{} rebuilt ({} corrupt, {} of another wasmtime or configuration)",
            if rebuilt == 1 { "y" } else { "ies" },
            s.corrupt,
            s.incompatible
        ));
    }
    if s.unreadable + s.write_failures > 0 {
        line.push_str(&format!(", {} unreadable, {} not written", s.unreadable, s.write_failures));
    }
    if let Some(problem) = &s.last_problem {
        line.push_str(&format!("; last problem: {problem}"));
    }
    line
}

/// Compiles the manifest's component files, each distinct file once (files are the same
/// when their canonical paths are), and returns the code of each component in manifest
/// order. A [`WasmComponent`] is a handle to shared compiled code, so components that
/// share a file share it.
///
/// # Errors
/// The first file that does not load, located at its component's `file` field.
pub fn load_code(host: &WasmHost, manifest: &Manifest) -> Result<Vec<WasmComponent>, RunError> {
    load_code_with(manifest, |file| host.load_file(file))
}

/// [`load_code`] with the compiler passed in (tests count its calls).
fn load_code_with(
    manifest: &Manifest,
    mut compile: impl FnMut(&Path) -> Result<WasmComponent, LoadError>,
) -> Result<Vec<WasmComponent>, RunError> {
    let mut compiled: HashMap<PathBuf, WasmComponent> = HashMap::new();
    let mut code = Vec::with_capacity(manifest.components.len());
    for c in &manifest.components {
        // A path that does not canonicalize does not load either: `compile` says why.
        let key = std::fs::canonicalize(&c.file).unwrap_or_else(|_| c.file.clone());
        let loaded = match compiled.get(&key) {
            Some(loaded) => loaded.clone(),
            None => {
                let loaded =
                    compile(&c.file).map_err(|e| at(&manifest.path, &c.file_location, load_error(&c.file, &e)))?;
                compiled.insert(key, loaded.clone());
                loaded
            }
        };
        code.push(loaded);
    }
    Ok(code)
}

/// Starts a runtime with the manifest's settings and registers every component on it,
/// `code[i]` running component `i`. Components are instantiated by their first message.
///
/// # Errors
/// [`RunError::Runtime`] when the worker threads do not start; a located error when a
/// component does not register.
pub fn start_components(
    host: &WasmHost,
    manifest: &Manifest,
    code: &[WasmComponent],
    timing_metrics: bool,
) -> Result<Runtime, RunError> {
    let mut builder = Runtime::builder()
        .pin_workers(manifest.pin_workers)
        .idle_strategy(manifest.idle_strategy)
        .timing_metrics(timing_metrics);
    if let Some(w) = manifest.io_workers {
        builder = builder.io_workers(w);
    }
    if let Some(w) = manifest.workers {
        builder = builder.workers(w);
    }
    if let Some(c) = &manifest.cluster {
        builder = builder.cluster(c.config.clone());
    }
    // A component that could never start is an error now, located at its table, rather
    // than restarts and `component_stopped` dead letters later. Each distinct file, memory
    // cap and table cap is tried once.
    let mut tried = HashSet::new();
    for (c, loaded) in manifest.components.iter().zip(code) {
        let key = (
            std::fs::canonicalize(&c.file).unwrap_or_else(|_| c.file.clone()),
            c.options.memory_limit,
            c.options.table_limit,
        );
        if tried.insert(key) {
            host.check_start(&c.id, loaded, &c.options)
                .map_err(|e| at(&manifest.path, &c.location, format!("{} cannot start: {e}", c.id)))?;
        }
    }
    let rt = builder.build().map_err(RunError::Runtime)?;
    let handle = rt.handle();
    for (c, loaded) in manifest.components.iter().zip(code) {
        host.register(&handle, c.id.clone(), loaded, c.options.clone())
            .map_err(|e: RegisterError| at(&manifest.path, &c.location, format!("cannot register {}: {e}", c.id)))?;
    }
    Ok(rt)
}

/// Storage usage of the components that may use storage, by id.
fn storage_usage(store: &RedbBackend, manifest: &Manifest) -> Vec<(ComponentId, u64, u64)> {
    manifest
        .components
        .iter()
        .filter(|c| c.options.capabilities.storage != StorageRights::None)
        .filter_map(|c| store.usage(c.id.as_str()).ok().map(|u| (c.id.clone(), u.key_count, u.used_bytes)))
        .collect()
}

/// The WASM host of a run, with the compile cache `cache` asks for, and that cache's
/// directory if it has one.
///
/// # Errors
/// [`RunError::Host`] when the host does not start, or when `--cache-dir` names a directory
/// that cannot be made.
fn start_host(
    manifest: &Manifest,
    storage: Option<Arc<RedbBackend>>,
    cache: &CacheChoice,
) -> Result<(WasmHost, Option<PathBuf>), RunError> {
    let config = wasm_config(manifest);
    let with_cache = |dir: &Path| WasmConfig { cache_dir: Some(dir.to_path_buf()), ..config.clone() };
    // With JSON logs, guest log lines are `tracing` events (JSON lines with the component).
    let sink = observe::json_logs().then(switchyard::tracing_log_sink);
    let build = |config| WasmHost::build(config, storage.clone(), sink.clone()).map_err(RunError::Host);
    match cache {
        CacheChoice::Off => Ok((build(config.clone())?, None)),
        CacheChoice::At(dir) => Ok((build(with_cache(dir))?, Some(dir.clone()))),
        CacheChoice::UserCache => {
            let Some(dir) = default_cache_dir() else {
                observe::warn("running without a compile cache: neither XDG_CACHE_HOME nor HOME names a directory");
                return Ok((build(config.clone())?, None));
            };
            match build(with_cache(&dir)) {
                Ok(host) => Ok((host, Some(dir))),
                Err(e) => {
                    observe::warn(&format!("running without a compile cache: {e}"));
                    Ok((build(config.clone())?, None))
                }
            }
        }
    }
}

/// Runs a manifest to the end. Prints replies to stdout and the stats table to stderr.
///
/// # Errors
/// [`RunError`] when the run cannot start; input errors are reported, counted in
/// [`RunOutcome::rejected_inputs`], and do not stop the run.
pub fn run(args: &RunArgs) -> Result<RunOutcome, RunError> {
    let mut manifest = Manifest::load(&args.manifest)?;
    if let Some(url) = &args.cluster_url {
        match &mut manifest.cluster {
            Some(c) => c.config.url = url.clone(),
            None => observe::warn("--cluster-url ignored: the manifest has no [cluster] section"),
        }
    }
    if !args.cluster_security.is_empty() {
        match &mut manifest.cluster {
            Some(c) => crate::manifest::cluster::apply_flags(&mut c.config, &args.cluster_security)
                .map_err(RunError::ClusterFlag)?,
            None => observe::warn("--cluster-* TLS and credentials ignored: the manifest has no [cluster] section"),
        }
    }
    // Whatever this run's cache setting: a guest that could write the user's default cache
    // would plant native code for the next default run.
    let mut protected = vec![("the storage file", args.storage.clone())];
    protected.extend(default_cache_dir().map(|d| ("the compile cache", d)));
    if let CacheChoice::At(dir) = &args.cache {
        protected.push(("the compile cache", dir.clone()));
    }
    manifest.check_writable_grants(&protected)?;
    let storage = if manifest.uses_storage() {
        let store = RedbBackend::open(&args.storage)
            .map_err(|error| RunError::Storage { path: args.storage.clone(), error })?;
        Some(Arc::new(store))
    } else {
        None
    };
    let before = storage.as_deref().map(|s| storage_usage(s, &manifest)).unwrap_or_default();
    let (host, cache_dir) = start_host(&manifest, storage.clone(), &args.cache)?;
    let code = load_code(&host, &manifest)?;
    if let (Some(dir), Some(stats)) = (&cache_dir, host.cache_stats()) {
        observe::note(&cache_line(dir, &stats));
    }
    // The recorder before the runtime, so that the live metrics reach it.
    let mut metrics = match args.metrics {
        Some(addr) => Some(observe::MetricsServer::bind(addr).map_err(RunError::Metrics)?),
        None => None,
    };
    let rt = start_components(&host, &manifest, &code, metrics.is_some())?;
    if let Some(m) = &mut metrics {
        m.serve(rt.handle(), observe::HealthOptions { details: args.health_details, ..Default::default() });
        observe::note(&format!("metrics on http://{}/metrics, health on http://{}/health", m.addr, m.addr));
    }

    let stopping = Arc::new(AtomicBool::new(false));
    let (stop_tx, stop_rx) = bounded::<()>(1);
    {
        let stopping = stopping.clone();
        // A second install in one process fails; only tests would do that, and the run
        // then simply cannot be interrupted.
        let _ = ctrlc::set_handler(move || {
            stopping.store(true, Ordering::Relaxed);
            let _ = stop_tx.try_send(());
        });
    }
    let storage_note = match &storage {
        Some(_) => format!("storage {}", args.storage.display()),
        None => "no storage (no component has storage rights)".to_string(),
    };
    observe::note(&format!(
        "hosting {} component(s) from {} on {} worker(s) and {} I/O worker(s); {storage_note}",
        manifest.components.len(),
        manifest.path.display(),
        rt.workers(),
        rt.io_workers()
    ));
    if let Some(c) = &manifest.cluster {
        let node = rt.cluster_stats().map(|s| s.node).unwrap_or_default();
        observe::note(&format!("joined cluster {:?} at {} as node {node}", c.config.name, c.config.url));
        // The manifest's messages may go to other nodes' components: wait until the
        // directory knows them (they may be starting too).
        let mut targets: Vec<&ComponentId> = manifest.messages.iter().map(|m| &m.to).collect();
        targets.sort();
        targets.dedup();
        for to in targets {
            if !rt.wait_for_component(to, c.wait) {
                observe::note(&format!(
                    "{to} is not hosted by this node, and no node of cluster {:?} hosted it within {} ms",
                    c.config.name,
                    c.wait.as_millis()
                ));
            }
        }
    }
    let started = Instant::now();
    let watch = args
        .watch
        .then(|| observe::Watch::start(rt.handle(), manifest.components.iter().map(|c| c.id.clone()).collect()));
    let sender = Sender { rt: &rt, from: ComponentId::new("cli").expect("valid id"), manifest: &manifest, stopping };

    let mut rejected = 0u64;
    for (i, m) in manifest.messages.iter().enumerate() {
        let input = format!("manifest:message[{i}]");
        if let Err(e) = sender.deliver(&input, m.to.clone(), m.payload.clone(), m.codec, m.request) {
            observe::note(&format!("{input}: {e}"));
            rejected += 1;
        }
    }

    let read_stdin = args.interactive || !std::io::stdin().is_terminal();
    if !read_stdin {
        observe::note("stdin is a terminal, not reading messages from it (pipe them in, or pass --interactive)");
    }
    let lines = if read_stdin { stdin_lines() } else { never() };
    let deadline = args.duration.map(|d| started + d);
    let timer = deadline.map_or_else(never, crossbeam_channel::at);
    let stop = loop {
        if !read_stdin && deadline.is_none() {
            break Stop::EndOfInput;
        }
        select! {
            recv(lines) -> line => match line {
                Ok((n, Ok(text))) => {
                    if text.trim().is_empty() {
                        continue;
                    }
                    let input = format!("stdin:{n}");
                    let outcome = payload::parse_line(&text).and_then(|(to, payload, codec)| {
                        let to = ComponentId::new(&to).map_err(|e| format!("\"to\": {e}"))?;
                        sender.deliver(&input, to, payload, codec, args.request)
                    });
                    if let Err(e) = outcome {
                        observe::note(&format!("stdin line {n}: {e}"));
                        rejected += 1;
                    }
                }
                Ok((n, Err(e))) => {
                    observe::note(&format!("stdin line {n}: {e}"));
                    rejected += 1;
                }
                Err(_) => break Stop::EndOfInput,
            },
            recv(stop_rx) -> _ => break Stop::Interrupted,
            recv(timer) -> _ => break Stop::Duration,
        }
    };

    let report = rt.shutdown(manifest.drain_timeout);
    // The guests' last lines before the table (they are written by the host's log thread).
    host.flush_logs(Duration::from_secs(5));
    if let Some(w) = watch {
        w.stop();
    }
    if let Some(m) = metrics {
        m.stop();
    }
    let rows: Vec<ComponentRow> = manifest
        .components
        .iter()
        .map(|c| ComponentRow {
            id: c.id.clone(),
            stats: rt.component_stats(&c.id).unwrap_or_default(),
            wasm: host.stats(&c.id).unwrap_or_default(),
        })
        .collect();
    let storage_rows = match &storage {
        Some(store) => {
            let _ = store.flush();
            let after = storage_usage(store, &manifest);
            after
                .into_iter()
                .map(|(id, keys, bytes)| {
                    let keys_before = before.iter().find(|b| b.0 == id).map_or(0, |b| b.1);
                    StorageRow { id, keys_before, keys_after: keys, bytes_after: bytes }
                })
                .collect()
        }
        None => Vec::new(),
    };
    let summary = table::Summary {
        stop,
        elapsed: started.elapsed(),
        report: &report,
        components: &rows,
        storage_path: storage.as_ref().map(|_| args.storage.as_path()),
        storage: &storage_rows,
        dead_letters: &rt.dead_letters(),
        rejected_inputs: rejected,
    };
    if observe::json_logs() {
        // One machine-readable record of the run instead of the table.
        let components: Vec<_> = rows.iter().map(|r| json!({"id": r.id.as_str(), "stats": r.stats})).collect();
        let summary = json!({"stop": stop.to_string(), "elapsed_ms": summary.elapsed.as_millis() as u64,
            "stats": report.stats, "balanced": report.is_balanced(), "components": components});
        tracing::info!(target: "switchyard::run", summary = %summary, "run ended");
    } else {
        eprint!("{}", table::render(&summary));
    }
    if let Some(s) = rt.cluster_stats() {
        observe::note(&format!(
            "cluster: node {}: {} message(s) taken by other nodes, {} refused or unconfirmed; {} from other nodes ({} refused); {} publish(es) sent; {} reconnect(s)",
            s.node, s.forwarded, s.remote_failures, s.inbound, s.inbound_refused, s.published, s.reconnects
        ));
        if s.durable_inbound > 0 {
            observe::note(&format!(
                "cluster: node {}: {} at-least-once offer(s) from the stream ({} redelivered, {} given back)",
                s.node, s.durable_inbound, s.durable_redelivered, s.durable_returned
            ));
        }
        if s.permission_denied > 0 {
            observe::note(&format!(
                "cluster: node {}: the server refused {} subscription(s) or publish(es) for want of a permission (see `switchyard::cluster`'s permission table)",
                s.node, s.permission_denied
            ));
        }
    }
    drop(rt);
    drop(host);
    Ok(RunOutcome { stop, rejected_inputs: rejected })
}

/// Injects messages: fire-and-forget, or a request whose reply is printed.
struct Sender<'a> {
    rt: &'a Runtime,
    from: ComponentId,
    manifest: &'a Manifest,
    stopping: Arc<AtomicBool>,
}

impl Sender<'_> {
    /// Sends one message. A send the runtime refuses hands the envelope back; it is
    /// reported (and counted by the caller), never dropped silently.
    fn deliver(&self, input: &str, to: ComponentId, payload: Vec<u8>, codec: u64, request: bool) -> Result<(), String> {
        let kind = if request { MessageType::Request } else { MessageType::FireAndForget };
        let env = MessageEnvelope::new(kind, self.from.clone(), to, payload, codec, new_message_id());
        let timeout = self.manifest.request_timeout;
        if !request {
            return self.rt.send_timeout(env, timeout).map_err(|e| format!("not sent: {e}"));
        }
        let to = env.to.clone();
        let handle = self.rt.request(env, timeout).map_err(|e| format!("not sent: {e}"))?;
        // Wait in slices so that Ctrl-C is noticed while a request is outstanding; the
        // runtime's timer guarantees an outcome by `timeout`.
        let outcome = loop {
            match handle.wait_timeout(Duration::from_millis(100)) {
                Ok(reply) => break Some(Ok(reply)),
                Err(WaitTimeoutError::Failed(e)) => break Some(Err(e)),
                Err(_) if self.stopping.load(Ordering::Relaxed) => break None,
                Err(_) => {}
            }
        };
        let line = match outcome {
            Some(Ok(reply)) => payload::reply_line(input, &reply),
            Some(Err(e)) => json!({ "input": input, "to": to.as_str(), "error": e.to_string() }),
            // Shutdown fails the request (counted by the runtime); nothing to print.
            None => return Ok(()),
        };
        observe::print_line(&line.to_string());
        Ok(())
    }
}

/// Reads stdin on its own thread, numbering lines from 1. A line that is not UTF-8 is
/// passed on as an error and reading goes on. The channel disconnects at end of input (or
/// after a read error). The thread is not joined: at exit it may still be blocked in a read.
fn stdin_lines() -> Receiver<(u64, Result<String, String>)> {
    let (tx, rx) = bounded(64);
    let spawned = std::thread::Builder::new().name("switchyard-stdin".into()).spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buf = Vec::new();
        for n in 1u64.. {
            buf.clear();
            let line = match stdin.read_until(b'\n', &mut buf) {
                Ok(0) => return,
                Ok(_) => String::from_utf8(buf.clone()).map_err(|_| "the line is not valid UTF-8".to_string()),
                Err(e) => Err(format!("cannot read stdin: {e}")),
            };
            let fatal = matches!(&line, Err(m) if m.starts_with("cannot read"));
            if tx.send((n, line)).is_err() || fatal {
                return;
            }
        }
    });
    match spawned {
        Ok(_) => rx,
        Err(e) => {
            observe::note(&format!("cannot read stdin: {e}"));
            never()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scratch directory removed on drop.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(label: &str) -> Self {
            let dir = std::env::temp_dir().join(format!("switchyard-run-{label}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(dir.join("sub")).expect("scratch dir");
            Scratch(dir)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn components_that_share_a_file_are_compiled_once_per_distinct_file() {
        let dir = Scratch::new("share");
        let ingest = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/pipeline/ingest.wasm")).unwrap();
        std::fs::write(dir.0.join("a.wasm"), &ingest).unwrap();
        std::fs::write(dir.0.join("b.wasm"), &ingest).unwrap();
        std::os::unix::fs::symlink(dir.0.join("a.wasm"), dir.0.join("link.wasm")).unwrap();
        // Four spellings of two files: a.wasm, a.wasm through `..`, a.wasm through a symlink, b.wasm.
        let files = ["a.wasm", "sub/../a.wasm", "link.wasm", "b.wasm", "a.wasm"];
        let text: String =
            files.iter().enumerate().map(|(i, f)| format!("[[component]]\nid = \"c{i}\"\nfile = {f:?}\n")).collect();
        let manifest = Manifest::parse(&dir.0.join("m.toml"), &text).unwrap();
        let host = WasmHost::new(WasmConfig { pooling: false, ..WasmConfig::default() }).unwrap();
        let mut compiled = Vec::new();
        let code = load_code_with(&manifest, |file| {
            compiled.push(file.to_path_buf());
            host.load_file(file)
        })
        .unwrap();
        assert_eq!(code.len(), files.len(), "one handle per component");
        assert_eq!(compiled, [dir.0.join("a.wasm"), dir.0.join("b.wasm")], "one compile per distinct file");
    }

    #[test]
    fn a_file_that_does_not_load_is_reported_at_the_first_component_using_it() {
        let dir = Scratch::new("missing");
        let text = "[[component]]\nid = \"a\"\nfile = \"gone.wasm\"\n[[component]]\nid = \"b\"\nfile = \"gone.wasm\"\n";
        let manifest = Manifest::parse(&dir.0.join("m.toml"), text).unwrap();
        let host = WasmHost::new(WasmConfig { pooling: false, ..WasmConfig::default() }).unwrap();
        let e = load_code(&host, &manifest).unwrap_err().to_string();
        assert!(e.contains("m.toml:3:8: component[0].file: cannot read"), "{e}");
    }
}
