//! Components on two nodes (two runtimes, two connections) of one cluster, against a real
//! `nats-server`: the same API as locally, the same promises (the envelope handed back,
//! exactly one outcome per request, every message accounted for), and the documented
//! subjects and headers that let any NATS client talk to a component.
#![cfg(feature = "cluster")]

mod common;
#[cfg(feature = "wasm")]
mod wasm_guests;

use std::time::{Duration, Instant};

use common::nats::NatsServer;
use common::nodes::*;
use common::*;
use crossbeam_channel::unbounded;
use switchyard::cluster::ClusterConfig;
use switchyard::{
    ComponentSpec, DeadLetter, DeadLetterReason, HandlerError, MessageType, RequestError, Runtime, SendErrorKind,
    handler_fn,
};

#[test]
fn two_nodes_exchange_one_way_messages_requests_and_publishes() {
    let Some(server) = NatsServer::start() else { return };
    let (a, _dead_a) = node(&server, "t-basic", "a");
    let (b, _dead_b) = node(&server, "t-basic", "b");
    let store = echo_probe(&b, "store");
    reachable(&a, "store");

    // One-way, from the host.
    a.try_send(ff(&id("store"), b"one way")).expect("queued for node b");
    assert_eq!(recv(&store), b"one way");

    // Request-response, from the host.
    let reply = a.request(req(&id("store"), b"ping"), WAIT).expect("sent").wait().expect("answered");
    assert_eq!(reply.payload, b"ping");
    assert_eq!(reply.from, id("store"));
    assert_eq!(recv(&store), b"ping");

    // From a handler on node a (Context::send), to the component on node b.
    a.register(
        id("relay"),
        ComponentSpec::new(|| {
            handler_fn(|ctx, m| {
                ctx.send(ff(&id("store"), &m.payload))?;
                Ok(None)
            })
        }),
    )
    .unwrap();
    a.try_send(ff(&id("relay"), b"relayed")).unwrap();
    assert_eq!(recv(&store), b"relayed");

    // A publish on node a reaches node b's subscriber.
    let news = echo_probe(&b, "reader");
    b.subscribe("news", id("reader"));
    let report = a.publish(publish("news", b"extra")).expect("published");
    assert!(report.sent_to_cluster, "{report:?}");
    assert_eq!((report.delivered, report.dead_lettered), (0, 0), "no subscriber on node a, and no dead letter");
    assert_eq!(recv(&news), b"extra");

    // Every message accounted for on each node.
    let ra = a.shutdown(WAIT);
    let rb = b.shutdown(WAIT);
    assert!(ra.is_balanced() && rb.is_balanced(), "{ra:?}\n{rb:?}");
    // Node a: one-way, request, relayed, each taken by node b.
    assert_eq!(ra.stats.messages_forwarded, 3, "{ra:?}");
}

#[test]
fn an_id_hosted_nowhere_is_refused_at_the_send_and_a_stale_one_fails_fast() {
    let Some(server) = NatsServer::start() else { return };
    let (a, dead) = node_with(ClusterConfig {
        node: Some("a".into()),
        ack_timeout: Duration::from_millis(300),
        ..ClusterConfig::new(server.url(), "t-nowhere")
    });
    // For a heartbeat after the join, membership may still learn of a node (one that
    // answered the hello late): a send to an unknown id waits for it. Then it is refused.
    warm(&a);
    let err = a.try_send(ff(&id("ghost"), b"x")).expect_err("no node hosts ghost");
    assert_eq!(err.kind(), SendErrorKind::NoSuchComponent);
    assert_eq!(err.into_envelope().payload, b"x", "handed back");

    // A node that says it hosts "ghost" and serves nothing (a stale entry): the request
    // fails with no responders once membership forgets the silent node (three heartbeats:
    // until then "no responders" may be a peer re-subscribing after a reconnection), long
    // before its deadline.
    let phantom = FakeNode::start(&server, "t-nowhere", "phantom", &["ghost"]);
    reachable(&a, "ghost");
    let started = Instant::now();
    let outcome = a.request(req(&id("ghost"), b"anyone?"), Duration::from_secs(30)).unwrap().wait();
    assert_eq!(outcome.unwrap_err(), RequestError::Failed(DeadLetterReason::NoSuchComponent));
    assert!(started.elapsed() < Duration::from_secs(10), "failed fast, not at the 30 s deadline");
    let d = recv(&dead);
    assert_eq!((d.reason, d.envelope.payload), (DeadLetterReason::NoSuchComponent, b"anyone?".to_vec()));
    // A one-way message too: its link is never acknowledged, and after the link's attempts
    // it is dead-lettered with its outcome unknown, not dropped.
    phantom.beat();
    reachable(&a, "ghost");
    a.try_send(ff(&id("ghost"), b"lost?")).expect("queued");
    let d = recv(&dead);
    assert_eq!(d.envelope.payload, b"lost?");
    assert!(
        matches!(&d.reason, DeadLetterReason::Transport { detail } if detail.contains("unknown")),
        "{:?}",
        d.reason
    );
    assert!(a.shutdown(WAIT).is_balanced());
}

