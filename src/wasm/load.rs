//! Loading guest code: bytes, `.wasm` files or component text, checked against our world;
//! and turning a canonical-ABI core module into a component of our world.

use std::fmt;
use std::io::Read;
use std::path::Path;

use wasmtime::component::Component;

/// The WIT package the host implements, embedded so loading needs no files.
pub const WIT: &str = include_str!("../../wit/switchyard.wit");
/// The package name and version of our world.
pub const WORLD_PACKAGE: &str = "switchyard:component@0.1.0";
/// The handler interface every guest exports.
pub const HANDLER_EXPORT: &str = "switchyard:component/handler@0.1.0";
/// The optional lifecycle interface (guest `init` and `health`, each optional).
pub const LIFECYCLE_EXPORT: &str = "switchyard:component/lifecycle@0.1.0";
/// The functions of the lifecycle interface, each optional.
pub(crate) const LIFECYCLE_FUNCTIONS: [&str; 2] = ["init", "health"];
/// The largest component file [`crate::WasmHost::load_file`] and [`read_component_file`] read:
/// 256 MiB. Guests built by real toolchains (componentize-py, componentize-js) are a few
/// tens of megabytes.
pub const MAX_COMPONENT_FILE_BYTES: u64 = 256 << 20;

/// Why guest code could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LoadError {
    /// The file could not be read.
    Io {
        /// The path.
        path: String,
        /// The OS error.
        message: String,
    },
    /// The path (after following symlinks) is not a regular file: a directory, a device
    /// such as `/dev/zero`, a FIFO or a socket. Nothing was read from it.
    NotAFile {
        /// The path.
        path: String,
        /// What it is instead (`"a directory"`, `"a character device"`, `"a FIFO"`, ...).
        kind: &'static str,
    },
    /// The file is larger than [`MAX_COMPONENT_FILE_BYTES`].
    TooLarge {
        /// The path.
        path: String,
        /// Its size in bytes; for a file that grew while it was read, what had been read
        /// when reading stopped (one byte over the limit).
        size: u64,
        /// The limit, [`MAX_COMPONENT_FILE_BYTES`].
        limit: u64,
    },
    /// The bytes are neither a WebAssembly binary nor WebAssembly text.
    NotWasm,
    /// The text did not parse as WebAssembly text.
    InvalidText(String),
    /// A core module where a component is needed; turn it into one with
    /// [`crate::componentize`] (`switchyard component new`).
    CoreModule,
    /// The component does not export a required interface or function.
    MissingExport(String),
    /// The component targets another version of our world.
    WrongWorldVersion {
        /// What it exports.
        found: String,
        /// What we support.
        expected: &'static str,
    },
    /// The component imports something the host does not provide.
    UnsatisfiedImport(String),
    /// wasmtime rejected the component (invalid or unsupported).
    Compile(String),
    /// Turning a core module into a component failed.
    Componentize(String),
    /// One instance of the component would take more of something than the host allows a
    /// component ([`crate::WasmConfig::max_core_instances`], `max_memories`, `max_tables`).
    OverLimits {
        /// What (`"core instances"`, `"linear memories"`, `"tables"`).
        what: &'static str,
        /// How many one instance of the component has.
        count: u64,
        /// The host's bound, and the setting that holds it.
        limit: u64,
        /// The [`crate::WasmConfig`] field that holds the bound.
        setting: &'static str,
    },
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Io { path, message } => write!(f, "cannot read {path}: {message}"),
            LoadError::NotAFile { path, kind } => write!(f, "{path} is {kind}, not a regular file"),
            LoadError::TooLarge { path, size, limit } => {
                write!(f, "{path} is larger than a component file may be ({size} bytes; the limit is {limit})")
            }
            LoadError::NotWasm => write!(f, "not WebAssembly (neither binary nor text)"),
            LoadError::InvalidText(m) => write!(f, "invalid WebAssembly text: {m}"),
            LoadError::CoreModule => write!(
                f,
                "this is a core WebAssembly module, not a component; convert it with `switchyard component new`"
            ),
            LoadError::MissingExport(name) => write!(f, "the component does not export {name}"),
            LoadError::WrongWorldVersion { found, expected } => {
                write!(f, "the component exports {found}, but this host implements {expected}")
            }
            LoadError::UnsatisfiedImport(m) => write!(f, "the component imports something the host lacks: {m}"),
            LoadError::Compile(m) => write!(f, "the component does not compile: {m}"),
            LoadError::Componentize(m) => write!(f, "cannot turn the core module into a component: {m}"),
            LoadError::OverLimits { what, count, limit, setting } => write!(
                f,
                "one instance of the component has {count} {what}; this host allows a component at most {limit} \
                 (WasmConfig::{setting})"
            ),
        }
    }
}

