//! The two-account deployment documented in `switchyard::cluster` ("Two accounts"), on a
//! real `nats-server` started from `examples/cluster/two-accounts.conf` itself: nodes in
//! account NODES, plain clients in CLIENTS reaching components only through the service
//! NODES exports. A client under the documented CLIENTS permissions calls a component and
//! gets its reply; it cannot rewrite the directory, store into the stream, plant a key the
//! nodes or the stream deduplicate by, or read or answer another client's requests.
//!
//! Two users are added for the tests: `witness`, in NODES without limits (it sees what
//! reaches NODES, and plays a member of NODES gone bad: NODES is trusted), and `careless`,
//! in CLIENTS without limits (what the account boundary stops when permissions do not).
#![cfg(feature = "cluster")]

mod common;

use async_nats::HeaderMap;
use common::nats::NatsServer;
use common::nodes::{echo_probe, node_with, reachable, warm};
use common::security::{TempDir, write};
use common::*;
use crossbeam_channel::Receiver;
use futures_util::{FutureExt, StreamExt};
use switchyard::cluster::{ClusterAuth, ClusterConfig, Secret};
use switchyard::{DeadLetter, DeliveryGuarantee, Runtime, SendError};

/// The documented configuration.
const CONFIG: &str = include_str!("../examples/cluster/two-accounts.conf");
/// Its cluster.
const CLUSTER: &str = "demo";

/// A server running [`CONFIG`] (its JetStream store in `dir`), with the test's two users.
struct Deployment {
    server: NatsServer,
    _dir: TempDir,
}

fn deployment(tag: &str) -> Option<Deployment> {
    let dir = TempDir::new(tag);
    let nodes_anchor = r#"{ user: node-b, password: "node-b-password", permissions: $NODE_B }"#;
    let clients_anchor = "{ user: app-1, password:";
    let store = "/var/lib/nats/jetstream";
    for anchor in [nodes_anchor, clients_anchor, store] {
        assert!(CONFIG.contains(anchor), "the documented configuration lost {anchor:?}");
    }
    let text = CONFIG
        .replacen(nodes_anchor, &format!("{nodes_anchor}\n{{ user: witness, password: \"witness-password\" }}"), 1)
        .replacen(
            clients_anchor,
            &format!("{{ user: careless, password: \"careless-password\" }}\n{clients_anchor}"),
            1,
        )
        .replacen(store, &dir.path().join("js").display().to_string(), 1);
    let server = NatsServer::start_with_config(&write(&dir, "server.conf", &text))?;
    Some(Deployment { server, _dir: dir })
}

/// Node `name` (user `node-<name>` of NODES), with JetStream, and its dead letters.
fn node(d: &Deployment, name: &str) -> (Runtime, Receiver<DeadLetter>) {
    let auth = ClusterAuth::UserPassword {
        user: format!("node-{name}"),
        password: Secret::new(format!("node-{name}-password")),
    };
    node_with(ClusterConfig {
        node: Some(name.into()),
        jetstream: true,
        connect_timeout: WAIT,
        auth,
        ..ClusterConfig::new(d.server.url(), CLUSTER)
    })
}

/// A plain NATS client logged in as `user` (inbox prefix `_INBOX.<user>`), with the
/// server's errors to it on a channel.
struct Client {
    rt: tokio::runtime::Runtime,
    nats: async_nats::Client,
    errors: tokio::sync::mpsc::UnboundedReceiver<String>,
}

fn client(d: &Deployment, user: &str) -> Client {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio");
    let (tx, errors) = tokio::sync::mpsc::unbounded_channel();
    let options = async_nats::ConnectOptions::with_user_and_password(user.into(), format!("{user}-password"))
        .custom_inbox_prefix(format!("_INBOX.{user}"))
        .event_callback(move |ev| {
            let tx = tx.clone();
            async move {
                if let async_nats::Event::ServerError(e) = ev {
                    let _ = tx.send(e.to_string());
                }
            }
        });
    let nats = rt.block_on(options.connect(d.server.url())).expect("the client connects");
    Client { rt, nats, errors }
}

