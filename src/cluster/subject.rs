//! Subjects: how component ids and topics become NATS subject tokens, reversibly.
//!
//! A component id may hold characters a NATS subject token may not (`.` splits tokens,
//! `*` and `>` are wildcards, whitespace breaks the protocol, an empty token is dropped by
//! the server). Every id and topic is therefore escaped into one token: bytes of
//! `[A-Za-z0-9-]` stay as they are, every other byte becomes `_` and two upper-case hex
//! digits (`comp.one` -> `comp_2Eone`, `_` -> `_5F`), and the empty string becomes `_`.
//! The escaped form uses only `[A-Za-z0-9_-]`, so it is also a valid queue group, stream,
//! consumer and KV name. [`unescape`] accepts only the canonical form, so the mapping is
//! one to one: a client that is not switchyard's computes the same subject from the id.
//!
//! | subject | carries |
//! |---|---|
//! | `sy.<cluster>.c.<id>` | messages to component `<id>` (a queue group per id: replicas share the load) |
//! | `sy.<cluster>.l.<node>` | the links to node `<node>`: batches of one-way messages from other nodes (`session.rs`, `frame.rs`) |
//! | `sy.<cluster>.k.<node>` | the acknowledgements of node `<node>`'s link batches |
//! | `sy.<cluster>.s.<node>` | requests for the ids node `<node>` hosts, by page (`membership.rs`) |
//! | `sy.<cluster>.d.<id>` | at-least-once messages to `<id>`, kept in the cluster's JetStream stream `sy-<cluster>` and read through the durable consumer [`consumer_name`]`(<id>)` |
//! | `sy.<cluster>.t.<topic>` | publishes on `<topic>` |
//! | `sy.<cluster>.n.<verb>` | membership: `hello`, `beat`, `change`, `bye` (`membership.rs`) |
//! | `$SRV.<verb>[.switchyard-<cluster>[.<node>]]` | discovery: the NATS services protocol's `PING`, `INFO`, `STATS` (see the `cluster` module docs) |

use std::fmt::Write as _;

/// The queue group every node hosting a component reads its subject in (replicas share
/// its messages).
pub const QUEUE_GROUP: &str = "switchyard";

/// The escaped single-token form of `s`. See the module docs.
pub fn escape(s: &str) -> String {
    if s.is_empty() {
        return "_".to_string();
    }
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' {
            out.push(b as char);
        } else {
            let _ = write!(out, "_{b:02X}");
        }
    }
    out
}

/// The string whose [`escape`] is `token`; `None` unless `token` is canonical.
pub fn unescape(token: &str) -> Option<String> {
    if token == "_" {
        return Some(String::new());
    }
    let bytes = token.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b.is_ascii_alphanumeric() || b == b'-' {
            out.push(b);
            i += 1;
        } else if b == b'_' {
            let hex = token.get(i + 1..i + 3)?;
            if hex.bytes().any(|h| !(h.is_ascii_digit() || (b'A'..=b'F').contains(&h))) {
                return None;
            }
            let v = u8::from_str_radix(hex, 16).ok()?;
            // Canonical only: a byte that escape keeps as it is must not come escaped.
            if v.is_ascii_alphanumeric() || v == b'-' {
                return None;
            }
            out.push(v);
            i += 3;
        } else {
            return None;
        }
    }
    String::from_utf8(out).ok()
}

/// A cluster name must already be a single token of `[A-Za-z0-9_-]`, at most 64 bytes.
pub fn valid_cluster_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 64 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The subject of component `id` in `cluster`.
pub fn component(cluster: &str, id: &str) -> String {
    format!("sy.{cluster}.c.{}", escape(id))
}

/// The subject of the links to node `node` of `cluster`: batches of one-way messages.
pub fn link(cluster: &str, node: &str) -> String {
    format!("sy.{cluster}.l.{node}")
}

/// The subject of the acknowledgements of node `node`'s link batches.
pub fn link_ack(cluster: &str, node: &str) -> String {
    format!("sy.{cluster}.k.{node}")
}

/// The subject on which node `node` answers for the ids it hosts.
pub fn state(cluster: &str, node: &str) -> String {
    format!("sy.{cluster}.s.{node}")
}