#[test]
fn a_full_remote_mailbox_refuses_and_the_sender_dead_letters_or_fails_the_request() {
    let Some(server) = NatsServer::start() else { return };
    let (a, dead) = node(&server, "t-full", "a");
    let (b, _dead_b) = node(&server, "t-full", "b");
    let gate = Gate::new();
    let started = blocked_component(&b, "slow", 1, &gate);
    reachable(&a, "slow");
    a.try_send(ff(&id("slow"), b"held")).unwrap();
    recv(&started); // node b's worker holds "held"; the mailbox's one slot is free
    a.try_send(ff(&id("slow"), b"queued")).unwrap();
    // The one-way message's confirmation and the request's answer both say "full".
    a.try_send(ff(&id("slow"), b"refused")).unwrap();
    let d = recv(&dead);
    assert_eq!((d.reason, d.envelope.payload), (DeadLetterReason::MailboxFull, b"refused".to_vec()));
    let r = a.request(req(&id("slow"), b"ask"), WAIT).unwrap().wait();
    assert_eq!(r.unwrap_err(), RequestError::Failed(DeadLetterReason::MailboxFull));
    gate.open(2);
    recv(&started);
    let rb = b.shutdown(WAIT);
    let ra = a.shutdown(WAIT);
    assert!(ra.is_balanced() && rb.is_balanced(), "{ra:?}\n{rb:?}");
    assert_eq!(rb.stats.messages_handled, 2, "held and queued");
    // held, queued, and the request node b refused (and counted); "refused" was
    // dead-lettered on node a, which held it.
    assert_eq!(ra.stats.messages_forwarded, 3, "taken or accounted for by node b: {ra:?}");
    assert_eq!(ra.stats.messages_dead_lettered, 1);
}

// ----- a plain NATS client, with only the documented subjects and headers ---------------

