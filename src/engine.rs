//! The database handle: the store behind a lock, fed by one WAL writer thread.
//!
//! Every write goes through a single writer thread. It takes whatever
//! requests are queued (a group), decides each against the current state plus
//! the earlier writes of the group, encodes the group's records into one
//! buffer, writes it with one `write` and syncs it once (per policy), and only
//! then applies the group to the store and answers the requests. So:
//! - nothing is visible or acknowledged before it is in the log;
//! - concurrent writers share one fsync (group commit);
//! - the log order is the apply order, so replay reproduces what clients saw;
//! - a batch is one unit of the queue, applied under one write lock, hence
//!   isolated from readers.
//!
//! Readers take the store's read lock, which the writer takes only to apply
//! a group in memory (letting readers in between requests), never across I/O.

use std::collections::HashMap;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use tokio::sync::oneshot;

use crate::store::{Loader, Store};
use crate::ttl::now_ms;
use crate::value::{Key, StoredValue};
use crate::wal::{Appender, BatchMark, FsyncPolicy, LockedLog, Op, Record, TornTail, WalError};

/// Most requests one group commit takes from the queue.
const MAX_GROUP: usize = 1024;
/// The longest a writer waits for stragglers before committing a group (see
/// [`Writer::gather`]).
const COMMIT_DELAY: Duration = Duration::from_micros(200);
/// Records applied before the writer lets readers in between two jobs.
const APPLY_RECORDS_PER_LOCK: usize = 256;
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

enum Message {
    Write(Job),
    Shutdown(oneshot::Sender<io::Result<()>>),
}

struct Job {
    commands: Vec<Command>,
    reply: oneshot::Sender<Result<Vec<Outcome>, DbError>>,
}

struct Shared {
    store: RwLock<Store>,
    queue: mpsc::Sender<Message>,
    sweeper_stop: AtomicBool,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

/// A cheap-to-clone handle on an open data directory.
#[derive(Clone)]
pub struct Db {
    shared: Arc<Shared>,
}

impl Db {
    /// Locks and replays the data directory, then starts the writer and the sweeper.
    pub fn open(dir: &Path, policy: FsyncPolicy) -> Result<(Db, OpenReport), WalError> {
        let started = Instant::now();
        let mut log = LockedLog::open(dir)?;
        let now = now_ms();
        let mut loader = Loader::new(now);
        let scan = log.recover(|record, _| loader.apply(record), |_| {})?;
        let store = loader.finish();
        let appender = log.into_appender(policy)?;
        let report = OpenReport {
            records: scan.records,
            bytes: scan.bytes,
            elapsed: started.elapsed(),
            torn: scan.torn,
            keys: store.stats(now).keys,
        };

        // Unbounded: every HTTP connection has at most one request in flight,
        // so the queue is bounded by the connections, and sending never waits.
        let (queue, jobs) = mpsc::channel();
        let shared = Arc::new(Shared {
            store: RwLock::new(store),
            queue,
            sweeper_stop: AtomicBool::new(false),
            threads: Mutex::new(Vec::new()),
        });
        let writer = Writer {
            shared: shared.clone(),
            appender,
            next_batch_id: scan.max_batch_id + 1,
            buf: Vec::with_capacity(1 << 16),
            last_group: 0,
        };
        let spawn_err = |source| WalError::Io {
            context: "cannot start a thread for",
            path: dir.to_path_buf(),
            source,
        };
        let writer = std::thread::Builder::new()
            .name("wal-writer".into())
            .spawn(move || abort_on_panic("WAL writer", || writer.run(jobs)))
            .map_err(spawn_err)?;
        let sweeper_shared = shared.clone();
        let sweeper = std::thread::Builder::new()
            .name("expiry-sweeper".into())
            .spawn(move || abort_on_panic("expiry sweeper", || sweep_loop(&sweeper_shared)))
            .map_err(spawn_err)?;
        shared.threads.lock().extend([writer, sweeper]);
        Ok((Db { shared }, report))
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
        self.shared
            .queue
            .send(Message::Write(Job { commands, reply }))
            .map_err(|_| DbError::Closed)?;
        answer.await.map_err(|_| DbError::Closed)?
    }

