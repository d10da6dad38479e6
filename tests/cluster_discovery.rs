//! Discovery for NATS tooling, against a real `nats-server`: every node answers the NATS
//! services protocol (`$SRV.PING`, `INFO`, `STATS`) with the components it serves, only to
//! inbox reply subjects, and within its bound of answers a second.
#![cfg(feature = "cluster")]

mod common;

use std::time::{Duration, Instant};

use async_nats::{Client, Subscriber};
use common::nats::NatsServer;
use common::nodes::{async_nats_client, echo_probe, node, reachable};
use common::{WAIT, id};
use futures_util::StreamExt;
use serde_json::Value;

/// Publishes an empty request on `subject` and collects `n` answers (a NATS request would
/// keep only the first).
async fn ask(client: &Client, subject: &str, n: usize) -> Vec<Value> {
    let inbox = client.new_inbox();
    let mut sub = client.subscribe(inbox.clone()).await.expect("subscribe");
    client.publish_with_reply(subject.to_string(), inbox, "".into()).await.expect("publish");
    let mut answers = Vec::new();
    while answers.len() < n {
        let m = tokio::time::timeout(WAIT, sub.next()).await.expect("an answer in time").expect("open");
        answers.push(serde_json::from_slice(&m.payload).expect("JSON"));
    }
    answers
}

/// True when `sub` holds a message already.
async fn holds_any(sub: &mut Subscriber) -> bool {
    matches!(tokio::time::timeout(Duration::ZERO, sub.next()).await, Ok(Some(_)))
}

fn endpoint<'a>(answer: &'a Value, name: &str) -> &'a Value {
    answer["endpoints"]
        .as_array()
        .expect("endpoints")
        .iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("no endpoint {name} in {answer}"))
}

