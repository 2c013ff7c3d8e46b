//! `put` in the modes that need no loaded version (Create, Upsert), and its options.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use session_core::{Error, Lifetime, PutMode, SessionId, SessionStoreExt, Timestamp, WriteOptions};

use crate::ctx::{data, Ctx, IDLE};
use crate::factory::StoreFactory;

const ABSOLUTE: Duration = Duration::from_secs(1000);

/// `Create` stores a fresh id with the default or given idle timeout, starting now.
pub async fn put_create_stores_new_session(f: Arc<dyn StoreFactory>) {
    let cx = Ctx::with(&*f, |c| c.absolute_lifetime = Some(ABSOLUTE)).await;
    let now = cx.now();
    let id = SessionId::generate();
    let opts = WriteOptions::new().with_idle_timeout(Duration::from_secs(5));
    let s = cx
        .put(&id, data(json!({"k": "v"})), PutMode::Create, opts)
        .await
        .unwrap();
    assert_eq!(s.id(), &id);
    assert_eq!(s.data(), &data(json!({"k": "v"})));
    let lt = s.lifetime();
    assert_eq!(lt.created_at, now);
    assert_eq!(lt.idle_timeout, Duration::from_secs(5));
    assert_eq!(
        lt.idle_expires_at,
        now.saturating_add(Duration::from_secs(5))
    );
    assert_eq!(lt.absolute_expires_at, Some(now.saturating_add(ABSOLUTE)));
    let loaded = cx.store.load(&id).await.unwrap().unwrap();
    assert_eq!(loaded.data(), s.data());
    assert_eq!(loaded.lifetime(), s.lifetime());
    assert_eq!(loaded.version(), s.version());

    let other = SessionId::generate();
    let d = cx
        .put(
            &other,
            data(json!({})),
            PutMode::Create,
            WriteOptions::new(),
        )
        .await
        .unwrap();
    assert_eq!(d.lifetime().idle_timeout, IDLE);
    assert_eq!(d.lifetime().idle_expires_at, now.saturating_add(IDLE));
    assert_eq!(cx.store.count().await.unwrap(), 2);
}

/// `Create` over a live session is `AlreadyExists` and leaves it as it was.
pub async fn put_create_never_overwrites_live_session(f: Arc<dyn StoreFactory>) {
    let cx = Ctx::new(&*f).await;
    let s = cx
        .store
        .create(data(json!({"owner": "first"})))
        .await
        .unwrap();
    cx.advance_secs(10);
    for opts in [
        WriteOptions::new(),
        WriteOptions::new().with_idle_timeout(Duration::from_secs(500)),
        WriteOptions::new().with_lifetime(Lifetime::starting(cx.now(), IDLE, None)),
    ] {
        let again = cx
            .put(
                s.id(),
                data(json!({"owner": "second"})),
                PutMode::Create,
                opts,
            )
            .await;
        assert!(matches!(again, Err(Error::AlreadyExists)), "{again:?}");
    }
    let stored = cx.store.load(s.id()).await.unwrap().unwrap();
    assert_eq!(stored.data(), s.data());
    assert_eq!(stored.lifetime(), s.lifetime());
    assert_eq!(stored.version(), s.version());
}

/// An expired session counts as absent for `Create`: the new one starts fresh.
pub async fn put_create_over_expired_session_starts_fresh(f: Arc<dyn StoreFactory>) {
    let cx = Ctx::with(&*f, |c| c.absolute_lifetime = Some(ABSOLUTE)).await;
    let s = cx.store.create(data(json!({"gen": 1}))).await.unwrap();
    cx.advance_secs(100);
    let fresh = cx
        .put(
            s.id(),
            data(json!({"gen": 2})),
            PutMode::Create,
            WriteOptions::new(),
        )
        .await
        .expect("an expired id must be reusable");
    let now = cx.now();
    assert_eq!(fresh.lifetime().created_at, now);
    assert_eq!(fresh.lifetime().idle_expires_at, now.saturating_add(IDLE));
    assert_eq!(
        fresh.lifetime().absolute_expires_at,
        Some(now.saturating_add(ABSOLUTE))
    );
    assert_ne!(fresh.version(), s.version());
    let loaded = cx.store.load(s.id()).await.unwrap().unwrap();
    assert_eq!(loaded.data()["gen"], 2);
    assert_eq!(loaded.lifetime(), fresh.lifetime());
}

