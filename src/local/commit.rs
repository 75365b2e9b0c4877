//! Group commit: the queue of write requests, who leads the commit, and how
//! a group is logged, applied and answered.
//!
//! Every write request joins a queue. Whoever leads the commit takes
//! everything queued as a group, decides each command (`super::decide`),
//! encodes the group's records into one buffer, writes it with one `write`
//! and syncs it once (per policy), and only then applies the group to the
//! map and answers the requests. So:
//! - nothing is visible or acknowledged before it is in the log;
//! - concurrent writers share one fsync;
//! - the log order is the apply order, so replay reproduces what clients saw;
//! - a request is applied under one write lock, hence isolated from readers.
//!
//! Who leads (leader/follower): a request that finds no commit under way
//! commits its own group on the spot, so a lone writer never waits for
//! another thread to wake up. If writes queued up meanwhile, it hands the
//! lead to the writer thread, which commits group after group until the
//! queue is empty, and the queued requests just wait for their answer. A
//! thread is woken only when commits start to overlap, not for every write.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, RwLock};
use tokio::sync::oneshot;

use super::decide::{decide, Decided};
use super::map::Map;
use super::{abort_on_panic, apply};
use crate::storage::{Command, Outcome, StorageError};
use crate::ttl::now_ms;
use crate::wal::{Appender, Record};

/// Most requests one group commit takes from the queue.
const MAX_GROUP: usize = 1024;
/// Groups a leading request commits after its own, when commits do not
/// fsync, before it hands the lead to the writer thread: a few microseconds
/// each, cheaper than waking a thread.
const INLINE_GROUPS: usize = 8;
/// The longest the writer thread waits for the writers of its last group
/// before committing the next (see [`GroupCommit::gather`]).
const COMMIT_DELAY: Duration = Duration::from_micros(200);
/// Records applied before the leader lets readers in between two requests.
const APPLY_RECORDS_PER_LOCK: usize = 256;

/// A write request waiting for its group's commit.
struct Job {
    commands: Vec<Command>,
    reply: oneshot::Sender<Result<Vec<Outcome>, StorageError>>,
}

