//! Freeing what replay replaces, off the replay's critical path.

use crate::local::map::Entry;
use crate::wal::LogValue;

/// Frees replaced values on a thread of its own, in batches.
///
/// Replay is bound by the one thread that applies records in order; freeing
/// the value a record replaces costs it a cache miss on memory another
/// thread allocated. Handing those entries to a helper thread takes that off
/// the critical path. Small logs never start the thread.
#[derive(Debug, Default)]
pub(super) struct Graveyard {
    batch: Vec<Buried>,
    helper: Option<(
        std::sync::mpsc::SyncSender<Vec<Buried>>,
        std::thread::JoinHandle<()>,
    )>,
}

/// An entry the loader no longer needs.
type Buried = Entry<LogValue>;

/// Entries handed to the helper at a time.
const GRAVEYARD_BATCH: usize = 1 << 14;

impl Graveyard {
    pub(super) fn bury(&mut self, entry: Buried) {
        self.batch.push(entry);
        if self.batch.len() < GRAVEYARD_BATCH {
            return;
        }
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(GRAVEYARD_BATCH));
        if self.helper.is_none() {
            let (sender, batches) = std::sync::mpsc::sync_channel::<Vec<Buried>>(4);
            let spawned = std::thread::Builder::new()
                .name("replay-free".into())
                .spawn(move || batches.into_iter().for_each(drop));
            // Without a thread, freeing here is merely slower.
            self.helper = spawned.ok().map(|thread| (sender, thread));
        }
        if let Some((sender, _)) = &self.helper {
            // The helper only stops when the sender is dropped.
            let _ = sender.send(batch);
        }
    }

    /// Waits until everything buried has been freed.
    pub(super) fn close(&mut self) {
        self.batch = Vec::new();
        if let Some((sender, thread)) = self.helper.take() {
            drop(sender);
            let _ = thread.join();
        }
    }
}

impl Drop for Graveyard {
    /// A shard dropped half way (an abandoned load) leaves no helper behind.
    fn drop(&mut self) {
        self.close();
    }
}
