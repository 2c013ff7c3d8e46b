//! The checks every write makes; load, delete, exists.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use session_core::{
    Clock, Error, Lifetime, PutMode, SessionData, SessionId, SessionStoreExt, WriteOptions,
    RESERVED_KEY,
};

use crate::ctx::{data, Ctx, IDLE};
use crate::factory::StoreFactory;

/// Puts `bad` in every mode (over a live session and at a fresh id, with and without a given
/// lifetime), through `create` and `save` too; each must fail as `refused` says and write
/// nothing.
async fn refused_by_every_write(cx: &Ctx, bad: &SessionData, refused: fn(&Error) -> bool) {
    let original = data(json!({"small": 1}));
    let live = cx.store.create(original.clone()).await.unwrap();
    let fresh = SessionId::generate();
    let lifetime = Lifetime::starting(cx.now(), IDLE, None);
    let plain = WriteOptions::new;
    let attempts = [
        ("Create", &fresh, PutMode::Create, plain()),
        ("Upsert of a new id", &fresh, PutMode::Upsert, plain()),
        (
            "Create with a lifetime",
            &fresh,
            PutMode::Create,
            plain().with_lifetime(lifetime),
        ),
        ("Upsert", live.id(), PutMode::Upsert, plain()),
        ("IfLive", live.id(), PutMode::IfLive, plain()),
        (
            "IfVersion",
            live.id(),
            PutMode::IfVersion(live.version()),
            plain(),
        ),
        (
            "Upsert with an idle timeout",
            live.id(),
            PutMode::Upsert,
            plain().with_idle_timeout(IDLE),
        ),
    ];
    for (what, id, mode, options) in attempts {
        let err = cx.put(id, bad.clone(), mode, options).await.unwrap_err();
        assert!(refused(&err), "{what}: {err:?}");
    }
    let err = cx.store.create(bad.clone()).await.unwrap_err();
    assert!(refused(&err), "create: {err:?}");
    let mut changed = live.clone();
    *changed.data_mut() = bad.clone();
    let err = cx.store.save(changed).await.unwrap_err();
    assert!(refused(&err), "save: {err:?}");
    assert!(
        !cx.store.exists(&fresh).await.unwrap(),
        "a refused write created a session"
    );
    let stored = cx.store.load(live.id()).await.unwrap().unwrap();
    assert_eq!(stored.data(), &original, "a refused write changed the data");
    assert_eq!(
        stored.version(),
        live.version(),
        "a refused write changed the version"
    );
    assert_eq!(stored.lifetime(), live.lifetime());
    assert_eq!(cx.store.count().await.unwrap(), 1);
}

/// Oversized data is refused with `TooLarge` by every write, and nothing is written.
pub async fn oversized_write_is_rejected(f: Arc<dyn StoreFactory>) {
    let cx = Ctx::with(&*f, |c| c.max_session_bytes = 1000).await;
    let big = data(json!({"blob": "x".repeat(1000)}));
    refused_by_every_write(
        &cx,
        &big,
        |e| matches!(e, Error::TooLarge { limit: 1000, size } if *size > 1000),
    )
    .await;
    // Exactly at the limit is accepted.
    let exact = data(json!({"b": "y".repeat(1000 - r#"{"b":""}"#.len())}));
    let id = SessionId::generate();
    cx.store.set(&id, exact.clone()).await.unwrap();
    assert_eq!(cx.store.load(&id).await.unwrap().unwrap().data(), &exact);
}

/// Data holding the reserved key is refused with `InvalidData`; nothing is written.
pub async fn reserved_key_is_rejected(f: Arc<dyn StoreFactory>) {
    let cx = Ctx::new(&*f).await;
    let bad = data(json!({ RESERVED_KEY: {"c": 1}, "user": "x" }));
    refused_by_every_write(&cx, &bad, |e| matches!(e, Error::InvalidData { .. })).await;
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
