//! `MigratingStore`: the contract over two stores during a move.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use session_core::{
    Capabilities, CleanupReport, Error, ImportOutcome, Result, ScanCursor, ScanPage, Session,
    SessionData, SessionId, SessionRecord, SessionStore, SessionSummary, Version, WriteOptions,
};

use crate::copier::CopierState;
use crate::locks::{IdLocks, MoveGate};

/// A store that serves from `new` while moving sessions out of `old`; see the crate docs.
#[derive(Debug, Clone)]
pub struct MigratingStore {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub old: Arc<dyn SessionStore>,
    pub new: Arc<dyn SessionStore>,
    pub locks: IdLocks,
    pub gate: MoveGate,
    pub copier: tokio::sync::Mutex<CopierState>,
    /// For sessions moved and not written since: (version in `old`, version in `new`). A
    /// move is invisible to callers: loads report the old version and saves of a copy loaded
    /// from `old` still succeed. Entries go when the session is next written or deleted.
    pub moved: std::sync::Mutex<HashMap<SessionId, (Version, Version)>>,
    /// `new`'s versions are shown XOR this random value, so they cannot collide with the
    /// `old` versions shown for moved sessions (two counters may well hold the same number).
    pub salt: u64,
}

/// Outcome of moving one id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Moved {
    /// Nothing live in `old` under the id.
    NotInOld,
    /// Copied into `new` and removed from `old`.
    Copied,
    /// `new` already held it; the stale copy in `old` was removed.
    AlreadyInNew,
}

impl MigratingStore {
    /// Wraps the store sessions live in today (`old`) and the one they move to (`new`).
    pub fn new(old: Arc<dyn SessionStore>, new: Arc<dyn SessionStore>) -> Self {
        MigratingStore {
            inner: Arc::new(Inner {
                old,
                new,
                locks: IdLocks::new(),
                gate: MoveGate::new(()),
                copier: tokio::sync::Mutex::new(CopierState::default()),
                moved: Default::default(),
                salt: random_salt(),
            }),
        }
    }

    /// The store being emptied.
    pub fn old_store(&self) -> &Arc<dyn SessionStore> {
        &self.inner.old
    }

    /// The store being filled.
    pub fn new_store(&self) -> &Arc<dyn SessionStore> {
        &self.inner.new
    }
}

impl Inner {
    /// Moves `id` from `old` to `new` if it is only in `old`. The caller holds the id's lock.
    pub async fn move_id(&self, id: &SessionId) -> Result<Moved> {
        let _gate = self.gate.read().await;
        let Some(session) = self.old.load(id).await? else {
            return Ok(Moved::NotInOld);
        };
        let outcome = self
            .new
            .import(SessionRecord::from_session(&session))
            .await?;
        if outcome == ImportOutcome::Imported {
            if let Some(moved) = self.new.load(id).await? {
                self.moved_versions()
                    .insert(id.clone(), (session.version(), moved.version()));
            }
        }
        // Only once `new` holds it (or already did) may `old` let go.
        self.old.delete(id).await?;
        Ok(match outcome {
            ImportOutcome::AlreadyPresent => Moved::AlreadyInNew,
            ImportOutcome::Imported | ImportOutcome::Expired => Moved::Copied,
        })
    }

    fn moved_versions(&self) -> std::sync::MutexGuard<'_, HashMap<SessionId, (Version, Version)>> {
        self.moved
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A session read from `new`, as callers see it: with the version it had in `old` if it
    /// was moved and not written since, else with `new`'s version salted.
    pub fn expose(&self, session: Session) -> Session {
        let shown = match self.moved_versions().get(session.id()) {
            Some(&(before, after)) if after == session.version() => before,
            _ => Version(session.version().0 ^ self.salt),
        };
        with_version(session, shown)
    }

