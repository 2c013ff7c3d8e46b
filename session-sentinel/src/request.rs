//! One request as the Redis backend hands it over (a command, or a pipeline with the replies it
//! wants), and the same request with `WAIT` appended.

use std::ops::Range;
use std::time::Duration;

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::{Cmd, Pipeline, RedisResult, Value};

#[derive(Clone, Copy)]
pub(crate) enum Request<'a> {
    Cmd(&'a Cmd),
    /// `offset` replies skipped, `count` kept (what `Pipeline::query_async` asks for; an
    /// atomic pipeline skips `MULTI`'s and the `QUEUED` replies and keeps `EXEC`'s).
    Pipe {
        pipe: &'a Pipeline,
        offset: usize,
        count: usize,
    },
}

impl Request<'_> {
    /// Sends it as it is; the replies the caller asked for.
    pub(crate) async fn send(&self, conn: &mut MultiplexedConnection) -> RedisResult<Vec<Value>> {
        match *self {
            Request::Cmd(cmd) => conn.req_packed_command(cmd).await.map(|v| vec![v]),
            Request::Pipe {
                pipe,
                offset,
                count,
            } => conn.req_packed_commands(pipe, offset, count).await,
        }
    }

    /// The same commands followed by `WAIT replicas timeout`, as a plain pipeline whose every
    /// reply is kept (a transaction's `MULTI`/`EXEC` spelled out, since `WAIT` must follow
    /// `EXEC`): the pipeline, where the caller's replies are in the replies, and the number of
    /// replies (`WAIT`'s is the last).
    pub(crate) fn with_wait(
        &self,
        replicas: u32,
        timeout: Duration,
    ) -> (Pipeline, Range<usize>, usize) {
        let mut out = redis::pipe();
        let kept = match *self {
            Request::Cmd(cmd) => {
                out.add_command(cmd.clone());
                0..1
            }
            Request::Pipe {
                pipe,
                offset,
                count,
            } => {
                if pipe.is_transaction() {
                    out.cmd("MULTI");
                }
                for cmd in pipe.cmd_iter() {
                    out.add_command(cmd.clone());
                }
                if pipe.is_transaction() {
                    out.cmd("EXEC");
                }
                offset..offset + count
            }
        };
        out.cmd("WAIT")
            .arg(replicas)
            .arg(u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX));
        let total = out.len();
        (out, kept, total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_follows_exec_and_the_callers_replies_are_located() {
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("SET")
            .arg("k")
            .arg("v")
            .cmd("ZADD")
            .arg("i")
            .arg(1)
            .arg("k");
        let request = Request::Pipe {
            pipe: &pipe,
            offset: 3,
            count: 1,
        };
        let (out, kept, total) = request.with_wait(1, Duration::from_millis(250));
        let names: Vec<Vec<u8>> = out
            .cmd_iter()
            .map(|c| match c.args_iter().next() {
                Some(redis::Arg::Simple(name)) => name.to_vec(),
                _ => Vec::new(),
            })
            .collect();
        let names: Vec<&[u8]> = names.iter().map(Vec::as_slice).collect();
        assert_eq!(names, [&b"MULTI"[..], b"SET", b"ZADD", b"EXEC", b"WAIT"]);
        assert_eq!(kept, 3..4); // EXEC's reply
        assert_eq!(total, 5);
        assert!(!out.is_transaction());

        let cmd = redis::cmd("DEL");
        let (out, kept, total) = Request::Cmd(&cmd).with_wait(2, Duration::from_millis(10));
        assert_eq!((out.len(), kept, total), (2, 0..1, 2));
    }
}
