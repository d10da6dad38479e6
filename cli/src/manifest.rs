//! The manifest: which WASM components to host, with what limits and rights, and which
//! messages to inject first. TOML, parsed with spans so that every error names the file,
//! the line and the field.
//!
//! ```toml
//! [runtime]                      # optional, as every field in it
//! workers = 2                    # default: available cores
//! io_workers = 1                 # workers for components that block on host I/O; 0: none
//! pin_workers = false            # default: false (the CLI shares its machine)
//! idle = "backoff"               # idle workers: "backoff" (spin, then park), "park", "busy-spin"
//! drain_timeout_ms = 5000        # how long the exit lets queued messages drain
//! request_timeout_ms = 5000      # a request's deadline; also how long a send waits for space
//!
//! [cluster]                      # optional: join a cluster of nodes on a NATS server
//! url = "nats://127.0.0.1:4222"
//! name = "demo"                  # the cluster; nodes with the same name share components
//! node = "node-a"                # optional: this node's name (default: random)
//! wait_ms = 10000                # how long to wait for remote targets of [[message]]s
//! jetstream = false              # at-least-once sends across nodes, stored on JetStream
//! ack_wait_ms = 30000            # with jetstream: how long an unsettled message waits to be re-offered
//! stream_max_bytes = 1073741824  # with jetstream: the stream's bound (a store past it is dead-lettered by its sender)
//! stream_max_age_ms = 604800000  # with jetstream: how long a message no node takes stays stored
//! consumer_inactive_ms = 3600000 # with jetstream: how long a component's consumer outlives its last reader
//! discovery = true               # answer `$SRV.PING/INFO/STATS` (`nats micro ls`)
//! reconnect_buffer_messages = 8192  # sends that wait while cut off from the server (0: refused at once)
//! reconnect_buffer_bytes = 8388608  # the bytes they may hold (payloads + 128 each)
//! reconnect_buffer_ms = 30000    # how long one waits before it is dead-lettered
//! tls_ca_file = "ca.pem"         # optional, as every key below: TLS, the server checked against this CA
//! tls_cert_file = "node.pem"     # a client certificate and its key (mutual TLS)
//! tls_key_file = "node-key.pem"  # (paths relative to the manifest)
//! user = "node-a"                # one kind of credential: a user and its password, ...
//! password_file = "node-a.pw"    # ... each secret from a file (its final newline dropped)
//! # password_env = "NATS_PASSWORD" # ... or from an environment variable
//! # token_file / token_env, nkey_seed_file / nkey_seed_env (a user seed, SU...), creds_file
//!
//! [[component]]
//! id = "store"
//! file = "store.wasm"            # relative to the manifest
//! fuel_per_message = 1_000_000   # optional, as every field below
//! deadline_ms = 100
//! memory_limit = "1MiB"          # bytes, or a string with KiB/MiB/GiB
//! mailbox_capacity = 64
//! restart = { policy = "permanent", max_restarts = 5, window_ms = 10_000 }
//! capabilities = { send = ["audit"], storage = "read-write" }
//!
//! [[message]]
//! to = "store"
//! payload = "hello"              # a string, an array of bytes, or any value with codec "json"
//! codec = "raw"                  # a multicodec name or number; default raw (json for non-strings)
//! request = false                # true: wait for the reply and print it
//! ```
//!
//! Every key, with its type, default, range or choices and meaning, is in the reference
//! table of `docs/manifest.md`; `cli/tests/manifest_reference.rs` holds that table against
//! this parser (every key accepted, no key missing), and a unit test in `manifest/bounds.rs`
//! its ranges against the ones checked here. Every number has a range, checked when the
//! manifest is parsed, before anything starts; a value outside it is an error that names
//! the file, line, column and field, and says the range
//! (`manifest.toml:31:15: component[0].deadline_ms: must be from 1 ms to ...`).
//!
//! A manifest declares from 1 to 10000 components ([`MAX_COMPONENTS`]); components that
//! name the same file (by canonical path) share one compilation of it.
//!
//! In `[cluster]`, at most one kind of credential is given (`user` with `password_file` or
//! `password_env`; `token_file` or `token_env`; `nkey_seed_file` or `nkey_seed_env`;
//! `creds_file`), each secret from a file or a variable, not both, and `tls_cert_file` with
//! `tls_key_file`; anything else is an error located at the key. Secret files and
//! variables are read when the manifest is loaded; no error or output shows a secret.
//!
//! `drain_timeout_ms = 0` dead-letters what is still queued at exit; `max_restarts = 0`
//! stops a component at its first crash; a zero backoff restarts it at once. The bounds
//! live in `manifest/bounds.rs`.

