//! The reference model: a plain map with the contract's rules written out once more.

use std::collections::HashMap;
use std::time::Duration;

use session_core::{user_of, Lifetime, SessionData, SessionId, Timestamp};

/// One session as the model keeps it.
#[derive(Debug, Clone)]
pub struct ModelSession {
    pub data: SessionData,
    pub lifetime: Lifetime,
    /// Changes on every write; a store's version must change exactly when this does.
    pub version: u64,
}

/// What a store must behave like.
#[derive(Debug)]
pub struct Model {
    pub now: Timestamp,
    pub idle: Duration,
    pub absolute: Option<Duration>,
    pub user_keys: Vec<String>,
    /// Includes expired sessions not yet purged; liveness is decided by `now`.
    pub sessions: HashMap<SessionId, ModelSession>,
    next_version: u64,
}

impl Model {
    pub fn new(
        now: Timestamp,
        idle: Duration,
        absolute: Option<Duration>,
        user_keys: Vec<String>,
    ) -> Self {
        Model {
            now,
            idle,
            absolute,
            user_keys,
            sessions: HashMap::new(),
            next_version: 0,
        }
    }

    pub fn live(&self, id: &SessionId) -> Option<&ModelSession> {
        self.sessions
            .get(id)
            .filter(|s| s.lifetime.is_live(self.now))
    }

    fn version(&mut self) -> u64 {
        self.next_version += 1;
        self.next_version
    }

    /// Stores a session as a write does; returns its new version.
    fn put(&mut self, id: &SessionId, data: SessionData, lifetime: Lifetime) -> u64 {
        let version = self.version();
        self.sessions.insert(
            id.clone(),
            ModelSession {
                data,
                lifetime,
                version,
            },
        );
        version
    }

    fn fresh(&self) -> Lifetime {
        Lifetime::starting(self.now, self.idle, self.absolute)
    }

    pub fn user(&self, data: &SessionData) -> Option<String> {
        user_of(data, &self.user_keys)
    }

    /// `insert`: `Some(lifetime)` when stored.
    pub fn insert(&mut self, id: &SessionId, data: SessionData) -> Option<Lifetime> {
        if self.live(id).is_some() {
            return None;
        }
        let lifetime = self.fresh();
        self.put(id, data, lifetime);
        Some(lifetime)
    }

    /// `set`: the lifetime stored.
    pub fn set(&mut self, id: &SessionId, data: SessionData) -> Lifetime {
        let lifetime = match self.live(id) {
            Some(s) => s.lifetime.touched(self.now),
            None => self.fresh(),
        };
        self.put(id, data, lifetime);
        lifetime
    }

    /// `save` of a copy loaded at `loaded_version`.
    pub fn save(
        &mut self,
        id: &SessionId,
        loaded_version: u64,
        data: SessionData,
    ) -> Result<(Lifetime, u64), &'static str> {
        let now = self.now;
        let current = self.live(id).ok_or("NotFound")?;
        if current.version != loaded_version {
            return Err("Conflict");
        }
        let lifetime = current.lifetime.touched(now);
        let version = self.put(id, data, lifetime);
        Ok((lifetime, version))
    }

    pub fn delete(&mut self, id: &SessionId) -> bool {
        let was_live = self.live(id).is_some();
        self.sessions.remove(id);
        was_live
    }

    pub fn refresh(&mut self, id: &SessionId) -> bool {
        if self.live(id).is_none() {
            return false;
        }
        let version = self.version();
        let now = self.now;
        let s = self.sessions.get_mut(id).expect("live");
        s.lifetime = s.lifetime.touched(now);
        s.version = version;
        true
    }

    /// `rotate` to `new_id` (minted by the store): the moved session.
    pub fn rotate(&mut self, id: &SessionId, new_id: &SessionId) -> Option<ModelSession> {
        self.live(id)?;
        let mut s = self.sessions.remove(id).expect("live");
        s.lifetime = s.lifetime.touched(self.now);
        s.version = self.version();
        self.sessions.insert(new_id.clone(), s.clone());
        Some(s)
    }

    pub fn count(&self) -> u64 {
        self.sessions
            .values()
            .filter(|s| s.lifetime.is_live(self.now))
            .count() as u64
    }

    /// Live sessions of `user`: (handle, lifetime), sorted.
    pub fn list_user(&self, user: &str) -> Vec<(String, Lifetime)> {
        let mut list: Vec<_> = self
            .sessions
            .iter()
            .filter(|(_, s)| {
                s.lifetime.is_live(self.now) && self.user(&s.data).as_deref() == Some(user)
            })
            .map(|(id, s)| (id.handle().to_string(), s.lifetime))
            .collect();
        list.sort_by(|a, b| a.0.cmp(&b.0));
        list
    }

    pub fn delete_user(&mut self, user: &str) -> u64 {
        let doomed: Vec<SessionId> = self
            .sessions
            .iter()
            .filter(|(_, s)| {
                s.lifetime.is_live(self.now) && self.user(&s.data).as_deref() == Some(user)
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in &doomed {
            self.sessions.remove(id);
        }
        doomed.len() as u64
    }

    /// `cleanup`: the most a store may report removed (stores may purge on their own earlier).
    pub fn cleanup(&mut self) -> u64 {
        let now = self.now;
        let before = self.sessions.len();
        self.sessions.retain(|_, s| s.lifetime.is_live(now));
        (before - self.sessions.len()) as u64
    }

    /// `import`: "Imported", "AlreadyPresent" or "Expired".
    pub fn import(
        &mut self,
        id: &SessionId,
        data: SessionData,
        lifetime: Lifetime,
    ) -> &'static str {
        if !lifetime.is_live(self.now) {
            return "Expired";
        }
        if self.live(id).is_some() {
            return "AlreadyPresent";
        }
        self.put(id, data, lifetime);
        "Imported"
    }
}
