//! The expiry sweeper: a thread that removes expired keys from the map in
//! the background, so memory comes back even if nobody reads them.
//!
//! Readers never need it (an expired key is invisible from its deadline on);
//! it only reclaims. It removes keys in chunks under short write locks.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::Shared;
use crate::ttl::{has_expired, now_ms};

/// How often the sweeper looks for expired keys.
const SWEEP_INTERVAL: Duration = Duration::from_millis(100);
/// Keys removed per write-lock acquisition, so readers are never held long.
const SWEEP_CHUNK: usize = 1024;

/// The sweeper thread's body, until the engine stops.
pub(super) fn sweep_loop(shared: &Shared) {
    while !shared.stop.load(Ordering::Acquire) {
        std::thread::park_timeout(SWEEP_INTERVAL);
        let now = now_ms();
        let due = shared
            .map
            .read()
            .next_deadline()
            .is_some_and(|d| has_expired(d, now));
        if !due {
            continue;
        }
        let mut swept = 0;
        loop {
            let removed = shared.map.write().sweep(now, SWEEP_CHUNK);
            swept += removed;
            if removed < SWEEP_CHUNK || shared.stop.load(Ordering::Acquire) {
                break;
            }
        }
        tracing::debug!("swept {swept} expired keys");
        crate::metrics::keys_expired(swept);
        if swept >= 4 * SWEEP_CHUNK {
            crate::alloc::give_memory_back();
        }
    }
}
