//! What a node on a real `nats-server` does with messages nobody honest would send: a
//! reused message id, a forged answer, a request asking to be held for an hour, message ids
//! that would change in transit, peers with another heartbeat. Each test failed before its fix.
#![cfg(feature = "cluster")]

mod common;

use std::time::Duration;

use common::nats::NatsServer;
use common::nodes::*;
use common::*;
use crossbeam_channel::{Receiver, unbounded};
use futures_util::StreamExt;
use switchyard::cluster::ClusterConfig;
use switchyard::{ComponentSpec, InvalidEnvelope, SendError, handler_fn};

fn headers(pairs: &[(&str, &str)]) -> async_nats::HeaderMap {
    let mut h = async_nats::HeaderMap::new();
    for (k, v) in pairs {
        h.insert(*k, *v);
    }
    h
}

#[test]
fn a_reused_message_id_is_delivered_again_and_a_client_cannot_have_a_later_message_dropped() {
    let Some(server) = NatsServer::start() else { return };
    let (a, dead) = node(&server, "t-ids", "a");
    let (b, _dead_b) = node(&server, "t-ids", "b");
    let store = echo_probe(&b, "store");
    reachable(&a, "store");
    // A plain client's confirmed one-way message under id m-1 (as a hostile client would
    // plant the key of a message it expects node a to send).
    let (rt, client) = async_nats_client(&server);
    let h = headers(&[("sy-type", "fire-and-forget"), ("sy-message-id", "m-1")]);
    let answer = rt.block_on(client.request_with_headers("sy.t-ids.c.store", h, "planted".into())).unwrap();
    assert_eq!(answer.headers.unwrap().get("sy-status").unwrap().as_str(), "ok");
    assert_eq!(recv(&store), b"planted");
    // Node a sends two messages under the same id: both are new messages, both delivered.
    for payload in [&b"first"[..], b"second"] {
        let mut env = ff(&id("store"), payload);
        env.message_id = "m-1".into();
        a.try_send(env).expect("queued");
        assert_eq!(recv(&store), payload);
    }
    until("both confirmed", || a.cluster_stats().is_some_and(|s| s.forwarded == 2));
    assert!(dead.try_recv().is_err());
}

#[test]
fn an_answer_on_one_requests_inbox_cannot_complete_another_request() {
    let Some(server) = NatsServer::start() else { return };
    let (a, _dead) = node(&server, "t-forge", "a");
    let (b, _dead_b) = node(&server, "t-forge", "b");
    // "slow" on node b answers once the test lets it.
    let (open_tx, open_rx) = unbounded::<()>();
    b.register(
        id("slow"),
        ComponentSpec::new(move || {
            let open = open_rx.clone();
            handler_fn(move |_ctx, _m| {
                let _ = open.recv();
                Ok(Some(b"real".to_vec()))
            })
        }),
    )
    .unwrap();
    reachable(&a, "slow");
    // "evil": a plain client that serves an id and announces it, as a node would.
    let (rt, client) = async_nats_client(&server);
    let mut evil = rt.block_on(async {
        let sub = client.queue_subscribe("sy.t-forge.c.evil", "switchyard".into()).await.unwrap();
        client.flush().await.unwrap();
        sub
    });
    let _evil_node = FakeNode::start(&server, "t-forge", "evil-node", &["evil"]);
    reachable(&a, "evil");
    let y = req(&id("slow"), b"y");
    let y_id = y.message_id.clone();
    let waiting_y = a.request(y, WAIT).unwrap();
    let waiting_x = a.request(req(&id("evil"), b"x"), Duration::from_secs(5)).unwrap();
    // Evil answers X's inbox, claiming to be "slow" answering Y.
    rt.block_on(async {
        let m = tokio::time::timeout(WAIT, evil.next()).await.expect("x arrives").unwrap();
        let h = headers(&[("sy-status", "ok"), ("sy-correlation-id", &y_id), ("sy-from", "slow")]);
        client.publish_with_headers(m.reply.unwrap(), h, "forged".into()).await.unwrap();
        client.flush().await.unwrap();
    });
    // It answered X (its own request), as the component asked, whatever it claimed.
    let x = waiting_x.wait().expect("x answered");
    assert_eq!((x.payload.as_slice(), x.from.as_str()), (&b"forged"[..], "evil"));
    assert_ne!(x.correlation_id.as_deref(), Some(y_id.as_str()));
    // Y is still "slow"'s to answer.
    open_tx.send(()).unwrap();
    assert_eq!(waiting_y.wait().expect("y answered").payload, b"real");
}

