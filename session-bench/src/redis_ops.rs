//! The Redis table's operations, per store. `contenders[0]` is always the raw baseline.
//!
//! | op | ours | tower-sessions-redis-store | actix-session | ActixStore over ours | raw redis-rs |
//! |---|---|---|---|---|---|
//! | load | `SessionStore::load` (`GET`, `PTTL`, `ZSCORE` pipelined) | `load` | `load` | `load` (our `load`, values re-encoded to JSON text) | `GET`; `GET` + `serde_json::from_slice::<Map<String, Value>>` ("raw GET+decode") |
//! | save | `SessionStoreExt::set(id, data)` | `save(&record)` (`SET … XX EXAT`) | `update` (`SET … XX EX`) | `update` (values decoded, one `PutMode::IfLive` put: one `EVALSHA`) | `SET … EX` |
//! | create | `SessionStoreExt::create(data)` | `create(&mut record)` (`SET … NX EXAT`) | `save` (`SET … NX EX`) | not measured | `SET … NX EX` |
//!
//! The "ActixStore over ours" rows are `session_actix::ActixStore` over our `RedisStore` making
//! exactly the actix-session trait calls the "actix-session" rows make (same key and state
//! built per call, same TTL): what an actix-web service gets by swapping its store, against
//! the store it would otherwise keep.
//!
//! Our `set` writes the whole data like the others' saves do and, like every write of ours,
//! keeps the expiry and per-user indexes (one `EVALSHA`); it does not check a version (a
//! `save` of a loaded session would, at the cost of a load first). The raw baselines send
//! pre-encoded JSON: they are the floor, with no encoding and no parsing, except "raw
//! GET+decode", which parses the bytes into the `serde_json::Map` a load hands back (the
//! bare payload, without our metadata member): the same work as a load, without the store.

use std::sync::Arc;

use actix_session::storage::{SessionKey, SessionStore as _};
use serde_json::{Map, Value};
use session_core::{SessionId, SessionStore as _, SessionStoreExt as _};
use tower_sessions_core_014::SessionStore as _;

use crate::driver::{BoxFuture, Contender};
use crate::redis::{actix_ttl, prefix, tower_record, Stores, PER_TASK};
use crate::seed::{self, slot, TTL_SECS};

/// The name of `session_actix::ActixStore` over our `RedisStore` in the tables.
pub const OURS_ACTIX: &str = "ActixStore over ours";

/// The name of actix-session's own `RedisSessionStore` in the tables.
pub const ACTIX: &str = "actix-session";

fn actix_key(key: &str) -> SessionKey {
    SessionKey::try_from(key.to_owned()).expect("actix accepts its own keys")
}

/// The name of raw `GET` plus a decode of the bytes into a `serde_json::Map` in the tables:
/// the same work as a load, without the store (the load goals' baseline).
pub const RAW_GET_DECODE: &str = "raw GET+decode";

/// Reads the CPU seconds of the server `s` runs on, for [`Contender::server_cpu`].
fn server_cpu(s: &Arc<Stores>) -> impl Fn() -> BoxFuture<f64> + Send + Sync + 'static {
    let s = s.clone();
    move || {
        let mut con = s.raw.clone();
        Box::pin(async move { crate::redis::cpu_seconds(&mut con).await })
    }
}

/// `load` / `GET`. Raw `GET`, raw `GET`+decode and ours also report the server's CPU per
/// operation.
pub fn load(s: &Arc<Stores>) -> Vec<Contender> {
    let (a, b, c, d, e, f) = (
        s.clone(),
        s.clone(),
        s.clone(),
        s.clone(),
        s.clone(),
        s.clone(),
    );
    vec![
        Contender::new("raw GET", move |t, i| {
            let mut con = a.raw.clone();
            let key = a.raw_keys[slot(t, i, PER_TASK)].clone();
            async move {
                let v: Option<Vec<u8>> = redis::cmd("GET")
                    .arg(&key)
                    .query_async(&mut con)
                    .await
                    .unwrap();
                assert!(v.is_some());
            }
        })
        .server_cpu(server_cpu(s)),
        Contender::new(RAW_GET_DECODE, move |t, i| {
            let mut con = f.raw.clone();
            let key = f.raw_keys[slot(t, i, PER_TASK)].clone();
            async move {
                let v: Option<Vec<u8>> = redis::cmd("GET")
                    .arg(&key)
                    .query_async(&mut con)
                    .await
                    .unwrap();
                let data: Map<String, Value> =
                    serde_json::from_slice(&v.expect("raw key present")).unwrap();
                assert!(!std::hint::black_box(data).is_empty());
            }
        })
        .server_cpu(server_cpu(s)),
        Contender::new("ours", move |t, i| {
            let s = b.clone();
            async move {
                let id = &s.ours_ids[slot(t, i, PER_TASK)];
                assert!(s.ours.load(id).await.unwrap().is_some());
            }
        })
        .server_cpu(server_cpu(s)),
        Contender::new("tower-sessions-redis-store", move |t, i| {
            let s = c.clone();
            async move {
                let id = &s.tower_records[slot(t, i, PER_TASK)].id;
                assert!(s.tower.load(id).await.unwrap().is_some());
            }
        }),
        Contender::new(ACTIX, move |t, i| {
            let s = d.clone();
            async move {
                let key = actix_key(&s.actix_keys[slot(t, i, PER_TASK)]);
                assert!(s.actix.load(&key).await.unwrap().is_some());
            }
        }),
        Contender::new(OURS_ACTIX, move |t, i| {
            let s = e.clone();
            async move {
                let key = actix_key(&s.ours_actix_keys[slot(t, i, PER_TASK)]);
                assert!(s.ours_actix.load(&key).await.unwrap().is_some());
            }
        }),
    ]
}

