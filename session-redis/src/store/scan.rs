//! Finding keys by prefix without `KEYS`: Redis's own `SCAN` on one server; over a Redis
//! Cluster a walk over the hash slots that stays complete while slots move between nodes.
//!
//! Why not `SCAN` each primary in turn over a cluster: a `SCAN` cursor belongs to one node's
//! hash table. A resharding that moves a slot from a node not yet scanned to one already
//! scanned (or from the node being scanned to one done) carries its keys past the iteration,
//! which then never yields them; the contract promises that an iteration misses no session
//! that lived through it.
//!
//! The cluster walk: the cursor names the next slot. A page takes a run of slots and asks, for
//! each, `CLUSTER GETKEYSINSLOT` first of the node the slot map says serves it, then (after
//! that answered) of every other primary. Redis moves a key with `MIGRATE`, which writes it at
//! the target before deleting it at the source, and a resharding only ever moves a slot away
//! from its mapped owner. So a key that stayed in the slot throughout is either still at the
//! owner when the owner is asked, or already at the target by the time the target is asked:
//! found either way (possibly twice; the page drops repeats). Non-owners answer an empty list
//! in a few µs when nothing moves.

use redis::aio::ConnectionLike;
use session_core::{Error, Result};

use super::call::Call;
use super::RedisStore;
use crate::keys::SLOTS;
use crate::topology::Primary;

/// One page of keys under a prefix.
pub(crate) struct ScanStep {
    /// Keys found (possibly none, possibly repeated later: `SCAN`'s guarantees).
    pub(crate) found: Vec<Vec<u8>>,
    /// Where to go on, 0 when the iteration is complete.
    pub(crate) next: u64,
}

/// `GETKEYSINSLOT`'s limit: every key of the slot. A slot holds about 1/16,384 of the keys
/// (60 per slot at 1M sessions), so a page stays near its target size unless another
/// application piles keys into a few slots with hash tags.
const ALL_KEYS: u64 = 1 << 31;

/// Slots in the first page; later pages size themselves from what the previous one found.
const FIRST_SPAN: u64 = 64;
/// At most this many slots a page (a pipeline of that many commands per node).
const MAX_SPAN: u64 = 4096;

impl<C> RedisStore<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    /// One page of keys matching `pattern`, `count` a hint of its size (start with cursor 0).
    /// `pattern` is a glob-escaped literal prefix followed by `*` (as `KeyLayout` builds
    /// them): on one server it goes to `SCAN … MATCH`, over a cluster the walk compares
    /// prefixes itself.
    pub(crate) async fn scan_step(
        &self,
        call: &mut Call<C>,
        cursor: u64,
        pattern: &str,
        count: usize,
    ) -> Result<ScanStep> {
        if !self.clustered() {
            let mut scan = redis::cmd("SCAN");
            scan.arg(cursor)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(count.max(1));
            let (next, found): (u64, Vec<Vec<u8>>) = call.query(&scan).await?;
            return Ok(ScanStep { found, next });
        }
        let prefix = literal_prefix(pattern).ok_or_else(|| Error::InvalidData {
            reason: "a scan pattern must be a literal prefix followed by *".into(),
        })?;
        let (first, span) = slot_cursor::decode(cursor).unwrap_or((0, FIRST_SPAN));
        let end = (u64::from(first) + span).min(u64::from(SLOTS));
        let slots: Vec<u16> = (first..SLOTS)
            .take(usize::try_from(end - u64::from(first)).unwrap_or(0))
            .collect();
        let primaries = self.primaries().await?;
        let owner_of =
            |slot: u16| -> Option<usize> { primaries.iter().position(|p| p.serves(slot)) };
        // Round one: each slot at its owner; round two: at every other primary.
        let owned = |node: usize| -> Vec<u16> {
            slots
                .iter()
                .copied()
                .filter(|&s| owner_of(s) == Some(node))
                .collect()
        };
        let others = |node: usize| -> Vec<u16> {
            slots
                .iter()
                .copied()
                .filter(|&s| owner_of(s) != Some(node))
                .collect()
        };
        let mut found = self.keys_in_slots(call, &primaries, owned).await?;
        found.extend(self.keys_in_slots(call, &primaries, others).await?);
        found.retain(|k| k.starts_with(prefix.as_bytes()));
        found.sort_unstable();
        found.dedup();
        let next = if end >= u64::from(SLOTS) {
            0
        } else {
            let target = u64::try_from(count.max(1)).unwrap_or(u64::MAX);
            // Aim the next page at `count` keys from this page's density; widen fast while
            // slots are empty.
            let span = span
                .saturating_mul(target)
                .checked_div(found.len() as u64)
                .unwrap_or_else(|| span.saturating_mul(4))
                .clamp(1, MAX_SPAN);
            slot_cursor::encode(u16::try_from(end).unwrap_or(SLOTS), span)
        };
        Ok(ScanStep { found, next })
    }

    /// `CLUSTER GETKEYSINSLOT` for the slots `pick` names per primary (by index), each
    /// primary's as one pipeline, all primaries at once.
    async fn keys_in_slots(
        &self,
        call: &mut Call<C>,
        primaries: &[Primary<C>],
        pick: impl Fn(usize) -> Vec<u16>,
    ) -> Result<Vec<Vec<u8>>> {
        let asks = primaries.iter().enumerate().filter_map(|(node, primary)| {
            let slots = pick(node);
            if slots.is_empty() {
                return None;
            }
            let mut pipe = redis::pipe();
            for slot in slots {
                pipe.cmd("CLUSTER")
                    .arg("GETKEYSINSLOT")
                    .arg(slot)
                    .arg(ALL_KEYS);
            }
            let mut node = call.on(primary.conn.clone());
            Some(async move { node.pipe::<Vec<Vec<Vec<u8>>>>(&pipe).await })
        });
        let per_node = futures::future::try_join_all(asks).await?;
        Ok(per_node.into_iter().flatten().flatten().collect())
    }
}

