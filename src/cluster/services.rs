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
//! Anyone on the server may ask, so the answering is bounded in count and in work: one task
//! of its own on the I/O thread, an answer only to an inbox reply subject
//! ([`wire::answerable`]: an inbox or the server's mapping of one through a service
//! import), at most [`ANSWERS_PER_SECOND`] answers a second (a request it does not answer
//! counts in [`super::ClusterStats::discovery_refused`]), and every answer a copy of a
//! summary made beforehand: `INFO`'s again when the set of served components changed,
//! `STATS`' when its counters are older than [`REFRESH`], neither more often than once per
//! [`REFRESH`] (counted in [`super::ClusterStats::discovery_summaries`]). A summary lists
//! the served components in id order while they fit in the server's largest message, and
//! says in its metadata how many it left out (`endpoints_omitted`); making one walks only
//! the components it lists (the served set is kept in id order), so its cost is bounded by
//! the server's largest message, not by the number of components.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use async_nats::{Client, Message, Subscriber};
use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::SelectAll;
use serde::Serialize;

use super::bridge::Bridge;
use super::{subject, wire};
use crate::id::ComponentId;
use crate::runtime::Inner;
use crate::stats::ComponentStatsSnapshot;

/// Answers a node gives in one second; requests past it are dropped (and counted).
pub(crate) const ANSWERS_PER_SECOND: u32 = 64;
/// The most often a summary is made again: `INFO`'s when the served set changed since,
/// `STATS`' when it is older than this.
pub(crate) const REFRESH: Duration = Duration::from_secs(1);
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
    let mut summaries = Summaries::default();
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
        let Some(body) = summaries.answer(&me, &m, &bridge, &inner, max, now) else {
            refused();
            continue;
        };
        drop(inner);
        // Bounded: while the client reconnects it stops taking publishes.
        let _ = tokio::time::timeout(Duration::from_secs(1), client.publish(reply, body)).await;
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

/// The answers a node gives, made beforehand and copied into each answer.
#[derive(Default)]
struct Summaries {
    ping: Option<Bytes>,
    info: Option<Summary>,
    stats: Option<Summary>,
}

/// An `INFO` or `STATS` answer as made at `made`, for the served set after `changes`
/// changes and for answers of at most `max` bytes.
struct Summary {
    body: Bytes,
    made: Instant,
    changes: u64,
    max: usize,
}

impl Summary {
    /// True when it may answer at `now`: made for this `max`, and younger than [`REFRESH`]
    /// or (unless its `counters` move on their own) for the served set as it is.
    fn fits(&self, now: Instant, changes: u64, max: usize, counters: bool) -> bool {
        self.max == max && (now.duration_since(self.made) < REFRESH || (!counters && self.changes == changes))
    }
}

impl Summaries {
    /// The answer to request `m` (`None`: not a verb this node answers, or no answer fits
    /// in `max` bytes), made again first if its summary is out of date.
    fn answer(
        &mut self,
        me: &Service,
        m: &Message,
        bridge: &Bridge,
        inner: &Inner,
        max: usize,
        now: Instant,
    ) -> Option<Bytes> {
        let verb = m.subject.as_str().strip_prefix("$SRV.")?.split('.').next()?;
        let (slot, counters) = match verb {
            "PING" => {
                let ping = self.ping.get_or_insert_with(|| {
                    let identity = me.identity("io.nats.micro.v1.ping_response");
                    serde_json::to_vec(&identity).unwrap_or_default().into()
                });
                return Some(ping.clone()).filter(|p| !p.is_empty() && p.len() <= max);
            }
            "INFO" => (&mut self.info, false),
            "STATS" => (&mut self.stats, true),
            _ => return None,
        };
        let changes = bridge.served.read().changes();
        if !slot.as_ref().is_some_and(|s| s.fits(now, changes, max, counters)) {
            bridge.counters.discovery_summaries.fetch_add(1, Ordering::Relaxed);
            let (body, changes) = me.summary(counters, bridge, inner, max);
            *slot = Some(Summary { body: body.unwrap_or_default().into(), made: now, changes, max });
        }
        slot.as_ref().map(|s| s.body.clone()).filter(|b| !b.is_empty())
    }
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