/// `Upsert` stores with or without a session there, and the data loads back.
pub async fn put_upsert_then_load(f: Arc<dyn StoreFactory>) {
    let cx = Ctx::new(&*f).await;
    let id = SessionId::generate();
    let first = data(json!({"user": {"username": "a"}}));
    let s = cx
        .put(&id, first.clone(), PutMode::Upsert, WriteOptions::new())
        .await
        .unwrap();
    assert_eq!(s.lifetime().created_at, cx.now());
    let loaded = cx.store.load(&id).await.unwrap().unwrap();
    assert_eq!(loaded.data(), &first);
    assert_eq!(loaded.version(), s.version());
    let second = data(json!({"user": {"username": "b"}, "n": [1, 2]}));
    let again = cx
        .put(&id, second.clone(), PutMode::Upsert, WriteOptions::new())
        .await
        .unwrap();
    let loaded = cx.store.load(&id).await.unwrap().unwrap();
    assert_eq!(loaded.data(), &second);
    assert_eq!(loaded.version(), again.version());
    assert_ne!(again.version(), s.version());
    assert_eq!(cx.store.count().await.unwrap(), 1);
}

/// `Upsert` over a live session replaces the data and slides the idle expiry.
pub async fn put_upsert_replaces_data_and_slides_idle_expiry(f: Arc<dyn StoreFactory>) {
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
        cx.now().saturating_add(IDLE)
    );
    assert_ne!(after.version(), s.version());
    cx.advance_secs(60);
    let loaded = cx
        .store
        .load(s.id())
        .await
        .unwrap()
        .expect("an upsert must slide the expiry");
    assert_eq!(
        loaded.data(),
        &data(json!({"c": 3})),
        "keys must not be merged"
    );
    cx.advance_secs(40);
    assert!(!cx.store.exists(s.id()).await.unwrap(), "slid too far");
}

/// `Upsert` keeps `created_at` and the absolute expiry of a live session.
pub async fn put_upsert_keeps_creation_and_absolute_expiry(f: Arc<dyn StoreFactory>) {
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
        "an upsert extended the absolute lifetime"
    );
}

/// `Upsert` over an expired session starts a new one.
pub async fn put_upsert_over_expired_session_starts_fresh(f: Arc<dyn StoreFactory>) {
    let cx = Ctx::with(&*f, |c| {
        c.absolute_lifetime = Some(Duration::from_secs(150))
    })
    .await;
    let s = cx
        .store
        .create_with(
            data(json!({"gen": 1})),
            WriteOptions::new().with_idle_timeout(Duration::from_secs(30)),
        )
        .await
        .unwrap();
    cx.advance_secs(120);
    let fresh = cx.store.set(s.id(), data(json!({"gen": 2}))).await.unwrap();
    let now = cx.now();
    assert_eq!(fresh.lifetime().created_at, now);
    assert_eq!(
        fresh.lifetime().idle_timeout,
        IDLE,
        "the expired session's own timeout was kept"
    );
    assert_eq!(
        fresh.lifetime().absolute_expires_at,
        Some(now.saturating_add(Duration::from_secs(150)))
    );
}

/// `WriteOptions::idle_timeout` sets the session's own idle timeout, new or live.
pub async fn put_with_idle_timeout(f: Arc<dyn StoreFactory>) {
    let cx = Ctx::new(&*f).await;
    let long = Duration::from_secs(500);
    let id = SessionId::generate();
    let opts = WriteOptions::new().with_idle_timeout(long);
    cx.put(&id, data(json!({})), PutMode::Upsert, opts)
        .await
        .unwrap();
    cx.advance_secs(400);
    assert!(
        cx.store.refresh(&id).await.unwrap(),
        "the 500 s timeout was not kept"
    );
    let lt = *cx.store.load(&id).await.unwrap().unwrap().lifetime();
    assert_eq!(lt.idle_timeout, long);
    assert_eq!(lt.idle_expires_at, cx.now().saturating_add(long));
    // Later puts without the option keep the session's own timeout, in every mode.
    let again = cx.store.set(&id, data(json!({"x": 1}))).await.unwrap();
    assert_eq!(again.lifetime().idle_timeout, long);
    let again = cx
        .put(
            &id,
            data(json!({"x": 2})),
            PutMode::IfVersion(again.version()),
            WriteOptions::new(),
        )
        .await
        .unwrap();
    assert_eq!(again.lifetime().idle_timeout, long);

    // Over a live session: the new timeout replaces the old, from now; creation is kept.
    let s = cx.store.create(data(json!({"y": 1}))).await.unwrap();
    cx.advance_secs(50);
    let short = Duration::from_secs(20);
    let opts = WriteOptions::new().with_idle_timeout(short);
    let after = cx
        .put(s.id(), data(json!({"y": 2})), PutMode::IfLive, opts)
        .await
        .unwrap();
    assert_eq!(after.lifetime().idle_timeout, short);
    assert_eq!(
        after.lifetime().idle_expires_at,
        cx.now().saturating_add(short)
    );
    assert_eq!(after.lifetime().created_at, s.lifetime().created_at);
    cx.advance_secs(19);
    assert!(cx.store.refresh(s.id()).await.unwrap());
    cx.advance_secs(20);
    assert!(
        !cx.store.exists(s.id()).await.unwrap(),
        "refresh did not use the session's own timeout"
    );
}

