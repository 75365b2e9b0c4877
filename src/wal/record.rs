//! The WAL line codec: one JSON object per line, in the contract's shapes.
//!
//! ```text
//! {"op":"set","key":K,"value":V,"ttl":N,"timestamp":T}
//! {"op":"delete","key":K,"timestamp":T}
//! ```
//! `ttl` is written only when given; `timestamp` is Unix seconds with
//! millisecond precision (`1764129000.123`). The lines of a batch that writes
//! more than one record also carry `"batch":ID,"batch_len":N`, so that replay
//! can apply a batch only when all N of its lines are present. Decoding is
//! lenient the way the contract asks: integer or fractional timestamps, `ttl`
//! absent or null, unknown members ignored.

use std::borrow::Cow;
use std::fs::File;
use std::io;

use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use crate::ttl::deadline_ms;
use crate::value::{is_plain_json_string, Key, StoredValue};

/// One write as the log records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op<V = StoredValue> {
    /// Set `key` to `value`, expiring `ttl` seconds after the record's timestamp.
    Set {
        key: Key,
        value: V,
        ttl: Option<u64>,
    },
    /// Remove `key`.
    Delete { key: Key },
}

/// Marks a line as one of `len` lines written by one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchMark {
    /// Identifies the batch among its neighbours in the log.
    pub id: u64,
    /// How many lines the batch wrote.
    pub len: u32,
}

/// One line of the log.
///
/// `V` is how the value of a `set` is held: a [`StoredValue`], or for replay
/// into a store a [`LogValue`], which may only say where the value is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<V = StoredValue> {
    /// What the record does.
    pub op: Op<V>,
    /// Wall-clock write time in milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// Present on each line of a multi-write batch.
    pub batch: Option<BatchMark>,
}

/// Why a line is not a record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DecodeError(pub String);

/// The value of a `set` as replay into a store first reads it.
///
/// Most values of a long log are overwritten or deleted before its end, so
/// a plain string value (the common case) is only located during the scan;
/// the loader copies the values that survive, once, at the end. Anything
/// else is canonicalised as it is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogValue {
    /// The value, canonical.
    Ready(StoredValue),
    /// A plain JSON string (its own compact form) at this place in the log.
    InLog {
        /// Byte offset of the opening quote.
        offset: u64,
        /// Length, quotes included.
        len: u32,
    },
}

impl From<StoredValue> for LogValue {
    fn from(value: StoredValue) -> LogValue {
        LogValue::Ready(value)
    }
}

/// A value type a log scan can decode lines into.
pub trait LineValue: Sized + Send {
    /// Parses one line (without its newline) that starts at byte `offset`
    /// of the log.
    fn decode_line(line: &[u8], offset: u64) -> Result<Record<Self>, DecodeError>;
}

impl LineValue for StoredValue {
    fn decode_line(line: &[u8], _offset: u64) -> Result<Record, DecodeError> {
        Record::decode(line)
    }
}

impl LineValue for LogValue {
    fn decode_line(line: &[u8], offset: u64) -> Result<Record<LogValue>, DecodeError> {
        let text = utf8(line)?;
        let value_at = |value: &str| {
            let len = u32::try_from(value.len()).ok()?;
            if !is_plain_json_string(value) {
                return None;
            }
            // `value` is a slice of `text`, which starts at `offset`.
            let start = value.as_ptr() as usize - text.as_ptr() as usize;
            Some(LogValue::InLog {
                offset: offset + start as u64,
                len,
            })
        };
        let located = decode_canonical(text, |value| {
            value_at(value).or_else(|| StoredValue::from_json_text(value).map(LogValue::Ready))
        });
        match located {
            Some(record) => Ok(record),
            None => Record::decode_json(text).map(|r| r.map_value(LogValue::Ready)),
        }
    }
}

