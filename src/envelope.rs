//! The message envelope and its classifications: [`MessageEnvelope`], [`MessageType`],
//! [`DeliveryGuarantee`]. The multicodec codes and the serde codecs are in [`crate::codec`].

use std::cell::Cell;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::codec::CodecError;
use crate::id::ComponentId;
pub use crate::message_id::MessageId;

/// One message: who sent it, to whom, what it carries and how it is encoded.
///
/// The runtime routes by `to` (or, for [`MessageType::Response`], by `correlation_id`);
/// it never looks inside `payload`. `codec` is a [multicodec](crate::codec) code saying how
/// `payload` is encoded; unknown codes are carried unchanged.
///
/// ```
/// use switchyard::{codec, ComponentId, MessageEnvelope, MessageType};
///
/// let from = ComponentId::new("client")?;
/// let to = ComponentId::new("orders")?;
/// let req = MessageEnvelope::new(MessageType::Request, from, to, b"{}".to_vec(), codec::JSON, "m-1")
///     .with_topic("orders.create");
/// let resp = req.reply_to(b"ok".to_vec(), codec::RAW, "m-2".to_string());
/// assert!(resp.is_response());
/// assert_eq!(resp.to.as_str(), "client");
/// assert_eq!(resp.correlation_id.as_deref(), Some("m-1"));
/// # Ok::<(), switchyard::IdError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageEnvelope {
    /// Which messaging pattern this message belongs to.
    pub message_type: MessageType,
    /// The sender.
    pub from: ComponentId,
    /// The addressee. For [`MessageType::Publish`] the runtime sets it to each subscriber.
    pub to: ComponentId,
    /// The topic, for published messages.
    pub topic: Option<String>,
    /// The bytes carried; never inspected by the runtime.
    pub payload: Vec<u8>,
    /// Multicodec code of `payload` (see [`crate::codec`]).
    pub codec: u64,
    /// Unique id of this message; a response carries it as its `correlation_id`.
    pub message_id: MessageId,
    /// For responses: the `message_id` of the request answered.
    pub correlation_id: Option<MessageId>,
    /// When the envelope was made.
    pub timestamp: DateTime<Utc>,
}

impl MessageEnvelope {
    /// Makes an envelope stamped with the current time, with no topic and no correlation.
    ///
    /// Use [`new_message_id`] when you have no id of your own.
    pub fn new(
        message_type: MessageType,
        from: ComponentId,
        to: ComponentId,
        payload: Vec<u8>,
        codec: u64,
        message_id: impl Into<MessageId>,
    ) -> Self {
        Self {
            message_type,
            from,
            to,
            topic: None,
            payload,
            codec,
            message_id: message_id.into(),
            correlation_id: None,
            timestamp: Utc::now(),
        }
    }

    /// A fire-and-forget message from `from` to `to`, with a fresh message id.
    pub fn fire_and_forget(from: ComponentId, to: ComponentId, payload: Vec<u8>, codec: u64) -> Self {
        Self::new(MessageType::FireAndForget, from, to, payload, codec, new_message_id())
    }

    /// A request from `from` to `to`, with a fresh message id (its response's correlation
    /// id).
    pub fn request(from: ComponentId, to: ComponentId, payload: Vec<u8>, codec: u64) -> Self {
        Self::new(MessageType::Request, from, to, payload, codec, new_message_id())
    }

    /// A publish from `from` on `topic`, with a fresh message id. Its `to` is `from` until
    /// the runtime fans it out (each subscriber's copy is addressed to the subscriber).
    pub fn publish(from: ComponentId, topic: impl Into<String>, payload: Vec<u8>, codec: u64) -> Self {
        Self::new(MessageType::Publish, from.clone(), from, payload, codec, new_message_id()).with_topic(topic)
    }

    /// Decodes the payload into a `T`, by its codec (JSON or CBOR; see [`crate::codec`]).
    ///
    /// # Errors
    /// [`CodecError::Unsupported`] when the payload's code is neither, and
    /// [`CodecError::Decode`] (naming the codec and the type) when the bytes are not a `T`.
    /// Both convert into [`crate::HandlerError`], so a handler can write
    /// `let order: Order = msg.decode()?;`.
    pub fn decode<T: serde::de::DeserializeOwned>(&self) -> Result<T, CodecError> {
        crate::codec::decode(self.codec, &self.payload)
    }

