//! A running workload (reads, writes, deletes, rotations, logins) continues while the copier
//! moves 10,000 sessions from memory to a real Redis. Afterwards every live session is in Redis
//! exactly once with its lifetime intact, the memory store is empty, and no deleted session
//! exists anywhere.

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis_harness::RedisServer;
use serde_json::json;
use session_core::{
    Clock, Lifetime, SessionConfig, SessionId, SessionStore, SessionStoreExt, SystemClock,
};
use session_memory::MemoryStore;
use session_migrate::MigratingStore;

const SESSIONS: usize = 10_000;
const WORKERS: usize = 4;
const OPS_PER_WORKER: usize = 1_500;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// Untouched since seeding: its lifetime must be exactly the seeded one.
    Untouched(Lifetime),
    /// Written by the workload: created and absolute expiry kept, idle expiry slid.
    Touched(Lifetime),
    Deleted,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn workload_continues_while_10k_sessions_move_to_redis() {
    let server = RedisServer::start();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let config = SessionConfig {
        absolute_lifetime: Some(Duration::from_secs(86_400)),
        key_prefix: conformance_tests::unique_prefix(),
        ..SessionConfig::default()
    };
    let old = Arc::new(
        MemoryStore::builder()
            .clock(clock.clone())
            .config(config.clone())
            .build(),
    );
    let new = Arc::new(support::redis::redis_store(&server, config.clone(), clock.clone()).await);

    // Sessions that exist before the switch, some with their own idle timeout.
    let mut ids = Vec::with_capacity(SESSIONS);
    let expect: Arc<Mutex<HashMap<SessionId, Expect>>> = Arc::default();
    for i in 0..SESSIONS {
        let data = json!({"user": {"sub": format!("u{}", i % 300)}, "n": i, "csrf_token": "c"});
        let mut options = session_core::WriteOptions::new();
        if i % 3 == 0 {
            options = options.with_idle_timeout(Duration::from_secs(600 + i as u64));
        }
        let s = old
            .create_with(data.as_object().unwrap().clone(), options)
            .await
            .unwrap();
        expect
            .lock()
            .unwrap()
            .insert(s.id().clone(), Expect::Untouched(*s.lifetime()));
        ids.push(s.id().clone());
    }
    let ids = Arc::new(ids);

    let store = MigratingStore::new(old.clone(), new.clone());
    let copier = store.spawn_copier(250, Duration::ZERO);

    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            let (store, ids, expect) = (store.clone(), ids.clone(), expect.clone());
            tokio::spawn(async move {
                let mut x = 0x2545_F491_4F6C_DD1Du64 ^ (w as u64 + 1);
                for _ in 0..OPS_PER_WORKER {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let id = &ids[(x % SESSIONS as u64) as usize];
                    match (x >> 32) % 10 {
                        0..=3 => {
                            store.get(id).await.unwrap();
                        }
                        4..=5 => {
                            let saved = store
                                .update(id, |d| {
                                    d.insert(format!("w{w}"), json!(x));
                                })
                                .await
                                .unwrap();
                            if let Some(s) = saved {
                                expect
                                    .lock()
                                    .unwrap()
                                    .insert(id.clone(), Expect::Touched(*s.lifetime()));
                            }
                        }
                        6 => {
                            store.delete(id).await.unwrap();
                            expect.lock().unwrap().insert(id.clone(), Expect::Deleted);
                        }
                        7 => {
                            if let Some(s) = store.rotate(id).await.unwrap() {
                                let mut e = expect.lock().unwrap();
                                e.insert(id.clone(), Expect::Deleted);
                                e.insert(s.id().clone(), Expect::Touched(*s.lifetime()));
                            }
                        }
                        8 => {
                            store.refresh(id).await.unwrap();
                            let now = store.get(id).await.unwrap();
                            if let Some(s) = now {
                                expect
                                    .lock()
                                    .unwrap()
                                    .insert(id.clone(), Expect::Touched(*s.lifetime()));
                            }
                        }
                        _ => {
                            let s = store
                                .create(json!({"new": w}).as_object().unwrap().clone())
                                .await
                                .unwrap();
                            expect
                                .lock()
                                .unwrap()
                                .insert(s.id().clone(), Expect::Touched(*s.lifetime()));
                        }
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.await.unwrap();
    }
    let progress = copier.await.unwrap().unwrap();
    println!("copier: {progress:?}");
    assert!(progress.complete && store.is_complete().await.unwrap());

    // The memory store is empty, not just free of live sessions.
    assert_eq!(old.count().await.unwrap(), 0);
    let leftovers = old.scan(None, 10).await.unwrap();
    assert!(leftovers.sessions.is_empty() && leftovers.next.is_none());

    let expect = expect.lock().unwrap().clone();
    let live: Vec<_> = expect
        .iter()
        .filter(|(_, e)| **e != Expect::Deleted)
        .collect();
    assert_eq!(
        new.count().await.unwrap(),
        live.len() as u64,
        "each live session once in Redis"
    );
    let mut con = server.connection();
    let mut checked_ttl = 0;
    for (id, e) in &expect {
        let key = format!("{}{}", config.key_prefix, id.expose_token());
        let loaded = new.load(id).await.unwrap();
        match e {
            Expect::Deleted => {
                assert!(loaded.is_none(), "a deleted session is back in Redis");
                let exists: bool = redis::cmd("EXISTS").arg(&key).query(&mut con).unwrap();
                assert!(!exists);
                assert!(
                    !old.exists(id).await.unwrap(),
                    "a deleted session is still in memory"
                );
            }
            Expect::Untouched(lifetime) | Expect::Touched(lifetime) => {
                let s = loaded.expect("a live session was lost");
                if matches!(e, Expect::Untouched(_)) {
                    assert_eq!(s.lifetime(), lifetime, "lifetime changed by the move");
                } else {
                    assert_eq!(s.lifetime().created_at, lifetime.created_at);
                    assert_eq!(
                        s.lifetime().absolute_expires_at,
                        lifetime.absolute_expires_at
                    );
                }
                // Redis's own TTL is the remaining lifetime, exactly. The tolerance: the time
                // between the two readings, measured, plus 1 s for the write's own trip to
                // Redis (its TTL was counted from the store's clock).
                let asked = Instant::now();
                let pttl: i64 = redis::cmd("PTTL").arg(&key).query(&mut con).unwrap();
                let remaining = s.lifetime().remaining(clock.now()).as_millis() as i64;
                let slack = asked.elapsed().as_millis() as i64 + 1_000;
                assert!(
                    (pttl - remaining).abs() <= slack,
                    "PTTL {pttl} vs remaining {remaining} (slack {slack} ms)"
                );
                checked_ttl += 1;
            }
        }
    }
    println!(
        "{} sessions checked: {} live (TTL checked), {} deleted",
        expect.len(),
        checked_ttl,
        expect.len() - checked_ttl
    );
}
