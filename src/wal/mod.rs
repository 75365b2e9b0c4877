//! The write-ahead log: the file, its lock, replay with tail repair, appends.
//!
//! `<data dir>/wal.log` is the only durable state. The server holds an
//! exclusive lock on it for its whole life, so one process at a time owns a
//! data directory; offline tools (`kvctl wal compact`, offline `put`) take
//! the same lock. Compaction ([`rewrite`]) replaces the file under the
//! lock, online or offline.

pub mod record;
pub mod replay;
pub mod rewrite;

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

pub use record::{BatchMark, DecodeError, LineValue, LocatedValues, LogValue, Op, Record};
pub use replay::{CorruptLog, LinePos, Scan, ScanError, TornTail};
pub use rewrite::{Rewrite, SwapStep, COMPACT_TMP_FILE};

/// The log's file name inside the data directory.
pub const WAL_FILE: &str = "wal.log";

/// When appended records are forced to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// fdatasync before every acknowledgement; concurrent writers share one (group commit).
    Always,
    /// fdatasync once a second: a machine crash can lose up to the last second.
    Interval,
    /// leave flushing to the OS: a machine crash can lose recent writes.
    Never,
}

impl std::fmt::Display for FsyncPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FsyncPolicy::Always => "always",
            FsyncPolicy::Interval => "interval",
            FsyncPolicy::Never => "never",
        })
    }
}

/// Why the log could not be opened or used.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    /// The data directory could not be created.
    #[error("cannot create data directory {}: {source}", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The log file could not be opened.
    #[error("cannot open {}: {source}", path.display())]
    Open {
        /// The log file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// Another process holds the data directory.
    #[error("data directory {} is in use by another kvctl process (lock held on {})", dir.display(), path.display())]
    InUse {
        /// The data directory.
        dir: PathBuf,
        /// The locked log file.
        path: PathBuf,
    },
    /// The log is unreadable or corrupt.
    #[error(transparent)]
    Scan(#[from] ScanError),
    /// Any other I/O failure on the log.
    #[error("{context} {}: {source}", path.display())]
    Io {
        /// What was being done.
        context: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
}

/// Opens `<dir>/wal.log` for reading only: no lock, no repair, so it works
/// beside a running server.
pub fn open_read_only(dir: &Path) -> Result<(File, PathBuf), WalError> {
    let path = dir.join(WAL_FILE);
    let file = File::open(&path).map_err(|source| WalError::Open {
        path: path.clone(),
        source,
    })?;
    Ok((file, path))
}

/// An exclusively locked log file. The lock lasts as long as the value.
#[derive(Debug)]
pub struct LockedLog {
    file: File,
    path: PathBuf,
}

impl LockedLog {
    /// Creates the data directory if needed, opens its log and locks it.
    pub fn open(dir: &Path) -> Result<LockedLog, WalError> {
        let dir_existed = dir.is_dir();
        fs::create_dir_all(dir).map_err(|source| WalError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })?;
        if !dir_existed {
            // The new directory's entry in its parent must survive a crash too.
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                sync_dir(parent).map_err(|source| WalError::Io {
                    context: "cannot sync directory",
                    path: parent.to_path_buf(),
                    source,
                })?;
            }
        }
        let path = dir.join(WAL_FILE);
        // A compaction renames a new file over the log; retry if the file we
        // locked is no longer the one the path names.
        for _ in 0..8 {
            let created = !path.exists();
            let file = OpenOptions::new()
                .read(true)
                .append(true)
                .create(true)
                .open(&path)
                .map_err(|source| WalError::Open {
                    path: path.clone(),
                    source,
                })?;
            match file.try_lock() {
                Ok(()) => {}
                Err(fs::TryLockError::WouldBlock) => {
                    return Err(WalError::InUse {
                        dir: dir.to_path_buf(),
                        path,
                    })
                }
                Err(fs::TryLockError::Error(source)) => {
                    return Err(WalError::Io {
                        context: "cannot lock",
                        path,
                        source,
                    })
                }
            }
            if same_file(&file, &path) {
                rewrite::remove_leftover(dir);
                if created {
                    sync_dir(dir).map_err(|source| WalError::Io {
                        context: "cannot sync directory",
                        path: dir.to_path_buf(),
                        source,
                    })?;
                }
                return Ok(LockedLog { file, path });
            }
        }
        Err(WalError::InUse {
            dir: dir.to_path_buf(),
            path,
        })
    }

    /// The log file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Makes changes to the entries of the log's directory durable.
    fn sync_dir(&self) -> io::Result<()> {
        sync_dir(self.path.parent().unwrap_or(Path::new(".")))
    }

    /// The locked file.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Replays the log into `visit`, cuts a torn tail off and ends the file
    /// with a newline, leaving it ready for appends. A corrupt log is left
    /// untouched.
    pub fn recover<V: LineValue>(
        &mut self,
        visit: impl FnMut(Record<V>, LinePos),
        progress: impl FnMut(u64),
    ) -> Result<Scan, WalError> {
        let io_err = |context, path: &Path| {
            let path = path.to_path_buf();
            move |source| WalError::Io {
                context,
                path,
                source,
            }
        };
        (&self.file)
            .seek(SeekFrom::Start(0))
            .map_err(io_err("cannot read", &self.path))?;
        let reader = BufReader::with_capacity(1 << 20, &self.file);
        let scan = replay::scan(reader, &self.path, visit, progress)?;
        let mut changed = false;
        if scan.valid_len < scan.bytes {
            self.file
                .set_len(scan.valid_len)
                .map_err(io_err("cannot cut the torn tail off", &self.path))?;
            changed = true;
        }
        if scan.valid_len > 0 && !self.ends_with_newline(scan.valid_len)? {
            (&self.file)
                .write_all(b"\n")
                .map_err(io_err("cannot append to", &self.path))?;
            changed = true;
        }
        if changed {
            self.file
                .sync_data()
                .map_err(io_err("cannot sync", &self.path))?;
        }
        Ok(scan)
    }

    fn ends_with_newline(&self, len: u64) -> Result<bool, WalError> {
        use std::os::unix::fs::FileExt;
        let mut last = [0u8; 1];
        self.file
            .read_exact_at(&mut last, len - 1)
            .map_err(|source| WalError::Io {
                context: "cannot read",
                path: self.path.clone(),
                source,
            })?;
        Ok(last[0] == b'\n')
    }

    /// Turns the recovered log into an appender with the given policy.
    pub fn into_appender(self, policy: FsyncPolicy) -> Result<Appender, WalError> {
        let len = self
            .file
            .metadata()
            .map_err(|source| WalError::Io {
                context: "cannot stat",
                path: self.path.clone(),
                source,
            })?
            .len();
        crate::metrics::wal_size(len);
        let syncer = match policy {
            FsyncPolicy::Interval => Some(IntervalSyncer::start(&self.file, &self.path)?),
            _ => None,
        };
        Ok(Appender {
            log: self,
            len,
            policy,
            rollback_pending: false,
            dir_sync_pending: false,
            syncer,
            sync_delay: test_sync_delay(),
        })
    }
}

