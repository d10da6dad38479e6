//! The manifest: which WASM components to host, with what limits and rights, and which
//! messages to inject first. TOML, parsed with spans so that every error names the file,
//! the line and the field.
//!
//! ```toml
//! [runtime]                      # optional, as every field in it
//! workers = 2                    # default: available cores
//! io_workers = 1                 # workers for components that block on host I/O; 0: none
//! pin_workers = false            # default: false (the CLI shares its machine)
//! drain_timeout_ms = 5000        # how long the exit lets queued messages drain
//! request_timeout_ms = 5000      # a request's deadline; also how long a send waits for space
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
//! Every number has a range, checked when the manifest is parsed, before anything starts; a
//! value outside it is an error that names the file, line, column and field, and says the
//! range (`manifest.toml:31:15: component[0].deadline_ms: must be from 1 ms to ...`):
//!
//! | field | range | default |
//! |---|---|---|
//! | `runtime.workers` | from 1 to 1024 | available cores |
//! | `runtime.io_workers` | from 0 to 1024 | 1 |
//! | `runtime.drain_timeout_ms` | from 0 ms to 3600000 ms (one hour) | 5000 |
//! | `runtime.request_timeout_ms` | from 1 ms to 3600000 ms (one hour) | 5000 |
//! | `fuel_per_message` | from 1 to 1000000000000 | 10000000 |
//! | `deadline_ms` | from 1 ms to 3600000 ms (one hour) | 1000 |
//! | `memory_limit` | from 64KiB to 4GiB (one WebAssembly page to all that a 32-bit memory can address) | 16MiB |
//! | `mailbox_capacity` | from 1 to 1048576 (a mailbox's slots are allocated when the component is registered) | 128 |
//! | `restart.max_restarts` | from 0 to 10000 | 5 |
//! | `restart.window_ms` | from 1 ms to 86400000 ms (one day) | 10000 |
//! | `restart.backoff_initial_ms` | from 0 ms to 3600000 ms (one hour) | 10 |
//! | `restart.backoff_max_ms` | from 0 ms to 3600000 ms (one hour) | 1000 |
//! | `capabilities.storage_quota.max_bytes` | from 1 byte to 1TiB | no quota |
//! | `capabilities.storage_quota.max_keys` | from 1 to 1000000000 | no quota |
//! | `capabilities.max_payload_bytes` | from 1 byte to 16MiB (the runtime's limit for any payload) | 16MiB |
//! | `message.codec`, as a number | from 0 to 18446744073709551615 | raw (json for non-strings) |
//! | `message.payload`, as an array | byte values, from 0 to 255 | |
//!
//! A manifest declares from 1 to 10000 components ([`MAX_COMPONENTS`]); components that
//! name the same file (by canonical path) share one compilation of it.
//!
//! `drain_timeout_ms = 0` dead-letters what is still queued at exit; `max_restarts = 0`
//! stops a component at its first crash; a zero backoff restarts it at once. The bounds
//! live in `manifest/bounds.rs`, and a unit test checks this table and the README's
//! against them.

use std::collections::HashSet;
use std::fmt;
use std::io::Read;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use switchyard::{
    Capabilities, ComponentConfig, ComponentId, RestartPolicy, StorageQuota, StorageRights, Supervision, TargetPattern,
    WasmOptions,
};
use toml::Spanned;

use crate::payload::{self, CodecSpec};

mod bounds;
mod grants;

use bounds::{Bounds, Int, Size};
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
    drain_timeout_ms: Option<Spanned<Int>>,
    request_timeout_ms: Option<Spanned<Int>>,
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
    #[serde(default)]
    network: bool,
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
    /// Limits, rights, mailbox and supervision.
    pub options: WasmOptions,
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
    /// How long the exit lets queued messages drain.
    pub drain_timeout: Duration,
    /// How long a request waits for its reply.
    pub request_timeout: Duration,
    /// The components, in manifest order.
    pub components: Vec<ComponentEntry>,
    /// The initial messages, in manifest order.
    pub messages: Vec<MessageEntry>,
}

