//! The measuring loop shared by every table: `tasks` concurrent tokio tasks run one operation
//! back to back for a window; each operation's latency goes into an HDR histogram.
//!
//! A cell (one operation at one task count) measures every contender in the same process,
//! on the same runtime: a warm-up window each, then `rounds` windows each with the order
//! rotated every round, so drift (CPU frequency, other processes on the machine, allocator
//! warm-up) hits every contender alike. Throughput is the median over rounds; ratios are the
//! median of the per-round ratios; latency percentiles come from all rounds merged.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// A boxed future, as a [`Contender`]'s window and hooks return.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

type Window = Arc<dyn Fn(usize, Duration) -> BoxFuture<Sample> + Send + Sync>;
type Hook = Arc<dyn Fn() -> BoxFuture<()> + Send + Sync>;
type Probe = Arc<dyn Fn() -> BoxFuture<f64> + Send + Sync>;

/// How long to measure: per contender and cell, one warm-up window then `rounds` windows.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// The warm-up window (not recorded).
    pub warmup: Duration,
    /// One measured window.
    pub window: Duration,
    /// Measured windows per contender.
    pub rounds: usize,
}

/// Tasks yield to the scheduler every this many operations: operations that complete without
/// waiting (in-memory stores) would otherwise keep their worker thread for the whole window
/// and the other tasks would never start.
const YIELD_EVERY: u64 = 32;

/// One window of one contender.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Operations completed.
    pub ops: u64,
    /// Wall time from the first task's start to the last task's end.
    pub elapsed: Duration,
    /// Per-operation latency in nanoseconds.
    pub latency: Histogram<u64>,
}

impl Sample {
    /// Operations per second.
    pub fn rate(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
    }
}

fn histogram() -> Histogram<u64> {
    // 1 ns to 100 s at 3 significant figures.
    Histogram::new_with_bounds(1, 100_000_000_000, 3).expect("histogram bounds")
}

/// Runs `op(task, i)` on `tasks` tasks for `duration`. `op` must not depend on the other
/// tasks' keys: each task works on its own sessions, so nothing contends but the store itself.
pub async fn window<F, Fut>(op: Arc<F>, tasks: usize, duration: Duration) -> Sample
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let started = Instant::now();
    let deadline = started + duration;
    let handles: Vec<_> = (0..tasks)
        .map(|task| {
            let op = op.clone();
            tokio::spawn(async move {
                let mut latency = histogram();
                let mut i = 0u64;
                // One clock read per operation: the end of one is the start of the next.
                let mut last = Instant::now();
                loop {
                    op(task, i).await;
                    let now = Instant::now();
                    latency.saturating_record(nanos(now - last));
                    i += 1;
                    if now >= deadline {
                        break;
                    }
                    if i % YIELD_EVERY == 0 {
                        tokio::task::yield_now().await;
                        last = Instant::now();
                    } else {
                        last = now;
                    }
                }
                (i, latency)
            })
        })
        .collect();
    let mut sample = Sample {
        ops: 0,
        elapsed: Duration::ZERO,
        latency: histogram(),
    };
    for handle in handles {
        let (ops, latency) = handle.await.expect("a bench task panicked");
        sample.ops += ops;
        sample.latency.add(&latency).expect("same histogram bounds");
    }
    sample.elapsed = started.elapsed();
    sample
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// One store (or baseline) under test: its name and how to run a window of its operation.
#[derive(Clone)]
pub struct Contender {
    /// The name in the tables.
    pub name: &'static str,
    run: Window,
    before_window: Option<Hook>,
    after_window: Option<Hook>,
    server_cpu: Option<Probe>,
}

