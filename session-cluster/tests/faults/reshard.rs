//! Live resharding under the workload: a third of one primary's slots moved to another with
//! `redis-cli --cluster reshard` while tasks keep writing and loading.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis_harness::cluster::{ClusterTopology, SLOT_COUNT};
use redis_harness::wait_until;
use session_cluster::DurabilityPolicy;
use session_core::{SessionHandle, SessionId, SessionStore};

use crate::workload::{populate, print_errors, verify, Failure, Hot, Mix, Op, State, Workload};
use crate::{connect, quantile, ALL_ASYNC, PERIOD, PHASE, SERIAL, TASKS, TIMEOUTS};

/// Sessions written before the move and left alone during it, anywhere.
const IDLE_SESSIONS: usize = 1000;
/// Slots that get many sessions: among the first to move, each with many more keys than
/// `redis-cli` moves in one `MIGRATE` (10), so for a while a session key and its slot's expiry
/// index are on different nodes (clients then get `ASK`, or `TRYAGAIN` for a script naming
/// both), and half the workload's new sessions, so it writes there meanwhile.
const HOT_SLOTS: usize = 8;
/// Idle sessions in each hot slot.
const PER_HOT_SLOT: usize = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_reshard_loses_nothing_and_surfaces_no_error() {
    let _one_at_a_time = SERIAL.lock().await;
    run(ALL_ASYNC).await;
}

/// The same with the default durability settings, whose revocations wait for a replica on a
/// connection of their own to the slot's node (see `durable`), following the move's `ASK`
/// and `MOVED` there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_reshard_with_replicated_revocations() {
    let _one_at_a_time = SERIAL.lock().await;
    run(DurabilityPolicy::default()).await;
}

