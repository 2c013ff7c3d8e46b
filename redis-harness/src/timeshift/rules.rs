//! What a pass does to one key: pure decisions from the key's name, `PTTL` and expiry (see the
//! [module](super) docs for the rules and why).

use super::PIN_MS;

/// What a key under the prefix is, by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// `{prefix}{storage id}`: no `~` after the prefix. Its expiry: its `~exp` score.
    Session,
    /// `{prefix}~user:{hex}`. Its expiry: the latest `~exp` score among its members.
    UserIndex,
    /// Anything else (`{prefix}~exp`, …): no expiry.
    Other,
}

impl Kind {
    /// The kind of `key`, which starts with a prefix of `prefix_len` bytes.
    pub(super) fn of(key: &[u8], prefix_len: usize) -> Kind {
        let suffix = key.get(prefix_len..).unwrap_or_default();
        if !suffix.contains(&b'~') {
            Kind::Session
        } else if suffix.starts_with(b"~user:") {
            Kind::UserIndex
        } else {
            Kind::Other
        }
    }

    /// The kind's code in the read script (`read.lua`).
    pub(super) fn code(self) -> &'static str {
        match self {
            Kind::Session => "s",
            Kind::UserIndex => "u",
            Kind::Other => "o",
        }
    }
}

/// One key's change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Change {
    Delete,
    /// `PEXPIRE` with this many ms.
    Expire(i64),
    Persist,
}

/// What happens to a key when the clock jumped `dv` ms, given its `PTTL` (`-2` gone, `-1` no
/// TTL) and `left`, its expiry less the clock's time now, if it has one.
pub(super) fn decide(pttl: i64, left: Option<i64>, dv: i64) -> Option<Change> {
    if pttl == -2 {
        return None; // gone since the SCAN
    }
    match left {
        Some(r) if r <= 0 => Some(Change::Delete),
        // Pinned, or pinned already (no TTL: no command).
        Some(r) if r < PIN_MS => (pttl != -1).then_some(Change::Persist),
        Some(r) => Some(Change::Expire(r)),
        // No expiry known and no TTL: whoever wrote it chose so.
        None if pttl == -1 => None,
        None if pttl - dv > 0 => Some(Change::Expire(pttl - dv)),
        None => Some(Change::Delete),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expire(ttl: i64) -> Option<Change> {
        Some(Change::Expire(ttl))
    }

    const DELETE: Option<Change> = Some(Change::Delete);
    const PERSIST: Option<Change> = Some(Change::Persist);

    #[test]
    fn keys_are_told_apart_by_name() {
        let kind = |key: &str| Kind::of(key.as_bytes(), "t[1]:".len());
        assert_eq!(kind("t[1]:abc"), Kind::Session);
        assert_eq!(kind("t[1]:~user:61"), Kind::UserIndex);
        assert_eq!(kind("t[1]:~exp"), Kind::Other);
        assert_eq!(kind("t[1]:~other:x"), Kind::Other);
    }

    #[test]
    fn keys_with_an_expiry_get_exactly_their_virtual_time_left() {
        // TTL drifted 300 ms in real time: corrected to the expiry.
        assert_eq!(decide(39_700, Some(30_000), 10_000), expire(30_000));
        // Longer than the expiry (another writer's EXPIRE): the expiry too.
        assert_eq!(decide(41_000, Some(30_000), 10_000), expire(30_000));
        // At or past the expiry: deleted.
        assert_eq!(decide(10_000, Some(0), 10_000), DELETE);
        assert_eq!(decide(10_900, Some(0), 10_000), DELETE);
        assert_eq!(decide(5_000, Some(-1), 10_000), DELETE);
        // No TTL (a writer's PERSIST, or pinned) with an expiry: by the expiry.
        assert_eq!(decide(-1, Some(30_000), 10_000), expire(30_000));
        assert_eq!(decide(-1, Some(-5), 10_000), DELETE);
        // Gone since the SCAN: nothing.
        assert_eq!(decide(-2, Some(30_000), 10_000), None);
    }

    #[test]
    fn keys_near_their_end_are_pinned_then_released() {
        assert_eq!(decide(99_999, Some(1), 99_998), PERSIST);
        assert_eq!(decide(5_000, Some(1), 4_999), PERSIST);
        assert_eq!(decide(2_100, Some(PIN_MS - 1), 100), PERSIST);
        assert_eq!(decide(2_100, Some(PIN_MS), 100), expire(PIN_MS));
        // Already pinned: stays so without a command.
        assert_eq!(decide(-1, Some(1_500), 10), None);
        // Its expiry passed: deleted.
        assert_eq!(decide(-1, Some(0), 1), DELETE);
        // The store moved its expiry: a TTL again.
        assert_eq!(decide(-1, Some(90_000), 1), expire(90_000));
    }

    #[test]
    fn keys_without_an_expiry_shift_by_the_jump() {
        assert_eq!(decide(50_000, None, 10_000), expire(40_000));
        assert_eq!(decide(10_001, None, 10_000), expire(1));
        assert_eq!(decide(10_000, None, 10_000), DELETE);
        assert_eq!(decide(0, None, 10_000), DELETE);
        // No TTL: left alone (`~exp`, or another writer's choice).
        assert_eq!(decide(-1, None, 10_000), None);
        assert_eq!(decide(-2, None, 10_000), None);
    }
}