impl Client {
    /// The server's next error to this client.
    fn next_error(&mut self) -> String {
        let Client { rt, errors, .. } = self;
        rt.block_on(async { tokio::time::timeout(WAIT, errors.recv()).await.expect("the server answered") })
            .expect("an error")
    }

    /// Asserts that the server refused each of `what` (`"Publish to"`, `"Subscription to"`),
    /// in order, naming the subject.
    fn refused(&mut self, what: &str, subjects: &[&str]) {
        for s in subjects {
            let e = self.next_error();
            assert!(e.contains("Permissions Violation") && e.contains(&format!("{what} \"{s}\"")), "{s}: {e}");
        }
    }

    /// A round trip through the server: a request on `subject`, answered by the server
    /// ("no responders") or by a component. Whatever the server had for this client before
    /// it took the request has arrived by then (a flush only writes).
    fn barrier(&self, subject: &str) {
        match self.rt.block_on(self.nats.request(subject.to_string(), "barrier".into())) {
            Ok(_) => {}
            Err(e) if e.kind() == async_nats::RequestErrorKind::NoResponders => {}
            Err(e) => panic!("no round trip through {subject}: {e}"),
        }
    }
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.insert(*k, *v);
    }
    h
}

fn status(m: &async_nats::Message) -> &str {
    m.headers.as_ref().and_then(|h| h.get("sy-status")).map_or("", |v| v.as_str())
}

/// True when `sub` holds a message already.
fn holds_any(sub: &mut async_nats::Subscriber) -> bool {
    matches!(sub.next().now_or_never(), Some(Some(_)))
}

// ----- calling a component -------------------------------------------------------------

#[test]
fn a_client_calls_a_component_one_way_and_by_request_through_the_export_and_gets_the_reply() {
    let Some(d) = deployment("accounts-call") else { return };
    let (b, _dead_b) = node(&d, "b");
    let (a, _dead_a) = node(&d, "a");
    let store = echo_probe(&b, "store");
    reachable(&a, "store");
    // The nodes among themselves, under the documented NODE permissions.
    a.try_send(ff(&id("store"), b"node one way")).expect("queued");
    assert_eq!(recv(&store), b"node one way");
    assert_eq!(a.request(req(&id("store"), b"node ask"), WAIT).unwrap().wait().expect("answered").payload, b"node ask");
    assert_eq!(recv(&store), b"node ask");
    a.try_send_with(ff(&id("store"), b"node kept"), DeliveryGuarantee::AtLeastOnce).expect("queued");
    assert_eq!(recv(&store), b"node kept");

    let app = client(&d, "app-1");
    app.rt.block_on(async {
        let nats = &app.nats;
        nats.publish("sy.demo.c.store", "one way".into()).await.unwrap();
        // The node sees the reply subject as the server maps it (`_R_.<token>.<token>`) and
        // answers there; the server takes the answer back to the client's inbox.
        let reply = nats.request("sy.demo.c.store", "ask".into()).await.expect("answered");
        assert_eq!((&reply.payload[..], status(&reply)), (&b"ask"[..], "ok"));
        let h = headers(&[("sy-type", "fire-and-forget")]);
        let confirmed = nats.request_with_headers("sy.demo.c.store", h, "confirmed".into()).await.expect("confirmed");
        assert_eq!(status(&confirmed), "ok");
        let h = headers(&[("sy-type", "health")]);
        let health = nats.request_with_headers("sy.demo.c.store", h, "".into()).await.expect("health answered");
        let said = |name: &str| health.headers.as_ref().and_then(|h| h.get(name)).map(|v| v.as_str().to_string());
        assert_eq!((said("sy-health").as_deref(), said("sy-node").as_deref()), (Some("healthy"), Some("b")));

        // Discovery through the stream export: both nodes answer a PING.
        let inbox = nats.new_inbox();
        let mut answers = nats.subscribe(inbox.clone()).await.unwrap();
        nats.publish_with_reply("$SRV.PING.switchyard-demo", inbox, "".into()).await.unwrap();
        let mut ids = Vec::new();
        for _ in 0..2 {
            let m = tokio::time::timeout(WAIT, answers.next()).await.expect("a pong").expect("open");
            let pong: serde_json::Value = serde_json::from_slice(&m.payload).expect("JSON");
            ids.push(pong["id"].as_str().expect("an id").to_string());
        }
        ids.sort();
        assert_eq!(ids, ["a", "b"]);
    });
    for expected in [&b"one way"[..], b"ask", b"confirmed"] {
        assert_eq!(recv(&store), expected);
    }
    let stats = b.cluster_stats().unwrap();
    assert_eq!((stats.inbound_refused, stats.discovery_refused), (0, 0), "{stats:?}");
    let (ra, rb) = (a.shutdown(WAIT), b.shutdown(WAIT));
    assert!(ra.is_balanced() && rb.is_balanced(), "{ra:?}\n{rb:?}");
}

