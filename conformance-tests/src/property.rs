//! The model-based property test: random operation sequences, interleaved with clock jumps
//! across expiry boundaries, must give exactly the model's results.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures::TryStreamExt as _;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::json;
use session_core::{
    sessions_of, Clock, Error, ImportOutcome, Session, SessionData, SessionId, SessionRecord,
    SessionStoreExt,
};

use crate::ctx::{data, Ctx};
use crate::factory::StoreFactory;
use crate::model::Model;

/// Minimum number of generated sequences; `PROPTEST_CASES` can only raise it.
pub const MIN_CASES: u32 = 256;
/// Longest generated sequence.
pub const MAX_OPS: usize = 50;
const IDLE_SECS: u64 = 100;
const ABSOLUTE_SECS: u64 = 250;
const USERS: [&str; 3] = ["alice", "bob", "carol"];

/// Data a generated operation writes.
#[derive(Debug, Clone)]
pub struct Seed {
    /// Which user, and whether under `user.sub` (true) or `user.username`.
    user: Option<(usize, bool)>,
    n: i64,
    text: Option<String>,
}

impl Seed {
    fn data(&self) -> SessionData {
        let mut d = data(json!({ "n": self.n }));
        if let Some((u, by_sub)) = self.user {
            let key = if by_sub { "sub" } else { "username" };
            d.insert("user".into(), json!({ key: USERS[u] }));
        }
        if let Some(text) = &self.text {
            d.insert("s".into(), json!(text));
        }
        d
    }
}

/// One generated operation. `usize` fields pick an id from the pool (modulo its length):
/// ids created so far plus two that were never stored.
#[derive(Debug, Clone)]
pub enum Op {
    /// `create`.
    Create(Seed),
    /// `insert` at a pooled id.
    Insert(usize, Seed),
    /// `set` at a pooled id.
    Set(usize, Seed),
    /// `load`, remembering the copy for later saves and imports.
    Load(usize),
    /// `save` of the last loaded copy, with new data.
    Save(usize, Seed),
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
    /// full iteration with this page size.
    Scan(usize),
    /// `import` of the last loaded copy.
    Import(usize),
    /// move the clock forward by this many seconds.
    Advance(u64),
}

fn seed() -> impl Strategy<Value = Seed> {
    (
        proptest::option::weighted(0.8, (0..USERS.len(), any::<bool>())),
        -3i64..1000,
        proptest::option::of("[a-z\"\\\\é ]{0,8}"),
    )
        .prop_map(|(user, n, text)| Seed { user, n, text })
}

