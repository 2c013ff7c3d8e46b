//! Memory backend `get`, `set` and `update` at 1 and 2 threads, beside a raw
//! `DashMap<String, String>` get/insert of the same tokens and JSON, in the same run.
//!
//! Run: `cargo bench -p session-memory --bench memory` (about 40 s; `BENCH_QUICK=1` for a
//! 10 s smoke run). Prints operations per second (all threads together, median of 5 samples
//! after a warm-up) and the ratio to the raw map's matching operation.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use futures::FutureExt as _;
use serde_json::json;
use session_core::{SessionData, SessionId, SessionStoreExt};
use session_memory::MemoryStore;

const SESSIONS: usize = 10_000;

/// A session shaped like the existing service's.
fn session_data(i: usize) -> SessionData {
    json!({
        "user": {"username": format!("user{i}"), "email": format!("user{i}@example.com"),
                 "role": "admin", "sub": format!("00000000-0000-4000-8000-{i:012}"),
                 "preferred_username": format!("user{i}")},
        "access_token": "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1c2VyIn0.c2lnbmF0dXJl",
        "created": 1_764_000_000.5,
        "csrf_token": "k3Jx9q0P8yW2mZ4vB6nT1sR5uE7oI0aL"
    })
    .as_object()
    .unwrap()
    .clone()
}

struct Fixture {
    ids: Vec<SessionId>,
    tokens: Vec<String>,
    store: MemoryStore,
    raw: DashMap<String, String>,
    data: Vec<SessionData>,
    json: Vec<String>,
}

fn fixture() -> Arc<Fixture> {
    let store = MemoryStore::builder().eviction_interval(None).build();
    let raw = DashMap::new();
    let (mut ids, mut tokens, mut data, mut json) = (vec![], vec![], vec![], vec![]);
    for i in 0..SESSIONS {
        let d = session_data(i);
        let s = store.create(d.clone()).now_or_never().unwrap().unwrap();
        let token = s.id().expose_token().to_owned();
        let text = serde_json::to_string(&d).unwrap();
        raw.insert(token.clone(), text.clone());
        ids.push(s.id().clone());
        tokens.push(token);
        data.push(d);
        json.push(text);
    }
    Arc::new(Fixture {
        ids,
        tokens,
        store,
        raw,
        data,
        json,
    })
}

type Op = fn(&Fixture, usize);

/// Operations per second with `threads` threads running `op` for `window`.
fn throughput(fx: &Arc<Fixture>, threads: usize, op: Op, window: Duration) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    thread::scope(|scope| {
        for t in 0..threads {
            let (fx, stop, done) = (fx.clone(), stop.clone(), done.clone());
            scope.spawn(move || {
                let mut k = t * 7919;
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    for _ in 0..256 {
                        k = (k + 104_729) % SESSIONS;
                        op(&fx, k);
                    }
                    n += 256;
                }
                done.fetch_add(n, Ordering::Relaxed);
            });
        }
        thread::sleep(window);
        stop.store(true, Ordering::Relaxed);
    });
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

fn median_throughput(fx: &Arc<Fixture>, threads: usize, op: Op, quick: bool) -> f64 {
    let window = Duration::from_millis(if quick { 150 } else { 700 });
    throughput(fx, threads, op, window / 2); // warm-up
    let mut samples: Vec<f64> = (0..5)
        .map(|_| throughput(fx, threads, op, window))
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[2]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` asks for the list; nothing to list.
    }
    let quick = std::env::var_os("BENCH_QUICK").is_some();
    let fx = fixture();
    let cases: [(&str, &str, Op); 5] = [
        ("raw DashMap get (clone value)", "", |fx, k| {
            black_box(fx.raw.get(&fx.tokens[k]).map(|v| v.value().clone()));
        }),
        ("raw DashMap insert", "", |fx, k| {
            black_box(fx.raw.insert(fx.tokens[k].clone(), fx.json[k].clone()));
        }),
        (
            "MemoryStore get",
            "raw DashMap get (clone value)",
            |fx, k| {
                black_box(fx.store.get(&fx.ids[k]).now_or_never().unwrap().unwrap());
            },
        ),
        ("MemoryStore set", "raw DashMap insert", |fx, k| {
            let set = fx.store.set(&fx.ids[k], fx.data[k].clone());
            black_box(set.now_or_never().unwrap().unwrap());
        }),
        ("MemoryStore update", "raw DashMap insert", |fx, k| {
            let up = fx.store.update(&fx.ids[k], |d| {
                d.insert("csrf_token".into(), json!("rotated"));
            });
            black_box(up.now_or_never().unwrap().unwrap());
        }),
    ];
    println!(
        "memory backend, {SESSIONS} sessions, {} cores",
        thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!("| operation | threads | ops/s | vs baseline |");
    println!("|---|---:|---:|---|");
    for threads in [1usize, 2] {
        let mut results: Vec<(&str, f64)> = Vec::new();
        for (name, baseline, op) in cases {
            let ops = median_throughput(&fx, threads, op, quick);
            let ratio = results
                .iter()
                .find(|(n, _)| *n == baseline)
                .map_or(String::from("baseline"), |(_, b)| {
                    format!("{:.2}x {baseline}", ops / b)
                });
            println!("| {name} | {threads} | {ops:.0} | {ratio} |");
            results.push((name, ops));
        }
    }
}