/// The members that come before a set's value, as the encoder writes them
/// and [`decode_canonical`] reads them: `...,"key":"<key>","value":<value>`.
const KEY_MEMBER: &str = ",\"key\":";
const VALUE_MEMBER: &str = ",\"value\":";

/// Reads back the values that replay left in the log ([`LogValue::InLog`]),
/// through a window sliding over the file: cheapest in file order.
pub struct LocatedValues<'f> {
    log: &'f File,
    window: Vec<u8>,
    window_start: u64,
}

/// Bytes of log read at a time.
const READ_WINDOW: usize = 1 << 20;

impl<'f> LocatedValues<'f> {
    /// A reader of values located in `log`, the file the scan read.
    pub fn new(log: &'f File) -> Self {
        LocatedValues {
            log,
            window: Vec::new(),
            window_start: 0,
        }
    }

    /// The value the scan located at `offset` (`len` bytes) in a line
    /// setting `key`.
    ///
    /// The members before it are checked too, so a log rewritten since the
    /// scan (an offline reader beside a server that cut a failed write off)
    /// gives an error, never another key's value.
    pub fn read(&mut self, key: &str, offset: u64, len: u32) -> io::Result<StoredValue> {
        let len = len as usize;
        let before = KEY_MEMBER.len() + key.len() + 2 + VALUE_MEMBER.len();
        let changed = || {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("the log changed while it was read (at byte offset {offset})"),
            )
        };
        let start = offset.checked_sub(before as u64).ok_or_else(changed)?;
        let window_end = self.window_start + self.window.len() as u64;
        if start < self.window_start || offset + len as u64 > window_end {
            self.window.resize(READ_WINDOW.max(before + len), 0);
            let read = read_up_to(self.log, &mut self.window, start)?;
            self.window.truncate(read);
            self.window_start = start;
        }
        let at = (start - self.window_start) as usize;
        let line = self.window.get(at..at + before + len).ok_or_else(changed)?;
        let (members, json) = line.split_at(before);
        let same_record = members
            .strip_prefix(KEY_MEMBER.as_bytes())
            .and_then(|rest| rest.strip_prefix(b"\""))
            .and_then(|rest| rest.strip_prefix(key.as_bytes()))
            .and_then(|rest| rest.strip_prefix(b"\""))
            == Some(VALUE_MEMBER.as_bytes());
        std::str::from_utf8(json)
            .ok()
            .filter(|_| same_record)
            .and_then(StoredValue::from_plain_json_string)
            .ok_or_else(changed)
    }
}

