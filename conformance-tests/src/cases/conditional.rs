//! `put` with a precondition on the session there: `IfLive` and `IfVersion`.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use session_core::{Error, PutMode, Session, SessionId, SessionStoreExt, WriteOptions};

use crate::ctx::{data, Ctx, IDLE};
use crate::factory::StoreFactory;

/// The ways a session stops existing that a conditional put must respect.
const ENDINGS: [&str; 4] = ["delete", "rotate", "expiry", "delete_user"];

/// Creates a session of user `u1` and ends it as `ending` says; returns it as loaded before.
async fn ended(cx: &Ctx, ending: &str) -> Session {
    let s = cx
        .store
        .create(data(json!({"user": {"sub": "u1"}})))
        .await
        .unwrap();
    let loaded = cx.store.load(s.id()).await.unwrap().unwrap();
    match ending {
        "delete" => assert!(cx.store.delete(s.id()).await.unwrap()),
        "rotate" => assert!(cx.store.rotate(s.id()).await.unwrap().is_some()),
        "delete_user" => assert!(cx.store.delete_user("u1").await.unwrap() >= 1),
        _ => cx.advance_secs(IDLE.as_secs()),
    }
    loaded
}

/// `IfLive` replaces a live session whatever its version; creation and absolute expiry stay.
pub async fn put_if_live_replaces_live_session(f: Arc<dyn StoreFactory>) {
    let cx = Ctx::with(&*f, |c| {
        c.absolute_lifetime = Some(Duration::from_secs(1000))
    })
    .await;
    let s = cx.store.create(data(json!({"n": 1}))).await.unwrap();
    // Someone else writes it: the version the caller knows is stale, which IfLive ignores.
    cx.store.set(s.id(), data(json!({"n": 2}))).await.unwrap();
    assert!(cx.store.refresh(s.id()).await.unwrap());
    cx.advance_secs(30);
    let put = cx
        .put(
            s.id(),
            data(json!({"n": 3})),
            PutMode::IfLive,
            WriteOptions::new(),
        )
        .await
        .unwrap();
    assert_eq!(put.data(), &data(json!({"n": 3})));
    assert_eq!(put.lifetime().created_at, s.lifetime().created_at);
    assert_eq!(
        put.lifetime().absolute_expires_at,
        s.lifetime().absolute_expires_at
    );
    assert_eq!(put.lifetime().idle_timeout, IDLE);
    assert_eq!(
        put.lifetime().idle_expires_at,
        cx.now().saturating_add(IDLE)
    );
    assert_ne!(put.version(), s.version());
    let loaded = cx.store.load(s.id()).await.unwrap().unwrap();
    assert_eq!(loaded.data(), put.data());
    assert_eq!(loaded.lifetime(), put.lifetime());
    assert_eq!(loaded.version(), put.version());
    assert_eq!(cx.store.count().await.unwrap(), 1);
}

/// `IfLive` on an unknown, deleted, rotated away or expired id is `NotFound`; it stays absent.
pub async fn put_if_live_does_not_resurrect(f: Arc<dyn StoreFactory>) {
    let cx = Ctx::new(&*f).await;
    let unknown = SessionId::generate();
    let got = cx
        .put(
            &unknown,
            data(json!({})),
            PutMode::IfLive,
            WriteOptions::new(),
        )
        .await;
    assert!(matches!(got, Err(Error::NotFound)), "unknown id: {got:?}");
    assert!(
        !cx.store.exists(&unknown).await.unwrap(),
        "IfLive created a session"
    );
    for ending in ENDINGS {
        let s = ended(&cx, ending).await;
        let opts = WriteOptions::new().with_idle_timeout(Duration::from_secs(500));
        let got = cx
            .put(
                s.id(),
                data(json!({"after": ending})),
                PutMode::IfLive,
                opts,
            )
            .await;
        assert!(
            matches!(got, Err(Error::NotFound)),
            "after {ending}: {got:?}"
        );
        assert!(
            !cx.store.exists(s.id()).await.unwrap(),
            "IfLive resurrected after {ending}"
        );
        cx.store.delete_user("u1").await.unwrap();
    }
    assert_eq!(cx.store.count().await.unwrap(), 0);
}

