//! Nodes of a cluster on a secured `nats-server` (a real one, configured by the test): each
//! kind of credential lets a node in and a wrong one is refused when the runtime is built,
//! at once and with the server's reason, never with the secret; TLS checks the server
//! against a CA of the node's own and gives the server the node's certificate; and the
//! subject permissions documented in `switchyard::cluster` are enough for a node and for a
//! plain client calling a component, while a client without them is refused by the server.
#![cfg(feature = "cluster")]

mod common;

use std::time::Instant;

use common::nats::NatsServer;
use common::nodes::{echo_probe, warm};
use common::security::{Operator, Pki, TempDir, stranger_creds, write};
use common::*;
use switchyard::cluster::{ClientCertificate, ClusterAuth, ClusterConfig, ClusterTls, Secret};
use switchyard::{BuildError, DeliveryGuarantee, Runtime};

/// A server started from configuration `text`, written into `dir`.
fn server(dir: &TempDir, text: &str) -> Option<NatsServer> {
    NatsServer::start_with_config(&write(dir, "server.conf", text))
}

/// Node `node` of `cluster` at `url`, authenticating with `auth`.
fn config(url: String, cluster: &str, node: &str, auth: ClusterAuth) -> ClusterConfig {
    ClusterConfig { node: Some(node.into()), connect_timeout: WAIT, auth, ..ClusterConfig::new(url, cluster) }
}

fn join(config: ClusterConfig) -> Result<Runtime, BuildError> {
    Runtime::builder().workers(1).cluster(config).build()
}

/// Node b hosts an echoing "store"; node a sends it a one-way message and a request. Both
/// nodes account for every message.
fn exchange(a: ClusterConfig, b: ClusterConfig) {
    let b = join(b).expect("node b joins");
    let a = join(a).expect("node a joins");
    let store = echo_probe(&b, "store");
    assert!(a.wait_for_component(&id("store"), WAIT), "node a never saw node b's store");
    a.try_send(ff(&id("store"), b"one way")).expect("queued for node b");
    assert_eq!(recv(&store), b"one way");
    let reply = a.request(req(&id("store"), b"ping"), WAIT).expect("sent").wait().expect("answered");
    assert_eq!(reply.payload, b"ping");
    let (ra, rb) = (a.shutdown(WAIT), b.shutdown(WAIT));
    assert!(ra.is_balanced() && rb.is_balanced(), "{ra:?}\n{rb:?}");
    assert_eq!(ra.stats.messages_forwarded, 2, "{ra:?}");
}

/// Building a node with `config` fails with the server's (or the TLS handshake's) refusal,
/// long before the connect timeout; returns the reason.
fn refused(config: ClusterConfig) -> String {
    let started = Instant::now();
    let why = match join(config) {
        Err(BuildError::Cluster(why)) => why,
        Err(other) => panic!("refused, but not by the server: {other}"),
        Ok(_) => panic!("the node joined"),
    };
    assert!(started.elapsed() < WAIT / 4, "refused after {:?}, not at once: {why}", started.elapsed());
    why
}

fn user(name: &str, password: &str) -> ClusterAuth {
    ClusterAuth::UserPassword { user: name.into(), password: Secret::new(password) }
}

// ----- credentials ------------------------------------------------------------------------

const USERS: &str = r#"authorization { users = [
    {user: node-a, password: "a-secret-pw"}
    {user: node-b, password: "b-secret-pw"}
] }"#;

#[test]
fn nodes_with_user_and_password_exchange_messages_and_requests() {
    let dir = TempDir::new("user-password");
    let Some(server) = server(&dir, USERS) else { return };
    // One password given as a value, one read from a file (its final newline dropped).
    let file = write(&dir, "b.password", "b-secret-pw\n");
    let b_password = Secret::from_file(&file).expect("a readable password file");
    exchange(
        config(server.url(), "t-user", "a", user("node-a", "a-secret-pw")),
        config(server.url(), "t-user", "b", ClusterAuth::UserPassword { user: "node-b".into(), password: b_password }),
    );
}

#[test]
fn a_wrong_password_is_refused_at_build_as_an_authorization_violation() {
    let dir = TempDir::new("wrong-password");
    let Some(server) = server(&dir, USERS) else { return };
    let why = refused(config(server.url(), "t-user", "a", user("node-a", "guessed-pw")));
    assert!(why.contains("authorization violation"), "{why}");
    assert!(!why.contains("guessed-pw"), "the password is not in the error: {why}");
}

