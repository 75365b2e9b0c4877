//! The local engine's in-memory state: an ordered map of values and its
//! expiry index, with the counters `/stats` reads.
//!
//! The map is a `BTreeMap`, so listing a prefix is a range scan in byte
//! order. Keys with a ttl are also in an index ordered by deadline, which
//! lets the sweeper remove exactly what has expired and lets `stats` discount
//! expired-but-not-yet-swept keys without walking the map. Every method takes
//! `now` so the arithmetic is testable without a clock. The map knows nothing
//! of the log: the engine and the replay loader turn records into its calls.

use std::collections::{BTreeMap, BTreeSet};
use std::num::NonZeroU64;
use std::ops::Bound;

use crate::storage::Stats;
use crate::ttl::has_expired;
use crate::value::{Key, StoredValue};

/// A stored value and when it expires: 24 bytes beside its key.
///
/// While a log is replayed the value may still be in the log
/// (`Entry<LogValue>`, see the loader).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry<V = StoredValue> {
    /// The value.
    pub value: V,
    deadline: Option<NonZeroU64>,
}

impl<V> Entry<V> {
    /// An entry expiring at `deadline_ms`, if given.
    pub fn new(value: V, deadline_ms: Option<u64>) -> Entry<V> {
        Entry {
            value,
            // A deadline of 0 has passed for any clock; 1 ms is as good.
            deadline: deadline_ms.map(|d| NonZeroU64::new(d.max(1)).expect("at least 1")),
        }
    }

    /// Wall-clock deadline in milliseconds, if the key has a ttl.
    pub fn deadline_ms(&self) -> Option<u64> {
        self.deadline.map(NonZeroU64::get)
    }

    /// Whether the entry has not expired at `now_ms`.
    pub fn is_live(&self, now_ms: u64) -> bool {
        self.deadline_ms().is_none_or(|d| !has_expired(d, now_ms))
    }
}

/// The key-value state with its expiry index and counters.
#[derive(Debug, Default)]
pub struct Map {
    map: BTreeMap<Key, Entry>,
    /// `(deadline, key)` for every key that has a deadline.
    expiry: BTreeSet<(u64, Key)>,
    /// Sum of sizes of every entry in `map`, expired or not.
    size_bytes: u64,
}

impl Map {
    /// An empty map.
    pub fn new() -> Map {
        Map::default()
    }

    /// A map of `entries`, one per key, whose values' sizes add up to
    /// `size_bytes`. Runs of entries sorted by key are cheapest: a few runs
    /// are merged, not sorted.
    pub fn from_entries(entries: Vec<(Key, Entry)>, size_bytes: u64) -> Map {
        let expiry = entries
            .iter()
            .filter_map(|(k, e)| e.deadline_ms().map(|d| (d, k.clone())))
            .collect();
        Map {
            // Collecting sorts (stably, merging runs), then builds the tree
            // bottom-up with its nodes full.
            map: entries.into_iter().collect(),
            expiry,
            size_bytes,
        }
    }

    /// The live value of `key`.
    pub fn get(&self, key: &str, now_ms: u64) -> Option<&StoredValue> {
        self.map
            .get(key)
            .filter(|e| e.is_live(now_ms))
            .map(|e| &e.value)
    }

    /// Whether `key` is live.
    pub fn contains(&self, key: &str, now_ms: u64) -> bool {
        self.get(key, now_ms).is_some()
    }

