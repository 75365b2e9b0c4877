//! kvctl: a durable HTTP/JSON key-value store and the tool to drive it.
//!
//! # Layout
//! Foundations, used by every layer:
//! - [`value`]: canonical stored values (compact JSON) and their counted size.
//! - [`ttl`]: wall-clock time, ttl validation and deadline arithmetic.
//! - [`alloc`]: the process's allocator (jemalloc) and giving memory back.
//! - [`metrics`]: the process's metrics (Prometheus families, their
//!   registry) and rendering them in the Prometheus text format.
//!
//! The store, in the order a request flows through it:
//! - [`server`]: the axum HTTP layer and the one error-to-status mapping.
//! - [`api`]: validation of keys and request bodies into storage commands.
//! - [`storage`]: the storage interface every backend implements, and its
//!   types; [`storage::memory`], the in-memory reference backend.
//! - [`local`]: the local engine behind that interface: group commit into
//!   the log, the in-memory map, replay, the expiry sweeper.
//! - [`wal`]: the log file: line codec, replay scan with torn-tail repair,
//!   the exclusive lock, appends with fsync policies.
//!
//! The tool:
//! - [`cli`]: clap definitions, the single source of `--help`, man pages and
//!   completions; [`commands`]: one module per subcommand.
//! - [`client`]: a typed HTTP client for a running server.
//! - [`maintenance`]: offline inspection, compaction and repair of a log.
//! - [`mod@bench`]: the load generator behind `kvctl bench`.
//! - [`output`]: output formats, tables and progress bars for the CLI.
//!
//! Data flows one way: request → [`server`] → [`api`] → [`storage`] →
//! [`local`] → [`wal`]. A module imports only from modules after it in that
//! chain, and from the foundations; a backend implements the interface, so
//! [`local`] uses [`storage`]'s types, and [`storage`] knows no backend. The
//! HTTP layer and the CLI reach a backend only through
//! [`storage::Storage`], except to open one. The tool sits beside the
//! chain: [`commands`] may use any of it, [`maintenance`] works on [`wal`]
//! alone.

pub mod alloc;
pub mod api;
pub mod bench;
pub mod cli;
pub mod client;
pub mod commands;
pub mod local;
pub mod maintenance;
pub mod metrics;
pub mod output;
pub mod server;
pub mod storage;
pub mod ttl;
pub mod value;
pub mod wal;
