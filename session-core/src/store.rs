//! The `SessionStore` trait: the primitives every backend implements.
//!
//! Each method's `# Behavior` list is the specification; every bullet names the
//! `conformance-tests` case that checks it on every backend.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use crate::data::SessionData;
use crate::error::Result;
use crate::id::SessionId;
use crate::session::{
    CleanupReport, PutMode, ScanCursor, ScanPage, Session, SessionSummary, WriteOptions,
};

/// Who a backend is and what it can do beyond the contract every store meets.
///
/// ```
/// use session_core::Capabilities;
///
/// let caps = Capabilities::new("mine").with_keeps_tokens(false);
/// assert_eq!((caps.backend, caps.keeps_tokens), ("mine", false));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capabilities {
    /// The backend's name for logs and errors (`"memory"`, `"redis"`, …).
    pub backend: &'static str,
    /// Iteration yields tokens ([`SessionRecord::id`](crate::SessionRecord) is `Some`). False
    /// for stores that hash ids at rest: they can list, revoke and migrate by handle, but
    /// cannot give tokens back.
    pub keeps_tokens: bool,
}

impl Capabilities {
    /// A backend named `backend` that keeps tokens.
    pub fn new(backend: &'static str) -> Self {
        Capabilities {
            backend,
            keeps_tokens: true,
        }
    }

    /// Sets [`Capabilities::keeps_tokens`].
    pub fn with_keeps_tokens(mut self, keeps_tokens: bool) -> Self {
        self.keeps_tokens = keeps_tokens;
        self
    }
}

/// A session store: the primitive operations every backend implements natively and atomically.
///
/// Object safe: services hold an `Arc<dyn SessionStore>`. Conveniences built from these
/// primitives (`create`, `get`, `set`, `save`, `update` with retry, `import`, streaming
/// iteration) live once, in [`SessionStoreExt`](crate::SessionStoreExt), implemented for every
/// store. A backend implements ten methods; `backend`, `exists` and `count` have defaults
/// built from them, which a backend overrides when it can do better.
///
/// Every write of data is one [`put`](SessionStore::put), whose [`PutMode`] states its
/// precondition, checked atomically with the write.
///
/// A session is live while `now < expires_at` (see [`Lifetime`](crate::Lifetime)); an expired
/// session behaves as absent in every operation, whether or not it has been purged yet. Its
/// idle expiry is never later than its absolute expiry ([`Lifetime::capped`](crate::Lifetime::capped)).
/// `now` is the store's [`Clock`](crate::Clock), except where a backend's server owns
/// expiry: Redis backends let the key's TTL, on Redis's clock, decide (as the existing service
/// does), and stamp times with the store's clock.
///
/// # Behavior shared by every write
/// - `oversized_write_is_rejected`: data whose compact JSON exceeds `max_session_bytes` fails
///   with [`Error::TooLarge`](crate::Error::TooLarge) and nothing is written.
/// - `reserved_key_is_rejected`: data holding [`RESERVED_KEY`](crate::RESERVED_KEY) fails with
///   [`Error::InvalidData`](crate::Error::InvalidData) and nothing is written.
///
/// ```
/// use std::sync::Arc;
/// use serde_json::json;
/// use session_core::{PutMode, SessionStore, SessionStoreExt, WriteOptions};
/// # async fn demo(store: Arc<dyn SessionStore>) -> session_core::Result<()> {
/// let data = json!({"user": {"sub": "u-1", "username": "aaron"}, "csrf_token": "t"});
/// let session = store.create(data.as_object().unwrap().clone()).await?;
/// let id = session.id().clone();
///
/// // Two requests changing different keys both keep their change.
/// store.update(&id, |data| { data.insert("theme".into(), json!("dark")); }).await?;
/// assert_eq!(store.get(&id).await?.unwrap().data()["theme"], "dark");
///
/// // A framework's "save what the request changed": replace only a live session.
/// let changed = Arc::new(store.get(&id).await?.unwrap().into_data());
/// store.put(&id, changed, PutMode::IfLive, WriteOptions::new()).await?;
///
/// // Login / privilege change: same data, fresh id, old id dead.
/// let rotated = store.rotate(&id).await?.unwrap();
/// assert!(!store.exists(&id).await?);
///
/// // "Log out everywhere".
/// assert_eq!(store.delete_user("u-1").await?, 1);
/// assert!(!store.exists(rotated.id()).await?);
/// # Ok(()) }
/// ```
#[async_trait]
pub trait SessionStore: Send + Sync + fmt::Debug {
    /// The backend's name and what it can do beyond the contract.
    fn capabilities(&self) -> Capabilities;

