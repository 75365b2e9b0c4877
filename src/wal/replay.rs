//! Reading a log back: line by line, batches applied whole, the tail judged.
//!
//! A crash can leave the end of the log torn: a partial last line, or the
//! first lines of a batch without the rest. That tail is reported so the
//! caller can cut it off. A bad line with records after it is corruption, not
//! a crash, and stops the scan with its line number and byte offset.

use std::io::{self, BufRead};
use std::path::{Path, PathBuf};

use super::record::{BatchMark, Record};

/// Where a line sits in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinePos {
    /// 1-based line number.
    pub line: u64,
    /// Byte offset of the line's first byte.
    pub offset: u64,
}

/// What was found past the last whole record, and cut off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TornTail {
    /// A last line that is not a record (a write cut short).
    PartialLine {
        /// Where the fragment starts.
        pos: LinePos,
        /// Why it is not a record.
        reason: String,
        /// The fragment's first bytes, for the warning.
        fragment: String,
    },
    /// The first lines of a batch whose other lines never reached the log.
    IncompleteBatch {
        /// Where the batch's first line starts.
        pos: LinePos,
        /// Lines present.
        present: u32,
        /// Lines the batch wrote.
        expected: u32,
    },
}

impl TornTail {
    /// Where the cut starts.
    pub fn pos(&self) -> LinePos {
        match self {
            TornTail::PartialLine { pos, .. } | TornTail::IncompleteBatch { pos, .. } => *pos,
        }
    }
}

impl std::fmt::Display for TornTail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TornTail::PartialLine {
                pos,
                reason,
                fragment,
            } => write!(
                f,
                "torn last line {} at byte offset {} ({reason}): {fragment:?}",
                pos.line, pos.offset
            ),
            TornTail::IncompleteBatch {
                pos,
                present,
                expected,
            } => write!(
                f,
                "incomplete batch at line {} (byte offset {}): {present} of {expected} lines",
                pos.line, pos.offset
            ),
        }
    }
}

/// A log that is damaged before its end.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: line {} (byte offset {}): {reason}", path.display(), pos.line, pos.offset)]
pub struct CorruptLog {
    /// The log file.
    pub path: PathBuf,
    /// The offending line.
    pub pos: LinePos,
    /// What is wrong with it.
    pub reason: String,
    /// Length of the good prefix: where a repair would cut.
    pub good_len: u64,
}

/// Why a scan stopped.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// The log is corrupt before its end.
    #[error(transparent)]
    Corrupt(#[from] CorruptLog),
    /// Reading failed.
    #[error("reading {}: {source}", path.display())]
    Read {
        /// The log file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
}

/// The result of a scan that reached the end of the log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scan {
    /// Records handed to the visitor.
    pub records: u64,
    /// Bytes read.
    pub bytes: u64,
    /// The length the log keeps: everything before the torn tail, if any.
    pub valid_len: u64,
    /// The torn tail found, if any.
    pub torn: Option<TornTail>,
    /// The highest batch id seen, so new batches can be told apart.
    pub max_batch_id: u64,
}

struct PendingBatch {
    mark: BatchMark,
    pos: LinePos,
    records: Vec<(Record, LinePos)>,
}

