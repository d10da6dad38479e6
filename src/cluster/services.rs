//! Discovery for NATS tooling: each node answers the NATS services protocol ("micro",
//! ADR-32) about the components it hosts, so `nats micro ls`, `info` and `stats` list them.
//!
//! A node is one instance of the service [`service_name`]`(<cluster>)` whose id is the
//! node's name and whose version is the crate's. It answers `$SRV.<verb>`,
//! `$SRV.<verb>.<name>` and `$SRV.<verb>.<name>.<id>` for the verbs `PING`, `INFO` and
//! `STATS` (plain subscriptions: every node answers). Its endpoints are the components it
//! serves, each the subscription the cluster already reads them through: named after the
//! escaped id, on `sy.<cluster>.c.<id>`, in queue group [`subject::QUEUE_GROUP`], the id
//! itself in the endpoint's metadata (`component`). A stopped component is left out.
//!
//! `STATS` gives each endpoint's counters from the component's own
//! ([`crate::ComponentStatsSnapshot`], all its messages, local ones included):
//! `num_requests` is what it took from its mailbox (`received`), `num_errors` its failed
//! handler attempts (`failed`); `processing_time` is not measured and stays 0; `data`
//! holds the rest of the counters.
//!
//! Anyone on the server may ask, so the answering is bounded: one task of its own on the
//! I/O thread, an answer only to an inbox reply subject ([`wire::answerable`]: an inbox or
//! the server's mapping of one through a service import), at most
//! [`ANSWERS_PER_SECOND`] answers a second, an answer cut to the server's largest message
//! (endpoints left out are counted in its metadata, `endpoints_omitted`). A request it does
//! not answer counts in [`super::ClusterStats::discovery_refused`].

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use async_nats::{Client, Message, Subscriber};
use futures_util::StreamExt;
use futures_util::stream::SelectAll;
use serde::Serialize;

use super::bridge::Bridge;
use super::{subject, wire};
use crate::runtime::Inner;
use crate::stats::ComponentStatsSnapshot;

/// Answers a node gives in one second; requests past it are dropped (and counted).
pub(crate) const ANSWERS_PER_SECOND: u32 = 64;
/// Room an answer keeps below the server's largest message for the headers of the publish.
const PAYLOAD_SLACK: usize = 1024;

/// The service every node of `cluster` is an instance of: `switchyard-<cluster>`.
pub(crate) fn service_name(cluster: &str) -> String {
    format!("switchyard-{cluster}")
}

/// The verbs, as they appear in subjects.
const VERBS: [&str; 3] = ["PING", "INFO", "STATS"];

/// The node's discovery subscriptions, taken before it reports ready.
pub(super) struct Requests(SelectAll<Subscriber>);

/// Subscribes to the nine subjects a node of `bridge` answers on.
pub(super) async fn subscribe(client: &Client, bridge: &Bridge) -> Result<Requests, String> {
    let name = service_name(&bridge.cluster);
    let mut subs = Vec::with_capacity(9);
    for verb in VERBS {
        for subject in
            [format!("$SRV.{verb}"), format!("$SRV.{verb}.{name}"), format!("$SRV.{verb}.{name}.{}", bridge.node)]
        {
            subs.push(client.subscribe(subject).await.map_err(|e| e.to_string())?);
        }
    }
    Ok(Requests(futures_util::stream::select_all(subs)))
}

/// Answers discovery requests until the subscriptions end (the task is dropped with the
/// I/O thread's runtime).
pub(super) async fn answer(mut requests: Requests, client: Client, bridge: Arc<Bridge>, inner: Weak<Inner>) {
    let me = Service {
        name: service_name(&bridge.cluster),
        cluster: bridge.cluster.clone(),
        node: bridge.node.clone(),
        started: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
    };
    let mut window = (Instant::now(), 0u32);
    while let Some(m) = requests.0.next().await {
        let refused = || bridge.counters.discovery_refused.fetch_add(1, Ordering::Relaxed);
        let Some(reply) = m.reply.clone().filter(|r| wire::answerable(r)) else {
            refused();
            continue;
        };
        let now = Instant::now();
        if now.duration_since(window.0) >= Duration::from_secs(1) {
            window = (now, 0);
        }
        if window.1 >= ANSWERS_PER_SECOND {
            refused();
            continue;
        }
        window.1 += 1;
        let Some(inner) = inner.upgrade() else { return };
        let max = client.server_info().max_payload.saturating_sub(PAYLOAD_SLACK);
        let Some(body) = me.answer(&m, &inner, max) else {
            refused();
            continue;
        };
        drop(inner);
        // Bounded: while the client reconnects it stops taking publishes.
        let _ = tokio::time::timeout(Duration::from_secs(1), client.publish(reply, body.into())).await;
        // The loop shares this thread: let it run between answers.
        tokio::task::yield_now().await;
    }
}