/// Reads as much of `buf` as the file holds from `offset` on.
fn read_up_to(log: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    use std::os::unix::fs::FileExt;
    let mut read = 0;
    while read < buf.len() {
        match log.read_at(&mut buf[read..], offset + read as u64) {
            Ok(0) => break,
            Ok(n) => read += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(read)
}

fn utf8(line: &[u8]) -> Result<&str, DecodeError> {
    std::str::from_utf8(line).map_err(|e| DecodeError(format!("not valid UTF-8: {e}")))
}

impl<V> Record<V> {
    /// The same record with its value turned into another form.
    pub fn map_value<W>(self, f: impl FnOnce(V) -> W) -> Record<W> {
        Record {
            op: match self.op {
                Op::Set { key, value, ttl } => Op::Set {
                    key,
                    value: f(value),
                    ttl,
                },
                Op::Delete { key } => Op::Delete { key },
            },
            timestamp_ms: self.timestamp_ms,
            batch: self.batch,
        }
    }

    /// The key the record writes.
    pub fn key(&self) -> &str {
        match &self.op {
            Op::Set { key, .. } | Op::Delete { key } => key,
        }
    }

    /// When the value a `set` writes expires, if it does.
    pub fn deadline_ms(&self) -> Option<u64> {
        match &self.op {
            Op::Set { ttl: Some(ttl), .. } => Some(deadline_ms(self.timestamp_ms, *ttl)),
            _ => None,
        }
    }
}

impl Record {
    /// Appends the record's line, newline included, to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let (op, key) = match &self.op {
            Op::Set { key, .. } => ("set", key),
            Op::Delete { key } => ("delete", key),
        };
        out.extend_from_slice(b"{\"op\":\"");
        out.extend_from_slice(op.as_bytes());
        out.push(b'"');
        out.extend_from_slice(KEY_MEMBER.as_bytes());
        serde_json::to_writer(&mut *out, key.as_str()).expect(VEC_WRITE);
        if let Op::Set { value, ttl, .. } = &self.op {
            out.extend_from_slice(VALUE_MEMBER.as_bytes());
            out.extend_from_slice(value.json().as_bytes());
            if let Some(ttl) = ttl {
                out.extend_from_slice(b",\"ttl\":");
                push_integer(out, *ttl);
            }
        }
        out.extend_from_slice(b",\"timestamp\":");
        push_integer(out, self.timestamp_ms / 1000);
        let millis = self.timestamp_ms % 1000;
        out.extend_from_slice(&[
            b'.',
            b'0' + (millis / 100) as u8,
            b'0' + (millis / 10 % 10) as u8,
            b'0' + (millis % 10) as u8,
        ]);
        if let Some(mark) = self.batch {
            out.extend_from_slice(b",\"batch\":");
            push_integer(out, mark.id);
            out.extend_from_slice(b",\"batch_len\":");
            push_integer(out, mark.len);
        }
        out.extend_from_slice(b"}\n");
    }

    /// The record's line as a string, newline included.
    pub fn encode(&self) -> String {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        String::from_utf8(out).expect("records encode to UTF-8")
    }

    /// Parses one line (without its newline).
    pub fn decode(line: &[u8]) -> Result<Record, DecodeError> {
        let text = utf8(line)?;
        match decode_canonical(text, StoredValue::from_json_text) {
            Some(record) => Ok(record),
            None => Self::decode_json(text),
        }
    }

    /// Parses a line with a full JSON parser: every shape the contract accepts.
    fn decode_json(text: &str) -> Result<Record, DecodeError> {
        let raw: RawRecord<'_> =
            serde_json::from_str(text).map_err(|e| DecodeError(format!("not a record: {e}")))?;
        let timestamp_ms = match &raw.timestamp {
            Some(ts) => Some(timestamp_to_ms(ts)?),
            None => None,
        };
        let key = Key::from(raw.key.as_ref());
        let op = match raw.op.as_ref() {
            "set" => {
                let value = raw
                    .value
                    .ok_or_else(|| DecodeError("a set record needs a \"value\"".into()))?;
                let value = StoredValue::from_json_text(value.get())
                    .ok_or_else(|| DecodeError("\"value\" is not valid JSON".into()))?;
                if raw.ttl.is_some() && timestamp_ms.is_none() {
                    return Err(DecodeError(
                        "a set record with a ttl needs a \"timestamp\"".into(),
                    ));
                }
                Op::Set {
                    key,
                    value,
                    ttl: raw.ttl,
                }
            }
            "delete" => Op::Delete { key },
            other => return Err(DecodeError(format!("unknown op {other:?}"))),
        };
        // Only a well-formed pair is a batch mark; anything else is an extra
        // member of a hand-written line, which the contract ignores.
        let batch = match (
            raw.batch.as_ref().and_then(serde_json::Value::as_u64),
            raw.batch_len
                .as_ref()
                .and_then(serde_json::Value::as_u64)
                .and_then(|len| u32::try_from(len).ok()),
        ) {
            (Some(id), Some(len)) if len >= 1 => Some(BatchMark { id, len }),
            _ => None,
        };
        Ok(Record {
            op,
            timestamp_ms: timestamp_ms.unwrap_or(0),
            batch,
        })
    }
}

