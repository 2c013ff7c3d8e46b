//! The model-based property test: random operation sequences, interleaved with clock jumps
//! across expiry boundaries, must give exactly the model's results.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures::TryStreamExt as _;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use session_core::{
    sessions_of, Error, ImportOutcome, PutMode, Session, SessionId, SessionRecord, SessionStore,
    SessionStoreExt, Version,
};

use crate::ctx::Ctx;
use crate::factory::StoreFactory;
use crate::gen::{opts, seed, Opts, Seed, USERS};
use crate::model::{Life, Mode, Model, Refusal};
use crate::observe::{check_life, check_put, check_session, put_seen, Versions};

/// Minimum number of generated sequences; `PROPTEST_CASES` can only raise it.
pub const MIN_CASES: u32 = 256;
/// Longest generated sequence.
pub const MAX_OPS: usize = 50;
const IDLE_SECS: u64 = 100;
const ABSOLUTE_SECS: u64 = 250;

/// The precondition of a generated put.
#[derive(Debug, Clone, Copy)]
pub enum PutKind {
    /// `PutMode::Create`.
    Create,
    /// `PutMode::Upsert`.
    Upsert,
    /// `PutMode::IfLive`.
    IfLive,
    /// `PutMode::IfVersion` with the version the id was last seen at (skipped if never seen).
    IfVersionLast,
    /// `PutMode::IfVersion` with an older version of the id (picked modulo how many were
    /// seen; skipped if there is none).
    IfVersionStale(usize),
}

/// One generated operation. `usize` fields pick an id from the pool (modulo its length):
/// ids created or rotated to so far, plus two that were never stored.
#[derive(Debug, Clone)]
pub enum Op {
    /// `create_with`; the new id joins the pool.
    Create(Seed, Opts),
    /// `put` at a pooled id.
    Put(usize, PutKind, Seed, Opts),
    /// `load`, remembering the copy for imports and its version for puts.
    Load(usize),
    /// `exists`.
    Exists(usize),
    /// `delete`.
    Delete(usize),
    /// `refresh`.
    Refresh(usize),
    /// `rotate`; the new id joins the pool.
    Rotate(usize),
    /// `count`.
    Count,
    /// `list_user` of one of three users.
    ListUser(usize),
    /// `delete_user`.
    DeleteUser(usize),
    /// `cleanup`.
    Cleanup,
    /// Full iteration with this page size.
    Scan(usize),
    /// `SessionStoreExt::import` of the last loaded copy of the id.
    Import(usize),
    /// Move the clock forward by this many seconds.
    Advance(u64),
}

fn put_kind() -> impl Strategy<Value = PutKind> {
    prop_oneof![
        1 => Just(PutKind::Create),
        1 => Just(PutKind::Upsert),
        1 => Just(PutKind::IfLive),
        2 => Just(PutKind::IfVersionLast),
        1 => any::<usize>().prop_map(PutKind::IfVersionStale),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let slot = any::<usize>;
    prop_oneof![
        4 => (seed(), opts()).prop_map(|(d, o)| Op::Create(d, o)),
        8 => (slot(), put_kind(), seed(), opts()).prop_map(|(s, k, d, o)| Op::Put(s, k, d, o)),
        4 => slot().prop_map(Op::Load),
        1 => slot().prop_map(Op::Exists),
        2 => slot().prop_map(Op::Delete),
        2 => slot().prop_map(Op::Refresh),
        2 => slot().prop_map(Op::Rotate),
        1 => Just(Op::Count),
        1 => (0..USERS.len()).prop_map(Op::ListUser),
        1 => (0..USERS.len()).prop_map(Op::DeleteUser),
        1 => Just(Op::Cleanup),
        1 => (1usize..8).prop_map(Op::Scan),
        1 => slot().prop_map(Op::Import),
        3 => prop_oneof![Just(1u64), Just(30), Just(49), Just(50), Just(99), Just(100),
                         Just(101), Just(150), Just(250)].prop_map(Op::Advance),
    ]
}

/// Random sequences of every operation against the model; see the module docs.
pub async fn model_based_property(f: Arc<dyn StoreFactory>) {
    let runtime = tokio::runtime::Handle::current();
    let outcome = tokio::task::spawn_blocking(move || {
        let defaults = Config::default(); // reads PROPTEST_CASES
        let config = Config {
            cases: defaults.cases.max(MIN_CASES),
            failure_persistence: None,
            ..defaults
        };
        let mut runner = TestRunner::new(config);
        let strategy = proptest::collection::vec(op(), 1..=MAX_OPS);
        runner
            .run(&strategy, |ops| {
                runtime
                    .block_on(run(&*f, &ops))
                    .map_err(TestCaseError::fail)
            })
            .map_err(|e| e.to_string())
    })
    .await
    .expect("property runner panicked");
    if let Err(failure) = outcome {
        panic!("model-based property failed (minimal sequence below):\n{failure}");
    }
}

/// Runs one sequence on a fresh store; the first divergence from the model is the error.
async fn run(f: &dyn StoreFactory, ops: &[Op]) -> Result<(), String> {
    let cx = Ctx::with(f, |c| {
        c.idle_timeout = Duration::from_secs(IDLE_SECS);
        c.absolute_lifetime = Some(Duration::from_secs(ABSOLUTE_SECS));
    })
    .await;
    let mut run = Run {
        model: Model::new(
            cx.now(),
            IDLE_SECS * 1000,
            Some(ABSOLUTE_SECS * 1000),
            cx.config.user_keys.clone(),
        ),
        cx: &cx,
        versions: Versions::default(),
        pool: vec![SessionId::generate(), SessionId::generate()],
        loaded: HashMap::new(),
        seen: HashMap::new(),
    };
    for (i, op) in ops.iter().enumerate() {
        run.step(op)
            .await
            .map_err(|e| format!("step {i} {op:?}: {e}"))?;
    }
    Ok(())
}

struct Run<'a> {
    cx: &'a Ctx,
    model: Model,
    versions: Versions,
    pool: Vec<SessionId>,
    /// The last loaded copy of each id, with the model's lifetime for it.
    loaded: HashMap<SessionId, (Session, Life)>,
    /// Every distinct version each id was seen at, oldest first, and the latest seen.
    seen: HashMap<SessionId, (Vec<Version>, Version)>,
}

