//! `MigratingStore`: the contract over two stores during a move.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use session_core::{
    Capabilities, CleanupReport, Error, ImportOutcome, PutMode, Result, ScanCursor, ScanPage,
    Session, SessionData, SessionId, SessionStore, SessionSummary, Version, WriteOptions,
};

use crate::locks::{IdLocks, MoveGate};
use crate::progress::CopierState;

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
    /// For moved sessions: (version in `old`, version in `new` right after the move, when).
    /// A move is invisible to callers: loads report the old version while `new` still holds
    /// the moved bytes, and saves of a copy loaded from `old` still succeed.
    ///
    /// Entries are not removed when the session is written or deleted: a load that read the
    /// moved version just before must still show it after (an entry whose `new` version is no
    /// longer current matches nothing). They are dropped after [`MOVED_KEPT`]; a copy loaded
    /// before its move and saved later than that gets `Conflict`, which `update` retries.
    pub moved: std::sync::Mutex<HashMap<SessionId, MovedVersions>>,
    /// `new`'s versions are shown XOR this random value, so they cannot collide with the
    /// `old` versions shown for moved sessions (two counters may well hold the same number).
    pub salt: u64,
}

/// How long a moved session's versions are kept (see [`Inner::moved`]): far longer than a
/// request holds a loaded copy.
pub(crate) const MOVED_KEPT: Duration = Duration::from_secs(600);

/// One moved session's versions (see [`Inner::moved`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct MovedVersions {
    before: Version,
    /// `None` while the move is under way.
    after: Option<Version>,
    at: Instant,
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
        // Announce the move before `new` can show the session: a load that finds it there
        // meanwhile waits for the move (see `MigratingStore::load`) instead of showing a
        // version the caller never saw.
        let now = Instant::now();
        {
            let mut moved_versions = self.moved_versions();
            if moved_versions.len() % 1024 == 1023 {
                moved_versions.retain(|_, m| now.duration_since(m.at) < MOVED_KEPT);
            }
            let pending = MovedVersions {
                before: session.version(),
                after: None,
                at: now,
            };
            moved_versions.insert(id.clone(), pending);
        }
        let options = WriteOptions::new().with_lifetime(*session.lifetime());
        let copied = self
            .new
            .put(id, session.shared_data().clone(), PutMode::Create, options)
            .await;
        let outcome = {
            let mut moved_versions = self.moved_versions();
            match copied {
                Ok(stored) => {
                    if let Some(m) = moved_versions.get_mut(id) {
                        m.after = Some(stored.version());
                    }
                    ImportOutcome::Imported
                }
                Err(e) => {
                    moved_versions.remove(id);
                    match e {
                        Error::AlreadyExists => ImportOutcome::AlreadyPresent,
                        Error::NotFound => ImportOutcome::Expired,
                        other => return Err(other),
                    }
                }
            }
        };
        // Only once `new` holds it (or already did) may `old` let go.
        self.old.delete(id).await?;
        Ok(match outcome {
            ImportOutcome::AlreadyPresent => Moved::AlreadyInNew,
            ImportOutcome::Imported | ImportOutcome::Expired => Moved::Copied,
        })
    }

    fn moved_versions(&self) -> std::sync::MutexGuard<'_, HashMap<SessionId, MovedVersions>> {
        self.moved
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A session read from `new`, as callers see it: with the version it had in `old` if it
    /// was moved and not written since, else with `new`'s version salted. `None` while a move
    /// of its id is under way (only a caller without the id's lock can see that).
    pub fn try_expose(&self, session: Session) -> Option<Session> {
        let shown = match self.moved_versions().get(session.id()) {
            Some(m) if m.after.is_none() => return None,
            Some(m) if m.after == Some(session.version()) => m.before,
            _ => Version(session.version().0 ^ self.salt),
        };
        Some(with_version(session, shown))
    }

    /// [`try_expose`](Self::try_expose) for a caller holding the id's lock, which no move
    /// can be under way behind.
    pub fn expose(&self, session: Session) -> Session {
        let id = session.id().clone();
        let fallback = Version(session.version().0 ^ self.salt);
        let shown = session.clone();
        self.try_expose(session).unwrap_or_else(|| {
            tracing::warn!(session = %id, "move under way behind the id's lock");
            with_version(shown, fallback)
        })
    }

    /// The inverse of [`expose`](Self::expose), for a version handed back to `new`.
    fn internal(&self, id: &SessionId, shown: Version) -> Version {
        match self.moved_versions().get(id) {
            Some(MovedVersions {
                before,
                after: Some(after),
                ..
            }) if *before == shown => *after,
            _ => Version(shown.0 ^ self.salt),
        }
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
    fn capabilities(&self) -> Capabilities {
        let (old, new) = (self.inner.old.capabilities(), self.inner.new.capabilities());
        Capabilities::new("migrating").with_keeps_tokens(old.keeps_tokens && new.keeps_tokens)
    }

    async fn load(&self, id: &SessionId) -> Result<Option<Session>> {
        let inner = &*self.inner;
        if let Some(found) = inner.new.load(id).await? {
            if let Some(shown) = inner.try_expose(found) {
                return Ok(Some(shown));
            }
            // Moved into `new` this instant: the mover holds the id's lock; wait for it.
        }
        let _id = inner.locks.lock(id).await;
        // Another request may have moved it while this one waited for the lock.
        inner.move_id(id).await?;
        Ok(inner.new.load(id).await?.map(|s| inner.expose(s)))
    }

    async fn put(
        &self,
        id: &SessionId,
        data: Arc<SessionData>,
        mode: PutMode,
        options: WriteOptions,
    ) -> Result<Session> {
        let inner = &*self.inner;
        let _id = inner.locks.lock(id).await;
        // `new` becomes authoritative for the id first, so it alone decides every mode's
        // precondition (and which error wins), as a single store would.
        inner.settle(id).await?;
        // A copy loaded before its session moved carries the version it had in `old`.
        let mode = match mode {
            PutMode::IfVersion(version) => PutMode::IfVersion(inner.internal(id, version)),
            other => other,
        };
        let stored = inner.new.put(id, data, mode, options).await?;
        Ok(inner.expose(stored))
    }

    async fn delete(&self, id: &SessionId) -> Result<bool> {
        let _id = self.inner.locks.lock(id).await;
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
        self.inner.new.refresh(id).await
    }

    async fn rotate(&self, id: &SessionId) -> Result<Option<Session>> {
        let _id = self.inner.locks.lock(id).await;
        self.inner.settle(id).await?;
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
}
