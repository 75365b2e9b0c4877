//! Group commit: how write requests are decided, staged, logged, applied
//! and answered.
//!
//! A write request is decided (`super::decide`) and encoded the moment it
//! arrives, into the staged batch, under a short lock. One flush at a time
//! takes everything staged, writes it with one `write`, syncs it once (per
//! policy), and only then applies it to the map and answers its requests.
//! So:
//! - nothing is visible or acknowledged before it is in the log;
//! - the requests that arrive during a flush's fsync are decided and
//!   encoded meanwhile, and the next flush covers all of them with one
//!   fsync, with no waiting to gather them;
//! - the log order is the apply order, so replay reproduces what clients saw;
//! - a request is applied under one write lock, hence isolated from readers.
//!
//! A set needs nothing from the map, so it is staged at once even while a
//! flush is under way. A delete or a get in a batch reads the map, which
//! lacks the batch being flushed until it is applied: such a request, if it
//! comes during a flush, is deferred and decided as the next flush begins,
//! when everything before it is applied.
//!
//! Who flushes: the request that finds no flush under way flushes on the
//! spot, its fsync included under `--fsync always`, as a PostgreSQL backend
//! flushes its own commit: a lone writer never waits for a thread to wake
//! up. That holds one async worker for one write and fsync; the others go
//! on serving readers meanwhile. If writes keep coming, the flushing passes
//! to the writer thread, which flushes for as long as anything is staged:
//! after one flush under `always` (an fsync is too long to hold a worker
//! twice), after a few otherwise (a write takes microseconds).
//!
//! Under `always` a flush is also a pipeline of two threads: once a group
//! is durable, the flusher hands it to the applier thread, which applies
//! and answers it while the next group is written and synced. The applier
//! takes one group at a time, in log order, so the apply order is still
//! the log order. The flusher applies a group itself when nothing else is
//! staged, so a lone writer still wakes no other thread. A request that
//! reads the map, and stepping down, wait until every group flushed before
//! is applied.
//!
//! Under `always`, when fewer requests are staged than the last group had,
//! the writer thread first lets the runtime run the tasks that are ready
//! (`let_ready_tasks_run`). On a busy machine the clients answered a group
//! ago have sent their next requests, which are received but not yet
//! staged: waiting for them makes the next group whole, where starting the
//! fsync at once would cover a fraction of it and leave the rest a whole
//! fsync behind. Each fsync costs tens of microseconds of kernel CPU, so
//! fewer, larger groups leave more CPU to the requests themselves; the
//! figures are in `bench/results/durable-writes.md`.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::{Condvar, Mutex, RwLock};
use tokio::sync::oneshot;

use super::decide::{Decided, Decider};
use super::map::Map;
use super::{abort_on_panic, apply};
use crate::storage::{Command, Outcome, StorageError};
use crate::ttl::now_ms;
use crate::wal::{Appender, Record};

/// Flushes a request flushing on the spot does, its own included, before it
/// hands the flushing to the writer thread: a few microseconds each without
/// an fsync, cheaper than waking a thread. With an fsync, one.
const INLINE_FLUSHES: usize = 8;
/// Most bytes the staging buffer starts a batch with.
const STAGED_BUF_BYTES: usize = 1 << 16;
/// Records applied before a flush lets readers in between two requests.
const APPLY_RECORDS_PER_LOCK: usize = 256;

type Reply = oneshot::Sender<Result<Vec<Outcome>, StorageError>>;

/// A request deferred until the flush under way is applied.
struct Job {
    commands: Vec<Command>,
    reply: Reply,
}

/// The requests decided since the last flush began, and who is flushing.
#[derive(Default)]
struct Staged {
    decider: Decider,
    /// The encoded records of `decider`.
    buf: Vec<u8>,
    /// One per request decided, in order.
    replies: Vec<Reply>,
    /// Requests that read the map and came during a flush.
    deferred: Vec<Job>,
    next_batch_id: u64,
    /// A request or the writer thread is flushing; no other starts a flush.
    flushing: bool,
    /// Shutdown has begun: writes are refused.
    closed: bool,
    /// Told when the flusher steps down (shutdown waits for that).
    idle: Vec<oneshot::Sender<()>>,
}

/// What one flush writes, applies and answers.
struct Batch {
    decided: Decided,
    buf: Vec<u8>,
    replies: Vec<Reply>,
}