/// Appends whole groups of records to a recovered log.
#[derive(Debug)]
pub struct Appender {
    log: LockedLog,
    /// Length of the file up to the last group that was written completely.
    len: u64,
    policy: FsyncPolicy,
    /// A failed group could not be cut off yet; cut it before the next one.
    rollback_pending: bool,
    /// A compaction's rename is not yet durable; sync the directory before
    /// the next append.
    dir_sync_pending: bool,
    syncer: Option<IntervalSyncer>,
    /// Test-only: makes every fsync slow (see [`TEST_SYNC_DELAY_ENV`]).
    sync_delay: Option<Duration>,
}

/// Environment variable that makes every `--fsync always` sync take this
/// many milliseconds longer. For tests only: it lets them observe what
/// readers and writers see while a sync is in progress.
pub const TEST_SYNC_DELAY_ENV: &str = "KVCTL_TEST_SYNC_DELAY_MS";

fn test_sync_delay() -> Option<Duration> {
    let ms: u64 = std::env::var(TEST_SYNC_DELAY_ENV).ok()?.parse().ok()?;
    tracing::warn!("{TEST_SYNC_DELAY_ENV}={ms}: every fsync is slowed down, for testing");
    Some(Duration::from_millis(ms))
}

impl Appender {
    /// Writes `buf` (whole lines) in one call and syncs it per policy.
    ///
    /// On failure the file is cut back to where it was, so a later append
    /// never lands after half a group.
    pub fn append(&mut self, buf: &[u8]) -> io::Result<()> {
        if self.dir_sync_pending {
            self.log.sync_dir()?;
            self.dir_sync_pending = false;
        }
        if self.rollback_pending {
            self.cut_back()?;
            self.rollback_pending = false;
        }
        let result = (&self.log.file)
            .write_all(buf)
            .and_then(|()| match self.policy {
                FsyncPolicy::Always => {
                    if let Some(delay) = self.sync_delay {
                        std::thread::sleep(delay);
                    }
                    crate::metrics::time_fsync(|| self.log.file.sync_data())
                }
                FsyncPolicy::Interval => {
                    if let Some(syncer) = &self.syncer {
                        syncer.dirty.store(true, Ordering::Release);
                    }
                    Ok(())
                }
                FsyncPolicy::Never => Ok(()),
            });
        match result {
            Ok(()) => {
                self.len += buf.len() as u64;
                crate::metrics::wal_appended(buf.len(), self.len);
                Ok(())
            }
            Err(err) => {
                if self.cut_back().is_err() {
                    self.rollback_pending = true;
                }
                Err(err)
            }
        }
    }