    /// The inverse of [`expose`](Self::expose), for a session handed back to `new`.
    fn internal(&self, session: Session) -> Session {
        let stored = match self.moved_versions().get(session.id()) {
            Some(&(before, after)) if before == session.version() => after,
            _ => Version(session.version().0 ^ self.salt),
        };
        with_version(session, stored)
    }

    fn written(&self, id: &SessionId) {
        self.moved_versions().remove(id);
    }

    /// Makes `new` authoritative for `id` before a write to it. The caller holds the lock.
    async fn settle(&self, id: &SessionId) -> Result<()> {
        if !self.new.exists(id).await? && self.move_id(id).await? == Moved::NotInOld {
            // Drop an expired leftover in `old`, so it is not counted as purged later
            // after `new` took the id over.
            self.old.delete(id).await?;
        }
        Ok(())
    }

    /// Whether a live session is under `id` in either store. The caller holds the lock.
    async fn taken(&self, id: &SessionId) -> Result<bool> {
        Ok(self.new.exists(id).await? || self.old.exists(id).await?)
    }
}

fn with_version(session: Session, version: Version) -> Session {
    let id = session.id().clone();
    let lifetime = *session.lifetime();
    Session::from_parts(id, session.shared_data().clone(), lifetime, version)
}

fn random_salt() -> u64 {
    use std::hash::BuildHasher;
    std::collections::hash_map::RandomState::new().hash_one(SessionId::generate()) | 1
}

