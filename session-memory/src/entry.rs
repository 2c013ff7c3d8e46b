//! What the map holds per session.

use std::sync::Arc;

use session_core::{Lifetime, Session, SessionData, SessionId, Timestamp, Version};

/// One stored session. The data is shared with every `Session` loaded from it, so a load
/// clones an `Arc`, not the JSON.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub data: Arc<SessionData>,
    pub lifetime: Lifetime,
    pub version: u64,
    /// Shared with the entry it replaced when the user did not change, so a write whose
    /// user is the same allocates nothing for it.
    pub user: Option<Arc<str>>,
}

impl Entry {
    pub fn is_live(&self, now: Timestamp) -> bool {
        self.lifetime.is_live(now)
    }

    pub fn to_session(&self, id: &SessionId) -> Session {
        Session::from_parts(
            id.clone(),
            self.data.clone(),
            self.lifetime,
            Version(self.version),
        )
    }
}