    /// Live keys starting with `prefix`, in ascending byte order.
    pub fn keys_with_prefix<'a>(
        &'a self,
        prefix: &'a str,
        now_ms: u64,
    ) -> impl Iterator<Item = &'a str> + 'a {
        self.entries_with_prefix(prefix, now_ms).map(|(k, _)| k)
    }

    /// Live entries whose key starts with `prefix`, in ascending byte order.
    pub fn entries_with_prefix<'a>(
        &'a self,
        prefix: &'a str,
        now_ms: u64,
    ) -> impl Iterator<Item = (&'a str, &'a Entry)> + 'a {
        self.map
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(move |(k, _)| k.starts_with(prefix))
            .filter(move |(_, e)| e.is_live(now_ms))
            .map(|(k, e)| (&**k, e))
    }

    /// Counts of live keys and their sizes.
    ///
    /// Keys past their deadline that the sweeper has not reached yet are
    /// found through the expiry index, so the cost is proportional to them,
    /// not to the store.
    pub fn stats(&self, now_ms: u64) -> Stats {
        let mut stats = Stats {
            keys: self.map.len() as u64,
            size_bytes: self.size_bytes,
        };
        for (deadline, key) in &self.expiry {
            if !has_expired(*deadline, now_ms) {
                break;
            }
            if let Some(entry) = self.map.get(key) {
                stats.keys -= 1;
                stats.size_bytes -= entry.value.size();
            }
        }
        stats
    }

    /// Inserts or replaces a key's entry.
    pub fn insert(&mut self, key: Key, entry: Entry) {
        self.size_bytes += entry.value.size();
        let deadline_ms = entry.deadline_ms();
        let key = match self.map.get_mut(&key) {
            Some(old) => {
                self.size_bytes -= old.value.size();
                let old_deadline = old.deadline_ms();
                *old = entry;
                let key = self.unindex(key, old_deadline);
                if let Some(deadline) = deadline_ms {
                    self.expiry.insert((deadline, key));
                }
                return;
            }
            None => key,
        };
        if let Some(deadline) = deadline_ms {
            self.expiry.insert((deadline, key.clone()));
        }
        self.map.insert(key, entry);
    }

    /// Removes a key, live or expired. Returns whether it was present.
    pub fn remove(&mut self, key: &str) -> bool {
        match self.map.remove_entry(key) {
            Some((key, entry)) => {
                self.size_bytes -= entry.value.size();
                self.unindex(key, entry.deadline_ms());
                true
            }
            None => false,
        }
    }

    /// Drops `key`'s expiry index entry for `deadline`, handing the key back.
    fn unindex(&mut self, key: Key, deadline: Option<u64>) -> Key {
        match deadline {
            Some(deadline) => {
                let probe = (deadline, key);
                self.expiry.remove(&probe);
                probe.1
            }
            None => key,
        }
    }

    /// Removes up to `limit` keys whose deadline has passed; returns how many.
    pub fn sweep(&mut self, now_ms: u64, limit: usize) -> usize {
        let mut removed = 0;
        while removed < limit {
            match self.expiry.first() {
                Some((deadline, _)) if has_expired(*deadline, now_ms) => {}
                _ => break,
            }
            let (deadline, key) = self.expiry.pop_first().expect("checked non-empty");
            // The index only holds current deadlines; the check keeps a
            // stale entry from ever removing a newer value.
            if self
                .map
                .get(&key)
                .is_some_and(|e| e.deadline_ms() == Some(deadline))
            {
                let entry = self.map.remove(&key).expect("present");
                self.size_bytes -= entry.value.size();
            }
            removed += 1;
        }
        removed
    }

    /// The earliest deadline in the store, expired or not.
    pub fn next_deadline(&self) -> Option<u64> {
        self.expiry.first().map(|(d, _)| *d)
    }

    /// Every entry in the map, including expired ones not yet swept.
    pub fn len_including_expired(&self) -> usize {
        self.map.len()
    }

    /// The expiry index, for tests that compare two maps whole.
    #[cfg(test)]
    pub(crate) fn expiry(&self) -> &BTreeSet<(u64, Key)> {
        &self.expiry
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ttl::deadline_ms;
    use serde_json::json;

    /// Sets `key` as a record written at `ts` with `ttl` would.
    fn put(s: &mut Map, key: &str, v: serde_json::Value, ttl: Option<u64>, ts: u64) {
        let deadline = ttl.map(|ttl| deadline_ms(ts, ttl));
        s.insert(
            key.into(),
            Entry::new(StoredValue::from_value(&v), deadline),
        );
    }

    #[test]
    fn counters_follow_overwrites_and_deletes() {
        let mut s = Map::new();
        put(&mut s, "a", json!("héllo"), None, 0);
        put(&mut s, "b", json!({"a": 1}), None, 0);
        assert_eq!(
            s.stats(0),
            Stats {
                keys: 2,
                size_bytes: 13
            }
        );
        put(&mut s, "a", json!(42), None, 0);
        assert_eq!(
            s.stats(0),
            Stats {
                keys: 2,
                size_bytes: 9
            }
        );
        assert!(s.remove("b"));
        assert!(!s.remove("b"));
        assert_eq!(
            s.stats(0),
            Stats {
                keys: 1,
                size_bytes: 2
            }
        );
    }

    #[test]
    fn expired_keys_are_invisible_before_the_sweep() {
        let mut s = Map::new();
        put(&mut s, "t", json!("xyz"), Some(2), 1_000);
        put(&mut s, "p", json!("q"), None, 1_000);
        assert!(s.contains("t", 2_999));
        assert!(!s.contains("t", 3_000));
        assert_eq!(s.keys_with_prefix("", 3_000).collect::<Vec<_>>(), ["p"]);
        assert_eq!(
            s.stats(2_999),
            Stats {
                keys: 2,
                size_bytes: 4
            }
        );
        assert_eq!(
            s.stats(3_000),
            Stats {
                keys: 1,
                size_bytes: 1
            }
        );
        assert_eq!(s.len_including_expired(), 2);
        assert_eq!(s.sweep(3_000, 100), 1);
        assert_eq!(s.len_including_expired(), 1);
        assert_eq!(
            s.stats(3_000),
            Stats {
                keys: 1,
                size_bytes: 1
            }
        );
    }

    #[test]
    fn overwrite_replaces_the_ttl() {
        let mut s = Map::new();
        put(&mut s, "k", json!(1), Some(1), 0);
        put(&mut s, "k", json!(2), None, 500);
        assert_eq!(s.get("k", 10_000).map(StoredValue::json), Some("2"));
        assert_eq!(s.next_deadline(), None);
        assert_eq!(s.sweep(10_000, 10), 0);

        put(&mut s, "k", json!(3), Some(5), 1_000);
        put(&mut s, "k", json!(4), Some(1), 1_000);
        assert_eq!(s.next_deadline(), Some(2_000));
        assert!(!s.contains("k", 2_000));

        // The same deadline again: still one index entry for the key.
        put(&mut s, "k", json!(5), Some(1), 1_000);
        assert_eq!(s.sweep(2_000, 10), 1);
        assert_eq!(s.next_deadline(), None);
        assert_eq!(s.stats(2_000), Stats::default());
        assert_eq!(s.len_including_expired(), 0);
    }

    #[test]
    fn sweep_respects_its_limit() {
        let mut s = Map::new();
        for i in 0..10 {
            put(&mut s, &format!("k{i}"), json!(i), Some(1), 0);
        }
        assert_eq!(s.sweep(1_000, 4), 4);
        assert_eq!(s.sweep(1_000, 100), 6);
        assert_eq!(s.len_including_expired(), 0);
        assert_eq!(s.stats(1_000), Stats::default());
    }

    #[test]
    fn prefix_listing_is_a_sorted_range() {
        let mut s = Map::new();
        for k in ["user:2", "user:10", "config", "user:1", "users", "usa"] {
            put(&mut s, k, json!(null), None, 0);
        }
        assert_eq!(
            s.keys_with_prefix("user:", 0).collect::<Vec<_>>(),
            ["user:1", "user:10", "user:2"]
        );
        assert_eq!(s.keys_with_prefix("", 0).count(), 6);
        assert_eq!(s.keys_with_prefix("zzz", 0).count(), 0);
    }
}