#[test]
fn a_request_asking_to_be_held_for_an_hour_gives_up_at_the_nodes_cap() {
    let Some(server) = NatsServer::start() else { return };
    let (b, _dead) = node_with(ClusterConfig {
        node: Some("b".into()),
        max_request_timeout: Duration::from_millis(300),
        ..ClusterConfig::new(server.url(), "t-cap")
    });
    let (open_tx, open_rx) = unbounded::<()>();
    b.register(
        id("mute"),
        ComponentSpec::new(move || {
            let open = open_rx.clone();
            handler_fn(move |_ctx, _m| {
                let _ = open.recv();
                Ok(None)
            })
        }),
    )
    .unwrap();
    let (rt, client) = async_nats_client(&server);
    let answer = rt.block_on(async {
        // Until node b serves the id (its subscription is in place once it is announced).
        loop {
            let h = headers(&[("sy-timeout-ms", "3600000")]);
            let req = async_nats::Request::new().headers(h).payload("hold me".into()).timeout(Some(WAIT));
            match client.send_request("sy.t-cap.c.mute", req).await {
                Err(e) if e.kind() == async_nats::RequestErrorKind::NoResponders => tokio::task::yield_now().await,
                r => break r.expect("answered"),
            }
        }
    });
    assert_eq!(answer.headers.unwrap().get("sy-status").unwrap().as_str(), "timed_out");
    open_tx.send(()).unwrap();
}

#[test]
fn message_ids_with_edge_whitespace_are_not_for_the_cluster() {
    let Some(server) = NatsServer::start() else { return };
    let (a, _dead) = node(&server, "t-space", "a");
    let (b, _dead_b) = node(&server, "t-space", "b");
    let _store = echo_probe(&b, "store");
    reachable(&a, "store");
    // (Component ids hold no whitespace at all; message ids may.)
    let padded = |message_id: &str| {
        let mut env = ff(&id("store"), b"x");
        env.message_id = message_id.into();
        env
    };
    for env in [padded("m-2 "), padded(" m-3"), padded("\tm-4")] {
        match a.try_send(env.clone()) {
            Err(SendError::Invalid(back, InvalidEnvelope::NotForTheCluster)) => assert_eq!(back, env),
            other => panic!("{env:?} would arrive changed: {other:?}"),
        }
    }
}

#[test]
fn a_node_with_a_slower_heartbeat_is_judged_by_its_own() {
    let Some(server) = NatsServer::start() else { return };
    let config = |node: &str, heartbeat_ms: u64| ClusterConfig {
        node: Some(node.into()),
        heartbeat: Duration::from_millis(heartbeat_ms),
        ..ClusterConfig::new(server.url(), "t-beat")
    };
    let (a, _dead) = node_with(config("a", 50));
    let (b, _dead_b) = node_with(config("b", 1000));
    let _store = echo_probe(&b, "store");
    reachable(&a, "store");
    // Three of node b's heartbeats: a second of silence between each, twenty of
    // node a's heartbeats. Meanwhile node a must reach "store" every time it looks.
    let stop = std::sync::atomic::AtomicBool::new(false);
    let misses = std::thread::scope(|s| {
        let watcher = s.spawn(|| {
            let mut misses = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                misses += u64::from(!a.wait_for_component(&id("store"), Duration::ZERO));
                std::thread::yield_now();
            }
            misses
        });
        let (rt, client) = async_nats_client(&server);
        rt.block_on(async {
            let mut states = client.subscribe("sy.t-beat.n.beat").await.unwrap();
            let mut from_b = 0;
            while from_b < 3 {
                let m = tokio::time::timeout(WAIT, states.next()).await.expect("states keep coming").unwrap();
                if m.headers.as_ref().and_then(|h| h.get("sy-node")).map(|v| v.as_str()) == Some("b") {
                    from_b += 1;
                }
            }
        });
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        watcher.join().unwrap()
    });
    assert_eq!(misses, 0, "store flapped out of node a's reach");
    let stats = a.cluster_stats().unwrap();
    assert_eq!(stats.nodes_expired, 0, "node b was never forgotten: {stats:?}");
}

