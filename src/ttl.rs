//! Time and TTL arithmetic: wall-clock milliseconds, validation, deadlines.
//!
//! Deadlines are wall-clock milliseconds since the Unix epoch because they
//! must survive restarts: a record's deadline is its WAL `timestamp` plus its
//! ttl, recomputed identically at write time and at replay.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

/// The largest ttl the contract accepts: ten years of seconds.
pub const MAX_TTL_SECS: u64 = 315_360_000;

/// Wall-clock milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The deadline of a value written at `timestamp_ms` with `ttl_secs`.
pub fn deadline_ms(timestamp_ms: u64, ttl_secs: u64) -> u64 {
    timestamp_ms.saturating_add(ttl_secs.saturating_mul(1000))
}

/// Whether a deadline has passed at `now_ms`: a key is gone at its deadline.
pub fn has_expired(deadline_ms: u64, now_ms: u64) -> bool {
    now_ms >= deadline_ms
}

/// Why a ttl was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("ttl must be a positive integer number of seconds (1 to {MAX_TTL_SECS}), got {0}")]
pub struct InvalidTtl(pub String);

/// Validates a request's `ttl` member: absent or null means no expiry.
pub fn parse_ttl(ttl: Option<&Value>) -> Result<Option<u64>, InvalidTtl> {
    match ttl {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(secs) if (1..=MAX_TTL_SECS).contains(&secs) => Ok(Some(secs)),
            _ => Err(InvalidTtl(n.to_string())),
        },
        Some(other) => Err(InvalidTtl(other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn deadline_adds_seconds_as_milliseconds() {
        assert_eq!(deadline_ms(1_764_129_000_123, 3), 1_764_129_003_123);
        assert_eq!(deadline_ms(u64::MAX - 5, 1), u64::MAX);
    }

    #[test]
    fn a_key_is_gone_exactly_at_its_deadline() {
        assert!(!has_expired(1000, 999));
        assert!(has_expired(1000, 1000));
        assert!(has_expired(1000, 1001));
    }

    #[test]
    fn valid_ttls() {
        assert_eq!(parse_ttl(None), Ok(None));
        assert_eq!(parse_ttl(Some(&json!(null))), Ok(None));
        assert_eq!(parse_ttl(Some(&json!(1))), Ok(Some(1)));
        assert_eq!(
            parse_ttl(Some(&json!(MAX_TTL_SECS))),
            Ok(Some(MAX_TTL_SECS))
        );
    }

    #[test]
    fn invalid_ttls() {
        for bad in [
            json!(0),
            json!(-1),
            json!(1.5),
            json!(1.0),
            json!("10"),
            json!(true),
            json!([1]),
            json!(MAX_TTL_SECS + 1),
        ] {
            assert!(parse_ttl(Some(&bad)).is_err(), "{bad} should be refused");
        }
    }
}
