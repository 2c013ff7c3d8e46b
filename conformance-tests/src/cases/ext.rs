//! The `SessionStoreExt` bullets: create and update, alone and under concurrency; import.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use session_core::{
    Error, ImportOutcome, Lifetime, SessionId, SessionRecord, SessionStoreExt, Timestamp,
};

use crate::ctx::{data, Ctx, IDLE};
use crate::factory::StoreFactory;

/// Tasks per concurrency case.
const TASKS: usize = 16;

/// `create` mints an id no live session had, with the data given.
pub async fn create_mints_fresh_ids(f: Arc<dyn StoreFactory>) {
    let cx = Ctx::new(&*f).await;
    let a = cx.store.create(data(json!({"n": 1}))).await.unwrap();
    let b = cx.store.create(data(json!({"n": 1}))).await.unwrap();
    assert_ne!(a.id(), b.id());
    assert!(
        SessionId::parse(a.id().expose_token()).is_ok(),
        "minted id has the token shape"
    );
    assert_eq!(
        cx.store.load(a.id()).await.unwrap().unwrap().data(),
        &data(json!({"n": 1}))
    );
    assert_eq!(cx.store.count().await.unwrap(), 2);
}

/// `update` saves the closure's change and returns the stored session.
pub async fn update_applies_change(f: Arc<dyn StoreFactory>) {
    let cx = Ctx::new(&*f).await;
    let s = cx
        .store
        .create(data(json!({"user": {"sub": "u"}})))
        .await
        .unwrap();
    let updated = cx
        .store
        .update(s.id(), |d| {
            d.insert("csrf_token".into(), json!("t"));
        })
        .await
        .unwrap()
        .expect("live session");
    assert_eq!(updated.data()["csrf_token"], "t");
    let loaded = cx.store.load(s.id()).await.unwrap().unwrap();
    assert_eq!(loaded.data(), updated.data());
    assert_eq!(loaded.version(), updated.version());
}

/// `update` of an unknown or expired id gives `None` and creates nothing.
pub async fn update_missing_is_none(f: Arc<dyn StoreFactory>) {
    let cx = Ctx::new(&*f).await;
    let id = SessionId::generate();
    let mut called = false;
    assert!(cx
        .store
        .update(&id, |_| called = true)
        .await
        .unwrap()
        .is_none());
    assert!(!called);
    assert!(!cx.store.exists(&id).await.unwrap());
    let s = cx.store.create(data(json!({}))).await.unwrap();
    cx.advance_secs(100);
    assert!(cx.store.update(s.id(), |_| {}).await.unwrap().is_none());
    assert_eq!(cx.store.count().await.unwrap(), 0);
}

