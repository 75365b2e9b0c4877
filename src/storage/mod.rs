//! The storage interface: everything the HTTP layer and the CLI ask of a
//! backend, and the types they ask in.
//!
//! A backend is anything that implements [`Storage`]: today the local engine
//! (a log on disk with the state in memory) and a plain in-memory map
//! ([`memory`], the simplest code with these semantics). One behavioural
//! suite holds every backend to the same expectations. Callers see only
//! this module, never a backend's locks or maps, so a backend may equally
//! be a client of a networked cluster.
//!
//! # The semantics every backend keeps
//! - [`Storage::execute`] carries out one request's commands in order, as one
//!   isolated, atomic unit: no reader sees part of it, a crash keeps all of
//!   its writes or none, and a `Get` sees the earlier commands of the same
//!   request. A request that only reads may be answered from any consistent
//!   state that includes every write acknowledged before it began.
//! - A write is acknowledged (its future resolves `Ok`) only once it is as
//!   durable as the backend's configured rule promises.
//! - A `Delete` of an absent key writes nothing and answers
//!   [`Outcome::NotFound`].
//! - Expired keys are absent for every reader at once.
//!
//! # Built for what comes next
//! - A networked backend (an etcd cluster): every method is async and
//!   fallible, and [`StorageError`] says whether a failed write may have been
//!   applied. A request becomes one transaction; one that loses a race
//!   retries inside the backend, and one that keeps losing until the
//!   backend gives up is [`StorageError::Unavailable`] (the request set no
//!   condition, so nothing is wrong with it). An unreachable cluster is
//!   [`StorageError::Unavailable`] too, a slow one [`StorageError::Timeout`],
//!   a request over the cluster's own limits [`StorageError::TooLarge`].
//! - Versions and conditional writes: a condition is one more [`Command`]
//!   (compare a key's version, fail the whole request if it differs), which
//!   the backend checks inside the same unit as the writes; a condition that
//!   does not hold is [`StorageError::Conflict`]. A key's version then joins
//!   its value in what [`Storage::get`] and [`Outcome::Value`] carry, and
//!   the revision a request was applied at joins what [`Storage::execute`]
//!   answers; the HTTP layer sends both as headers a client asks for, so no
//!   existing body changes.
//! - A watch stream: the order in which a backend applies writes is its
//!   revision order (etcd's revision; in the local engine, the log's
//!   order), the one place a stream of applied writes can be published
//!   from. For the local engine to resume a watch from a revision after a
//!   compaction, its records will have to carry their revision (the
//!   contract allows extra members), kept by compaction.

pub mod memory;
#[cfg(test)]
pub(crate) mod suite;

use std::future::Future;

pub use crate::value::{Key, StoredValue};

/// One operation of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Set a key, replacing its value and ttl.
    Set {
        /// The key.
        key: Key,
        /// The value.
        value: StoredValue,
        /// Seconds until expiry, if any.
        ttl: Option<u64>,
    },
    /// Delete a key.
    Delete {
        /// The key.
        key: Key,
    },
    /// Read a key, after the request's earlier operations.
    Get {
        /// The key.
        key: Key,
    },
}

impl Command {
    /// Whether the command changes the store (or may: a delete of an absent
    /// key writes nothing).
    pub fn writes(&self) -> bool {
        !matches!(self, Command::Get { .. })
    }
}

/// The result of one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A set, or a delete of a live key.
    Done,
    /// A get or delete of a key that is absent.
    NotFound,
    /// A get's value, as compact JSON text.
    Value(Box<str>),
}

/// Counts over the live keys, as `/stats` reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Stats {
    /// Live keys.
    pub keys: u64,
    /// Sum of the live values' sizes (see [`StoredValue::size`]).
    pub size_bytes: u64,
}

