//! A fresh store with a manual clock, as every case starts.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use session_core::{
    Clock, ManualClock, PutMode, Result, Session, SessionConfig, SessionData, SessionId,
    SessionStore, Timestamp, WriteOptions,
};

use crate::factory::StoreFactory;

/// Idle timeout the cases use: short enough to cross by advancing the manual clock.
pub const IDLE: Duration = Duration::from_secs(100);

/// One case's store, clock and settings.
#[derive(Debug)]
pub struct Ctx {
    /// The store under test (always used through `dyn SessionStore`).
    pub store: Arc<dyn SessionStore>,
    /// The store's clock.
    pub clock: ManualClock,
    /// The settings the store was built with.
    pub config: SessionConfig,
}

impl Ctx {
    /// A store with a 100 s idle timeout and no absolute lifetime.
    pub async fn new(factory: &dyn StoreFactory) -> Self {
        Self::with(factory, |_| {}).await
    }

    /// A store with the case defaults changed by `adjust`.
    pub async fn with(factory: &dyn StoreFactory, adjust: impl FnOnce(&mut SessionConfig)) -> Self {
        let mut config = SessionConfig {
            idle_timeout: IDLE,
            key_prefix: unique_prefix(),
            ..SessionConfig::default()
        };
        adjust(&mut config);
        let clock = ManualClock::starting_now();
        let store = factory.make(Arc::new(clock.clone()), config.clone()).await;
        Ctx {
            store,
            clock,
            config,
        }
    }

    /// The store's clock.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Moves the store's clock forward.
    pub fn advance_secs(&self, secs: u64) {
        self.clock.advance(Duration::from_secs(secs));
    }

    /// `store.put` of owned data.
    pub async fn put(
        &self,
        id: &SessionId,
        data: SessionData,
        mode: PutMode,
        options: WriteOptions,
    ) -> Result<Session> {
        self.store.put(id, Arc::new(data), mode, options).await
    }
}

/// A key prefix no other store uses (`ct:` and 12 random hex digits), so cases sharing one
/// Redis never see each other's keys.
pub fn unique_prefix() -> String {
    format!("ct:{}:", &SessionId::generate().handle().as_str()[..12])
}

/// A JSON object literal as session data.
///
/// # Panics
/// If `value` is not an object.
pub fn data(value: Value) -> SessionData {
    match value {
        Value::Object(map) => map,
        other => panic!("session data must be an object, got {other}"),
    }
}
