//! Workload 12, across nodes over NATS: a request's round trip from a host on one node to a
//! component on another, and one-way throughput between them (each message acknowledged by
//! the receiving node on the nodes' link, in batches), against the floor: a raw
//! `async-nats` request/reply loop and a raw publish loop between two connections in the
//! same process, the same payloads, on a `nats-server` this workload starts on a free
//! loopback port (skipped if none is installed). A third row says how many messages the
//! link carried per batch in the throughput run.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use switchyard::cluster::ClusterConfig;
use switchyard::{
    ComponentId, ComponentSpec, MessageEnvelope, MessageType, Runtime, SendError, codec, handler_fn, new_message_id,
};
use switchyard_bench_support::workloads::Engine;

use super::Plan;
use super::report::{Check, Row};

const PAYLOAD: [u8; 64] = [7; 64];
const TIMEOUT: Duration = Duration::from_secs(30);

/// A `nats-server` on a free loopback port, killed on drop.
struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start() -> Option<Server> {
        let port = std::net::TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
        let mut child = Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .ok()?;
        let stderr = child.stderr.take()?;
        let (tx, rx) = crossbeam_channel::bounded(1);
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stderr).lines();
            let ready = lines.by_ref().map_while(Result::ok).any(|l| l.contains("Server is ready"));
            let _ = tx.send(ready);
            for _ in lines {}
        });
        let server = Server { child, url: format!("nats://127.0.0.1:{port}") };
        matches!(rx.recv_timeout(Duration::from_secs(20)), Ok(true)).then_some(server)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn id(s: &str) -> ComponentId {
    ComponentId::new(s).expect("valid id")
}

fn node(url: &str, name: &str, workers: usize) -> Runtime {
    let config = ClusterConfig { node: Some(name.into()), ..ClusterConfig::new(url, "bench") };
    Runtime::builder().workers(workers).cluster(config).build().expect("the node joins")
}

fn median_us(mut v: Vec<u64>) -> f64 {
    v.sort_unstable();
    v[v.len() / 2] as f64 / 1e3
}

/// Round trips (ns) of `n` requests from node a's host to an echo on node b.
fn switchyard_round_trips(url: &str, plan: &Plan, n: usize) -> Vec<u64> {
    let a = node(url, "a", plan.workers);
    let b = node(url, "b", plan.workers);
    b.register(id("echo"), ComponentSpec::new(|| handler_fn(|_c, m| Ok(Some(m.payload.clone()))))).unwrap();
    assert!(a.wait_for_component(&id("echo"), TIMEOUT), "echo reachable");
    let ask = || {
        let env = MessageEnvelope::new(
            MessageType::Request,
            id("host"),
            id("echo"),
            PAYLOAD.to_vec(),
            codec::RAW,
            new_message_id(),
        );
        let t = Instant::now();
        let reply = a.request(env, TIMEOUT).expect("sent").wait().expect("answered");
        assert_eq!(reply.payload, PAYLOAD);
        t.elapsed().as_nanos() as u64
    };
    (0..n / 10).for_each(|_| {
        ask();
    });
    (0..n).map(|_| ask()).collect()
}

/// Round trips (ns) of `n` raw NATS requests between two connections, each served by a
/// current-thread runtime of its own (as each node's bridge is).
fn raw_round_trips(url: &str, n: usize) -> Vec<u64> {
    let (ready_tx, ready_rx) = crossbeam_channel::bounded(1);
    let url2 = url.to_string();
    let responder = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio");
        rt.block_on(async {
            let c = async_nats::connect(url2).await.expect("connect");
            let mut sub = c.subscribe("raw.echo").await.expect("subscribe");
            c.flush().await.expect("flush");
            let _ = ready_tx.send(());
            while let Some(m) = sub.next().await {
                let Some(reply) = m.reply else { break };
                c.publish(reply, m.payload).await.expect("reply");
            }
        });
    });
    let _ = ready_rx.recv_timeout(TIMEOUT);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio");
    let samples = rt.block_on(async {
        let c = async_nats::connect(url).await.expect("connect");
        let ask = || async {
            let t = Instant::now();
            let reply = c.request("raw.echo", PAYLOAD.to_vec().into()).await.expect("answered");
            assert_eq!(&reply.payload[..], PAYLOAD);
            t.elapsed().as_nanos() as u64
        };
        for _ in 0..n / 10 {
            ask().await;
        }
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(ask().await);
        }
        // The responder stops at a message without a reply subject.
        c.publish("raw.echo", "".into()).await.expect("stop");
        c.flush().await.expect("flush");
        v
    });
    let _ = responder.join();
    samples
}

