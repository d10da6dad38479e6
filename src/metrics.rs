//! Metrics through the [`metrics`](https://docs.rs/metrics) crate's facade (the `metrics`
//! feature): the host installs whatever recorder it runs (Prometheus, StatsD, OpenTelemetry,
//! ...) and the engine's figures appear there under the stable names below.
//!
//! Nothing is added to the send path. The engine already keeps every count it reports
//! (per-thread and per-component counters, the mailbox lengths, the pending table); a
//! **scrape** copies them into the recorder: [`crate::RuntimeHandle::record_metrics`] adds
//! to each counter what it grew by since the last scrape (so a component registered again
//! under an id, or a second runtime in the process, adds to the same series) and sets each
//! gauge to its current value. A component's series keep their last values after it is
//! unregistered (the facade has no removal; exporters expire idle series). Call it before
//! each export (the `switchyard run --metrics` endpoint calls it on every request) or on a
//! timer. What happens as it happens is recorded live instead: dead letters per component
//! and reason, and, with [`crate::RuntimeConfig::timing_metrics`] on, the handler-time and
//! request-duration histograms (two clock reads per message and per request: off by
//! default). Live metrics go to the recorder installed when they happen (the `metrics`
//! facade's rule): install it before building the runtime.
//!
//! # Names
//!
//! Counters end in `_total`; durations are in seconds. Per-component metrics carry the
//! label `component` (the id); cluster metrics carry `node`.
//!
//! | name | kind | labels | what |
//! |---|---|---|---|
//! | `switchyard_messages_sent_total` | counter | | send attempts (the accounting identity's left side) |
//! | `switchyard_messages_routed_total` | counter | | messages accepted into a mailbox or reply handle |
//! | `switchyard_messages_handled_total` | counter | | messages a handler (or a host reply handle) completed |
//! | `switchyard_messages_dead_lettered_total` | counter | | messages dead-lettered, any reason |
//! | `switchyard_messages_forwarded_total` | counter | | messages another node took |
//! | `switchyard_send_rejections_total` | counter | `reason` | sends refused with the envelope handed back: `no_such_component`, `mailbox_full`, `closed`, `invalid`, `transport` |
//! | `switchyard_dead_letters_total` | counter | `reason` | dead letters by reason (the dead-letter reasons' names) |
//! | `switchyard_dead_letters_dropped_total` | counter | | dead letters lost to a full dead-letter queue |
//! | `switchyard_redeliveries_total` | counter | | redeliveries of failed at-least-once messages |
//! | `switchyard_requests_timed_out_total` | counter | | requests whose requester got a timeout |
//! | `switchyard_restarts_total` | counter | | component restarts |
//! | `switchyard_components` | gauge | | components registered |
//! | `switchyard_components_by_state` | gauge | `state` | components `running`, `restarting` (in a restart backoff), `stopped` (these add up to `switchyard_components`) |
//! | `switchyard_components_full` | gauge | | components whose mailbox is full now |
//! | `switchyard_ready` | gauge | | 1 when the runtime is ready (`RuntimeHandle::readiness`), else 0 |
//! | `switchyard_pending_requests` | gauge | | requests awaiting an outcome |
//! | `switchyard_timer_entries` | gauge | | entries in the timer (request deadlines, restart backoffs) |
//! | `switchyard_workers` | gauge | `state` | workers `busy` or `idle` (parked, or about to park) |
//! | `switchyard_run_queue_length` | gauge | `worker` | runnable components queued on each worker |
//! | `switchyard_component_received_total` | counter | `component` | messages taken from the mailbox |
//! | `switchyard_component_handled_total` | counter | `component` | messages handled |
//! | `switchyard_component_failed_total` | counter | `component` | failed handler attempts |
//! | `switchyard_component_dead_lettered_total` | counter | `component` | the component's messages dead-lettered |
//! | `switchyard_component_redelivered_total` | counter | `component` | redeliveries |
//! | `switchyard_component_restarts_total` | counter | `component` | restarts |
//! | `switchyard_component_rejected_full_total` | counter | `component` | sends refused by its full mailbox |
//! | `switchyard_component_mailbox_depth` | gauge | `component` | messages in the mailbox now |
//! | `switchyard_component_mailbox_high_water` | gauge | `component` | largest mailbox length seen |
//! | `switchyard_component_mailbox_capacity` | gauge | `component` | mailbox capacity |
//! | `switchyard_component_blocked_senders` | gauge | `component` | senders waiting for room |
//! | `switchyard_component_fuel_consumed_total` | counter | `component` | WASM fuel consumed |
//! | `switchyard_component_wasm_calls_total` | counter | `component` | WASM guest calls |
//! | `switchyard_component_instantiations_total` | counter | `component` | WASM instances made |
//! | `switchyard_component_capability_denials_total` | counter | `component` | host calls refused by capability checks |
//! | `switchyard_component_traps_total` | counter | `component`, `kind` | WASM traps by kind (`out_of_fuel`, `deadline`, ...) |
//! | `switchyard_component_dead_letters_total` | counter (live) | `component`, `reason` | dead letters of the component by reason |
//! | `switchyard_component_handler_seconds` | histogram (live, timing) | `component` | time in the handler per message |
//! | `switchyard_request_duration_seconds` | histogram (live, timing) | `outcome` | a request's time to its outcome: `response`, `timeout`, `failed` |
//! | `switchyard_cluster_connected` | gauge | `node` | 1 while connected to the NATS server |
//! | `switchyard_cluster_forwarded_total` | counter | `node` | messages other nodes took |
//! | `switchyard_cluster_remote_failures_total` | counter | `node` | messages other nodes refused or never confirmed |
//! | `switchyard_cluster_inbound_total` | counter | `node` | messages from other nodes |
//! | `switchyard_cluster_inbound_refused_total` | counter | `node` | of those, refused or malformed |
//! | `switchyard_cluster_published_total` | counter | `node` | publishes sent to the cluster |
//! | `switchyard_cluster_slow_consumer_events_total` | counter | `node` | slow-consumer events |
//! | `switchyard_cluster_reconnects_total` | counter | `node` | reconnections |
//! | `switchyard_cluster_client_rebuilds_total` | counter | `node` | NATS clients made in place of one whose connection task was gone |
//! | `switchyard_cluster_durable_offers_total` | counter | `node` | at-least-once offers from the stream |
//! | `switchyard_cluster_durable_redelivered_total` | counter | `node` | of those, offers after the first |
//! | `switchyard_cluster_durable_returned_total` | counter | `node` | at-least-once messages given back to the stream |
//! | `switchyard_cluster_permission_denied_total` | counter | `node` | subscriptions and publishes the server refused for want of a permission |
//! | `switchyard_cluster_link_batches_total` | counter | `node` | batches of one-way messages sent on links to other nodes |
//! | `switchyard_cluster_link_resends_total` | counter | `node` | of those, batches sent again |
//! | `switchyard_cluster_state_fetches_total` | counter | `node` | fetches of another node's ids |
//! | `switchyard_cluster_nodes_expired_total` | counter | `node` | other nodes forgotten for their silence |
//! | `switchyard_cluster_directory_refused_total` | counter | `node` | membership messages dropped or cut at a bound, or malformed |
//! | `switchyard_cluster_warming` | gauge | `node` | 1 for a heartbeat after joining (sends to unknown ids wait for membership) |
//! | `switchyard_cluster_remote_nodes` | gauge | `node` | other nodes in the directory |
//! | `switchyard_cluster_remote_components` | gauge | `node` | ids hosted only by other nodes |

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use metrics::{Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};

