//! `count()` against a `SCAN` count, and how sessions spread over the primaries.

use super::*;

/// `count()` at each size against a `SCAN` count of every primary, and the spread.
pub(super) async fn counts(
    servers: &Servers,
    sizes: &[usize],
    count_calls: usize,
    scan_calls: usize,
) -> Vec<CountRow> {
    let store = Store::connect(servers, prefix::COUNT).await;
    let counter = store.session_store();
    let indexes = store.expiry_indexes();
    let nodes = servers.connect().await;
    let mut rows = Vec::new();
    let mut have = 0;
    for &size in sizes {
        let (fill_time, _) = timed(store.fill(have, size)).await;
        have = size;
        // Warm up once (connections, the script cache), then count the servers' own time.
        counter.count().await.expect("count");
        for con in &nodes.primaries {
            let () = redis::cmd("CONFIG")
                .arg("RESETSTAT")
                .query_async(&mut con.clone())
                .await
                .expect("CONFIG RESETSTAT");
        }
        let mut count_times = Vec::new();
        let mut counted = 0;
        for _ in 0..count_calls {
            let (t, n) = timed(counter.count()).await;
            counted = n.expect("count");
            count_times.push(t);
        }
        let mut scan_times = Vec::new();
        let mut per_primary = Vec::new();
        for _ in 0..scan_calls {
            let scans = nodes.primaries.iter().map(|con| {
                let mut con = con.clone();
                async move { scan_count(&mut con, prefix::COUNT).await }
            });
            let started = Instant::now();
            per_primary = futures::future::join_all(scans).await;
            scan_times.push(started.elapsed());
        }
        let evalsha_server_us = usec_per_call(&nodes.primaries, "evalsha").await;
        let scan_server_us = usec_per_call(&nodes.primaries, "scan").await;
        let mut spread = Vec::new();
        for ((primary, con), keys) in servers
            .primaries
            .iter()
            .zip(&nodes.primaries)
            .zip(&per_primary)
        {
            let slots: Vec<usize> = primary
                .slots
                .iter()
                .flat_map(|r| usize::from(*r.start())..=usize::from(*r.end()))
                .collect();
            let mut pipe = redis::pipe();
            for &s in &slots {
                pipe.cmd("ZCARD").arg(&indexes[s]);
            }
            let sizes: Vec<u64> = pipe
                .query_async(&mut con.clone())
                .await
                .expect("ZCARD of every slot index");
            spread.push(Share {
                port: primary.port,
                slots: slots.len(),
                keys: *keys,
                entries: sizes.iter().sum(),
            });
        }
        let row = CountRow {
            sessions: size as u64,
            counted,
            scanned: per_primary.iter().sum(),
            count_median: median_duration(&count_times),
            count_min: count_times.iter().min().copied().unwrap_or_default(),
            count_calls,
            scan_median: median_duration(&scan_times),
            scan_calls,
            evalsha_server_us,
            scan_server_us,
            fill: fill_time,
            spread,
        };
        eprintln!(
            "cluster count: {size} sessions (filled in {:.1} s): count() {:?} = {counted}, \
             SCAN of every primary {:?} = {}; keys per primary {:?}, index entries {:?}",
            fill_time.as_secs_f64(),
            row.count_median,
            row.scan_median,
            row.scanned,
            row.spread.iter().map(|s| s.keys).collect::<Vec<_>>(),
            row.spread.iter().map(|s| s.entries).collect::<Vec<_>>(),
        );
        rows.push(row);
    }
    rows
}

/// Whether `part` of `total` is within ±10 % of a third (relative: 30.0 % to 36.7 %).
pub fn near_a_third(part: u64, total: u64) -> bool {
    // |3·part − total| ≤ total / 10, in integers (no rounding at the edges).
    10 * (3 * part).abs_diff(total) <= total
}

#[cfg(test)]
mod tests {
    use super::near_a_third;

    #[test]
    fn a_third_within_ten_percent() {
        assert!(near_a_third(333, 1000));
        assert!(near_a_third(300, 1000));
        assert!(near_a_third(366, 1000));
        assert!(!near_a_third(299, 1000));
        assert!(!near_a_third(367, 1000));
    }
}
