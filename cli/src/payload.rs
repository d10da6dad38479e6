//! Payloads and codecs as people write them (in the manifest and in stdin lines), and
//! replies as the CLI prints them.
//!
//! A payload is a string (its UTF-8 bytes), an array of byte values, or, with codec
//! `json`, any JSON value (its serialization). Without a codec, a string is `raw` and
//! anything else is `json`.

use serde::Deserialize;
use serde_json::{Value, json};
use switchyard::{MessageEnvelope, codec};

/// A codec as written: a multicodec name (`"raw"`, `"json"`, ...) or its number (0 to
/// 2^64-1; codes this build does not know are carried as they are).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodecSpec {
    /// A multicodec code.
    Code(u64),
    /// A multicodec name.
    Name(String),
}

impl<'de> Deserialize<'de> for CodecSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct CodecVisitor;
        impl serde::de::Visitor<'_> for CodecVisitor {
            type Value = CodecSpec;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a multicodec name or number")
            }

            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<CodecSpec, E> {
                Ok(CodecSpec::Code(v))
            }

            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<CodecSpec, E> {
                self.visit_i128(v.into())
            }

            fn visit_i128<E: serde::de::Error>(self, v: i128) -> Result<CodecSpec, E> {
                u64::try_from(v).map(CodecSpec::Code).map_err(|_| {
                    E::custom(format!("a multicodec number must be from 0 to 18446744073709551615 (got {v})"))
                })
            }

            fn visit_u128<E: serde::de::Error>(self, v: u128) -> Result<CodecSpec, E> {
                u64::try_from(v).map(CodecSpec::Code).map_err(|_| {
                    E::custom(format!("a multicodec number must be from 0 to 18446744073709551615 (got {v})"))
                })
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<CodecSpec, E> {
                Ok(CodecSpec::Name(v.to_string()))
            }
        }
        d.deserialize_any(CodecVisitor)
    }
}

impl CodecSpec {
    /// The multicodec code.
    ///
    /// # Errors
    /// An unknown name, with the known ones listed.
    pub fn code(&self) -> Result<u64, String> {
        match self {
            CodecSpec::Code(c) => Ok(*c),
            CodecSpec::Name(name) => codec::from_name(name).ok_or_else(|| {
                format!(
                    "unknown codec {name:?}: use a multicodec number or one of raw, json, cbor, messagepack, \
                     protobuf, dag-cbor, dag-json"
                )
            }),
        }
    }
}

/// Encodes a written payload for `codec` (or the default codec for its shape).
///
/// # Errors
/// A payload that cannot be bytes under the codec, said in a sentence.
pub fn encode(value: &Value, codec: Option<u64>) -> Result<(Vec<u8>, u64), String> {
    let codec = codec.unwrap_or(if value.is_string() { codec::RAW } else { codec::JSON });
    if codec == codec::JSON {
        return Ok((value.to_string().into_bytes(), codec));
    }
    let bytes = match value {
        Value::String(s) => s.clone().into_bytes(),
        Value::Array(items) => items
            .iter()
            .map(|v| v.as_u64().and_then(|b| u8::try_from(b).ok()))
            .collect::<Option<Vec<u8>>>()
            .ok_or_else(|| "an array payload must hold byte values 0 to 255".to_string())?,
        _ => {
            let name = codec::name(codec).map_or_else(|| format!("{codec:#x}"), str::to_string);
            return Err(format!("with codec {name} the payload must be a string or an array of bytes"));
        }
    };
    Ok((bytes, codec))
}

/// One stdin line: `{"to": ..., "payload": ..., "codec": ...}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputLine {
    /// The target component.
    pub to: String,
    /// The payload as written.
    pub payload: Value,
    /// The codec (default: raw for a string, json otherwise).
    #[serde(default)]
    pub codec: Option<CodecSpec>,
}