use crate::deadletter::{DeadLetterReason, REASON_NAMES};
use crate::id::ComponentId;
use crate::runtime::Inner;

/// What a metric is, for its description.
#[derive(Clone, Copy)]
enum Kind {
    Counter,
    Gauge,
    Histogram(Unit),
}

/// Every metric: name, kind, help text (what Prometheus shows as `# HELP`).
const METRICS: &[(&str, Kind, &str)] = &[
    ("switchyard_messages_sent_total", Kind::Counter, "Send attempts."),
    ("switchyard_messages_routed_total", Kind::Counter, "Messages accepted into a mailbox or reply handle."),
    ("switchyard_messages_handled_total", Kind::Counter, "Messages a handler or host reply handle completed."),
    ("switchyard_messages_dead_lettered_total", Kind::Counter, "Messages dead-lettered, any reason."),
    ("switchyard_messages_forwarded_total", Kind::Counter, "Messages another node took."),
    ("switchyard_send_rejections_total", Kind::Counter, "Sends refused with the envelope handed back, by reason."),
    ("switchyard_dead_letters_total", Kind::Counter, "Dead letters by reason."),
    ("switchyard_dead_letters_dropped_total", Kind::Counter, "Dead letters lost to a full dead-letter queue."),
    ("switchyard_redeliveries_total", Kind::Counter, "Redeliveries of failed at-least-once messages."),
    ("switchyard_requests_timed_out_total", Kind::Counter, "Requests whose requester got a timeout."),
    ("switchyard_restarts_total", Kind::Counter, "Component restarts."),
    ("switchyard_components", Kind::Gauge, "Components registered."),
    ("switchyard_components_by_state", Kind::Gauge, "Components running, restarting or stopped."),
    ("switchyard_components_full", Kind::Gauge, "Components whose mailbox is full now."),
    ("switchyard_ready", Kind::Gauge, "1 when the runtime is ready, else 0."),
    ("switchyard_pending_requests", Kind::Gauge, "Requests awaiting an outcome."),
    ("switchyard_timer_entries", Kind::Gauge, "Entries in the timer (deadlines, restart backoffs)."),
    ("switchyard_workers", Kind::Gauge, "Worker threads busy or idle."),
    ("switchyard_run_queue_length", Kind::Gauge, "Runnable components queued on each worker."),
    ("switchyard_component_received_total", Kind::Counter, "Messages taken from the component's mailbox."),
    ("switchyard_component_handled_total", Kind::Counter, "Messages the component handled."),
    ("switchyard_component_failed_total", Kind::Counter, "Failed handler attempts."),
    ("switchyard_component_dead_lettered_total", Kind::Counter, "The component's messages dead-lettered."),
    ("switchyard_component_redelivered_total", Kind::Counter, "Redeliveries to the component."),
    ("switchyard_component_restarts_total", Kind::Counter, "Restarts of the component."),
    ("switchyard_component_rejected_full_total", Kind::Counter, "Sends refused by the component's full mailbox."),
    ("switchyard_component_mailbox_depth", Kind::Gauge, "Messages in the component's mailbox now."),
    ("switchyard_component_mailbox_high_water", Kind::Gauge, "Largest mailbox length seen."),
    ("switchyard_component_mailbox_capacity", Kind::Gauge, "The component's mailbox capacity."),
    ("switchyard_component_blocked_senders", Kind::Gauge, "Senders waiting for room in the mailbox."),
    ("switchyard_component_fuel_consumed_total", Kind::Counter, "WASM fuel consumed."),
    ("switchyard_component_wasm_calls_total", Kind::Counter, "WASM guest calls."),
    ("switchyard_component_instantiations_total", Kind::Counter, "WASM instances made."),
    ("switchyard_component_capability_denials_total", Kind::Counter, "Host calls refused by capability checks."),
    ("switchyard_component_traps_total", Kind::Counter, "WASM traps by kind."),
    ("switchyard_component_dead_letters_total", Kind::Counter, "Dead letters of the component by reason."),
    (HANDLER_SECONDS, Kind::Histogram(Unit::Seconds), "Time in the handler per message."),
    (REQUEST_SECONDS, Kind::Histogram(Unit::Seconds), "A request's time to its outcome."),
    ("switchyard_cluster_connected", Kind::Gauge, "1 while connected to the NATS server."),
    ("switchyard_cluster_forwarded_total", Kind::Counter, "Messages other nodes took."),
    ("switchyard_cluster_remote_failures_total", Kind::Counter, "Messages other nodes refused or never confirmed."),
    ("switchyard_cluster_inbound_total", Kind::Counter, "Messages from other nodes."),
    ("switchyard_cluster_inbound_refused_total", Kind::Counter, "Messages from other nodes refused or malformed."),
    ("switchyard_cluster_published_total", Kind::Counter, "Publishes sent to the cluster."),
    ("switchyard_cluster_slow_consumer_events_total", Kind::Counter, "Slow-consumer events."),
    ("switchyard_cluster_reconnects_total", Kind::Counter, "Reconnections to the server."),
    (
        "switchyard_cluster_client_rebuilds_total",
        Kind::Counter,
        "NATS clients made in place of one whose connection task was gone.",
    ),
    ("switchyard_cluster_durable_offers_total", Kind::Counter, "At-least-once offers from the stream."),
    ("switchyard_cluster_durable_redelivered_total", Kind::Counter, "At-least-once offers after the first."),
    ("switchyard_cluster_durable_returned_total", Kind::Counter, "At-least-once messages given back to the stream."),
    (
        "switchyard_cluster_permission_denied_total",
        Kind::Counter,
        "Subscriptions and publishes the server refused for want of a permission.",
    ),
    ("switchyard_cluster_link_batches_total", Kind::Counter, "Batches of one-way messages sent on links."),
    ("switchyard_cluster_link_resends_total", Kind::Counter, "Batches sent on links again."),
    ("switchyard_cluster_state_fetches_total", Kind::Counter, "Fetches of another node's ids."),
    ("switchyard_cluster_nodes_expired_total", Kind::Counter, "Other nodes forgotten for their silence."),
    (
        "switchyard_cluster_directory_refused_total",
        Kind::Counter,
        "Membership messages dropped or cut at a bound, or malformed.",
    ),
    ("switchyard_cluster_warming", Kind::Gauge, "1 for a heartbeat after joining."),
    ("switchyard_cluster_remote_nodes", Kind::Gauge, "Other nodes in the directory."),
    ("switchyard_cluster_remote_components", Kind::Gauge, "Ids hosted only by other nodes."),
];

