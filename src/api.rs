//! Request validation: keys, PUT bodies and batch bodies into commands.
//!
//! Everything a client can get wrong is caught here, before anything reaches
//! the log, and described by a [`RequestError`] whose text is what the client
//! sees in `{"error": ...}`.

use std::borrow::Cow;

use percent_encoding::percent_decode_str;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::storage::{Command, Outcome};
use crate::ttl::{parse_ttl, InvalidTtl};
use crate::value::{Key, StoredValue};

/// Limits on what a request may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest key, in bytes.
    pub max_key_bytes: usize,
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
    /// Most operations in one batch.
    pub max_batch_ops: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_key_bytes: 1024,
            max_body_bytes: 16 * 1024 * 1024,
            max_batch_ops: 10_000,
        }
    }
}

/// What is wrong with a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The key is empty.
    #[error("key must not be empty")]
    EmptyKey,
    /// The key is over the limit.
    #[error("key is {len} bytes, over the limit of {max} bytes")]
    KeyTooLong {
        /// The key's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The key's percent-encoding does not decode to UTF-8.
    #[error("key is not valid percent-encoded UTF-8")]
    KeyEncoding,
    /// A batch operation's key is missing or not a string.
    #[error("\"key\" must be a non-empty string")]
    KeyNotString,
    /// The body is not JSON.
    #[error("request body is not valid JSON: {0}")]
    InvalidJson(String),
    /// The body (or a batch operation) is not a JSON object.
    #[error("{0} must be a JSON object")]
    NotAnObject(&'static str),
    /// A set has no `value` member.
    #[error("missing \"value\" (use null to store null)")]
    MissingValue,
    /// The ttl is not a positive integer in range.
    #[error(transparent)]
    Ttl(#[from] InvalidTtl),
    /// A batch body has no `operations` array.
    #[error("request body must have an \"operations\" array")]
    OperationsMissing,
    /// A batch operation has no string `op`.
    #[error("\"op\" must be one of \"set\", \"get\", \"delete\"")]
    OpMissing,
    /// A batch operation's `op` is not known.
    #[error("unknown op {0:?}")]
    UnknownOp(String),
    /// One operation of a batch is invalid.
    #[error("operations[{index}]: {source}")]
    BadOperation {
        /// The operation's index.
        index: usize,
        /// What is wrong with it.
        source: Box<RequestError>,
    },
    /// The batch has more operations than allowed.
    #[error("batch has {count} operations, over the limit of {max}")]
    TooManyOperations {
        /// Operations sent.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// The body is over the limit.
    #[error("request body is over the limit of {max} bytes")]
    BodyTooLarge {
        /// The limit.
        max: usize,
    },
    /// The body could not be read.
    #[error("cannot read request body: {0}")]
    BodyUnreadable(String),
}

/// The body of a successful write, and of a batch's set or delete.
pub const SUCCESS: &str = r#"{"success":true}"#;
/// A batch get or delete of an absent key.
const NOT_FOUND: &str = r#"{"error":"key not found"}"#;

/// The body answering a batch: `{"results":[...]}`, one result per operation.
pub fn render_results(outcomes: &[Outcome]) -> String {
    let mut out = String::with_capacity(16 + outcomes.len() * 20);
    out.push_str(r#"{"results":["#);
    for (i, outcome) in outcomes.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match outcome {
            Outcome::Done => out.push_str(SUCCESS),
            Outcome::NotFound => out.push_str(NOT_FOUND),
            Outcome::Value(json) => {
                out.push_str(r#"{"value":"#);
                out.push_str(json);
                out.push('}');
            }
        }
    }
    out.push_str("]}");
    out
}

/// Decodes the key part of a `/kv/{key}` path and checks it.
pub fn decode_key<'a>(raw: &'a str, limits: &Limits) -> Result<Cow<'a, str>, RequestError> {
    // percent_decode passes a stray `%` through; the contract calls it invalid.
    let bytes = raw.as_bytes();
    let well_formed = bytes.iter().enumerate().all(|(i, &b)| {
        b != b'%'
            || (bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
    });
    if !well_formed {
        return Err(RequestError::KeyEncoding);
    }
    let key = percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| RequestError::KeyEncoding)?;
    check_key(&key, limits)?;
    Ok(key)
}

/// Checks a decoded key against the rules and limits.
pub fn check_key(key: &str, limits: &Limits) -> Result<(), RequestError> {
    if key.is_empty() {
        return Err(RequestError::EmptyKey);
    }
    if key.len() > limits.max_key_bytes {
        return Err(RequestError::KeyTooLong {
            len: key.len(),
            max: limits.max_key_bytes,
        });
    }
    Ok(())
}

/// Parses a PUT body (JSON whatever its Content-Type) into a value and ttl.
pub fn parse_put(body: &[u8]) -> Result<(StoredValue, Option<u64>), RequestError> {
    if let Some(parsed) = serde_json::from_slice::<Members<'_>>(body)
        .ok()
        .and_then(|m| m.value_and_ttl())
    {
        return Ok(parsed);
    }
    // The general path is the authority on what is wrong.
    let object = parse_object(body, "request body")?;
    value_and_ttl(&object)
}

/// The members of a PUT body or a batch operation, borrowed from the request.
///
/// Parsing into this is the fast path: no tree of `Value`s is built for
/// members that are only passed through. Anything it cannot take as valid is
/// handed to the `Value`-based path, which decides and describes the error.
#[derive(serde::Deserialize)]
struct Members<'a> {
    #[serde(borrow, default)]
    op: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    key: Option<Cow<'a, str>>,
    /// `null` is a value; only a missing member is `None`.
    #[serde(borrow, default, deserialize_with = "present")]
    value: Option<&'a RawValue>,
    #[serde(borrow, default)]
    ttl: Option<&'a RawValue>,
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue as serde::Deserialize>::deserialize(d).map(Some)
}

impl Members<'_> {
    fn value_and_ttl(&self) -> Option<(StoredValue, Option<u64>)> {
        let value = StoredValue::from_json_text(self.value?.get())?;
        let ttl = match self.ttl {
            None => None,
            Some(raw) => {
                let ttl: Value = serde_json::from_str(raw.get()).ok()?;
                parse_ttl(Some(&ttl)).ok()?
            }
        };
        Some((value, ttl))
    }

    fn command(self, limits: &Limits) -> Option<Command> {
        let key = self.key.as_deref()?;
        check_key(key, limits).ok()?;
        let key = Key::from(key);
        match self.op.as_deref()? {
            "set" => {
                let (value, ttl) = self.value_and_ttl()?;
                Some(Command::Set { key, value, ttl })
            }
            "get" => Some(Command::Get { key }),
            "delete" => Some(Command::Delete { key }),
            _ => None,
        }
    }
}

