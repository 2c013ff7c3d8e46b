//! Settling a write whose answer was lost: before the caller hears "outcome unknown", make
//! sure no later moment can apply it.
//!
//! What Redis does with a request whose connection goes away (pinned by `tests/settle.rs`
//! against a real server):
//! - a command queued behind a blocked one (behind a `WAIT`) is discarded when the client
//!   closes the connection: the server frees a blocked client as soon as it reads the end of
//!   the stream, without running what is queued;
//! - but a command the server has not read yet (a busy or stalled server) **is run** after a
//!   normal close: the server reads it before it reads the end of the stream. Closing our side
//!   is no cancellation.
//! - `CLIENT KILL` frees the client at once: from its reply on, nothing that connection sent
//!   and the server had not run yet will ever run.
//!
//! So each connection that carries writes records its server-side identity (`CLIENT INFO`:
//! `id` and `addr`), and when a write's answer is lost the store asks the server, on a fresh
//! connection, to `CLIENT KILL ID <id> ADDR <addr>` (the address guards against killing
//! another client of a restarted server that reuses the id). Settled means:
//! - the kill answered (1: killed now; 0: already gone, for example closed by Sentinel), or
//! - the fresh connection was refused: no process listens there any more, and the unread
//!   input of the one that did went with it. (A killed process's listener resets the
//!   connections it had queued before it refuses new ones; a reset is tried again.)
//!
//! Not settled: the server did not answer in time (stalled, partitioned), `CLIENT KILL` is
//! not permitted (ACL), or the server could not tell us the connection's identity.

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::Value;

use crate::config::SentinelConfig;
use crate::discovery::{data_info, open};

/// Pause between two connection attempts to a node whose listener resets them.
const RETRY_PAUSE: Duration = Duration::from_millis(20);

/// A connection's identity on the server, from `CLIENT INFO`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClientTag {
    id: u64,
    addr: String,
}

impl ClientTag {
    /// Parses `CLIENT INFO`'s `id=… addr=… …` line.
    fn parse(info: &str) -> Option<ClientTag> {
        let field = |name: &str| {
            info.split_whitespace()
                .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
        };
        Some(ClientTag {
            id: field("id")?.parse().ok()?,
            addr: field("addr")?.to_owned(),
        })
    }

    /// Asks the server on `conn` who `conn` is. `None` when it cannot say (Redis before 6.2,
    /// `CLIENT INFO` denied): writes on that connection cannot be settled.
    pub(crate) async fn of(conn: &mut MultiplexedConnection) -> Option<ClientTag> {
        let info: String = redis::cmd("CLIENT")
            .arg("INFO")
            .query_async(conn)
            .await
            .ok()?;
        Self::parse(&info)
    }
}

/// Makes sure the connection `tag` names, on the data node at `host:port`, runs nothing more;
/// returns whether that is known (see the module docs).
pub(crate) async fn settle(
    config: &SentinelConfig,
    host: &str,
    port: u16,
    tag: Option<&ClientTag>,
) -> bool {
    let Some(tag) = tag else {
        return false;
    };
    let Ok(info) = data_info(config, host, port) else {
        return false;
    };
    let (connect, response) = (config.redis.connect_timeout, config.redis.response_timeout);
    let deadline = tokio::time::Instant::now() + connect + response;
    let mut conn = loop {
        match open(info.clone(), connect, response).await {
            Ok(conn) => break conn,
            Err(e) if e.is_connection_refusal() => return true,
            // A process being killed resets the connections its dying listener had
            // accepted: try again until it refuses (or the time is up).
            Err(e) if e.is_connection_dropped() => {
                if tokio::time::Instant::now() + RETRY_PAUSE >= deadline {
                    return false;
                }
                tokio::time::sleep(RETRY_PAUSE).await;
            }
            Err(_) => return false,
        }
    };
    let killed: redis::RedisResult<Value> = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("ID")
        .arg(tag.id)
        .arg("ADDR")
        .arg(&tag.addr)
        .query_async(&mut conn)
        .await;
    match killed {
        Ok(Value::Int(n)) => {
            tracing::debug!(
                host,
                port,
                killed = n,
                "connection of an interrupted write closed"
            );
            true
        }
        Ok(_) => false,
        Err(e) => {
            tracing::warn!(host, port, error = %e, "could not close the connection of an interrupted write");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_client_info() {
        let line =
            "id=7 addr=127.0.0.1:52220 laddr=127.0.0.1:6379 fd=8 name= age=0 idle=0 flags=N db=0\n";
        assert_eq!(
            ClientTag::parse(line),
            Some(ClientTag {
                id: 7,
                addr: "127.0.0.1:52220".into()
            })
        );
        assert_eq!(ClientTag::parse("laddr=1 flags=N"), None);
    }
}
