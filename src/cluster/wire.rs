//! The wire format: an envelope travels as a NATS message whose payload is the envelope's
//! payload and whose headers carry the other fields, so that any NATS client can send to,
//! request from and answer a component with nothing but the documented subjects and
//! headers.
//!
//! | header | field | when absent (a plain NATS client) |
//! |---|---|---|
//! | `sy-type` | `fire-and-forget`, `request`, `response`, `publish` | `request` if the message has a reply subject, else `fire-and-forget` |
//! | `sy-from` | the sender's id | `nats` |
//! | `sy-message-id` | the message id | a fresh id |
//! | `sy-correlation-id` | the request a response answers | none |
//! | `sy-codec` | the multicodec code, in decimal | raw (`0x55`) |
//! | `sy-topic` | the topic of a publish | none |
//! | `sy-timestamp` | RFC 3339 | the time it arrived |
//! | `sy-timeout-ms` | a request's remaining time, in ms (the receiving node waits at most its `max_request_timeout`) | 30 000 (capped the same way) |
//! | `sy-delivery` | on `sy.<cluster>.d.<id>`: `at-least-once` or `exactly-once` | `at-least-once` |
//! | `Nats-Msg-Id` | on `sy.<cluster>.d.<id>`: the message id again, for the stream's duplicate window | none (no deduplication by the server) |
//!
//! A request with `sy-type: health` asks for the component's health instead (answered with
//! `sy-health`, `sy-node` and, when unhealthy, the reason as the payload; see
//! [`crate::RuntimeHandle::cluster_health`]); its handler runs no message.
//!
//! A node answers only on reply subjects that hold nothing but replies: inboxes
//! (`_INBOX.>`, every NATS client's default) and the server's mapping of a reply that came
//! through a service import (`_R_.>`; see the `cluster` module docs, "Two accounts"). A
//! message whose reply subject is anything else is refused, unanswered and undelivered.
//! Answers on a reply subject carry `sy-status`: `ok`, or the name of what went wrong
//! (`mailbox_full`, `no_such_component`, `closed`, `timed_out`, `handler_failed`, ...;
//! the dead-letter reasons' names), with a text in the payload when it is not `ok`.

use std::time::Duration;

use async_nats::HeaderMap;
use chrono::{DateTime, Utc};

use crate::codec;
use crate::envelope::{DeliveryGuarantee, MessageEnvelope, MessageId, MessageType, new_message_id};
use crate::id::ComponentId;

pub(crate) const TYPE: &str = "sy-type";
pub(crate) const FROM: &str = "sy-from";
pub(crate) const MESSAGE_ID: &str = "sy-message-id";
pub(crate) const CORRELATION_ID: &str = "sy-correlation-id";
pub(crate) const CODEC: &str = "sy-codec";
pub(crate) const TOPIC: &str = "sy-topic";
pub(crate) const TIMESTAMP: &str = "sy-timestamp";
pub(crate) const TIMEOUT_MS: &str = "sy-timeout-ms";
pub(crate) const STATUS: &str = "sy-status";
/// The guarantee of a message on a component's at-least-once subject (`at-least-once`, the
/// default, or `exactly-once`).
pub(crate) const DELIVERY: &str = "sy-delivery";
/// The node a membership message, a link batch or a publish came from.
pub(crate) const NODE: &str = "sy-node";

/// What a message's `sy-*` headers may take of the server's `max_payload`.
pub(crate) const HEADER_ROOM: usize = 4096;

/// The sender id of a message from a plain NATS client.
pub const PLAIN_CLIENT_ID: &str = "nats";

/// A request's time when the sender did not say (a plain NATS client).
pub(crate) const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The status of a successful answer.
pub(crate) const OK: &str = "ok";

fn type_name(t: MessageType) -> &'static str {
    match t {
        MessageType::FireAndForget => "fire-and-forget",
        MessageType::Request => "request",
        MessageType::Response => "response",
        MessageType::Publish => "publish",
    }
}

fn type_of(name: &str) -> Option<MessageType> {
    Some(match name {
        "fire-and-forget" => MessageType::FireAndForget,
        "request" => MessageType::Request,
        "response" => MessageType::Response,
        "publish" => MessageType::Publish,
        _ => return None,
    })
}

