//! [`ActixStore`]: `actix_session::storage::SessionStore` over any `session_core::SessionStore`.

use std::fmt;
use std::sync::Arc;

use actix_session::storage::{LoadError, SaveError, SessionKey, UpdateError};
use session_core::{Error, PutMode, SessionId, SessionStore, WriteOptions};

use crate::convert::{
    context, from_data, idle_timeout, load_error, save_error, to_data, update_error, State,
};
use crate::key::{key_of, session_id_of};

/// How many fresh ids [`save`](actix_session::storage::SessionStore::save) tries before giving
/// up. A 256-bit collision does not happen by chance; the bound keeps a broken generator from
/// spinning a request forever (it fails with an error instead).
pub const SAVE_ATTEMPTS: usize = 16;

/// An [`actix_session::storage::SessionStore`] backed by any of our stores: memory, Redis,
/// Sentinel, or a `MigratingStore` moving between them.
///
/// Cheap to clone (one `Arc`). See the [crate docs](crate) for how each actix-session
/// operation maps onto the store.
///
/// ```
/// use actix_session::{Session, SessionMiddleware};
/// use actix_web::{cookie::Key, test, web, App};
/// use session_actix::ActixStore;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # actix_web::rt::System::new().block_on(async {
/// // Any backend: `from_env()` (SESSION_BACKEND=…), or "redis://127.0.0.1:6379/0", …
/// let store = session_store::from_url("memory://").await?;
///
/// let middleware = SessionMiddleware::builder(ActixStore::new(store), Key::generate())
///     .cookie_secure(false)
///     .build();
/// let app = test::init_service(App::new().wrap(middleware).route(
///     "/visit",
///     web::get().to(|session: Session| async move {
///         let visits = session.get::<u64>("visits")?.unwrap_or(0) + 1;
///         session.insert("visits", visits)?;
///         Ok::<_, actix_web::Error>(visits.to_string())
///     }),
/// ))
/// .await;
///
/// // First visit: a new session, and its (encrypted) cookie.
/// let res = test::call_service(&app, test::TestRequest::get().uri("/visit").to_request()).await;
/// let cookie = res.response().cookies().next().expect("session cookie").into_owned();
///
/// // Second visit with the cookie: the same session, loaded from the store.
/// let req = test::TestRequest::get().uri("/visit").cookie(cookie).to_request();
/// assert_eq!(test::call_and_read_body(&app, req).await, "2");
/// # Ok(()) })
/// # }
/// ```
#[derive(Clone)]
pub struct ActixStore {
    store: Arc<dyn SessionStore>,
}

impl ActixStore {
    /// An adapter over `store`.
    pub fn new(store: Arc<dyn SessionStore>) -> Self {
        ActixStore { store }
    }

    /// The store underneath, for the operations actix-session has no word for (list a user's
    /// sessions, log out everywhere, count, migrate).
    pub fn store(&self) -> &Arc<dyn SessionStore> {
        &self.store
    }

    /// The store id a session key names (the key *is* the token), or `None` for a key that is
    /// not a well-formed [`SessionId`]. A bearer secret like the cookie itself.
    pub fn session_id(key: &SessionKey) -> Option<SessionId> {
        session_id_of(key)
    }

    /// The session key (cookie content) of the session stored under `id`.
    pub fn session_key(id: &SessionId) -> SessionKey {
        key_of(id)
    }

    fn backend(&self) -> &'static str {
        self.store.backend()
    }
}

impl fmt::Debug for ActixStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Only the backend's name: the store's own Debug may show connection details.
        f.debug_struct("ActixStore")
            .field("backend", &self.store.backend())
            .finish_non_exhaustive()
    }
}

impl actix_session::storage::SessionStore for ActixStore {
    /// The live session's state, or `None` when it is missing or expired, or when the key is
    /// not a well-formed id (then the store is not asked).
    async fn load(&self, session_key: &SessionKey) -> Result<Option<State>, LoadError> {
        let Some(id) = session_id_of(session_key) else {
            tracing::debug!("malformed session key; not looked up");
            return Ok(None);
        };
        let session = self
            .store
            .load(&id)
            .await
            .map_err(|e| load_error(self.backend(), e))?;
        Ok(session.map(|session| from_data(session.data())))
    }