/// What a node says about itself.
struct Service {
    name: String,
    cluster: String,
    node: String,
    /// When the node joined, RFC 3339.
    started: String,
}

#[derive(Serialize)]
struct Identity<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    name: &'a str,
    id: &'a str,
    version: &'static str,
    metadata: BTreeMap<&'static str, String>,
}

#[derive(Serialize)]
struct Info<'a, E> {
    #[serde(flatten)]
    identity: Identity<'a>,
    description: String,
    endpoints: &'a [E],
}

#[derive(Serialize)]
struct Stats<'a, E> {
    #[serde(flatten)]
    identity: Identity<'a>,
    started: &'a str,
    endpoints: &'a [E],
}

/// What `INFO` and `STATS` both say of an endpoint.
#[derive(Serialize)]
struct Endpoint {
    /// The escaped id.
    name: String,
    subject: String,
    queue_group: &'static str,
}

#[derive(Serialize)]
struct EndpointInfo {
    #[serde(flatten)]
    endpoint: Endpoint,
    metadata: BTreeMap<&'static str, String>,
}

#[derive(Serialize)]
struct EndpointStats {
    #[serde(flatten)]
    endpoint: Endpoint,
    num_requests: u64,
    num_errors: u64,
    last_error: &'static str,
    /// Nanoseconds (not measured).
    processing_time: u64,
    average_processing_time: u64,
    data: EndpointData,
}

/// The component's other counters, in a `STATS` endpoint's `data`.
#[derive(Serialize)]
struct EndpointData {
    received: u64,
    handled: u64,
    failed: u64,
    dead_lettered: u64,
    rejected_full: u64,
    mailbox_len: usize,
    mailbox_capacity: usize,
}

impl Service {
    fn identity(&self, kind: &'static str) -> Identity<'_> {
        Identity {
            kind,
            name: &self.name,
            id: &self.node,
            version: env!("CARGO_PKG_VERSION"),
            metadata: BTreeMap::new(),
        }
    }

    /// The JSON answer to request `m` (`None`: not a verb this node answers), at most
    /// `max` bytes.
    fn answer(&self, m: &Message, inner: &Inner, max: usize) -> Option<Vec<u8>> {
        let verb = m.subject.as_str().strip_prefix("$SRV.")?.split('.').next()?;
        let json = match verb {
            "PING" => serde_json::to_vec(&self.identity("io.nats.micro.v1.ping_response")),
            "INFO" => {
                let endpoints: Vec<EndpointInfo> = self
                    .serving(inner)
                    .map(|(endpoint, id, _)| EndpointInfo { endpoint, metadata: BTreeMap::from([("component", id)]) })
                    .collect();
                fitted(
                    &endpoints,
                    max,
                    |endpoints, identity| {
                        let description =
                            format!("The components node {} of switchyard cluster {} serves", self.node, self.cluster);
                        serde_json::to_vec(&Info { identity, description, endpoints })
                    },
                    || self.identity("io.nats.micro.v1.info_response"),
                )
            }
            "STATS" => {
                let endpoints: Vec<EndpointStats> = self
                    .serving(inner)
                    .map(|(endpoint, _, s)| EndpointStats {
                        endpoint,
                        num_requests: s.received,
                        num_errors: s.failed,
                        last_error: "",
                        processing_time: 0,
                        average_processing_time: 0,
                        data: EndpointData {
                            received: s.received,
                            handled: s.handled,
                            failed: s.failed,
                            dead_lettered: s.dead_lettered,
                            rejected_full: s.rejected_full,
                            mailbox_len: s.mailbox_len,
                            mailbox_capacity: s.mailbox_capacity,
                        },
                    })
                    .collect();
                fitted(
                    &endpoints,
                    max,
                    |endpoints, identity| serde_json::to_vec(&Stats { identity, started: &self.started, endpoints }),
                    || self.identity("io.nats.micro.v1.stats_response"),
                )
            }
            _ => return None,
        };
        json.ok().filter(|j| j.len() <= max)
    }

    /// The components this node serves (registered here and not stopped), in id order:
    /// each one's endpoint, id and counters.
    fn serving<'a>(
        &'a self,
        inner: &'a Inner,
    ) -> impl Iterator<Item = (Endpoint, String, ComponentStatsSnapshot)> + 'a {
        inner.component_ids().into_iter().filter_map(move |id| {
            let stats = inner.component_stats(&id).filter(|s| !s.closed)?;
            let endpoint = Endpoint {
                name: subject::escape(id.as_str()),
                subject: subject::component(&self.cluster, id.as_str()),
                queue_group: subject::QUEUE_GROUP,
            };
            Some((endpoint, id.as_str().to_string(), stats))
        })
    }
}