#[test]
fn a_node_answers_only_on_inbox_subjects() {
    let Some(server) = NatsServer::start() else { return };
    let (b, _dead) = node(&server, "t-reply", "b");
    let store = echo_probe(&b, "store");
    let (rt, client) = async_nats_client(&server);
    let mut target = rt.block_on(client.subscribe("victim.subject")).unwrap();
    let answer = rt.block_on(async {
        // Until node b serves the id.
        loop {
            match client.request("sy.t-reply.c.store", "legit".into()).await {
                Err(e) if e.kind() == async_nats::RequestErrorKind::NoResponders => tokio::task::yield_now().await,
                r => break r.expect("answered"),
            }
        }
    });
    assert_eq!(answer.payload, "legit");
    assert_eq!(recv(&store), b"legit");
    // A request whose reply subject is another subject: neither delivered nor answered.
    rt.block_on(async {
        client.publish_with_reply("sy.t-reply.c.store", "victim.subject", "hostile".into()).await.unwrap();
        client.flush().await.unwrap();
    });
    // Node b handles messages on the id in order: once a later request is answered, an
    // answer to the hostile one would have come first, on the same connections.
    let later = rt.block_on(client.request("sy.t-reply.c.store", "later".into())).unwrap();
    assert_eq!(later.payload, "later");
    assert_eq!(recv(&store), b"later", "the hostile request was not delivered");
    assert!(
        rt.block_on(async { futures_util::FutureExt::now_or_never(target.next()) }).is_none(),
        "nothing published to the victim"
    );
    assert_eq!(b.cluster_stats().unwrap().inbound_refused, 1);
}

/// The headers of node `node`'s membership announcement (`membership.rs`): epoch 1, a
/// one-minute heartbeat (nothing expires during a test), `digest`.
fn announcement(node: &str, digest: u64) -> async_nats::HeaderMap {
    let digest = format!("{digest:016x}");
    headers(&[("sy-node", node), ("sy-epoch", "1"), ("sy-heartbeat-ms", "60000"), ("sy-digest", &digest)])
}

/// Publishes membership message `verb` with `h` and `payload`.
async fn say(client: &async_nats::Client, cluster: &str, verb: &str, h: async_nats::HeaderMap, payload: String) {
    client.publish_with_headers(format!("sy.{cluster}.n.{verb}"), h, payload.into()).await.unwrap();
}