/// Parses a line exactly as [`Record::encode_into`] writes it, when its key
/// and value are strings that need no unescaping: the lines replay meets by
/// the million. Anything else (other value kinds, escapes, hand-written
/// lines, odd numbers) returns `None` and goes to the JSON parser, which
/// gives the same record for every line this accepts.
///
/// `value` turns the value's text (a JSON string without escapes, quotes
/// included) into the record's value, or refuses it.
fn decode_canonical<V>(text: &str, value: impl FnOnce(&str) -> Option<V>) -> Option<Record<V>> {
    let mut line = Canonical { rest: text };
    line.eat("{\"op\":\"")?;
    let set = if line.eat("set\"").is_some() {
        true
    } else {
        line.eat("delete\"")?;
        false
    };
    line.eat(KEY_MEMBER)?;
    let quoted_key = line.string()?;
    if !is_plain_json_string(quoted_key) {
        return None;
    }
    let key = Key::from(&quoted_key[1..quoted_key.len() - 1]);
    let op = if set {
        line.eat(VALUE_MEMBER)?;
        let value = value(line.string()?)?;
        let ttl = match line.eat(",\"ttl\":") {
            Some(()) => Some(line.integer()?),
            None => None,
        };
        Op::Set { key, value, ttl }
    } else {
        Op::Delete { key }
    };
    line.eat(",\"timestamp\":")?;
    let seconds = line.integer()?;
    line.eat(".")?;
    let millis = line.three_digits()?;
    // Below 2^33 seconds (the year 2242), the exact milliseconds are what the
    // JSON parser's route (f64 seconds × 1000, rounded) gives too.
    if seconds >= 1 << 33 {
        return None;
    }
    let batch = match line.eat(",\"batch\":") {
        Some(()) => {
            let id = line.integer()?;
            line.eat(",\"batch_len\":")?;
            let len = u32::try_from(line.integer()?)
                .ok()
                .filter(|&len| len >= 1)?;
            Some(BatchMark { id, len })
        }
        None => None,
    };
    line.eat("}")?;
    line.rest.is_empty().then_some(Record {
        op,
        timestamp_ms: seconds * 1000 + millis,
        batch,
    })
}

/// What is left of a line being read by [`decode_canonical`].
struct Canonical<'a> {
    rest: &'a str,
}

impl<'a> Canonical<'a> {
    fn eat(&mut self, literal: &str) -> Option<()> {
        self.rest = self.rest.strip_prefix(literal)?;
        Some(())
    }

    /// A JSON string without escapes, quotes included (control characters
    /// are the caller's to check).
    fn string(&mut self) -> Option<&'a str> {
        let body = self.rest.strip_prefix('"')?;
        let end = memchr::memchr2(b'"', b'\\', body.as_bytes())?;
        if body.as_bytes()[end] != b'"' {
            return None;
        }
        let (string, rest) = self.rest.split_at(end + 2);
        self.rest = rest;
        Some(string)
    }

    /// A JSON integer that fits a u64: no sign, no leading zero.
    fn integer(&mut self) -> Option<u64> {
        let digits = self.rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || (digits > 1 && self.rest.starts_with('0')) {
            return None;
        }
        let (number, rest) = self.rest.split_at(digits);
        self.rest = rest;
        number.parse().ok()
    }

    fn three_digits(&mut self) -> Option<u64> {
        let digits = self.rest.get(..3)?;
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        self.rest = &self.rest[3..];
        digits.parse().ok()
    }
}

const VEC_WRITE: &str = "writing to a Vec cannot fail";