/// What [`Staged::take`] found.
enum Taken {
    /// The next batch to flush.
    Batch(Batch),
    /// Groups logged earlier are still being applied, and what is staged
    /// must wait for them: a request that reads the map, or the decision to
    /// step down (which promises that every flushed group is answered).
    Unsettled,
    /// Nothing was staged: the flusher stepped down.
    SteppedDown,
}

impl Staged {
    /// Decides a request and encodes its records into the staged batch.
    fn stage(&mut self, map: &RwLock<Map>, commands: Vec<Command>, reply: Reply) {
        let first = self.decider.records().len();
        self.decider
            .request(map, now_ms(), &mut self.next_batch_id, commands);
        for record in &self.decider.records()[first..] {
            record.encode_into(&mut self.buf);
        }
        self.replies.push(reply);
    }

    /// The next batch to flush, with the deferred requests decided first.
    /// `settled` says that every group flushed before is applied; until it
    /// is, neither deferred requests nor stepping down can go ahead.
    fn take(&mut self, map: &RwLock<Map>, settled: bool) -> Taken {
        if !settled && (!self.deferred.is_empty() || self.decider.is_empty()) {
            return Taken::Unsettled;
        }
        for job in std::mem::take(&mut self.deferred) {
            self.stage(map, job.commands, job.reply);
        }
        if self.step_down_if_empty() {
            return Taken::SteppedDown;
        }
        // The next batch is likely about as large as this one; a huge one
        // must not make every later flush allocate as much.
        let capacity = self.buf.len().min(STAGED_BUF_BYTES);
        Taken::Batch(Batch {
            decided: self.decider.take(),
            buf: std::mem::replace(&mut self.buf, Vec::with_capacity(capacity)),
            replies: std::mem::take(&mut self.replies),
        })
    }

    /// Steps down from flushing if nothing is staged or deferred; whether
    /// it did.
    fn step_down_if_empty(&mut self) -> bool {
        if !self.decider.is_empty() || !self.deferred.is_empty() {
            return false;
        }
        self.flushing = false;
        for told in self.idle.drain(..) {
            let _ = told.send(());
        }
        true
    }
}

/// A logged group whose records are still to be applied and whose requests
/// are still to be answered.
struct Logged {
    records: Vec<Record>,
    records_per_request: Vec<usize>,
    outcomes: Vec<Vec<Outcome>>,
    replies: Vec<Reply>,
}

impl Logged {
    /// Applies the group to the map, then answers its requests.
    fn apply_and_answer(self, map: &RwLock<Map>) {
        apply_requests(map, self.records, &self.records_per_request, now_ms());
        for (reply, results) in self.replies.into_iter().zip(self.outcomes) {
            let _ = reply.send(Ok(results));
        }
    }
}

/// The hand-off between the flusher and the applier thread: at most one
/// logged group waiting, so the flusher is never more than a group ahead.
#[derive(Default)]
struct Applier {
    state: Mutex<ApplierState>,
    /// Told whenever `state` changes.
    changed: Condvar,
}

#[derive(Default)]
struct ApplierState {
    /// The next group to apply.
    next: Option<Logged>,
    /// The applier is applying a group it took.
    busy: bool,
    /// The engine is stopping: the applier thread ends once it is idle.
    stopping: bool,
}

impl Applier {
    /// Whether every group handed over is applied and answered.
    fn is_idle(&self) -> bool {
        let state = self.state.lock();
        state.next.is_none() && !state.busy
    }

    /// Waits until every group handed over is applied and answered.
    fn wait_idle(&self) {
        let mut state = self.state.lock();
        while state.next.is_some() || state.busy {
            self.changed.wait(&mut state);
        }
    }

    /// Hands `group` over if the applier is at work (it must then apply
    /// this one after it) or if more waits to be logged (`more_staged`).
    /// Otherwise gives it back, for the caller to apply.
    fn hand_over(&self, group: Logged, more_staged: impl FnOnce() -> bool) -> Option<Logged> {
        let mut state = self.state.lock();
        if !state.busy && state.next.is_none() && !more_staged() {
            return Some(group);
        }
        while state.next.is_some() {
            self.changed.wait(&mut state);
        }
        state.next = Some(group);
        self.changed.notify_all();
        None
    }

