//! The WASI grants of a component in the manifest (`capabilities.env`, `args`, `dirs`,
//! `network`, `listen`, `loopback`): what it may reach through WASI beyond clocks, random
//! and its log.
//!
//! ```toml
//! capabilities = { env = { LANG = "C" }, args = ["--quiet"], network = false,
//!                  dirs = [{ host = "data", guest = "/data", mode = "read-write" }] }
//! ```
//!
//! A granted directory's `host` path is relative to the manifest's directory and must be
//! an existing directory when the manifest is read; the guest sees it at `guest`, confined
//! to it, read-only unless `mode = "read-write"`. No two of a component's directories may
//! overlap (one inside the other). `network = true` allows connections to public addresses;
//! `network = ["api.example.com:443", "10.1.0.0/16:5432"]` allows exactly the hosts and
//! networks listed (`switchyard::OutboundRule`); `loopback` allows this machine, `listen`
//! binding, listening and accepting (see `switchyard::WasiGrants`).

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use switchyard::{DirGrant, OutboundRule, WasiGrants};
use toml::Spanned;

/// `read-only` (the default) or `read-write`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(super) enum RawDirMode {
    ReadOnly,
    ReadWrite,
}

/// One granted directory.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDir {
    host: Spanned<String>,
    guest: Spanned<String>,
    mode: Option<RawDirMode>,
}

impl RawDir {
    /// Where the `host` path is written.
    pub(super) fn host_span(&self) -> Range<usize> {
        self.host.span()
    }
}

/// A grant that cannot be honoured: where, which field (after `capabilities.`), and why.
pub(super) struct GrantError {
    pub(super) span: Range<usize>,
    pub(super) field: String,
    pub(super) message: String,
}

/// The network grants.
#[derive(Debug, Clone, Copy)]
pub(super) struct Network<'a> {
    /// `true`, `false` or a list of `host:port` entries.
    pub(super) network: Option<&'a Spanned<toml::Value>>,
    pub(super) listen: bool,
    pub(super) loopback: bool,
}

/// The most entries a `network` allow list may have.
pub(super) const MAX_OUTBOUND_RULES: usize = 256;

/// `network`: `(any public address, the allow list)`.
fn network(value: Option<&Spanned<toml::Value>>) -> Result<(bool, Vec<OutboundRule>), GrantError> {
    let Some(value) = value else { return Ok((false, Vec::new())) };
    let wrong = |field: String, message: String| GrantError { span: value.span(), field, message };
    match value.get_ref() {
        toml::Value::Boolean(on) => Ok((*on, Vec::new())),
        toml::Value::Array(entries) => {
            if entries.len() > MAX_OUTBOUND_RULES {
                return Err(wrong(
                    "network".into(),
                    format!("{} entries; at most {MAX_OUTBOUND_RULES}", entries.len()),
                ));
            }
            let mut rules = Vec::with_capacity(entries.len());
            for (i, entry) in entries.iter().enumerate() {
                let toml::Value::String(entry) = entry else {
                    return Err(wrong(
                        format!("network[{i}]"),
                        "an entry is a string, as \"api.example.com:443\"".into(),
                    ));
                };
                rules.push(OutboundRule::parse(entry).map_err(|e| wrong(format!("network[{i}]"), e))?);
            }
            Ok((false, rules))
        }
        _ => Err(wrong(
            "network".into(),
            "is true, false, or a list of \"host:port\" entries (\"api.example.com:443\", \"10.1.0.0/16:5432\")".into(),
        )),
    }
}

