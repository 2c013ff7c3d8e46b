//! load, insert, set, delete, exists, and the checks every write makes.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use session_core::{Clock, Error, SessionId, SessionStoreExt, WriteOptions, RESERVED_KEY};

use crate::ctx::{data, Ctx, IDLE};
use crate::factory::StoreFactory;

/// Oversized data is refused with `TooLarge` by every write, and nothing is written.
pub async fn oversized_write_is_rejected(f: Arc<dyn StoreFactory>) {
    let cx = Ctx::with(&*f, |c| c.max_session_bytes = 1000).await;
    let big = data(json!({"blob": "x".repeat(1000)}));
    let id = SessionId::generate();
    let err = cx.store.set(&id, big.clone()).await.unwrap_err();
    assert!(
        matches!(err, Error::TooLarge { limit: 1000, .. }),
        "set: {err:?}"
    );
    assert!(
        !cx.store.exists(&id).await.unwrap(),
        "a refused set wrote something"
    );
    let err = cx.store.create(big.clone()).await.unwrap_err();
    assert!(matches!(err, Error::TooLarge { .. }), "create: {err:?}");
    assert_eq!(cx.store.count().await.unwrap(), 0);

    let mut session = cx.store.create(data(json!({"small": 1}))).await.unwrap();
    session.insert("blob", "x".repeat(1000)).unwrap();
    let err = cx.store.save(session.clone()).await.unwrap_err();
    assert!(matches!(err, Error::TooLarge { .. }), "save: {err:?}");
    let stored = cx.store.get(session.id()).await.unwrap().unwrap();
    assert_eq!(
        stored.data(),
        &data(json!({"small": 1})),
        "a refused save changed the data"
    );
    // Exactly at the limit is accepted.
    let exact = data(json!({"b": "y".repeat(1000 - r#"{"b":""}"#.len())}));
    cx.store.set(&id, exact).await.unwrap();
}

/// Data holding the reserved key is refused with `InvalidData`; nothing is written.
pub async fn reserved_key_is_rejected(f: Arc<dyn StoreFactory>) {
    let cx = Ctx::new(&*f).await;
    let bad = data(json!({ RESERVED_KEY: {"c": 1}, "user": "x" }));
    let id = SessionId::generate();
    let err = cx.store.set(&id, bad.clone()).await.unwrap_err();
    assert!(matches!(err, Error::InvalidData { .. }), "set: {err:?}");
    assert!(!cx.store.exists(&id).await.unwrap());
    assert!(matches!(
        cx.store.create(bad).await,
        Err(Error::InvalidData { .. })
    ));
    let mut session = cx.store.create(data(json!({}))).await.unwrap();
    session.insert(RESERVED_KEY, 1).unwrap();
    assert!(matches!(
        cx.store.save(session).await,
        Err(Error::InvalidData { .. })
    ));
}

/// An id never stored loads as `None`.
pub async fn load_missing_is_none(f: Arc<dyn StoreFactory>) {
    let cx = Ctx::new(&*f).await;
    assert!(cx
        .store
        .load(&SessionId::generate())
        .await
        .unwrap()
        .is_none());
}

/// What was written loads back: data and lifetime.
pub async fn load_returns_what_was_stored(f: Arc<dyn StoreFactory>) {
    let cx = Ctx::with(&*f, |c| {
        c.absolute_lifetime = Some(Duration::from_secs(1000))
    })
    .await;
    let now = cx.clock.now();
    let value = json!({
        "user": {"username": "aaron", "email": "aaron@example.com", "role": "admin",
                 "sub": "user-uuid", "preferred_username": "aaron"},
        "access_token": "keycloak_access_token",
        "created": 1234567890.0,
        "csrf_token": "csrf_token_value",
        "nested": {"list": [1, 2.5, null, true, "é \" \\ \u{1F600}"], "empty": {}, "none": []},
        "big": 9007199254740993u64,
        "neg": -42
    });
    let written = cx.store.create(data(value.clone())).await.unwrap();
    let loaded = cx
        .store
        .load(written.id())
        .await
        .unwrap()
        .expect("just written");
    assert_eq!(loaded.data(), &data(value));
    assert_eq!(loaded.id(), written.id());
    assert_eq!(loaded.lifetime(), written.lifetime());
    assert_eq!(loaded.version(), written.version());
    let lt = loaded.lifetime();
    assert_eq!(lt.created_at, now);
    assert_eq!(lt.idle_timeout, IDLE);
    assert_eq!(lt.idle_expires_at, now.saturating_add(IDLE));
    assert_eq!(
        lt.absolute_expires_at,
        Some(now.saturating_add(Duration::from_secs(1000)))
    );
}

/// Once `now >= expires_at` the session is gone; the instant itself is expired.
pub async fn load_expired_is_none(f: Arc<dyn StoreFactory>) {
    let cx = Ctx::new(&*f).await;
    let s = cx.store.create(data(json!({"a": 1}))).await.unwrap();
    cx.clock.advance(IDLE - Duration::from_millis(1));
    assert!(
        cx.store.load(s.id()).await.unwrap().is_some(),
        "expired 1 ms early"
    );
    cx.clock.advance(Duration::from_millis(1));
    assert!(
        cx.store.load(s.id()).await.unwrap().is_none(),
        "live at its expiry instant"
    );
    cx.advance_secs(1000);
    assert!(cx.store.load(s.id()).await.unwrap().is_none());
}

/// Loading does not slide the idle expiry.
pub async fn load_does_not_extend(f: Arc<dyn StoreFactory>) {
    let cx = Ctx::new(&*f).await;
    let s = cx.store.create(data(json!({"a": 1}))).await.unwrap();
    for _ in 0..3 {
        cx.advance_secs(30);
        let loaded = cx.store.load(s.id()).await.unwrap().unwrap();
        assert_eq!(loaded.lifetime(), s.lifetime());
    }
    cx.advance_secs(10);
    assert!(
        cx.store.load(s.id()).await.unwrap().is_none(),
        "loads extended the session"
    );
}

/// `insert` stores a fresh id with the default or given lifetime.
pub async fn insert_stores_new_session(f: Arc<dyn StoreFactory>) {
    let cx = Ctx::new(&*f).await;
    let id = SessionId::generate();
    let opts = WriteOptions {
        idle_timeout: Some(Duration::from_secs(5)),
    };
    let s = cx
        .store
        .insert(&id, data(json!({"k": "v"})), opts)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.id(), &id);
    assert_eq!(s.lifetime().created_at, cx.clock.now());
    assert_eq!(s.lifetime().idle_timeout, Duration::from_secs(5));
    let other = SessionId::generate();
    let d = cx
        .store
        .insert(&other, data(json!({})), WriteOptions::default())
        .await
        .unwrap();
    assert_eq!(d.unwrap().lifetime().idle_timeout, IDLE);
    assert_eq!(
        cx.store.load(&id).await.unwrap().unwrap().data(),
        &data(json!({"k": "v"}))
    );
}

/// `insert` leaves a live session alone and returns `None`.
pub async fn insert_never_overwrites_live_session(f: Arc<dyn StoreFactory>) {
    let cx = Ctx::new(&*f).await;
    let s = cx
        .store
        .create(data(json!({"owner": "first"})))
        .await
        .unwrap();
    cx.advance_secs(10);
    let again = cx
        .store
        .insert(s.id(), data(json!({"owner": "second"})), Default::default());
    assert!(again.await.unwrap().is_none());
    let stored = cx.store.load(s.id()).await.unwrap().unwrap();
    assert_eq!(stored.data(), s.data());
    assert_eq!(stored.lifetime(), s.lifetime());
    assert_eq!(stored.version(), s.version());
}

/// An expired session counts as absent for `insert`.
pub async fn insert_over_expired_session_starts_fresh(f: Arc<dyn StoreFactory>) {
    let cx = Ctx::new(&*f).await;
    let s = cx.store.create(data(json!({"gen": 1}))).await.unwrap();
    cx.advance_secs(100);
    let fresh = cx
        .store
        .insert(s.id(), data(json!({"gen": 2})), Default::default());
    let fresh = fresh.await.unwrap().expect("expired id must be reusable");
    assert_eq!(fresh.lifetime().created_at, cx.clock.now());
    assert_eq!(
        cx.store.load(s.id()).await.unwrap().unwrap().data()["gen"],
        2
    );
}

/// `set` stores and the data loads back.
pub async fn set_then_load(f: Arc<dyn StoreFactory>) {
    let cx = Ctx::new(&*f).await;
    let id = SessionId::generate();
    let s = cx
        .store
        .set(&id, data(json!({"user": {"username": "a"}})))
        .await
        .unwrap();
    assert_eq!(s.lifetime().created_at, cx.clock.now());
    let loaded = cx.store.load(&id).await.unwrap().unwrap();
    assert_eq!(loaded.data(), &data(json!({"user": {"username": "a"}})));
    assert_eq!(loaded.version(), s.version());
}

/// `set` on a live session replaces the data and slides the idle expiry.
pub async fn set_replaces_data_and_slides_idle_expiry(f: Arc<dyn StoreFactory>) {
    let cx = Ctx::new(&*f).await;
    let s = cx
        .store
        .create(data(json!({"a": 1, "b": 2})))
        .await
        .unwrap();
    cx.advance_secs(60);
    let after = cx.store.set(s.id(), data(json!({"c": 3}))).await.unwrap();
    assert_eq!(
        after.lifetime().idle_expires_at,
        cx.clock.now().saturating_add(IDLE)
    );
    assert_ne!(after.version(), s.version());
    cx.advance_secs(60);
    let loaded = cx
        .store
        .load(s.id())
        .await
        .unwrap()
        .expect("set must slide the expiry");
    assert_eq!(loaded.data(), &data(json!({"c": 3})));
}

/// `set` keeps `created_at` and the absolute expiry of a live session.
pub async fn set_keeps_creation_and_absolute_expiry(f: Arc<dyn StoreFactory>) {
    let cx = Ctx::with(&*f, |c| {
        c.absolute_lifetime = Some(Duration::from_secs(150))
    })
    .await;
    let s = cx.store.create(data(json!({}))).await.unwrap();
    cx.advance_secs(90);
    let after = cx.store.set(s.id(), data(json!({"x": 1}))).await.unwrap();
    assert_eq!(after.lifetime().created_at, s.lifetime().created_at);
    assert_eq!(
        after.lifetime().absolute_expires_at,
        s.lifetime().absolute_expires_at
    );
    cx.advance_secs(59);
    assert!(cx.store.exists(s.id()).await.unwrap());
    cx.advance_secs(1);
    assert!(
        !cx.store.exists(s.id()).await.unwrap(),
        "set extended the absolute lifetime"
    );
}

/// `set` over an expired session starts a new one.
pub async fn set_over_expired_session_starts_fresh(f: Arc<dyn StoreFactory>) {
    let cx = Ctx::with(&*f, |c| {
        c.absolute_lifetime = Some(Duration::from_secs(150))
    })
    .await;
    let s = cx.store.create(data(json!({"gen": 1}))).await.unwrap();
    cx.advance_secs(120);
    let fresh = cx.store.set(s.id(), data(json!({"gen": 2}))).await.unwrap();
    let now = cx.clock.now();
    assert_eq!(fresh.lifetime().created_at, now);
    assert_eq!(
        fresh.lifetime().absolute_expires_at,
        Some(now.saturating_add(Duration::from_secs(150)))
    );
}

/// `WriteOptions::idle_timeout` sets the session's own idle timeout.
pub async fn set_with_idle_timeout(f: Arc<dyn StoreFactory>) {
    let cx = Ctx::new(&*f).await;
    let id = SessionId::generate();
    let opts = WriteOptions {
        idle_timeout: Some(Duration::from_secs(500)),
    };
    cx.store.set_with(&id, data(json!({})), opts).await.unwrap();
    cx.advance_secs(400);
    assert!(
        cx.store.refresh(&id).await.unwrap(),
        "the 500 s timeout was not kept"
    );
    let lt = *cx.store.load(&id).await.unwrap().unwrap().lifetime();
    assert_eq!(lt.idle_timeout, Duration::from_secs(500));
    assert_eq!(
        lt.idle_expires_at,
        cx.clock.now().saturating_add(Duration::from_secs(500))
    );
    // A later plain set keeps the session's own timeout.
    let again = cx.store.set(&id, data(json!({"x": 1}))).await.unwrap();
    assert_eq!(again.lifetime().idle_timeout, Duration::from_secs(500));
}

/// `delete` removes a live session and says so.
pub async fn delete_removes_session(f: Arc<dyn StoreFactory>) {
    let cx = Ctx::new(&*f).await;
    let s = cx.store.create(data(json!({"a": 1}))).await.unwrap();
    let other = cx.store.create(data(json!({"b": 2}))).await.unwrap();
    assert!(cx.store.delete(s.id()).await.unwrap());
    assert!(cx.store.load(s.id()).await.unwrap().is_none());
    assert!(
        cx.store.load(other.id()).await.unwrap().is_some(),
        "delete removed another session"
    );
}

/// Deleting an unknown, deleted or expired id gives `false`.
pub async fn delete_missing_is_false(f: Arc<dyn StoreFactory>) {
    let cx = Ctx::new(&*f).await;
    assert!(!cx.store.delete(&SessionId::generate()).await.unwrap());
    let s = cx.store.create(data(json!({}))).await.unwrap();
    assert!(cx.store.delete(s.id()).await.unwrap());
    assert!(
        !cx.store.delete(s.id()).await.unwrap(),
        "second delete reported a removal"
    );
    let t = cx.store.create(data(json!({}))).await.unwrap();
    cx.advance_secs(100);
    assert!(
        !cx.store.delete(t.id()).await.unwrap(),
        "deleting an expired session reported a removal"
    );
}

/// `exists` follows writes, deletes and expiry.
pub async fn exists_follows_liveness(f: Arc<dyn StoreFactory>) {
    let cx = Ctx::new(&*f).await;
    let id = SessionId::generate();
    assert!(!cx.store.exists(&id).await.unwrap());
    cx.store.set(&id, data(json!({}))).await.unwrap();
    assert!(cx.store.exists(&id).await.unwrap());
    cx.store.delete(&id).await.unwrap();
    assert!(!cx.store.exists(&id).await.unwrap());
    cx.store.set(&id, data(json!({}))).await.unwrap();
    cx.advance_secs(99);
    assert!(cx.store.exists(&id).await.unwrap());
    cx.advance_secs(1);
    assert!(!cx.store.exists(&id).await.unwrap());
}