#[derive(serde::Deserialize)]
struct BatchBody<'a> {
    #[serde(borrow)]
    operations: Vec<&'a RawValue>,
}

fn parse_object(body: &[u8], what: &'static str) -> Result<Map<String, Value>, RequestError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err(RequestError::NotAnObject(what)),
        Err(err) => Err(RequestError::InvalidJson(err.to_string())),
    }
}

fn value_and_ttl(object: &Map<String, Value>) -> Result<(StoredValue, Option<u64>), RequestError> {
    let value = object.get("value").ok_or(RequestError::MissingValue)?;
    let ttl = parse_ttl(object.get("ttl"))?;
    Ok((StoredValue::from_value(value), ttl))
}

/// Parses and fully validates a batch body before anything is applied.
pub fn parse_batch(body: &[u8], limits: &Limits) -> Result<Vec<Command>, RequestError> {
    if let Ok(batch) = serde_json::from_slice::<BatchBody<'_>>(body) {
        if batch.operations.len() <= limits.max_batch_ops {
            return batch
                .operations
                .iter()
                .enumerate()
                .map(|(index, raw)| {
                    serde_json::from_str::<Members<'_>>(raw.get())
                        .ok()
                        .and_then(|m| m.command(limits))
                        .map_or_else(
                            // A RawValue is only checked for syntax: numbers
                            // out of range and lone surrogates fail here.
                            || match serde_json::from_str::<Value>(raw.get()) {
                                Ok(op) => parse_operation(&op, limits),
                                Err(err) => Err(RequestError::InvalidJson(err.to_string())),
                            },
                            Ok,
                        )
                        .map_err(|source| RequestError::BadOperation {
                            index,
                            source: Box::new(source),
                        })
                })
                .collect();
        }
    }
    let mut object = parse_object(body, "request body")?;
    let operations = match object.remove("operations") {
        Some(Value::Array(operations)) => operations,
        _ => return Err(RequestError::OperationsMissing),
    };
    if operations.len() > limits.max_batch_ops {
        return Err(RequestError::TooManyOperations {
            count: operations.len(),
            max: limits.max_batch_ops,
        });
    }
    operations
        .iter()
        .enumerate()
        .map(|(index, op)| {
            parse_operation(op, limits).map_err(|source| RequestError::BadOperation {
                index,
                source: Box::new(source),
            })
        })
        .collect()
}

