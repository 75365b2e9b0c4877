//! The local engine: a [`Storage`] backend whose durable state is one log
//! file in a data directory ([`crate::wal`]) and whose live state is an
//! ordered map in memory ([`map`]).
//!
//! Opening a directory locks its log and replays it into the map
//! ([`loader`]). Writes go through group commit (`commit`, deciding each
//! command with `decide`): logged, synced per policy, then applied and
//! answered (with `--fsync always`, applied and answered by an applier
//! thread while the writer thread logs the next group). Readers take the
//! map's read lock, which a commit takes for
//! writing only to apply a group in memory, never across I/O. A sweeper
//! thread (`sweeper`) removes expired keys in the background, and a
//! compactor thread (`compact`) rewrites the log when it has grown.
//!
//! [`Snapshot`] is the same state loaded without the lock, read-only, for
//! offline reads beside a running server.

mod commit;
mod compact;
mod decide;
pub mod loader;
pub mod map;
mod snapshot;
mod sweeper;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};

pub use self::compact::{AutoCompact, TEST_CRASH_ENV, TEST_HOLD_ENV};
pub use self::snapshot::Snapshot;

use self::commit::GroupCommit;
use self::loader::{Loader, ReplayProgress};
use self::map::{Entry, Map};
use crate::storage::{
    Command, Compaction, Key, Outcome, SnapshotChunks, Stats, Storage, StorageError,
};
use crate::ttl::now_ms;
use crate::wal::{FsyncPolicy, LockedLog, LogValue, Op, Record, TornTail, WalError};

/// The least time between two disk probes of `health`.
const PROBE_EVERY: Duration = Duration::from_secs(1);

/// What opening a data directory found.
#[derive(Debug, Clone)]
pub struct OpenReport {
    /// Records replayed.
    pub records: u64,
    /// Bytes of log read.
    pub bytes: u64,
    /// Time spent replaying.
    pub elapsed: Duration,
    /// A torn tail that was cut off, if any.
    pub torn: Option<TornTail>,
    /// Live keys after replay.
    pub keys: u64,
}

/// What the engine's handles and threads share.
struct Shared {
    dir: PathBuf,
    map: RwLock<Map>,
    commit: GroupCommit,
    auto_compact: AutoCompact,
    /// The log's length after the last compaction, or at start.
    compacted_len: AtomicU64,
    /// Held by the compaction under way.
    compacting: Mutex<()>,
    /// When `health` last probed the disk.
    last_probe: Mutex<Option<Instant>>,
    /// A snapshot is being taken.
    snapshotting: AtomicBool,
    /// The engine is stopping: its threads end.
    stop: AtomicBool,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

/// A cheap-to-clone handle on an open data directory.
#[derive(Clone)]
pub struct Engine {
    shared: Arc<Shared>,
    /// The writer thread, woken when a request hands it the lead.
    writer: std::thread::Thread,
}

impl Engine {
    /// Locks and replays the data directory, then starts the writer and the
    /// sweeper; the log is compacted only when asked.
    pub fn open(dir: &Path, policy: FsyncPolicy) -> Result<(Engine, OpenReport), WalError> {
        Engine::open_with(dir, policy, AutoCompact::OFF)
    }

    /// [`Engine::open`], compacting the log by itself as `auto_compact` says.
    pub fn open_with(
        dir: &Path,
        policy: FsyncPolicy,
        auto_compact: AutoCompact,
    ) -> Result<(Engine, OpenReport), WalError> {
        let started = Instant::now();
        let mut log = LockedLog::open(dir)?;
        let now = now_ms();
        let mut loader = Loader::new(now);
        let path = log.path().to_path_buf();
        let mut progress =
            ReplayProgress::new(log.file().metadata().map_or(0, |m| m.len()), started);
        let scan = log.recover(
            |record: Record<LogValue>, _| loader.apply(record),
            |offset| {
                if let Some(done) = progress.at(offset, Instant::now()) {
                    tracing::info!("replaying {}: {done}", path.display());
                }
            },
        )?;
        let map = loader.finish(log.file()).map_err(|source| WalError::Io {
            context: "cannot read",
            path,
            source,
        })?;
        let report = OpenReport {
            records: scan.records,
            bytes: scan.bytes,
            elapsed: started.elapsed(),
            torn: scan.torn,
            keys: map.stats(now).keys,
        };
        let appender = log.into_appender(policy)?;
        let shared = Arc::new(Shared {
            dir: dir.to_path_buf(),
            compacted_len: AtomicU64::new(appender.len()),
            auto_compact,
            compacting: Mutex::new(()),
            last_probe: Mutex::new(None),
            snapshotting: AtomicBool::new(false),
            map: RwLock::new(map),
            commit: GroupCommit::new(
                appender,
                scan.max_batch_id + 1,
                policy == FsyncPolicy::Always,
            ),
            stop: AtomicBool::new(false),
            threads: Mutex::new(Vec::new()),
        });
        let start = |name, body: fn(&Shared)| {
            shared
                .start_thread(name, body)
                .map_err(|source| WalError::Io {
                    context: "cannot start a thread for",
                    path: dir.to_path_buf(),
                    source,
                })
        };
        let writer = start("wal-writer", writer_loop)?;
        if shared.commit.pipelines() {
            start("wal-applier", |shared| {
                shared.commit.run_applier(&shared.map)
            })?;
        }
        start("expiry-sweeper", sweeper::sweep_loop)?;
        if auto_compact != AutoCompact::OFF {
            start("wal-compactor", compact::compact_loop)?;
        }
        Ok((Engine { shared, writer }, report))
    }