fn unexpected(e: Error) -> String {
    format!("unexpected error: {e}")
}

fn ensure(ok: bool, message: impl FnOnce() -> String) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(message())
    }
}

impl Run<'_> {
    fn store(&self) -> &dyn SessionStore {
        &*self.cx.store
    }

    fn pick(&self, slot: usize) -> SessionId {
        self.pool[slot % self.pool.len()].clone()
    }

    fn note(&mut self, session: &Session) {
        let (all, last) = self
            .seen
            .entry(session.id().clone())
            .or_insert_with(|| (Vec::new(), session.version()));
        if !all.contains(&session.version()) {
            all.push(session.version());
        }
        *last = session.version();
    }

    /// The store and model versions a put of `kind` at `id` names, or `None` to skip it.
    fn version_for(&self, id: &SessionId, kind: PutKind) -> Option<(Version, u64)> {
        let (all, last) = self.seen.get(id)?;
        let store = match kind {
            PutKind::IfVersionLast => *last,
            PutKind::IfVersionStale(k) => {
                let older: Vec<_> = all.iter().filter(|v| *v != last).collect();
                *older.get(k % older.len().max(1))?.to_owned()
            }
            _ => return None,
        };
        let model = self
            .versions
            .model_of(id, store)
            .expect("seen versions are mapped");
        Some((store, model))
    }

    async fn step(&mut self, op: &Op) -> Result<(), String> {
        let now = self.model.now();
        match op {
            Op::Create(seed, opts) => {
                let (options, idle, life) = opts.at(now);
                let got = put_seen(self.store().create_with(seed.data(), options).await);
                // A fresh id: only an already expired lifetime can refuse it.
                let id = match &got {
                    Ok(s) => s.id().clone(),
                    Err(_) => SessionId::generate(),
                };
                ensure(!self.pool.contains(&id), || "create reused an id".into())?;
                let want = self.model.put(&id, seed.data(), Mode::Create, idle, life);
                check_put(&mut self.versions, &id, &got, &want)?;
                if let Ok(s) = got {
                    self.note(&s);
                    self.pool.push(id);
                }
            }
            Op::Put(slot, kind, seed, opts) => {
                let id = self.pick(*slot);
                let (mode, model_mode) = match kind {
                    PutKind::Create => (PutMode::Create, Mode::Create),
                    PutKind::Upsert => (PutMode::Upsert, Mode::Upsert),
                    PutKind::IfLive => (PutMode::IfLive, Mode::IfLive),
                    _ => match self.version_for(&id, *kind) {
                        Some((v, m)) => (PutMode::IfVersion(v), Mode::IfVersion(m)),
                        None => return Ok(()),
                    },
                };
                let (options, idle, life) = opts.at(now);
                let data = Arc::new(seed.data());
                let got = put_seen(self.store().put(&id, data, mode, options).await);
                let want = self.model.put(&id, seed.data(), model_mode, idle, life);
                check_put(&mut self.versions, &id, &got, &want)?;
                if let Ok(s) = got {
                    self.note(&s);
                }
            }
            Op::Load(slot) => {
                let id = self.pick(*slot);
                let got = self.store().load(&id).await.map_err(unexpected)?;
                match (got, self.model.live(&id).cloned()) {
                    (None, None) => {}
                    (Some(s), Some(m)) => {
                        check_session(&mut self.versions, &id, &s, &m)?;
                        self.note(&s);
                        self.loaded.insert(id, (s, m.life));
                    }
                    (got, want) => {
                        return Err(format!(
                            "got {:?}, model {:?}",
                            got.map(|s| s.data().clone()),
                            want.map(|m| m.data)
                        ))
                    }
                }
            }
            Op::Exists(slot) => {
                let id = self.pick(*slot);
                let got = self.store().exists(&id).await.map_err(unexpected)?;
                let want = self.model.live(&id).is_some();
                ensure(got == want, || format!("got {got}, model {want}"))?;
            }
            Op::Delete(slot) => {
                let id = self.pick(*slot);
                let got = self.store().delete(&id).await.map_err(unexpected)?;
                let want = self.model.delete(&id);
                ensure(got == want, || format!("got {got}, model {want}"))?;
            }
            Op::Refresh(slot) => {
                let id = self.pick(*slot);
                let got = self.store().refresh(&id).await.map_err(unexpected)?;
                let want = self.model.refresh(&id);
                ensure(got == want, || format!("got {got}, model {want}"))?;
            }
            Op::Rotate(slot) => {
                let id = self.pick(*slot);
                match self.store().rotate(&id).await.map_err(unexpected)? {
                    None => ensure(self.model.live(&id).is_none(), || {
                        "rotate found nothing, model has it".into()
                    })?,
                    Some(s) => {
                        let new_id = s.id().clone();
                        ensure(!self.pool.contains(&new_id), || {
                            "rotate reused an id".into()
                        })?;
                        let m = self
                            .model
                            .rotate(&id, &new_id)
                            .ok_or_else(|| "rotate moved a session the model lacks".to_string())?;
                        check_session(&mut self.versions, &new_id, &s, &m)?;
                        self.note(&s);
                        self.pool.push(new_id);
                    }
                }
            }
            Op::Count => {
                let got = self.store().count().await.map_err(unexpected)?;
                let want = self.model.count();
                ensure(got == want, || format!("got {got}, model {want}"))?;
            }
            Op::ListUser(u) => {
                let mut got: Vec<_> = self
                    .store()
                    .list_user(USERS[*u])
                    .await
                    .map_err(unexpected)?;
                got.sort_by(|a, b| a.handle.as_str().cmp(b.handle.as_str()));
                let want = self.model.list_user(USERS[*u]);
                let got_handles: Vec<_> = got.iter().map(|s| s.handle.to_string()).collect();
                let want_handles: Vec<_> = want.iter().map(|(h, _)| h.clone()).collect();
                ensure(got_handles == want_handles, || {
                    format!("listed {got_handles:?}, model {want_handles:?}")
                })?;
                for (g, (_, w)) in got.iter().zip(&want) {
                    check_life(&g.lifetime, w)?;
                }
            }
            Op::DeleteUser(u) => {
                let got = self
                    .store()
                    .delete_user(USERS[*u])
                    .await
                    .map_err(unexpected)?;
                let want = self.model.delete_user(USERS[*u]);
                ensure(got == want, || format!("got {got}, model {want}"))?;
            }
            Op::Cleanup => {
                let got = self.store().cleanup().await.map_err(unexpected)?;
                let most = self.model.cleanup();
                ensure(got.removed <= most, || {
                    format!("removed {}, at most {most} had expired", got.removed)
                })?;
            }
            Op::Scan(page) => self.scan(*page).await?,
            Op::Import(slot) => {
                let id = self.pick(*slot);
                let Some((session, life)) = self.loaded.get(&id).cloned() else {
                    return Ok(());
                };
                let record = SessionRecord::from_session(&session);
                let got = self
                    .store()
                    .import(record.clone())
                    .await
                    .map_err(unexpected)?;
                let want = self
                    .model
                    .put(&id, record.data, Mode::Create, None, Some(life));
                let expected = match want {
                    Ok(_) => ImportOutcome::Imported,
                    Err(Refusal::AlreadyExists) => ImportOutcome::AlreadyPresent,
                    Err(_) => ImportOutcome::Expired,
                };
                ensure(got == expected, || {
                    format!("got {got:?}, model {expected:?}")
                })?;
            }
            Op::Advance(secs) => {
                self.cx.advance_secs(*secs);
                self.model.set_now(self.cx.now());
            }
        }
        Ok(())
    }

    async fn scan(&mut self, page: usize) -> Result<(), String> {
        let records: Vec<SessionRecord> = sessions_of(self.store(), page)
            .try_collect()
            .await
            .map_err(unexpected)?;
        let keeps_tokens = self.store().capabilities().keeps_tokens;
        let mut got = BTreeMap::new();
        for r in records {
            if keeps_tokens {
                ensure(
                    r.id.as_ref().map(|id| id.handle()) == Some(r.handle.clone()),
                    || "record without its token".into(),
                )?;
            }
            got.insert(r.handle.to_string(), r);
        }
        let want: BTreeMap<_, _> = self
            .model
            .live_sessions()
            .map(|(id, s)| (id.handle().to_string(), s))
            .collect();
        ensure(got.keys().eq(want.keys()), || {
            format!(
                "yielded {:?}, model {:?}",
                got.keys().collect::<Vec<_>>(),
                want.keys().collect::<Vec<_>>()
            )
        })?;
        for (handle, r) in &got {
            let m = want[handle];
            ensure(r.data == m.data, || {
                format!("data {:?}, model {:?}", r.data, m.data)
            })?;
            check_life(&r.lifetime, &m.life)?;
        }
        Ok(())
    }
}
