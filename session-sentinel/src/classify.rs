//! Which requests are writes, and which durability setting covers them, decided by command
//! name so that a native write path (`MULTI`/`SET`/`ZADD`/`EXEC`, `SET NX`) is covered as
//! surely as the Redis backend's scripts.
//!
//! - **Reads** are a known list (`GET`, `MGET`, `PTTL`, `ZSCORE`, `ZRANGE…`, `SCAN`, …, and the
//!   `_RO` script commands). **Connection and script-cache commands** (`SCRIPT LOAD`,
//!   `CLIENT`, `HELLO`, `SELECT`, the `MULTI`/`EXEC` brackets, `WAIT`) change no data. Neither
//!   is fenced nor waited for.
//! - **Revocations** delete keys: `DEL`, `UNLINK`, `GETDEL`, `RENAME`, and the backend's
//!   `delete`, `delete_user` and `rotate` scripts. They take `revoke_durability`.
//! - **Maintenance**: the backend's `drop_gone` script, which only repairs an index (losing it
//!   in a failover costs nothing the next cleanup does not redo). Fenced, never waited for.
//! - **Everything else is a save** and takes `save_durability`: any other command, and any
//!   script not known (`EVALSHA`/`EVAL`/`FCALL` of something this list does not name).
//!
//! A pipeline is covered by the strongest durability any of its commands needs.

use std::collections::HashMap;

use redis::{Arg, Cmd, Pipeline};

use crate::config::{Durability, SentinelConfig};

/// What one command does, for fencing and `WAIT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    /// Changes no data: neither fenced nor waited for.
    Other,
    /// An index repair: fenced, never waited for.
    Maintenance,
    /// `save_durability`.
    Save,
    /// `revoke_durability`.
    Revoke,
}

/// How a request is carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Handling {
    /// Not a write.
    Read,
    /// A write, acknowledged as the master answers (fenced).
    Async,
    /// A write followed by `WAIT` on a connection of its own (fenced).
    Replicated {
        replicas: u32,
        timeout: std::time::Duration,
    },
}

/// Commands that read (or only report) and never change data.
const READS: &[&str] = &[
    "GET",
    "MGET",
    "PTTL",
    "TTL",
    "PEXPIRETIME",
    "EXPIRETIME",
    "EXISTS",
    "TYPE",
    "STRLEN",
    "GETRANGE",
    "ZSCORE",
    "ZMSCORE",
    "ZCARD",
    "ZCOUNT",
    "ZRANK",
    "ZREVRANK",
    "ZSCAN",
    "SCAN",
    "PING",
    "ECHO",
    "INFO",
    "ROLE",
    "TIME",
    "DBSIZE",
    "EVAL_RO",
    "EVALSHA_RO",
    "FCALL_RO",
];

/// Commands about the connection or the script cache: they change no session data, and
/// waiting for a replica after them would only fail a `NOSCRIPT` reload on a degraded master.
const NOT_DATA: &[&str] = &[
    "SCRIPT",
    "CLIENT",
    "HELLO",
    "AUTH",
    "SELECT",
    "QUIT",
    "RESET",
    "WAIT",
    "WAITAOF",
    "MULTI",
    "EXEC",
    "DISCARD",
    "WATCH",
    "UNWATCH",
    "READONLY",
    "READWRITE",
    "COMMAND",
];

/// Commands that delete keys: what a lost revocation brings back.
const DELETES: &[&str] = &[
    "DEL", "UNLINK", "GETDEL", "RENAME", "RENAMENX", "FLUSHDB", "FLUSHALL",
];

/// Classifies commands; built once per connection from the Redis backend's scripts.
#[derive(Debug)]
pub(crate) struct Classifier {
    /// Script SHA1 (lowercase hex) to class, for the backend's scripts.
    scripts: HashMap<String, Class>,
}

impl Classifier {
    pub(crate) fn new() -> Self {
        let s = session_redis::scripts::scripts();
        let known = [
            (&s.write, Class::Save),
            (&s.refresh, Class::Save),
            (&s.import_batch, Class::Save),
            (&s.delete, Class::Revoke),
            (&s.delete_user, Class::Revoke),
            (&s.rotate, Class::Revoke),
            (&s.drop_gone, Class::Maintenance),
            // count's and cleanup's settling of due entries and pruning of user indexes
            (&s.settle, Class::Maintenance),
            (&s.prune_user, Class::Maintenance),
            // list_user's check of its entries; count's walk over per-slot indexes
            (&s.user_sessions, Class::Other),
            (&s.index_sizes, Class::Other),
        ];
        Classifier {
            scripts: known
                .into_iter()
                .map(|(script, class)| (script.get_hash().to_owned(), class))
                .collect(),
        }
    }

