//! Command-line definitions: the one source for `--help`, man pages and completions.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::api::Limits;
use crate::wal::FsyncPolicy;

/// kvctl: a durable HTTP/JSON key-value store, and the tool to drive and maintain it.
#[derive(Debug, Parser)]
#[command(
    name = "kvctl",
    version,
    propagate_version = true,
    arg_required_else_help = true,
    after_long_help = EXIT_CODES
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Exit statuses, shown in `--help` and the man page.
pub const EXIT_CODES: &str = "\
Exit status:
  0  success
  1  key not found (get, rm)
  2  usage error (bad flag, bad argument, unreadable input file)
  3  cannot reach the server
  4  the server rejected the request (its error message is shown)
  5  local failure: data directory in use, unreadable or corrupt log, I/O error";

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP key-value store on a data directory.
    Serve(ServeArgs),
    /// Print the value of a key.
    Get(KeyArgs),
    /// Set a key to a value (a string unless --json).
    Put(PutArgs),
    /// Delete a key.
    #[command(visible_alias = "del")]
    Rm(KeyArgs),
    /// List keys, optionally only those starting with a prefix.
    Ls(LsArgs),
    /// Show the number of keys and the bytes their values take.
    Stats(StatsArgs),
    /// Run a batch of set/get/delete operations from a JSON file or stdin.
    Batch(BatchArgs),
    /// Inspect, compact or repair a data directory's write-ahead log.
    #[command(subcommand)]
    Wal(WalCommand),
    /// Take a consistent backup of a running server's data.
    #[command(subcommand)]
    Snapshot(SnapshotCommand),
    /// Drive a running server with a workload and report throughput and latency.
    Bench(BenchArgs),
    /// Print shell completions for kvctl.
    Completions(CompletionsArgs),
    /// Write kvctl's man pages.
    Man(ManArgs),
}

/// Where a client command finds the data: a running server or a data directory.
#[derive(Debug, Args, Clone)]
pub struct Target {
    /// URL of the server.
    #[arg(long, env = "KVCTL_SERVER", default_value = crate::client::DEFAULT_SERVER, value_name = "URL")]
    pub server: String,

    /// Work on this data directory directly instead of a server (reads work while a server runs; writes need the directory free).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// How a client authenticates to the server and checks its certificate.
#[derive(Debug, Args, Clone)]
pub struct ConnectArgs {
    /// Send the bearer token in this file (one trailing newline ignored); without it, the token is $KVCTL_AUTH_TOKEN if set.
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,

    /// Trust the CA certificates in this PEM file for an https:// server, besides the public roots.
    #[arg(long, env = "KVCTL_CACERT", value_name = "FILE")]
    pub cacert: Option<PathBuf>,
}

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// What the server answers: JSON bodies.
    Json,
    /// Tables for people.
    Table,
    /// Bare values and one item per line, for scripts.
    Plain,
}

/// The `--output` flag shared by client commands.
#[derive(Debug, Args, Clone, Copy)]
pub struct OutputArg {
    /// Output format [default: table on a terminal, plain otherwise].
    #[arg(long, short = 'o', value_enum, value_name = "FORMAT")]
    pub output: Option<OutputFormat>,
}

/// Options of `kvctl get` and `kvctl rm`: one key.
#[derive(Debug, Args)]
pub struct KeyArgs {
    /// The key (any string; it is percent-encoded for you).
    pub key: String,
    #[command(flatten)]
    pub target: Target,
    #[command(flatten)]
    pub output: OutputArg,
}

/// Options of `kvctl put`.
#[derive(Debug, Args)]
pub struct PutArgs {
    /// The key (any string; it is percent-encoded for you).
    pub key: String,
    /// The value; `-` reads it from stdin.
    #[arg(allow_hyphen_values = true)]
    pub value: String,
    /// Parse VALUE as JSON (`kvctl put n 42 --json` stores a number).
    #[arg(long)]
    pub json: bool,
    /// Expire the key after this many seconds.
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=crate::ttl::MAX_TTL_SECS))]
    pub ttl: Option<u64>,
    #[command(flatten)]
    pub target: Target,
    #[command(flatten)]
    pub output: OutputArg,
}

