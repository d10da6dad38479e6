//! Nodes under faults beyond a killed server, all on loopback: a node partitioned from the
//! server (its connections reset, new ones refused), a node whose connection went half-open
//! (nothing forwarded, nothing closed: only its own pings notice), the server paused
//! (SIGSTOP) and resumed. Each node reaches the server through a proxy of its own
//! (`common/faults.rs`). Under steady traffic (one-way messages and requests to `store`),
//! each test heals the fault, waits until every record ended, and checks the history
//! (`common/history.rs`): each record ended exactly one way, none handled twice, none lost,
//! and every node's accounting identity exact.
//!
//! Each fault strikes with a burst of records in flight (the receiving node busy with its
//! backlog), lasts some 2 s, and is verified to have happened: the node sees itself cut off
//! (at once after a reset, only after its pings went unanswered when half-open), reconnects
//! through the proxy; the paused server passes nothing on. Each test takes some 3 to 9 s
//! (the slowest record: a request dead-lettered by its sender one 5 s ack timeout after its
//! own); every wait is bounded. A request whose answer is lost with a connection ends, for
//! its sender, dead-lettered with its outcome unknown, and may have been handled once on
//! the receiving node: the history accepts that pair (and nothing more) for a request
//! whose requester got no response (`common/history.rs`). The tests at the end check the
//! harness itself.
#![cfg(feature = "cluster")]

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::faults::{Fault, FaultProxy};
use common::history::History;
use common::nats::NatsServer;
use common::nodes::reachable;
use common::*;
use switchyard::cluster::{ClusterConfig, ClusterStats};
use switchyard::{ComponentSpec, MessageEnvelope, MessageType, Runtime, RuntimeHandle, ShutdownReport, handler_fn};

/// How long a fault lasts.
const FAULT: Duration = Duration::from_secs(2);

/// Records sent at once just before a fault strikes, to be in flight when it does (and a
/// quarter as many requests).
const BURST: u64 = 400;

/// What handling one message takes `store`.
const WORK: Duration = Duration::from_micros(250);

/// A request's timeout.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);

/// The longest a test waits for every record to end after the traffic stopped: a one-way
/// message's confirmation is asked again for three ack timeouts (5 s each), a request is
/// dead-lettered by its sender one ack timeout after its own.
const SETTLE: Duration = Duration::from_secs(20);

/// A node of the test, connected to the server through its own proxy.
struct Node {
    name: &'static str,
    rt: Runtime,
    proxy: FaultProxy,
}

impl Node {
    /// Joins cluster `cluster` on `server` as `name`, through a new proxy, its dead letters
    /// recorded in `history`; `heartbeat` also sets the client's ping interval (twice it,
    /// at least 500 ms: `src/cluster/client.rs`).
    fn join(
        server: &NatsServer,
        cluster: &str,
        name: &'static str,
        history: &Arc<History>,
        heartbeat: Duration,
    ) -> Node {
        let proxy = FaultProxy::start(server.port);
        let config = ClusterConfig { node: Some(name.into()), heartbeat, ..ClusterConfig::new(proxy.url(), cluster) };
        let rt = Runtime::builder()
            .workers(2)
            .pin_workers(false)
            .dead_letter_hook(history.hook(name))
            .cluster(config)
            .build()
            .expect("the node joins the cluster");
        Node { name, rt, proxy }
    }

    fn stats(&self) -> ClusterStats {
        self.rt.cluster_stats().expect("a node of a cluster")
    }

    /// Waits until the node sees itself cut off from the server.
    fn until_cut_off(&self, within: Duration) -> Duration {
        let started = Instant::now();
        poll(&format!("node {} sees itself cut off", self.name), within, || !self.stats().connected);
        started.elapsed()
    }

    /// Waits until the node reconnected after `before` reconnections (and is connected).
    fn until_reconnected(&self, before: u64) {
        poll(&format!("node {} reconnects", self.name), WAIT, || {
            let s = self.stats();
            s.connected && s.reconnects > before
        });
    }
}

