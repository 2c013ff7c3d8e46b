//! `sessionctl migrate` throughput on the existing service's own data (issue 13: ≥ 100,000
//! sessions/s between two servers with `--verify`), against a raw-copy baseline in the same run.
//!
//! ```text
//! cargo bench -p sessionctl --bench migrate                      # 200,000 sessions, 2 rounds
//! cargo bench -p sessionctl --bench migrate -- --quick           # 50,000 sessions, 1 round
//! cargo bench -p sessionctl --bench migrate -- --sessions 500000 # or MIGRATE_BENCH_SESSIONS
//! ```
//!
//! The source is seeded as the Python service writes: `SETEX session:{token} 7200 {json}`.
//! Each round runs the built `sessionctl --json migrate --verify` as a subprocess, then a raw
//! copy by this bench (SCAN + pipelined MGET/PTTL on a reader thread, pipelined
//! `SET key value PX pttl NX` on the target: no indexes, no parsing, no verify), flushing the
//! target before each run. Server CPU comes from `INFO cpu` before and after each run.

use std::process::Command;
use std::sync::mpsc::sync_channel;
use std::time::Instant;

use redis_harness::fixtures::existing_service_session;
use redis_harness::RedisServer;
use serde_json::Value;
use session_store::SessionId;

const TTL_SECONDS: u64 = 7200;
const PAGE: usize = 1000;
const USERS: usize = 50;

#[derive(Debug)]
struct Sample {
    run: String,
    rate: f64,
    /// Whole subprocess wall time, copy + verify (migrate only).
    wall: Option<f64>,
    target_us: f64,
    source_us: f64,
}

fn options() -> (usize, usize) {
    let mut quick = false;
    let mut sessions = std::env::var("MIGRATE_BENCH_SESSIONS")
        .ok()
        .map(|s| s.parse().expect("MIGRATE_BENCH_SESSIONS=N"));
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => quick = true,
            "--sessions" => {
                sessions = Some(
                    args.next()
                        .and_then(|n| n.parse().ok())
                        .expect("--sessions N"),
                )
            }
            _ => {} // `cargo bench` passes --bench; filters do not apply.
        }
    }
    let n = sessions.unwrap_or(if quick { 50_000 } else { 200_000 });
    (n, if quick { 1 } else { 2 })
}

fn query<T: redis::FromRedisValue>(server: &RedisServer, args: &[&str]) -> T {
    let mut cmd = redis::cmd(args[0]);
    cmd.arg(&args[1..]).query(&mut server.connection()).unwrap()
}

/// A field of `INFO section`.
fn info(server: &RedisServer, section: &str, field: &str) -> String {
    let info: String = query(server, &["INFO", section]);
    let line = info
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'));
    line.unwrap_or("?").trim().to_owned()
}

/// used_cpu_sys + used_cpu_user, in seconds.
fn cpu(server: &RedisServer) -> f64 {
    let field = |f| info(server, "cpu", f).parse::<f64>().unwrap();
    field("used_cpu_sys") + field("used_cpu_user")
}

fn dbsize(server: &RedisServer) -> usize {
    query(server, &["DBSIZE"])
}

/// `n` sessions as the existing service writes them; returns the mean value size in bytes.
fn seed(source: &RedisServer, n: usize) -> usize {
    let users: Vec<_> = (0..USERS)
        .map(|u| existing_service_session(&format!("sub-{u}")))
        .collect();
    let mut con = source.connection();
    let mut bytes = 0;
    for start in (0..n).step_by(PAGE) {
        let mut pipe = redis::pipe();
        for i in start..(start + PAGE).min(n) {
            let mut data = users[i % USERS].clone();
            // Python's time.time() float; serde_json prints the shortest round-trip form, as repr.
            data.insert(
                "created".into(),
                (1_795_926_903.302_439_5 + i as f64 * 0.001).into(),
            );
            data.insert(
                "csrf_token".into(),
                SessionId::generate().expose_token().into(),
            );
            let value = serde_json::to_string(&data).unwrap();
            bytes += value.len();
            pipe.cmd("SETEX")
                .arg(format!("session:{}", SessionId::generate().expose_token()))
                .arg(TTL_SECONDS)
                .arg(value)
                .ignore();
        }
        let () = pipe.query(&mut con).unwrap();
    }
    assert_eq!(dbsize(source), n, "token collision or lost write");
    bytes / n.max(1)
}

fn per_session_us(before: f64, after: f64, n: usize) -> f64 {
    (after - before) * 1e6 / n as f64
}

fn run_migrate(source: &RedisServer, target: &RedisServer, n: usize, round: usize) -> Sample {
    let () = query(target, &["FLUSHALL"]);
    let before = (cpu(source), cpu(target));
    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_sessionctl"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .args(["--json", "migrate", "--verify", "--from", &source.url()])
        .args(["--to", &target.url()])
        .output()
        .expect("sessionctl runs");
    let wall = started.elapsed().as_secs_f64();
    let after = (cpu(source), cpu(target));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let fail = |why: &str| -> ! {
        panic!(
            "migrate: {why} ({}):\nstdout: {stdout}\nstderr: {stderr}",
            output.status
        )
    };
    let summary: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|_| fail("not JSON"));
    let count = |v: &Value| v.as_u64().map(|c| c as usize);
    let verify = &summary["verify"];
    if !output.status.success()
        || count(&summary["copied"]) != Some(n)
        || count(&verify["checked"]) != Some(n)
        || count(&verify["mismatched"]) != Some(0)
    {
        fail(&format!(
            "want exit 0, copied = verify.checked = {n}, none mismatched"
        ));
    }
    Sample {
        run: format!("migrate #{round}"),
        rate: summary["sessions_per_second"]
            .as_f64()
            .unwrap_or_else(|| fail("no sessions_per_second")),
        wall: Some(wall),
        target_us: per_session_us(before.1, after.1, n),
        source_us: per_session_us(before.0, after.0, n),
    }
}

