//! How a node proves who it is to its server, and checks who the server is: TLS (a CA of
//! its own, a client certificate for mutual TLS) and credentials (user and password, a
//! token, an NKey seed, a `.creds` file), and the client options built from them.
//!
//! Everything is checked before the node connects, and again when the I/O thread builds
//! its options from the same configuration (`io.rs`): a missing file, a PEM file without a
//! certificate or key, an empty secret or a seed that is not a user's NKey is refused with
//! the field and the path, never with the secret, when the runtime is built. The server's
//! own refusals (a wrong password, an unknown key, a certificate it does not trust) come
//! back from the connection attempt as `BuildError::Cluster`, at once: the client does not
//! retry a refused authorization.
//!
//! TLS runs on rustls with *ring* as its crypto provider (see `Cargo.toml`).

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use async_nats::ConnectOptions;
use async_nats::rustls::pki_types::pem::PemObject;
use async_nats::rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::ClusterConfig;

/// The largest file read as a secret, a `.creds` file or a PEM file (a CA bundle of a few
/// hundred certificates fits).
const MAX_FILE_BYTES: u64 = 1 << 20;

/// A password, token or NKey seed. It is never shown: its `Debug` prints `Secret(..)`, it
/// has no `Display`, and no error message of this crate contains it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// A secret given as a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The contents of the file at `path` (at most 1 MiB of UTF-8), without the line
    /// breaks at its end.
    ///
    /// # Errors
    /// The file cannot be read, is larger than 1 MiB or is not UTF-8 (the error names the
    /// path, never the contents).
    pub fn from_file(path: &Path) -> std::io::Result<Secret> {
        let bytes = read_bounded(path)?;
        let text = String::from_utf8(bytes).map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{}: not UTF-8 text", path.display()))
        })?;
        Ok(Secret(text.trim_end_matches(['\n', '\r']).to_string()))
    }

    /// The value of environment variable `name`.
    ///
    /// # Errors
    /// `NotFound` when the variable is not set, `InvalidData` when it is not Unicode.
    pub fn from_env(name: &str) -> std::io::Result<Secret> {
        match std::env::var(name) {
            Ok(v) => Ok(Secret(v)),
            Err(std::env::VarError::NotPresent) => Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("environment variable {name} is not set"),
            )),
            Err(std::env::VarError::NotUnicode(_)) => Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("environment variable {name} is not Unicode"),
            )),
        }
    }

    /// The secret itself, to hand to whatever needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// TLS to the server. With it set, the node refuses a server that does not offer TLS, even
/// behind a `nats://` URL (a `tls://` URL requires TLS too, with the system's roots unless
/// this says otherwise).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterTls {
    /// PEM file of the certificate authorities the server's certificate must chain to, in
    /// place of the system's roots. `None`: the system's roots.
    pub ca_file: Option<PathBuf>,
    /// This node's certificate, for a server that requires one (mutual TLS).
    pub client_cert: Option<ClientCertificate>,
}

/// A client certificate and its private key, both PEM files. They are read again at every
/// (re)connection, so they must be regular files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCertificate {
    /// The certificate chain, the node's own certificate first.
    pub cert_file: PathBuf,
    /// Its private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
}

/// How the node authenticates to the server (see the server's `authorization` and
/// operator-mode settings).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClusterAuth {
    /// No credentials (a server without authorization, or one that identifies the node by
    /// its TLS certificate).
    #[default]
    None,
    /// A user and password of the server's `authorization { users = [...] }`.
    UserPassword {
        /// The user name.
        user: String,
        /// Its password.
        password: Secret,
    },
    /// The server's `authorization { token = ... }`.
    Token(Secret),
    /// A user NKey seed (`SU...`); the server knows its public key (`U...`).
    NKeySeed(Secret),
    /// A `.creds` file (a user JWT and its NKey seed) for a server in operator mode. It is
    /// read when the node connects.
    CredsFile(PathBuf),
}

