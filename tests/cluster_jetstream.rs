//! At least once across nodes, on JetStream, against a real `nats-server -js`: a one-way
//! message stored in the cluster's stream before it counts as forwarded, redelivered after a
//! failed handling, given back to another node, the stream's bounds, the consumer's
//! lifetime, a plain JetStream client's store, the exactly-once key.
#![cfg(feature = "cluster")]

mod common;

use std::time::Duration;

use common::nats::NatsServer;
use common::nodes::*;
use common::*;
use crossbeam_channel::{Receiver, unbounded};
use switchyard::cluster::ClusterConfig;
use switchyard::{ComponentSpec, DeadLetter, DeadLetterReason, DeliveryGuarantee, HandlerError, Runtime, handler_fn};

// ----- at least once across nodes, on JetStream ----------------------------------------

/// A node of cluster `name` with JetStream on.
fn js_node(server: &NatsServer, name: &str, node: &str) -> (Runtime, Receiver<DeadLetter>) {
    node_with(ClusterConfig {
        node: Some(node.into()),
        jetstream: true,
        ack_wait: Duration::from_secs(5),
        ..ClusterConfig::new(server.url(), name)
    })
}

/// A component that reports (attempt, payload) of every delivery, then fails as `fail`
/// says for that attempt: `Some(true)` panics, `Some(false)` returns an error.
fn attempts_probe(
    rt: &Runtime,
    name: &str,
    max_attempts: u32,
    fail: fn(u32) -> Option<bool>,
) -> Receiver<(u32, Vec<u8>)> {
    let (tx, rx) = unbounded();
    rt.register(
        id(name),
        ComponentSpec::new(move || {
            let tx = tx.clone();
            handler_fn(move |ctx, m| {
                tx.send((ctx.attempt(), m.payload.clone())).unwrap();
                match fail(ctx.attempt()) {
                    Some(true) => panic!("attempt {} panics", ctx.attempt()),
                    Some(false) => Err(HandlerError::new(format!("attempt {} fails", ctx.attempt()))),
                    None => Ok(None),
                }
            })
        })
        .max_attempts(max_attempts),
    )
    .expect("register");
    rx
}

/// Messages the cluster's stream holds now, as a plain JetStream client sees them.
fn stream_messages(server: &NatsServer, cluster: &str) -> u64 {
    let (rt, client) = async_nats_client(server);
    rt.block_on(async {
        let js = async_nats::jetstream::new(client);
        let mut stream = js.get_stream(format!("sy-{cluster}")).await.expect("the cluster's stream exists");
        stream.info().await.expect("stream info").state.messages
    })
}

#[test]
fn jetstream_redelivers_a_message_after_a_handler_panic_on_the_remote_node() {
    let Some(server) = NatsServer::start_jetstream() else { return };
    let (a, dead_a) = js_node(&server, "t-js", "a");
    let (b, dead_b) = js_node(&server, "t-js", "b");
    let seen = attempts_probe(&b, "flaky", 3, |attempt| (attempt == 1).then_some(true));
    reachable(&a, "flaky");

    a.try_send_with(ff(&id("flaky"), b"again"), DeliveryGuarantee::AtLeastOnce).expect("queued for the stream");
    assert_eq!(recv(&seen), (1, b"again".to_vec()));
    assert_eq!(recv(&seen), (2, b"again".to_vec()), "the stream offered it again, as attempt 2");
    let stats = b.cluster_stats().expect("a node");
    assert_eq!((stats.durable_inbound, stats.durable_redelivered, stats.durable_returned), (2, 1, 1), "{stats:?}");

    let rb = b.shutdown(WAIT);
    let ra = a.shutdown(WAIT);
    assert!(ra.is_balanced() && rb.is_balanced(), "{ra:?}\n{rb:?}");
    assert_eq!(ra.stats.messages_forwarded, 1, "stored by the stream: {ra:?}");
    // Node b: two offers; the first given back (forwarded to the stream), the second handled.
    assert_eq!((rb.stats.messages_sent, rb.stats.messages_handled, rb.stats.messages_forwarded), (2, 1, 1), "{rb:?}");
    assert!(dead_a.try_recv().is_err() && dead_b.try_recv().is_err(), "nothing dead-lettered");
    until("the stream forgets the acknowledged message", || stream_messages(&server, "t-js") == 0);
}

