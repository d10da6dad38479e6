//! The accepted range of every numeric field of the manifest, and the wide integer those
//! fields are read as, so that a range check sees exactly the value that was written.
//!
//! The TOML reader hands integers beyond the i64 of the TOML specification (2^64-1, and
//! more, up to 128 bits) to the manifest as they are; a larger one fails to parse, and is
//! reported with its place and field like any other error. Every bound is checked while
//! the manifest is parsed, before anything is allocated or started, so an absurd value is
//! a located error rather than an allocation failure, an overflow or a deadline that has
//! always passed.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Visitor};

/// An integer as written in the manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Int(pub(super) i128);

struct IntVisitor;

impl Visitor<'_> for IntVisitor {
    type Value = Int;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an integer")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Int, E> {
        Ok(Int(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Int, E> {
        Ok(Int(v.into()))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Int, E> {
        Ok(Int(v))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Int, E> {
        i128::try_from(v).map(Int).map_err(|_| E::custom(format!("{v} is far beyond any accepted value")))
    }
}

impl<'de> Deserialize<'de> for Int {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_i128(IntVisitor)
    }
}

/// A byte count as written: an integer, or a string such as `"16MiB"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Size {
    Bytes(Int),
    Text(String),
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct SizeVisitor;
        impl Visitor<'_> for SizeVisitor {
            type Value = Size;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a byte count: an integer, or a string such as \"16MiB\"")
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Size, E> {
                IntVisitor.visit_i64(v).map(Size::Bytes)
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Size, E> {
                IntVisitor.visit_u64(v).map(Size::Bytes)
            }

            fn visit_i128<E: de::Error>(self, v: i128) -> Result<Size, E> {
                IntVisitor.visit_i128(v).map(Size::Bytes)
            }

            fn visit_u128<E: de::Error>(self, v: u128) -> Result<Size, E> {
                IntVisitor.visit_u128(v).map(Size::Bytes)
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Size, E> {
                Ok(Size::Text(v.to_string()))
            }
        }
        d.deserialize_any(SizeVisitor)
    }
}

impl Size {
    /// The number of bytes, and how to show it in an error. A string is digits (`_`
    /// allowed) and an optional unit: B, KiB, MiB or GiB.
    pub(super) fn bytes(&self) -> Result<(i128, String), String> {
        match self {
            Size::Bytes(Int(n)) => Ok((*n, n.to_string())),
            Size::Text(text) => {
                let t = text.trim();
                let split = t.find(|c: char| !c.is_ascii_digit() && c != '_').unwrap_or(t.len());
                let (digits, unit) = t.split_at(split);
                let digits = digits.replace('_', "");
                let not_a_size = || format!("{text:?} is not a size (examples: 1048576, \"64KiB\", \"16MiB\")");
                if digits.is_empty() {
                    return Err(not_a_size());
                }
                let scale: i128 = match unit.trim() {
                    "" | "B" => 1,
                    "KiB" => 1 << 10,
                    "MiB" => 1 << 20,
                    "GiB" => 1 << 30,
                    other => return Err(format!("unknown size unit {other:?} in {text:?} (use B, KiB, MiB or GiB)")),
                };
                // Longer than any i128: far out of every range anyway.
                let n: i128 = digits.parse().unwrap_or(i128::MAX);
                Ok((n.saturating_mul(scale), format!("{text:?}")))
            }
        }
    }
}

/// What a field counts, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    Count,
    Millis,
    Bytes,
}

/// The accepted values of one numeric field, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Bounds {
    pub(super) min: u64,
    pub(super) max: u64,
    unit: Unit,
    /// Why the bound is where it is, when that is not obvious.
    why: &'static str,
}

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
const HOUR_MS: u64 = 3_600_000;

const fn bounds(min: u64, max: u64, unit: Unit, why: &'static str) -> Bounds {
    Bounds { min, max, unit, why }
}

