//! The workload the fault tests run through a [`ClusterStore`]: tasks that each create, save
//! (a counter in the data, `PutMode::IfLive`), load and delete sessions of their own, and a
//! model of what the store acknowledged, to check every session against at the end.
//!
//! A failed write's outcome is unknown (it may have been applied before the connection
//! broke), so the model keeps, per session, the last acknowledged state and the states of
//! the failed writes since; what the store shows must be one of them. Anything else is an
//! acknowledged write lost (an older counter, or the session gone) or an acknowledged delete
//! back.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use session_cluster::ClusterStore;
use session_core::{Error, PutMode, SessionData, SessionId, SessionStore, WriteOptions};
use session_redis::keys::{key_slot, SLOTS};
use tokio::task::JoinHandle;

use crate::error_kind;

/// What the store holds for one session, as far as the workload can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Absent,
    /// Live with this counter in its data.
    Live(u64),
}

/// One session the workload wrote, and what the store acknowledged for it.
#[derive(Debug)]
pub struct Tracked {
    pub id: SessionId,
    /// The hash slot of its key.
    pub slot: u16,
    /// The last acknowledged (or observed) state.
    known: State,
    /// States of writes that failed since: each may or may not have been applied.
    unsure: Vec<State>,
    /// The last counter written (acknowledged or not).
    counter: u64,
    /// Still used by its task (not deleted, not found gone).
    active: bool,
    /// The store once showed an older state than an acknowledged write's.
    pub lost_write: bool,
    /// The store once showed it live after an acknowledged delete.
    pub delete_back: bool,
}

impl Tracked {
    fn new(id: SessionId, slot: u16) -> Self {
        Tracked {
            id,
            slot,
            known: State::Absent,
            unsure: Vec::new(),
            counter: 0,
            active: true,
            lost_write: false,
            delete_back: false,
        }
    }

    fn ack(&mut self, state: State) {
        self.known = state;
        self.unsure.clear();
    }

    fn failed(&mut self, state: State) {
        self.unsure.push(state);
    }

    /// The store showed `got`: the known state, a failed write's (applied after all), or a
    /// contradiction, noted. Afterwards the model follows the store.
    fn observe(&mut self, got: State) -> Seen {
        if got == self.known {
            return Seen::Known;
        }
        if self.unsure.contains(&got) {
            self.known = got;
            return Seen::FailedWriteApplied;
        }
        match (self.known, got) {
            (State::Absent, State::Live(_)) => self.delete_back = true,
            (State::Live(_), _) => self.lost_write = true,
            (State::Absent, State::Absent) => unreachable!("equal states return early"),
        }
        self.known = got;
        Seen::Contradiction
    }

    /// The state expected now, if no failed write leaves it open.
    pub fn expected(&self) -> Option<State> {
        self.unsure.is_empty().then_some(self.known)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    Known,
    FailedWriteApplied,
    Contradiction,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum OpKind {
    Create,
    Save,
    Load,
    Delete,
}

impl OpKind {
    pub fn is_write(self) -> bool {
        self != OpKind::Load
    }
}

/// One operation as a task saw it.
#[derive(Debug, Clone, Copy)]
pub struct Op {
    pub kind: OpKind,
    pub slot: u16,
    pub started: Instant,
    pub ended: Instant,
    pub ok: bool,
}

/// One error a task got.
#[derive(Debug, Clone)]
pub struct Failure {
    pub op: Op,
    pub kind: String,
    pub message: String,
}

/// What one task did.
#[derive(Debug, Default)]
pub struct TaskLog {
    pub sessions: Vec<Tracked>,
    pub ops: Vec<Op>,
    pub failures: Vec<Failure>,
}

/// How a task picks its next operation: it keeps `active` sessions, creating one whenever
/// it has fewer; otherwise `load` or `delete` (percentages, the rest saves) one of them at
/// random. With `hot`, that share of new sessions gets ids in the hot slots.
#[derive(Debug, Clone)]
pub struct Mix {
    pub active: usize,
    pub load: u32,
    pub delete: u32,
    pub hot: Option<Hot>,
}

/// Slots (indexed by slot) that a share (percent) of new sessions go to.
#[derive(Debug, Clone)]
pub struct Hot {
    pub slots: Arc<[bool]>,
    pub percent: u32,
}

/// Running tasks; [`stop`](Self::stop) them to get their logs.
pub struct Workload {
    stop: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<TaskLog>>,
    shared: Arc<Shared>,
}

/// What the tasks report while they run.
struct Shared {
    epoch: Instant,
    /// Operations acknowledged so far.
    acked: AtomicU64,
    /// Per slot: when the latest acknowledged write to it started (µs after `epoch`, plus 1;
    /// 0 for none).
    written: Vec<AtomicU64>,
}

impl Shared {
    fn micros(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_micros()).unwrap_or(u64::MAX) + 1
    }
}

impl Workload {
    /// Starts `tasks` tasks on the current runtime, each doing one operation per `period`
    /// at most (a steady offered load that leaves the servers CPU on a small machine).
    pub fn start(store: &ClusterStore, tasks: usize, period: Duration, mix: Mix) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(Shared {
            epoch: Instant::now(),
            acked: AtomicU64::new(0),
            written: (0..SLOTS).map(|_| AtomicU64::new(0)).collect(),
        });
        let tasks = (0..tasks)
            .map(|task| {
                let run = Task {
                    store: store.clone(),
                    rng: Rng::new(task as u64),
                    mix: mix.clone(),
                    log: TaskLog::default(),
                    shared: shared.clone(),
                };
                tokio::spawn(run.run(period, stop.clone()))
            })
            .collect();
        Workload {
            stop,
            tasks,
            shared,
        }
    }