/// Registers `store` on `rt` (node `node`): it records each handling and echoes requests.
fn store(rt: &Runtime, node: &'static str, history: &Arc<History>) {
    let history = history.clone();
    let spec = ComponentSpec::new(move || {
        let history = history.clone();
        handler_fn(move |_ctx, m| {
            history.handled(node, &m.payload);
            // Each message takes a moment of work, so that a burst leaves a backlog in the
            // mailbox that is still being handled when the fault strikes.
            std::thread::sleep(WORK);
            Ok((m.message_type == MessageType::Request).then(|| m.payload.clone()))
        })
    })
    // Room for the burst after a fault: what is measured is the fault, not this bound.
    .mailbox_capacity(8192);
    rt.register(id("store"), spec).expect("register store");
}

/// Polls `cond` every millisecond until it holds; panics after `within`.
fn poll(what: &str, within: Duration, cond: impl Fn() -> bool) {
    assert!(holds_within(within, cond), "timed out after {within:?} waiting until {what}");
}

/// Polls `cond` every millisecond until it holds (true) or `within` passed (false).
fn holds_within(within: Duration, cond: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while !cond() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    true
}

/// Steady traffic from one node to `store`: a one-way message every 2 ms and (unless one-way
/// only) a request every 8 ms, each a new record of the history; the requests' outcomes are
/// waited for on a thread of their own. A burst on top ([`Traffic::burst`]) puts many
/// records in flight at the instant a fault strikes.
struct Traffic {
    from: RuntimeHandle,
    requests: bool,
    history: Arc<History>,
    replies: crossbeam_channel::Sender<(Vec<u8>, switchyard::ReplyHandle)>,
    stop: Arc<AtomicBool>,
    sender: JoinHandle<()>,
    waiter: JoinHandle<()>,
}

/// Sends record `i` of a sender's traffic from `from`: a one-way message, and every fourth
/// time a request too (with `requests`), whose reply handle goes to `replies`.
fn send_one(
    i: u64,
    requests: bool,
    from: &RuntimeHandle,
    history: &History,
    replies: &crossbeam_channel::Sender<(Vec<u8>, switchyard::ReplyHandle)>,
) {
    let store = id("store");
    let payload = history.one_way();
    if let Err(e) = from.try_send(ff(&store, &payload)) {
        let kind = e.kind();
        history.handed_back(&e.into_envelope(), kind);
    }
    if requests && i.is_multiple_of(4) {
        let payload = history.request();
        match from.request(req(&store, &payload), REQUEST_TIMEOUT) {
            Ok(reply) => replies.send((payload, reply)).expect("the waiter runs"),
            Err(e) => {
                let kind = e.kind();
                history.handed_back(&e.into_envelope(), kind);
            }
        }
    }
}

impl Traffic {
    /// One-way messages and requests from `from`.
    fn start(from: RuntimeHandle, history: &Arc<History>) -> Traffic {
        Self::start_with(from, history, true)
    }

    /// One-way messages only.
    fn one_way(from: RuntimeHandle, history: &Arc<History>) -> Traffic {
        Self::start_with(from, history, false)
    }

    fn start_with(from: RuntimeHandle, history: &Arc<History>, requests: bool) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let (replies, handles) = crossbeam_channel::unbounded::<(Vec<u8>, switchyard::ReplyHandle)>();
        let h = history.clone();
        let waiter = std::thread::spawn(move || {
            // Each wait returns by the request's own timeout at the latest.
            for (payload, reply) in handles {
                h.answered(&payload, &reply.wait());
            }
        });
        let (h, halt, r, f) = (history.clone(), stop.clone(), replies.clone(), from.clone());
        let sender = std::thread::spawn(move || {
            for i in 0u64.. {
                if halt.load(Ordering::Relaxed) {
                    break;
                }
                send_one(i, requests, &f, &h, &r);
                // The traffic's pace (not a wait for anything).
                std::thread::sleep(Duration::from_millis(2));
            }
        });
        Traffic { from, requests, history: history.clone(), replies, stop, sender, waiter }
    }

    /// Sends `n` one-way messages and `n / 4` requests at once, from the calling thread,
    /// and returns once the receiving node handled the first of them: the rest are in
    /// flight or queued there, the moment for a fault to strike.
    fn burst(&self, n: u64) {
        let first = self.history.len();
        for i in 0..n {
            send_one(i, self.requests, &self.from, &self.history, &self.replies);
        }
        let started = self.history.wait_until(WAIT, |records| records[first..].iter().any(|r| !r.handled.is_empty()));
        assert!(started, "no record of the burst was handled within {WAIT:?}");
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        self.sender.join().expect("the sender ran");
        drop(self.replies);
        self.waiter.join().expect("the waiter ran");
    }
}