/// `runtime.workers`.
pub(super) const WORKERS: Bounds = bounds(1, switchyard::MAX_WORKERS as u64, Unit::Count, "");
pub(super) const IO_WORKERS: Bounds = bounds(0, switchyard::MAX_WORKERS as u64, Unit::Count, "");
/// `runtime.drain_timeout_ms` (0: no drain, queued messages are dead-lettered at once).
pub(super) const DRAIN_TIMEOUT_MS: Bounds = bounds(0, HOUR_MS, Unit::Millis, "one hour");
/// `runtime.request_timeout_ms`.
pub(super) const REQUEST_TIMEOUT_MS: Bounds = bounds(1, HOUR_MS, Unit::Millis, "one hour");
/// `cluster.wait_ms`.
pub(super) const CLUSTER_WAIT_MS: Bounds = bounds(0, HOUR_MS, Unit::Millis, "one hour");
/// `cluster.ack_wait_ms` (the library refuses less than 100 ms).
pub(super) const CLUSTER_ACK_WAIT_MS: Bounds = bounds(100, HOUR_MS, Unit::Millis, "one hour");
/// `component.fuel_per_message`.
pub(super) const FUEL_PER_MESSAGE: Bounds = bounds(1, 1_000_000_000_000, Unit::Count, "");
/// `component.deadline_ms`.
pub(super) const DEADLINE_MS: Bounds = bounds(1, HOUR_MS, Unit::Millis, "one hour");
/// `component.memory_limit`: one WebAssembly page to all that a 32-bit memory can address.
pub(super) const MEMORY_LIMIT: Bounds =
    bounds(64 * KIB, 4 * GIB, Unit::Bytes, "one WebAssembly page to all that a 32-bit memory can address");
/// `component.mailbox_capacity`.
pub(super) const MAILBOX_CAPACITY: Bounds = bounds(
    1,
    switchyard::MAX_MAILBOX_CAPACITY as u64,
    Unit::Count,
    "a mailbox's slots are allocated by its first message, about 190 bytes each",
);
/// `component.max_subscriptions`: topics a guest may be subscribed to at once.
pub(super) const MAX_SUBSCRIPTIONS: Bounds = bounds(1, 100_000, Unit::Count, "");
/// `component.max_pending_requests`: a guest's requests waiting for their outcome at once.
pub(super) const MAX_PENDING_REQUESTS: Bounds = bounds(1, 100_000, Unit::Count, "");
/// `component.max_request_timeout_ms`: the longest a guest's request may wait.
pub(super) const MAX_REQUEST_TIMEOUT_MS: Bounds = bounds(1, HOUR_MS, Unit::Millis, "one hour");
/// `component.restart.max_restarts` (0: a crash stops the component).
pub(super) const MAX_RESTARTS: Bounds = bounds(0, 10_000, Unit::Count, "");
/// `component.restart.window_ms`.
pub(super) const WINDOW_MS: Bounds = bounds(1, 24 * HOUR_MS, Unit::Millis, "one day");
/// `component.restart.backoff_initial_ms` and `backoff_max_ms`.
pub(super) const BACKOFF_MS: Bounds = bounds(0, HOUR_MS, Unit::Millis, "one hour");
/// `component.capabilities.storage_quota.max_bytes`.
pub(super) const QUOTA_MAX_BYTES: Bounds = bounds(1, 1024 * GIB, Unit::Bytes, "");
/// `component.capabilities.storage_quota.max_keys`.
pub(super) const QUOTA_MAX_KEYS: Bounds = bounds(1, 1_000_000_000, Unit::Count, "");
/// `component.capabilities.max_payload_bytes`: up to the runtime's limit for any payload.
pub(super) const MAX_PAYLOAD_BYTES: Bounds = bounds(1, 16 * MIB, Unit::Bytes, "the runtime's limit for any payload");

impl Bounds {
    /// The value, if it is in range; otherwise a sentence with the range and what was
    /// written.
    pub(super) fn check(&self, value: i128, written: &str) -> Result<u64, String> {
        match u64::try_from(value) {
            Ok(v) if (self.min..=self.max).contains(&v) => Ok(v),
            _ => Err(format!("must be {self}, not {written}")),
        }
    }

