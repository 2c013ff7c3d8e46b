//! count, per-user listing and revocation, cleanup, iteration.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::TryStreamExt as _;
use serde_json::json;
use session_core::{sessions_of, SessionId, SessionRecord, SessionStoreExt};

use crate::ctx::{data, Ctx};
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

/// `cleanup` purges expired sessions only; `removed` counts them; a second pass finds
/// nothing.
///
/// A store may purge expired sessions on its own (on access, in the background), so one pass
/// may legitimately report fewer. Here nothing touches the expired sessions between the
/// clock passing their expiry and the pass, so only a background purge in that instant could
/// take them first: over a few fresh rounds, at least one pass must report them all.
pub async fn cleanup_purges_only_expired(f: Arc<dyn StoreFactory>) {
    const ROUNDS: usize = 3;
    const EXPIRED: u64 = 3;
    let mut removed_per_round = Vec::new();
    for round in 0..ROUNDS {
        let cx = Ctx::new(&*f).await;
        for _ in 0..EXPIRED {
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
        assert!(
            report.removed <= EXPIRED,
            "round {round}: removed more than had expired: {report:?}"
        );
        let kept = cx.store.load(live.id()).await.unwrap();
        assert!(
            kept.is_some(),
            "round {round}: cleanup removed a live session"
        );
        assert_eq!(kept.unwrap().data(), live.data());
        assert_eq!(cx.store.list_user("new").await.unwrap().len(), 1);
        assert!(cx.store.list_user("old").await.unwrap().is_empty());
        let again = cx.store.cleanup().await.unwrap();
        assert_eq!(
            again.removed, 0,
            "round {round}: second pass removed something"
        );
        assert_eq!(cx.store.count().await.unwrap(), 1);
        removed_per_round.push(report.removed);
        if report.removed == EXPIRED {
            return;
        }
    }
    panic!(
        "cleanup never reported the {EXPIRED} expired sessions removed \
         (removed per round: {removed_per_round:?})"
    );
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