    /// Runs `f` on the map under its read lock, with the current time.
    fn read<R>(&self, f: impl FnOnce(&Map, u64) -> R) -> R {
        f(&self.shared.map.read(), now_ms())
    }
}

impl Storage for Engine {
    async fn get(&self, key: &str) -> Result<Box<str>, StorageError> {
        self.read(|map, now| get(map, key, now))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<Key>, StorageError> {
        Ok(self.read(|map, now| list(map, prefix, now)))
    }

    async fn stats(&self) -> Result<Stats, StorageError> {
        Ok(self.read(|map, now| map.stats(now)))
    }

    /// Requests that only read are answered at once from the map under one
    /// read lock; anything that writes goes through group commit.
    async fn execute(&self, commands: Vec<Command>) -> Result<Vec<Outcome>, StorageError> {
        if !commands.iter().any(Command::writes) {
            return Ok(self.read(|map, now| read_only(map, now, &commands)));
        }
        let shared = &self.shared;
        let answer = shared.commit.submit(commands, &shared.map, &self.writer)?;
        answer.await.map_err(|_| StorageError::shutting_down())?
    }

    /// Unhealthy while the last log write failed, or once shutdown has
    /// begun. After a failure the disk is probed (at most once a second),
    /// and a probe that succeeds makes it healthy again without waiting for
    /// a client's write.
    async fn health(&self) -> Result<(), StorageError> {
        if self.shared.commit.is_closed() {
            return Err(StorageError::shutting_down());
        }
        let Some((which, failure)) = self.shared.commit.last_failure() else {
            return Ok(());
        };
        let unhealthy = |probe: &str| {
            Err(StorageError::Unavailable(format!(
                "cannot write to the data directory: {failure}{probe}"
            )))
        };
        {
            let mut last_probe = self.shared.last_probe.lock();
            if last_probe.is_some_and(|at| at.elapsed() < PROBE_EVERY) {
                return unhealthy("");
            }
            *last_probe = Some(Instant::now());
        }
        let shared = self.shared.clone();
        let probed = tokio::task::spawn_blocking(move || probe_disk(&shared.dir))
            .await
            .unwrap_or_else(|_| Err(io::Error::other("the disk probe panicked")));
        match probed {
            Ok(()) => {
                self.shared.commit.clear_failure(which);
                Ok(())
            }
            Err(err) => unhealthy(&format!(" (a probe just now: {err})")),
        }
    }

    async fn compact(&self) -> Result<Compaction, StorageError> {
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || compact::compact(&shared, "on request"))
            .await
            .map_err(|_| StorageError::Failed("the compaction panicked".into()))?
    }

    /// One snapshot at a time: each holds the live keys' last sets in
    /// memory while it runs.
    async fn snapshot(&self) -> Result<SnapshotChunks, StorageError> {
        if self.shared.snapshotting.swap(true, Ordering::AcqRel) {
            return Err(StorageError::Unavailable(
                "a snapshot is already being taken; try again when it is done".into(),
            ));
        }
        let (chunks, receiver) = compact::snapshot_channel();
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || {
            compact::snapshot(&shared, chunks);
            shared.snapshotting.store(false, Ordering::Release);
        });
        Ok(receiver)
    }

