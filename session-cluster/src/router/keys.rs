//! Where a command goes: the slot of its first key, or, for commands naming none, any
//! primary (`SCRIPT` to every primary, so a script is loaded wherever it will run).
//!
//! The `redis` crate knows this table but keeps it to its own cluster client; this one
//! covers the commands a session store sends and errs towards "first argument is a key".

use redis::{Cmd, Pipeline};
use session_redis::command::{first_key, simple_args};
use session_redis::keys::key_slot;

use super::NodeAddr;

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Dest {
    /// The primary serving this slot.
    Slot(u16),
    /// This node.
    Node(NodeAddr),
    /// Any primary.
    Any,
    /// Every primary (the first answer is the reply).
    AllPrimaries,
}

/// Commands that name no key.
const KEYLESS: &[&str] = &[
    "ASKING",
    "AUTH",
    "CLIENT",
    "CLUSTER",
    "COMMAND",
    "CONFIG",
    "DBSIZE",
    "DEBUG",
    "DISCARD",
    "ECHO",
    "EXEC",
    "FLUSHALL",
    "FLUSHDB",
    "FUNCTION",
    "HELLO",
    "INFO",
    "KEYS",
    "LATENCY",
    "MULTI",
    "PING",
    "READONLY",
    "READWRITE",
    "ROLE",
    "SCAN",
    "SELECT",
    "SLOWLOG",
    "TIME",
    "UNWATCH",
    "WAIT",
];

/// Where `cmd` goes.
pub(crate) fn dest_of(cmd: &Cmd) -> Dest {
    let mut args = simple_args(cmd);
    let Some(name) = args.next() else {
        return Dest::Any;
    };
    let name = String::from_utf8_lossy(name).to_ascii_uppercase();
    let key = match name.as_str() {
        "SCRIPT" => return Dest::AllPrimaries,
        "MEMORY" | "OBJECT" | "XINFO" => {
            let _sub = args.next();
            args.next()
        }
        other if KEYLESS.contains(&other) => return Dest::Any,
        _ => first_key(cmd),
    };
    key.map_or(Dest::Any, |k| Dest::Slot(key_slot(k)))
}

/// Where `pipe` goes: the slot of the first command that names a key (a pipeline's keys
/// share a slot); any primary when none does.
pub(crate) fn dest_of_pipe(pipe: &Pipeline) -> Dest {
    pipe.cmd_iter()
        .map(dest_of)
        .find(|d| matches!(d, Dest::Slot(_)))
        .unwrap_or(Dest::Any)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(parts: &[&str]) -> Cmd {
        let mut c = redis::cmd(parts[0]);
        for p in &parts[1..] {
            c.arg(*p);
        }
        c
    }

    #[test]
    fn keys_are_found_where_each_command_names_them() {
        let slot = |k: &str| Dest::Slot(key_slot(k.as_bytes()));
        assert_eq!(dest_of(&cmd(&["GET", "session:a"])), slot("session:a"));
        assert_eq!(dest_of(&cmd(&["zadd", "idx{x}", "1", "m"])), slot("idx{x}"));
        assert_eq!(
            dest_of(&cmd(&["EVALSHA", "abc", "2", "k1", "k2", "arg"])),
            slot("k1")
        );
        assert_eq!(dest_of(&cmd(&["EVALSHA", "abc", "0", "arg"])), Dest::Any);
        assert_eq!(
            dest_of(&cmd(&["MEMORY", "USAGE", "session:a"])),
            slot("session:a")
        );
        assert_eq!(dest_of(&cmd(&["CLUSTER", "SLOTS"])), Dest::Any);
        assert_eq!(
            dest_of(&cmd(&["SCRIPT", "LOAD", "return 1"])),
            Dest::AllPrimaries
        );
        assert_eq!(dest_of(&cmd(&["PING"])), Dest::Any);

        let mut tx = redis::pipe();
        tx.atomic()
            .cmd("SET")
            .arg("session:b")
            .arg(1)
            .cmd("ZADD")
            .arg("x")
            .arg(1)
            .arg("m");
        assert_eq!(dest_of_pipe(&tx), slot("session:b"));
    }
}