/// The headers of `env` (its `to` travels in the subject).
pub(crate) fn headers(env: &MessageEnvelope, timeout: Option<Duration>) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(TYPE, type_name(env.message_type));
    h.insert(FROM, env.from.as_str());
    h.insert(MESSAGE_ID, env.message_id.as_str());
    if let Some(c) = &env.correlation_id {
        h.insert(CORRELATION_ID, c.as_str());
    }
    h.insert(CODEC, env.codec.to_string().as_str());
    if let Some(t) = &env.topic {
        h.insert(TOPIC, t.as_str());
    }
    h.insert(TIMESTAMP, env.timestamp.to_rfc3339().as_str());
    if let Some(t) = timeout {
        // Rounded up: the receiving node must not give up before the requester does.
        h.insert(TIMEOUT_MS, t.as_micros().div_ceil(1000).to_string().as_str());
    }
    h
}

/// Longest topic sent to the cluster (its escaped form goes into the subject, and the
/// server closes a connection whose protocol line is too long).
pub(crate) const MAX_TOPIC_LEN: usize = 256;

/// True when `env` can travel as a NATS message: the fields that become header values hold
/// no CR or LF and no whitespace at either end (header values arrive trimmed: `" a"` would
/// land as `"a"`, another id), and a topic is short enough for a subject.
pub(crate) fn can_carry(env: &MessageEnvelope) -> bool {
    let clean = |s: &str| !s.contains(['\r', '\n']) && s.trim() == s;
    clean(env.from.as_str())
        && clean(&env.message_id)
        && env.correlation_id.as_deref().is_none_or(clean)
        && env.topic.as_deref().is_none_or(|t| clean(t) && t.len() <= MAX_TOPIC_LEN)
}

/// Why an incoming NATS message is not an envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WireError(pub(crate) String);

/// The guarantee of a message read from a component's at-least-once subject.
pub(crate) fn delivery(h: Option<&HeaderMap>) -> Result<DeliveryGuarantee, WireError> {
    match get(h, DELIVERY) {
        None | Some("at-least-once") => Ok(DeliveryGuarantee::AtLeastOnce),
        #[cfg(feature = "exactly-once-delivery")]
        Some("exactly-once") => Ok(DeliveryGuarantee::ExactlyOnce),
        Some(other) => Err(WireError(format!("{DELIVERY}: {other:?} is not a guarantee this node offers"))),
    }
}

/// The name of a guarantee in `sy-delivery`.
pub(crate) fn delivery_name(g: DeliveryGuarantee) -> &'static str {
    if g.is_exactly_once() { "exactly-once" } else { "at-least-once" }
}

fn get<'a>(h: Option<&'a HeaderMap>, name: &str) -> Option<&'a str> {
    h.and_then(|h| h.get(name)).map(|v| v.as_str())
}

/// What an incoming NATS message says, for component `to`.
pub(crate) struct Incoming {
    pub(crate) env: MessageEnvelope,
    /// A request's remaining time (from `sy-timeout-ms`, or the default).
    pub(crate) timeout: Duration,
}

/// The envelope an incoming NATS message carries (see the module docs for defaults).
pub(crate) fn envelope(
    to: ComponentId,
    h: Option<&HeaderMap>,
    payload: &[u8],
    has_reply: bool,
) -> Result<Incoming, WireError> {
    let message_type = match get(h, TYPE) {
        Some(t) => type_of(t).ok_or_else(|| WireError(format!("{TYPE}: unknown message type {t:?}")))?,
        None if has_reply => MessageType::Request,
        None => MessageType::FireAndForget,
    };
    let from = match get(h, FROM) {
        Some(f) => ComponentId::new(f).map_err(|e| WireError(format!("{FROM}: {e}")))?,
        None => ComponentId::new(PLAIN_CLIENT_ID).expect("a valid id"),
    };
    let codec = match get(h, CODEC) {
        Some(c) => c.parse::<u64>().map_err(|_| WireError(format!("{CODEC}: not a decimal number: {c:?}")))?,
        None => codec::RAW,
    };
    let message_id = match get(h, MESSAGE_ID) {
        Some(id) if !id.is_empty() => MessageId::from(id),
        Some(_) => return Err(WireError(format!("{MESSAGE_ID}: empty"))),
        None => new_message_id(),
    };
    let timestamp = match get(h, TIMESTAMP) {
        Some(t) => {
            DateTime::parse_from_rfc3339(t).map_err(|e| WireError(format!("{TIMESTAMP}: {e}")))?.with_timezone(&Utc)
        }
        None => Utc::now(),
    };
    let timeout = match get(h, TIMEOUT_MS) {
        Some(t) => Duration::from_millis(
            t.parse::<u64>().map_err(|_| WireError(format!("{TIMEOUT_MS}: not a number of ms: {t:?}")))?,
        ),
        None => DEFAULT_REQUEST_TIMEOUT,
    };
    let env = MessageEnvelope {
        message_type,
        from,
        to,
        topic: get(h, TOPIC).map(str::to_string),
        payload: payload.to_vec(),
        codec,
        message_id,
        correlation_id: get(h, CORRELATION_ID).map(MessageId::from),
        timestamp,
    };
    Ok(Incoming { env, timeout })
}

