//! The database handle: the store behind a lock, fed through the log by
//! group commits.
//!
//! Every write request joins a queue. Whoever leads the commit takes
//! everything queued as a group, decides each operation against the current
//! state plus the earlier writes of the group, encodes the group's records
//! into one buffer, writes it with one `write` and syncs it once (per
//! policy), and only then applies the group to the store and answers the
//! requests. So:
//! - nothing is visible or acknowledged before it is in the log;
//! - concurrent writers share one fsync (group commit);
//! - the log order is the apply order, so replay reproduces what clients saw;
//! - a batch is one unit of the queue, applied under one write lock, hence
//!   isolated from readers.
//!
//! Who leads (leader/follower): a request that finds no commit under way
//! commits its own group on the spot, so a lone writer never waits for
//! another thread to wake up. If writes queued up meanwhile, it hands the
//! lead to the writer thread, which commits group after group until the
//! queue is empty, and the queued requests just wait for their answer. A
//! thread is woken only when commits start to overlap, not for every write.
//!
//! A request that leads a durable commit while the runtime has few tasks
//! blocks its async worker for the fsync; a watch thread makes sure the
//! runtime goes on polling for I/O on another worker if that fsync is slow.
//!
//! Readers take the store's read lock, which the leader takes only to apply
//! a group in memory (letting readers in between requests), never across I/O.

use std::collections::HashMap;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, RwLock};
use tokio::sync::oneshot;

use crate::store::{Loader, Store};
use crate::ttl::now_ms;
use crate::value::{Key, StoredValue};
use crate::wal::{
    Appender, BatchMark, FsyncPolicy, LockedLog, LogValue, Op, Record, TornTail, WalError,
};

/// Most requests one group commit takes from the queue.
const MAX_GROUP: usize = 1024;
/// Groups a leading request commits after its own, when commits do not
/// fsync, before it hands the lead to the writer thread.
const INLINE_GROUPS: usize = 8;
/// The longest the writer thread waits for the writers of its last group
/// before committing the next (see [`Shared::gather`]).
const COMMIT_DELAY: Duration = Duration::from_micros(200);
/// How long a request's own commit may block its async worker before the
/// sync watch wakes another worker to poll for I/O (see [`SyncWatch`]); the
/// watch looks this often, so the delay is one to two of these.
const SYNC_RESCUE_AFTER: Duration = Duration::from_millis(1);
/// How long the sync watch keeps looking after the last inline commit
/// before it sleeps until the next one wakes it (one `unpark`). Short, so a
/// trickle of writes costs a few looks each rather than a thousand a second;
/// from ~100 commits a second on, the watch just keeps looking.
const SYNC_WATCH_LINGER: Duration = Duration::from_millis(10);
/// Records applied before the writer lets readers in between two jobs.
const APPLY_RECORDS_PER_LOCK: usize = 256;
/// How often a long replay says how far it has got.
const REPLAY_PROGRESS_EVERY: Duration = Duration::from_secs(2);
/// How often the sweeper looks for expired keys.
const SWEEP_INTERVAL: Duration = Duration::from_millis(100);
/// Keys removed per write-lock acquisition, so readers are never held long.
const SWEEP_CHUNK: usize = 1024;

/// One operation of a write request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Set a key, replacing its value and ttl.
    Set {
        /// The key.
        key: Key,
        /// The value.
        value: StoredValue,
        /// Seconds until expiry, if any.
        ttl: Option<u64>,
    },
    /// Delete a key.
    Delete {
        /// The key.
        key: Key,
    },
    /// Read a key (inside a batch, after the batch's earlier operations).
    Get {
        /// The key.
        key: Key,
    },
}

/// The result of one operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A set, or a delete of a live key.
    Done,
    /// A get or delete of a key that is absent.
    NotFound,
    /// A get's value, as compact JSON.
    Value(Box<str>),
}

/// Why a write was not carried out.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The log could not be written or synced; nothing was applied.
    #[error("write-ahead log write failed, nothing was applied: {0}")]
    WalWrite(#[source] io::Error),
    /// The writer has stopped (shutdown in progress).
    #[error("the store is shutting down")]
    Closed,
}

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

struct Job {
    commands: Vec<Command>,
    reply: oneshot::Sender<Result<Vec<Outcome>, DbError>>,
}