/// Reads a log, handing each record to `visit` in order (a batch's records
/// only once all of them have been read), and judges the tail.
///
/// `progress` is told the byte offset reached from time to time.
pub fn scan<R: BufRead>(
    mut reader: R,
    path: &Path,
    mut visit: impl FnMut(Record, LinePos),
    mut progress: impl FnMut(u64),
) -> Result<Scan, ScanError> {
    let read_err = |source| ScanError::Read {
        path: path.to_path_buf(),
        source,
    };
    let corrupt = |pos, reason, good_len| {
        ScanError::Corrupt(CorruptLog {
            path: path.to_path_buf(),
            pos,
            reason,
            good_len,
        })
    };

    let mut scan = Scan::default();
    let mut pending: Option<PendingBatch> = None;
    let mut buf = Vec::with_capacity(256);
    let mut offset = 0u64;
    let mut line_no = 0u64;

    loop {
        buf.clear();
        let n = reader.read_until(b'\n', &mut buf).map_err(read_err)?;
        if n == 0 {
            break;
        }
        line_no += 1;
        let pos = LinePos {
            line: line_no,
            offset,
        };
        offset += n as u64;
        if line_no.is_multiple_of(65_536) {
            progress(offset);
        }
        let content = trim_line(&buf);
        if content.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let record = match Record::decode(content) {
            Ok(record) => record,
            Err(err) => {
                // Torn only if nothing but whitespace follows it.
                if rest_is_blank(&mut reader).map_err(read_err)? {
                    let cut = pending.as_ref().map_or(pos, |p| p.pos);
                    scan.valid_len = cut.offset;
                    scan.torn = Some(TornTail::PartialLine {
                        pos,
                        reason: err.0,
                        fragment: String::from_utf8_lossy(&content[..content.len().min(120)])
                            .into_owned(),
                    });
                    scan.bytes = offset;
                    progress(offset);
                    return Ok(scan);
                }
                let good_len = pending.as_ref().map_or(pos, |p| p.pos).offset;
                return Err(corrupt(
                    pos,
                    format!("not a valid record: {}", err.0),
                    good_len,
                ));
            }
        };

        match (record.batch, pending.as_mut()) {
            (None, None) => {
                scan.records += 1;
                visit(record, pos);
            }
            (Some(mark), None) => {
                scan.max_batch_id = scan.max_batch_id.max(mark.id);
                pending = Some(PendingBatch {
                    mark,
                    pos,
                    records: Vec::with_capacity(mark.len as usize),
                });
                pending.as_mut().unwrap().records.push((record, pos));
            }
            (Some(mark), Some(batch)) if mark == batch.mark => {
                batch.records.push((record, pos));
            }
            (_, Some(batch)) => {
                return Err(corrupt(
                    batch.pos,
                    format!(
                        "batch {} has {} of its {} lines before line {} interrupts it",
                        batch.mark.id,
                        batch.records.len(),
                        batch.mark.len,
                        pos.line
                    ),
                    batch.pos.offset,
                ));
            }
        }
        if pending
            .as_ref()
            .is_some_and(|b| b.records.len() == b.mark.len as usize)
        {
            for (record, pos) in pending.take().unwrap().records {
                scan.records += 1;
                visit(record, pos);
            }
        }
    }

    scan.bytes = offset;
    scan.valid_len = offset;
    if let Some(batch) = pending {
        scan.valid_len = batch.pos.offset;
        scan.torn = Some(TornTail::IncompleteBatch {
            pos: batch.pos,
            present: batch.records.len() as u32,
            expected: batch.mark.len,
        });
    }
    progress(offset);
    Ok(scan)
}

