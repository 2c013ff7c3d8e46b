//! What a replicated write costs the primary, in raw commands: server CPU per operation
//! (`INFO cpu` before and after, `used_cpu_sys` + `used_cpu_user`) on a private primary with
//! one replica, both started here, for `SET … PX` and `DEL` of a 900-byte value, each alone,
//! with `WAIT 1 250` pipelined behind it (what a replicated write of this crate sends), and 8
//! per request with one `WAIT` for all 8 (what a group commit would send), beside 8 per
//! request without it (the same batching, no replication wait).
//!
//! `cargo run --release -p session-redis --example wait_cost -- [OPS]`
//!
//! `OPS` (default 64,000) operations per row, spread over 16 and then 64 tasks, each task on
//! a connection of its own with one request in flight, as the replicated-write pools do (the
//! "one shared connection" rows: every task on one multiplexed connection, as the store's
//! other requests go, for what connections of their own cost).
//! The first rows run before the replica attaches, so the table also shows what feeding a
//! replica costs the primary.

use std::time::{Duration, Instant};

use redis_harness::{wait_until, RedisServer};

/// What one request sends.
#[derive(Clone, Copy)]
struct Mode {
    name: &'static str,
    delete: bool,
    batch: usize,
    wait: bool,
    /// All tasks on one multiplexed connection (as the store's non-replicated requests go)
    /// instead of one each (never with `WAIT`: it would block every task's requests).
    shared: bool,
}

const MODES: [Mode; 8] = [
    Mode {
        name: "SET PX, one shared connection",
        delete: false,
        batch: 1,
        wait: false,
        shared: true,
    },
    Mode {
        name: "DEL, one shared connection",
        delete: true,
        batch: 1,
        wait: false,
        shared: true,
    },
    Mode {
        name: "SET PX",
        delete: false,
        batch: 1,
        wait: false,
        shared: false,
    },
    Mode {
        name: "SET PX + WAIT",
        delete: false,
        batch: 1,
        wait: true,
        shared: false,
    },
    Mode {
        name: "DEL",
        delete: true,
        batch: 1,
        wait: false,
        shared: false,
    },
    Mode {
        name: "DEL + WAIT",
        delete: true,
        batch: 1,
        wait: true,
        shared: false,
    },
    Mode {
        name: "8 DEL",
        delete: true,
        batch: 8,
        wait: false,
        shared: false,
    },
    Mode {
        name: "8 DEL + WAIT",
        delete: true,
        batch: 8,
        wait: true,
        shared: false,
    },
];