/// The queue of writes waiting for a group commit, and who is committing.
#[derive(Default)]
struct Commits {
    /// Write requests waiting for the next group commit, in arrival order.
    pending: Vec<Job>,
    /// A request or the writer thread is committing a group; the others
    /// only queue, and it takes them with its next group.
    leading: bool,
    /// Shutdown has begun: writes are refused.
    closed: bool,
    /// The writer thread waits for this many queued writes (0: it does not).
    wanted: usize,
    /// Told when the leader steps down (shutdown waits for that).
    idle: Vec<oneshot::Sender<()>>,
}

struct Shared {
    store: RwLock<Store>,
    commits: Mutex<Commits>,
    /// Only the leader locks it, so it is never contended.
    log: Mutex<LogWriter>,
    /// Set when a request hands the lead to the writer thread.
    handed_over: AtomicBool,
    /// Wakes the writer thread when the writes it waits for are queued.
    gathered: Condvar,
    /// Every commit includes an fsync.
    syncs: bool,
    stop: AtomicBool,
    threads: Mutex<Vec<JoinHandle<()>>>,
    watch: SyncWatch,
}

/// A cheap-to-clone handle on an open data directory.
#[derive(Clone)]
pub struct Db {
    shared: Arc<Shared>,
    /// The writer thread, woken when a request hands it the lead.
    writer: std::thread::Thread,
}

