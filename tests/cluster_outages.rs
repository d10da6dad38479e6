//! A node riding out a NATS server outage with its reconnect buffer, against a real
//! `nats-server` killed and restarted on the same port: sends made while cut off wait and
//! go once the connection is back; only what overflows the buffer is refused (the envelope
//! handed back) and only what outlives its deadline is dead-lettered.
#![cfg(feature = "cluster")]

mod common;

use std::time::Duration;

use common::nats::NatsServer;
use common::nodes::*;
use common::*;
use switchyard::cluster::{ClusterConfig, ReconnectBuffer};
use switchyard::{ComponentConfig, DeadLetterReason, DeliveryGuarantee, Runtime, SendErrorKind};

/// Waits until `rt` sees itself cut off from the server.
fn cut_off(rt: &Runtime) {
    until("the node sees the outage", || rt.cluster_stats().is_some_and(|s| !s.connected));
}

/// The server killed for a while and restarted under traffic: with the default buffer no
/// message is dead-lettered or refused, each is handled once, and both nodes' identities hold.
fn ride_out_an_outage(jetstream: bool) {
    let started = if jetstream { NatsServer::start_jetstream() } else { NatsServer::start() };
    let Some(mut server) = started else { return };
    let cluster = if jetstream { "t-ride-js" } else { "t-ride" };
    // A stored message offered to node b just before the kill and never acknowledged is
    // offered again after `ack_wait`: well inside the test's wait for each message, not
    // the 30 s default (under load the wait ran out first, 1 run in about 20).
    let config = |node: &str| ClusterConfig {
        node: Some(node.into()),
        jetstream,
        ack_wait: Duration::from_secs(5),
        ..ClusterConfig::new(server.url(), cluster)
    };
    let (a, dead_a) = node_with(config("a"));
    let (b, dead_b) = node_with(config("b"));
    // Room for the test's bursts (a send loop with no pause): what is measured here is the
    // outage, not the receiving mailbox's bound.
    let store = echo_probe_with(&b, "store", ComponentConfig { mailbox_capacity: 4096, ..Default::default() });
    reachable(&a, "store");
    let guarantee = if jetstream { DeliveryGuarantee::AtLeastOnce } else { DeliveryGuarantee::AtMostOnce };
    let send = |from: u32, to: u32| {
        for i in from..to {
            a.try_send_with(ff(&id("store"), &i.to_le_bytes()), guarantee).expect("taken, cut off or not");
        }
    };
    send(0, 300);
    server.stop();
    // Some of these race the node's noticing (they meet a dead connection in flight), the
    // rest wait in the buffer.
    send(300, 600);
    cut_off(&a);
    cut_off(&b);
    send(600, 900);
    let asked = a.request(req(&id("store"), b"while cut off"), WAIT).expect("a request waits in the buffer too");
    assert!(a.cluster_stats().unwrap().buffered > 0, "{:?}", a.cluster_stats());
    server.restart();
    assert!(a.wait_for_cluster(WAIT) && b.wait_for_cluster(WAIT), "both nodes reconnect by themselves");
    send(900, 1200);
    assert_eq!(asked.wait().expect("answered once the connection is back").payload, b"while cut off");
    let mut got: Vec<Vec<u8>> = (0..1201).map(|_| recv(&store)).collect();
    got.retain(|p| p != b"while cut off");
    got.sort();
    got.dedup();
    assert_eq!(got.len(), 1200, "every message handled once");
    // Every message confirmed by node b (or stored), the request's answer forwarded by it.
    until("node a has every confirmation", || a.cluster_stats().is_some_and(|s| s.forwarded == 1201));
    let stats = a.cluster_stats().unwrap();
    assert_eq!((stats.buffered, stats.buffer_refused, stats.buffer_expired), (0, 0, 0), "{stats:?}");
    assert!(stats.reconnects >= 1, "{stats:?}");
    let (ra, rb) = (a.shutdown(WAIT), b.shutdown(WAIT));
    assert!(ra.is_balanced() && rb.is_balanced(), "{ra:?}\n{rb:?}");
    let dead: Vec<_> = dead_a.try_iter().chain(dead_b.try_iter()).collect();
    assert!(dead.is_empty(), "nothing dead-lettered: {dead:?}");
    assert_eq!(rb.stats.messages_handled, 1201, "and nothing handled twice");
}

#[test]
fn sends_made_while_the_server_is_down_wait_in_the_reconnect_buffer_and_none_is_dead_lettered() {
    ride_out_an_outage(false);
}

#[test]
fn at_least_once_sends_ride_out_a_server_outage_on_jetstream_too() {
    ride_out_an_outage(true);
}

