//! `import_bulk` (the path `sessionctl migrate` writes through), on both of its ways to the
//! server: one `MULTI`/`EXEC` per page (Redis 6.2+) and `import_batch.lua` (older servers,
//! forced here), each in both key modes.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{seed_data, store_on};
use redis::Commands as _;
use redis_harness::RedisServer;
use session_core::{
    Clock as _, ImportOutcome, Lifetime, ManualClock, SessionConfig, SessionId, SessionRecord,
    SessionStore, SessionStoreExt, SystemClock, Timestamp,
};
use session_redis::{BulkSession, RedisStore};

const USERS: [&str; 3] = ["ann", "bob", "cyd"];

/// The user a session of `seed_data(name)` belongs to (its `user.sub`, the first user key).
fn user_id(name: &str) -> String {
    seed_data(name)["user"]["sub"].as_str().unwrap().to_owned()
}

fn user_index(store: &RedisStore, name: &str) -> String {
    store
        .keys()
        .user_index(&session_redis::keys::user_hex(&user_id(name)))
}

fn record(now: Timestamp, user: &str, left: Duration) -> SessionRecord {
    let id = SessionId::generate();
    SessionRecord {
        handle: id.handle(),
        id: Some(id),
        data: seed_data(user),
        lifetime: Lifetime {
            created_at: Timestamp(now.0 - 60_000),
            idle_timeout: Duration::from_secs(7200),
            idle_expires_at: now.saturating_add(left),
            absolute_expires_at: None,
        },
    }
}

fn prepare(store: &RedisStore, records: &[SessionRecord]) -> Vec<BulkSession> {
    records
        .iter()
        .map(|r| store.prepare_record(r).unwrap())
        .collect()
}

struct Setup {
    _server: RedisServer,
    store: RedisStore,
    con: redis::Connection,
    now: Timestamp,
}

async fn setup(scripted: bool, hash_ids: bool) -> Setup {
    let server = RedisServer::start();
    let now = SystemClock.now();
    let clock = Arc::new(ManualClock::new(now));
    let store = store_on(&server, SessionConfig::default(), hash_ids, clock).await;
    if scripted {
        store.force_scripted_bulk_import();
    }
    let con = server.connection();
    Setup {
        _server: server,
        store,
        con,
        now,
    }
}

fn key_of(store: &RedisStore, record: &SessionRecord) -> (String, String) {
    let layout = store.keys();
    let sid = layout.storage_id(record.id.as_ref().unwrap());
    (layout.session_key(&sid), sid.as_str().to_owned())
}

/// Runs `check` on every combination of write path and key mode.
macro_rules! both_paths {
    ($name:ident, $check:ident) => {
        #[tokio::test]
        async fn $name() {
            for (scripted, hash_ids) in [(false, false), (false, true), (true, false), (true, true)]
            {
                eprintln!("scripted={scripted} hash_ids={hash_ids}");
                $check(setup(scripted, hash_ids).await).await;
            }
        }
    };
}

both_paths!(
    imports_a_page_with_ttls_and_indexes_and_a_rerun_changes_nothing,
    imports_a_page
);
async fn imports_a_page(mut s: Setup) {
    let records: Vec<SessionRecord> = (0..30)
        .map(|i| {
            record(
                s.now,
                USERS[i % 3],
                Duration::from_secs(600 + 60 * i as u64),
            )
        })
        .chain([record(s.now, "ann", Duration::ZERO)]) // expires exactly now
        .collect();
    let batch = prepare(&s.store, &records);
    let outcomes = s.store.import_bulk(&batch).await.unwrap();
    assert_eq!(outcomes[..30], [ImportOutcome::Imported; 30]);
    assert_eq!(outcomes[30], ImportOutcome::Expired);
    assert_eq!(s.store.count().await.unwrap(), 30);

    let expiry_index = s.store.keys().expiry_index();
    let snapshot = |con: &mut redis::Connection| {
        let members: Vec<(String, u64)> = con.zrange_withscores(&expiry_index, 0, -1).unwrap();
        members
    };
    for (i, r) in records.iter().take(30).enumerate() {
        let (key, sid) = key_of(&s.store, r);
        let expires = r.lifetime.expires_at().0;
        let loaded = s.store.get(r.id.as_ref().unwrap()).await.unwrap().unwrap();
        assert_eq!(loaded.data(), &r.data);
        let pttl: i64 = s.con.pttl(&key).unwrap();
        let want = (expires - s.now.0 + 1000) as i64;
        assert!(
            (want - 5000..=want).contains(&pttl),
            "PTTL {pttl}, want {want}"
        );
        let score: Option<u64> = s.con.zscore(&expiry_index, &sid).unwrap();
        assert_eq!(score, Some(expires));
        let user_index = user_index(&s.store, USERS[i % 3]);
        let score: Option<u64> = s.con.zscore(&user_index, &sid).unwrap();
        assert_eq!(score, Some(expires));
    }
    for user in USERS {
        assert_eq!(s.store.list_user(&user_id(user)).await.unwrap().len(), 10);
        // User indexes carry no TTL: cleanup prunes their entries (see the keys module).
        let pttl: i64 = s.con.pttl(user_index(&s.store, user)).unwrap();
        assert_eq!(pttl, -1, "user index PTTL");
    }

    let before = snapshot(&mut s.con);
    let again = s.store.import_bulk(&batch).await.unwrap();
    assert_eq!(again[..30], [ImportOutcome::AlreadyPresent; 30]);
    assert_eq!(again[30], ImportOutcome::Expired);
    assert_eq!(snapshot(&mut s.con), before);
    assert_eq!(s.store.count().await.unwrap(), 30);
}

