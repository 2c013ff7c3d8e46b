//! `migrate`: stream every session from one Redis-backed store to another.
//!
//! A reader task pages through the source (`SCAN` + one pipelined `MGET`/`PTTL` round trip per
//! page; on a cluster, `SCAN` on each primary in turn and `GET`/`PTTL` routed per key) into a
//! short queue; the writer prepares each page for the target (ours copied byte
//! for byte, the existing service's plain `SETEX` values given metadata) and writes it in
//! one transaction (`SET NX PX` per session + index entries, see `RedisStore::import_bulk`),
//! two pages in flight so the target never waits for the client. Nothing live in the target is overwritten, so a re-run copies only
//! what is missing.

use std::collections::HashSet;
use std::hash::{BuildHasher as _, RandomState};
use std::io::IsTerminal as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::TryStreamExt as _;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};
use session_store::redis::codec::{self, Stored};
use session_store::redis::{NotCopied, RawPage, RawSession};
use session_store::{BackendConfig, Error, ImportOutcome, Result};
use tokio::sync::mpsc;

use crate::cli::MigrateArgs;
use crate::output::{Exit, Failure, Out};
use crate::redis_side::{redis_side, RedisSide};

/// Pages queued between the reader and the writer.
const QUEUE: usize = 4;
/// Write (or verify) calls in flight at once.
const IN_FLIGHT: usize = 2;
/// Default response timeout of `migrate`'s connections, in ms.
const BULK_RESPONSE_TIMEOUT_MS: &str = "30000";
/// Problems described individually in the summary; the rest are only counted.
const EXAMPLES: usize = 10;

#[derive(Debug, Default)]
struct Tally {
    keys_scanned: u64,
    copied: u64,
    present: u64,
    expired: u64,
    failed: u64,
    duplicates: u64,
    problems: Vec<String>,
}

impl Tally {
    fn add(&mut self, other: Tally) {
        self.keys_scanned += other.keys_scanned;
        self.copied += other.copied;
        self.present += other.present;
        self.expired += other.expired;
        self.failed += other.failed;
        self.duplicates += other.duplicates;
        let room = EXAMPLES.saturating_sub(self.problems.len());
        self.problems.extend(other.problems.into_iter().take(room));
    }

    fn sessions(&self) -> u64 {
        self.copied + self.present + self.expired + self.failed
    }
}

async fn connect(url: &str, flag: &str) -> std::result::Result<Arc<dyn RedisSide>, Failure> {
    let named = |err: Error| {
        let mut failure = Failure::from(err);
        failure.message = format!("{flag}: {}", failure.message);
        failure
    };
    // Bulk calls run a whole page on the server: wait for them longer than a service would
    // for one session (REDIS_RESPONSE_TIMEOUT_MS still wins when set).
    let env = |name: &str| match std::env::var(name).ok() {
        None if name == "REDIS_RESPONSE_TIMEOUT_MS" => Some(BULK_RESPONSE_TIMEOUT_MS.to_owned()),
        value => value,
    };
    let store = BackendConfig::from_url_lookup(url, env)
        .map_err(named)?
        .connect()
        .await
        .map_err(named)?;
    redis_side(&store).ok_or_else(|| {
        Failure::usage(format!(
            "{flag}: migrate copies between Redis-backed stores (redis://, rediss://, \
             redis+sentinel://, redis+cluster://); a memory:// store holds nothing outside its \
             own process"
        ))
    })
}

/// Pages through `store` on a task of its own, `QUEUE` pages ahead of the consumer.
fn read_pages(store: Arc<dyn RedisSide>, batch: usize) -> mpsc::Receiver<Result<RawPage>> {
    let (tx, rx) = mpsc::channel(QUEUE);
    tokio::spawn(async move {
        let mut cursor = 0;
        loop {
            let page = store.scan_raw(cursor, batch).await;
            let next = page.as_ref().ok().and_then(|p| p.next);
            let failed = page.is_err();
            if tx.send(page).await.is_err() || failed {
                return;
            }
            match next {
                Some(next) => cursor = next,
                None => return,
            }
        }
    });
    rx
}

fn pages(rx: mpsc::Receiver<Result<RawPage>>) -> impl futures::Stream<Item = Result<RawPage>> {
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|p| (p, rx)) })
}

