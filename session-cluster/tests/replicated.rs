//! Replicated writes on a real Redis Cluster (3 primaries, 1 replica each), configured as an
//! operator would: `REDIS_WAIT_REPLICAS=1` (saves wait for one replica), revocations at their
//! default (one replica), `REDIS_WAIT_TIMEOUT_MS=250`.
//!
//! - A primary SIGKILLed under 16 writing tasks: its replica takes over, and every write and
//!   delete the store acknowledged is there (or gone) at the end.
//! - A shard whose replica is dead: its writes fail with `NotReplicated` within the `WAIT`
//!   timeout plus a margin measured from the round trips of the same run, while the other
//!   shards' writes go on at their usual latency.
//!
//! Each test starts its cluster on its own thread (the servers' parent-death signal is tied to
//! the thread that started them) and drives the store from a runtime of its own; the tests run
//! one at a time, so neither measures the other's load. Redirections and refusals are in
//! `tests/redirects.rs`.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis_harness::cluster::{ClusterTopology, SlotRange};
use session_cluster::{ClusterStore, NotReplicated};
use session_core::{Error, PutMode, SessionId, SessionStore, WriteOptions};

use common::{connect, counter, data, runtime, slot_of, WAIT};

const TASKS: usize = 16;
/// Sessions each task keeps saving in turn.
const SESSIONS_PER_TASK: usize = 8;
/// Bound on every wait for the workload to get somewhere.
const PATIENCE: Duration = Duration::from_secs(60);

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn owner(map: &[SlotRange], slot: u16) -> u16 {
    map.iter().find(|r| r.contains(slot)).unwrap().primary
}

fn not_replicated(err: &Error) -> Option<&NotReplicated> {
    match err {
        Error::Unavailable { .. } => {
            std::error::Error::source(err).and_then(|s| s.downcast_ref::<NotReplicated>())
        }
        _ => None,
    }
}

/// A short name for an error, to count errors by.
fn kind(err: &Error) -> String {
    if not_replicated(err).is_some() {
        return "NotReplicated".into();
    }
    let text = err.to_string();
    let text: String = text.chars().take(80).collect();
    match err {
        Error::Unavailable { .. } => format!("Unavailable({text})"),
        other => format!("{other:?}").chars().take(80).collect(),
    }
}

/// One finished write or delete.
#[derive(Debug, Clone)]
struct Event {
    end: Instant,
    took: Duration,
    slot: u16,
    delete: bool,
    error: Option<String>,
}

/// One session a task wrote, and what the store acknowledged for it.
#[derive(Debug)]
struct Tracked {
    id: SessionId,
    slot: u16,
    /// The counter of the last acknowledged save.
    acked: Option<u64>,
    /// Counters of the saves that failed since: each may or may not have been applied.
    failed_since: Vec<u64>,
    /// `Some(true)`: its delete was acknowledged; `Some(false)`: its delete failed.
    deleted: Option<bool>,
}

#[derive(Debug, Default)]
struct Ledger {
    sessions: Vec<Tracked>,
    events: Vec<Event>,
}

/// `TASKS` tasks, each saving (a counter in the data, `PutMode::Upsert`) `SESSIONS_PER_TASK` sessions of
/// its own in turn and every eighth turn deleting one and starting another.
struct Load {
    stop: Arc<AtomicBool>,
    events: Arc<Mutex<Vec<Event>>>,
    tasks: Vec<tokio::task::JoinHandle<Vec<Tracked>>>,
}

