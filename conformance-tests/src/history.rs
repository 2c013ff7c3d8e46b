//! Small concurrent histories: a few tasks race single-session operations on a shared pool of
//! ids while the clock stands still; the results must be explained by some order of the
//! operations that keeps each task's program order and real-time order (see [`crate::linearize`]).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestRunner};
use serde_json::json;
use session_core::{
    Error, PutMode, SessionData, SessionId, SessionStore, SessionStoreExt, Version, WriteOptions,
};

use crate::ctx::Ctx;
use crate::factory::StoreFactory;
use crate::gen::{opts, Opts, Seed, USERS};
use crate::linearize::{linearize, Done, Final, Seen};
use crate::model::{Mode, Model};
use crate::observe::{check_put, check_session, put_seen, Versions};

/// Histories per run: enough to race every pair of operations many times, few enough to
/// take seconds on a real server.
pub const HISTORIES: u32 = 150;
/// Ids the tasks share.
const POOL: usize = 3;
const IDLE_SECS: u64 = 100;
const ABSOLUTE_SECS: u64 = 1000;
/// How far the clock moves between the setup and the history: past the short-lived ids.
const SETTLE_SECS: u64 = 50;
/// How long a task spins at a start line before it starts yielding its core.
const SPIN: Duration = Duration::from_micros(200);

/// How a pooled id starts the history.
#[derive(Debug, Clone, Copy)]
pub enum Start {
    /// Written, then deleted: its setup version names a gone session.
    Absent,
    /// Written and live, at its setup version.
    Live,
    /// Written, then written again with the same data: live, but its setup version (the
    /// first write's) is stale.
    Stale,
    /// Written, then refreshed once the clock has moved: live at its setup version (a
    /// refresh keeps the version), with its idle expiry slid.
    Refreshed,
    /// Written with a 10 s idle timeout, then expired by the clock.
    Expired,
}

/// The precondition of a put in a history.
#[derive(Debug, Clone, Copy)]
pub enum HistoryPut {
    /// `PutMode::Create`.
    Create,
    /// `PutMode::Upsert`.
    Upsert,
    /// `PutMode::IfLive`.
    IfLive,
    /// `PutMode::IfVersion` at the version the setup's first write gave.
    IfVersionSetup,
    /// `PutMode::IfVersion` at the version this task last saw (the setup's if none).
    IfVersionLast,
}

/// One operation of a task; `usize` is a slot of the pool.
#[derive(Debug, Clone)]
pub enum Step {
    /// `put` of data `{"n": n}` with maybe a user.
    Put(usize, HistoryPut, i64, Option<usize>, Opts),
    /// `load`.
    Load(usize),
    /// `exists`.
    Exists(usize),
    /// `delete`.
    Delete(usize),
    /// `refresh`.
    Refresh(usize),
    /// `rotate`.
    Rotate(usize),
    /// `SessionStoreExt::update` adding a key unique to this step.
    Update(usize),
}

/// A generated history: how each pooled id starts, and each task's steps.
#[derive(Debug, Clone)]
pub struct History {
    start: Vec<Start>,
    tasks: Vec<Vec<Step>>,
    /// The tasks wait for each other before every step, not only the first.
    lockstep: bool,
}

fn step() -> impl Strategy<Value = Step> {
    let slot = || 0..POOL;
    let kind = prop_oneof![
        Just(HistoryPut::Create),
        Just(HistoryPut::Upsert),
        Just(HistoryPut::IfLive),
        Just(HistoryPut::IfVersionSetup),
        Just(HistoryPut::IfVersionLast),
    ];
    prop_oneof![
        5 => (slot(), kind, 0i64..100, proptest::option::of(0..2usize), opts())
            .prop_map(|(s, k, n, u, o)| Step::Put(s, k, n, u, o)),
        2 => slot().prop_map(Step::Load),
        1 => slot().prop_map(Step::Exists),
        2 => slot().prop_map(Step::Delete),
        1 => slot().prop_map(Step::Refresh),
        1 => slot().prop_map(Step::Rotate),
        2 => slot().prop_map(Step::Update),
    ]
}

