//! A read-only copy of a data directory's state, loaded without its lock,
//! so offline reads work beside a running server.

use std::io::BufReader;
use std::path::Path;
use std::sync::Arc;

use super::loader::Loader;
use super::map::Map;
use crate::storage::{Command, Key, Outcome, Stats, Storage, StorageError};
use crate::ttl::now_ms;
use crate::wal::{open_read_only, replay, LogValue, Record, Scan, WalError, WAL_FILE};

/// The state of a data directory's log as it was when loaded; writes are
/// refused.
#[derive(Debug, Clone)]
pub struct Snapshot {
    map: Arc<Map>,
}

impl Snapshot {
    /// Replays `dir`'s log without locking or repairing it; no log yet is
    /// an empty store, as a server would find it. A torn tail (possibly a
    /// write in progress) is left out, as a server would leave it out.
    pub fn load(dir: &Path) -> Result<(Snapshot, Scan), WalError> {
        Snapshot::load_at(dir, now_ms())
    }

    /// [`Snapshot::load`], judging expiry at `now_ms`.
    pub fn load_at(dir: &Path, now_ms: u64) -> Result<(Snapshot, Scan), WalError> {
        let path = dir.join(WAL_FILE);
        if !path.exists() {
            return Ok((Snapshot::of(Map::new()), Scan::default()));
        }
        let (file, path) = open_read_only(dir)?;
        let mut loader = Loader::new(now_ms);
        let scan = replay::scan(
            BufReader::with_capacity(1 << 20, &file),
            &path,
            |record: Record<LogValue>, _| loader.apply(record),
            |_| {},
        )?;
        let map = loader.finish(&file).map_err(|source| WalError::Io {
            context: "cannot read",
            path,
            source,
        })?;
        Ok((Snapshot::of(map), scan))
    }

    fn of(map: Map) -> Snapshot {
        Snapshot { map: Arc::new(map) }
    }

    /// The loaded map, deadlines and all, for tools that compare states.
    pub fn map(&self) -> &Map {
        &self.map
    }
}

impl Storage for Snapshot {
    async fn get(&self, key: &str) -> Result<Box<str>, StorageError> {
        super::get(&self.map, key, now_ms())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<Key>, StorageError> {
        Ok(super::list(&self.map, prefix, now_ms()))
    }

    async fn stats(&self) -> Result<Stats, StorageError> {
        Ok(self.map.stats(now_ms()))
    }

    async fn execute(&self, commands: Vec<Command>) -> Result<Vec<Outcome>, StorageError> {
        if commands.iter().any(Command::writes) {
            return Err(StorageError::Rejected(
                "a snapshot of a data directory is read-only".into(),
            ));
        }
        Ok(super::read_only(&self.map, now_ms(), &commands))
    }

    async fn shutdown(&self) -> Result<(), StorageError> {
        Ok(())
    }
}
