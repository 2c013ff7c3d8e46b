//! `MemoryStore`: the contract on a `DashMap`.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;
use dashmap::mapref::entry::Entry as MapEntry;
use dashmap::DashMap;
use session_core::{
    user_ref, validate_data, Capabilities, CleanupReport, Clock, Error, PutMode, Result,
    ScanCursor, ScanPage, Session, SessionConfig, SessionData, SessionId, SessionStore,
    SessionSummary, SystemClock, Timestamp, WriteOptions,
};
use tokio::sync::Notify;

use crate::entry::Entry;

/// How often the background task evicts expired sessions unless configured otherwise.
pub const DEFAULT_EVICTION_INTERVAL: Duration = Duration::from_secs(60);

/// In-process session store. Cloning it is cheap and shares the sessions.
///
/// ```
/// use session_core::{SessionStore, SessionStoreExt};
/// use session_memory::MemoryStore;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> session_core::Result<()> {
/// let store = MemoryStore::builder().capacity(10_000).build();
/// let session = store.create(Default::default()).await?;
/// assert_eq!(store.count().await?, 1);
/// assert!(store.delete(session.id()).await?);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    map: DashMap<SessionId, Entry>,
    users: DashMap<Box<str>, HashSet<SessionId>>,
    clock: Arc<dyn Clock>,
    config: SessionConfig,
    capacity: Option<usize>,
    /// Entries in `map` (live or not yet evicted), kept exact so capacity is never overshot.
    entries: AtomicUsize,
    /// One counter for every write of data (puts and rotations), so a version never repeats
    /// for any id; `refresh` writes no data and takes none.
    next_version: AtomicU64,
    shutdown: Arc<Notify>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.shutdown.notify_one();
    }
}

/// Builds a [`MemoryStore`].
#[derive(Debug)]
pub struct MemoryStoreBuilder {
    config: SessionConfig,
    clock: Arc<dyn Clock>,
    capacity: Option<usize>,
    eviction_interval: Option<Duration>,
}

impl MemoryStoreBuilder {
    /// Settings (idle timeout, absolute lifetime, size limit, user keys).
    pub fn config(mut self, config: SessionConfig) -> Self {
        self.config = config;
        self
    }

    /// The clock every expiry decision reads.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// At most this many sessions; `create` beyond it fails with [`Error::CapacityExceeded`].
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = Some(capacity);
        self
    }

    /// How often the background task evicts expired sessions; `None` disables the task
    /// (eviction still happens on access and in `cleanup`).
    pub fn eviction_interval(mut self, interval: Option<Duration>) -> Self {
        self.eviction_interval = interval;
        self
    }

    /// Builds the store. The background eviction task starts only when called inside a Tokio
    /// runtime.
    pub fn build(self) -> MemoryStore {
        let inner = Arc::new(Inner {
            map: DashMap::new(),
            users: DashMap::new(),
            clock: self.clock,
            config: self.config,
            capacity: self.capacity,
            entries: AtomicUsize::new(0),
            next_version: AtomicU64::new(1),
            shutdown: Arc::new(Notify::new()),
        });
        if let (Some(every), Ok(runtime)) = (
            self.eviction_interval,
            tokio::runtime::Handle::try_current(),
        ) {
            runtime.spawn(evict_periodically(
                Arc::downgrade(&inner),
                inner.shutdown.clone(),
                every,
            ));
        }
        MemoryStore { inner }
    }
}

/// Holds only a `Weak`, so the task never keeps the store alive; `Inner::drop` wakes it.
async fn evict_periodically(inner: Weak<Inner>, shutdown: Arc<Notify>, every: Duration) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.notified() => return,
        }
        match inner.upgrade() {
            Some(inner) => {
                inner.purge_expired();
            }
            None => return,
        }
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// A store with the default settings and the system clock.
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// A store configured from `SESSION_TTL`, `SESSION_ABSOLUTE_TTL`, … (see
    /// [`SessionConfig`]) and `SESSION_MEMORY_CAPACITY` (optional).
    pub fn from_env() -> Result<Self> {
        let lookup = |name: &str| std::env::var(name).ok();
        let mut builder = Self::builder().config(SessionConfig::from_lookup(lookup)?);
        if let Some(cap) = session_core::parse_var::<usize>(&lookup, "SESSION_MEMORY_CAPACITY")? {
            builder = builder.capacity(cap);
        }
        Ok(builder.build())
    }

    /// A builder with the defaults: [`SessionConfig::default`], [`SystemClock`], no capacity
    /// limit, eviction every [`DEFAULT_EVICTION_INTERVAL`].
    pub fn builder() -> MemoryStoreBuilder {
        MemoryStoreBuilder {
            config: SessionConfig::default(),
            clock: Arc::new(SystemClock),
            capacity: None,
            eviction_interval: Some(DEFAULT_EVICTION_INTERVAL),
        }
    }

    /// The settings in force.
    pub fn config(&self) -> &SessionConfig {
        &self.inner.config
    }

    #[cfg(test)]
    pub(crate) fn shutdown_signal(&self) -> Arc<Notify> {
        self.inner.shutdown.clone()
    }
}

