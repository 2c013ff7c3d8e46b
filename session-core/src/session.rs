//! A loaded session, its lifetime, and the record shapes used for listing and migration.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::data::SessionData;
use crate::error::{Error, Result};
use crate::id::{SessionHandle, SessionId};
use crate::time::Timestamp;

/// When a session was created and when it stops being live.
///
/// A session is live while `now < expires_at()`, the earlier of its idle expiry (slid forward
/// by `refresh` and by every write) and its optional absolute expiry (which nothing extends).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetime {
    /// When the session was first stored.
    pub created_at: Timestamp,
    /// How long the session lives without activity (`SESSION_TTL` unless set per session).
    pub idle_timeout: Duration,
    /// `last activity + idle_timeout`, or the absolute expiry if that comes first: when the
    /// session ends unless it is used again.
    pub idle_expires_at: Timestamp,
    /// `created_at + absolute lifetime`, if the store has one.
    pub absolute_expires_at: Option<Timestamp>,
}

impl Lifetime {
    /// The lifetime of a session stored at `now`.
    pub fn starting(now: Timestamp, idle_timeout: Duration, absolute: Option<Duration>) -> Self {
        Lifetime {
            created_at: now,
            idle_timeout,
            idle_expires_at: now.saturating_add(idle_timeout),
            absolute_expires_at: absolute.map(|a| now.saturating_add(a)),
        }
        .capped()
    }

    /// The same lifetime with the idle expiry no later than the absolute expiry: the form
    /// every store keeps (a Redis key has one TTL, which is the earlier of the two).
    pub fn capped(mut self) -> Self {
        if let Some(abs) = self.absolute_expires_at {
            self.idle_expires_at = self.idle_expires_at.min(abs);
        }
        self
    }

    /// The moment the session stops being live.
    pub fn expires_at(&self) -> Timestamp {
        match self.absolute_expires_at {
            Some(abs) => abs.min(self.idle_expires_at),
            None => self.idle_expires_at,
        }
    }

    /// Whether the session is live at `now`.
    pub fn is_live(&self, now: Timestamp) -> bool {
        now < self.expires_at()
    }

    /// Time to live from `now` (zero once expired): what a backend hands its server as a TTL.
    pub fn remaining(&self, now: Timestamp) -> Duration {
        self.expires_at().remaining_since(now)
    }

    /// The same lifetime with activity at `now`: the idle expiry moves to `now + idle_timeout`
    /// (never past the absolute expiry).
    pub fn touched(mut self, now: Timestamp) -> Self {
        self.idle_expires_at = now.saturating_add(self.idle_timeout);
        self.capped()
    }
}

/// Version of a stored session, for optimistic concurrency. Opaque: it changes on every
/// write (`put`, `rotate`) but not on `refresh`, which moves only the expiry; it never
/// repeats for an id (not even after the session is deleted and stored again), and is only
/// compared for equality.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Version(pub u64);

/// A session as loaded from a store: its id, data, lifetime and the version it was loaded at.
///
/// Change the data with [`Session::insert`], [`Session::remove`] or [`Session::data_mut`], then
/// hand it to [`SessionStoreExt::save`](crate::SessionStoreExt::save), which fails with
/// [`Error::Conflict`] if someone else wrote the session in between.
///
/// The data is shared copy-on-write, so loading from an in-memory store clones no JSON.
#[derive(Debug, Clone)]
pub struct Session {
    id: SessionId,
    data: Arc<SessionData>,
    lifetime: Lifetime,
    version: VersionCell,
}

/// A version known at load, or computed from the stored bytes on first use: a backend whose
/// version is a hash of its record need not hash on every read, only before a save.
#[derive(Clone)]
enum VersionCell {
    Known(Version),
    Deferred(Arc<Deferred>),
}

struct Deferred {
    bytes: Vec<u8>,
    compute: fn(&[u8]) -> Version,
    cell: OnceLock<Version>,
}

impl VersionCell {
    fn get(&self) -> Version {
        match self {
            VersionCell::Known(v) => *v,
            VersionCell::Deferred(d) => *d.cell.get_or_init(|| (d.compute)(&d.bytes)),
        }
    }
}

impl std::fmt::Debug for VersionCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The deferred bytes are the stored record: never print them.
        self.get().fmt(f)
    }
}