/// `render`s the answer with as many of `endpoints` as fit in `max` bytes, saying in the
/// metadata how many were left out.
fn fitted<'a, E: Serialize>(
    endpoints: &'a [E],
    max: usize,
    render: impl Fn(&'a [E], Identity<'a>) -> serde_json::Result<Vec<u8>>,
    identity: impl Fn() -> Identity<'a>,
) -> serde_json::Result<Vec<u8>> {
    let all = render(endpoints, identity())?;
    if all.len() <= max {
        return Ok(all);
    }
    // The room the rest takes, then endpoints in order while they fit.
    let mut room = max.saturating_sub(render(&[], identity())?.len() + 64);
    let mut n = 0;
    for e in endpoints {
        let len = serde_json::to_vec(e)?.len() + 1;
        if len > room {
            break;
        }
        room -= len;
        n += 1;
    }
    let mut id = identity();
    id.metadata.insert("endpoints_omitted", (endpoints.len() - n).to_string());
    render(&endpoints[..n], id)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn service() -> Service {
        Service {
            name: service_name("demo"),
            cluster: "demo".into(),
            node: "a".into(),
            started: "2024-01-02T03:04:05Z".into(),
        }
    }

    #[test]
    fn the_service_name_is_a_valid_micro_name() {
        let name = service_name("demo-1_x");
        assert_eq!(name, "switchyard-demo-1_x");
        // ADR-32: a service name is `[A-Za-z0-9_-]+`, as a cluster name is.
        assert!(name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    }

    #[test]
    fn an_answer_too_large_leaves_endpoints_out_and_says_how_many() {
        let s = service();
        let endpoints: Vec<EndpointInfo> = (0..100)
            .map(|i| EndpointInfo {
                endpoint: Endpoint {
                    name: format!("c{i}"),
                    subject: subject::component("demo", &format!("c{i}")),
                    queue_group: subject::QUEUE_GROUP,
                },
                metadata: BTreeMap::new(),
            })
            .collect();
        let render =
            |endpoints, identity| serde_json::to_vec(&Info { identity, description: String::new(), endpoints });
        let identity = || s.identity("io.nats.micro.v1.info_response");
        let whole = fitted(&endpoints, usize::MAX, render, identity).unwrap();
        let cut = fitted(&endpoints, whole.len() / 2, render, identity).unwrap();
        assert!(cut.len() <= whole.len() / 2, "{} > {}", cut.len(), whole.len() / 2);
        let v: serde_json::Value = serde_json::from_slice(&cut).unwrap();
        let kept = v["endpoints"].as_array().unwrap().len();
        assert!(kept > 0 && kept < 100, "{kept}");
        assert_eq!(v["metadata"]["endpoints_omitted"], (100 - kept).to_string());
        assert_eq!(v["type"], "io.nats.micro.v1.info_response");
    }
}
