//! What a secured `nats-server` and its clients need, made in the test: a certificate
//! authority with a server certificate (for
//! `127.0.0.1` and `localhost`) and a client certificate, and an operator, an account and
//! users with their JWTs and `.creds` files (operator mode, with a memory resolver).
//!
//! A NATS JWT is `base64url(header).base64url(claims).base64url(signature)`, the header
//! `{"typ":"JWT","alg":"ed25519-nkey"}` and the signature the issuer's Ed25519 NKey over
//! the first two parts (nats-io/jwt, `v2/claims.go`). The server checks the signatures, the
//! chain operator -> account -> user and the limits; it does not recompute `jti`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use nkeys::KeyPair;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyUsagePurpose};
use serde_json::json;

pub use switchyard_bench_support::storage::TempDir;

/// Writes `contents` to file `name` in `dir`; returns its path.
pub fn write(dir: &TempDir, name: &str, contents: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, contents).expect("write a test file");
    path
}

/// A CA, a server certificate it signed, a client certificate it signed, and a second CA
/// that signed neither (PEM files in a test's directory).
pub struct Pki {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    pub other_ca: PathBuf,
}

fn new_ca(name: &str) -> (rcgen::Certificate, Issuer<'static, rcgen::KeyPair>) {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::CrlSign];
    let key = rcgen::KeyPair::generate().expect("a CA key");
    let cert = params.self_signed(&key).expect("a self-signed CA");
    (cert, Issuer::new(params, key))
}

/// A certificate for `names`, signed by `ca`: its PEM and its key's PEM.
fn leaf(
    ca: &Issuer<'static, rcgen::KeyPair>,
    names: &[&str],
    usage: rcgen::ExtendedKeyUsagePurpose,
) -> (String, String) {
    let mut params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).expect("leaf parameters");
    params.distinguished_name.push(DnType::CommonName, names[0]);
    params.use_authority_key_identifier_extension = true;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![usage];
    let key = rcgen::KeyPair::generate().expect("a leaf key");
    let cert = params.signed_by(&key, ca).expect("a signed leaf");
    (cert.pem(), key.serialize_pem())
}

impl Pki {
    pub fn new(dir: &TempDir) -> Pki {
        let (ca_cert, ca) = new_ca("switchyard test CA");
        let (server_cert, server_key) =
            leaf(&ca, &["localhost", "127.0.0.1"], rcgen::ExtendedKeyUsagePurpose::ServerAuth);
        let (client_cert, client_key) = leaf(&ca, &["node"], rcgen::ExtendedKeyUsagePurpose::ClientAuth);
        let (other_cert, _) = new_ca("a CA nobody trusts");
        Pki {
            ca: write(dir, "ca.pem", &ca_cert.pem()),
            server_cert: write(dir, "server.pem", &server_cert),
            server_key: write(dir, "server-key.pem", &server_key),
            client_cert: write(dir, "client.pem", &client_cert),
            client_key: write(dir, "client-key.pem", &client_key),
            other_ca: write(dir, "other-ca.pem", &other_cert.pem()),
        }
    }

    /// The server's `tls` block; with `verify`, it requires a client certificate signed by
    /// the CA (mutual TLS).
    pub fn server_block(&self, verify: bool) -> String {
        format!(
            "tls {{\n  cert_file: {:?}\n  key_file: {:?}\n  ca_file: {:?}\n  verify: {verify}\n  timeout: 5\n}}\n",
            self.server_cert, self.server_key, self.ca
        )
    }
}

/// An operator and one account of it, for a server in operator mode.
pub struct Operator {
    operator: KeyPair,
    account: KeyPair,
}

impl Operator {
    pub fn new() -> Operator {
        Operator { operator: KeyPair::new_operator(), account: KeyPair::new_account() }
    }

    /// The server configuration of operator mode: this operator trusted, its account
    /// preloaded in a memory resolver.
    pub fn server_config(&self) -> String {
        let operator_jwt = jwt(&self.operator, &self.operator.public_key(), "operator", json!({"type": "operator"}));
        let account_jwt = jwt(
            &self.operator,
            &self.account.public_key(),
            "account",
            json!({
                "type": "account",
                // Absent limits are zero: no connection at all.
                "limits": {"subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
                           "wildcards": true, "conn": -1, "leaf": -1},
                "default_permissions": {"pub": {}, "sub": {}},
            }),
        );
        format!(
            "operator: {operator_jwt:?}\nresolver: MEMORY\nresolver_preload: {{\n  {}: {account_jwt:?}\n}}\n",
            self.account.public_key()
        )
    }

    /// A `.creds` file's contents for a new user `name` of this operator's account.
    pub fn user_creds(&self, name: &str) -> String {
        user_creds(&self.account, name)
    }
}

/// A `.creds` file's contents for a new user `name` of an account no server was told of.
pub fn stranger_creds(name: &str) -> String {
    user_creds(&KeyPair::new_account(), name)
}

fn user_creds(account: &KeyPair, name: &str) -> String {
    let user = KeyPair::new_user();
    let token = jwt(
        account,
        &user.public_key(),
        name,
        json!({"type": "user", "pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1}),
    );
    let seed = user.seed().expect("a user seed");
    format!(
        "-----BEGIN NATS USER JWT-----\n{token}\n------END NATS USER JWT------\n\n\
         ************************* IMPORTANT *************************\n\
         NKEY Seed printed below can be used to sign and prove identity.\n\n\
         -----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n"
    )
}

/// A JWT for `subject`, issued and signed by `issuer`, with `nats` claims (version 2).
fn jwt(issuer: &KeyPair, subject: &str, name: &str, mut nats: serde_json::Value) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    nats["version"] = json!(2);
    let iat = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_secs();
    let claims = json!({
        "jti": format!("switchyard-test-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed)),
        "iat": iat,
        "iss": issuer.public_key(),
        "sub": subject,
        "name": name,
        "nats": nats,
    });
    let header = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
    let body = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signed = format!("{header}.{body}");
    let signature = issuer.sign(signed.as_bytes()).expect("an Ed25519 signature");
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature))
}