impl Db {
    /// Locks and replays the data directory, then starts the writer and the sweeper.
    pub fn open(dir: &Path, policy: FsyncPolicy) -> Result<(Db, OpenReport), WalError> {
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
        let store = loader.finish(log.file()).map_err(|source| WalError::Io {
            context: "cannot read",
            path,
            source,
        })?;
        let appender = log.into_appender(policy)?;
        let report = OpenReport {
            records: scan.records,
            bytes: scan.bytes,
            elapsed: started.elapsed(),
            torn: scan.torn,
            keys: store.stats(now).keys,
        };

        let shared = Arc::new(Shared {
            store: RwLock::new(store),
            commits: Mutex::new(Commits::default()),
            log: Mutex::new(LogWriter {
                appender,
                next_batch_id: scan.max_batch_id + 1,
                buf: Vec::with_capacity(1 << 16),
            }),
            handed_over: AtomicBool::new(false),
            gathered: Condvar::new(),
            syncs: policy == FsyncPolicy::Always,
            stop: AtomicBool::new(false),
            threads: Mutex::new(Vec::new()),
            watch: SyncWatch::new(),
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
        start("expiry-sweeper", sweep_loop)?;
        Ok((Db { shared, writer }, report))
    }

    /// Runs `f` on the store under its read lock, with the current time.
    pub fn read<R>(&self, f: impl FnOnce(&Store, u64) -> R) -> R {
        let store = self.shared.store.read();
        f(&store, now_ms())
    }

    /// Carries out a request's operations in order, as one isolated unit.
    ///
    /// Requests that only read are answered at once from a consistent
    /// snapshot; anything that writes goes through the log.
    pub async fn execute(&self, commands: Vec<Command>) -> Result<Vec<Outcome>, DbError> {
        if commands.iter().all(|c| matches!(c, Command::Get { .. })) {
            return Ok(self.read(|store, now| {
                commands
                    .iter()
                    .map(|c| match c {
                        Command::Get { key } => store
                            .get(key, now)
                            .map_or(Outcome::NotFound, |v| Outcome::Value(v.json().into())),
                        _ => unreachable!("checked above"),
                    })
                    .collect()
            }));
        }
        let (reply, answer) = oneshot::channel();
        let leads = {
            let mut commits = self.shared.commits.lock();
            if commits.closed {
                return Err(DbError::Closed);
            }
            commits.pending.push(Job { commands, reply });
            if commits.wanted != 0 && commits.pending.len() >= commits.wanted {
                commits.wanted = 0;
                self.shared.gathered.notify_one();
            }
            !std::mem::replace(&mut commits.leading, true)
        };
        if leads {
            // Leader/follower: the request that finds no commit under way
            // commits its own group right here, so a lone writer crosses no
            // thread. Writes that queued meanwhile are handed to the writer
            // thread, unless commits are cheap (no fsync): then this request
            // takes a few more groups first, a few microseconds each, rather
            // than wake a thread. Nothing here awaits, so a cancelled
            // request cannot leave the queue without a leader.
            match self.how_to_lead() {
                Lead::Watched(watch) => {
                    let _watched = watch.begin();
                    self.shared.commit_next_group();
                }
                Lead::MovingOthersAway => {
                    tokio::task::block_in_place(|| self.shared.commit_next_group());
                }
                Lead::Inline => {
                    self.shared.commit_next_group();
                }
            }
            let mut extra_groups = if self.shared.syncs { 0 } else { INLINE_GROUPS };
            while !self.shared.step_down_if_idle() {
                if extra_groups == 0 {
                    self.shared.handed_over.store(true, Ordering::Release);
                    self.writer.unpark();
                    break;
                }
                extra_groups -= 1;
                self.shared.commit_next_group();
            }
        }
        answer.await.map_err(|_| DbError::Closed)?
    }

    /// How a request that leads a commit should run it.
    ///
    /// Moving the worker's other tasks away first (`block_in_place`) pays
    /// off when the runtime is busy with many connections, some of which are
    /// likely queued behind this worker: a durable 90/10 mix at 64
    /// connections runs ~4% faster with it. With a handful of tasks there is
    /// little to move, and the handover costs more CPU than the fsync (one
    /// connection: 3261 against 3427 durable PUTs/s, 184 against 157 µs of
    /// CPU each), so the request commits in place, the watch standing by in
    /// case the disk is slow (at 2 and 3 connections neither way is
    /// measurably faster). "A handful" is a rule of thumb: no more tasks
    /// alive in the runtime than two per worker (idle keep-alive connections
    /// count too).
    fn how_to_lead(&self) -> Lead<'_> {
        if !self.shared.syncs {
            return Lead::Inline;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return Lead::Inline;
        };
        if runtime.runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread {
            // No other worker to keep going, and block_in_place would panic.
            return Lead::Inline;
        }
        let metrics = runtime.metrics();
        if metrics.num_workers() >= 2 && metrics.num_alive_tasks() <= 2 * metrics.num_workers() {
            if let Some(watch) = self.shared.sync_watch_for(&runtime) {
                return Lead::Watched(watch);
            }
        }
        Lead::MovingOthersAway
    }

    /// Refuses new writes, waits for the queued ones, syncs the log and
    /// stops the threads.
    pub async fn shutdown(&self) -> io::Result<()> {
        let idle = {
            let mut commits = self.shared.commits.lock();
            commits.closed = true;
            commits.leading.then(|| {
                let (told, idle) = oneshot::channel();
                commits.idle.push(told);
                idle
            })
        };
        if let Some(idle) = idle {
            let _ = idle.await;
        }
        let shared = self.shared.clone();
        let synced = tokio::task::spawn_blocking(move || shared.log.lock().appender.sync())
            .await
            .unwrap_or_else(|_| Err(io::Error::other("the final sync panicked")));
        self.shared.stop.store(true, Ordering::Release);
        let threads: Vec<_> = self.shared.threads.lock().drain(..).collect();
        for thread in threads {
            thread.thread().unpark();
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
        synced
    }
}

/// Says how far a long replay has got, at most every
/// [`REPLAY_PROGRESS_EVERY`]: a start-up that takes minutes should not look
/// like a hang, and one that takes a second says nothing until it is done.
struct ReplayProgress {
    total_bytes: u64,
    next: Instant,
}

impl ReplayProgress {
    fn new(total_bytes: u64, started: Instant) -> ReplayProgress {
        ReplayProgress {
            total_bytes,
            next: started + REPLAY_PROGRESS_EVERY,
        }
    }

    /// What to report at `offset` bytes read, if a report is due at `now`.
    fn at(&mut self, offset: u64, now: Instant) -> Option<String> {
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

/// How a request that leads a commit runs it (see [`Db::how_to_lead`]).
enum Lead<'a> {
    /// On its own async worker, the sync watch standing by.
    Watched(&'a SyncWatch),
    /// Through `block_in_place`, which first hands the worker's other tasks
    /// to another thread.
    MovingOthersAway,
    /// On the spot: commits do not sync, or no other worker could take over.
    Inline,
}

/// Keeps requests on other connections moving while a request commits on
/// its own async worker (see [`Db::how_to_lead`]).
///
/// A worker blocked in an fsync can leave nobody polling for I/O: tokio's
/// other workers may be asleep, waiting to be told of work. So a thread
/// watches: while such commits are frequent it looks every
/// [`SYNC_RESCUE_AFTER`], and if the commit under way has run that long, it
/// spawns an empty task into the runtime. A sleeping worker wakes for it,
/// takes what it can of the blocked worker's queue, and polls for I/O in
/// its stead, so a slow disk delays the requests on other connections by
/// one to two milliseconds, not by the length of the fsync. (One task may
/// still wait for the whole commit: one the blocked worker had already set
/// to run next, in tokio's LIFO slot, which no other worker can take.)
/// After [`SYNC_WATCH_LINGER`] without such a commit the thread sleeps until
/// the next one wakes it.
struct SyncWatch {
    epoch: Instant,
    /// When the inline commit under way began, in µs since `epoch` plus
    /// one; 0 when none is under way.
    started: AtomicU64,
    /// Inline commits begun, so the watch knows they still happen.
    begun: AtomicU64,
    /// The watch sleeps until the next inline commit wakes it.
    parked: AtomicBool,
    /// The watch's thread and the runtime it rescues, once started; `None`
    /// if the thread could not be started, and commits then go through
    /// `block_in_place` for good.
    thread: OnceLock<Option<(std::thread::Thread, tokio::runtime::Id)>>,
}

impl SyncWatch {
    fn new() -> SyncWatch {
        SyncWatch {
            epoch: Instant::now(),
            started: AtomicU64::new(0),
            begun: AtomicU64::new(0),
            parked: AtomicBool::new(false),
            thread: OnceLock::new(),
        }
    }

    fn now_us(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64 + 1
    }

    /// Marks an inline commit as under way until the guard is dropped.
    #[must_use = "the commit is watched only while the guard lives"]
    fn begin(&self) -> Ended<'_> {
        self.begun.fetch_add(1, Ordering::Relaxed);
        self.started.store(self.now_us(), Ordering::SeqCst);
        // Paired with the watch's store of `parked` and load of `started`:
        // either it sees this commit, or this sees it parked.
        if self.parked.load(Ordering::SeqCst) {
            if let Some(Some((thread, _))) = self.thread.get() {
                thread.unpark();
            }
        }
        Ended(&self.started)
    }
}

/// Clears [`SyncWatch::started`] when an inline commit ends.
struct Ended<'a>(&'a AtomicU64);

impl Drop for Ended<'_> {
    fn drop(&mut self) {
        self.0.store(0, Ordering::Release);
    }
}

fn watch_loop(shared: &Shared, runtime: tokio::runtime::Handle) {
    let watch = &shared.watch;
    let rescue_after_us = SYNC_RESCUE_AFTER.as_micros() as u64;
    let mut rescued = 0;
    let mut seen = watch.begun.load(Ordering::Relaxed);
    let mut quiet_since = Instant::now();
    while !shared.stop.load(Ordering::Acquire) {
        std::thread::park_timeout(SYNC_RESCUE_AFTER);
        let started = watch.started.load(Ordering::Acquire);
        if started != 0
            && started != rescued
            && watch.now_us().saturating_sub(started) >= rescue_after_us
        {
            rescued = started;
            drop(runtime.spawn(async {}));
        }
        let begun = watch.begun.load(Ordering::Relaxed);
        if begun != seen || started != 0 {
            seen = begun;
            quiet_since = Instant::now();
        } else if quiet_since.elapsed() >= SYNC_WATCH_LINGER {
            watch.parked.store(true, Ordering::SeqCst);
            if watch.started.load(Ordering::SeqCst) == 0 && !shared.stop.load(Ordering::Acquire) {
                std::thread::park();
            }
            watch.parked.store(false, Ordering::SeqCst);
            quiet_since = Instant::now();
        }
    }
}

/// Commits groups for as long as writes keep coming, once a request has
/// handed over the lead; the requests are then answered from here, in
/// parallel by every async worker. Unlike a queue that wakes this thread for
/// every write, the lead is handed over only when commits start to overlap.
fn writer_loop(shared: &Shared) {
    while !shared.stop.load(Ordering::Acquire) {
        if shared.handed_over.swap(false, Ordering::AcqRel) {
            let mut last_group = 0;
            loop {
                if shared.syncs {
                    shared.gather(last_group * 3 / 4);
                }
                match shared.commit_next_group() {
                    0 => break,
                    size => last_group = size,
                }
            }
        } else {
            std::thread::park();
        }
    }
}

impl Shared {
    /// Starts one of the threads the store cannot live without (see
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

