//! The Lua scripts behind the writes that touch more than one key and must branch on what
//! they read (a `Create` under a free id is a plain transaction instead: `store/native.rs`).
//!
//! Each script is `prelude.lua` (reading and classifying a stored value, composing the
//! metadata, index maintenance) followed by its own file. They run through [`redis::Script`],
//! so calls are `EVALSHA` and a server that lost its script cache (restart, failover,
//! `SCRIPT FLUSH`) gets the source again on `NOSCRIPT`.
//!
//! Scripts take `now` from the caller's clock, which stamps creation and expiry times; whether
//! a session exists is Redis's call (its key and TTL, see the [crate docs](crate)). They
//! return status codes ([`Status`]).

use std::sync::LazyLock;

use redis::Script;

macro_rules! script {
    ($file:literal) => {
        concat!(
            include_str!("lua/prelude.lua"),
            include_str!(concat!("lua/", $file))
        )
    };
}

/// A script without the prelude (it needs none of it).
macro_rules! bare_script {
    ($file:literal) => {
        include_str!(concat!("lua/", $file))
    };
}

/// Every script, loaded once per process (the sources are constants).
///
/// Each declares every key it touches, and the keys of one call share a hash slot (a session
/// key and the expiry index of its slot, see [`keys`](crate::keys)), so they run unchanged on
/// Redis Cluster.
#[derive(Debug)]
pub struct Scripts {
    /// `put` in every mode (`write.lua`).
    pub write: Script,
    /// `refresh`: slide the idle expiry (`refresh.lua`).
    pub refresh: Script,
    /// `rotate`: move to a fresh id in the same slot (`rotate.lua`).
    pub rotate: Script,
    /// `delete` (`delete.lua`).
    pub delete: Script,
    /// `list_user`, one slot's entries: which are live sessions of the user
    /// (`user_sessions.lua`).
    pub user_sessions: Script,
    /// `delete_user`, one slot's entries (`delete_user.lua`).
    pub delete_user: Script,
    /// `count` and `cleanup`: settle a batch of due expiry index entries (`settle.lua`).
    pub settle: Script,
    /// `cleanup`'s repair pass: drop expiry index members whose key is gone (`drop_gone.lua`).
    pub drop_gone: Script,
    /// `cleanup`'s pruning of a user index (`prune_user.lua`).
    pub prune_user: Script,
    /// `count` and `cleanup` under a per-slot layout: sizes of many slots' expiry indexes on
    /// one node (`index_sizes.lua`, allowed to touch several slots).
    pub index_sizes: Script,
    /// A native create's repair of an earlier session's expiry index entry: moved only if
    /// nobody moved it meanwhile (`replace_score.lua`, see `store/native.rs`).
    pub replace_score: Script,
    /// Bulk copy on Redis before 6.2: many sessions, `SET NX` and indexed (`import_batch.lua`,
    /// see `store/import.rs`).
    pub import_batch: Script,
}

static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| Scripts {
    write: Script::new(script!("write.lua")),
    refresh: Script::new(script!("refresh.lua")),
    rotate: Script::new(script!("rotate.lua")),
    delete: Script::new(script!("delete.lua")),
    user_sessions: Script::new(script!("user_sessions.lua")),
    delete_user: Script::new(script!("delete_user.lua")),
    settle: Script::new(script!("settle.lua")),
    drop_gone: Script::new(bare_script!("drop_gone.lua")),
    prune_user: Script::new(bare_script!("prune_user.lua")),
    index_sizes: Script::new(bare_script!("index_sizes.lua")),
    import_batch: Script::new(script!("import_batch.lua")),
    replace_score: Script::new(bare_script!("replace_score.lua")),
});

/// The scripts.
pub fn scripts() -> &'static Scripts {
    &SCRIPTS
}

/// The status code a script returns first (see the constants in `prelude.lua`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Done.
    Ok,
    /// No live session there (absent or expired).
    Gone,
    /// The stored value's version is not the expected one.
    Stale,
    /// The id is taken by a live session (a `Create` put) or any key (rotate's new id).
    Taken,
    /// The stored value is not a session.
    Corrupt,
    /// The stored value has no metadata; the caller adopts it first (see `store::adopt`).
    Foreign,
    /// The write would make a session name a user whose index does not hold it yet: the
    /// caller adds the entry and calls again (see [`keys`](crate::keys)).
    Unindexed,
}

impl Status {
    /// Decodes a script's status code.
    pub fn from_code(code: i64) -> Option<Status> {
        Some(match code {
            1 => Status::Ok,
            0 => Status::Gone,
            -1 => Status::Stale,
            -3 => Status::Taken,
            -2 => Status::Corrupt,
            -4 => Status::Foreign,
            -5 => Status::Unindexed,
            _ => return None,
        })
    }
}
