//! The binary frames of a link batch and of its acknowledgement (`session.rs`).
//!
//! A batch's payload is its messages, each a frame: a `u32` length, then the envelope,
//! little-endian throughout:
//!
//! | field | encoding |
//! |---|---|
//! | message type | `u8`: 0 fire-and-forget, 1 request, 2 response, 3 publish |
//! | flags | `u8`: bit 0 a topic follows, bit 1 a correlation id follows |
//! | `from`, `to`, `message_id` | each a `u16` length and the UTF-8 bytes |
//! | `correlation_id`, `topic` | the same, when the flags say so |
//! | `codec` | `u64` |
//! | `timestamp` | `i64` microseconds since the Unix epoch (the time travels to the microsecond) |
//! | `payload` | a `u32` length and the bytes |
//!
//! A frame that cannot be read (a bad id, a length past its end) is refused on its own
//! (`invalid`): the length in front of each frame tells where the next begins. An
//! acknowledgement's payload lists the refusals: a `u32` count, then each a `u64` sequence
//! number, the status and the text (each a `u16` length and UTF-8, the text bounded).
//!
//! Links run between nodes of one cluster only (the nodes' own account): this is not the
//! wire a plain NATS client speaks (that is `wire.rs`, headers and a raw payload).

use std::collections::BTreeMap;

use bytes::{BufMut, BytesMut};
use chrono::{DateTime, Utc};

use super::session::{Refusal, Seq};
use crate::envelope::{MessageEnvelope, MessageType};
use crate::id::ComponentId;

/// The bytes of a frame besides its ids, topic and payload.
pub(crate) const FRAME_OVERHEAD: usize = 4 + 2 + 2 * 5 + 8 + 8 + 4;

/// Longest status or text of a refusal in an acknowledgement.
const MAX_REFUSAL_TEXT: usize = 1024;

fn type_code(t: MessageType) -> u8 {
    match t {
        MessageType::FireAndForget => 0,
        MessageType::Request => 1,
        MessageType::Response => 2,
        MessageType::Publish => 3,
    }
}

fn type_of(code: u8) -> Option<MessageType> {
    Some(match code {
        0 => MessageType::FireAndForget,
        1 => MessageType::Request,
        2 => MessageType::Response,
        3 => MessageType::Publish,
        _ => return None,
    })
}

/// The bytes `env` takes in a batch.
pub(crate) fn size(env: &MessageEnvelope) -> usize {
    FRAME_OVERHEAD
        + env.from.as_str().len()
        + env.to.as_str().len()
        + env.message_id.len()
        + env.correlation_id.as_ref().map_or(0, |c| c.len())
        + env.topic.as_ref().map_or(0, String::len)
        + env.payload.len()
}

fn put_str(out: &mut BytesMut, s: &str) {
    // Ids are at most `MAX_ID_LEN` bytes and message ids and topics are bounded before they
    // reach a link (`wire::can_carry`); a longer text is cut rather than wrapped.
    let bytes = &s.as_bytes()[..s.len().min(u16::MAX as usize)];
    out.put_u16_le(bytes.len() as u16);
    out.put_slice(bytes);
}

/// Appends `env` to a batch as one frame.
pub(crate) fn encode(env: &MessageEnvelope, out: &mut BytesMut) {
    let start = out.len();
    out.put_u32_le(0); // the length, filled in below
    out.put_u8(type_code(env.message_type));
    out.put_u8(u8::from(env.topic.is_some()) | (u8::from(env.correlation_id.is_some()) << 1));
    put_str(out, env.from.as_str());
    put_str(out, env.to.as_str());
    put_str(out, &env.message_id);
    if let Some(c) = &env.correlation_id {
        put_str(out, c);
    }
    if let Some(t) = &env.topic {
        put_str(out, t);
    }
    out.put_u64_le(env.codec);
    out.put_i64_le(env.timestamp.timestamp_micros());
    out.put_u32_le(u32::try_from(env.payload.len()).unwrap_or(u32::MAX));
    out.put_slice(&env.payload);
    let len = u32::try_from(out.len() - start - 4).unwrap_or(u32::MAX);
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
}

/// A reader over a byte slice that fails instead of panicking.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.bytes.len() < n {
            return None;
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Option<u32> {
        self.take(4).map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
    }

    fn u64(&mut self) -> Option<u64> {
        self.take(8).map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }

    fn str(&mut self) -> Option<&'a str> {
        let n = self.u16()? as usize;
        std::str::from_utf8(self.take(n)?).ok()
    }
}

/// The frames of a batch, in order: each an envelope, or why it cannot be read. Stops at
/// a length that runs past the batch (what follows cannot be told apart).
pub(crate) fn decode(batch: &[u8]) -> impl Iterator<Item = Result<MessageEnvelope, String>> + '_ {
    let mut r = Reader { bytes: batch };
    std::iter::from_fn(move || {
        if r.bytes.is_empty() {
            return None;
        }
        let Some(body) = r.u32().and_then(|n| r.take(n as usize)) else {
            r.bytes = &[];
            return Some(Err("a frame's length runs past the batch".to_string()));
        };
        Some(envelope(body).ok_or_else(|| "a frame that is not an envelope".to_string()))
    })
}