#[test]
fn a_plain_nats_client_requests_a_component_and_sends_it_a_message() {
    let Some(server) = NatsServer::start() else { return };
    let (b, _dead) = node(&server, "t-plain", "b");
    let (rt, client) = async_nats_client(&server);
    // Membership's `change` says when node b serves the component (it is published after
    // the subscription, on the same connection).
    let mut adds = rt.block_on(async {
        let s = client.subscribe("sy.t-plain.n.change").await.unwrap();
        // A round trip: the server has the subscription before node b announces anything.
        client.request("sy.t-plain.no-such-subject", "".into()).await.expect_err("nobody listens");
        s
    });
    let store = echo_probe(&b, "store");
    rt.block_on(async {
        use futures_util::StreamExt;
        let add = tokio::time::timeout(WAIT, adds.next()).await.expect("announced").expect("subscribed");
        assert_eq!(&add.payload[..], b"+store\n");
    });
    // No headers at all: a request with a reply subject.
    let reply = rt.block_on(client.request("sy.t-plain.c.store", "hello".into())).expect("answered");
    assert_eq!(&reply.payload[..], b"hello");
    let h = reply.headers.expect("the answer carries headers");
    assert_eq!(h.get("sy-status").map(|v| v.as_str()), Some("ok"));
    assert_eq!(h.get("sy-from").map(|v| v.as_str()), Some("store"));
    assert_eq!(recv(&store), b"hello");
    // With headers: the message id comes back as the correlation id.
    let mut h = async_nats::HeaderMap::new();
    h.insert("sy-message-id", "plain-1");
    let reply = rt.block_on(client.request_with_headers("sy.t-plain.c.store", h, "again".into())).unwrap();
    assert_eq!(reply.headers.unwrap().get("sy-correlation-id").map(|v| v.as_str()), Some("plain-1"));
    assert_eq!(recv(&store), b"again");
    // A one-way message without a reply subject.
    rt.block_on(async {
        client.publish("sy.t-plain.c.store", "fire".into()).await.unwrap();
        client.flush().await.unwrap();
    });
    assert_eq!(recv(&store), b"fire");
    let rb = b.shutdown(WAIT);
    assert!(rb.is_balanced(), "{rb:?}");
}

#[cfg(feature = "wasm")]
#[test]
fn a_wasm_component_sends_to_a_native_component_on_another_node() {
    use switchyard::{Capabilities, TargetPattern, WasmConfig, WasmHost, WasmOptions};
    let Some(server) = NatsServer::start() else { return };
    let (a, _dead_a) = node(&server, "t-wasm", "a");
    let (b, _dead_b) = node(&server, "t-wasm", "b");
    let store = echo_probe(&b, "store");
    reachable(&a, "store");
    let host = WasmHost::new(WasmConfig::default()).expect("host starts");
    let caps = Capabilities { send: vec![TargetPattern::Exact("store".into())], ..Capabilities::default() };
    let code = wasm_guests::load(&host, &wasm_guests::forwarder());
    host.register(&a.handle(), id("fwd"), &code, WasmOptions::default().capabilities(caps)).unwrap();
    // The forwarder sends its payload to the component named in the topic, and answers
    // with the status of that send (0: sent).
    let asked = req(&id("fwd"), b"from wasm").with_topic("store");
    assert_eq!(a.request(asked, WAIT).unwrap().wait().unwrap().payload, [0]);
    assert_eq!(recv(&store), b"from wasm");
    let ra = a.shutdown(WAIT);
    assert!(ra.is_balanced(), "{ra:?}");
}