/// The prefixes of the reply subjects a node answers: NATS inboxes (every client's default
/// prefix) and the server's own mapping of a reply that came through a service import.
const REPLY_PREFIXES: [&str; 2] = ["_INBOX.", "_R_."];

/// The reply subjects a node answers: a NATS inbox (`_INBOX.<token>...`) or the subject the
/// server mapped a requester's inbox to when the request came through a service import
/// (`_R_.<token>...`, in the exporting account), each token non-empty, with no wildcard and
/// no whitespace. Neither namespace holds anything but replies, so an answer there reaches
/// a requester or nobody; a message whose reply subject is anything else (`$JS.API...`,
/// another component's subject, the directory's) is refused unanswered.
pub(crate) fn answerable(subject: &str) -> bool {
    REPLY_PREFIXES.iter().any(|prefix| {
        subject.strip_prefix(prefix).is_some_and(|rest| {
            rest.split('.').all(|token| {
                !token.is_empty() && !token.contains(|c: char| matches!(c, '*' | '>') || c.is_whitespace())
            })
        })
    })
}

/// The status an answer carries (`ok` when a plain responder sent no status).
pub(crate) fn status(h: Option<&HeaderMap>) -> &str {
    get(h, STATUS).unwrap_or(OK)
}

/// Headers of an answer with `status` (and, for a response, the response's own fields).
pub(crate) fn answer(status: &str, response: Option<&MessageEnvelope>) -> HeaderMap {
    let mut h = match response {
        Some(env) => headers(env, None),
        None => HeaderMap::new(),
    };
    h.insert(STATUS, status);
    h
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn id(s: &str) -> ComponentId {
        ComponentId::new(s).unwrap()
    }

    #[test]
    fn an_envelope_survives_the_trip_through_headers() {
        let mut env = MessageEnvelope::new(MessageType::Request, id("a"), id("b"), b"hi".to_vec(), codec::JSON, "m-1")
            .with_topic("t.x");
        env.correlation_id = Some("c-9".into());
        let h = headers(&env, Some(Duration::from_millis(1500)));
        let got = envelope(id("b"), Some(&h), b"hi", true).unwrap();
        assert_eq!(got.env, env);
        assert_eq!(got.timeout, Duration::from_millis(1500));
    }

    #[test]
    fn a_plain_client_message_gets_the_documented_defaults() {
        let req = envelope(id("b"), None, b"x", true).unwrap().env;
        assert_eq!((req.message_type, req.from.as_str(), req.codec), (MessageType::Request, "nats", codec::RAW));
        assert!(!req.message_id.is_empty());
        let ff = envelope(id("b"), None, b"x", false).unwrap();
        assert_eq!(ff.env.message_type, MessageType::FireAndForget);
        assert_eq!(ff.timeout, DEFAULT_REQUEST_TIMEOUT);
    }

    #[test]
    fn only_inboxes_and_the_servers_reply_mapping_are_answered() {
        for ok in ["_INBOX.abc", "_INBOX.app-1.x.y", "_R_.bF51Zv.wHlCSP", "_R_.a.b.c.T"] {
            assert!(answerable(ok), "{ok}");
        }
        for bad in [
            "$JS.API.STREAM.PURGE.sy-demo",
            "sy.demo.c.other",
            "_INBOX",
            "_INBOX.",
            "_R_",
            "_R_.",
            "_R_.>",
            "_R_.*.x",
            "_R_..x",
            "_INBOX.a..b",
            "_INBOX.a.",
            "_INBOX.a b",
            "_INBOX.a\tb",
            "_INBOX.a*",
            "_r_.a.b",
            "x_INBOX.a",
        ] {
            assert!(!answerable(bad), "{bad}");
        }
    }

    #[test]
    fn bad_headers_are_named_in_the_error() {
        for (name, value) in [(TYPE, "shout"), (FROM, "has space"), (CODEC, "0x55"), (TIMESTAMP, "yesterday")] {
            let mut h = HeaderMap::new();
            h.insert(name, value);
            let err = envelope(id("b"), Some(&h), b"", false).err().expect("refused");
            assert!(err.0.starts_with(name), "{err:?}");
        }
    }
}