impl Inner {
    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    fn version(&self) -> u64 {
        self.next_version.fetch_add(1, Ordering::Relaxed)
    }

    /// The user of `data`, sharing `live`'s allocation when it is the same user.
    fn user_of(&self, data: &SessionData, live: Option<&Entry>) -> Option<Arc<str>> {
        let user = user_ref(data, &self.config.user_keys)?;
        match live.and_then(|e| e.user.as_ref()) {
            Some(same) if **same == *user => Some(same.clone()),
            _ => Some(Arc::from(&*user)),
        }
    }

    /// Takes a slot for a new entry, evicting expired sessions once before refusing.
    fn reserve_slot(&self) -> Result<()> {
        let Some(capacity) = self.capacity else {
            self.entries.fetch_add(1, Ordering::SeqCst);
            return Ok(());
        };
        let try_take = || {
            self.entries
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                    (n < capacity).then_some(n + 1)
                })
                .is_ok()
        };
        if try_take() || (self.purge_expired() > 0 && try_take()) {
            Ok(())
        } else {
            Err(Error::CapacityExceeded { capacity })
        }
    }

    fn release_slot(&self) {
        self.entries.fetch_sub(1, Ordering::SeqCst);
    }

    fn index_user(&self, id: &SessionId, old: Option<&str>, new: Option<&str>) {
        if old == new {
            return;
        }
        if let Some(old) = old {
            self.unindex_user(id, old);
        }
        if let Some(new) = new {
            self.users.entry(new.into()).or_default().insert(id.clone());
        }
    }

    fn unindex_user(&self, id: &SessionId, user: &str) {
        if let MapEntry::Occupied(mut ids) = self.users.entry(user.into()) {
            ids.get_mut().remove(id);
            if ids.get().is_empty() {
                ids.remove();
            }
        }
    }

    /// Removes `id` if `pred` holds for its entry; keeps the count and user index in step.
    ///
    /// Lock order, everywhere: a `map` shard, then a `users` shard. The user index changes
    /// while the session's shard is held, so concurrent writes to one id cannot leave it
    /// listed under a user it no longer has (or missing from the one it has).
    fn remove_if(&self, id: &SessionId, pred: impl FnOnce(&Entry) -> bool) -> Option<Entry> {
        let MapEntry::Occupied(slot) = self.map.entry(id.clone()) else {
            return None;
        };
        if !pred(slot.get()) {
            return None;
        }
        let entry = slot.get().clone();
        if let Some(user) = &entry.user {
            self.unindex_user(id, user);
        }
        slot.remove();
        self.release_slot();
        Some(entry)
    }

    /// Evicts every expired session; returns how many.
    fn purge_expired(&self) -> u64 {
        let now = self.now();
        let expired: Vec<SessionId> = self
            .map
            .iter()
            .filter(|e| !e.value().is_live(now))
            .map(|e| e.key().clone())
            .collect();
        let mut removed = 0;
        for id in expired {
            if self.remove_if(&id, |e| !e.is_live(now)).is_some() {
                removed += 1;
            }
        }
        removed
    }

    /// Writes the entry `make` builds (given the live entry it replaces) at `id` if `mode`'s
    /// precondition holds, under the shard's lock, and returns it as a session.
    fn put(
        &self,
        id: &SessionId,
        mode: PutMode,
        make: impl FnOnce(Option<&Entry>) -> Entry,
    ) -> Result<Session> {
        let now = self.now();
        // Fast path for existing ids, so a full store can still overwrite them.
        if let Some(mut current) = self.map.get_mut(id) {
            let live = current.is_live(now);
            check(mode, live.then_some(&*current))?;
            let new = make(live.then_some(&*current));
            let session = new.to_session(id);
            // Still under the shard's lock (see `remove_if`).
            self.index_user(id, current.user.as_deref(), new.user.as_deref());
            *current = new;
            return Ok(session);
        }
        check(mode, None)?;
        self.reserve_slot()?;
        match self.map.entry(id.clone()) {
            MapEntry::Vacant(slot) => {
                let new = make(None);
                let session = new.to_session(id);
                self.index_user(id, None, new.user.as_deref());
                slot.insert(new);
                Ok(session)
            }
            MapEntry::Occupied(slot) => {
                // Someone inserted it meanwhile: give the slot back and decide again.
                drop(slot);
                self.release_slot();
                self.put(id, mode, make)
            }
        }
    }
}