/// Waits until `n` more records than now were handled (traffic flows).
fn until_flowing(history: &History, n: usize) {
    let target = history.handled_count() + n;
    assert!(
        history.wait_until(WAIT, |records| records.iter().filter(|r| !r.handled.is_empty()).count() >= target),
        "traffic did not flow: {n} more records handled within {WAIT:?}"
    );
}

/// Stops the traffic, waits until every record ended and every node's identity holds (so
/// nothing is in flight anywhere), shuts the nodes down and checks the history. Prints the
/// history's report either way.
fn settle_and_check(traffic: Vec<Traffic>, history: &History, nodes: &[&Node], started: Instant) {
    for t in traffic {
        t.stop();
    }
    let ended = history.wait_until_ended(SETTLE);
    let open = history.open();
    // A node's identity holds only while nothing is in flight there.
    let quiet = holds_within(Duration::from_secs(5), || nodes.iter().all(|n| n.rt.stats().is_balanced()));
    let stats: Vec<ClusterStats> = nodes.iter().map(|n| n.stats()).collect();
    // Nothing is in flight by now: the drain is short.
    let reports: Vec<ShutdownReport> = nodes.iter().map(|n| n.rt.shutdown(Duration::from_secs(5))).collect();
    let named: Vec<(&str, &switchyard::RoutingStatsSnapshot)> =
        nodes.iter().zip(&reports).map(|(n, r)| (n.name, &r.stats)).collect();
    let verdict = history.check(&named);
    let mut report = verdict.report.clone();
    for s in &stats {
        report.push_str(&format!(
            "  node {}: reconnects {}, forwarded {}, remote failures {}, inbound {} (refused {}), nodes expired {}\n",
            s.node, s.reconnects, s.forwarded, s.remote_failures, s.inbound, s.inbound_refused, s.nodes_expired
        ));
    }
    report.push_str(&format!("  {:.1} s in all\n", started.elapsed().as_secs_f64()));
    eprintln!("{report}");
    assert!(ended, "{open} record(s) had not ended {SETTLE:?} after the traffic stopped:\n{report}");
    assert!(quiet, "a node's identity did not hold once every record ended:\n{report}");
    verdict.assert_clean();
}

/// What strikes, and where.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Strike {
    /// Node b's proxy partitions it from the server for [`FAULT`].
    Partition,
    /// Node b's connection goes half-open until node b notices through its pings, for
    /// [`FAULT`] at least.
    HalfOpen,
    /// The server is paused for [`FAULT`].
    Pause,
    /// The server is paused until every node gave up on its connection, for [`FAULT`] at
    /// least (nodes with a short heartbeat, hence short pings).
    PauseUntilNoticed,
}

/// What a third node, c, does, if there is one.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Third {
    None,
    /// It hosts a replica of `store` too.
    Replica,
    /// It sends to `store` too (traffic without bursts).
    Sender,
}

/// One test: nodes a and b (and c), `store` on node b, traffic from node a to it; the
/// fault strikes with a burst in flight, is healed, traffic flows again, and the history
/// is checked.
struct Scenario {
    cluster: &'static str,
    strike: Strike,
    /// Every node's heartbeat, which also sets its client's ping interval (twice it, at
    /// least 500 ms: `src/cluster/client.rs`).
    heartbeat: Duration,
    /// Requests as well as one-way messages.
    requests: bool,
    third: Third,
}

/// A heartbeat whose pings (every 500 ms) notice a silent connection within some 1.5 s.
const SHORT_HEARTBEAT: Duration = Duration::from_millis(250);

