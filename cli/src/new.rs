//! `switchyard new guest|host NAME`: writes a crate to start from, as `cargo new` does.
//!
//! - a guest: a library crate that builds for `wasm32-wasip2` into a component (a counter
//!   kept in storage, written with `switchyard-guest`), with the manifest that hosts it;
//! - a host: a binary crate that embeds the engine natively and runs a typed component.
//!
//! Both depend on this checkout by path (where the binary was built from, or `--sdk`), take
//! its `Cargo.lock` (the versions it was tested with), and are workspaces of their own. An
//! existing file is never overwritten: the crate's directory must be new or empty, and
//! every file is created with `create_new`.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The longest crate name accepted.
pub const MAX_NAME_LEN: usize = 64;

/// Which crate to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A guest component (`wasm32-wasip2`) and its manifest.
    Guest,
    /// A native host embedding the engine.
    Host,
}

impl Kind {
    /// The package the crate depends on by path.
    fn sdk_package(self) -> &'static str {
        match self {
            Kind::Guest => "switchyard-guest",
            Kind::Host => "switchyard",
        }
    }

    /// Where that package is in the checkout this binary was built from.
    fn default_sdk(self) -> PathBuf {
        let checkout = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap_or(Path::new("/"));
        match self {
            Kind::Guest => checkout.join("guest"),
            Kind::Host => checkout.to_path_buf(),
        }
    }

    fn word(self) -> &'static str {
        match self {
            Kind::Guest => "guest",
            Kind::Host => "host",
        }
    }
}

/// Names a crate may not take: Rust keywords, the built-in crates, names Windows cannot
/// give a file, and the crates the scaffolds depend on (a package cannot depend on itself).
const RESERVED: &[&str] = &[
    "abstract",
    "as",
    "async",
    "await",
    "become",
    "box",
    "break",
    "const",
    "continue",
    "crate",
    "do",
    "dyn",
    "else",
    "enum",
    "extern",
    "false",
    "final",
    "fn",
    "for",
    "gen",
    "if",
    "impl",
    "in",
    "let",
    "loop",
    "macro",
    "match",
    "mod",
    "move",
    "mut",
    "override",
    "priv",
    "pub",
    "ref",
    "return",
    "self",
    "static",
    "struct",
    "super",
    "trait",
    "true",
    "try",
    "type",
    "typeof",
    "unsafe",
    "unsized",
    "use",
    "virtual",
    "where",
    "while",
    "yield",
    "alloc",
    "core",
    "proc_macro",
    "std",
    "test",
    "con",
    "prn",
    "aux",
    "nul",
    "serde",
    "switchyard",
    "switchyard_guest",
];

/// Checks a crate name (clap's value parser for NAME): 1 to [`MAX_NAME_LEN`] of lowercase
/// ASCII letters, digits, `-` and `_`, starting with a letter, and not a reserved name.
///
/// # Errors
/// What is wrong with it, in a sentence.
pub fn parse_name(name: &str) -> Result<String, String> {
    let rule = format!(
        "a crate name is 1 to {MAX_NAME_LEN} lowercase ASCII letters, digits, '-' and '_', starting with a letter"
    );
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(format!("{rule} (this one has {} bytes)", name.len()));
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err(format!("{rule}: it starts with {:?}", name.chars().next().unwrap_or_default()));
    }
    if let Some(bad) = name.chars().find(|&c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')) {
        return Err(format!("{rule}: {bad:?} is not allowed"));
    }
    let normal = name.replace('-', "_");
    let windows_device = (normal.starts_with("com") || normal.starts_with("lpt"))
        && normal.len() == 4
        && normal.ends_with(|c: char| c.is_ascii_digit());
    if RESERVED.contains(&normal.as_str()) || windows_device {
        return Err(format!(
            "{name:?} is reserved (a Rust keyword, a built-in crate, a device name on Windows, or a crate the \
             scaffold depends on): choose another name"
        ));
    }
    Ok(name.to_string())
}

/// What to write.
pub struct NewArgs {
    /// Guest or host.
    pub kind: Kind,
    /// The crate's name (checked by [`parse_name`]).
    pub name: String,
    /// The directory to create the crate in (default: the current one).
    pub dir: Option<PathBuf>,
    /// The SDK crate to depend on (default: this checkout's).
    pub sdk: Option<PathBuf>,
}