/// Appends `n` in decimal: `itoa` rather than `write!`, whose formatting
/// machinery took more than half of the time a record took to encode.
fn push_integer(out: &mut Vec<u8>, n: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

fn timestamp_to_ms(ts: &serde_json::Number) -> Result<u64, DecodeError> {
    if let Some(secs) = ts.as_u64() {
        return secs
            .checked_mul(1000)
            .ok_or_else(|| DecodeError(format!("timestamp {ts} is out of range")));
    }
    match ts.as_f64() {
        Some(secs) if secs.is_finite() && secs >= 0.0 && secs < (u64::MAX / 1000) as f64 => {
            Ok((secs * 1000.0).round() as u64)
        }
        _ => Err(DecodeError(format!(
            "timestamp {ts} is not a non-negative number of seconds"
        ))),
    }
}

#[derive(Deserialize)]
struct RawRecord<'a> {
    #[serde(borrow)]
    op: Cow<'a, str>,
    #[serde(borrow)]
    key: Cow<'a, str>,
    /// `null` is a value; only a missing member is `None`.
    #[serde(default, borrow, deserialize_with = "present")]
    value: Option<&'a RawValue>,
    #[serde(default)]
    ttl: Option<u64>,
    #[serde(default)]
    timestamp: Option<serde_json::Number>,
    #[serde(default)]
    batch: Option<serde_json::Value>,
    #[serde(default)]
    batch_len: Option<serde_json::Value>,
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_fast_path_agrees_with_the_json_parser() {
        let keys = [
            "a",
            "",
            "key:0001",
            "é/ü ☃",
            "tab\there",
            "quote\"d",
            "back\\slash",
            "\u{7f}",
            "nul\u{0}",
        ];
        let values = [
            json!("x"),
            json!(""),
            json!("héllo ☃"),
            json!("a\"b"),
            json!("\\"),
            json!("\u{1}"),
            json!(1),
            json!(-2.5),
            json!(null),
            json!(true),
            json!({"a": [1, 2]}),
            json!(["x"]),
        ];
        let mut rng = fastrand::Rng::with_seed(42);
        let mut fast_hits = 0;
        for _ in 0..20_000 {
            let key: Key = keys[rng.usize(..keys.len())].into();
            let op = if rng.u8(..4) == 0 {
                Op::Delete { key }
            } else {
                Op::Set {
                    key,
                    value: StoredValue::from_value(&values[rng.usize(..values.len())]),
                    ttl: rng.bool().then(|| rng.u64(..)),
                }
            };
            let record = Record {
                op,
                // Either side of the 2^33 s bound of the fast path.
                timestamp_ms: rng.u64(..(1 << 34) * 1000),
                batch: rng.bool().then(|| BatchMark {
                    id: rng.u64(..),
                    len: rng.u32(1..),
                }),
            };
            let line = record.encode();
            let text = line.trim_end_matches('\n');
            let parsed = Record::decode_json(text).unwrap();
            if let Some(fast) = decode_canonical(text, StoredValue::from_json_text) {
                assert_eq!(fast, parsed, "{text}");
                assert_eq!(fast, record, "{text}");
                fast_hits += 1;
            }
            assert_eq!(Record::decode(text.as_bytes()).unwrap(), parsed, "{text}");
            assert_eq!(located(text), Ok(parsed), "{text}");
        }
        assert!(
            fast_hits > 1_000,
            "the fast path took only {fast_hits} lines"
        );
    }

    #[test]
    fn lines_off_the_canonical_shape_go_to_the_json_parser() {
        for text in [
            r#"{"op":"set","key":"a","value":"x","timestamp":1764129000}"#,
            r#"{"op":"set","key":"a","value":"x","timestamp":1764129000.1}"#,
            r#"{"op":"set","key":"a","value":"x","timestamp":1764129000.12345}"#,
            r#"{"op":"set","key":"a","value":"x","ttl":null,"timestamp":1.000}"#,
            r#"{"op":"set","key":"a","value":"x","timestamp":01.000}"#,
            r#"{"op":"set","key":"a","value":"x","ttl":007,"timestamp":1.000}"#,
            r#"{"op":"set","key":"a","value":"x","timestamp":1.000,"extra":1}"#,
            r#"{"op":"set","key":"a","value":"x","timestamp":1.000} "#,
            r#"{"op":"set","key":"a","value":"x","timestamp":1.000,"batch":3,"batch_len":0}"#,
            r#"{"op":"set","key":"a","value":"x","timestamp":1.000,"batch":3,"batch_len":4294967296}"#,
            r#"{"op":"set","key":"a\u0062","value":"x","timestamp":1.000}"#,
            r#"{"op":"set","key":"a","value":"x\n","timestamp":1.000}"#,
            r#"{"op":"delete","key":"a","value":"x","timestamp":1.000}"#,
            r#"{"op":"set","key":"a","value":"x","timestamp":99999999999.000}"#,
            r#"{"op":"set","key":"a","value":"x","timestamp":1.000,"key":"b"}"#,
            r#"{"op":"set","key":"a","value":"x","ttl":18446744073709551616,"timestamp":1.000}"#,
        ] {
            assert_eq!(
                decode_canonical(text, StoredValue::from_json_text),
                None,
                "{text}"
            );
            assert_eq!(
                Record::decode(text.as_bytes()),
                Record::decode_json(text),
                "{text}"
            );
            assert_eq!(located(text), Record::decode_json(text), "{text}");
        }
    }

    /// Decodes `text` as replay into a store does, as if it sat at byte 1000
    /// of a log, and reads a located value back from there.
    fn located(text: &str) -> Result<Record, DecodeError> {
        let base = 1000;
        let record = LogValue::decode_line(text.as_bytes(), base)?;
        Ok(record.map_value(|value| match value {
            LogValue::Ready(value) => value,
            LogValue::InLog { offset, len } => {
                let start = (offset - base) as usize;
                let json = &text[start..start + len as usize];
                assert!(is_plain_json_string(json), "located {json:?} in {text}");
                StoredValue::from_json_text(json).unwrap()
            }
        }))
    }

    #[test]
    fn plain_string_values_are_located_not_copied() {
        let text = r#"{"op":"set","key":"k","value":"hello","ttl":5,"timestamp":1.000}"#;
        let record = LogValue::decode_line(text.as_bytes(), 7).unwrap();
        assert_eq!(
            record.op,
            Op::Set {
                key: "k".into(),
                value: LogValue::InLog {
                    offset: 7 + text.find("\"hello").unwrap() as u64,
                    len: 7
                },
                ttl: Some(5)
            }
        );
        let text = r#"{"op":"set","key":"k","value":{"a":1},"timestamp":1.000}"#;
        let record = LogValue::decode_line(text.as_bytes(), 7).unwrap();
        assert!(matches!(
            record.op,
            Op::Set {
                value: LogValue::Ready(_),
                ..
            }
        ));
    }

    fn set(key: &str, value: serde_json::Value, ttl: Option<u64>, ts: u64) -> Record {
        Record {
            op: Op::Set {
                key: key.into(),
                value: StoredValue::from_value(&value),
                ttl,
            },
            timestamp_ms: ts,
            batch: None,
        }
    }

    #[test]
    fn encodes_the_contract_shapes() {
        assert_eq!(
            set("user:1", json!("Alice"), Some(300), 1_764_129_000_123).encode(),
            "{\"op\":\"set\",\"key\":\"user:1\",\"value\":\"Alice\",\"ttl\":300,\"timestamp\":1764129000.123}\n"
        );
        assert_eq!(
            set("k", json!({"b":1,"a":null}), None, 5).encode(),
            "{\"op\":\"set\",\"key\":\"k\",\"value\":{\"b\":1,\"a\":null},\"timestamp\":0.005}\n"
        );
        let delete = Record {
            op: Op::Delete {
                key: "user:2".into(),
            },
            timestamp_ms: 1_764_129_001_000,
            batch: None,
        };
        assert_eq!(
            delete.encode(),
            "{\"op\":\"delete\",\"key\":\"user:2\",\"timestamp\":1764129001.000}\n"
        );
    }

    #[test]
    fn round_trips_every_kind_of_record() {
        let mut batched = set("a\"b\n/ü", json!([1, 2.5, "x"]), Some(7), 1_764_129_000_999);
        batched.batch = Some(BatchMark { id: 42, len: 3 });
        let records = [
            set("k", json!(null), None, 1),
            set("k", json!(18446744073709551615u64), None, 1_764_129_000_000),
            batched,
            Record {
                op: Op::Delete { key: "gone".into() },
                timestamp_ms: 1_764_129_000_001,
                batch: Some(BatchMark { id: 1, len: 2 }),
            },
        ];
        for record in records {
            let line = record.encode();
            let decoded = Record::decode(line.trim_end_matches('\n').as_bytes()).unwrap();
            assert_eq!(decoded, record, "line {line}");
        }
    }

    #[test]
    fn a_timestamp_encodes_as_seconds_and_three_digits_of_milliseconds() {
        for ms in [0, 5, 40, 99, 100, 999, 1_000, 1_764_129_000_007, u64::MAX] {
            let record = Record {
                op: Op::Delete { key: "k".into() },
                timestamp_ms: ms,
                batch: None,
            };
            let seconds = ms / 1000;
            let millis = ms % 1000;
            let expected = format!(
                "{{\"op\":\"delete\",\"key\":\"k\",\"timestamp\":{seconds}.{millis:03}}}\n"
            );
            assert_eq!(record.encode(), expected);
        }
    }

    #[test]
    fn accepts_hand_written_lines() {
        let r =
            Record::decode(br#"{"op":"set","key":"a","value":1,"ttl":300,"timestamp":1234567890}"#)
                .unwrap();
        assert_eq!(r.timestamp_ms, 1_234_567_890_000);
        assert_eq!(r.deadline_ms(), Some(1_234_568_190_000));

        let r = Record::decode(
            br#"{"timestamp":1234567890.5,"extra":[1],"op":"set","key":"a","value":{ "x" : 1 },"ttl":null}"#,
        )
        .unwrap();
        assert_eq!(r.timestamp_ms, 1_234_567_890_500);
        assert_eq!(r.deadline_ms(), None);
        match r.op {
            Op::Set { value, .. } => assert_eq!(value.json(), r#"{"x":1}"#),
            _ => panic!("expected a set"),
        }

        let r = Record::decode(br#"{"op":"set","key":"n","value":null}"#).unwrap();
        assert!(matches!(r.op, Op::Set { ref value, .. } if value.json() == "null"));

        for extra in [
            r#""batch":"x""#,
            r#""batch":3"#,
            r#""batch_len":2"#,
            r#""batch":1,"batch_len":0"#,
        ] {
            let line = format!(r#"{{"op":"delete","key":"a","timestamp":1,{extra}}}"#);
            assert_eq!(
                Record::decode(line.as_bytes()).unwrap().batch,
                None,
                "{line}"
            );
        }

        let r = Record::decode(br#"{"op":"delete","key":"a\u00e9","timestamp":1}"#).unwrap();
        assert_eq!(r.key(), "aé");
    }

    #[test]
    fn refuses_what_is_not_a_record() {
        for line in [
            &br#"{"op":"set","key":"x","va"#[..],
            br#"{"op":"set","key":"x","timestamp":1}"#,
            br#"{"op":"incr","key":"x","timestamp":1}"#,
            br#"{"op":"delete","timestamp":1}"#,
            br#"{"op":"set","key":"x","value":1,"ttl":-1,"timestamp":1}"#,
            br#"{"op":"set","key":"x","value":1,"ttl":1.5,"timestamp":1}"#,
            br#"{"op":"set","key":"x","value":1,"ttl":5}"#,
            br#"{"op":"set","key":"x","value":1,"timestamp":-3}"#,
            br#"{"op":"set","key":"x","value":1,"timestamp":"now"}"#,
            b"123",
            b"\x00\x00\x00",
            b"\xff\xfe",
        ] {
            assert!(
                Record::decode(line).is_err(),
                "{:?} should be refused",
                String::from_utf8_lossy(line)
            );
        }
    }
}