/// Parses one stdin line into target, payload bytes and codec.
///
/// # Errors
/// A sentence saying what is wrong with the line.
pub fn parse_line(line: &str) -> Result<(String, Vec<u8>, u64), String> {
    let input: InputLine = serde_json::from_str(line)
        .map_err(|e| format!("expected {{\"to\": ..., \"payload\": ..., \"codec\": ...}}: {e}"))?;
    let codec = input.codec.as_ref().map(CodecSpec::code).transpose()?;
    let (payload, codec) = encode(&input.payload, codec)?;
    Ok((input.to, payload, codec))
}

/// How a payload is shown: JSON when the codec is json and it parses, a string when it is
/// UTF-8, else an array of bytes.
pub fn show(payload: &[u8], codec: u64) -> Value {
    if codec == codec::JSON
        && let Ok(v) = serde_json::from_slice::<Value>(payload)
    {
        return v;
    }
    match std::str::from_utf8(payload) {
        Ok(s) => Value::String(s.to_string()),
        Err(_) => Value::Array(payload.iter().map(|b| json!(b)).collect()),
    }
}

/// A codec's name, or its number in hex.
pub fn codec_name(code: u64) -> String {
    codec::name(code).map_or_else(|| format!("{code:#x}"), str::to_string)
}

/// The JSON line printed for a reply to the input named `input` (`"stdin:3"`, ...).
pub fn reply_line(input: &str, reply: &MessageEnvelope) -> Value {
    json!({
        "input": input,
        "from": reply.from.as_str(),
        "codec": codec_name(reply.codec),
        "payload": show(&reply.payload, reply.codec),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_default_to_raw_and_other_values_to_json() {
        assert_eq!(encode(&json!("hi"), None).unwrap(), (b"hi".to_vec(), codec::RAW));
        assert_eq!(encode(&json!({"a": 1}), None).unwrap(), (b"{\"a\":1}".to_vec(), codec::JSON));
        assert_eq!(encode(&json!("hi"), Some(codec::JSON)).unwrap(), (b"\"hi\"".to_vec(), codec::JSON));
        assert_eq!(encode(&json!([1, 255]), Some(codec::RAW)).unwrap(), (vec![1, 255], codec::RAW));
    }

    #[test]
    fn unencodable_payloads_are_explained() {
        assert!(encode(&json!([1, 256]), Some(codec::RAW)).unwrap_err().contains("0 to 255"));
        assert!(encode(&json!(3), Some(codec::CBOR)).unwrap_err().contains("codec cbor"));
    }

    #[test]
    fn lines_parse_with_named_or_numeric_codecs() {
        assert_eq!(parse_line(r#"{"to":"a","payload":"x"}"#).unwrap(), ("a".into(), b"x".to_vec(), codec::RAW));
        assert_eq!(parse_line(r#"{"to":"a","payload":"x","codec":85}"#).unwrap().2, 0x55);
        assert!(parse_line(r#"{"to":"a","payload":"x","codec":"yaml"}"#).unwrap_err().contains("unknown codec"));
        assert!(parse_line(r#"{"to":"a","payload":"x","codec":-1}"#).unwrap_err().contains("from 0 to"));
        assert_eq!(parse_line(r#"{"to":"a","payload":"x","codec":18446744073709551615}"#).unwrap().2, u64::MAX);
        assert!(parse_line(r#"{"to":"a"}"#).unwrap_err().contains("missing field `payload`"));
        assert!(parse_line(r#"{"to":"a","payload":"x","extra":1}"#).unwrap_err().contains("unknown field"));
        assert!(parse_line("not json").unwrap_err().contains("expected {"));
    }

    #[test]
    fn replies_show_json_text_or_bytes() {
        assert_eq!(show(b"{\"n\":2}", codec::JSON), json!({"n": 2}));
        assert_eq!(show(b"7", codec::RAW), json!("7"));
        assert_eq!(show(&[0xff, 0], codec::RAW), json!([255, 0]));
    }
}
