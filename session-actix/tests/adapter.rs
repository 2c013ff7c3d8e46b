//! The adapter called directly, the way actix-session's middleware calls it: fresh ids on
//! save, last writer wins, no resurrection, TTL edge cases, malformed keys, error mapping and
//! what never gets printed.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_session::storage::{LoadError, SaveError, SessionKey, SessionStore as _, UpdateError};
use adapter_testkit::{Hook, Hooked, Kind};
use common::Fixture;
use serde_json::json;
use session_actix::{ActixStore, SAVE_ATTEMPTS};
use session_core::{
    Error, PutMode, Result, SessionConfig, SessionId, SessionStore, SessionStoreExt,
};
use session_memory::MemoryStore;
use time::Duration as Ttl;

fn state(pairs: &[(&str, serde_json::Value)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn key(text: &str) -> SessionKey {
    SessionKey::try_from(text.to_owned()).unwrap()
}

/// A second key value for the same session (`SessionKey` is not `Clone`).
fn same(k: &SessionKey) -> SessionKey {
    key(k.as_ref())
}

adapter_testkit::backend_tests!(crate::Fixture; [
    save_stores_under_a_fresh_id, update_is_last_writer_wins, update_never_creates,
    update_ttl_slides_and_never_creates, ttl_under_a_millisecond_ends_the_session,
    malformed_keys_never_reach_the_store, reserved_key_is_serialization_error,
    delete_is_idempotent
]; memory: Memory, redis: Redis, migrating: Migrating);

async fn save_stores_under_a_fresh_id(fx: Fixture) {
    let actix = fx.actix();
    let s = state(&[("user", json!({"sub": "u-1"})), ("n", json!(1))]);
    let a = actix.save(s.clone(), &Ttl::hours(1)).await.unwrap();
    let b = actix.save(s.clone(), &Ttl::hours(1)).await.unwrap();
    assert_ne!(a, b);
    let id = ActixStore::session_id(&a).expect("a SessionId");
    let stored = fx.store.load(&id).await.unwrap().unwrap();
    assert_eq!(stored.data()["user"], json!({"sub": "u-1"}));
    assert_eq!(stored.lifetime().idle_timeout, Duration::from_secs(3600));
    assert_eq!(actix.load(&a).await.unwrap(), Some(s));
    assert_eq!(fx.store.list_user("u-1").await.unwrap().len(), 2);
}

async fn update_is_last_writer_wins(fx: Fixture) {
    let actix = fx.actix();
    let k = actix
        .save(state(&[("a", json!(1))]), &Ttl::hours(1))
        .await
        .unwrap();
    let id = ActixStore::session_id(&k).unwrap();
    // Another writer changes the session (a new version) after actix-session loaded it.
    fx.store
        .update(&id, |d| {
            d.insert("other".into(), json!(true));
        })
        .await
        .unwrap()
        .unwrap();
    let mine = state(&[("a", json!(2))]);
    let back = actix
        .update(same(&k), mine.clone(), &Ttl::minutes(10))
        .await
        .expect("no Conflict");
    assert_eq!(back, k, "same key");
    assert_eq!(actix.load(&k).await.unwrap(), Some(mine));
    let lifetime = *fx.store.load(&id).await.unwrap().unwrap().lifetime();
    assert_eq!(
        lifetime.idle_timeout,
        Duration::from_secs(600),
        "ttl applied"
    );
}

async fn update_never_creates(fx: Fixture) {
    let actix = fx.actix();
    let s = state(&[("user", json!({"sub": "u-1"})), ("a", json!(1))]);

    // Never issued.
    let never = ActixStore::session_key(&SessionId::generate());
    let back = actix
        .update(same(&never), s.clone(), &Ttl::hours(1))
        .await
        .unwrap();
    assert_eq!(back, never, "the same (dead) key, not a fresh one");
    assert_eq!(actix.load(&never).await.unwrap(), None);

    // After a logout.
    let k = actix.save(s.clone(), &Ttl::hours(1)).await.unwrap();
    actix.delete(&k).await.unwrap();
    let back = actix
        .update(same(&k), s.clone(), &Ttl::hours(1))
        .await
        .unwrap();
    assert_eq!(back, k);
    assert_eq!(actix.load(&k).await.unwrap(), None);

    // After "log out everywhere".
    let k = actix.save(s.clone(), &Ttl::hours(1)).await.unwrap();
    assert_eq!(fx.store.delete_user("u-1").await.unwrap(), 1);
    let back = actix
        .update(same(&k), s.clone(), &Ttl::hours(1))
        .await
        .unwrap();
    assert_eq!(back, k);
    assert_eq!(actix.load(&k).await.unwrap(), None);

    // After expiry.
    let k = actix.save(s.clone(), &Ttl::minutes(1)).await.unwrap();
    fx.clock.advance(Duration::from_secs(61));
    let back = actix.update(same(&k), s, &Ttl::hours(1)).await.unwrap();
    assert_eq!(back, k);
    assert_eq!(actix.load(&k).await.unwrap(), None);

    assert_eq!(fx.store.count().await.unwrap(), 0);
    assert!(fx.store.list_user("u-1").await.unwrap().is_empty());
    assert_eq!(fx.counted.dropped.load(Ordering::SeqCst), 4);
}

async fn update_ttl_slides_and_never_creates(fx: Fixture) {
    let actix = fx.actix();
    let hour = Ttl::hours(1);
    let k = actix.save(state(&[("a", json!(1))]), &hour).await.unwrap();
    let id = ActixStore::session_id(&k).unwrap();
    fx.clock.advance(Duration::from_secs(40 * 60));
    actix.update_ttl(&k, &hour).await.unwrap();
    fx.clock.advance(Duration::from_secs(40 * 60));
    assert!(actix.load(&k).await.unwrap().is_some(), "not slid");
    let session = fx.store.load(&id).await.unwrap().unwrap();
    assert_eq!(session.data()["a"], 1, "data unchanged");

    actix.delete(&k).await.unwrap();
    actix.update_ttl(&k, &hour).await.unwrap();
    let never = ActixStore::session_key(&SessionId::generate());
    actix.update_ttl(&never, &hour).await.unwrap();
    assert_eq!(fx.store.count().await.unwrap(), 0);
}

async fn ttl_under_a_millisecond_ends_the_session(fx: Fixture) {
    let actix = fx.actix();
    let s = state(&[("a", json!(1))]);
    for dead in [Ttl::ZERO, Ttl::seconds(-5), Ttl::microseconds(999)] {
        let k = actix.save(s.clone(), &dead).await.unwrap();
        assert!(ActixStore::session_id(&k).is_some());
        assert_eq!(actix.load(&k).await.unwrap(), None);
    }
    assert_eq!(fx.store.count().await.unwrap(), 0);

    let k = actix.save(s.clone(), &Ttl::hours(1)).await.unwrap();
    let back = actix.update(same(&k), s.clone(), &Ttl::ZERO).await.unwrap();
    assert_eq!(back, k);
    assert_eq!(actix.load(&k).await.unwrap(), None);

    let k = actix.save(s, &Ttl::hours(1)).await.unwrap();
    actix.update_ttl(&k, &Ttl::seconds(-1)).await.unwrap();
    assert_eq!(actix.load(&k).await.unwrap(), None);
    assert_eq!(fx.store.count().await.unwrap(), 0);
}

async fn malformed_keys_never_reach_the_store(fx: Fixture) {
    let actix = fx.actix();
    let live = actix
        .save(state(&[("a", json!(1))]), &Ttl::hours(1))
        .await
        .unwrap();
    let calls = fx.counted.calls();
    let actix_style = "a".repeat(64);
    let bad_padding = format!("{}B", "A".repeat(42));
    let padded = format!("{}=", live.as_ref()); // a live token, spelled otherwise
    let s = state(&[("a", json!(2))]);
    for bad in ["", "malformed", &actix_style, &bad_padding, &padded] {
        assert_eq!(actix.load(&key(bad)).await.unwrap(), None, "{bad:?}");
        let back = actix
            .update(key(bad), s.clone(), &Ttl::hours(1))
            .await
            .unwrap();
        assert_eq!(back.as_ref(), bad);
        actix.update_ttl(&key(bad), &Ttl::hours(1)).await.unwrap();
        actix.delete(&key(bad)).await.unwrap();
    }
    assert_eq!(
        fx.counted.calls(),
        calls,
        "a malformed key reached the store"
    );
    assert_eq!(
        actix.load(&live).await.unwrap().unwrap()["a"],
        "1",
        "the live session was not touched"
    );
}

async fn reserved_key_is_serialization_error(fx: Fixture) {
    let actix = fx.actix();
    let bad = state(&[("__session__", json!(1))]);
    let err = actix.save(bad.clone(), &Ttl::hours(1)).await.unwrap_err();
    assert!(matches!(err, SaveError::Serialization(_)), "{err:?}");
    assert!(format!("{err:?}").contains("__session__"), "{err:?}");
    assert_eq!(fx.store.count().await.unwrap(), 0);

    let k = actix
        .save(state(&[("a", json!(1))]), &Ttl::hours(1))
        .await
        .unwrap();
    let err = actix
        .update(same(&k), bad, &Ttl::hours(1))
        .await
        .unwrap_err();
    assert!(matches!(err, UpdateError::Serialization(_)), "{err:?}");
    assert_no_secret(&format!("{err} {err:?}"), &k);
    assert_eq!(actix.load(&k).await.unwrap().unwrap().len(), 1);

    // Text that is not JSON cannot be part of a JSON object.
    let not_json: HashMap<String, String> = [("raw".to_owned(), "hunter2".to_owned())].into();
    let err = actix
        .save(not_json.clone(), &Ttl::hours(1))
        .await
        .unwrap_err();
    assert!(matches!(err, SaveError::Serialization(_)), "{err:?}");
    assert!(!format!("{err} {err:?}").contains("hunter2"), "{err:?}");
    let err = actix
        .update(same(&k), not_json, &Ttl::hours(1))
        .await
        .unwrap_err();
    assert!(matches!(err, UpdateError::Serialization(_)), "{err:?}");
    assert_eq!(fx.store.count().await.unwrap(), 1);
}

async fn delete_is_idempotent(fx: Fixture) {
    let actix = fx.actix();
    let k = actix
        .save(state(&[("a", json!(1))]), &Ttl::hours(1))
        .await
        .unwrap();
    actix.delete(&k).await.unwrap();
    actix
        .delete(&k)
        .await
        .expect("deleting a missing session is fine");
    assert_eq!(actix.load(&k).await.unwrap(), None);
}

/// Neither the key (the token) appears in the error.
fn assert_no_secret(shown: &str, k: &SessionKey) {
    assert!(!shown.contains(k.as_ref()), "token in error: {shown}");
}

/// Answers the first `taken` `Create` puts with `AlreadyExists`, as if a live session had
/// each fresh id (in a [`Hooked`] memory store, see [`taken_ids`]).
#[derive(Debug)]
struct TakenIds {
    taken: usize,
    creates: AtomicUsize,
}

impl Hook for TakenIds {
    fn before_put(&self, mode: PutMode) -> Result<()> {
        if mode == PutMode::Create && self.creates.fetch_add(1, Ordering::SeqCst) < self.taken {
            return Err(Error::AlreadyExists);
        }
        Ok(())
    }
}

fn taken_ids(taken: usize) -> Arc<Hooked<TakenIds>> {
    let hook = TakenIds {
        taken,
        creates: AtomicUsize::new(0),
    };
    Arc::new(Hooked::with(Arc::new(MemoryStore::new()), hook))
}

#[tokio::test]
async fn save_retries_on_a_taken_id() {
    let store = taken_ids(3);
    let actix = ActixStore::new(store.clone());
    let k = actix
        .save(state(&[("a", json!(1))]), &Ttl::hours(1))
        .await
        .unwrap();
    assert_eq!(
        store.creates.load(Ordering::SeqCst),
        4,
        "three taken, the fourth stored"
    );
    assert!(actix.load(&k).await.unwrap().is_some());
    assert_eq!(store.count().await.unwrap(), 1);
}

#[tokio::test]
async fn save_gives_up_after_its_attempts() {
    let store = taken_ids(usize::MAX);
    let actix = ActixStore::new(store.clone());
    let err = actix
        .save(state(&[("a", json!(1))]), &Ttl::hours(1))
        .await
        .unwrap_err();
    assert!(matches!(err, SaveError::Other(_)), "{err:?}");
    assert!(format!("{err:?}").contains("no free id"), "{err:?}");
    assert_eq!(store.creates.load(Ordering::SeqCst), SAVE_ATTEMPTS);
    assert_eq!(store.count().await.unwrap(), 0);
}

#[tokio::test]
async fn too_large_is_serialization_error() {
    let config = SessionConfig {
        max_session_bytes: 64,
        ..SessionConfig::default()
    };
    let actix = ActixStore::new(Arc::new(MemoryStore::builder().config(config).build()));
    let err = actix
        .save(state(&[("blob", json!("x".repeat(100)))]), &Ttl::hours(1))
        .await
        .unwrap_err();
    assert!(matches!(err, SaveError::Serialization(_)), "{err:?}");
}

#[tokio::test]
async fn redis_outage_is_other_error_without_secrets() {
    let mut fx = Fixture::start(Kind::Redis).await;
    let actix = fx.actix();
    let k = actix
        .save(state(&[("a", json!(1))]), &Ttl::hours(1))
        .await
        .unwrap();

    fx.redis.as_mut().unwrap().0.kill();
    let err = actix.load(&k).await.unwrap_err();
    let shown = format!("{err} {err:?}");
    assert!(matches!(err, LoadError::Other(_)), "{shown}");
    assert!(
        shown.contains("redis session store: load failed"),
        "{shown}"
    );
    assert_no_secret(&shown, &k);

    let err = actix
        .save(state(&[("a", json!(1))]), &Ttl::hours(1))
        .await
        .unwrap_err();
    assert!(matches!(err, SaveError::Other(_)), "{err:?}");
    let err = actix
        .update(same(&k), state(&[("a", json!(2))]), &Ttl::hours(1))
        .await
        .unwrap_err();
    assert!(matches!(err, UpdateError::Other(_)), "{err:?}");
    assert_no_secret(&format!("{err} {err:?}"), &k);
    let err = actix.update_ttl(&k, &Ttl::hours(1)).await.unwrap_err();
    assert_no_secret(&format!("{err} {err:?} {err:#}"), &k);
    assert!(format!("{err}").contains("update_ttl failed"), "{err}");
    let err = actix.delete(&k).await.unwrap_err();
    assert_no_secret(&format!("{err} {err:?} {err:#}"), &k);
}

#[tokio::test]
async fn corrupt_record_is_deserialization_error() {
    let fx = Fixture::start(Kind::Redis).await;
    let actix = fx.actix();
    let id = SessionId::generate();
    let (server, prefix) = fx.redis.as_ref().unwrap();
    let _: () = ::redis::cmd("SET")
        .arg(format!("{prefix}{}", id.expose_token()))
        .arg("not json")
        .arg("EX")
        .arg(3600)
        .query(&mut server.connection())
        .unwrap();
    let k = ActixStore::session_key(&id);
    let err = actix.load(&k).await.unwrap_err();
    let shown = format!("{err} {err:?}");
    assert!(matches!(err, LoadError::Deserialization(_)), "{shown}");
    assert_no_secret(&shown, &k);
}

#[tokio::test]
async fn redis_value_is_the_existing_service_format() {
    let fx = Fixture::start(Kind::Redis).await;
    let k = fx
        .actix()
        .save(
            state(&[
                ("csrf_token", json!("t")),
                ("n", json!(1)),
                ("user", json!({"sub": "u-1"})),
            ]),
            &Ttl::hours(1),
        )
        .await
        .unwrap();
    let (server, prefix) = fx.redis.as_ref().unwrap();
    // The key is the token itself, as the existing service names its keys.
    let raw: String = ::redis::cmd("GET")
        .arg(format!("{prefix}{}", k.as_ref()))
        .query(&mut server.connection())
        .unwrap();
    let value: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(value["csrf_token"], "t", "{raw}");
    assert_eq!(value["n"], 1, "{raw}");
    assert_eq!(
        value["user"]["sub"], "u-1",
        "an object, not JSON text: {raw}"
    );
}

#[tokio::test]
async fn debug_shows_no_secrets() {
    let (_server, store) = adapter_testkit::redis_with_password("hunter2-secret").await;
    let actix = ActixStore::new(Arc::new(store));
    let k = actix
        .save(state(&[("a", json!(1))]), &Ttl::hours(1))
        .await
        .unwrap();

    let shown = format!("{actix:?} {actix:#?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert_no_secret(&shown, &k);
    assert_eq!(
        format!("{actix:?}"),
        r#"ActixStore { backend: "redis", .. }"#
    );
}
