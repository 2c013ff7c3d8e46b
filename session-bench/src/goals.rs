//! The goals, checked against the figures of the same run.

use std::fmt::Write as _;
use std::time::Duration;

use crate::cluster::{near_a_third, ClusterReport, Share};
use crate::count::CountRow;
use crate::redis_ops::{ACTIX, OURS_ACTIX, RAW_GET_DECODE};
use crate::report::{latency, CellRow};

/// One goal check.
#[derive(Debug, Clone)]
pub struct Check {
    /// What is checked.
    pub goal: String,
    /// The figure, e.g. `1.23× tower-sessions-redis-store`.
    pub figure: String,
    /// Met or not; `None` when not measured.
    pub met: Option<bool>,
}

fn cell<'a>(rows: &'a [CellRow], op: &str, tasks: usize) -> Option<&'a CellRow> {
    rows.iter().find(|r| r.op == op && r.tasks == tasks)
}

/// Our throughput over `other`'s in `op` at `tasks`.
fn ahead(rows: &[CellRow], op: &str, tasks: usize, other: &str, target: f64) -> Check {
    versus(rows, op, tasks, "ours", other, target)
}

/// `mine`'s throughput over `other`'s in `op` at `tasks` (both measured in the same cell),
/// met when above `target`.
fn versus(rows: &[CellRow], op: &str, tasks: usize, mine: &str, other: &str, target: f64) -> Check {
    let ratio = cell(rows, op, tasks).and_then(|r| {
        let ours = r.of(mine)?.ops_per_sec;
        Some(ours / r.of(other)?.ops_per_sec)
    });
    Check {
        goal: format!("{op} at {tasks} tasks: {mine} ahead of {other}"),
        figure: ratio.map_or("not measured".into(), |x| {
            format!("{x:.2}× ({:+.0}%)", (x - 1.0) * 100.0)
        }),
        met: ratio.map(|x| x > target),
    }
}

/// The Redis goals: ahead of both competitors on load and save at 16 and 64 tasks; through
/// actix-session's trait (`ActixStore` over ours against actix-session's `RedisSessionStore`,
/// the same calls), ahead on `load` and `update` at 16 and 64 tasks; load at least 0.9× raw
/// `GET` + decode at every task count, with at most 1.25× a raw `GET`'s server CPU per load.
pub fn redis(rows: &[CellRow]) -> Vec<Check> {
    let mut checks = Vec::new();
    for op in ["load", "save"] {
        for tasks in [16, 64] {
            for other in ["tower-sessions-redis-store", ACTIX] {
                checks.push(ahead(rows, op, tasks, other, 1.0));
            }
        }
    }
    for (op, call) in [("load", "load"), ("save", "update")] {
        for tasks in [16, 64] {
            let mut check = versus(rows, op, tasks, OURS_ACTIX, ACTIX, 1.0);
            check.goal = format!(
                "actix {call} at {tasks} tasks: {OURS_ACTIX} ahead of {ACTIX}'s RedisSessionStore"
            );
            checks.push(check);
        }
    }
    for tasks in crate::redis::TASKS {
        let load = cell(rows, "load", tasks);
        let ratio = load.and_then(|r| Some(r.of("ours")?.ratio_to(r.of(RAW_GET_DECODE)?)));
        checks.push(Check {
            goal: format!("load at {tasks} tasks: ours ≥ 0.9× {RAW_GET_DECODE}"),
            figure: ratio.map_or("not measured".into(), |x| {
                format!("{x:.2}× {RAW_GET_DECODE}")
            }),
            met: ratio.map(|x| x >= 0.9),
        });
    }
    for tasks in crate::redis::TASKS {
        let cpu = cell(rows, "load", tasks).and_then(|r| {
            let ours = r.of("ours")?.server_us_per_op?;
            Some((ours, r.of("raw GET")?.server_us_per_op?))
        });
        checks.push(Check {
            goal: format!("load at {tasks} tasks: server CPU per op ≤ 1.25× raw GET's"),
            figure: cpu.map_or("not measured".into(), |(ours, raw)| {
                format!("{:.2}× ({ours:.2} µs against {raw:.2} µs)", ours / raw)
            }),
            met: cpu.map(|(ours, raw)| ours <= 1.25 * raw),
        });
    }
    checks
}

/// The memory goals: ahead of tower-sessions' `MemoryStore` at 2 and 16 tasks; `put` at
/// least even with its `save` at 1 task and at least twice as fast at 16.
pub fn memory(rows: &[CellRow]) -> Vec<Check> {
    let mut checks = Vec::new();
    for op in ["get", "set", "put", "update"] {
        for tasks in [2, 16] {
            checks.push(ahead(rows, op, tasks, "tower-sessions", 1.0));
        }
    }
    checks.push(at_least(rows, "put", 1, 1.0));
    checks.push(at_least(rows, "put", 16, 2.0));
    checks
}