impl std::fmt::Debug for Contender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Contender")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Contender {
    /// A contender running `op(task, i)`; kept generic down to the loop so the cheapest
    /// in-memory operations pay no boxing the store itself does not.
    pub fn new<F, Fut>(name: &'static str, op: F) -> Self
    where
        F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let op = Arc::new(op);
        Contender {
            name,
            run: Arc::new(move |tasks, duration| Box::pin(window(op.clone(), tasks, duration))),
            before_window: None,
            after_window: None,
            server_cpu: None,
        }
    }

    /// Reads the server's CPU seconds so far with `probe` (e.g. `INFO cpu`) right before and
    /// after every measured window, so the cell reports the server's CPU time per operation
    /// ([`Figures::server_us_per_op`]).
    pub fn server_cpu<P>(mut self, probe: P) -> Self
    where
        P: Fn() -> BoxFuture<f64> + Send + Sync + 'static,
    {
        self.server_cpu = Some(Arc::new(probe));
        self
    }

    /// Runs `hook` before every window, outside the measurement (e.g. reading the servers'
    /// CPU time, to be compared with what it is after the window).
    pub fn before_window<H>(mut self, hook: H) -> Self
    where
        H: Fn() -> BoxFuture<()> + Send + Sync + 'static,
    {
        self.before_window = Some(Arc::new(hook));
        self
    }

    /// Runs `hook` after every window, outside the measurement (e.g. deleting what a
    /// `create` window wrote, so the server does not grow from one window to the next).
    pub fn after_window<H>(mut self, hook: H) -> Self
    where
        H: Fn() -> BoxFuture<()> + Send + Sync + 'static,
    {
        self.after_window = Some(Arc::new(hook));
        self
    }

    /// One window, and the server's CPU seconds during it when there is a probe.
    async fn run(&self, tasks: usize, duration: Duration) -> (Sample, Option<f64>) {
        if let Some(hook) = &self.before_window {
            hook().await;
        }
        let before = match &self.server_cpu {
            Some(probe) => Some(probe().await),
            None => None,
        };
        let sample = (self.run)(tasks, duration).await;
        let cpu = match (&self.server_cpu, before) {
            (Some(probe), Some(before)) => Some(probe().await - before),
            _ => None,
        };
        if let Some(hook) = &self.after_window {
            hook().await;
        }
        (sample, cpu)
    }
}

/// One contender's figures in one cell.
#[derive(Debug, Clone)]
pub struct Figures {
    /// The contender's name.
    pub name: &'static str,
    /// Median operations per second over the rounds.
    pub ops_per_sec: f64,
    /// Median over rounds of (this contender's ops/s ÷ the baseline's in the same round).
    pub ratio: f64,
    /// Median latency (ns), all rounds merged.
    pub p50_ns: u64,
    /// 99th percentile latency (ns), all rounds merged.
    pub p99_ns: u64,
    /// Operations per second in each round, in round order (for ratios to any contender).
    pub rates: Vec<f64>,
    /// The server's CPU µs per operation over all rounds, for a contender with a
    /// [`server_cpu`](Contender::server_cpu) probe.
    pub server_us_per_op: Option<f64>,
}

impl Figures {
    /// Median over rounds of (this contender's ops/s ÷ `base`'s in the same round), as
    /// [`ratio`](Self::ratio) is to the cell's baseline.
    pub fn ratio_to(&self, base: &Figures) -> f64 {
        let ratios: Vec<f64> = self
            .rates
            .iter()
            .zip(&base.rates)
            .map(|(mine, base)| mine / base)
            .collect();
        median(&ratios)
    }
}

/// Measures every contender at `tasks` tasks; `contenders[0]` is the baseline the ratios
/// divide by.
pub async fn cell(contenders: &[Contender], tasks: usize, plan: Plan) -> Vec<Figures> {
    for c in contenders {
        c.run(tasks, plan.warmup).await;
    }
    let n = contenders.len();
    let mut rates = vec![Vec::new(); n];
    let mut latency: Vec<Histogram<u64>> = (0..n).map(|_| histogram()).collect();
    // Server CPU seconds and operations over the measured windows, per contender.
    let mut cpu = vec![(0.0, 0u64); n];
    for round in 0..plan.rounds.max(1) {
        for k in 0..n {
            let which = (round + k) % n;
            let (sample, seconds) = contenders[which].run(tasks, plan.window).await;
            rates[which].push(sample.rate());
            latency[which]
                .add(&sample.latency)
                .expect("same histogram bounds");
            if let Some(seconds) = seconds {
                cpu[which].0 += seconds;
                cpu[which].1 += sample.ops;
            }
        }
    }
    let mut figures: Vec<Figures> = contenders
        .iter()
        .enumerate()
        .map(|(i, c)| Figures {
            name: c.name,
            ops_per_sec: median(&rates[i]),
            ratio: 0.0,
            p50_ns: latency[i].value_at_quantile(0.50),
            p99_ns: latency[i].value_at_quantile(0.99),
            rates: std::mem::take(&mut rates[i]),
            server_us_per_op: c
                .server_cpu
                .is_some()
                .then(|| cpu[i].0 * 1e6 / cpu[i].1.max(1) as f64),
        })
        .collect();
    let base = figures[0].clone();
    for f in &mut figures {
        f.ratio = f.ratio_to(&base);
    }
    figures
}

/// The median (mean of the middle two for an even count); 0 for none.
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
    }

    #[test]
    fn a_window_counts_every_operation_and_records_its_latency() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let sample = rt.block_on(window(
            Arc::new(|_, _| async { tokio::time::sleep(Duration::from_millis(1)).await }),
            4,
            Duration::from_millis(50),
        ));
        assert!(sample.ops >= 4, "every task ran at least once");
        assert_eq!(sample.latency.len(), sample.ops);
        assert!(
            sample.latency.value_at_quantile(0.5) >= 1_000_000,
            "slept 1 ms each"
        );
    }
}
