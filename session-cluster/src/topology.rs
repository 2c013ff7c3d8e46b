//! [`ClusterPrimaries`]: the cluster's primaries and their slots, from `CLUSTER SLOTS`.

use std::ops::RangeInclusive;

use async_trait::async_trait;
use redis::Value;
use session_core::{Error, Result};
use session_redis::error::to_store_error;
use session_redis::topology::{Primary, Topology};

use crate::connection::ClusterConn;
use crate::BACKEND;

/// Asks the cluster for its primaries each time (one `CLUSTER SLOTS`), so node-wide work
/// follows failovers and resharding.
#[derive(Debug, Clone)]
pub struct ClusterPrimaries {
    conn: ClusterConn,
}

impl ClusterPrimaries {
    /// The primaries behind `conn`.
    pub fn new(conn: ClusterConn) -> Self {
        ClusterPrimaries { conn }
    }
}

#[async_trait]
impl Topology<ClusterConn> for ClusterPrimaries {
    async fn primaries(&self) -> Result<Vec<Primary<ClusterConn>>> {
        let mut conn = self.conn.clone();
        let reply: Value = redis::cmd("CLUSTER")
            .arg("SLOTS")
            .query_async(&mut conn)
            .await
            .map_err(|e| to_store_error(BACKEND, e))?;
        let ranges = parse_slots(reply).ok_or_else(|| Error::Backend {
            backend: BACKEND,
            source: Box::new(session_redis::UnexpectedReply(
                "malformed CLUSTER SLOTS reply",
            )),
        })?;
        let mut primaries: Vec<Primary<ClusterConn>> = Vec::new();
        for ((host, port), range) in ranges {
            let addr = format!("{host}:{port}");
            match primaries.iter_mut().find(|p| p.addr == addr) {
                Some(p) => p.slots.push(range),
                None => primaries.push(Primary {
                    conn: self.conn.to_node(host, port),
                    addr,
                    slots: vec![range],
                }),
            }
        }
        primaries.sort_by_key(Primary::first_slot);
        Ok(primaries)
    }
}

/// A range of slots and the primary (`host`, `port`) serving it.
pub(crate) type SlotRange = ((String, u16), RangeInclusive<u16>);

/// `CLUSTER SLOTS`: per range, start, end, then the primary `[host, port, id, …]` first.
pub(crate) fn parse_slots(reply: Value) -> Option<Vec<SlotRange>> {
    let Value::Array(ranges) = reply else {
        return None;
    };
    ranges
        .into_iter()
        .map(|range| {
            let Value::Array(items) = range else {
                return None;
            };
            let mut items = items.into_iter();
            let start = int(items.next()?)?;
            let end = int(items.next()?)?;
            let Value::Array(primary) = items.next()? else {
                return None;
            };
            let mut primary = primary.into_iter();
            let host = match primary.next()? {
                Value::BulkString(b) => String::from_utf8(b).ok()?,
                Value::SimpleString(s) => s,
                _ => return None,
            };
            let port = int(primary.next()?)?;
            Some(((host, port), start..=end))
        })
        .collect()
}

fn int(v: Value) -> Option<u16> {
    match v {
        Value::Int(n) => u16::try_from(n).ok(),
        _ => None,
    }
}