#[test]
fn a_full_reconnect_buffer_hands_the_envelope_back_and_one_past_its_deadline_is_dead_lettered() {
    let Some(mut server) = NatsServer::start() else { return };
    // Four messages or 576 bytes (four 16-byte payloads with their 128-byte overhead), and
    // a deadline short enough to see it pass.
    let buffer = ReconnectBuffer {
        messages: 4,
        bytes: 4 * (ReconnectBuffer::OVERHEAD + 16),
        deadline: Duration::from_millis(300),
    };
    let (a, dead_a) = node_with(ClusterConfig {
        node: Some("a".into()),
        reconnect_buffer: Some(buffer),
        ..ClusterConfig::new(server.url(), "t-buffer")
    });
    let (b, _dead_b) = node(&server, "t-buffer", "b");
    let store = echo_probe(&b, "store");
    reachable(&a, "store");
    server.stop();
    cut_off(&a);
    let refused = |payload: &[u8]| {
        let e = a.try_send(ff(&id("store"), payload)).expect_err("no room in the buffer");
        assert_eq!(e.kind(), SendErrorKind::Transport, "{e}");
        assert_eq!(e.into_envelope().payload, payload, "the envelope comes back");
    };
    // The message bound.
    for i in 0..4u8 {
        a.try_send(ff(&id("store"), &[i; 16])).expect("room in the buffer");
    }
    refused(&[4; 16]);
    refused(&[5; 16]);
    // Each waiting message is dead-lettered at the deadline, as a transport failure.
    for _ in 0..4 {
        let d = recv(&dead_a);
        match &d.reason {
            DeadLetterReason::Transport { detail } => assert!(detail.contains("reconnect buffer"), "{detail}"),
            other => panic!("{other:?}"),
        }
    }
    // The byte bound: one small message fits, a large one does not, though a message fits.
    a.try_send(ff(&id("store"), &[6; 16])).expect("room for a small one");
    refused(&[7; 500]);
    assert!(matches!(recv(&dead_a).reason, DeadLetterReason::Transport { .. }));
    let stats = a.cluster_stats().unwrap();
    assert_eq!((stats.buffered, stats.buffer_refused, stats.buffer_expired), (0, 3, 5), "{stats:?}");
    server.restart();
    assert!(a.wait_for_cluster(WAIT) && b.wait_for_cluster(WAIT));
    reachable(&a, "store");
    // None of the expired messages was sent after all: the first thing the store gets is
    // the request made now.
    assert_eq!(a.request(req(&id("store"), b"after"), WAIT).unwrap().wait().unwrap().payload, b"after");
    assert_eq!(recv(&store), b"after");
    let (ra, rb) = (a.shutdown(WAIT), b.shutdown(WAIT));
    assert!(ra.is_balanced() && rb.is_balanced(), "{ra:?}\n{rb:?}");
    assert_eq!(ra.stats.messages_dead_lettered, 5, "{ra:?}");
}

#[test]
fn a_node_with_the_reconnect_buffer_off_refuses_sends_while_cut_off() {
    let Some(mut server) = NatsServer::start() else { return };
    let (a, _dead) =
        node_with(ClusterConfig { reconnect_buffer: None, ..ClusterConfig::new(server.url(), "t-nobuffer") });
    let (b, _dead_b) = node(&server, "t-nobuffer", "b");
    let _store = echo_probe(&b, "store");
    reachable(&a, "store");
    server.stop();
    cut_off(&a);
    let e = a.try_send(ff(&id("store"), b"x")).expect_err("refused at once");
    assert_eq!(e.kind(), SendErrorKind::Transport);
    assert_eq!(a.cluster_stats().unwrap().buffer_refused, 1);
}

#[test]
fn a_component_registered_while_cut_off_is_served_once_the_connection_is_back() {
    let Some(mut server) = NatsServer::start() else { return };
    let config = |node: &str| ClusterConfig { node: Some(node.into()), ..ClusterConfig::new(server.url(), "t-late") };
    let (a, _dead_a) = node_with(config("a"));
    let (b, _dead_b) = node_with(config("b"));
    server.stop();
    cut_off(&b);
    let store = echo_probe(&b, "store");
    server.restart();
    assert!(a.wait_for_cluster(WAIT) && b.wait_for_cluster(WAIT), "both nodes reconnect by themselves");
    reachable(&a, "store");
    let reply = a.request(req(&id("store"), b"late"), WAIT).expect("sent").wait().expect("answered");
    assert_eq!(reply.payload, b"late");
    assert_eq!(recv(&store), b"late");
    let (ra, rb) = (a.shutdown(WAIT), b.shutdown(WAIT));
    assert!(ra.is_balanced() && rb.is_balanced(), "{ra:?}\n{rb:?}");
}
