//! Offline maintenance of a data directory's log: a summary of what it
//! holds (`kvctl wal inspect`), and the compaction and repair that rewrite
//! it (`kvctl wal compact|repair`), each under the directory's lock.

use std::fs::{self, File};
use std::io::{self, BufReader};
use std::path::{Path, PathBuf};

use crate::wal::replay::{self, CorruptLog, LinePos, ScanError, TornTail};
use crate::wal::rewrite::{self, keep_final, FinalSets, Rewrite};
use crate::wal::{sync_dir, LockedLog, Op, Record, WalError, WAL_FILE};

/// What a log holds, as `kvctl wal inspect` reports it.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Summary {
    /// The log file.
    pub path: PathBuf,
    /// Its size in bytes.
    pub file_bytes: u64,
    /// Records read (those of torn batches excluded).
    pub records: u64,
    /// `set` records.
    pub sets: u64,
    /// `delete` records.
    pub deletes: u64,
    /// Batches that wrote more than one record.
    pub batches: u64,
    /// Keys alive now.
    pub live_keys: u64,
    /// Keys whose last set has expired.
    pub expired_keys: u64,
    /// Sum of the live values' sizes, as `/stats` counts them.
    pub live_value_bytes: u64,
    /// Size the log would have after `kvctl wal compact`.
    pub compacted_bytes: u64,
    /// Share of the file compaction would reclaim, from 0 to 1.
    pub reclaimable: f64,
    /// Earliest record timestamp, Unix milliseconds.
    pub first_timestamp_ms: Option<u64>,
    /// Latest record timestamp, Unix milliseconds.
    pub last_timestamp_ms: Option<u64>,
    /// A torn tail found at the end, if any.
    pub torn_tail: Option<String>,
    /// Corruption found before the end, if any: the summary covers the records before it.
    pub corruption: Option<String>,
}

impl Summary {
    /// Counts one record of the log; `last_batch` is the batch of the
    /// record before it.
    fn count(&mut self, record: &Record, last_batch: &mut Option<u64>) {
        self.records += 1;
        let ts = record.timestamp_ms;
        self.first_timestamp_ms = Some(self.first_timestamp_ms.map_or(ts, |t| t.min(ts)));
        self.last_timestamp_ms = Some(self.last_timestamp_ms.map_or(ts, |t| t.max(ts)));
        if let Some(mark) = record.batch {
            if *last_batch != Some(mark.id) {
                self.batches += 1;
            }
        }
        *last_batch = record.batch.map(|m| m.id);
        match record.op {
            Op::Set { .. } => self.sets += 1,
            Op::Delete { .. } => self.deletes += 1,
        }
    }

    /// Counts a key's final set as live or expired at `now_ms`, and
    /// whether it is live; `line` is scratch space for encoding it.
    fn count_final(&mut self, record: &Record, now_ms: u64, line: &mut Vec<u8>) -> bool {
        let expired = !rewrite::is_live(record, now_ms);
        if expired {
            self.expired_keys += 1;
        } else {
            self.live_keys += 1;
            if let Op::Set { value, .. } = &record.op {
                self.live_value_bytes += value.size();
            }
            line.clear();
            record.encode_into(line);
            self.compacted_bytes += line.len() as u64;
        }
        !expired
    }
}

/// Reads a whole log, gathering its summary and final sets.
///
/// Corruption does not fail the call: it is reported in the summary, which
/// then covers the records before it.
pub fn analyze(
    file: File,
    path: &Path,
    now_ms: u64,
    mut each: impl FnMut(&Record, LinePos),
    progress: impl FnMut(u64),
) -> Result<(Summary, FinalSets, Option<CorruptLog>), WalError> {
    let file_bytes = file
        .metadata()
        .map_err(|source| WalError::Io {
            context: "cannot stat",
            path: path.to_path_buf(),
            source,
        })?
        .len();
    let mut summary = Summary {
        path: path.to_path_buf(),
        file_bytes,
        ..Summary::default()
    };
    let mut sets = FinalSets::new();
    let mut last_batch = None;
    let scanned = replay::scan(
        BufReader::with_capacity(1 << 20, file),
        path,
        |record, pos| {
            each(&record, pos);
            summary.count(&record, &mut last_batch);
            keep_final(&mut sets, record);
        },
        progress,
    );
    let corrupt = match scanned {
        Ok(scan) => {
            summary.torn_tail = scan.torn.as_ref().map(TornTail::to_string);
            None
        }
        Err(ScanError::Corrupt(corrupt)) => {
            summary.corruption = Some(corrupt.to_string());
            Some(corrupt)
        }
        Err(other) => return Err(other.into()),
    };
    let mut line = Vec::with_capacity(256);
    sets.retain(|_, record| summary.count_final(record, now_ms, &mut line));
    summary.reclaimable = if file_bytes == 0 {
        0.0
    } else {
        1.0 - (summary.compacted_bytes as f64 / file_bytes as f64).min(1.0)
    };
    Ok((summary, sets, corrupt))
}

/// What a compaction did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CompactReport {
    /// Size before.
    pub before_bytes: u64,
    /// Records before.
    pub before_records: u64,
    /// Size after.
    pub after_bytes: u64,
    /// Records after (one per live key).
    pub after_records: u64,
    /// Expired keys dropped.
    pub expired_dropped: u64,
}

