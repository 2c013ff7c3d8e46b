//! The reference model: plain maps and integers with the contract's rules written out once
//! more, independently of `session-core`'s own lifetime arithmetic and user extraction, so a
//! mistake there cannot hide in both the store and its judge.

use std::collections::HashMap;

use serde_json::Value;
use session_core::{SessionData, SessionId, Timestamp};

/// A lifetime as the model computes it, in milliseconds since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Life {
    /// When the session was first stored.
    pub created: u64,
    /// Its idle timeout.
    pub idle_ms: u64,
    /// Last activity plus the idle timeout, but never after the absolute expiry.
    pub idle_expiry: u64,
    /// Creation plus the absolute lifetime, if the store has one.
    pub absolute_expiry: Option<u64>,
}

impl Life {
    /// The lifetime of a session first stored at `now`.
    pub fn fresh(now: u64, idle_ms: u64, absolute_ms: Option<u64>) -> Self {
        Life {
            created: now,
            idle_ms,
            idle_expiry: now + idle_ms,
            absolute_expiry: absolute_ms.map(|a| now + a),
        }
        .capped()
    }

    /// The idle expiry held to the absolute expiry: when the session ends unless used again.
    pub fn capped(mut self) -> Self {
        if let Some(abs) = self.absolute_expiry {
            self.idle_expiry = self.idle_expiry.min(abs);
        }
        self
    }

    /// The first instant at which the session is no longer live.
    pub fn end(&self) -> u64 {
        match self.absolute_expiry {
            Some(abs) if abs < self.idle_expiry => abs,
            _ => self.idle_expiry,
        }
    }

    /// Live strictly before its end; the end instant itself is expired.
    pub fn live_at(&self, now: u64) -> bool {
        now < self.end()
    }

    /// Activity at `now` with this idle timeout: only the idle expiry moves.
    fn slid(self, now: u64, idle_ms: u64) -> Self {
        Life {
            idle_ms,
            idle_expiry: now + idle_ms,
            ..self
        }
        .capped()
    }
}

/// A put's precondition, with versions in the model's numbering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Only over no live session.
    Create,
    /// Always.
    Upsert,
    /// Only over a live session.
    IfLive,
    /// Only over the live session at this model version.
    IfVersion(u64),
}

/// Why a put wrote nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `Error::AlreadyExists`.
    AlreadyExists,
    /// `Error::NotFound`.
    NotFound,
    /// `Error::Conflict`.
    Conflict,
}

/// One session as the model keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    /// The data as written.
    pub data: SessionData,
    /// The lifetime the rules give it.
    pub life: Life,
    /// Unique across the model's whole run, new on every write of data (`put`, `rotate`),
    /// kept by `refresh`; a store's version must change exactly when this does (see
    /// `observe::Versions`).
    pub version: u64,
}

/// What a store must behave like.
#[derive(Debug, Clone)]
pub struct Model {
    now: u64,
    idle_ms: u64,
    absolute_ms: Option<u64>,
    user_keys: Vec<String>,
    /// Live sessions and expired ones a store may still hold (an upper bound for what
    /// `cleanup` may report removed); liveness is always decided by `now`.
    sessions: HashMap<SessionId, Stored>,
    next_version: u64,
}

impl Model {
    /// An empty store at `now` with these settings.
    pub fn new(
        now: Timestamp,
        idle_ms: u64,
        absolute_ms: Option<u64>,
        user_keys: Vec<String>,
    ) -> Self {
        Model {
            now: now.as_millis(),
            idle_ms,
            absolute_ms,
            user_keys,
            sessions: HashMap::new(),
            next_version: 0,
        }
    }

    /// The model's clock.
    pub fn now(&self) -> u64 {
        self.now
    }

    /// Moves the model's clock to the store's.
    pub fn set_now(&mut self, now: Timestamp) {
        self.now = now.as_millis();
    }