#[test]
fn every_node_answers_ping_info_and_stats_with_the_components_it_serves() {
    let Some(server) = NatsServer::start() else { return };
    let (a, _dead_a) = node(&server, "t-disc", "a");
    let (b, _dead_b) = node(&server, "t-disc", "b");
    let _a1 = echo_probe(&a, "a1");
    let _a2 = echo_probe(&a, "a.two");
    let _b1 = echo_probe(&b, "b1");
    reachable(&b, "a1");
    reachable(&b, "a.two");
    reachable(&a, "b1");
    let (rt, client) = async_nats_client(&server);
    rt.block_on(async {
        // Every node answers a PING, to the protocol's subject and to the service's.
        for subject in ["$SRV.PING", "$SRV.PING.switchyard-t-disc"] {
            let mut pongs = ask(&client, subject, 2).await;
            pongs.sort_by_key(|p| p["id"].as_str().unwrap_or_default().to_string());
            for (pong, node) in pongs.iter().zip(["a", "b"]) {
                assert_eq!(pong["type"], "io.nats.micro.v1.ping_response", "{pong}");
                assert_eq!(pong["name"], "switchyard-t-disc", "{pong}");
                assert_eq!(pong["id"], node, "{pong}");
                assert_eq!(pong["version"], env!("CARGO_PKG_VERSION"), "{pong}");
                assert!(pong["metadata"].is_object(), "{pong}");
            }
        }

        // INFO of node a lists exactly a's components, on their subjects.
        let info = ask(&client, "$SRV.INFO.switchyard-t-disc.a", 1).await.remove(0);
        assert_eq!(info["type"], "io.nats.micro.v1.info_response", "{info}");
        assert_eq!(info["id"], "a", "{info}");
        assert!(info["description"].is_string(), "{info}");
        let mut names: Vec<&str> =
            info["endpoints"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
        names.sort_unstable();
        assert_eq!(names, ["a1", "a_2Etwo"], "{info}");
        let two = endpoint(&info, "a_2Etwo");
        assert_eq!(two["subject"], "sy.t-disc.c.a_2Etwo");
        assert_eq!(two["queue_group"], "switchyard");
        assert_eq!(two["metadata"]["component"], "a.two");
        let info_b = ask(&client, "$SRV.INFO.switchyard-t-disc.b", 1).await.remove(0);
        assert_eq!(info_b["id"], "b");
        assert_eq!(endpoint(&info_b, "b1")["subject"], "sy.t-disc.c.b1");
        assert_eq!(info_b["endpoints"].as_array().unwrap().len(), 1, "{info_b}");

        // An endpoint is the component's own subject: a request to it is answered.
        for i in 0..3u8 {
            let reply = client.request("sy.t-disc.c.a1", vec![i].into()).await.expect("answered");
            assert_eq!(&reply.payload[..], &[i]);
        }

        // STATS counts what the component took.
        let stats = ask(&client, "$SRV.STATS.switchyard-t-disc.a", 1).await.remove(0);
        assert_eq!(stats["type"], "io.nats.micro.v1.stats_response", "{stats}");
        assert_eq!(stats["id"], "a");
        let started = stats["started"].as_str().expect("started");
        chrono::DateTime::parse_from_rfc3339(started).expect("RFC 3339");
        let a1 = endpoint(&stats, "a1");
        assert_eq!(a1["num_requests"], 3, "{stats}");
        assert_eq!(a1["num_errors"], 0, "{stats}");
        assert_eq!(a1["subject"], "sy.t-disc.c.a1");
        assert_eq!(a1["queue_group"], "switchyard");
        assert_eq!(a1["last_error"], "");
        assert!(a1["processing_time"].is_u64() && a1["average_processing_time"].is_u64(), "{stats}");
        assert_eq!(a1["data"]["received"], 3, "{stats}");
        assert_eq!(endpoint(&stats, "a_2Etwo")["num_requests"], 0, "{stats}");
    });
    assert_eq!(a.component_stats(&id("a1")).unwrap().received, 3);
}

#[test]
fn a_discovery_request_whose_reply_subject_is_not_an_inbox_gets_no_answer() {
    let Some(server) = NatsServer::start() else { return };
    let (a, _dead) = node(&server, "t-disc-h", "a");
    let _a1 = echo_probe(&a, "a1");
    let (rt, client) = async_nats_client(&server);
    rt.block_on(async {
        // Replies aimed at a subject of the client's choosing, a component's among them.
        let targets = ["evil.reply", "sy.t-disc-h.c.a1"];
        let mut watchers = Vec::new();
        for t in targets {
            watchers.push(client.subscribe(t).await.unwrap());
        }
        for t in targets {
            client.publish_with_reply("$SRV.INFO.switchyard-t-disc-h.a", t, "".into()).await.unwrap();
        }
        // A later request on the same subject: answered after the two above were read.
        let info = ask(&client, "$SRV.INFO.switchyard-t-disc-h.a", 1).await.remove(0);
        assert_eq!(info["id"], "a");
        for (t, w) in targets.iter().zip(&mut watchers) {
            assert!(!holds_any(w).await, "a discovery answer went to {t}");
        }
    });
    assert_eq!(a.cluster_stats().unwrap().discovery_refused, 2);
}

#[test]
fn a_flood_of_discovery_requests_is_answered_only_up_to_the_bound() {
    const FLOOD: u64 = 300;
    const PER_SECOND: u64 = 64;
    let Some(server) = NatsServer::start() else { return };
    let (a, _dead) = node(&server, "t-disc-f", "a");
    let _a1 = echo_probe(&a, "a1");
    let (rt, client) = async_nats_client(&server);
    rt.block_on(async {
        let inbox = client.new_inbox();
        let mut answers = client.subscribe(inbox.clone()).await.unwrap();
        let started = Instant::now();
        for _ in 0..FLOOD {
            client.publish_with_reply("$SRV.PING.switchyard-t-disc-f.a", inbox.clone(), "".into()).await.unwrap();
        }
        client.flush().await.unwrap();
        // Every request ends answered or refused; collect until they add up.
        let mut answered = 0u64;
        let deadline = Instant::now() + WAIT;
        while answered + a.cluster_stats().unwrap().discovery_refused < FLOOD {
            assert!(Instant::now() < deadline, "{answered} answered, the rest never accounted for");
            if let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(20), answers.next()).await {
                answered += 1;
            }
        }
        let windows = started.elapsed().as_secs() + 2;
        assert!(answered >= 1, "nothing answered");
        assert!(answered <= PER_SECOND * windows, "{answered} answers in {} windows", windows);
        assert!(!holds_any(&mut answers).await, "more answers than requests accounted for");
        // The node's loop went on meanwhile: its component is still served.
        let reply = client.request("sy.t-disc-f.c.a1", "still here".into()).await.expect("answered");
        assert_eq!(&reply.payload[..], b"still here");
    });
}

