//! A node unreachable: a primary and its replica stopped (SIGSTOP), so nothing takes over
//! its slots. Its slots fail with typed errors within the store's timeouts, the other slots
//! keep working, and the same store recovers once the nodes are back.

use std::time::{Duration, Instant};

use redis_harness::cluster::{ClusterSpec, ClusterTopology, SLOT_COUNT};
use redis_harness::wait_until;
use session_cluster::DurabilityPolicy;
use session_core::SessionStore;

use crate::workload::{print_errors, verify, Failure, Op, Workload};
use crate::{connect, quantile, ALL_ASYNC, PERIOD, PHASE, SERIAL, STEADY, TASKS, TIMEOUTS};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_node_fails_its_slots_in_time_and_recovers() {
    let _one_at_a_time = SERIAL.lock().await;
    run(ALL_ASYNC).await;
}

/// The same with the default durability settings, whose revocations wait for a replica: each
/// such write on a pooled connection of its own to the node serving its slot, so the other
/// slots' revocations go on while one node is unreachable (they used to fail on every slot,
/// when each pooled connection was a whole cluster connection, which could not open with a
/// node stopped).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_node_with_replicated_revocations() {
    let _one_at_a_time = SERIAL.lock().await;
    run(DurabilityPolicy::default()).await;
}