/// One-way messages per second from node a's host to a sink on node b (each acknowledged),
/// and the messages per batch node a's link to node b carried.
fn switchyard_throughput(url: &str, plan: &Plan, n: u64) -> (f64, f64) {
    let a = node(url, "a", plan.workers);
    let b = node(url, "b", plan.workers);
    let count = Arc::new(AtomicU64::new(0));
    let (done_tx, done_rx) = crossbeam_channel::bounded(1);
    let c = count.clone();
    b.register(
        id("sink"),
        ComponentSpec::new(move || {
            let (c, done) = (c.clone(), done_tx.clone());
            handler_fn(move |_ctx, _m| {
                if c.fetch_add(1, Ordering::Relaxed) + 1 == n {
                    let _ = done.send(());
                }
                Ok(None)
            })
        })
        .mailbox_capacity(8192),
    )
    .unwrap();
    assert!(a.wait_for_component(&id("sink"), TIMEOUT), "sink reachable");
    let t = Instant::now();
    for _ in 0..n {
        let mut env = MessageEnvelope::new(
            MessageType::FireAndForget,
            id("host"),
            id("sink"),
            PAYLOAD.to_vec(),
            codec::RAW,
            new_message_id(),
        );
        // A full outbound queue hands the envelope back: wait for room and send it again.
        loop {
            match a.try_send(env) {
                Ok(()) => break,
                Err(SendError::Full(back)) => {
                    env = back;
                    std::thread::yield_now();
                }
                Err(e) => panic!("send failed: {e}"),
            }
        }
    }
    done_rx.recv_timeout(TIMEOUT).expect("every message handled");
    let rate = n as f64 / t.elapsed().as_secs_f64();
    let batches = a.cluster_stats().expect("a node").link_batches;
    let report = a.shutdown(TIMEOUT);
    assert!(report.is_balanced() && report.stats.messages_forwarded == n, "{report:?}");
    (rate, n as f64 / batches.max(1) as f64)
}

/// Raw publishes per second from one connection to a subscriber on another.
fn raw_throughput(url: &str, n: u64) -> f64 {
    let (ready_tx, ready_rx) = crossbeam_channel::bounded(1);
    let (done_tx, done_rx) = crossbeam_channel::bounded(1);
    let url2 = url.to_string();
    let reader = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio");
        rt.block_on(async {
            let c =
                async_nats::ConnectOptions::new().subscription_capacity(1 << 20).connect(url2).await.expect("connect");
            let mut sub = c.subscribe("raw.sink").await.expect("subscribe");
            c.flush().await.expect("flush");
            let _ = ready_tx.send(());
            let mut got = 0;
            while got < n && sub.next().await.is_some() {
                got += 1;
            }
            let _ = done_tx.send(got);
        });
    });
    let _ = ready_rx.recv_timeout(TIMEOUT);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio");
    let t = Instant::now();
    rt.block_on(async {
        let c = async_nats::connect(url).await.expect("connect");
        for _ in 0..n {
            c.publish("raw.sink", PAYLOAD.to_vec().into()).await.expect("publish");
        }
        c.flush().await.expect("flush");
    });
    let got = done_rx.recv_timeout(TIMEOUT).unwrap_or(0);
    let rate = n as f64 / t.elapsed().as_secs_f64();
    let _ = reader.join();
    // Core NATS may drop messages for a slow reader: a floor that lost any is not a floor.
    assert_eq!(got, n, "the raw subscriber received every message");
    rate
}

/// Workload 12: across nodes over NATS.
pub(super) fn cluster(plan: &Plan) -> Vec<Row> {
    let Some(server) = Server::start() else {
        eprintln!("[compare] workload 12 (across nodes over NATS) skipped: nats-server is not installed");
        return Vec::new();
    };
    let n = if plan.quick { 2_000 } else { 20_000 };
    let m: u64 = if plan.quick { 20_000 } else { 200_000 };
    let rtt = Row::new("cluster_rtt_p50", "12 across nodes (NATS)", "request round trip to another node, p50", "us")
        .target("<= 1.3x floor (issue; floor: raw NATS request)", Check::RatioToFloorAtMost(1.3))
        .set(Engine::Switchyard, median_us(switchyard_round_trips(&server.url, plan, n)))
        .set(Engine::Floor, median_us(raw_round_trips(&server.url, n)));
    let (rate, per_batch) = switchyard_throughput(&server.url, plan, m);
    let tput = Row::new(
        "cluster_tput",
        "12 across nodes (NATS)",
        "one-way throughput to another node, each acknowledged (floor: raw publish, unacknowledged)",
        "k msg/s",
    )
    .target(">= 0.25x floor (issue; floor: raw publish)", Check::RatioToFloorAtLeast(0.25))
    .set(Engine::Switchyard, rate / 1e3)
    .set(Engine::Floor, raw_throughput(&server.url, m) / 1e3);
    let batching = Row::new(
        "cluster_link_batch",
        "12 across nodes (NATS)",
        "messages per link batch in that run (one NATS message each)",
        "msg",
    )
    .set(Engine::Switchyard, per_batch);
    vec![rtt, tput, batching]
}
