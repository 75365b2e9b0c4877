//! Replay: building the local engine's map from a log, fast.
//!
//! A log overwrites and deletes keys in no useful order; applying it to the
//! ordered map directly pays a tree descent per record. The [`Loader`]
//! applies records to hash tables instead and builds the ordered map once at
//! the end from sorted entries, which also leaves its nodes full. How it
//! keeps replay fast, each measured in `bench/results/`:
//! - keys are split over two tables, each fed by a thread of its own, so
//!   probing them is not all on the thread that reads the log;
//! - values may stay in the log ([`LogValue::InLog`]): most are replaced
//!   before its end, and only the ones left are read back, in file order;
//! - replaced values are freed on a helper thread (`graveyard`);
//! - the tables live on transparent huge pages (`huge_pages`).

mod graveyard;
mod huge_pages;

use std::fs::File;
use std::io;
use std::time::{Duration, Instant};

use rustc_hash::FxBuildHasher;

use self::graveyard::Graveyard;
use self::huge_pages::HugePages;
use super::leaves;
use super::map::{Entry, Map};
use crate::value::Key;
use crate::wal::{LocatedValues, LogValue, Record};

/// Builds a map from a replayed log.
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

/// How often a long replay says how far it has got.
const REPLAY_PROGRESS_EVERY: Duration = Duration::from_secs(2);

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

    /// Takes the next record of the log; the map [`Loader::finish`] returns
    /// is what applying the same records one by one would leave.
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

    /// The map holding what the records left, reading the values that are
    /// still in the log from `log`, the file the records came from.
    pub fn finish(mut self, log: &File) -> io::Result<Map> {
        if self.shards.is_empty() {
            // A short log: every record is still in its buffer.
            self.shards = (0..SHARDS)
                .map(|_| ShardRunner::Here(Shard::new()))
                .collect();
        }
        // Every shard gets its last records before any is waited for, so
        // they collect their entries side by side; and every thread is
        // joined before an error of one of them is returned.
        let closing: Vec<_> = std::mem::take(&mut self.shards)
            .into_iter()
            .zip(std::mem::take(&mut self.buffers))
            .map(|(runner, rest)| runner.close(rest))
            .collect();
        let finished: Vec<_> = closing.into_iter().map(Closing::entries).collect();
        let mut entries = Vec::new();
        for shard_entries in finished {
            let shard_entries = shard_entries?;
            if entries.is_empty() {
                entries = shard_entries;
            } else {
                entries.extend(shard_entries);
            }
        }
        let (entries, size_bytes) = read_values(&mut entries, log)?;
        Ok(Map::from_entries(entries, size_bytes))
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

/// Which shard a key's records go to. The shard's table hashes with the same
/// hash, so the choice is made on a mix of all of its bits (Fibonacci
/// hashing, then the high part of a multiplication by `SHARDS`): a choice on
/// some bits of it alone would leave each table only keys alike in those
/// bits, whichever bits the table itself relies on.
fn shard_of(hash: u64) -> usize {
    const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;
    ((u128::from(hash.wrapping_mul(GOLDEN)) * SHARDS as u128) >> 64) as usize
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

/// Turns the loaded entries into the map's, reading the values still in
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

/// Says how far a long replay has got, at most every
/// [`REPLAY_PROGRESS_EVERY`]: a start-up that takes minutes should not look
/// like a hang, and one that takes a second says nothing until it is done.
pub(super) struct ReplayProgress {
    total_bytes: u64,
    next: Instant,
}

impl ReplayProgress {
    pub(super) fn new(total_bytes: u64, started: Instant) -> ReplayProgress {
        ReplayProgress {
            total_bytes,
            next: started + REPLAY_PROGRESS_EVERY,
        }
    }

    /// What to report at `offset` bytes read, if a report is due at `now`.
    pub(super) fn at(&mut self, offset: u64, now: Instant) -> Option<String> {
        if now < self.next {
            return None;
        }
        self.next = now + REPLAY_PROGRESS_EVERY;
        let percent = match self.total_bytes {
            0 => 100,
            total => offset.min(total) * 100 / total,
        };
        Some(format!(
            "{} of {} read ({percent}%)",
            indicatif::HumanBytes(offset),
            indicatif::HumanBytes(self.total_bytes)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::super::apply;
    use super::*;
    use crate::value::StoredValue;
    use crate::wal::Op;
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
        let mut applied = Map::new();
        let mut loader = Loader::new(now);
        for record in records {
            apply(&mut applied, record.clone(), now);
            loader.apply(record);
        }
        let loaded = loader.finish(&tempfile::tempfile().unwrap()).unwrap();
        let entries = |s: &Map| {
            s.entries_with_prefix("", 0)
                .map(|(k, e)| (k.to_owned(), e.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(entries(&loaded), entries(&applied));
        assert_eq!(loaded.stats(now), applied.stats(now));
        assert_eq!(loaded.stats(6_000), applied.stats(6_000));
        assert_eq!(loaded.next_deadline(), applied.next_deadline());
        assert_eq!(loaded.expiry(), applied.expiry());
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
    fn load_located(text: &[u8], log: &mut File, now: u64) -> Result<Map, String> {
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
            assert_eq!(loaded.expiry(), applied.expiry());
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
        let mut applied = Map::new();
        let mut text = Vec::new();
        for record in records {
            record.encode_into(&mut text);
            apply(&mut applied, record, now);
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
        assert_eq!(loaded.expiry(), applied.expiry());

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
    fn a_long_replay_reports_its_progress_every_few_seconds() {
        let started = Instant::now();
        let mut progress = ReplayProgress::new(4 << 30, started);
        assert_eq!(progress.at(1 << 20, started), None);
        assert_eq!(
            progress.at(1 << 30, started + Duration::from_millis(1999)),
            None
        );
        let later = started + REPLAY_PROGRESS_EVERY;
        assert_eq!(
            progress.at(1 << 30, later).as_deref(),
            Some("1.00 GiB of 4.00 GiB read (25%)")
        );
        assert_eq!(progress.at(2 << 30, later + Duration::from_secs(1)), None);
        assert_eq!(
            progress
                .at(4 << 30, later + REPLAY_PROGRESS_EVERY)
                .as_deref(),
            Some("4.00 GiB of 4.00 GiB read (100%)")
        );
        // A log that grew or shrank since it was measured never reads past 100%.
        assert!(progress
            .at(5 << 30, later + 3 * REPLAY_PROGRESS_EVERY)
            .is_some_and(|line| line.ends_with("(100%)")));
    }
}
