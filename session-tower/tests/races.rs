//! `TowerStore::save` racing a logout: 10,000 races per backend, and not one session brought
//! back.
//!
//! Each race creates a session for its own user, then releases two tasks together (a barrier
//! on a multi-thread runtime): one saves the session the way tower-sessions does at the end of
//! a request that changed it, the other revokes it, by a logout in another request
//! (`TowerStore::delete`) or by "log out everywhere" (`delete_user`). Once both have returned,
//! the session must be gone: not loadable, not listed for its user, and at the end the store
//! is empty. Which lands first is spread over the races (see [`lags`]); the test counts both
//! outcomes (saves that replaced the live session, saves dropped because it was gone) and
//! fails on any resurrection. Nothing sleeps and no assertion depends on timing: whatever the
//! order, once the revocation has returned no save may bring the session back.

mod common;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use common::Fixture;
use serde_json::json;
use session_core::{
    Capabilities, CleanupReport, Error, PutMode, Result, ScanCursor, ScanPage, Session,
    SessionData, SessionId, SessionStore, SessionSummary, WriteOptions,
};
use session_tower::TowerStore;
use time::OffsetDateTime;
use tokio::sync::Barrier;
use tokio::task::JoinSet;
use tower_sessions::session::{Id, Record};
use tower_sessions::SessionStore as _;

/// Races of each kind per backend: two kinds, so 10,000 races per backend.
const RACES: usize = 5_000;
/// The migrating store serializes `list_user` and `delete_user` behind one lock (no moves
/// meanwhile), so its races run a few at a time: fewer of them keep the run short.
const MIGRATING_RACES: usize = 2_000;
/// Races run at once, so that the Redis ones take seconds, not minutes, in a debug build.
const IN_FLIGHT: usize = 64;

/// How the racing request ends the session.
#[derive(Debug, Clone, Copy)]
enum Revocation {
    /// A logout in another request: tower-sessions' `delete` (what `Session::flush` calls).
    Delete,
    /// "Log out everywhere": the store's `delete_user`, for which tower-sessions has no word.
    DeleteUser,
}