/// Options of `kvctl ls`.
#[derive(Debug, Args)]
pub struct LsArgs {
    /// Only keys starting with this prefix.
    #[arg(long, short = 'p', default_value = "")]
    pub prefix: String,
    #[command(flatten)]
    pub target: Target,
    #[command(flatten)]
    pub output: OutputArg,
}

/// Options of `kvctl stats`.
#[derive(Debug, Args)]
pub struct StatsArgs {
    #[command(flatten)]
    pub target: Target,
    #[command(flatten)]
    pub output: OutputArg,
}

/// Options of `kvctl batch`.
#[derive(Debug, Args)]
#[command(after_long_help = "\
The input is the body of POST /kv/batch, or just its operations array:
  {\"operations\": [{\"op\": \"set\", \"key\": \"a\", \"value\": 1, \"ttl\": 60},
                  {\"op\": \"get\", \"key\": \"a\"}, {\"op\": \"delete\", \"key\": \"b\"}]}
Operations run in order, all validated first; no other request sees the batch half done.")]
pub struct BatchArgs {
    /// JSON file with the operations; `-` reads stdin.
    #[arg(value_name = "FILE|-")]
    pub input: PathBuf,
    #[command(flatten)]
    pub target: Target,
    #[command(flatten)]
    pub output: OutputArg,
}

/// `kvctl wal` subcommands.
#[derive(Debug, Subcommand)]
pub enum WalCommand {
    /// Summarise a log (or list its records) without changing it.
    Inspect(InspectArgs),
    /// Rewrite the log to the live state only, atomically.
    Compact(CompactArgs),
    /// Cut a corrupt log at its last good record, keeping a backup.
    Repair(RepairArgs),
}

/// The data directory of a `wal` subcommand.
#[derive(Debug, Args, Clone)]
pub struct DataDirArg {
    /// The data directory holding wal.log.
    #[arg(long, env = "DATA_DIR", default_value = "./data", value_name = "DIR")]
    pub data_dir: PathBuf,
}

/// Options of `kvctl wal inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    #[command(flatten)]
    pub dir: DataDirArg,
    /// List records instead of the summary.
    #[arg(long)]
    pub records: bool,
    /// With --records: only records of this key.
    #[arg(long, requires = "records", conflicts_with = "prefix")]
    pub key: Option<String>,
    /// With --records: only records whose key starts with this.
    #[arg(long, requires = "records")]
    pub prefix: Option<String>,
    /// With --records: at most this many records.
    #[arg(long, requires = "records", value_name = "N")]
    pub limit: Option<usize>,
    #[command(flatten)]
    pub output: OutputArg,
}

/// Options of `kvctl wal compact`.
#[derive(Debug, Args)]
pub struct CompactArgs {
    #[command(flatten)]
    pub dir: DataDirArg,
    /// Compact the log of the server at this URL while it serves, instead of a stopped data directory.
    #[arg(long, value_name = "URL", conflicts_with = "data_dir")]
    pub server: Option<String>,
    #[command(flatten)]
    pub connect: ConnectArgs,
    #[command(flatten)]
    pub output: OutputArg,
}

/// The `kvctl snapshot` subcommands.
#[derive(Debug, Subcommand)]
pub enum SnapshotCommand {
    /// Write the server's current state to FILE as a compacted log, atomically.
    #[command(after_long_help = "\
The snapshot is the state at one point in the log's order, taken while the
server goes on serving writes. To restore it, stop a server and put the file
at <data dir>/wal.log.")]
    Save(SnapshotSaveArgs),
}

/// Options of `kvctl snapshot save`.
#[derive(Debug, Args)]
pub struct SnapshotSaveArgs {
    /// Where to write the snapshot; it appears only once complete and synced.
    pub file: PathBuf,
    /// URL of the server.
    #[arg(long, env = "KVCTL_SERVER", default_value = crate::client::DEFAULT_SERVER, value_name = "URL")]
    pub server: String,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// Options of `kvctl wal repair`.
#[derive(Debug, Args)]
pub struct RepairArgs {
    #[command(flatten)]
    pub dir: DataDirArg,
}

/// Options of `kvctl bench`.
#[derive(Debug, Args)]
#[command(after_long_help = "\
Keys are key:0000000000 .. key:<keyspace-1>, chosen at random; `list` asks for
a prefix that 1000 consecutive keys share. Latencies are per request, from
send to the last byte of the answer, over keep-alive HTTP/1.1 connections.")]
pub struct BenchArgs {
    /// URL of the server.
    #[arg(long, env = "KVCTL_SERVER", default_value = crate::client::DEFAULT_SERVER, value_name = "URL")]
    pub server: String,
    /// What each request does.
    #[arg(long, short = 'w', value_enum, default_value_t = crate::bench::Workload::Get)]
    pub workload: crate::bench::Workload,
    /// Concurrent keep-alive connections.
    #[arg(long, short = 'c', default_value_t = 64, value_parser = positive())]
    pub clients: usize,
    /// How long to run (e.g. 10s, 1m) [default: 10s unless --requests].
    #[arg(long, short = 'd', value_parser = humantime::parse_duration, conflicts_with = "requests")]
    pub duration: Option<std::time::Duration>,
    /// Stop after this many requests instead of after a duration.
    #[arg(long, short = 'n')]
    pub requests: Option<u64>,
    /// Number of distinct keys.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub keyspace: u64,
    /// Bytes of each (string) value written.
    #[arg(long, default_value_t = 100)]
    pub value_size: usize,
    /// ttl of the keys written, in seconds.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=crate::ttl::MAX_TTL_SECS))]
    pub ttl: Option<u64>,
    /// Share of GETs in the mixed workload.
    #[arg(long, default_value_t = 0.9)]
    pub read_ratio: f64,
    /// Sets per request in the batch workload.
    #[arg(long, default_value_t = 100, value_parser = positive())]
    pub batch_size: usize,
    /// Write every key of the keyspace before measuring.
    #[arg(long)]
    pub preload: bool,
    #[command(flatten)]
    pub connect: ConnectArgs,
    #[command(flatten)]
    pub output: OutputArg,
}

/// Options of `kvctl completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Options of `kvctl man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write kvctl.1 and one page per subcommand into this directory instead of printing kvctl.1.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
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

    /// Log filter: a level (error, warn, info, debug, trace, off) and/or target=level directives, comma-separated; overrides RUST_LOG.
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

    /// Compact the log by itself only once it is at least this large, in bytes; 0 turns automatic compaction off.
    #[arg(long, env = "KVCTL_COMPACT_MIN_BYTES", default_value_t = 64 << 20, value_name = "BYTES")]
    pub compact_min_bytes: u64,

    /// ...and has grown to this many times its size after the last compaction (or at start).
    #[arg(long, env = "KVCTL_COMPACT_RATIO", default_value_t = 2.0, value_name = "FACTOR", value_parser = growth_ratio)]
    pub compact_ratio: f64,

    /// Require `Authorization: Bearer <token>` on every request but GET /health, with the token in this file (one trailing newline ignored); without it, the token is $KVCTL_AUTH_TOKEN if set.
    #[arg(long, value_name = "FILE")]
    pub auth_token_file: Option<PathBuf>,

    /// Serve HTTPS with this PEM certificate chain (leaf first); needs --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// The PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Close a connection that has not sent a complete request head this long after connecting (TLS handshake included) or after its first byte.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = positive_duration)]
    pub header_timeout: Duration,

    /// Close a kept-alive connection that sends no new request for this long.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = positive_duration)]
    pub idle_timeout: Duration,

    /// Answer 503 to a request not answered within this long after its head arrived (a write in it is applied whole or not at all).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = positive_duration)]
    pub request_timeout: Duration,

    /// Most connections open at once; more wait to be accepted. Lowered to what the open-file limit allows.
    #[arg(long, value_name = "N", default_value_t = crate::server::DEFAULT_MAX_CONNECTIONS, value_parser = positive())]
    pub max_connections: usize,
}

impl ServeArgs {
    /// When the log is compacted by itself.
    pub fn auto_compact(&self) -> crate::local::AutoCompact {
        crate::local::AutoCompact {
            min_bytes: self.compact_min_bytes,
            ratio: self.compact_ratio,
        }
    }

    /// The request limits these options set.
    pub fn limits(&self) -> Limits {
        Limits {
            max_key_bytes: self.max_key_bytes,
            max_body_bytes: self.max_body_bytes,
            max_batch_ops: self.max_batch_ops,
        }
    }

    /// The connection timeouts these options set.
    pub fn timeouts(&self) -> crate::server::Timeouts {
        crate::server::Timeouts {
            header: self.header_timeout,
            idle: self.idle_timeout,
            request: self.request_timeout,
        }
    }
}

/// A duration such as `30s` or `5m`, more than zero.
fn positive_duration(text: &str) -> Result<Duration, String> {
    match humantime::parse_duration(text) {
        Ok(d) if d.is_zero() => Err("must be more than zero".into()),
        // Deadlines are this far from now; much longer is no limit at all.
        Ok(d) if d > Duration::from_secs(365 * 24 * 3600) => Err("must be at most a year".into()),
        Ok(d) => Ok(d),
        Err(e) => Err(format!("{e} (write durations as 500ms, 30s, 5m)")),
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

Compaction: once wal.log is over --compact-min-bytes and has grown by
--compact-ratio since the last compaction, the server rewrites it to the
live keys in the background (POST /admin/compact or `kvctl wal compact
--server URL` does it on demand). Reads never wait; writes wait only for
the swap.

Security: with --auth-token-file (or $KVCTL_AUTH_TOKEN) every request but
GET /health needs `Authorization: Bearer <token>`, else 401. With --tls-cert
and --tls-key the port speaks HTTPS only.

Limits: connections over --max-connections wait in the listen backlog until
one closes. The soft open-file limit is raised to the hard one at start, and
the connection limit kept below it; the start-up line says both.

One server per data directory: the log is locked while the server runs.
SIGTERM or Ctrl-C stops accepting, finishes requests in flight, syncs the
log and exits 0.";

fn growth_ratio(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(ratio) if ratio > 1.0 && ratio.is_finite() => Ok(ratio),
        Ok(_) => {
            Err("must be a number greater than 1 (2 compacts when the log has doubled)".into())
        }
        Err(err) => Err(err.to_string()),
    }
}

fn positive() -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::new().range(1..)
}

/// `--fsync`'s values; the policy itself is the log's, which knows nothing
/// of the command line.
impl clap::ValueEnum for FsyncPolicy {
    fn value_variants<'a>() -> &'a [Self] {
        &[
            FsyncPolicy::Always,
            FsyncPolicy::Interval,
            FsyncPolicy::Never,
        ]
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        use clap::builder::PossibleValue;
        Some(match self {
            FsyncPolicy::Always => PossibleValue::new("always").help(
                "fdatasync before every acknowledgement; concurrent writers share one (group commit)",
            ),
            FsyncPolicy::Interval => PossibleValue::new("interval")
                .help("fdatasync once a second: a machine crash can lose up to the last second"),
            FsyncPolicy::Never => PossibleValue::new("never")
                .help("leave flushing to the OS: a machine crash can lose recent writes"),
        })
    }
}
