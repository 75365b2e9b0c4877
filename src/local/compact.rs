//! Online compaction and snapshots of the local engine's log.
//!
//! Both start from a point in log order: the length of the whole groups
//! written so far, read under the commit path's log lock. Everything before
//! that point is scanned into the last set of each live key, exactly as the
//! log has it (timestamp, ttl), so replaying the result rebuilds the same
//! map with the same deadlines.
//!
//! A compaction writes those sets to a new file while writers go on
//! appending to the old log, then copies what they appended meanwhile and
//! swaps the new file in under the log lock: readers never wait, writers
//! wait only for the last copy and the rename. Like Redis's
//! `auto-aof-rewrite`, it starts by itself once the log is over a minimum
//! size and has grown by a factor since the last compaction.
//!
//! A snapshot streams those sets, the state at its point, as a compacted
//! log; writers go on meanwhile.

use std::fs::File;
use std::io;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::Shared;
use crate::storage::{Compaction, SnapshotChunks, StorageError};
use crate::ttl::now_ms;
use crate::wal::rewrite::{final_sets_of, write_sets, FinalSets, Rewrite, SwapStep};
use crate::wal::WalError;

/// When the log is compacted without being asked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AutoCompact {
    /// No compaction below this log size, in bytes; 0 turns them off.
    pub min_bytes: u64,
    /// Compact once the log is this many times its size after the last one.
    pub ratio: f64,
}

impl AutoCompact {
    /// Never compacts by itself.
    pub const OFF: AutoCompact = AutoCompact {
        min_bytes: 0,
        ratio: 2.0,
    };

    /// Whether a log of `len` bytes, `base` after the last compaction (or
    /// at start), is due.
    pub fn is_due(&self, len: u64, base: u64) -> bool {
        self.min_bytes > 0 && len >= self.min_bytes && len as f64 >= base as f64 * self.ratio
    }
}

/// How often the compactor thread looks at the log's size.
const CHECK_EVERY: Duration = Duration::from_secs(1);
/// After a failed automatic compaction, the wait before the next try.
const RETRY_AFTER: Duration = Duration::from_secs(60);
/// The tail copied without holding writers off is caught up while it is
/// larger than this, so the part copied under the lock stays small.
const CATCH_UP_BYTES: u64 = 256 << 10;
/// Snapshot bytes per chunk sent to the client.
const SNAPSHOT_CHUNK: usize = 256 << 10;

/// Test-only: the compaction step at which the process kills itself with
/// SIGKILL, to test that a crash anywhere in a compaction loses nothing.
pub const TEST_CRASH_ENV: &str = "KVCTL_TEST_COMPACT_CRASH";
/// Test-only: a path; once the new file is written, a compaction waits
/// while a file is there (for at most a minute) before it catches up, so a
/// test can write during a compaction.
pub const TEST_HOLD_ENV: &str = "KVCTL_TEST_COMPACT_HOLD";

/// The compactor thread: compacts whenever the log is due.
pub(super) fn compact_loop(shared: &Shared) {
    let mut not_before = Instant::now();
    while !shared.stop.load(Ordering::Acquire) {
        std::thread::park_timeout(CHECK_EVERY);
        if shared.stop.load(Ordering::Acquire) || Instant::now() < not_before {
            continue;
        }
        let len = shared.commit.with_log(|log| log.len());
        if !shared
            .auto_compact
            .is_due(len, shared.compacted_len.load(Ordering::Acquire))
        {
            continue;
        }
        if let Err(err) = compact(shared, "by itself") {
            tracing::warn!("automatic compaction failed, retrying in {RETRY_AFTER:?}: {err}");
            not_before = Instant::now() + RETRY_AFTER;
        }
    }
}

/// Compacts the log now (one compaction at a time; a second caller waits
/// for the first, then compacts again); `why` is for the log line.
pub(super) fn compact(shared: &Shared, why: &str) -> Result<Compaction, StorageError> {
    let _one_at_a_time = shared.compacting.lock();
    let started = Instant::now();
    match rewrite_and_swap(shared) {
        Ok((done, held)) => {
            shared
                .compacted_len
                .store(done.bytes_after, Ordering::Release);
            crate::alloc::give_memory_back();
            crate::metrics::compaction_finished(
                started.elapsed(),
                done.bytes_before,
                done.bytes_after,
            );
            tracing::info!(
                "compacted the log {why}: {} → {} bytes in {:.1?}; writes waited {held:.1?} for the swap",
                done.bytes_before,
                done.bytes_after,
                started.elapsed()
            );
            Ok(done)
        }
        Err(CompactError::Stopped) => Err(StorageError::shutting_down()),
        Err(CompactError::Io(err)) => {
            crate::metrics::compaction_failed();
            tracing::warn!("compaction failed, the log is unchanged: {err}");
            Err(StorageError::Failed(format!(
                "compaction failed, the log is unchanged: {err}"
            )))
        }
    }
}

