//! Canonical stored values: compact JSON text plus the size `/stats` counts.
//!
//! A value is stored as its compact JSON text so that a GET can splice it into
//! the response without re-serialising, and so that the WAL and the HTTP layer
//! agree byte for byte on what was written.

use serde_json::Value;

/// A key as the store and the log keep it: up to 24 bytes inline, without
/// an allocation, so that comparisons during a lookup touch no other memory.
pub type Key = compact_str::CompactString;

/// A value as the store keeps it: its compact JSON text, nothing else, so
/// that a million stored values cost a million small allocations and no more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredValue {
    json: Box<str>,
}

impl StoredValue {
    /// Canonicalises a parsed JSON value (compact text, member order kept).
    pub fn from_value(value: &Value) -> Self {
        let json = serde_json::to_string(value).expect("serialising a Value cannot fail");
        StoredValue {
            json: json.into_boxed_str(),
        }
    }

    /// Canonicalises JSON text; `None` if it is not valid JSON.
    ///
    /// Plain strings without escapes and already-compact scalars are taken as
    /// they are, which keeps WAL replay from re-serialising the common case.
    pub fn from_json_text(text: &str) -> Option<Self> {
        let bytes = text.as_bytes();
        if bytes.len() >= 2
            && bytes[0] == b'"'
            && bytes[bytes.len() - 1] == b'"'
            && !bytes[1..bytes.len() - 1]
                .iter()
                .any(|&b| b == b'"' || b == b'\\' || b < 0x20)
        {
            return Some(StoredValue { json: text.into() });
        }
        let value: Value = serde_json::from_str(text).ok()?;
        Some(Self::from_value(&value))
    }

    /// The compact JSON text of the value.
    pub fn json(&self) -> &str {
        &self.json
    }

    /// Size as `/stats` counts it: UTF-8 bytes for strings, compact JSON length otherwise.
    ///
    /// Derived rather than stored: only a string with escapes needs decoding,
    /// and sizes are needed only when a value enters or leaves the store.
    pub fn size(&self) -> u64 {
        let json = self.json.as_bytes();
        if json.first() != Some(&b'"') {
            return json.len() as u64;
        }
        if !json.contains(&b'\\') {
            return (json.len() - 2) as u64;
        }
        let decoded: String =
            serde_json::from_str(&self.json).expect("stored JSON is always valid");
        decoded.len() as u64
    }

    /// The value parsed back into a `serde_json::Value`.
    pub fn to_value(&self) -> Value {
        serde_json::from_str(&self.json).expect("stored JSON is always valid")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn size_of(v: Value) -> u64 {
        StoredValue::from_value(&v).size()
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
    fn invalid_text_is_rejected() {
        assert!(StoredValue::from_json_text("{").is_none());
        assert!(StoredValue::from_json_text("").is_none());
    }
}