    /// The live session under `id`.
    pub fn live(&self, id: &SessionId) -> Option<&Stored> {
        self.sessions.get(id).filter(|s| s.life.live_at(self.now))
    }

    /// Every live session.
    pub fn live_sessions(&self) -> impl Iterator<Item = (&SessionId, &Stored)> + '_ {
        self.sessions
            .iter()
            .filter(|(_, s)| s.life.live_at(self.now))
    }

    fn version(&mut self) -> u64 {
        self.next_version += 1;
        self.next_version
    }

    /// The user a session belongs to: the first user key (a dotted path) leading to a
    /// non-empty string or a number.
    pub fn user(&self, data: &SessionData) -> Option<String> {
        self.user_keys.iter().find_map(|path| {
            let mut parts = path.split('.');
            let mut value = data.get(parts.next()?)?;
            for part in parts {
                match value {
                    Value::Object(map) => value = map.get(part)?,
                    _ => return None,
                }
            }
            match value {
                Value::String(s) if !s.is_empty() => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            }
        })
    }

    /// `put`: a given lifetime already over refuses first; then the mode's precondition;
    /// then the lifetime rule (given as is; over a live session its creation and absolute
    /// expiry kept, its idle timeout unless one is given, the idle expiry slid; otherwise
    /// fresh).
    pub fn put(
        &mut self,
        id: &SessionId,
        data: SessionData,
        mode: Mode,
        idle_ms: Option<u64>,
        given: Option<Life>,
    ) -> Result<Stored, Refusal> {
        let now = self.now;
        if given.is_some_and(|l| !l.live_at(now)) {
            return Err(Refusal::NotFound);
        }
        let live = self.live(id).map(|s| (s.life, s.version));
        match (mode, live) {
            (Mode::Create, Some(_)) => return Err(Refusal::AlreadyExists),
            (Mode::IfLive | Mode::IfVersion(_), None) => return Err(Refusal::NotFound),
            (Mode::IfVersion(want), Some((_, at))) if want != at => return Err(Refusal::Conflict),
            _ => {}
        }
        let life = match (given, live) {
            (Some(given), _) => given.capped(),
            (None, Some((current, _))) => current.slid(now, idle_ms.unwrap_or(current.idle_ms)),
            (None, None) => Life::fresh(now, idle_ms.unwrap_or(self.idle_ms), self.absolute_ms),
        };
        let stored = Stored {
            data,
            life,
            version: self.version(),
        };
        self.sessions.insert(id.clone(), stored.clone());
        Ok(stored)
    }

    /// `delete`: whether a live session was removed. An expired one is left in the map: a
    /// store may keep it until `cleanup`.
    pub fn delete(&mut self, id: &SessionId) -> bool {
        let live = self.live(id).is_some();
        if live {
            self.sessions.remove(id);
        }
        live
    }

    /// `refresh`: slides a live session's idle expiry and nothing else; the version stays,
    /// so a copy loaded before still saves with `IfVersion`.
    pub fn refresh(&mut self, id: &SessionId) -> bool {
        let now = self.now;
        match self.sessions.get_mut(id) {
            Some(s) if s.life.live_at(now) => {
                s.life = s.life.slid(now, s.life.idle_ms);
                true
            }
            _ => false,
        }
    }

    /// `rotate` to `new_id` (minted by the store): the session as moved.
    pub fn rotate(&mut self, id: &SessionId, new_id: &SessionId) -> Option<Stored> {
        self.live(id)?;
        let mut s = self.sessions.remove(id).expect("live");
        s.life = s.life.slid(self.now, s.life.idle_ms);
        s.version = self.version();
        self.sessions.insert(new_id.clone(), s.clone());
        Some(s)
    }

    /// `count`.
    pub fn count(&self) -> u64 {
        self.live_sessions().count() as u64
    }

    /// `list_user`: (handle, lifetime) of the user's live sessions, sorted by handle.
    pub fn list_user(&self, user: &str) -> Vec<(String, Life)> {
        let mut list: Vec<_> = self
            .live_sessions()
            .filter(|(_, s)| self.user(&s.data).as_deref() == Some(user))
            .map(|(id, s)| (id.handle().to_string(), s.life))
            .collect();
        list.sort_by(|a, b| a.0.cmp(&b.0));
        list
    }

    /// `delete_user`: how many live sessions of the user were removed.
    pub fn delete_user(&mut self, user: &str) -> u64 {
        let doomed: Vec<SessionId> = self
            .live_sessions()
            .filter(|(_, s)| self.user(&s.data).as_deref() == Some(user))
            .map(|(id, _)| id.clone())
            .collect();
        for id in &doomed {
            self.sessions.remove(id);
        }
        doomed.len() as u64
    }

    /// `cleanup`: the most a store may report removed (it may have purged some on its own,
    /// and the model keeps expired sessions a store may already have dropped).
    pub fn cleanup(&mut self) -> u64 {
        let now = self.now;
        let before = self.sessions.len();
        self.sessions.retain(|_, s| s.life.live_at(now));
        (before - self.sessions.len()) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn model() -> Model {
        let keys = vec!["user.sub".to_string(), "user.username".to_string()];
        Model::new(Timestamp(1_000), 100, Some(250), keys)
    }

    fn obj(v: Value) -> SessionData {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn user_keys_fall_back_in_order() {
        let m = model();
        let user = |v| m.user(&obj(v));
        assert_eq!(
            user(json!({"user": {"username": "bo", "sub": "u"}})),
            Some("u".into())
        );
        assert_eq!(
            user(json!({"user": {"username": "bo", "sub": ""}})),
            Some("bo".into())
        );
        assert_eq!(user(json!({"user": {"sub": 7}})), Some("7".into()));
        assert_eq!(user(json!({"user": {"sub": true}})), None);
        assert_eq!(user(json!({"user": "bo"})), None);
    }

    #[test]
    fn refresh_slides_the_idle_expiry_and_keeps_the_version() {
        let mut m = model();
        let id = SessionId::generate();
        let a = m
            .put(&id, obj(json!({"n": 1})), Mode::Create, None, None)
            .unwrap();
        m.now = 1_040;
        assert!(m.refresh(&id));
        let live = m.live(&id).unwrap();
        assert_eq!((live.version, live.life.idle_expiry), (a.version, 1_140));
        assert_eq!(live.data, a.data);
        let b = m
            .put(
                &id,
                obj(json!({"n": 2})),
                Mode::IfVersion(a.version),
                None,
                None,
            )
            .unwrap();
        assert_ne!(b.version, a.version);
        m.now = 1_140;
        assert!(!m.refresh(&id), "expired sessions are not refreshed");
        assert!(!m.refresh(&SessionId::generate()));
    }

    #[test]
    fn lifetime_rules() {
        let mut m = model();
        let id = SessionId::generate();
        let a = m
            .put(&id, obj(json!({})), Mode::Create, None, None)
            .unwrap();
        assert_eq!(a.life, Life::fresh(1_000, 100, Some(250)));
        m.now = 1_050;
        let b = m
            .put(&id, obj(json!({})), Mode::Upsert, Some(7), None)
            .unwrap();
        assert_eq!(
            (b.life.created, b.life.idle_ms, b.life.idle_expiry),
            (1_000, 7, 1_057)
        );
        assert_eq!(b.life.absolute_expiry, Some(1_250));
        m.now = 1_057;
        assert!(m.live(&id).is_none(), "the end instant is expired");
        let expired = Life {
            idle_expiry: 1_057,
            ..b.life
        };
        let refused = m.put(&id, obj(json!({})), Mode::Upsert, None, Some(expired));
        assert_eq!(refused, Err(Refusal::NotFound));
        assert_eq!(
            m.put(&id, obj(json!({})), Mode::IfLive, None, None),
            Err(Refusal::NotFound)
        );
    }
}
