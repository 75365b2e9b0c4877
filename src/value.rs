//! Canonical stored values: compact JSON text plus the size `/stats` counts.
//!
//! A value is stored as its compact JSON text so that a GET can splice it into
//! the response without re-serialising, and so that the WAL and the HTTP layer
//! agree byte for byte on what was written.

use std::alloc::{self, Layout};
use std::ptr::{self, NonNull};

use serde_json::Value;

/// A key as the store and the log keep it: 16 bytes, holding keys of up to
/// 15 bytes inline, so a short key costs no allocation and comparisons
/// during a lookup touch no other memory.
pub type Key = ecow::EcoString;

/// A value as the store keeps it: its compact JSON text behind one thin
/// pointer, so that a stored value costs 8 bytes beside its key plus one
/// small allocation.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredValue {
    json: ThinJson,
}

impl std::fmt::Debug for StoredValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("StoredValue").field(&self.json()).finish()
    }
}

impl StoredValue {
    /// Canonicalises a parsed JSON value (compact text, member order kept).
    pub fn from_value(value: &Value) -> Self {
        let json = serde_json::to_string(value).expect("serialising a Value cannot fail");
        let rule = match value {
            Value::String(_) if json.contains('\\') => SizeRule::EscapedString,
            Value::String(_) => SizeRule::PlainString,
            _ => SizeRule::Text,
        };
        StoredValue {
            json: ThinJson::new(&json, rule),
        }
    }

    /// Canonicalises JSON text; `None` if it is not valid JSON.
    ///
    /// Plain strings without escapes and already-compact scalars are taken as
    /// they are, which keeps WAL replay from re-serialising the common case.
    pub fn from_json_text(text: &str) -> Option<Self> {
        if let Some(value) = Self::from_plain_json_string(text) {
            return Some(value);
        }
        let value: Value = serde_json::from_str(text).ok()?;
        Some(Self::from_value(&value))
    }

    /// A JSON string that is its own compact form (see
    /// `is_plain_json_string`), taken as it is; `None` for anything else.
    pub fn from_plain_json_string(text: &str) -> Option<Self> {
        is_plain_json_string(text).then(|| StoredValue {
            json: ThinJson::new(text, SizeRule::PlainString),
        })
    }

    /// The compact JSON text of the value.
    pub fn json(&self) -> &str {
        self.json.as_str()
    }

    /// Size as `/stats` counts it: UTF-8 bytes for strings, compact JSON length otherwise.
    ///
    /// Worked out from the text's length and the rule kept beside it, so
    /// replacing a value reads only the first bytes of the old one (one
    /// cache miss, not one per cache line of its text); only a string with
    /// escapes is decoded, and sizes are needed only when a value enters or
    /// leaves the store.
    pub fn size(&self) -> u64 {
        let (len, rule, _) = self.json.header();
        match rule {
            SizeRule::Text => len as u64,
            SizeRule::PlainString => (len - 2) as u64,
            SizeRule::EscapedString => {
                let decoded: String =
                    serde_json::from_str(self.json()).expect("stored JSON is always valid");
                decoded.len() as u64
            }
        }
    }

    /// The value parsed back into a `serde_json::Value`.
    pub fn to_value(&self) -> Value {
        serde_json::from_str(self.json()).expect("stored JSON is always valid")
    }
}

/// Whether `text` is a JSON string that is its own compact form: quotes at
/// both ends, and between them no quote, backslash or control character.
pub(crate) fn is_plain_json_string(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() >= 2
        && bytes[0] == b'"'
        && bytes[bytes.len() - 1] == b'"'
        // No early exit: the compiler turns this fold into wide vector
        // compares, several times faster than a byte loop that stops at the
        // first hit, and replay checks every value in the log.
        && !bytes[1..bytes.len() - 1]
            .iter()
            .fold(false, |found, &b| found | (b == b'"') | (b == b'\\') | (b < 0x20))
}

/// How a value's size follows from its compact JSON text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SizeRule {
    /// Not a string: the text's length.
    Text = 0,
    /// A string without escapes: the text's length less the quotes.
    PlainString = 1,
    /// A string with escapes: its decoded length.
    EscapedString = 2,
}

impl SizeRule {
    const BITS: u32 = 2;