/// A given lifetime is stored exactly, on a new id and over a live session.
pub async fn put_with_lifetime_keeps_it(f: Arc<dyn StoreFactory>) {
    let cx = Ctx::with(&*f, |c| c.absolute_lifetime = Some(ABSOLUTE)).await;
    let now = cx.now();
    let given = Lifetime {
        created_at: Timestamp(now.as_millis() - 5_000_000),
        idle_timeout: Duration::from_secs(7200),
        idle_expires_at: now.saturating_add(Duration::from_secs(300)),
        absolute_expires_at: Some(now.saturating_add(Duration::from_secs(4000))),
    };
    let opts = WriteOptions::new().with_lifetime(given);
    let id = SessionId::generate();
    let s = cx
        .put(&id, data(json!({"a": 1})), PutMode::Create, opts)
        .await
        .unwrap();
    assert_eq!(s.lifetime(), &given);
    assert_eq!(
        cx.store.load(&id).await.unwrap().unwrap().lifetime(),
        &given
    );

    // Over a live session the given lifetime replaces creation and expiries too, and a
    // given idle timeout gives way to it.
    let live = cx.store.create(data(json!({"b": 1}))).await.unwrap();
    let other = Lifetime {
        absolute_expires_at: None,
        idle_expires_at: now.saturating_add(Duration::from_secs(200)),
        ..given
    };
    let opts = WriteOptions::new()
        .with_idle_timeout(Duration::from_secs(5))
        .with_lifetime(other);
    let s = cx
        .put(live.id(), data(json!({"b": 2})), PutMode::IfLive, opts)
        .await
        .unwrap();
    assert_eq!(s.lifetime(), &other);
    assert_eq!(
        cx.store.load(live.id()).await.unwrap().unwrap().lifetime(),
        &other
    );

    // The stored idle expiry is the one that counts.
    cx.advance_secs(199);
    assert!(cx.store.exists(live.id()).await.unwrap());
    cx.advance_secs(1);
    assert!(!cx.store.exists(live.id()).await.unwrap());
    cx.advance_secs(99);
    assert!(cx.store.exists(&id).await.unwrap());
    cx.advance_secs(1);
    assert!(
        !cx.store.exists(&id).await.unwrap(),
        "a given lifetime was lengthened"
    );
}

/// A given lifetime already over fails with `NotFound` and changes nothing, in every mode.
pub async fn put_with_expired_lifetime_writes_nothing(f: Arc<dyn StoreFactory>) {
    let cx = Ctx::new(&*f).await;
    let now = cx.now();
    let ago = |secs: u64| Timestamp(now.as_millis() - secs * 1000);
    let ended_now = Lifetime {
        created_at: ago(100),
        idle_timeout: IDLE,
        idle_expires_at: now,
        absolute_expires_at: None,
    };
    let absolute_over = Lifetime {
        idle_expires_at: now.saturating_add(IDLE),
        absolute_expires_at: Some(ago(1)),
        ..ended_now
    };
    let live = cx.store.create(data(json!({"keep": "me"}))).await.unwrap();
    let fresh = SessionId::generate();
    for expired in [ended_now, absolute_over] {
        let opts = WriteOptions::new().with_lifetime(expired);
        for (id, mode) in [
            (&fresh, PutMode::Create),
            (&fresh, PutMode::Upsert),
            (live.id(), PutMode::Create),
            (live.id(), PutMode::Upsert),
            (live.id(), PutMode::IfLive),
            (live.id(), PutMode::IfVersion(live.version())),
        ] {
            let got = cx.put(id, data(json!({"lost": true})), mode, opts).await;
            assert!(
                matches!(got, Err(Error::NotFound)),
                "{mode:?} with {expired:?}: {got:?}"
            );
        }
    }
    assert!(!cx.store.exists(&fresh).await.unwrap());
    let stored = cx.store.load(live.id()).await.unwrap().unwrap();
    assert_eq!(stored.data(), live.data());
    assert_eq!(stored.lifetime(), live.lifetime());
    assert_eq!(stored.version(), live.version());
    assert_eq!(cx.store.count().await.unwrap(), 1);
}
