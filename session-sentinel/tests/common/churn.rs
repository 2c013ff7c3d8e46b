//! Session churn for degraded-topology tests: tasks that create a session, save it a few
//! times with a counter in its data, and delete it, recording every write as its caller saw
//! it and what they can tell about acknowledged writes lost and `OutcomeUnknown` writes.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use session_core::{
    Error, PutMode, Result, Session, SessionId, SessionStore, SessionStoreExt, WriteOptions,
};
use session_sentinel::{SentinelError, SentinelStore};

/// Tasks per store.
pub const TASKS: usize = 16;
const SAVES_PER_SESSION: u64 = 5;
/// Between two operations of a task, so 32 tasks leave the Sentinels CPU on two cores.
const PAUSE: Duration = Duration::from_millis(10);
const LIVENESS: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Create,
    Save,
    Delete,
}

/// One write, as its caller saw it.
#[derive(Debug, Clone)]
pub struct Op {
    pub kind: Kind,
    pub start: Instant,
    pub end: Instant,
    /// The store's master when it started and when it ended.
    pub ports: (Option<u16>, Option<u16>),
    pub outcome: String,
}

/// A write that failed with `OutcomeUnknown`, and what a load right after showed.
#[derive(Debug)]
struct Unknown {
    id: SessionId,
    /// The counter the write carried (0: a create).
    wrote: u64,
    /// The counter the load after the error showed (`None`: no session).
    seen: Option<u64>,
    settled: bool,
    /// Acknowledged counters of the session before it (for the loss audit).
    acked: Vec<(u64, Instant)>,
}

/// A session a task works on: the last state it knows and the acknowledged counters.
struct Mine {
    session: Session,
    acked: Vec<(u64, Instant)>,
    /// A delete was sent: a failed one may have been applied, so it is only repeated.
    deleting: bool,
}

#[derive(Default)]
pub struct Record {
    ops: Vec<Op>,
    /// When each acknowledged write found lost had been acknowledged.
    lost: Vec<Instant>,
    unknown: Vec<Unknown>,
    unknown_unverified: u64,
    deleted: Vec<(SessionId, Instant)>,
    current: Vec<Mine>,
}

fn data(task: usize, n: u64) -> session_core::SessionData {
    let mut data = super::data(task as u64);
    data.insert("n".into(), serde_json::json!(n));
    data
}

fn counter(session: &Session) -> Option<u64> {
    session.data().get("n").and_then(serde_json::Value::as_u64)
}

fn kind_of(e: &Error) -> String {
    match std::error::Error::source(e).and_then(|s| s.downcast_ref::<SentinelError>()) {
        Some(SentinelError::NotReplicated { .. }) => "NotReplicated".into(),
        Some(SentinelError::OutcomeUnknown { .. }) => "OutcomeUnknown".into(),
        Some(SentinelError::FailoverStarted { applied, .. }) => {
            format!("FailoverStarted(applied={applied})")
        }
        Some(other) => format!("{other:?}")
            .split([' ', '{', '('])
            .next()
            .unwrap_or("")
            .to_owned(),
        None => match e {
            Error::Conflict => "Conflict".into(),
            Error::NotFound => "NotFound".into(),
            other => format!("{other}"),
        },
    }
}

/// `Some(settled)` when `e` is an `OutcomeUnknown`.
fn unknown_outcome(e: &Error) -> Option<bool> {
    match std::error::Error::source(e).and_then(|s| s.downcast_ref::<SentinelError>()) {
        Some(SentinelError::OutcomeUnknown { settled, .. }) => Some(*settled),
        _ => None,
    }
}

struct Worker {
    store: Arc<SentinelStore>,
    task: usize,
    record: Arc<Mutex<Record>>,
    successes: Arc<AtomicU64>,
}

impl Worker {
    async fn timed<T>(
        &self,
        kind: Kind,
        write: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        let port = || self.store.connection().master().map(|(_, p)| p);
        let (before, start) = (port(), Instant::now());
        let result = write.await;
        let end = Instant::now();
        let outcome = match &result {
            Ok(_) => {
                self.successes.fetch_add(1, Ordering::SeqCst);
                "ok".to_owned()
            }
            Err(e) => kind_of(e),
        };
        self.record.lock().unwrap().ops.push(Op {
            kind,
            start,
            end,
            ports: (before, port()),
            outcome,
        });
        result
    }

    /// Where `mine` stands now, after a write that failed: losses of acknowledged counters
    /// are recorded; `None` when the session is gone, `Some(mine)` unchanged when the load
    /// failed too.
    async fn resync(&self, mut mine: Mine) -> Option<Mine> {
        let Ok(loaded) = self.store.load(mine.session.id()).await else {
            return Some(mine);
        };
        let now_at = loaded.as_ref().and_then(counter);
        self.lose_above(&mine.acked, now_at);
        let session = loaded?;
        mine.acked.retain(|(n, _)| Some(*n) <= now_at);
        mine.session = session;
        Some(mine)
    }

    fn lose_above(&self, acked: &[(u64, Instant)], now_at: Option<u64>) {
        let lost = acked
            .iter()
            .filter(|(n, _)| Some(*n) > now_at)
            .map(|(_, t)| *t);
        self.record.lock().unwrap().lost.extend(lost);
    }

    async fn after_unknown(
        &self,
        id: &SessionId,
        wrote: u64,
        settled: bool,
        acked: Vec<(u64, Instant)>,
    ) {
        let Ok(loaded) = self.store.load(id).await else {
            self.record.lock().unwrap().unknown_unverified += 1;
            return;
        };
        let seen = loaded.as_ref().and_then(counter);
        self.record.lock().unwrap().unknown.push(Unknown {
            id: id.clone(),
            wrote,
            seen,
            settled,
            acked,
        });
    }