impl std::error::Error for LoadError {}

/// What kind of WebAssembly some bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WasmKind {
    Component,
    CoreModule,
}

/// Turns text into binary if needed and says what the binary is.
pub(crate) fn to_binary(bytes: &[u8]) -> Result<(Vec<u8>, WasmKind), LoadError> {
    let binary = if bytes.starts_with(b"\0asm") {
        bytes.to_vec()
    } else {
        let text = std::str::from_utf8(bytes).map_err(|_| LoadError::NotWasm)?;
        if !text.trim_start().starts_with('(') && !text.trim_start().starts_with(";;") {
            return Err(LoadError::NotWasm);
        }
        wat::parse_str(text).map_err(|e| LoadError::InvalidText(e.to_string()))?
    };
    if wasmparser::Parser::is_component(&binary) {
        Ok((binary, WasmKind::Component))
    } else if wasmparser::Parser::is_core_wasm(&binary) {
        Ok((binary, WasmKind::CoreModule))
    } else {
        Err(LoadError::NotWasm)
    }
}

/// Reads a component file (or a core module, or text) for loading: a regular file, after
/// following symlinks, of at most [`MAX_COMPONENT_FILE_BYTES`].
///
/// A directory, a device (`/dev/zero`), a FIFO or a socket is refused before anything is
/// read; a FIFO is opened without waiting for a writer. The read is bounded, so a file that
/// grows while it is read cannot take more than the limit (and one byte) of memory.
///
/// # Errors
/// [`LoadError::NotAFile`], [`LoadError::TooLarge`], or [`LoadError::Io`] naming the path.
pub fn read_component_file(path: &Path) -> Result<Vec<u8>, LoadError> {
    let shown = || path.display().to_string();
    let io = |e: std::io::Error| LoadError::Io { path: shown(), message: e.to_string() };
    let regular = |meta: &std::fs::Metadata| -> Result<u64, LoadError> {
        if !meta.is_file() {
            return Err(LoadError::NotAFile { path: shown(), kind: file_kind(&meta.file_type()) });
        }
        if meta.len() > MAX_COMPONENT_FILE_BYTES {
            return Err(LoadError::TooLarge { path: shown(), size: meta.len(), limit: MAX_COMPONENT_FILE_BYTES });
        }
        Ok(meta.len())
    };
    // Checked before opening: opening a device can have effects of its own.
    regular(&std::fs::metadata(path).map_err(io)?)?;
    let file = open_without_waiting(path).map_err(io)?;
    // Checked again on what was opened, in case the path changed in between.
    let len = regular(&file.metadata().map_err(io)?)?;
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.take(MAX_COMPONENT_FILE_BYTES + 1).read_to_end(&mut bytes).map_err(io)?;
    let read = bytes.len() as u64;
    if read > MAX_COMPONENT_FILE_BYTES {
        return Err(LoadError::TooLarge { path: shown(), size: read, limit: MAX_COMPONENT_FILE_BYTES });
    }
    Ok(bytes)
}

/// The name the executor reads component files by.
pub(crate) use self::read_component_file as read_file;

/// Opens for reading; on Unix with `O_NONBLOCK`, so that a FIFO swapped in after the
/// metadata check does not block the open until a writer comes (the check after opening
/// then refuses it). Reads of regular files ignore the flag.
pub(crate) fn open_without_waiting(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    options.open(path)
}

/// What a file that is not a regular file is, for errors.
fn file_kind(t: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    if t.is_dir() { "a directory" } else { "an unknown kind of file" }
}

/// Checks that a compiled component exports our handler interface at our version; true
/// when it also exports the lifecycle interface.
pub(crate) fn check_exports(engine: &wasmtime::Engine, component: &Component) -> Result<bool, LoadError> {
    let ty = component.component_type();
    let mut has_handler = false;
    let mut has_lifecycle = false;
    let mut other_version = None;
    for (name, _) in ty.exports(engine) {
        if name == HANDLER_EXPORT {
            has_handler = true;
        } else if name == LIFECYCLE_EXPORT {
            has_lifecycle = true;
        } else if name.starts_with("switchyard:component/handler@") {
            other_version = Some(name.to_string());
        }
    }
    if !has_handler {
        return Err(match other_version {
            Some(found) => LoadError::WrongWorldVersion { found, expected: HANDLER_EXPORT },
            None => LoadError::MissingExport(HANDLER_EXPORT.to_string()),
        });
    }
    Ok(has_lifecycle)
}