    /// The sync watch, if its thread runs (started here on first use) and
    /// rescues `runtime`: a `Db` used from another runtime than the one it
    /// was first used from gets `None`.
    fn sync_watch_for(self: &Arc<Self>, runtime: &tokio::runtime::Handle) -> Option<&SyncWatch> {
        let (_, watched) = self
            .watch
            .thread
            .get_or_init(|| {
                let rescued = runtime.clone();
                match self.start_thread("sync-watch", move |shared| watch_loop(shared, rescued)) {
                    Ok(thread) => Some((thread, runtime.id())),
                    Err(err) => {
                        tracing::warn!("cannot start the sync watch thread: {err}");
                        None
                    }
                }
            })
            .as_ref()?;
        (*watched == runtime.id()).then_some(&self.watch)
    }

    /// Waits up to [`COMMIT_DELAY`] for `expected` writes to be queued, so
    /// that the writers of the last group, coming back, share the next fsync
    /// instead of each paying for another (PostgreSQL's commit_delay, with
    /// the last group's size standing in for commit_siblings). Woken once,
    /// by the write that completes the count, not by every write.
    fn gather(&self, expected: usize) {
        let deadline = Instant::now() + COMMIT_DELAY;
        let mut commits = self.commits.lock();
        while commits.pending.len() < expected.min(MAX_GROUP) && !commits.closed {
            commits.wanted = expected;
            if self.gathered.wait_until(&mut commits, deadline).timed_out() {
                break;
            }
        }
        commits.wanted = 0;
    }

