//! `switchyard component new` (a core module into a component of our world) and
//! `switchyard component inspect` (what a file imports and exports, and whether this host
//! can run it).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use switchyard::{LoadError, WIT, WasiGrants, WasmConfig, WasmHost};
use wasmtime::component::types::{ComponentItem, Type};

/// A command that could not do its job; the text says why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandError(pub String);

impl std::fmt::Display for CommandError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CommandError {}

fn host(cache_dir: Option<&Path>) -> Result<WasmHost, CommandError> {
    // No pooling: inspecting compiles one component and needs no reserved instance slots
    // (and compiled code does not depend on pooling, so `run` reuses what this caches).
    let config = WasmConfig { pooling: false, cache_dir: cache_dir.map(Path::to_path_buf), ..WasmConfig::default() };
    WasmHost::new(config).map_err(|e| CommandError(e.to_string()))
}

/// Reads an input file as the WASM host reads component files: a regular file, size-capped.
fn read(path: &Path) -> Result<Vec<u8>, CommandError> {
    switchyard::read_component_file(path).map_err(|e| CommandError(e.to_string()))
}

/// A `--wit` path must be a directory or a regular file (the WIT parser reads a file to its
/// end, so a device such as `/dev/zero` would never finish).
fn check_wit_path(wit: &Path) -> Result<(), CommandError> {
    let meta = std::fs::metadata(wit).map_err(|e| CommandError(format!("cannot read {}: {e}", wit.display())))?;
    if meta.is_dir() || meta.is_file() {
        return Ok(());
    }
    Err(CommandError(format!("--wit {} is neither a directory nor a regular file", wit.display())))
}

/// Turns a canonical-ABI core module (binary or text) into a component of our world
/// (or of the world in `wit`), writes it to `out`, and says whether this host can run it.
///
/// # Errors
/// The input cannot be read or converted, or the output cannot be written.
pub fn new(input: &Path, wit: Option<&Path>, out: &Path) -> Result<String, CommandError> {
    let core = read(input)?;
    if let Some(wit) = wit {
        check_wit_path(wit)?;
    }
    let component = match wit {
        Some(dir) => switchyard::componentize_with_wit(&core, dir),
        None => switchyard::componentize(&core),
    }
    .map_err(|e| CommandError(format!("{}: {e}", input.display())))?;
    std::fs::write(out, &component).map_err(|e| CommandError(format!("cannot write {}: {e}", out.display())))?;
    let verdict = match host(None)?.load(&component) {
        Ok(code) => {
            format!("satisfies {}{}", switchyard::WORLD_PACKAGE, if code.has_init() { " (with init)" } else { "" })
        }
        Err(e) => format!("warning: this host cannot run it: {e}"),
    };
    Ok(format!("wrote {} ({} bytes); {verdict}", out.display(), component.len()))
}

/// What `inspect` found.
pub struct Inspection {
    /// The report, ready to print.
    pub text: String,
    /// True when this host can run the component.
    pub satisfies: bool,
}

/// The functions of each interface our world imports and exports, from the embedded WIT.
struct World {
    imports: BTreeMap<String, Vec<String>>,
    exports: BTreeMap<String, Vec<String>>,
}