#[test]
fn a_server_killed_and_restarted_mid_traffic_loses_nothing_with_the_reconnect_buffer_off() {
    let Some(mut server) = NatsServer::start() else { return };
    let build = |name: &str, tx: crossbeam_channel::Sender<DeadLetter>| {
        // Off: every send made while cut off is handed back at once, as before the buffer.
        let config = ClusterConfig {
            node: Some(name.into()),
            reconnect_buffer: None,
            ..ClusterConfig::new(server.url(), "t-fault")
        };
        Runtime::builder()
            .workers(2)
            .stop_grace(Duration::from_secs(20))
            .dead_letter_hook(move |d| {
                let _ = tx.send(d);
            })
            .cluster(config)
            .build()
            .expect("joins")
    };
    let (dead_tx, dead) = unbounded();
    let a = build("a", dead_tx.clone());
    let b = build("b", dead_tx);
    let store = echo_probe(&b, "store");
    reachable(&a, "store");
    let (mut sent, mut handed_back) = (0u64, 0u64);
    let mut send = |i: u32| match a.try_send(ff(&id("store"), &i.to_le_bytes())) {
        Ok(()) => sent += 1,
        Err(e) => {
            // Cut off, or the outbound queue full: the envelope comes back, typed.
            assert!(matches!(e.kind(), SendErrorKind::Transport | SendErrorKind::Full), "{e}");
            assert_eq!(e.into_envelope().payload, i.to_le_bytes());
            handed_back += 1;
        }
    };
    for i in 0..3000u32 {
        if i == 1000 {
            server.stop();
        }
        if i == 1500 {
            // Half of the outage's sends after node a noticed it: those are handed back.
            until("node a sees the outage", || a.cluster_stats().is_some_and(|s| !s.connected));
        }
        if i == 2000 {
            server.restart();
            assert!(a.wait_for_cluster(WAIT) && b.wait_for_cluster(WAIT), "both nodes reconnect by themselves");
        }
        send(i);
    }
    // Back to normal: a request now is answered (asked again while node b's mailbox is
    // still full of the resent messages; each refusal is dead-lettered here).
    let mut refused_afters = 0;
    while let Err(e) = a.request(req(&id("store"), b"after"), WAIT).expect("reconnected").wait() {
        assert_eq!(e, RequestError::Failed(DeadLetterReason::MailboxFull), "only a busy mailbox refuses it");
        refused_afters += 1;
    }
    let mut got = Vec::new();
    loop {
        let p = recv(&store);
        if p == b"after" {
            break;
        }
        got.push(p);
    }
    let ra = a.shutdown(WAIT);
    let rb = b.shutdown(WAIT);
    assert!(ra.is_balanced() && rb.is_balanced(), "{ra:?}\n{rb:?}");
    // (A refused "after" is accounted for on node b, which refused it: not a dead letter.)
    let dead: Vec<DeadLetter> = dead.try_iter().collect();
    let dead_sends = dead.len() as u64;
    assert!(dead.iter().all(|d| d.envelope.message_type == MessageType::FireAndForget));
    let handled = rb.stats.messages_handled - 1; // not "after"
    // What node a accepted is what node b handled plus what either dead-lettered.
    assert_eq!(sent, handled + dead_sends, "sent {sent}, handed back {handed_back}, refused afters {refused_afters}");
    assert_eq!(sent + handed_back, 3000);
    // And nothing was delivered twice (a resend after a lost confirmation is recognised).
    got.extend(store.try_iter());
    assert_eq!(got.len() as u64, handled, "every handled message reached the probe");
    got.sort();
    got.dedup();
    assert_eq!(got.len() as u64, handled, "no message was delivered twice");
    let stats = a.cluster_stats().expect("a node");
    assert!(stats.reconnects >= 1, "{stats:?}");
    assert!(handed_back >= 500, "the sends made while cut off came back: {handed_back}");
}

#[test]
fn an_envelope_the_wire_cannot_carry_is_handed_back_and_the_node_keeps_working() {
    use switchyard::{InvalidEnvelope, SendError};
    let Some(server) = NatsServer::start() else { return };
    let (a, _dead_a) = node(&server, "t-wire", "a");
    let (b, _dead_b) = node(&server, "t-wire", "b");
    let store = echo_probe(&b, "store");
    reachable(&a, "store");
    let mut bad = ff(&id("store"), b"x");
    bad.message_id = "m\n1".into();
    let err = a.try_send(bad).expect_err("a line feed cannot go into a NATS header");
    assert!(matches!(err, SendError::Invalid(_, InvalidEnvelope::NotForTheCluster)), "{err:?}");
    // A topic too long for a subject stays on this node (its local subscribers, here none:
    // a dead letter), and the report says it did not go to the cluster.
    let report = a.publish(publish(&"t".repeat(300), b"y")).expect("a valid publish here");
    assert!(!report.sent_to_cluster && report.dead_lettered == 1, "{report:?}");
    // Without JetStream only at most once crosses nodes: a stronger guarantee is refused,
    // not downgraded.
    let err = a.try_send_with(ff(&id("store"), b"z"), switchyard::DeliveryGuarantee::AtLeastOnce).unwrap_err();
    assert!(matches!(err, SendError::Invalid(_, InvalidEnvelope::NotForTheCluster)), "{err:?}");
    a.try_send(ff(&id("store"), b"still fine")).expect("the bridge still works");
    assert_eq!(recv(&store), b"still fine");
    assert!(a.shutdown(WAIT).is_balanced());
}

