//! In-process stores: our `MemoryStore`, tower-sessions' `MemoryStore` and a raw
//! `DashMap<String, String>` of JSON, on one tokio multi-thread runtime with 2 workers.
//!
//! Operations (each task on its own sessions, so nothing contends but the store):
//!
//! | op | ours | tower-sessions | raw `DashMap<String, String>` |
//! |---|---|---|---|
//! | get | `get` (= `load`) | `load` (clones the `Record`) | `get` + clone of the JSON `String` |
//! | set | `set(id, data.clone())` (the caller's map, deep-copied for the call) | `save(&record)` (deep-copies the record inside) | `insert(token, json)` (pre-encoded JSON) |
//! | put | `put(id, data, Upsert)` with the data in an `Arc` the caller already holds (no copy: the store keeps that `Arc`) | `save(&record)` | `insert(token, json)` |
//! | update | `update(id, \|d\| …)` | `load`, change, `save` | `get_mut`, parse, change, encode |

use std::hint::black_box;
use std::sync::Arc;

use dashmap::DashMap;
use serde_json::json;
use session_core::{
    PutMode, SessionData, SessionId, SessionStore as _, SessionStoreExt, WriteOptions,
};
use session_memory::MemoryStore;
use time::OffsetDateTime;
use tower_sessions::session::{Id, Record};
use tower_sessions::SessionStore as _;

use crate::driver::{cell, Contender, Plan};
use crate::report::CellRow;
use crate::seed::{self, slot, MAX_TASKS};

/// Sessions per task; the stores hold `MAX_TASKS` times this many.
const PER_TASK: usize = 160;

/// The task counts of the memory table.
pub const TASKS: [usize; 3] = [1, 2, 16];

struct Fixture {
    ours: MemoryStore,
    ids: Vec<SessionId>,
    data: Vec<SessionData>,
    shared: Vec<Arc<SessionData>>,
    tower: tower_sessions::MemoryStore,
    records: Vec<Record>,
    raw: DashMap<String, String>,
    tokens: Vec<String>,
    json: Vec<String>,
}

async fn fixture() -> Arc<Fixture> {
    let ours = MemoryStore::builder().eviction_interval(None).build();
    let tower = tower_sessions::MemoryStore::default();
    let raw = DashMap::new();
    let n = MAX_TASKS * PER_TASK;
    let (mut ids, mut data, mut records, mut tokens, mut json) =
        (vec![], vec![], vec![], vec![], vec![]);
    let expiry = OffsetDateTime::now_utc() + time::Duration::seconds(seed::TTL_SECS as i64);
    for i in 0..n {
        let d = seed::data(&format!("user{i}"));
        let session = ours.create(d.clone()).await.expect("memory create");
        let mut record = Record {
            id: Id::default(),
            data: seed::tower_data(&d),
            expiry_date: expiry,
        };
        tower.create(&mut record).await.expect("tower create");
        let token = session.id().expose_token().to_owned();
        let text = seed::payload(&d);
        raw.insert(token.clone(), text.clone());
        ids.push(session.id().clone());
        data.push(d);
        records.push(record);
        tokens.push(token);
        json.push(text);
    }
    let shared = data.iter().cloned().map(Arc::new).collect();
    Arc::new(Fixture {
        ours,
        ids,
        data,
        shared,
        tower,
        records,
        raw,
        tokens,
        json,
    })
}

fn get(fx: &Arc<Fixture>) -> Vec<Contender> {
    let (a, b, c) = (fx.clone(), fx.clone(), fx.clone());
    vec![
        Contender::new("raw DashMap", move |t, i| {
            let v = a
                .raw
                .get(&a.tokens[slot(t, i, PER_TASK)])
                .map(|v| v.clone());
            black_box(v.expect("present"));
            std::future::ready(())
        }),
        Contender::new("ours", move |t, i| {
            let fx = b.clone();
            async move {
                let id = &fx.ids[slot(t, i, PER_TASK)];
                black_box(fx.ours.get(id).await.unwrap().expect("present"));
            }
        }),
        Contender::new("tower-sessions", move |t, i| {
            let fx = c.clone();
            async move {
                let id = &fx.records[slot(t, i, PER_TASK)].id;
                black_box(fx.tower.load(id).await.unwrap().expect("present"));
            }
        }),
    ]
}

