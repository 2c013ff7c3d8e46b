//! `session-bench`: our stores against the ones users would pick instead, side by side in one
//! run on one machine and one Redis server, each figure also as a ratio to a raw baseline
//! measured in the same run.
//!
//! ```sh
//! cargo run --release -p session-bench -- --quick            # a few minutes
//! cargo run --release -p session-bench -- --write-doc docs/BENCHMARKS.md
//! cargo run --release -p session-bench -- --failover 5 --write-doc docs/BENCHMARKS.md
//! ```
//!
//! Tables: in-process stores ([`memory`]), Redis stores ([`redis`], [`redis_ops`]),
//! `count()` against a `SCAN` count ([`count`]), Redis memory per session ([`memory_usage`]),
//! our Redis Cluster store against one Redis server ([`cluster`]), and, as a separate mode,
//! the Sentinel failover window ([`failover`]). `--write-doc` replaces
//! the marked generated sections of a markdown file and leaves the prose around them alone.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};

mod cluster;
mod count;
mod driver;
mod failover;
mod goals;
mod machine;
mod memory;
mod memory_usage;
mod redis;
mod redis_ops;
mod report;
mod seed;

use driver::Plan;
use machine::Machine;

/// Benchmarks of the session stores against the ones users would pick instead.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// A short run (a few minutes): shorter windows, fewer rounds, `count()` at 10k and 100k
    /// sessions only (100k on the cluster).
    #[arg(long)]
    quick: bool,
    /// Write the generated sections into this markdown file (e.g. docs/BENCHMARKS.md),
    /// replacing only the text between their `session-bench:begin/end` markers.
    #[arg(long, value_name = "PATH")]
    write_doc: Option<PathBuf>,
    /// Instead of the tables: run the Sentinel failover tests N times and report the medians
    /// of the unavailability window against Sentinel's promotion time.
    #[arg(long, value_name = "N")]
    failover: Option<usize>,
    /// Only these tables (comma-separated); all by default.
    #[arg(long, value_delimiter = ',', value_name = "TABLE")]
    only: Vec<Table>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Table {
    Memory,
    Redis,
    Count,
    Usage,
    Cluster,
}

/// Durations and sizes of one mode.
#[derive(Debug, Clone, Copy)]
struct Settings {
    memory: Plan,
    redis: Plan,
    count_sizes: &'static [usize],
    count_calls: usize,
    scan_calls: usize,
    usage_sessions: usize,
    cluster_count_sizes: &'static [usize],
}

const QUICK: Settings = Settings {
    memory: Plan {
        warmup: Duration::from_millis(100),
        window: Duration::from_millis(300),
        rounds: 3,
    },
    redis: Plan {
        warmup: Duration::from_millis(150),
        window: Duration::from_millis(400),
        rounds: 3,
    },
    count_sizes: &[10_000, 100_000],
    count_calls: 31,
    scan_calls: 3,
    usage_sessions: 5_000,
    cluster_count_sizes: &[100_000],
};

const FULL: Settings = Settings {
    memory: Plan {
        warmup: Duration::from_millis(500),
        window: Duration::from_millis(1000),
        rounds: 5,
    },
    redis: Plan {
        warmup: Duration::from_millis(500),
        window: Duration::from_millis(1200),
        rounds: 5,
    },
    count_sizes: &[10_000, 100_000, 1_000_000],
    count_calls: 101,
    scan_calls: 5,
    usage_sessions: 20_000,
    cluster_count_sizes: &[100_000, 1_000_000],
};

fn utc_now() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

fn command_line() -> String {
    let args: Vec<String> = std::env::args().skip(1).collect();
    format!("cargo run --release -p session-bench -- {}", args.join(" "))
        .trim_end()
        .to_owned()
}

