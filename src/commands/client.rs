//! `get`, `put`, `rm`, `ls`, `stats`, `batch`: against a server, or offline
//! on a data directory with the same results a server would give.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::{json, Value};

use super::{runtime, CliError};
use crate::api::{self, Limits};
use crate::cli::{BatchArgs, KeyArgs, LsArgs, OutputFormat, PutArgs, StatsArgs, Target};
use crate::client::Client;
use crate::local::{Engine, Snapshot};
use crate::output::{emit, emit_line, resolve, table};
use crate::storage::{Command, Outcome, Stats, Storage, StorageError};
use crate::value::StoredValue;
use crate::wal::FsyncPolicy;

/// Where a command's data lives.
enum Backend {
    Server(Box<Client>),
    Dir(PathBuf),
}

impl Backend {
    fn of(target: &Target) -> Result<Backend, CliError> {
        Ok(match &target.data_dir {
            Some(dir) => Backend::Dir(dir.clone()),
            None => Backend::Server(Box::new(super::connect_to(
                &target.server,
                &target.connect,
            )?)),
        })
    }

    /// Reads from a snapshot of the directory's log, taken without its lock.
    fn read_dir<R, F: std::future::Future<Output = Result<R, StorageError>>>(
        dir: &Path,
        read: impl FnOnce(Snapshot) -> F,
    ) -> Result<R, CliError> {
        if !dir.is_dir() {
            return Err(CliError::Local(anyhow::anyhow!(
                "no data directory at {}",
                dir.display()
            )));
        }
        let (snapshot, _) = Snapshot::load(dir)?;
        Ok(runtime()?
            .block_on(read(snapshot))
            .context("the read failed")?)
    }

    /// Carries out writes on the directory through the same engine a server
    /// uses, which needs the directory's lock.
    fn write_dir(dir: &Path, commands: Vec<Command>) -> Result<Vec<Outcome>, CliError> {
        let (engine, _) = Engine::open(dir, FsyncPolicy::Always).with_context(|| {
            "writing to a data directory needs it free: stop its server, or write through the server with --server"
        })?;
        runtime()?.block_on(async move {
            let outcomes = engine.execute(commands).await;
            let synced = engine.shutdown().await;
            let outcomes = outcomes.context("the write failed")?;
            synced.map_err(anyhow::Error::from)?;
            Ok(outcomes)
        })
    }
}

/// `kvctl get`.
pub fn get(args: KeyArgs) -> Result<(), CliError> {
    let value = match Backend::of(&args.target)? {
        Backend::Server(client) => runtime()?.block_on(client.get(&args.key))?,
        Backend::Dir(dir) => {
            api::check_key(&args.key, &Limits::default())?;
            let key = &args.key;
            let json = Backend::read_dir(&dir, |snapshot| async move {
                match snapshot.get(key).await {
                    Err(StorageError::NotFound) => Ok(None),
                    found => found.map(Some),
                }
            })?;
            json.map(|json| serde_json::from_str(&json).expect("stored JSON is valid"))
        }
    };
    let value = value.ok_or_else(|| CliError::KeyNotFound(args.key.clone()))?;
    let text = match resolve(args.output.output) {
        OutputFormat::Json => json!({ "value": value }).to_string(),
        OutputFormat::Plain => display_value(&value, false),
        OutputFormat::Table => display_value(&value, true),
    };
    emit_line(&text)?;
    Ok(())
}

/// A value as `get` prints it: strings bare, anything else as JSON.
fn display_value(value: &Value, pretty: bool) -> String {
    match value {
        Value::String(s) => s.clone(),
        other if pretty => serde_json::to_string_pretty(other).expect("a Value serialises"),
        other => other.to_string(),
    }
}

/// `kvctl put`.
pub fn put(args: PutArgs) -> Result<(), CliError> {
    let text = if args.value == "-" {
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .context("cannot read the value from stdin")?;
        String::from_utf8(bytes)
            .map_err(|_| CliError::Usage("the value on stdin is not valid UTF-8 text".into()))?
    } else {
        args.value.clone()
    };
    let value = if args.json {
        serde_json::from_str(&text).map_err(|e| {
            CliError::Usage(format!(
                "VALUE is not valid JSON ({e}); drop --json to store it as a string"
            ))
        })?
    } else {
        Value::String(text)
    };
    match Backend::of(&args.target)? {
        Backend::Server(client) => {
            runtime()?.block_on(client.put(&args.key, &value, args.ttl))?;
        }
        Backend::Dir(dir) => {
            api::check_key(&args.key, &Limits::default())?;
            let command = Command::Set {
                key: args.key.as_str().into(),
                value: StoredValue::from_value(&value),
                ttl: args.ttl,
            };
            Backend::write_dir(&dir, vec![command])?;
        }
    }
    acknowledge(args.output.output)
}

