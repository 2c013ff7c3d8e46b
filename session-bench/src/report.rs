//! Markdown tables of the figures, and writing them into marked sections of a document.

use std::fmt::Write as _;
use std::path::Path;

use crate::cluster::{near_a_third, ClusterReport};
use crate::count::CountRow;
use crate::driver::Figures;
use crate::failover::{FailoverResult, COMMAND as FAILOVER_COMMAND};
use crate::memory_usage::UsageRow;

/// One cell: an operation at a task count, every contender's figures (`figures[0]` the
/// baseline).
#[derive(Debug, Clone)]
pub struct CellRow {
    /// The operation.
    pub op: &'static str,
    /// Concurrent tasks.
    pub tasks: usize,
    /// Per contender, baseline first.
    pub figures: Vec<Figures>,
}

impl CellRow {
    /// One line for stderr while the run goes on.
    pub fn progress_line(&self) -> String {
        let mut line = format!("{} x{}:", self.op, self.tasks);
        for f in &self.figures {
            let _ = write!(
                line,
                "  {} {} ops/s ({:.2}x, p50 {}, p99 {})",
                f.name,
                ops(f.ops_per_sec),
                f.ratio,
                latency(f.p50_ns),
                latency(f.p99_ns)
            );
            if let Some(us) = f.server_us_per_op {
                let _ = write!(line, " [server {us:.2} µs/op]");
            }
        }
        line
    }

    /// The figures of the contender named `name`.
    pub fn of(&self, name: &str) -> Option<&Figures> {
        self.figures.iter().find(|f| f.name == name)
    }
}

