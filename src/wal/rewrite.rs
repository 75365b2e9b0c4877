//! Rewriting a log to its live state: the last set of every key, gathered
//! from a scan, written to a new file beside the log and swapped in for it.
//!
//! Offline compaction writes the new file and renames it; online compaction
//! ([`Appender::swap_in`]) also copies the records appended to the live log
//! while the new file was being written, so nothing written meanwhile is
//! lost. A crash at any point leaves either the old log or the new one under
//! the log's name, each complete; the temporary file left behind is removed
//! when the directory is next opened.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::record::{Op, Record};
use super::replay::{self, ScanError};
use super::{Appender, IntervalSyncer, LockedLog, WalError, WAL_FILE};
use crate::ttl::has_expired;
use crate::value::Key;

/// The name of the file a compaction writes before it replaces the log.
pub const COMPACT_TMP_FILE: &str = "wal.log.compact";

/// The last `set` of every key that ends the log set, with its batch mark
/// dropped: each is exactly its line in a compacted log.
pub type FinalSets = BTreeMap<Key, Record>;

/// Folds one record of a scan into the final sets.
pub fn keep_final(sets: &mut FinalSets, record: Record) {
    match record.op {
        Op::Set { ref key, .. } => {
            let key = key.clone();
            sets.insert(
                key,
                Record {
                    batch: None,
                    ..record
                },
            );
        }
        Op::Delete { ref key } => {
            sets.remove(key);
        }
    }
}

/// Whether a final set is still live at `now_ms` (else compaction drops it).
pub fn is_live(record: &Record, now_ms: u64) -> bool {
    !record.deadline_ms().is_some_and(|d| has_expired(d, now_ms))
}

/// The final sets of the first `len` bytes of `file`, a log that ends with
/// whole groups there, keeping those live at `now_ms`.
pub fn final_sets_of(
    file: File,
    path: &Path,
    len: u64,
    now_ms: u64,
) -> Result<FinalSets, WalError> {
    let mut sets = FinalSets::new();
    let reader = BufReader::with_capacity(1 << 20, file.take(len));
    let scan = replay::scan(
        reader,
        path,
        |record, _| keep_final(&mut sets, record),
        |_| {},
    )?;
    if let Some(torn) = scan.torn {
        // Only whole groups lie before `len`; anything else means the log
        // changed under the reader.
        return Err(WalError::Scan(ScanError::Read {
            path: path.to_path_buf(),
            source: io::Error::other(format!("the log changed while being read: {torn}")),
        }));
    }
    sets.retain(|_, record| is_live(record, now_ms));
    Ok(sets)
}

/// Writes `sets` as log lines to `out`, calling `check` every few thousand
/// records (it may stop the write with an error); returns the bytes written.
pub fn write_sets(
    sets: &FinalSets,
    out: &mut impl Write,
    mut check: impl FnMut() -> io::Result<()>,
) -> io::Result<u64> {
    let mut bytes = 0u64;
    let mut line = Vec::with_capacity(256);
    for (i, record) in sets.values().enumerate() {
        if i % 4096 == 0 {
            check()?;
        }
        line.clear();
        record.encode_into(&mut line);
        out.write_all(&line)?;
        bytes += line.len() as u64;
    }
    Ok(bytes)
}

/// A new log being written beside the live one (as [`COMPACT_TMP_FILE`]).
/// Dropped before it is swapped in, it removes its file.
#[derive(Debug)]
pub struct Rewrite {
    out: BufWriter<File>,
    path: PathBuf,
    /// A reader of the live log, for copying what was appended meanwhile.
    source: File,
    /// Offset in the live log up to which its records are in the new file.
    copied_to: u64,
    swapped: bool,
}

impl Rewrite {
    /// Starts a new log in `dir` that will hold the live log's records from
    /// `source`'s offset `from` on (after what the caller writes itself).
    pub fn create(dir: &Path, source: File, from: u64) -> io::Result<Rewrite> {
        let path = dir.join(COMPACT_TMP_FILE);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)?;
        // The new log keeps the old one's permissions, not the umask's.
        file.set_permissions(source.metadata()?.permissions())?;
        Ok(Rewrite {
            out: BufWriter::with_capacity(1 << 20, file),
            path,
            source,
            copied_to: from,
            swapped: false,
        })
    }

    /// Where the caller writes the compacted records.
    pub fn out(&mut self) -> &mut impl Write {
        &mut self.out
    }

    /// Offset in the live log up to which records are copied.
    pub fn copied_to(&self) -> u64 {
        self.copied_to
    }

    /// Copies the live log's records from where the copy stands up to `to`
    /// (a group boundary) into the new file.
    pub fn copy_tail(&mut self, to: u64) -> io::Result<()> {
        let mut buf = vec![0u8; 1 << 20];
        while self.copied_to < to {
            let want = buf.len().min((to - self.copied_to) as usize);
            let read = self.source.read_at(&mut buf[..want], self.copied_to)?;
            if read == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the log is shorter than its appender says",
                ));
            }
            self.out.write_all(&buf[..read])?;
            self.copied_to += read as u64;
        }
        Ok(())
    }

    /// Renames the new file over `log` (offline, where nothing is appended
    /// meanwhile); the caller syncs the directory.
    pub fn rename_over(mut self, log: &Path) -> io::Result<()> {
        fs::rename(&self.path, log)?;
        self.swapped = true;
        Ok(())
    }

    /// Flushes the new file and forces it to disk.
    pub fn sync(&mut self) -> io::Result<()> {
        self.out.flush()?;
        self.out.get_ref().sync_all()
    }
}