fn envelope(body: &[u8]) -> Option<MessageEnvelope> {
    let mut r = Reader { bytes: body };
    let message_type = type_of(r.u8()?)?;
    let flags = r.u8()?;
    let from = ComponentId::new(r.str()?).ok()?;
    let to = ComponentId::new(r.str()?).ok()?;
    let message_id = r.str()?.into();
    let correlation_id = if flags & 2 != 0 { Some(r.str()?.into()) } else { None };
    let topic = if flags & 1 != 0 { Some(r.str()?.to_string()) } else { None };
    let codec = r.u64()?;
    let timestamp: DateTime<Utc> = DateTime::from_timestamp_micros(r.u64()? as i64)?;
    let n = r.u32()? as usize;
    let payload = r.take(n)?.to_vec();
    if !r.bytes.is_empty() {
        return None;
    }
    Some(MessageEnvelope { message_type, from, to, topic, payload, codec, message_id, correlation_id, timestamp })
}

/// An acknowledgement's payload: its refusals.
pub(crate) fn encode_refusals(refused: &BTreeMap<Seq, Refusal>) -> BytesMut {
    let mut out = BytesMut::new();
    out.put_u32_le(u32::try_from(refused.len()).unwrap_or(u32::MAX));
    for (seq, (status, text)) in refused {
        out.put_u64_le(*seq);
        put_str(&mut out, status);
        let cut = crate::text::floor_char_boundary(text, MAX_REFUSAL_TEXT);
        put_str(&mut out, &text[..cut]);
    }
    out
}

/// The refusals of an acknowledgement's payload, or `None` if it cannot be read.
pub(crate) fn decode_refusals(payload: &[u8]) -> Option<BTreeMap<Seq, Refusal>> {
    let mut r = Reader { bytes: payload };
    if payload.is_empty() {
        return Some(BTreeMap::new());
    }
    let n = r.u32()?;
    let mut refused = BTreeMap::new();
    for _ in 0..n {
        let seq = r.u64()?;
        let status = r.str()?.to_string();
        let text = r.str()?.to_string();
        refused.insert(seq, (status, text));
    }
    r.bytes.is_empty().then_some(refused)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec;

    fn env(payload: &[u8]) -> MessageEnvelope {
        let id = |s: &str| ComponentId::new(s).unwrap();
        let mut e = MessageEnvelope::new(
            MessageType::FireAndForget,
            id("ingest"),
            id("store"),
            payload.to_vec(),
            codec::CBOR,
            "m-1",
        );
        // A frame carries the time to the microsecond.
        e.timestamp = DateTime::from_timestamp_micros(e.timestamp.timestamp_micros()).expect("a time");
        e
    }

    #[test]
    fn envelopes_survive_a_batch_exactly() {
        let mut with_all = env(b"two").with_topic("t.x");
        with_all.correlation_id = Some("c-9".into());
        with_all.message_type = MessageType::Response;
        let mut out = BytesMut::new();
        for e in [env(b"one"), with_all.clone(), env(b"")] {
            encode(&e, &mut out);
        }
        let back: Vec<MessageEnvelope> = decode(&out).map(|f| f.expect("a frame")).collect();
        assert_eq!(back.len(), 3);
        assert_eq!(back[1], with_all);
        assert_eq!(back[0].payload, b"one");
        assert_eq!(size(&with_all), {
            let mut one = BytesMut::new();
            encode(&with_all, &mut one);
            one.len()
        });
    }

    #[test]
    fn a_bad_frame_is_refused_alone_and_a_truncated_batch_stops() {
        let mut out = BytesMut::new();
        encode(&env(b"first"), &mut out);
        let bad_at = out.len();
        encode(&env(b"second"), &mut out);
        out[bad_at + 4] = 9; // not a message type
        encode(&env(b"third"), &mut out);
        let frames: Vec<_> = decode(&out).collect();
        assert_eq!(frames.len(), 3);
        assert!(frames[0].is_ok() && frames[1].is_err() && frames[2].is_ok());
        let truncated: Vec<_> = decode(&out[..out.len() - 3]).collect();
        assert!(truncated[2].is_err(), "the last frame runs past the end");
        assert_eq!(decode(&[1, 0]).count(), 1, "a length cut short is one error, then the end");
    }

    #[test]
    fn refusals_survive_an_acknowledgement() {
        let mut refused = BTreeMap::new();
        refused.insert(3, ("mailbox_full".to_string(), String::new()));
        refused.insert(9, ("closed".to_string(), "x".repeat(5000)));
        let back = decode_refusals(&encode_refusals(&refused)).expect("readable");
        assert_eq!(back[&3], refused[&3]);
        assert_eq!(back[&9].1.len(), MAX_REFUSAL_TEXT, "a long text is cut");
        assert_eq!(decode_refusals(&[]), Some(BTreeMap::new()));
        assert_eq!(decode_refusals(&[5, 0, 0, 0]), None, "five refusals announced, none there");
    }
}