    fn show(&self, n: u64) -> String {
        match self.unit {
            Unit::Count => n.to_string(),
            Unit::Millis => format!("{n} ms"),
            Unit::Bytes => {
                let unit = [(1u64 << 40, "TiB"), (GIB, "GiB"), (MIB, "MiB"), (KIB, "KiB")]
                    .into_iter()
                    .find(|(scale, _)| n >= *scale && n.is_multiple_of(*scale));
                match unit {
                    Some((scale, name)) => format!("{}{name}", n / scale),
                    None if n == 1 => "1 byte".to_string(),
                    None => format!("{n} bytes"),
                }
            }
        }
    }
}

/// `cluster.reconnect_buffer_messages` (0: the buffer is off).
pub(super) const RECONNECT_BUFFER_MESSAGES: Bounds = bounds(0, 1 << 20, Unit::Count, "0: off");
/// `cluster.reconnect_buffer_bytes` (at least one message's overhead).
pub(super) const RECONNECT_BUFFER_BYTES: Bounds = bounds(128, 1 << 32, Unit::Count, "");
/// `cluster.reconnect_buffer_ms`.
pub(super) const RECONNECT_BUFFER_MS: Bounds = bounds(1, HOUR_MS, Unit::Millis, "one hour");
/// `cluster.stream_max_bytes` (as the library checks it).
pub(super) const STREAM_MAX_BYTES: Bounds = bounds(1 << 20, 1 << 40, Unit::Bytes, "");
/// `cluster.stream_max_age_ms`.
pub(super) const STREAM_MAX_AGE_MS: Bounds = bounds(1000, 365 * 24 * HOUR_MS, Unit::Millis, "one second to a year");
/// `cluster.consumer_inactive_ms`.
pub(super) const CONSUMER_INACTIVE_MS: Bounds = bounds(1000, 30 * 24 * HOUR_MS, Unit::Millis, "one second to 30 days");

impl fmt::Display for Bounds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "from {} to {}", self.show(self.min), self.show(self.max))?;
        if !self.why.is_empty() {
            write!(f, " ({})", self.why)?;
        }
        Ok(())
    }
}