/// Our `op` at `tasks` against tower-sessions' `save`: at least `times` as fast.
fn at_least(rows: &[CellRow], op: &str, tasks: usize, times: f64) -> Check {
    let mut check = ahead(rows, op, tasks, "tower-sessions", times);
    check.goal = format!("{op} at {tasks} task(s): ours ≥ {times}× tower-sessions' save");
    check.met = ratio_of(rows, op, tasks).map(|x| x >= times);
    check
}

fn ratio_of(rows: &[CellRow], op: &str, tasks: usize) -> Option<f64> {
    let r = cell(rows, op, tasks)?;
    Some(r.of("ours")?.ops_per_sec / r.of("tower-sessions")?.ops_per_sec)
}

/// The count goal: under 1 ms at 1M sessions (the largest size measured when not).
pub fn count(rows: &[CountRow]) -> Vec<Check> {
    let at_1m = rows.iter().find(|r| r.sessions == 1_000_000);
    let largest = rows.iter().max_by_key(|r| r.sessions);
    let limit = Duration::from_millis(1);
    match (at_1m, largest) {
        (Some(r), _) => vec![Check {
            goal: "count() at 1M sessions under 1 ms".into(),
            figure: format!(
                "{} (SCAN count: {})",
                latency(r.count_median.as_nanos() as u64),
                latency(r.scan_median.as_nanos() as u64)
            ),
            met: Some(r.count_median < limit),
        }],
        (None, Some(r)) => vec![Check {
            goal: format!(
                "count() at 1M sessions under 1 ms (not measured: largest size {})",
                r.sessions
            ),
            figure: format!(
                "{} at {} (SCAN count: {})",
                latency(r.count_median.as_nanos() as u64),
                r.sessions,
                latency(r.scan_median.as_nanos() as u64)
            ),
            met: None,
        }],
        (None, None) => Vec::new(),
    }
}

/// The checks as a markdown table.
pub fn table(checks: &[Check]) -> String {
    let mut out = String::from("| goal | figure (same run) | met |\n|---|---|---|\n");
    for c in checks {
        let met = match c.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "not measured",
        };
        let _ = writeln!(out, "| {} | {} | {met} |", c.goal, c.figure);
    }
    out
}

/// The cluster goals: `count()` at 1M sessions within 50 ms (the largest size measured when
/// not), and every primary's share of the session keys and of the expiry index entries within
/// ±10 % of a third.
pub fn cluster(report: &ClusterReport) -> Vec<Check> {
    let mut checks = Vec::new();
    let limit = Duration::from_millis(50);
    let figure = |r: &crate::cluster::CountRow| {
        format!(
            "{} at {} (SCAN count of every primary: {})",
            latency(r.count_median.as_nanos() as u64),
            r.sessions,
            latency(r.scan_median.as_nanos() as u64)
        )
    };
    let at_1m = report.counts.iter().find(|r| r.sessions == 1_000_000);
    match (at_1m, report.counts.iter().max_by_key(|r| r.sessions)) {
        (Some(r), _) => checks.push(Check {
            goal: "cluster count() at 1M sessions within 50 ms".into(),
            figure: figure(r),
            met: Some(r.count_median <= limit),
        }),
        (None, Some(r)) => checks.push(Check {
            goal: format!(
                "cluster count() at 1M sessions within 50 ms (not measured: largest size {})",
                r.sessions
            ),
            figure: figure(r),
            met: None,
        }),
        (None, None) => {}
    }
    if let Some(r) = report.counts.iter().max_by_key(|r| r.sessions) {
        for (what, of) in [
            ("session keys", (|s: &Share| s.keys) as fn(&Share) -> u64),
            ("expiry index entries", |s: &Share| s.entries),
        ] {
            let total: u64 = r.spread.iter().map(of).sum();
            let shares: Vec<String> = r
                .spread
                .iter()
                .map(|s| format!("{:.1} %", 100.0 * of(s) as f64 / total.max(1) as f64))
                .collect();
            checks.push(Check {
                goal: format!(
                    "cluster spread at {} sessions: each primary's share of the {what} within ±10 % of a third",
                    r.sessions
                ),
                figure: shares.join(", "),
                met: Some(r.spread.iter().all(|s| near_a_third(of(s), total))),
            });
        }
    }
    checks
}