fn info_field(conn: &mut redis::Connection, section: &str, field: &str) -> f64 {
    let info: String = redis::cmd("INFO").arg(section).query(conn).expect("INFO");
    info.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

fn cpu_seconds(conn: &mut redis::Connection) -> f64 {
    info_field(conn, "cpu", "used_cpu_sys") + info_field(conn, "cpu", "used_cpu_user")
}

fn main() {
    let ops: usize = std::env::args()
        .nth(1)
        .map_or(64_000, |n| n.parse().expect("OPS"));
    let primary = RedisServer::start();
    let replica = RedisServer::start();
    let mut primary_conn = primary.connection();
    let mut replica_conn = replica.connection();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let value = "x".repeat(900);

    println!("| request | tasks | ops/s | primary CPU µs/op | replica CPU µs/op | REPLCONF ACKs per op |");
    println!("|---|---:|---:|---:|---:|---:|");
    // The same primary before its replica attaches: what feeding a replica adds.
    for tasks in [16, 64] {
        for mode in MODES.into_iter().filter(|m| !m.wait && m.batch == 1) {
            let row = Row {
                mode,
                tasks,
                per_task: ops / tasks,
            };
            row.measure(&runtime, &primary, &mut primary_conn, None, &value);
        }
    }
    let _: () = redis::cmd("REPLICAOF")
        .arg("127.0.0.1")
        .arg(primary.port())
        .query(&mut replica_conn)
        .expect("REPLICAOF");
    let linked = wait_until(Duration::from_secs(30), || {
        let info: String = redis::cmd("INFO")
            .arg("replication")
            .query(&mut replica_conn)
            .expect("INFO");
        info.contains("master_link_status:up")
    });
    assert!(linked, "the replica did not connect to the primary");
    for tasks in [16, 64] {
        for mode in MODES {
            let row = Row {
                mode,
                tasks,
                per_task: ops / tasks,
            };
            row.measure(
                &runtime,
                &primary,
                &mut primary_conn,
                Some(&mut replica_conn),
                &value,
            );
        }
    }
}

/// One row of the table.
struct Row {
    mode: Mode,
    tasks: usize,
    per_task: usize,
}

impl Row {
    /// Runs the row and prints it; `replica`: the primary's replica, once it has one.
    fn measure(
        &self,
        runtime: &tokio::runtime::Runtime,
        primary: &RedisServer,
        primary_conn: &mut redis::Connection,
        mut replica: Option<&mut redis::Connection>,
        value: &str,
    ) {
        let Row {
            mode,
            tasks,
            per_task,
        } = *self;
        if mode.delete {
            runtime.block_on(fill(primary, tasks, per_task, value, replica.is_some()));
        }
        let _: () = redis::cmd("CONFIG")
            .arg("RESETSTAT")
            .query(primary_conn)
            .expect("CONFIG RESETSTAT");
        let replica_cpu =
            |conn: &mut Option<&mut redis::Connection>| conn.as_deref_mut().map(cpu_seconds);
        let (p0, r0) = (cpu_seconds(primary_conn), replica_cpu(&mut replica));
        let started = Instant::now();
        runtime.block_on(run(primary, mode, tasks, per_task, value));
        let took = started.elapsed().as_secs_f64();
        let (p1, r1) = (cpu_seconds(primary_conn), replica_cpu(&mut replica));
        let acks = replconf_calls(primary_conn);
        let n = (tasks * per_task) as f64;
        let (name, on_replica) = match (r0, r1) {
            (Some(r0), Some(r1)) => (mode.name.to_owned(), format!("{:.1}", (r1 - r0) * 1e6 / n)),
            _ => (format!("{} (no replica yet)", mode.name), "-".to_owned()),
        };
        println!(
            "| {name} | {tasks} | {:.0} | {:.1} | {on_replica} | {:.2} |",
            n / took,
            (p1 - p0) * 1e6 / n,
            acks / n
        );
    }
}

fn replconf_calls(conn: &mut redis::Connection) -> f64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(conn)
        .expect("INFO");
    info.lines()
        .find_map(|l| l.strip_prefix("cmdstat_replconf:calls="))
        .and_then(|rest| rest.split(',').next()?.parse().ok())
        .unwrap_or(0.0)
}

fn key(task: usize, i: usize) -> String {
    format!("wait-cost:{task}:{i}")
}

/// The keys the deletes remove, replicated before the row starts.
/// `replicated`: wait until the replica has them.
async fn fill(server: &RedisServer, tasks: usize, per_task: usize, value: &str, replicated: bool) {
    let mut conn = server
        .client()
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    for task in 0..tasks {
        let mut pipe = redis::pipe();
        for i in 0..per_task {
            pipe.cmd("SET").arg(key(task, i)).arg(value).ignore();
        }
        let _: () = pipe.query_async(&mut conn).await.expect("fill");
    }
    if !replicated {
        return;
    }
    loop {
        let acked: i64 = redis::cmd("WAIT")
            .arg(1)
            .arg(100)
            .query_async(&mut conn)
            .await
            .expect("WAIT");
        if acked >= 1 {
            break;
        }
    }
}

async fn run(server: &RedisServer, mode: Mode, tasks: usize, per_task: usize, value: &str) {
    let shared = server
        .client()
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let mut handles = Vec::new();
    for task in 0..tasks {
        let client = server.client();
        let value = value.to_owned();
        let shared = shared.clone();
        handles.push(tokio::spawn(async move {
            let mut conn = if mode.shared {
                shared
            } else {
                client
                    .get_multiplexed_async_connection()
                    .await
                    .expect("connect")
            };
            for first in (0..per_task).step_by(mode.batch) {
                let mut pipe = redis::pipe();
                for i in first..(first + mode.batch).min(per_task) {
                    if mode.delete {
                        pipe.cmd("DEL").arg(key(task, i));
                    } else {
                        pipe.cmd("SET")
                            .arg(key(task, i))
                            .arg(&value)
                            .arg("PX")
                            .arg(7_200_000);
                    }
                }
                if mode.wait {
                    pipe.cmd("WAIT").arg(1).arg(250);
                }
                let _: redis::Value = pipe.query_async(&mut conn).await.expect("request");
            }
        }));
    }
    for handle in handles {
        handle.await.expect("task");
    }
}