#[test]
fn a_reply_subject_aimed_anywhere_but_an_inbox_or_the_servers_reply_mapping_is_refused_and_counted() {
    let Some(d) = deployment("accounts-reply") else { return };
    let (b, _dead_b) = node(&d, "b");
    let store = echo_probe(&b, "store");
    // A member of NODES without permissions (a node's permissions do not limit the reply
    // subjects it gives either). Its answer would purge the stream, land on another
    // component, in the directory or on every node's discovery, or go to every inbox.
    let mut witness = client(&d, "witness");
    let aimed = ["$JS.API.STREAM.PURGE.sy-demo", "sy.demo.c.other", "sy.demo.n.bye", "$SRV.PING", "_R_"];
    let malformed = ["_INBOX.>", "_INBOX.a..b", "_INBOX."];
    // The server's own prefixes: it refuses any client a reply subject under them, whatever
    // its permissions, so a `_R_.` reply subject a node sees is always the server's mapping.
    let reserved = ["_R_.forged.reply", "_R_.>", "$JS.ACK.sy-demo.x"];
    let mut watchers = witness.rt.block_on(async {
        let nats = &witness.nats;
        let mut watchers = Vec::new();
        for s in aimed {
            watchers.push(nats.subscribe(s).await.unwrap());
        }
        // Until node b serves the id.
        loop {
            match nats.request("sy.demo.c.store", "first".into()).await {
                Err(e) if e.kind() == async_nats::RequestErrorKind::NoResponders => tokio::task::yield_now().await,
                r => break assert_eq!(r.expect("answered").payload, "first"),
            }
        }
        for reply in aimed.iter().chain(&malformed).chain(&reserved) {
            nats.publish_with_reply("sy.demo.c.store", *reply, "hostile".into()).await.unwrap();
        }
        watchers
    });
    assert_eq!(recv(&store), b"first");
    witness.refused("Publish with Reply of", &reserved);
    // Node b handles the id's messages in order: once a later request is answered, an
    // answer to a hostile one would have come first.
    witness.barrier("sy.demo.c.store");
    assert_eq!(recv(&store), b"barrier", "the hostile requests were not delivered");
    for (s, w) in aimed.iter().zip(&mut watchers) {
        assert!(!holds_any(w), "an answer went to {s}");
    }
    assert_eq!(b.cluster_stats().unwrap().inbound_refused, (aimed.len() + malformed.len()) as u64);

    // So is a discovery request.
    witness.rt.block_on(async {
        for reply in ["$JS.API.STREAM.PURGE.sy-demo", "_INBOX.>"] {
            witness.nats.publish_with_reply("$SRV.PING.switchyard-demo.b", reply, "".into()).await.unwrap();
        }
    });
    let pong = witness.rt.block_on(witness.nats.request("$SRV.PING.switchyard-demo.b", "".into())).expect("a pong");
    let pong: serde_json::Value = serde_json::from_slice(&pong.payload).expect("JSON");
    assert_eq!(pong["id"], "b");
    assert!(!holds_any(&mut watchers[0]), "a discovery answer went to the JetStream API");
    assert_eq!(b.cluster_stats().unwrap().discovery_refused, 2);
    assert!(b.shutdown(WAIT).is_balanced());
}

// ----- what a client cannot do ---------------------------------------------------------