/// Writes the crate; returns what to tell the user (where it is and what to run next).
///
/// # Errors
/// The SDK is not there, the crate's directory exists and is not empty (nothing is
/// written then), or a file could not be written (what was written is removed again).
pub fn new(args: &NewArgs) -> Result<String, String> {
    let sdk = sdk_path(args.kind, args.sdk.as_deref())?;
    let sdk_text = sdk.to_str().ok_or_else(|| format!("{}: the SDK's path is not UTF-8", sdk.display()))?;
    let at = args.dir.as_deref().unwrap_or(Path::new(".")).join(&args.name);
    let files = files(args.kind, &args.name, sdk_text);
    // The checkout's lock: the versions it was tested with (cargo drops what is not used).
    let checkout = if args.kind == Kind::Guest { sdk.parent().unwrap_or(&sdk) } else { &sdk };
    let lock = fs::read_to_string(checkout.join("Cargo.lock")).ok();
    let mut written = Written::default();
    if let Err(e) = write_all(&at, &files, lock.as_deref(), &mut written) {
        written.undo();
        return Err(e);
    }
    let shown = at.display();
    let next = match args.kind {
        Kind::Guest => format!("cargo build --release --target wasm32-wasip2\n  switchyard run {}.toml", args.name),
        Kind::Host => "cargo run".to_string(),
    };
    Ok(format!("created {} crate {} in {shown}\n\nnext:\n  cd {shown}\n  {next}", args.kind.word(), args.name))
}

/// The SDK crate's directory, absolute, checked to be the package `kind` depends on.
fn sdk_path(kind: Kind, given: Option<&Path>) -> Result<PathBuf, String> {
    let path = given.map_or_else(|| kind.default_sdk(), Path::to_path_buf);
    let hint = if given.is_some() {
        String::new()
    } else {
        " (the checkout this binary was built from; pass --sdk PATH to name another)".to_string()
    };
    let manifest = path.join("Cargo.toml");
    let text = fs::read_to_string(&manifest).map_err(|e| {
        format!("{}: cannot read the {} crate's Cargo.toml{hint}: {e}", manifest.display(), kind.sdk_package())
    })?;
    let parsed: toml::Table = toml::from_str(&text)
        .map_err(|e| format!("{}: not a valid Cargo.toml: {}", manifest.display(), e.message()))?;
    let name = parsed.get("package").and_then(|p| p.get("name")).and_then(toml::Value::as_str);
    if name != Some(kind.sdk_package()) {
        return Err(format!(
            "{}: this is not the {} crate (its package is {}){hint}",
            manifest.display(),
            kind.sdk_package(),
            name.map_or_else(|| "not named".to_string(), |n| format!("{n:?}"))
        ));
    }
    fs::canonicalize(&path).map_err(|e| format!("{}: {e}", path.display()))
}

/// The crate's files: path inside the crate, contents.
fn files(kind: Kind, name: &str, sdk: &str) -> Vec<(String, String)> {
    // The path as a TOML string (quoted and escaped).
    let sdk = toml::Value::String(sdk.to_string()).to_string();
    let fill = |template: &str| {
        template
            .replace("{{name}}", name)
            .replace("{{sdk}}", &sdk)
            .replace("{{wasm}}", &format!("{}.wasm", name.replace('-', "_")))
    };
    let gitignore = include_str!("../templates/gitignore").to_string();
    match kind {
        Kind::Guest => vec![
            ("Cargo.toml".into(), fill(include_str!("../templates/guest/Cargo.toml.in"))),
            ("src/lib.rs".into(), include_str!("../templates/guest/lib.rs").into()),
            (format!("{name}.toml"), fill(include_str!("../templates/guest/manifest.toml.in"))),
            ("README.md".into(), fill(include_str!("../templates/guest/README.md.in"))),
            (".gitignore".into(), gitignore),
        ],
        Kind::Host => vec![
            ("Cargo.toml".into(), fill(include_str!("../templates/host/Cargo.toml.in"))),
            ("src/main.rs".into(), include_str!("../templates/host/main.rs").into()),
            ("README.md".into(), fill(include_str!("../templates/host/README.md.in"))),
            (".gitignore".into(), gitignore),
        ],
    }
}

/// What this run created, to remove again if a later step fails.
#[derive(Default)]
struct Written {
    files: Vec<PathBuf>,
    dirs: Vec<PathBuf>,
}

