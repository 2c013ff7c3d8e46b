//! `ActixStore::update` racing "log out everywhere": at least 10,000 races per backend, and
//! not one session brought back.
//!
//! Each race saves a session for its own user (as actix-session does at login), then releases
//! two tasks together (a barrier on a multi-thread runtime): one updates the session the way
//! `SessionMiddleware` does at the end of a request that changed it, the other revokes it,
//! by "log out everywhere" (the store's `delete_user`) or, in a second set, by a logout in
//! another request (`ActixStore::delete`, what `Session::purge` leads to). Once both have
//! returned the session must be gone: neither the old key nor the key `update` handed back
//! (the one the cookie would carry) loads, nothing is listed for the user, and at the end the
//! store is empty. Which lands first is spread over the races (see
//! [`adapter_testkit::lags`]); the test counts both outcomes (updates that replaced the live
//! session, updates dropped because it was gone) and fails on any resurrection. Nothing
//! sleeps and no assertion depends on timing.
//!
//! `ACTIX_RACES=N` runs N races of each kind on each backend instead of the defaults below.

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use actix_session::storage::{SessionKey, SessionStore as _};
use adapter_testkit::{lag, lags, run_races, Revocation};
use common::Fixture;
use serde_json::json;
use session_actix::ActixStore;
use tokio::sync::Barrier;

/// Races of update against `delete_user` per backend.
const RACES: usize = 10_000;
/// Races of update against a logout (`delete`) per backend: the same code path on our side
/// (`IfLive` finding the session gone); fewer keep the run short.
const DELETE_RACES: usize = 2_000;
/// The migrating store serializes `list_user` and `delete_user` behind one lock (no moves
/// meanwhile), so its races run nearly one at a time: about 2.7 ms each in a debug build,
/// 27 s for 10,000. Fewer keep the run to seconds; `ACTIX_RACES=10000` runs them all.
const MIGRATING_RACES: usize = 2_500;

// One multi-thread `#[tokio::test]` per backend and revocation, so a failure reads
// `redis::update_vs_delete_user`.
adapter_testkit::race_tests!(
    [update_vs_delete_user: DeleteUser, update_vs_delete: Delete];
    memory: Memory => [crate::RACES, crate::DELETE_RACES],
    redis: RedisPatient => [crate::RACES, crate::DELETE_RACES],
    migrating: MigratingPatient => [crate::MIGRATING_RACES, crate::DELETE_RACES],
);

/// Runs `races` races (or `ACTIX_RACES`, if set), [`adapter_testkit::IN_FLIGHT`] at a time,
/// prints the figures and checks them.
async fn races(fx: Fixture, revocation: Revocation, races: usize) {
    let races = std::env::var("ACTIX_RACES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(races);
    let actix = fx.actix();
    run_races(
        &*fx.store,
        &fx.counted,
        "update",
        revocation,
        races,
        |race| one_race(actix.clone(), race, revocation),
    )
    .await;
}

fn key(text: &str) -> SessionKey {
    SessionKey::try_from(text.to_owned()).unwrap()
}

/// One race: save, then update and revoke at once. Returns `Some(race)` if a session is
/// still there once both have returned.
async fn one_race(actix: ActixStore, race: usize, revocation: Revocation) -> Option<usize> {
    let user = format!("u-{race}");
    let ttl = time::Duration::hours(1);
    let mut state: HashMap<String, String> =
        [("user".to_owned(), json!({ "sub": user }).to_string())].into();
    let saved = actix.save(state.clone(), &ttl).await.expect("save");
    let token = saved.as_ref().to_owned();
    // The request's change, which `update` writes back.
    state.insert("race".to_owned(), race.to_string());

    let (update_lag, revoke_lag) = lags(race);
    let start = Arc::new(Barrier::new(2));
    let update = tokio::spawn({
        let (actix, start, token) = (actix.clone(), start.clone(), token.clone());
        async move {
            start.wait().await;
            lag(update_lag).await;
            let back = actix
                .update(key(&token), state, &ttl)
                .await
                .expect("update");
            back.as_ref().to_owned()
        }
    });
    let revoke = tokio::spawn({
        let (actix, start, user, token) = (actix.clone(), start.clone(), user.clone(), token);
        async move {
            start.wait().await;
            lag(revoke_lag).await;
            match revocation {
                Revocation::DeleteUser => {
                    let ended = actix.store().delete_user(&user).await.expect("delete_user");
                    // The session was live from its save until this revocation.
                    assert_eq!(ended, 1, "race {race}: delete_user ended {ended} sessions");
                }
                Revocation::Delete => actix.delete(&key(&token)).await.expect("delete"),
            }
        }
    });
    let returned = update.await.expect("update task");
    revoke.await.expect("revoke task");

    // The cookie would now carry `returned`: it must name the same session, and neither it
    // nor the old key may open anything.
    assert_eq!(
        returned,
        saved.as_ref(),
        "race {race}: update handed back another key"
    );
    let loaded = actix.load(&saved).await.expect("load");
    let listed = actix.store().list_user(&user).await.expect("list_user");
    (loaded.is_some() || !listed.is_empty()).then_some(race)
}
