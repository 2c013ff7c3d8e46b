//! A steady mix of writes, reads and deletes on one store, recording every outcome, and the
//! measurements failover tests report.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use session_core::{Error, PutMode, SessionId, SessionStore, WriteOptions};
use session_sentinel::{SentinelError, SentinelStore};

/// One finished operation.
#[derive(Debug, Clone, Copy)]
pub struct Event {
    pub end: Instant,
    pub ok: bool,
    /// The store's master generation when it finished.
    pub generation: u64,
}

/// What the workers know for sure at the end.
#[derive(Debug, Default)]
pub struct Ledger {
    /// Sessions whose last acknowledged write was a `set` of this value of `n`.
    pub live: HashMap<SessionId, u64>,
    /// Sessions whose delete was acknowledged (and nothing written after).
    pub deleted: Vec<SessionId>,
    pub events: Vec<Event>,
    /// Reads that found an acknowledged session missing during the run.
    pub read_misses: u64,
    /// Errors by kind, for the report.
    pub errors: HashMap<String, u64>,
}

/// The running load; [`Load::stop`] ends it and returns the ledger.
pub struct Load {
    stop: Arc<AtomicBool>,
    successes: Arc<AtomicU64>,
    ledger: Arc<Mutex<Ledger>>,
    workers: Vec<tokio::task::JoinHandle<()>>,
}

/// Starts `workers` tasks on `store`, each looping write, read, (every fourth turn) delete,
/// with a short pause, so the Sentinels are not starved of CPU.
pub fn start(store: Arc<SentinelStore>, workers: usize) -> Load {
    let stop = Arc::new(AtomicBool::new(false));
    let successes = Arc::new(AtomicU64::new(0));
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let counter = Arc::new(AtomicU64::new(0));
    let workers = (0..workers)
        .map(|_| {
            let (store, stop, successes, ledger, counter) = (
                store.clone(),
                stop.clone(),
                successes.clone(),
                ledger.clone(),
                counter.clone(),
            );
            tokio::spawn(async move {
                let mut mine: Vec<SessionId> = Vec::new();
                let mut turn = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    turn += 1;
                    let n = counter.fetch_add(1, Ordering::SeqCst);
                    // Write a fresh session.
                    let id = SessionId::generate();
                    let result = store
                        .put(
                            &id,
                            Arc::new(super::data(n)),
                            PutMode::Upsert,
                            WriteOptions::new(),
                        )
                        .await;
                    record(&store, &ledger, &successes, &result);
                    // A failed write's outcome is uncertain: it is not checked at the end.
                    if result.is_ok() {
                        ledger.lock().unwrap().live.insert(id.clone(), n);
                        mine.push(id);
                    }
                    // Read one acknowledged earlier.
                    if let Some(id) = mine.get((n as usize * 7) % mine.len().max(1)).cloned() {
                        let result = store.load(&id).await;
                        if let Ok(None) = result {
                            ledger.lock().unwrap().read_misses += 1;
                        }
                        record(&store, &ledger, &successes, &result);
                    }
                    // Every fourth turn, log one out.
                    if turn % 4 == 0 && !mine.is_empty() {
                        let id = mine.swap_remove(0);
                        let result = store.delete(&id).await;
                        record(&store, &ledger, &successes, &result);
                        let mut l = ledger.lock().unwrap();
                        l.live.remove(&id);
                        if result.is_ok() {
                            l.deleted.push(id);
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(3)).await;
                }
            })
        })
        .collect();
    Load {
        stop,
        successes,
        ledger,
        workers,
    }
}

fn record<T>(
    store: &SentinelStore,
    ledger: &Mutex<Ledger>,
    successes: &AtomicU64,
    result: &Result<T, Error>,
) {
    let event = Event {
        end: Instant::now(),
        ok: result.is_ok(),
        generation: store.connection().generation(),
    };
    let mut l = ledger.lock().unwrap();
    l.events.push(event);
    if let Err(e) = result {
        *l.errors.entry(kind(e)).or_default() += 1;
    } else {
        successes.fetch_add(1, Ordering::SeqCst);
    }
}

/// A short name for an error, for the report.
pub fn kind(e: &Error) -> String {
    let sentinel = std::error::Error::source(e).and_then(|s| s.downcast_ref::<SentinelError>());
    match sentinel {
        Some(SentinelError::NotReplicated { .. }) => "NotReplicated".into(),
        Some(SentinelError::OutcomeUnknown { .. }) => "OutcomeUnknown".into(),
        Some(SentinelError::NoMaster { .. }) => "NoMaster".into(),
        Some(SentinelError::NotMaster { .. }) => "NotMaster".into(),
        Some(SentinelError::NoSentinelReachable { .. }) => "NoSentinelReachable".into(),
        Some(other) => format!("{other:?}"),
        None => format!("{e}"),
    }
}

impl Load {
    /// Successful operations so far.
    pub fn successes(&self) -> u64 {
        self.successes.load(Ordering::SeqCst)
    }

    /// Blocks (the test's own thread) until `more` further operations succeeded, or panics
    /// after `timeout`.
    pub fn wait_successes(&self, more: u64, timeout: Duration) {
        let target = self.successes() + more;
        let ok = redis_harness::wait_until(timeout, || self.successes() >= target);
        assert!(
            ok,
            "the store did not serve {more} operations within {timeout:?}"
        );
    }

    /// Blocks until an operation succeeded on a master generation above `generation`.
    pub fn wait_served_by_generation_above(&self, generation: u64, timeout: Duration) {
        let ok = redis_harness::wait_until(timeout, || {
            let l = self.ledger.lock().unwrap();
            l.events
                .iter()
                .rev()
                .take(50)
                .any(|e| e.ok && e.generation > generation)
        });
        assert!(ok, "no operation served by a new master within {timeout:?}");
    }

    /// Stops the workers and returns what they recorded.
    pub async fn stop(self) -> Ledger {
        self.stop.store(true, Ordering::SeqCst);
        for w in self.workers {
            w.await.expect("load worker panicked");
        }
        Arc::try_unwrap(self.ledger)
            .map(|m| m.into_inner().unwrap())
            .unwrap_or_else(|_| panic!("ledger still shared"))
    }
}

/// The longest stretch without a successful operation among events ending after `from`:
/// (last success before it, first success after it).
pub fn outage(events: &[Event], from: Instant) -> (Instant, Instant) {
    let mut ok: Vec<Instant> = events.iter().filter(|e| e.ok).map(|e| e.end).collect();
    ok.sort_unstable();
    let start = ok.iter().rposition(|t| *t <= from).unwrap_or(0);
    ok[start..]
        .windows(2)
        .map(|w| (w[0], w[1]))
        .max_by_key(|(a, b)| *b - *a)
        .expect("successes before and after the failover")
}

/// Checks every acknowledged write and delete against the store; returns
/// (acknowledged writes missing or changed, acknowledged deletes come back).
pub async fn audit(store: &SentinelStore, ledger: &Ledger) -> (usize, usize) {
    let mut lost = 0;
    for (id, n) in &ledger.live {
        match store.load(id).await.expect("audit load") {
            Some(s) if s.data().get("n").and_then(|v| v.as_u64()) == Some(*n) => {}
            _ => lost += 1,
        }
    }
    let mut resurrected = 0;
    for id in &ledger.deleted {
        if store.load(id).await.expect("audit load").is_some() {
            resurrected += 1;
        }
    }
    (lost, resurrected)
}