fn progress_bar(total: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} keys ({per_sec}, {eta} left)",
    ) {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// One page: prepared for the target, written (or, dry, looked up), counted.
async fn copy_page(
    target: &dyn RedisSide,
    page: RawPage,
    seen: Vec<bool>,
    dry_run: bool,
) -> Result<Tally> {
    let mut tally = Tally {
        keys_scanned: page.keys_scanned as u64,
        ..Tally::default()
    };
    let mut batch = Vec::with_capacity(page.sessions.len());
    let mut repeat = Vec::with_capacity(page.sessions.len());
    for (raw, seen) in page.sessions.into_iter().zip(seen) {
        // Hashing the id for its fingerprint costs more than preparing the session: only
        // for the problem list.
        let sid = raw.sid.clone();
        let fingerprint = || sid.fingerprint();
        match target.prepare_raw(raw) {
            Ok(session) => {
                batch.push(session);
                repeat.push(seen);
            }
            Err(NotCopied::Gone) => tally.expired += 1,
            Err(NotCopied::Corrupt(reason)) => {
                tally.failed += 1;
                tally.problems.push(format!("{}: {reason}", fingerprint()));
            }
            Err(NotCopied::NeedsToken) => {
                tally.failed += 1;
                tally.problems.push(format!(
                    "{}: the source keys sessions by hash and the target by token",
                    fingerprint()
                ));
            }
            Err(_) => tally.failed += 1,
        }
    }
    let outcomes = if dry_run {
        let sids = batch.iter().map(|s| s.storage_id().clone()).collect();
        target
            .fetch_raw(sids)
            .await?
            .into_iter()
            .map(|found| match found.value {
                Some(_) => ImportOutcome::AlreadyPresent,
                None => ImportOutcome::Imported,
            })
            .collect()
    } else {
        target.import_bulk(&batch).await?
    };
    for (outcome, repeat) in outcomes.into_iter().zip(repeat) {
        match outcome {
            ImportOutcome::Imported => tally.copied += 1,
            // SCAN may return a key twice; the second sighting is not a skip.
            ImportOutcome::AlreadyPresent if repeat => tally.duplicates += 1,
            ImportOutcome::AlreadyPresent => tally.present += 1,
            ImportOutcome::Expired => tally.expired += 1,
        }
    }
    Ok(tally)
}

pub async fn migrate(args: &MigrateArgs, out: Out) -> std::result::Result<(), Failure> {
    let source = connect(&args.from, "--from").await?;
    let target = connect(&args.to, "--to").await?;
    let batch = args.batch as usize;

    let bar = progress_bar(source.dbsize().await?);
    let start = Instant::now();
    // Storage ids seen so far, as 64-bit hashes: a hit only changes how a skip is counted.
    let hasher = RandomState::new();
    let mut seen = HashSet::new();
    let target_ref = &target;
    let bar_ref = &bar;
    let tally = pages(read_pages(source.clone(), batch))
        .map_ok(|page| {
            let repeats: Vec<bool> = page
                .sessions
                .iter()
                .map(|raw| !seen.insert(hasher.hash_one(raw.sid.as_str())))
                .collect();
            async move {
                let keys = page.keys_scanned as u64;
                let tally = copy_page(target_ref.as_ref(), page, repeats, args.dry_run).await;
                bar_ref.inc(keys);
                tally
            }
        })
        .try_buffered(IN_FLIGHT)
        .try_fold(Tally::default(), |mut total, page| async move {
            total.add(page);
            Ok(total)
        })
        .await?;
    let elapsed = start.elapsed();
    bar.finish_and_clear();

    let verify = if args.verify {
        let tolerance = i64::try_from(args.ttl_tolerance_ms).unwrap_or(i64::MAX);
        Some(verify(source, target, batch, tolerance).await?)
    } else {
        None
    };

    let rate = tally.sessions() as f64 / elapsed.as_secs_f64().max(1e-9);
    let skipped = tally.present + tally.expired;
    let verify_json = verify.as_ref().map(|v| {
        json!({"checked": v.checked, "mismatched": v.mismatched,
               "gone_from_source": v.gone, "problems": v.problems})
    });
    out.print(
        || {
            let mut text = format!(
                "{}copied {}, skipped {} (already in target {}, expired {}), failed {}, \
                 in {:.2}s: {:.0} sessions/s\n",
                if args.dry_run {
                    "dry run: would have "
                } else {
                    ""
                },
                tally.copied,
                skipped,
                tally.present,
                tally.expired,
                tally.failed,
                elapsed.as_secs_f64(),
                rate
            );
            for problem in &tally.problems {
                text.push_str(&format!("  failed: {problem}\n"));
            }
            if let Some(v) = &verify {
                text.push_str(&format!(
                    "verify: {} checked, {} mismatched, {} gone from the source meanwhile\n",
                    v.checked, v.mismatched, v.gone
                ));
                for problem in &v.problems {
                    text.push_str(&format!("  mismatch: {problem}\n"));
                }
            }
            text
        },
        || {
            json!({
                "ok": tally.failed == 0 && verify.as_ref().is_none_or(|v| v.mismatched == 0),
                "dry_run": args.dry_run,
                "keys_scanned": tally.keys_scanned,
                "copied": tally.copied,
                "skipped": skipped,
                "skipped_present": tally.present,
                "skipped_expired": tally.expired,
                "duplicates": tally.duplicates,
                "failed": tally.failed,
                "failures": tally.problems,
                "seconds": elapsed.as_secs_f64(),
                "sessions_per_second": rate.round(),
                "verify": verify_json.clone().unwrap_or(Value::Null),
            })
        },
    );
    if verify.is_some_and(|v| v.mismatched > 0) {
        return Err(Failure::after_report(
            Exit::Mismatch,
            "verify found mismatches",
        ));
    }
    if tally.failed > 0 {
        return Err(Failure::after_report(
            Exit::Partial,
            format!("{} session(s) could not be copied", tally.failed),
        ));
    }
    Ok(())
}

#[derive(Debug, Default)]
struct Verified {
    checked: u64,
    mismatched: u64,
    gone: u64,
    problems: Vec<String>,
}

/// Whether the target holds what the source holds, one page at a time.
async fn verify(
    source: Arc<dyn RedisSide>,
    target: Arc<dyn RedisSide>,
    batch: usize,
    tolerance_ms: i64,
) -> std::result::Result<Verified, Failure> {
    let target_ref = &target;
    let total = pages(read_pages(source, batch))
        .map_ok(|page| async move {
            let mut result = Verified::default();
            let mut pairs = Vec::with_capacity(page.sessions.len());
            for raw in page.sessions {
                // An id the target cannot hold was counted as failed by the copy.
                if let Some(sid) = target_ref.map_storage_id(&raw.sid) {
                    pairs.push((raw, sid));
                }
            }
            let sids = pairs.iter().map(|(_, sid)| sid.clone()).collect();
            let found = target_ref.fetch_raw(sids).await?;
            let now = session_store::Clock::now(&session_store::SystemClock).as_millis();
            for ((src, _), dst) in pairs.into_iter().zip(found) {
                match compare(&src, &dst, tolerance_ms, now) {
                    Verdict::Same => result.checked += 1,
                    Verdict::SourceGone => result.gone += 1,
                    Verdict::Differs(why) => {
                        result.checked += 1;
                        result.mismatched += 1;
                        if result.problems.len() < EXAMPLES {
                            result
                                .problems
                                .push(format!("{}: {why}", src.sid.fingerprint()));
                        }
                    }
                }
            }
            Ok(result)
        })
        .try_buffered(IN_FLIGHT)
        .try_fold(Verified::default(), |mut total, page| async move {
            total.checked += page.checked;
            total.mismatched += page.mismatched;
            total.gone += page.gone;
            let room = EXAMPLES.saturating_sub(total.problems.len());
            total.problems.extend(page.problems.into_iter().take(room));
            Ok(total)
        })
        .await?;
    Ok(total)
}

enum Verdict {
    Same,
    SourceGone,
    Differs(&'static str),
}

/// One source session against its copy: same data, same lifetime for ours, and Redis TTLs
/// within `tolerance_ms` (the copy's TTL comes from the source's `PTTL`, read moments before
/// the write, and both count down while the check runs).
fn compare(src: &RawSession, dst: &RawSession, tolerance_ms: i64, now: u64) -> Verdict {
    let Some(src_bytes) = &src.value else {
        return Verdict::SourceGone;
    };
    if dst
        .value
        .as_ref()
        .is_some_and(|dst_bytes| spliced_copy(src_bytes, dst_bytes))
    {
        return compare_ttls(src, dst, tolerance_ms);
    }
    let src_decoded = match codec::decode(src_bytes) {
        // Redis's TTL decides liveness (checked below); only an absolute expiry that has
        // passed ends a session whose key still exists.
        Ok(Stored::Ours { meta, .. })
            if meta
                .absolute_expires_at
                .is_some_and(|a| a.as_millis() <= now) =>
        {
            return Verdict::SourceGone
        }
        Ok(decoded) => decoded,
        Err(_) => return Verdict::SourceGone, // not a session: reported by the copy
    };
    let Some(dst_bytes) = &dst.value else {
        return Verdict::Differs("missing from the target");
    };
    if src_bytes != dst_bytes {
        let Ok(Stored::Ours {
            meta: dst_meta,
            data: dst_data,
        }) = codec::decode(dst_bytes)
        else {
            return Verdict::Differs("the target's copy is not a session with metadata");
        };
        match src_decoded {
            Stored::Ours { meta, data } => {
                if data != dst_data {
                    return Verdict::Differs("data differs");
                }
                // The same metadata but its write counter (the idle expiry is the TTL's).
                let now = session_store::Timestamp(now);
                if meta.lifetime(now) != dst_meta.lifetime(now) {
                    return Verdict::Differs("lifetime differs");
                }
            }
            Stored::Foreign { data } => {
                if data != dst_data {
                    return Verdict::Differs("data differs");
                }
            }
        }
    }
    compare_ttls(src, dst, tolerance_ms)
}

/// Whether `dst` is `src`, a foreign value (a JSON object without our metadata), with a
/// metadata member spliced in first as the copy writes it (`codec::with_meta`): byte for byte
/// the source's members after a metadata member that decodes. The data is then the same
/// without decoding either value; anything else takes the full comparison.
fn spliced_copy(src: &[u8], dst: &[u8]) -> bool {
    let Some(open) = src.iter().position(|&b| b == b'{') else {
        return false;
    };
    let rest = &src[open + 1..];
    let Some(head) = dst.strip_suffix(rest) else {
        return false;
    };
    // The metadata member, then exactly what `with_meta` makes of it and the source.
    let mut member = head.strip_suffix(b",").unwrap_or(head).to_vec();
    member.push(b'}');
    match codec::decode(&member) {
        Ok(Stored::Ours { meta, data }) if data.is_empty() => {
            codec::with_meta(&meta, src) == dst
                && matches!(codec::probe_foreign(src, &[]), Ok(Some(_)))
        }
        _ => false,
    }
}

/// The TTL half of [`compare`], once the values agree.
fn compare_ttls(src: &RawSession, dst: &RawSession, tolerance_ms: i64) -> Verdict {
    match (src.pttl_ms, dst.pttl_ms) {
        (-2, _) => Verdict::SourceGone,
        (-1, _) => Verdict::Same, // no TTL in the source: the copy got the default idle timeout
        (_, d) if d < 0 => Verdict::Differs("the target's copy has no TTL"),
        (s, d) if (s - d).abs() > tolerance_ms => Verdict::Differs("TTL differs"),
        _ => Verdict::Same,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use session_store::redis::codec::{with_meta, Meta};
    use session_store::redis::keys::StorageId;
    use session_store::{SessionId, Timestamp};

    use super::*;

    fn raw(value: &[u8], pttl_ms: i64) -> RawSession {
        RawSession {
            sid: StorageId::Token(SessionId::generate()),
            value: Some(value.to_vec()),
            pttl_ms,
            read_at: Timestamp(0),
        }
    }

    fn meta() -> Meta {
        Meta {
            created_at: Timestamp(1),
            idle_timeout: Duration::from_secs(7200),
            absolute_expires_at: None,
            writes: 9,
            user_hex: "6162".into(),
        }
    }

    #[test]
    fn a_spliced_copy_is_the_same_without_decoding() {
        for src in [
            &br#"{"user": {"sub": "a"}, "created": 1.5}"#[..],
            br#" {"a":1}"#,
            b"{}",
            b"{ }",
        ] {
            let dst = with_meta(&meta(), src);
            assert!(spliced_copy(src, &dst), "{}", String::from_utf8_lossy(src));
            assert!(matches!(
                compare(&raw(src, 5000), &raw(&dst, 4000), 2000, 0),
                Verdict::Same
            ));
            // One byte of the data changed: the full comparison decides, and disagrees.
            let mut changed = dst.clone();
            let last = changed.len() - 2;
            changed[last] ^= 1;
            assert!(!spliced_copy(src, &changed));
        }
    }

    #[test]
    fn anything_else_takes_the_full_comparison() {
        let src = br#"{"a":"x","b":2}"#;
        let mut reordered = with_meta(&meta(), br#"{"b":2,"a":"x"}"#);
        assert!(!spliced_copy(src, &reordered));
        // Same data in another order: equal maps, as before.
        assert!(matches!(
            compare(&raw(src, 5000), &raw(&reordered, 5000), 2000, 0),
            Verdict::Same
        ));
        reordered = with_meta(&meta(), br#"{"b":3,"a":"x"}"#);
        assert!(matches!(
            compare(&raw(src, 5000), &raw(&reordered, 5000), 2000, 0),
            Verdict::Differs("data differs")
        ));
        // Metadata that is not ours, or a source that is not a foreign object.
        assert!(!spliced_copy(
            src,
            br#"{"__session__":{"c":1},"a":"x","b":2}"#
        ));
        assert!(!spliced_copy(src, br#"{"x":1,"a":"x","b":2}"#));
        let ours = with_meta(&meta(), src);
        assert!(!spliced_copy(&ours, &with_meta(&meta(), &ours)));
        assert!(!spliced_copy(br#"[{"a":"x","b":2}]"#, &ours));
        // A TTL out of tolerance still fails.
        assert!(matches!(
            compare(&raw(src, 9000), &raw(&ours, 5000), 2000, 0),
            Verdict::Differs("TTL differs")
        ));
    }
}