fn op() -> impl Strategy<Value = Op> {
    let slot = any::<usize>;
    prop_oneof![
        4 => seed().prop_map(Op::Create),
        1 => (slot(), seed()).prop_map(|(s, d)| Op::Insert(s, d)),
        2 => (slot(), seed()).prop_map(|(s, d)| Op::Set(s, d)),
        4 => slot().prop_map(Op::Load),
        3 => (slot(), seed()).prop_map(|(s, d)| Op::Save(s, d)),
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

macro_rules! check {
    ($step:expr, $op:expr, $cond:expr, $($msg:tt)*) => {
        if !$cond {
            return Err(format!("step {} {:?}: {}", $step, $op, format!($($msg)*)));
        }
    };
}

/// Runs one sequence on a fresh store; the first divergence from the model is the error.
async fn run(f: &dyn StoreFactory, ops: &[Op]) -> Result<(), String> {
    let cx = Ctx::with(f, |c| {
        c.idle_timeout = Duration::from_secs(IDLE_SECS);
        c.absolute_lifetime = Some(Duration::from_secs(ABSOLUTE_SECS));
    })
    .await;
    let store = &*cx.store;
    let mut model = Model::new(
        cx.clock.now(),
        cx.config.idle_timeout,
        cx.config.absolute_lifetime,
        cx.config.user_keys.clone(),
    );
    let mut pool = vec![SessionId::generate(), SessionId::generate()];
    // The last copy of each id that was loaded, with the model version it was loaded at.
    let mut loaded: HashMap<SessionId, (Session, u64)> = HashMap::new();
    let err = |e: Error| format!("unexpected error {e}");

    for (step, op) in ops.iter().enumerate() {
        let pick = |slot: &usize| pool[slot % pool.len()].clone();
        match op {
            Op::Create(seed) => {
                let s = store.create(seed.data()).await.map_err(err)?;
                check!(step, op, !pool.contains(s.id()), "create reused an id");
                let lt = model.insert(s.id(), seed.data()).expect("fresh id");
                check!(
                    step,
                    op,
                    s.lifetime() == &lt,
                    "lifetime {:?}, model {:?}",
                    s.lifetime(),
                    lt
                );
                pool.push(s.id().clone());
            }
            Op::Insert(slot, seed) => {
                let id = pick(slot);
                let got = store
                    .insert(&id, seed.data(), Default::default())
                    .await
                    .map_err(err)?;
                let want = model.insert(&id, seed.data());
                check!(
                    step,
                    op,
                    got.as_ref().map(|s| *s.lifetime()) == want,
                    "got {:?}, model {:?}",
                    got.map(|s| *s.lifetime()),
                    want
                );
            }
            Op::Set(slot, seed) => {
                let id = pick(slot);
                let s = store.set(&id, seed.data()).await.map_err(err)?;
                let want = model.set(&id, seed.data());
                check!(
                    step,
                    op,
                    s.lifetime() == &want,
                    "lifetime {:?}, model {:?}",
                    s.lifetime(),
                    want
                );
            }
            Op::Load(slot) => {
                let id = pick(slot);
                let got = store.load(&id).await.map_err(err)?;
                match (got, model.live(&id)) {
                    (None, None) => {}
                    (Some(s), Some(m)) => {
                        check!(
                            step,
                            op,
                            s.data() == &m.data,
                            "data {:?}, model {:?}",
                            s.data(),
                            m.data
                        );
                        check!(
                            step,
                            op,
                            s.lifetime() == &m.lifetime,
                            "lifetime {:?}, model {:?}",
                            s.lifetime(),
                            m.lifetime
                        );
                        let v = m.version;
                        loaded.insert(id, (s, v));
                    }
                    (got, want) => check!(
                        step,
                        op,
                        false,
                        "got {:?}, model {:?}",
                        got.map(|s| s.data().clone()),
                        want.map(|m| &m.data)
                    ),
                }
            }
            Op::Save(slot, seed) => {
                let id = pick(slot);
                let Some((mut session, at)) = loaded.get(&id).cloned() else {
                    continue;
                };
                *session.data_mut() = seed.data();
                let got = store.save(session).await;
                let want = model.save(&id, at, seed.data());
                match (got, want) {
                    (Ok(s), Ok((lt, v))) => {
                        check!(
                            step,
                            op,
                            s.lifetime() == &lt,
                            "lifetime {:?}, model {:?}",
                            s.lifetime(),
                            lt
                        );
                        loaded.insert(id, (s, v));
                    }
                    (Err(Error::Conflict), Err("Conflict"))
                    | (Err(Error::NotFound), Err("NotFound")) => {}
                    (got, want) => check!(
                        step,
                        op,
                        false,
                        "got {:?}, model {:?}",
                        got.map(|s| *s.lifetime()),
                        want
                    ),
                }
            }
            Op::Exists(slot) => {
                let id = pick(slot);
                let got = store.exists(&id).await.map_err(err)?;
                check!(step, op, got == model.live(&id).is_some(), "got {got}");
            }
            Op::Delete(slot) => {
                let id = pick(slot);
                let got = store.delete(&id).await.map_err(err)?;
                let want = model.delete(&id);
                check!(step, op, got == want, "got {got}, model {want}");
            }
            Op::Refresh(slot) => {
                let id = pick(slot);
                let got = store.refresh(&id).await.map_err(err)?;
                let want = model.refresh(&id);
                check!(step, op, got == want, "got {got}, model {want}");
            }
            Op::Rotate(slot) => {
                let id = pick(slot);
                let got = store.rotate(&id).await.map_err(err)?;
                match got {
                    None => check!(
                        step,
                        op,
                        model.live(&id).is_none(),
                        "rotate found nothing, model has it"
                    ),
                    Some(s) => {
                        check!(step, op, !pool.contains(s.id()), "rotate reused an id");
                        let m = model.rotate(&id, s.id());
                        check!(
                            step,
                            op,
                            m.is_some(),
                            "rotate moved a session the model lacks"
                        );
                        let m = m.expect("checked");
                        check!(
                            step,
                            op,
                            s.data() == &m.data && s.lifetime() == &m.lifetime,
                            "got {:?} {:?}, model {:?} {:?}",
                            s.data(),
                            s.lifetime(),
                            m.data,
                            m.lifetime
                        );
                        pool.push(s.id().clone());
                    }
                }
            }
            Op::Count => {
                let got = store.count().await.map_err(err)?;
                check!(
                    step,
                    op,
                    got == model.count(),
                    "got {got}, model {}",
                    model.count()
                );
            }
            Op::ListUser(u) => {
                let mut got: Vec<_> = store
                    .list_user(USERS[*u])
                    .await
                    .map_err(err)?
                    .into_iter()
                    .map(|s| (s.handle.to_string(), s.lifetime))
                    .collect();
                got.sort_by(|a, b| a.0.cmp(&b.0));
                let want = model.list_user(USERS[*u]);
                check!(step, op, got == want, "got {got:?}, model {want:?}");
            }
            Op::DeleteUser(u) => {
                let got = store.delete_user(USERS[*u]).await.map_err(err)?;
                let want = model.delete_user(USERS[*u]);
                check!(step, op, got == want, "got {got}, model {want}");
            }
            Op::Cleanup => {
                let got = store.cleanup().await.map_err(err)?;
                let most = model.cleanup();
                check!(
                    step,
                    op,
                    got.removed <= most,
                    "removed {}, at most {most}",
                    got.removed
                );
            }
            Op::Scan(page) => {
                let records: Vec<SessionRecord> =
                    sessions_of(store, *page).try_collect().await.map_err(err)?;
                let mut got = BTreeMap::new();
                for r in records {
                    if store.capabilities().keeps_tokens {
                        check!(
                            step,
                            op,
                            r.id.as_ref().map(|id| id.handle()) == Some(r.handle.clone()),
                            "record without its token"
                        );
                    }
                    got.insert(r.handle.to_string(), (r.data, r.lifetime));
                }
                let want: BTreeMap<_, _> = model
                    .sessions
                    .iter()
                    .filter(|(_, s)| s.lifetime.is_live(model.now))
                    .map(|(id, s)| (id.handle().to_string(), (s.data.clone(), s.lifetime)))
                    .collect();
                check!(step, op, got == want, "got {got:?}, model {want:?}");
            }
            Op::Import(slot) => {
                let id = pick(slot);
                let Some((session, _)) = loaded.get(&id) else {
                    continue;
                };
                let record = SessionRecord::from_session(session);
                let got = store.import(record.clone()).await.map_err(err)?;
                let want = model.import(&id, record.data, record.lifetime);
                let got_name = match got {
                    ImportOutcome::Imported => "Imported",
                    ImportOutcome::AlreadyPresent => "AlreadyPresent",
                    ImportOutcome::Expired => "Expired",
                };
                check!(step, op, got_name == want, "got {got_name}, model {want}");
            }
            Op::Advance(secs) => {
                cx.advance_secs(*secs);
                model.now = cx.clock.now();
            }
        }
    }
    Ok(())
}