/// The queue of writes waiting for a group commit, and who is committing.
#[derive(Default)]
struct Queue {
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

impl Queue {
    fn step_down(&mut self) {
        self.leading = false;
        for told in self.idle.drain(..) {
            let _ = told.send(());
        }
    }
}

/// The commit path of one open log.
pub(super) struct GroupCommit {
    queue: Mutex<Queue>,
    /// Only the leader locks it, so it is never contended.
    log: Mutex<LogWriter>,
    /// Set when a request hands the lead to the writer thread.
    handed_over: AtomicBool,
    /// Wakes the writer thread when the writes it waits for are queued.
    gathered: Condvar,
    /// Every commit includes an fsync.
    syncs: bool,
    /// Why the last log write failed, if it did and none succeeded since,
    /// numbered so that a probe clears only the failure it looked at.
    failure: Mutex<Option<(u64, String)>>,
    failures: std::sync::atomic::AtomicU64,
}

/// The appending side of the log, owned by whoever leads the commit.
struct LogWriter {
    appender: Appender,
    next_batch_id: u64,
    buf: Vec<u8>,
}

impl GroupCommit {
    /// The commit path over `appender`, whose log's batches so far are
    /// numbered below `next_batch_id`.
    pub(super) fn new(appender: Appender, next_batch_id: u64, syncs: bool) -> GroupCommit {
        GroupCommit {
            queue: Mutex::new(Queue::default()),
            log: Mutex::new(LogWriter {
                appender,
                next_batch_id,
                buf: Vec::with_capacity(1 << 16),
            }),
            handed_over: AtomicBool::new(false),
            gathered: Condvar::new(),
            syncs,
            failure: Mutex::new(None),
            failures: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Runs `f` on the log with appends held off (it waits for the commit
    /// under way, and the next waits for it).
    pub(super) fn with_log<R>(&self, f: impl FnOnce(&mut Appender) -> R) -> R {
        f(&mut self.log.lock().appender)
    }

    /// Why the last log write failed, and its number, if none has
    /// succeeded since.
    pub(super) fn last_failure(&self) -> Option<(u64, String)> {
        self.failure.lock().clone()
    }

    /// Forgets failure number `which` unless another came since (the disk
    /// took a write after it).
    pub(super) fn clear_failure(&self, which: u64) {
        let mut failure = self.failure.lock();
        if failure.as_ref().is_some_and(|(n, _)| *n == which) {
            *failure = None;
        }
    }

    /// Whether shutdown has begun refusing writes.
    pub(super) fn is_closed(&self) -> bool {
        self.queue.lock().closed
    }

    /// Queues a write request, and commits the queue at once if no commit
    /// is under way; the answer comes once the request is durable and
    /// applied. Refused once shutdown has begun. Nothing here awaits, so a
    /// request cancelled later cannot leave the queue without a leader.
    pub(super) fn submit(
        &self,
        commands: Vec<Command>,
        map: &RwLock<Map>,
        writer: &std::thread::Thread,
    ) -> Result<oneshot::Receiver<Result<Vec<Outcome>, StorageError>>, StorageError> {
        let (reply, answer) = oneshot::channel();
        let leads = {
            let mut queue = self.queue.lock();
            if queue.closed {
                return Err(StorageError::shutting_down());
            }
            queue.pending.push(Job { commands, reply });
            if queue.wanted != 0 && queue.pending.len() >= queue.wanted {
                queue.wanted = 0;
                self.gathered.notify_one();
            }
            !std::mem::replace(&mut queue.leading, true)
        };
        if leads {
            self.lead(map, writer);
        }
        Ok(answer)
    }

    /// Commits the queue as the leader, then steps down, or hands the lead
    /// to the writer thread (`writer`) if writes keep coming.
    fn lead(&self, map: &RwLock<Map>, writer: &std::thread::Thread) {
        if self.syncs && on_multi_thread_runtime() {
            // The fsync blocks this async worker; block_in_place first
            // hands its other tasks to another thread.
            tokio::task::block_in_place(|| self.commit_next_group(map));
        } else {
            self.commit_next_group(map);
        }
        let mut extra_groups = if self.syncs { 0 } else { INLINE_GROUPS };
        while !self.step_down_if_idle() {
            if extra_groups == 0 {
                self.handed_over.store(true, Ordering::Release);
                writer.unpark();
                break;
            }
            extra_groups -= 1;
            self.commit_next_group(map);
        }
    }

    /// The writer thread's turn, once a request has handed it the lead:
    /// commits groups for as long as writes keep coming; the requests are
    /// then answered from here, in parallel by every async worker.
    pub(super) fn lead_if_handed_over(&self, map: &RwLock<Map>) -> bool {
        if !self.handed_over.swap(false, Ordering::AcqRel) {
            return false;
        }
        let mut last_group = 0;
        loop {
            if self.syncs {
                self.gather(last_group * 3 / 4);
            }
            match self.commit_next_group(map) {
                0 => return true,
                size => last_group = size,
            }
        }
    }

    /// Refuses new writes; the answer resolves once no commit is under way.
    pub(super) fn close(&self) -> Option<oneshot::Receiver<()>> {
        let mut queue = self.queue.lock();
        queue.closed = true;
        queue.leading.then(|| {
            let (told, idle) = oneshot::channel();
            queue.idle.push(told);
            idle
        })
    }

    /// Forces everything written to disk.
    pub(super) fn sync(&self) -> io::Result<()> {
        self.log.lock().appender.sync()
    }

    /// Waits up to [`COMMIT_DELAY`] for `expected` writes to be queued, so
    /// that the writers of the last group, coming back, share the next fsync
    /// instead of each paying for another (PostgreSQL's commit_delay, with
    /// the last group's size standing in for commit_siblings). Woken once,
    /// by the write that completes the count, not by every write.
    fn gather(&self, expected: usize) {
        let deadline = Instant::now() + COMMIT_DELAY;
        let mut queue = self.queue.lock();
        while queue.pending.len() < expected.min(MAX_GROUP) && !queue.closed {
            queue.wanted = expected;
            if self.gathered.wait_until(&mut queue, deadline).timed_out() {
                break;
            }
        }
        queue.wanted = 0;
    }

    /// The leader commits the writes waiting now, as one group, and returns
    /// its size; 0, having stepped down, when none were waiting.
    fn commit_next_group(&self, map: &RwLock<Map>) -> usize {
        let mut group = {
            let mut queue = self.queue.lock();
            if queue.pending.is_empty() {
                queue.step_down();
                return 0;
            }
            if queue.pending.len() <= MAX_GROUP {
                std::mem::take(&mut queue.pending)
            } else {
                queue.pending.drain(..MAX_GROUP).collect()
            }
        };
        let size = group.len();
        crate::metrics::commit_group(size);
        let mut logged = Ok(false);
        abort_on_panic("WAL writer", || {
            logged = self.log.lock().commit(map, &mut group);
        });
        match logged {
            Ok(false) => {}
            Ok(true) => *self.failure.lock() = None,
            Err(err) => {
                let which = self.failures.fetch_add(1, Ordering::Relaxed);
                *self.failure.lock() = Some((which, err));
            }
        }
        size
    }

    /// Steps down if no write is waiting; false if some are (and the caller
    /// must hand them on).
    fn step_down_if_idle(&self) -> bool {
        let mut queue = self.queue.lock();
        let idle = queue.pending.is_empty();
        if idle {
            queue.step_down();
        }
        idle
    }
}

impl LogWriter {
    /// Logs, applies and answers one group of jobs; whether it wrote to the
    /// log, or why writing failed.
    fn commit(&mut self, map: &RwLock<Map>, group: &mut Vec<Job>) -> Result<bool, String> {
        let now = now_ms();
        let Decided {
            records,
            outcomes,
            records_per_request,
        } = {
            let requests = group
                .iter_mut()
                .map(|job| std::mem::take(&mut job.commands));
            decide(&map.read(), now, &mut self.next_batch_id, requests)
        };
        let wrote = !records.is_empty();
        if wrote {
            if let Err(err) = self.append(&records) {
                tracing::error!(
                    "write to {} failed, {} requests refused: {err}",
                    self.appender.path().display(),
                    group.len()
                );
                let failed = StorageError::Failed(format!(
                    "write-ahead log write failed, nothing was applied: {err}"
                ));
                for job in group.drain(..) {
                    let _ = job.reply.send(Err(failed.clone()));
                }
                return Err(err.to_string());
            }
            apply_requests(map, records, &records_per_request, now);
        }
        for (job, results) in group.drain(..).zip(outcomes) {
            let _ = job.reply.send(Ok(results));
        }
        Ok(wrote)
    }

    /// Writes a group's records to the log as one append (synced per policy).
    fn append(&mut self, records: &[Record]) -> io::Result<()> {
        self.buf.clear();
        for record in records {
            record.encode_into(&mut self.buf);
        }
        self.appender.append(&self.buf)
    }
}

/// Applies a logged group to the map, each request's records under one
/// write lock (isolation). The lock is let go between requests once a few
/// hundred records have been applied, so a group of large batches never
/// holds readers off for long.
fn apply_requests(map: &RwLock<Map>, records: Vec<Record>, per_request: &[usize], now: u64) {
    let mut records = records.into_iter();
    let mut locked = map.write();
    let mut held = 0;
    for &count in per_request {
        if held >= APPLY_RECORDS_PER_LOCK {
            drop(locked);
            locked = map.write();
            held = 0;
        }
        for record in records.by_ref().take(count) {
            apply(&mut locked, record, now);
        }
        held += count;
    }
}

/// Whether this thread is a worker of a multi-threaded tokio runtime, the
/// only kind on which `block_in_place` can move other tasks away.
fn on_multi_thread_runtime() -> bool {
    tokio::runtime::Handle::try_current()
        .is_ok_and(|rt| rt.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread)
}