    /// Refuses new writes, waits for the queued ones, syncs the log and
    /// stops the threads.
    async fn shutdown(&self) -> Result<(), StorageError> {
        if let Some(idle) = self.shared.commit.close() {
            let _ = idle.await;
        }
        let shared = self.shared.clone();
        let synced = tokio::task::spawn_blocking(move || shared.commit.sync())
            .await
            .unwrap_or_else(|_| Err(io::Error::other("the final sync panicked")));
        self.shared.stop.store(true, Ordering::Release);
        self.shared.commit.stop_applier();
        let threads: Vec<_> = self.shared.threads.lock().drain(..).collect();
        for thread in threads {
            thread.thread().unpark();
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
        synced.map_err(|err| StorageError::Failed(format!("cannot sync the log: {err}")))
    }
}

/// Whether a small file can be written and synced in `dir` now.
fn probe_disk(dir: &Path) -> io::Result<()> {
    use std::io::Write;
    let path = dir.join(".health-probe");
    let written = std::fs::File::create(&path).and_then(|mut file| {
        file.write_all(&[b'\n'; 4096])?;
        file.sync_all()
    });
    let _ = std::fs::remove_file(&path);
    written
}

/// A key's live value, as [`Storage::get`] answers it.
fn get(map: &Map, key: &str, now: u64) -> Result<Box<str>, StorageError> {
    map.get(key, now)
        .map(|v| v.json().into())
        .ok_or(StorageError::NotFound)
}

/// The live keys under `prefix`, as [`Storage::list`] answers them.
fn list(map: &Map, prefix: &str, now: u64) -> Vec<Key> {
    map.keys_with_prefix(prefix, now).map(Key::from).collect()
}

/// Answers a request of gets only.
fn read_only(map: &Map, now: u64, commands: &[Command]) -> Vec<Outcome> {
    commands
        .iter()
        .map(|command| match command {
            Command::Get { key } => map
                .get(key, now)
                .map_or(Outcome::NotFound, |v| Outcome::Value(v.json().into())),
            Command::Set { .. } | Command::Delete { .. } => {
                unreachable!("a request that writes goes through the log")
            }
        })
        .collect()
}

impl Shared {
    /// Starts one of the threads the engine cannot live without (see
    /// [`abort_on_panic`]); shutdown joins it.
    fn start_thread(
        self: &Arc<Self>,
        name: &'static str,
        body: impl FnOnce(&Shared) + Send + 'static,
    ) -> io::Result<std::thread::Thread> {
        let shared = self.clone();
        let handle = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || abort_on_panic(name, || body(&shared)))?;
        let thread = handle.thread().clone();
        self.threads.lock().push(handle);
        Ok(thread)
    }
}

/// The writer thread: asleep until a request hands it the lead.
fn writer_loop(shared: &Shared) {
    while !shared.stop.load(Ordering::Acquire) {
        if !shared.commit.flush_if_handed_over(&shared.map) {
            std::thread::park();
        }
    }
}

/// Runs a thread the engine cannot live without; if it panics, the process
/// stops rather than go on serving reads with writes refused, or with the
/// data directory's lock released.
fn abort_on_panic(name: &str, body: impl FnOnce()) {
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)).is_err() {
        tracing::error!("the {name} thread panicked; stopping");
        std::process::abort();
    }
}

/// What a logged write leaves for its key at `now_ms`: an entry, or no key
/// at all (a delete, or a set whose deadline has passed, which is how replay
/// drops expired keys).
fn leaves<V>(record: Record<V>, now_ms: u64) -> (Key, Option<Entry<V>>) {
    let deadline_ms = record.deadline_ms();
    match record.op {
        Op::Set { key, value, .. }
            if !deadline_ms.is_some_and(|d| crate::ttl::has_expired(d, now_ms)) =>
        {
            (key, Some(Entry::new(value, deadline_ms)))
        }
        Op::Set { key, .. } | Op::Delete { key } => (key, None),
    }
}