/// The handler-time histogram's name.
pub const HANDLER_SECONDS: &str = "switchyard_component_handler_seconds";
/// The request-duration histogram's name.
pub const REQUEST_SECONDS: &str = "switchyard_request_duration_seconds";

/// The names of every metric this module records, in the documented order.
pub fn names() -> impl Iterator<Item = &'static str> {
    METRICS.iter().map(|(name, _, _)| *name)
}

/// Describes every metric to the installed recorder (help text, units).
fn describe() {
    for &(name, kind, help) in METRICS {
        match kind {
            Kind::Counter => describe_counter!(name, help),
            Kind::Gauge => describe_gauge!(name, help),
            Kind::Histogram(unit) => describe_histogram!(name, unit, help),
        }
    }
}

/// The handler-time histogram of component `id` (a handle kept by the component: looked
/// up once, recorded per message).
pub(crate) fn handler_histogram(id: &ComponentId) -> metrics::Histogram {
    histogram!(HANDLER_SECONDS, "component" => id.as_str().to_string())
}

/// Records a request's time to its outcome.
pub(crate) fn request_finished(took: Duration, outcome: &'static str) {
    histogram!(REQUEST_SECONDS, "outcome" => outcome).record(took.as_secs_f64());
}

/// Counts a dead letter of component `id` (live).
pub(crate) fn component_dead_letter(id: &ComponentId, reason: &DeadLetterReason) {
    counter!("switchyard_component_dead_letters_total", "component" => id.as_str().to_string(), "reason" => reason.name())
        .increment(1);
}