fn history() -> impl Strategy<Value = History> {
    let start = prop_oneof![
        1 => Just(Start::Absent),
        2 => Just(Start::Live),
        1 => Just(Start::Stale),
        1 => Just(Start::Refreshed),
        1 => Just(Start::Expired),
    ];
    (
        proptest::collection::vec(start, POOL),
        proptest::collection::vec(proptest::collection::vec(step(), 2..=4), 2..=3),
        any::<bool>(),
    )
        .prop_map(|(start, tasks, lockstep)| History {
            start,
            tasks,
            lockstep,
        })
}

/// Many small concurrent histories on fresh stores, each checked against every order of its
/// operations; deterministic generation (a fixed seed), nondeterministic scheduling.
pub async fn concurrent_histories_linearize(f: Arc<dyn StoreFactory>) {
    let runtime = tokio::runtime::Handle::current();
    let outcome = tokio::task::spawn_blocking(move || {
        let overlapped = AtomicUsize::new(0);
        let config = Config {
            cases: HISTORIES,
            rng_seed: RngSeed::Fixed(0x5e55_1075),
            failure_persistence: None,
            // A race need not repeat while shrinking; do not spend long trying.
            max_shrink_iters: 200,
            ..Config::default()
        };
        let mut runner = TestRunner::new(config);
        runner
            .run(&history(), |h| {
                let overlapping = runtime
                    .block_on(run(&*f, &h))
                    .map_err(TestCaseError::fail)?;
                overlapped.fetch_add(usize::from(overlapping), Ordering::Relaxed);
                Ok(())
            })
            .map(|()| overlapped.into_inner())
            .map_err(|e| e.to_string())
    })
    .await
    .expect("history runner panicked");
    match outcome {
        // How much real concurrency there was depends on free cores; the check holds anyway.
        Ok(overlapped) => println!(
            "concurrent histories: {HISTORIES} linearized, {overlapped} with operations \
             overlapping in time"
        ),
        Err(failure) => {
            panic!("a concurrent history has no valid order (history below):\n{failure}")
        }
    }
}

fn put_data(n: i64, user: Option<usize>) -> SessionData {
    Seed::small(n, user).data()
}

/// Runs one history on a fresh store and checks it; returns whether two of its operations
/// overlapped in time.
async fn run(f: &dyn StoreFactory, h: &History) -> Result<bool, String> {
    let cx = Ctx::with(f, |c| {
        c.idle_timeout = Duration::from_secs(IDLE_SECS);
        c.absolute_lifetime = Some(Duration::from_secs(ABSOLUTE_SECS));
    })
    .await;
    let mut model = Model::new(
        cx.now(),
        IDLE_SECS * 1000,
        Some(ABSOLUTE_SECS * 1000),
        cx.config.user_keys.clone(),
    );
    let mut versions = Versions::default();
    let pool: Vec<SessionId> = (0..POOL).map(|_| SessionId::generate()).collect();
    let mut setup = Vec::new();
    for (slot, (id, start)) in pool.iter().zip(&h.start).enumerate() {
        setup.push(prepare(&cx, &mut model, &mut versions, id, slot, *start).await?);
    }
    cx.advance_secs(SETTLE_SECS);
    model.set_now(cx.now());
    for (id, start) in pool.iter().zip(&h.start) {
        if let Start::Refreshed = start {
            refresh(&cx, &mut model, &mut versions, id).await?;
        }
    }
    let now = model.now();

    let tasks = run_tasks(&cx, h, &pool, &setup, now).await?;
    let end = observe_end(&*cx.store, &pool, &tasks).await?;
    linearize(&model, &versions, &tasks, &end)?;
    let all: Vec<&Done> = tasks.iter().flatten().collect();
    Ok(all.iter().any(|a| {
        all.iter()
            .any(|b| a.task != b.task && a.begun < b.ended && b.begun < a.ended)
    }))
}

