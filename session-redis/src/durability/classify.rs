//! Which requests are writes, and which durability covers them (see the
//! [module docs](super)).

use std::time::Duration;

use redis::{Arg, Cmd, Pipeline};

use super::{Durability, DurabilityPolicy, Request};
use crate::command::{first_key, simple_args};

/// What one command does, for the durability that covers it (see the [module](super) docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Changes no data (a read, a connection or script-cache command): never waited for.
    Other,
    /// An index repair: a write, never waited for.
    Maintenance,
    /// Covered by [`DurabilityPolicy::save`].
    Save,
    /// Covered by [`DurabilityPolicy::revoke`].
    Revoke,
}

/// How a request is carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handling {
    /// Not a write.
    Read,
    /// A write, acknowledged as the primary answers.
    Async,
    /// A write followed by `WAIT replicas timeout` on a connection of its own.
    Replicated {
        /// Replicas that must confirm.
        replicas: u32,
        /// The `WAIT` timeout.
        timeout: Duration,
    },
}

impl Handling {
    /// The stronger of two: a write over a read, a replicated write over an async one, more
    /// replicas, then the longer timeout.
    pub fn stronger(self, other: Handling) -> Handling {
        let rank = |h: &Handling| match h {
            Handling::Read => (0, 0, Duration::ZERO),
            Handling::Async => (1, 0, Duration::ZERO),
            Handling::Replicated { replicas, timeout } => (2, *replicas, *timeout),
        };
        if rank(&other) > rank(&self) {
            other
        } else {
            self
        }
    }
}

impl From<Durability> for Handling {
    fn from(durability: Durability) -> Self {
        match durability {
            Durability::Async => Handling::Async,
            Durability::Replicated { replicas, timeout } => {
                Handling::Replicated { replicas, timeout }
            }
        }
    }
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

/// Commands about the connection, the script cache or the cluster: they change no session
/// data, and waiting for a replica after them would only fail a `NOSCRIPT` reload on a
/// degraded primary.
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
    "ASKING",
    "CLUSTER",
];

/// Commands that delete keys: what a lost revocation brings back.
const DELETES: &[&str] = &[
    "DEL", "UNLINK", "GETDEL", "RENAME", "RENAMENX", "FLUSHDB", "FLUSHALL",
];

/// Tells which commands are writes and which durability setting covers them (see the
/// [module](super) docs). Knows this crate's scripts by SHA1; build one per connection.
///
/// ```
/// use session_redis::durability::{Class, Classifier, DurabilityPolicy, Handling};
///
/// let classifier = Classifier::new();
/// assert_eq!(classifier.command(redis::cmd("GET").arg("k")), Class::Other);
/// assert_eq!(classifier.command(redis::cmd("UNLINK").arg("k")), Class::Revoke);
/// let policy = DurabilityPolicy::default(); // saves async, revocations 1 replica
/// let mut rotate = redis::pipe();
/// rotate.atomic().set("new", "v").del("old");
/// assert!(matches!(
///     classifier.handling_of_pipeline(&policy, &rotate),
///     Handling::Replicated { replicas: 1, .. }
/// ));
/// ```
#[derive(Debug, Clone)]
pub struct Classifier {
    /// Script SHA1 (lowercase hex) to class, for this crate's scripts.
    scripts: std::collections::HashMap<String, Class>,
}

impl Default for Classifier {
    fn default() -> Self {
        Self::new()
    }
}

