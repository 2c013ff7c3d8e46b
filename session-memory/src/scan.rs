//! Paged iteration over a `DashMap`, which has no order of its own.
//!
//! Pages are taken in token order: each page walks the map once and keeps the `limit`
//! smallest ids after the cursor in a bounded heap, so memory per page is O(limit) and a
//! session present throughout is yielded exactly once. The cost is O(n log limit) per page.

use std::collections::BinaryHeap;

use dashmap::DashMap;
use session_core::{ScanCursor, ScanPage, SessionId, SessionRecord, Timestamp};

use crate::entry::Entry;

/// One page of the sessions in `map` live at `now`, after `cursor`.
pub(crate) fn page(
    map: &DashMap<SessionId, Entry>,
    now: Timestamp,
    cursor: Option<ScanCursor>,
    limit: usize,
) -> ScanPage {
    let limit = limit.max(1);
    let after = cursor.map(|c| c.0);
    let mut heap: BinaryHeap<SessionId> = BinaryHeap::with_capacity(limit + 1);
    for item in map.iter() {
        let id = item.key();
        if after.as_deref().is_some_and(|a| id.expose_token() <= a) || !item.value().is_live(now) {
            continue;
        }
        if heap.len() < limit {
            heap.push(id.clone());
        } else if heap.peek().is_some_and(|max| id < max) {
            heap.pop();
            heap.push(id.clone());
        }
    }
    let full = heap.len() == limit;
    let ids = heap.into_sorted_vec();
    let next = if full {
        ids.last()
            .map(|id| ScanCursor(id.expose_token().to_owned()))
    } else {
        None
    };
    let sessions = ids
        .into_iter()
        .filter_map(|id| {
            let entry = map.get(&id)?;
            entry.is_live(now).then(|| SessionRecord {
                handle: id.handle(),
                data: (*entry.data).clone(),
                lifetime: entry.lifetime,
                id: Some(id.clone()),
            })
        })
        .collect();
    ScanPage { sessions, next }
}
