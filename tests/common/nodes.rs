//! Nodes of a cluster for the tests that run against a real `nats-server`: a runtime joined
//! with a config, a component that reports what it gets, a plain NATS client.

use crossbeam_channel::{Receiver, unbounded};
use switchyard::cluster::ClusterConfig;
use switchyard::{ComponentConfig, ComponentSpec, DeadLetter, MessageType, Runtime, handler_fn};

use super::nats::NatsServer;
use super::{WAIT, id};

/// A node of cluster `name` on `server`, with its dead letters on a channel.
pub fn node(server: &NatsServer, name: &str, node: &str) -> (Runtime, Receiver<DeadLetter>) {
    node_with(ClusterConfig { node: Some(node.into()), ..ClusterConfig::new(server.url(), name) })
}

/// A node joined with `config`, with its dead letters on a channel.
pub fn node_with(config: ClusterConfig) -> (Runtime, Receiver<DeadLetter>) {
    let (tx, rx) = unbounded();
    let rt = Runtime::builder()
        .workers(2)
        .dead_letter_hook(move |d| {
            let _ = tx.send(d);
        })
        .cluster(config)
        .build()
        .expect("the node joins the cluster");
    (rt, rx)
}

/// A component that reports every payload and echoes requests.
pub fn echo_probe(rt: &Runtime, name: &str) -> Receiver<Vec<u8>> {
    echo_probe_with(rt, name, ComponentConfig::default())
}

/// [`echo_probe`] with `config`.
pub fn echo_probe_with(rt: &Runtime, name: &str, config: ComponentConfig) -> Receiver<Vec<u8>> {
    let (tx, rx) = unbounded();
    let spec = ComponentSpec::new(move || {
        let tx = tx.clone();
        handler_fn(move |_ctx, m| {
            let _ = tx.send(m.payload.clone());
            Ok((m.message_type == MessageType::Request).then(|| m.payload.clone()))
        })
    });
    rt.register(id(name), spec.config(config)).expect("register");
    rx
}

/// Waits until `rt` can reach component `name`.
pub fn reachable(rt: &Runtime, name: &str) {
    assert!(rt.wait_for_component(&id(name), WAIT), "{name} never became reachable");
}

/// Waits until `rt`'s membership is past warming (`ClusterStats::warming`): from then on, a
/// send to an id no node is known to host is refused as no such component, not held.
pub fn warm(rt: &Runtime) {
    super::until("the node is past warming", || rt.cluster_stats().is_some_and(|s| !s.warming));
}

/// A current-thread tokio runtime for a plain NATS client.
pub fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio")
}

/// A plain NATS client of `server`, with the runtime that drives it.
pub fn async_nats_client(server: &NatsServer) -> (tokio::runtime::Runtime, async_nats::Client) {
    let rt = tokio_rt();
    let client = rt.block_on(async_nats::connect(server.url())).expect("connect");
    (rt, client)
}

/// A node of cluster `cluster` played by a plain NATS client: it says in membership that it
/// hosts `ids` (its heartbeat, and the answer to a fetch of its ids, as `membership.rs`
/// documents them) and does nothing else: requests to those ids find no responders, and
/// one-way messages sent to it on its link are never acknowledged. It runs on a thread of
/// its own (a current-thread runtime serves only while something blocks on it).
pub struct FakeNode {
    beats: crossbeam_channel::Sender<()>,
}

/// The documented digest of a set of ids: the wrapping sum, over the ids, of FNV-1a of the
/// id's bytes passed through splitmix64's finalizer.
pub fn ids_digest(ids: &[String]) -> u64 {
    ids.iter().fold(0u64, |d, id| {
        let h = id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
        let mut z = h.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        d.wrapping_add(z ^ (z >> 31))
    })
}

impl FakeNode {
    /// Joins `cluster` on `server` as node `name` hosting `ids`, and says so once.
    pub fn start(server: &NatsServer, cluster: &str, name: &str, ids: &[&str]) -> FakeNode {
        let ids: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
        let mut h = async_nats::HeaderMap::new();
        h.insert("sy-node", name);
        h.insert("sy-epoch", "5eed000000000001");
        h.insert("sy-heartbeat-ms", "1000");
        h.insert("sy-digest", format!("{:016x}", ids_digest(&ids)).as_str());
        let (url, cluster, name) = (server.url(), cluster.to_string(), name.to_string());
        let (beats, beat) = unbounded::<()>();
        let (ready_tx, ready) = crossbeam_channel::bounded(1);
        std::thread::spawn(move || {
            tokio_rt().block_on(async move {
                use futures_util::StreamExt;
                let client = async_nats::connect(url).await.expect("connect");
                let mut fetches = client.subscribe(format!("sy.{cluster}.s.{name}")).await.expect("subscribe");
                client.flush().await.expect("flush");
                ready_tx.send(()).expect("ready");
                let payload = bytes::Bytes::from(ids.join("\n"));
                let mut ticker = tokio::time::interval(std::time::Duration::from_millis(5));
                loop {
                    tokio::select! {
                        Some(m) = fetches.next() => {
                            let Some(reply) = m.reply else { continue };
                            let mut answer = h.clone();
                            answer.insert("sy-pages", "1");
                            let _ = client.publish_with_headers(reply, answer, payload.clone()).await;
                        }
                        _ = ticker.tick() => match beat.try_recv() {
                            Ok(()) => {
                                let beat = format!("sy.{cluster}.n.beat");
                                let _ = client.publish_with_headers(beat, h.clone(), bytes::Bytes::new()).await;
                                let _ = client.flush().await;
                            }
                            Err(crossbeam_channel::TryRecvError::Disconnected) => break,
                            Err(crossbeam_channel::TryRecvError::Empty) => {}
                        },
                    }
                }
            });
        });
        ready.recv_timeout(WAIT).expect("the fake node is up");
        let node = FakeNode { beats };
        node.beat();
        node
    }

    /// Says it again (a heartbeat).
    pub fn beat(&self) {
        self.beats.send(()).expect("the fake node runs");
    }
}