/// What this runtime's scrapes exported last, per counter series. The facade's counters
/// only go up (and `absolute` keeps the largest value ever set), so each scrape adds what
/// a count grew by since the last one: a component registered again under the same id, or
/// a second runtime in the process, adds to the same series instead of being hidden by the
/// larger earlier value. Keys name the series and, for a component, its incarnation: a
/// number given at registration and never reused in the runtime (an address would be: the
/// allocator hands a new registration the memory of one unregistered before it).
///
/// A component's counts are exported while it is registered and while it drains after
/// unregistering; when it leaves the closing list, what it counted since the last scrape
/// is added at once (`Inner::retire_metrics`) and its keys are forgotten, so nothing it
/// counted is lost and the map holds only components that still exist.
#[derive(Default)]
pub(crate) struct Exported {
    last: parking_lot::Mutex<HashMap<String, u64>>,
    /// The next incarnation number. `std`'s atomic: metrics are never model-checked.
    incarnations: std::sync::atomic::AtomicU64,
}

impl Exported {
    /// A new incarnation number.
    pub(crate) fn next_incarnation(&self) -> u64 {
        // Relaxed: a unique number is all that is needed; it orders nothing.
        self.incarnations.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }
}

/// One scrape's counter exports.
struct Round<'a> {
    last: &'a mut HashMap<String, u64>,
    seen: HashSet<String>,
}

impl Round<'_> {
    /// Adds to `counter` what `now` grew by since this key's last export.
    fn count(&mut self, key: String, counter: metrics::Counter, now: u64) {
        let before = self.last.insert(key.clone(), now).unwrap_or(0);
        counter.increment(now.saturating_sub(before));
        self.seen.insert(key);
    }
}

