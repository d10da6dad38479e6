//! The `[cluster]` section, and its TLS and credential keys with the `--cluster-*` flags
//! of the same names that replace them: the files and environment variables secrets come
//! from, read once here, and the rules (one kind of credential; a certificate with its
//! key; a secret from a file or a variable, not both). A secret is never part of an error.

use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use switchyard::cluster::{ClientCertificate, ClusterAuth, ClusterConfig, ClusterTls, Secret};
use toml::Spanned;

use super::bounds::{self, Int};
use super::{CheckMillis, CheckNumber, ClusterEntry, ManifestError, usize_of};

/// The `[cluster]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCluster {
    url: Spanned<String>,
    name: Spanned<String>,
    node: Option<Spanned<String>>,
    wait_ms: Option<Spanned<Int>>,
    #[serde(default)]
    jetstream: bool,
    ack_wait_ms: Option<Spanned<Int>>,
    stream_max_bytes: Option<Spanned<Int>>,
    stream_max_age_ms: Option<Spanned<Int>>,
    consumer_inactive_ms: Option<Spanned<Int>>,
    discovery: Option<bool>,
    reconnect_buffer_messages: Option<Spanned<Int>>,
    reconnect_buffer_bytes: Option<Spanned<Int>>,
    reconnect_buffer_ms: Option<Spanned<Int>>,
    tls_ca_file: Option<Spanned<String>>,
    tls_cert_file: Option<Spanned<String>>,
    tls_key_file: Option<Spanned<String>>,
    user: Option<Spanned<String>>,
    password_file: Option<Spanned<String>>,
    password_env: Option<Spanned<String>>,
    token_file: Option<Spanned<String>>,
    token_env: Option<Spanned<String>>,
    nkey_seed_file: Option<Spanned<String>>,
    nkey_seed_env: Option<Spanned<String>>,
    creds_file: Option<Spanned<String>>,
}

impl RawCluster {
    /// The TLS and credential keys written in the section.
    fn security<'a>(&self, dir: &'a Path) -> Written<'a> {
        let keys = [
            ("tls_ca_file", &self.tls_ca_file),
            ("tls_cert_file", &self.tls_cert_file),
            ("tls_key_file", &self.tls_key_file),
            ("user", &self.user),
            ("password_file", &self.password_file),
            ("password_env", &self.password_env),
            ("token_file", &self.token_file),
            ("token_env", &self.token_env),
            ("nkey_seed_file", &self.nkey_seed_file),
            ("nkey_seed_env", &self.nkey_seed_env),
            ("creds_file", &self.creds_file),
        ];
        let items = keys
            .into_iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| (k, v.get_ref().clone(), Some(v.span()))))
            .collect();
        Written { items, base: dir, name: |key| format!("cluster.{key}") }
    }
}