impl Load {
    fn start(rt: &tokio::runtime::Runtime, store: ClusterStore) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let events = Arc::new(Mutex::new(Vec::new()));
        let tasks = (0..TASKS)
            .map(|task| {
                let (store, stop, events) = (store.clone(), stop.clone(), events.clone());
                rt.spawn(async move {
                    let new = |store: &ClusterStore| {
                        let id = SessionId::generate();
                        Tracked {
                            slot: slot_of(store, &id),
                            id,
                            acked: None,
                            failed_since: Vec::new(),
                            deleted: None,
                        }
                    };
                    let mut mine: Vec<Tracked> =
                        (0..SESSIONS_PER_TASK).map(|_| new(&store)).collect();
                    let mut done = Vec::new();
                    let mut n = (task as u64) << 32;
                    let mut turn = 0usize;
                    while !stop.load(Ordering::SeqCst) {
                        turn += 1;
                        let started = Instant::now();
                        let (slot, delete, error) = if turn % 8 == 0 {
                            let mut gone = mine.swap_remove(0);
                            let result = store.delete(&gone.id).await;
                            gone.deleted = Some(result.is_ok());
                            let slot = gone.slot;
                            done.push(gone);
                            mine.push(new(&store));
                            (slot, true, result.err())
                        } else {
                            n += 1;
                            let pick = turn % mine.len();
                            let tracked = &mut mine[pick];
                            let result = store
                                .put(&tracked.id, data(n), PutMode::Upsert, WriteOptions::new())
                                .await;
                            if result.is_ok() {
                                tracked.acked = Some(n);
                                tracked.failed_since.clear();
                            } else {
                                tracked.failed_since.push(n);
                            }
                            (tracked.slot, false, result.err())
                        };
                        events.lock().unwrap().push(Event {
                            end: Instant::now(),
                            took: started.elapsed(),
                            slot,
                            delete,
                            error: error.as_ref().map(kind),
                        });
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                    done.extend(mine);
                    done
                })
            })
            .collect();
        Load {
            stop,
            events,
            tasks,
        }
    }

    /// Blocks the test's thread until `enough` holds for the events so far.
    fn wait_for(&self, what: &str, enough: impl Fn(&[Event]) -> bool) {
        let deadline = Instant::now() + PATIENCE;
        while !enough(&self.events.lock().unwrap()) {
            assert!(
                Instant::now() < deadline,
                "the workload did not {what} within {PATIENCE:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop(self, rt: &tokio::runtime::Runtime) -> Ledger {
        self.stop.store(true, Ordering::SeqCst);
        let mut sessions = Vec::new();
        for task in self.tasks {
            sessions.extend(rt.block_on(task).expect("a workload task panicked"));
        }
        let events = std::mem::take(&mut *self.events.lock().unwrap());
        Ledger { sessions, events }
    }
}

/// The audit of every tracked session against the store.
#[derive(Debug, Default)]
struct Audit {
    /// Sessions with an acknowledged save checked.
    checked: usize,
    /// Acknowledged saves missing or older at the end.
    lost: usize,
    /// Sessions showing a save that had failed after the last acknowledged one (applied but
    /// not confirmed: allowed).
    unconfirmed_applied: usize,
    /// Acknowledged deletes checked.
    deletes: usize,
    /// Acknowledged deletes whose session is back.
    resurrected: usize,
}

async fn audit(store: &ClusterStore, ledger: &Ledger) -> Audit {
    let mut a = Audit::default();
    for t in &ledger.sessions {
        let shown = store.load(&t.id).await.expect("audit load");
        match (t.deleted, t.acked) {
            (Some(true), _) => {
                a.deletes += 1;
                if shown.is_some() {
                    a.resurrected += 1;
                    println!(
                        "delete of {:?} (slot {}) acknowledged, session back",
                        t.id.handle(),
                        t.slot
                    );
                }
            }
            (Some(false), _) | (None, None) => {} // nothing acknowledged to hold it to
            (None, Some(acked)) => {
                a.checked += 1;
                let n = shown.as_ref().and_then(|s| counter(s.data()));
                match n {
                    Some(n) if n == acked => {}
                    Some(n) if t.failed_since.contains(&n) => a.unconfirmed_applied += 1,
                    other => {
                        a.lost += 1;
                        println!(
                            "save {acked} of {:?} (slot {}) acknowledged, the store shows {other:?}",
                            t.id.handle(),
                            t.slot
                        );
                    }
                }
            }
        }
    }
    a
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() as f64) * p).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn sorted_latencies<'a>(events: impl Iterator<Item = &'a Event>) -> Vec<Duration> {
    let mut v: Vec<Duration> = events.map(|e| e.took).collect();
    v.sort_unstable();
    v
}

fn errors_by_kind<'a>(events: impl Iterator<Item = &'a Event>) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for e in events {
        if let Some(k) = &e.error {
            *out.entry(k.clone()).or_default() += 1;
        }
    }
    out
}