    /// The leader commits the writes waiting now, as one group, and returns
    /// its size; 0, having stepped down, when none were waiting.
    fn commit_next_group(&self) -> usize {
        let mut group = {
            let mut commits = self.commits.lock();
            if commits.pending.is_empty() {
                step_down(&mut commits);
                return 0;
            }
            if commits.pending.len() <= MAX_GROUP {
                std::mem::take(&mut commits.pending)
            } else {
                commits.pending.drain(..MAX_GROUP).collect()
            }
        };
        let size = group.len();
        abort_on_panic("WAL writer", || {
            self.log.lock().commit(&self.store, &mut group)
        });
        size
    }

    /// Steps down if no write is waiting; false if some are (and the caller
    /// must hand them on).
    fn step_down_if_idle(&self) -> bool {
        let mut commits = self.commits.lock();
        let idle = commits.pending.is_empty();
        if idle {
            step_down(&mut commits);
        }
        idle
    }
}

fn step_down(commits: &mut Commits) {
    commits.leading = false;
    for told in commits.idle.drain(..) {
        let _ = told.send(());
    }
}

/// The appending side of the log, owned by whoever leads the commit.
struct LogWriter {
    appender: Appender,
    next_batch_id: u64,
    buf: Vec<u8>,
}

impl LogWriter {
    /// Logs, applies and answers one group of jobs.
    fn commit(&mut self, shared_store: &RwLock<Store>, group: &mut Vec<Job>) {
        let now = now_ms();
        let mut records: Vec<Record> = Vec::new();
        let mut outcomes: Vec<Vec<Outcome>> = Vec::with_capacity(group.len());
        // How many records each job wrote, in order: a job is applied whole.
        let mut job_records: Vec<usize> = Vec::with_capacity(group.len());
        {
            let store = shared_store.read();
            // Keys written earlier in this group: Some(index of the set in
            // `records`) or None for a delete. Built only when a delete or a
            // get needs it, so a group of plain sets clones no keys.
            let mut written: Option<HashMap<Key, Option<usize>>> = None;
            for job in group.iter_mut() {
                let first_record = records.len();
                let mut results = Vec::with_capacity(job.commands.len());
                for command in job.commands.drain(..) {
                    let outcome = match command {
                        Command::Set { key, value, ttl } => {
                            if let Some(written) = written.as_mut() {
                                written.insert(key.clone(), Some(records.len()));
                            }
                            records.push(Record {
                                op: Op::Set { key, value, ttl },
                                timestamp_ms: now,
                                batch: None,
                            });
                            Outcome::Done
                        }
                        Command::Delete { key } => {
                            let written = written.get_or_insert_with(|| index_writes(&records));
                            let live = match written.get(&key) {
                                Some(set) => set.is_some(),
                                None => store.contains(&key, now),
                            };
                            if live {
                                written.insert(key.clone(), None);
                                records.push(Record {
                                    op: Op::Delete { key },
                                    timestamp_ms: now,
                                    batch: None,
                                });
                                Outcome::Done
                            } else {
                                Outcome::NotFound
                            }
                        }
                        Command::Get { key } => {
                            let written = written.get_or_insert_with(|| index_writes(&records));
                            let value = match written.get(&key) {
                                Some(Some(i)) => match &records[*i].op {
                                    Op::Set { value, .. } => Some(value.json()),
                                    Op::Delete { .. } => unreachable!("index of a set"),
                                },
                                Some(None) => None,
                                None => store.get(&key, now).map(StoredValue::json),
                            };
                            value.map_or(Outcome::NotFound, |v| Outcome::Value(v.into()))
                        }
                    };
                    results.push(outcome);
                }
                let written_by_job = records.len() - first_record;
                if written_by_job >= 2 {
                    let mark = BatchMark {
                        id: self.next_batch_id,
                        len: written_by_job as u32,
                    };
                    self.next_batch_id += 1;
                    for record in &mut records[first_record..] {
                        record.batch = Some(mark);
                    }
                }
                job_records.push(written_by_job);
                outcomes.push(results);
            }
        }

        if !records.is_empty() {
            self.buf.clear();
            for record in &records {
                record.encode_into(&mut self.buf);
            }
            if let Err(err) = self.appender.append(&self.buf) {
                tracing::error!(
                    "write to {} failed, {} requests refused: {err}",
                    self.appender.path().display(),
                    group.len()
                );
                for job in group.drain(..) {
                    let _ = job.reply.send(Err(DbError::WalWrite(io::Error::new(
                        err.kind(),
                        err.to_string(),
                    ))));
                }
                return;
            }
            // Each job is applied under one write lock (isolation), but the
            // lock is let go between jobs once a few hundred records have
            // been applied, so a group of large batches never holds readers
            // off for long.
            let mut records = records.into_iter();
            let mut store = shared_store.write();
            let mut held = 0;
            for count in job_records {
                if held >= APPLY_RECORDS_PER_LOCK {
                    drop(store);
                    store = shared_store.write();
                    held = 0;
                }
                for record in records.by_ref().take(count) {
                    store.apply(record, now);
                }
                held += count;
            }
        }
        for (job, results) in group.drain(..).zip(outcomes) {
            let _ = job.reply.send(Ok(results));
        }
    }
}

/// Runs a thread the store cannot live without; if it panics, the process
/// stops rather than go on serving reads with writes refused, or with the
/// data directory's lock released.
fn abort_on_panic(name: &str, body: impl FnOnce()) {
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)).is_err() {
        tracing::error!("the {name} thread panicked; stopping");
        std::process::abort();
    }
}