#[async_trait]
impl SessionStore for MigratingStore {
    fn backend(&self) -> &'static str {
        "migrating"
    }

    fn capabilities(&self) -> Capabilities {
        let (old, new) = (self.inner.old.capabilities(), self.inner.new.capabilities());
        Capabilities {
            keeps_tokens: old.keeps_tokens && new.keeps_tokens,
        }
    }

    async fn load(&self, id: &SessionId) -> Result<Option<Session>> {
        let inner = &*self.inner;
        if let Some(found) = inner.new.load(id).await? {
            return Ok(Some(inner.expose(found)));
        }
        let _id = inner.locks.lock(id).await;
        // Another request may have moved it while this one waited for the lock.
        inner.move_id(id).await?;
        Ok(inner.new.load(id).await?.map(|s| inner.expose(s)))
    }

    async fn insert(
        &self,
        id: &SessionId,
        data: SessionData,
        options: WriteOptions,
    ) -> Result<Option<Session>> {
        let _id = self.inner.locks.lock(id).await;
        // Refusing needs no move: a live session in either store keeps the id.
        if self.inner.old.exists(id).await? {
            return Ok(None);
        }
        self.inner.old.delete(id).await?; // an expired leftover, see `settle`
        let stored = self.inner.new.insert(id, data, options).await?;
        Ok(stored.map(|s| self.inner.expose(s)))
    }

    async fn set_with(
        &self,
        id: &SessionId,
        data: SessionData,
        options: WriteOptions,
    ) -> Result<Session> {
        let _id = self.inner.locks.lock(id).await;
        self.inner.settle(id).await?;
        self.inner.written(id);
        let stored = self.inner.new.set_with(id, data, options).await?;
        Ok(self.inner.expose(stored))
    }

    async fn save(&self, session: Session) -> Result<Session> {
        let inner = &*self.inner;
        let id = session.id().clone();
        let _id = inner.locks.lock(&id).await;
        inner.settle(&id).await?;
        let saved = inner
            .new
            .save(inner.internal(session))
            .await
            .map(|s| inner.expose(s));
        if saved.is_ok() {
            inner.written(&id);
        }
        saved
    }

    async fn delete(&self, id: &SessionId) -> Result<bool> {
        let _id = self.inner.locks.lock(id).await;
        self.inner.written(id);
        let in_new = self.inner.new.delete(id).await?;
        let in_old = self.inner.old.delete(id).await?;
        Ok(in_new || in_old)
    }

    async fn exists(&self, id: &SessionId) -> Result<bool> {
        if self.inner.new.exists(id).await? {
            return Ok(true);
        }
        let _id = self.inner.locks.lock(id).await;
        self.inner.taken(id).await
    }

    async fn refresh(&self, id: &SessionId) -> Result<bool> {
        let _id = self.inner.locks.lock(id).await;
        self.inner.settle(id).await?;
        self.inner.written(id);
        self.inner.new.refresh(id).await
    }

    async fn rotate(&self, id: &SessionId) -> Result<Option<Session>> {
        let _id = self.inner.locks.lock(id).await;
        self.inner.settle(id).await?;
        self.inner.written(id);
        let rotated = self.inner.new.rotate(id).await?;
        Ok(rotated.map(|s| self.inner.expose(s)))
    }

    async fn count(&self) -> Result<u64> {
        let _no_moves = self.inner.gate.write().await;
        Ok(self.inner.new.count().await? + self.inner.old.count().await?)
    }

    async fn list_user(&self, user: &str) -> Result<Vec<SessionSummary>> {
        let _no_moves = self.inner.gate.write().await;
        let mut seen: HashMap<_, _> = HashMap::new();
        for s in self.inner.old.list_user(user).await? {
            seen.insert(s.handle.clone(), s);
        }
        // `new` wins for a stale copy left in `old` by an interrupted move.
        for s in self.inner.new.list_user(user).await? {
            seen.insert(s.handle.clone(), s);
        }
        Ok(seen.into_values().collect())
    }

    async fn delete_user(&self, user: &str) -> Result<u64> {
        let _no_moves = self.inner.gate.write().await;
        let in_new = self.inner.new.list_user(user).await?;
        let in_old = self.inner.old.list_user(user).await?;
        let both = in_old
            .iter()
            .filter(|o| in_new.iter().any(|n| n.handle == o.handle))
            .count();
        let removed =
            self.inner.new.delete_user(user).await? + self.inner.old.delete_user(user).await?;
        Ok(removed - both as u64)
    }

    async fn cleanup(&self) -> Result<CleanupReport> {
        let new = self.inner.new.cleanup().await?;
        let old = self.inner.old.cleanup().await?;
        Ok(CleanupReport {
            removed: new.removed + old.removed,
            repaired: new.repaired + old.repaired,
        })
    }

    async fn scan(&self, cursor: Option<ScanCursor>, limit: usize) -> Result<ScanPage> {
        // `old` first, then `new`: a session moved meanwhile is seen twice, never missed.
        let text = cursor.as_ref().map(|c| c.0.as_str());
        let (in_old, rest) = match text {
            None => (true, ""),
            Some(t) => match (t.strip_prefix("o:"), t.strip_prefix("n:")) {
                (Some(rest), _) => (true, rest),
                (_, Some(rest)) => (false, rest),
                _ => {
                    return Err(Error::InvalidData {
                        reason: "not a migrating-store cursor".into(),
                    })
                }
            },
        };
        let inner_cursor = (!rest.is_empty()).then(|| ScanCursor(rest.to_owned()));
        let store = if in_old {
            &self.inner.old
        } else {
            &self.inner.new
        };
        let page = store.scan(inner_cursor, limit).await?;
        let next = match (page.next, in_old) {
            (Some(c), true) => Some(ScanCursor(format!("o:{}", c.0))),
            (Some(c), false) => Some(ScanCursor(format!("n:{}", c.0))),
            (None, true) => Some(ScanCursor("n:".into())),
            (None, false) => None,
        };
        Ok(ScanPage {
            sessions: page.sessions,
            next,
        })
    }

    async fn import(&self, record: SessionRecord) -> Result<ImportOutcome> {
        if let Some(id) = record.id.clone() {
            let _id = self.inner.locks.lock(&id).await;
            // `new` judges expiry by its clock and presence after the move.
            self.inner.settle(&id).await?;
            let outcome = self.inner.new.import(record).await?;
            if outcome == ImportOutcome::Imported {
                self.inner.written(&id);
            }
            return Ok(outcome);
        }
        self.inner.new.import(record).await
    }
}