#[test]
fn a_publish_through_remote_subscriptions_reaches_each_subscriber() {
    let Some(server) = NatsServer::start() else { return };
    let (a, _dead_a) = node(&server, "t-fanout", "a");
    let (b, _dead_b) = node(&server, "t-fanout", "b");
    let r1 = echo_probe(&b, "r1");
    let r2 = echo_probe(&b, "r2");
    reachable(&a, "r1");
    reachable(&a, "r2");
    // Node a's own topic table lists the two remote components: the publish's two copies
    // share a message id, and each must still be delivered.
    a.subscribe("alerts", id("r1"));
    a.subscribe("alerts", id("r2"));
    let report = a.publish(publish("alerts", b"both")).unwrap();
    assert_eq!(report.delivered, 2, "{report:?}");
    assert_eq!((recv(&r1), recv(&r2)), (b"both".to_vec(), b"both".to_vec()));
    let ra = a.shutdown(WAIT);
    assert!(ra.is_balanced(), "{ra:?}");
}

#[test]
fn confirmed_sends_to_a_replicated_id_take_turns_between_its_nodes() {
    let Some(server) = NatsServer::start() else { return };
    let (b1, _dead_b1) = node(&server, "t-turns", "b1");
    let (b2, _dead_b2) = node(&server, "t-turns", "b2");
    let (s1, s2) = (echo_probe(&b1, "store"), echo_probe(&b2, "store"));
    // Node a hears of each replica first in its state, which lists store.
    let (a, _dead) = node(&server, "t-turns", "a");
    until("node a lists both replicas", || a.cluster_stats().is_some_and(|s| s.remote_nodes == 2));
    for i in 0..10u8 {
        a.send_timeout(ff(&id("store"), &[i]), WAIT).expect("sent");
    }
    let mut got: Vec<Vec<u8>> = Vec::new();
    let (mut n1, mut n2) = (0, 0);
    while n1 + n2 < 10 {
        crossbeam_channel::select! {
            recv(s1) -> m => { n1 += 1; got.push(m.unwrap()); }
            recv(s2) -> m => { n2 += 1; got.push(m.unwrap()); }
            default(WAIT) => panic!("only {} of 10 arrived", n1 + n2),
        }
    }
    assert_eq!((n1, n2), (5, 5), "the sending node takes each replica in turn");
    got.sort();
    assert_eq!(got, (0..10u8).map(|i| vec![i]).collect::<Vec<_>>());
    let reports = [a.shutdown(WAIT), b1.shutdown(WAIT), b2.shutdown(WAIT)];
    assert!(reports.iter().all(|r| r.is_balanced()), "{reports:?}");
}

#[test]
fn stopping_one_replica_mid_traffic_fails_no_request_and_loses_no_message() {
    let Some(server) = NatsServer::start() else { return };
    let (b1, _dead_b1) = node(&server, "t-roll", "b1");
    let (b2, _dead_b2) = node(&server, "t-roll", "b2");
    // Mailboxes that hold the whole burst: a full one refuses (and its sender dead-letters)
    // whatever the stop does, which is not what this test is about.
    let roomy = || switchyard::ComponentConfig { mailbox_capacity: 1024, ..Default::default() };
    let (s1, s2) = (echo_probe_with(&b1, "store", roomy()), echo_probe_with(&b2, "store", roomy()));
    let (a, dead) = node(&server, "t-roll", "a");
    until("node a lists both replicas", || a.cluster_stats().is_some_and(|s| s.remote_nodes == 2));
    // Requests and one-way messages from two threads while b1 shuts down (a rolling
    // restart): b1 leaves membership first, and whatever reaches it while it drains is
    // refused as closing and passed to b2 by its sender.
    let (sent_tx, sent) = unbounded::<u32>();
    let traffic = std::thread::scope(|scope| {
        let a = &a;
        let sent_tx = &sent_tx;
        let asking = scope.spawn(move || {
            let mut failed = Vec::new();
            for i in 0..300u32 {
                let r = a.request(req(&id("store"), &i.to_be_bytes()), WAIT).expect("accepted").wait();
                if let Err(e) = r {
                    failed.push((i, e));
                }
                sent_tx.send(i).unwrap();
            }
            failed
        });
        let telling = scope.spawn(move || {
            for i in 1000..1300u32 {
                a.send_timeout(ff(&id("store"), &i.to_be_bytes()), WAIT).expect("accepted");
            }
        });
        // Stop b1 a third of the way through.
        for _ in 0..100 {
            recv(&sent);
        }
        assert!(b1.shutdown(WAIT).is_balanced());
        telling.join().unwrap();
        asking.join().unwrap()
    });
    assert!(traffic.is_empty(), "requests failed: {traffic:?}");
    let ra = a.shutdown(WAIT);
    assert!(ra.is_balanced(), "{ra:?}");
    let lost: Vec<_> = dead.try_iter().map(|d| (d.reason, d.envelope.payload)).collect();
    assert!(lost.is_empty(), "dead-lettered on node a: {lost:?}");
    // Every message was handled exactly once, on one replica or the other.
    let mut got: Vec<u32> =
        s1.try_iter().chain(s2.try_iter()).map(|p| u32::from_be_bytes(p.try_into().unwrap())).collect();
    got.sort_unstable();
    let expected: Vec<u32> = (0..300).chain(1000..1300).collect();
    assert_eq!(got, expected);
    assert!(b2.shutdown(WAIT).is_balanced());
}

