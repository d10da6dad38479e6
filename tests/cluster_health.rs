//! Health across nodes, against a real `nats-server`: the health of a component another node
//! serves is asked of that node, and a plain NATS client can ask it too.
#![cfg(feature = "cluster")]

mod common;

use std::time::Duration;

use common::nats::NatsServer;
use common::nodes::*;
use common::*;
use crossbeam_channel::unbounded;
use switchyard::cluster::RemoteHealth;
use switchyard::{ComponentSpec, Context, Handler, HandlerError, Health, HealthStatus, MessageEnvelope, handler_fn};

/// Unhealthy, with its reason.
struct Sick;

impl Handler for Sick {
    fn handle(&mut self, _: &mut Context<'_>, _: &MessageEnvelope) -> Result<Option<Vec<u8>>, HandlerError> {
        Ok(None)
    }

    fn health(&mut self, _: &mut Context<'_>) -> Health {
        Health::unhealthy("disk full")
    }
}

#[test]
fn the_health_of_a_component_on_another_node_is_asked_of_that_node() {
    let Some(server) = NatsServer::start() else { return };
    let (a, _dead) = node(&server, "t-health", "a");
    let (b, _dead_b) = node(&server, "t-health", "b");
    let _good = echo_probe(&b, "good");
    b.register(id("sick"), ComponentSpec::new(|| Sick)).unwrap();
    // "busy", on a node of its own, holds its worker until the test lets it go.
    let (c, _dead_c) = node(&server, "t-health", "c");
    let (open_tx, open_rx) = unbounded::<()>();
    let (started_tx, started) = unbounded::<()>();
    c.register(
        id("busy"),
        ComponentSpec::new(move || {
            let (open, started) = (open_rx.clone(), started_tx.clone());
            handler_fn(move |_ctx, _m| {
                let _ = started.send(());
                let _ = open.recv();
                Ok(None)
            })
        }),
    )
    .unwrap();
    let _local = echo_probe(&a, "local");
    for name in ["good", "sick", "busy"] {
        reachable(&a, name);
    }
    c.try_send(ff(&id("busy"), b"hold")).unwrap();
    recv(&started);

    assert_eq!(a.health(&id("good"), WAIT), HealthStatus::Healthy);
    assert_eq!(a.health(&id("sick"), WAIT), HealthStatus::Unhealthy { reason: "disk full".into() });
    assert_eq!(a.health(&id("busy"), Duration::from_millis(200)), HealthStatus::NoAnswer);
    assert_eq!(a.health(&id("nowhere"), WAIT), HealthStatus::NoSuchComponent);
    // Local and remote ids together, in the order asked.
    let all = a.health_all(&[id("local"), id("sick"), id("good")], WAIT);
    assert_eq!(
        all,
        [HealthStatus::Healthy, HealthStatus::Unhealthy { reason: "disk full".into() }, HealthStatus::Healthy]
    );
    // Every remote component, with the node that answered.
    let cluster: Vec<RemoteHealth> = a.cluster_health(Duration::from_millis(500));
    let seen: Vec<(&str, Option<&str>, &HealthStatus)> =
        cluster.iter().map(|h| (h.id.as_str(), h.node.as_deref(), &h.status)).collect();
    assert_eq!(
        seen,
        [
            ("busy", Some("c"), &HealthStatus::NoAnswer),
            ("good", Some("b"), &HealthStatus::Healthy),
            ("sick", Some("b"), &HealthStatus::Unhealthy { reason: "disk full".into() }),
        ]
    );
    open_tx.send(()).unwrap();
    assert_eq!(a.health(&id("busy"), WAIT), HealthStatus::Healthy, "answers once free");
    // Asking ran no handler: "good" saw no message.
    assert!(_good.try_recv().is_err());
}

#[test]
fn a_plain_nats_client_asks_a_components_health() {
    let Some(server) = NatsServer::start() else { return };
    let (b, _dead) = node(&server, "t-health-plain", "b");
    b.register(id("sick"), ComponentSpec::new(|| Sick)).unwrap();
    let (rt, client) = async_nats_client(&server);
    let answer = rt.block_on(async {
        let mut h = async_nats::HeaderMap::new();
        h.insert("sy-type", "health");
        loop {
            let req = async_nats::Request::new().headers(h.clone()).timeout(Some(WAIT));
            match client.send_request("sy.t-health-plain.c.sick", req).await {
                Err(e) if e.kind() == async_nats::RequestErrorKind::NoResponders => tokio::task::yield_now().await,
                r => break r.expect("answered"),
            }
        }
    });
    let h = answer.headers.unwrap();
    assert_eq!(h.get("sy-health").unwrap().as_str(), "unhealthy");
    assert_eq!(h.get("sy-node").unwrap().as_str(), "b");
    assert_eq!(answer.payload, "disk full");
}