    /// Sets the topic.
    pub fn with_topic(mut self, topic: impl Into<String>) -> Self {
        self.topic = Some(topic.into());
        self
    }

    /// Sets the correlation id.
    pub fn with_correlation_id(mut self, correlation_id: impl Into<MessageId>) -> Self {
        self.correlation_id = Some(correlation_id.into());
        self
    }

    /// True for [`MessageType::FireAndForget`].
    pub fn is_fire_and_forget(&self) -> bool {
        self.message_type == MessageType::FireAndForget
    }

    /// True for [`MessageType::Request`].
    pub fn is_request(&self) -> bool {
        self.message_type == MessageType::Request
    }

    /// True for [`MessageType::Response`].
    pub fn is_response(&self) -> bool {
        self.message_type == MessageType::Response
    }

    /// True for [`MessageType::Publish`].
    pub fn is_publish(&self) -> bool {
        self.message_type == MessageType::Publish
    }

    /// Makes the response to this message: `from` and `to` swapped, `correlation_id` set to
    /// this message's id, the topic kept, a fresh timestamp.
    pub fn reply_to(&self, payload: Vec<u8>, codec: u64, message_id: impl Into<MessageId>) -> Self {
        Self {
            message_type: MessageType::Response,
            from: self.to.clone(),
            to: self.from.clone(),
            topic: self.topic.clone(),
            payload,
            codec,
            message_id: message_id.into(),
            correlation_id: Some(self.message_id.clone()),
            timestamp: Utc::now(),
        }
    }
}

/// The messaging pattern a message belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MessageType {
    /// One-way: the sender expects nothing back.
    FireAndForget,
    /// The sender expects exactly one outcome: a [`MessageType::Response`] or a timeout.
    Request,
    /// The answer to a request, routed by `correlation_id`.
    Response,
    /// A message on a topic, delivered to every subscriber.
    Publish,
}

impl MessageType {
    /// True only for [`MessageType::Request`].
    pub fn expects_response(&self) -> bool {
        matches!(self, MessageType::Request)
    }

    /// True for [`MessageType::FireAndForget`] and [`MessageType::Publish`].
    pub fn is_one_way(&self) -> bool {
        matches!(self, MessageType::FireAndForget | MessageType::Publish)
    }

    /// A short human-readable description.
    pub fn description(&self) -> &'static str {
        match self {
            MessageType::FireAndForget => "fire-and-forget: one-way, no response expected",
            MessageType::Request => "request: expects exactly one response or a timeout",
            MessageType::Response => "response: answers a request, matched by correlation id",
            MessageType::Publish => "publish: delivered to every subscriber of a topic",
        }
    }
}

/// What the runtime promises about delivering a message once it accepted it.
///
/// Whatever the guarantee, a message the runtime cannot deliver is never dropped silently:
/// it is handed back to the sender or dead-lettered with a reason.
///
/// This type deliberately reports no latency figures: see `PERF.md` for measured ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum DeliveryGuarantee {
    /// Handled at most once: a message whose handler fails is dead-lettered, not retried.
    #[default]
    AtMostOnce,
    /// Handled at least once: a message whose handler fails (error or panic) is redelivered,
    /// flagged as a redelivery, up to the component's redelivery bound, then dead-lettered.
    AtLeastOnce,
    /// At-least-once plus deduplication by `message_id` within the receiving component's
    /// deduplication window, so the handler succeeds on a given id at most once even when a
    /// sender retries it (see `ComponentConfig::dedup_window`).
    #[cfg(feature = "exactly-once-delivery")]
    ExactlyOnce,
}

impl DeliveryGuarantee {
    /// True when a failed handling may lose the message (only [`Self::AtMostOnce`]; the
    /// message is still dead-lettered, never silently dropped).
    pub fn may_lose_messages(&self) -> bool {
        matches!(self, DeliveryGuarantee::AtMostOnce)
    }

    /// True when the handler may see the same message more than once.
    pub fn may_duplicate(&self) -> bool {
        matches!(self, DeliveryGuarantee::AtLeastOnce)
    }

    /// True for exactly-once delivery.
    pub fn is_exactly_once(&self) -> bool {
        #[cfg(feature = "exactly-once-delivery")]
        {
            matches!(self, DeliveryGuarantee::ExactlyOnce)
        }
        #[cfg(not(feature = "exactly-once-delivery"))]
        {
            false
        }
    }