#[test]
fn a_client_cannot_rewrite_the_directory() {
    let Some(d) = deployment("accounts-directory") else { return };
    let (b, _dead_b) = node(&d, "b");
    let (a, _dead_a) = node(&d, "a");
    let _store = echo_probe(&b, "store");
    reachable(&a, "store");
    let witness = client(&d, "witness");
    let mut seen = witness.rt.block_on(witness.nats.subscribe("sy.demo.>")).unwrap();
    witness.barrier("_barrier");
    // A node that does not exist says hello and hosts "evil", node b's heartbeat says it
    // restarted with nothing (a new epoch, an empty digest, every 10 ms), node b says bye;
    // a fetch of node b's ids is asked.
    let forged = [
        ("sy.demo.n.hello", "evil-node", "+evil\n"),
        ("sy.demo.n.change", "evil-node", "+evil\n"),
        ("sy.demo.n.beat", "b", ""),
        ("sy.demo.n.bye", "b", ""),
        ("sy.demo.s.b", "b", ""),
    ];
    let forge = |c: &Client| {
        c.rt.block_on(async {
            for (subject, node, payload) in forged {
                let h = headers(&[
                    ("sy-node", node),
                    ("sy-epoch", "1"),
                    ("sy-heartbeat-ms", "10"),
                    ("sy-digest", "0"),
                    ("sy-before", "0"),
                    ("x-forged", "yes"),
                ]);
                c.nats.publish_with_headers(subject, h, payload.into()).await.unwrap();
            }
            c.nats.flush().await.unwrap();
        })
    };
    let mut app = client(&d, "app-1");
    forge(&app);
    app.refused(
        "Publish to",
        &["sy.demo.n.hello", "sy.demo.n.change", "sy.demo.n.beat", "sy.demo.n.bye", "sy.demo.s.b"],
    );
    // Without permissions the publishes stay in CLIENTS, where nothing listens; a marker
    // through the export then reaches NODES after them.
    let careless = client(&d, "careless");
    forge(&careless);
    careless.rt.block_on(async {
        careless.nats.publish("sy.demo.c.marker", "marker".into()).await.unwrap();
        careless.nats.flush().await.unwrap();
    });
    let until_marker = async {
        while let Some(m) = seen.next().await {
            if m.subject.as_str() == "sy.demo.c.marker" {
                return;
            }
            assert!(m.headers.as_ref().and_then(|h| h.get("x-forged")).is_none(), "reached NODES: {m:?}");
        }
    };
    let read = witness.rt.block_on(async { tokio::time::timeout(WAIT, until_marker).await });
    read.expect("the marker reached NODES");
    let stats = a.cluster_stats().unwrap();
    assert_eq!((stats.remote_nodes, stats.directory_refused), (1, 0), "{stats:?}");
    warm(&a);
    assert!(matches!(a.request(req(&id("evil"), b"x"), WAIT), Err(SendError::NoSuchComponent(_))));
    assert_eq!(a.request(req(&id("store"), b"still"), WAIT).unwrap().wait().expect("answered").payload, b"still");

    // The same kind of publish from inside NODES does reach the nodes: what kept the
    // clients' out is the account boundary, and the test would have seen it.
    witness.rt.block_on(async {
        let h = headers(&[("sy-node", "insider"), ("sy-epoch", "1"), ("sy-heartbeat-ms", "60000"), ("sy-digest", "0")]);
        witness.nats.publish_with_headers("sy.demo.n.beat", h, "".into()).await.unwrap();
        witness.nats.flush().await.unwrap();
    });
    until("the insider is a node", || a.cluster_stats().unwrap().remote_nodes == 2);
    let (ra, rb) = (a.shutdown(WAIT), b.shutdown(WAIT));
    assert!(ra.is_balanced() && rb.is_balanced(), "{ra:?}\n{rb:?}");
}

/// The number of messages stream `sy-demo` holds, asked by the witness.
fn stored(witness: &Client) -> u64 {
    witness.rt.block_on(async {
        let js = async_nats::jetstream::new(witness.nats.clone());
        let mut stream = js.get_stream("sy-demo").await.expect("the stream is there");
        stream.info().await.expect("its info").state.messages
    })
}