/// The `[cluster]` section, checked: a `nats://` or `tls://` URL, a cluster and a node
/// name that are single subject tokens, TLS files and credentials (secrets read now, from
/// files relative to the manifest's directory `dir` or from environment variables).
pub(super) fn entry(
    c: &RawCluster,
    dir: &Path,
    err: &dyn Fn(Range<usize>, &str, String) -> ManifestError,
    number: &CheckNumber<'_>,
    millis: &CheckMillis<'_>,
) -> Result<ClusterEntry, ManifestError> {
    let url = c.url.get_ref();
    if !url.starts_with("nats://") && !url.starts_with("tls://") && url.contains("://") {
        return Err(err(c.url.span(), "cluster.url", format!("{url:?}: only nats:// and tls:// URLs are supported")));
    }
    let name_rule = "1 to 64 bytes of ASCII letters, digits, '-' and '_'";
    if !switchyard::cluster::subject::valid_cluster_name(c.name.get_ref()) {
        return Err(err(c.name.span(), "cluster.name", format!("must be {name_rule}")));
    }
    if let Some(node) = &c.node
        && !switchyard::cluster::subject::valid_cluster_name(node.get_ref())
    {
        return Err(err(node.span(), "cluster.node", format!("must be {name_rule}")));
    }
    let wait = match &c.wait_ms {
        Some(w) => millis(w, bounds::CLUSTER_WAIT_MS, "cluster.wait_ms".into())?,
        None => Duration::from_secs(10),
    };
    let mut config = ClusterConfig::new(url.clone(), c.name.get_ref().clone());
    config.node = c.node.as_ref().map(|n| n.get_ref().clone());
    config.jetstream = c.jetstream;
    if let Some(w) = &c.ack_wait_ms {
        config.ack_wait = millis(w, bounds::CLUSTER_ACK_WAIT_MS, "cluster.ack_wait_ms".into())?;
    }
    if let Some(n) = &c.stream_max_bytes {
        config.stream_max_bytes = number(n, bounds::STREAM_MAX_BYTES, "cluster.stream_max_bytes".into())?;
    }
    if let Some(w) = &c.stream_max_age_ms {
        config.stream_max_age = millis(w, bounds::STREAM_MAX_AGE_MS, "cluster.stream_max_age_ms".into())?;
    }
    if let Some(w) = &c.consumer_inactive_ms {
        config.consumer_inactive = millis(w, bounds::CONSUMER_INACTIVE_MS, "cluster.consumer_inactive_ms".into())?;
    }
    if let Some(on) = c.discovery {
        config.discovery = on;
    }
    let mut buffer = switchyard::cluster::ReconnectBuffer::default();
    if let Some(n) = &c.reconnect_buffer_messages {
        buffer.messages =
            usize_of(number(n, bounds::RECONNECT_BUFFER_MESSAGES, "cluster.reconnect_buffer_messages".into())?);
    }
    if let Some(n) = &c.reconnect_buffer_bytes {
        buffer.bytes = usize_of(number(n, bounds::RECONNECT_BUFFER_BYTES, "cluster.reconnect_buffer_bytes".into())?);
    }
    if let Some(w) = &c.reconnect_buffer_ms {
        buffer.deadline = millis(w, bounds::RECONNECT_BUFFER_MS, "cluster.reconnect_buffer_ms".into())?;
    }
    config.reconnect_buffer = (buffer.messages > 0).then_some(buffer);
    let security = c.security(dir);
    let located = |r: Refused| err(r.span.unwrap_or(c.url.span()), &format!("cluster.{}", r.key), r.message);
    config.tls = security.tls().map_err(located)?;
    config.auth = security.auth().map_err(located)?.unwrap_or_default();
    Ok(ClusterEntry { config, wait })
}

/// The TLS keys.
const TLS_KEYS: [&str; 3] = ["tls_ca_file", "tls_cert_file", "tls_key_file"];

/// The credential keys, by kind: at most one kind may be given.
const AUTH_KINDS: [(&str, &[&str]); 4] = [
    ("user and password", &["user", "password_file", "password_env"]),
    ("token", &["token_file", "token_env"]),
    ("NKey seed", &["nkey_seed_file", "nkey_seed_env"]),
    ("creds file", &["creds_file"]),
];