/// Runs each task on a thread of its own, all released together (and, in lockstep, again
/// before every step): operations then overlap even on a store that never awaits, and
/// interleave on one that does.
async fn run_tasks(
    cx: &Ctx,
    h: &History,
    pool: &[SessionId],
    setup: &[Version],
    now: u64,
) -> Result<Vec<Vec<Done>>, String> {
    let rounds = if h.lockstep {
        h.tasks.iter().map(Vec::len).max().unwrap_or(0)
    } else {
        1
    };
    let lines = Arc::new(StartLines {
        arrived: (0..rounds).map(|_| AtomicUsize::new(0)).collect(),
        expected: (0..rounds)
            .map(|r| h.tasks.iter().filter(|t| t.len() > r).count())
            .collect(),
    });
    let runtime = tokio::runtime::Handle::current();
    let handles: Vec<_> = h
        .tasks
        .iter()
        .enumerate()
        .map(|(t, steps)| {
            let mut task = Task {
                store: cx.store.clone(),
                pool: pool.to_vec(),
                last: setup.to_vec(),
                setup: setup.to_vec(),
                now,
                task: t,
            };
            let (steps, lines, runtime) = (steps.clone(), lines.clone(), runtime.clone());
            tokio::task::spawn_blocking(move || {
                let mut done = Vec::new();
                for (i, step) in steps.into_iter().enumerate() {
                    lines.wait(i);
                    done.push(runtime.block_on(task.perform(i, step)));
                }
                done
            })
        })
        .collect();
    let mut tasks = Vec::new();
    for handle in handles {
        tasks.push(handle.await.map_err(|e| format!("task failed: {e}"))?);
    }
    Ok(tasks)
}

/// Spinning start lines, one per round: a thread that slept at a barrier would wake tens of
/// microseconds after the first one left, long after a fast store's operation was over.
struct StartLines {
    arrived: Vec<AtomicUsize>,
    expected: Vec<usize>,
}

impl StartLines {
    fn wait(&self, round: usize) {
        let Some(arrived) = self.arrived.get(round) else {
            return;
        };
        arrived.fetch_add(1, Ordering::SeqCst);
        let spinning = Instant::now();
        while arrived.load(Ordering::SeqCst) < self.expected[round] {
            if spinning.elapsed() > SPIN {
                // Fewer free cores than tasks: let the late ones run.
                std::thread::yield_now();
            }
            std::hint::spin_loop();
        }
    }
}

/// Writes a pooled id into its starting state, checked against the model; returns the
/// version its first write gave (no longer current for [`Start::Stale`]).
async fn prepare(
    cx: &Ctx,
    model: &mut Model,
    versions: &mut Versions,
    id: &SessionId,
    slot: usize,
    start: Start,
) -> Result<Version, String> {
    let data = put_data(-1 - slot as i64, Some(slot));
    let (options, idle) = match start {
        Start::Expired => (
            WriteOptions::new().with_idle_timeout(Duration::from_secs(10)),
            Some(10_000),
        ),
        _ => (WriteOptions::new(), None),
    };
    let got = put_seen(
        cx.store
            .put(id, Arc::new(data.clone()), PutMode::Upsert, options)
            .await,
    );
    let want = model.put(id, data, Mode::Upsert, idle, None);
    check_put(versions, id, &got, &want).map_err(|e| format!("setup: {e}"))?;
    let written = got.map_err(|_| "setup put refused".to_string())?;
    let ok = match start {
        Start::Absent => cx.store.delete(id).await.ok() == Some(model.delete(id)),
        Start::Stale => {
            let same = written.shared_data().clone();
            let got = put_seen(
                cx.store
                    .put(id, same, PutMode::Upsert, WriteOptions::new())
                    .await,
            );
            let want = model.put(id, written.data().clone(), Mode::Upsert, None, None);
            check_put(versions, id, &got, &want).map_err(|e| format!("setup: {e}"))?;
            true
        }
        // Refreshed after the clock moves: see `refresh`.
        Start::Live | Start::Refreshed | Start::Expired => true,
    };
    if !ok {
        return Err(format!("setup of {start:?} diverged from the model"));
    }
    Ok(written.version())
}