    /// The `STATS` answer (`counters`) or the `INFO` answer, at most `max` bytes, and the
    /// served set's change count it was made for. Looks at no more components than it can
    /// list: each endpoint's JSON is longer than its id, so no more than the first ids whose
    /// lengths add up to `max` can fit.
    fn summary(&self, counters: bool, bridge: &Bridge, inner: &Inner, max: usize) -> (Option<Vec<u8>>, u64) {
        let (ids, total, changes) = {
            let served = bridge.served.read();
            let mut room = max;
            let ids: Vec<ComponentId> = served
                .iter()
                .take_while(|id| match room.checked_sub(id.as_str().len()) {
                    Some(left) => {
                        room = left;
                        true
                    }
                    None => false,
                })
                .cloned()
                .collect();
            (ids, served.len(), served.changes())
        };
        // A stopped component (its unhosting on its way) is left out, and not counted as
        // omitted either.
        let stopped = Cell::new(0);
        let serving = ids.into_iter().filter_map(|id| match inner.component_stats(&id).filter(|s| !s.closed) {
            Some(stats) => Some((self.endpoint(&id), id, stats)),
            None => {
                stopped.set(stopped.get() + 1);
                None
            }
        });
        let json = if counters {
            let endpoints = serving.map(|(endpoint, _, s)| EndpointStats {
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
            });
            listing(
                endpoints,
                || total - stopped.get(),
                max,
                |endpoints, identity| serde_json::to_vec(&Stats { identity, started: &self.started, endpoints }),
                || self.identity("io.nats.micro.v1.stats_response"),
            )
        } else {
            let endpoints = serving.map(|(endpoint, id, _): (Endpoint, ComponentId, ComponentStatsSnapshot)| {
                EndpointInfo { endpoint, metadata: BTreeMap::from([("component", id.as_str().to_string())]) }
            });
            listing(
                endpoints,
                || total - stopped.get(),
                max,
                |endpoints, identity| {
                    let description =
                        format!("The components node {} of switchyard cluster {} serves", self.node, self.cluster);
                    serde_json::to_vec(&Info { identity, description, endpoints })
                },
                || self.identity("io.nats.micro.v1.info_response"),
            )
        };
        (json.ok().filter(|j| j.len() <= max), changes)
    }

    fn endpoint(&self, id: &ComponentId) -> Endpoint {
        Endpoint {
            name: subject::escape(id.as_str()),
            subject: subject::component(&self.cluster, id.as_str()),
            queue_group: subject::QUEUE_GROUP,
        }
    }
}

/// `render`s the answer with `endpoints`, in order, while they fit in `max` bytes, saying in
/// the metadata how many of `total()` (asked once the listing ended) were left out. Takes
/// from `endpoints` one past the last that fits, no more.
fn listing<'a, E: Serialize>(
    endpoints: impl Iterator<Item = E>,
    total: impl FnOnce() -> usize,
    max: usize,
    render: impl Fn(&[E], Identity<'a>) -> serde_json::Result<Vec<u8>>,
    identity: impl Fn() -> Identity<'a>,
) -> serde_json::Result<Vec<u8>> {
    // The rest of the answer, with the longest count of omitted endpoints it could say.
    let mut rest = identity();
    rest.metadata.insert("endpoints_omitted", usize::MAX.to_string());
    let mut room = max.saturating_sub(render(&[], rest)?.len());
    let mut listed = Vec::new();
    for e in endpoints {
        // Its JSON and the comma before it.
        let len = serde_json::to_vec(&e)?.len() + 1;
        if len > room {
            break;
        }
        room -= len;
        listed.push(e);
    }
    let mut id = identity();
    let omitted = total().saturating_sub(listed.len());
    if omitted > 0 {
        id.metadata.insert("endpoints_omitted", omitted.to_string());
    }
    render(&listed, id)
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

    fn endpoints() -> impl Iterator<Item = EndpointInfo> {
        (0..).map(|i| EndpointInfo {
            endpoint: Endpoint {
                name: format!("c{i}"),
                subject: subject::component("demo", &format!("c{i}")),
                queue_group: subject::QUEUE_GROUP,
            },
            metadata: BTreeMap::new(),
        })
    }

    fn render<'a>(endpoints: &[EndpointInfo], identity: Identity<'a>) -> serde_json::Result<Vec<u8>> {
        serde_json::to_vec(&Info { identity, description: String::new(), endpoints })
    }

    #[test]
    fn an_answer_too_large_leaves_endpoints_out_and_says_how_many() {
        let s = service();
        let identity = || s.identity("io.nats.micro.v1.info_response");
        let whole = listing(endpoints().take(100), || 100, usize::MAX, render, identity).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&whole).unwrap();
        assert_eq!(v["endpoints"].as_array().unwrap().len(), 100);
        assert!(v["metadata"].get("endpoints_omitted").is_none(), "{v}");
        let cut = listing(endpoints().take(100), || 100, whole.len() / 2, render, identity).unwrap();
        assert!(cut.len() <= whole.len() / 2, "{} > {}", cut.len(), whole.len() / 2);
        let v: serde_json::Value = serde_json::from_slice(&cut).unwrap();
        let kept = v["endpoints"].as_array().unwrap().len();
        assert!(kept > 0 && kept < 100, "{kept}");
        assert_eq!(v["metadata"]["endpoints_omitted"], (100 - kept).to_string());
        assert_eq!(v["endpoints"][kept - 1]["name"], format!("c{}", kept - 1), "the first ones, in order");
        assert_eq!(v["type"], "io.nats.micro.v1.info_response");
    }

    #[test]
    fn listing_looks_at_one_endpoint_past_the_last_that_fits_and_no_further() {
        let s = service();
        let looked = Cell::new(0usize);
        let counted = endpoints().inspect(|_| looked.set(looked.get() + 1));
        let total = 1_000_000_000;
        let answer = listing(counted, || total, 64 * 1024, render, || s.identity("t")).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&answer).unwrap();
        let kept = v["endpoints"].as_array().unwrap().len();
        assert!(answer.len() <= 64 * 1024 && kept > 100, "{} bytes, {kept} endpoints", answer.len());
        assert_eq!(looked.get(), kept + 1);
        assert_eq!(v["metadata"]["endpoints_omitted"], (total - kept).to_string());
    }
}