both_paths!(
    a_session_already_in_the_target_keeps_its_value_and_user,
    keeps_an_existing_session
);
async fn keeps_an_existing_session(mut s: Setup) {
    // The target already holds this session, rewritten by a live service since the copy was
    // read: another user and a later expiry.
    let copy = record(s.now, "ann", Duration::from_secs(600));
    let mut live = copy.clone();
    live.data = seed_data("bob");
    live.lifetime.idle_expires_at = s.now.saturating_add(Duration::from_secs(3600));
    assert_eq!(
        s.store.import(live.clone()).await.unwrap(),
        ImportOutcome::Imported
    );
    let (key, sid) = key_of(&s.store, &copy);
    let value_before: Vec<u8> = s.con.get(&key).unwrap();

    let batch = [s.store.prepare_record(&copy).unwrap()];
    let outcomes = s.store.import_bulk(&batch).await.unwrap();
    assert_eq!(outcomes, [ImportOutcome::AlreadyPresent]);
    let value_after: Vec<u8> = s.con.get(&key).unwrap();
    assert_eq!(
        value_after, value_before,
        "an existing key is never overwritten"
    );
    let score: Option<u64> = s.con.zscore(s.store.keys().expiry_index(), &sid).unwrap();
    assert_eq!(
        score,
        Some(live.lifetime.expires_at().0),
        "never moved earlier"
    );
    assert_eq!(s.store.count().await.unwrap(), 1);
    assert!(s.store.list_user(&user_id("ann")).await.unwrap().is_empty());
    assert_eq!(s.store.delete_user(&user_id("ann")).await.unwrap(), 0);
    assert_eq!(s.store.list_user(&user_id("bob")).await.unwrap().len(), 1);
    let loaded = s
        .store
        .get(copy.id.as_ref().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(loaded.data(), &live.data);
}

both_paths!(
    a_stale_entry_of_an_expired_copy_is_moved_to_the_new_expiry,
    raises_a_stale_entry
);
async fn raises_a_stale_entry(mut s: Setup) {
    // An earlier copy of this session expired through its TTL; cleanup has not run, so its
    // entries (due an hour ago) are still in the indexes.
    let copy = record(s.now, "ann", Duration::from_secs(900));
    let (key, sid) = key_of(&s.store, &copy);
    let expiry_index = s.store.keys().expiry_index();
    let user_index = user_index(&s.store, "ann");
    for index in [&expiry_index, &user_index] {
        let () = s.con.zadd(index, &sid, s.now.0 - 3_600_000).unwrap();
    }
    assert_eq!(s.store.count().await.unwrap(), 0);

    let batch = [s.store.prepare_record(&copy).unwrap()];
    assert_eq!(
        s.store.import_bulk(&batch).await.unwrap(),
        [ImportOutcome::Imported]
    );
    let exists: bool = s.con.exists(&key).unwrap();
    assert!(exists);
    for index in [&expiry_index, &user_index] {
        let score: Option<u64> = s.con.zscore(index, &sid).unwrap();
        assert_eq!(score, Some(copy.lifetime.expires_at().0), "{index}");
    }
    assert_eq!(s.store.count().await.unwrap(), 1);
}

both_paths!(
    a_user_with_more_sessions_than_one_zadd_takes_is_indexed_whole,
    indexes_a_big_user
);
async fn indexes_a_big_user(mut s: Setup) {
    // The scripts add at most 500 members per ZADD (Lua's stack bounds unpack()).
    let records: Vec<SessionRecord> = (0..1203)
        .map(|i| record(s.now, "ann", Duration::from_secs(600 + i)))
        .collect();
    let batch = prepare(&s.store, &records);
    let outcomes = s.store.import_bulk(&batch).await.unwrap();
    assert!(outcomes.iter().all(|o| *o == ImportOutcome::Imported));
    let members: u64 = s.con.zcard(user_index(&s.store, "ann")).unwrap();
    assert_eq!(members, 1203);
    assert_eq!(
        s.store.list_user(&user_id("ann")).await.unwrap().len(),
        1203
    );
    assert_eq!(s.store.count().await.unwrap(), 1203);
}

#[tokio::test]
async fn a_user_denied_info_still_imports_through_the_script() {
    // Which way to write is read from INFO; an ACL (or a renamed command) may deny it.
    let server = RedisServer::start_with(
        redis_harness::ServerSpec::redis()
            .config("user default off")
            .config("user svc on >svc-secret-2 ~* &* +@all -info"),
    );
    let url = format!("redis://svc:svc-secret-2@127.0.0.1:{}/0", server.port());
    let config =
        session_redis::RedisConfig::from_lookup(|name| (name == "REDIS_URL").then(|| url.clone()))
            .unwrap();
    let now = SystemClock.now();
    let store = RedisStore::connect(config)
        .await
        .unwrap()
        .with_clock(Arc::new(ManualClock::new(now)));
    let records: Vec<SessionRecord> = (0..4)
        .map(|i| record(now, "ann", Duration::from_secs(600 + i)))
        .collect();
    let batch = prepare(&store, &records);
    let outcomes = store.import_bulk(&batch).await.unwrap();
    assert_eq!(outcomes, [ImportOutcome::Imported; 4]);
    assert_eq!(store.count().await.unwrap(), 4);
    assert_eq!(store.list_user(&user_id("ann")).await.unwrap().len(), 4);
}