#[test]
fn forged_announcements_cannot_grow_the_directory_past_its_bounds() {
    let Some(server) = NatsServer::start() else { return };
    let (a, _dead) = node_with(ClusterConfig {
        node: Some("a".into()),
        max_nodes: 4,
        max_remote_ids: 50,
        ..ClusterConfig::new(server.url(), "t-bounds")
    });
    let (rt, client) = async_nats_client(&server);
    let stats = || a.cluster_stats().unwrap();
    // Ten names beat: four fit.
    rt.block_on(async {
        for n in 0..10 {
            say(&client, "t-bounds", "beat", announcement(&format!("n{n}"), 0), String::new()).await;
        }
        client.flush().await.unwrap();
    });
    until("the beats are read", || stats().directory_refused >= 6);
    assert_eq!(stats().remote_nodes, 4);
    // One of them says it added 200 ids: fifty fit, the rest is refused once.
    let added: Vec<String> = (0..200).map(|i| format!("x{i}")).collect();
    let mut h = announcement("n0", ids_digest(&added));
    h.insert("sy-before", format!("{:016x}", 0).as_str());
    let ops: String = added.iter().map(|id| format!("+{id}\n")).collect();
    rt.block_on(async {
        say(&client, "t-bounds", "change", h, ops).await;
        client.flush().await.unwrap();
    });
    until("the change is read", || stats().directory_refused == 7);
    assert_eq!(stats().remote_components, 50);
    // Another says its ids fill a million pages, and answers every page with one more id:
    // node a asks for no more pages than fifty ids fill (plus one), keeps none of them (the
    // bound is reached), and does not ask again when the node repeats the same digest.
    let claimed = ids_digest(&["y".to_string()]);
    let asked = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (ready_tx, ready) = crossbeam_channel::bounded(1);
    let (url, counter) = (server.url(), asked.clone());
    std::thread::spawn(move || {
        tokio_rt().block_on(async move {
            let client = async_nats::connect(url).await.unwrap();
            let mut pages = client.subscribe("sy.t-bounds.s.n1").await.unwrap();
            client.flush().await.unwrap();
            ready_tx.send(()).unwrap();
            while let Some(m) = pages.next().await {
                let mut answer = announcement("n1", claimed);
                answer.insert("sy-pages", "1000000");
                let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let _ = client.publish_with_headers(m.reply.unwrap(), answer, format!("y{n}").into()).await;
            }
        })
    });
    ready.recv_timeout(WAIT).unwrap();
    let fetches = stats().state_fetches;
    let beat = |node: &str| {
        rt.block_on(async {
            say(&client, "t-bounds", "beat", announcement(node, claimed), String::new()).await;
            client.flush().await.unwrap();
        })
    };
    beat("n1");
    until("the cut state is counted", || stats().directory_refused == 8);
    // The same digest again, then a third node's new one: once node a fetches for the
    // third, it has read the repeat.
    beat("n1");
    beat("n2");
    until("the third node is fetched", || stats().state_fetches == fetches + 2);
    assert_eq!(asked.load(std::sync::atomic::Ordering::SeqCst), 2, "pages asked for");
    assert_eq!((stats().remote_nodes, stats().remote_components), (4, 50));
}

#[test]
fn a_storm_of_hellos_is_answered_to_each_asker_alone_and_grows_nothing_past_bounds() {
    let Some(server) = NatsServer::start() else { return };
    let (a, _dead) = node_with(ClusterConfig {
        node: Some("a".into()),
        max_nodes: 16,
        ..ClusterConfig::new(server.url(), "t-storm")
    });
    let (rt, client) = async_nats_client(&server);
    let inbox = client.new_inbox();
    let (mut membership, mut answers) = rt.block_on(async {
        let membership = client.subscribe("sy.t-storm.n.>").await.unwrap();
        let answers = client.subscribe(format!("{inbox}.*")).await.unwrap();
        for n in 0..300 {
            let reply = format!("{inbox}.{n}");
            let h = announcement(&format!("h{n}"), 0);
            client.publish_with_reply_and_headers("sy.t-storm.n.hello", reply, h, "".into()).await.unwrap();
        }
        client.flush().await.unwrap();
        (membership, answers)
    });
    until("every hello is read", || a.cluster_stats().unwrap().directory_refused == 300 - 16);
    assert_eq!(a.cluster_stats().unwrap().remote_nodes, 16);
    // One answer to each hello, on its own inbox, each node a's announcement.
    let answered = rt.block_on(async {
        let mut seen = std::collections::HashSet::new();
        while seen.len() < 300 {
            let m = tokio::time::timeout(WAIT, answers.next()).await.expect("every hello answered").unwrap();
            assert_eq!(m.headers.as_ref().and_then(|h| h.get("sy-node")).map(|v| v.as_str()), Some("a"));
            assert!(seen.insert(m.subject.to_string()), "{} answered twice", m.subject);
        }
        futures_util::FutureExt::now_or_never(answers.next()).is_none()
    });
    assert!(answered, "more answers than hellos");
    // Announced after every hello was read: whatever node a said on the membership
    // subjects before it was its heartbeat, never a broadcast in answer to a hello.
    let _marker = echo_probe(&a, "marker");
    rt.block_on(async {
        loop {
            let m = tokio::time::timeout(WAIT, membership.next()).await.expect("the marker is announced").unwrap();
            let from_a = m.headers.as_ref().and_then(|h| h.get("sy-node")).map(|v| v.as_str()) == Some("a");
            match m.subject.as_str() {
                "sy.t-storm.n.change" if from_a && m.payload == "+marker\n" => break,
                "sy.t-storm.n.hello" if !from_a => {}
                "sy.t-storm.n.beat" if from_a => {}
                other => panic!("node a published on {other}"),
            }
        }
    });
}