#[test]
fn the_last_failed_attempt_is_dead_lettered_on_the_node_that_ran_it() {
    let Some(server) = NatsServer::start_jetstream() else { return };
    let (a, dead_a) = js_node(&server, "t-js-last", "a");
    let (b, dead_b) = js_node(&server, "t-js-last", "b");
    let seen = attempts_probe(&b, "broken", 2, |_| Some(false));
    reachable(&a, "broken");
    a.try_send_with(ff(&id("broken"), b"doomed"), DeliveryGuarantee::AtLeastOnce).unwrap();
    assert_eq!(recv(&seen), (1, b"doomed".to_vec()));
    assert_eq!(recv(&seen), (2, b"doomed".to_vec()));
    let d = recv(&dead_b);
    assert_eq!(d.envelope.payload, b"doomed");
    assert!(
        matches!(&d.reason, DeadLetterReason::HandlerFailed { attempts: 2, error, .. } if error == "attempt 2 fails"),
        "{:?}",
        d.reason
    );
    let rb = b.shutdown(WAIT);
    let ra = a.shutdown(WAIT);
    assert!(ra.is_balanced() && rb.is_balanced(), "{ra:?}\n{rb:?}");
    assert_eq!((rb.stats.messages_dead_lettered, rb.stats.messages_forwarded), (1, 1), "{rb:?}");
    assert!(dead_a.try_recv().is_err(), "the sending node holds nothing");
    assert!(seen.try_recv().is_err(), "no third attempt");
    until("the stream stops offering the dead-lettered message", || stream_messages(&server, "t-js-last") == 0);
}

#[test]
fn a_message_its_node_gives_back_is_run_by_another_node_hosting_the_id() {
    let Some(server) = NatsServer::start_jetstream() else { return };
    let (a, _dead_a) = js_node(&server, "t-js-move", "a");
    let (b, _dead_b) = js_node(&server, "t-js-move", "b");
    let (c, _dead_c) = js_node(&server, "t-js-move", "c");
    let gate = Gate::new();
    let started = blocked_component(&b, "work", 8, &gate);
    reachable(&a, "work");
    a.try_send_with(ff(&id("work"), b"first"), DeliveryGuarantee::AtLeastOnce).unwrap();
    recv(&started); // node b's handler holds "first"
    a.try_send_with(ff(&id("work"), b"second"), DeliveryGuarantee::AtLeastOnce).unwrap();
    until("node b has \"second\" queued", || b.component_stats(&id("work")).is_some_and(|s| s.mailbox_len == 1));
    // Node c hosts the id too; node b unregisters it with "second" still queued: given back
    // to the stream, which offers it to node c (its second offer).
    let on_c = attempts_probe(&c, "work", 3, |_| None);
    // Unregistering closes the component at once (its worker drains it after "first").
    b.unregister(&id("work")).expect("unregistered");
    gate.open(1);
    assert_eq!(recv(&on_c).1, b"second");
    let stats = b.cluster_stats().expect("a node");
    assert_eq!(stats.durable_returned, 1, "given back by node b: {stats:?}");
    let rc = c.shutdown(WAIT);
    let rb = b.shutdown(WAIT);
    let ra = a.shutdown(WAIT);
    assert!(ra.is_balanced() && rb.is_balanced() && rc.is_balanced(), "{ra:?}\n{rb:?}\n{rc:?}");
    // Across nodes: two sent by a, each handled once (one on b, one on c).
    assert_eq!(ra.stats.messages_forwarded, 2);
    assert_eq!((rb.stats.messages_handled, rc.stats.messages_handled), (1, 1), "{rb:?}\n{rc:?}");
    assert_eq!(rb.stats.messages_dead_lettered + rc.stats.messages_dead_lettered, 0);
    until("the stream holds nothing", || stream_messages(&server, "t-js-move") == 0);
}