/// Stops a primary and its replica under the workload, with writes at `durability`.
async fn run(durability: DurabilityPolicy) {
    // With full coverage required (the default), a shard down stops the whole cluster
    // (CLUSTERDOWN everywhere): the other slots can only keep working without it.
    let mut cluster = ClusterSpec::new()
        .config("cluster-require-full-coverage no")
        .start();
    let store = connect(&cluster, TIMEOUTS, durability).await;
    let victim = cluster.primaries()[0];
    let replica = cluster.replicas_of(victim)[0];
    let witness = cluster.primaries()[1];
    let victim_slots = cluster.slots_of(victim);
    let mut on_victim = vec![false; usize::from(SLOT_COUNT)];
    for &s in &victim_slots {
        on_victim[usize::from(s)] = true;
    }

    let workload = Workload::start(&store, TASKS, PERIOD, STEADY);
    let warm = TASKS as u64 * 50;
    assert!(wait_until(PHASE, || workload.acked() >= warm));

    for port in [victim, replica] {
        signal("STOP", cluster.node(port).pid().expect("running"));
    }
    let stopped_at = Instant::now();
    // Until the other nodes agree it failed (no replica can take over), then as long again.
    assert!(
        wait_until(PHASE, || flagged_fail(&cluster, witness, victim)),
        "node {witness} never flagged the stopped {victim} as failed"
    );
    let failed_at = Instant::now();
    let more = workload.acked() + TASKS as u64 * 10;
    assert!(wait_until(PHASE, || workload.acked() >= more));
    let count_started = Instant::now();
    let count = store.count().await;
    let count_took = count_started.elapsed();

    // Back: killed (a stopped process takes SIGKILL) and restarted on the same ports, empty
    // (the harness keeps no data), the primary first so the cluster can settle around it.
    cluster.node(replica).kill();
    cluster.node(victim).kill();
    let restart_started = Instant::now();
    cluster.restart(victim);
    cluster.restart(replica);
    let restarted_at = Instant::now();
    assert!(
        wait_until(PHASE, || workload.wrote_since(&victim_slots, restarted_at)),
        "the store wrote nothing to the restarted primary's slots within {PHASE:?}"
    );
    let recovered_at = Instant::now();
    let after = workload.acked() + TASKS as u64 * 50;
    assert!(wait_until(PHASE, || workload.acked() >= after));
    let mut logs = workload.stop().await;

    let ops: Vec<&Op> = logs.iter().flat_map(|l| &l.ops).collect();
    let mut before: Vec<Duration> = ops
        .iter()
        .filter(|o| o.ok && o.ended < stopped_at)
        .map(|o| o.ended - o.started)
        .collect();
    let (p50, p99) = (quantile(&mut before, 0.5), quantile(&mut before, 0.99));
    let failures: Vec<Failure> = logs.iter().flat_map(|l| &l.failures).cloned().collect();
    let mut failing: Vec<Duration> = failures.iter().map(|f| f.op.ended - f.op.started).collect();
    let failing_max = quantile(&mut failing, 1.0);
    let during = |o: &Op| o.started >= stopped_at && o.ended <= restart_started;
    let other_during: Vec<&&Op> = ops
        .iter()
        .filter(|o| during(o) && !on_victim[usize::from(o.slot)])
        .collect();
    let other_ok = other_during.iter().filter(|o| o.ok).count();
    let other_total = other_during.len();
    let mut other_latency: Vec<Duration> = other_during
        .iter()
        .filter(|o| o.ok)
        .map(|o| o.ended - o.started)
        .collect();
    let other_p99 = quantile(&mut other_latency, 0.99);

    eprintln!(
        "unreachable: {} ops; round trip before the stop p50 {p50:?} p99 {p99:?}; \
         timeouts connect {:?} + response {:?}",
        ops.len(),
        TIMEOUTS.connect,
        TIMEOUTS.response
    );
    eprintln!(
        "unreachable: stopped {victim} and its replica {replica}; flagged failed after {:?}; \
         failing operations took at most {failing_max:?}; count() took {count_took:?}: {:?}",
        failed_at - stopped_at,
        count.as_ref().map_err(crate::error_kind)
    );
    eprintln!(
        "unreachable: other slots while stopped: {other_ok} of {other_total} ops ok, p99 \
         {other_p99:?}"
    );
    eprintln!(
        "unreachable: restart took {:?}; first write to its slots {:?} after the restart",
        restarted_at - restart_started,
        recovered_at - restarted_at
    );
    print_errors(
        "unreachable: errors on the stopped primary's slots",
        failures
            .iter()
            .filter(|f| on_victim[usize::from(f.op.slot)]),
    );
    print_errors(
        "unreachable: errors on other slots",
        failures
            .iter()
            .filter(|f| !on_victim[usize::from(f.op.slot)]),
    );
    let verdict = verify(&store, &mut logs).await;
    let sessions = logs.iter().flat_map(|l| &l.sessions);
    let (victim_sessions, other_sessions): (Vec<_>, Vec<_>) =
        sessions.partition(|s| on_victim[usize::from(s.slot)]);
    let lost = |v: &[&crate::workload::Tracked]| {
        v.iter().filter(|s| s.lost_write || s.delete_back).count()
    };
    eprintln!(
        "unreachable: {verdict:?}; sessions with an acknowledged write undone: {} of {} on the \
         restarted primary's slots (it came back empty: the harness keeps no data), {} of {} \
         elsewhere",
        lost(&victim_sessions),
        victim_sessions.len(),
        lost(&other_sessions),
        other_sessions.len()
    );

    // Typed, retryable, and within the timeouts: one round trip each (a count: the slot map,
    // then every primary at once), each bounded by connect + response timeout.
    let margin = p99 * 10;
    let one_trip = TIMEOUTS.deadline() + margin;
    for f in &failures {
        let on_stopped = on_victim[usize::from(f.op.slot)];
        assert!(on_stopped, "an operation on another slot failed: {f:?}");
        match f.kind.as_str() {
            // Sessions of the restarted (empty) primary: gone, as the model noted.
            "NotFound" => assert!(f.op.ended >= restart_started, "{f:?}"),
            kind => assert!(kind.starts_with("Unavailable"), "{f:?}"),
        }
        let took = f.op.ended - f.op.started;
        assert!(
            took <= one_trip,
            "a failing operation took {took:?}, over {one_trip:?} (timeouts {:?} + 10 x p99 \
             {margin:?}): {f:?}",
            TIMEOUTS.deadline()
        );
    }
    assert!(
        failures.iter().any(|f| f.kind.starts_with("Unavailable")),
        "no operation on the stopped node's slots failed"
    );
    let count = count.expect_err("count() with a primary stopped");
    assert!(count.is_retryable(), "count(): {count}");
    assert!(
        count_took <= one_trip * 2,
        "count() failed after {count_took:?}, over two round trips of {one_trip:?}"
    );
    assert!(
        other_total > 0 && other_ok == other_total,
        "the other slots while the node was stopped: {other_ok} of {other_total} ok"
    );
    // The same store, not rebuilt: a write in flight at the restart may wait out its timeout.
    assert!(
        recovered_at - restarted_at <= one_trip,
        "the store wrote to the restarted primary's slots {:?} after the restart, over {one_trip:?}",
        recovered_at - restarted_at
    );
    assert_eq!(lost(&other_sessions), 0, "sessions on other slots changed");
    assert_eq!(verdict.load_errors, 0, "loads after the restart failed");
}

/// Sends `SIG<name>` to `pid`.
fn signal(name: &str, pid: u32) {
    let status = std::process::Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{name} {pid}: {status}");
}

/// Whether `witness` flags `node` as failed (`fail`, not just suspected `fail?`).
fn flagged_fail(cluster: &ClusterTopology, witness: u16, node: u16) -> bool {
    let Ok(nodes) = redis::cmd("CLUSTER")
        .arg("NODES")
        .query::<String>(&mut cluster.connection(witness))
    else {
        return false;
    };
    let addr = format!("127.0.0.1:{node}@");
    nodes.lines().any(|line| {
        let mut fields = line.split_whitespace();
        let (Some(_id), Some(at), Some(flags)) = (fields.next(), fields.next(), fields.next())
        else {
            return false;
        };
        at.starts_with(&addr) && flags.split(',').any(|f| f == "fail")
    })
}