#[test]
fn acknowledged_writes_and_deletes_survive_a_primary_failover() {
    let _serial = serial();
    let mut cluster = ClusterTopology::start();
    let rt = runtime();
    let store = rt.block_on(connect(&cluster));
    let map = cluster.slot_map();
    let victim = cluster.primaries()[0];
    let on_victim = |e: &Event| owner(&map, e.slot) == victim;

    let load = Load::start(&rt, store.clone());
    load.wait_for(
        "acknowledge 300 writes, 100 on the victim's shard",
        |events| {
            let ok = events.iter().filter(|e| e.error.is_none());
            ok.clone().count() >= 300 && ok.filter(|e| on_victim(e)).count() >= 100
        },
    );

    cluster.kill(victim);
    let killed = Instant::now();
    let failover = cluster.wait_failover(victim);
    let promoted = Instant::now();
    // The promoted replica has no replica of its own: its shard's writes fail NotReplicated
    // until the old primary is back as its replica.
    load.wait_for("see NotReplicated from the failed-over shard", |events| {
        events.iter().any(|e| {
            e.end > promoted && on_victim(e) && e.error.as_deref() == Some("NotReplicated")
        })
    });
    cluster.restart(victim);
    let rejoined = Instant::now();
    load.wait_for(
        "acknowledge 100 writes on the failed-over shard after it got a replica again",
        |events| {
            events
                .iter()
                .filter(|e| e.end > rejoined && on_victim(e) && e.error.is_none())
                .count()
                >= 100
        },
    );
    let ledger = load.stop(&rt);
    let a = rt.block_on(audit(&store, &ledger));

    let events = &ledger.events;
    let ok = |e: &&Event| e.error.is_none();
    let acked_saves = events.iter().filter(|e| !e.delete).filter(ok).count();
    let acked_deletes = events.iter().filter(|e| e.delete).filter(ok).count();
    let shard_before = events
        .iter()
        .filter(|e| e.end < killed && on_victim(e))
        .filter(ok)
        .count();
    let last_before = events
        .iter()
        .filter(|e| e.end < killed && on_victim(e))
        .filter(ok)
        .map(|e| e.end)
        .max()
        .unwrap();
    let first_after = events
        .iter()
        .filter(|e| e.end > killed && on_victim(e))
        .filter(ok)
        .map(|e| e.end)
        .min()
        .unwrap();
    let others_during = events
        .iter()
        .filter(|e| e.end > killed && e.end < promoted && !on_victim(e))
        .filter(ok)
        .count();
    let not_replicated = sorted_latencies(
        events
            .iter()
            .filter(|e| on_victim(e) && e.error.as_deref() == Some("NotReplicated")),
    );
    println!(
        "cluster failover: primary {victim} SIGKILLed, replica {} promoted after {} (cluster_state ok); old primary back as its replica {} after the kill",
        failover.promoted,
        ms(failover.took),
        ms(rejoined - killed)
    );
    println!(
        "{TASKS} tasks, REDIS_WAIT_REPLICAS=1, WAIT {} ms: {} operations, {acked_saves} saves and {acked_deletes} deletes acknowledged; {shard_before} acknowledged on the victim's shard before the kill",
        WAIT.as_millis(),
        events.len()
    );
    println!(
        "victim's shard: last acknowledged write {} before the kill, next {} after it (needs a replica again); other shards acknowledged {others_during} writes during the failover",
        ms(killed.saturating_duration_since(last_before)),
        ms(first_after - killed)
    );
    println!(
        "NotReplicated on the victim's shard: {} (latency p50 {}, max {}); errors by kind: {:?}",
        not_replicated.len(),
        ms(percentile(&not_replicated, 0.5)),
        ms(not_replicated.last().copied().unwrap_or_default()),
        errors_by_kind(events.iter())
    );
    println!(
        "audit: {} sessions with an acknowledged save checked, {} lost; {} acknowledged deletes checked, {} came back; {} sessions show a save that failed (applied, not confirmed)",
        a.checked, a.lost, a.deletes, a.resurrected, a.unconfirmed_applied
    );
    assert!(
        a.checked >= 50 && a.deletes >= 50,
        "too little load to judge: {a:?}"
    );
    assert_eq!(a.lost, 0, "acknowledged replicated writes were lost");
    assert_eq!(
        a.resurrected, 0,
        "acknowledged replicated deletes came back"
    );
}

