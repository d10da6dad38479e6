//! Health across nodes: a request with `sy-type: health` on a component's subject asks the
//! node serving it for the component's health, without running its handler on a message.
//! The answer carries `sy-health` (the status's name), `sy-node` (who answered) and, for
//! `unhealthy`, the component's reason as the payload. Any NATS client may ask; the
//! answering node waits at most the request's `sy-timeout-ms` (default one second, capped at
//! its `max_request_timeout`), and answers at most [`MAX_WAITING`] questions at a time.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_nats::{Client, HeaderMap, Message};
use bytes::Bytes;

use super::bridge::Bridge;
use super::wire;
use crate::health::HealthStatus;
use crate::id::ComponentId;
use crate::runtime::Inner;

/// `sy-type` of a health question.
pub(crate) const HEALTH_TYPE: &str = "health";
/// Header of a health answer: the status's name.
pub(crate) const HEALTH: &str = "sy-health";
/// A health question's time when it does not say.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);
/// Health questions a node waits on at once; more are answered `no_answer` at once.
pub(crate) const MAX_WAITING: usize = 64;

/// True when `m` is a health question.
pub(crate) fn is_question(m: &Message) -> bool {
    m.headers.as_ref().and_then(|h| h.get(wire::TYPE)).is_some_and(|t| t.as_str() == HEALTH_TYPE)
}

fn name(status: &HealthStatus) -> &'static str {
    match status {
        HealthStatus::Healthy => "healthy",
        HealthStatus::Unhealthy { .. } => "unhealthy",
        HealthStatus::Restarting => "restarting",
        HealthStatus::Stopped => "stopped",
        HealthStatus::NoSuchComponent => "no_such_component",
        _ => "no_answer",
    }
}

/// The status an answer stands for (`None`: not a health answer).
pub(crate) fn status_of(m: &Message) -> Option<HealthStatus> {
    let h = m.headers.as_ref()?;
    Some(match h.get(HEALTH)?.as_str() {
        "healthy" => HealthStatus::Healthy,
        "unhealthy" => {
            HealthStatus::Unhealthy { reason: crate::text::cap_foreign(String::from_utf8_lossy(&m.payload)) }
        }
        "restarting" => HealthStatus::Restarting,
        "stopped" => HealthStatus::Stopped,
        "no_such_component" => HealthStatus::NoSuchComponent,
        _ => HealthStatus::NoAnswer,
    })
}

/// The node an answer came from.
pub(crate) fn node_of(m: &Message) -> Option<String> {
    m.headers.as_ref()?.get(wire::NODE).map(|v| v.as_str().to_string())
}

/// The headers of a health question with `timeout`.
pub(crate) fn question(timeout: Duration) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(wire::TYPE, HEALTH_TYPE);
    h.insert(wire::TIMEOUT_MS, timeout.as_millis().max(1).to_string().as_str());
    h
}

/// Answers a health question about hosted component `id` on its reply subject (a task of
/// its own: the component's reader goes on).
pub(crate) fn answer(
    client: &Client,
    bridge: &Arc<Bridge>,
    inner: &Arc<Inner>,
    id: &ComponentId,
    m: Message,
    waiting: &Arc<AtomicUsize>,
) {
    let Some(reply) = m.reply.clone() else { return };
    let asked = m
        .headers
        .as_ref()
        .and_then(|h| h.get(wire::TIMEOUT_MS))
        .and_then(|v| v.as_str().parse().ok())
        .map_or(DEFAULT_TIMEOUT, Duration::from_millis)
        .min(bridge.max_request_timeout);
    let probe = match inner.registry.component(id) {
        Some(comp) => inner.probe(&comp),
        None => Err(HealthStatus::NoSuchComponent),
    };
    let (client, node) = (client.clone(), bridge.node.clone());
    let slot = if waiting.fetch_add(1, Ordering::AcqRel) < MAX_WAITING { Some(waiting.clone()) } else { None };
    if slot.is_none() {
        waiting.fetch_sub(1, Ordering::AcqRel);
    }
    tokio::spawn(async move {
        let status = match (probe, &slot) {
            (Err(status), _) => status,
            (Ok(_), None) => HealthStatus::NoAnswer,
            (Ok(probe), Some(_)) => {
                // The probe is answered on a worker thread; looked at with a growing pause.
                let deadline = Instant::now() + asked;
                let mut pause = Duration::from_micros(500);
                loop {
                    if let Some(status) = probe.answered() {
                        break status;
                    }
                    let now = Instant::now();
                    if now >= deadline {
                        break HealthStatus::NoAnswer;
                    }
                    tokio::time::sleep(pause.min(deadline - now)).await;
                    pause = (pause * 2).min(Duration::from_millis(20));
                }
            }
        };
        if let Some(w) = slot {
            w.fetch_sub(1, Ordering::AcqRel);
        }
        let mut h = HeaderMap::new();
        h.insert(wire::STATUS, wire::OK);
        h.insert(HEALTH, name(&status));
        h.insert(wire::NODE, node.as_str());
        let reason = match status {
            HealthStatus::Unhealthy { reason } => Bytes::from(reason),
            _ => Bytes::new(),
        };
        let _ = client.publish_with_headers(reply, h, reason).await;
    });
}