/// The client options `config` asks for: TLS and credentials. Reads the files it names
/// (each at most 1 MiB).
///
/// # Errors
/// What is wrong, naming the field and the file but never a secret.
pub(super) fn options(config: &ClusterConfig) -> Result<ConnectOptions, String> {
    let mut options = ConnectOptions::new();
    if let Some(tls) = &config.tls {
        options = options.require_tls(true);
        if let Some(ca) = &tls.ca_file {
            certificates(ca, "tls.ca_file")?;
            options = options.add_root_certificates(ca.clone());
        }
        if let Some(client) = &tls.client_cert {
            certificates(&client.cert_file, "tls.client_cert.cert_file")?;
            let key = regular_file(&client.key_file, "tls.client_cert.key_file")?;
            // The parser's own message is left out: it may quote the file.
            PrivateKeyDer::from_pem_slice(&key).map_err(|_| {
                format!("tls.client_cert.key_file {}: holds no PEM private key", client.key_file.display())
            })?;
            options = options.add_client_certificate(client.cert_file.clone(), client.key_file.clone());
        }
    }
    Ok(match &config.auth {
        ClusterAuth::None => options,
        ClusterAuth::UserPassword { user, password } => {
            if user.is_empty() {
                return Err("auth: the user name is empty".into());
            }
            if password.0.is_empty() {
                return Err(format!("auth: the password of user {user:?} is empty"));
            }
            options.user_and_password(user.clone(), password.0.clone())
        }
        ClusterAuth::Token(token) => {
            if token.0.is_empty() {
                return Err("auth: the token is empty".into());
            }
            options.token(token.0.clone())
        }
        ClusterAuth::NKeySeed(seed) => {
            let pair = nkeys::KeyPair::from_seed(seed.0.trim())
                .map_err(|_| "auth: the NKey seed is not a valid seed (an `SU...` string)".to_string())?;
            if pair.key_pair_type() != nkeys::KeyPairType::User {
                return Err(format!(
                    "auth: the NKey seed is of a key of type {:?}; a client needs a user seed (`SU...`)",
                    pair.key_pair_type()
                ));
            }
            options.nkey(seed.0.trim().to_string())
        }
        ClusterAuth::CredsFile(path) => {
            let text = regular_file(path, "auth (creds file)")?;
            let text =
                String::from_utf8(text).map_err(|_| format!("auth: creds file {}: not UTF-8 text", path.display()))?;
            // async-nats' messages name the part that is missing, never the contents.
            options.credentials(&text).map_err(|e| format!("auth: creds file {}: {e}", path.display()))?
        }
    })
}

/// Checks that the PEM file at `path` holds at least one certificate.
fn certificates(path: &Path, field: &str) -> Result<(), String> {
    let pem = regular_file(path, field)?;
    let mut count = 0;
    for cert in CertificateDer::pem_slice_iter(&pem) {
        cert.map_err(|e| format!("{field} {}: not a PEM file of certificates ({e})", path.display()))?;
        count += 1;
    }
    if count == 0 {
        return Err(format!("{field} {}: holds no PEM certificate", path.display()));
    }
    Ok(())
}

/// The contents of the regular file at `path`: the client reads TLS files again at every
/// reconnection, so a pipe (or a FIFO nobody writes, which would block the open) is refused.
fn regular_file(path: &Path, field: &str) -> Result<Vec<u8>, String> {
    let cannot = |e: std::io::Error| format!("{field} {}: cannot read it: {e}", path.display());
    let meta = std::fs::metadata(path).map_err(cannot)?;
    if !meta.is_file() {
        return Err(format!("{field} {}: not a regular file", path.display()));
    }
    read_bounded(path).map_err(|e| format!("{field}: {e}"))
}