/// Which keys the records of a group so far leave set (with the set's index) or deleted.
fn index_writes(records: &[Record]) -> HashMap<Key, Option<usize>> {
    records
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let set = matches!(r.op, Op::Set { .. }).then_some(i);
            (r.key().into(), set)
        })
        .collect()
}

fn sweep_loop(shared: &Shared) {
    while !shared.stop.load(Ordering::Acquire) {
        std::thread::park_timeout(SWEEP_INTERVAL);
        let now = now_ms();
        if !shared
            .store
            .read()
            .next_deadline()
            .is_some_and(|d| crate::ttl::has_expired(d, now))
        {
            continue;
        }
        let mut swept = 0;
        loop {
            let removed = shared.store.write().sweep(now, SWEEP_CHUNK);
            swept += removed;
            if removed < SWEEP_CHUNK || shared.stop.load(Ordering::Acquire) {
                break;
            }
        }
        tracing::debug!("swept {swept} expired keys");
        if swept >= 4 * SWEEP_CHUNK {
            crate::alloc::give_memory_back();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(key: &str, n: u64) -> Command {
        Command::Set {
            key: key.into(),
            value: StoredValue::from_value(&serde_json::json!(n)),
            ttl: None,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writers_are_all_logged_applied_and_answered() {
        let dir = tempfile::tempdir().unwrap();
        let (db, _) = Db::open(dir.path(), FsyncPolicy::Always).unwrap();
        // Enough writers that commits overlap and the lead is handed to the
        // writer thread and back many times.
        let writers: Vec<_> = (0..32u64)
            .map(|w| {
                let db = db.clone();
                tokio::spawn(async move {
                    for i in 0..50u64 {
                        let key = format!("w{w}");
                        let done = db.execute(vec![set(&key, i)]).await.unwrap();
                        assert_eq!(done, [Outcome::Done]);
                        // Acknowledged means visible.
                        let seen =
                            db.read(|store, now| store.get(&key, now).map(|v| v.json().to_owned()));
                        assert_eq!(seen.as_deref(), Some(i.to_string().as_str()));
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.await.unwrap();
        }
        db.shutdown().await.unwrap();
        assert!(matches!(
            db.execute(vec![set("late", 0)]).await,
            Err(DbError::Closed)
        ));
        drop(db);

        let (db, report) = Db::open(dir.path(), FsyncPolicy::Always).unwrap();
        assert_eq!(report.records, 32 * 50);
        for w in 0..32 {
            let value = db.read(|store, now| {
                store
                    .get(&format!("w{w}"), now)
                    .map(|v| v.json().to_owned())
            });
            assert_eq!(value.as_deref(), Some("49"));
        }
        db.shutdown().await.unwrap();
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

    #[test]
    fn durable_leaders_commit_in_place_only_on_a_quiet_runtime_the_watch_serves() {
        let runtime = || {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap()
        };
        let (first, second) = (runtime(), runtime());
        let dir = tempfile::tempdir().unwrap();
        let (db, _) = Db::open(dir.path(), FsyncPolicy::Always).unwrap();
        assert!(db.shared.watch.thread.get().is_none(), "started before use");
        let on_a_worker = |rt: &tokio::runtime::Runtime, db: &Db, key: &'static str| {
            let db = db.clone();
            rt.block_on(async {
                tokio::spawn(async move {
                    let lead = match db.how_to_lead() {
                        Lead::Watched(_) => "watched",
                        Lead::MovingOthersAway => "moving others away",
                        Lead::Inline => "inline",
                    };
                    assert_eq!(
                        db.execute(vec![set(key, 1)]).await.unwrap(),
                        [Outcome::Done]
                    );
                    lead
                })
                .await
                .unwrap()
            })
        };

        assert_eq!(on_a_worker(&first, &db, "a"), "watched");
        assert!(db.shared.watch.thread.get().is_some_and(Option::is_some));
        assert_eq!(db.shared.watch.started.load(Ordering::Acquire), 0);
        assert_eq!(db.shared.threads.lock().len(), 3);
        // A busy runtime: the worker's other tasks are moved away first.
        let idle: Vec<_> = (0..8)
            .map(|_| first.spawn(std::future::pending::<()>()))
            .collect();
        assert_eq!(on_a_worker(&first, &db, "b"), "moving others away");
        idle.iter().for_each(tokio::task::JoinHandle::abort);
        // Another runtime than the one the watch rescues.
        assert_eq!(on_a_worker(&second, &db, "c"), "moving others away");

        first.block_on(db.shutdown()).unwrap();
        assert!(db.shared.threads.lock().is_empty(), "every thread joined");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_single_threaded_runtime_commits_inline() {
        let dir = tempfile::tempdir().unwrap();
        let (db, _) = Db::open(dir.path(), FsyncPolicy::Always).unwrap();
        let outcomes = db
            .execute(vec![
                set("a", 1),
                Command::Get { key: "a".into() },
                Command::Delete { key: "b".into() },
            ])
            .await
            .unwrap();
        assert_eq!(
            outcomes,
            [Outcome::Done, Outcome::Value("1".into()), Outcome::NotFound]
        );
        db.shutdown().await.unwrap();
    }
}
