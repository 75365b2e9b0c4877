//! `kvctl wal inspect|compact|repair`: offline maintenance of a data directory.

use std::path::Path;

use anyhow::Context;
use serde_json::json;

use super::CliError;
use crate::cli::{CompactArgs, InspectArgs, OutputFormat, RepairArgs};
use crate::maintenance::{self, RepairReport, RewriteError, Summary};
use crate::output::{
    byte_progress, bytes_with_human, emit, emit_line, format_timestamp, resolve, table,
};
use crate::ttl::now_ms;
use crate::wal::{open_read_only, LinePos, Op, Record};

/// `kvctl wal inspect`.
pub fn inspect(args: InspectArgs) -> Result<(), CliError> {
    let dir = &args.dir.data_dir;
    let (file, path) = open_read_only(dir)?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let bar = byte_progress(len, "reading");
    let wanted = |record: &Record| match (&args.key, &args.prefix) {
        (Some(key), _) => record.key() == key,
        (None, Some(prefix)) => record.key().starts_with(prefix.as_str()),
        (None, None) => true,
    };
    let limit = args.limit.unwrap_or(usize::MAX);
    let mut listed: Vec<(Record, LinePos)> = Vec::new();
    let (summary, _, corrupt) = maintenance::analyze(
        file,
        &path,
        now_ms(),
        |record, pos| {
            if args.records && listed.len() < limit && wanted(record) {
                listed.push((record.clone(), pos));
            }
        },
        |offset| bar.set_position(offset),
    )?;
    bar.finish_and_clear();

    let format = resolve(args.output.output);
    if args.records {
        print_records(&listed, format)?;
    } else {
        print_summary(&summary, format)?;
    }
    match corrupt {
        Some(corrupt) => Err(CliError::Local(anyhow::anyhow!(
            "{corrupt}; a server would refuse to start on this log (`kvctl wal repair` cuts it at the last good record)"
        ))),
        None => Ok(()),
    }
}

fn print_summary(s: &Summary, format: OutputFormat) -> Result<(), CliError> {
    if format == OutputFormat::Json {
        emit_line(&serde_json::to_string(s).expect("summary serialises"))?;
        return Ok(());
    }
    let ts = |t: Option<u64>| t.map_or("-".to_owned(), format_timestamp);
    let rows: Vec<(&str, String)> = vec![
        ("file", s.path.display().to_string()),
        ("file size", bytes_with_human(s.file_bytes)),
        ("records", s.records.to_string()),
        ("sets", s.sets.to_string()),
        ("deletes", s.deletes.to_string()),
        ("batches", s.batches.to_string()),
        ("live keys", s.live_keys.to_string()),
        ("expired keys", s.expired_keys.to_string()),
        ("live value bytes", s.live_value_bytes.to_string()),
        ("size after compaction", bytes_with_human(s.compacted_bytes)),
        (
            "reclaimable by compaction",
            format!("{:.1}%", s.reclaimable * 100.0),
        ),
        ("first timestamp", ts(s.first_timestamp_ms)),
        ("last timestamp", ts(s.last_timestamp_ms)),
        (
            "torn tail",
            s.torn_tail.clone().unwrap_or_else(|| "none".into()),
        ),
        (
            "corruption",
            s.corruption.clone().unwrap_or_else(|| "none".into()),
        ),
    ];
    if format == OutputFormat::Table {
        let mut t = table(["", "wal.log"]);
        for (name, value) in rows {
            t.add_row([name.to_owned(), value]);
        }
        emit_line(&t.to_string())?;
    } else {
        let mut text = String::new();
        for (name, value) in rows {
            text.push_str(&format!("{}\t{value}\n", name.replace(' ', "_")));
        }
        emit(&text)?;
    }
    Ok(())
}

fn print_records(records: &[(Record, LinePos)], format: OutputFormat) -> Result<(), CliError> {
    match format {
        OutputFormat::Json => emit(&records_as_json_lines(records))?,
        OutputFormat::Plain => emit(&records_as_plain_lines(records))?,
        OutputFormat::Table => emit_line(&records_as_table(records))?,
    }
    Ok(())
}

fn records_as_json_lines(records: &[(Record, LinePos)]) -> String {
    let mut text = String::new();
    for (record, pos) in records {
        let (op, value, ttl) = fields(record);
        let value: Option<serde_json::Value> =
            value.map(|v| serde_json::from_str(v).expect("stored JSON is valid"));
        let line = json!({
            "line": pos.line,
            "offset": pos.offset,
            "op": op,
            "key": record.key(),
            "value": value,
            "ttl": ttl,
            "timestamp_ms": record.timestamp_ms,
            "batch": record.batch.map(|b| b.id),
        });
        text.push_str(&line.to_string());
        text.push('\n');
    }
    text
}

fn records_as_plain_lines(records: &[(Record, LinePos)]) -> String {
    let mut text = String::new();
    for (record, pos) in records {
        let (op, value, ttl) = fields(record);
        text.push_str(&format!(
            "{}\t{}\t{op}\t{}\t{}\t{}\t{}\n",
            pos.line,
            pos.offset,
            record.key(),
            format_timestamp(record.timestamp_ms),
            ttl.map_or("-".into(), |t| t.to_string()),
            value.unwrap_or("-"),
        ));
    }
    text
}