/// The grants, with directory paths resolved against `manifest_dir` and checked.
pub(super) fn resolve(
    env: &BTreeMap<String, String>,
    args: &[String],
    raw_dirs: &[RawDir],
    net: Network<'_>,
    manifest_dir: &Path,
) -> Result<WasiGrants, GrantError> {
    let (public, outbound) = network(net.network)?;
    let mut dirs = Vec::with_capacity(raw_dirs.len());
    let mut canonical: Vec<PathBuf> = Vec::with_capacity(raw_dirs.len());
    for (i, d) in raw_dirs.iter().enumerate() {
        let host = manifest_dir.join(d.host.get_ref());
        let problem = match std::fs::metadata(&host) {
            Ok(m) if m.is_dir() => None,
            Ok(_) => Some(format!("{} is not a directory", host.display())),
            Err(e) => Some(format!("{}: {e}", host.display())),
        };
        if let Some(message) = problem {
            return Err(GrantError { span: d.host.span(), field: format!("dirs[{i}].host"), message });
        }
        if d.guest.get_ref().is_empty() {
            return Err(GrantError {
                span: d.guest.span(),
                field: format!("dirs[{i}].guest"),
                message: "the guest path is empty (use \".\" or an absolute path such as \"/data\")".into(),
            });
        }
        // Canonical, so that `data/../data/cfg` or a link to `data/cfg` is seen inside `data`.
        let real = std::fs::canonicalize(&host).unwrap_or_else(|_| host.clone());
        if let Some(j) = canonical.iter().position(|other| real.starts_with(other) || other.starts_with(&real)) {
            return Err(GrantError {
                span: d.host.span(),
                field: format!("dirs[{i}].host"),
                message: format!(
                    "{} overlaps dirs[{j}] ({}): one is inside the other, so the narrower grant would not \
                     hold; grant each directory once, with the widest access it needs",
                    host.display(),
                    raw_dirs[j].host.get_ref()
                ),
            });
        }
        canonical.push(real);
        dirs.push(DirGrant {
            host,
            guest: d.guest.get_ref().clone(),
            writable: matches!(d.mode, Some(RawDirMode::ReadWrite)),
        });
    }
    Ok(WasiGrants {
        env: env.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        args: args.to_vec(),
        dirs,
        network: public,
        outbound,
        listen: net.listen,
        loopback: net.loopback,
    })
}

/// `path` made canonical as far as it exists (a file not made yet is placed where it will be).
fn placed(path: &Path) -> PathBuf {
    let mut missing = Vec::new();
    let mut at = path;
    loop {
        if let Ok(found) = std::fs::canonicalize(at) {
            return missing.iter().rev().fold(found, |p, part| p.join(part));
        }
        match (at.parent(), at.file_name()) {
            (Some(parent), Some(name)) => {
                missing.push(name.to_owned());
                at = if parent.as_os_str().is_empty() { Path::new(".") } else { parent };
            }
            _ => return path.to_path_buf(),
        }
    }
}

/// Two components' granted directories that overlap (one inside the other) where either
/// is read-write: where the later one is written, and why it is refused. A component that
/// can write a directory holding another's grant can swap that grant's directory for a
/// link out of it (it takes effect at the next start); read-only grants may overlap.
pub(super) fn overlap_across(components: &[super::ComponentEntry]) -> Option<(super::Location, String)> {
    let real = |c: &super::ComponentEntry| -> Vec<PathBuf> {
        c.options.capabilities.wasi.dirs.iter().map(|d| placed(&d.host)).collect()
    };
    let reals: Vec<Vec<PathBuf>> = components.iter().map(real).collect();
    for (j, later) in components.iter().enumerate() {
        for (k, grant) in later.options.capabilities.wasi.dirs.iter().enumerate() {
            for (i, earlier) in components[..j].iter().enumerate() {
                for (m, other) in earlier.options.capabilities.wasi.dirs.iter().enumerate() {
                    let (a, b) = (&reals[j][k], &reals[i][m]);
                    if (grant.writable || other.writable) && (a.starts_with(b) || b.starts_with(a)) {
                        let mode = |w: bool| if w { "read-write" } else { "read-only" };
                        return Some((
                            later.dir_locations[k].clone(),
                            format!(
                                "{} ({}) overlaps {} of component {} ({}): one is inside the other, and a \
                                 component that can write a directory holding another's grant could replace \
                                 that grant with a link out of it; only read-only grants may overlap",
                                grant.host.display(),
                                mode(grant.writable),
                                other.host.display(),
                                earlier.id,
                                mode(other.writable)
                            ),
                        ));
                    }
                }
            }
        }
    }
    None
}

/// The first read-write grant that holds one of `protected`: where it is written, and why
/// it is refused (see `Manifest::check_writable_grants`).
pub(super) fn writable_over(
    components: &[super::ComponentEntry],
    protected: &[(&str, PathBuf)],
) -> Option<(super::Location, String)> {
    let protected: Vec<(&str, PathBuf)> = protected.iter().map(|(what, p)| (*what, placed(p))).collect();
    for c in components {
        for (k, grant) in c.options.capabilities.wasi.dirs.iter().enumerate().filter(|(_, g)| g.writable) {
            let granted = placed(&grant.host);
            if let Some((what, p)) = protected.iter().find(|(_, p)| p.starts_with(&granted)) {
                return Some((
                    c.dir_locations[k].clone(),
                    format!(
                        "{} is read-write and holds {what} {}: a guest could change it, and the host reads \
                         it or runs it as native code (grant it read-only, or a directory that does not hold it)",
                        grant.host.display(),
                        p.display()
                    ),
                ));
            }
        }
    }
    None
}
