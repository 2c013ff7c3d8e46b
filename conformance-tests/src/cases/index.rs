//! count, per-user listing and revocation, cleanup, iteration, import.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::TryStreamExt as _;
use serde_json::json;
use session_core::{
    sessions_of, Clock, ImportOutcome, Lifetime, SessionId, SessionRecord, SessionStoreExt,
};

use crate::ctx::{data, Ctx, IDLE};
use crate::factory::StoreFactory;

/// `count` follows creations, overwrites, deletes and expiry.
pub async fn count_counts_live_sessions(f: Arc<dyn StoreFactory>) {
    let cx = Ctx::new(&*f).await;
    assert_eq!(cx.store.count().await.unwrap(), 0);
    let a = cx.store.create(data(json!({}))).await.unwrap();
    cx.advance_secs(50);
    let b = cx.store.create(data(json!({}))).await.unwrap();
    let c = cx.store.create(data(json!({}))).await.unwrap();
    assert_eq!(cx.store.count().await.unwrap(), 3);
    cx.store.set(b.id(), data(json!({"x": 1}))).await.unwrap();
    assert_eq!(
        cx.store.count().await.unwrap(),
        3,
        "an overwrite changed the count"
    );
    cx.store.delete(c.id()).await.unwrap();
    assert_eq!(cx.store.count().await.unwrap(), 2);
    cx.advance_secs(50);
    assert_eq!(
        cx.store.count().await.unwrap(),
        1,
        "expired session still counted"
    );
    assert!(!cx.store.exists(a.id()).await.unwrap());
    cx.advance_secs(50);
    assert_eq!(cx.store.count().await.unwrap(), 0);
}

fn handles(list: &[session_core::SessionSummary]) -> Vec<String> {
    let mut h: Vec<String> = list.iter().map(|s| s.handle.to_string()).collect();
    h.sort();
    h
}

fn handles_of(ids: &[&SessionId]) -> Vec<String> {
    let mut h: Vec<String> = ids.iter().map(|id| id.handle().to_string()).collect();
    h.sort();
    h
}

/// `list_user` returns a user's live sessions, found by `user.sub` then `user.username`.
pub async fn list_user_finds_their_sessions(f: Arc<dyn StoreFactory>) {
    let cx = Ctx::new(&*f).await;
    let a1 = cx
        .store
        .create(data(json!({"user": {"sub": "alice", "username": "al"}})))
        .await
        .unwrap();
    let a2 = cx
        .store
        .create(data(json!({"user": {"username": "alice"}})))
        .await
        .unwrap();
    let b = cx
        .store
        .create(data(json!({"user": {"sub": "bob"}})))
        .await
        .unwrap();
    cx.store
        .create(data(json!({"anonymous": true})))
        .await
        .unwrap();
    let listed = cx.store.list_user("alice").await.unwrap();
    assert_eq!(handles(&listed), handles_of(&[a1.id(), a2.id()]));
    let mine = listed
        .iter()
        .find(|s| s.handle == a1.id().handle())
        .unwrap();
    assert_eq!(&mine.lifetime, a1.lifetime());
    assert_eq!(
        handles(&cx.store.list_user("bob").await.unwrap()),
        handles_of(&[b.id()])
    );
    assert!(
        cx.store.list_user("al").await.unwrap().is_empty(),
        "sub takes precedence"
    );
    assert!(cx.store.list_user("nobody").await.unwrap().is_empty());
    // Listings never carry tokens.
    let shown = format!("{listed:?}");
    assert!(!shown.contains(a1.id().expose_token()));
}

/// A session whose user changes moves to the new user's listing.
pub async fn list_user_follows_data_changes(f: Arc<dyn StoreFactory>) {
    let cx = Ctx::new(&*f).await;
    let s = cx
        .store
        .create(data(json!({"user": {"sub": "alice"}})))
        .await
        .unwrap();
    cx.store
        .update(s.id(), |d| {
            d.insert("user".into(), json!({"sub": "bob"}));
        })
        .await
        .unwrap();
    assert!(cx.store.list_user("alice").await.unwrap().is_empty());
    assert_eq!(
        handles(&cx.store.list_user("bob").await.unwrap()),
        handles_of(&[s.id()])
    );
    cx.store
        .set(s.id(), data(json!({"user": {"username": "carol"}})))
        .await
        .unwrap();
    assert!(cx.store.list_user("bob").await.unwrap().is_empty());
    assert_eq!(cx.store.list_user("carol").await.unwrap().len(), 1);
    cx.store.set(s.id(), data(json!({}))).await.unwrap();
    assert!(cx.store.list_user("carol").await.unwrap().is_empty());
}