/// Operations per second with thousands separators.
pub fn ops(rate: f64) -> String {
    let n = rate.round() as u64;
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A latency in ns, µs or ms.
pub fn latency(ns: u64) -> String {
    match ns {
        0..=999 => format!("{ns} ns"),
        1_000..=999_999 => format!("{:.1} µs", ns as f64 / 1e3),
        1_000_000..=999_999_999 => format!("{:.2} ms", ns as f64 / 1e6),
        _ => format!("{:.2} s", ns as f64 / 1e9),
    }
}

fn duration(d: std::time::Duration) -> String {
    latency(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// The long-form table of a set of cells: one line per operation, task count and contender.
pub fn cells_table(rows: &[CellRow], baseline_is: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| op | tasks | store | ops/s | × {baseline_is} | p50 | p99 |"
    );
    out.push_str("|---|---:|---|---:|---:|---:|---:|\n");
    for row in rows {
        for (i, f) in row.figures.iter().enumerate() {
            let ratio = if i == 0 {
                "1.00 (baseline)".to_owned()
            } else {
                format!("{:.2}", f.ratio)
            };
            let name = if f.name == "ours" || f.name == crate::redis_ops::OURS_ACTIX {
                format!("**{}**", f.name)
            } else {
                f.name.to_owned()
            };
            let _ = writeln!(
                out,
                "| {} | {} | {name} | {} | {ratio} | {} | {} |",
                row.op,
                row.tasks,
                ops(f.ops_per_sec),
                latency(f.p50_ns),
                latency(f.p99_ns)
            );
        }
    }
    out
}

/// The load cells against both raw baselines, with the server's CPU time per operation
/// (`INFO cpu` before and after each measured window, divided by the window's operations).
pub fn load_table(rows: &[CellRow]) -> String {
    use crate::redis_ops::RAW_GET_DECODE;

    let mut out = format!(
        "| tasks | ops/s raw GET | ops/s {RAW_GET_DECODE} | ops/s ours | ours × raw GET | ours × {RAW_GET_DECODE} | server CPU µs/op raw GET | {RAW_GET_DECODE} | ours | ours ÷ raw GET |\n"
    );
    out.push_str("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    let cpu = |f: &Figures| {
        f.server_us_per_op
            .map_or("?".into(), |us| format!("{us:.2}"))
    };
    for row in rows.iter().filter(|r| r.op == "load") {
        let (Some(raw), Some(decode), Some(ours)) =
            (row.of("raw GET"), row.of(RAW_GET_DECODE), row.of("ours"))
        else {
            continue;
        };
        let cpu_ratio = match (ours.server_us_per_op, raw.server_us_per_op) {
            (Some(o), Some(r)) if r > 0.0 => format!("{:.2}", o / r),
            _ => "?".into(),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {:.2} | {:.2} | {} | {} | {} | {cpu_ratio} |",
            row.tasks,
            ops(raw.ops_per_sec),
            ops(decode.ops_per_sec),
            ops(ours.ops_per_sec),
            ours.ratio_to(raw),
            ours.ratio_to(decode),
            cpu(raw),
            cpu(decode),
            cpu(ours),
        );
    }
    out
}

/// The `count()` table.
pub fn count_table(rows: &[CountRow], quick: bool) -> String {
    let mut out = String::new();
    if quick {
        out.push_str("Quick mode: 10k and 100k sessions only (the full run adds 1M).\n\n");
    }
    out.push_str(
        "| live sessions | `count()` median | `SCAN` count median | `SCAN` ÷ `count()` | server µs per `ZCOUNT` / per `SCAN` page | answers (count / SCAN) | fill time |\n",
    );
    out.push_str("|---:|---:|---:|---:|---:|---|---:|\n");
    for r in rows {
        let _ = writeln!(
            out,
            "| {} | {} ({} calls, fastest {}) | {} ({} calls) | {:.0}× | {:.1} / {:.0} | {} / {} | {:.1} s |",
            ops(r.sessions as f64),
            duration(r.count_median),
            r.count_calls,
            duration(r.count_min),
            duration(r.scan_median),
            r.scan_calls,
            r.scan_median.as_secs_f64() / r.count_median.as_secs_f64().max(1e-9),
            r.zcount_server_us,
            r.scan_server_us,
            r.counted,
            r.scanned,
            r.fill.as_secs_f64()
        );
    }
    out
}

/// A share of a total, in percent, in bold and flagged when not within ±10 % of a third.
fn third(part: u64, total: u64) -> String {
    let pct = 100.0 * part as f64 / total.max(1) as f64;
    if near_a_third(part, total) {
        format!("{pct:.1} %")
    } else {
        format!("**{pct:.1} %** (outside ±10 % of a third)")
    }
}

/// The cluster table: operations side by side, `count()` against `SCAN`, the spread.
pub fn cluster_table(r: &ClusterReport, plan: &str, quick: bool) -> String {
    use crate::cluster::{CLUSTER, STANDALONE};

    let mut out = format!(
        "A Redis Cluster of 3 primaries with a replica each and one `redis-server`, all \
         started by this run on this machine's {} cores, which the client shares: the \
         cluster's figures are what a cluster costs per operation, not how it scales out. \
         1-min load average {} when the table started, {} when it ended. {plan}.\n\n",
        r.cores, r.load.0, r.load.1
    );
    out.push_str(
        "| op | tasks | ops/s one server | ops/s cluster | cluster ÷ one server | p50 one server / cluster | p99 one server / cluster | server CPU µs/op: one server | cluster primaries | cluster replicas |\n",
    );
    out.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for row in &r.ops {
        let (Some(one), Some(many)) = (row.cell.of(STANDALONE), row.cell.of(CLUSTER)) else {
            continue;
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {:.2} | {} / {} | {} / {} | {:.1} | {:.1} | {:.1} |",
            row.cell.op,
            row.cell.tasks,
            ops(one.ops_per_sec),
            ops(many.ops_per_sec),
            many.ratio,
            latency(one.p50_ns),
            latency(many.p50_ns),
            latency(one.p99_ns),
            latency(many.p99_ns),
            row.standalone_cpu_us,
            row.primaries_cpu_us,
            row.replicas_cpu_us
        );
    }
    if r.dry != (0, 0) {
        let _ = writeln!(
            out,
            "\nThe delete pools ran dry {} times on one server and {} on the cluster: those \
             deletes were of missing ids.",
            r.dry.0, r.dry.1
        );
    }
    out.push('\n');
    out.push_str(
        "`count()` against a `SCAN … MATCH prefix* COUNT 1000` count run to completion on the \
         three primaries at once, the cluster holding only these sessions (filled through the \
         bulk import path, as for the count table).",
    );
    if quick {
        out.push_str(" Quick mode: 100k sessions only (the full run adds 1M).");
    }
    out.push_str("\n\n");
    out.push_str(
        "| live sessions | `count()` median | `SCAN` count of every primary, median | `SCAN` ÷ `count()` | server time per primary per `count()` (its `EVALSHA`) / per `SCAN` page | answers (count / SCAN) | fill time |\n",
    );
    out.push_str("|---:|---:|---:|---:|---:|---|---:|\n");
    for c in &r.counts {
        let _ = writeln!(
            out,
            "| {} | {} ({} calls, fastest {}) | {} ({} calls) | {:.0}× | {} / {} | {} / {} | {:.1} s |",
            ops(c.sessions as f64),
            duration(c.count_median),
            c.count_calls,
            duration(c.count_min),
            duration(c.scan_median),
            c.scan_calls,
            c.scan_median.as_secs_f64() / c.count_median.as_secs_f64().max(1e-9),
            latency((c.evalsha_server_us * 1e3) as u64),
            latency((c.scan_server_us * 1e3) as u64),
            c.counted,
            c.scanned,
            c.fill.as_secs_f64()
        );
    }
    out.push_str(
        "\nSpread over the primaries (each share should be within ±10 % of a third, 30.0 % to 36.7 %):\n\n\
         | live sessions | primary (port) | slots | session keys | share | expiry index entries | share |\n\
         |---:|---|---:|---:|---:|---:|---:|\n",
    );
    for c in &r.counts {
        let keys: u64 = c.spread.iter().map(|s| s.keys).sum();
        let entries: u64 = c.spread.iter().map(|s| s.entries).sum();
        for s in &c.spread {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} |",
                ops(c.sessions as f64),
                s.port,
                s.slots,
                ops(s.keys as f64),
                third(s.keys, keys),
                ops(s.entries as f64),
                third(s.entries, entries)
            );
        }
    }
    out
}