#[test]
fn nodes_with_the_token_exchange_messages_and_a_wrong_token_is_refused() {
    let dir = TempDir::new("token");
    let Some(server) = server(&dir, r#"authorization { token: "the-cluster-token" }"#) else { return };
    let token = |t: &str| ClusterAuth::Token(Secret::new(t));
    exchange(
        config(server.url(), "t-token", "a", token("the-cluster-token")),
        config(server.url(), "t-token", "b", token("the-cluster-token")),
    );
    let why = refused(config(server.url(), "t-token", "c", token("not-the-token")));
    assert!(why.contains("authorization violation") && !why.contains("not-the-token"), "{why}");
}

#[test]
fn nodes_with_nkey_seeds_exchange_messages_and_an_unknown_nkey_is_refused() {
    let (a, b, stranger) = (nkeys::KeyPair::new_user(), nkeys::KeyPair::new_user(), nkeys::KeyPair::new_user());
    let dir = TempDir::new("nkey");
    let text = format!("authorization {{ users = [ {{nkey: {}}}, {{nkey: {}}} ] }}", a.public_key(), b.public_key());
    let Some(server) = server(&dir, &text) else { return };
    let seed = |k: &nkeys::KeyPair| ClusterAuth::NKeySeed(Secret::new(k.seed().unwrap()));
    exchange(config(server.url(), "t-nkey", "a", seed(&a)), config(server.url(), "t-nkey", "b", seed(&b)));
    let why = refused(config(server.url(), "t-nkey", "c", seed(&stranger)));
    assert!(why.contains("authorization violation"), "{why}");
    assert!(!why.contains(&stranger.seed().unwrap()), "{why}");
}

#[test]
fn nodes_with_creds_files_exchange_messages_in_operator_mode() {
    let operator = Operator::new();
    let dir = TempDir::new("creds");
    let Some(server) = server(&dir, &operator.server_config()) else { return };
    let creds = |name: &str| ClusterAuth::CredsFile(write(&dir, &format!("{name}.creds"), &operator.user_creds(name)));
    exchange(config(server.url(), "t-creds", "a", creds("a")), config(server.url(), "t-creds", "b", creds("b")));
}

#[test]
fn creds_of_an_account_the_server_does_not_trust_are_refused() {
    let operator = Operator::new();
    let dir = TempDir::new("bad-creds");
    let Some(server) = server(&dir, &operator.server_config()) else { return };
    let stranger = write(&dir, "stranger.creds", &stranger_creds("stranger"));
    let why = refused(config(server.url(), "t-creds", "a", ClusterAuth::CredsFile(stranger)));
    assert!(why.contains("authorization violation"), "{why}");
}

#[test]
fn a_creds_file_that_is_missing_or_malformed_is_refused_before_connecting() {
    let dir = TempDir::new("creds-file");
    let broken = write(&dir, "broken.creds", "no JWT here\n");
    // No server: the files are checked when the runtime is built.
    for (path, expected) in
        [(dir.path().join("absent.creds"), "absent.creds: cannot read it"), (broken, "cannot parse user JWT")]
    {
        let config = config("nats://127.0.0.1:1".into(), "t-creds", "a", ClusterAuth::CredsFile(path));
        match join(config) {
            Err(BuildError::InvalidConfig(why)) => assert!(why.contains(expected), "{why}"),
            Err(other) => panic!("{other}"),
            Ok(_) => panic!("joined a server that does not exist"),
        }
    }
}

// ----- TLS -------------------------------------------------------------------------------

fn tls(ca: &std::path::Path, client: Option<&Pki>) -> Option<ClusterTls> {
    Some(ClusterTls {
        ca_file: Some(ca.to_path_buf()),
        client_cert: client
            .map(|p| ClientCertificate { cert_file: p.client_cert.clone(), key_file: p.client_key.clone() }),
    })
}

/// A server with TLS on certificates of a fresh [`Pki`]; with `verify`, it requires a
/// client certificate. The directory holds the files while the server runs.
fn tls_server(tag: &str, verify: bool) -> Option<(TempDir, Pki, NatsServer)> {
    let dir = TempDir::new(tag);
    let pki = Pki::new(&dir);
    let server = server(&dir, &pki.server_block(verify))?;
    Some((dir, pki, server))
}

#[test]
fn nodes_verify_the_server_against_their_ca_and_exchange_messages_over_tls() {
    let Some((_dir, pki, server)) = tls_server("tls", false) else { return };
    // A tls:// URL, and a nats:// one: TLS is required either way once `tls` is set.
    let a = ClusterConfig { tls: tls(&pki.ca, None), ..config(server.tls_url(), "t-tls", "a", ClusterAuth::None) };
    let b = ClusterConfig { tls: tls(&pki.ca, None), ..config(server.url(), "t-tls", "b", ClusterAuth::None) };
    exchange(a, b);
}

#[test]
fn a_server_certificate_from_an_untrusted_ca_is_refused() {
    let Some((_dir, pki, server)) = tls_server("tls-untrusted", false) else { return };
    let why = refused(ClusterConfig {
        tls: tls(&pki.other_ca, None),
        ..config(server.tls_url(), "t-tls", "a", ClusterAuth::None)
    });
    assert!(why.contains("certificate") && why.contains("UnknownIssuer"), "{why}");
}

#[test]
fn with_client_certificates_required_nodes_with_one_exchange_messages() {
    let Some((_dir, pki, server)) = tls_server("mtls", true) else { return };
    let node = |name: &str| ClusterConfig {
        tls: tls(&pki.ca, Some(&pki)),
        ..config(server.tls_url(), "t-mtls", name, ClusterAuth::None)
    };
    exchange(node("a"), node("b"));
}

#[test]
fn with_client_certificates_required_a_node_without_one_is_refused() {
    let Some((_dir, pki, server)) = tls_server("mtls-missing", true) else { return };
    let why = refused(ClusterConfig {
        tls: tls(&pki.ca, None),
        ..config(server.tls_url(), "t-mtls", "a", ClusterAuth::None)
    });
    assert!(why.to_lowercase().contains("certificate"), "{why}");
}

// ----- subject permissions ------------------------------------------------------------

/// A node's permissions as `switchyard::cluster`'s docs list them, for node `node` of
/// cluster `t-perm` (its own link, acknowledgement and state subjects), with JetStream's
/// additions if `js`: (publish, subscribe).
fn node_permissions(node: &str, js: bool) -> (Vec<String>, Vec<String>) {
    let mut publish: Vec<String> = ["c.*", "l.*", "k.*", "t.*", "n.*", "s.*"].map(|s| format!("sy.t-perm.{s}")).into();
    publish.push("_INBOX.>".into());
    if js {
        publish.extend(["sy.t-perm.d.*", "$JS.API.>", "$JS.ACK.sy-t-perm.>"].map(String::from));
    }
    let own = [format!("sy.t-perm.l.{node}"), format!("sy.t-perm.k.{node}"), format!("sy.t-perm.s.{node}")];
    let mut subscribe = vec!["sy.t-perm.c.*".to_string()];
    subscribe.extend(own);
    subscribe.extend(["sy.t-perm.t.>", "sy.t-perm.n.>", "_INBOX.>", "$SRV.>"].map(String::from));
    (publish, subscribe)
}

/// A `nats-server` permissions block.
fn block((publish, subscribe): (Vec<String>, Vec<String>)) -> String {
    format!("{{ publish = {publish:?}, subscribe = {subscribe:?} }}")
}

/// The server's users for cluster `t-perm`: nodes with the documented permissions (with
/// JetStream's additions for `js-*`), a plain client that calls component "store", a
/// client that may call "other" only, a discovery tool (`nats micro ls`), and nodes each
/// missing one documented permission.
fn permissions() -> String {
    let without = |node: &str, pub_out: &str, sub_out: &str| {
        let (mut p, mut s) = node_permissions(node, false);
        p.retain(|x| x != pub_out);
        s.retain(|x| x != sub_out);
        block((p, s))
    };
    let picky = {
        let (p, mut s) = node_permissions("picky", false);
        s[0] = "sy.t-perm.c.store".into();
        block((p, s))
    };
    let users = [
        ("node-a", "a-pw", block(node_permissions("a", false))),
        ("node-b", "b-pw", block(node_permissions("b", false))),
        ("js-a", "a-pw", block(node_permissions("a", true))),
        ("js-b", "b-pw", block(node_permissions("b", true))),
        ("caller", "c-pw", r#"{ publish = ["sy.t-perm.c.store"], subscribe = ["_INBOX.>"] }"#.into()),
        ("nosy", "n-pw", r#"{ publish = ["sy.t-perm.c.other"], subscribe = ["_INBOX.>"] }"#.into()),
        ("tool", "t-pw", r#"{ publish = ["$SRV.>"], subscribe = ["_INBOX.>"] }"#.into()),
        ("deaf", "d-pw", without("deaf", "", "sy.t-perm.n.>")),
        ("mute", "m-pw", without("mute", "sy.t-perm.n.*", "")),
        ("picky", "p-pw", picky),
    ];
    let users: String = users
        .iter()
        .map(|(u, pw, perms)| format!("    {{user: {u}, password: {pw:?}, permissions: {perms}}}\n"))
        .collect();
    format!("authorization {{ users = [\n{users}] }}\n")
}

/// The server's errors to a plain client (they arrive while its tokio runtime runs).
type ServerErrors = tokio::sync::mpsc::UnboundedReceiver<String>;

/// A plain NATS client logged in as `name`, with the server's errors on a channel.
fn client(
    server: &NatsServer,
    name: &str,
    password: &str,
) -> (tokio::runtime::Runtime, async_nats::Client, ServerErrors) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio");
    let (tx, errors) = tokio::sync::mpsc::unbounded_channel();
    let options =
        async_nats::ConnectOptions::with_user_and_password(name.into(), password.into()).event_callback(move |ev| {
            let tx = tx.clone();
            async move {
                if let async_nats::Event::ServerError(e) = ev {
                    let _ = tx.send(e.to_string());
                }
            }
        });
    let client = rt.block_on(options.connect(server.url())).expect("the client connects");
    (rt, client, errors)
}

#[test]
fn nodes_and_a_plain_client_work_under_the_documented_permissions() {
    let dir = TempDir::new("permissions");
    let Some(server) = server(&dir, &permissions()) else { return };
    let b = join(config(server.url(), "t-perm", "b", user("node-b", "b-pw"))).expect("node b joins");
    let a = join(config(server.url(), "t-perm", "a", user("node-a", "a-pw"))).expect("node a joins");
    let store = echo_probe(&b, "store");
    let reader = echo_probe(&b, "reader");
    b.subscribe("news", id("reader"));
    assert!(a.wait_for_component(&id("store"), WAIT));
    a.try_send(ff(&id("store"), b"one way")).expect("queued");
    assert_eq!(recv(&store), b"one way");
    assert_eq!(a.request(req(&id("store"), b"ping"), WAIT).unwrap().wait().expect("answered").payload, b"ping");
    assert_eq!(recv(&store), b"ping");
    assert!(a.publish(publish("news", b"extra")).expect("published").sent_to_cluster);
    assert_eq!(recv(&reader), b"extra");

    // A plain client with only the caller's permissions requests "store".
    let (rt, caller, _errors) = client(&server, "caller", "c-pw");
    let reply = rt.block_on(caller.request("sy.t-perm.c.store", "hello".into())).expect("answered");
    assert_eq!(&reply.payload[..], b"hello");
    assert_eq!(recv(&store), b"hello");

    // A discovery tool hears from both nodes.
    let (rt, tool, _errors) = client(&server, "tool", "t-pw");
    let ids = rt.block_on(async {
        use futures_util::StreamExt;
        let inbox = tool.new_inbox();
        let mut answers = tool.subscribe(inbox.clone()).await.expect("subscribe");
        tool.publish_with_reply("$SRV.PING", inbox, "".into()).await.expect("publish");
        let mut ids = Vec::new();
        while ids.len() < 2 {
            let m = tokio::time::timeout(WAIT, answers.next()).await.expect("answered").expect("open");
            let pong: serde_json::Value = serde_json::from_slice(&m.payload).expect("JSON");
            ids.push(pong["id"].as_str().expect("an id").to_string());
        }
        ids.sort();
        ids
    });
    assert_eq!(ids, ["a", "b"]);

    let (ra, rb) = (a.shutdown(WAIT), b.shutdown(WAIT));
    assert!(ra.is_balanced() && rb.is_balanced(), "{ra:?}\n{rb:?}");
}

#[test]
fn a_client_without_permission_to_call_a_component_is_refused_by_the_server() {
    let dir = TempDir::new("permissions-refused");
    let Some(server) = server(&dir, &permissions()) else { return };
    let b = join(config(server.url(), "t-perm", "b", user("node-b", "b-pw"))).expect("node b joins");
    let store = echo_probe(&b, "store");
    let (rt, nosy, mut errors) = client(&server, "nosy", "n-pw");
    let error = rt.block_on(async {
        nosy.publish("sy.t-perm.c.store", "let me in".into()).await.unwrap();
        nosy.flush().await.unwrap();
        tokio::time::timeout(WAIT, errors.recv()).await.expect("the server answered").expect("an error")
    });
    assert!(error.to_lowercase().contains("permissions violation") && error.contains("sy.t-perm.c.store"), "{error}");
    // The server answers the publish with this error instead of delivering it; the
    // connection stays up for what the client may send.
    let reply = rt.block_on(nosy.request("sy.t-perm.c.other", "allowed".into()));
    assert!(matches!(&reply, Err(e) if e.kind() == async_nats::RequestErrorKind::NoResponders), "{reply:?}");
    assert!(store.try_recv().is_err(), "nothing reached the store");
    assert!(b.shutdown(WAIT).is_balanced());
}

#[test]
fn nodes_store_and_handle_an_at_least_once_message_under_the_documented_jetstream_permissions() {
    let dir = TempDir::new("permissions-js");
    let text = format!("jetstream {{ store_dir: {:?} }}\n{}", dir.path().join("js"), permissions());
    let Some(server) = server(&dir, &text) else { return };
    let node = |name: &str, user_name: &str, pw: &str| ClusterConfig {
        jetstream: true,
        ..config(server.url(), "t-perm", name, user(user_name, pw))
    };
    let b = join(node("b", "js-b", "b-pw")).expect("node b joins");
    let a = join(node("a", "js-a", "a-pw")).expect("node a joins");
    let store = echo_probe(&b, "store");
    assert!(a.wait_for_component(&id("store"), WAIT));
    a.try_send_with(ff(&id("store"), b"kept"), DeliveryGuarantee::AtLeastOnce).expect("queued for the stream");
    assert_eq!(recv(&store), b"kept");
    let stats = b.cluster_stats().expect("a node");
    assert_eq!(stats.durable_inbound, 1, "{stats:?}");
    let (ra, rb) = (a.shutdown(WAIT), b.shutdown(WAIT));
    assert!(ra.is_balanced() && rb.is_balanced(), "{ra:?}\n{rb:?}");
}

/// Building a node logged in as `name` under [`permissions`] fails with the server's
/// permission refusal, pointing at the documented table; returns the reason (`None`: no
/// `nats-server`, the test skips).
fn refused_for_permissions(name: &str, password: &str) -> Option<String> {
    let dir = TempDir::new(&format!("permissions-{name}"));
    let server = server(&dir, &permissions())?;
    let why = refused(config(server.url(), "t-perm", name, user(name, password)));
    assert!(why.to_lowercase().contains("permissions violation"), "{why}");
    assert!(why.contains("switchyard::cluster"), "points at the documented permissions: {why}");
    Some(why)
}

#[test]
fn a_node_denied_a_subscription_it_needs_is_refused_at_build_naming_the_subject() {
    // Without the directory's subscription it would join deaf to what other nodes host:
    // every send to them would be refused as to an unknown component.
    let Some(why) = refused_for_permissions("deaf", "d-pw") else { return };
    assert!(why.contains("Subscription to \"sy.t-perm.n.>\""), "{why}");
}

#[test]
fn a_node_denied_publishing_to_the_directory_is_refused_at_build() {
    // No other node would ever learn what it hosts.
    let Some(why) = refused_for_permissions("mute", "m-pw") else { return };
    assert!(why.contains("Publish to \"sy.t-perm.n.hello\""), "{why}");
}

#[test]
fn a_component_the_node_may_not_serve_is_counted_and_not_announced() {
    let dir = TempDir::new("permissions-picky");
    let Some(server) = server(&dir, &permissions()) else { return };
    let picky = join(config(server.url(), "t-perm", "picky", user("picky", "p-pw"))).expect("joins");
    let a = join(config(server.url(), "t-perm", "a", user("node-a", "a-pw"))).expect("node a joins");
    let _other = echo_probe(&picky, "other");
    let _store = echo_probe(&picky, "store");
    // "store" may be served, "other" may not: the server denies its subscription, the node
    // counts the refusal and does not tell the cluster it hosts "other" (a sender would
    // wait on a subscription that never receives).
    // "other" was registered first: had it been announced, node a would know it by now.
    assert!(a.wait_for_component(&id("store"), WAIT));
    assert_eq!(picky.cluster_stats().unwrap().permission_denied, 1);
    // Past node a's warming (an unknown id would wait for membership), "other" is unknown.
    warm(&a);
    let sent = a.request(req(&id("other"), b"ping"), WAIT);
    assert!(matches!(sent, Err(switchyard::SendError::NoSuchComponent(_))), "other was announced: {sent:?}");
    assert_eq!(a.request(req(&id("store"), b"ping"), WAIT).expect("sent").wait().expect("answered").payload, b"ping");
    let (rp, ra) = (picky.shutdown(WAIT), a.shutdown(WAIT));
    assert!(rp.is_balanced() && ra.is_balanced(), "{rp:?}\n{ra:?}");
}
