//! The in-memory state: an ordered map of live values and its expiry index.
//!
//! The map is a `BTreeMap`, so listing a prefix is a range scan in byte
//! order. Keys with a ttl are also in an index ordered by deadline, which
//! lets the sweeper remove exactly what has expired and lets `stats` discount
//! expired-but-not-yet-swept keys without walking the map. Every method takes
//! `now` so the arithmetic is testable without a clock.

use std::alloc::Layout;
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io;
use std::num::NonZeroU64;
use std::ops::Bound;
use std::ptr::NonNull;

use rustc_hash::FxBuildHasher;

use crate::ttl::has_expired;
use crate::value::{Key, StoredValue};
use crate::wal::{LocatedValues, LogValue, Op, Record};

/// A stored value and when it expires: 24 bytes beside its key.
///
/// While a log is replayed the value may still be in the log
/// (`Entry<LogValue>`).
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

    fn is_live(&self, now_ms: u64) -> bool {
        self.deadline_ms().is_none_or(|d| !has_expired(d, now_ms))
    }
}

/// What `/stats` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Stats {
    /// Live keys.
    pub keys: u64,
    /// Sum of the live values' sizes.
    pub size_bytes: u64,
}

/// The key-value state with its expiry index and counters.
#[derive(Debug, Default)]
pub struct Store {
    map: BTreeMap<Key, Entry>,
    /// `(deadline, key)` for every key that has a deadline.
    expiry: BTreeSet<(u64, Key)>,
    /// Sum of sizes of every entry in `map`, expired or not.
    size_bytes: u64,
}