    /// Operations that succeeded so far, across tasks.
    pub fn acked(&self) -> u64 {
        self.shared.acked.load(Ordering::Relaxed)
    }

    /// Whether a write to one of `slots` that started at or after `since` was acknowledged.
    pub fn wrote_since(&self, slots: &[u16], since: Instant) -> bool {
        let since = self.shared.micros(since);
        slots
            .iter()
            .any(|&s| self.shared.written[usize::from(s)].load(Ordering::Relaxed) >= since)
    }

    /// Stops every task after its current operation and returns their logs.
    ///
    /// # Panics
    /// If a task panicked (the store must answer with errors, never a panic).
    pub async fn stop(self) -> Vec<TaskLog> {
        self.stop.store(true, Ordering::Relaxed);
        let mut logs = Vec::new();
        for task in self.tasks {
            logs.push(task.await.expect("a workload task panicked"));
        }
        logs
    }
}

struct Task {
    store: ClusterStore,
    rng: Rng,
    mix: Mix,
    log: TaskLog,
    shared: Arc<Shared>,
}

impl Task {
    async fn run(mut self, period: Duration, stop: Arc<AtomicBool>) -> TaskLog {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut active: Vec<usize> = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            tick.tick().await;
            active.retain(|&i| self.log.sessions[i].active);
            if active.len() < self.mix.active {
                let id = match &self.mix.hot {
                    Some(hot) if (self.rng.below(100) as u32) < hot.percent => {
                        id_in(&self.store, &hot.slots)
                    }
                    _ => SessionId::generate(),
                };
                let slot = slot_of(&self.store, &id);
                self.log.sessions.push(Tracked::new(id, slot));
                let at = self.log.sessions.len() - 1;
                active.push(at);
                self.create(at).await;
                continue;
            }
            let at = active[self.rng.below(active.len() as u64) as usize];
            let dice = self.rng.below(100) as u32;
            if dice < self.mix.delete {
                self.delete(at).await;
            } else if dice < self.mix.delete + self.mix.load {
                self.load(at).await;
            } else {
                self.save(at).await;
            }
        }
        self.log
    }

    fn record<T>(&mut self, kind: OpKind, at: usize, started: Instant, result: &Result<T, Error>) {
        let op = Op {
            kind,
            slot: self.log.sessions[at].slot,
            started,
            ended: Instant::now(),
            ok: result.is_ok(),
        };
        self.log.ops.push(op);
        match result {
            Ok(_) => {
                self.shared.acked.fetch_add(1, Ordering::Relaxed);
                if kind.is_write() {
                    let at = self.shared.micros(started);
                    self.shared.written[usize::from(op.slot)].fetch_max(at, Ordering::Relaxed);
                }
            }
            Err(e) => self.log.failures.push(Failure {
                op,
                kind: error_kind(e),
                message: e.to_string(),
            }),
        }
    }

    async fn create(&mut self, at: usize) {
        let id = self.log.sessions[at].id.clone();
        let started = Instant::now();
        let result = self
            .store
            .put(&id, data(0), PutMode::Create, WriteOptions::default())
            .await;
        self.record(OpKind::Create, at, started, &result);
        let s = &mut self.log.sessions[at];
        match result {
            Ok(_) => s.ack(State::Live(0)),
            // The id is fresh and this task's alone: the client repeated an applied create
            // (a retry after a broken connection).
            Err(Error::AlreadyExists) => s.ack(State::Live(0)),
            Err(_) => s.failed(State::Live(0)),
        }
    }

    async fn save(&mut self, at: usize) {
        let id = self.log.sessions[at].id.clone();
        let n = self.log.sessions[at].counter + 1;
        self.log.sessions[at].counter = n;
        let started = Instant::now();
        let result = self
            .store
            .put(&id, data(n), PutMode::IfLive, WriteOptions::default())
            .await;
        self.record(OpKind::Save, at, started, &result);
        let s = &mut self.log.sessions[at];
        match result {
            Ok(_) => s.ack(State::Live(n)),
            Err(Error::NotFound) => {
                s.observe(State::Absent);
                s.ack(State::Absent);
                s.active = false;
            }
            Err(_) => s.failed(State::Live(n)),
        }
    }

    async fn load(&mut self, at: usize) {
        let id = self.log.sessions[at].id.clone();
        let started = Instant::now();
        let result = self.store.load(&id).await;
        self.record(OpKind::Load, at, started, &result);
        if let Ok(found) = result {
            let s = &mut self.log.sessions[at];
            s.observe(state_of(found.as_ref().map(|s| s.data())));
            if s.known == State::Absent {
                s.active = false;
            }
        }
    }

    async fn delete(&mut self, at: usize) {
        let id = self.log.sessions[at].id.clone();
        let started = Instant::now();
        let result = self.store.delete(&id).await;
        self.record(OpKind::Delete, at, started, &result);
        let s = &mut self.log.sessions[at];
        s.active = false;
        match result {
            Ok(was_live) => {
                if !was_live {
                    s.observe(State::Absent);
                }
                s.ack(State::Absent);
            }
            Err(_) => s.failed(State::Absent),
        }
    }
}