fn parse_operation(op: &Value, limits: &Limits) -> Result<Command, RequestError> {
    let object = op
        .as_object()
        .ok_or(RequestError::NotAnObject("an operation"))?;
    let kind = match object.get("op") {
        Some(Value::String(kind)) => kind.as_str(),
        _ => return Err(RequestError::OpMissing),
    };
    if !matches!(kind, "set" | "get" | "delete") {
        return Err(RequestError::UnknownOp(kind.to_owned()));
    }
    let key = match object.get("key") {
        Some(Value::String(key)) => Key::from(key.as_str()),
        _ => return Err(RequestError::KeyNotString),
    };
    check_key(&key, limits)?;
    Ok(match kind {
        "set" => {
            let (value, ttl) = value_and_ttl(object)?;
            Command::Set { key, value, ttl }
        }
        "get" => Command::Get { key },
        _ => Command::Delete { key },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits::default()
    }

    #[test]
    fn keys_are_percent_decoded() {
        assert_eq!(decode_key("a%2Fb", &limits()).unwrap(), "a/b");
        assert_eq!(decode_key("a/b", &limits()).unwrap(), "a/b");
        assert_eq!(
            decode_key("h%C3%A9%20%3F%23%25", &limits()).unwrap(),
            "hé ?#%"
        );
        assert_eq!(decode_key("", &limits()), Err(RequestError::EmptyKey));
        assert_eq!(decode_key("%FF", &limits()), Err(RequestError::KeyEncoding));
        for bad in ["%ZZ", "abc%", "abc%4", "%G1x", "a%%20"] {
            assert_eq!(
                decode_key(bad, &limits()),
                Err(RequestError::KeyEncoding),
                "{bad}"
            );
        }
        assert_eq!(decode_key("%25%41", &limits()).unwrap(), "%A");
        let long = "k".repeat(1025);
        assert!(matches!(
            decode_key(&long, &limits()),
            Err(RequestError::KeyTooLong {
                len: 1025,
                max: 1024
            })
        ));
    }

    #[test]
    fn put_bodies() {
        let (v, ttl) = parse_put(br#"{"value":null,"extra":1}"#).unwrap();
        assert_eq!((v.json(), ttl), ("null", None));
        let (v, ttl) = parse_put(br#"{"value":{"b":1,"a":2},"ttl":5}"#).unwrap();
        assert_eq!((v.json(), ttl), (r#"{"b":1,"a":2}"#, Some(5)));
        assert_eq!(parse_put(b"{}"), Err(RequestError::MissingValue));
        assert_eq!(
            parse_put(b"[1]"),
            Err(RequestError::NotAnObject("request body"))
        );
        assert!(matches!(parse_put(b"{"), Err(RequestError::InvalidJson(_))));
        assert!(matches!(
            parse_put(br#"{"value":1,"ttl":0}"#),
            Err(RequestError::Ttl(_))
        ));
    }

    #[test]
    fn batch_errors_name_the_operation() {
        let body = br#"{"operations":[{"op":"set","key":"a","value":1},{"op":"get","key":"a"},{"op":"incr","key":"a"}]}"#;
        let err = parse_batch(body, &limits()).unwrap_err();
        assert_eq!(err.to_string(), "operations[2]: unknown op \"incr\"");

        for (op, expect) in [
            (
                r#"{"op":"set","key":"a"}"#,
                "operations[0]: missing \"value\"",
            ),
            (
                r#"{"op":"get","key":""}"#,
                "operations[0]: key must not be empty",
            ),
            (
                r#"{"op":"get","key":7}"#,
                "operations[0]: \"key\" must be a non-empty string",
            ),
            (
                r#"{"op":"get"}"#,
                "operations[0]: \"key\" must be a non-empty string",
            ),
            (
                r#"{"key":"a"}"#,
                "operations[0]: \"op\" must be one of \"set\", \"get\", \"delete\"",
            ),
            (
                r#"{"op":"set","key":"a","value":1,"ttl":-1}"#,
                "operations[0]: ttl must be",
            ),
            ("5", "operations[0]: an operation must be a JSON object"),
        ] {
            let body = format!(r#"{{"operations":[{op}]}}"#);
            let err = parse_batch(body.as_bytes(), &limits())
                .unwrap_err()
                .to_string();
            assert!(err.starts_with(expect), "{op}: {err}");
        }
    }

    #[test]
    fn fast_and_general_paths_agree() {
        for body in [
            r#"{"value":"plain"}"#,
            r#"{"value":"esc\"aped\u00e9","ttl":5}"#,
            r#"{"value":{"b":[1,2.50,null],"a":true}}"#,
            r#"{"value":null,"ttl":null}"#,
            r#"{"value":1,"value":2}"#,
            r#"{"value":1,"ttl":1.0}"#,
            r#"{"value":1,"key":7,"op":[]}"#,
        ] {
            let object = parse_object(body.as_bytes(), "request body").unwrap();
            assert_eq!(parse_put(body.as_bytes()), value_and_ttl(&object), "{body}");
        }
        let body = br#"{"operations":[{"op":"set","key":"a","value":{"z":1},"ttl":9},{"key":"a","op":"get"},{"op":"delete","key":"b","value":1}]}"#;
        assert_eq!(
            parse_batch(body, &limits()).unwrap(),
            vec![
                Command::Set {
                    key: "a".into(),
                    value: StoredValue::from_json_text(r#"{"z":1}"#).unwrap(),
                    ttl: Some(9)
                },
                Command::Get { key: "a".into() },
                Command::Delete { key: "b".into() },
            ]
        );
    }

    #[test]
    fn syntax_valid_but_unparsable_json_is_a_400_not_a_panic() {
        for op in [
            r#"{"op":"set","key":"a","value":1e400}"#,
            r#"{"op":"set","key":"a","value":1,"ttl":1e400}"#,
            r#"{"op":"get","key":"\udc00"}"#,
            r#"{"op":"set","key":"a","value":"\ud800"}"#,
            r#"{"op":"incr","key":"a","x":1e999}"#,
        ] {
            let body = format!(r#"{{"operations":[{{"op":"get","key":"ok"}},{op}]}}"#);
            match parse_batch(body.as_bytes(), &limits()) {
                Err(RequestError::BadOperation { index: 1, .. }) => {}
                other => panic!("{op}: {other:?}"),
            }
            let put = format!(r#"{{"value":{op}}}"#);
            assert!(parse_put(put.as_bytes()).is_err(), "{put}");
        }
    }

    #[test]
    fn batch_shapes() {
        assert_eq!(parse_batch(br#"{"operations":[]}"#, &limits()), Ok(vec![]));
        assert_eq!(
            parse_batch(br#"{}"#, &limits()),
            Err(RequestError::OperationsMissing)
        );
        assert_eq!(
            parse_batch(br#"{"operations":{}}"#, &limits()),
            Err(RequestError::OperationsMissing)
        );
        let small = Limits {
            max_batch_ops: 1,
            ..Limits::default()
        };
        assert!(matches!(
            parse_batch(
                br#"{"operations":[{"op":"get","key":"a"},{"op":"get","key":"b"}]}"#,
                &small
            ),
            Err(RequestError::TooManyOperations { count: 2, max: 1 })
        ));
    }
}