    /// The class of one command.
    pub(crate) fn command(&self, cmd: &Cmd) -> Class {
        let mut args = cmd.args_iter().map(|a| match a {
            Arg::Simple(bytes) => bytes,
            _ => &[][..],
        });
        let Some(name) = args.next() else {
            return Class::Other;
        };
        let is = |list: &[&str]| list.iter().any(|n| name.eq_ignore_ascii_case(n.as_bytes()));
        let starts = |prefix: &str| {
            name.len() >= prefix.len()
                && name[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
        };
        if is(READS) || is(NOT_DATA) {
            return Class::Other;
        }
        // ZRANGE, ZRANGEBYSCORE, ZREVRANGEBYLEX, …; ZRANGESTORE writes.
        if (starts("ZRANGE") || starts("ZREVRANGE")) && !name.eq_ignore_ascii_case(b"ZRANGESTORE") {
            return Class::Other;
        }
        if is(DELETES) {
            return Class::Revoke;
        }
        if name.eq_ignore_ascii_case(b"EVALSHA") {
            return self.script(args.next().and_then(|sha| std::str::from_utf8(sha).ok()));
        }
        if name.eq_ignore_ascii_case(b"EVAL") {
            let sha = args
                .next()
                .and_then(|body| std::str::from_utf8(body).ok())
                .map(|body| redis::Script::new(body).get_hash().to_owned());
            return self.script(sha.as_deref());
        }
        Class::Save
    }

    fn script(&self, sha: Option<&str>) -> Class {
        sha.and_then(|sha| self.scripts.get(&sha.to_ascii_lowercase()))
            .copied()
            .unwrap_or(Class::Save)
    }

    /// How a single command is carried out under `config`.
    pub(crate) fn handling_of_command(&self, config: &SentinelConfig, cmd: &Cmd) -> Handling {
        handling(config, [self.command(cmd)])
    }

    /// How a pipeline is carried out: the strongest handling any command in it needs.
    pub(crate) fn handling_of_pipeline(
        &self,
        config: &SentinelConfig,
        pipe: &Pipeline,
    ) -> Handling {
        handling(config, pipe.cmd_iter().map(|c| self.command(c)))
    }
}

/// The body of a `SCRIPT LOAD`, if `cmd` is one.
pub(crate) fn script_load_body(cmd: &Cmd) -> Option<&[u8]> {
    let mut args = cmd.args_iter();
    let mut next = || match args.next() {
        Some(Arg::Simple(bytes)) => Some(bytes),
        _ => None,
    };
    let (script, load, body) = (next()?, next()?, next()?);
    (script.eq_ignore_ascii_case(b"SCRIPT") && load.eq_ignore_ascii_case(b"LOAD")).then_some(body)
}

fn handling(config: &SentinelConfig, classes: impl IntoIterator<Item = Class>) -> Handling {
    let mut out = Handling::Read;
    for class in classes {
        let this = match class {
            Class::Other => Handling::Read,
            Class::Maintenance => Handling::Async,
            Class::Save => from(config.save_durability),
            Class::Revoke => from(config.revoke_durability),
        };
        out = stronger(out, this);
    }
    out
}

fn from(durability: Durability) -> Handling {
    match durability {
        Durability::Async => Handling::Async,
        Durability::Replicated { replicas, timeout } => Handling::Replicated { replicas, timeout },
    }
}

/// More replicas wins; then the longer timeout.
fn stronger(a: Handling, b: Handling) -> Handling {
    let rank = |h: &Handling| match h {
        Handling::Read => (0, 0, std::time::Duration::ZERO),
        Handling::Async => (1, 0, std::time::Duration::ZERO),
        Handling::Replicated { replicas, timeout } => (2, *replicas, *timeout),
    };
    if rank(&b) > rank(&a) {
        b
    } else {
        a
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn config(save: Durability, revoke: Durability) -> SentinelConfig {
        let mut c = SentinelConfig::new(vec![("s".into(), 1)]);
        c.save_durability = save;
        c.revoke_durability = revoke;
        c
    }

    const ONE: Durability = Durability::Replicated {
        replicas: 1,
        timeout: Duration::from_millis(250),
    };
    const TWO: Durability = Durability::Replicated {
        replicas: 2,
        timeout: Duration::from_millis(100),
    };

    fn cmd(parts: &[&str]) -> Cmd {
        let mut c = redis::cmd(parts[0]);
        for p in &parts[1..] {
            c.arg(*p);
        }
        c
    }

    #[test]
    fn reads_and_connection_commands_are_not_writes() {
        let k = Classifier::new();
        for parts in [
            &["GET", "k"][..],
            &["mget", "a", "b"],
            &["PTTL", "k"],
            &["ZRANGEBYSCORE", "i", "0", "1"],
            &["ZREVRANGE", "i", "0", "1"],
            &["ZSCAN", "i", "0"],
            &["SCAN", "0"],
            &["SCRIPT", "LOAD", "return 1"],
            &["CLIENT", "INFO"],
            &["MULTI"],
            &["EVALSHA_RO", "abc", "0"],
        ] {
            assert_eq!(k.command(&cmd(parts)), Class::Other, "{parts:?}");
        }
    }

    #[test]
    fn native_writes_are_saves_and_deletes_are_revocations() {
        let k = Classifier::new();
        for parts in [
            &["SET", "k", "v", "NX"][..],
            &["ZADD", "i", "1", "m"],
            &["PEXPIRE", "k", "10"],
            &["ZRANGESTORE", "d", "s", "0", "1"],
            &["ZREM", "i", "m"],
            &["SOMETHING_NEW", "k"],
        ] {
            assert_eq!(k.command(&cmd(parts)), Class::Save, "{parts:?}");
        }
        for parts in [
            &["DEL", "k"][..],
            &["unlink", "k"],
            &["GETDEL", "k"],
            &["RENAME", "a", "b"],
        ] {
            assert_eq!(k.command(&cmd(parts)), Class::Revoke, "{parts:?}");
        }
    }

    #[test]
    fn scripts_are_known_by_hash_and_unknown_ones_are_saves() {
        let k = Classifier::new();
        let s = session_redis::scripts::scripts();
        let evalsha = |script: &redis::Script| cmd(&["EVALSHA", script.get_hash(), "1", "k"]);
        assert_eq!(k.command(&evalsha(&s.write)), Class::Save);
        assert_eq!(k.command(&evalsha(&s.refresh)), Class::Save);
        assert_eq!(k.command(&evalsha(&s.delete)), Class::Revoke);
        assert_eq!(k.command(&evalsha(&s.delete_user)), Class::Revoke);
        assert_eq!(k.command(&evalsha(&s.rotate)), Class::Revoke);
        assert_eq!(k.command(&evalsha(&s.drop_gone)), Class::Maintenance);
        let upper = s.delete.get_hash().to_ascii_uppercase();
        assert_eq!(k.command(&cmd(&["EVALSHA", &upper, "0"])), Class::Revoke);
        assert_eq!(k.command(&cmd(&["EVALSHA", "0123", "0"])), Class::Save);
        assert_eq!(
            k.command(&cmd(&[
                "EVAL",
                "return redis.call('DEL', KEYS[1])",
                "1",
                "k"
            ])),
            Class::Save
        );
        assert_eq!(k.command(&cmd(&["FCALL", "f", "0"])), Class::Save);
    }

    #[test]
    fn script_loads_are_recognised() {
        let load = cmd(&["script", "LOAD", "return 1"]);
        assert_eq!(script_load_body(&load), Some(&b"return 1"[..]));
        assert_eq!(script_load_body(&cmd(&["SCRIPT", "FLUSH"])), None);
        assert_eq!(script_load_body(&cmd(&["GET", "LOAD", "x"])), None);
    }

    #[test]
    fn handling_follows_the_two_durability_settings() {
        let k = Classifier::new();
        let c = config(Durability::Async, ONE);
        assert_eq!(
            k.handling_of_command(&c, &cmd(&["GET", "k"])),
            Handling::Read
        );
        assert_eq!(
            k.handling_of_command(&c, &cmd(&["SET", "k", "v"])),
            Handling::Async
        );
        assert!(matches!(
            k.handling_of_command(&c, &cmd(&["DEL", "k"])),
            Handling::Replicated { replicas: 1, .. }
        ));
        let drop_gone = session_redis::scripts::scripts()
            .drop_gone
            .get_hash()
            .to_owned();
        let c = config(ONE, ONE);
        assert_eq!(
            k.handling_of_command(&c, &cmd(&["EVALSHA", &drop_gone, "0"])),
            Handling::Async
        );
    }

    #[test]
    fn a_pipeline_takes_the_strongest_handling_in_it() {
        let k = Classifier::new();
        let c = config(TWO, ONE);
        let mut reads = redis::pipe();
        reads.cmd("GET").arg("k").cmd("PTTL").arg("k");
        assert_eq!(k.handling_of_pipeline(&c, &reads), Handling::Read);
        // A native rotate: a save and a delete in one transaction.
        let mut rotate = redis::pipe();
        rotate
            .atomic()
            .cmd("SET")
            .arg("new")
            .arg("v")
            .cmd("DEL")
            .arg("old");
        assert!(matches!(
            k.handling_of_pipeline(&c, &rotate),
            Handling::Replicated { replicas: 2, .. }
        ));
        let c = config(Durability::Async, ONE);
        assert!(matches!(
            k.handling_of_pipeline(&c, &rotate),
            Handling::Replicated { replicas: 1, .. }
        ));
        let mut save = redis::pipe();
        save.atomic()
            .cmd("SET")
            .arg("k")
            .arg("v")
            .cmd("ZADD")
            .arg("i")
            .arg(1)
            .arg("m");
        assert_eq!(k.handling_of_pipeline(&c, &save), Handling::Async);
    }
}