    fn from_bits(bits: usize) -> SizeRule {
        match bits {
            0 => SizeRule::Text,
            1 => SizeRule::PlainString,
            _ => SizeRule::EscapedString,
        }
    }
}

/// JSON text in one heap block, behind its length and size rule.
///
/// The length lives in the block rather than beside the pointer: 8 bytes
/// instead of a `Box<str>`'s 16 in every slot of the store's map. Unlike a
/// terminator it is read in O(1), from the cache line the text starts on.
/// The header is `len << 2 | size rule` as a LEB128 varint: one byte below
/// 32 bytes of text, two below 4 KiB, so a typical value's block is no
/// larger than its text plus a terminator would be, and a 100-byte value
/// (102 bytes of JSON, a 2-byte header) still takes a 112-byte block.
struct ThinJson(NonNull<u8>);

// SAFETY: ThinJson owns its block exclusively and never mutates it after
// creation, like a Box<str>.
unsafe impl Send for ThinJson {}
// SAFETY: shared access only reads the immutable block.
unsafe impl Sync for ThinJson {}

/// Bytes of LEB128 that encode `len`.
fn varint_len(mut len: usize) -> usize {
    let mut bytes = 1;
    while len >= 0x80 {
        len >>= 7;
        bytes += 1;
    }
    bytes
}

impl ThinJson {
    fn layout(header: usize) -> Layout {
        let len = header >> SizeRule::BITS;
        Layout::array::<u8>(varint_len(header) + len).expect("a JSON text's length fits a layout")
    }

    fn new(text: &str, rule: SizeRule) -> ThinJson {
        let header_value = text.len() << SizeRule::BITS | rule as usize;
        let layout = Self::layout(header_value);
        // SAFETY: the layout's size is at least 1.
        let block = unsafe { alloc::alloc(layout) };
        let Some(block) = NonNull::new(block) else {
            alloc::handle_alloc_error(layout)
        };
        let header = varint_len(header_value);
        // SAFETY: the block is fresh, writable for header + len bytes, and
        // cannot overlap `text`.
        unsafe {
            let mut rest = header_value;
            for i in 0..header {
                let more = if i + 1 < header { 0x80 } else { 0 };
                block.as_ptr().add(i).write((rest & 0x7f) as u8 | more);
                rest >>= 7;
            }
            ptr::copy_nonoverlapping(text.as_ptr(), block.as_ptr().add(header), text.len());
        }
        ThinJson(block)
    }

    /// The header's value (see [`ThinJson`]) and where the text starts.
    fn header_value_and_start(&self) -> (usize, usize) {
        let (mut value, mut shift, mut i) = (0usize, 0, 0);
        loop {
            // SAFETY: the block starts with a complete varint, written in `new`.
            let byte = unsafe { self.0.as_ptr().add(i).read() };
            value |= usize::from(byte & 0x7f) << shift;
            i += 1;
            if byte & 0x80 == 0 {
                return (value, i);
            }
            shift += 7;
        }
    }

    /// The text's length, its size rule and where it starts in the block.
    fn header(&self) -> (usize, SizeRule, usize) {
        let (value, start) = self.header_value_and_start();
        let rule = SizeRule::from_bits(value & ((1 << SizeRule::BITS) - 1));
        (value >> SizeRule::BITS, rule, start)
    }

    fn as_str(&self) -> &str {
        let (len, _, start) = self.header();
        // SAFETY: after the header the block holds a copy of a &str of the
        // recorded length, and lives as long as self.
        unsafe {
            let bytes = std::slice::from_raw_parts(self.0.as_ptr().add(start), len);
            std::str::from_utf8_unchecked(bytes)
        }
    }
}

impl Drop for ThinJson {
    fn drop(&mut self) {
        let layout = Self::layout(self.header_value_and_start().0);
        // SAFETY: the block was allocated in `new` with this same layout.
        unsafe { alloc::dealloc(self.0.as_ptr(), layout) }
    }
}

impl Clone for ThinJson {
    fn clone(&self) -> ThinJson {
        ThinJson::new(self.as_str(), self.header().1)
    }
}

