//! Multicodec codes for [`crate::MessageEnvelope::codec`], and the serde codecs that turn
//! typed values into payloads and back.
//!
//! On the wire a payload is bytes plus a [multicodec](https://github.com/multiformats/multicodec)
//! code, so that it crosses WebAssembly and NATS unchanged and any client can read it. The
//! runtime never decodes a payload; any `u64` is carried, and [`name`] knows the common
//! ones.
//!
//! The typed layer sits on top: [`Json`] and [`Cbor`] encode any `serde::Serialize` value
//! into `(bytes, code)` ([`Encoded`]) and decode bytes into any `serde::de::DeserializeOwned`
//! value; [`crate::MessageEnvelope::decode`] reads an envelope's payload by its code and says
//! clearly when the code is not one it can read. A [`CodecError`] converts into
//! [`crate::HandlerError`], so `?` works in handlers. Code that never calls them pays
//! nothing: the envelope stays bytes.
//!
//! ```
//! use switchyard::codec::{self, Cbor, Json, SerdeCodec};
//!
//! #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
//! struct Tick { symbol: String, price: u32 }
//!
//! let tick = Tick { symbol: "ACME".into(), price: 101 };
//! let json = Json::encode(&tick)?;
//! assert_eq!((json.code, json.bytes.as_slice()), (codec::JSON, &br#"{"symbol":"ACME","price":101}"#[..]));
//! let cbor = Cbor::encode(&tick)?;
//! assert_eq!(codec::decode::<Tick>(cbor.code, &cbor.bytes)?, tick);
//! assert_eq!(codec::name(0xdead_beef), None); // unknown codes are carried, not rejected
//! # Ok::<(), switchyard::codec::CodecError>(())
//! ```

use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Raw bytes.
pub const RAW: u64 = 0x55;
/// CBOR.
pub const CBOR: u64 = 0x51;
/// JSON.
pub const JSON: u64 = 0x0200;
/// MessagePack.
pub const MESSAGEPACK: u64 = 0x0201;
/// Protocol Buffers.
pub const PROTOBUF: u64 = 0x50;
/// DAG-CBOR.
pub const DAG_CBOR: u64 = 0x71;
/// DAG-JSON.
pub const DAG_JSON: u64 = 0x0129;

/// The multicodec name of a known code.
pub fn name(code: u64) -> Option<&'static str> {
    Some(match code {
        RAW => "raw",
        CBOR => "cbor",
        JSON => "json",
        MESSAGEPACK => "messagepack",
        PROTOBUF => "protobuf",
        DAG_CBOR => "dag-cbor",
        DAG_JSON => "dag-json",
        _ => return None,
    })
}

/// The code for a known multicodec name.
pub fn from_name(name: &str) -> Option<u64> {
    Some(match name {
        "raw" => RAW,
        "cbor" => CBOR,
        "json" => JSON,
        "messagepack" => MESSAGEPACK,
        "protobuf" => PROTOBUF,
        "dag-cbor" => DAG_CBOR,
        "dag-json" => DAG_JSON,
        _ => return None,
    })
}

/// True when [`name`] knows the code.
pub fn is_known(code: u64) -> bool {
    name(code).is_some()
}

/// A code for messages: its name when known, else its number in hex.
fn describe(code: u64) -> String {
    match name(code) {
        Some(n) => format!("{n} (0x{code:x})"),
        None => format!("0x{code:x}"),
    }
}

/// A value encoded: the payload's bytes and the multicodec code that says how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// The payload.
    pub bytes: Vec<u8>,
    /// Its multicodec code.
    pub code: u64,
}

/// A payload could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CodecError {
    /// The payload's code is not one the typed layer reads (it reads JSON and CBOR).
    Unsupported {
        /// The payload's code.
        code: u64,
    },
    /// The value could not be encoded (a map with non-string keys in JSON, say).
    Encode {
        /// The codec.
        code: u64,
        /// What the encoder said.
        detail: String,
    },
    /// The bytes are not a value of the type asked for, in the codec they claim.
    Decode {
        /// The payload's code.
        code: u64,
        /// The type asked for.
        into: &'static str,
        /// What the decoder said.
        detail: String,
    },
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CodecError::Unsupported { code } => {
                write!(f, "a payload in {} cannot be decoded: the typed layer reads json and cbor", describe(*code))
            }
            CodecError::Encode { code, detail } => write!(f, "cannot encode as {}: {detail}", describe(*code)),
            CodecError::Decode { code, into, detail } => {
                write!(f, "the {} payload is not a {into}: {detail}", describe(*code))
            }
        }
    }
}

impl std::error::Error for CodecError {}