    /// Cuts the file back to the last complete group, durably, so a power
    /// loss cannot bring back writes that were refused.
    fn cut_back(&self) -> io::Result<()> {
        self.log.file.set_len(self.len)?;
        self.log.file.sync_data()
    }

    /// Forces everything written so far to disk, whatever the policy.
    pub fn sync(&mut self) -> io::Result<()> {
        self.log.file.sync_all()
    }

    /// The log file's path.
    pub fn path(&self) -> &Path {
        &self.log.path
    }
}

/// Syncs the log once a second when something was appended since.
#[derive(Debug)]
struct IntervalSyncer {
    dirty: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl IntervalSyncer {
    fn start(file: &File, path: &Path) -> Result<IntervalSyncer, WalError> {
        let file = file.try_clone().map_err(|source| WalError::Io {
            context: "cannot reopen",
            path: path.to_path_buf(),
            source,
        })?;
        let dirty = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let (thread_dirty, thread_stop) = (dirty.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("wal-interval-sync".into())
            .spawn(move || {
                while !thread_stop.load(Ordering::Acquire) {
                    std::thread::park_timeout(Duration::from_secs(1));
                    if thread_dirty.swap(false, Ordering::AcqRel) {
                        if let Err(err) = crate::metrics::time_fsync(|| file.sync_data()) {
                            tracing::warn!("interval fsync of the WAL failed: {err}");
                            thread_dirty.store(true, Ordering::Release);
                        }
                    }
                }
            })
            .map_err(|source| WalError::Io {
                context: "cannot start the sync thread for",
                path: path.to_path_buf(),
                source,
            })?;
        Ok(IntervalSyncer {
            dirty,
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for IntervalSyncer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Makes a directory entry change (create, rename) durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_on_a_dir_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let _first = LockedLog::open(dir.path()).unwrap();
        match LockedLog::open(dir.path()) {
            Err(WalError::InUse { .. }) => {}
            other => panic!("expected InUse, got {other:?}"),
        }
    }

    #[test]
    fn recover_cuts_torn_tail_and_adds_missing_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(WAL_FILE);
        let good = "{\"op\":\"set\",\"key\":\"a\",\"value\":1,\"timestamp\":1}";
        fs::write(&path, format!("{good}\n{good}\n{{\"op\":\"se")).unwrap();
        let mut log = LockedLog::open(dir.path()).unwrap();
        let scan = log.recover(|_: Record, _| {}, |_| {}).unwrap();
        assert_eq!(scan.records, 2);
        assert!(scan.torn.is_some());
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            format!("{good}\n{good}\n")
        );
        drop(log);

        fs::write(&path, good).unwrap();
        let mut log = LockedLog::open(dir.path()).unwrap();
        log.recover(|_: Record, _| {}, |_| {}).unwrap();
        let mut appender = log.into_appender(FsyncPolicy::Always).unwrap();
        appender.append(format!("{good}\n").as_bytes()).unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            format!("{good}\n{good}\n")
        );
    }

    #[test]
    fn corrupt_log_is_left_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(WAL_FILE);
        let content = "{\"op\":\"set\",\"key\":\"a\",\"value\":1,\"timestamp\":1}\nnope\n{\"op\":\"delete\",\"key\":\"a\",\"timestamp\":2}";
        fs::write(&path, content).unwrap();
        let mut log = LockedLog::open(dir.path()).unwrap();
        assert!(matches!(
            log.recover(|_: Record, _| {}, |_| {}),
            Err(WalError::Scan(ScanError::Corrupt(_)))
        ));
        assert_eq!(fs::read_to_string(&path).unwrap(), content);
    }
}
