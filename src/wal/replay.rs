//! Reading a log back: line by line, batches applied whole, the tail judged.
//!
//! A crash can leave the end of the log torn: a partial last line, or the
//! first lines of a batch without the rest. That tail is reported so the
//! caller can cut it off. A bad line with records after it is corruption, not
//! a crash, and stops the scan with its line number and byte offset.

use std::io::{self, BufRead, Read};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};

use super::record::{BatchMark, LineValue, Record};

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

struct PendingBatch<V> {
    mark: BatchMark,
    pos: LinePos,
    records: Vec<(Record<V>, LinePos)>,
}

/// Bytes read per chunk; each chunk ends at a line boundary.
const CHUNK_BYTES: usize = 1 << 20;
/// Chunks read ahead of the one being applied.
const CHUNKS_IN_FLIGHT: usize = 8;

/// A run of whole lines and where it starts.
struct Chunk {
    seq: u64,
    /// Where `data` starts in the log.
    offset: u64,
    data: Vec<u8>,
}

/// What one line turned out to be.
enum Line<V> {
    Blank,
    Record(Record<V>),
    /// Not a record: the reason, and the line's first bytes.
    Bad(String, String),
}

struct Decoded<V> {
    seq: u64,
    /// (length in bytes including the newline, what it is) per line.
    lines: Vec<(u64, Line<V>)>,
}

fn decode_chunk<V: LineValue>(chunk: Chunk) -> Decoded<V> {
    let mut lines = Vec::with_capacity(chunk.data.len() / 100 + 1);
    let mut rest = &chunk.data[..];
    let mut offset = chunk.offset;
    while !rest.is_empty() {
        let len = memchr::memchr(b'\n', rest).map_or(rest.len(), |i| i + 1);
        let content = trim_line(&rest[..len]);
        let line = if content.iter().all(u8::is_ascii_whitespace) {
            Line::Blank
        } else {
            match V::decode_line(content, offset) {
                Ok(record) => Line::Record(record),
                Err(err) => Line::Bad(
                    err.0,
                    String::from_utf8_lossy(&content[..content.len().min(120)]).into_owned(),
                ),
            }
        };
        lines.push((len as u64, line));
        rest = &rest[len..];
        offset += len as u64;
    }
    Decoded {
        seq: chunk.seq,
        lines,
    }
}

/// Reads `reader` into chunks of whole lines, sending them on `chunks`.
fn read_chunks<R: BufRead>(mut reader: R, chunks: mpsc::SyncSender<Chunk>) -> std::io::Result<()> {
    let mut carry: Vec<u8> = Vec::new();
    let mut seq = 0;
    let mut offset = 0;
    loop {
        let mut data = std::mem::take(&mut carry);
        data.reserve(CHUNK_BYTES);
        // Straight into the chunk: a read as large as the reader's buffer
        // bypasses it, so the log is copied once, not twice.
        let read = (&mut reader)
            .take(CHUNK_BYTES as u64)
            .read_to_end(&mut data)?;
        let eof = read < CHUNK_BYTES;
        if !eof {
            // Keep the partial last line for the next chunk.
            match memchr::memrchr(b'\n', &data) {
                Some(i) => carry = data.split_off(i + 1),
                None => {
                    carry = data;
                    continue;
                }
            }
        }
        let len = data.len() as u64;
        if !data.is_empty() && chunks.send(Chunk { seq, offset, data }).is_err() {
            return Ok(());
        }
        offset += len;
        seq += 1;
        if eof {
            return Ok(());
        }
    }
}

/// Reads a log, handing each record to `visit` in order (a batch's records
/// only once all of them have been read), and judges the tail.
///
/// Decoding lines is spread over the machine's cores; records still reach
/// `visit` one at a time in log order. `progress` is told the byte offset
/// reached from time to time.
pub fn scan<V: LineValue, R: BufRead + Send>(
    reader: R,
    path: &Path,
    mut visit: impl FnMut(Record<V>, LinePos),
    mut progress: impl FnMut(u64),
) -> Result<Scan, ScanError> {
    let decoders = std::thread::available_parallelism().map_or(1, |n| n.get().clamp(1, 4));
    std::thread::scope(|threads| {
        let (chunk_tx, chunk_rx) = mpsc::sync_channel::<Chunk>(CHUNKS_IN_FLIGHT);
        // Bounded too, so decoders wait when applying is the slower side
        // and a large log is never decoded into memory ahead of it.
        let (decoded_tx, decoded_rx) = mpsc::sync_channel::<Decoded<V>>(CHUNKS_IN_FLIGHT);
        let chunk_rx = Arc::new(Mutex::new(chunk_rx));
        let reader_thread = threads.spawn(move || read_chunks(reader, chunk_tx));
        for _ in 0..decoders {
            let (chunk_rx, decoded_tx) = (chunk_rx.clone(), decoded_tx.clone());
            threads.spawn(move || loop {
                let next = chunk_rx.lock().expect("decoder lock").recv();
                match next {
                    Ok(chunk) => {
                        if decoded_tx.send(decode_chunk::<V>(chunk)).is_err() {
                            return;
                        }
                    }
                    Err(_) => return,
                }
            });
        }
        drop(decoded_tx);

        // Chunks arrive in any order; apply them in sequence.
        let mut waiting = std::collections::BTreeMap::new();
        let mut next_seq = 0;
        let mut state = ScanState::new(path);
        let mut outcome = Ok(());
        for decoded in decoded_rx.iter() {
            waiting.insert(decoded.seq, decoded);
            while let Some(decoded) = waiting.remove(&next_seq) {
                next_seq += 1;
                if outcome.is_ok() {
                    outcome = state.take(decoded, &mut visit);
                    progress(state.offset);
                }
            }
            if outcome.is_err() {
                break;
            }
        }
        // Dropping the receiver stops the decoders; the reader stops when
        // its channel closes.
        drop(decoded_rx);
        drop(chunk_rx);
        let read = reader_thread.join().expect("log reader panicked");
        outcome?;
        read.map_err(|source| ScanError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let scan = state.finish();
        progress(scan.bytes);
        Ok(scan)
    })
}

/// The sequential part of a scan: line numbers, batches, the tail.
struct ScanState<'p, V> {
    path: &'p Path,
    scan: Scan,
    pending: Option<PendingBatch<V>>,
    /// The first bad line, while everything after it has been blank.
    bad: Option<(LinePos, String, String)>,
    offset: u64,
    line_no: u64,
}