/// A serde codec: the payload's encoding for typed values.
pub trait SerdeCodec {
    /// Its multicodec code.
    const CODE: u64;

    /// Encodes `value`.
    ///
    /// # Errors
    /// [`CodecError::Encode`].
    fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Encoded, CodecError>;

    /// Decodes a `T` from `bytes`.
    ///
    /// # Errors
    /// [`CodecError::Decode`].
    fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError>;
}

/// JSON (multicodec 0x0200), with `serde_json`: what people and most tools read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Json;

/// CBOR (multicodec 0x51), with `ciborium`: compact and binary-safe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Cbor;

impl SerdeCodec for Json {
    const CODE: u64 = JSON;

    fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Encoded, CodecError> {
        serde_json::to_vec(value)
            .map(|bytes| Encoded { bytes, code: JSON })
            .map_err(|e| CodecError::Encode { code: JSON, detail: e.to_string() })
    }

    fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
        serde_json::from_slice(bytes).map_err(|e| CodecError::Decode {
            code: JSON,
            into: std::any::type_name::<T>(),
            detail: e.to_string(),
        })
    }
}

impl SerdeCodec for Cbor {
    const CODE: u64 = CBOR;

    fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Encoded, CodecError> {
        let mut bytes = Vec::new();
        ciborium::into_writer(value, &mut bytes)
            .map(|()| Encoded { bytes, code: CBOR })
            .map_err(|e| CodecError::Encode { code: CBOR, detail: e.to_string() })
    }

    fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
        ciborium::from_reader(bytes).map_err(|e| CodecError::Decode {
            code: CBOR,
            into: std::any::type_name::<T>(),
            detail: e.to_string(),
        })
    }
}

/// Encodes `value` with the serde codec `code` ([`JSON`] or [`CBOR`]).
///
/// # Errors
/// [`CodecError::Unsupported`] for another code, [`CodecError::Encode`].
pub fn encode<T: Serialize + ?Sized>(code: u64, value: &T) -> Result<Encoded, CodecError> {
    match code {
        JSON => Json::encode(value),
        CBOR => Cbor::encode(value),
        code => Err(CodecError::Unsupported { code }),
    }
}

/// Decodes a `T` from `bytes` encoded with `code` ([`JSON`] or [`CBOR`]).
///
/// # Errors
/// [`CodecError::Unsupported`] for another code, [`CodecError::Decode`].
pub fn decode<T: DeserializeOwned>(code: u64, bytes: &[u8]) -> Result<T, CodecError> {
    match code {
        JSON => Json::decode(bytes),
        CBOR => Cbor::decode(bytes),
        code => Err(CodecError::Unsupported { code }),
    }
}

/// True when the typed layer reads and writes `code`.
pub fn is_serde(code: u64) -> bool {
    matches!(code, JSON | CBOR)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    enum Op {
        Inc(u64),
        Get,
    }

    #[test]
    fn both_codecs_round_trip_and_say_their_code() {
        for code in [JSON, CBOR] {
            let e = encode(code, &Op::Inc(7)).expect("encodes");
            assert_eq!(e.code, code);
            assert_eq!(decode::<Op>(code, &e.bytes).expect("decodes"), Op::Inc(7));
        }
        assert_eq!(Json::encode(&Op::Get).expect("encodes").bytes, br#""Get""#);
    }

    #[test]
    fn a_mismatch_names_the_codec_the_type_and_what_went_wrong() {
        let e = decode::<u32>(RAW, b"12").expect_err("raw is not serde");
        assert_eq!(e, CodecError::Unsupported { code: RAW });
        assert!(e.to_string().contains("raw (0x55)"), "{e}");
        let e = decode::<Op>(JSON, b"{\"Nope\":1}").expect_err("not an Op");
        assert!(e.to_string().starts_with("the json (0x200) payload is not a switchyard::codec::tests::Op: "), "{e}");
        let e = decode::<Op>(CBOR, &Json::encode(&Op::Get).expect("encodes").bytes).expect_err("JSON is not CBOR");
        assert!(matches!(e, CodecError::Decode { code: CBOR, .. }), "{e:?}");
        assert!(decode::<u32>(0xdead, b"").expect_err("unknown").to_string().contains("0xdead"));
    }

    #[test]
    fn names_and_codes_agree() {
        for code in [RAW, CBOR, JSON, MESSAGEPACK, PROTOBUF, DAG_CBOR, DAG_JSON] {
            assert_eq!(from_name(name(code).expect("known")), Some(code));
        }
        assert!(!is_known(0xdead_beef));
        assert!(is_serde(JSON) && is_serde(CBOR) && !is_serde(RAW));
    }
}