impl Inner {
    /// Copies every counter and gauge into the installed recorder.
    pub(crate) fn record_metrics(&self) {
        describe();
        let mut last = self.exported.last.lock();
        let mut round = Round { last: &mut last, seen: HashSet::new() };
        let s = self.snapshot();
        for (name, n) in [
            ("switchyard_messages_sent_total", s.messages_sent),
            ("switchyard_messages_routed_total", s.messages_routed),
            ("switchyard_messages_handled_total", s.messages_handled),
            ("switchyard_messages_dead_lettered_total", s.messages_dead_lettered),
            ("switchyard_messages_forwarded_total", s.messages_forwarded),
            ("switchyard_dead_letters_dropped_total", s.dead_letters_dropped),
            ("switchyard_redeliveries_total", s.redeliveries),
            ("switchyard_requests_timed_out_total", s.requests_timed_out),
            ("switchyard_restarts_total", s.restarts),
        ] {
            round.count(name.to_string(), counter!(name), n);
        }
        for (reason, n) in [
            ("no_such_component", s.components_not_found),
            ("mailbox_full", s.mailbox_send_failures),
            ("closed", s.closed_rejections),
            ("invalid", s.invalid_rejections),
            ("transport", s.transport_rejections),
        ] {
            let key = format!("rejections {reason}");
            round.count(key, counter!("switchyard_send_rejections_total", "reason" => reason), n);
        }
        for (reason, n) in REASON_NAMES.iter().zip(s.dead_letters_by_reason) {
            let key = format!("dead letters {reason}");
            round.count(key, counter!("switchyard_dead_letters_total", "reason" => *reason), n);
        }
        gauge!("switchyard_components").set(self.component_count() as f64);
        let r = self.readiness();
        for (state, n) in [("running", r.running), ("restarting", r.restarting.len()), ("stopped", r.stopped.len())] {
            gauge!("switchyard_components_by_state", "state" => state).set(n as f64);
        }
        gauge!("switchyard_components_full").set(r.full.len() as f64);
        gauge!("switchyard_ready").set(if r.ready { 1.0 } else { 0.0 });
        gauge!("switchyard_pending_requests").set(self.pending_requests() as f64);
        gauge!("switchyard_timer_entries").set(self.timer_entries() as f64);
        let workers = self.worker_states();
        let idle = workers.iter().filter(|(_, idle)| *idle).count();
        gauge!("switchyard_workers", "state" => "idle").set(idle as f64);
        gauge!("switchyard_workers", "state" => "busy").set((workers.len() - idle) as f64);
        for (i, (queued, _)) in workers.iter().enumerate() {
            gauge!("switchyard_run_queue_length", "worker" => i.to_string()).set(*queued as f64);
        }
        for comp in self.registry.components() {
            let snapshot = comp.snapshot();
            record_component_counters(&mut round, comp.incarnation, &comp.id, &snapshot);
            record_component_gauges(&comp.id, &snapshot);
        }
        // Unregistered components still count what they drain (the gauges of their id are
        // the registered incarnation's, if there is one).
        for comp in self.registry.closing_components() {
            record_component_counters(&mut round, comp.incarnation, &comp.id, &comp.snapshot());
        }
        #[cfg(all(feature = "cluster", not(loom)))]
        if let Some(bridge) = self.cluster.get() {
            record_cluster(&mut round, &bridge.stats());
        }
    }

    /// A component left the closing list for good: adds what it counted since the last
    /// scrape to its series, and forgets its keys.
    pub(crate) fn retire_metrics(&self, comp: &crate::component::Component) {
        let mut last = self.exported.last.lock();
        let mut round = Round { last: &mut last, seen: HashSet::new() };
        record_component_counters(&mut round, comp.incarnation, &comp.id, &comp.snapshot());
        let retired = std::mem::take(&mut round.seen);
        last.retain(|k, _| !retired.contains(k));
    }
}

/// The key of one counter of one component incarnation.
fn component_key(name: &str, incarnation: u64) -> String {
    format!("{name} #{incarnation}")
}