/// The membership subject of `verb` (`hello`, `beat`, `change`, `bye`).
pub fn membership(cluster: &str, verb: &str) -> String {
    format!("sy.{cluster}.n.{verb}")
}

/// The subject of component `id`'s at-least-once messages in `cluster` (stored in the
/// cluster's stream, [`stream_name`]).
pub fn durable(cluster: &str, id: &str) -> String {
    format!("sy.{cluster}.d.{}", escape(id))
}

/// The JetStream stream of `cluster`: it holds `sy.<cluster>.d.>`.
pub fn stream_name(cluster: &str) -> String {
    format!("sy-{cluster}")
}

/// The durable consumer through which the nodes hosting component `id` read its
/// at-least-once messages: the escaped id, or for an escaped id over 200 bytes its first
/// 183 bytes, `-` and 16 hex digits of a hash of the id (the server keeps a consumer in a
/// directory named after it).
pub fn consumer_name(id: &str) -> String {
    let escaped = escape(id);
    if escaped.len() <= 200 {
        return escaped;
    }
    // FNV-1a: stable across builds and platforms, unlike std's hasher.
    let hash = id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3));
    format!("{}-{hash:016x}", &escaped[..183])
}

/// The subject of `topic` in `cluster`.
pub fn topic(cluster: &str, topic: &str) -> String {
    format!("sy.{cluster}.t.{}", escape(topic))
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn ids_become_one_token_and_come_back() {
        for (id, token) in [
            ("store", "store"),
            ("comp.one", "comp_2Eone"),
            ("a*b>c", "a_2Ab_3Ec"),
            ("_", "_5F"),
            ("", "_"),
            ("ü", "_C3_BC"),
            ("with space", "with_20space"),
        ] {
            assert_eq!(escape(id), token, "{id:?}");
            assert_eq!(unescape(token).as_deref(), Some(id), "{token:?}");
        }
    }

    #[test]
    fn only_the_canonical_escape_is_accepted() {
        for bad in ["_41", "_2e", "a.b", "_2", "x_", "a b", "_ZZ", "__"] {
            assert_eq!(unescape(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn every_string_round_trips() {
        // A deterministic sweep over short strings of interesting characters.
        let alphabet = ['a', 'Z', '0', '-', '_', '.', '*', '>', ' ', 'é', '$', '\u{0}'];
        for a in alphabet {
            for b in alphabet {
                for c in alphabet {
                    let s: String = [a, b, c].iter().collect();
                    let t = escape(&s);
                    assert!(t.bytes().all(|x| x.is_ascii_alphanumeric() || x == b'-' || x == b'_'), "{t}");
                    assert_eq!(unescape(&t).as_deref(), Some(s.as_str()));
                }
            }
        }
    }

    #[test]
    fn subjects_follow_the_documented_layout() {
        assert_eq!(component("demo", "store"), "sy.demo.c.store");
        assert_eq!(topic("demo", "orders.eu"), "sy.demo.t.orders_2Eeu");
        assert_eq!(membership("demo", "hello"), "sy.demo.n.hello");
        assert_eq!(link("demo", "b"), "sy.demo.l.b");
        assert_eq!(durable("demo", "a.b"), "sy.demo.d.a_2Eb");
        assert_eq!(stream_name("demo"), "sy-demo");
        assert!(valid_cluster_name("demo-1_x"));
        assert!(!valid_cluster_name("de.mo") && !valid_cluster_name("") && !valid_cluster_name("a b"));
    }

    #[test]
    fn consumer_names_stay_short_and_distinct() {
        assert_eq!(consumer_name("store"), "store");
        let long_a = format!("{}a", ".".repeat(127));
        let long_b = format!("{}b", ".".repeat(127));
        let (a, b) = (consumer_name(&long_a), consumer_name(&long_b));
        assert!(a.len() <= 200 && b.len() <= 200, "{} {}", a.len(), b.len());
        assert_ne!(a, b);
        assert!(a.bytes().all(|x| x.is_ascii_alphanumeric() || x == b'-' || x == b'_'), "{a}");
    }
}