/// The literal prefix a pattern `KeyLayout` built stands for: `pattern` less its final `*`,
/// glob escapes removed; `None` if any other glob character is left.
fn literal_prefix(pattern: &str) -> Option<String> {
    let body = pattern.strip_suffix('*')?;
    let mut out = String::with_capacity(body.len());
    let mut chars = body.chars();
    while let Some(ch) = chars.next() {
        match ch {
            '\\' => out.push(chars.next()?),
            '*' | '?' | '[' | ']' => return None,
            other => out.push(other),
        }
    }
    Some(out)
}

/// A cluster walk's place in one `u64`: the next slot (plus one, so 0 stays "start") in the
/// top 16 bits, the slots the next page takes in the low bits.
mod slot_cursor {
    const SLOT_SHIFT: u32 = 48;
    const SPAN_MASK: u64 = (1 << SLOT_SHIFT) - 1;

    pub(super) fn encode(slot: u16, span: u64) -> u64 {
        ((u64::from(slot) + 1) << SLOT_SHIFT) | (span & SPAN_MASK)
    }

    /// (next slot, slots to take); `None` for 0, the start. A cursor from elsewhere decodes
    /// to some slot and span, never out of range.
    pub(super) fn decode(cursor: u64) -> Option<(u16, u64)> {
        let slot = cursor >> SLOT_SHIFT;
        (slot > 0).then(|| {
            let slot = u16::try_from(slot - 1)
                .unwrap_or(u16::MAX)
                .min(super::SLOTS);
            (slot, (cursor & SPAN_MASK).clamp(1, super::MAX_SPAN))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::glob_escape;

    #[test]
    fn cursors_round_trip() {
        assert_eq!(slot_cursor::decode(0), None);
        for (slot, span) in [(0, 1), (17, 64), (16383, MAX_SPAN)] {
            assert_eq!(
                slot_cursor::decode(slot_cursor::encode(slot, span)),
                Some((slot, span))
            );
        }
        assert_eq!(slot_cursor::decode(u64::MAX), Some((SLOTS, MAX_SPAN)));
    }

    #[test]
    fn patterns_give_back_their_prefix() {
        for prefix in ["session:", "a*b?c[d]\\e:", ""] {
            let pattern = format!("{}*", glob_escape(prefix));
            assert_eq!(literal_prefix(&pattern).as_deref(), Some(prefix));
        }
        assert_eq!(literal_prefix("a*b*"), None);
        assert_eq!(literal_prefix("ab"), None);
        assert_eq!(literal_prefix("ab\\*"), None);
    }
}