#[test]
fn a_client_cannot_store_into_the_stream_nor_reach_the_nodes_jetstream_api() {
    let Some(d) = deployment("accounts-stream") else { return };
    let (b, _dead_b) = node(&d, "b");
    let (a, _dead_a) = node(&d, "a");
    let store = echo_probe(&b, "store");
    reachable(&a, "store");
    let witness = client(&d, "witness");
    assert_eq!(stored(&witness), 0);

    let mut app = client(&d, "app-1");
    app.rt.block_on(async {
        let h = headers(&[("Nats-Msg-Id", "k-1")]);
        app.nats.publish_with_headers("sy.demo.d.store", h, "filler".into()).await.unwrap();
        app.nats.publish("$JS.API.STREAM.PURGE.sy-demo", "".into()).await.unwrap();
    });
    app.refused("Publish to", &["sy.demo.d.store", "$JS.API.STREAM.PURGE.sy-demo"]);

    // Without permissions: the stream's subjects are NODES', and CLIENTS has no JetStream
    // of its own; the server answers the API for CLIENTS, not for NODES.
    let careless = client(&d, "careless");
    careless.rt.block_on(async {
        let nats = &careless.nats;
        let h = headers(&[("Nats-Msg-Id", "k-2")]);
        let r = nats.request_with_headers("sy.demo.d.store", h, "filler".into()).await;
        assert!(matches!(&r, Err(e) if e.kind() == async_nats::RequestErrorKind::NoResponders), "{r:?}");
        for api in ["$JS.API.STREAM.PURGE.sy-demo", "$JS.API.STREAM.DELETE.sy-demo", "$JS.API.STREAM.INFO.sy-demo"] {
            let r = nats.request(api, "".into()).await.expect("the server answers");
            let text = String::from_utf8_lossy(&r.payload);
            assert!(text.contains("JetStream not enabled for account"), "{api}: {text}");
        }
    });
    assert_eq!(stored(&witness), 0, "nothing stored, and the stream is still there");
    assert!(store.try_recv().is_err());
    a.try_send_with(ff(&id("store"), b"kept"), DeliveryGuarantee::AtLeastOnce).expect("queued");
    assert_eq!(recv(&store), b"kept");
    let (ra, rb) = (a.shutdown(WAIT), b.shutdown(WAIT));
    assert!(ra.is_balanced() && rb.is_balanced(), "{ra:?}\n{rb:?}");
}

#[test]
fn a_client_cannot_plant_a_key_the_stream_or_a_node_deduplicates_by() {
    let Some(d) = deployment("accounts-keys") else { return };
    let (b, _dead_b) = node(&d, "b");
    let (a, _dead_a) = node(&d, "a");
    let store = echo_probe(&b, "store");
    reachable(&a, "store");

    // The stream's key for an exactly-once message is `<escaped id>/<message id>`: one
    // planted first would have the server drop the node's message as a duplicate. A link
    // batch from node a, numbered ahead of node a's own, would have node b settle the
    // planted messages in their place and drop node a's as resends.
    let plant = |c: &Client| {
        c.rt.block_on(async {
            let h = headers(&[("Nats-Msg-Id", "store/m-planted"), ("sy-delivery", "exactly-once")]);
            c.nats.publish_with_headers("sy.demo.d.store", h, "planted".into()).await.unwrap();
            let h = headers(&[("sy-node", "a"), ("sy-epochs", "1.1"), ("sy-seq", "1"), ("sy-acked", "0")]);
            c.nats.publish_with_headers("sy.demo.l.b", h, "planted".into()).await.unwrap();
            c.nats.flush().await.unwrap();
        })
    };
    let mut app = client(&d, "app-1");
    plant(&app);
    app.refused("Publish to", &["sy.demo.d.store", "sy.demo.l.b"]);
    let careless = client(&d, "careless");
    plant(&careless);
    careless.rt.block_on(async {
        for subject in ["sy.demo.d.store", "sy.demo.l.b"] {
            let r = careless.nats.request(subject, "planted".into()).await;
            assert!(matches!(&r, Err(e) if e.kind() == async_nats::RequestErrorKind::NoResponders), "{subject}: {r:?}");
        }
    });
    assert_eq!(b.cluster_stats().unwrap().inbound, 0, "nothing reached node b");
    #[cfg(feature = "exactly-once-delivery")]
    {
        let mut env = ff(&id("store"), b"exactly once");
        env.message_id = "m-planted".into();
        a.try_send_with(env, DeliveryGuarantee::ExactlyOnce).expect("queued");
        assert_eq!(recv(&store), b"exactly once", "stored and handled, not dropped as a duplicate");
        // The same key planted from inside NODES is one: the stream drops the node's message
        // and the node dead-letters it as a duplicate (so the test would have seen it).
        let witness = client(&d, "witness");
        witness.rt.block_on(async {
            let h = headers(&[("Nats-Msg-Id", "store/m-insider"), ("sy-delivery", "exactly-once")]);
            witness.nats.request_with_headers("sy.demo.d.store", h, "planted inside".into()).await.expect("stored");
        });
        assert_eq!(recv(&store), b"planted inside");
        let mut env = ff(&id("store"), b"too late");
        env.message_id = "m-insider".into();
        a.try_send_with(env, DeliveryGuarantee::ExactlyOnce).expect("queued");
        let dead = _dead_a.recv_timeout(WAIT).expect("dead-lettered");
        assert_eq!(dead.reason, switchyard::DeadLetterReason::Duplicate);
    }

    // Node a's own one-way messages still go through, numbered from 1 on its link.
    a.try_send(ff(&id("store"), b"first")).expect("queued");
    assert_eq!(recv(&store), b"first");
    assert!(store.try_recv().is_err());
    let (ra, rb) = (a.shutdown(WAIT), b.shutdown(WAIT));
    assert!(ra.is_balanced() && rb.is_balanced(), "{ra:?}\n{rb:?}");
}

