//! The check of a concurrent history: some order of its operations, keeping each task's
//! program order and real-time order (an operation that ended before another began comes
//! first), applied one at a time to the model, gives exactly the results each operation saw
//! and the final state. Histories are small, so every order is tried, depth first, pruning an
//! order as soon as one result differs.

use std::time::Instant;

use serde_json::json;
use session_core::{PutMode, Session, SessionData, SessionId, SessionSummary};

use crate::history::Step;
use crate::model::{Life, Mode, Model};
use crate::observe::{check_life, check_put, check_session, PutSeen, Versions};

/// What one operation saw; an `Err(String)` is an error no operation may give.
#[derive(Debug)]
pub enum Seen {
    /// A put, with what it asked for (the model's view of its options).
    Put {
        /// The data written.
        data: SessionData,
        /// The mode, with the store's version for `IfVersion`.
        mode: PutMode,
        /// The idle timeout given, in ms.
        idle: Option<u64>,
        /// The lifetime given.
        life: Option<Life>,
        /// The outcome.
        got: PutSeen,
    },
    /// `load`.
    Load(Result<Option<Session>, String>),
    /// `exists`.
    Exists(Result<bool, String>),
    /// `delete`.
    Deleted(Result<bool, String>),
    /// `refresh`.
    Refreshed(Result<bool, String>),
    /// `rotate`.
    Rotated(Result<Option<Session>, String>),
    /// `update` adding `key`.
    Updated {
        /// The key the change inserts (set to `true`).
        key: String,
        /// The outcome.
        got: Result<Option<Session>, String>,
    },
}

/// One operation as it ran.
#[derive(Debug)]
pub struct Done {
    /// The task that ran it.
    pub task: usize,
    /// What it was.
    pub step: Step,
    /// The id it worked on.
    pub id: SessionId,
    /// Just before it was issued.
    pub begun: Instant,
    /// Just after it returned.
    pub ended: Instant,
    /// What it saw.
    pub seen: Seen,
}

/// The state after every task finished.
#[derive(Debug, Default)]
pub struct Final {
    /// Each pooled and rotated-to id, loaded.
    pub sessions: Vec<(SessionId, Option<Session>)>,
    /// `count`.
    pub count: u64,
    /// `list_user` of each user.
    pub listed: Vec<(&'static str, Vec<SessionSummary>)>,
}

/// Whether some order of `tasks`, applied to `model` (the state the history started from),
/// explains every result and `end`. The error lists the history and how far the best order
/// got.
pub fn linearize(
    model: &Model,
    versions: &Versions,
    tasks: &[Vec<Done>],
    end: &Final,
) -> Result<(), String> {
    let mut search = Search {
        tasks,
        end,
        order: Vec::new(),
        best: (0, String::new()),
    };
    let mut pos = vec![0; tasks.len()];
    if search.go(model, versions, &mut pos) {
        return Ok(());
    }
    let mut report = String::from("operations as they ran (task, step on id: result):\n");
    for done in tasks.iter().flatten() {
        report.push_str(&format!(
            "  t{} {:?} on {}: {}\n",
            done.task,
            done.step,
            done.id.fingerprint(),
            summary(&done.seen)
        ));
    }
    let (placed, why) = search.best;
    report.push_str(&format!(
        "final: count {}, sessions {:?}\nthe best order placed {placed} operation(s), then: {why}",
        end.count,
        end.sessions
            .iter()
            .map(|(id, s)| (id.fingerprint(), s.as_ref().map(|s| s.data().clone())))
            .collect::<Vec<_>>()
    ));
    Err(report)
}

struct Search<'a> {
    tasks: &'a [Vec<Done>],
    end: &'a Final,
    /// (task, step) of the operations placed so far.
    order: Vec<(usize, usize)>,
    /// The longest prefix that failed and why.
    best: (usize, String),
}

impl Search<'_> {
    fn fail(&mut self, why: String) {
        if self.order.len() >= self.best.0 {
            self.best = (self.order.len(), format!("after {:?}: {why}", self.order));
        }
    }

    fn go(&mut self, model: &Model, versions: &Versions, pos: &mut [usize]) -> bool {
        if pos.iter().zip(self.tasks).all(|(p, t)| *p == t.len()) {
            return match check_end(model, &mut versions.clone(), self.end) {
                Ok(()) => true,
                Err(why) => {
                    self.fail(format!("final state: {why}"));
                    false
                }
            };
        }
        for t in 0..self.tasks.len() {
            let Some(next) = self.tasks[t].get(pos[t]) else {
                continue;
            };
            // An operation that ended before this one began must be placed first.
            let must_wait = (0..self.tasks.len()).any(|u| {
                u != t
                    && self.tasks[u]
                        .get(pos[u])
                        .is_some_and(|other| other.ended < next.begun)
            });
            if must_wait {
                continue;
            }
            let (mut m, mut v) = (model.clone(), versions.clone());
            match apply(&mut m, &mut v, next) {
                Err(why) => self.fail(format!("t{t} {:?}: {why}", next.step)),
                Ok(()) => {
                    pos[t] += 1;
                    self.order.push((t, pos[t] - 1));
                    if self.go(&m, &v, pos) {
                        return true;
                    }
                    self.order.pop();
                    pos[t] -= 1;
                }
            }
        }
        false
    }
}

