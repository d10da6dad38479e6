//! The manifest: which WASM components to host, with what limits and rights, and which
//! messages to inject first. TOML, parsed with spans so that every error names the file,
//! the line and the field.
//!
//! ```toml
//! [runtime]                      # optional, as every field in it
//! workers = 2                    # default: available cores
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

use std::fmt;
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
    workers: Option<Spanned<usize>>,
    pin_workers: Option<bool>,
    drain_timeout_ms: Option<u64>,
    request_timeout_ms: Option<Spanned<u64>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRestart {
    policy: Option<RestartPolicy>,
    max_restarts: Option<u32>,
    window_ms: Option<u64>,
    backoff_initial_ms: Option<u64>,
    backoff_max_ms: Option<u64>,
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
    max_bytes: u64,
    max_keys: u64,
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
    max_payload_bytes: Option<usize>,
}

/// A byte count: an integer, or a string such as `"16MiB"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum RawSize {
    Bytes(u64),
    Text(String),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawComponent {
    id: Spanned<String>,
    file: Spanned<String>,
    fuel_per_message: Option<Spanned<u64>>,
    deadline_ms: Option<Spanned<u64>>,
    memory_limit: Option<Spanned<RawSize>>,
    mailbox_capacity: Option<Spanned<usize>>,
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
        let text = std::fs::read_to_string(path).map_err(|e| ManifestError {
            file: path.to_path_buf(),
            position: None,
            field: None,
            message: format!("cannot read the manifest: {e}"),
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

        let dir = path.parent().unwrap_or(Path::new("."));
        let mut components: Vec<ComponentEntry> = Vec::new();
        if raw.component.is_empty() {
            return Err(error(None, Some("component".into()), "the manifest declares no component".into()));
        }
        for (i, c) in raw.component.into_iter().enumerate() {
            let field = |name: &str| format!("component[{i}].{name}");
            let id_loc = at(c.id.span(), field("id"));
            let id = ComponentId::new(c.id.get_ref()).map_err(|e| located(&id_loc, e.to_string()))?;
            if components.iter().any(|other| other.id == id) {
                return Err(located(&id_loc, format!("component id {id:?} is declared twice")));
            }
            if c.file.get_ref().is_empty() {
                return Err(located(&at(c.file.span(), field("file")), "the file path is empty".into()));
            }
            let mut options = WasmOptions::default();
            if let Some(fuel) = &c.fuel_per_message {
                options.fuel_per_message = positive(fuel, &at(fuel.span(), field("fuel_per_message")), &located)?;
            }
            if let Some(ms) = &c.deadline_ms {
                let ms = positive(ms, &at(ms.span(), field("deadline_ms")), &located)?;
                options.deadline = Duration::from_millis(ms);
            }
            if let Some(size) = &c.memory_limit {
                let loc = at(size.span(), field("memory_limit"));
                options.memory_limit = parse_size(size.get_ref()).map_err(|m| located(&loc, m))?;
            }
            options.component = ComponentConfig::default();
            if let Some(cap) = &c.mailbox_capacity {
                options.component.mailbox_capacity =
                    positive(cap, &at(cap.span(), field("mailbox_capacity")), &located)?;
            }
            if let Some(r) = &c.restart {
                options.component.supervision = supervision(r);
            }
            options.capabilities = capabilities(&c.capabilities);
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
            if !components.iter().any(|c| c.id == to) {
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
            Some(w) => Some(positive(w, &at(w.span(), "runtime.workers".into()), &located)?),
            None => None,
        };
        let request_timeout = match &rt.request_timeout_ms {
            Some(t) => positive(t, &at(t.span(), "runtime.request_timeout_ms".into()), &located)?,
            None => 5_000,
        };
        Ok(Manifest {
            path: path.to_path_buf(),
            workers,
            pin_workers: rt.pin_workers.unwrap_or(false),
            drain_timeout: Duration::from_millis(rt.drain_timeout_ms.unwrap_or(5_000)),
            request_timeout: Duration::from_millis(request_timeout),
            components,
            messages,
        })
    }
}

/// A value that must be at least 1.
fn positive<T: Copy + PartialEq + Default + fmt::Display>(
    value: &Spanned<T>,
    loc: &Location,
    located: &dyn Fn(&Location, String) -> ManifestError,
) -> Result<T, ManifestError> {
    let v = *value.get_ref();
    if v == T::default() { Err(located(loc, "must be at least 1".into())) } else { Ok(v) }
}

fn supervision(r: &RawRestart) -> Supervision {
    let d = Supervision::default();
    Supervision {
        policy: r.policy.unwrap_or(d.policy),
        max_restarts: r.max_restarts.unwrap_or(d.max_restarts),
        window: r.window_ms.map_or(d.window, Duration::from_millis),
        backoff_initial: r.backoff_initial_ms.map_or(d.backoff_initial, Duration::from_millis),
        backoff_max: r.backoff_max_ms.map_or(d.backoff_max, Duration::from_millis),
    }
}

fn capabilities(c: &RawCapabilities) -> Capabilities {
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
        storage_quota: c.storage_quota.as_ref().map(|q| StorageQuota { max_bytes: q.max_bytes, max_keys: q.max_keys }),
        max_payload_bytes: c.max_payload_bytes,
    }
}

/// Bytes from an integer or a string with an optional binary suffix (KiB, MiB, GiB).
fn parse_size(size: &RawSize) -> Result<usize, String> {
    let bytes = match size {
        RawSize::Bytes(n) => *n,
        RawSize::Text(text) => {
            let t = text.trim();
            let split = t.find(|c: char| !c.is_ascii_digit() && c != '_').unwrap_or(t.len());
            let (digits, unit) = t.split_at(split);
            let n: u64 = digits
                .replace('_', "")
                .parse()
                .map_err(|_| format!("{text:?} is not a size (examples: 1048576, \"64KiB\", \"16MiB\")"))?;
            let scale: u64 = match unit.trim() {
                "" | "B" => 1,
                "KiB" => 1 << 10,
                "MiB" => 1 << 20,
                "GiB" => 1 << 30,
                other => return Err(format!("unknown size unit {other:?} (use B, KiB, MiB or GiB)")),
            };
            n.checked_mul(scale).ok_or_else(|| format!("{text:?} is too large"))?
        }
    };
    if bytes < 65_536 {
        return Err(format!("{bytes} bytes is less than one WebAssembly page (65536 bytes)"));
    }
    usize::try_from(bytes).map_err(|_| format!("{bytes} bytes does not fit this machine"))
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
}
