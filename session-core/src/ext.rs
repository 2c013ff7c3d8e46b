//! Conveniences built once from the primitives, for every store.

use async_trait::async_trait;
use futures::stream::{self, BoxStream, StreamExt as _};

use crate::data::SessionData;
use crate::error::{Error, Result};
use crate::id::SessionId;
use crate::session::{ScanCursor, Session, SessionRecord, WriteOptions};
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
#[async_trait]
pub trait SessionStoreExt: SessionStore {
    /// Stores `data` under a freshly minted id with the default lifetime; never overwrites.
    async fn create(&self, data: SessionData) -> Result<Session> {
        self.create_with(data, WriteOptions::default()).await
    }

    /// [`create`](Self::create) with options (a per-session idle timeout).
    async fn create_with(&self, data: SessionData, options: WriteOptions) -> Result<Session> {
        loop {
            let id = SessionId::generate();
            // A collision of 256-bit random ids does not happen in practice; looping keeps
            // "never overwrites" true even if the generator were broken.
            if let Some(session) = self.insert(&id, data.clone(), options).await? {
                return Ok(session);
            }
        }
    }

    /// The existing service's `get(id)`: the live session, or `None`.
    async fn get(&self, id: &SessionId) -> Result<Option<Session>> {
        self.load(id).await
    }

    /// The existing service's `set(id, data)`: upsert with the default idle timeout.
    async fn set(&self, id: &SessionId, data: SessionData) -> Result<Session> {
        self.set_with(id, data, WriteOptions::default()).await
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
