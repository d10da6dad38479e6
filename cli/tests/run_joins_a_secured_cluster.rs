//! `switchyard run` joins a cluster on a `nats-server` that requires a password, with the
//! password from the manifest's `password_env` or from `--cluster-password-file`, and no
//! output of the run (the success, the refusal of a wrong password) ever shows it.

mod common;
// The core crate's server helper; this test uses only part of it.
#[allow(dead_code)]
#[path = "../../tests/common/nats.rs"]
mod nats;

use common::*;
use nats::NatsServer;

const SECRET: &str = "cli-secret-pw";

fn secured_server(dir: &TempDir) -> Option<NatsServer> {
    let config = format!("authorization {{ users = [ {{user: node-a, password: {SECRET:?}}} ] }}\n");
    NatsServer::start_with_config(&write(dir, "server.conf", &config))
}

/// A manifest hosting the pipeline's store, joining cluster `t-cli` at `url` with the
/// `[cluster]` keys `credentials`.
fn manifest(dir: &TempDir, url: &str, credentials: &str) -> String {
    let store = repo().join("examples/pipeline/store.wasm");
    let text = format!(
        "[cluster]\nurl = {url:?}\nname = \"t-cli\"\nnode = \"cli\"\n{credentials}\n\
         [[component]]\nid = \"store\"\nfile = {:?}\ncapabilities = {{ storage = \"read-write\" }}\n",
        store.display().to_string()
    );
    write(dir, "m.toml", &text).display().to_string()
}

fn assert_secret_not_shown(ran: &Ran) {
    assert!(!ran.stdout.contains(SECRET) && !ran.stderr.contains(SECRET), "{}\n{}", ran.stdout, ran.stderr);
}

#[test]
fn a_manifest_with_a_password_from_the_environment_joins_and_never_prints_it() {
    let dir = TempDir::new("cli-secured");
    let Some(server) = secured_server(&dir) else { return };
    let m = manifest(&dir, &server.url(), "user = \"node-a\"\npassword_env = \"SY_TEST_CLUSTER_PW\"");
    let mut cmd = switchyard_in(dir.path(), &["run", &m, "--no-cache"]);
    let out = cmd.env("SY_TEST_CLUSTER_PW", SECRET).stdin(std::process::Stdio::null()).output().unwrap();
    let ran = Ran::from(out);
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    assert!(ran.stderr.contains("joined cluster \"t-cli\""), "{}", ran.stderr);
    assert_secret_not_shown(&ran);
}

#[test]
fn a_password_file_flag_joins_and_a_wrong_password_is_refused_without_showing_it() {
    let dir = TempDir::new("cli-secured-flag");
    let Some(server) = secured_server(&dir) else { return };
    let m = manifest(&dir, &server.url(), "");
    write(&dir, "right.pw", &format!("{SECRET}\n"));
    write(&dir, "wrong.pw", "not-the-cli-secret-pw\n");
    let flags =
        |pw: &'static str| ["run", m.as_str(), "--no-cache", "--cluster-user", "node-a", "--cluster-password-file", pw];

    let ran = run_in(dir.path(), &flags("right.pw"), "");
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    assert!(ran.stderr.contains("joined cluster \"t-cli\""), "{}", ran.stderr);
    assert_secret_not_shown(&ran);

    let ran = run_in(dir.path(), &flags("wrong.pw"), "");
    assert_eq!(ran.code, Some(1), "{}", ran.stderr);
    assert!(ran.stderr.contains("authorization violation"), "{}", ran.stderr);
    assert!(!ran.stderr.contains("not-the-cli-secret-pw"), "{}", ran.stderr);
}
