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
//! overlap (one inside the other). `network` allows connections to other machines,
//! `loopback` to this one, `listen` binding, listening and accepting (see
//! `switchyard::WasiGrants`).

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use switchyard::{DirGrant, WasiGrants};
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

/// A grant that cannot be honoured: where, which field (after `capabilities.`), and why.
pub(super) struct GrantError {
    pub(super) span: Range<usize>,
    pub(super) field: String,
    pub(super) message: String,
}

/// The network grants.
#[derive(Debug, Clone, Copy)]
pub(super) struct Network {
    pub(super) network: bool,
    pub(super) listen: bool,
    pub(super) loopback: bool,
}

/// The grants, with directory paths resolved against `manifest_dir` and checked.
pub(super) fn resolve(
    env: &BTreeMap<String, String>,
    args: &[String],
    raw_dirs: &[RawDir],
    net: Network,
    manifest_dir: &Path,
) -> Result<WasiGrants, GrantError> {
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
        network: net.network,
        listen: net.listen,
        loopback: net.loopback,
    })
}