    /// The applier thread: applies and answers the groups handed over, in
    /// order, until the engine stops.
    fn run(&self, map: &RwLock<Map>) {
        let mut state = self.state.lock();
        loop {
            if let Some(group) = state.next.take() {
                state.busy = true;
                self.changed.notify_all();
                drop(state);
                group.apply_and_answer(map);
                state = self.state.lock();
                state.busy = false;
                self.changed.notify_all();
            } else if state.stopping {
                return;
            } else {
                self.changed.wait(&mut state);
            }
        }
    }

    /// Ends the applier thread once it is idle.
    fn stop(&self) {
        self.state.lock().stopping = true;
        self.changed.notify_all();
    }
}

/// Whether a request's outcome depends on what the map holds.
fn reads_map(commands: &[Command]) -> bool {
    commands
        .iter()
        .any(|c| matches!(c, Command::Delete { .. } | Command::Get { .. }))
}

/// The commit path of one open log.
pub(super) struct GroupCommit {
    staged: Mutex<Staged>,
    /// Only the flusher locks it to append, so appends never contend; a
    /// compaction locks it to hold them off.
    log: Mutex<Appender>,
    /// Set when the flushing is handed to the writer thread.
    handed_over: AtomicBool,
    /// The runtime of the request that last handed the flushing over,
    /// whose ready requests the writer thread lets join its next group.
    runtime: Mutex<Option<tokio::runtime::Handle>>,
    /// Every flush includes an fsync.
    syncs: bool,
    /// With `syncs`, applies and answers logged groups while the next is
    /// logged.
    applier: Applier,
    /// Why the last log write failed, if it did and none succeeded since,
    /// numbered so that a probe clears only the failure it looked at.
    failure: Mutex<Option<(u64, String)>>,
    failures: AtomicU64,
}

impl GroupCommit {
    /// The commit path over `appender`, whose log's batches so far are
    /// numbered below `next_batch_id`.
    pub(super) fn new(appender: Appender, next_batch_id: u64, syncs: bool) -> GroupCommit {
        GroupCommit {
            staged: Mutex::new(Staged {
                next_batch_id,
                buf: Vec::with_capacity(STAGED_BUF_BYTES),
                ..Staged::default()
            }),
            log: Mutex::new(appender),
            handed_over: AtomicBool::new(false),
            runtime: Mutex::new(None),
            syncs,
            applier: Applier::default(),
            failure: Mutex::new(None),
            failures: AtomicU64::new(0),
        }
    }

    /// Runs `f` on the log with appends held off (it waits for the append
    /// under way, and the next waits for it). Everything in the log then is
    /// durable per policy: a flush appends and syncs under this lock.
    pub(super) fn with_log<R>(&self, f: impl FnOnce(&mut Appender) -> R) -> R {
        f(&mut self.log.lock())
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
        self.staged.lock().closed
    }

    /// Stages a write request, and starts a flush if none is under way; the
    /// answer comes once the request is durable and applied. Refused once
    /// shutdown has begun. Nothing here awaits, so a request cancelled later
    /// cannot leave its batch without a flusher.
    pub(super) fn submit(
        &self,
        commands: Vec<Command>,
        map: &RwLock<Map>,
        writer: &std::thread::Thread,
    ) -> Result<oneshot::Receiver<Result<Vec<Outcome>, StorageError>>, StorageError> {
        let (reply, answer) = oneshot::channel();
        let leads = {
            let mut staged = self.staged.lock();
            if staged.closed {
                return Err(StorageError::shutting_down());
            }
            if staged.flushing && reads_map(&commands) {
                staged.deferred.push(Job { commands, reply });
            } else {
                abort_on_panic("group commit", || staged.stage(map, commands, reply));
            }
            !std::mem::replace(&mut staged.flushing, true)
        };
        if leads {
            self.flush_inline(map, writer);
        }
        Ok(answer)
    }

    /// Leaves the flushing to the writer thread (`writer`).
    fn hand_over(&self, writer: &std::thread::Thread) {
        if self.syncs {
            *self.runtime.lock() = tokio::runtime::Handle::try_current().ok();
        }
        self.handed_over.store(true, Ordering::Release);
        writer.unpark();
    }

    /// Flushes on the spot, then hands the flushing to the writer thread
    /// (`writer`) if writes keep coming; steps down otherwise.
    fn flush_inline(&self, map: &RwLock<Map>, writer: &std::thread::Thread) {
        let budget = if self.syncs { 1 } else { INLINE_FLUSHES };
        for _ in 0..budget {
            if self.flush_next(map).is_none() {
                return;
            }
        }
        if !self.staged.lock().step_down_if_empty() {
            self.hand_over(writer);
        }
    }