impl PartialEq for ThinJson {
    fn eq(&self, other: &ThinJson) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for ThinJson {}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The size of `v`, checked to be the same however the value was made.
    fn size_of(v: Value) -> u64 {
        let from_value = StoredValue::from_value(&v);
        let from_text = StoredValue::from_json_text(&v.to_string()).unwrap();
        let size = from_value.size();
        assert_eq!(from_text.size(), size, "{v}");
        assert_eq!(from_value.clone().size(), size, "{v}");
        size
    }

    #[test]
    fn sizes_follow_the_contract() {
        assert_eq!(size_of(json!("hello")), 5);
        assert_eq!(size_of(json!("héllo")), 6);
        assert_eq!(size_of(json!("")), 0);
        assert_eq!(size_of(json!(42)), 2);
        assert_eq!(size_of(json!(true)), 4);
        assert_eq!(size_of(json!(null)), 4);
        assert_eq!(size_of(json!({"a": 1})), 7);
        assert_eq!(size_of(json!([1, 2])), 5);
        assert_eq!(size_of(json!("a\"b")), 3);
        assert_eq!(size_of(json!("tab\there\u{e9}")), 10);
        assert_eq!(size_of(json!("\u{1F600}")), 4);
        assert_eq!(size_of(json!("\\")), 1);
        assert_eq!(size_of(json!(["a\\b"])), 8);
        assert_eq!(size_of(json!("x".repeat(5000))), 5000);
    }

    #[test]
    fn text_and_value_paths_agree() {
        for text in [
            r#""plain""#,
            r#""with \"escape\"""#,
            r#""\u00e9""#,
            "12",
            "1.50",
            "-0",
            "18446744073709551615",
            "-9223372036854775808",
            r#"{ "b" : 1, "a" : [ 1 , 2 ] }"#,
            "null",
        ] {
            let from_text = StoredValue::from_json_text(text).unwrap();
            let from_value = StoredValue::from_value(&serde_json::from_str(text).unwrap());
            assert_eq!(from_text, from_value, "for {text}");
        }
    }

    #[test]
    fn member_order_and_big_integers_survive() {
        let v = StoredValue::from_json_text(
            r#"{"z":1,"a":18446744073709551615,"m":-9223372036854775808}"#,
        )
        .unwrap();
        assert_eq!(
            v.json(),
            r#"{"z":1,"a":18446744073709551615,"m":-9223372036854775808}"#
        );
    }

    #[test]
    fn floats_round_trip() {
        for text in [
            "0.1",
            "1e-300",
            "3.141592653589793",
            "1.7976931348623157e308",
        ] {
            let v = StoredValue::from_json_text(text).unwrap();
            let back: f64 = serde_json::from_str(v.json()).unwrap();
            assert_eq!(back, text.parse::<f64>().unwrap());
        }
    }

    #[test]
    fn thin_json_round_trips_and_clones() {
        for text in ["\"\"", "null", &format!("\"{}\"", "é".repeat(5000))] {
            let v = StoredValue::from_json_text(text).unwrap();
            let copy = v.clone();
            drop(v);
            assert_eq!(copy.json(), text);
        }
        // Lengths on both sides of each varint width.
        // (The header holds the text's length, two more than `len`, shifted
        // left by two: one byte below 32, two below 4 096, three below 2^19.)
        for len in [
            28, 29, 30, 31, 4092, 4093, 4094, 4095, 524_284, 524_285, 524_286, 2_097_150,
        ] {
            let text = format!("\"{}\"", "x".repeat(len));
            let v = StoredValue::from_json_text(&text[..len]);
            assert!(v.is_none() || len < 2);
            let v = StoredValue::from_json_text(&text).unwrap();
            assert_eq!(v.json(), text);
            assert_eq!(v.clone().size(), len as u64);
        }
        // An escaped NUL stays escaped in the text.
        let v = StoredValue::from_value(&json!("a\u{0}b"));
        assert_eq!(v.json(), "\"a\\u0000b\"");
        assert_eq!(v.size(), 3);
        assert_eq!(v.to_value(), json!("a\u{0}b"));
    }

    #[test]
    fn invalid_text_is_rejected() {
        assert!(StoredValue::from_json_text("{").is_none());
        assert!(StoredValue::from_json_text("").is_none());
    }
}