/// Deleted and expired sessions are not listed.
pub async fn list_user_skips_dead_sessions(f: Arc<dyn StoreFactory>) {
    let cx = Ctx::new(&*f).await;
    let old = cx
        .store
        .create(data(json!({"user": {"sub": "u"}})))
        .await
        .unwrap();
    let gone = cx
        .store
        .create(data(json!({"user": {"sub": "u"}})))
        .await
        .unwrap();
    cx.advance_secs(50);
    let young = cx
        .store
        .create(data(json!({"user": {"sub": "u"}})))
        .await
        .unwrap();
    cx.store.delete(gone.id()).await.unwrap();
    assert_eq!(
        handles(&cx.store.list_user("u").await.unwrap()),
        handles_of(&[old.id(), young.id()])
    );
    cx.advance_secs(50);
    assert_eq!(
        handles(&cx.store.list_user("u").await.unwrap()),
        handles_of(&[young.id()])
    );
}

/// `delete_user` ends every live session of the user and no one else's.
pub async fn delete_user_ends_all_their_sessions(f: Arc<dyn StoreFactory>) {
    let cx = Ctx::new(&*f).await;
    let mine: Vec<_> = futures::future::try_join_all(
        (0..3).map(|_| cx.store.create(data(json!({"user": {"sub": "me"}})))),
    )
    .await
    .unwrap();
    let theirs = cx
        .store
        .create(data(json!({"user": {"sub": "them"}})))
        .await
        .unwrap();
    let anon = cx.store.create(data(json!({}))).await.unwrap();
    assert_eq!(cx.store.delete_user("me").await.unwrap(), 3);
    for s in &mine {
        assert!(!cx.store.exists(s.id()).await.unwrap());
    }
    assert!(cx.store.exists(theirs.id()).await.unwrap());
    assert!(cx.store.exists(anon.id()).await.unwrap());
    assert_eq!(cx.store.delete_user("me").await.unwrap(), 0);
    assert_eq!(cx.store.count().await.unwrap(), 2);
}

/// `cleanup` purges expired sessions only, and a second pass finds nothing.
pub async fn cleanup_purges_only_expired(f: Arc<dyn StoreFactory>) {
    let cx = Ctx::new(&*f).await;
    for _ in 0..3 {
        cx.store
            .create(data(json!({"user": {"sub": "old"}})))
            .await
            .unwrap();
    }
    cx.advance_secs(60);
    let live = cx
        .store
        .create(data(json!({"user": {"sub": "new"}})))
        .await
        .unwrap();
    cx.advance_secs(40);
    let report = cx.store.cleanup().await.unwrap();
    assert!(report.removed <= 3, "removed more than expired: {report:?}");
    assert!(
        cx.store.exists(live.id()).await.unwrap(),
        "cleanup removed a live session"
    );
    assert_eq!(cx.store.list_user("new").await.unwrap().len(), 1);
    assert!(cx.store.list_user("old").await.unwrap().is_empty());
    let again = cx.store.cleanup().await.unwrap();
    assert_eq!(again.removed, 0, "second pass removed something");
    assert_eq!(cx.store.count().await.unwrap(), 1);
}

/// Iteration yields every live session exactly once per handle, with data and lifetime.
pub async fn scan_yields_every_live_session(f: Arc<dyn StoreFactory>) {
    let cx = Ctx::new(&*f).await;
    let mut expected = BTreeMap::new();
    for i in 0..7 {
        cx.store.create(data(json!({"i": i}))).await.unwrap(); // these will expire
    }
    cx.advance_secs(50);
    for i in 0..23 {
        let s = cx
            .store
            .create(data(json!({"i": i, "user": {"sub": "u"}})))
            .await
            .unwrap();
        expected.insert(s.id().handle(), s);
    }
    cx.advance_secs(50);
    for page in [1, 5, 100] {
        let records: Vec<SessionRecord> =
            sessions_of(&*cx.store, page).try_collect().await.unwrap();
        let mut seen = BTreeMap::new();
        for r in records {
            seen.entry(r.handle.clone()).or_insert(r);
        }
        assert_eq!(seen.len(), expected.len(), "page size {page}");
        for (handle, s) in &expected {
            let r = seen.get(handle).expect("a live session was not yielded");
            assert_eq!(&r.data, s.data());
            assert_eq!(&r.lifetime, s.lifetime());
            if cx.store.capabilities().keeps_tokens {
                assert_eq!(r.id.as_ref(), Some(s.id()));
            }
        }
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
    let now = cx.clock.now();
    let id = SessionId::generate();
    let lifetime = Lifetime {
        created_at: session_core::Timestamp(now.as_millis() - 5_000_000),
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
    let lifetime = Lifetime::starting(cx.clock.now(), IDLE, None);
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
    let start = session_core::Timestamp(cx.clock.now().as_millis() - 200_000);
    let outcome = cx
        .store
        .import(record(&id, Lifetime::starting(start, IDLE, None)))
        .await;
    assert_eq!(outcome.unwrap(), ImportOutcome::Expired);
    assert!(!cx.store.exists(&id).await.unwrap());
    assert_eq!(cx.store.count().await.unwrap(), 0);
}
