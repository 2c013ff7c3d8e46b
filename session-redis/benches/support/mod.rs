//! Measurement helpers of the Redis benchmark: timed concurrent loops, the server's CPU time
//! from `INFO cpu` around each loop, and the result table.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::aio::ConnectionManager;

/// One operation: `(task, i)` → a future doing it once. Task `t` only touches its own keys.
pub type Op = Arc<dyn Fn(usize, u64) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// Wraps an async closure as an [`Op`].
pub fn op<F, Fut>(f: F) -> Op
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    Arc::new(move |task, i| Box::pin(f(task, i)))
}

/// Reads server-side figures over its own connection, never the one under measurement.
#[derive(Clone)]
pub struct Probe {
    con: ConnectionManager,
}

impl std::fmt::Debug for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Probe")
    }
}

impl Probe {
    pub async fn new(client: redis::Client) -> Self {
        Probe {
            con: ConnectionManager::new(client)
                .await
                .expect("probe connection"),
        }
    }

    /// `INFO <section>` as text.
    pub async fn info(&self, section: &str) -> String {
        redis::cmd("INFO")
            .arg(section)
            .query_async(&mut self.con.clone())
            .await
            .expect("INFO")
    }

    /// The server's CPU seconds so far: `used_cpu_sys + used_cpu_user` (all its threads).
    pub async fn cpu_secs(&self) -> f64 {
        let info = self.info("cpu").await;
        field::<f64>(&info, "used_cpu_sys") + field::<f64>(&info, "used_cpu_user")
    }
}

/// The value of `name:` in an `INFO` reply.
pub fn field<T: std::str::FromStr>(info: &str, name: &str) -> T {
    info.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("INFO has no {name}"))
}

/// What one or more measured intervals did.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sample {
    pub ops: u64,
    pub secs: f64,
    pub server_cpu_secs: f64,
}

impl Sample {
    pub fn ops_per_sec(&self) -> f64 {
        self.ops as f64 / self.secs
    }

    /// Server CPU microseconds per operation.
    pub fn server_us_per_op(&self) -> f64 {
        self.server_cpu_secs * 1e6 / self.ops as f64
    }

    pub fn add(&mut self, other: Sample) {
        self.ops += other.ops;
        self.secs += other.secs;
        self.server_cpu_secs += other.server_cpu_secs;
    }
}

/// Runs `op` on `tasks` concurrent tasks until `duration` has passed or, with a `budget`,
/// that many operations were started; reads the server's CPU time just before and after.
pub async fn measure(
    probe: &Probe,
    tasks: usize,
    duration: Duration,
    budget: Option<u64>,
    op: &Op,
) -> Sample {
    let budget = budget.unwrap_or(u64::MAX);
    let (claimed, done) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let cpu_before = probe.cpu_secs().await;
    let started = Instant::now();
    let deadline = started + duration;
    let handles: Vec<_> = (0..tasks)
        .map(|task| {
            let (op, claimed, done) = (op.clone(), claimed.clone(), done.clone());
            tokio::spawn(async move {
                let mut i = 0u64;
                while Instant::now() < deadline && claimed.fetch_add(1, Ordering::Relaxed) < budget
                {
                    op(task, i).await;
                    i += 1;
                }
                done.fetch_add(i, Ordering::Relaxed);
            })
        })
        .collect();
    for h in handles {
        h.await.expect("bench task");
    }
    let secs = started.elapsed().as_secs_f64();
    let cpu_after = probe.cpu_secs().await;
    Sample {
        ops: done.load(Ordering::Relaxed),
        secs,
        server_cpu_secs: cpu_after - cpu_before,
    }
}

/// One line of the table.
#[derive(Debug, Clone)]
pub struct Row {
    pub op: &'static str,
    pub tasks: usize,
    pub store: Sample,
    pub raw: Sample,
    pub raw_is: &'static str,
}

pub fn print_header() {
    println!(
        "{:<10} {:>5} {:>11} {:>11} {:>6} | {:>9} {:>9} {:>6} | raw is",
        "op", "tasks", "store op/s", "raw op/s", "ratio", "store µs", "raw µs", "CPU x"
    );
    println!("{}", "-".repeat(98));
}

pub fn print_row(row: &Row) {
    let (s, r) = (&row.store, &row.raw);
    println!(
        "{:<10} {:>5} {:>11.0} {:>11.0} {:>5.2}x | {:>9.1} {:>9.1} {:>5.2}x | {}",
        row.op,
        row.tasks,
        s.ops_per_sec(),
        r.ops_per_sec(),
        s.ops_per_sec() / r.ops_per_sec(),
        s.server_us_per_op(),
        r.server_us_per_op(),
        s.server_us_per_op() / r.server_us_per_op(),
        row.raw_is
    );
}

/// How far one Redis thread carries each store operation: `1 / server CPU per op`.
pub fn print_ceilings(rows: &[Row], tasks: usize) {
    println!();
    println!(
        "server CPU per op at {tasks} task(s), and the ops/s one fully busy Redis thread \
         would carry at that cost{}:",
        if tasks == 1 {
            " (one request per read: syscalls dominate)"
        } else {
            ""
        }
    );
    let mut seen: Vec<&str> = Vec::new();
    for row in rows.iter().filter(|r| r.tasks == tasks) {
        if seen.contains(&row.op) {
            continue; // one line per store op: its first raw comparison
        }
        seen.push(row.op);
        let (s, r) = (row.store.server_us_per_op(), row.raw.server_us_per_op());
        println!(
            "  {:<10} {:>6.1} µs/op → {:>8.0} ops/s per Redis core  (raw {}: {:.1} µs → {:.0})",
            row.op,
            s,
            1e6 / s,
            row.raw_is,
            r,
            1e6 / r
        );
    }
}