fn run(s: Scenario) {
    let Some(server) = NatsServer::start() else { return };
    let started = Instant::now();
    let history = Arc::new(History::new());
    let a = Node::join(&server, s.cluster, "a", &history, s.heartbeat);
    let b = Node::join(&server, s.cluster, "b", &history, s.heartbeat);
    let c = (s.third != Third::None).then(|| Node::join(&server, s.cluster, "c", &history, s.heartbeat));
    store(&b.rt, "b", &history);
    if let (Third::Replica, Some(c)) = (s.third, &c) {
        store(&c.rt, "c", &history);
        poll("node a lists both replicas", WAIT, || a.stats().remote_components == 1 && a.stats().remote_nodes == 2);
    }
    reachable(&a.rt, "store");
    let start = |n: &Node| {
        reachable(&n.rt, "store");
        if s.requests { Traffic::start(n.rt.handle(), &history) } else { Traffic::one_way(n.rt.handle(), &history) }
    };
    let mut traffic = vec![start(&a)];
    if let (Third::Sender, Some(c)) = (s.third, &c) {
        traffic.push(start(c));
    }
    until_flowing(&history, 100);
    let mut nodes = vec![&a, &b];
    nodes.extend(c.as_ref());
    let before: Vec<u64> = nodes.iter().map(|n| n.stats().reconnects).collect();
    traffic[0].burst(BURST);
    let struck = Instant::now();
    // Each fault lasts (a fixed time, not a wait for anything) once it verifiably happened.
    match s.strike {
        Strike::Partition => {
            b.proxy.partition();
            let noticed = b.until_cut_off(WAIT);
            eprintln!("node b saw the partition after {noticed:?}");
            std::thread::sleep(FAULT.saturating_sub(struck.elapsed()));
            assert!(b.proxy.reset_at_accept() > 0, "node b tried to reconnect during the partition, and was refused");
            b.proxy.heal();
            b.until_reconnected(before[1]);
        }
        Strike::HalfOpen => {
            b.proxy.half_open();
            let noticed = b.until_cut_off(WAIT);
            eprintln!("node b noticed the half-open connection after {noticed:?}");
            // No reset, no FIN reached the node: it noticed only once its pings went
            // unanswered, after the ping interval at least.
            assert!(noticed >= Duration::from_millis(500), "node b noticed the half-open connection after {noticed:?}");
            std::thread::sleep(FAULT.saturating_sub(struck.elapsed()));
            b.proxy.heal();
            b.until_reconnected(before[1]);
        }
        Strike::Pause => {
            server.pause();
            // What the senders got back through the server (confirmations, answers): once
            // what it sent before it stopped has arrived, nothing more comes.
            let senders: Vec<&Node> = nodes.iter().copied().filter(|n| n.name != "b").collect();
            let crossed = || senders.iter().map(|n| n.stats().forwarded).sum::<u64>();
            std::thread::sleep(FAULT / 4);
            let settled = crossed();
            std::thread::sleep(FAULT.saturating_sub(struck.elapsed()));
            assert_eq!(crossed(), settled, "nothing crossed the paused server");
            server.resume();
        }
        Strike::PauseUntilNoticed => {
            server.pause();
            for n in &nodes {
                n.until_cut_off(WAIT);
            }
            eprintln!("every node gave up on its connection {:?} into the pause", struck.elapsed());
            std::thread::sleep(FAULT.saturating_sub(struck.elapsed()));
            server.resume();
            for (n, before) in nodes.iter().zip(&before) {
                n.until_reconnected(*before);
            }
        }
    }
    until_flowing(&history, 200);
    settle_and_check(traffic, &history, &nodes, started);
}

#[test]
fn a_node_partitioned_from_the_server_ends_every_one_way_message_exactly_once() {
    let heartbeat = Duration::from_secs(1);
    run(Scenario { cluster: "t-partition", strike: Strike::Partition, heartbeat, requests: false, third: Third::None });
}

#[test]
fn a_request_node_b_handles_as_it_is_partitioned_ends_exactly_once() {
    let heartbeat = Duration::from_secs(1);
    run(Scenario {
        cluster: "t-partition-req",
        strike: Strike::Partition,
        heartbeat,
        requests: true,
        third: Third::None,
    });
}

