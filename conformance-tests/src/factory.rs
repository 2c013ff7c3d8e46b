//! How the suite gets a fresh store for each case.

use std::sync::Arc;

use async_trait::async_trait;
use session_core::{Clock, SessionConfig, SessionStore};

/// Builds stores for the suite. Each call must return a store that is empty and isolated
/// from every other store this factory built (a shared Redis uses `config.key_prefix`, which
/// the suite makes unique per call), reads time from `clock` and honours `config`.
///
/// A factory lives for one test function, so it may own servers the stores talk to.
#[async_trait]
pub trait StoreFactory: Send + Sync + 'static {
    /// A fresh, empty store.
    async fn make(&self, clock: Arc<dyn Clock>, config: SessionConfig) -> Arc<dyn SessionStore>;
}