    /// True when a failed handling is retried.
    pub fn redelivers(&self) -> bool {
        !self.may_lose_messages()
    }

    /// A short human-readable description.
    pub fn description(&self) -> &'static str {
        match self {
            DeliveryGuarantee::AtMostOnce => "at-most-once: no retry; a failed message is dead-lettered",
            DeliveryGuarantee::AtLeastOnce => {
                "at-least-once: failed handling is retried up to a bound; duplicates possible"
            }
            #[cfg(feature = "exactly-once-delivery")]
            DeliveryGuarantee::ExactlyOnce => {
                "exactly-once: retried like at-least-once, duplicates removed within a window"
            }
        }
    }
}

/// A new message id: a [UUIDv7](https://www.rfc-editor.org/rfc/rfc9562#name-uuid-version-7)
/// in its 36-character text form, unique across threads, processes and machines.
///
/// 128 bits: 48 of Unix time in milliseconds (ids sort roughly by creation time), the
/// version and variant (6 bits), 30 bits drawn at random once per process, and a 44-bit
/// sequence that starts at a random point in each process and that each thread reserves
/// in blocks. Within a process the (millisecond, sequence) pair never repeats; two
/// processes repeat an id only if they share the 30 random bits *and* the same sequence
/// numbers in the same millisecond. Making an id takes no lock and touches no shared
/// cache line in the common case (one clock read, one thread-local counter).
pub fn new_message_id() -> MessageId {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// Sequence numbers a thread reserves at a time.
    const BLOCK: u64 = 1024;
    const SEQ_BITS: u32 = 44;
    /// (random node bits, next free block of the sequence)
    static PROCESS: OnceLock<(u64, AtomicU64)> = OnceLock::new();
    thread_local! {
        static RANGE: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
    }

    let (node, next_block) = PROCESS.get_or_init(|| {
        // std's RandomState is keyed from the OS's random source once per process.
        use std::hash::BuildHasher;
        let random = std::collections::hash_map::RandomState::new();
        let node = random.hash_one(1u64) & ((1 << 30) - 1);
        let start = random.hash_one(2u64) & ((1 << SEQ_BITS) - 1);
        (node, AtomicU64::new(start / BLOCK))
    });
    let seq = RANGE.with(|r| {
        let (mut next, mut end) = r.get();
        if next == end {
            // Relaxed: only uniqueness matters, which the atomic RMW gives on its own.
            next = next_block.fetch_add(1, Ordering::Relaxed).wrapping_mul(BLOCK);
            end = next.wrapping_add(BLOCK);
        }
        r.set((next + 1, end));
        next & ((1 << SEQ_BITS) - 1)
    });
    let millis = unix_millis_coarse() & ((1 << 48) - 1);
    // unix_ts_ms (48) | ver = 7 (4) | rand_a (12) || var = 0b10 (2) | rand_b (62)
    let rand_a = seq >> 32; // the sequence's high 12 bits
    let rand_b = (node << 32) | (seq & 0xffff_ffff);
    let hi = (millis << 16) | (0x7 << 12) | rand_a;
    let lo = (0b10 << 62) | rand_b;
    uuid_text(hi, lo)
}