    /// Stores a new session under a fresh [`SessionId`] with a [`PutMode::Create`] put (never
    /// an overwrite), idle timeout `ttl`, and returns its key. On an id collision with a live
    /// session, draws another id (at most [`SAVE_ATTEMPTS`]).
    async fn save(
        &self,
        session_state: State,
        ttl: &time::Duration,
    ) -> Result<SessionKey, SaveError> {
        let data = to_data(&session_state)
            .map_err(|e| SaveError::Serialization(context(self.backend(), "save", e)))?;
        let Some(idle) = idle_timeout(ttl) else {
            // Born expired (a TTL under a millisecond): like any expired session it would
            // load as `None`, so there is nothing to store. The key names no session.
            return Ok(key_of(&SessionId::generate()));
        };
        let options = WriteOptions::new().with_idle_timeout(idle);
        let data = Arc::new(data);
        for _ in 0..SAVE_ATTEMPTS {
            let id = SessionId::generate();
            match self
                .store
                .put(&id, data.clone(), PutMode::Create, options)
                .await
            {
                Ok(_) => return Ok(key_of(&id)),
                Err(Error::AlreadyExists) => {
                    tracing::warn!(session = %id, "fresh session id taken by a live session; new id");
                }
                Err(e) => return Err(save_error(self.backend(), e)),
            }
        }
        Err(SaveError::Other(anyhow::anyhow!(
            "{} session store: save failed: no free id after {SAVE_ATTEMPTS} attempts",
            self.backend()
        )))
    }

    /// Replaces a live session's state and sets its idle timeout to `ttl`, last writer wins,
    /// in one [`PutMode::IfLive`] put, and returns the same key. Never creates: a session that
    /// is gone (logged out, logged out everywhere, renewed away, expired) stays gone, the
    /// request's changes are dropped with a warning, and the key returned is the same dead
    /// one, so the next request starts an empty session.
    async fn update(
        &self,
        session_key: SessionKey,
        session_state: State,
        ttl: &time::Duration,
    ) -> Result<SessionKey, UpdateError> {
        let Some(id) = session_id_of(&session_key) else {
            // actix-session only updates keys its `load` found, so this is a direct caller:
            // a malformed key names no session, like a gone one.
            tracing::warn!("update with a malformed session key; dropped");
            return Ok(session_key);
        };
        let data = to_data(&session_state)
            .map_err(|e| UpdateError::Serialization(context(self.backend(), "update", e)))?;
        let Some(idle) = idle_timeout(ttl) else {
            // The TTL leaves nothing: the session ends now.
            self.store
                .delete(&id)
                .await
                .map_err(|e| update_error(self.backend(), e))?;
            return Ok(session_key);
        };
        // `IfLive`, checked atomically with the write: an upsert, or a check then a write,
        // would let a logout landing just before it be undone. Not `IfVersion`: actix-session
        // hands over the whole state with no version from its load, and expects last writer
        // wins.
        let options = WriteOptions::new().with_idle_timeout(idle);
        match self
            .store
            .put(&id, Arc::new(data), PutMode::IfLive, options)
            .await
        {
            Ok(_) => Ok(session_key),
            // Not a fresh key with the state under it: that would bring a logged-out user's
            // data (their `user`) back under a new cookie. See the crate docs.
            Err(Error::NotFound) => {
                tracing::warn!(session = %id, "update of a session that is not live; dropped");
                Ok(session_key)
            }
            Err(e) => Err(update_error(self.backend(), e)),
        }
    }

    /// Slides the live session's idle expiry: our `refresh`, which re-arms the idle timeout
    /// the session was stored with (the `ttl` of its last `save`/`update`, the same
    /// configured value `SessionMiddleware` passes here). A session that is gone stays gone;
    /// a `ttl` under a millisecond ends it.
    async fn update_ttl(
        &self,
        session_key: &SessionKey,
        ttl: &time::Duration,
    ) -> Result<(), anyhow::Error> {
        let Some(id) = session_id_of(session_key) else {
            return Ok(());
        };
        if idle_timeout(ttl).is_none() {
            self.store
                .delete(&id)
                .await
                .map_err(|e| context(self.backend(), "update_ttl", e))?;
            return Ok(());
        }
        // `false`: nothing live to extend, and refresh never creates.
        self.store
            .refresh(&id)
            .await
            .map_err(|e| context(self.backend(), "update_ttl", e))?;
        Ok(())
    }

    /// Deletes the session; deleting a missing one (or a malformed key) is not an error.
    async fn delete(&self, session_key: &SessionKey) -> Result<(), anyhow::Error> {
        let Some(id) = session_id_of(session_key) else {
            return Ok(());
        };
        self.store
            .delete(&id)
            .await
            .map_err(|e| context(self.backend(), "delete", e))?;
        Ok(())
    }
}