/// Publishes `frame` (raw protocol lines and their bodies) on a fresh plain TCP connection to
/// `server`, after the handshake, and waits until the server processed it (a PING answered).
fn raw_publish(server: &NatsServer, frame: &[u8]) {
    use std::io::{BufRead, BufReader, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    assert!(line.starts_with("INFO"), "{line}");
    s.write_all(b"CONNECT {\"verbose\":false,\"pedantic\":false,\"headers\":true,\"protocol\":1}\r\n").unwrap();
    s.write_all(frame).unwrap();
    s.write_all(b"PING\r\n").unwrap();
    loop {
        line.clear();
        r.read_line(&mut line).unwrap();
        if line.starts_with("PONG") {
            break;
        }
        assert!(!line.starts_with("-ERR"), "the server refused the frame: {line}");
    }
}

// The server passes a header block on as the publisher wrote it; async-nats 0.51 failed the
// whole connection on one it could not parse (vendor/async-nats/PATCHED.md).
#[test]
fn malformed_headers_on_a_directory_or_component_subject_disconnect_no_node() {
    let Some(server) = NatsServer::start() else { return };
    let (a, _dead) = node(&server, "t-bad-header", "a");
    let (b, _dead_b) = node(&server, "t-bad-header", "b");
    let store = echo_probe(&b, "store");
    reachable(&a, "store");
    // A header block whose line has no colon, then one that is not UTF-8, each three times
    // (so that a node reads several in one buffer), on a subject every node reads and on the
    // store's own subject.
    let mut frame = Vec::new();
    for subject in ["sy.t-bad-header.n.x", "sy.t-bad-header.c.store"] {
        for head in [&b"NATS/1.0\r\nno colon here\r\n\r\n"[..], b"NATS/1.0\r\nsy-node: \xff\xfe\r\n\r\n"] {
            for _ in 0..3 {
                frame.extend_from_slice(format!("HPUB {subject} {} {}\r\n", head.len(), head.len() + 2).as_bytes());
                frame.extend_from_slice(head);
                frame.extend_from_slice(b"hi\r\n");
            }
        }
    }
    raw_publish(&server, &frame);
    // Both nodes still on their first connection, and still talking; the store received
    // none of the malformed messages, and the next one.
    assert_eq!(a.request(req(&id("store"), b"still here"), WAIT).unwrap().wait().unwrap().payload, b"still here");
    assert_eq!(recv(&store), b"still here");
    for rt in [&a, &b] {
        let stats = rt.cluster_stats().unwrap();
        assert_eq!(stats.reconnects, 0, "{stats:?}");
    }
    // Each dropped message is counted as refused: node a read the six on the directory,
    // node b those and the six on the store's subject.
    let refused = |rt: &switchyard::Runtime| rt.cluster_stats().unwrap().inbound_refused;
    until("the dropped messages are counted", || refused(&a) == 6 && refused(&b) == 12);
}

/// One `HPUB` frame on `subject` with the header block `head` and the body `hi`.
fn hpub(subject: &[u8], head: &[u8]) -> Vec<u8> {
    let mut frame = b"HPUB ".to_vec();
    frame.extend_from_slice(subject);
    frame.extend_from_slice(format!(" {} {}\r\n", head.len(), head.len() + 2).as_bytes());
    frame.extend_from_slice(head);
    frame.extend_from_slice(b"hi\r\n");
    frame
}

/// Node `a` reaches "store" on node `b` with a request, a plain client does too, and
/// neither node reconnected.
fn both_still_serve(server: &NatsServer, a: &switchyard::Runtime, b: &switchyard::Runtime, store: &Receiver<Vec<u8>>) {
    let answer = a.request(req(&id("store"), b"still here"), WAIT).unwrap().wait();
    assert_eq!(answer.expect("node a's request answered").payload, b"still here");
    assert_eq!(recv(store), b"still here");
    let (rt, client) = async_nats_client(server);
    let answer = rt.block_on(client.request("sy.t-hostile-bytes.c.store", "from a client".into()));
    assert_eq!(answer.expect("the plain client's request answered").payload, "from a client");
    assert_eq!(recv(store), b"from a client");
    for rt in [a, b] {
        let stats = rt.cluster_stats().unwrap();
        assert_eq!((stats.reconnects, stats.client_rebuilds), (0, 0), "{stats:?}");
    }
}

// async-nats 0.51 asserted that a header value it parsed holds no carriage return: the
// assertion panicked in the client's connection task, and the node kept a dead client for
// good, connected to nobody and reporting no reconnection. The bridge now replaces such a
// client (`client_rebuilds`); this message must not need it.
#[test]
fn a_carriage_return_in_a_header_value_cuts_no_node_off() {
    let Some(server) = NatsServer::start() else { return };
    let (a, _dead) = node(&server, "t-hostile-bytes", "a");
    let (b, _dead_b) = node(&server, "t-hostile-bytes", "b");
    let store = echo_probe(&b, "store");
    reachable(&a, "store");
    // On a subject every node reads, and on the store's own subject.
    let head = b"NATS/1.0\r\nX: a\rb\r\n\r\n";
    let mut frame = hpub(b"sy.t-hostile-bytes.n.x", head);
    frame.extend(hpub(b"sy.t-hostile-bytes.c.store", head));
    raw_publish(&server, &frame);
    both_still_serve(&server, &a, &b, &store);
    // Dropped and counted: node a read the one on the directory, node b both.
    let refused = |rt: &switchyard::Runtime| rt.cluster_stats().unwrap().inbound_refused;
    until("the dropped messages are counted", || refused(&a) == 1 && refused(&b) == 2);
}

// async-nats 0.51 read a MSG or HMSG line as UTF-8 (failing the connection on a byte that is
// not) and split HMSG's on Unicode whitespace, while nats-server passes on the subject bytes
// the publisher chose, split only at ASCII spaces and tabs: one such message made every node
// that read it reconnect.
#[test]
fn a_subject_with_a_non_utf8_byte_or_a_unicode_space_cuts_no_node_off() {
    let Some(server) = NatsServer::start() else { return };
    let (a, _dead) = node(&server, "t-hostile-bytes", "a");
    let (b, _dead_b) = node(&server, "t-hostile-bytes", "b");
    let store = echo_probe(&b, "store");
    reachable(&a, "store");
    let mut frame = Vec::new();
    // Not UTF-8: a directory subject without headers, one with a reply subject, a topic
    // subject with headers. Dropped by the client.
    frame.extend_from_slice(b"PUB sy.t-hostile-bytes.n.\xff 2\r\nhi\r\n");
    frame.extend_from_slice(b"PUB sy.t-hostile-bytes.n.x _INBOX.\xfe 2\r\nhi\r\n");
    frame.extend(hpub(b"sy.t-hostile-bytes.t.x\xc3", b"NATS/1.0\r\nX: y\r\n\r\n"));
    // A Unicode space: a directory verb nobody knows, a topic token that no topic escapes to.
    // Delivered, and refused by the node.
    let head = b"NATS/1.0\r\nsy-node: intruder\r\n\r\n";
    frame.extend(hpub("sy.t-hostile-bytes.n.a\u{2003}b".as_bytes(), head));
    frame.extend(hpub("sy.t-hostile-bytes.t.a\u{00A0}b".as_bytes(), b"NATS/1.0\r\nX: y\r\n\r\n"));
    raw_publish(&server, &frame);
    both_still_serve(&server, &a, &b, &store);
    for rt in [&a, &b] {
        until("the dropped messages are counted", || {
            let stats = rt.cluster_stats().unwrap();
            (stats.inbound_refused, stats.directory_refused) == (4, 1)
        });
    }
}

#[test]
fn a_batch_on_a_nodes_link_from_a_sender_it_does_not_know_delivers_nothing() {
    let Some(server) = NatsServer::start() else { return };
    let (b, dead_b) = node(&server, "t-link", "b");
    let store = echo_probe(&b, "store");
    let (rt, client) = async_nats_client(&server);
    let mut acks = rt.block_on(client.subscribe("sy.t-link.k.>")).unwrap();
    // Node b's epoch, as it answers a hello.
    let hello = async { client.request_with_headers("sy.t-link.n.hello", announcement("asker", 0), "".into()).await };
    let answer = rt.block_on(hello).expect("node b answers a hello");
    let epoch_b = answer.headers.unwrap().get("sy-epoch").unwrap().as_str().to_string();
    // A batch that says it comes from "ghost" (which never announced itself), one from a
    // name that is no subject token (its acknowledgement subject would be a wildcard), one
    // with no headers at all.
    let batch = |node: &str| {
        let epochs = format!("0000000000000001.{epoch_b}");
        headers(&[("sy-node", node), ("sy-epochs", &epochs), ("sy-seq", "1"), ("sy-acked", "0")])
    };
    rt.block_on(async {
        for node in ["ghost", "*"] {
            client.publish_with_headers("sy.t-link.l.b", batch(node), "frames".into()).await.unwrap();
        }
        client.publish("sy.t-link.l.b", "frames".into()).await.unwrap();
        client.flush().await.unwrap();
    });
    let nack = rt.block_on(async { tokio::time::timeout(WAIT, acks.next()).await });
    let nack = nack.expect("ghost's batch is answered").unwrap();
    assert_eq!(nack.subject.as_str(), "sy.t-link.k.ghost");
    assert_eq!(nack.headers.unwrap().get("sy-nack").map(|v| v.as_str().to_string()), Some("sender".into()));
    until("the three are refused", || b.cluster_stats().unwrap().inbound_refused == 3);
    // The store's first message is the next legitimate one; nothing else was acknowledged.
    let legit = rt.block_on(client.request("sy.t-link.c.store", "legit".into())).unwrap();
    assert_eq!(legit.payload, "legit");
    assert_eq!(recv(&store), b"legit");
    assert!(rt.block_on(async { futures_util::FutureExt::now_or_never(acks.next()) }).is_none());
    let rb = b.shutdown(WAIT);
    assert!(rb.is_balanced() && dead_b.try_iter().next().is_none(), "{rb:?}");
    assert_eq!(rb.stats.messages_handled, 1);
}

#[test]
fn a_node_name_that_cannot_be_a_subject_token_is_kept_out_of_the_directory() {
    let Some(server) = NatsServer::start() else { return };
    let (a, _dead) = node(&server, "t-bad-node", "a");
    let (rt, client) = async_nats_client(&server);
    // Its link subject would be `sy.t-bad-node.l.x y`, which no client may publish to.
    let ghost = ids_digest(&["ghost".to_string()]);
    for name in ["x y", "x.y", "*", ""] {
        rt.block_on(async {
            say(&client, "t-bad-node", "beat", announcement(name, ghost), String::new()).await;
            client.flush().await.unwrap();
        });
    }
    until("the four announcements are refused", || a.cluster_stats().unwrap().directory_refused == 4);
    // Past warming (`membership.rs`), an id no node is known to host is no such component.
    warm(&a);
    let sent = a.try_send(ff(&id("ghost"), b"x"));
    assert!(matches!(sent, Err(SendError::NoSuchComponent(_))), "{sent:?}");
    assert!(a.shutdown(WAIT).is_balanced());
}

#[test]
fn a_payload_larger_than_the_server_takes_is_handed_back_at_the_send() {
    let Some(server) = NatsServer::start() else { return };
    let (a, dead) = node(&server, "t-big", "a");
    let (b, _dead_b) = node(&server, "t-big", "b");
    let store = echo_probe(&b, "store");
    reachable(&a, "store");
    // nats-server takes 1 MiB by default; the runtime's own limit is larger.
    let sent = a.try_send(ff(&id("store"), &vec![0; 1 << 20]));
    assert!(matches!(sent, Err(SendError::PayloadTooLarge(_))), "{sent:?}");
    a.try_send(ff(&id("store"), &vec![1; 512 << 10])).expect("half of it goes");
    assert_eq!(recv(&store).len(), 512 << 10);
    let (ra, rb) = (a.shutdown(WAIT), b.shutdown(WAIT));
    assert!(ra.is_balanced() && rb.is_balanced(), "{ra:?}\n{rb:?}");
    assert!(dead.try_iter().next().is_none());
}
