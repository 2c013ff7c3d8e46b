//! save, refresh, rotate: the writes that need a live session.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use session_core::{Clock, Error, SessionId, SessionStoreExt};

use crate::ctx::{data, Ctx, IDLE};
use crate::factory::StoreFactory;

/// A saved change loads back; idle expiry slides; creation and absolute expiry stay.
pub async fn save_persists_changes(f: Arc<dyn StoreFactory>) {
    let cx = Ctx::with(&*f, |c| {
        c.absolute_lifetime = Some(Duration::from_secs(1000))
    })
    .await;
    let mut s = cx
        .store
        .create(data(json!({"user": {"sub": "u"}, "n": 1})))
        .await
        .unwrap();
    cx.advance_secs(50);
    s.insert("n", 2).unwrap();
    s.insert("csrf_token", "t").unwrap();
    let saved = cx.store.save(s.clone()).await.unwrap();
    assert_eq!(
        saved.lifetime().idle_expires_at,
        cx.clock.now().saturating_add(IDLE)
    );
    assert_eq!(saved.lifetime().created_at, s.lifetime().created_at);
    assert_eq!(
        saved.lifetime().absolute_expires_at,
        s.lifetime().absolute_expires_at
    );
    let loaded = cx.store.load(s.id()).await.unwrap().unwrap();
    assert_eq!(
        loaded.data(),
        &data(json!({"user": {"sub": "u"}, "n": 2, "csrf_token": "t"}))
    );
    assert_eq!(loaded.version(), saved.version());
    assert_eq!(loaded.lifetime(), saved.lifetime());
}

/// The session `save` returns can be saved again.
pub async fn save_returns_the_new_version(f: Arc<dyn StoreFactory>) {
    let cx = Ctx::new(&*f).await;
    let mut s = cx.store.create(data(json!({"n": 0}))).await.unwrap();
    for n in 1..=3 {
        let before = s.version();
        s.insert("n", n).unwrap();
        s = cx.store.save(s).await.unwrap();
        assert_ne!(s.version(), before, "a save must change the version");
    }
    assert_eq!(cx.store.load(s.id()).await.unwrap().unwrap().data()["n"], 3);
}

/// Saving a session written since it was loaded conflicts and writes nothing.
pub async fn save_of_stale_session_conflicts(f: Arc<dyn StoreFactory>) {
    let cx = Ctx::new(&*f).await;
    let s = cx.store.create(data(json!({"n": 0}))).await.unwrap();
    let id = s.id().clone();
    // Each kind of intervening write makes the loaded copy stale.
    for write in ["save", "set", "refresh"] {
        let mut stale = cx.store.load(&id).await.unwrap().unwrap();
        let mut fresh = cx.store.load(&id).await.unwrap().unwrap();
        match write {
            "save" => {
                fresh.insert("by", "other").unwrap();
                cx.store.save(fresh).await.unwrap();
            }
            "set" => {
                cx.store.set(&id, data(json!({"by": "set"}))).await.unwrap();
            }
            _ => assert!(cx.store.refresh(&id).await.unwrap()),
        }
        let expected = cx.store.load(&id).await.unwrap().unwrap();
        stale.insert("lost", true).unwrap();
        let err = cx.store.save(stale).await.unwrap_err();
        assert!(matches!(err, Error::Conflict), "after {write}: {err:?}");
        assert!(err.is_retryable());
        let now = cx.store.load(&id).await.unwrap().unwrap();
        assert_eq!(
            now.data(),
            expected.data(),
            "a conflicting save wrote data after {write}"
        );
        assert_eq!(now.version(), expected.version());
    }
}

/// A save never brings back a session deleted, rotated away or expired after loading.
pub async fn save_does_not_resurrect(f: Arc<dyn StoreFactory>) {
    let cx = Ctx::new(&*f).await;
    for ending in ["delete", "rotate", "expiry", "delete_user"] {
        let s = cx
            .store
            .create(data(json!({"user": {"sub": "u1"}})))
            .await
            .unwrap();
        let mut loaded = cx.store.load(s.id()).await.unwrap().unwrap();
        match ending {
            "delete" => assert!(cx.store.delete(s.id()).await.unwrap()),
            "rotate" => assert!(cx.store.rotate(s.id()).await.unwrap().is_some()),
            "delete_user" => assert_eq!(cx.store.delete_user("u1").await.unwrap(), 1),
            _ => cx.advance_secs(100),
        }
        loaded.insert("after", ending).unwrap();
        let err = cx.store.save(loaded).await.unwrap_err();
        assert!(matches!(err, Error::NotFound), "after {ending}: {err:?}");
        assert!(
            !cx.store.exists(s.id()).await.unwrap(),
            "save resurrected after {ending}"
        );
        cx.store.delete_user("u1").await.unwrap();
    }
}

