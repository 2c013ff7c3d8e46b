//! The cluster topology: a real 3 + 3 cluster on free loopback ports, keys written to their
//! owning primaries (plain per-node connections, no cluster client), a failover that keeps
//! them, a restart that rejoins as a replica, a live reshard that moves them, and a drop that
//! leaves nothing behind.

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use redis_harness::cluster::{ClusterTopology, SlotRange};

/// A key, its slot, and the value written under it.
struct Written {
    key: String,
    slot: u16,
}

impl Written {
    fn value(&self) -> String {
        format!("value of {}", self.key)
    }
}

fn owner(map: &[SlotRange], slot: u16) -> u16 {
    map.iter().find(|r| r.contains(slot)).unwrap().primary
}

/// Writes `n` keys, each on the primary that serves its slot, and waits until each primary's
/// replica has them (`WAIT`), so a failover cannot lose them.
fn write_keys(cluster: &ClusterTopology, n: usize) -> Vec<Written> {
    let keys: Vec<String> = (0..n).map(|i| format!("harness:key:{i}")).collect();
    let mut keyslots = redis::pipe();
    for key in &keys {
        keyslots.cmd("CLUSTER").arg("KEYSLOT").arg(key);
    }
    let any = cluster.primaries()[0];
    let slots: Vec<u16> = keyslots.query(&mut cluster.connection(any)).unwrap();
    let written: Vec<Written> = keys
        .into_iter()
        .zip(slots)
        .map(|(key, slot)| Written { key, slot })
        .collect();
    let map = cluster.slot_map();
    let mut by_primary: HashMap<u16, redis::Pipeline> = HashMap::new();
    for w in &written {
        by_primary
            .entry(owner(&map, w.slot))
            .or_default()
            .cmd("SET")
            .arg(&w.key)
            .arg(w.value())
            .ignore();
    }
    for (primary, mut pipe) in by_primary {
        pipe.cmd("WAIT").arg(1).arg(5000);
        let (acked,): (usize,) = pipe.query(&mut cluster.connection(primary)).unwrap();
        assert_eq!(acked, 1, "the replica of {primary} has the keys");
    }
    written
}

fn get(con: &mut redis::Connection, key: &str) -> redis::RedisResult<Option<String>> {
    redis::cmd("GET").arg(key).query(con)
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn a_killed_primary_fails_over_to_its_replica_with_its_keys() {
    let started = Instant::now();
    let mut cluster = ClusterTopology::start();
    eprintln!("cluster start: {:?}", started.elapsed());

    let ports = cluster.ports();
    assert_eq!(ports.len(), 6);
    assert!(!ports.contains(&6379));
    assert_eq!(cluster.primaries().len(), 3);
    assert_eq!(cluster.replicas().len(), 3);
    let seeds: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    assert_eq!(cluster.seeds(), seeds.join(","));
    assert_eq!(cluster.urls()[0], format!("redis://127.0.0.1:{}", ports[0]));
    for port in &ports {
        assert!(cluster.node(*port).dir().join("nodes.conf").exists());
    }

    let keys = write_keys(&cluster, 300);
    let victim = cluster.primary_of_slot(keys[0].slot);
    let victim_slots = cluster.slots_of(victim);
    let victim_keys: Vec<&Written> = keys
        .iter()
        .filter(|w| victim_slots.contains(&w.slot))
        .collect();
    let replicas = cluster.replicas_of(victim);
    assert_eq!(replicas.len(), 1);

    cluster.kill(victim);
    let failover = cluster.wait_failover(victim);
    eprintln!("failover: {:?}", failover.took);
    assert_eq!(failover.killed, victim);
    assert_eq!(failover.promoted, replicas[0]);
    let primaries = cluster.primaries();
    assert!(primaries.contains(&failover.promoted) && !primaries.contains(&victim));
    let map = cluster.slot_map();
    let mut con = cluster.connection(failover.promoted);
    for w in &victim_keys {
        assert_eq!(owner(&map, w.slot), failover.promoted);
        assert_eq!(get(&mut con, &w.key).unwrap(), Some(w.value()));
    }

    // Back with its nodes.conf, the old primary follows its successor and resyncs from it.
    let restarted = Instant::now();
    cluster.restart(victim);
    eprintln!("restart and rejoin: {:?}", restarted.elapsed());
    assert_eq!(cluster.replicas_of(failover.promoted), vec![victim]);
    let mut replica = cluster.connection(victim);
    let () = redis::cmd("READONLY").query(&mut replica).unwrap();
    assert_eq!(
        get(&mut replica, &victim_keys[0].key).unwrap(),
        Some(victim_keys[0].value())
    );
}

#[test]
fn reshard_moves_slots_with_their_keys() {
    let mut cluster = ClusterTopology::start();
    let keys = write_keys(&cluster, 3000);
    let primaries = cluster.primaries();
    let (from, to) = (primaries[0], primaries[1]);
    let from_slots = cluster.slots_of(from);

    let started = Instant::now();
    let moved = cluster.reshard(from, to, 600);
    eprintln!("reshard of 600 slots: {:?}", started.elapsed());
    assert_eq!(moved.len(), 600);
    assert!(moved.iter().all(|s| from_slots.contains(s)));
    assert_eq!(cluster.primary_of_slot(moved[0]), to);
    let to_slots = cluster.slots_of(to);
    assert!(moved.iter().all(|s| to_slots.contains(s)));

    let (mut at_from, mut at_to) = (cluster.connection(from), cluster.connection(to));
    let mut moved_keys = 0;
    for w in keys.iter().filter(|w| from_slots.contains(&w.slot)) {
        if moved.contains(&w.slot) {
            moved_keys += 1;
            assert_eq!(get(&mut at_to, &w.key).unwrap(), Some(w.value()));
            let err = get(&mut at_from, &w.key).unwrap_err();
            assert_eq!(err.code(), Some("MOVED"), "{err}");
        } else {
            assert_eq!(get(&mut at_from, &w.key).unwrap(), Some(w.value()));
        }
    }
    assert!(
        moved_keys >= 20,
        "only {moved_keys} keys in the moved slots"
    );

    let mut pids = Vec::new();
    let mut dirs = Vec::new();
    for port in cluster.ports() {
        let node = cluster.node(port);
        pids.push(node.pid().unwrap());
        dirs.push(node.dir().to_owned());
    }
    drop(cluster);
    assert!(pids.iter().all(|p| !alive(*p)), "a node survived the drop");
    assert!(
        dirs.iter().all(|d| !d.exists()),
        "a node dir survived the drop"
    );
}