impl Session {
    /// Assembles a session; for store implementations.
    pub fn from_parts(
        id: SessionId,
        data: Arc<SessionData>,
        lifetime: Lifetime,
        version: Version,
    ) -> Self {
        Session {
            id,
            data,
            lifetime,
            version: VersionCell::Known(version),
        }
    }

    /// Assembles a session whose version is `compute(&stored_bytes)`, computed only if
    /// [`Session::version`] is called (for example by a save); for store implementations.
    pub fn from_parts_deferred(
        id: SessionId,
        data: Arc<SessionData>,
        lifetime: Lifetime,
        stored_bytes: Vec<u8>,
        compute: fn(&[u8]) -> Version,
    ) -> Self {
        let deferred = Deferred {
            bytes: stored_bytes,
            compute,
            cell: OnceLock::new(),
        };
        Session {
            id,
            data,
            lifetime,
            version: VersionCell::Deferred(Arc::new(deferred)),
        }
    }

    /// The session's id.
    pub fn id(&self) -> &SessionId {
        &self.id
    }

    /// The session's data.
    pub fn data(&self) -> &SessionData {
        &self.data
    }

    /// The data as shared by the store (no copy).
    pub fn shared_data(&self) -> &Arc<SessionData> {
        &self.data
    }

    /// Mutable access to the data (copies it first if the store still shares it).
    pub fn data_mut(&mut self) -> &mut SessionData {
        Arc::make_mut(&mut self.data)
    }

    /// Takes the data out.
    pub fn into_data(self) -> SessionData {
        Arc::unwrap_or_clone(self.data)
    }

    /// The lifetime as of loading.
    pub fn lifetime(&self) -> &Lifetime {
        &self.lifetime
    }

    /// The version as of loading.
    pub fn version(&self) -> Version {
        self.version.get()
    }

    /// Reads `key` as a `T`: `Ok(None)` when absent, [`Error::InvalidData`] when present with
    /// another shape.
    ///
    /// ```
    /// # use std::{sync::Arc, time::Duration};
    /// # use session_core::*;
    /// # let lifetime = Lifetime::starting(Timestamp(0), Duration::from_secs(60), None);
    /// let mut session = Session::from_parts(SessionId::generate(), Arc::default(), lifetime, Version(0));
    /// session.insert("csrf_token", "abc")?;
    /// assert_eq!(session.get::<String>("csrf_token")?.as_deref(), Some("abc"));
    /// assert_eq!(session.get::<u32>("missing")?, None);
    /// assert!(session.get::<u32>("csrf_token").is_err());
    /// # Ok::<(), session_core::Error>(())
    /// ```
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        match self.data.get(key) {
            None => Ok(None),
            Some(value) => T::deserialize(value)
                .map(Some)
                .map_err(|e| Error::InvalidData {
                    reason: format!("session key {key:?} has an unexpected shape: {e}"),
                }),
        }
    }

    /// Serializes `value` into `key`, returning the previous value.
    pub fn insert<T: Serialize>(&mut self, key: &str, value: T) -> Result<Option<Value>> {
        let value = serde_json::to_value(value).map_err(|e| Error::InvalidData {
            reason: format!("value for {key:?} cannot be serialized: {e}"),
        })?;
        Ok(self.data_mut().insert(key.to_owned(), value))
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        if !self.data.contains_key(key) {
            return None;
        }
        self.data_mut().remove(key)
    }
}

/// The precondition a [`SessionStore::put`](crate::SessionStore::put) checks, atomically
/// with its write. Each names what the caller knows and means, so no caller needs a
/// check-then-act (`exists`, then write) that a concurrent logout could slip between.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PutMode {
    /// Only if no live session has the id: a new session, never an overwrite. A live one
    /// gives [`Error::AlreadyExists`] and is left as it was.
    Create,
    /// Whether or not a live session is there: the existing service's `set(id, data)`.
    Upsert,
    /// Replace a live session whatever its version (last writer wins). A deleted, rotated
    /// away or expired one gives [`Error::NotFound`] and stays absent: a logout sticks.
    IfLive,
    /// Compare-and-set: replace the live session only if it is still at this version. A newer
    /// version gives [`Error::Conflict`]; a gone session gives [`Error::NotFound`].
    IfVersion(Version),
}

