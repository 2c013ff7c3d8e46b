//! Manual time for stores whose liveness Redis decides: [`TimeShifted`] moves every TTL in a
//! test's key space back whenever the test's clock jumps forward.
//!
//! The conformance suite drives stores with a [`ManualClock`](session_core::ManualClock): it
//! advances the clock by minutes, or to 1 ms before an expiry and then by that last
//! millisecond, and expects the store to see exactly that. A store whose sessions live while
//! their Redis key exists (Redis's TTL, Redis's clock) cannot follow such a clock, and Redis's
//! clock cannot be mocked (libfaketime does not work with Debian's `redis-server`). So the
//! harness moves Redis instead: before each operation, if the store's clock has moved by `dv`
//! since the last one, every expiry under the test's prefix moves `dv` closer, as if Redis's
//! clock had jumped with the test's.
//!
//! The layout this knows (see `session-redis`'s `keys` module):
//!
//! - session keys `{prefix}{storage id}` (no `~` after the prefix), whose TTL the store sets
//!   to exactly the session's expiry, which it also records as the score of `{storage id}` in
//!   the zset `{prefix}~exp`, in the store's own clock;
//! - user indexes `{prefix}~user:{hex}`, zsets of storage ids, with a TTL the store keeps as
//!   long as their longest-lived member's;
//! - anything else under the prefix (`{prefix}~exp` itself, usually without a TTL).
//!
//! A key's expiry, when the harness knows it, is a session key's `~exp` score, or for a user
//! index the latest `~exp` score among its members (not the index's own scores: a refresh
//! moves the `~exp` score and the index's TTL, not the member's score in the index). Rules,
//! with `now` the store's clock and `r = expiry - now` a key's virtual time left:
//!
//! - **Exact from the expiry.** A key with an expiry gets the TTL `r`, not its previous TTL
//!   minus `dv`: a TTL also counts down in real time, and that drift would add up over a test,
//!   so a `load` (which reports the expiry the TTL shows when the two disagree) would drift
//!   from the expiry the test expects, and a key could die in real time while the test's clock
//!   says it is live. (A TTL another writer set on an indexed session is replaced by the score
//!   too: the suites using this have no other writer.)
//! - **Pinned near the end.** A key with `0 < r <` [`PIN_MS`] is left without a TTL
//!   (`PERSIST`): with 1 ms of virtual life left it would otherwise die in real time before the
//!   test's next operation. A store reading a key without a TTL takes the score as its expiry
//!   and decides by its own clock, exactly; a user index pinned this way keeps `list_user`
//!   seeing a session the test's clock says is live. The next jump decides the key by its
//!   expiry again: a TTL, or deletion.
//! - **Dead at the expiry.** With `r <= 0` the key is deleted.
//! - **Everything else shifts.** Keys without an expiry (another writer's sessions, user
//!   indexes without an indexed member, other keys) get `PTTL - dv` if they have a TTL,
//!   deleted when that is `<= 0`; keys without a TTL are left alone.
//! - **Pinned after short writes.** A write can itself leave a key with less than [`PIN_MS`]:
//!   a session copied or imported with 1 ms of its lifetime left, a refresh just before an
//!   absolute expiry. After `put`, `rotate` and `refresh`, [`TimeShifted`] pins the session's
//!   key (and, for `put` and `rotate`, its user index) if their TTL came out that short, in one
//!   script call. This is a race it usually wins, not a guarantee: a key written with a 1 ms
//!   TTL can be gone before the call reaches Redis (about 1 in 40 runs of the migration
//!   suite's `load_expired_is_none` on an idle machine).
//!
//! The harness keeps no per-key state: a key it pinned carries its expiry in `~exp`, so the
//! next pass finds it there. Each pass is one `SCAN` of the prefix; per page, one script call
//! reads every key's `PTTL` and expiry and one pipeline applies the changes. Passes are
//! serialized and hold a lock that every operation through [`TimeShifted`] waits for, so no
//! wrapped operation runs during a pass. (An operation already running when the clock jumps
//! may race with the pass; the suite does not advance its clock while operations are in
//! flight.)
//!
//! Modules: `wrapper` ([`TimeShifted`], the [`SessionStore`](session_core::SessionStore)
//! delegation), `sync` ([`TimeShift`], the Redis work), `rules` (the per-key decisions).

mod rules;
mod sync;
mod wrapper;

pub use sync::{IndexOf, TimeShift};
pub use wrapper::TimeShifted;

/// A key with less virtual time than this left is pinned: left without a TTL, so real time
/// cannot end it before the test's clock does. Real time between two clock jumps is what this
/// must outlast: on a busy 2-core CI box a property case's operations between jumps (a whole
/// `scan` of a cluster among them) have taken seconds, so 2 s was too close.
pub const PIN_MS: i64 = 10_000;

/// Milliseconds of a [`Timestamp`](session_core::Timestamp) as the signed numbers Redis uses.
fn ms(millis: u64) -> i64 {
    i64::try_from(millis).unwrap_or(i64::MAX)
}