impl Store {
    /// An empty store.
    pub fn new() -> Store {
        Store::default()
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

    /// Applies one logged write. A set whose deadline has passed leaves the
    /// key absent, which is how replay drops expired keys.
    pub fn apply(&mut self, record: Record, now_ms: u64) {
        match leaves(record, now_ms) {
            (key, Some(entry)) => self.insert(key, entry),
            (key, None) => {
                self.remove(&key);
            }
        }
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
}

/// What a logged write leaves for its key at `now_ms`: an entry, or no key
/// at all (a delete, or a set whose deadline has passed, which is how replay
/// drops expired keys).
fn leaves<V>(record: Record<V>, now_ms: u64) -> (Key, Option<Entry<V>>) {
    let deadline_ms = record.deadline_ms();
    match record.op {
        Op::Set { key, value, .. } if !deadline_ms.is_some_and(|d| has_expired(d, now_ms)) => {
            (key, Some(Entry::new(value, deadline_ms)))
        }
        Op::Set { key, .. } | Op::Delete { key } => (key, None),
    }
}

/// Builds a store from a replayed log.
///
/// A log overwrites and deletes keys in no useful order; applying it to the
/// ordered map directly pays a tree descent per record. The loader applies
/// records to hash maps instead and builds the ordered map once at the end
/// from sorted entries, which also leaves its nodes full.
///
/// Probing a table of millions of keys is most of replay's work, and the
/// thread that reads the log in order cannot share it. So the keys are
/// split over `SHARDS` (two) tables by a hash of the key, each fed by a thread
/// of its own once the log proves long: the records of one key still meet
/// their table in log order, and the reading thread only routes them.
///
/// Values may come as [`LogValue::InLog`], still in the log: most are
/// replaced before its end, and [`Loader::finish`] reads back only those
/// that are left.
#[derive(Debug)]
pub struct Loader {
    now_ms: u64,
    /// Records on their way to each shard, in log order.
    buffers: Vec<Vec<Routed>>,
    /// One per shard, once the first buffer has filled.
    shards: Vec<ShardRunner>,
    /// Tells the shard threads to stop early: the load was abandoned.
    abandoned: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

/// Tables the loader spreads keys over.
const SHARDS: usize = 2;
/// Records handed to a shard's thread at a time.
const SHARD_BATCH: usize = 4096;

/// Where a shard's records are applied.
#[derive(Debug)]
enum ShardRunner {
    /// On a thread of its own, which returns the shard's entries when its
    /// channel closes.
    Thread {
        batches: std::sync::mpsc::SyncSender<Vec<Routed>>,
        thread: std::thread::JoinHandle<Vec<(Key, Entry<LogValue>)>>,
    },
    /// Here, if no thread could be started.
    Here(Shard),
}

impl Loader {
    /// A loader that judges expiry at `now_ms`.
    pub fn new(now_ms: u64) -> Loader {
        Loader {
            now_ms,
            buffers: (0..SHARDS).map(|_| Vec::new()).collect(),
            shards: Vec::new(),
            abandoned: Default::default(),
        }
    }

    /// Takes the next record of the log; the store [`Loader::finish`]
    /// returns is what [`Store::apply`] of the same records would leave.
    pub fn apply<V: Into<LogValue>>(&mut self, record: Record<V>) {
        let (key, leaves) = leaves(record.map_value(Into::into), self.now_ms);
        let hash = key_hash(&key);
        let shard = shard_of(hash);
        self.buffers[shard].push(Routed { hash, key, leaves });
        if self.buffers[shard].len() >= SHARD_BATCH {
            if self.shards.is_empty() {
                self.start_shards();
            }
            let batch =
                std::mem::replace(&mut self.buffers[shard], Vec::with_capacity(SHARD_BATCH));
            self.shards[shard].apply(batch);
        }
    }

    fn start_shards(&mut self) {
        self.shards = (0..SHARDS)
            .map(|i| {
                let (batches, received) = std::sync::mpsc::sync_channel::<Vec<Routed>>(4);
                let abandoned = self.abandoned.clone();
                let is_abandoned = move || abandoned.load(std::sync::atomic::Ordering::Relaxed);
                std::thread::Builder::new()
                    .name(format!("replay-{i}"))
                    .spawn(move || {
                        let mut shard = Shard::new();
                        for batch in received {
                            if is_abandoned() {
                                return Vec::new();
                            }
                            batch.into_iter().for_each(|routed| shard.apply(routed));
                        }
                        if is_abandoned() {
                            return Vec::new();
                        }
                        shard.into_entries()
                    })
                    .map_or_else(
                        // Without a thread, the shard is applied here: slower, not wrong.
                        |_| ShardRunner::Here(Shard::new()),
                        |thread| ShardRunner::Thread { batches, thread },
                    )
            })
            .collect();
    }

    /// The store holding what the records left, reading the values that
    /// are still in the log from `log`, the file the records came from.
    pub fn finish(mut self, log: &File) -> io::Result<Store> {
        let buffers = std::mem::take(&mut self.buffers);
        let mut entries = Vec::new();
        if self.shards.is_empty() {
            // A short log: every record is still in its buffer.
            let mut shard = Shard::new();
            for routed in buffers.into_iter().flatten() {
                shard.apply(routed);
            }
            entries = shard.into_entries();
        } else {
            // Every shard gets its last records before any is waited for, so
            // they collect their entries side by side; and every thread is
            // joined before an error of one of them is returned.
            let closing: Vec<_> = std::mem::take(&mut self.shards)
                .into_iter()
                .zip(buffers)
                .map(|(runner, rest)| runner.close(rest))
                .collect();
            let finished: Vec<_> = closing.into_iter().map(Closing::entries).collect();
            for shard_entries in finished {
                let shard_entries = shard_entries?;
                if entries.is_empty() {
                    entries = shard_entries;
                } else {
                    entries.extend(shard_entries);
                }
            }
        }
        let (entries, size_bytes) = read_values(&mut entries, log)?;
        let expiry = entries
            .iter()
            .filter_map(|(k, e)| e.deadline_ms().map(|d| (d, k.clone())))
            .collect();
        Ok(Store {
            // Collecting sorts the entries (at most two sorted runs: one
            // merge) and builds the tree bottom-up.
            map: entries.into_iter().collect(),
            expiry,
            size_bytes,
        })
    }
}

impl Drop for Loader {
    /// A load given up half way (the log turned out corrupt) stops its
    /// threads rather than leave them building tables nobody will read.
    fn drop(&mut self) {
        self.abandoned
            .store(true, std::sync::atomic::Ordering::Relaxed);
        for runner in self.shards.drain(..) {
            if let ShardRunner::Thread { batches, thread } = runner {
                drop(batches);
                let _ = thread.join();
            }
        }
    }
}

/// A record on its way to its shard: what it leaves for its key, and the
/// key's hash, computed once for the routing and the shard's table.
#[derive(Debug)]
struct Routed {
    hash: u64,
    key: Key,
    leaves: Option<Entry<LogValue>>,
}

/// Fx hashing: the keys come from our own log, not from an adversary, and a
/// cheap hash matters over millions of records.
fn key_hash(key: &str) -> u64 {
    use std::hash::BuildHasher;
    FxBuildHasher.hash_one(key)
}

/// Which shard a key's records go to: bit 40 of the hash, which the shard's
/// own table uses neither for its bucket index (low bits) nor for its tags
/// (top 7 bits), so each table still spreads its keys over all its buckets.
fn shard_of(hash: u64) -> usize {
    (hash >> 40) as usize % SHARDS
}

impl ShardRunner {
    fn apply(&mut self, batch: Vec<Routed>) {
        match self {
            ShardRunner::Thread { batches, .. } => {
                // The thread stops when its channel closes, or when the load
                // is abandoned (and then nothing is sent any more): a failed
                // send means it panicked, which `Closing::entries` reports.
                let _ = batches.send(batch);
            }
            ShardRunner::Here(shard) => batch.into_iter().for_each(|r| shard.apply(r)),
        }
    }

    /// Hands the shard its last records and closes its channel: its thread
    /// goes on to collect its entries by itself.
    fn close(mut self, rest: Vec<Routed>) -> Closing {
        self.apply(rest);
        match self {
            ShardRunner::Thread { batches, thread } => {
                drop(batches);
                Closing::Thread(thread)
            }
            ShardRunner::Here(shard) => Closing::Here(shard),
        }
    }
}

/// A shard that has all its records, on its way to its entries.
enum Closing {
    Thread(std::thread::JoinHandle<Vec<(Key, Entry<LogValue>)>>),
    Here(Shard),
}

impl Closing {
    /// The shard's entries, once its thread (if any) has ended.
    fn entries(self) -> io::Result<Vec<(Key, Entry<LogValue>)>> {
        match self {
            Closing::Thread(thread) => thread
                .join()
                .map_err(|_| io::Error::other("a replay thread panicked")),
            Closing::Here(shard) => Ok(shard.into_entries()),
        }
    }
}

/// One shard of the loader: the keys it was given, in a hash table.
#[derive(Debug)]
struct Shard {
    entries: hashbrown::HashTable<(Key, Entry<LogValue>), HugePages>,
    /// Replaced and deleted entries, freed by another thread (see [`Graveyard`]).
    graveyard: Graveyard,
}

impl Shard {
    fn new() -> Shard {
        Shard {
            entries: hashbrown::HashTable::new_in(HugePages),
            graveyard: Graveyard::default(),
        }
    }

    fn apply(&mut self, Routed { hash, key, leaves }: Routed) {
        use hashbrown::hash_table::Entry as Slot;
        let same_key = |(k, _): &(Key, Entry<LogValue>)| *k == key;
        let old = match leaves {
            Some(entry) => match self.entries.entry(hash, same_key, |(k, _)| key_hash(k)) {
                Slot::Occupied(mut slot) => Some(std::mem::replace(&mut slot.get_mut().1, entry)),
                Slot::Vacant(slot) => {
                    slot.insert((key, entry));
                    None
                }
            },
            None => self
                .entries
                .find_entry(hash, same_key)
                .ok()
                .map(|slot| slot.remove().0 .1),
        };
        // A value still in the log costs nothing to drop.
        if let Some(
            old @ Entry {
                value: LogValue::Ready(_),
                ..
            },
        ) = old
        {
            self.graveyard.bury(old);
        }
    }

    fn into_entries(mut self) -> Vec<(Key, Entry<LogValue>)> {
        self.graveyard.close();
        self.entries.into_iter().collect()
    }
}

/// Turns the loaded entries into the store's, reading the values still in
/// the log, and sums their sizes. Returns the entries as two runs, each
/// sorted by key.
///
/// For a large store two threads each take half of the entries, split by
/// where their values sit in the log, so each reads its part of the file
/// once, front to back.
fn read_values(
    entries: &mut [(Key, Entry<LogValue>)],
    log: &File,
) -> io::Result<(Vec<(Key, Entry)>, u64)> {
    if entries.len() < 100_000 {
        return read_values_in_order(entries, log);
    }
    let middle = entries.len() / 2;
    entries.select_nth_unstable_by_key(middle, place_in_log);
    let (first, second) = entries.split_at_mut(middle);
    // Taken by the helper thread, or by this one if there is no helper.
    let second = std::sync::Mutex::new(Some(second));
    let read_second = || {
        let half = second
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        half.map_or(Ok((Vec::new(), 0)), |half| read_values_in_order(half, log))
    };
    std::thread::scope(|scope| {
        let helper = std::thread::Builder::new().spawn_scoped(scope, read_second);
        let first = read_values_in_order(first, log);
        // Joined before either result is looked at: a scope whose thread
        // panicked unjoined would panic itself.
        let second = match helper {
            Ok(helper) => helper.join().unwrap_or_else(|_| {
                Err(io::Error::other("the thread reading values back panicked"))
            }),
            Err(_) => read_second(),
        };
        let (mut entries, first_size) = first?;
        let (rest, second_size) = second?;
        entries.extend(rest);
        Ok((entries, first_size + second_size))
    })
}

/// Where an entry's value sits in the log; values at hand sort last.
fn place_in_log((_, entry): &(Key, Entry<LogValue>)) -> u64 {
    match entry.value {
        LogValue::InLog { offset, .. } => offset,
        LogValue::Ready(_) => u64::MAX,
    }
}

/// One thread's share of [`read_values`]: the entries in log order, their
/// values read back in file order; the result sorted by key.
fn read_values_in_order(
    entries: &mut [(Key, Entry<LogValue>)],
    log: &File,
) -> io::Result<(Vec<(Key, Entry)>, u64)> {
    entries.sort_unstable_by_key(place_in_log);
    let mut located = LocatedValues::new(log);
    let mut out = Vec::with_capacity(entries.len());
    let mut size_bytes = 0;
    for (key, entry) in entries.iter_mut() {
        let value = match std::mem::replace(&mut entry.value, LogValue::InLog { offset: 0, len: 0 })
        {
            LogValue::Ready(value) => value,
            LogValue::InLog { offset, len } => located.read(key, offset, len)?,
        };
        size_bytes += value.size();
        out.push((std::mem::take(key), Entry::new(value, entry.deadline_ms())));
    }
    out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    Ok((out, size_bytes))
}

/// Frees replaced values on a thread of its own, in batches.
///
/// Replay is bound by the one thread that applies records in order; freeing
/// the value a record replaces costs it a cache miss on memory another
/// thread allocated. Handing those entries to a helper thread takes that off
/// the critical path. Small logs never start the thread.
#[derive(Debug, Default)]
struct Graveyard {
    batch: Vec<Buried>,
    helper: Option<(
        std::sync::mpsc::SyncSender<Vec<Buried>>,
        std::thread::JoinHandle<()>,
    )>,
}

/// An entry the loader no longer needs.
type Buried = Entry<LogValue>;

/// Entries handed to the helper at a time.
const GRAVEYARD_BATCH: usize = 1 << 14;

impl Graveyard {
    fn bury(&mut self, entry: Buried) {
        self.batch.push(entry);
        if self.batch.len() < GRAVEYARD_BATCH {
            return;
        }
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(GRAVEYARD_BATCH));
        if self.helper.is_none() {
            let (sender, batches) = std::sync::mpsc::sync_channel::<Vec<Buried>>(4);
            let spawned = std::thread::Builder::new()
                .name("replay-free".into())
                .spawn(move || batches.into_iter().for_each(drop));
            // Without a thread, freeing here is merely slower.
            self.helper = spawned.ok().map(|thread| (sender, thread));
        }
        if let Some((sender, _)) = &self.helper {
            // The helper only stops when the sender is dropped.
            let _ = sender.send(batch);
        }
    }

    /// Waits until everything buried has been freed.
    fn close(&mut self) {
        self.batch = Vec::new();
        if let Some((sender, thread)) = self.helper.take() {
            drop(sender);
            let _ = thread.join();
        }
    }
}

impl Drop for Graveyard {
    /// A shard dropped half way (an abandoned load) leaves no helper behind.
    fn drop(&mut self) {
        self.close();
    }
}

/// Allocates large blocks on transparent huge pages.
///
/// The loader's table is probed at random over hundreds of megabytes; with
/// 4 KiB pages nearly every probe also misses the TLB. Asking for huge pages
/// (where the system grants them on request, as Linux does by default) made
/// a 10M-record replay about 14% faster. Small blocks go to the global
/// allocator as usual. The table lives only while the log is replayed.
#[derive(Debug, Clone, Copy)]
struct HugePages;

/// The size and alignment of a huge page on x86-64 and aarch64 Linux.
const HUGE_PAGE: usize = 2 << 20;

impl HugePages {
    /// The layout actually used for `layout`: whole, aligned huge pages.
    fn huge(layout: Layout) -> Option<Layout> {
        if layout.size() < HUGE_PAGE {
            return None;
        }
        let size = layout.size().checked_next_multiple_of(HUGE_PAGE)?;
        Layout::from_size_align(size, HUGE_PAGE.max(layout.align())).ok()
    }
}

// SAFETY: every block comes from the global allocator, and is returned to it
// with the layout it was allocated with (`huge` is a pure function of the
// caller's layout).
unsafe impl allocator_api2::alloc::Allocator for HugePages {
    fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, allocator_api2::alloc::AllocError> {
        let Some(huge) = Self::huge(layout) else {
            return allocator_api2::alloc::Global.allocate(layout);
        };
        // SAFETY: the layout's size is at least HUGE_PAGE, not zero.
        let block = NonNull::new(unsafe { std::alloc::alloc(huge) })
            .ok_or(allocator_api2::alloc::AllocError)?;
        #[cfg(target_os = "linux")]
        // SAFETY: the range is the block just allocated, aligned to a page;
        // the advice only changes how it is backed, never its contents.
        unsafe {
            libc::madvise(block.as_ptr().cast(), huge.size(), libc::MADV_HUGEPAGE);
        }
        Ok(NonNull::slice_from_raw_parts(block, layout.size()))
    }

    unsafe fn deallocate(&self, block: NonNull<u8>, layout: Layout) {
        match Self::huge(layout) {
            // SAFETY: allocated above with this same layout.
            Some(huge) => unsafe { std::alloc::dealloc(block.as_ptr(), huge) },
            // SAFETY: the caller's contract, passed on to the global allocator.
            None => unsafe { allocator_api2::alloc::Global.deallocate(block, layout) },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::io::{Seek, Write};

    fn val(v: serde_json::Value) -> StoredValue {
        StoredValue::from_value(&v)
    }

    fn set(key: &str, v: serde_json::Value, ttl: Option<u64>, ts: u64) -> Record {
        Record {
            op: Op::Set {
                key: key.into(),
                value: val(v),
                ttl,
            },
            timestamp_ms: ts,
            batch: None,
        }
    }

    #[test]
    fn counters_follow_overwrites_and_deletes() {
        let mut s = Store::new();
        s.apply(set("a", json!("héllo"), None, 0), 0);
        s.apply(set("b", json!({"a": 1}), None, 0), 0);
        assert_eq!(
            s.stats(0),
            Stats {
                keys: 2,
                size_bytes: 13
            }
        );
        s.apply(set("a", json!(42), None, 0), 0);
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
        let mut s = Store::new();
        s.apply(set("t", json!("xyz"), Some(2), 1_000), 1_000);
        s.apply(set("p", json!("q"), None, 1_000), 1_000);
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
        let mut s = Store::new();
        s.apply(set("k", json!(1), Some(1), 0), 0);
        s.apply(set("k", json!(2), None, 500), 500);
        assert_eq!(s.get("k", 10_000).map(StoredValue::json), Some("2"));
        assert_eq!(s.next_deadline(), None);
        assert_eq!(s.sweep(10_000, 10), 0);

        s.apply(set("k", json!(3), Some(5), 1_000), 1_000);
        s.apply(set("k", json!(4), Some(1), 1_000), 1_000);
        assert_eq!(s.next_deadline(), Some(2_000));
        assert!(!s.contains("k", 2_000));

        // The same deadline again: still one index entry for the key.
        s.apply(set("k", json!(5), Some(1), 1_000), 1_000);
        assert_eq!(s.sweep(2_000, 10), 1);
        assert_eq!(s.next_deadline(), None);
        assert_eq!(s.stats(2_000), Stats::default());
        assert_eq!(s.len_including_expired(), 0);
    }

    #[test]
    fn replaying_an_expired_set_leaves_the_key_absent() {
        let mut s = Store::new();
        s.apply(set("k", json!("old"), None, 0), 0);
        s.apply(set("k", json!("new"), Some(1), 0), 5_000);
        assert!(!s.contains("k", 5_000));
        assert_eq!(s.stats(5_000), Stats::default());
        assert_eq!(s.len_including_expired(), 0);
    }

    #[test]
    fn loader_builds_what_apply_builds() {
        let records = vec![
            set("a", json!("x"), None, 0),
            set("b", json!([1]), Some(5), 1_000),
            set("c", json!(1), Some(1), 0),
            set("a", json!("héllo"), None, 2_000),
            Record {
                op: Op::Delete { key: "d".into() },
                timestamp_ms: 0,
                batch: None,
            },
            set("d", json!(null), None, 0),
            Record {
                op: Op::Delete { key: "d".into() },
                timestamp_ms: 0,
                batch: None,
            },
            set("e", json!({"k": 1}), Some(100), 0),
        ];
        let now = 3_000;
        let mut applied = Store::new();
        let mut loader = Loader::new(now);
        for record in records {
            applied.apply(record.clone(), now);
            loader.apply(record);
        }
        let loaded = loader.finish(&tempfile::tempfile().unwrap()).unwrap();
        let entries = |s: &Store| {
            s.entries_with_prefix("", 0)
                .map(|(k, e)| (k.to_owned(), e.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(entries(&loaded), entries(&applied));
        assert_eq!(loaded.stats(now), applied.stats(now));
        assert_eq!(loaded.stats(6_000), applied.stats(6_000));
        assert_eq!(loaded.next_deadline(), applied.next_deadline());
        assert_eq!(loaded.expiry, applied.expiry);
    }

    /// Scans `log` from its start into a loader, values located.
    fn scan_located(log: &File, now: u64) -> Result<Loader, String> {
        (&*log).rewind().unwrap();
        let mut loader = Loader::new(now);
        crate::wal::replay::scan(
            std::io::BufReader::new(log),
            std::path::Path::new("wal.log"),
            |record: Record<LogValue>, _| loader.apply(record),
            |_| {},
        )
        .map_err(|e| e.to_string())?;
        Ok(loader)
    }

    /// Writes `text` to `log` and loads it with located values.
    fn load_located(text: &[u8], log: &mut File, now: u64) -> Result<Store, String> {
        log.write_all(text).unwrap();
        scan_located(log, now)?
            .finish(log)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn located_values_load_as_read_values_do_on_odd_logs() {
        // CRLF endings, blank lines, lines off the encoder's shape, batches,
        // a last line without its newline, then torn tails of both kinds.
        let body = concat!(
            "{\"op\":\"set\",\"key\":\"a\",\"value\":\"one\",\"timestamp\":1.000}\r\n",
            "\n   \n",
            "{\"op\":\"set\",\"key\":\"b\",\"value\":\"two\",\"ttl\":9,\"timestamp\":1.000}\n",
            "{\"op\":\"set\",\"key\":\"c\",\"value\":\"t\\u00e9\",\"timestamp\":1}\n",
            "{\"op\":\"set\",\"key\":\"d\",\"value\":\"x\",\"timestamp\":1.000,\"batch\":1,\"batch_len\":2}\n",
            "{\"op\":\"delete\",\"key\":\"a\",\"timestamp\":1.000,\"batch\":1,\"batch_len\":2}\n",
            " {\"op\":\"set\",\"key\":\"e\",\"value\":\"sp\",\"timestamp\":1.000}\n",
            "{\"op\":\"set\",\"key\":\"a\",\"value\":\"three\",\"timestamp\":1.000}\r\n",
            "{\"op\":\"set\",\"key\":\"f\",\"value\":\"last\",\"timestamp\":1.000}",
        );
        let tails = [
            "",
            "\n{\"op\":\"set\",\"key\":\"g\",\"val",
            "\n{\"op\":\"set\",\"key\":\"g\",\"value\":\"y\",\"timestamp\":1.000,\"batch\":2,\"batch_len\":2}\n",
        ];
        for tail in tails {
            let text = format!("{body}{tail}");
            let mut applied = Loader::new(5_000);
            crate::wal::replay::scan(
                std::io::Cursor::new(text.as_bytes()),
                std::path::Path::new("wal.log"),
                |record: Record, _| applied.apply(record),
                |_| {},
            )
            .unwrap();
            let applied = applied.finish(&tempfile::tempfile().unwrap()).unwrap();
            let loaded =
                load_located(text.as_bytes(), &mut tempfile::tempfile().unwrap(), 5_000).unwrap();
            let keys: Vec<_> = loaded.entries_with_prefix("", 0).map(|(k, _)| k).collect();
            assert_eq!(keys, ["a", "b", "c", "d", "e", "f"], "{tail:?}");
            assert!(
                loaded
                    .entries_with_prefix("", 0)
                    .eq(applied.entries_with_prefix("", 0)),
                "{tail:?}"
            );
            assert_eq!(loaded.stats(5_000), applied.stats(5_000));
            assert_eq!(loaded.expiry, applied.expiry);
        }
    }

    #[test]
    fn a_log_rewritten_after_the_scan_is_an_error_not_another_keys_value() {
        let line = |key: &str, value: &str| {
            format!(
                "{{\"op\":\"set\",\"key\":\"{key}\",\"value\":\"{value}\",\"timestamp\":1.000}}\n"
            )
        };
        let scanned = format!("{}{}", line("k1", "old"), line("k2", "old"));
        let rewritten = format!("{}{}", line("k1", "old"), line("k3", "new"));
        let mut log = tempfile::tempfile().unwrap();
        log.write_all(scanned.as_bytes()).unwrap();
        let loader = scan_located(&log, 0).unwrap();
        log.rewind().unwrap();
        log.write_all(rewritten.as_bytes()).unwrap();
        let err = loader.finish(&log).unwrap_err();
        assert!(err.to_string().contains("changed"), "{err}");
    }

    #[test]
    fn a_load_abandoned_half_way_stops_its_threads() {
        // Enough records for the shard threads to start, then corruption.
        let mut text = Vec::new();
        for i in 0..20_000u64 {
            set(&format!("k{i}"), json!("v"), None, 0).encode_into(&mut text);
        }
        text.extend_from_slice(b"garbage\n");
        set("after", json!("v"), None, 0).encode_into(&mut text);
        let mut loader = Loader::new(0);
        let err = crate::wal::replay::scan(
            std::io::Cursor::new(&text),
            std::path::Path::new("wal.log"),
            |record: Record<LogValue>, _| loader.apply(record),
            |_| {},
        )
        .unwrap_err();
        assert!(err.to_string().contains("line 20001"), "{err}");
        assert_eq!(
            loader.shards.len(),
            SHARDS,
            "the shard threads never started"
        );
        // Each shard thread holds the flag until it ends.
        let flag = std::sync::Arc::downgrade(&loader.abandoned);
        drop(loader);
        assert!(
            flag.upgrade().is_none(),
            "a shard thread outlived its loader"
        );
    }

    #[test]
    fn loader_reads_the_values_left_in_the_log_back() {
        // Enough keys that two threads read values back. Keys are set again,
        // deleted and expire; values are plain strings (left in the log),
        // strings with escapes and objects (read at once).
        let now = 10_000;
        let mut records = Vec::new();
        for i in 0..150_000u64 {
            let value = match i % 5 {
                0 => json!({ "n": i }),
                1 => json!(format!("é\"{i}")),
                _ => json!(format!("value {i}")),
            };
            let ttl = (i % 7 == 0).then_some(if i % 2 == 0 { 1 } else { 100 });
            records.push(set(
                &format!("k{}", i % 120_000),
                value,
                ttl,
                5_000 + i % 10,
            ));
            if i % 11 == 0 {
                records.push(Record {
                    op: Op::Delete {
                        key: format!("k{}", i / 2).into(),
                    },
                    timestamp_ms: 5_000,
                    batch: None,
                });
            }
        }
        let mut applied = Store::new();
        let mut text = Vec::new();
        for record in records {
            record.encode_into(&mut text);
            applied.apply(record, now);
        }
        let mut log = tempfile::tempfile().unwrap();
        log.write_all(&text).unwrap();

        let mut loader = Loader::new(now);
        let mut located = 0;
        log.rewind().unwrap();
        crate::wal::replay::scan(
            std::io::BufReader::new(&log),
            std::path::Path::new("wal.log"),
            |record: Record<LogValue>, _| {
                if let Op::Set {
                    value: LogValue::InLog { .. },
                    ..
                } = record.op
                {
                    located += 1;
                }
                loader.apply(record)
            },
            |_| {},
        )
        .unwrap();
        assert!(
            located > 80_000,
            "only {located} values were left in the log"
        );
        let loaded = loader.finish(&log).unwrap();
        assert!(applied.stats(now).keys > 100_000);
        assert!(loaded
            .entries_with_prefix("", 0)
            .eq(applied.entries_with_prefix("", 0)));
        assert_eq!(loaded.stats(now), applied.stats(now));
        assert_eq!(loaded.expiry, applied.expiry);

        // A log cut short after it was read is an error, not a wrong value.
        let loader = scan_located(&log, now).unwrap();
        log.set_len(text.len() as u64 / 2).unwrap();
        assert!(loader.finish(&log).is_err());
    }

    #[test]
    fn loader_on_huge_pages_keeps_every_key_through_growth() {
        // Enough keys that the table grows past a huge page several times.
        let mut loader = Loader::new(0);
        for i in 0..200_000u64 {
            loader.apply(set(&format!("key:{i:08}"), json!(i), None, 0));
        }
        for i in (0..200_000u64).step_by(2) {
            loader.apply::<StoredValue>(Record {
                op: Op::Delete {
                    key: format!("key:{i:08}").into(),
                },
                timestamp_ms: 0,
                batch: None,
            });
        }
        let store = loader.finish(&tempfile::tempfile().unwrap()).unwrap();
        assert_eq!(store.stats(0).keys, 100_000);
        assert_eq!(
            store.get("key:00000001", 0).map(StoredValue::json),
            Some("1")
        );
        assert_eq!(store.get("key:00000002", 0), None);
        assert_eq!(
            store.get("key:00199999", 0).map(StoredValue::json),
            Some("199999")
        );
    }

    #[test]
    fn huge_page_layouts_round_up_and_small_ones_are_left_alone() {
        use allocator_api2::alloc::Allocator;
        let small = Layout::from_size_align(1000, 8).unwrap();
        assert_eq!(HugePages::huge(small), None);
        let big = Layout::from_size_align(HUGE_PAGE + 1, 16).unwrap();
        let huge = HugePages::huge(big).unwrap();
        assert_eq!((huge.size(), huge.align()), (2 * HUGE_PAGE, HUGE_PAGE));
        for layout in [small, big] {
            let block = HugePages.allocate(layout).unwrap();
            assert!(block.len() >= layout.size());
            let start = block.cast::<u8>();
            // SAFETY: the block is at least layout.size() bytes, and is
            // returned with the layout it was allocated with.
            unsafe {
                start.as_ptr().write_bytes(0xA5, layout.size());
                assert_eq!(*start.as_ptr().add(layout.size() - 1), 0xA5);
                HugePages.deallocate(start, layout);
            }
        }
    }

    #[test]
    fn sweep_respects_its_limit() {
        let mut s = Store::new();
        for i in 0..10 {
            s.apply(set(&format!("k{i}"), json!(i), Some(1), 0), 0);
        }
        assert_eq!(s.sweep(1_000, 4), 4);
        assert_eq!(s.sweep(1_000, 100), 6);
        assert_eq!(s.len_including_expired(), 0);
        assert_eq!(s.stats(1_000), Stats::default());
    }

    #[test]
    fn prefix_listing_is_a_sorted_range() {
        let mut s = Store::new();
        for k in ["user:2", "user:10", "config", "user:1", "users", "usa"] {
            s.apply(set(k, json!(null), None, 0), 0);
        }
        assert_eq!(
            s.keys_with_prefix("user:", 0).collect::<Vec<_>>(),
            ["user:1", "user:10", "user:2"]
        );
        assert_eq!(s.keys_with_prefix("", 0).count(), 6);
        assert_eq!(s.keys_with_prefix("zzz", 0).count(), 0);
    }
}