/// A fresh id whose session key lands in one of `slots` (indexed by slot): a random token
/// whose characters 38..42 (6 whole bits each) are varied until the key's CRC16 hits, with
/// only the varied tail's CRC computed per try, as `KeyLayout::fresh_id_near` does.
pub fn id_in(store: &ClusterStore, slots: &[bool]) -> SessionId {
    const BASE64URL: &[u8; 64] =
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const VARIED: std::ops::Range<usize> = 38..42;
    let keys = store.redis().keys();
    assert!(
        !keys.hashed() && !keys.prefix().contains('{'),
        "plain keys, no hash tag"
    );
    loop {
        let mut token = SessionId::generate().expose_token().as_bytes().to_vec();
        let head = crc16(crc16(0, keys.prefix().as_bytes()), &token[..VARIED.start]);
        for n in 0u32..1 << 24 {
            for (i, at) in VARIED.enumerate() {
                token[at] = BASE64URL[((n >> (6 * i)) & 63) as usize];
            }
            let slot = crc16(head, &token[VARIED.start..]) % SLOTS;
            if slots[usize::from(slot)] {
                let id = SessionId::parse(std::str::from_utf8(&token).expect("base64"))
                    .expect("a token with whole characters varied");
                assert_eq!(slot_of(store, &id), slot, "the CRC here is Redis's");
                return id;
            }
        }
    }
}