/// Why a backend did not carry out a request.
///
/// Each variant says whether a write may have been applied, so that a
/// caller knows whether retrying could apply it twice.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    /// The key is absent or expired.
    #[error("key not found")]
    NotFound,
    /// The backend refuses the request as it stands; nothing was applied,
    /// and sending it again unchanged fails again.
    #[error("{0}")]
    Rejected(String),
    /// The request is over a limit of the backend's own (a transaction's
    /// operations or bytes); nothing was applied.
    #[error("{0}")]
    TooLarge(String),
    /// A condition the request set does not hold; nothing was applied.
    #[error("{0}")]
    Conflict(String),
    /// The backend cannot serve now (shutting down, cluster unreachable, a
    /// transaction that kept losing races); nothing was applied.
    #[error("{0}")]
    Unavailable(String),
    /// The backend did not answer in time. A write may or may not have been
    /// applied, but never in part.
    #[error("{0}")]
    Timeout(String),
    /// The backend failed to make the write durable (the log could not be
    /// written); nothing was applied.
    #[error("{0}")]
    Failed(String),
    /// The backend has no such operation (an administrative one: it has no
    /// log to compact, say); nothing was done.
    #[error("{0}")]
    Unsupported(String),
}

impl StorageError {
    /// A write refused because the backend is shutting down.
    pub fn shutting_down() -> StorageError {
        StorageError::Unavailable("the store is shutting down".into())
    }
}

/// What a compaction of a backend's durable state did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Compaction {
    /// Bytes of durable state before.
    pub bytes_before: u64,
    /// Bytes of durable state after.
    pub bytes_after: u64,
}

/// A consistent copy of a backend's state, arriving in chunks as it is
/// produced: a compacted log (`wal.log` lines), which, put in a data
/// directory as its log, restores that state. An error ends it early.
#[derive(Debug)]
pub struct SnapshotChunks(tokio::sync::mpsc::Receiver<Result<Vec<u8>, StorageError>>);

impl SnapshotChunks {
    /// Chunks that a producer sends on the other side of `receiver`.
    pub fn new(receiver: tokio::sync::mpsc::Receiver<Result<Vec<u8>, StorageError>>) -> Self {
        SnapshotChunks(receiver)
    }

    /// The next chunk; `None` once the snapshot is complete.
    pub fn poll_chunk(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Vec<u8>, StorageError>>> {
        self.0.poll_recv(cx)
    }
}

/// A key-value backend, as the HTTP layer and the CLI use it.
///
/// A value of the type is a handle: cheap to clone, every clone the same
/// store. Every method may be called from any number of tasks at once.
pub trait Storage: Clone + Send + Sync + 'static {
    /// The live value of `key`, as compact JSON text; [`StorageError::NotFound`]
    /// if it is absent or expired.
    fn get(&self, key: &str) -> impl Future<Output = Result<Box<str>, StorageError>> + Send;

    /// The live keys starting with `prefix` (all of them for `""`), in
    /// ascending byte order.
    fn list(&self, prefix: &str) -> impl Future<Output = Result<Vec<Key>, StorageError>> + Send;

    /// Counts over the live keys.
    fn stats(&self) -> impl Future<Output = Result<Stats, StorageError>> + Send;

    /// Carries out one request's commands in order, as one isolated and
    /// atomic unit, and answers one outcome per command.
    fn execute(
        &self,
        commands: Vec<Command>,
    ) -> impl Future<Output = Result<Vec<Outcome>, StorageError>> + Send;

    /// Refuses new writes, finishes the ones under way and makes everything
    /// acknowledged durable; reads may still be answered afterwards.
    fn shutdown(&self) -> impl Future<Output = Result<(), StorageError>> + Send;

    /// Whether the backend accepts writes now; the error says why not.
    fn health(&self) -> impl Future<Output = Result<(), StorageError>> + Send {
        async { Ok(()) }
    }

    /// Rewrites the durable state to just the live data, while serving.
    fn compact(&self) -> impl Future<Output = Result<Compaction, StorageError>> + Send {
        async {
            Err(StorageError::Unsupported(
                "this backend has no log to compact".into(),
            ))
        }
    }

    /// A consistent copy of the state as of now, taken without stopping
    /// writers (see [`SnapshotChunks`]).
    fn snapshot(&self) -> impl Future<Output = Result<SnapshotChunks, StorageError>> + Send {
        async {
            Err(StorageError::Unsupported(
                "this backend cannot take snapshots".into(),
            ))
        }
    }
}