/// The raw baseline of both writes: insert the pre-encoded JSON.
fn raw_insert(fx: Arc<Fixture>) -> Contender {
    Contender::new("raw DashMap", move |t, i| {
        let k = slot(t, i, PER_TASK);
        black_box(fx.raw.insert(fx.tokens[k].clone(), fx.json[k].clone()));
        std::future::ready(())
    })
}

/// tower-sessions' write, for both of ours: `save(&record)`, which copies the record in.
fn tower_save(fx: Arc<Fixture>) -> Contender {
    Contender::new("tower-sessions", move |t, i| {
        let fx = fx.clone();
        async move {
            fx.tower
                .save(&fx.records[slot(t, i, PER_TASK)])
                .await
                .unwrap();
        }
    })
}

fn set(fx: &Arc<Fixture>) -> Vec<Contender> {
    let ours = fx.clone();
    vec![
        raw_insert(fx.clone()),
        Contender::new("ours", move |t, i| {
            let fx = ours.clone();
            async move {
                let k = slot(t, i, PER_TASK);
                black_box(fx.ours.set(&fx.ids[k], fx.data[k].clone()).await.unwrap());
            }
        }),
        tower_save(fx.clone()),
    ]
}

fn put(fx: &Arc<Fixture>) -> Vec<Contender> {
    let ours = fx.clone();
    vec![
        raw_insert(fx.clone()),
        Contender::new("ours", move |t, i| {
            let fx = ours.clone();
            async move {
                let k = slot(t, i, PER_TASK);
                let data = fx.shared[k].clone();
                let put = fx
                    .ours
                    .put(&fx.ids[k], data, PutMode::Upsert, WriteOptions::new());
                black_box(put.await.unwrap());
            }
        }),
        tower_save(fx.clone()),
    ]
}

fn update(fx: &Arc<Fixture>) -> Vec<Contender> {
    let (a, b, c) = (fx.clone(), fx.clone(), fx.clone());
    vec![
        Contender::new("raw DashMap", move |t, i| {
            // The map holds JSON text, so a read-modify-write parses and re-encodes, under
            // the shard's write lock (atomic, like the stores' updates).
            let mut entry = a.raw.get_mut(&a.tokens[slot(t, i, PER_TASK)]).unwrap();
            let mut data = seed::parse(&entry);
            data.insert("csrf_token".into(), json!(i));
            *entry = serde_json::to_string(&data).unwrap();
            std::future::ready(())
        }),
        Contender::new("ours", move |t, i| {
            let fx = b.clone();
            async move {
                let id = &fx.ids[slot(t, i, PER_TASK)];
                let updated = fx
                    .ours
                    .update(id, |d| {
                        d.insert("csrf_token".into(), json!(i));
                    })
                    .await
                    .unwrap();
                black_box(updated.expect("present"));
            }
        }),
        Contender::new("tower-sessions", move |t, i| {
            let fx = c.clone();
            async move {
                // What tower-sessions' `Session` does for a request that changes a value.
                let id = &fx.records[slot(t, i, PER_TASK)].id;
                let mut record = fx.tower.load(id).await.unwrap().expect("present");
                record.data.insert("csrf_token".into(), json!(i));
                fx.tower.save(&record).await.unwrap();
            }
        }),
    ]
}

/// Runs the memory table: every op at every task count in [`TASKS`].
pub async fn run(plan: Plan) -> Vec<CellRow> {
    let fx = fixture().await;
    let ops: [(&'static str, Vec<Contender>); 4] = [
        ("get", get(&fx)),
        ("set", set(&fx)),
        ("put", put(&fx)),
        ("update", update(&fx)),
    ];
    let mut rows = Vec::new();
    for (op, contenders) in &ops {
        for tasks in TASKS {
            let figures = cell(contenders, tasks, plan).await;
            let row = CellRow { op, tasks, figures };
            eprintln!("{}", row.progress_line());
            rows.push(row);
        }
    }
    rows
}
