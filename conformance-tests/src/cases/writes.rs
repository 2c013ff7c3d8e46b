//! refresh and rotate: the writes that keep a live session's data.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use session_core::{Clock, PutMode, SessionId, SessionStoreExt, WriteOptions};

use crate::ctx::{data, Ctx, IDLE};
use crate::factory::StoreFactory;

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

/// A refresh moves only the expiry: a session loaded before it still saves at the version it
/// was loaded with, and that save slides the idle expiry as any write does.
pub async fn refresh_keeps_the_version(f: Arc<dyn StoreFactory>) {
    let cx = Ctx::with(&*f, |c| {
        c.absolute_lifetime = Some(Duration::from_secs(1000))
    })
    .await;
    let s = cx.store.create(data(json!({"n": 1}))).await.unwrap();
    let loaded = cx.store.load(s.id()).await.unwrap().unwrap();
    let v = loaded.version();
    cx.advance_secs(30);
    assert!(cx.store.refresh(s.id()).await.unwrap());
    let refreshed = cx.store.load(s.id()).await.unwrap().unwrap();
    assert_eq!(refreshed.version(), v, "refresh changed the version");
    assert_eq!(refreshed.data(), loaded.data());
    assert_eq!(
        refreshed.lifetime().idle_expires_at,
        cx.now().saturating_add(IDLE)
    );

    cx.advance_secs(20);
    let mode = PutMode::IfVersion(v);
    let saved = cx
        .put(s.id(), data(json!({"n": 2})), mode, WriteOptions::new())
        .await
        .expect("a refresh made the copy loaded before it stale");
    assert_eq!(
        saved.lifetime().idle_expires_at,
        cx.now().saturating_add(IDLE)
    );
    assert_eq!(saved.lifetime().created_at, s.lifetime().created_at);
    assert_eq!(
        saved.lifetime().absolute_expires_at,
        s.lifetime().absolute_expires_at
    );
    assert_ne!(saved.version(), v, "a put must give a new version");
    let loaded = cx.store.load(s.id()).await.unwrap().unwrap();
    assert_eq!(loaded.data(), &data(json!({"n": 2})));
    assert_eq!(loaded.version(), saved.version());
    assert_eq!(loaded.lifetime(), saved.lifetime());

    // The same through `save`: load, refresh (a page view), then save the loaded copy.
    cx.advance_secs(10);
    let mut copy = loaded;
    assert!(cx.store.refresh(s.id()).await.unwrap());
    cx.advance_secs(10);
    copy.insert("n", 3).unwrap();
    let saved = cx
        .store
        .save(copy)
        .await
        .expect("save after a refresh conflicted");
    assert_eq!(
        saved.lifetime().idle_expires_at,
        cx.now().saturating_add(IDLE)
    );
    assert_eq!(cx.store.load(s.id()).await.unwrap().unwrap().data()["n"], 3);
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