impl Written {
    fn undo(self) {
        for file in self.files.iter().rev() {
            let _ = fs::remove_file(file);
        }
        for dir in self.dirs.iter().rev() {
            let _ = fs::remove_dir(dir);
        }
    }
}

/// Creates `at` (it must be new or an empty directory) and the files in it.
fn write_all(at: &Path, files: &[(String, String)], lock: Option<&str>, written: &mut Written) -> Result<(), String> {
    match fs::symlink_metadata(at) {
        Ok(meta) if meta.file_type().is_symlink() => {
            return Err(format!("{}: is a symbolic link; name a new or empty directory", at.display()));
        }
        Ok(meta) if !meta.is_dir() => {
            return Err(format!("{}: already exists and is not a directory; nothing was written", at.display()));
        }
        Ok(_) => {
            let mut entries =
                fs::read_dir(at).map_err(|e| format!("{}: cannot read the directory: {e}", at.display()))?;
            if entries.next().is_some() {
                return Err(format!(
                    "{}: the directory already exists and is not empty; nothing was written (choose another \
                     NAME or --dir)",
                    at.display()
                ));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create_dirs(at, written)?,
        Err(e) => return Err(format!("{}: cannot create the crate's directory there: {e}", at.display())),
    }
    let lock = lock.map(|text| ("Cargo.lock".to_string(), text.to_string()));
    for (relative, text) in files.iter().chain(lock.as_ref()) {
        let path = at.join(relative);
        if let Some(parent) = path.parent() {
            create_dirs(parent, written)?;
        }
        // create_new: a file that appeared meanwhile is an error, never overwritten.
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| format!("{}: cannot create the file: {e}", path.display()))?;
        written.files.push(path.clone());
        file.write_all(text.as_bytes()).map_err(|e| format!("{}: cannot write the file: {e}", path.display()))?;
    }
    Ok(())
}

/// Creates `dir` and its missing parents, noting each one created.
fn create_dirs(dir: &Path, written: &mut Written) -> Result<(), String> {
    let mut missing = Vec::new();
    let mut next = Some(dir);
    while let Some(d) = next.filter(|d| !d.as_os_str().is_empty() && fs::symlink_metadata(d).is_err()) {
        missing.push(d.to_path_buf());
        next = d.parent();
    }
    for d in missing.into_iter().rev() {
        fs::create_dir(&d).map_err(|e| format!("{}: cannot create the directory: {e}", d.display()))?;
        written.dirs.push(d);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_crate_rules() {
        for good in ["tally", "my-counter", "a1_b2", &"x".repeat(MAX_NAME_LEN)] {
            assert_eq!(parse_name(good).as_deref(), Ok(good), "{good}");
        }
        for bad in [
            "",
            "1abc",
            "-x",
            "_x",
            "Tally",
            "a b",
            "a/b",
            "..",
            "a.b",
            "é",
            "fn",
            "self",
            "test",
            "std",
            "con",
            "com1",
            "serde",
            "switchyard",
            "switchyard-guest",
            "switchyard_guest",
        ] {
            assert!(parse_name(bad).is_err(), "{bad:?} accepted");
        }
        assert!(parse_name(&"x".repeat(MAX_NAME_LEN + 1)).unwrap_err().contains("65 bytes"));
    }

    #[test]
    fn templates_are_filled() {
        for kind in [Kind::Guest, Kind::Host] {
            for (path, text) in files(kind, "my-counter", "/a \"b\"/guest") {
                assert!(!text.contains("{{"), "{path}: a placeholder left:\n{text}");
                if path == "Cargo.toml" {
                    let parsed: toml::Table = toml::from_str(&text).expect("the Cargo.toml is TOML");
                    assert_eq!(parsed["package"]["name"].as_str(), Some("my-counter"));
                    assert!(parsed["workspace"].as_table().is_some_and(toml::Table::is_empty));
                    let dep = &parsed["dependencies"][kind.sdk_package()];
                    assert_eq!(dep["path"].as_str(), Some("/a \"b\"/guest"));
                }
            }
        }
        let guest = files(Kind::Guest, "my-counter", "/sdk");
        let manifest = &guest.iter().find(|(p, _)| p == "my-counter.toml").expect("a manifest").1;
        assert!(manifest.contains("file = \"target/wasm32-wasip2/release/my_counter.wasm\""), "{manifest}");
    }
}