/// Replaces the TLS settings of `config` when `flags` (`(key, value)`, from the
/// `--cluster-*` flags) give any TLS key, and its credentials when they give any credential
/// key. Relative paths are relative to the current directory.
///
/// # Errors
/// What is wrong, naming the flag (never a secret).
pub fn apply_flags(config: &mut ClusterConfig, flags: &[(&'static str, String)]) -> Result<(), String> {
    let written = Written {
        items: flags.iter().map(|(k, v)| (*k, v.clone(), None)).collect(),
        base: Path::new(""),
        name: |key| format!("--cluster-{}", key.replace('_', "-")),
    };
    let refused = |r: Refused| format!("{}: {}", (written.name)(r.key), r.message);
    if let Some(tls) = written.tls().map_err(refused)? {
        config.tls = Some(tls);
    }
    if let Some(auth) = written.auth().map_err(refused)? {
        config.auth = auth;
    }
    Ok(())
}

/// TLS and credential settings as written: each key with its value and, in a manifest,
/// the span of the value (a flag has none).
pub struct Written<'a> {
    /// `(key, value, span)`.
    pub items: Vec<(&'static str, String, Option<Range<usize>>)>,
    /// What relative paths are relative to (the manifest's directory, or the current one).
    pub base: &'a Path,
    /// How a key is named to the user (`cluster.user`, `--cluster-user`).
    pub name: fn(&str) -> String,
}

/// A setting that is refused: which one, where, and why.
#[derive(Debug)]
pub struct Refused {
    /// The key.
    pub key: &'static str,
    /// The span of its value in the manifest.
    pub span: Option<Range<usize>>,
    /// Why (never holding a secret).
    pub message: String,
}

impl Written<'_> {
    fn get(&self, key: &str) -> Option<&(&'static str, String, Option<Range<usize>>)> {
        self.items.iter().find(|(k, _, _)| *k == key)
    }

    fn refuse(&self, key: &str, message: String) -> Refused {
        let (key, _, span) = self.get(key).cloned().expect("a key that was written");
        Refused { key, span, message }
    }

    fn path(&self, key: &str) -> Option<std::path::PathBuf> {
        self.get(key).map(|(_, v, _)| self.base.join(v))
    }

    /// TLS settings, if any key of it is written.
    pub fn tls(&self) -> Result<Option<ClusterTls>, Refused> {
        if !TLS_KEYS.iter().any(|k| self.get(k).is_some()) {
            return Ok(None);
        }
        // Read by the client at every connection; here only checked to be there.
        for key in TLS_KEYS {
            let Some(path) = self.path(key) else { continue };
            match std::fs::metadata(&path) {
                Ok(meta) if meta.is_file() => {}
                Ok(_) => return Err(self.refuse(key, format!("{}: not a regular file", path.display()))),
                Err(e) => return Err(self.refuse(key, format!("cannot read {}: {e}", path.display()))),
            }
        }
        let client_cert = match (self.path("tls_cert_file"), self.path("tls_key_file")) {
            (Some(cert_file), Some(key_file)) => Some(ClientCertificate { cert_file, key_file }),
            (None, None) => None,
            (Some(_), None) => {
                return Err(self.refuse("tls_cert_file", format!("needs {} too", (self.name)("tls_key_file"))));
            }
            (None, Some(_)) => {
                return Err(self.refuse("tls_key_file", format!("needs {} too", (self.name)("tls_cert_file"))));
            }
        };
        Ok(Some(ClusterTls { ca_file: self.path("tls_ca_file"), client_cert }))
    }

    /// The credentials, if any key of them is written.
    pub fn auth(&self) -> Result<Option<ClusterAuth>, Refused> {
        let mut given = AUTH_KINDS
            .iter()
            .filter_map(|(kind, keys)| keys.iter().find(|k| self.get(k).is_some()).map(|first| (*kind, *first)));
        let Some((kind, first)) = given.next() else { return Ok(None) };
        if let Some((_, second)) = given.next() {
            let message = format!("conflicts with {} ({kind}): give one kind of credential", (self.name)(first));
            return Err(self.refuse(second, message));
        }
        Ok(Some(match kind {
            "user and password" => {
                let Some((_, user, _)) = self.get("user") else {
                    return Err(self.refuse(first, format!("needs {}", (self.name)("user"))));
                };
                if user.is_empty() {
                    return Err(self.refuse("user", "the user name is empty".into()));
                }
                let Some(password) = self.secret("password_file", "password_env", "password")? else {
                    let needs = format!("needs {} or {}", (self.name)("password_file"), (self.name)("password_env"));
                    return Err(self.refuse("user", needs));
                };
                ClusterAuth::UserPassword { user: user.clone(), password }
            }
            "token" => ClusterAuth::Token(self.secret("token_file", "token_env", "token")?.expect("a token key")),
            "NKey seed" => {
                ClusterAuth::NKeySeed(self.secret("nkey_seed_file", "nkey_seed_env", "NKey seed")?.expect("a seed key"))
            }
            _ => ClusterAuth::CredsFile(self.path("creds_file").expect("the creds key")),
        }))
    }

    /// The secret in the file `file_key` names or the variable `env_key` names.
    fn secret(&self, file_key: &str, env_key: &str, what: &str) -> Result<Option<Secret>, Refused> {
        let (key, secret) = match (self.path(file_key), self.get(env_key)) {
            (Some(_), Some(_)) => {
                return Err(self.refuse(env_key, format!("{} is given too; give one", (self.name)(file_key))));
            }
            (Some(path), None) => (file_key, Secret::from_file(&path)),
            (None, Some((_, var, _))) => (env_key, Secret::from_env(var)),
            (None, None) => return Ok(None),
        };
        let secret = secret.map_err(|e| self.refuse(key, format!("cannot read the {what}: {e}")))?;
        if secret.expose().is_empty() {
            return Err(self.refuse(key, format!("the {what} is empty")));
        }
        Ok(Some(secret))
    }
}
