//! A backend that keeps everything in one ordered map in memory and nothing
//! on disk: the plainest code that has the interface's semantics.
//!
//! It passes the same behavioural suite as every backend, and shows in a
//! page what the local engine does at length; it is not durable, so no
//! server runs on it.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::{Command, Key, Outcome, Stats, Storage, StorageError, StoredValue};
use crate::ttl::{deadline_ms, has_expired, now_ms};

/// A value and its wall-clock deadline, if it has a ttl.
#[derive(Debug, Clone)]
struct Entry {
    value: StoredValue,
    deadline_ms: Option<u64>,
}

impl Entry {
    fn is_live(&self, now_ms: u64) -> bool {
        self.deadline_ms.is_none_or(|d| !has_expired(d, now_ms))
    }
}

/// The in-memory backend; clones share one map.
#[derive(Debug, Clone, Default)]
pub struct MemoryStorage {
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    map: Mutex<BTreeMap<Key, Entry>>,
    /// Shut down: writes are refused.
    closed: AtomicBool,
}

impl MemoryStorage {
    /// An empty store.
    pub fn new() -> MemoryStorage {
        MemoryStorage::default()
    }

    /// The map; a panic elsewhere while it was held leaves it whole (every
    /// change is one insert or remove), so poisoning is ignored.
    fn map(&self) -> MutexGuard<'_, BTreeMap<Key, Entry>> {
        self.shared
            .map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

fn live<'m>(map: &'m BTreeMap<Key, Entry>, key: &str, now_ms: u64) -> Option<&'m Entry> {
    map.get(key).filter(|e| e.is_live(now_ms))
}

impl Storage for MemoryStorage {
    async fn get(&self, key: &str) -> Result<Box<str>, StorageError> {
        live(&self.map(), key, now_ms())
            .map(|e| e.value.json().into())
            .ok_or(StorageError::NotFound)
    }

    async fn list(&self, prefix: &str) -> Result<Vec<Key>, StorageError> {
        let now = now_ms();
        Ok(self
            .map()
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .filter(|(_, e)| e.is_live(now))
            .map(|(k, _)| k.clone())
            .collect())
    }

    async fn stats(&self) -> Result<Stats, StorageError> {
        let now = now_ms();
        Ok(self
            .map()
            .values()
            .filter(|e| e.is_live(now))
            .fold(Stats::default(), |stats, e| Stats {
                keys: stats.keys + 1,
                size_bytes: stats.size_bytes + e.value.size(),
            }))
    }

    async fn execute(&self, commands: Vec<Command>) -> Result<Vec<Outcome>, StorageError> {
        let now = now_ms();
        let mut map = self.map();
        if self.shared.closed.load(Ordering::Acquire) && commands.iter().any(Command::writes) {
            return Err(StorageError::shutting_down());
        }
        Ok(commands
            .into_iter()
            .map(|command| match command {
                Command::Set { key, value, ttl } => {
                    let deadline_ms = ttl.map(|ttl| deadline_ms(now, ttl));
                    map.insert(key, Entry { value, deadline_ms });
                    Outcome::Done
                }
                Command::Delete { key } => match map.remove(&key) {
                    Some(entry) if entry.is_live(now) => Outcome::Done,
                    _ => Outcome::NotFound,
                },
                Command::Get { key } => live(&map, &key, now)
                    .map_or(Outcome::NotFound, |e| Outcome::Value(e.value.json().into())),
            })
            .collect())
    }

    async fn shutdown(&self) -> Result<(), StorageError> {
        self.shared.closed.store(true, Ordering::Release);
        Ok(())
    }
}