    /// Finishes every queued write, syncs the log and stops the threads.
    pub async fn shutdown(&self) -> io::Result<()> {
        let (reply, done) = oneshot::channel();
        let synced = match self.shared.queue.send(Message::Shutdown(reply)) {
            Ok(()) => done.await.unwrap_or(Ok(())),
            Err(_) => Ok(()),
        };
        self.shared.sweeper_stop.store(true, Ordering::Release);
        let threads: Vec<_> = self.shared.threads.lock().drain(..).collect();
        for thread in threads {
            thread.thread().unpark();
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
        synced
    }
}

struct Writer {
    shared: Arc<Shared>,
    appender: Appender,
    next_batch_id: u64,
    buf: Vec<u8>,
    /// Jobs in the last group, a guess at how many clients are writing.
    last_group: usize,
}

impl Writer {
    fn run(mut self, queue: mpsc::Receiver<Message>) {
        let mut group = Vec::with_capacity(MAX_GROUP);
        while let Ok(first) = queue.recv() {
            let mut shutdown = None;
            let mut next = Some(first);
            while let Some(message) = next.take() {
                match message {
                    Message::Write(job) => group.push(job),
                    Message::Shutdown(reply) => {
                        shutdown = Some(reply);
                        break;
                    }
                }
                if group.len() < MAX_GROUP {
                    next = queue.try_recv().ok();
                }
            }
            if shutdown.is_none() {
                shutdown = self.gather(&queue, &mut group);
            }
            self.last_group = group.len();
            if !group.is_empty() {
                self.commit(&mut group);
            }
            if let Some(reply) = shutdown {
                let _ = reply.send(self.appender.sync());
                return;
            }
        }
        if let Err(err) = self.appender.sync() {
            tracing::error!(
                "final sync of {} failed: {err}",
                self.appender.path().display()
            );
        }
    }

    /// With `--fsync always`, waits up to [`COMMIT_DELAY`] for the writers
    /// of the last group to come back, so they share this group's fsync
    /// instead of each paying for another (PostgreSQL's commit_delay, with
    /// the last group's size standing in for commit_siblings). A lone writer
    /// never waits. Returns a shutdown request if one arrives meanwhile.
    fn gather(
        &mut self,
        queue: &mpsc::Receiver<Message>,
        group: &mut Vec<Job>,
    ) -> Option<oneshot::Sender<io::Result<()>>> {
        if self.appender.policy() != FsyncPolicy::Always {
            return None;
        }
        let expected = (self.last_group * 3 / 4).min(MAX_GROUP);
        let deadline = Instant::now() + COMMIT_DELAY;
        while group.len() < expected {
            let left = deadline.saturating_duration_since(Instant::now());
            match queue.recv_timeout(left) {
                Ok(Message::Write(job)) => group.push(job),
                Ok(Message::Shutdown(reply)) => return Some(reply),
                Err(_) => break,
            }
        }
        None
    }

    /// Logs, applies and answers one group of jobs.
    fn commit(&mut self, group: &mut Vec<Job>) {
        let now = now_ms();
        let mut records: Vec<Record> = Vec::new();
        let mut outcomes: Vec<Vec<Outcome>> = Vec::with_capacity(group.len());
        // How many records each job wrote, in order: a job is applied whole.
        let mut job_records: Vec<usize> = Vec::with_capacity(group.len());
        {
            let store = self.shared.store.read();
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
            let mut store = self.shared.store.write();
            let mut held = 0;
            for count in job_records {
                if held >= APPLY_RECORDS_PER_LOCK {
                    drop(store);
                    store = self.shared.store.write();
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
    while !shared.sweeper_stop.load(Ordering::Acquire) {
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
            if removed < SWEEP_CHUNK || shared.sweeper_stop.load(Ordering::Acquire) {
                break;
            }
        }
        tracing::debug!("swept {swept} expired keys");
        if swept >= 4 * SWEEP_CHUNK {
            give_memory_back();
        }
    }
}

/// Asks the allocator to return freed pages after a large sweep, so that the
/// memory of expired keys shows up as given back, not merely reusable.
fn give_memory_back() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free heap pages; it has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}
