//! Command-line definitions: the one source for `--help`, man pages and completions.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::api::Limits;
use crate::wal::FsyncPolicy;

/// kvctl: a durable HTTP/JSON key-value store, and the tool to drive and maintain it.
#[derive(Debug, Parser)]
#[command(
    name = "kvctl",
    version,
    propagate_version = true,
    arg_required_else_help = true
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP key-value store on a data directory.
    Serve(ServeArgs),
}

/// Options of `kvctl serve`.
#[derive(Debug, Args)]
#[command(after_long_help = SERVE_AFTER_HELP)]
pub struct ServeArgs {
    /// Port to listen on.
    #[arg(long, env = "PORT", default_value_t = 8080)]
    pub port: u16,

    /// Directory holding wal.log; created if missing.
    #[arg(long, env = "DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Address to bind; the default accepts local connections only.
    #[arg(long, env = "KVCTL_HOST", default_value = "127.0.0.1")]
    pub host: IpAddr,

    /// When writes are forced to disk before they are acknowledged.
    #[arg(long, env = "KVCTL_FSYNC", value_enum, default_value_t = FsyncPolicy::Always)]
    pub fsync: FsyncPolicy,

    /// Log filter (error, warn, info, debug, trace, or a tracing directive); overrides RUST_LOG.
    #[arg(long, env = "KVCTL_LOG_LEVEL")]
    pub log_level: Option<String>,

    /// Longest key accepted, in bytes.
    #[arg(long, default_value_t = Limits::default().max_key_bytes, value_parser = positive())]
    pub max_key_bytes: usize,

    /// Largest request body accepted, in bytes.
    #[arg(long, default_value_t = Limits::default().max_body_bytes, value_parser = positive())]
    pub max_body_bytes: usize,

    /// Most operations accepted in one batch.
    #[arg(long, default_value_t = Limits::default().max_batch_ops, value_parser = positive())]
    pub max_batch_ops: usize,
}

impl ServeArgs {
    /// The request limits these options set.
    pub fn limits(&self) -> Limits {
        Limits {
            max_key_bytes: self.max_key_bytes,
            max_body_bytes: self.max_body_bytes,
            max_batch_ops: self.max_batch_ops,
        }
    }
}

const SERVE_AFTER_HELP: &str = "\
Durability (--fsync):
  always    the default: a write is acknowledged only after the log is
            fdatasync'ed; concurrent writers share one fsync (group commit).
            Survives a crash of the process or of the machine.
  interval  the log is fdatasync'ed once a second: a process crash loses
            nothing acknowledged, a machine crash up to the last second.
  never     flushing is left to the OS: a process crash loses nothing
            acknowledged, a machine crash can lose recent writes.

One server per data directory: the log is locked while the server runs.
SIGTERM or Ctrl-C stops accepting, finishes requests in flight, syncs the
log and exits 0.";

fn positive() -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::new().range(1..)
}