/// Why a rewrite of the log was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum RewriteError {
    /// There is no log to work on.
    #[error("no log at {}", .0.display())]
    NoLog(PathBuf),
    /// The log could not be opened, locked or read.
    #[error(transparent)]
    Wal(#[from] WalError),
    /// The log is corrupt before its end.
    #[error("{0}; run `kvctl wal repair` to cut it at the last good record")]
    Corrupt(CorruptLog),
    /// Writing the new log failed; the old one is unchanged.
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

fn io_error(context: &'static str, path: &Path) -> impl FnOnce(io::Error) -> RewriteError {
    let path = path.to_path_buf();
    move |source| RewriteError::Io {
        context,
        path,
        source,
    }
}

/// A second handle on the locked log, for reading it through.
fn reopen(log: &LockedLog) -> Result<File, RewriteError> {
    log.file()
        .try_clone()
        .map_err(io_error("cannot reopen", log.path()))
}

fn lock_existing(dir: &Path) -> Result<LockedLog, RewriteError> {
    let path = dir.join(WAL_FILE);
    if !path.is_file() {
        return Err(RewriteError::NoLog(path));
    }
    Ok(LockedLog::open(dir)?)
}

/// Rewrites the log to one `set` per live key (each with its original
/// timestamp and ttl, so expiry is unchanged), atomically: temp file, fsync,
/// rename, fsync of the directory. Refuses while a server holds the directory.
pub fn compact(
    dir: &Path,
    now_ms: u64,
    progress: impl FnMut(u64),
) -> Result<CompactReport, RewriteError> {
    let log = lock_existing(dir)?;
    let file = reopen(&log)?;
    let (summary, sets, corrupt) = analyze(file, log.path(), now_ms, |_, _| {}, progress)?;
    if let Some(corrupt) = corrupt {
        return Err(RewriteError::Corrupt(corrupt));
    }
    let written = (|| -> io::Result<(Rewrite, u64)> {
        let mut rewrite = Rewrite::create(dir, log.file().try_clone()?, summary.file_bytes)?;
        let bytes = rewrite::write_sets(&sets, rewrite.out(), || Ok(()))?;
        rewrite.sync()?;
        Ok((rewrite, bytes))
    })();
    let (rewrite, after_bytes) = written.map_err(io_error(
        "cannot write the compacted log",
        &dir.join(rewrite::COMPACT_TMP_FILE),
    ))?;
    rewrite
        .rename_over(log.path())
        .map_err(io_error("cannot replace", log.path()))?;
    sync_dir(dir).map_err(io_error("cannot sync directory", dir))?;
    Ok(CompactReport {
        before_bytes: summary.file_bytes,
        before_records: summary.records,
        after_bytes,
        after_records: sets.len() as u64,
        expired_dropped: summary.expired_keys,
    })
}

/// What a repair did.
#[derive(Debug, Clone, serde::Serialize)]
pub enum RepairReport {
    /// The log was clean.
    Clean,
    /// A torn tail was cut off.
    TornTailCut {
        /// What was cut.
        tail: String,
    },
    /// The log was cut before a corrupt line.
    Cut {
        /// Where the cut was made and why.
        corruption: String,
        /// Records kept.
        kept_records: u64,
        /// Non-blank lines dropped.
        dropped_lines: u64,
        /// Dropped lines that were valid records on their own.
        dropped_records: u64,
        /// Copy of the log as it was.
        backup: PathBuf,
    },
}

/// Cuts a corrupt log at its last good record, keeping a backup of the
/// original; a torn tail is cut as a server start would cut it.
pub fn repair(dir: &Path, now_ms: u64) -> Result<RepairReport, RewriteError> {
    let mut log = lock_existing(dir)?;
    let file = reopen(&log)?;
    let (summary, _, corrupt) = analyze(file, log.path(), now_ms, |_, _| {}, |_| {})?;
    let Some(corrupt) = corrupt else {
        let scan = log.recover(|_: Record, _| {}, |_| {})?;
        return Ok(match scan.torn {
            Some(torn) => RepairReport::TornTailCut {
                tail: torn.to_string(),
            },
            None => RepairReport::Clean,
        });
    };
    let path = log.path().to_path_buf();
    let backup = dir.join(format!("{WAL_FILE}.corrupt-{now_ms}"));
    fs::copy(&path, &backup).map_err(io_error("cannot back up", &path))?;
    File::open(&backup)
        .and_then(|f| f.sync_all())
        .map_err(io_error("cannot sync", &backup))?;
    sync_dir(dir).map_err(io_error("cannot sync directory", dir))?;

    let (dropped_lines, dropped_records) =
        count_lines_from(&path, corrupt.good_len).map_err(io_error("cannot read", &path))?;
    log.file()
        .set_len(corrupt.good_len)
        .and_then(|()| log.file().sync_all())
        .map_err(io_error("cannot truncate", &path))?;
    // Re-reading the cut log also adds a missing final newline and syncs.
    let scan = log.recover(|_: Record, _| {}, |_| {})?;
    debug_assert!(scan.records <= summary.records);
    Ok(RepairReport::Cut {
        corruption: corrupt.to_string(),
        kept_records: scan.records,
        dropped_lines,
        dropped_records,
        backup,
    })
}

fn count_lines_from(path: &Path, offset: u64) -> io::Result<(u64, u64)> {
    use std::io::{BufRead, Seek, SeekFrom};
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(offset))?;
    let (mut lines, mut records) = (0, 0);
    for line in BufReader::new(file).split(b'\n') {
        let line = line?;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        lines += 1;
        if Record::decode(&line).is_ok() {
            records += 1;
        }
    }
    Ok((lines, records))
}