/// An `IfVersion` put at the loaded version stores the data; idle expiry slides; creation
/// and absolute expiry stay. `save` is the same put.
pub async fn put_if_version_persists_changes(f: Arc<dyn StoreFactory>) {
    let cx = Ctx::with(&*f, |c| {
        c.absolute_lifetime = Some(Duration::from_secs(1000))
    })
    .await;
    let s = cx
        .store
        .create(data(json!({"user": {"sub": "u"}, "n": 1})))
        .await
        .unwrap();
    cx.advance_secs(50);
    let mut changed = s.clone();
    changed.insert("n", 2).unwrap();
    changed.insert("csrf_token", "t").unwrap();
    let mode = PutMode::IfVersion(s.version());
    let saved = cx
        .put(s.id(), changed.data().clone(), mode, WriteOptions::new())
        .await
        .unwrap();
    assert_eq!(
        saved.lifetime().idle_expires_at,
        cx.now().saturating_add(IDLE)
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

    cx.advance_secs(10);
    let mut again = loaded;
    again.insert("n", 3).unwrap();
    let saved = cx.store.save(again).await.unwrap();
    assert_eq!(saved.data()["n"], 3);
    assert_eq!(
        saved.lifetime().idle_expires_at,
        cx.now().saturating_add(IDLE)
    );
    assert_eq!(cx.store.load(s.id()).await.unwrap().unwrap().data()["n"], 3);
}

/// The version an `IfVersion` put returns is the one to put with next.
pub async fn put_if_version_returns_the_new_version(f: Arc<dyn StoreFactory>) {
    let cx = Ctx::new(&*f).await;
    let mut s = cx.store.create(data(json!({"n": 0}))).await.unwrap();
    let mut seen = vec![s.version()];
    for n in 1..=3 {
        let mode = PutMode::IfVersion(s.version());
        s = cx
            .put(s.id(), data(json!({"n": n})), mode, WriteOptions::new())
            .await
            .unwrap();
        assert!(
            !seen.contains(&s.version()),
            "a put must give a version not seen before"
        );
        seen.push(s.version());
        s.insert("via", "save").unwrap();
        s = cx.store.save(s).await.unwrap();
        seen.push(s.version());
    }
    let loaded = cx.store.load(s.id()).await.unwrap().unwrap();
    assert_eq!(loaded.data(), &data(json!({"n": 3, "via": "save"})));
    assert_eq!(loaded.version(), s.version());
}

/// An `IfVersion` put of a session written since it was loaded conflicts and writes nothing.
pub async fn put_if_version_of_stale_session_conflicts(f: Arc<dyn StoreFactory>) {
    let cx = Ctx::new(&*f).await;
    let s = cx.store.create(data(json!({"n": 0}))).await.unwrap();
    let mut id = s.id().clone();
    // Each kind of intervening write makes the loaded copy stale. (A refresh is not one: it
    // moves only the expiry; see `refresh_keeps_the_version`.)
    for write in ["IfVersion", "Upsert", "IfLive", "same data", "rotate"] {
        let stale = cx.store.load(&id).await.unwrap().unwrap();
        let fresh = cx.store.load(&id).await.unwrap().unwrap();
        let other = data(json!({"by": write}));
        let put = |mode| cx.put(&id, other.clone(), mode, WriteOptions::new());
        match write {
            "IfVersion" => drop(put(PutMode::IfVersion(fresh.version())).await.unwrap()),
            "Upsert" => drop(put(PutMode::Upsert).await.unwrap()),
            "IfLive" => drop(put(PutMode::IfLive).await.unwrap()),
            "same data" => {
                let same = fresh.data().clone();
                cx.put(&id, same, PutMode::Upsert, WriteOptions::new())
                    .await
                    .unwrap();
            }
            // The moved session is a write after the load: the old version does not name it.
            _ => id = cx.store.rotate(&id).await.unwrap().unwrap().id().clone(),
        }
        let expected = cx.store.load(&id).await.unwrap().unwrap();
        let mode = PutMode::IfVersion(stale.version());
        let err = cx
            .put(&id, data(json!({"lost": true})), mode, WriteOptions::new())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Conflict), "after {write}: {err:?}");
        assert!(!err.is_retryable(), "repeating a stale put cannot succeed");
        let now = cx.store.load(&id).await.unwrap().unwrap();
        assert_eq!(
            now.data(),
            expected.data(),
            "a conflicting put wrote data after {write}"
        );
        assert_eq!(now.version(), expected.version());
        assert_eq!(now.lifetime(), expected.lifetime());
    }
}

/// An `IfVersion` put never brings back a session deleted, rotated away or expired since it
/// was loaded.
pub async fn put_if_version_does_not_resurrect(f: Arc<dyn StoreFactory>) {
    let cx = Ctx::new(&*f).await;
    for ending in ENDINGS {
        let loaded = ended(&cx, ending).await;
        let mode = PutMode::IfVersion(loaded.version());
        let got = cx
            .put(
                loaded.id(),
                data(json!({"after": ending})),
                mode,
                WriteOptions::new(),
            )
            .await;
        assert!(
            matches!(got, Err(Error::NotFound)),
            "after {ending}: {got:?}"
        );
        let mut saved = loaded.clone();
        saved.insert("after", ending).unwrap();
        let got = cx.store.save(saved).await;
        assert!(
            matches!(got, Err(Error::NotFound)),
            "save after {ending}: {got:?}"
        );
        assert!(
            !cx.store.exists(loaded.id()).await.unwrap(),
            "IfVersion resurrected after {ending}"
        );
        cx.store.delete_user("u1").await.unwrap();
    }
    assert_eq!(cx.store.count().await.unwrap(), 0);
}
