//! `TowerStore::save` racing a logout: 10,000 races per backend, and not one session brought
//! back.
//!
//! Each race creates a session for its own user, then releases two tasks together (a barrier
//! on a multi-thread runtime): one saves the session the way tower-sessions does at the end of
//! a request that changed it, the other revokes it, by a logout in another request
//! (`TowerStore::delete`) or by "log out everywhere" (`delete_user`). Once both have returned,
//! the session must be gone: not loadable, not listed for its user, and at the end the store
//! is empty. Which lands first is spread over the races (see [`adapter_testkit::lags`]); the
//! test counts both outcomes (saves that replaced the live session, saves dropped because it
//! was gone) and fails on any resurrection. Nothing sleeps and no assertion depends on
//! timing: whatever the order, once the revocation has returned no save may bring the session
//! back.

mod common;

use std::sync::Arc;

use adapter_testkit::{lag, lags, run_races, CountingStore, Revocation};
use common::Fixture;
use serde_json::json;
use session_tower::TowerStore;
use time::OffsetDateTime;
use tokio::sync::Barrier;
use tower_sessions::session::{Id, Record};
use tower_sessions::SessionStore as _;

/// Races of each kind per backend: two kinds, so 10,000 races per backend.
const RACES: usize = 5_000;
/// The migrating store serializes `list_user` and `delete_user` behind one lock (no moves
/// meanwhile), so its races run a few at a time: fewer of them keep the run short.
const MIGRATING_RACES: usize = 2_000;

// One multi-thread `#[tokio::test]` per backend and revocation, so a failure reads
// `redis::save_vs_delete_user`.
adapter_testkit::race_tests!(
    [save_vs_delete: Delete, save_vs_delete_user: DeleteUser];
    memory: Memory => [crate::RACES, crate::RACES],
    redis: RedisPatient => [crate::RACES, crate::RACES],
    migrating: MigratingPatient => [crate::MIGRATING_RACES, crate::MIGRATING_RACES],
);

/// Runs `races` races, [`adapter_testkit::IN_FLIGHT`] at a time, prints the figures and
/// checks them.
async fn races(fx: Fixture, revocation: Revocation, races: usize) {
    let counted = Arc::new(CountingStore::new(fx.store.clone()));
    let tower = TowerStore::new(counted.clone());
    run_races(&*fx.store, &counted, "save", revocation, races, |race| {
        one_race(tower.clone(), race, revocation)
    })
    .await;
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