/// The answer to a request on `subject`, raw, or `None` if none came within a second (a
/// request past the node's bound of answers a second is not answered).
async fn answer_of(client: &Client, subject: &str) -> Option<async_nats::Message> {
    let inbox = client.new_inbox();
    let mut sub = client.subscribe(inbox.clone()).await.expect("subscribe");
    client.publish_with_reply(subject.to_string(), inbox, "".into()).await.expect("publish");
    tokio::time::timeout(Duration::from_secs(1), sub.next()).await.ok().flatten()
}

/// The endpoints an answer lists (their names) and the count it says it left out.
fn listed(m: &async_nats::Message) -> (Vec<String>, usize) {
    let v: Value = serde_json::from_slice(&m.payload).expect("JSON");
    let names = v["endpoints"].as_array().expect("endpoints").iter().map(|e| e["name"].as_str().unwrap().to_string());
    let omitted = v["metadata"]["endpoints_omitted"].as_str().map_or(0, |n| n.parse().expect("a count"));
    (names.collect(), omitted)
}

#[test]
fn answers_are_copies_of_a_summary_cut_to_the_servers_largest_message_and_made_again_only_when_due() {
    // Ids of 99 bytes: the whole list (about 400 bytes an endpoint in INFO, more in STATS)
    // is more than the server's 1 MB.
    const COMPONENTS: usize = 4000;
    let Some(server) = NatsServer::start() else { return };
    let (a, _dead) = node(&server, "t-disc-s", "a");
    let (b, _dead_b) = node(&server, "t-disc-s", "b");
    let names: Vec<String> = (0..COMPONENTS).map(|i| format!("{}-{i:05}", "c".repeat(93))).collect();
    for n in &names {
        let idle = switchyard::ComponentSpec::new(|| switchyard::handler_fn(|_ctx, _m| Ok(None)));
        a.register(id(n), idle).expect("register");
    }
    // Node a announces a component once it serves it.
    for n in &names {
        reachable(&b, n);
    }
    let summaries = || a.cluster_stats().unwrap().discovery_summaries;
    assert_eq!(summaries(), 0, "none made before it was asked for");
    let (rt, client) = async_nats_client(&server);
    let max_payload = client.server_info().max_payload;
    rt.block_on(async {
        // Answers a second stay within the node's bound (64) in all that follows.
        let mut first = None;
        for _ in 0..20 {
            let m = answer_of(&client, "$SRV.INFO.switchyard-t-disc-s.a").await.expect("answered");
            assert!(m.payload.len() <= max_payload, "{} bytes", m.payload.len());
            let (names_listed, omitted) = listed(&m);
            assert!(omitted > 0 && names_listed.len() > 100, "{} listed, {omitted} omitted", names_listed.len());
            assert_eq!(names_listed.len() + omitted, COMPONENTS);
            assert_eq!(names_listed, names[..names_listed.len()], "the first ones in id order");
            assert_eq!(*first.get_or_insert_with(|| m.payload.clone()), m.payload, "the same summary");
        }
        assert_eq!(summaries(), 1, "twenty INFO answers from one summary");

        let started = Instant::now();
        for _ in 0..20 {
            let m = answer_of(&client, "$SRV.STATS.switchyard-t-disc-s.a").await.expect("answered");
            assert!(m.payload.len() <= max_payload, "{} bytes", m.payload.len());
            let (names_listed, omitted) = listed(&m);
            assert!(omitted > 0 && !names_listed.is_empty(), "{} listed, {omitted} omitted", names_listed.len());
            assert_eq!(names_listed.len() + omitted, COMPONENTS);
        }
        // STATS' counters are made again once they are a second old, when asked: never
        // more than once per second that passed (a bound, not a measurement).
        let made = summaries() - 1;
        assert!((1..=1 + started.elapsed().as_secs()).contains(&made), "{made} STATS summaries");

        // One component fewer: INFO says so once its summary is due again (a second after
        // the last), from one more summary.
        a.unregister(&id(&names[0])).expect("unregistered");
        let before = summaries();
        let deadline = Instant::now() + WAIT;
        loop {
            assert!(Instant::now() < deadline, "INFO still lists {}", names[0]);
            if let Some(m) = answer_of(&client, "$SRV.INFO.switchyard-t-disc-s.a").await {
                let (names_listed, omitted) = listed(&m);
                if names_listed[0] == names[1] {
                    assert_eq!(names_listed.len() + omitted, COMPONENTS - 1);
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(summaries(), before + 1);
    });
}
