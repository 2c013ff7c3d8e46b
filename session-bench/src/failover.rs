//! `--failover N`: the Sentinel store's unavailability window against Sentinel's own promotion
//! time, from the existing measurement in `session-sentinel/tests/failover.rs` (one test per
//! trigger: master SIGKILLed, `SENTINEL FAILOVER`), run N times; medians reported.
//!
//! Each run is `cargo test --release -p session-sentinel --test failover -- --nocapture
//! --test-threads=1` in the workspace, with this process's environment (so the same
//! `CARGO_TARGET_DIR`); the test prints, per trigger, a line like
//! `[Kill] unavailability window W ms (…); Sentinel promotion P ms (…); window - promotion = D ms; …`.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use crate::driver::median;

/// The command each run executes (for the report).
pub const COMMAND: &str =
    "cargo test --release -p session-sentinel --test failover -- --nocapture --test-threads=1";

/// One trigger's figures over the runs.
#[derive(Debug, Clone, Default)]
pub struct FailoverRow {
    /// `Kill` or `SentinelFailover`.
    pub trigger: String,
    /// Unavailability windows (ms), one per run.
    pub window_ms: Vec<f64>,
    /// Sentinel promotion times (ms).
    pub promotion_ms: Vec<f64>,
    /// window - promotion (ms).
    pub excess_ms: Vec<f64>,
}

/// All runs.
#[derive(Debug, Clone, Default)]
pub struct FailoverResult {
    /// Runs asked for.
    pub runs: usize,
    /// Runs whose test command failed (their printed figures still count).
    pub failed_runs: usize,
    /// Per trigger.
    pub rows: Vec<FailoverRow>,
}

impl FailoverRow {
    /// Medians: (window, promotion, window - promotion).
    pub fn medians(&self) -> (f64, f64, f64) {
        (
            median(&self.window_ms),
            median(&self.promotion_ms),
            median(&self.excess_ms),
        )
    }
}

/// The integer after `marker` in `line`.
fn number_after(line: &str, marker: &str) -> Option<f64> {
    let rest = &line[line.find(marker)? + marker.len()..];
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '-'))
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// Adds the figures of every matching line of `output` to `rows`.
fn parse(output: &str, rows: &mut BTreeMap<String, FailoverRow>) {
    for line in output.lines() {
        // libtest prints `test name ... ` before the test's own output on the same line.
        let Some(at) = line.find("] unavailability window ") else {
            continue;
        };
        let Some(open) = line[..at].rfind('[') else {
            continue;
        };
        let trigger = &line[open + 1..at];
        let figures = (
            number_after(line, "unavailability window "),
            number_after(line, "Sentinel promotion "),
            number_after(line, "window - promotion = "),
        );
        if let (Some(w), Some(p), Some(d)) = figures {
            let row = rows.entry(trigger.to_owned()).or_default();
            row.trigger = trigger.to_owned();
            row.window_ms.push(w);
            row.promotion_ms.push(p);
            row.excess_ms.push(d);
        }
    }
}

/// Runs the failover tests `runs` times.
pub fn run(runs: usize) -> FailoverResult {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut rows = BTreeMap::new();
    let mut failed_runs = 0;
    for run in 1..=runs {
        eprintln!("failover run {run}/{runs}: {COMMAND}");
        let output = Command::new(&cargo)
            .current_dir(root)
            .args([
                "test",
                "--release",
                "-p",
                "session-sentinel",
                "--test",
                "failover",
            ])
            .args(["--", "--nocapture", "--test-threads=1"])
            .output()
            .expect("run cargo test");
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            failed_runs += 1;
            eprintln!(
                "failover run {run} failed ({}):\n{}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let before: usize = rows.values().map(|r: &FailoverRow| r.excess_ms.len()).sum();
        parse(&stdout, &mut rows);
        if rows.values().map(|r| r.excess_ms.len()).sum::<usize>() == before {
            eprintln!("failover run {run}: no figures found in its output:\n{stdout}");
        }
    }
    FailoverResult {
        runs,
        failed_runs,
        rows: rows.into_values().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_tests_figures() {
        let out = "running 2 tests\n\
            test master_killed_under_load ... [Kill] unavailability window 2310 ms (last success 3 ms, first success 2313 ms after the trigger); \
            Sentinel promotion 2204 ms (first GET-MASTER-ADDR-BY-NAME change), +switch-master Some(2204) ms; \
            window - promotion = 106 ms; first success on the new master Some(2313) ms after the trigger\n\
            [Kill] 5000 operations, errors {}, reads that missed an acknowledged write 0\n\
            [SentinelFailover] unavailability window 40 ms (…); Sentinel promotion 60 ms (…), +switch-master None ms; \
            window - promotion = -20 ms; …\n";
        let mut rows = BTreeMap::new();
        parse(out, &mut rows);
        let kill = &rows["Kill"];
        assert_eq!(kill.window_ms, vec![2310.0]);
        assert_eq!(kill.promotion_ms, vec![2204.0]);
        assert_eq!(kill.excess_ms, vec![106.0]);
        assert_eq!(rows["SentinelFailover"].excess_ms, vec![-20.0]);
        assert_eq!(rows.len(), 2);
    }
}