impl Classifier {
    /// A classifier knowing this crate's scripts.
    pub fn new() -> Self {
        let s = crate::scripts::scripts();
        let known = [
            (&s.write, Class::Save),
            (&s.refresh, Class::Save),
            (&s.import_batch, Class::Save),
            (&s.replace_score, Class::Maintenance),
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
    pub fn command(&self, cmd: &Cmd) -> Class {
        let mut args = simple_args(cmd);
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

    /// The class of each command of a pipeline, in order.
    pub fn pipeline<'a>(&'a self, pipe: &'a Pipeline) -> impl Iterator<Item = Class> + 'a {
        pipe.cmd_iter().map(|c| self.command(c))
    }

    /// How a single command is carried out under `policy`.
    pub fn handling_of_command(&self, policy: &DurabilityPolicy, cmd: &Cmd) -> Handling {
        policy.handling([self.command(cmd)])
    }

    /// How a pipeline is carried out: the strongest handling any command in it needs.
    pub fn handling_of_pipeline(&self, policy: &DurabilityPolicy, pipe: &Pipeline) -> Handling {
        policy.handling(self.pipeline(pipe))
    }

    /// How a request is carried out under `policy`.
    pub fn handling(&self, policy: &DurabilityPolicy, request: Request<'_>) -> Handling {
        match request {
            Request::Cmd(cmd) => self.handling_of_command(policy, cmd),
            Request::Pipe { pipe, .. } => self.handling_of_pipeline(policy, pipe),
        }
    }

    /// The first key of the first command in `request` that changes data: the key whose
    /// slot a replicated write goes to on a cluster (the first key, or a script's first
    /// `KEYS` entry). `None` when no write names a key.
    pub fn written_key<'a>(&self, request: Request<'a>) -> Option<&'a [u8]> {
        request
            .commands()
            .filter(|cmd| self.command(cmd) != Class::Other)
            .find_map(first_key)
    }
}

/// The body of a `SCRIPT LOAD`, if `cmd` is one.
pub fn script_load_body(cmd: &Cmd) -> Option<&[u8]> {
    let mut args = cmd.args_iter();
    let mut next = || match args.next() {
        Some(Arg::Simple(bytes)) => Some(bytes),
        _ => None,
    };
    let (script, load, body) = (next()?, next()?, next()?);
    (script.eq_ignore_ascii_case(b"SCRIPT") && load.eq_ignore_ascii_case(b"LOAD")).then_some(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE: Durability = Durability::Replicated {
        replicas: 1,
        timeout: Duration::from_millis(250),
    };
    const TWO: Durability = Durability::Replicated {
        replicas: 2,
        timeout: Duration::from_millis(100),
    };

    fn policy(save: Durability, revoke: Durability) -> DurabilityPolicy {
        DurabilityPolicy { save, revoke }
    }

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
            &["CLUSTER", "SLOTS"],
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
        let s = crate::scripts::scripts();
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
        let p = policy(Durability::Async, ONE);
        assert_eq!(
            k.handling_of_command(&p, &cmd(&["GET", "k"])),
            Handling::Read
        );
        assert_eq!(
            k.handling_of_command(&p, &cmd(&["SET", "k", "v"])),
            Handling::Async
        );
        assert!(matches!(
            k.handling_of_command(&p, &cmd(&["DEL", "k"])),
            Handling::Replicated { replicas: 1, .. }
        ));
        let drop_gone = crate::scripts::scripts().drop_gone.get_hash().to_owned();
        let p = policy(ONE, ONE);
        assert_eq!(
            k.handling_of_command(&p, &cmd(&["EVALSHA", &drop_gone, "0"])),
            Handling::Async
        );
    }

    #[test]
    fn a_pipeline_takes_the_strongest_handling_in_it() {
        let k = Classifier::new();
        let p = policy(TWO, ONE);
        let mut reads = redis::pipe();
        reads.cmd("GET").arg("k").cmd("PTTL").arg("k");
        assert_eq!(k.handling_of_pipeline(&p, &reads), Handling::Read);
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
            k.handling_of_pipeline(&p, &rotate),
            Handling::Replicated { replicas: 2, .. }
        ));
        let p = policy(Durability::Async, ONE);
        assert!(matches!(
            k.handling_of_pipeline(&p, &rotate),
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
        assert_eq!(k.handling_of_pipeline(&p, &save), Handling::Async);
    }

    #[test]
    fn the_written_key_is_the_first_write_s_first_key() {
        let k = Classifier::new();
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("GET")
            .arg("read")
            .cmd("ZADD")
            .arg("index")
            .arg(1)
            .arg("m");
        let request = Request::Pipe {
            pipe: &pipe,
            offset: 3,
            count: 1,
        };
        assert_eq!(k.written_key(request), Some(&b"index"[..]));
        let write = crate::scripts::scripts().write.get_hash().to_owned();
        let script = cmd(&["EVALSHA", &write, "2", "session:x", "idx", "arg"]);
        assert_eq!(
            k.written_key(Request::Cmd(&script)),
            Some(&b"session:x"[..])
        );
        let keyless = cmd(&["EVALSHA", &write, "0", "arg"]);
        assert_eq!(k.written_key(Request::Cmd(&keyless)), None);
        assert_eq!(k.written_key(Request::Cmd(&cmd(&["GET", "k"]))), None);
    }
}