/// Applies one logged write to the map.
fn apply(map: &mut Map, record: Record, now_ms: u64) {
    match leaves(record, now_ms) {
        (key, Some(entry)) => map.insert(key, entry),
        (key, None) => {
            map.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::suite;

    fn open(dir: &tempfile::TempDir, policy: FsyncPolicy) -> Engine {
        Engine::open(dir.path(), policy).unwrap().0
    }

    mod always {
        use super::{open, FsyncPolicy};
        crate::storage::suite::backend_suite!({
            let dir = tempfile::tempdir().unwrap();
            (open(&dir, FsyncPolicy::Always), dir)
        });
    }

    mod never {
        use super::{open, FsyncPolicy};
        crate::storage::suite::backend_suite!({
            let dir = tempfile::tempdir().unwrap();
            (open(&dir, FsyncPolicy::Never), dir)
        });
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn what_was_acknowledged_is_there_after_a_reopen() {
        for policy in [
            FsyncPolicy::Always,
            FsyncPolicy::Interval,
            FsyncPolicy::Never,
        ] {
            let dir = tempfile::tempdir().unwrap();
            let engine = open(&dir, policy);
            suite::write_state(&engine).await;
            suite::check_state(&engine).await;
            engine.shutdown().await.unwrap();
            drop(engine);
            let (engine, report) = Engine::open(dir.path(), policy).unwrap();
            assert_eq!((report.records, report.keys), (5, 3), "{policy}");
            suite::check_state(&engine).await;
            engine.shutdown().await.unwrap();
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writers_are_all_logged_applied_and_answered() {
        let dir = tempfile::tempdir().unwrap();
        let engine = open(&dir, FsyncPolicy::Always);
        // Enough writers that commits overlap and the lead is handed to the
        // writer thread and back many times.
        let writers: Vec<_> = (0..32u64)
            .map(|w| {
                let engine = engine.clone();
                tokio::spawn(async move {
                    for i in 0..50u64 {
                        let key = format!("w{w}");
                        let done = engine.execute(vec![suite::set(&key, &i.to_string())]);
                        assert_eq!(done.await.unwrap(), [Outcome::Done]);
                        // Acknowledged means visible.
                        assert_eq!(engine.get(&key).await.unwrap(), i.to_string().into());
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.await.unwrap();
        }
        engine.shutdown().await.unwrap();
        drop(engine);

        let (engine, report) = Engine::open(dir.path(), FsyncPolicy::Always).unwrap();
        assert_eq!(report.records, 32 * 50);
        for w in 0..32 {
            assert_eq!(engine.get(&format!("w{w}")).await.as_deref(), Ok("49"));
        }
        engine.shutdown().await.unwrap();
    }

    /// A delete or a get staged right behind a set of the same key sees
    /// it, whether the set is still staged or already in a flush (then the
    /// delete waits for the next one).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_read_of_the_map_sees_the_writes_submitted_before_it() {
        for policy in [FsyncPolicy::Always, FsyncPolicy::Never] {
            let dir = tempfile::tempdir().unwrap();
            let engine = open(&dir, policy);
            let tasks: Vec<_> = (0..8)
                .map(|t| {
                    let engine = engine.clone();
                    tokio::spawn(async move {
                        let key = format!("k{t}");
                        let submit = |commands| {
                            let shared = &engine.shared;
                            shared.commit.submit(commands, &shared.map, &engine.writer)
                        };
                        for i in 0..200u32 {
                            let value = i.to_string();
                            let answers = [
                                submit(vec![suite::set(&key, &value)]).unwrap(),
                                submit(vec![suite::get(&key), suite::delete(&key)]).unwrap(),
                                submit(vec![suite::delete(&key)]).unwrap(),
                                submit(vec![suite::set(&key, &value), suite::get(&key)]).unwrap(),
                            ];
                            let mut outcomes = Vec::new();
                            for answer in answers {
                                outcomes.push(answer.await.unwrap().unwrap());
                            }
                            let found = Outcome::Value(value.as_str().into());
                            assert_eq!(
                                outcomes,
                                [
                                    vec![Outcome::Done],
                                    vec![found.clone(), Outcome::Done],
                                    vec![Outcome::NotFound],
                                    vec![Outcome::Done, found],
                                ],
                                "{policy} {key} {i}"
                            );
                        }
                    })
                })
                .collect();
            for task in tasks {
                task.await.unwrap();
            }
            engine.shutdown().await.unwrap();
            drop(engine);
            // What was answered is what the log replays to.
            let engine = open(&dir, policy);
            for t in 0..8 {
                assert_eq!(engine.get(&format!("k{t}")).await.as_deref(), Ok("199"));
            }
            engine.shutdown().await.unwrap();
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_single_threaded_runtime_commits() {
        let dir = tempfile::tempdir().unwrap();
        let engine = open(&dir, FsyncPolicy::Always);
        let outcomes = engine
            .execute(vec![
                suite::set("a", "1"),
                suite::get("a"),
                suite::delete("b"),
            ])
            .await
            .unwrap();
        assert_eq!(
            outcomes,
            [Outcome::Done, Outcome::Value("1".into()), Outcome::NotFound]
        );
        engine.shutdown().await.unwrap();
        assert_eq!(engine.shared.threads.lock().len(), 0, "every thread joined");
    }

    #[test]
    fn a_logged_set_whose_deadline_has_passed_leaves_the_key_absent() {
        let record = |value: &str, ttl, timestamp_ms| Record {
            op: Op::Set {
                key: "k".into(),
                value: suite::value(value),
                ttl,
            },
            timestamp_ms,
            batch: None,
        };
        let mut map = Map::new();
        apply(&mut map, record("1", None, 0), 0);
        apply(&mut map, record("2", Some(1), 0), 5_000);
        assert!(!map.contains("k", 5_000));
        assert_eq!(map.stats(5_000), Stats::default());
        assert_eq!(map.len_including_expired(), 0);
        apply(&mut map, record("3", Some(10), 0), 5_000);
        assert_eq!(map.get("k", 5_000).map(|v| v.json()), Some("3"));
    }
}