impl<'p, V> ScanState<'p, V> {
    fn new(path: &'p Path) -> Self {
        ScanState {
            path,
            scan: Scan::default(),
            pending: None,
            bad: None,
            offset: 0,
            line_no: 0,
        }
    }

    fn corrupt(&self, pos: LinePos, reason: String, good_len: u64) -> ScanError {
        ScanError::Corrupt(CorruptLog {
            path: self.path.to_path_buf(),
            pos,
            reason,
            good_len,
        })
    }

    /// Takes a decoded chunk's lines, the chunks in log order.
    fn take(
        &mut self,
        decoded: Decoded<V>,
        visit: &mut impl FnMut(Record<V>, LinePos),
    ) -> Result<(), ScanError> {
        for (len, line) in decoded.lines {
            self.line_no += 1;
            let pos = LinePos {
                line: self.line_no,
                offset: self.offset,
            };
            self.offset += len;
            let record = match line {
                Line::Blank => continue,
                // A bad line followed by anything but blanks is corruption.
                _ if self.bad.is_some() => {
                    let (bad_pos, reason, _) = self.bad.take().expect("checked");
                    let good_len = self.cut_before(bad_pos).offset;
                    return Err(self.corrupt(
                        bad_pos,
                        format!("not a valid record: {reason}"),
                        good_len,
                    ));
                }
                Line::Bad(reason, fragment) => {
                    self.bad = Some((pos, reason, fragment));
                    continue;
                }
                Line::Record(record) => record,
            };
            self.take_record(record, pos, visit)?;
        }
        Ok(())
    }

    /// Hands a record to `visit`, or holds it until its batch is whole.
    fn take_record(
        &mut self,
        record: Record<V>,
        pos: LinePos,
        visit: &mut impl FnMut(Record<V>, LinePos),
    ) -> Result<(), ScanError> {
        match (record.batch, self.pending.as_mut()) {
            (None, None) => {
                self.scan.records += 1;
                visit(record, pos);
            }
            (Some(mark), None) => {
                self.scan.max_batch_id = self.scan.max_batch_id.max(mark.id);
                // The length comes from the file: a hand-written
                // line may claim billions.
                let mut records = Vec::with_capacity((mark.len as usize).min(1024));
                records.push((record, pos));
                self.pending = Some(PendingBatch { mark, pos, records });
            }
            (Some(mark), Some(batch)) if mark == batch.mark => {
                batch.records.push((record, pos));
            }
            (_, Some(batch)) => {
                let reason = format!(
                    "batch {} has {} of its {} lines before line {} interrupts it",
                    batch.mark.id,
                    batch.records.len(),
                    batch.mark.len,
                    pos.line
                );
                let batch_pos = batch.pos;
                return Err(self.corrupt(batch_pos, reason, batch_pos.offset));
            }
        }
        if self
            .pending
            .as_ref()
            .is_some_and(|b| b.records.len() == b.mark.len as usize)
        {
            for (record, pos) in self.pending.take().expect("checked").records {
                self.scan.records += 1;
                visit(record, pos);
            }
        }
        Ok(())
    }

    /// Where the good part of the log ends if the line at `pos` is bad: at
    /// that line, or at the start of the batch it would have belonged to.
    fn cut_before(&self, pos: LinePos) -> LinePos {
        self.pending.as_ref().map_or(pos, |p| p.pos)
    }

    fn finish(mut self) -> Scan {
        self.scan.bytes = self.offset;
        self.scan.valid_len = self.offset;
        if let Some((pos, reason, fragment)) = self.bad.take() {
            self.scan.valid_len = self.cut_before(pos).offset;
            self.scan.torn = Some(TornTail::PartialLine {
                pos,
                reason,
                fragment,
            });
        } else if let Some(batch) = self.pending {
            self.scan.valid_len = batch.pos.offset;
            self.scan.torn = Some(TornTail::IncompleteBatch {
                pos: batch.pos,
                present: batch.records.len() as u32,
                expected: batch.mark.len,
            });
        }
        self.scan
    }
}

fn trim_line(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
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
            |r: Record, _| {
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
        // Also when the mark claims billions of lines: nothing reserves room
        // for them all.
        for expected in [3, u32::MAX] {
            let log = format!(
                "{A}{{\"op\":\"set\",\"key\":\"b1\",\"value\":1,\"timestamp\":3,\"batch\":7,\"batch_len\":{expected}}}\n"
            );
            let (scan, keys) = run(&log).unwrap();
            assert_eq!(keys, ["set a"]);
            assert_eq!(scan.valid_len, A.len() as u64);
            assert!(
                matches!(
                    scan.torn,
                    Some(TornTail::IncompleteBatch { present: 1, expected: e, .. }) if e == expected
                ),
                "{:?}",
                scan.torn
            );
            assert_eq!(scan.max_batch_id, 7);
        }
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