#[test]
fn a_full_stream_refuses_new_stores_which_their_sender_dead_letters_and_keeps_what_it_holds() {
    let Some(server) = NatsServer::start_jetstream() else { return };
    let config = |node: &str| ClusterConfig {
        node: Some(node.into()),
        jetstream: true,
        stream_max_bytes: 1 << 20,
        ..ClusterConfig::new(server.url(), "t-js-full")
    };
    let (a, dead_a) = node_with(config("a"));
    let (b, _dead_b) = node_with(config("b"));
    // Node b takes one message at a time and holds it: the rest wait in the stream.
    let gate = Gate::new();
    let started = blocked_component(&b, "slow", 1, &gate);
    reachable(&a, "slow");
    let n = 24u8;
    for i in 0..n {
        let payload = [vec![i], vec![0; 48 << 10]].concat();
        a.try_send_with(ff(&id("slow"), &payload), DeliveryGuarantee::AtLeastOnce).expect("queued for the stream");
    }
    until("every store is settled", || a.cluster_stats().is_some_and(|s| s.forwarded + s.remote_failures == 24));
    // 24 x 48 KiB do not fit in 1 MiB: the last ones were refused by the server, and each
    // dead-lettered by node a with the server's reason; none the stream held was dropped.
    let refused: Vec<_> = dead_a.try_iter().collect();
    let stored = n - refused.len() as u8;
    assert!(!refused.is_empty() && stored >= 16, "{} refused", refused.len());
    for (k, d) in refused.iter().enumerate() {
        assert_eq!(d.envelope.payload[0], stored + k as u8, "the newest are refused, in order");
        assert!(
            matches!(&d.reason, DeadLetterReason::Transport { detail } if detail.contains("maximum bytes")),
            "{:?}",
            d.reason
        );
    }
    gate.open(usize::from(n));
    for _ in 0..stored {
        recv(&started);
    }
    let (ra, rb) = (a.shutdown(WAIT), b.shutdown(WAIT));
    assert!(ra.is_balanced() && rb.is_balanced(), "{ra:?}\n{rb:?}");
    assert_eq!(rb.stats.messages_handled, u64::from(stored), "every stored message handled: {rb:?}");
}

#[test]
fn the_consumer_of_a_component_no_node_hosts_any_more_is_deleted_by_the_server() {
    let Some(server) = NatsServer::start_jetstream() else { return };
    let config = ClusterConfig {
        node: Some("b".into()),
        jetstream: true,
        consumer_inactive: Duration::from_secs(1),
        ..ClusterConfig::new(server.url(), "t-js-gone")
    };
    let (b, _dead_b) = node_with(config);
    let _store = echo_probe(&b, "store");
    let (rt, client) = async_nats_client(&server);
    let js = rt.block_on(async { async_nats::jetstream::new(client) });
    let consumer_exists = || {
        rt.block_on(async {
            let stream = js.get_stream("sy-t-js-gone").await.expect("the cluster's stream exists");
            stream.consumer_info(switchyard::cluster::subject::consumer_name("store")).await.is_ok()
        })
    };
    until("node b reads through the store's consumer", consumer_exists);
    b.unregister(&id("store")).expect("registered");
    until("the server deleted the consumer nobody reads", || !consumer_exists());
    assert!(b.shutdown(WAIT).is_balanced());
}

#[test]
fn a_plain_jetstream_client_stores_a_message_for_a_component_and_its_resend_is_dropped() {
    let Some(server) = NatsServer::start_jetstream() else { return };
    let (b, _dead_b) = js_node(&server, "t-js-plain", "b");
    let store = echo_probe(&b, "store");
    let (rt, client) = async_nats_client(&server);
    rt.block_on(async {
        let js = async_nats::jetstream::new(client);
        for payload in ["once", "once", "next"] {
            // Only the documented subject and headers; the message id doubles as
            // `Nats-Msg-Id`, so the server drops the resend of "once".
            let mut h = async_nats::HeaderMap::new();
            h.insert("Nats-Msg-Id", format!("plain-{payload}").as_str());
            h.insert("sy-message-id", format!("plain-{payload}").as_str());
            let ack = js.publish_with_headers("sy.t-js-plain.d.store", h, payload.into()).await.unwrap();
            ack.await.expect("stored");
        }
    });
    assert_eq!(recv(&store), b"once");
    assert_eq!(recv(&store), b"next");
    let rb = b.shutdown(WAIT);
    assert!(rb.is_balanced(), "{rb:?}");
    assert_eq!(rb.stats.messages_handled, 2, "the resend was never offered: {rb:?}");
}