/// CRC16/XMODEM (Redis Cluster's key hash) of `bytes`, continuing from `crc`.
fn crc16(mut crc: u16, bytes: &[u8]) -> u16 {
    for &b in bytes {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// The hash slot of `id`'s session key in `store`.
pub fn slot_of(store: &ClusterStore, id: &SessionId) -> u16 {
    let keys = store.redis().keys();
    key_slot(keys.session_key(&keys.storage_id(id)).as_bytes())
}

fn data(n: u64) -> Arc<SessionData> {
    let mut data = SessionData::new();
    data.insert("n".into(), n.into());
    Arc::new(data)
}

fn state_of(data: Option<&SessionData>) -> State {
    match data {
        None => State::Absent,
        Some(d) => State::Live(
            d.get("n")
                .and_then(serde_json::Value::as_u64)
                .expect("every session the workload writes has a counter"),
        ),
    }
}

/// Creates `n` sessions, `tasks` at a time, before any fault: every one must be acknowledged.
/// With `slots`, their ids land in those slots.
pub async fn populate(
    store: &ClusterStore,
    n: usize,
    tasks: usize,
    slots: Option<&[bool]>,
) -> TaskLog {
    let ids: Vec<SessionId> = (0..n)
        .map(|_| match slots {
            Some(slots) => id_in(store, slots),
            None => SessionId::generate(),
        })
        .collect();
    futures::stream::iter(ids.iter())
        .map(|id| async move {
            store
                .put(id, data(0), PutMode::Create, WriteOptions::default())
                .await
                .unwrap_or_else(|e| panic!("populate before any fault: {e}"));
        })
        .buffer_unordered(tasks)
        .collect::<()>()
        .await;
    let sessions = ids
        .into_iter()
        .map(|id| {
            let slot = slot_of(store, &id);
            let mut s = Tracked::new(id, slot);
            s.ack(State::Live(0));
            s
        })
        .collect();
    TaskLog {
        sessions,
        ..TaskLog::default()
    }
}

/// What loading every tracked session showed.
#[derive(Debug, Default)]
pub struct Verdict {
    /// Sessions that load with the last acknowledged counter.
    pub live: usize,
    /// Sessions an acknowledged write of which was undone (seen during the run or now).
    pub acked_writes_lost: usize,
    /// Sessions live again after an acknowledged delete.
    pub acked_deletes_back: usize,
    /// Sessions showing the state of a write that had failed (allowed: it was applied).
    pub failed_writes_applied: usize,
    /// Sessions a failed write leaves open (either state allowed), now settled by the load.
    pub unsure: usize,
    /// Loads that failed now, at the end.
    pub load_errors: usize,
}

/// Loads every session of `logs` (after the workload stopped) and checks it against the
/// model; afterwards each session's `expected()` is what the store holds.
pub async fn verify(store: &ClusterStore, logs: &mut [TaskLog]) -> Verdict {
    let sessions: Vec<&mut Tracked> = logs.iter_mut().flat_map(|l| &mut l.sessions).collect();
    let mut verdict = Verdict::default();
    let loaded: Vec<(&mut Tracked, Result<State, Error>)> = futures::stream::iter(sessions)
        .map(|s| async move {
            let got = store
                .load(&s.id)
                .await
                .map(|found| state_of(found.as_ref().map(|f| f.data())));
            (s, got)
        })
        .buffer_unordered(32)
        .collect()
        .await;
    for (s, got) in loaded {
        let Ok(got) = got else {
            verdict.load_errors += 1;
            continue;
        };
        let was_unsure = !s.unsure.is_empty();
        if s.observe(got) == Seen::FailedWriteApplied {
            verdict.failed_writes_applied += 1;
        }
        if was_unsure {
            verdict.unsure += 1;
        }
        s.ack(got);
        verdict.acked_writes_lost += usize::from(s.lost_write);
        verdict.acked_deletes_back += usize::from(s.delete_back);
        verdict.live += usize::from(matches!(got, State::Live(_)));
    }
    verdict
}

/// Errors by kind, each with how many were on writes and one message.
pub fn errors_by_kind<'a>(
    failures: impl IntoIterator<Item = &'a Failure>,
) -> BTreeMap<String, (u64, u64, String)> {
    let mut out: BTreeMap<String, (u64, u64, String)> = BTreeMap::new();
    for f in failures {
        let entry = out
            .entry(f.kind.clone())
            .or_insert_with(|| (0, 0, f.message.clone()));
        entry.0 += 1;
        entry.1 += u64::from(f.op.kind.is_write());
    }
    out
}

/// Prints [`errors_by_kind`].
pub fn print_errors<'a>(title: &str, failures: impl IntoIterator<Item = &'a Failure>) {
    let by_kind = errors_by_kind(failures);
    if by_kind.is_empty() {
        eprintln!("{title}: none");
    }
    for (kind, (n, writes, message)) in by_kind {
        eprintln!("{title}: {kind}: {n} ({writes} on writes), e.g. \"{message}\"");
    }
}

/// xorshift64*: enough to pick operations, and the same sequence every run.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1)
    }
}