#[test]
fn one_replica_partitioned_from_the_server_leaves_every_one_way_message_ended_exactly_once() {
    let heartbeat = Duration::from_secs(1);
    run(Scenario {
        cluster: "t-replica",
        strike: Strike::Partition,
        heartbeat,
        requests: false,
        third: Third::Replica,
    });
}

#[test]
fn a_half_open_connection_noticed_by_pings_ends_every_one_way_message_exactly_once() {
    let heartbeat = SHORT_HEARTBEAT;
    run(Scenario { cluster: "t-half-open", strike: Strike::HalfOpen, heartbeat, requests: false, third: Third::None });
}

#[test]
fn a_request_handled_behind_a_half_open_connection_ends_exactly_once() {
    let heartbeat = SHORT_HEARTBEAT;
    run(Scenario {
        cluster: "t-half-open-req",
        strike: Strike::HalfOpen,
        heartbeat,
        requests: true,
        third: Third::None,
    });
}

#[test]
fn a_server_paused_for_two_seconds_ends_every_record_exactly_once() {
    let heartbeat = Duration::from_secs(1);
    run(Scenario { cluster: "t-pause", strike: Strike::Pause, heartbeat, requests: true, third: Third::Sender });
}

#[test]
fn a_server_paused_past_the_nodes_ping_timeouts_ends_every_one_way_message_exactly_once() {
    let heartbeat = SHORT_HEARTBEAT;
    let strike = Strike::PauseUntilNoticed;
    run(Scenario { cluster: "t-pause-pings", strike, heartbeat, requests: false, third: Third::None });
}

#[test]
fn a_request_handled_as_the_paused_server_is_given_up_on_ends_exactly_once() {
    let heartbeat = SHORT_HEARTBEAT;
    let strike = Strike::PauseUntilNoticed;
    run(Scenario { cluster: "t-pause-pings-req", strike, heartbeat, requests: true, third: Third::None });
}

/// An echo server on loopback, for the proxy's own test.
fn echo_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            std::thread::spawn(move || {
                let mut buf = [0; 256];
                while let Ok(n @ 1..) = conn.read(&mut buf) {
                    if conn.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

/// Writes `bytes` on `s` and reads them back, or what went wrong reading.
fn echo(s: &mut TcpStream, bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    s.write_all(bytes)?;
    let mut got = vec![0; bytes.len()];
    s.read_exact(&mut got)?;
    Ok(got)
}

// The harness itself: what each fault does to a connection, seen by a plain TCP client.
#[test]
fn the_fault_proxy_resets_black_holes_and_heals_connections() {
    let proxy = FaultProxy::start(echo_server());
    let connect = || {
        let s = TcpStream::connect(("127.0.0.1", proxy.port())).expect("connect to the proxy");
        s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        s
    };
    let mut first = connect();
    assert_eq!(echo(&mut first, b"pass").expect("passed"), b"pass");
    // Partition: the open connection is reset, and so is a new one.
    proxy.partition();
    assert_eq!(proxy.open(), 0);
    let e = echo(&mut first, b"cut").expect_err("reset");
    assert_eq!(e.kind(), ErrorKind::ConnectionReset, "{e}");
    let e = echo(&mut connect(), b"cut").expect_err("reset at once");
    assert!(matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::BrokenPipe), "{e}");
    assert!(proxy.reset_at_accept() >= 1);
    // Half-open: writes are taken, nothing comes back, nothing is closed.
    proxy.heal();
    let mut stalled = connect();
    assert_eq!(echo(&mut stalled, b"before").expect("passed"), b"before");
    proxy.half_open();
    stalled.set_read_timeout(Some(Duration::from_millis(300))).expect("timeout");
    let e = echo(&mut stalled, b"lost").expect_err("no answer");
    assert!(matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut), "silence, not a close: {e}");
    let mut held = connect();
    held.set_read_timeout(Some(Duration::from_millis(300))).expect("timeout");
    let e = echo(&mut held, b"held").expect_err("no answer");
    assert!(matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut), "silence, not a close: {e}");
    assert_eq!(proxy.open(), 2, "both held open");
    // Healing: the black-holed connections stay dead (reset); new ones pass.
    proxy.heal();
    assert_eq!(proxy.fault(), Fault::Pass);
    stalled.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    let mut rest = Vec::new();
    let e = stalled.read_to_end(&mut rest).expect_err("reset");
    assert_eq!(e.kind(), ErrorKind::ConnectionReset, "{e}");
    assert!(rest.is_empty(), "nothing black-holed arrives later: {rest:?}");
    assert_eq!(echo(&mut connect(), b"healed").expect("passed"), b"healed");
}

