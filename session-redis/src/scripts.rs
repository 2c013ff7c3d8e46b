//! The Lua scripts behind every write that touches more than one key.
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

/// Every script, loaded once per process (the sources are constants).
#[derive(Debug)]
pub struct Scripts {
    /// `put` in every mode (`write.lua`).
    pub write: Script,
    /// `refresh`: slide the idle expiry (`refresh.lua`).
    pub refresh: Script,
    /// `rotate`: move to a fresh id (`rotate.lua`).
    pub rotate: Script,
    /// `delete` (`delete.lua`).
    pub delete: Script,
    /// `list_user` (`list_user.lua`).
    pub list_user: Script,
    /// `delete_user` (`delete_user.lua`).
    pub delete_user: Script,
    /// One `cleanup` batch (`cleanup.lua`).
    pub cleanup: Script,
    /// `count`: settle due expiry index entries, then count (`count.lua`).
    pub count: Script,
    /// `cleanup`'s repair pass: drop index members whose key is gone (`drop_gone.lua`).
    pub drop_gone: Script,
    /// Bulk copy on Redis before 6.2: many sessions, `SET NX` and indexed (`import_batch.lua`,
    /// see `store/import.rs`).
    pub import_batch: Script,
}

static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| Scripts {
    write: Script::new(script!("write.lua")),
    refresh: Script::new(script!("refresh.lua")),
    rotate: Script::new(script!("rotate.lua")),
    delete: Script::new(script!("delete.lua")),
    list_user: Script::new(script!("list_user.lua")),
    delete_user: Script::new(script!("delete_user.lua")),
    cleanup: Script::new(script!("cleanup.lua")),
    count: Script::new(script!("count.lua")),
    drop_gone: Script::new(script!("drop_gone.lua")),
    import_batch: Script::new(script!("import_batch.lua")),
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
            _ => return None,
        })
    }
}