type Page = Vec<(String, Vec<u8>, i64)>;

/// Values and TTLs of `keys` in one round trip; the live ones.
fn read_page(src: &mut redis::Connection, keys: Vec<String>) -> Page {
    let mut pipe = redis::pipe();
    pipe.cmd("MGET").arg(&keys);
    for key in &keys {
        pipe.cmd("PTTL").arg(key);
    }
    let mut replies: Vec<redis::Value> = pipe.query(src).unwrap();
    let ttls: Vec<i64> =
        redis::from_redis_value(redis::Value::Array(replies.split_off(1))).unwrap();
    let values: Vec<Option<Vec<u8>>> = redis::from_redis_value(replies.remove(0)).unwrap();
    let page = keys.into_iter().zip(values).zip(ttls);
    page.filter_map(|((k, v), ttl)| Some((k, v?, ttl)).filter(|_| ttl > 0))
        .collect()
}

/// SCAN + one MGET/PTTL pipeline per page on a reader thread, a `SET NX PX` pipeline per page
/// on this one: the least a copy preserving value and TTL does.
fn run_raw(source: &RedisServer, target: &RedisServer, n: usize, round: usize) -> Sample {
    let () = query(target, &["FLUSHALL"]);
    let before = (cpu(source), cpu(target));
    let started = Instant::now();
    let (tx, rx) = sync_channel::<Page>(4);
    let mut src = source.connection();
    let mut dst = target.connection();
    let copied = std::thread::scope(|scope| {
        scope.spawn(move || {
            let mut cursor = 0u64;
            loop {
                let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg(("MATCH", "session:*", "COUNT", PAGE))
                    .query(&mut src)
                    .unwrap();
                if !keys.is_empty() && tx.send(read_page(&mut src, keys)).is_err() {
                    return;
                }
                if next == 0 {
                    return;
                }
                cursor = next;
            }
        });
        let mut copied = 0;
        for page in rx {
            let mut pipe = redis::pipe();
            for (key, value, ttl) in &page {
                pipe.cmd("SET").arg((key, value, "PX", ttl, "NX"));
            }
            let set: Vec<Option<String>> = pipe.query(&mut dst).unwrap();
            copied += set.iter().flatten().count();
        }
        copied
    });
    let elapsed = started.elapsed().as_secs_f64();
    let after = (cpu(source), cpu(target));
    assert_eq!(copied, n, "raw copy");
    assert_eq!(dbsize(target), n, "raw copy");
    Sample {
        run: format!("raw #{round}"),
        rate: n as f64 / elapsed,
        wall: None,
        target_us: per_session_us(before.1, after.1, n),
        source_us: per_session_us(before.0, after.0, n),
    }
}

/// The middle value, or the mean of the middle two.
fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    (xs[(xs.len() - 1) / 2] + xs[xs.len() / 2]) / 2.0
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn main() {
    let (n, rounds) = options();
    let nproc = std::thread::available_parallelism().map_or(0, |p| p.get());
    let load_start = loadavg();
    let source = RedisServer::start();
    let target = RedisServer::start();
    let version = info(&source, "server", "redis_version");

    let started = Instant::now();
    let size = seed(&source, n);
    println!(
        "seeded {n} sessions (SETEX session:{{token}} {TTL_SECONDS}, ~{size} B JSON) in {:.2}s",
        started.elapsed().as_secs_f64()
    );

    let mut samples = Vec::new();
    for round in 1..=rounds {
        samples.push(run_migrate(&source, &target, n, round));
        samples.push(run_raw(&source, &target, n, round));
    }
    let load_end = loadavg();

    let rates = |prefix: &str| -> Vec<f64> {
        let runs = samples.iter().filter(|s| s.run.starts_with(prefix));
        runs.map(|s| s.rate).collect()
    };
    let raw = median(rates("raw"));
    println!();
    println!(
        "{:<12} {:>12} {:>8} {:>11} {:>11} {:>10}",
        "run", "sessions/s", "vs raw", "tgt µs/sess", "src µs/sess", "wall s"
    );
    for s in &samples {
        let wall = s.wall.map_or("-".into(), |w| format!("{w:.2}"));
        println!(
            "{:<12} {:>12.0} {:>8.2} {:>11.2} {:>11.2} {:>10}",
            s.run,
            s.rate,
            s.rate / raw,
            s.target_us,
            s.source_us,
            wall
        );
    }
    let migrate = median(rates("migrate"));
    println!();
    println!("(µs/sess = server CPU µs per session, used_cpu_sys + used_cpu_user from INFO cpu;");
    println!(" migrate's sessions/s is its copy phase, its CPU and wall time include --verify)");
    println!(
        "median: migrate {migrate:.0} sessions/s, raw {raw:.0} sessions/s, migrate/raw {:.2}",
        migrate / raw
    );
    let verdict = if migrate >= 100_000.0 {
        "met"
    } else {
        "NOT met"
    };
    println!("issue 13 (≥ 100,000 sessions/s with --verify): {verdict}");
    println!(
        "machine: nproc {nproc}, loadavg {load_start} (start) / {load_end} (end), redis {version}, \
         {n} sessions, {rounds} round(s); a loaded machine lowers throughput"
    );
}