/// Options of a [`SessionStore::put`](crate::SessionStore::put). Build with
/// [`WriteOptions::new`] and the `with_…` methods (the struct may gain fields).
///
/// ```
/// use std::time::Duration;
/// use session_core::WriteOptions;
///
/// let options = WriteOptions::new().with_idle_timeout(Duration::from_secs(300));
/// assert_eq!(options.idle_timeout, Some(Duration::from_secs(300)));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WriteOptions {
    /// Idle timeout for this session. `None`: a live session keeps its own, a new one gets the
    /// store's default (`SESSION_TTL`).
    pub idle_timeout: Option<Duration>,
    /// The exact lifetime to store instead of one derived from the store's clock: for copying
    /// sessions between stores (see [`SessionStoreExt::import`](crate::SessionStoreExt::import)).
    /// Overrides `idle_timeout`. A lifetime already over by the store's clock stores nothing.
    pub lifetime: Option<Lifetime>,
}

impl WriteOptions {
    /// No options: the store's defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`WriteOptions::idle_timeout`].
    pub fn with_idle_timeout(mut self, idle_timeout: Duration) -> Self {
        self.idle_timeout = Some(idle_timeout);
        self
    }

    /// Sets [`WriteOptions::lifetime`].
    pub fn with_lifetime(mut self, lifetime: Lifetime) -> Self {
        self.lifetime = Some(lifetime);
        self
    }

    /// The lifetime a put at `now` stores, given the live session it replaces (if any) and the
    /// store's defaults: the one rule every backend applies.
    ///
    /// - a given [`lifetime`](Self::lifetime) as it is ([capped](Lifetime::capped));
    /// - over a live session: its creation and absolute expiry kept, its idle timeout unless
    ///   one is given, the idle expiry slid to `now + idle timeout` (capped);
    /// - otherwise a fresh lifetime starting at `now`.
    pub fn lifetime_at(
        &self,
        now: Timestamp,
        live: Option<&Lifetime>,
        default_idle: Duration,
        absolute: Option<Duration>,
    ) -> Lifetime {
        if let Some(given) = self.lifetime {
            return given.capped();
        }
        match live {
            Some(current) => Lifetime {
                idle_timeout: self.idle_timeout.unwrap_or(current.idle_timeout),
                ..*current
            }
            .touched(now),
            None => Lifetime::starting(now, self.idle_timeout.unwrap_or(default_idle), absolute),
        }
    }
}

/// What listing a user's sessions returns: no token, only the handle and the lifetime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSummary {
    /// The session's non-secret handle.
    pub handle: SessionHandle,
    /// Its lifetime as of listing.
    pub lifetime: Lifetime,
}

/// A whole session as iteration yields it and import takes it: for migration and analytics.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRecord {
    /// The token, when the store keeps it (stores that hash ids at rest do not).
    pub id: Option<SessionId>,
    /// The handle, always present.
    pub handle: SessionHandle,
    /// The data.
    pub data: SessionData,
    /// The lifetime, with absolute timestamps; remaining TTLs follow from the store's clock.
    pub lifetime: Lifetime,
}

impl SessionRecord {
    /// The record of a loaded session.
    pub fn from_session(session: &Session) -> Self {
        SessionRecord {
            id: Some(session.id().clone()),
            handle: session.id().handle(),
            data: session.data().clone(),
            lifetime: *session.lifetime(),
        }
    }
}

/// Result of [`SessionStoreExt::import`](crate::SessionStoreExt::import) and of bulk copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportOutcome {
    /// The record was written.
    Imported,
    /// A live session already exists under that id; it was left alone.
    AlreadyPresent,
    /// The record had expired by the target store's clock; nothing was written.
    Expired,
}

/// Result of [`SessionStore::cleanup`](crate::SessionStore::cleanup).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CleanupReport {
    /// Expired sessions removed by this pass.
    pub removed: u64,
    /// Index entries repaired or dropped because their session was gone.
    pub repaired: u64,
}

/// Where a paged iteration continues; opaque and backend-specific. It may encode a token, so
/// its `Debug` output shows nothing of it.
#[derive(Clone, PartialEq, Eq)]
pub struct ScanCursor(pub String);

impl std::fmt::Debug for ScanCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ScanCursor(..)")
    }
}

/// One page of [`SessionStore::scan`](crate::SessionStore::scan).
#[derive(Debug, Clone, Default)]
pub struct ScanPage {
    /// Live sessions in this page.
    pub sessions: Vec<SessionRecord>,
    /// Where to continue, or `None` when the iteration is complete.
    pub next: Option<ScanCursor>,
}