#[test]
fn the_outbound_side_is_bounded_and_send_timeout_waits_for_room() {
    use switchyard::SendError;
    let Some(server) = NatsServer::start() else { return };
    let (tx, dead) = unbounded();
    let config = ClusterConfig {
        node: Some("a".into()),
        outbound_capacity: 8,
        ack_timeout: Duration::from_millis(300),
        ..ClusterConfig::new(server.url(), "t-bound")
    };
    let a = Runtime::builder()
        .workers(2)
        .dead_letter_hook(move |d| {
            let _ = tx.send(d);
        })
        .cluster(config)
        .build()
        .unwrap();
    // A node that never acknowledges what its link brings.
    let _mute = FakeNode::start(&server, "t-bound", "mute", &["mute"]);
    reachable(&a, "mute");
    // The queue and what the links hold come to at most 8 each: the rest is handed back.
    let mut full = 0;
    for i in 0..100u8 {
        if let Err(e) = a.try_send(ff(&id("mute"), &[i])) {
            assert!(matches!(e, SendError::Full(_)), "{e:?}");
            full += 1;
        }
    }
    assert!(full >= 100 - 16 - 2, "only queue and in-flight room was taken: {full} refused");
    // A blocking send waits for room (the link gives up on what it sent, which frees it)
    // instead of failing as if the component did not exist.
    let r = a.send_timeout(ff(&id("mute"), b"waits"), Duration::from_secs(10));
    assert!(r.is_ok(), "{r:?}");
    let report = a.shutdown(WAIT);
    assert!(report.is_balanced(), "{report:?}");
    // Every accepted message was dead-lettered: never acknowledged.
    let unconfirmed = dead.try_iter().filter(|d| matches!(d.reason, DeadLetterReason::Transport { .. })).count();
    assert_eq!(unconfirmed as u64, report.stats.messages_routed, "{report:?}");
}

#[test]
fn shutdown_while_the_server_is_down_ends_within_its_grace() {
    let Some(mut server) = NatsServer::start() else { return };
    let config = ClusterConfig { node: Some("a".into()), ..ClusterConfig::new(server.url(), "t-down") };
    let a = Runtime::builder().workers(2).stop_grace(Duration::from_secs(1)).cluster(config).build().unwrap();
    let (b, _dead_b) = node(&server, "t-down", "b");
    let _store = echo_probe(&b, "store");
    reachable(&a, "store");
    server.stop();
    // Whatever was accepted before node a noticed is in flight or queued in the client.
    for i in 0..5000u32 {
        let _ = a.try_send(ff(&id("store"), &i.to_le_bytes()));
    }
    let started = Instant::now();
    let report = a.shutdown(Duration::from_secs(1));
    assert!(started.elapsed() < Duration::from_secs(15), "shutdown took {:?}", started.elapsed());
    assert!(report.is_balanced(), "{report:?}");
    drop(b);
}