// The harness itself: the checker names every record that did not end exactly one way.
#[test]
fn the_history_check_names_lost_duplicated_and_doubly_ended_records() {
    let history = History::new();
    let dead = |payload: &[u8], message_type| switchyard::DeadLetter {
        envelope: MessageEnvelope { message_type, ..ff(&id("store"), payload) },
        reason: switchyard::DeadLetterReason::Transport { detail: "test".into() },
        at: chrono::Utc::now(),
    };
    let fine = history.one_way();
    history.handled("b", &fine);
    let handed_back = history.one_way();
    history.handed_back(&ff(&id("store"), &handed_back), "NoSuchComponent");
    let _lost = history.one_way(); // sent, and nothing observed since
    let twice = history.one_way();
    history.handled("b", &twice);
    history.handled("c", &twice);
    let both = history.request();
    history.handled("b", &both);
    history.dead_lettered("a", &dead(&both, MessageType::Request));
    history.answered(&both, &Err(switchyard::RequestError::Timeout));
    let late = history.request();
    history.handled("b", &late);
    history.dead_lettered("a", &dead(&late, MessageType::Response));
    history.answered(&late, &Err(switchyard::RequestError::Timeout));
    let unanswered = history.request();
    history.handled("b", &unanswered);
    // Handled on b, its answer lost: node a dead-letters it with its outcome unknown and
    // its requester times out (fine); the same with the response delivered is not.
    let unknown = |payload: &[u8]| switchyard::DeadLetter {
        reason: switchyard::DeadLetterReason::Transport { detail: "no answer: handled or not, unknown".into() },
        ..dead(payload, MessageType::Request)
    };
    let lost_answer = history.request();
    history.handled("b", &lost_answer);
    history.dead_lettered("a", &unknown(&lost_answer));
    history.answered(&lost_answer, &Err(switchyard::RequestError::Timeout));
    let answered_too = history.request();
    history.handled("b", &answered_too);
    history.dead_lettered("a", &unknown(&answered_too));
    history.answered(
        &answered_too,
        &Ok(MessageEnvelope { message_type: MessageType::Response, ..ff(&id("a"), &answered_too) }),
    );
    assert!(!history.wait_until_ended(Duration::ZERO), "the lost one has not ended");
    let balanced = switchyard::RoutingStatsSnapshot { messages_sent: 2, messages_handled: 2, ..Default::default() };
    let unbalanced = switchyard::RoutingStatsSnapshot { messages_sent: 3, ..balanced };
    let verdict = history.check(&[("a", &balanced), ("b", &unbalanced)]);
    assert!(!verdict.clean);
    let report = &verdict.report;
    for line in [
        "VIOLATION lost (no end anywhere): 1 record(s)\n    #2 OneWay: nothing observed",
        "VIOLATION handled more than once: 1 record(s)\n    #3 OneWay: handled on [\"b\", \"c\"];",
        "VIOLATION ended more than one way: 2 record(s)\n    #4 Request: handled on [\"b\"]; dead-lettered on a",
        "    #8 Request: handled on [\"b\"]; dead-lettered on a",
        "VIOLATION no outcome at the requester: 1 record(s)\n    #6 Request: handled on [\"b\"];",
        "VIOLATION accounting of node b: sent 3 = handled 2",
        "accounting of node a: sent 2 = handled 2 + dead-lettered 0 + refused at send 0 + forwarded 0 (balanced)",
    ] {
        assert!(report.contains(line), "{line:?} is not in the report:\n{report}");
    }
    // The one handled, the one handed back, the late reply and the answer lost are fine.
    for id in ["#0 ", "#1 ", "#5 ", "#7 "] {
        assert!(!report.contains(id), "{id} is reported:\n{report}");
    }
}
