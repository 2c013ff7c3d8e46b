//! [`TowerStore`]: `tower_sessions::SessionStore` over any `session_core::SessionStore`.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use session_core::{Clock, Error, PutMode, SessionId, SessionStore, SystemClock, WriteOptions};
use tower_sessions_core::session::{Id, Record};
use tower_sessions_core::session_store::{self, Result};

use crate::convert::{from_data, to_data, to_date, to_tower_error, ttl_until};
use crate::id::session_id_of;

/// How many ids [`create`](tower_sessions_core::SessionStore::create) tries before giving up.
/// A 128-bit collision does not happen by chance; the bound keeps a broken generator from
/// spinning a request forever (it fails with a backend error instead).
pub const CREATE_ATTEMPTS: usize = 16;

/// A [`tower_sessions::SessionStore`](tower_sessions_core::SessionStore) backed by any of our
/// stores: memory, Redis, Sentinel, or a `MigratingStore` moving between them.
///
/// Cheap to clone (one `Arc`). See the [crate docs](crate) for how each tower-sessions
/// operation maps onto the store.
///
/// ```
/// use axum::{body::Body, routing::get, Router};
/// use http::{header, Request};
/// use session_tower::TowerStore;
/// use tower::ServiceExt as _;
/// use tower_sessions::{Session, SessionManagerLayer};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // Any backend: `from_env()` (SESSION_BACKEND=…), or "redis://127.0.0.1:6379/0", …
/// let store = session_store::from_url("memory://").await?;
///
/// let app = Router::new()
///     .route("/visit", get(|session: Session| async move {
///         let visits: u64 = session.get("visits").await.unwrap().unwrap_or(0) + 1;
///         session.insert("visits", visits).await.unwrap();
///         visits.to_string()
///     }))
///     .layer(SessionManagerLayer::new(TowerStore::new(store)).with_secure(false));
///
/// // First visit: a new session, and its cookie.
/// let res = app.clone().oneshot(Request::get("/visit").body(Body::empty())?).await?;
/// let set_cookie = res.headers()[header::SET_COOKIE].to_str()?;
/// let cookie = set_cookie.split(';').next().unwrap().to_owned(); // "id=…"
///
/// // Second visit with the cookie: the same session, loaded from the store.
/// let req = Request::get("/visit").header(header::COOKIE, cookie);
/// let res = app.oneshot(req.body(Body::empty())?).await?;
/// let body = http_body_util::BodyExt::collect(res.into_body()).await?.to_bytes();
/// assert_eq!(&body[..], b"2");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct TowerStore {
    store: Arc<dyn SessionStore>,
}

impl TowerStore {
    /// An adapter over `store`.
    pub fn new(store: Arc<dyn SessionStore>) -> Self {
        TowerStore { store }
    }

    /// The store underneath, for the operations tower-sessions has no word for (list a
    /// user's sessions, log out everywhere, count, migrate).
    pub fn store(&self) -> &Arc<dyn SessionStore> {
        &self.store
    }

    /// The id under which the session with tower-sessions id `id` is stored (see the crate
    /// docs for the derivation). A bearer secret like the cookie itself.
    pub fn session_id(id: &Id) -> SessionId {
        session_id_of(id)
    }

    fn error(&self, op: &str, err: session_core::Error) -> session_store::Error {
        to_tower_error(self.store.backend(), op, err)
    }

    /// Write options that make the session expire at `record.expiry_date`, or `None` when
    /// that date has passed.
    ///
    /// Measured on the wall clock, not the store's: tower-sessions dates records from
    /// `OffsetDateTime::now_utc()`, so `date − wall now` is the lifetime it meant; the store
    /// then counts that TTL on its own clock (the same one in production, a manual one in
    /// tests).
    fn options_for(&self, record: &Record) -> Option<WriteOptions> {
        ttl_until(record.expiry_date, SystemClock.now())
            .map(|ttl| WriteOptions::new().with_idle_timeout(ttl))
    }
}

impl fmt::Debug for TowerStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Only the backend's name: the store's own Debug may show connection details.
        f.debug_struct("TowerStore")
            .field("backend", &self.store.backend())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl tower_sessions_core::SessionStore for TowerStore {
    /// Stores a new session; never overwrites. On an id collision with a live session, draws
    /// a new `Id` into `record` and tries again.
    async fn create(&self, record: &mut Record) -> Result<()> {
        let Some(options) = self.options_for(record) else {
            // Born expired (an `AtDateTime` in the past): like any expired session it loads as
            // `None`, so there is nothing to store.
            return Ok(());
        };
        let data = Arc::new(to_data(&record.data));
        for _ in 0..CREATE_ATTEMPTS {
            let id = session_id_of(&record.id);
            match self
                .store
                .put(&id, data.clone(), PutMode::Create, options)
                .await
            {
                Ok(_) => return Ok(()),
                Err(Error::AlreadyExists) => {
                    tracing::warn!(
                        session = %id,
                        "tower-sessions id taken by a live session; new id"
                    );
                    record.id = Id::default();
                }
                Err(e) => return Err(self.error("create", e)),
            }
        }
        Err(session_store::Error::Backend(format!(
            "{} session store: create failed: no free id after {CREATE_ATTEMPTS} attempts",
            self.store.backend()
        )))
    }

    /// Replaces a live session's data and sets its expiry to `record.expiry_date`, last writer
    /// wins, in one [`PutMode::IfLive`] put. Never creates: a session that is gone (deleted,
    /// logged out everywhere, rotated away, expired, or never issued) stays gone and the write
    /// is dropped.
    async fn save(&self, record: &Record) -> Result<()> {
        let id = session_id_of(&record.id);
        let Some(options) = self.options_for(record) else {
            // Expiry moved into the past: the session ends now.
            self.store
                .delete(&id)
                .await
                .map_err(|e| self.error("save", e))?;
            return Ok(());
        };
        // `IfLive`, checked atomically with the write: an upsert, or a check then a write,
        // would let a logout landing just before it be undone, and would adopt the client's
        // cookie id after `Session::clear` on an unloaded session (tower-sessions then saves
        // under that id). Not `IfVersion`: tower-sessions writes the whole record it holds
        // and expects last-writer-wins, so a concurrent writer is no `Conflict` here.
        let data = Arc::new(to_data(&record.data));
        match self.store.put(&id, data, PutMode::IfLive, options).await {
            Ok(_) => Ok(()),
            // tower-sessions' `save` has no "gone" outcome; the request's changes are dropped.
            Err(Error::NotFound) => {
                tracing::warn!(session = %id, "save of a session that is not live; dropped");
                Ok(())
            }
            Err(e) => Err(self.error("save", e)),
        }
    }

    /// The live session, or `None` when missing or expired.
    async fn load(&self, session_id: &Id) -> Result<Option<Record>> {
        let session = self
            .store
            .load(&session_id_of(session_id))
            .await
            .map_err(|e| self.error("load", e))?;
        Ok(session.map(|session| Record {
            id: *session_id,
            expiry_date: to_date(session.lifetime().expires_at()),
            data: from_data(session.into_data()),
        }))
    }

    /// Deletes the session; deleting a missing one is not an error.
    async fn delete(&self, session_id: &Id) -> Result<()> {
        self.store
            .delete(&session_id_of(session_id))
            .await
            .map_err(|e| self.error("delete", e))?;
        Ok(())
    }
}