/// At most [`MAX_FILE_BYTES`] of the file at `path`; a larger file is an error.
fn read_bounded(path: &Path) -> std::io::Result<Vec<u8>> {
    let named = |e: std::io::Error| std::io::Error::new(e.kind(), format!("{}: {e}", path.display()));
    let mut bytes = Vec::new();
    std::fs::File::open(path).map_err(named)?.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes).map_err(named)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{}: larger than {} MiB", path.display(), MAX_FILE_BYTES >> 20),
        ));
    }
    Ok(bytes)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn config(auth: ClusterAuth) -> ClusterConfig {
        ClusterConfig { auth, ..ClusterConfig::new("nats://127.0.0.1:4222", "demo") }
    }

    #[test]
    fn debug_never_shows_a_secret() {
        for auth in [
            ClusterAuth::UserPassword { user: "node".into(), password: Secret::new("hunter2-pw") },
            ClusterAuth::Token(Secret::new("hunter2-pw")),
            ClusterAuth::NKeySeed(Secret::new("hunter2-pw")),
        ] {
            let shown = format!("{:?} {:#?}", config(auth.clone()), auth);
            assert!(!shown.contains("hunter2"), "{shown}");
            assert!(shown.contains("Secret(..)"), "{shown}");
        }
    }

    #[test]
    fn bad_credentials_are_refused_without_quoting_them() {
        let user_seed = nkeys::KeyPair::new_user().seed().unwrap();
        let account_seed = nkeys::KeyPair::new_account().seed().unwrap();
        for (auth, expected) in [
            (ClusterAuth::Token(Secret::new("")), "the token is empty"),
            (ClusterAuth::UserPassword { user: "".into(), password: Secret::new("x") }, "user name is empty"),
            (ClusterAuth::UserPassword { user: "u".into(), password: Secret::new("") }, "password of user"),
            (ClusterAuth::NKeySeed(Secret::new("SUhunter2")), "not a valid seed"),
            (ClusterAuth::NKeySeed(Secret::new(account_seed.clone())), "needs a user seed"),
            (ClusterAuth::CredsFile("/no/such/file.creds".into()), "/no/such/file.creds: cannot read it"),
        ] {
            let err = options(&config(auth)).expect_err("refused");
            assert!(err.contains(expected), "{err}");
            assert!(!err.contains("hunter2") && !err.contains(&account_seed), "{err}");
        }
        assert!(options(&config(ClusterAuth::NKeySeed(Secret::new(user_seed)))).is_ok());
    }

    #[test]
    fn a_url_with_credentials_is_refused_without_echoing_them() {
        for url in ["nats://node:hunter2@127.0.0.1:4222", "tls://hunter2@nats.example:4222/x", "hunter2@h:1"] {
            let err = ClusterConfig::new(url, "demo").invalid().expect("refused");
            assert!(err.contains("give them in `auth`") && !err.contains("hunter2"), "{err}");
        }
        assert_eq!(ClusterConfig::new("nats://127.0.0.1:4222/a@b", "demo").invalid(), None);
    }

    #[test]
    fn secrets_from_files_lose_their_final_line_break_only() {
        let path = std::env::temp_dir().join(format!("switchyard-secret-{}", std::process::id()));
        std::fs::write(&path, " pass word \r\n").unwrap();
        assert_eq!(Secret::from_file(&path).unwrap().expose(), " pass word ");
        std::fs::remove_file(&path).unwrap();
        let missing = Secret::from_file(&path).unwrap_err();
        assert!(missing.to_string().contains(&*path.to_string_lossy()), "{missing}");
        let unset = Secret::from_env("SWITCHYARD_TEST_SURELY_UNSET_VARIABLE").unwrap_err();
        assert_eq!(unset.kind(), std::io::ErrorKind::NotFound);
    }

    #[test]
    fn tls_files_must_hold_what_they_are_named_for() {
        let dir = std::env::temp_dir().join(format!("switchyard-tls-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let junk = dir.join("junk.pem");
        std::fs::write(&junk, "not a certificate\n").unwrap();
        let tls = |ca: &Path| ClusterConfig {
            tls: Some(ClusterTls { ca_file: Some(ca.to_path_buf()), client_cert: None }),
            ..ClusterConfig::new("tls://127.0.0.1:4222", "demo")
        };
        let err = options(&tls(&junk)).unwrap_err();
        assert!(err.contains("tls.ca_file") && err.contains("no PEM certificate"), "{err}");
        let err = options(&tls(&dir)).unwrap_err();
        assert!(err.contains("not a regular file"), "{err}");
        let err = options(&tls(&dir.join("absent.pem"))).unwrap_err();
        assert!(err.contains("absent.pem: cannot read it"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