/// Refreshes a pooled id during the setup and checks, by loading it, that only its idle
/// expiry moved: it keeps the version the setup left it at.
async fn refresh(
    cx: &Ctx,
    model: &mut Model,
    versions: &mut Versions,
    id: &SessionId,
) -> Result<(), String> {
    let got = cx.store.refresh(id).await.map_err(describe)?;
    let want = model.refresh(id);
    if got != want {
        return Err(format!("setup refresh gave {got}, model {want}"));
    }
    let loaded = cx.store.load(id).await.map_err(describe)?;
    match (loaded, model.live(id)) {
        (Some(s), Some(m)) => {
            check_session(versions, id, &s, m).map_err(|e| format!("setup refresh: {e}"))
        }
        (None, None) => Ok(()),
        (got, _) => Err(format!(
            "setup refresh: loaded {:?}, model disagrees",
            got.map(|s| s.data().clone())
        )),
    }
}

/// One task's view while it runs.
struct Task {
    store: Arc<dyn SessionStore>,
    pool: Vec<SessionId>,
    setup: Vec<Version>,
    /// The version this task last saw per slot.
    last: Vec<Version>,
    now: u64,
    task: usize,
}

impl Task {
    async fn perform(&mut self, index: usize, step: Step) -> Done {
        let begun = Instant::now();
        let slot = match &step {
            Step::Put(s, ..)
            | Step::Load(s)
            | Step::Exists(s)
            | Step::Delete(s)
            | Step::Refresh(s)
            | Step::Rotate(s)
            | Step::Update(s) => *s,
        };
        let id = self.pool[slot].clone();
        let store = &*self.store;
        let seen = match &step {
            Step::Put(_, kind, n, user, opts) => {
                let mode = match kind {
                    HistoryPut::Create => PutMode::Create,
                    HistoryPut::Upsert => PutMode::Upsert,
                    HistoryPut::IfLive => PutMode::IfLive,
                    HistoryPut::IfVersionSetup => PutMode::IfVersion(self.setup[slot]),
                    HistoryPut::IfVersionLast => PutMode::IfVersion(self.last[slot]),
                };
                let (options, idle, life) = opts.at(self.now);
                let data = put_data(*n, *user);
                let got = put_seen(store.put(&id, Arc::new(data.clone()), mode, options).await);
                if let Ok(s) = &got {
                    self.last[slot] = s.version();
                }
                Seen::Put {
                    data,
                    mode,
                    idle,
                    life,
                    got,
                }
            }
            Step::Load(_) => Seen::Load(self.seen_session(slot, store.load(&id).await)),
            Step::Exists(_) => Seen::Exists(store.exists(&id).await.map_err(describe)),
            Step::Delete(_) => Seen::Deleted(store.delete(&id).await.map_err(describe)),
            Step::Refresh(_) => Seen::Refreshed(store.refresh(&id).await.map_err(describe)),
            Step::Rotate(_) => Seen::Rotated(store.rotate(&id).await.map_err(describe)),
            Step::Update(_) => {
                let key = format!("t{}s{index}", self.task);
                let got = store
                    .update(&id, |d| {
                        d.insert(key.clone(), json!(true));
                    })
                    .await;
                Seen::Updated {
                    key,
                    got: self.seen_session(slot, got),
                }
            }
        };
        Done {
            task: self.task,
            step,
            id,
            begun,
            ended: Instant::now(),
            seen,
        }
    }

    fn seen_session(
        &mut self,
        slot: usize,
        got: session_core::Result<Option<session_core::Session>>,
    ) -> Result<Option<session_core::Session>, String> {
        if let Ok(Some(s)) = &got {
            self.last[slot] = s.version();
        }
        got.map_err(describe)
    }
}

fn describe(e: Error) -> String {
    format!("unexpected error: {e}")
}

/// The state after the history: every pooled and rotated-to id, the count, each listing.
async fn observe_end(
    store: &dyn SessionStore,
    pool: &[SessionId],
    tasks: &[Vec<Done>],
) -> Result<Final, String> {
    let mut ids: Vec<SessionId> = pool.to_vec();
    for done in tasks.iter().flatten() {
        if let Seen::Rotated(Ok(Some(s))) = &done.seen {
            ids.push(s.id().clone());
        }
    }
    let mut end = Final::default();
    for id in ids {
        let got = store.load(&id).await.map_err(describe)?;
        end.sessions.push((id, got));
    }
    end.count = store.count().await.map_err(describe)?;
    for user in USERS {
        let list = store.list_user(user).await.map_err(describe)?;
        end.listed.push((user, list));
    }
    Ok(end)
}