fn ensure(ok: bool, message: impl FnOnce() -> String) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(message())
    }
}

/// Compares a loaded session (or its absence) with the model's live one.
fn check_live(
    model: &Model,
    versions: &mut Versions,
    id: &SessionId,
    got: Option<&Session>,
) -> Result<(), String> {
    match (got, model.live(id)) {
        (None, None) => Ok(()),
        (Some(s), Some(m)) => check_session(versions, id, s, m),
        (got, want) => Err(format!(
            "got {:?}, model {:?}",
            got.map(|s| s.data()),
            want.map(|m| &m.data)
        )),
    }
}

/// Applies one operation to the model and compares what it saw.
fn apply(model: &mut Model, versions: &mut Versions, done: &Done) -> Result<(), String> {
    let id = &done.id;
    match &done.seen {
        Seen::Put {
            data,
            mode,
            idle,
            life,
            got,
        } => {
            let mode = match mode {
                PutMode::Create => Mode::Create,
                PutMode::Upsert => Mode::Upsert,
                PutMode::IfLive => Mode::IfLive,
                PutMode::IfVersion(v) => Mode::IfVersion(
                    versions
                        .model_of(id, *v)
                        .ok_or("IfVersion at a version this order has not shown yet")?,
                ),
                other => return Err(format!("mode {other:?} is not modelled")),
            };
            let want = model.put(id, data.clone(), mode, *idle, *life);
            check_put(versions, id, got, &want)
        }
        Seen::Load(got) => check_live(model, versions, id, got.as_ref()?.as_ref()),
        Seen::Exists(got) => {
            let (got, want) = (*got.as_ref()?, model.live(id).is_some());
            ensure(got == want, || format!("exists {got}, model {want}"))
        }
        Seen::Deleted(got) => {
            let (got, want) = (*got.as_ref()?, model.delete(id));
            ensure(got == want, || format!("delete {got}, model {want}"))
        }
        Seen::Refreshed(got) => {
            let (got, want) = (*got.as_ref()?, model.refresh(id));
            ensure(got == want, || format!("refresh {got}, model {want}"))
        }
        Seen::Rotated(got) => match got.as_ref()? {
            None => ensure(model.live(id).is_none(), || {
                "rotate found nothing, model has a live session".into()
            }),
            Some(s) => {
                let new_id = s.id();
                ensure(new_id != id && model.live(new_id).is_none(), || {
                    "rotate moved the session to an id in use".into()
                })?;
                let moved = model
                    .rotate(id, new_id)
                    .ok_or("rotate moved a session the model does not have")?;
                check_session(versions, new_id, s, &moved)
            }
        },
        Seen::Updated { key, got } => {
            let want = match model.live(id) {
                None => None,
                Some(current) => {
                    let mut changed = current.data.clone();
                    changed.insert(key.clone(), json!(true));
                    Some(
                        model
                            .put(id, changed, Mode::IfLive, None, None)
                            .map_err(|r| format!("model refused a live update: {r:?}"))?,
                    )
                }
            };
            match (got.as_ref()?, want) {
                (None, None) => Ok(()),
                (Some(s), Some(m)) => check_session(versions, id, s, &m),
                (got, want) => Err(format!(
                    "update gave {:?}, model {:?}",
                    got.as_ref().map(|s| s.data()),
                    want.map(|m| m.data)
                )),
            }
        }
    }
}

fn check_end(model: &Model, versions: &mut Versions, end: &Final) -> Result<(), String> {
    for (id, got) in &end.sessions {
        check_live(model, versions, id, got.as_ref())
            .map_err(|e| format!("{}: {e}", id.fingerprint()))?;
    }
    ensure(end.count == model.count(), || {
        format!("count {}, model {}", end.count, model.count())
    })?;
    for (user, listed) in &end.listed {
        let mut got: Vec<_> = listed
            .iter()
            .map(|s| (s.handle.to_string(), s.lifetime))
            .collect();
        got.sort_by(|a, b| a.0.cmp(&b.0));
        let want = model.list_user(user);
        ensure(
            got.iter().map(|g| &g.0).eq(want.iter().map(|w| &w.0)),
            || {
                format!(
                    "list_user({user}) {:?}, model {:?}",
                    got.iter().map(|g| &g.0).collect::<Vec<_>>(),
                    want.iter().map(|w| &w.0).collect::<Vec<_>>()
                )
            },
        )?;
        for ((_, g), (_, w)) in got.iter().zip(&want) {
            check_life(g, w)?;
        }
    }
    Ok(())
}

fn summary(seen: &Seen) -> String {
    let session =
        |s: &Session| format!("{} {:?} {:?}", s.id().fingerprint(), s.data(), s.version());
    match seen {
        Seen::Put { got, .. } => match got {
            Ok(s) => format!("stored {}", session(s)),
            Err(Ok(r)) => format!("{r:?}"),
            Err(Err(e)) => e.clone(),
        },
        Seen::Load(got) | Seen::Rotated(got) | Seen::Updated { got, .. } => match got {
            Ok(Some(s)) => session(s),
            Ok(None) => "None".into(),
            Err(e) => e.clone(),
        },
        Seen::Exists(got) | Seen::Deleted(got) | Seen::Refreshed(got) => format!("{got:?}"),
    }
}