#[test]
fn a_stored_message_that_does_not_parse_is_dead_lettered_with_its_payload_not_dropped() {
    let Some(server) = NatsServer::start_jetstream() else { return };
    let (b, dead_b) = js_node(&server, "t-js-bad", "b");
    let store = echo_probe(&b, "store");
    let (rt, client) = async_nats_client(&server);
    rt.block_on(async {
        let js = async_nats::jetstream::new(client);
        // A message type nobody sends, then a request (nobody to answer it from a stream),
        // then a well-formed one.
        for (sy_type, payload) in [("shout", "garbled"), ("request", "a question"), ("fire-and-forget", "fine")] {
            let mut h = async_nats::HeaderMap::new();
            h.insert("sy-type", sy_type);
            let ack = js.publish_with_headers("sy.t-js-bad.d.store", h, payload.into()).await.unwrap();
            ack.await.expect("stored");
        }
    });
    assert_eq!(recv(&store), b"fine", "only the well-formed message is handled");
    for payload in [&b"garbled"[..], b"a question"] {
        let d = dead_b.recv_timeout(WAIT).expect("dead-lettered on the node that read it");
        assert_eq!((d.reason, d.envelope.payload.as_slice()), (DeadLetterReason::Invalid, payload));
    }
    until("the stream holds nothing more", || stream_messages(&server, "t-js-bad") == 0);
    let rb = b.shutdown(WAIT);
    assert!(rb.is_balanced(), "{rb:?}");
}

#[test]
fn without_jetstream_on_the_server_a_jetstream_node_is_refused_with_the_reason() {
    let Some(server) = NatsServer::start() else { return };
    let config = ClusterConfig { jetstream: true, ..ClusterConfig::new(server.url(), "t-js-none") };
    let err = Runtime::builder().cluster(config).build().err().expect("no stream without JetStream");
    let text = err.to_string();
    assert!(text.contains("JetStream") && text.contains("sy-t-js-none"), "{text}");
}

#[cfg(feature = "exactly-once-delivery")]
#[test]
fn a_resent_id_is_delivered_again_at_least_once_and_dropped_as_a_duplicate_exactly_once() {
    let Some(server) = NatsServer::start_jetstream() else { return };
    let (a, dead_a) = js_node(&server, "t-js-dup", "a");
    let (b, _dead_b) = js_node(&server, "t-js-dup", "b");
    let store = echo_probe(&b, "store");
    reachable(&a, "store");
    let mut again = ff(&id("store"), b"again");
    again.message_id = "same-id".into();
    for _ in 0..2 {
        a.try_send_with(again.clone(), DeliveryGuarantee::AtLeastOnce).unwrap();
        assert_eq!(recv(&store), b"again", "at least once: a resend is a new message, as locally");
    }
    let mut once = ff(&id("store"), b"once");
    once.message_id = "once-id".into();
    a.try_send_with(once.clone(), DeliveryGuarantee::ExactlyOnce).unwrap();
    assert_eq!(recv(&store), b"once");
    a.try_send_with(once, DeliveryGuarantee::ExactlyOnce).unwrap();
    let d = recv(&dead_a);
    assert_eq!((d.reason, d.envelope.payload), (DeadLetterReason::Duplicate, b"once".to_vec()));
    let rb = b.shutdown(WAIT);
    let ra = a.shutdown(WAIT);
    assert!(ra.is_balanced() && rb.is_balanced(), "{ra:?}\n{rb:?}");
    assert_eq!(rb.stats.messages_handled, 3, "{rb:?}");
    assert!(store.try_recv().is_err());
}

#[test]
fn confirmations_on_their_way_at_shutdown_are_awaited_not_dead_lettered() {
    let Some(server) = NatsServer::start() else { return };
    let (a, dead) = node(&server, "t-stop-inflight", "a");
    let (b, _dead_b) = node(&server, "t-stop-inflight", "b");
    let store =
        echo_probe_with(&b, "store", switchyard::ComponentConfig { mailbox_capacity: 8192, ..Default::default() });
    reachable(&a, "store");
    let n = 5000u32;
    for i in 0..n {
        a.send_timeout(ff(&id("store"), &i.to_le_bytes()), WAIT).expect("queued");
    }
    for _ in 0..n {
        recv(&store);
    }
    // Node b took every message; some confirmations may still be on their way to node a.
    let ra = a.shutdown(WAIT);
    assert_eq!(ra.stats.messages_forwarded, u64::from(n), "{ra:?}");
    assert!(dead.try_recv().is_err(), "nothing dead-lettered");
}
