//! Following the cluster's redirections and refusals, for every request the
//! [`Router`](crate::router) sends:
//!
//! - `MOVED slot host:port`: at once, to that node; the router's map learns the slot's new
//!   owner, and a `CLUSTER SLOTS` refresh starts beside the request.
//! - `ASK slot host:port`: at once, to that node, each command preceded by `ASKING` (Redis
//!   honours `ASKING` for the next command only, or for a whole `MULTI … EXEC`).
//! - `TRYAGAIN`, `CLUSTERDOWN`, `MASTERDOWN`, `LOADING`, `READONLY`, a lost or refused
//!   connection, no known owner: by the map again after a wait that doubles from
//!   [`Follow::min_wait`] up to [`Follow::max_wait`], a refresh started meanwhile.
//! - A timeout ends the request (what it sent may have run); so does any other error.
//!
//! A request's whole life is bounded by the store's deadline around it; [`Follow::retries`]
//! only keeps a request from looping when no deadline is set.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use redis::{Cmd, ErrorKind, Pipeline, RedisError, RedisResult, RetryMethod, Value};
use session_redis::error::aborted_transaction_cause;

use crate::router::{Dest, NodeAddr, Router};

/// How a [`ClusterConn`](crate::ClusterConn) repeats a request the cluster redirected or
/// refused: at once after `MOVED` or `ASK` (to the node named), after a wait that doubles
/// from `min_wait` to `max_wait` after `TRYAGAIN`, `CLUSTERDOWN`, `READONLY` or a lost
/// connection; never after a timeout (what was sent may have run).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Follow {
    /// Attempts after the first, at most.
    pub retries: u32,
    /// The first wait before repeating a refused request.
    pub min_wait: Duration,
    /// The longest wait between two attempts.
    pub max_wait: Duration,
}

impl Follow {
    /// Waits that fit `response_timeout`: from 10 ms, doubling, at most a quarter of it, 48
    /// attempts (a `TRYAGAIN` lasts one `MIGRATE` batch, milliseconds; a failover, seconds).
    pub fn within(response_timeout: Duration) -> Self {
        let min_wait = Duration::from_millis(10);
        Follow {
            retries: 48,
            min_wait,
            max_wait: (response_timeout / 4).max(min_wait),
        }
    }

    fn wait(&self, attempt: u32) -> Duration {
        let doubled = self
            .min_wait
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
        doubled.min(self.max_wait)
    }
}

impl Default for Follow {
    fn default() -> Self {
        Follow::within(Duration::from_secs(1))
    }
}

/// Where one attempt goes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    /// Where the request's own destination resolves to in the router's map now.
    Routed,
    /// This node; `asking`: after an `ASK`.
    Node { node: NodeAddr, asking: bool },
}

/// Sends a request bound for `dest` with `send(node, asking)` until it answers without a
/// redirection or refusal, following them as the [module](self) docs say. For
/// [`Dest::AllPrimaries`], every primary is asked and the first answer is the reply (an error
/// only when none answered).
pub(crate) async fn follow<T, F, Fut>(
    router: &Arc<Router>,
    policy: Follow,
    dest: Dest,
    mut send: F,
) -> RedisResult<T>
where
    F: FnMut(NodeAddr, bool) -> Fut,
    Fut: Future<Output = RedisResult<T>>,
{
    let mut target = Target::Routed;
    let mut tries = 0;
    loop {
        let result = match &target {
            Target::Node { node, asking } => send(node.clone(), *asking).await,
            Target::Routed => match router.resolve(&dest) {
                Some(nodes) if !nodes.is_empty() => {
                    // Every node is asked; one answer is enough. (Only `SCRIPT LOAD` goes to
                    // every primary: the one that asked for the script must have it, and a
                    // primary that is down must not fail the writes to the others.)
                    let asks: Vec<Fut> = nodes.into_iter().map(|n| send(n, false)).collect();
                    let mut first = None;
                    let mut failed = None;
                    for answer in futures::future::join_all(asks).await {
                        match answer {
                            Ok(v) => first = first.or(Some(v)),
                            Err(e) => failed = failed.or(Some(e)),
                        }
                    }
                    match (first, failed) {
                        (Some(v), _) => Ok(v),
                        (None, Some(e)) => Err(e),
                        (None, None) => Err(no_owner()),
                    }
                }
                _ => Err(no_owner()),
            },
        };
        let err = match result {
            Ok(value) => return Ok(value),
            Err(err) => refusal_in_aborted(err),
        };
        tries += 1;
        // A timeout ends the request: what it sent may have run.
        if tries > policy.retries || err.is_timeout() {
            return Err(err);
        }
        let redirect = err.redirect_node().and_then(|(addr, slot)| {
            let (host, port) = addr.rsplit_once(':')?;
            Some((NodeAddr::new(host, port.parse().ok()?), slot))
        });
        target = match (err.retry_method(), redirect) {
            (RetryMethod::MovedRedirect, Some((node, slot))) => {
                router.moved(slot, node.clone());
                router.refresh_soon();
                Target::Node {
                    node,
                    asking: false,
                }
            }
            (RetryMethod::AskRedirect, Some((node, _))) => Target::Node { node, asking: true },
            (RetryMethod::NoRetry, _) => return Err(err),
            _ => {
                router.refresh_soon();
                tokio::time::sleep(policy.wait(tries)).await;
                Target::Routed
            }
        };
    }
}

