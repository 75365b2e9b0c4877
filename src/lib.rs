//! kvctl: a durable HTTP/JSON key-value store and the tool to drive it.
//!
//! # Layout
//! - [`alloc`]: the process's allocator (jemalloc) and giving memory back.
//! - [`value`]: canonical stored values (compact JSON) and their counted size.
//! - [`ttl`]: wall-clock time, ttl validation and deadline arithmetic.
//! - [`wal`]: the log file: line codec, replay with torn-tail repair, the
//!   exclusive lock, appends with fsync policies.
//! - [`store`]: the in-memory ordered map, its expiry index and counters.
//! - [`engine`]: the database handle; one writer thread logs groups of writes
//!   (group commit) and then applies them to the store; the expiry sweeper.
//! - [`api`]: validation of keys and request bodies into engine commands.
//! - [`server`]: the axum HTTP layer and the one error-to-status mapping.
//! - [`client`]: a typed HTTP client for a running server.
//! - [`output`]: output formats, tables and progress bars for the CLI.
//! - [`mod@bench`]: the load generator behind `kvctl bench`.
//! - [`cli`]: clap definitions, the single source of `--help`, man pages and
//!   completions; [`commands`]: one module per subcommand.
//!
//! Data flows one way: request → [`api`] → [`engine`] → [`wal`] → [`store`].

pub mod alloc;
pub mod api;
pub mod bench;
pub mod cli;
pub mod client;
pub mod commands;
pub mod engine;
pub mod output;
pub mod server;
pub mod store;
pub mod ttl;
pub mod value;
pub mod wal;