fn record_component_counters(
    round: &mut Round<'_>,
    incarnation: u64,
    id: &ComponentId,
    c: &crate::ComponentStatsSnapshot,
) {
    let label = || ("component", id.as_str().to_string());
    let counters = [
        ("switchyard_component_received_total", c.received),
        ("switchyard_component_handled_total", c.handled),
        ("switchyard_component_failed_total", c.failed),
        ("switchyard_component_dead_lettered_total", c.dead_lettered),
        ("switchyard_component_redelivered_total", c.redelivered),
        ("switchyard_component_restarts_total", c.restarts),
        ("switchyard_component_rejected_full_total", c.rejected_full),
    ];
    for (name, n) in counters {
        round.count(component_key(name, incarnation), counter!(name, &[label()]), n);
    }
    #[cfg(feature = "wasm")]
    if let Some(w) = &c.wasm {
        for (name, n) in [
            ("switchyard_component_fuel_consumed_total", w.fuel_consumed),
            ("switchyard_component_wasm_calls_total", w.calls),
            ("switchyard_component_instantiations_total", w.instantiations),
            ("switchyard_component_capability_denials_total", w.capability_denials),
        ] {
            round.count(component_key(name, incarnation), counter!(name, &[label()]), n);
        }
        for (kind, n) in crate::TrapKind::ALL.iter().zip(w.traps) {
            let (k, v) = label();
            let key = component_key(&format!("traps {}", kind.name()), incarnation);
            round.count(key, counter!("switchyard_component_traps_total", k => v, "kind" => kind.name()), n);
        }
    }
}

fn record_component_gauges(id: &ComponentId, c: &crate::ComponentStatsSnapshot) {
    let gauges = [
        ("switchyard_component_mailbox_depth", c.mailbox_len as f64),
        ("switchyard_component_mailbox_high_water", c.mailbox_high_water as f64),
        ("switchyard_component_mailbox_capacity", c.mailbox_capacity as f64),
        ("switchyard_component_blocked_senders", c.blocked_senders as f64),
    ];
    for (name, v) in gauges {
        gauge!(name, "component" => id.as_str().to_string()).set(v);
    }
}

#[cfg(all(feature = "cluster", not(loom)))]
fn record_cluster(round: &mut Round<'_>, c: &crate::cluster::ClusterStats) {
    let label = || ("node", c.node.clone());
    gauge!("switchyard_cluster_connected", &[label()]).set(if c.connected { 1.0 } else { 0.0 });
    let counters = [
        ("switchyard_cluster_forwarded_total", c.forwarded),
        ("switchyard_cluster_remote_failures_total", c.remote_failures),
        ("switchyard_cluster_inbound_total", c.inbound),
        ("switchyard_cluster_inbound_refused_total", c.inbound_refused),
        ("switchyard_cluster_published_total", c.published),
        ("switchyard_cluster_slow_consumer_events_total", c.slow_consumer_events),
        ("switchyard_cluster_reconnects_total", c.reconnects),
        ("switchyard_cluster_client_rebuilds_total", c.client_rebuilds),
        ("switchyard_cluster_durable_offers_total", c.durable_inbound),
        ("switchyard_cluster_durable_redelivered_total", c.durable_redelivered),
        ("switchyard_cluster_durable_returned_total", c.durable_returned),
        ("switchyard_cluster_permission_denied_total", c.permission_denied),
        ("switchyard_cluster_link_batches_total", c.link_batches),
        ("switchyard_cluster_link_resends_total", c.link_resends),
        ("switchyard_cluster_state_fetches_total", c.state_fetches),
        ("switchyard_cluster_nodes_expired_total", c.nodes_expired),
        ("switchyard_cluster_directory_refused_total", c.directory_refused),
    ];
    for (name, n) in counters {
        round.count(format!("{name} {}", c.node), counter!(name, &[label()]), n);
    }
    gauge!("switchyard_cluster_warming", &[label()]).set(if c.warming { 1.0 } else { 0.0 });
    gauge!("switchyard_cluster_remote_nodes", &[label()]).set(c.remote_nodes as f64);
    gauge!("switchyard_cluster_remote_components", &[label()]).set(c.remote_components as f64);
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn every_metric_is_in_the_module_docs_table_and_counters_end_in_total() {
        let docs = include_str!("metrics.rs");
        for &(name, kind, help) in METRICS {
            assert!(docs.contains(&format!("//! | `{name}` |")), "{name} is not documented");
            assert!(!help.is_empty());
            if matches!(kind, Kind::Counter) {
                assert!(name.ends_with("_total"), "{name}");
            }
        }
        let documented = docs.lines().filter(|l| l.starts_with("//! | `switchyard_")).count();
        assert_eq!(documented, METRICS.len(), "a documented metric is not recorded");
    }
}