/// Whether a put in `mode` may write over `live` (the live entry at its id, if any).
fn check(mode: PutMode, live: Option<&Entry>) -> Result<()> {
    match (mode, live) {
        (PutMode::Create, Some(_)) => Err(Error::AlreadyExists),
        (PutMode::IfLive | PutMode::IfVersion(_), None) => Err(Error::NotFound),
        (PutMode::IfVersion(v), Some(e)) if e.version != v.0 => Err(Error::Conflict),
        _ => Ok(()),
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    fn capabilities(&self) -> Capabilities {
        Capabilities::new("memory")
    }

    async fn load(&self, id: &SessionId) -> Result<Option<Session>> {
        let inner = &*self.inner;
        let now = inner.now();
        if let Some(entry) = inner.map.get(id) {
            if entry.is_live(now) {
                return Ok(Some(entry.to_session(id)));
            }
        } else {
            return Ok(None);
        }
        inner.remove_if(id, |e| !e.is_live(now));
        Ok(None)
    }

    async fn put(
        &self,
        id: &SessionId,
        data: Arc<SessionData>,
        mode: PutMode,
        options: WriteOptions,
    ) -> Result<Session> {
        let inner = &*self.inner;
        validate_data(&data, inner.config.max_session_bytes)?;
        let now = inner.now();
        if options.lifetime.is_some_and(|l| !l.is_live(now)) {
            return Err(Error::NotFound);
        }
        let config = &inner.config;
        let stored = inner.put(id, mode, |live| {
            let lifetime = options.lifetime_at(
                now,
                live.map(|e| &e.lifetime),
                config.idle_timeout,
                config.absolute_lifetime,
            );
            Entry {
                user: inner.user_of(&data, live),
                data,
                lifetime,
                version: inner.version(),
            }
        })?;
        Ok(stored)
    }

    async fn delete(&self, id: &SessionId) -> Result<bool> {
        let now = self.inner.now();
        Ok(self
            .inner
            .remove_if(id, |_| true)
            .is_some_and(|e| e.is_live(now)))
    }

    async fn refresh(&self, id: &SessionId) -> Result<bool> {
        let inner = &*self.inner;
        let now = inner.now();
        match inner.map.get_mut(id) {
            Some(mut current) if current.is_live(now) => {
                // Only the expiry moves: the data, and so the version, stay as they were.
                current.lifetime = current.lifetime.touched(now);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn rotate(&self, id: &SessionId) -> Result<Option<Session>> {
        let inner = &*self.inner;
        let now = inner.now();
        let Some(old) = inner.remove_if(id, |e| e.is_live(now)) else {
            return Ok(None);
        };
        let lifetime = old.lifetime.touched(now);
        loop {
            let new_id = SessionId::generate();
            // The old entry's slot is free again, so this cannot fail for capacity unless
            // another task took it in between; then the session is reported gone.
            let stored = inner.put(&new_id, PutMode::Create, |_| Entry {
                version: inner.version(),
                lifetime,
                ..old.clone()
            });
            match stored {
                Ok(session) => return Ok(Some(session)),
                Err(Error::AlreadyExists) => continue,
                Err(e) => return Err(e),
            }
        }
    }

    async fn count(&self) -> Result<u64> {
        let now = self.inner.now();
        Ok(self
            .inner
            .map
            .iter()
            .filter(|e| e.value().is_live(now))
            .count() as u64)
    }

    async fn list_user(&self, user: &str) -> Result<Vec<SessionSummary>> {
        let inner = &*self.inner;
        let now = inner.now();
        let ids: Vec<SessionId> = match inner.users.get(user) {
            Some(ids) => ids.iter().cloned().collect(),
            None => return Ok(Vec::new()),
        };
        Ok(ids
            .into_iter()
            .filter_map(|id| {
                let entry = inner.map.get(&id)?;
                (entry.is_live(now) && entry.user.as_deref() == Some(user)).then(|| {
                    SessionSummary {
                        handle: id.handle(),
                        lifetime: entry.lifetime,
                    }
                })
            })
            .collect())
    }

    async fn delete_user(&self, user: &str) -> Result<u64> {
        let inner = &*self.inner;
        let now = inner.now();
        let ids: Vec<SessionId> = match inner.users.get(user) {
            Some(ids) => ids.iter().cloned().collect(),
            None => return Ok(0),
        };
        let mut removed = 0;
        for id in ids {
            let gone = inner.remove_if(&id, |e| e.user.as_deref() == Some(user));
            if gone.is_some_and(|e| e.is_live(now)) {
                removed += 1;
            }
        }
        Ok(removed)
    }

    async fn cleanup(&self) -> Result<CleanupReport> {
        let inner = &*self.inner;
        let removed = inner.purge_expired();
        // The index is kept in step under the map's locks; count anything that slipped.
        // Entries are checked one by one under their session's shard lock (map, then users:
        // the order every write takes), never while a `users` shard is held.
        let entries: Vec<(Box<str>, SessionId)> = inner
            .users
            .iter()
            .flat_map(|e| {
                let user = e.key().clone();
                e.value()
                    .iter()
                    .map(move |id| (user.clone(), id.clone()))
                    .collect::<Vec<_>>()
            })
            .collect();
        let mut repaired = 0;
        for (user, id) in entries {
            let session = inner.map.get(&id);
            if session.as_ref().and_then(|e| e.user.as_deref()) != Some(&*user) {
                inner.unindex_user(&id, &user);
                repaired += 1;
            }
        }
        Ok(CleanupReport { removed, repaired })
    }

    async fn scan(&self, cursor: Option<ScanCursor>, limit: usize) -> Result<ScanPage> {
        let inner = &*self.inner;
        Ok(crate::scan::page(&inner.map, inner.now(), cursor, limit))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use session_core::{ManualClock, SessionStoreExt};

    fn data(user: &str) -> SessionData {
        serde_json::json!({"user": {"sub": user}})
            .as_object()
            .unwrap()
            .clone()
    }

    #[tokio::test]
    async fn background_task_evicts_and_stops_when_dropped() {
        let clock = ManualClock::starting_now();
        let store = MemoryStore::builder()
            .clock(Arc::new(clock.clone()))
            .eviction_interval(Some(Duration::from_millis(5)))
            .build();
        store.create(data("a")).await.unwrap();
        clock.advance(Duration::from_secs(7201));
        // Wait (with a deadline) for the task, not for a fixed time.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !store.inner.map.is_empty() {
            assert!(
                std::time::Instant::now() < deadline,
                "expired session never evicted"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(store.inner.entries.load(Ordering::SeqCst), 0);

        let weak = Arc::downgrade(&store.inner);
        let signal = store.shutdown_signal();
        drop(store);
        assert!(
            weak.upgrade().is_none(),
            "the task must not keep the store alive"
        );
        drop(signal);
    }

    #[tokio::test]
    async fn capacity_refuses_new_sessions_and_evicts_nothing() {
        let clock = ManualClock::starting_now();
        let store = MemoryStore::builder()
            .clock(Arc::new(clock.clone()))
            .capacity(2)
            .build();
        let a = store.create(data("a")).await.unwrap();
        let b = store.create(data("b")).await.unwrap();
        let err = store.create(data("c")).await.unwrap_err();
        assert!(matches!(err, Error::CapacityExceeded { capacity: 2 }));
        assert!(store.exists(a.id()).await.unwrap() && store.exists(b.id()).await.unwrap());
        // Overwriting an existing session is not a new one.
        store.set(a.id(), data("a2")).await.unwrap();
        // Once a session expires its slot is reclaimed.
        clock.advance(Duration::from_secs(3600));
        store.refresh(b.id()).await.unwrap();
        clock.advance(Duration::from_secs(3601));
        store.create(data("d")).await.unwrap();
        assert_eq!(store.count().await.unwrap(), 2);
    }

    #[tokio::test]
    async fn concurrent_creates_never_exceed_capacity() {
        let store = MemoryStore::builder().capacity(50).build();
        let tasks: Vec<_> = (0..200)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move { store.create(SessionData::new()).await.is_ok() })
            })
            .collect();
        let mut ok = 0;
        for t in tasks {
            ok += usize::from(t.await.unwrap());
        }
        assert_eq!(ok, 50);
        assert_eq!(store.count().await.unwrap(), 50);
    }
}