fn plan_text(p: Plan) -> String {
    format!(
        "warm-up {} ms, then {} rounds of {} ms per store, order rotated each round",
        p.warmup.as_millis(),
        p.rounds,
        p.window.as_millis()
    )
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn main() {
    let args = Args::parse();
    let started = Instant::now();
    let mut machine = Machine::detect();
    let mut sections: Vec<(&str, String)> = Vec::new();

    if let Some(runs) = args.failover {
        let result = failover::run(runs.max(1));
        sections.push((
            "failover",
            format!(
                "Measured {} with `{}` on: {}.\n\n{}",
                utc_now(),
                command_line(),
                machine.line(),
                report::failover_table(&result)
            ),
        ));
    } else {
        sections = tables(&args, &mut machine, started);
    }

    for (name, body) in &sections {
        println!("## {name}\n\n{body}");
    }
    if let Some(path) = &args.write_doc {
        match report::write_doc(path, &sections) {
            Ok(()) => eprintln!("wrote {}", path.display()),
            Err(e) => {
                eprintln!("cannot write {}: {e}", path.display());
                std::process::exit(1);
            }
        }
    }
    eprintln!("done in {:.0} s", started.elapsed().as_secs_f64());
}

fn tables(args: &Args, machine: &mut Machine, started: Instant) -> Vec<(&'static str, String)> {
    let settings = if args.quick { QUICK } else { FULL };
    let wanted = |t: Table| args.only.is_empty() || args.only.contains(&t);
    let rt = runtime();
    let mut sections = Vec::new();
    let mut checks = Vec::new();

    if wanted(Table::Memory) {
        let rows = rt.block_on(memory::run(settings.memory));
        checks.extend(goals::memory(&rows));
        sections.push((
            "memory",
            format!(
                "{}.\n\n{}",
                plan_text(settings.memory),
                report::cells_table(&rows, "raw DashMap")
            ),
        ));
    }
    if wanted(Table::Redis) {
        let server = redis_harness::RedisServer::start();
        machine.redis_from(&mut server.connection());
        let (rows, stats) = rt.block_on(redis::run(&server, settings.redis));
        checks.extend(goals::redis(&rows));
        sections.push((
            "redis",
            format!(
                "{}.\n\n{}\nLoad against both raw baselines (ratios: medians of the per-round \
                 ratios), and the server's CPU time per load (`INFO cpu` before and after every \
                 measured window):\n\n{}\nServer time per command over the whole table \
                 (`INFO commandstats`; GET and SET count every store's, including those our scripts run; EVALSHA is \
                 our writes alone (`ActixStore`'s included), the commands inside them included; \
                 ZADD and PEXPIRE run only inside our scripts, PTTL and ZSCORE in our loads \
                 and inside our scripts):\n\n{stats}",
                plan_text(settings.redis),
                report::cells_table(&rows, "raw"),
                report::load_table(&rows)
            ),
        ));
    }
    if wanted(Table::Count) {
        // On a worker thread, like the tables' tasks: `block_on`'s own thread would add a
        // cross-thread wake-up to every timed round trip.
        let rows = rt
            .block_on(rt.spawn(count::run(
                settings.count_sizes,
                settings.count_calls,
                settings.scan_calls,
            )))
            .expect("the count table");
        checks.extend(goals::count(&rows));
        sections.push(("count", report::count_table(&rows, args.quick)));
    }
    if wanted(Table::Usage) {
        let rows = rt.block_on(memory_usage::run(settings.usage_sessions));
        sections.push(("usage", report::usage_table(&rows, settings.usage_sessions)));
    }
    if wanted(Table::Cluster) {
        // On this (the main) thread: the servers die with the thread that started them.
        let result = cluster::run(
            &rt,
            settings.redis,
            settings.cluster_count_sizes,
            settings.count_calls,
            settings.scan_calls,
        );
        checks.extend(goals::cluster(&result));
        sections.push((
            "cluster",
            report::cluster_table(&result, &plan_text(settings.redis), args.quick),
        ));
    }

    let run = format!(
        "Measured {} with `{}` ({} mode, {:.0} s) on: {}; {} at the end.\n\n\
         Tokio multi-thread runtime with 2 workers; every Redis figure but the cluster \
         table's on one `redis-server` the tool starts (redis-harness), client and server on \
         the same cores; the cluster table's on a 3-primary, 3-replica cluster it starts \
         too.\n\n{}",
        utc_now(),
        command_line(),
        if args.quick { "quick" } else { "full" },
        started.elapsed().as_secs_f64(),
        machine.line(),
        machine::load_average(),
        goals::table(&checks)
    );
    if args.only.is_empty() {
        sections.insert(0, ("run", run));
    } else {
        // A partial run leaves the run section (and its goals) to the full run it describes,
        // and says so in every table it rewrites.
        let note = format!(
            "Re-measured alone {} with `{}` on: {}. The run section above describes the \
             other tables' run; its goals were not re-checked.\n\n{}",
            utc_now(),
            command_line(),
            machine.line(),
            goals::table(&checks)
        );
        for (_, body) in &mut sections {
            *body = format!("{note}\n{body}");
        }
        eprintln!("{run}");
    }
    sections
}