fn records_as_table(records: &[(Record, LinePos)]) -> String {
    let mut t = table([
        "line",
        "offset",
        "op",
        "key",
        "timestamp",
        "ttl",
        "batch",
        "value",
    ]);
    for (record, pos) in records {
        let (op, value, ttl) = fields(record);
        t.add_row([
            pos.line.to_string(),
            pos.offset.to_string(),
            op.to_owned(),
            record.key().to_owned(),
            format_timestamp(record.timestamp_ms),
            ttl.map_or("-".into(), |t| t.to_string()),
            record.batch.map_or("-".into(), |b| b.id.to_string()),
            value.map_or("-".into(), |v| shorten(v, 60)),
        ]);
    }
    format!("{t}\n{} records", records.len())
}

/// A record's op name, value JSON and ttl, for listing.
fn fields(record: &Record) -> (&'static str, Option<&str>, Option<u64>) {
    match &record.op {
        Op::Set { value, ttl, .. } => ("set", Some(value.json()), *ttl),
        Op::Delete { .. } => ("delete", None, None),
    }
}

fn shorten(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_owned();
    }
    let mut short: String = text.chars().take(max_chars - 1).collect();
    short.push('…');
    short
}

fn rewrite_error(dir: &Path, err: RewriteError) -> CliError {
    match err {
        RewriteError::Wal(crate::wal::WalError::InUse { .. }) => CliError::Local(anyhow::anyhow!(
            "data directory {} is in use by a running server; stop it first (this needs exclusive access)",
            dir.display()
        )),
        other => CliError::Local(other.into()),
    }
}

/// `kvctl wal compact`: offline, or by a running server with `--server`.
pub fn compact(args: CompactArgs) -> Result<(), CliError> {
    if let Some(server) = &args.server {
        let client = super::connect_to(server, &args.connect)?;
        return compact_online(&client, args.output.output);
    }
    let dir = &args.dir.data_dir;
    let len = std::fs::metadata(dir.join(crate::wal::WAL_FILE))
        .map(|m| m.len())
        .unwrap_or(0);
    let bar = byte_progress(len, "compacting");
    let report = maintenance::compact(dir, now_ms(), |offset| bar.set_position(offset))
        .map_err(|e| rewrite_error(dir, e))?;
    bar.finish_and_clear();
    match resolve(args.output.output) {
        OutputFormat::Json => emit_line(&serde_json::to_string(&report).expect("report serialises"))?,
        OutputFormat::Plain => emit(&format!(
            "before_bytes\t{}\nbefore_records\t{}\nafter_bytes\t{}\nafter_records\t{}\nexpired_dropped\t{}\n",
            report.before_bytes, report.before_records, report.after_bytes, report.after_records, report.expired_dropped
        ))?,
        OutputFormat::Table => {
            let mut t = table(["", "before", "after"]);
            t.add_row([
                "size".to_owned(),
                bytes_with_human(report.before_bytes),
                bytes_with_human(report.after_bytes),
            ]);
            t.add_row([
                "records".to_owned(),
                report.before_records.to_string(),
                report.after_records.to_string(),
            ]);
            emit_line(&format!(
                "{t}\ncompacted {}: {} expired keys dropped",
                dir.join(crate::wal::WAL_FILE).display(),
                report.expired_dropped
            ))?;
        }
    }
    Ok(())
}

fn compact_online(
    client: &crate::client::Client,
    format: Option<OutputFormat>,
) -> Result<(), CliError> {
    let done = super::runtime()?.block_on(client.compact())?;
    match resolve(format) {
        OutputFormat::Json => {
            emit_line(&serde_json::to_string(&done).expect("report serialises"))?;
        }
        OutputFormat::Plain => emit(&format!(
            "bytes_before\t{}\nbytes_after\t{}\n",
            done.bytes_before, done.bytes_after
        ))?,
        OutputFormat::Table => {
            let mut t = table(["", "before", "after"]);
            t.add_row([
                "size".to_owned(),
                bytes_with_human(done.bytes_before),
                bytes_with_human(done.bytes_after),
            ]);
            emit_line(&format!("{t}\ncompacted the log of {}", client.server()))?;
        }
    }
    Ok(())
}

/// `kvctl wal repair`.
pub fn repair(args: RepairArgs) -> Result<(), CliError> {
    let dir = &args.dir.data_dir;
    let report = maintenance::repair(dir, now_ms()).map_err(|e| rewrite_error(dir, e))?;
    let text = match report {
        RepairReport::Clean => "the log is clean; nothing to repair".to_owned(),
        RepairReport::TornTailCut { tail } => format!("cut off a {tail}"),
        RepairReport::Cut {
            corruption,
            kept_records,
            dropped_lines,
            dropped_records,
            backup,
        } => format!(
            "cut the log before {corruption}\nkept {kept_records} records; dropped {dropped_lines} lines ({dropped_records} of them valid records)\nthe original is saved as {}",
            backup.display()
        ),
    };
    emit_line(&text).context("printing the report")?;
    Ok(())
}