#[test]
fn a_node_that_joins_late_learns_thousands_of_ids_from_the_state_in_parts() {
    let Some(server) = NatsServer::start() else { return };
    let (b, _dead_b) = node(&server, "t-many", "b");
    const N: usize = 10_000; // more than one part of a state announcement
    for i in 0..N {
        b.register(id(&format!("c{i}")), ComponentSpec::new(|| handler_fn(|_c, _m| Ok(None)))).unwrap();
    }
    let last = b.handle();
    let probe = echo_probe(&b, "last");
    // Node a joins after: it learns node b's ids from the state node b sends in answer to
    // its hello, not from the adds it never heard.
    let (a, _dead_a) = node(&server, "t-many", "a");
    reachable(&a, "last");
    for i in [0, N / 2, N - 1] {
        reachable(&a, &format!("c{i}"));
    }
    assert!(a.cluster_stats().unwrap().remote_components > N);
    a.try_send(ff(&id("last"), b"found")).unwrap();
    assert_eq!(recv(&probe), b"found");
    drop(last);
    assert!(a.shutdown(WAIT).is_balanced());
}

/// A component that hands every request on to `to` (the answer comes from there).
fn forwarder(rt: &Runtime, name: &str, to: &'static str) {
    let spec = ComponentSpec::new(move || {
        handler_fn(move |ctx, _m| {
            ctx.forward(&id(to)).map_err(|e| HandlerError::new(e.to_string()))?;
            Ok(None)
        })
    });
    rt.register(id(name), spec).expect("register");
}

/// A component that answers `name:` and the request's payload.
fn answerer(rt: &Runtime, name: &'static str) {
    let spec =
        ComponentSpec::new(move || handler_fn(move |_ctx, m| Ok(Some([name.as_bytes(), b":", &m.payload].concat()))));
    rt.register(id(name), spec).expect("register");
}

#[test]
fn a_request_handed_on_across_nodes_is_answered_out_and_back() {
    let Some(server) = NatsServer::start() else { return };
    let (a, dead_a) = node(&server, "t-forward", "a");
    let (b, dead_b) = node(&server, "t-forward", "b");
    // Back to the requester's node: the host on a asks `front` on b, which hands the
    // request to `back` on a (where the host's own request waits under its id).
    answerer(&a, "back");
    forwarder(&b, "front", "back");
    // Out: the host on a asks `relay` on a, which hands it to `far` on b.
    answerer(&b, "far");
    forwarder(&a, "relay", "far");
    for (rt, name) in [(&a, "front"), (&a, "far"), (&b, "back")] {
        reachable(rt, name);
    }
    let ask = |to: &str, payload: &[u8]| a.request(req(&id(to), payload), WAIT).expect("sent").wait();
    assert_eq!(ask("front", b"x").expect("answered by back, on a").payload, b"back:x");
    assert_eq!(ask("relay", b"y").expect("answered by far, on b").payload, b"far:y");
    // Many at once, both ways.
    let outcomes: Vec<_> = (0..50u8)
        .map(|i| {
            let to = if i % 2 == 0 { "front" } else { "relay" };
            (i, a.request(req(&id(to), &[i]), WAIT).expect("sent"))
        })
        .collect();
    for (i, pending) in outcomes {
        let want: &[u8] = if i % 2 == 0 { b"back:" } else { b"far:" };
        assert_eq!(pending.wait().expect("answered").payload, [want, &[i]].concat());
    }
    let (ra, rb) = (a.shutdown(WAIT), b.shutdown(WAIT));
    assert!(ra.is_balanced() && rb.is_balanced(), "{ra:?}\n{rb:?}");
    assert!(dead_a.try_iter().chain(dead_b.try_iter()).next().is_none(), "nothing dead-lettered");
}