fn our_world() -> Result<World, CommandError> {
    let mut resolve = wit_parser::Resolve::default();
    let err = |e: &dyn std::fmt::Display| CommandError(format!("the embedded WIT does not parse: {e}"));
    let pkg = resolve.push_str("switchyard.wit", WIT).map_err(|e| err(&e))?;
    let world = resolve.select_world(&[pkg], Some("guest-with-init")).map_err(|e| err(&e))?;
    let interfaces = |items: &dyn Fn() -> Vec<wit_parser::InterfaceId>| -> BTreeMap<String, Vec<String>> {
        items()
            .into_iter()
            .filter_map(|id| {
                let name = resolve.id_of(id)?;
                Some((name, resolve.interfaces[id].functions.keys().cloned().collect()))
            })
            .collect()
    };
    let w = &resolve.worlds[world];
    let ids = |m: &wit_parser::IndexMap<wit_parser::WorldKey, wit_parser::WorldItem>| {
        m.values()
            .filter_map(|item| match item {
                wit_parser::WorldItem::Interface { id, .. } => Some(*id),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    Ok(World { imports: interfaces(&|| ids(&w.imports)), exports: interfaces(&|| ids(&w.exports)) })
}

fn type_name(t: &Type) -> String {
    match t {
        Type::Bool => "bool".into(),
        Type::S8 => "s8".into(),
        Type::U8 => "u8".into(),
        Type::S16 => "s16".into(),
        Type::U16 => "u16".into(),
        Type::S32 => "s32".into(),
        Type::U32 => "u32".into(),
        Type::S64 => "s64".into(),
        Type::U64 => "u64".into(),
        Type::Float32 => "f32".into(),
        Type::Float64 => "f64".into(),
        Type::Char => "char".into(),
        Type::String => "string".into(),
        Type::List(l) => format!("list<{}>", type_name(&l.ty())),
        Type::Option(o) => format!("option<{}>", type_name(&o.ty())),
        Type::Result(r) => {
            let side = |t: Option<Type>| t.map_or("_".to_string(), |t| type_name(&t));
            format!("result<{}, {}>", side(r.ok()), side(r.err()))
        }
        Type::Tuple(t) => format!("tuple<{}>", t.types().map(|t| type_name(&t)).collect::<Vec<_>>().join(", ")),
        Type::Record(r) => format!("record {{ {} }}", r.fields().map(|f| f.name).collect::<Vec<_>>().join(", ")),
        Type::Enum(e) => format!("enum {{ {} }}", e.names().collect::<Vec<_>>().join(", ")),
        Type::Variant(v) => format!("variant {{ {} }}", v.cases().map(|c| c.name).collect::<Vec<_>>().join(", ")),
        Type::Flags(f) => format!("flags {{ {} }}", f.names().collect::<Vec<_>>().join(", ")),
        other => format!("{other:?}").split('(').next().unwrap_or("?").to_lowercase(),
    }
}

fn item_lines(engine: &wasmtime::Engine, name: &str, item: &ComponentItem, out: &mut String) -> Vec<String> {
    let mut functions = Vec::new();
    match item {
        ComponentItem::ComponentInstance(inst) => {
            let _ = writeln!(out, "  {name} (instance)");
            for (f, ext) in inst.exports(engine) {
                if let ComponentItem::ComponentFunc(func) = &ext.ty {
                    let params: Vec<String> = func.params().map(|(p, t)| format!("{p}: {}", type_name(&t))).collect();
                    let results: Vec<String> = func.results().map(|t| type_name(&t)).collect();
                    let arrow = if results.is_empty() { String::new() } else { format!(" -> {}", results.join(", ")) };
                    let _ = writeln!(out, "    {f}: func({}){arrow}", params.join(", "));
                    functions.push(f.to_string());
                } else {
                    let _ = writeln!(out, "    {f} (type)");
                }
            }
        }
        ComponentItem::ComponentFunc(_) => {
            let _ = writeln!(out, "  {name} (function)");
        }
        ComponentItem::Type(_) => {
            let _ = writeln!(out, "  {name} (type)");
        }
        _ => {
            let _ = writeln!(out, "  {name} (other item)");
        }
    }
    functions
}

fn core_module_report(binary: &[u8], out: &mut String) {
    let _ = writeln!(out, "kind: core WebAssembly module, not a component");
    for payload in wasmparser::Parser::new(0).parse_all(binary).flatten() {
        match payload {
            wasmparser::Payload::ImportSection(imports) => {
                let _ = writeln!(out, "core imports:");
                for imp in imports.into_imports().flatten() {
                    let _ = writeln!(out, "  {} {}", imp.module, imp.name);
                }
            }
            wasmparser::Payload::ExportSection(exports) => {
                let _ = writeln!(out, "core exports:");
                for exp in exports.into_iter().flatten() {
                    let _ = writeln!(out, "  {}", exp.name);
                }
            }
            _ => {}
        }
    }
    let _ = writeln!(
        out,
        "verdict: this host runs components only; if the module follows the canonical ABI of our world, \
         convert it with `switchyard component new`"
    );
}

/// What a component may do through a WASI interface without a grant, and the manifest field
/// that grants more (the policy of `switchyard::WasiGrants`).
fn wasi_default(interface: &str) -> (&'static str, Option<&'static str>) {
    let family = interface.split('@').next().unwrap_or(interface);
    match family {
        "wasi:cli/environment" => ("no variables, no arguments", Some("capabilities.env, capabilities.args")),
        "wasi:cli/stdin" => ("empty", None),
        "wasi:cli/stdout" | "wasi:cli/stderr" => ("lines go to the log, tagged with the component's id", None),
        "wasi:cli/exit" => ("exit ends the call as a trap", None),
        f if f.starts_with("wasi:cli/terminal") => ("not a terminal", None),
        f if f.starts_with("wasi:clocks/") || f.starts_with("wasi:random/") || f.starts_with("wasi:io/") => {
            ("available", None)
        }
        f if f.starts_with("wasi:filesystem/") => {
            ("no directory: every path fails to open", Some("capabilities.dirs, each confined to itself"))
        }
        f if f.starts_with("wasi:sockets/") => (
            "every address refused, counted as a denial; no name lookup",
            Some("capabilities.network (true: public addresses; a list: those hosts), .loopback, .listen"),
        ),
        f if f.starts_with("wasi:http/") => ("outgoing requests refused, counted as denials", None),
        _ => ("as wasmtime-wasi provides it", None),
    }
}

/// A component's grants, in manifest terms (`-` for none).
fn describe_grants(g: &WasiGrants) -> String {
    let mut parts = Vec::new();
    if !g.env.is_empty() {
        let names: Vec<&str> = g.env.iter().map(|(k, _)| k.as_str()).collect();
        parts.push(format!("env {}", names.join(", ")));
    }
    if !g.args.is_empty() {
        parts.push(format!("args {:?}", g.args));
    }
    for d in &g.dirs {
        let mode = if d.writable { "read-write" } else { "read-only" };
        parts.push(format!("dir {} at {} ({mode})", d.host.display(), d.guest));
    }
    if g.network {
        parts.push("network (public addresses)".into());
    }
    if !g.outbound.is_empty() {
        let list: Vec<String> = g.outbound.iter().map(ToString::to_string).collect();
        parts.push(format!("network to {}", list.join(", ")));
    }
    if g.loopback {
        parts.push("loopback".into());
    }
    if g.listen {
        parts.push("listen".into());
    }
    if parts.is_empty() { "nothing beyond the defaults".into() } else { parts.join("; ") }
}

/// The WASI section: each imported interface with what the host gives it by default, then
/// what each manifest component that uses the file is granted.
fn wasi_report(imported: &[String], grants: &[(String, WasiGrants)], out: &mut String) {
    if imported.is_empty() {
        let _ = writeln!(out, "wasi: imports none");
    } else {
        let _ = writeln!(out, "wasi: imports {} interfaces; without a grant (deny by default):", imported.len());
        let width = imported.iter().map(String::len).max().unwrap_or(0);
        for name in imported {
            let (default, grant) = wasi_default(name);
            let grant = grant.map(|g| format!(" (granted by {g})")).unwrap_or_default();
            let _ = writeln!(out, "  {name:width$}  {default}{grant}");
        }
    }
    for (id, g) in grants {
        let _ = writeln!(out, "wasi: component {id} of the manifest is granted {}", describe_grants(g));
    }
}

/// The WASI grants of each component of `manifest` whose file is `file`, by id.
///
/// # Errors
/// The manifest cannot be read or is invalid (a located error); no component uses the file.
pub fn manifest_grants(manifest: &Path, file: &Path) -> Result<Vec<(String, WasiGrants)>, CommandError> {
    let m = crate::manifest::Manifest::load(manifest).map_err(|e| CommandError(e.to_string()))?;
    let same = |p: &Path| match (std::fs::canonicalize(p), std::fs::canonicalize(file)) {
        (Ok(a), Ok(b)) => a == b,
        _ => p == file,
    };
    let grants: Vec<_> = m
        .components
        .iter()
        .filter(|c| same(&c.file))
        .map(|c| (c.id.to_string(), c.options.capabilities.wasi.clone()))
        .collect();
    if grants.is_empty() {
        return Err(CommandError(format!("{}: no component uses {}", manifest.display(), file.display())));
    }
    Ok(grants)
}

/// Lists a file's imports and exports and checks it against our world. With `cache_dir`,
/// the component is compiled once through that compile cache (the check reads it back), and
/// a later `switchyard run --cache-dir` of the same file finds it there; without, it is
/// compiled twice (for its types, then for the check).
///
/// # Errors
/// The file cannot be read, or is not WebAssembly at all; the cache directory cannot be made.
pub fn inspect(
    path: &Path,
    cache_dir: Option<&Path>,
    grants: &[(String, WasiGrants)],
) -> Result<Inspection, CommandError> {
    let bytes = read(path)?;
    let binary = if bytes.starts_with(b"\0asm") {
        bytes
    } else {
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| CommandError(format!("{}: {}", path.display(), LoadError::NotWasm)))?;
        wat::parse_str(text)
            .map_err(|e| CommandError(format!("{}: {}", path.display(), LoadError::InvalidText(e.to_string()))))?
    };
    let mut out = format!("{} ({} bytes)\n", path.display(), binary.len());
    if wasmparser::Parser::is_core_wasm(&binary) {
        core_module_report(&binary, &mut out);
        return Ok(Inspection { text: out, satisfies: false });
    }
    let host = host(cache_dir)?;
    let engine = host.engine();
    let component = match host.compile(&binary) {
        Ok(c) => c,
        Err(e) => {
            let _ = writeln!(out, "verdict: does not satisfy our world: {e}");
            return Ok(Inspection { text: out, satisfies: false });
        }
    };
    let world = our_world()?;
    let ty = component.component_type();
    let mut mismatches = Vec::new();
    let _ = writeln!(out, "kind: component\nimports:");
    let mut wasi = Vec::new();
    for (name, ext) in ty.imports(engine) {
        let functions = item_lines(engine, name, &ext.ty, &mut out);
        if name.starts_with("wasi:") {
            // Linked from wasmtime-wasi; if one cannot be, the verdict below says why.
            wasi.push(name.to_string());
            continue;
        }
        match world.imports.get(name) {
            None if name.starts_with("switchyard:component/") => mismatches
                .push(format!("imports {name}, but the host provides the {} interfaces", switchyard::WORLD_PACKAGE)),
            None => mismatches.push(format!("imports {name}, which the host does not provide")),
            Some(provided) => {
                for f in functions.iter().filter(|f| !provided.contains(f)) {
                    mismatches.push(format!("imports {name}#{f}, which the host does not provide"));
                }
            }
        }
    }
    wasi_report(&wasi, grants, &mut out);
    let _ = writeln!(out, "exports:");
    let mut exported = BTreeMap::new();
    for (name, ext) in ty.exports(engine) {
        exported.insert(name.to_string(), item_lines(engine, name, &ext.ty, &mut out));
    }
    let handler = switchyard::HANDLER_EXPORT;
    match exported.get(handler) {
        None => mismatches.push(format!("does not export {handler}")),
        Some(functions) => {
            for f in world.exports.get(handler).into_iter().flatten().filter(|f| !functions.contains(f)) {
                mismatches.push(format!("exports {handler} without {f}"));
            }
        }
    }
    let verdict = host.load(&binary);
    let satisfies = verdict.is_ok();
    match verdict {
        Ok(code) => {
            let init = if code.has_init() { "guest-with-init (exports lifecycle.init)" } else { "guest" };
            let _ = writeln!(out, "verdict: satisfies {} world {init}", switchyard::WORLD_PACKAGE);
        }
        Err(e) => {
            let _ = writeln!(out, "verdict: does not satisfy {}: {e}", switchyard::WORLD_PACKAGE);
            for m in &mismatches {
                let _ = writeln!(out, "  - {m}");
            }
        }
    }
    if let (Some(dir), Some(stats)) = (cache_dir, host.cache_stats()) {
        let _ = writeln!(out, "{}", crate::run::cache_line(dir, &stats));
    }
    Ok(Inspection { text: out, satisfies })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wasi_defaults_name_the_grant_that_opens_files_sockets_and_the_environment() {
        assert_eq!(
            wasi_default("wasi:filesystem/preopens@0.2.9").1,
            Some("capabilities.dirs, each confined to itself")
        );
        let sockets = wasi_default("wasi:sockets/tcp@0.2.12").1.expect("a grant");
        assert!(sockets.starts_with("capabilities.network"), "{sockets}");
        assert_eq!(wasi_default("wasi:cli/environment@0.2.0").1, Some("capabilities.env, capabilities.args"));
        let (http, grant) = wasi_default("wasi:http/outgoing-handler@0.2.10");
        assert_eq!((http, grant), ("outgoing requests refused, counted as denials", None));
        assert_eq!(wasi_default("wasi:clocks/wall-clock@0.2.9"), ("available", None));
    }
}