/// Why a compaction did not happen.
#[derive(Debug, thiserror::Error)]
enum CompactError {
    #[error("the store is shutting down")]
    Stopped,
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// The live keys' last sets as of now in log order (the end of the last
/// whole group), that point, and a second reader of the log it is in.
fn live_sets_now(shared: &Shared) -> Result<(FinalSets, u64, File), WalError> {
    let path = shared.dir.join(crate::wal::WAL_FILE);
    let io_error = |source| WalError::Io {
        context: "cannot read",
        path: path.clone(),
        source,
    };
    let (reader, point) = shared
        .commit
        .with_log(|log| log.reader())
        .map_err(io_error)?;
    let second = reader.try_clone().map_err(io_error)?;
    Ok((
        final_sets_of(reader, &path, point, now_ms())?,
        point,
        second,
    ))
}

/// Compacts the log; what that did, and how long writes waited for the swap.
fn rewrite_and_swap(shared: &Shared) -> Result<(Compaction, Duration), CompactError> {
    let (sets, point, source) = live_sets_now(shared).map_err(io::Error::other)?;
    let mut rewrite = Rewrite::create(&shared.dir, source, point)?;
    let mut checks = 0;
    let stopped = || {
        checks += 1;
        if checks == 2 {
            failpoint("writing");
        }
        if shared.stop.load(Ordering::Acquire) {
            Err(io::Error::other("the store is shutting down"))
        } else {
            Ok(())
        }
    };
    let written = write_sets(&sets, rewrite.out(), stopped);
    drop(sets);
    if let Err(err) = written {
        return Err(if shared.stop.load(Ordering::Acquire) {
            CompactError::Stopped
        } else {
            err.into()
        });
    }
    rewrite.sync()?;
    failpoint("written");
    hold_for_test();
    // Catch up without the lock while the tail is large, so that writers
    // wait only for the last few groups to be copied.
    for _ in 0..8 {
        let end = shared.commit.with_log(|log| log.len());
        if end - rewrite.copied_to() <= CATCH_UP_BYTES {
            break;
        }
        rewrite.copy_tail(end)?;
        // Synced here, so the sync under the lock has only the last copy to do.
        rewrite.sync()?;
    }
    let (bytes_before, bytes_after, held, retired) = shared.commit.with_log(|log| {
        let holding = Instant::now();
        let before = log.len();
        let (after, retired) = log.swap_in(rewrite, |step| {
            failpoint(match step {
                SwapStep::BeforeRename => "before-rename",
                SwapStep::BeforeDirSync => "before-dir-sync",
                SwapStep::BeforeSwitch => "before-switch",
            })
        })?;
        failpoint("after-switch");
        Ok::<_, io::Error>((before, after, holding.elapsed(), retired))
    })?;
    drop(retired);
    let done = Compaction {
        bytes_before,
        bytes_after,
    };
    Ok((done, held))
}

/// Streams the state at this point in log order, as a compacted log, into
/// `chunks`; stops early if the receiver goes away.
pub(super) fn snapshot(shared: &Shared, chunks: mpsc::Sender<Result<Vec<u8>, StorageError>>) {
    let failed = |err: &dyn std::fmt::Display| {
        let _ = chunks.blocking_send(Err(StorageError::Failed(format!(
            "the snapshot failed: {err}"
        ))));
    };
    let sets = match live_sets_now(shared) {
        Ok((sets, _, _)) => sets,
        Err(err) => return failed(&err),
    };
    let mut out = ChunkWriter {
        buf: Vec::with_capacity(SNAPSHOT_CHUNK),
        chunks: &chunks,
    };
    let sent = write_sets(&sets, &mut out, || Ok(())).and_then(|_| out.send());
    if let Err(err) = sent {
        if err.kind() != io::ErrorKind::BrokenPipe {
            failed(&err);
        }
    }
}

/// Sends what is written to it in chunks of [`SNAPSHOT_CHUNK`] bytes.
struct ChunkWriter<'a> {
    buf: Vec<u8>,
    chunks: &'a mpsc::Sender<Result<Vec<u8>, StorageError>>,
}

impl ChunkWriter<'_> {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(SNAPSHOT_CHUNK));
        self.chunks
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))
    }
}

impl io::Write for ChunkWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(bytes);
        if self.buf.len() >= SNAPSHOT_CHUNK {
            self.send()?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

/// A [`SnapshotChunks`] receiver and the sender the snapshot fills.
pub(super) fn snapshot_channel() -> (mpsc::Sender<Result<Vec<u8>, StorageError>>, SnapshotChunks) {
    let (tx, rx) = mpsc::channel(4);
    (tx, SnapshotChunks::new(rx))
}

/// Kills the process at `step` if a test asked for it (see [`TEST_CRASH_ENV`]).
fn failpoint(step: &str) {
    static CRASH_AT: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    let crash_at = CRASH_AT.get_or_init(|| std::env::var(TEST_CRASH_ENV).ok());
    if crash_at.as_deref() == Some(step) {
        tracing::warn!("{TEST_CRASH_ENV}={step}: killing the process, for testing");
        // SAFETY: kill(2) with our own pid and a valid signal number has no
        // memory effects; SIGKILL ends the process at once, as a crash would.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
}

fn hold_for_test() {
    let Some(hold) = std::env::var_os(TEST_HOLD_ENV) else {
        return;
    };
    let until = Instant::now() + Duration::from_secs(60);
    while std::path::Path::new(&hold).exists() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[cfg(test)]
mod tests {
    use super::AutoCompact;

    #[test]
    fn a_log_is_due_over_the_minimum_once_it_has_grown_by_the_ratio() {
        let auto = AutoCompact {
            min_bytes: 100,
            ratio: 2.0,
        };
        assert!(!auto.is_due(99, 0), "under the minimum");
        assert!(auto.is_due(100, 0));
        assert!(!auto.is_due(150, 80), "grown by less than the ratio");
        assert!(auto.is_due(160, 80));
        assert!(!AutoCompact::OFF.is_due(u64::MAX, 0), "0 turns it off");
    }
}