use std::collections::HashSet;
use std::fmt;
use std::io::Read;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use switchyard::{
    Capabilities, ComponentConfig, ComponentId, IdleStrategy, RestartPolicy, StorageQuota, StorageRights, Supervision,
    TargetPattern, WasmOptions,
};
use toml::Spanned;

use crate::payload::{self, CodecSpec};

mod bounds;
pub mod cluster;
mod grants;

use bounds::{Bounds, Int, Size};
use cluster::RawCluster;
use grants::RawDir;

/// The most components one manifest may declare. The WASM host's pooling allocator
/// reserves address space for an instance of every component (two linear memories of
/// about 4 GiB each, mostly never touched); twice this many would not fit the 128 TiB of a
/// 64-bit process.
pub const MAX_COMPONENTS: usize = 10_000;

/// The largest manifest `switchyard run` reads.
pub const MAX_MANIFEST_BYTES: u64 = 16 << 20;

/// A manifest that did not parse or does not make sense, located in its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestError {
    /// The manifest file.
    pub file: PathBuf,
    /// 1-based line and column, when known.
    pub position: Option<(usize, usize)>,
    /// The field, as a path (`component[1].capabilities.storage`), when known.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some((line, col)) = self.position {
            write!(f, ":{line}:{col}")?;
        }
        if let Some(field) = &self.field {
            write!(f, ": {field}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ManifestError {}

/// Settings of the whole run.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRuntime {
    workers: Option<Spanned<Int>>,
    io_workers: Option<Spanned<Int>>,
    pin_workers: Option<bool>,
    idle: Option<IdleName>,
    drain_timeout_ms: Option<Spanned<Int>>,
    request_timeout_ms: Option<Spanned<Int>>,
}

/// `runtime.idle`: what an idle worker does (see `switchyard::IdleStrategy`).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum IdleName {
    /// Spin briefly, then park (the default).
    Backoff,
    /// Park at once: no CPU while idle.
    Park,
    /// Never sleep: one core per worker at 100%.
    BusySpin,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRestart {
    policy: Option<RestartPolicy>,
    max_restarts: Option<Spanned<Int>>,
    window_ms: Option<Spanned<Int>>,
    backoff_initial_ms: Option<Spanned<Int>>,
    backoff_max_ms: Option<Spanned<Int>>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum RawStorageRights {
    None,
    Read,
    ReadWrite,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQuota {
    max_bytes: Spanned<Int>,
    max_keys: Spanned<Int>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCapabilities {
    #[serde(default)]
    send: Vec<String>,
    #[serde(default)]
    request: Vec<String>,
    #[serde(default)]
    publish: Vec<String>,
    #[serde(default)]
    subscribe: Vec<String>,
    storage: Option<RawStorageRights>,
    storage_quota: Option<RawQuota>,
    max_payload_bytes: Option<Spanned<Int>>,
    /// WASI grants (see `manifest/grants.rs`).
    #[serde(default)]
    env: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    dirs: Vec<RawDir>,
    /// `true`, `false` or a list of `host:port` entries (see `manifest/grants.rs`).
    network: Option<Spanned<toml::Value>>,
    #[serde(default)]
    listen: bool,
    #[serde(default)]
    loopback: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawComponent {
    id: Spanned<String>,
    file: Spanned<String>,
    fuel_per_message: Option<Spanned<Int>>,
    deadline_ms: Option<Spanned<Int>>,
    memory_limit: Option<Spanned<Size>>,
    mailbox_capacity: Option<Spanned<Int>>,
    max_subscriptions: Option<Spanned<Int>>,
    max_pending_requests: Option<Spanned<Int>>,
    max_request_timeout_ms: Option<Spanned<Int>>,
    restart: Option<RawRestart>,
    #[serde(default)]
    capabilities: RawCapabilities,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMessage {
    to: Spanned<String>,
    payload: Spanned<serde_json::Value>,
    codec: Option<Spanned<CodecSpec>>,
    #[serde(default)]
    request: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    #[serde(default)]
    runtime: RawRuntime,
    cluster: Option<RawCluster>,
    #[serde(default)]
    component: Vec<RawComponent>,
    #[serde(default)]
    message: Vec<RawMessage>,
}

/// Where a field of the manifest is, for errors found after parsing (a file that does not
/// load, a component that does not register).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// 1-based line and column.
    pub position: (usize, usize),
    /// The field path.
    pub field: String,
}

/// One component to host.
#[derive(Debug, Clone)]
pub struct ComponentEntry {
    /// Its id.
    pub id: ComponentId,
    /// The component file, resolved against the manifest's directory.
    pub file: PathBuf,
    /// Where `file` is written in the manifest.
    pub file_location: Location,
    /// Where the component's table starts (its `id`).
    pub location: Location,
    /// Where each granted directory's `host` is written, in the order of
    /// `options.capabilities.wasi.dirs`.
    pub dir_locations: Vec<Location>,
    /// Limits, rights, mailbox and supervision.
    pub options: WasmOptions,
}

/// The `[cluster]` section: how this node joins its cluster.
#[derive(Debug, Clone)]
pub struct ClusterEntry {
    /// How to join: server, cluster name, node name.
    pub config: switchyard::cluster::ClusterConfig,
    /// How long to wait for the remote targets of the manifest's messages.
    pub wait: Duration,
}

/// One message to inject after start.
#[derive(Debug, Clone)]
pub struct MessageEntry {
    /// The target.
    pub to: ComponentId,
    /// The encoded payload.
    pub payload: Vec<u8>,
    /// Its multicodec code.
    pub codec: u64,
    /// Send as a request and print the reply.
    pub request: bool,
}

/// A parsed and checked manifest.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// The file it came from.
    pub path: PathBuf,
    /// Worker threads (`None`: available cores).
    pub workers: Option<usize>,
    /// Workers for components that block on host I/O (`None`: the runtime's default, 1).
    pub io_workers: Option<usize>,
    /// Pin workers to cores.
    pub pin_workers: bool,
    /// What idle workers do.
    pub idle_strategy: IdleStrategy,
    /// How long the exit lets queued messages drain.
    pub drain_timeout: Duration,
    /// How long a request waits for its reply.
    pub request_timeout: Duration,
    /// The components, in manifest order.
    pub components: Vec<ComponentEntry>,
    /// The initial messages, in manifest order.
    pub messages: Vec<MessageEntry>,
    /// The cluster this node joins, if any.
    pub cluster: Option<ClusterEntry>,
}

impl Manifest {
    /// Refuses a read-write directory grant that holds one of `protected` (what it is, and
    /// its path; it need not exist yet): a guest could change it, and the host reads it (a
    /// manifest, a component file, a storage file) or runs it as native code (a compile
    /// cache). Located at the grant.
    ///
    /// # Errors
    /// The first such grant.
    pub fn check_writable_grants(&self, protected: &[(&str, PathBuf)]) -> Result<(), ManifestError> {
        match grants::writable_over(&self.components, protected) {
            Some((loc, why)) => Err(ManifestError {
                file: self.path.clone(),
                position: Some(loc.position),
                field: Some(loc.field),
                message: why,
            }),
            None => Ok(()),
        }
    }

    /// True when some component may use storage.
    pub fn uses_storage(&self) -> bool {
        self.components.iter().any(|c| c.options.capabilities.storage != StorageRights::None)
    }

    /// Reads and checks a manifest file.
    ///
    /// # Errors
    /// [`ManifestError`] naming the file, and the line and field where known.
    pub fn load(path: &Path) -> Result<Manifest, ManifestError> {
        let error = |message: String| ManifestError { file: path.to_path_buf(), position: None, field: None, message };
        // Any readable file, a pipe included (`switchyard run <(make-manifest)`), read up
        // to a bound: a manifest of thousands of components is a few hundred kilobytes.
        let file = std::fs::File::open(path).map_err(|e| error(format!("cannot read the manifest: {e}")))?;
        let mut bytes = Vec::new();
        file.take(MAX_MANIFEST_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| error(format!("cannot read the manifest: {e}")))?;
        if bytes.len() as u64 > MAX_MANIFEST_BYTES {
            return Err(error(format!("the manifest is larger than {}MiB", MAX_MANIFEST_BYTES >> 20)));
        }
        let text = String::from_utf8(bytes).map_err(|e| {
            let (line, col) =
                LineIndex::new(&String::from_utf8_lossy(e.as_bytes())).position(e.utf8_error().valid_up_to());
            ManifestError { position: Some((line, col)), ..error("the manifest is not valid UTF-8".into()) }
        })?;
        Self::parse(path, &text)
    }

    /// Parses and checks manifest text; `path` names it in errors and anchors relative
    /// component paths.
    ///
    /// # Errors
    /// [`ManifestError`] naming the file, and the line and field where known.
    pub fn parse(path: &Path, text: &str) -> Result<Manifest, ManifestError> {
        let lines = LineIndex::new(text);
        let error = |span: Option<Range<usize>>, field: Option<String>, message: String| ManifestError {
            file: path.to_path_buf(),
            position: span.map(|s| lines.position(s.start)),
            field,
            message,
        };
        let de = toml::Deserializer::parse(text).map_err(|e| error(e.span(), None, e.message().to_string()))?;
        let raw: RawManifest = serde_path_to_error::deserialize(de).map_err(|e| {
            // `Spanned` fields show up as an internal key at the end of the path.
            let path = e.path().to_string();
            let field =
                path.split('.').filter(|seg| !seg.starts_with("$__serde_spanned")).collect::<Vec<_>>().join(".");
            let inner = e.into_inner();
            error(inner.span(), (field != ".").then_some(field), inner.message().to_string())
        })?;
        let at = |span: Range<usize>, field: String| Location { position: lines.position(span.start), field };
        let located = |loc: &Location, message: String| ManifestError {
            file: path.to_path_buf(),
            position: Some(loc.position),
            field: Some(loc.field.clone()),
            message,
        };
        // A number checked against its bounds, the error located at the value.
        let number = |value: &Spanned<Int>, bounds: Bounds, field: String| -> Result<u64, ManifestError> {
            let Int(n) = *value.get_ref();
            bounds.check(n, &n.to_string()).map_err(|m| located(&at(value.span(), field), m))
        };
        let millis = |value: &Spanned<Int>, bounds: Bounds, field: String| {
            number(value, bounds, field).map(Duration::from_millis)
        };

        let dir = path.parent().unwrap_or(Path::new("."));
        // Granted directories are opened without following a link on any part of their
        // path: the part the manifest writes. Where the manifest itself lives is the
        // operator's choice, links and all.
        let real_dir = std::fs::canonicalize(if dir.as_os_str().is_empty() { Path::new(".") } else { dir })
            .unwrap_or_else(|_| dir.to_path_buf());
        let mut components: Vec<ComponentEntry> = Vec::new();
        if raw.component.is_empty() {
            return Err(error(None, Some("component".into()), "the manifest declares no component".into()));
        }
        let mut ids = HashSet::new();
        for (i, c) in raw.component.into_iter().enumerate() {
            let field = |name: &str| format!("component[{i}].{name}");
            let id_loc = at(c.id.span(), field("id"));
            if i == MAX_COMPONENTS {
                return Err(located(&id_loc, format!("a manifest declares at most {MAX_COMPONENTS} components")));
            }
            let id = ComponentId::new(c.id.get_ref()).map_err(|e| located(&id_loc, e.to_string()))?;
            if !ids.insert(id.clone()) {
                return Err(located(&id_loc, format!("component id {id:?} is declared twice")));
            }
            if c.file.get_ref().is_empty() {
                return Err(located(&at(c.file.span(), field("file")), "the file path is empty".into()));
            }
            let mut options = WasmOptions::default();
            if let Some(fuel) = &c.fuel_per_message {
                options.fuel_per_message = number(fuel, bounds::FUEL_PER_MESSAGE, field("fuel_per_message"))?;
            }
            if let Some(ms) = &c.deadline_ms {
                options.deadline = millis(ms, bounds::DEADLINE_MS, field("deadline_ms"))?;
            }
            if let Some(size) = &c.memory_limit {
                let loc = at(size.span(), field("memory_limit"));
                let checked = size.get_ref().bytes().and_then(|(n, written)| bounds::MEMORY_LIMIT.check(n, &written));
                options.memory_limit = usize_of(checked.map_err(|m| located(&loc, m))?);
            }
            options.component = ComponentConfig::default();
            if let Some(n) = &c.max_subscriptions {
                options.max_subscriptions = usize_of(number(n, bounds::MAX_SUBSCRIPTIONS, field("max_subscriptions"))?);
            }
            if let Some(n) = &c.max_pending_requests {
                options.max_pending_requests =
                    usize_of(number(n, bounds::MAX_PENDING_REQUESTS, field("max_pending_requests"))?);
            }
            if let Some(ms) = &c.max_request_timeout_ms {
                options.max_request_timeout =
                    millis(ms, bounds::MAX_REQUEST_TIMEOUT_MS, field("max_request_timeout_ms"))?;
            }
            if let Some(cap) = &c.mailbox_capacity {
                options.component.mailbox_capacity =
                    usize_of(number(cap, bounds::MAILBOX_CAPACITY, field("mailbox_capacity"))?);
            }
            if let Some(r) = &c.restart {
                let d = Supervision::default();
                let opt_millis = |v: &Option<Spanned<Int>>, bounds: Bounds, name: &str, default: Duration| match v {
                    Some(v) => millis(v, bounds, field(&format!("restart.{name}"))),
                    None => Ok(default),
                };
                options.component.supervision = Supervision {
                    policy: r.policy.unwrap_or(d.policy),
                    max_restarts: match &r.max_restarts {
                        Some(n) => u32_of(number(n, bounds::MAX_RESTARTS, field("restart.max_restarts"))?),
                        None => d.max_restarts,
                    },
                    window: opt_millis(&r.window_ms, bounds::WINDOW_MS, "window_ms", d.window)?,
                    backoff_initial: opt_millis(
                        &r.backoff_initial_ms,
                        bounds::BACKOFF_MS,
                        "backoff_initial_ms",
                        d.backoff_initial,
                    )?,
                    backoff_max: opt_millis(&r.backoff_max_ms, bounds::BACKOFF_MS, "backoff_max_ms", d.backoff_max)?,
                };
            }
            let caps = &c.capabilities;
            let cap_field = |name: &str| field(&format!("capabilities.{name}"));
            let storage_quota = match &caps.storage_quota {
                Some(q) => Some(StorageQuota {
                    max_bytes: number(&q.max_bytes, bounds::QUOTA_MAX_BYTES, cap_field("storage_quota.max_bytes"))?,
                    max_keys: number(&q.max_keys, bounds::QUOTA_MAX_KEYS, cap_field("storage_quota.max_keys"))?,
                }),
                None => None,
            };
            let max_payload_bytes = match &caps.max_payload_bytes {
                Some(n) => Some(usize_of(number(n, bounds::MAX_PAYLOAD_BYTES, cap_field("max_payload_bytes"))?)),
                None => None,
            };
            options.capabilities = capabilities(caps, storage_quota, max_payload_bytes);
            let net = grants::Network { network: caps.network.as_ref(), listen: caps.listen, loopback: caps.loopback };
            options.capabilities.wasi = grants::resolve(&caps.env, &caps.args, &caps.dirs, net, &real_dir)
                .map_err(|e| located(&at(e.span, cap_field(&e.field)), e.message))?;
            let dir_locations = caps
                .dirs
                .iter()
                .enumerate()
                .map(|(k, d)| at(d.host_span(), cap_field(&format!("dirs[{k}].host"))))
                .collect();
            components.push(ComponentEntry {
                id,
                file: dir.join(c.file.get_ref()),
                file_location: at(c.file.span(), field("file")),
                location: id_loc,
                dir_locations,
                options,
            });
        }
        if let Some((loc, why)) = grants::overlap_across(&components) {
            return Err(located(&loc, why));
        }

        let mut messages = Vec::new();
        for (i, m) in raw.message.into_iter().enumerate() {
            let field = |name: &str| format!("message[{i}].{name}");
            let to_loc = at(m.to.span(), field("to"));
            let to = ComponentId::new(m.to.get_ref()).map_err(|e| located(&to_loc, e.to_string()))?;
            // In a cluster the target may be another node's: the run waits for it.
            if !ids.contains(&to) && raw.cluster.is_none() {
                return Err(located(&to_loc, format!("no component {to:?} is declared in this manifest")));
            }
            let codec = match &m.codec {
                Some(c) => Some(c.get_ref().code().map_err(|e| located(&at(c.span(), field("codec")), e))?),
                None => None,
            };
            let (payload, codec) = payload::encode(m.payload.get_ref(), codec)
                .map_err(|e| located(&at(m.payload.span(), field("payload")), e))?;
            messages.push(MessageEntry { to, payload, codec, request: m.request });
        }

        let rt = raw.runtime;
        let workers = match &rt.workers {
            Some(w) => Some(usize_of(number(w, bounds::WORKERS, "runtime.workers".into())?)),
            None => None,
        };
        let io_workers = match &rt.io_workers {
            Some(w) => Some(usize_of(number(w, bounds::IO_WORKERS, "runtime.io_workers".into())?)),
            None => None,
        };
        let drain_timeout = match &rt.drain_timeout_ms {
            Some(t) => millis(t, bounds::DRAIN_TIMEOUT_MS, "runtime.drain_timeout_ms".into())?,
            None => Duration::from_secs(5),
        };
        let request_timeout = match &rt.request_timeout_ms {
            Some(t) => millis(t, bounds::REQUEST_TIMEOUT_MS, "runtime.request_timeout_ms".into())?,
            None => Duration::from_secs(5),
        };
        let cluster = match &raw.cluster {
            Some(c) => {
                let err = |span: Range<usize>, field: &str, message: String| located(&at(span, field.into()), message);
                Some(cluster::entry(c, dir, &err, &number, &millis)?)
            }
            None => None,
        };
        let manifest = Manifest {
            path: path.to_path_buf(),
            cluster,
            workers,
            io_workers,
            pin_workers: rt.pin_workers.unwrap_or(false),
            idle_strategy: match rt.idle {
                None | Some(IdleName::Backoff) => IdleStrategy::default(),
                Some(IdleName::Park) => IdleStrategy::Park,
                Some(IdleName::BusySpin) => IdleStrategy::BusySpin,
            },
            drain_timeout,
            request_timeout,
            components,
            messages,
        };
        // A guest that could rewrite the manifest or a component file would choose the
        // code and the grants of the next run.
        let mut protected = vec![("the manifest", path.to_path_buf())];
        protected.extend(manifest.components.iter().map(|c| ("the component file", c.file.clone())));
        manifest.check_writable_grants(&protected)?;
        Ok(manifest)
    }
}

/// A duration field checked against its bounds (the parser's `millis`).
type CheckMillis<'a> = dyn Fn(&Spanned<Int>, Bounds, String) -> Result<Duration, ManifestError> + 'a;
type CheckNumber<'a> = dyn Fn(&Spanned<Int>, Bounds, String) -> Result<u64, ManifestError> + 'a;

/// A checked number as a `usize` (on 32-bit targets the 4GiB memory limit saturates).
pub(super) fn usize_of(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// A checked count as a `u32`: every bound for a `u32` field fits in it.
fn u32_of(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Rights and targets, with the numeric limits the caller checked.
fn capabilities(
    c: &RawCapabilities,
    storage_quota: Option<StorageQuota>,
    max_payload_bytes: Option<usize>,
) -> Capabilities {
    let patterns = |v: &[String]| v.iter().map(|s| TargetPattern::parse(s)).collect();
    Capabilities {
        send: patterns(&c.send),
        request: patterns(&c.request),
        publish: patterns(&c.publish),
        subscribe: patterns(&c.subscribe),
        storage: match c.storage {
            None | Some(RawStorageRights::None) => StorageRights::None,
            Some(RawStorageRights::Read) => StorageRights::Read,
            Some(RawStorageRights::ReadWrite) => StorageRights::ReadWrite,
        },
        storage_quota,
        max_payload_bytes,
        wasi: Default::default(),
    }
}

/// Byte offsets to 1-based line and column.
struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    fn new(text: &str) -> Self {
        let starts = std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect();
        Self { starts }
    }

    fn position(&self, offset: usize) -> (usize, usize) {
        let line = self.starts.partition_point(|&s| s <= offset).max(1);
        (line, offset - self.starts[line - 1] + 1)
    }
}

#[cfg(test)]
mod tests;
