//! Between the store and the model: what a store returned, compared with what the model
//! computed, field by field; and the one-to-one map between store and model versions.

use std::collections::HashMap;
use std::time::Duration;

use session_core::{Error, Lifetime, Session, SessionId, Timestamp, Version};

use crate::model::{Life, Refusal, Stored};

/// A model lifetime as the store's type, to hand to `WriteOptions::with_lifetime`.
pub fn lifetime_of(life: &Life) -> Lifetime {
    Lifetime {
        created_at: Timestamp(life.created),
        idle_timeout: Duration::from_millis(life.idle_ms),
        idle_expires_at: Timestamp(life.idle_expiry),
        absolute_expires_at: life.absolute_expiry.map(Timestamp),
    }
}

/// Compares a store's lifetime with the model's, naming every field that differs.
pub fn check_life(got: &Lifetime, want: &Life) -> Result<(), String> {
    let mut wrong = Vec::new();
    if got.created_at.as_millis() != want.created {
        wrong.push(format!(
            "created_at {} (model {})",
            got.created_at.as_millis(),
            want.created
        ));
    }
    if got.idle_timeout != Duration::from_millis(want.idle_ms) {
        wrong.push(format!(
            "idle_timeout {:?} (model {}ms)",
            got.idle_timeout, want.idle_ms
        ));
    }
    if got.idle_expires_at.as_millis() != want.idle_expiry {
        wrong.push(format!(
            "idle_expires_at {} (model {})",
            got.idle_expires_at.as_millis(),
            want.idle_expiry
        ));
    }
    if got.absolute_expires_at.map(Timestamp::as_millis) != want.absolute_expiry {
        wrong.push(format!(
            "absolute_expires_at {:?} (model {:?})",
            got.absolute_expires_at.map(Timestamp::as_millis),
            want.absolute_expiry
        ));
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(format!("lifetime differs: {}", wrong.join(", ")))
    }
}

/// The precondition failure an error reports, if it is one.
pub fn refusal_of(error: &Error) -> Option<Refusal> {
    match error {
        Error::AlreadyExists => Some(Refusal::AlreadyExists),
        Error::NotFound => Some(Refusal::NotFound),
        Error::Conflict => Some(Refusal::Conflict),
        _ => None,
    }
}

/// A put's outcome as recorded: the session, a refusal, or any other error (always wrong).
pub type PutSeen = Result<Session, Result<Refusal, String>>;

/// Records a put's result for later comparison.
pub fn put_seen(result: session_core::Result<Session>) -> PutSeen {
    result.map_err(|e| refusal_of(&e).ok_or_else(|| format!("unexpected error: {e}")))
}

/// Store versions against model versions, per id: a store's versions are opaque, but the same
/// model version must always show as the same store version (a reload or a refresh changes
/// nothing, or a copy loaded before a refresh could not be saved) and different model versions
/// of one id as different store versions (or a stale version could pass `IfVersion` after its
/// session was written, or deleted and created again).
#[derive(Debug, Clone, Default)]
pub struct Versions {
    to_model: HashMap<(SessionId, Version), u64>,
    to_store: HashMap<(SessionId, u64), Version>,
}

impl Versions {
    /// Notes that `id` showed store version `store` where the model has `model`.
    pub fn observe(&mut self, id: &SessionId, store: Version, model: u64) -> Result<(), String> {
        if let Some(&known) = self.to_model.get(&(id.clone(), store)) {
            if known != model {
                return Err(format!(
                    "store version {store:?} reused: model versions {known} and {model} of one id"
                ));
            }
        }
        if let Some(&known) = self.to_store.get(&(id.clone(), model)) {
            if known != store {
                return Err(format!(
                    "version changed with no write of data (a reload or refresh keeps it): \
                     {known:?} then {store:?}"
                ));
            }
        }
        self.to_model.insert((id.clone(), store), model);
        self.to_store.insert((id.clone(), model), store);
        Ok(())
    }

    /// The model version a store version of `id` stands for, if it was seen.
    pub fn model_of(&self, id: &SessionId, store: Version) -> Option<u64> {
        self.to_model.get(&(id.clone(), store)).copied()
    }
}

/// Compares a session the store returned under `id` with the model's, field by field, and
/// records its version.
pub fn check_session(
    versions: &mut Versions,
    id: &SessionId,
    got: &Session,
    want: &Stored,
) -> Result<(), String> {
    if got.id() != id {
        return Err(format!("session under {:?}, expected {id:?}", got.id()));
    }
    if got.data() != &want.data {
        return Err(format!("data {:?}, model {:?}", got.data(), want.data));
    }
    check_life(got.lifetime(), &want.life)?;
    versions.observe(id, got.version(), want.version)
}

/// Compares a put's outcome with the model's.
pub fn check_put(
    versions: &mut Versions,
    id: &SessionId,
    got: &PutSeen,
    want: &Result<Stored, Refusal>,
) -> Result<(), String> {
    match (got, want) {
        (Ok(s), Ok(m)) => check_session(versions, id, s, m),
        (Err(Ok(g)), Err(w)) if g == w => Ok(()),
        (got, want) => Err(format!(
            "put gave {}, model {}",
            describe(got),
            match want {
                Ok(m) => format!("stored {:?} {:?}", m.data, m.life),
                Err(r) => format!("{r:?}"),
            }
        )),
    }
}

fn describe(got: &PutSeen) -> String {
    match got {
        Ok(s) => format!("stored {:?} {:?}", s.data(), s.lifetime()),
        Err(Ok(r)) => format!("{r:?}"),
        Err(Err(e)) => e.clone(),
    }
}