impl Manifest {
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
            options.capabilities.wasi = grants::resolve(&caps.env, &caps.args, &caps.dirs, caps.network, dir)
                .map_err(|e| located(&at(e.span, cap_field(&e.field)), e.message))?;
            components.push(ComponentEntry {
                id,
                file: dir.join(c.file.get_ref()),
                file_location: at(c.file.span(), field("file")),
                location: id_loc,
                options,
            });
        }

        let mut messages = Vec::new();
        for (i, m) in raw.message.into_iter().enumerate() {
            let field = |name: &str| format!("message[{i}].{name}");
            let to_loc = at(m.to.span(), field("to"));
            let to = ComponentId::new(m.to.get_ref()).map_err(|e| located(&to_loc, e.to_string()))?;
            if !ids.contains(&to) {
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
        Ok(Manifest {
            path: path.to_path_buf(),
            workers,
            io_workers,
            pin_workers: rt.pin_workers.unwrap_or(false),
            drain_timeout,
            request_timeout,
            components,
            messages,
        })
    }
}

/// A checked number as a `usize` (on 32-bit targets the 4GiB memory limit saturates).
fn usize_of(n: u64) -> usize {
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
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Manifest, ManifestError> {
        Manifest::parse(Path::new("dir/m.toml"), text)
    }

    const ONE: &str = "[[component]]\nid = \"a\"\nfile = \"a.wasm\"\n";

    #[test]
    fn minimal_manifest_resolves_files_against_its_directory() {
        let m = parse(ONE).unwrap();
        assert_eq!(m.components[0].file, Path::new("dir/a.wasm"));
        assert_eq!(m.components[0].file_location, Location { position: (3, 8), field: "component[0].file".into() });
        assert_eq!(m.components[0].options, WasmOptions::default());
    }

    #[test]
    fn syntax_error_names_file_and_line() {
        let e = parse("[[component]]\nid = \"a\nfile = 1\n").unwrap_err();
        assert_eq!(e.position.map(|p| p.0), Some(2), "{e}");
        assert!(e.to_string().starts_with("dir/m.toml:2:"), "{e}");
    }

    #[test]
    fn wrong_type_names_the_field_and_its_line() {
        let e = parse(&format!("{ONE}fuel_per_message = \"lots\"\n")).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("component[0].fuel_per_message"), "{e}");
        assert_eq!(e.position.map(|p| p.0), Some(4), "{e}");
    }

    #[test]
    fn unknown_field_is_rejected_with_its_name() {
        let e = parse(&format!("{ONE}fule_per_message = 5\n")).unwrap_err();
        assert!(e.message.contains("fule_per_message"), "{e}");
        assert_eq!(e.position.map(|p| p.0), Some(4), "{e}");
    }

    #[test]
    fn bad_storage_rights_name_the_nested_field() {
        let e = parse(&format!("{ONE}capabilities = {{ storage = \"write-only\" }}\n")).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("component[0].capabilities.storage"), "{e}");
    }

    #[test]
    fn semantic_errors_point_at_the_field() {
        let e = parse("[[component]]\nid = \"not an id\"\nfile = \"a.wasm\"\n").unwrap_err();
        assert_eq!((e.field.as_deref(), e.position), (Some("component[0].id"), Some((2, 6))), "{e}");
        let e = parse(&format!("{ONE}mailbox_capacity = 0\n")).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("component[0].mailbox_capacity"), "{e}");
        let e = parse(&format!("{ONE}{}", ONE.replace("a.wasm", "b.wasm"))).unwrap_err();
        assert!(e.message.contains("declared twice"), "{e}");
        let e = parse(&format!("{ONE}[[message]]\nto = \"ghost\"\npayload = \"x\"\n")).unwrap_err();
        assert_eq!((e.field.as_deref(), e.position), (Some("message[0].to"), Some((5, 6))), "{e}");
        let e = parse(&format!("{ONE}[[message]]\nto = \"a\"\npayload = \"x\"\ncodec = \"yaml\"\n")).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("message[0].codec"), "{e}");
        let e = parse(&format!("{ONE}memory_limit = \"3 parsecs\"\n")).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("component[0].memory_limit"), "{e}");
    }

    #[test]
    fn empty_manifest_is_an_error() {
        assert!(parse("").unwrap_err().message.contains("no component"));
    }

    #[test]
    fn options_fill_limits_rights_and_supervision() {
        let m = parse(&format!(
            "{ONE}fuel_per_message = 5000\ndeadline_ms = 20\nmemory_limit = \"1MiB\"\nmailbox_capacity = 7\n\
             restart = {{ policy = \"transient\", max_restarts = 2 }}\n\
             capabilities = {{ send = [\"b\", \"svc/*\"], storage = \"read-write\" }}\n\
             [[message]]\nto = \"a\"\npayload = {{ n = 1 }}\nrequest = true\n"
        ))
        .unwrap();
        let o = &m.components[0].options;
        assert_eq!((o.fuel_per_message, o.deadline, o.memory_limit), (5000, Duration::from_millis(20), 1 << 20));
        assert_eq!(o.component.mailbox_capacity, 7);
        assert_eq!(
            (o.component.supervision.policy, o.component.supervision.max_restarts),
            (RestartPolicy::Transient, 2)
        );
        assert_eq!(o.capabilities.send, vec![TargetPattern::Exact("b".into()), TargetPattern::Prefix("svc/".into())]);
        assert_eq!(o.capabilities.storage, StorageRights::ReadWrite);
        assert!(m.uses_storage());
        let msg = &m.messages[0];
        assert_eq!(
            (msg.payload.as_slice(), msg.codec, msg.request),
            (&b"{\"n\":1}"[..], switchyard::codec::JSON, true)
        );
    }

    #[test]
    fn numbers_out_of_range_name_the_field_its_place_and_the_range() {
        let cases = [
            ("[runtime]\nworkers = 18446744073709551615\n", "runtime.workers", (2, 11), "from 1 to 1024"),
            ("[runtime]\ndrain_timeout_ms = -1\n", "runtime.drain_timeout_ms", (2, 20), "from 0 ms to"),
            ("[runtime]\nrequest_timeout_ms = 0\n", "runtime.request_timeout_ms", (2, 22), "from 1 ms to"),
            ("fuel_per_message = 0\n", "component[0].fuel_per_message", (4, 20), "from 1 to"),
            ("deadline_ms = 18446744073709551615\n", "component[0].deadline_ms", (4, 15), "3600000 ms"),
            ("memory_limit = \"16GiB\"\n", "component[0].memory_limit", (4, 16), "to 4GiB"),
            ("memory_limit = 4294967297\n", "component[0].memory_limit", (4, 16), "to 4GiB"),
            ("memory_limit = -1\n", "component[0].memory_limit", (4, 16), "from 64KiB"),
            ("mailbox_capacity = 9223372036854775807\n", "component[0].mailbox_capacity", (4, 20), "1048576"),
            ("restart = { max_restarts = 4294967296 }\n", "component[0].restart.max_restarts", (4, 28), "10000"),
            ("restart = { window_ms = 0 }\n", "component[0].restart.window_ms", (4, 25), "from 1 ms"),
            ("restart = { backoff_initial_ms = -1 }\n", "component[0].restart.backoff_initial_ms", (4, 34), "0 ms"),
            ("restart = { backoff_max_ms = 3600001 }\n", "component[0].restart.backoff_max_ms", (4, 30), "0 ms"),
            (
                "capabilities = { storage_quota = { max_bytes = 0, max_keys = 1 } }\n",
                "component[0].capabilities.storage_quota.max_bytes",
                (4, 48),
                "from 1 byte to 1TiB",
            ),
            (
                "capabilities = { storage_quota = { max_bytes = 1, max_keys = -1 } }\n",
                "component[0].capabilities.storage_quota.max_keys",
                (4, 62),
                "from 1 to",
            ),
            (
                "capabilities = { max_payload_bytes = 16777217 }\n",
                "component[0].capabilities.max_payload_bytes",
                (4, 38),
                "16MiB",
            ),
        ];
        for (extra, field, position, range) in cases {
            let text = if extra.starts_with('[') { format!("{extra}{ONE}") } else { format!("{ONE}{extra}") };
            let e = parse(&text).unwrap_err();
            assert_eq!((e.field.as_deref(), e.position), (Some(field), Some(position)), "{text}: {e}");
            assert!(e.message.starts_with("must be from") && e.message.contains(range), "{text}: {e}");
        }
    }

    #[test]
    fn largest_accepted_numbers_reach_the_options() {
        let m = parse(&format!(
            "[runtime]\nworkers = 1024\ndrain_timeout_ms = 0\nrequest_timeout_ms = 3_600_000\n{ONE}\
             fuel_per_message = 1_000_000_000_000\ndeadline_ms = 3_600_000\nmemory_limit = \"4GiB\"\n\
             mailbox_capacity = 1_048_576\n\
             restart = {{ max_restarts = 0, window_ms = 86_400_000, backoff_initial_ms = 0, backoff_max_ms = 0 }}\n\
             capabilities = {{ max_payload_bytes = 16_777_216, \
             storage_quota = {{ max_bytes = 1_099_511_627_776, max_keys = 1_000_000_000 }} }}\n"
        ))
        .unwrap();
        assert_eq!(
            (m.workers, m.drain_timeout, m.request_timeout),
            (Some(1024), Duration::ZERO, Duration::from_secs(3600))
        );
        let o = &m.components[0].options;
        assert_eq!(
            (o.fuel_per_message, o.deadline, o.memory_limit),
            (1_000_000_000_000, Duration::from_secs(3600), 4 << 30)
        );
        assert_eq!(o.component.mailbox_capacity, 1 << 20);
        let s = &o.component.supervision;
        assert_eq!(
            (s.max_restarts, s.window, s.backoff_initial, s.backoff_max),
            (0, Duration::from_secs(86_400), Duration::ZERO, Duration::ZERO)
        );
        assert_eq!(o.capabilities.max_payload_bytes, Some(16 << 20));
        assert_eq!(o.capabilities.storage_quota, Some(StorageQuota { max_bytes: 1 << 40, max_keys: 1_000_000_000 }));
    }

    #[test]
    fn integers_beyond_what_toml_can_hold_are_located() {
        let e = parse(&format!("{ONE}deadline_ms = 1606938044258990275541962092341162602522202993782792835301376\n"))
            .unwrap_err();
        assert_eq!((e.field.as_deref(), e.position), (Some("component[0].deadline_ms"), Some((4, 15))), "{e}");
        let e = parse(&format!("{ONE}deadline_ms = 1.5\n")).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("component[0].deadline_ms"), "{e}");
        assert!(e.message.contains("expected an integer"), "{e}");
    }

    #[test]
    fn numeric_codecs_are_carried_and_negative_ones_are_located() {
        let msg = |codec: &str| parse(&format!("{ONE}[[message]]\nto = \"a\"\npayload = \"x\"\ncodec = {codec}\n"));
        assert_eq!(msg("18446744073709551615").unwrap().messages[0].codec, u64::MAX);
        let e = msg("-1").unwrap_err();
        assert_eq!((e.field.as_deref(), e.position), (Some("message[0].codec"), Some((7, 9))), "{e}");
        assert!(e.message.contains("from 0 to 18446744073709551615"), "{e}");
    }

    #[test]
    fn a_manifest_holds_at_most_max_components() {
        let many = |n: usize| -> String {
            (0..n).map(|i| format!("[[component]]\nid = \"c{i}\"\nfile = \"a.wasm\"\n")).collect()
        };
        assert_eq!(parse(&many(MAX_COMPONENTS)).unwrap().components.len(), MAX_COMPONENTS);
        let Err(e) = parse(&many(MAX_COMPONENTS + 1)) else { panic!("{} components accepted", MAX_COMPONENTS + 1) };
        let line = 3 * MAX_COMPONENTS + 2;
        assert_eq!((e.field.as_deref(), e.position), (Some("component[10000].id"), Some((line, 6))), "{e}");
        assert!(e.message.contains("at most 10000 components"), "{e}");
    }
}
