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
