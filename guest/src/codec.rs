//! Payloads for typed values: JSON (multicodec 0x0200) when writing, JSON or CBOR (0x51)
//! when reading, as the host's typed layer (`switchyard::codec`) does.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// The multicodec code of JSON.
pub(crate) const JSON: u64 = 0x0200;
/// The multicodec code of CBOR.
pub(crate) const CBOR: u64 = 0x51;

/// A payload that could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodecError(String);

impl std::fmt::Display for CodecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CodecError {}

fn name(code: u64) -> String {
    match code {
        JSON => "json (0x200)".into(),
        CBOR => "cbor (0x51)".into(),
        0x55 => "raw (0x55)".into(),
        other => format!("0x{other:x}"),
    }
}

/// `value` in `code` (JSON or CBOR).
pub(crate) fn encode<T: Serialize + ?Sized>(code: u64, value: &T) -> Result<Vec<u8>, CodecError> {
    match code {
        CBOR => {
            let mut out = Vec::new();
            ciborium::into_writer(value, &mut out).map_err(|e| CodecError(format!("cannot encode as cbor: {e}")))?;
            Ok(out)
        }
        _ => serde_json::to_vec(value).map_err(|e| CodecError(format!("cannot encode as json: {e}"))),
    }
}

/// A `T` from `bytes` encoded in `code`.
pub(crate) fn decode<T: DeserializeOwned>(code: u64, bytes: &[u8]) -> Result<T, CodecError> {
    let into = std::any::type_name::<T>();
    match code {
        JSON => serde_json::from_slice(bytes)
            .map_err(|e| CodecError(format!("the json (0x200) payload is not a {into}: {e}"))),
        CBOR => ciborium::from_reader(bytes)
            .map_err(|e| CodecError(format!("the cbor (0x51) payload is not a {into}: {e}"))),
        other => Err(CodecError(format!(
            "a payload in {} cannot be decoded: the typed layer reads json and cbor",
            name(other)
        ))),
    }
}