    /// The backend's name for logs and errors: [`Capabilities::backend`].
    fn backend(&self) -> &'static str {
        self.capabilities().backend
    }

    /// Loads a live session with the version it has now.
    ///
    /// # Behavior
    /// - `load_missing_is_none`: an id never stored gives `None`.
    /// - `load_returns_what_was_stored`: the data as written, the lifetime as the write set it.
    /// - `load_expired_is_none`: once `now >= expires_at` the session is `None` (the expiry
    ///   instant itself is already expired).
    /// - `load_does_not_extend`: loading never moves the idle expiry.
    async fn load(&self, id: &SessionId) -> Result<Option<Session>>;

    /// Writes `data` under `id` if `mode`'s precondition holds, atomically with the check, and
    /// returns the session as stored (with its new version). The lifetime stored is
    /// [`WriteOptions::lifetime_at`]: a given lifetime as it is; over a live session its
    /// creation and absolute expiry kept and the idle expiry slid to `now + idle timeout`;
    /// otherwise a fresh one.
    ///
    /// When several things are wrong, the first in this order is reported: the data
    /// ([`Error::TooLarge`](crate::Error::TooLarge), [`Error::InvalidData`](crate::Error::InvalidData)),
    /// a given lifetime already over ([`Error::NotFound`](crate::Error::NotFound)), then the
    /// mode's precondition.
    ///
    /// # Behavior
    /// - `put_create_stores_new_session`: [`PutMode::Create`] of a fresh id stores it with
    ///   `created_at = now` and the default (or given) idle timeout and absolute lifetime.
    /// - `put_create_never_overwrites_live_session`: [`PutMode::Create`] over a live session
    ///   fails with [`Error::AlreadyExists`](crate::Error::AlreadyExists) and leaves it as it
    ///   was.
    /// - `put_create_over_expired_session_starts_fresh`: an expired session under the id counts
    ///   as absent; the new session gets a new `created_at`.
    /// - `put_upsert_then_load`: [`PutMode::Upsert`] stores whether or not a session exists,
    ///   and the session loads back with that data.
    /// - `put_upsert_replaces_data_and_slides_idle_expiry`: over a live session the data is
    ///   replaced and the idle expiry moves to `now + idle_timeout`.
    /// - `put_upsert_keeps_creation_and_absolute_expiry`: over a live session `created_at` and
    ///   the absolute expiry are kept (nothing extends the absolute lifetime).
    /// - `put_upsert_over_expired_session_starts_fresh`: an expired session counts as absent.
    /// - `put_with_idle_timeout`: [`WriteOptions::idle_timeout`] sets this session's timeout,
    ///   on a new session and over a live one.
    /// - `put_if_live_replaces_live_session`: [`PutMode::IfLive`] replaces a live session's
    ///   data whatever its version, keeping `created_at` and the absolute expiry.
    /// - `put_if_live_does_not_resurrect`: [`PutMode::IfLive`] on an unknown, deleted, rotated
    ///   away or expired id fails with [`Error::NotFound`](crate::Error::NotFound) and the
    ///   session stays absent (a logout sticks).
    /// - `put_if_version_persists_changes`: [`PutMode::IfVersion`] with the loaded version
    ///   stores the new data; the idle expiry slides; the absolute expiry and `created_at`
    ///   are kept.
    /// - `put_if_version_returns_the_new_version`: putting again with the returned version
    ///   succeeds.
    /// - `put_if_version_of_stale_session_conflicts`: if the session was written after it was
    ///   loaded (by a put, `rotate` or another writer), the put fails with
    ///   [`Error::Conflict`](crate::Error::Conflict) and writes nothing.
    /// - `put_if_version_does_not_resurrect`: if the session was deleted, rotated away or
    ///   expired after it was loaded, the put fails with
    ///   [`Error::NotFound`](crate::Error::NotFound) and the session stays absent.
    /// - `put_with_lifetime_keeps_it`: [`WriteOptions::lifetime`] is stored exactly (its idle
    ///   expiry capped at its absolute expiry): the session loads with that `created_at`, idle
    ///   timeout, idle expiry and absolute expiry.
    /// - `put_with_expired_lifetime_writes_nothing`: a given lifetime already over by the
    ///   store's clock fails with [`Error::NotFound`](crate::Error::NotFound) and changes
    ///   nothing.
    async fn put(
        &self,
        id: &SessionId,
        data: Arc<SessionData>,
        mode: PutMode,
        options: WriteOptions,
    ) -> Result<Session>;

    /// Deletes a session. Returns whether a live session was removed.
    ///
    /// # Behavior
    /// - `delete_removes_session`: `true`, and the session is gone.
    /// - `delete_missing_is_false`: an unknown, already deleted or expired id gives `false`.
    async fn delete(&self, id: &SessionId) -> Result<bool>;

    /// Whether a live session exists under `id`.
    ///
    /// # Behavior
    /// - `exists_follows_liveness`: `true` after a write, `false` after delete or expiry.
    async fn exists(&self, id: &SessionId) -> Result<bool> {
        Ok(self.load(id).await?.is_some())
    }

    /// Resets the idle expiry to `now + idle_timeout`. Returns whether the session was live.
    ///
    /// # Behavior
    /// - `refresh_slides_idle_expiry`: a live session's idle expiry moves; it outlives the
    ///   original expiry; data and `created_at` are unchanged.
    /// - `refresh_missing_is_false`: an unknown or expired id gives `false` and stores nothing.
    /// - `refresh_never_passes_absolute_expiry`: however often refreshed, the session dies at
    ///   its absolute expiry.
    /// - `refresh_keeps_the_version`: a refresh changes only the expiry: a session loaded
    ///   before a refresh still saves with [`PutMode::IfVersion`] with the version it loaded,
    ///   and the save slides the idle expiry as usual.
    async fn refresh(&self, id: &SessionId) -> Result<bool>;

    /// Moves a live session to a fresh id in one atomic step (against session fixation: on
    /// login and privilege changes). Returns the session under its new id.
    ///
    /// # Behavior
    /// - `rotate_moves_data_to_fresh_id`: the new id holds the same data, `created_at` and
    ///   absolute expiry, with the idle expiry slid; the old id is dead at once.
    /// - `rotate_missing_is_none`: an unknown or expired id gives `None` and creates nothing.
    /// - `rotate_keeps_user_index`: the user's listing shows the new session, not the old.
    async fn rotate(&self, id: &SessionId) -> Result<Option<Session>>;

    /// The exact number of live sessions.
    ///
    /// The default pages through [`scan`](SessionStore::scan) and counts distinct handles:
    /// exact, but it reads every session. Backends that keep an index override it.
    ///
    /// # Behavior
    /// - `count_counts_live_sessions`: creations add one, deletes and expiry subtract one,
    ///   overwrites change nothing.
    async fn count(&self) -> Result<u64> {
        let mut seen = std::collections::HashSet::new();
        let mut cursor = None;
        loop {
            let page = self.scan(cursor, crate::DEFAULT_SCAN_PAGE).await?;
            seen.extend(page.sessions.into_iter().map(|r| r.handle));
            match page.next {
                Some(next) => cursor = Some(next),
                None => return Ok(seen.len() as u64),
            }
        }
    }

    /// The live sessions of a user (see [`SessionConfig::user_keys`](crate::SessionConfig)),
    /// by handle, never by token, in no particular order.
    ///
    /// # Behavior
    /// - `list_user_finds_their_sessions`: every live session whose user key names the user,
    ///   and no other.
    /// - `list_user_follows_data_changes`: a session whose user changes moves to the new user.
    /// - `list_user_skips_dead_sessions`: deleted and expired sessions are not listed.
    async fn list_user(&self, user: &str) -> Result<Vec<SessionSummary>>;

    /// Deletes every live session of a user ("log out everywhere"); returns how many.
    ///
    /// # Behavior
    /// - `delete_user_ends_all_their_sessions`: each is gone; other users' sessions stay.
    async fn delete_user(&self, user: &str) -> Result<u64>;

    /// Purges expired sessions and repairs index entries whose session has gone.
    ///
    /// # Behavior
    /// - `cleanup_purges_only_expired`: live sessions are untouched; `removed` counts the
    ///   expired sessions this pass purged (a store may have purged some on its own before);
    ///   a second pass removes nothing.
    async fn cleanup(&self) -> Result<CleanupReport>;

    /// One page of an iteration over every live session, with data and lifetime. Start with
    /// `None`; continue with the returned cursor until it is `None`. Pages hold about `limit`
    /// sessions, so a whole store is never in memory at once.
    ///
    /// # Behavior
    /// - `scan_yields_every_live_session`: every session live during the whole iteration is
    ///   yielded (a backend may yield one twice if its storage is resized meanwhile: dedupe by
    ///   handle); expired sessions are not; tokens come back when the store keeps them.
    async fn scan(&self, cursor: Option<ScanCursor>, limit: usize) -> Result<ScanPage>;
}