/// Every bound, by the field name the manifest documentation uses.
#[cfg(test)]
pub(super) const DOCUMENTED: [(&str, Bounds); 26] = [
    ("runtime.workers", WORKERS),
    ("runtime.io_workers", IO_WORKERS),
    ("runtime.drain_timeout_ms", DRAIN_TIMEOUT_MS),
    ("runtime.request_timeout_ms", REQUEST_TIMEOUT_MS),
    ("cluster.wait_ms", CLUSTER_WAIT_MS),
    ("cluster.ack_wait_ms", CLUSTER_ACK_WAIT_MS),
    ("cluster.reconnect_buffer_messages", RECONNECT_BUFFER_MESSAGES),
    ("cluster.reconnect_buffer_bytes", RECONNECT_BUFFER_BYTES),
    ("cluster.reconnect_buffer_ms", RECONNECT_BUFFER_MS),
    ("cluster.stream_max_bytes", STREAM_MAX_BYTES),
    ("cluster.stream_max_age_ms", STREAM_MAX_AGE_MS),
    ("cluster.consumer_inactive_ms", CONSUMER_INACTIVE_MS),
    ("fuel_per_message", FUEL_PER_MESSAGE),
    ("deadline_ms", DEADLINE_MS),
    ("memory_limit", MEMORY_LIMIT),
    ("mailbox_capacity", MAILBOX_CAPACITY),
    ("max_subscriptions", MAX_SUBSCRIPTIONS),
    ("max_pending_requests", MAX_PENDING_REQUESTS),
    ("max_request_timeout_ms", MAX_REQUEST_TIMEOUT_MS),
    ("restart.max_restarts", MAX_RESTARTS),
    ("restart.window_ms", WINDOW_MS),
    ("restart.backoff_initial_ms", BACKOFF_MS),
    ("restart.backoff_max_ms", BACKOFF_MS),
    ("capabilities.storage_quota.max_bytes", QUOTA_MAX_BYTES),
    ("capabilities.storage_quota.max_keys", QUOTA_MAX_KEYS),
    ("capabilities.max_payload_bytes", MAX_PAYLOAD_BYTES),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_in_range_passes_and_one_outside_names_the_range() {
        assert_eq!(WORKERS.check(1024, "1024"), Ok(1024));
        assert_eq!(WORKERS.check(0, "0").unwrap_err(), "must be from 1 to 1024, not 0");
        assert_eq!(WORKERS.check(-1, "-1").unwrap_err(), "must be from 1 to 1024, not -1");
        assert_eq!(
            DEADLINE_MS.check(i128::from(u64::MAX), "18446744073709551615").unwrap_err(),
            "must be from 1 ms to 3600000 ms (one hour), not 18446744073709551615"
        );
        assert_eq!(DRAIN_TIMEOUT_MS.check(0, "0"), Ok(0));
    }

    #[test]
    fn sizes_take_binary_units_and_show_them_in_errors() {
        let size = |s: &str| Size::Text(s.into()).bytes();
        assert_eq!(size("64KiB").unwrap().0, 65_536);
        assert_eq!(size("1_024 B").unwrap().0, 1024);
        assert_eq!(size("16MiB").unwrap().0, 16 << 20);
        let (n, written) = size("16GiB").unwrap();
        assert_eq!(
            MEMORY_LIMIT.check(n, &written).unwrap_err(),
            "must be from 64KiB to 4GiB (one WebAssembly page to all that a 32-bit memory can address), \
             not \"16GiB\""
        );
        assert_eq!(MEMORY_LIMIT.check(size("4GiB").unwrap().0, ""), Ok(4 << 30));
        assert!(size("3 parsecs").unwrap_err().contains("unknown size unit \"parsecs\""));
        assert!(size("MiB").unwrap_err().contains("is not a size"));
        let (n, _) = size("99999999999999999999999999999999999999999999GiB").unwrap();
        assert!(MEMORY_LIMIT.check(n, "").is_err());
    }

    #[test]
    fn max_payload_bound_is_the_runtimes_payload_limit() {
        assert_eq!(MAX_PAYLOAD_BYTES.max, switchyard::RuntimeConfig::default().max_payload_bytes as u64);
    }

    #[test]
    fn documented_ranges_are_the_checked_ones() {
        // docs/manifest.md's table: `| section | key | type | default | allowed values | ...`.
        let docs = include_str!("../../../docs/manifest.md");
        let rows: Vec<Vec<&str>> =
            docs.lines().filter(|l| l.starts_with("| `[")).map(|l| l.split('|').map(str::trim).collect()).collect();
        let name = |row: &[&str]| match row[1] {
            "`[runtime]`" => format!("runtime.{}", row[2].trim_matches('`')),
            "`[cluster]`" => format!("cluster.{}", row[2].trim_matches('`')),
            "`[[message]]`" => format!("message.{}", row[2].trim_matches('`')),
            _ => row[2].trim_matches('`').to_string(),
        };
        for (field, bounds) in DOCUMENTED {
            let row = rows.iter().find(|r| name(r) == field);
            let row = row.unwrap_or_else(|| panic!("docs/manifest.md has no row for {field}"));
            let (allowed, checked) = (row[5], bounds.to_string());
            assert!(
                allowed == checked || allowed.starts_with(&format!("{checked};")),
                "{field}: docs/manifest.md says {allowed:?}, the parser checks {checked:?}"
            );
        }
        for row in rows.iter().filter(|r| r[5].starts_with("from ")) {
            let field = name(row);
            assert!(
                DOCUMENTED.iter().any(|(f, _)| *f == field),
                "{field} has a range in docs/manifest.md: list it here"
            );
        }
    }
}