/// Turns a core module that follows the canonical ABI into a component of our world.
///
/// The module must import our interfaces under their canonical names (for example
/// `switchyard:component/messaging@0.1.0` / `send-message`), export
/// `switchyard:component/handler@0.1.0#handle-message` and `#handle-callback` (and,
/// optionally, `switchyard:component/lifecycle@0.1.0#init` and `#health`), a `memory` and
/// `cabi_realloc`. If it already carries component-type metadata (as produced by
/// wit-bindgen), that metadata is used; otherwise our world is embedded, its lifecycle
/// interface holding just the functions the module exports (WIT has no optional
/// functions; the host looks each one up on its own).
///
/// A module that imports WASI preview 1 (`wasi_snapshot_preview1`, as C built against
/// wasi-libc does) is linked with wasmtime's WASI preview1 *reactor* adapter (of the same
/// release as the host's wasmtime): the component then imports the WASI 0.2 interfaces
/// the adapter uses (`wasi:cli/*`, `wasi:io/*`, `wasi:clocks/*`, `wasi:filesystem/*`,
/// `wasi:random/*`) besides our world's. The reactor adapter, not the command one:
/// guests export functions and have no `main`. A module's `_initialize` (wasi-libc's
/// reactor start-up) runs when the component is instantiated.
///
/// # Errors
/// [`LoadError::Componentize`] with wit-component's explanation.
pub fn componentize(core_module: &[u8]) -> Result<Vec<u8>, LoadError> {
    componentize_with(core_module, None)
}

/// As [`componentize`], with the world read from a WIT directory (or file) instead of
/// the embedded one.
///
/// # Errors
/// [`LoadError::Componentize`] when the WIT does not parse or the module does not match.
pub fn componentize_with_wit(core_module: &[u8], wit: &Path) -> Result<Vec<u8>, LoadError> {
    componentize_with(core_module, Some(wit))
}

fn componentize_with(core_module: &[u8], wit: Option<&Path>) -> Result<Vec<u8>, LoadError> {
    let (mut module, kind) = to_binary(core_module)?;
    if kind == WasmKind::Component {
        return Err(LoadError::Componentize("the input is already a component".into()));
    }
    let err = |e: anyhow::Error| LoadError::Componentize(format!("{e:#}"));
    if !has_component_type_section(&module) {
        let mut resolve = wit_parser::Resolve::default();
        let pkg = match wit {
            Some(path) => resolve.push_path(path).map_err(err)?.0,
            None => resolve.push_str("switchyard.wit", WIT).map_err(err)?,
        };
        let exported: Vec<&str> = LIFECYCLE_FUNCTIONS
            .into_iter()
            .filter(|f| exports_name(&module, &format!("{LIFECYCLE_EXPORT}#{f}")))
            .collect();
        let world_name = if exported.is_empty() { "guest" } else { "guest-with-init" };
        let world = resolve.select_world(&[pkg], Some(world_name)).map_err(err)?;
        // The module must export every function of an interface the world exports:
        // narrow the lifecycle interface to the ones it has.
        let lifecycle = resolve.packages[pkg].interfaces.get("lifecycle").copied();
        if let Some(lifecycle) = lifecycle {
            resolve.interfaces[lifecycle].functions.retain(|name, _| exported.contains(&name.as_str()));
        }
        wit_component::embed_component_metadata(&mut module, &resolve, world, wit_component::StringEncoding::UTF8)
            .map_err(err)?;
    }
    let mut encoder = wit_component::ComponentEncoder::default().module(&module).map_err(err)?;
    if imports_module(&module, WASI_PREVIEW1) {
        use wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER as REACTOR;
        encoder = encoder.adapter(WASI_PREVIEW1, REACTOR).map_err(err)?;
    }
    encoder.validate(true).encode().map_err(err)
}

/// The core import module of WASI preview 1, and the name the adapter is registered under.
const WASI_PREVIEW1: &str = wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME;

fn imports_module(module: &[u8], name: &str) -> bool {
    wasmparser::Parser::new(0).parse_all(module).any(|p| match p {
        Ok(wasmparser::Payload::ImportSection(imports)) => {
            imports.into_imports().any(|i| i.is_ok_and(|i| i.module == name))
        }
        _ => false,
    })
}

fn has_component_type_section(module: &[u8]) -> bool {
    wasmparser::Parser::new(0)
        .parse_all(module)
        .any(|p| matches!(p, Ok(wasmparser::Payload::CustomSection(c)) if c.name().starts_with("component-type")))
}

fn exports_name(module: &[u8], name: &str) -> bool {
    wasmparser::Parser::new(0).parse_all(module).any(|p| match p {
        Ok(wasmparser::Payload::ExportSection(exports)) => exports.into_iter().any(|e| e.is_ok_and(|e| e.name == name)),
        _ => false,
    })
}
