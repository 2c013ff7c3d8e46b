//! `Create` takes a native transaction (`store/native.rs`) and hands the cases it cannot decide
//! to `write.lua`: these tests pin what each case leaves in Redis, index entries included.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{seed_data, store_on};
use redis::Commands;
use redis_harness::RedisServer;
use session_core::{
    Clock, Error, ManualClock, PutMode, SessionConfig, SessionId, SessionStore, WriteOptions,
};
use session_redis::RedisStore;

#[path = "common/python.rs"]
mod python_impl;

const IDLE: Duration = Duration::from_secs(7200);

struct Fixture {
    _server: RedisServer,
    store: RedisStore,
    clock: ManualClock,
    con: redis::Connection,
}

async fn fixture() -> Fixture {
    let server = RedisServer::start();
    let clock = ManualClock::starting_now();
    let store = store_on(
        &server,
        SessionConfig::default(),
        false,
        Arc::new(clock.clone()),
    )
    .await;
    let con = server.connection();
    Fixture {
        _server: server,
        store,
        clock,
        con,
    }
}

impl Fixture {
    fn key(&self, id: &SessionId) -> String {
        let keys = self.store.keys();
        keys.session_key(&keys.storage_id(id))
    }

    /// The id's expiry index score, as Redis holds it.
    fn score(&mut self, id: &SessionId) -> Option<u64> {
        let keys = self.store.keys();
        let sid = keys.storage_id(id);
        let score: Option<f64> = self
            .con
            .zscore(keys.expiry_index_of(&sid), sid.as_str())
            .unwrap();
        score.map(|s| s as u64)
    }

    fn set_score(&mut self, id: &SessionId, score: u64) {
        let keys = self.store.keys();
        let sid = keys.storage_id(id);
        let _: () = self
            .con
            .zadd(keys.expiry_index_of(&sid), sid.as_str(), score)
            .unwrap();
    }

    async fn create(&self, id: &SessionId) -> session_core::Result<session_core::Session> {
        self.store
            .put(
                id,
                Arc::new(seed_data("aaron")),
                PutMode::Create,
                WriteOptions::new(),
            )
            .await
    }
}

#[tokio::test]
async fn a_fresh_create_is_indexed_with_its_exact_expiry() {
    let mut f = fixture().await;
    let id = SessionId::generate();
    let session = f.create(&id).await.unwrap();
    let expiry = f.clock.now().saturating_add(IDLE);
    assert_eq!(session.lifetime().idle_expires_at, expiry);
    assert_eq!(f.score(&id), Some(expiry.0));
    let ttl: i64 = f.con.pttl(f.key(&id)).unwrap();
    assert!(ttl > 7_190_000 && ttl <= 7_200_000, "{ttl}");
    assert_eq!(f.store.count().await.unwrap(), 1);
    assert_eq!(f.store.list_user(&user_of_seed()).await.unwrap().len(), 1);
}

#[tokio::test]
async fn create_over_the_services_session_leaves_it_and_the_index_as_they_were() {
    let mut f = fixture().await;
    let id = SessionId::generate();
    let key = f.key(&id);
    let value = python_impl::dumps(&seed_data("bob"));
    let _: () = f.con.set_ex(&key, &value, 600).unwrap();

    let err = f.create(&id).await.unwrap_err();
    assert!(matches!(err, Error::AlreadyExists), "{err:?}");
    let stored: String = f.con.get(&key).unwrap();
    assert_eq!(stored, value, "not a byte changed");
    let ttl: i64 = f.con.ttl(&key).unwrap();
    assert!(ttl > 590 && ttl <= 600, "{ttl}");
    assert_eq!(
        f.score(&id),
        None,
        "the entry the transaction added is gone again"
    );
}

#[tokio::test]
async fn create_over_a_value_that_is_no_session_is_corrupt_and_changes_nothing() {
    let mut f = fixture().await;
    let id = SessionId::generate();
    let key = f.key(&id);
    let _: () = f.con.set(&key, "not json at all").unwrap();

    let err = f.create(&id).await.unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err:?}");
    let stored: String = f.con.get(&key).unwrap();
    assert_eq!(stored, "not json at all");
    assert_eq!(f.score(&id), None);
}

#[tokio::test]
async fn create_over_a_live_session_keeps_its_entry() {
    let mut f = fixture().await;
    let id = SessionId::generate();
    let first = f.create(&id).await.unwrap();
    // Within the second reads allow between the store's clock and a TTL counting in real time.
    f.clock.advance(Duration::from_millis(500));
    let err = f.create(&id).await.unwrap_err();
    assert!(matches!(err, Error::AlreadyExists), "{err:?}");
    assert_eq!(f.score(&id), Some(first.lifetime().idle_expires_at.0));
    let loaded = f.store.load(&id).await.unwrap().unwrap();
    assert_eq!(loaded.lifetime(), first.lifetime());
    assert_eq!(loaded.version(), first.version());
}

/// An earlier session's entry under the id, scored in the past (expired, not settled yet) or
/// in the future (deleted by the other writer's `DEL`): the new session's expiry replaces it.
#[tokio::test]
async fn an_earlier_session_s_entry_is_moved_to_the_new_expiry() {
    let mut f = fixture().await;
    for (case, earlier) in [("past", -60_000i64), ("future", 3_600_000)] {
        let id = SessionId::generate();
        let now = f.clock.now();
        f.set_score(&id, now.0.saturating_add_signed(earlier));
        let session = f.create(&id).await.unwrap();
        let expiry = now.saturating_add(IDLE);
        assert_eq!(session.lifetime().idle_expires_at, expiry, "{case}");
        assert_eq!(f.score(&id), Some(expiry.0), "{case}");
        let loaded = f.store.load(&id).await.unwrap().unwrap();
        assert_eq!(loaded.lifetime(), session.lifetime(), "{case}");
    }
    assert_eq!(f.store.count().await.unwrap(), 2);
}

/// Between the transaction and its repair, an entry scored before the session was created is
/// an earlier session's: reads report the expiry the creation set, and `count` repairs it.
#[tokio::test]
async fn an_entry_older_than_the_session_is_not_its_expiry() {
    let mut f = fixture().await;
    let id = SessionId::generate();
    let session = f.create(&id).await.unwrap();
    let created = session.lifetime().created_at;
    f.set_score(&id, created.0 - 1);
    // The store's clock ahead of the TTL's countdown (within a read's allowance): where the
    // TTL ends then differs from the session's expiry, so only the rule can report it exactly.
    f.clock.advance(Duration::from_millis(500));

    let loaded = f.store.load(&id).await.unwrap().unwrap();
    assert_eq!(loaded.lifetime(), session.lifetime());
    let listed = f.store.list_user(&user_of_seed()).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(&listed[0].lifetime, session.lifetime());
    assert_eq!(f.store.count().await.unwrap(), 1);
    assert_eq!(
        f.score(&id),
        Some(session.lifetime().idle_expires_at.0),
        "count settled the due entry to the session's own expiry"
    );
}

/// The user id the seed data names (see `redis_harness::fixtures`).
fn user_of_seed() -> String {
    let data = seed_data("aaron");
    data["user"]["sub"].as_str().unwrap().to_owned()
}