    /// The writer thread's turn, once the flushing is handed to it: flushes
    /// for as long as writes keep coming; the requests are then answered
    /// from here, in parallel by every async worker.
    ///
    /// Before a group that costs an fsync, if fewer requests are staged
    /// than the last group had, it lets the runtime run the tasks that are
    /// ready, so the requests already received join this group instead of
    /// waiting a whole fsync for the next.
    pub(super) fn flush_if_handed_over(&self, map: &RwLock<Map>) -> bool {
        if !self.handed_over.swap(false, Ordering::AcqRel) {
            return false;
        }
        let runtime = self.runtime.lock().take();
        let mut last_group = 0;
        loop {
            if let Some(runtime) = &runtime {
                if self.staged_requests() < last_group {
                    let_ready_tasks_run(runtime);
                }
            }
            match self.flush_next(map) {
                Some(requests) => last_group = requests,
                None => return true,
            }
        }
    }

    /// Refuses new writes; the answer resolves once no flush is under way
    /// (everything staged is then flushed).
    pub(super) fn close(&self) -> Option<oneshot::Receiver<()>> {
        let mut staged = self.staged.lock();
        staged.closed = true;
        staged.flushing.then(|| {
            let (told, idle) = oneshot::channel();
            staged.idle.push(told);
            idle
        })
    }

    /// Whether the engine needs an applier thread (see [`Self::run_applier`]).
    pub(super) fn pipelines(&self) -> bool {
        self.syncs
    }

    /// The applier thread's body: applies and answers logged groups, in
    /// log order, until [`Self::stop_applier`].
    pub(super) fn run_applier(&self, map: &RwLock<Map>) {
        self.applier.run(map);
    }

    /// Ends the applier thread once it has answered everything handed to it.
    pub(super) fn stop_applier(&self) {
        self.applier.stop();
    }

    /// Forces everything written to disk.
    pub(super) fn sync(&self) -> io::Result<()> {
        self.log.lock().sync()
    }

    /// Flushes what is staged now and says how many requests that was;
    /// `None`, having stepped down, when nothing was.
    fn flush_next(&self, map: &RwLock<Map>) -> Option<usize> {
        let batch = loop {
            // Only the flusher hands groups to the applier, so an applier
            // idle now stays idle until this flush hands it one.
            let settled = self.applier.is_idle();
            let mut taken = Taken::Unsettled;
            // Deciding the deferred requests runs here, on an async worker
            // when a request flushes: a panic must not leave the batch
            // without a flusher and shutdown waiting for one.
            abort_on_panic("group commit", || {
                taken = self.staged.lock().take(map, settled);
            });
            match taken {
                Taken::Batch(batch) => break batch,
                Taken::Unsettled => self.applier.wait_idle(),
                Taken::SteppedDown => return None,
            }
        };
        let requests = batch.replies.len();
        crate::metrics::commit_group(requests);
        abort_on_panic("WAL writer", || self.flush(map, batch));
        Some(requests)
    }

    /// Requests staged or deferred now.
    fn staged_requests(&self) -> usize {
        let staged = self.staged.lock();
        staged.replies.len() + staged.deferred.len()
    }

    /// Logs, applies and answers one batch. Whether the log took it is
    /// recorded (for health) before anyone is answered, so a client told of
    /// a failed write finds the store unhealthy, and one told of a success
    /// finds it healthy.
    fn flush(&self, map: &RwLock<Map>, batch: Batch) {
        let Batch {
            decided,
            buf,
            replies,
        } = batch;
        let Decided {
            records,
            outcomes,
            records_per_request,
        } = decided;
        if !records.is_empty() {
            let mut log = self.log.lock();
            if let Err(err) = log.append(&buf) {
                tracing::error!(
                    "write to {} failed, {} requests refused: {err}",
                    log.path().display(),
                    replies.len()
                );
                drop(log);
                // The groups logged before are answered success first.
                self.applier.wait_idle();
                let which = self.failures.fetch_add(1, Ordering::Relaxed);
                *self.failure.lock() = Some((which, err.to_string()));
                let failed = StorageError::Failed(format!(
                    "write-ahead log write failed, nothing was applied: {err}"
                ));
                for reply in replies {
                    let _ = reply.send(Err(failed.clone()));
                }
                return;
            }
            drop(log);
            *self.failure.lock() = None;
        }
        let logged = Logged {
            records,
            records_per_request,
            outcomes,
            replies,
        };
        if !self.syncs {
            return logged.apply_and_answer(map);
        }
        let more_staged = || self.staged_requests() > 0;
        if let Some(logged) = self.applier.hand_over(logged, more_staged) {
            logged.apply_and_answer(map);
        }
    }
}

