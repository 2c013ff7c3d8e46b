//! Per-id serialisation, and a gate that keeps moves out of whole-store reads.

use std::hash::BuildHasher;

use session_core::SessionId;
use tokio::sync::{Mutex, MutexGuard, RwLock};

const STRIPES: usize = 256;

/// Striped per-id locks: two operations on one id never interleave; unrelated ids rarely
/// share a stripe.
#[derive(Debug)]
pub(crate) struct IdLocks {
    stripes: Vec<Mutex<()>>,
    hasher: std::collections::hash_map::RandomState,
}

impl IdLocks {
    pub fn new() -> Self {
        IdLocks {
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
            hasher: Default::default(),
        }
    }

    pub async fn lock(&self, id: &SessionId) -> MutexGuard<'_, ()> {
        self.stripes[(self.hasher.hash_one(id) as usize) % STRIPES]
            .lock()
            .await
    }
}

/// Moves hold it shared; `count`, `list_user` and `delete_user` hold it exclusively, so they
/// never see a session in both stores (or in neither) halfway through a move.
pub(crate) type MoveGate = RwLock<()>;