/// N tasks each adding their own keys through `update`: every key survives.
pub async fn concurrent_updates_keep_every_change(f: Arc<dyn StoreFactory>) {
    const ROUNDS: usize = 20;
    let cx = Ctx::new(&*f).await;
    let s = cx
        .store
        .create(data(json!({"user": {"sub": "u"}})))
        .await
        .unwrap();
    let start = Arc::new(tokio::sync::Barrier::new(TASKS));
    let tasks: Vec<_> = (0..TASKS)
        .map(|i| {
            let (store, id, start) = (cx.store.clone(), s.id().clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                for round in 0..ROUNDS {
                    let saved = store.update(&id, |d| {
                        d.insert(format!("k{i}_{round}"), json!(i));
                    });
                    assert!(saved.await.unwrap().is_some());
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let loaded = cx.store.load(s.id()).await.unwrap().unwrap();
    let lost: Vec<String> = (0..TASKS)
        .flat_map(|i| (0..ROUNDS).map(move |r| format!("k{i}_{r}")))
        .filter(|k| !loaded.data().contains_key(k))
        .collect();
    assert!(lost.is_empty(), "lost updates: {lost:?}");
    assert_eq!(loaded.data()["user"], json!({"sub": "u"}));
}

/// N concurrent `create`s give N distinct, stored ids.
pub async fn concurrent_creates_are_distinct(f: Arc<dyn StoreFactory>) {
    let cx = Ctx::new(&*f).await;
    let tasks: Vec<_> = (0..TASKS * 4)
        .map(|i| {
            let store = cx.store.clone();
            tokio::spawn(async move { store.create(data(json!({"i": i}))).await })
        })
        .collect();
    let mut ids = HashSet::new();
    for t in tasks {
        ids.insert(t.await.unwrap().unwrap().id().clone());
    }
    assert_eq!(ids.len(), TASKS * 4);
    assert_eq!(cx.store.count().await.unwrap(), (TASKS * 4) as u64);
}

/// Updates racing a delete never bring the session back once the delete returned.
pub async fn update_racing_delete_stays_deleted(f: Arc<dyn StoreFactory>) {
    let cx = Ctx::new(&*f).await;
    for round in 0..10 {
        let s = cx
            .store
            .create(data(json!({"round": round})))
            .await
            .unwrap();
        let updaters: Vec<_> = (0..4)
            .map(|i| {
                let (store, id) = (cx.store.clone(), s.id().clone());
                tokio::spawn(async move {
                    // Keep updating until the session is gone (bounded: a store whose saves
                    // resurrect would otherwise keep it alive forever).
                    for n in 0..200 {
                        let r = store.update(&id, |d| {
                            d.insert(format!("u{i}"), json!(n));
                        });
                        if r.await.unwrap().is_none() {
                            break;
                        }
                    }
                })
            })
            .collect();
        tokio::task::yield_now().await;
        assert!(cx.store.delete(s.id()).await.unwrap());
        for u in updaters {
            u.await.unwrap();
        }
        assert!(
            !cx.store.exists(s.id()).await.unwrap(),
            "round {round}: resurrected"
        );
        assert_eq!(cx.store.count().await.unwrap(), 0, "round {round}");
    }
}

/// Updates racing a rotation: every update reported as saved is in the rotated session.
pub async fn rotate_racing_update_loses_nothing(f: Arc<dyn StoreFactory>) {
    let cx = Ctx::new(&*f).await;
    for round in 0..10 {
        let s = cx
            .store
            .create(data(json!({"round": round})))
            .await
            .unwrap();
        let updaters: Vec<_> = (0..TASKS / 2)
            .map(|i| {
                let (store, id) = (cx.store.clone(), s.id().clone());
                tokio::spawn(async move {
                    let saved = store.update(&id, |d| {
                        d.insert(format!("k{i}"), json!(i));
                    });
                    saved.await.unwrap().map(|_| format!("k{i}"))
                })
            })
            .collect();
        let rotated = cx
            .store
            .rotate(s.id())
            .await
            .unwrap()
            .expect("live session");
        let mut saved = Vec::new();
        for u in updaters {
            saved.extend(u.await.unwrap());
        }
        assert!(
            !cx.store.exists(s.id()).await.unwrap(),
            "round {round}: old id alive"
        );
        let now = cx.store.load(rotated.id()).await.unwrap().unwrap();
        for key in saved {
            assert!(
                now.data().contains_key(&key),
                "round {round}: saved update {key} lost"
            );
        }
        assert_eq!(now.data()["round"], round);
    }
}

fn record(id: &SessionId, lifetime: Lifetime) -> SessionRecord {
    SessionRecord {
        id: Some(id.clone()),
        handle: id.handle(),
        data: data(json!({"user": {"sub": "imported"}, "csrf_token": "c"})),
        lifetime,
    }
}

/// An imported record loads with its data and every lifetime field as given.
pub async fn import_keeps_lifetime(f: Arc<dyn StoreFactory>) {
    let cx = Ctx::new(&*f).await;
    let now = cx.now();
    let id = SessionId::generate();
    let lifetime = Lifetime {
        created_at: Timestamp(now.as_millis() - 5_000_000),
        idle_timeout: Duration::from_secs(7200),
        idle_expires_at: now.saturating_add(Duration::from_secs(1234)),
        absolute_expires_at: Some(now.saturating_add(Duration::from_secs(4000))),
    };
    let rec = record(&id, lifetime);
    assert_eq!(
        cx.store.import(rec.clone()).await.unwrap(),
        ImportOutcome::Imported
    );
    let loaded = cx.store.load(&id).await.unwrap().unwrap();
    assert_eq!(loaded.data(), &rec.data);
    assert_eq!(loaded.lifetime(), &lifetime);
    assert_eq!(cx.store.list_user("imported").await.unwrap().len(), 1);
    assert_eq!(cx.store.count().await.unwrap(), 1);
    cx.advance_secs(1233);
    assert!(cx.store.exists(&id).await.unwrap());
    cx.advance_secs(1);
    assert!(
        !cx.store.exists(&id).await.unwrap(),
        "import lengthened the idle expiry"
    );
}

/// Import never overwrites a live session.
pub async fn import_never_overwrites(f: Arc<dyn StoreFactory>) {
    let cx = Ctx::new(&*f).await;
    let s = cx.store.create(data(json!({"mine": true}))).await.unwrap();
    let lifetime = Lifetime::starting(cx.now(), IDLE, None);
    let outcome = cx.store.import(record(s.id(), lifetime)).await.unwrap();
    assert_eq!(outcome, ImportOutcome::AlreadyPresent);
    let loaded = cx.store.load(s.id()).await.unwrap().unwrap();
    assert_eq!(loaded.data(), s.data());
    assert_eq!(loaded.version(), s.version());
}

/// An expired record is skipped and nothing is written.
pub async fn import_of_expired_record_is_skipped(f: Arc<dyn StoreFactory>) {
    let cx = Ctx::new(&*f).await;
    let id = SessionId::generate();
    let now = cx.now();
    let idle_over = Lifetime::starting(Timestamp(now.as_millis() - 100_000), IDLE, None);
    let absolute_over = Lifetime {
        idle_expires_at: now.saturating_add(IDLE),
        absolute_expires_at: Some(now),
        ..idle_over
    };
    for lifetime in [idle_over, absolute_over] {
        let outcome = cx.store.import(record(&id, lifetime)).await.unwrap();
        assert_eq!(outcome, ImportOutcome::Expired, "{lifetime:?}");
        assert!(!cx.store.exists(&id).await.unwrap());
    }
    assert_eq!(cx.store.count().await.unwrap(), 0);
    assert!(cx.store.list_user("imported").await.unwrap().is_empty());
}

/// A record without its token cannot be imported under an id: `Unsupported`, nothing written.
pub async fn import_without_token_is_unsupported(f: Arc<dyn StoreFactory>) {
    let cx = Ctx::new(&*f).await;
    let id = SessionId::generate();
    let now = cx.now();
    let mut handle_only = record(&id, Lifetime::starting(now, IDLE, None));
    handle_only.id = None;
    let err = cx.store.import(handle_only).await.unwrap_err();
    assert!(matches!(err, Error::Unsupported { .. }), "{err:?}");
    assert!(!cx.store.exists(&id).await.unwrap());
    assert_eq!(cx.store.count().await.unwrap(), 0);
}