/// The memory-per-session table; the first row is the bare payload.
pub fn usage_table(rows: &[UsageRow], n: usize) -> String {
    let mut out = format!(
        "{n} sessions per store, each its own user; `used_memory` growth divided by {n}.\n\n"
    );
    out.push_str(
        "| store | bytes per session (`used_memory`) | × bare JSON | `MEMORY USAGE` of one key | value bytes (`STRLEN`) | key bytes |\n",
    );
    out.push_str("|---|---:|---:|---:|---:|---:|\n");
    let base = rows.first().map_or(1.0, |r| r.per_session.max(1.0));
    for r in rows {
        let _ = writeln!(
            out,
            "| {} | {:.0} | {:.2} | {} | {} | {} |",
            r.name,
            r.per_session,
            r.per_session / base,
            r.key_usage,
            r.value_len,
            r.key_len
        );
    }
    out
}

/// The failover table.
pub fn failover_table(result: &FailoverResult) -> String {
    let mut out = format!(
        "Runs: {} of `{FAILOVER_COMMAND}`{}; medians over the runs, every sample of the last column listed (ms).\n\n",
        result.runs,
        if result.failed_runs > 0 {
            format!(" ({} of them failed; their printed figures are kept)", result.failed_runs)
        } else {
            String::new()
        }
    );
    out.push_str(
        "| trigger | unavailability window | Sentinel promotion | window − promotion | samples (window − promotion) |\n",
    );
    out.push_str("|---|---:|---:|---:|---|\n");
    for row in &result.rows {
        let (w, p, d) = row.medians();
        let samples: Vec<String> = row.excess_ms.iter().map(|v| format!("{v:.0}")).collect();
        let _ = writeln!(
            out,
            "| {} | {w:.0} ms | {p:.0} ms | {d:.0} ms | {} |",
            row.trigger,
            samples.join(", ")
        );
    }
    if result.rows.is_empty() {
        out.push_str("| (no figures parsed) | | | | |\n");
    }
    out
}

/// The marker lines around the generated section `name`.
pub fn markers(name: &str) -> (String, String) {
    (
        format!("<!-- session-bench:begin {name} (generated: do not edit by hand) -->"),
        format!("<!-- session-bench:end {name} -->"),
    )
}

/// Replaces each `(name, markdown)` section of `text` between its markers (appending the
/// section, with markers, when they are missing).
pub fn splice(text: &str, sections: &[(&str, String)]) -> String {
    let mut text = text.to_owned();
    for (name, body) in sections {
        let (begin, end) = markers(name);
        let block = format!("{begin}\n{}\n{end}", body.trim_end());
        match (text.find(&begin), text.find(&end)) {
            (Some(b), Some(e)) if b < e => text.replace_range(b..e + end.len(), &block),
            _ => {
                if !text.is_empty() && !text.ends_with('\n') {
                    text.push('\n');
                }
                let _ = write!(text, "\n{block}\n");
            }
        }
    }
    text
}

/// Writes `sections` into the document at `path` (created when missing).
pub fn write_doc(path: &Path, sections: &[(&str, String)]) -> std::io::Result<()> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e),
    };
    std::fs::write(path, splice(&text, sections))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(ops(1234567.4), "1,234,567");
        assert_eq!(ops(999.0), "999");
        assert_eq!(latency(850), "850 ns");
        assert_eq!(latency(12_340), "12.3 µs");
        assert_eq!(latency(1_200_000), "1.20 ms");
        assert_eq!(latency(4_331_333_579), "4.33 s");
    }

    #[test]
    fn splice_replaces_only_its_own_section() {
        let (b, e) = markers("memory");
        let doc = format!("# Title\n\nprose\n{b}\nold\n{e}\nmore prose\n");
        let out = splice(&doc, &[("memory", "new\n".into())]);
        assert_eq!(
            out,
            format!("# Title\n\nprose\n{b}\nnew\n{e}\nmore prose\n")
        );
        let appended = splice(&out, &[("redis", "r".into())]);
        let (rb, re) = markers("redis");
        assert!(appended.starts_with(&out));
        assert!(appended.ends_with(&format!("\n{rb}\nr\n{re}\n")));
    }
}