    async fn run(self, stop: Arc<AtomicBool>) {
        let mut mine: Option<Mine> = None;
        while !stop.load(Ordering::SeqCst) {
            mine = match mine.take() {
                None => self.create().await,
                Some(m) if m.acked.last().map_or(0, |(n, _)| *n) < SAVES_PER_SESSION => {
                    self.save(m).await
                }
                Some(m) => self.delete(m).await,
            };
            tokio::time::sleep(PAUSE).await;
        }
        if let Some(m) = mine {
            self.record.lock().unwrap().current.push(m);
        }
    }

    async fn create(&self) -> Option<Mine> {
        let id = SessionId::generate();
        let data = Arc::new(data(self.task, 0));
        let put = self
            .store
            .put(&id, data, PutMode::Create, WriteOptions::new());
        match self.timed(Kind::Create, put).await {
            Ok(session) => Some(Mine {
                session,
                acked: vec![(0, Instant::now())],
                deleting: false,
            }),
            Err(e) => {
                if let Some(settled) = unknown_outcome(&e) {
                    self.after_unknown(&id, 0, settled, Vec::new()).await;
                }
                None // not acknowledged: not followed further
            }
        }
    }

    async fn save(&self, mut m: Mine) -> Option<Mine> {
        let n = counter(&m.session).unwrap_or(0) + 1;
        let mut next = m.session.clone();
        next.data_mut().insert("n".into(), serde_json::json!(n));
        match self.timed(Kind::Save, self.store.save(next)).await {
            Ok(session) => {
                m.session = session;
                m.acked.push((n, Instant::now()));
                Some(m)
            }
            Err(e) => match unknown_outcome(&e) {
                // Left alone from here on: the end checks it never changes again.
                Some(settled) => {
                    self.after_unknown(m.session.id(), n, settled, m.acked)
                        .await;
                    None
                }
                None => self.resync(m).await,
            },
        }
    }

    async fn delete(&self, m: Mine) -> Option<Mine> {
        // A logout reads the session first: a save lost meanwhile shows here.
        let mut m = if m.deleting { m } else { self.resync(m).await? };
        m.deleting = true;
        let id = m.session.id().clone();
        match self.timed(Kind::Delete, self.store.delete(&id)).await {
            Ok(_) => {
                self.record
                    .lock()
                    .unwrap()
                    .deleted
                    .push((id, Instant::now()));
                None
            }
            Err(_) => Some(m),
        }
    }
}

pub struct Running {
    stop: Arc<AtomicBool>,
    successes: Arc<AtomicU64>,
    record: Arc<Mutex<Record>>,
    workers: Vec<tokio::task::JoinHandle<()>>,
}

pub fn start(store: &Arc<SentinelStore>) -> Running {
    let stop = Arc::new(AtomicBool::new(false));
    let successes = Arc::new(AtomicU64::new(0));
    let record = Arc::new(Mutex::new(Record::default()));
    let workers = (0..TASKS)
        .map(|task| {
            let worker = Worker {
                store: store.clone(),
                task,
                record: record.clone(),
                successes: successes.clone(),
            };
            tokio::spawn(worker.run(stop.clone()))
        })
        .collect();
    Running {
        stop,
        successes,
        record,
        workers,
    }
}

impl Running {
    /// Blocks the test's thread until `more` further writes were acknowledged.
    pub fn wait_successes(&self, more: u64) {
        let target = self.successes.load(Ordering::SeqCst) + more;
        let ok =
            redis_harness::wait_until(LIVENESS, || self.successes.load(Ordering::SeqCst) >= target);
        assert!(
            ok,
            "the store did not acknowledge {more} writes within {LIVENESS:?}"
        );
    }

    pub async fn stop(self) -> Record {
        self.stop.store(true, Ordering::SeqCst);
        for w in self.workers {
            w.await.expect("worker panicked");
        }
        Arc::try_unwrap(self.record)
            .map(|m| m.into_inner().unwrap())
            .unwrap_or_else(|_| panic!("record still shared"))
    }
}

/// Lost acknowledged writes (found by the tasks, and now in the sessions still in use and
/// the deleted ones come back), unknown-outcome writes applied after the load that followed
/// them, and `OutcomeUnknown`s in total.
pub struct Audit {
    pub lost: Vec<Instant>,
    pub late: usize,
    pub unknown: usize,
    pub unknown_settled: usize,
}

pub async fn audit(store: &SentinelStore, mut record: Record) -> (Audit, Vec<Op>, u64) {
    let load = |id: SessionId| async move { store.load(&id).await.expect("audit load") };
    for mine in &record.current {
        let now_at = load(mine.session.id().clone())
            .await
            .as_ref()
            .and_then(counter);
        record.lost.extend(
            mine.acked
                .iter()
                .filter(|(n, _)| Some(*n) > now_at)
                .map(|(_, t)| *t),
        );
    }
    for (id, at) in &record.deleted {
        if load(id.clone()).await.is_some() {
            record.lost.push(*at);
        }
    }
    let mut late = 0;
    for u in &record.unknown {
        let now_at = load(u.id.clone()).await.as_ref().and_then(counter);
        let shown = |c: Option<u64>| c == Some(u.wrote);
        if !shown(u.seen) && shown(now_at) {
            late += 1;
            println!("LATE: {u:?} is now at {now_at:?}");
        }
        record.lost.extend(
            u.acked
                .iter()
                .filter(|(n, _)| Some(*n) > now_at)
                .map(|(_, t)| *t),
        );
    }
    let audit = Audit {
        lost: record.lost,
        late,
        unknown: record.unknown.len(),
        unknown_settled: record.unknown.iter().filter(|u| u.settled).count(),
    };
    (audit, record.ops, record.unknown_unverified)
}