impl Drop for Rewrite {
    fn drop(&mut self) {
        if !self.swapped {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// The steps of a swap at which a test may stop the process (see
/// [`Appender::swap_in`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SwapStep {
    /// The new file is complete and synced; the log is still the old one.
    BeforeRename,
    /// The new file has the log's name; the directory is not synced yet.
    BeforeDirSync,
    /// The rename is durable; appends still go to the old file.
    BeforeSwitch,
}

impl Appender {
    /// A new reader of the log file (its own offset, unlike a clone of the
    /// appending handle) and the length of the whole groups in it.
    pub fn reader(&self) -> io::Result<(File, u64)> {
        Ok((File::open(self.path())?, self.len))
    }

    /// The length of the whole groups written so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing has been written to the log.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Makes `rewrite` the log: copies the records appended since it began,
    /// syncs it, locks it, renames it over the log and syncs the directory,
    /// then appends to it. The caller holds off appends meanwhile. `step`
    /// is called at each [`SwapStep`]. Returns the new log's length, and the
    /// old log's handles for the caller to close once appends go on.
    ///
    /// Until the rename the old log stays in use if anything fails; after
    /// it the appender follows the new file whatever happens, since that is
    /// the one the log's name points to.
    pub fn swap_in(
        &mut self,
        mut rewrite: Rewrite,
        step: impl Fn(SwapStep),
    ) -> io::Result<(u64, RetiredLog)> {
        rewrite.copy_tail(self.len)?;
        rewrite.sync()?;
        // Everything that can fail happens before the rename: after it, the
        // appender must follow the new file, which the log's name points to.
        // Appends rely on O_APPEND (see `cut_back`), so the log's handle is
        // a new one, opened for appending.
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(&rewrite.path)?;
        file.try_lock().map_err(io::Error::other)?;
        let len = file.metadata()?.len();
        let log_path = self.log.path.clone();
        let syncer = match &self.syncer {
            Some(_) => Some(IntervalSyncer::start(&file, &log_path).map_err(io::Error::other)?),
            None => None,
        };
        let reader = rewrite.source.try_clone()?;
        step(SwapStep::BeforeRename);
        fs::rename(&rewrite.path, &log_path)?;
        rewrite.swapped = true;
        step(SwapStep::BeforeDirSync);
        if let Err(err) = self.log.sync_dir() {
            // Until the rename is durable a power loss could bring the old
            // log back without what is appended from now on: appends retry
            // the sync first and fail while it fails.
            tracing::warn!(
                "cannot sync the directory of {} after a compaction: {err}",
                log_path.display()
            );
            self.dir_sync_pending = true;
        }
        step(SwapStep::BeforeSwitch);
        let old_log = std::mem::replace(
            &mut self.log,
            LockedLog {
                file,
                path: log_path,
            },
        );
        let old_syncer = std::mem::replace(&mut self.syncer, syncer);
        self.len = len;
        self.rollback_pending = false;
        Ok((
            len,
            RetiredLog {
                _log: old_log,
                _reader: reader,
                _syncer: old_syncer,
            },
        ))
    }
}

/// The handles of a log that a compaction replaced, and its interval
/// syncer. Closing the last handle frees the file's blocks, which takes long
/// for a large file (38 ms for 340 MB on an idle disk, more under load), and
/// stopping the syncer may wait for its fsync, so both happen after appends
/// resume, not while they wait.
#[derive(Debug)]
pub struct RetiredLog {
    _log: LockedLog,
    _reader: File,
    _syncer: Option<IntervalSyncer>,
}

/// Removes a compaction's temporary file left by a crash; the caller holds
/// the directory's lock, so no compaction is under way.
pub(super) fn remove_leftover(dir: &Path) {
    let path = dir.join(COMPACT_TMP_FILE);
    match fs::remove_file(&path) {
        Ok(()) => tracing::info!(
            "removed {}, left by a compaction that did not finish; {} is complete",
            path.display(),
            WAL_FILE
        ),
        Err(err) if err.kind() == io::ErrorKind::NotFound => {}
        Err(err) => tracing::warn!("cannot remove {}: {err}", path.display()),
    }
}