#[test]
fn a_client_cannot_read_or_answer_another_clients_requests() {
    let Some(d) = deployment("accounts-replies") else { return };
    let (b, _dead_b) = node(&d, "b");
    let _store = echo_probe(&b, "store");
    let alice = client(&d, "app-1");
    let mut mallory = client(&d, "app-2");
    // Alice's replies, the server's mapping of them, her requests (with her reply subject:
    // a subscriber there could answer before the component), everything.
    let tries = ["_INBOX.>", "_INBOX.app-1.>", "_R_.>", "sy.demo.c.store", "sy.demo.c.>", ">"];
    let mut subs = mallory.rt.block_on(async {
        let mut subs = Vec::new();
        for s in tries {
            subs.push(mallory.nats.subscribe(s).await.unwrap());
        }
        subs
    });
    mallory.refused("Subscription to", &tries);
    // The server's reply mapping lives in NODES: a CLIENTS user without limits sees none.
    let careless = client(&d, "careless");
    let mut mapped = careless.rt.block_on(careless.nats.subscribe("_R_.>")).unwrap();
    careless.barrier("_barrier");
    alice.rt.block_on(async {
        loop {
            match alice.nats.request("sy.demo.c.store", "for alice".into()).await {
                Err(e) if e.kind() == async_nats::RequestErrorKind::NoResponders => tokio::task::yield_now().await,
                r => break assert_eq!(r.expect("answered").payload, "for alice"),
            }
        }
    });
    // Alice has her reply: anything of it for the others was on its way to them before
    // their next round trip.
    mallory.barrier("sy.demo.c.store");
    careless.barrier("_barrier");
    for (s, sub) in tries.iter().zip(&mut subs) {
        assert!(!holds_any(sub), "mallory read something on {s}");
    }
    assert!(!holds_any(&mut mapped), "a reply mapping reached CLIENTS");

    // Inside CLIENTS the permissions are what keep clients apart: without them a user
    // reads another's replies (hence one inbox prefix per client user in the table).
    let mut snoop = careless.rt.block_on(careless.nats.subscribe("_INBOX.app-1.>")).unwrap();
    careless.barrier("_barrier");
    let reply = alice.rt.block_on(alice.nats.request("sy.demo.c.store", "again".into())).expect("answered");
    assert_eq!(reply.payload, "again");
    careless.barrier("_barrier");
    assert!(holds_any(&mut snoop), "a user without the documented permissions reads them");
    assert!(b.shutdown(WAIT).is_balanced());
}