fn trim_line(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn rest_is_blank<R: BufRead>(reader: &mut R) -> io::Result<bool> {
    loop {
        let chunk = reader.fill_buf()?;
        if chunk.is_empty() {
            return Ok(true);
        }
        if !chunk.iter().all(u8::is_ascii_whitespace) {
            return Ok(false);
        }
        let n = chunk.len();
        reader.consume(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wal::record::Op;
    use std::io::Cursor;

    fn run(log: &str) -> Result<(Scan, Vec<String>), ScanError> {
        let mut keys = Vec::new();
        let scan = scan(
            Cursor::new(log.as_bytes().to_vec()),
            Path::new("wal.log"),
            |r, _| {
                keys.push(match r.op {
                    Op::Set { key, .. } => format!("set {key}"),
                    Op::Delete { key } => format!("delete {key}"),
                })
            },
            |_| {},
        )?;
        Ok((scan, keys))
    }

    const A: &str = "{\"op\":\"set\",\"key\":\"a\",\"value\":1,\"timestamp\":1}\n";
    const B: &str = "{\"op\":\"delete\",\"key\":\"a\",\"timestamp\":2}\n";

    #[test]
    fn clean_log_with_blank_lines() {
        let log = format!("{A}\n  \n{B}");
        let (scan, keys) = run(&log).unwrap();
        assert_eq!(keys, ["set a", "delete a"]);
        assert_eq!(scan.valid_len, log.len() as u64);
        assert_eq!(scan.torn, None);
    }

    #[test]
    fn last_record_without_newline_is_kept() {
        let log = format!("{A}{}", B.trim_end());
        let (scan, keys) = run(&log).unwrap();
        assert_eq!(keys, ["set a", "delete a"]);
        assert_eq!(scan.valid_len, log.len() as u64);
    }

    #[test]
    fn torn_last_line_is_cut_at_its_start() {
        for fragment in [
            "{\"op\":\"set\",\"key\":\"x\",\"va",
            "123\n",
            "\0\0\0\0",
            "{}\n\n  ",
        ] {
            let log = format!("{A}{B}{fragment}");
            let (scan, keys) = run(&log).unwrap();
            assert_eq!(keys, ["set a", "delete a"], "fragment {fragment:?}");
            assert_eq!(scan.valid_len, (A.len() + B.len()) as u64);
            let torn = scan.torn.unwrap();
            assert_eq!(
                torn.pos(),
                LinePos {
                    line: 3,
                    offset: (A.len() + B.len()) as u64
                }
            );
        }
    }

    #[test]
    fn every_cut_of_a_log_scans_to_a_prefix() {
        let batch = "{\"op\":\"set\",\"key\":\"b1\",\"value\":1,\"timestamp\":3,\"batch\":7,\"batch_len\":2}\n\
                     {\"op\":\"set\",\"key\":\"b2\",\"value\":2,\"timestamp\":3,\"batch\":7,\"batch_len\":2}\n";
        let log = format!("{A}{batch}{B}");
        let full = ["set a", "set b1", "set b2", "delete a"];
        for cut in 0..=log.len() {
            let (scan, keys) = run(&log[..cut]).unwrap();
            assert!(full.starts_with(&keys.iter().map(String::as_str).collect::<Vec<_>>()));
            // A batch is all or nothing.
            assert!(keys.len() != 2, "cut {cut} split the batch: {keys:?}");
            assert!(scan.valid_len <= cut as u64);
        }
    }

    #[test]
    fn incomplete_batch_at_the_end_is_torn() {
        let log = format!(
            "{A}{}",
            "{\"op\":\"set\",\"key\":\"b1\",\"value\":1,\"timestamp\":3,\"batch\":7,\"batch_len\":3}\n"
        );
        let (scan, keys) = run(&log).unwrap();
        assert_eq!(keys, ["set a"]);
        assert_eq!(scan.valid_len, A.len() as u64);
        assert!(matches!(
            scan.torn,
            Some(TornTail::IncompleteBatch {
                present: 1,
                expected: 3,
                ..
            })
        ));
        assert_eq!(scan.max_batch_id, 7);
    }

    #[test]
    fn bad_line_in_the_middle_is_corruption_with_its_position() {
        let log = format!("{A}garbage\n{B}");
        match run(&log) {
            Err(ScanError::Corrupt(c)) => {
                assert_eq!(
                    c.pos,
                    LinePos {
                        line: 2,
                        offset: A.len() as u64
                    }
                );
                let msg = c.to_string();
                assert!(msg.contains("wal.log") && msg.contains("line 2"), "{msg}");
                assert!(msg.contains(&format!("byte offset {}", A.len())), "{msg}");
            }
            other => panic!("expected corruption, got {other:?}"),
        }
    }

    #[test]
    fn interrupted_batch_in_the_middle_is_corruption() {
        let log = format!(
            "{}{B}",
            "{\"op\":\"set\",\"key\":\"b1\",\"value\":1,\"timestamp\":3,\"batch\":7,\"batch_len\":2}\n"
        );
        assert!(matches!(run(&log), Err(ScanError::Corrupt(c)) if c.pos.line == 1));
    }
}
