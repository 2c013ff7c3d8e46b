//! `MemoryStore`: the contract on a `DashMap`.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;
use dashmap::mapref::entry::Entry as MapEntry;
use dashmap::DashMap;
use session_core::{
    user_of, validate_data, Capabilities, CleanupReport, Clock, Error, ImportOutcome, Lifetime,
    Result, ScanCursor, ScanPage, Session, SessionConfig, SessionData, SessionId, SessionRecord,
    SessionStore, SessionSummary, SystemClock, Timestamp, WriteOptions,
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
pub(crate) struct Inner {
    pub(crate) map: DashMap<SessionId, Entry>,
    users: DashMap<Box<str>, HashSet<SessionId>>,
    pub(crate) clock: Arc<dyn Clock>,
    config: SessionConfig,
    capacity: Option<usize>,
    /// Entries in `map` (live or not yet evicted), kept exact so capacity is never overshot.
    entries: AtomicUsize,
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

    fn user_of(&self, data: &SessionData) -> Option<Box<str>> {
        user_of(data, &self.config.user_keys).map(String::into_boxed_str)
    }

    fn entry(&self, data: SessionData, lifetime: Lifetime) -> Entry {
        Entry {
            user: self.user_of(&data),
            data: Arc::new(data),
            lifetime,
            version: self.version(),
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
    pub(crate) fn remove_if(
        &self,
        id: &SessionId,
        pred: impl FnOnce(&Entry) -> bool,
    ) -> Option<Entry> {
        let (_, entry) = self.map.remove_if(id, |_, e| pred(e))?;
        self.release_slot();
        if let Some(user) = &entry.user {
            self.unindex_user(id, user);
        }
        Some(entry)
    }

    /// Evicts every expired session; returns how many.
    pub(crate) fn purge_expired(&self) -> u64 {
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

    /// Writes `entry` at `id` unless a live session is there and `overwrite_live` is false.
    /// Returns the entry now stored, or `None` when a live session was kept.
    fn put(
        &self,
        id: &SessionId,
        overwrite_live: bool,
        make: impl FnOnce(Option<&Entry>) -> Entry,
    ) -> Result<Option<Entry>> {
        let now = self.now();
        // Fast path for existing ids, so a full store can still overwrite them.
        if let Some(mut current) = self.map.get_mut(id) {
            let live = current.is_live(now);
            if live && !overwrite_live {
                return Ok(None);
            }
            let old_user = current.user.clone();
            let new = make(live.then_some(&*current));
            *current = new.clone();
            drop(current);
            self.index_user(id, old_user.as_deref(), new.user.as_deref());
            return Ok(Some(new));
        }
        self.reserve_slot()?;
        let inserted = match self.map.entry(id.clone()) {
            MapEntry::Vacant(slot) => {
                let new = make(None);
                slot.insert(new.clone());
                Ok(new)
            }
            MapEntry::Occupied(_) => Err(make),
        };
        // The shard lock is released here; only now touch the index or retry.
        match inserted {
            Ok(new) => {
                self.index_user(id, None, new.user.as_deref());
                Ok(Some(new))
            }
            Err(make) => {
                // Someone inserted it meanwhile: give the slot back and decide again.
                self.release_slot();
                self.put(id, overwrite_live, make)
            }
        }
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    fn backend(&self) -> &'static str {
        "memory"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities { keeps_tokens: true }
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

    async fn insert(
        &self,
        id: &SessionId,
        data: SessionData,
        options: WriteOptions,
    ) -> Result<Option<Session>> {
        let inner = &*self.inner;
        validate_data(&data, inner.config.max_session_bytes)?;
        let now = inner.now();
        let idle = options.idle_timeout.unwrap_or(inner.config.idle_timeout);
        let lifetime = Lifetime::starting(now, idle, inner.config.absolute_lifetime);
        let stored = inner.put(id, false, |_| inner.entry(data, lifetime))?;
        Ok(stored.map(|e| e.to_session(id)))
    }

    async fn set_with(
        &self,
        id: &SessionId,
        data: SessionData,
        options: WriteOptions,
    ) -> Result<Session> {
        let inner = &*self.inner;
        validate_data(&data, inner.config.max_session_bytes)?;
        let now = inner.now();
        let stored = inner.put(id, true, |current| {
            let lifetime = match current {
                Some(live) => Lifetime {
                    idle_timeout: options.idle_timeout.unwrap_or(live.lifetime.idle_timeout),
                    ..live.lifetime
                }
                .touched(now),
                None => Lifetime::starting(
                    now,
                    options.idle_timeout.unwrap_or(inner.config.idle_timeout),
                    inner.config.absolute_lifetime,
                ),
            };
            inner.entry(data, lifetime)
        })?;
        Ok(stored
            .expect("put with overwrite always stores")
            .to_session(id))
    }

    async fn save(&self, session: Session) -> Result<Session> {
        let inner = &*self.inner;
        validate_data(session.data(), inner.config.max_session_bytes)?;
        let now = inner.now();
        let id = session.id().clone();
        let mut current = match inner.map.get_mut(&id) {
            Some(current) if current.is_live(now) => current,
            _ => return Err(Error::NotFound),
        };
        if current.version != session.version().0 {
            return Err(Error::Conflict);
        }
        let old_user = current.user.clone();
        let lifetime = current.lifetime.touched(now);
        let data = session.shared_data().clone();
        *current = Entry {
            user: inner.user_of(&data),
            data,
            lifetime,
            version: inner.version(),
        };
        let stored = current.to_session(&id);
        let new_user = current.user.clone();
        drop(current);
        inner.index_user(&id, old_user.as_deref(), new_user.as_deref());
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
                current.lifetime = current.lifetime.touched(now);
                current.version = inner.version();
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
            let stored = inner.put(&new_id, false, |_| Entry {
                version: inner.version(),
                lifetime,
                ..old.clone()
            })?;
            if let Some(entry) = stored {
                return Ok(Some(entry.to_session(&new_id)));
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
        let mut repaired = 0;
        inner.users.retain(|_, ids| {
            let before = ids.len();
            ids.retain(|id| inner.map.contains_key(id));
            repaired += (before - ids.len()) as u64;
            !ids.is_empty()
        });
        Ok(CleanupReport { removed, repaired })
    }

    async fn scan(&self, cursor: Option<ScanCursor>, limit: usize) -> Result<ScanPage> {
        Ok(crate::scan::page(&self.inner, cursor, limit))
    }

    async fn import(&self, record: SessionRecord) -> Result<ImportOutcome> {
        let inner = &*self.inner;
        let Some(id) = record.id else {
            return Err(Error::Unsupported {
                backend: "memory",
                operation: "import without a token",
            });
        };
        validate_data(&record.data, inner.config.max_session_bytes)?;
        if !record.lifetime.is_live(inner.now()) {
            return Ok(ImportOutcome::Expired);
        }
        let stored = inner.put(&id, false, |_| inner.entry(record.data, record.lifetime))?;
        Ok(if stored.is_some() {
            ImportOutcome::Imported
        } else {
            ImportOutcome::AlreadyPresent
        })
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