/// Reshards a third of one primary's slots under the workload, with writes at `durability`.
async fn run(durability: DurabilityPolicy) {
    let cluster = ClusterTopology::start();
    let store = connect(&cluster, TIMEOUTS, durability).await;
    let primaries = cluster.primaries();
    // From the primary serving the highest slots to the one serving the lowest: against the
    // order a walk over the nodes would take (lowest slots first), so slots move from a node
    // such a walk has not reached to one it has passed, and a walk that trusted each node's
    // own `SCAN` would miss their sessions.
    let (from, to) = (primaries[primaries.len() - 1], primaries[0]);
    let from_slots = cluster.slots_of(from);
    let third = from_slots.len() / 3;
    // redis-cli moves the source's lowest slots first.
    let mut hot = vec![false; usize::from(SLOT_COUNT)];
    for &s in &from_slots[third / 2..third / 2 + HOT_SLOTS] {
        hot[usize::from(s)] = true;
    }
    let hot: Arc<[bool]> = hot.into();
    let mut idle = populate(&store, IDLE_SESSIONS, TASKS, None).await;
    let in_hot = populate(&store, HOT_SLOTS * PER_HOT_SLOT, TASKS, Some(&hot)).await;
    idle.sessions.extend(in_hot.sessions);
    let untouched: Arc<HashSet<SessionHandle>> =
        Arc::new(idle.sessions.iter().map(|s| s.id.handle()).collect());

    // Many live sessions per task, rarely deleted, so most keys in the moving slots stay there
    // through the move, written and loaded while their slot migrates.
    let mix = Mix {
        active: 16,
        load: 25,
        delete: 5,
        hot: Some(Hot {
            slots: hot.clone(),
            percent: 50,
        }),
    };
    let workload = Workload::start(&store, TASKS, PERIOD, mix);
    let warm = TASKS as u64 * 50;
    assert!(wait_until(PHASE, || workload.acked() >= warm));
    // `count` over and over while the slots move: it walks each primary's slot indexes, so
    // it meets indexes whose slot just left (it asks their new owner).
    let counting = Arc::new(AtomicBool::new(true));
    let counter = tokio::spawn(count_while(store.clone(), counting.clone()));
    // Whole iterations with `scan` back to back meanwhile: the sessions nobody touches live
    // through every one of them, so each must yield all of them.
    let scanner = tokio::spawn(scan_while(
        store.clone(),
        counting.clone(),
        untouched.clone(),
    ));
    // And bursts of 128 concurrent loads of those sessions: the `redis` crate's cluster
    // client stopped answering for good under bursts like these while slots moved (its
    // slot-map rebuild never finished); the store now routes requests itself.
    let burst_ids: Vec<SessionId> = idle
        .sessions
        .iter()
        .take(BURST)
        .map(|s| s.id.clone())
        .collect();
    let burster = tokio::spawn(burst_while(store.clone(), counting.clone(), burst_ids));
    let started = Instant::now();
    let moved = cluster.reshard(from, to, third);
    let ended = Instant::now();
    counting.store(false, Ordering::Relaxed);
    let (counts_ok, count_errors) = counter.await.expect("the counting task");
    let scans = scanner.await.expect("the scanning task");
    let bursts = burster.await.expect("the burst task");
    let after = workload.acked() + TASKS as u64 * 50;
    assert!(wait_until(PHASE, || workload.acked() >= after));
    let mut logs = workload.stop().await;
    logs.push(idle);

    let mut is_moved = vec![false; usize::from(SLOT_COUNT)];
    for &s in &moved {
        is_moved[usize::from(s)] = true;
    }
    let ops: Vec<&Op> = logs.iter().flat_map(|l| &l.ops).collect();
    let latency = |filter: &dyn Fn(&Op) -> bool| {
        let mut l: Vec<Duration> = ops
            .iter()
            .filter(|o| o.ok && filter(o))
            .map(|o| o.ended - o.started)
            .collect();
        (
            l.len(),
            quantile(&mut l, 0.5),
            quantile(&mut l, 0.99),
            quantile(&mut l, 1.0),
        )
    };
    let before = latency(&|o| o.ended < started);
    let during = |o: &Op| o.started >= started && o.ended <= ended;
    let during_moved = latency(&|o| during(o) && is_moved[usize::from(o.slot)]);
    let during_all = latency(&during);
    assert!(
        (0..SLOT_COUNT).all(|s| !hot[usize::from(s)] || is_moved[usize::from(s)]),
        "redis-cli moved other slots than the hot ones"
    );
    let in_moved = logs
        .iter()
        .flat_map(|l| &l.sessions)
        .filter(|s| is_moved[usize::from(s.slot)])
        .count();
    let during_hot = latency(&|o| during(o) && hot[usize::from(o.slot)]);
    eprintln!(
        "reshard: moved {} of {from}'s slots to {to} in {:?} (redis-cli reshard, waits for \
         a stable cluster before and after); {in_moved} sessions in the moved slots",
        moved.len(),
        ended - started,
    );
    eprintln!(
        "reshard: ops (n, p50, p99, max): before {before:?}; during, all slots {during_all:?}; \
         during, moved slots {during_moved:?}; during, hot slots {during_hot:?}"
    );
    eprintln!(
        "reshard: redirections and refusals the nodes answered the store (which followed \
         them): {:?}",
        error_stats(&cluster)
    );
    let failures: Vec<Failure> = logs.iter().flat_map(|l| &l.failures).cloned().collect();
    print_errors("reshard: errors", &failures);
    eprintln!(
        "reshard: count() during the move: {counts_ok} answered, {} failed {:?}",
        count_errors.len(),
        count_errors.first()
    );
    eprintln!(
        "reshard: scan during the move: {} whole iterations ({} pages), {} missed some of the \
         {} untouched sessions (at most {} in one), {} failed {:?}",
        scans.passes,
        scans.pages,
        scans.incomplete,
        untouched.len(),
        scans.most_missed,
        scans.errors.len(),
        scans.errors.first()
    );

    eprintln!(
        "reshard: bursts of {BURST} concurrent loads during the move: {} bursts, {} loads \
         missed a session, {} failed {:?}",
        bursts.bursts,
        bursts.missing,
        bursts.errors.len(),
        bursts.errors.first()
    );

    let verdict = verify(&store, &mut logs).await;
    eprintln!("reshard: {verdict:?}");
    let live: HashSet<SessionHandle> = logs
        .iter()
        .flat_map(|l| &l.sessions)
        .filter(|s| matches!(s.expected(), Some(State::Live(_))))
        .map(|s| s.id.handle())
        .collect();
    let count = store.count().await.expect("count after the reshard");
    let mut scanned: HashSet<SessionHandle> = HashSet::new();
    let mut cursor = None;
    loop {
        let page = store
            .scan(cursor, 200)
            .await
            .expect("scan after the reshard");
        scanned.extend(page.sessions.into_iter().map(|r| r.handle));
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    eprintln!(
        "reshard: {} live sessions tracked, count() {count}, scan {} sessions",
        live.len(),
        scanned.len()
    );

    assert!(
        failures.is_empty(),
        "errors surfaced during the reshard (see above): the cluster client follows MOVED and \
         ASK, and TRYAGAIN is retry-safe: {:?}",
        failures.first()
    );
    assert_eq!(
        (
            verdict.acked_writes_lost,
            verdict.acked_deletes_back,
            verdict.load_errors
        ),
        (0, 0, 0),
        "sessions lost or back after the reshard"
    );
    assert_eq!(count, live.len() as u64, "count() after the reshard");
    assert!(counts_ok > 0, "no count() answered during the move");
    assert!(
        count_errors.is_empty(),
        "count() failed during the move: {:?}",
        count_errors.first()
    );
    assert!(scans.passes > 0, "no scan completed during the move");
    assert!(
        scans.errors.is_empty(),
        "scan failed during the move: {:?}",
        scans.errors.first()
    );
    assert_eq!(
        scans.incomplete, 0,
        "iterations during the move missed sessions that lived through them"
    );
    assert!(
        bursts.bursts > 0,
        "no burst of loads completed during the move"
    );
    assert_eq!(
        (bursts.missing, bursts.errors.len()),
        (0, 0),
        "loads in bursts during the move: sessions missed, errors ({:?})",
        bursts.errors.first()
    );
    let missing = live.difference(&scanned).count();
    assert_eq!(missing, 0, "live sessions scan did not yield");
    assert!(
        scanned.is_subset(&live),
        "scan yielded sessions that are not live"
    );
}

/// `count()` over and over while `go` stays true: how many answered, and the errors.
async fn count_while(
    store: session_cluster::ClusterStore,
    go: Arc<AtomicBool>,
) -> (u64, Vec<String>) {
    let (mut ok, mut errors) = (0, Vec::new());
    while go.load(Ordering::Relaxed) {
        match store.count().await {
            Ok(_) => ok += 1,
            Err(e) => errors.push(e.to_string()),
        }
    }
    (ok, errors)
}

/// What whole `scan` iterations run during the move showed.
#[derive(Debug, Default)]
struct Scans {
    passes: u64,
    pages: u64,
    /// Iterations that missed at least one of the untouched sessions.
    incomplete: u64,
    most_missed: usize,
    errors: Vec<String>,
}

/// Whole iterations with `scan` while `go` stays true, each checked for `untouched`.
async fn scan_while(
    store: session_cluster::ClusterStore,
    go: Arc<AtomicBool>,
    untouched: Arc<HashSet<SessionHandle>>,
) -> Scans {
    let mut out = Scans::default();
    while go.load(Ordering::Relaxed) {
        let mut seen = HashSet::new();
        let mut cursor = None;
        let complete = loop {
            match store.scan(cursor, 200).await {
                Ok(page) => {
                    out.pages += 1;
                    seen.extend(page.sessions.into_iter().map(|r| r.handle));
                    match page.next {
                        Some(next) => cursor = Some(next),
                        None => break true,
                    }
                }
                Err(e) => {
                    out.errors.push(e.to_string());
                    break false;
                }
            }
        };
        if complete {
            out.passes += 1;
            let missed = untouched.difference(&seen).count();
            if missed > 0 {
                out.incomplete += 1;
                out.most_missed = out.most_missed.max(missed);
            }
        }
    }
    out
}

/// Concurrent loads per burst.
const BURST: usize = 128;

/// What the bursts of loads showed.
#[derive(Debug, Default)]
struct Bursts {
    bursts: u64,
    /// Loads that found no session.
    missing: u64,
    errors: Vec<String>,
}

/// Concurrent loads of `ids` (untouched sessions), burst after burst, while `go` stays true.
async fn burst_while(
    store: session_cluster::ClusterStore,
    go: Arc<AtomicBool>,
    ids: Vec<SessionId>,
) -> Bursts {
    let mut out = Bursts::default();
    while go.load(Ordering::Relaxed) {
        let loads = ids.iter().map(|id| store.load(id));
        for result in futures::future::join_all(loads).await {
            match result {
                Ok(Some(_)) => {}
                Ok(None) => out.missing += 1,
                Err(e) => out.errors.push(e.to_string()),
            }
        }
        out.bursts += 1;
    }
    out
}

/// The cluster's redirections and refusals the nodes replied with so far, summed over nodes
/// (`INFO errorstats`: `errorstat_MOVED:count=12`, …). Only the store gets these: the
/// harness's checks and `redis-cli` get none (their `ERR`s, such as the `CLIENT SETINFO` this
/// Redis does not know, are left out).
fn error_stats(cluster: &ClusterTopology) -> BTreeMap<String, u64> {
    const CODES: [&str; 5] = ["MOVED", "ASK", "TRYAGAIN", "CLUSTERDOWN", "NOSCRIPT"];
    let mut out = BTreeMap::new();
    for port in cluster.ports() {
        let info: String = redis::cmd("INFO")
            .arg("errorstats")
            .query(&mut cluster.connection(port))
            .expect("INFO errorstats");
        for line in info.lines() {
            let Some((name, rest)) = line.trim().split_once(":count=") else {
                continue;
            };
            let name = name.trim_start_matches("errorstat_");
            if CODES.contains(&name) {
                *out.entry(name.to_string()).or_default() += rest.parse::<u64>().unwrap_or(0);
            }
        }
    }
    out
}