fn acknowledge(format: Option<OutputFormat>) -> Result<(), CliError> {
    match resolve(format) {
        OutputFormat::Json => emit_line(r#"{"success":true}"#)?,
        OutputFormat::Table => emit_line("OK")?,
        OutputFormat::Plain => {}
    }
    Ok(())
}

/// `kvctl rm`.
pub fn rm(args: KeyArgs) -> Result<(), CliError> {
    let existed = match Backend::of(&args.target)? {
        Backend::Server(client) => runtime()?.block_on(client.delete(&args.key))?,
        Backend::Dir(dir) => {
            api::check_key(&args.key, &Limits::default())?;
            let command = Command::Delete {
                key: args.key.as_str().into(),
            };
            Backend::write_dir(&dir, vec![command])? == [Outcome::Done]
        }
    };
    if !existed {
        return Err(CliError::KeyNotFound(args.key));
    }
    acknowledge(args.output.output)
}

/// `kvctl ls`.
pub fn ls(args: LsArgs) -> Result<(), CliError> {
    let keys = match Backend::of(&args.target)? {
        Backend::Server(client) => runtime()?.block_on(client.list(&args.prefix))?,
        Backend::Dir(dir) => {
            let prefix = &args.prefix;
            let keys =
                Backend::read_dir(&dir, |snapshot| async move { snapshot.list(prefix).await })?;
            keys.into_iter().map(String::from).collect()
        }
    };
    match resolve(args.output.output) {
        OutputFormat::Json => emit_line(&json!({ "keys": keys }).to_string())?,
        OutputFormat::Plain => {
            let mut text = String::with_capacity(keys.iter().map(|k| k.len() + 1).sum());
            for key in &keys {
                text.push_str(key);
                text.push('\n');
            }
            emit(&text)?;
        }
        OutputFormat::Table => {
            let mut t = table(["key"]);
            for key in &keys {
                t.add_row([key]);
            }
            emit_line(&format!("{t}\n{} keys", keys.len()))?;
        }
    }
    Ok(())
}

/// `kvctl stats`.
pub fn stats(args: StatsArgs) -> Result<(), CliError> {
    let stats: Stats = match Backend::of(&args.target)? {
        Backend::Server(client) => runtime()?.block_on(client.stats())?,
        Backend::Dir(dir) => {
            Backend::read_dir(&dir, |snapshot| async move { snapshot.stats().await })?
        }
    };
    match resolve(args.output.output) {
        OutputFormat::Json => emit_line(&serde_json::to_string(&stats).expect("stats serialise"))?,
        OutputFormat::Plain => emit(&format!(
            "keys\t{}\nsize_bytes\t{}\n",
            stats.keys, stats.size_bytes
        ))?,
        OutputFormat::Table => {
            let mut t = table(["stat", "value"]);
            t.add_row(["keys".to_owned(), stats.keys.to_string()]);
            t.add_row([
                "size_bytes".to_owned(),
                crate::output::bytes_with_human(stats.size_bytes),
            ]);
            emit_line(&t.to_string())?;
        }
    }
    Ok(())
}

/// `kvctl batch`.
pub fn batch(args: BatchArgs) -> Result<(), CliError> {
    let body = read_batch_input(&args.input)?;
    let results: Vec<Value> = match Backend::of(&args.target)? {
        Backend::Server(client) => runtime()?.block_on(client.batch(&body))?,
        Backend::Dir(dir) => {
            let bytes = serde_json::to_vec(&body).expect("a Value serialises");
            let commands = api::parse_batch(&bytes, &Limits::default())?;
            let outcomes = Backend::write_dir(&dir, commands)?;
            // The same body a server would answer with.
            let mut body: Value = serde_json::from_str(&api::render_results(&outcomes))
                .expect("rendered results are JSON");
            match body["results"].take() {
                Value::Array(results) => results,
                _ => unreachable!("render_results writes a results array"),
            }
        }
    };
    match resolve(args.output.output) {
        OutputFormat::Json => emit_line(&json!({ "results": results }).to_string())?,
        OutputFormat::Plain => {
            let mut text = String::new();
            for result in &results {
                text.push_str(&result.to_string());
                text.push('\n');
            }
            emit(&text)?;
        }
        OutputFormat::Table => {
            let ops = body["operations"].as_array().cloned().unwrap_or_default();
            let mut t = table(["#", "op", "key", "result"]);
            for (i, result) in results.iter().enumerate() {
                let op = ops.get(i).cloned().unwrap_or_default();
                t.add_row([
                    i.to_string(),
                    op["op"].as_str().unwrap_or_default().to_owned(),
                    op["key"].as_str().unwrap_or_default().to_owned(),
                    result.to_string(),
                ]);
            }
            emit_line(&t.to_string())?;
        }
    }
    Ok(())
}

/// Reads a batch body from a file or stdin; a bare array is taken as the operations.
fn read_batch_input(input: &Path) -> Result<Value, CliError> {
    let (name, bytes) = if input == Path::new("-") {
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .context("cannot read the batch from stdin")?;
        ("stdin".to_owned(), bytes)
    } else {
        let bytes = std::fs::read(input)
            .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", input.display())))?;
        (input.display().to_string(), bytes)
    };
    match serde_json::from_slice(&bytes) {
        Ok(Value::Array(operations)) => Ok(json!({ "operations": operations })),
        Ok(body) => Ok(body),
        Err(e) => Err(CliError::Usage(format!("{name} is not valid JSON: {e}"))),
    }
}