/// Returns once `runtime` has run a task spawned from this thread. Such a
/// task goes to the runtime's shared queue, which a busy worker looks at
/// only when its own ready tasks run out or every few dozen of them, so on
/// a busy runtime the wait lets the tasks that were ready run first; a
/// worker with nothing to do runs it at once. If the runtime is shutting
/// down the task is dropped unrun, which ends the wait too. The runtime
/// must be running (the server's always is, while requests are in flight).
fn let_ready_tasks_run(runtime: &tokio::runtime::Handle) {
    let (ran, running) = std::sync::mpsc::sync_channel::<()>(1);
    drop(runtime.spawn(async move {
        let _ = ran.send(());
    }));
    let _ = running.recv();
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;

    use super::*;
    use crate::storage::suite::{delete, set};
    use crate::wal::{FsyncPolicy, LockedLog};

    fn commit(dir: &tempfile::TempDir, policy: FsyncPolicy) -> GroupCommit {
        let mut log = LockedLog::open(dir.path()).unwrap();
        log.recover(|_: Record<crate::wal::LogValue>, _| (), |_| ())
            .unwrap();
        let appender = log.into_appender(policy).unwrap();
        GroupCommit::new(appender, 1, policy == FsyncPolicy::Always)
    }

    /// A writer alone is logged, synced and answered by its own request,
    /// under every policy: no other thread has to wake up for it.
    #[tokio::test(flavor = "current_thread")]
    async fn a_lone_write_is_flushed_by_its_own_request() {
        for policy in [FsyncPolicy::Always, FsyncPolicy::Never] {
            let dir = tempfile::tempdir().unwrap();
            let commit = commit(&dir, policy);
            let map = RwLock::new(Map::new());
            // A writer thread that is never woken: nothing may wait for it.
            let writer = std::thread::current();
            let mut answer = commit.submit(vec![set("k", "1")], &map, &writer).unwrap();
            assert_eq!(answer.try_recv().unwrap().unwrap(), [Outcome::Done]);
            assert!(!commit.handed_over.load(Ordering::Acquire), "{policy}");
            assert!(!commit.staged.lock().flushing, "stepped down");
            assert_eq!(map.read().get("k", now_ms()).map(|v| v.json()), Some("1"));
        }
    }

    #[test]
    fn the_writer_waits_for_the_tasks_that_were_ready_before_it_asked() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let ran = Arc::new(AtomicUsize::new(0));
        for _ in 0..10 {
            let ran = ran.clone();
            runtime.spawn(async move {
                ran.fetch_add(1, Ordering::SeqCst);
            });
        }
        let handle = runtime.handle().clone();
        let seen = std::thread::scope(|scope| {
            let writer = scope.spawn(|| {
                let_ready_tasks_run(&handle);
                ran.load(Ordering::SeqCst)
            });
            // Drive the runtime until the writer is done waiting.
            while !writer.is_finished() {
                runtime.block_on(tokio::task::yield_now());
            }
            writer.join().unwrap()
        });
        assert_eq!(seen, 10, "every task queued before the wait ran first");
    }

    #[test]
    fn the_writer_does_not_wait_for_a_runtime_that_is_gone() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let handle = runtime.handle().clone();
        drop(runtime);
        let (returned, wait) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let_ready_tasks_run(&handle);
            let _ = returned.send(());
        });
        // A deadline that bounds a hang, not a judgement of speed.
        assert!(
            wait.recv_timeout(std::time::Duration::from_secs(60))
                .is_ok(),
            "the wait outlived its runtime"
        );
    }

    /// Stages `commands` as one request; the answer comes once it is applied.
    fn stage(
        staged: &mut Staged,
        map: &RwLock<Map>,
        commands: Vec<Command>,
    ) -> oneshot::Receiver<Result<Vec<Outcome>, StorageError>> {
        let (reply, answer) = oneshot::channel();
        staged.stage(map, commands, reply);
        answer
    }

    /// What a flush of `batch` hands to be applied, as if logged.
    fn logged(batch: Batch) -> Logged {
        Logged {
            records: batch.decided.records,
            records_per_request: batch.decided.records_per_request,
            outcomes: batch.decided.outcomes,
            replies: batch.replies,
        }
    }

    fn take_batch(staged: &mut Staged, map: &RwLock<Map>, settled: bool) -> Batch {
        match staged.take(map, settled) {
            Taken::Batch(batch) => batch,
            Taken::Unsettled => panic!("unsettled"),
            Taken::SteppedDown => panic!("stepped down"),
        }
    }

    #[test]
    fn reads_of_the_map_and_stepping_down_wait_for_earlier_groups_to_be_applied() {
        let map = RwLock::new(Map::new());
        // An earlier group, logged but not yet applied, that sets "a".
        let mut earlier = Staged::default();
        let _earlier_answer = stage(&mut earlier, &map, vec![set("a", "0")]);
        let earlier = logged(take_batch(&mut earlier, &map, true));
        let mut staged = Staged {
            flushing: true,
            ..Staged::default()
        };
        let (reply, _answer) = oneshot::channel();
        staged.deferred.push(Job {
            commands: vec![delete("a")],
            reply,
        });
        assert!(matches!(staged.take(&map, false), Taken::Unsettled));
        let _set = stage(&mut staged, &map, vec![set("b", "1")]);
        assert!(
            matches!(staged.take(&map, false), Taken::Unsettled),
            "sets must not overtake a deferred read while earlier groups are unapplied"
        );
        earlier.apply_and_answer(&map);
        let batch = take_batch(&mut staged, &map, true);
        assert_eq!(batch.replies.len(), 2, "the set and the deferred delete");
        assert_eq!(
            batch.decided.outcomes,
            [vec![Outcome::Done], vec![Outcome::Done]],
            "the delete was decided against the map with the earlier set applied"
        );

        assert!(matches!(staged.take(&map, false), Taken::Unsettled));
        assert!(
            staged.flushing,
            "no stepping down before everything is applied"
        );
        assert!(matches!(staged.take(&map, true), Taken::SteppedDown));
        assert!(!staged.flushing);
    }

    #[test]
    fn sets_are_taken_while_earlier_groups_are_still_being_applied() {
        let map = RwLock::new(Map::new());
        let mut staged = Staged {
            flushing: true,
            ..Staged::default()
        };
        let _set = stage(&mut staged, &map, vec![set("a", "1")]);
        let batch = take_batch(&mut staged, &map, false);
        assert_eq!(batch.decided.records.len(), 1);
    }

    #[test]
    fn the_applier_applies_in_order_and_only_takes_a_group_when_another_waits() {
        let map = RwLock::new(Map::new());
        let applier = Applier::default();
        let mut staged = Staged::default();

        // Nothing else to log: the caller applies the group itself.
        let first = stage(&mut staged, &map, vec![set("k", "1")]);
        let group = logged(take_batch(&mut staged, &map, true));
        let group = applier.hand_over(group, || false).expect("given back");
        group.apply_and_answer(&map);
        assert_eq!(first.blocking_recv().unwrap().unwrap(), [Outcome::Done]);

        // More to log: the applier takes it, and a group handed over while
        // it is at work is applied after it.
        let second = stage(&mut staged, &map, vec![set("k", "2")]);
        let group = logged(take_batch(&mut staged, &map, true));
        assert!(applier.hand_over(group, || true).is_none());
        assert!(!applier.is_idle());
        let third = stage(&mut staged, &map, vec![set("k", "3")]);
        let group = logged(take_batch(&mut staged, &map, false));
        std::thread::scope(|scope| {
            scope.spawn(|| applier.run(&map));
            // Given back only if the applier is done with the second by now.
            if let Some(group) = applier.hand_over(group, || false) {
                group.apply_and_answer(&map);
            }
            applier.wait_idle();
            // Stopped before any assertion, so that a failing one fails the
            // test instead of leaving the scope waiting for the thread.
            applier.stop();
        });
        assert!(applier.is_idle());
        assert_eq!(second.blocking_recv().unwrap().unwrap(), [Outcome::Done]);
        assert_eq!(third.blocking_recv().unwrap().unwrap(), [Outcome::Done]);
        assert_eq!(map.read().get("k", now_ms()).map(|v| v.json()), Some("3"));
    }
}