/// Stamps one multi-thread `#[tokio::test]` per backend and revocation, so a failure reads
/// `redis::save_vs_delete_user`.
macro_rules! race_tests {
    ($backend:ident, $fixture:expr, $races:expr) => {
        mod $backend {
            use super::Revocation;

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn save_vs_delete() {
                super::races($fixture.await, Revocation::Delete, $races).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn save_vs_delete_user() {
                super::races($fixture.await, Revocation::DeleteUser, $races).await
            }
        }
    };
}

race_tests!(memory, crate::Fixture::memory(), crate::RACES);
race_tests!(redis, crate::Fixture::redis_patient(), crate::RACES);
race_tests!(
    migrating,
    crate::Fixture::migrating_patient(),
    crate::MIGRATING_RACES
);

/// Runs `races` races, [`IN_FLIGHT`] at a time, prints the figures and checks them.
async fn races(fx: Fixture, revocation: Revocation, races: usize) {
    let backend = fx.store.backend();
    let counted = Arc::new(CountingStore::new(fx.store.clone()));
    let tower = TowerStore::new(counted.clone());
    let started = Instant::now();

    let mut running = JoinSet::new();
    let mut resurrected = Vec::new();
    let mut collect = |joined: std::result::Result<Option<usize>, _>| {
        if let Some(race) = joined.expect("race task") {
            resurrected.push(race);
        }
    };
    for race in 0..races {
        if running.len() >= IN_FLIGHT {
            collect(running.join_next().await.expect("a running race"));
        }
        running.spawn(one_race(tower.clone(), race, revocation));
    }
    while let Some(joined) = running.join_next().await {
        collect(joined);
    }
    let elapsed = started.elapsed();

    let landed = counted.landed.load(Ordering::Relaxed);
    let dropped = counted.dropped.load(Ordering::Relaxed);
    println!(
        "{backend} save vs {revocation:?}: {races} races in {elapsed:.2?}; saves landed before \
         the revocation: {landed}, dropped after it: {dropped}; resurrections: {}",
        resurrected.len()
    );
    resurrected.sort_unstable();
    assert!(
        resurrected.is_empty(),
        "{} of {races} sessions were brought back after {revocation:?} returned (races {:?}…)",
        resurrected.len(),
        &resurrected[..resurrected.len().min(10)]
    );
    assert_eq!(
        landed + dropped,
        races as u64,
        "each save is one IfLive put that either replaces the live session or finds it gone"
    );
    assert_eq!(
        fx.store.count().await.unwrap(),
        0,
        "every session was revoked"
    );
}

/// One race: create, then save and revoke at once. Returns `Some(race)` if the session is
/// still there once both have returned.
async fn one_race(tower: TowerStore, race: usize, revocation: Revocation) -> Option<usize> {
    let user = format!("u-{race}");
    let mut record = Record {
        id: Id::default(),
        data: [("user".to_owned(), json!({ "sub": user }))].into(),
        expiry_date: OffsetDateTime::now_utc() + time::Duration::hours(1),
    };
    tower.create(&mut record).await.expect("create");
    let id = record.id;
    // The request's change, which its save writes back.
    record.data.insert("race".to_owned(), json!(race));

    let (save_lag, revoke_lag) = lags(race);
    let start = Arc::new(Barrier::new(2));
    let save = tokio::spawn({
        let (tower, start) = (tower.clone(), start.clone());
        async move {
            start.wait().await;
            lag(save_lag).await;
            tower.save(&record).await.expect("save");
        }
    });
    let revoke = tokio::spawn({
        let (tower, start, user) = (tower.clone(), start.clone(), user.clone());
        async move {
            start.wait().await;
            lag(revoke_lag).await;
            match revocation {
                Revocation::Delete => tower.delete(&id).await.expect("delete"),
                Revocation::DeleteUser => {
                    let ended = tower.store().delete_user(&user).await.expect("delete_user");
                    // The session was live from its creation until this revocation.
                    assert_eq!(ended, 1, "race {race}: delete_user ended {ended} sessions");
                }
            }
        }
    });
    save.await.expect("save task");
    revoke.await.expect("revoke task");

    let loaded = tower.load(&id).await.expect("load");
    let listed = tower.store().list_user(&user).await.expect("list_user");
    (loaded.is_some() || !listed.is_empty()).then_some(race)
}

/// How many times each side, save and revocation, yields to the scheduler after the barrier.
///
/// Released together, one side still tends to start first (the barrier's last arrival runs
/// on while the other is woken, and which that is depends on how the runtime queues the two
/// spawns), so left alone nearly every race would end the same way. Varying a small lag over
/// the races, on either side, spreads them over both orders. On Redis, where a round trip
/// takes far longer than a yield, the two requests are still in flight together.
fn lags(race: usize) -> (usize, usize) {
    let lag = (race / 2) % 8;
    if race % 2 == 0 {
        (lag, 0)
    } else {
        (0, lag)
    }
}

async fn lag(yields: usize) {
    for _ in 0..yields {
        tokio::task::yield_now().await;
    }
}

/// Passes every call through to a store, counting how the adapter's saves (its non-`Create`
/// puts) ended: replacing the live session, or finding it gone.
struct CountingStore {
    inner: Arc<dyn SessionStore>,
    landed: AtomicU64,
    dropped: AtomicU64,
}

impl CountingStore {
    fn new(inner: Arc<dyn SessionStore>) -> Self {
        CountingStore {
            inner,
            landed: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        }
    }
}

impl fmt::Debug for CountingStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CountingStore")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl SessionStore for CountingStore {
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    async fn load(&self, id: &SessionId) -> Result<Option<Session>> {
        self.inner.load(id).await
    }

    async fn put(
        &self,
        id: &SessionId,
        data: Arc<SessionData>,
        mode: PutMode,
        options: WriteOptions,
    ) -> Result<Session> {
        let result = self.inner.put(id, data, mode, options).await;
        if mode != PutMode::Create {
            match &result {
                Ok(_) => _ = self.landed.fetch_add(1, Ordering::Relaxed),
                Err(Error::NotFound) => _ = self.dropped.fetch_add(1, Ordering::Relaxed),
                Err(_) => {}
            }
        }
        result
    }

    async fn delete(&self, id: &SessionId) -> Result<bool> {
        self.inner.delete(id).await
    }

    async fn exists(&self, id: &SessionId) -> Result<bool> {
        self.inner.exists(id).await
    }

    async fn refresh(&self, id: &SessionId) -> Result<bool> {
        self.inner.refresh(id).await
    }

    async fn rotate(&self, id: &SessionId) -> Result<Option<Session>> {
        self.inner.rotate(id).await
    }

    async fn count(&self) -> Result<u64> {
        self.inner.count().await
    }

    async fn list_user(&self, user: &str) -> Result<Vec<SessionSummary>> {
        self.inner.list_user(user).await
    }

    async fn delete_user(&self, user: &str) -> Result<u64> {
        self.inner.delete_user(user).await
    }

    async fn cleanup(&self) -> Result<CleanupReport> {
        self.inner.cleanup().await
    }

    async fn scan(&self, cursor: Option<ScanCursor>, limit: usize) -> Result<ScanPage> {
        self.inner.scan(cursor, limit).await
    }
}