/// `refresh` slides the idle expiry of a live session and changes nothing else.
pub async fn refresh_slides_idle_expiry(f: Arc<dyn StoreFactory>) {
    let cx = Ctx::new(&*f).await;
    let s = cx.store.create(data(json!({"keep": "me"}))).await.unwrap();
    cx.advance_secs(80);
    assert!(cx.store.refresh(s.id()).await.unwrap());
    cx.advance_secs(80);
    let loaded = cx
        .store
        .load(s.id())
        .await
        .unwrap()
        .expect("refresh did not extend");
    assert_eq!(loaded.data(), s.data());
    assert_eq!(loaded.lifetime().created_at, s.lifetime().created_at);
    assert_eq!(
        loaded.lifetime().idle_expires_at,
        s.lifetime()
            .created_at
            .saturating_add(Duration::from_secs(80) + IDLE)
    );
    cx.advance_secs(20);
    assert!(cx.store.load(s.id()).await.unwrap().is_none());
}

/// Refreshing an unknown or expired id gives `false` and stores nothing.
pub async fn refresh_missing_is_false(f: Arc<dyn StoreFactory>) {
    let cx = Ctx::new(&*f).await;
    let id = SessionId::generate();
    assert!(!cx.store.refresh(&id).await.unwrap());
    assert!(!cx.store.exists(&id).await.unwrap());
    let s = cx.store.create(data(json!({}))).await.unwrap();
    cx.advance_secs(100);
    assert!(!cx.store.refresh(s.id()).await.unwrap());
    assert!(
        !cx.store.exists(s.id()).await.unwrap(),
        "refresh revived an expired session"
    );
    assert_eq!(cx.store.count().await.unwrap(), 0);
}

/// However often refreshed, a session dies at its absolute expiry.
pub async fn refresh_never_passes_absolute_expiry(f: Arc<dyn StoreFactory>) {
    let cx = Ctx::with(&*f, |c| {
        c.absolute_lifetime = Some(Duration::from_secs(250))
    })
    .await;
    let s = cx.store.create(data(json!({}))).await.unwrap();
    for _ in 0..4 {
        cx.advance_secs(60);
        assert!(cx.store.refresh(s.id()).await.unwrap());
    }
    cx.advance_secs(9);
    assert!(cx.store.exists(s.id()).await.unwrap());
    cx.advance_secs(1);
    assert!(
        !cx.store.exists(s.id()).await.unwrap(),
        "outlived its absolute expiry"
    );
    assert!(!cx.store.refresh(s.id()).await.unwrap());
}

/// A session loaded before a refresh no longer saves.
pub async fn refresh_changes_the_version(f: Arc<dyn StoreFactory>) {
    let cx = Ctx::new(&*f).await;
    let s = cx.store.create(data(json!({}))).await.unwrap();
    assert!(cx.store.refresh(s.id()).await.unwrap());
    let after = cx.store.load(s.id()).await.unwrap().unwrap();
    assert_ne!(after.version(), s.version());
    assert!(matches!(cx.store.save(s).await, Err(Error::Conflict)));
}

/// `rotate` moves the data to a fresh id and kills the old one at once.
pub async fn rotate_moves_data_to_fresh_id(f: Arc<dyn StoreFactory>) {
    let cx = Ctx::with(&*f, |c| {
        c.absolute_lifetime = Some(Duration::from_secs(1000))
    })
    .await;
    let s = cx
        .store
        .create(data(json!({"user": {"sub": "u"}, "csrf_token": "c"})))
        .await
        .unwrap();
    cx.advance_secs(30);
    let rotated = cx
        .store
        .rotate(s.id())
        .await
        .unwrap()
        .expect("live session");
    assert_ne!(rotated.id(), s.id());
    assert_eq!(rotated.data(), s.data());
    assert_eq!(rotated.lifetime().created_at, s.lifetime().created_at);
    assert_eq!(
        rotated.lifetime().absolute_expires_at,
        s.lifetime().absolute_expires_at
    );
    assert_eq!(
        rotated.lifetime().idle_expires_at,
        cx.clock.now().saturating_add(IDLE)
    );
    assert!(
        !cx.store.exists(s.id()).await.unwrap(),
        "old id still alive"
    );
    let loaded = cx.store.load(rotated.id()).await.unwrap().unwrap();
    assert_eq!(loaded.data(), s.data());
    assert_eq!(loaded.version(), rotated.version());
    assert_eq!(cx.store.count().await.unwrap(), 1);
}

/// Rotating an unknown or expired id gives `None` and creates nothing.
pub async fn rotate_missing_is_none(f: Arc<dyn StoreFactory>) {
    let cx = Ctx::new(&*f).await;
    assert!(cx
        .store
        .rotate(&SessionId::generate())
        .await
        .unwrap()
        .is_none());
    let s = cx.store.create(data(json!({}))).await.unwrap();
    cx.advance_secs(100);
    assert!(cx.store.rotate(s.id()).await.unwrap().is_none());
    assert_eq!(cx.store.count().await.unwrap(), 0);
}

/// After `rotate` the user's listing shows the new session, not the old.
pub async fn rotate_keeps_user_index(f: Arc<dyn StoreFactory>) {
    let cx = Ctx::new(&*f).await;
    let s = cx
        .store
        .create(data(json!({"user": {"username": "aaron"}})))
        .await
        .unwrap();
    let rotated = cx.store.rotate(s.id()).await.unwrap().unwrap();
    let listed: Vec<_> = cx.store.list_user("aaron").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].handle, rotated.id().handle());
    assert_eq!(cx.store.delete_user("aaron").await.unwrap(), 1);
    assert!(!cx.store.exists(rotated.id()).await.unwrap());
}