/// A transaction the cluster turned away whole (`EXECABORT`, nothing in it ran) because its
/// commands were redirected or refused while queued (`MOVED`, `ASK`, `TRYAGAIN`,
/// `CLUSTERDOWN`): that refusal, so it is followed like a single command's. Any other error
/// is returned as it is.
fn refusal_in_aborted(err: RedisError) -> RedisError {
    match aborted_transaction_cause(&err) {
        Some(refusal) if !matches!(refusal.retry_method(), RetryMethod::NoRetry) => refusal,
        _ => err,
    }
}

/// No primary serves the request's slot in the router's map (yet).
fn no_owner() -> RedisError {
    RedisError::from((
        ErrorKind::Server(redis::ServerErrorKind::ClusterDown),
        "no known primary serves the slot",
    ))
}

/// `cmd` after `ASKING`, as a pipeline whose one answer (at offset 1) is `cmd`'s.
pub(crate) fn asking_cmd(cmd: &Cmd) -> Pipeline {
    let mut pipe = redis::pipe();
    pipe.cmd("ASKING").add_command(cmd.clone());
    pipe
}

/// `pipeline` for after an `ASK`, with the `offset` and `count` that pick the same answers:
/// a transaction behind one `ASKING` (it covers the whole `MULTI … EXEC`), other pipelines
/// with `ASKING` before each command (then the answers to keep are every second one: see
/// [`every_second`]).
pub(crate) fn asking_pipeline(pipeline: &Pipeline, offset: usize, count: usize) -> AskingPipe {
    let mut pipe = redis::pipe();
    if pipeline.is_transaction() {
        pipe.cmd("ASKING").cmd("MULTI");
        for cmd in pipeline.cmd_iter() {
            pipe.add_command(cmd.clone());
        }
        pipe.cmd("EXEC");
        AskingPipe {
            pipe,
            offset: offset + 1,
            count,
            interleaved: false,
        }
    } else {
        for cmd in pipeline.cmd_iter() {
            pipe.cmd("ASKING").add_command(cmd.clone());
        }
        AskingPipe {
            pipe,
            offset: offset * 2,
            count: count * 2,
            interleaved: true,
        }
    }
}

/// A pipeline rebuilt for an `ASK` (see [`asking_pipeline`]).
pub(crate) struct AskingPipe {
    pub(crate) pipe: Pipeline,
    pub(crate) offset: usize,
    pub(crate) count: usize,
    /// Answers alternate `ASKING`'s `OK` and the command's.
    pub(crate) interleaved: bool,
}

/// The commands' answers out of an interleaved reply (`OK`, answer, `OK`, answer, …).
pub(crate) fn every_second(values: Vec<Value>) -> Vec<Value> {
    values.into_iter().skip(1).step_by(2).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_the_bound() {
        let f = Follow::within(Duration::from_millis(200));
        let waits: Vec<u128> = (1..=5).map(|a| f.wait(a).as_millis()).collect();
        assert_eq!(waits, [10, 20, 40, 50, 50]);
        assert_eq!(f.wait(64), Duration::from_millis(50));
    }

    #[test]
    fn asking_goes_before_each_command_or_the_transaction() {
        let mut plain = redis::pipe();
        plain.cmd("GET").arg("a").cmd("PTTL").arg("a");
        let asked = asking_pipeline(&plain, 0, 2);
        let names: Vec<Vec<u8>> = asked
            .pipe
            .cmd_iter()
            .map(|c| c.get_packed_command())
            .collect();
        assert_eq!(names.len(), 4);
        assert!(String::from_utf8_lossy(&names[0]).contains("ASKING"));
        assert!(String::from_utf8_lossy(&names[2]).contains("ASKING"));
        assert_eq!((asked.offset, asked.count, asked.interleaved), (0, 4, true));
        assert_eq!(
            every_second(vec![Value::Okay, Value::Int(1), Value::Okay, Value::Int(2)]),
            vec![Value::Int(1), Value::Int(2)]
        );

        let mut tx = redis::pipe();
        tx.atomic().cmd("SET").arg("a").arg(1).cmd("GET").arg("a");
        let asked = asking_pipeline(&tx, 3, 1);
        assert_eq!(asked.pipe.cmd_iter().count(), 5); // ASKING MULTI SET GET EXEC
        assert_eq!(
            (asked.offset, asked.count, asked.interleaved),
            (4, 1, false)
        );
    }
}
