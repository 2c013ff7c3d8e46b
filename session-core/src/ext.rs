//! Conveniences built once from the primitives, for every store.

use std::sync::Arc;

use async_trait::async_trait;
use futures::future::BoxFuture;
use futures::stream::{self, BoxStream, StreamExt as _};

use crate::data::SessionData;
use crate::error::{Error, Result};
use crate::id::SessionId;
use crate::session::{ImportOutcome, PutMode, ScanCursor, Session, SessionRecord, WriteOptions};
use crate::store::SessionStore;

/// How many times [`SessionStoreExt::update`] reloads and retries after a conflict. High on
/// purpose: with N writers on one session each attempt wins about 1 time in N, and giving up
/// early would turn contention into errors. Each retry yields to the executor first.
pub const DEFAULT_UPDATE_ATTEMPTS: usize = 1000;

/// Page size [`SessionStoreExt::sessions`] asks for.
pub const DEFAULT_SCAN_PAGE: usize = 500;

/// Conveniences over any [`SessionStore`], including `dyn SessionStore`.
///
/// # Behavior
/// - `create_mints_fresh_ids`: `create` returns a session under an id no live session had.
/// - `update_applies_change`: the closure's change is saved; the new session is returned.
/// - `update_missing_is_none`: an unknown or expired id gives `None`; nothing is created.
/// - `concurrent_updates_keep_every_change`: N tasks each adding a distinct key through
///   `update` leave all N keys (conflicts are retried, never overwritten).
/// - `concurrent_creates_are_distinct`: N concurrent `create`s give N distinct ids.
/// - `update_racing_delete_stays_deleted`: after the delete returns, no update brings the
///   session back.
/// - `rotate_racing_update_loses_nothing`: an update that reports success while a rotation
///   runs is visible under the new id; the old id is dead.
/// - `import_keeps_lifetime`: an imported record loads with its data, `created_at`, idle
///   timeout, idle expiry and absolute expiry.
/// - `import_never_overwrites`: a live session under the id gives `AlreadyPresent` and is
///   left as it was.
/// - `import_of_expired_record_is_skipped`: gives `Expired` and writes nothing.
/// - `import_without_token_is_unsupported`: a record with only a handle (its source hashes ids)
///   gives [`Error::Unsupported`] and writes nothing.
#[async_trait]
pub trait SessionStoreExt: SessionStore {
    /// Stores `data` under a freshly minted id with the default lifetime; never overwrites.
    async fn create(&self, data: SessionData) -> Result<Session> {
        self.create_with(data, WriteOptions::default()).await
    }

    /// [`create`](Self::create) with options (a per-session idle timeout).
    async fn create_with(&self, data: SessionData, options: WriteOptions) -> Result<Session> {
        let data = Arc::new(data);
        loop {
            let id = SessionId::generate();
            // A collision of 256-bit random ids does not happen in practice; looping keeps
            // "never overwrites" true even if the generator were broken.
            match self.put(&id, data.clone(), PutMode::Create, options).await {
                Err(Error::AlreadyExists) => continue,
                other => return other,
            }
        }
    }

    /// The existing service's `get(id)`: the live session, or `None`.
    async fn get(&self, id: &SessionId) -> Result<Option<Session>> {
        self.load(id).await
    }

    /// The existing service's `set(id, data)`: a [`PutMode::Upsert`] with the default
    /// options. (It hands back `put`'s own future: one allocation per call, not two.)
    fn set<'a>(&'a self, id: &'a SessionId, data: SessionData) -> BoxFuture<'a, Result<Session>> {
        self.put(id, Arc::new(data), PutMode::Upsert, WriteOptions::default())
    }

    /// Writes back a loaded session whose data the caller changed, if nobody wrote it since:
    /// a [`PutMode::IfVersion`] at the version it was loaded with. [`Error::Conflict`] if it
    /// was written meanwhile, [`Error::NotFound`] if it is gone (never brought back).
    async fn save(&self, session: Session) -> Result<Session> {
        let mode = PutMode::IfVersion(session.version());
        let id = session.id().clone();
        self.put(
            &id,
            session.shared_data().clone(),
            mode,
            WriteOptions::default(),
        )
        .await
    }