/// Whole-session writes of an existing session.
pub fn save(s: &Arc<Stores>) -> Vec<Contender> {
    let (a, b, c, d, e) = (s.clone(), s.clone(), s.clone(), s.clone(), s.clone());
    vec![
        Contender::new("raw SET EX", move |t, i| {
            let mut con = a.raw.clone();
            let key = a.raw_keys[slot(t, i, PER_TASK)].clone();
            let payload = a.payload[t].clone();
            async move {
                let () = redis::cmd("SET")
                    .arg(&key)
                    .arg(&*payload)
                    .arg("EX")
                    .arg(TTL_SECS)
                    .query_async(&mut con)
                    .await
                    .unwrap();
            }
        }),
        Contender::new("ours", move |t, i| {
            let s = b.clone();
            async move {
                let id = &s.ours_ids[slot(t, i, PER_TASK)];
                s.ours.set(id, s.data[t].clone()).await.unwrap();
            }
        }),
        Contender::new("tower-sessions-redis-store", move |t, i| {
            let s = c.clone();
            async move {
                let record = &s.tower_records[slot(t, i, PER_TASK)];
                s.tower.save(record).await.unwrap();
            }
        }),
        Contender::new(ACTIX, move |t, i| {
            let s = d.clone();
            async move {
                let key = actix_key(&s.actix_keys[slot(t, i, PER_TASK)]);
                let state = seed::actix_state(&s.data[t]);
                s.actix.update(key, state, &actix_ttl()).await.unwrap();
            }
        }),
        Contender::new(OURS_ACTIX, move |t, i| {
            let s = e.clone();
            async move {
                let key = actix_key(&s.ours_actix_keys[slot(t, i, PER_TASK)]);
                let state = seed::actix_state(&s.data[t]);
                s.ours_actix.update(key, state, &actix_ttl()).await.unwrap();
            }
        }),
    ]
}

fn clear(s: &Arc<Stores>) -> impl Fn() -> BoxFuture<()> + Send + Sync + 'static {
    let s = s.clone();
    move || {
        let s = s.clone();
        Box::pin(async move { s.clear_created().await })
    }
}

/// New sessions under fresh ids (each window's writes are deleted after it).
pub fn create(s: &Arc<Stores>) -> Vec<Contender> {
    let (a, b, c, d) = (s.clone(), s.clone(), s.clone(), s.clone());
    vec![
        Contender::new("raw SET NX EX", move |t, _| {
            let mut con = a.raw.clone();
            let payload = a.payload[t].clone();
            let a = a.clone();
            async move {
                let key = format!(
                    "{}{}",
                    prefix::RAW_CREATE,
                    SessionId::generate().expose_token()
                );
                let ok: Option<String> = redis::cmd("SET")
                    .arg(&key)
                    .arg(&*payload)
                    .arg("NX")
                    .arg("EX")
                    .arg(TTL_SECS)
                    .query_async(&mut con)
                    .await
                    .unwrap();
                assert!(ok.is_some());
                a.created.push(t, key);
            }
        })
        .after_window(clear(s)),
        Contender::new("ours", move |t, _| {
            let s = b.clone();
            async move {
                let session = s.ours_create.create(s.data[t].clone()).await.unwrap();
                let keys = s.ours_create.keys();
                s.created
                    .push(t, keys.session_key(&keys.storage_id(session.id())));
            }
        })
        .after_window(clear(s)),
        Contender::new("tower-sessions-redis-store", move |t, _| {
            let s = c.clone();
            async move {
                // Real services build the record in the request, so the data clone is theirs.
                let mut record = tower_record(&s.data[t]);
                s.tower.create(&mut record).await.unwrap();
                s.created.push(t, record.id.to_string());
            }
        })
        .after_window(clear(s)),
        Contender::new(ACTIX, move |t, _| {
            let s = d.clone();
            async move {
                let state = seed::actix_state(&s.data[t]);
                let key = s.actix_create.save(state, &actix_ttl()).await.unwrap();
                s.created
                    .push(t, format!("{}{}", prefix::ACTIX_CREATE, key.as_ref()));
            }
        })
        .after_window(clear(s)),
    ]
}