#[test]
fn a_shard_without_a_replica_fails_its_writes_within_the_wait_timeout() {
    let _serial = serial();
    let mut cluster = ClusterTopology::start();
    let rt = runtime();
    let store = rt.block_on(connect(&cluster));
    let map = cluster.slot_map();
    let degraded = cluster.primaries()[1];
    let replica = cluster.replicas_of(degraded)[0];
    let on_degraded = |e: &Event| owner(&map, e.slot) == degraded;

    // Healthy: every shard confirms.
    let load = Load::start(&rt, store.clone());
    load.wait_for("acknowledge 600 writes", |events| {
        events.iter().filter(|e| e.error.is_none()).count() >= 600
    });
    cluster.kill(replica);
    let killed = Instant::now();
    load.wait_for("fail 100 writes on the shard without a replica", |events| {
        events
            .iter()
            .filter(|e| e.end > killed && e.error.is_some())
            .count()
            >= 100
    });
    let ledger = load.stop(&rt);

    let before: Vec<&Event> = ledger.events.iter().filter(|e| e.end < killed).collect();
    // Writes sent after the kill (the ones in flight then may have been confirmed just before).
    let after: Vec<&Event> = ledger
        .events
        .iter()
        .filter(|e| {
            e.end
                .checked_sub(e.took)
                .is_some_and(|start| start > killed)
        })
        .collect();
    assert!(
        before.iter().all(|e| e.error.is_none()),
        "errors while healthy: {:?}",
        errors_by_kind(before.iter().copied())
    );
    let healthy_before = sorted_latencies(before.iter().copied());
    let (degraded_after, others_after): (Vec<&Event>, Vec<&Event>) =
        after.iter().partition(|e| on_degraded(e));
    let others = sorted_latencies(others_after.iter().copied());
    let failing = sorted_latencies(degraded_after.iter().copied());
    // The round trip of a replicated write (write + WAIT answered by a replica) on the
    // healthy shards, measured under the same load: the margin allows for two of the longest
    // (the write's own and the wake-up's) plus the wake-up's schedule (first 5 ms after the
    // WAIT is due, then every 10 ms).
    let rtt_p99 = percentile(&others, 0.99);
    let rtt_max = others.last().copied().unwrap_or_default();
    let margin = rtt_max * 2 + Duration::from_millis(15);
    let bound = WAIT + margin;
    println!(
        "replica {replica} of primary {degraded} SIGKILLed; {TASKS} tasks, REDIS_WAIT_REPLICAS=1, WAIT {} ms",
        WAIT.as_millis()
    );
    println!(
        "before: {} writes, all acknowledged, latency p50 {}, p99 {}",
        healthy_before.len(),
        ms(percentile(&healthy_before, 0.5)),
        ms(percentile(&healthy_before, 0.99))
    );
    println!(
        "after, other shards: {} writes, errors {:?}, latency p50 {}, p99 {}, max {}",
        others.len(),
        errors_by_kind(others_after.iter().copied()),
        ms(percentile(&others, 0.5)),
        ms(rtt_p99),
        ms(rtt_max)
    );
    println!(
        "after, shard without a replica: {} writes, errors {:?}, latency min {}, p50 {}, p99 {}, max {}; bound WAIT + 2 x longest round trip + 15 ms = {}",
        failing.len(),
        errors_by_kind(degraded_after.iter().copied()),
        ms(failing.first().copied().unwrap_or_default()),
        ms(percentile(&failing, 0.5)),
        ms(percentile(&failing, 0.99)),
        ms(failing.last().copied().unwrap_or_default()),
        ms(bound)
    );
    assert!(
        failing.len() >= 50 && others.len() >= 100,
        "too little load to judge"
    );
    assert!(
        degraded_after
            .iter()
            .all(|e| e.error.as_deref() == Some("NotReplicated")),
        "every write to the shard without a replica fails with NotReplicated"
    );
    assert!(
        others_after.iter().all(|e| e.error.is_none()),
        "writes to the other shards go on"
    );
    assert!(
        failing[0] >= WAIT,
        "a write failed before its WAIT timed out"
    );
    assert!(
        *failing.last().unwrap() <= bound,
        "NotReplicated took up to {}, beyond {}",
        ms(*failing.last().unwrap()),
        ms(bound)
    );
    assert!(
        rtt_p99 < WAIT,
        "writes to the healthy shards waited for the degraded shard's WAITs"
    );
}