    /// Writes a record taken from another store, keeping its lifetime (a
    /// [`PutMode::Create`] with [`WriteOptions::lifetime`]): for migration. Never overwrites a
    /// live session. A record without a token ([`Capabilities::keeps_tokens`](crate::Capabilities)
    /// false at its source) gives [`Error::Unsupported`].
    async fn import(&self, record: SessionRecord) -> Result<ImportOutcome> {
        let Some(id) = record.id else {
            return Err(Error::Unsupported {
                backend: self.backend(),
                operation: "import without a token",
            });
        };
        let options = WriteOptions::new().with_lifetime(record.lifetime);
        match self
            .put(&id, Arc::new(record.data), PutMode::Create, options)
            .await
        {
            Ok(_) => Ok(ImportOutcome::Imported),
            Err(Error::AlreadyExists) => Ok(ImportOutcome::AlreadyPresent),
            Err(Error::NotFound) => Ok(ImportOutcome::Expired),
            Err(other) => Err(other),
        }
    }

    /// Load, change, save; on [`Error::Conflict`] load again and re-apply `change`, up to
    /// [`DEFAULT_UPDATE_ATTEMPTS`] times. Returns `None` if the session is missing, expired
    /// or deleted meanwhile (it is never recreated).
    async fn update<F>(&self, id: &SessionId, change: F) -> Result<Option<Session>>
    where
        F: FnMut(&mut SessionData) + Send,
    {
        self.update_with_attempts(id, DEFAULT_UPDATE_ATTEMPTS, change)
            .await
    }

    /// [`update`](Self::update) with an explicit attempt limit; after the last conflict the
    /// error is [`Error::Conflict`].
    async fn update_with_attempts<F>(
        &self,
        id: &SessionId,
        attempts: usize,
        mut change: F,
    ) -> Result<Option<Session>>
    where
        F: FnMut(&mut SessionData) + Send,
    {
        for attempt in 0..attempts.max(1) {
            if attempt > 0 {
                // Let the writer that won run on before competing again.
                yield_now().await;
            }
            let Some(mut session) = self.load(id).await? else {
                return Ok(None);
            };
            change(session.data_mut());
            match self.save(session).await {
                Ok(saved) => return Ok(Some(saved)),
                Err(Error::Conflict) => continue,
                Err(Error::NotFound) => return Ok(None),
                Err(other) => return Err(other),
            }
        }
        Err(Error::Conflict)
    }

    /// Every live session as a stream, fetched a page at a time (see
    /// [`SessionStore::scan`]): for migration, analytics and counting by user.
    fn sessions(&self, page_size: usize) -> BoxStream<'_, Result<SessionRecord>>
    where
        Self: Sized,
    {
        sessions_of(self, page_size)
    }
}

impl<S: SessionStore + ?Sized> SessionStoreExt for S {}

/// Returns `Pending` once, after asking to be woken: a yield that needs no particular runtime.
async fn yield_now() {
    let mut yielded = false;
    futures::future::poll_fn(|cx| {
        if yielded {
            std::task::Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    })
    .await
}

/// [`SessionStoreExt::sessions`] for `dyn SessionStore`.
pub fn sessions_of<S: SessionStore + ?Sized>(
    store: &S,
    page_size: usize,
) -> BoxStream<'_, Result<SessionRecord>> {
    enum State {
        Start,
        At(ScanCursor),
        Done,
    }
    stream::unfold(State::Start, move |state| async move {
        let cursor = match state {
            State::Start => None,
            State::At(c) => Some(c),
            State::Done => return None,
        };
        match store.scan(cursor, page_size.max(1)).await {
            Ok(page) => {
                let next = page.next.map_or(State::Done, State::At);
                Some((
                    stream::iter(page.sessions.into_iter().map(Ok)).boxed(),
                    next,
                ))
            }
            Err(e) => Some((stream::iter([Err(e)]).boxed(), State::Done)),
        }
    })
    .flatten()
    .boxed()
}