/// Unix time in milliseconds, from the kernel's coarse clock where there is one: a few
/// nanoseconds instead of tens, and a few milliseconds of resolution, which is all a
/// UUIDv7's time field needs (uniqueness comes from the sequence, not the clock).
fn unix_millis_coarse() -> u64 {
    #[cfg(target_os = "linux")]
    {
        let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: `ts` is a valid, writable timespec; the call only writes it.
        if unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut ts) } == 0 {
            return (ts.tv_sec as u64).wrapping_mul(1000).wrapping_add(ts.tv_nsec as u64 / 1_000_000);
        }
    }
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// The canonical 8-4-4-4-12 lowercase hex text of a UUID.
fn uuid_text(hi: u64, lo: u64) -> MessageId {
    /// Two hex digits per byte value.
    const PAIRS: [[u8; 2]; 256] = {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut t = [[0u8; 2]; 256];
        let mut i = 0;
        while i < 256 {
            t[i] = [HEX[i >> 4], HEX[i & 0xf]];
            i += 1;
        }
        t
    };
    let bytes = ((u128::from(hi) << 64) | u128::from(lo)).to_be_bytes();
    let mut out = [b'-'; 36];
    // Where each byte's two digits go: the dashes sit at 8, 13, 18 and 23.
    const AT: [usize; 16] = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];
    for (b, at) in bytes.iter().zip(AT) {
        out[at..at + 2].copy_from_slice(&PAIRS[*b as usize]);
    }
    // Kept inline: making an id allocates nothing.
    MessageId::from_ascii_uuid(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec;

    fn id(s: &str) -> ComponentId {
        ComponentId::new(s).unwrap()
    }

    fn env(t: MessageType) -> MessageEnvelope {
        MessageEnvelope::new(t, id("a"), id("b"), vec![1, 2, 3], codec::RAW, "m-1")
    }

    #[test]
    fn test_message_envelope_creation() {
        let before = Utc::now();
        let e = env(MessageType::FireAndForget);
        assert_eq!(e.message_type, MessageType::FireAndForget);
        assert_eq!(e.from, id("a"));
        assert_eq!(e.to, id("b"));
        assert_eq!(e.payload, vec![1, 2, 3]);
        assert_eq!(e.codec, codec::RAW);
        assert_eq!(e.message_id, "m-1");
        assert_eq!(e.topic, None);
        assert_eq!(e.correlation_id, None);
        assert!(e.timestamp >= before && e.timestamp <= Utc::now());
    }

    #[test]
    fn test_message_envelope_with_topic() {
        let e = env(MessageType::Publish).with_topic("prices");
        assert_eq!(e.topic.as_deref(), Some("prices"));
    }

    #[test]
    fn test_message_envelope_with_correlation_id() {
        let e = env(MessageType::Response).with_correlation_id("req-9");
        assert_eq!(e.correlation_id.as_deref(), Some("req-9"));
    }

    #[test]
    fn test_message_type_classification() {
        let cases = [
            (MessageType::FireAndForget, [true, false, false, false]),
            (MessageType::Request, [false, true, false, false]),
            (MessageType::Response, [false, false, true, false]),
            (MessageType::Publish, [false, false, false, true]),
        ];
        for (t, want) in cases {
            let e = env(t);
            let got = [e.is_fire_and_forget(), e.is_request(), e.is_response(), e.is_publish()];
            assert_eq!(got, want, "classification of {t:?}");
        }
    }

    #[test]
    fn test_reply_to() {
        let req = env(MessageType::Request).with_topic("t");
        let resp = req.reply_to(vec![9], codec::JSON, "m-2");
        assert_eq!(resp.message_type, MessageType::Response);
        assert_eq!(resp.from, id("b"));
        assert_eq!(resp.to, id("a"));
        assert_eq!(resp.correlation_id.as_deref(), Some("m-1"));
        assert_eq!(resp.message_id, "m-2");
        assert_eq!(resp.payload, vec![9]);
        assert_eq!(resp.codec, codec::JSON);
        assert_eq!(resp.topic.as_deref(), Some("t"));
    }

    #[test]
    fn test_message_envelope_serialization() {
        let e = env(MessageType::Request).with_topic("t").with_correlation_id("c");
        let json = serde_json::to_string(&e).unwrap();
        let back: MessageEnvelope = serde_json::from_str(&json).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn unknown_codec_is_carried_through_serde() {
        let mut e = env(MessageType::FireAndForget);
        e.codec = 0xdead_beef;
        let back: MessageEnvelope = serde_json::from_str(&serde_json::to_string(&e).unwrap()).unwrap();
        assert_eq!(back.codec, 0xdead_beef);
        assert!(!codec::is_known(back.codec));
    }

    #[test]
    fn codec_names_round_trip() {
        for code in [
            codec::RAW,
            codec::CBOR,
            codec::JSON,
            codec::MESSAGEPACK,
            codec::PROTOBUF,
            codec::DAG_CBOR,
            codec::DAG_JSON,
        ] {
            let name = codec::name(code).unwrap();
            assert_eq!(codec::from_name(name), Some(code));
        }
        assert_eq!(codec::from_name("nope"), None);
    }

    #[test]
    fn test_message_type_expects_response() {
        assert!(MessageType::Request.expects_response());
        assert!(!MessageType::FireAndForget.expects_response());
        assert!(!MessageType::Response.expects_response());
        assert!(!MessageType::Publish.expects_response());
    }

    #[test]
    fn test_message_type_is_one_way() {
        assert!(MessageType::FireAndForget.is_one_way());
        assert!(MessageType::Publish.is_one_way());
        assert!(!MessageType::Request.is_one_way());
        assert!(!MessageType::Response.is_one_way());
    }

    #[test]
    fn message_type_descriptions_are_distinct() {
        let all = [MessageType::FireAndForget, MessageType::Request, MessageType::Response, MessageType::Publish];
        let set: std::collections::HashSet<_> = all.iter().map(|t| t.description()).collect();
        assert_eq!(set.len(), 4);
    }

    #[test]
    fn test_delivery_guarantee_may_lose() {
        assert!(DeliveryGuarantee::AtMostOnce.may_lose_messages());
        assert!(!DeliveryGuarantee::AtLeastOnce.may_lose_messages());
    }

    #[test]
    fn test_delivery_guarantee_may_duplicate() {
        assert!(!DeliveryGuarantee::AtMostOnce.may_duplicate());
        assert!(DeliveryGuarantee::AtLeastOnce.may_duplicate());
        assert!(!DeliveryGuarantee::AtMostOnce.is_exactly_once());
    }

    #[test]
    fn delivery_guarantee_serde_round_trips() {
        for g in [DeliveryGuarantee::AtMostOnce, DeliveryGuarantee::AtLeastOnce] {
            let back: DeliveryGuarantee = serde_json::from_str(&serde_json::to_string(&g).unwrap()).unwrap();
            assert_eq!(back, g);
            assert!(!g.description().is_empty());
        }
    }

    #[cfg(feature = "exactly-once-delivery")]
    #[test]
    fn exactly_once_neither_loses_nor_duplicates() {
        let g = DeliveryGuarantee::ExactlyOnce;
        assert!(g.is_exactly_once());
        assert!(!g.may_lose_messages());
        assert!(!g.may_duplicate());
        assert!(g.redelivers());
    }

    #[test]
    fn message_ids_are_unique_across_threads() {
        let handles: Vec<_> =
            (0..4).map(|_| std::thread::spawn(|| (0..3000).map(|_| new_message_id()).collect::<Vec<_>>())).collect();
        let mut all = std::collections::HashSet::new();
        for h in handles {
            for id in h.join().unwrap() {
                assert!(all.insert(id), "duplicate message id");
            }
        }
    }

    /// Parses the canonical text of a UUID into its two halves.
    fn parse_uuid(s: &str) -> (u64, u64) {
        assert_eq!(s.len(), 36, "{s}");
        let groups: Vec<&str> = s.split('-').collect();
        assert_eq!(groups.iter().map(|g| g.len()).collect::<Vec<_>>(), [8, 4, 4, 4, 12], "{s}");
        let hex: String = groups.concat();
        assert!(hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)), "{s}");
        let v = u128::from_str_radix(&hex, 16).unwrap();
        ((v >> 64) as u64, v as u64)
    }

    #[test]
    fn message_ids_are_uuidv7_with_the_current_time() {
        let before = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
        let (hi, lo) = parse_uuid(&new_message_id());
        let after = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
        assert_eq!((hi >> 12) & 0xf, 7, "version 7");
        assert_eq!(lo >> 62, 0b10, "RFC 9562 variant");
        // The coarse clock lags the precise one by at most a tick (a few milliseconds).
        assert!((before.saturating_sub(50)..=after).contains(&(hi >> 16)), "48-bit Unix milliseconds");
    }

    #[test]
    fn two_processes_make_different_ids() {
        // This test binary, re-run to print ids made by another process.
        const CHILD: &str = "SWITCHYARD_PRINT_IDS";
        if std::env::var_os(CHILD).is_some() {
            for _ in 0..100 {
                println!("id={}", new_message_id());
            }
            return;
        }
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "envelope::tests::two_processes_make_different_ids", "--nocapture", "--test-threads=1"])
            .env(CHILD, "1")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let theirs: std::collections::HashSet<&str> =
            text.lines().filter_map(|l| l.rsplit_once("id=").map(|(_, id)| id)).collect();
        assert_eq!(theirs.len(), 100, "{text}");
        let ours: Vec<String> = (0..100).map(|_| new_message_id().into()).collect();
        assert!(ours.iter().all(|id| !theirs.contains(id.as_str())));
        // The 30 bits each process draws at random differ (a 2^-30 chance otherwise).
        let node = |id: &str| (parse_uuid(id).1 >> 32) & ((1 << 30) - 1);
        assert_ne!(node(&ours[0]), node(theirs.iter().next().unwrap()));
    }
}
