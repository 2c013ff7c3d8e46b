//! Master discovery per the Redis "Sentinel client spec": ask the Sentinels in order, move the
//! first that answers to the front, verify the named master with `ROLE`, refresh the list.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, ConnectionInfo, Value};
use session_redis::RedisConfig;

use crate::config::SentinelConfig;
use crate::error::{Addr, SentinelError};
use crate::settle::ClientTag;

/// How long one discovery keeps starting over (after a `ROLE` mismatch or an unreachable
/// master) before giving up; the store's retry budget decides whether to try again.
pub(crate) const DISCOVERY_BUDGET: Duration = Duration::from_secs(2);
/// The spec's "wait a few hundred milliseconds" before starting over.
pub(crate) const START_OVER_DELAY: Duration = Duration::from_millis(250);

/// A verified master and the shared connection to it (reads and asynchronous writes;
/// replicated writes take connections of their own, see `durable`).
pub(crate) struct Found {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) conn: MultiplexedConnection,
    /// `conn`'s identity on the server, to settle writes whose answer is lost.
    pub(crate) tag: Option<ClientTag>,
}

/// Counters discovery keeps, for tests and monitoring.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) resolutions: std::sync::atomic::AtomicU64,
    pub(crate) role_mismatches: std::sync::atomic::AtomicU64,
    pub(crate) sentinel_failures: std::sync::atomic::AtomicU64,
}

fn bump(counter: &std::sync::atomic::AtomicU64) {
    counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

/// Connection settings for a Sentinel: its own credentials, db 0, the data nodes' TLS mode.
pub(crate) fn sentinel_info(
    config: &SentinelConfig,
    host: &str,
    port: u16,
) -> Result<ConnectionInfo, SentinelError> {
    let redis = RedisConfig {
        host: host.to_owned(),
        port,
        db: 0,
        username: config.sentinel_username.clone(),
        password: config.sentinel_password.clone(),
        ..config.redis.clone()
    };
    redis
        .connection_info()
        .map_err(|e| SentinelError::NoSentinelReachable {
            tried: 0,
            last: Some(std::sync::Arc::new(e)),
        })
}

/// Connection settings for the data node at `host:port`.
pub(crate) fn data_info(
    config: &SentinelConfig,
    host: &str,
    port: u16,
) -> Result<ConnectionInfo, String> {
    let redis = RedisConfig {
        host: host.to_owned(),
        port,
        ..config.redis.clone()
    };
    redis.connection_info().map_err(|e| e.to_string())
}

/// Opens a multiplexed connection whose handshake and requests are bounded.
pub(crate) async fn open(
    info: ConnectionInfo,
    connect: Duration,
    response: Duration,
) -> redis::RedisResult<MultiplexedConnection> {
    let client = redis::Client::open(info)?;
    let settings = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(connect))
        .set_response_timeout(Some(response));
    // The client's own timeout covers the TCP connect; this one the whole handshake (AUTH,
    // SELECT), which a hung server could otherwise stall.
    match tokio::time::timeout(
        connect + response,
        client.get_multiplexed_async_connection_with_config(&settings),
    )
    .await
    {
        Ok(result) => result,
        Err(_) => Err(std::io::Error::from(std::io::ErrorKind::TimedOut).into()),
    }
}

/// Runs the spec's steps 1–3 until a verified master is found or the time runs out.
pub(crate) async fn discover(
    config: &SentinelConfig,
    sentinels: &Mutex<Vec<(String, u16)>>,
    counters: &Counters,
) -> Result<Found, SentinelError> {
    bump(&counters.resolutions);
    let deadline = Instant::now() + DISCOVERY_BUDGET;
    let name = &config.master_name;
    loop {
        let list = sentinels.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mut reachable = 0;
        let mut last = None;
        let mut mismatch = None;
        for sentinel in &list {
            let (host, port) = (sentinel.0.as_str(), sentinel.1);
            let t = config.sentinel_timeout;
            let asked = async {
                let mut conn = open(sentinel_info(config, host, port)?, t, t)
                    .await
                    .map_err(|e| unreachable(e, list.len()))?;
                let addr: Option<(String, u16)> = redis::cmd("SENTINEL")
                    .arg("GET-MASTER-ADDR-BY-NAME")
                    .arg(name)
                    .query_async(&mut conn)
                    .await
                    .map_err(|e| unreachable(e, list.len()))?;
                Ok::<_, SentinelError>((conn, addr))
            };
            let (mut conn, addr) = match asked.await {
                Ok(answer) => answer,
                Err(e) => {
                    bump(&counters.sentinel_failures);
                    tracing::debug!(sentinel = %Addr(host, port), error = %e, "sentinel skipped");
                    last = Some(e);
                    continue;
                }
            };
            reachable += 1;
            let Some((master_host, master_port)) = addr else {
                tracing::debug!(sentinel = %Addr(host, port), "sentinel does not know the master name");
                continue;
            };
            move_to(sentinels, sentinel, Position::Front);
            refresh_list(sentinels, &mut conn, name).await;
            drop(conn);
            match verify(config, &master_host, master_port).await {
                Ok(found) => return Ok(found),
                Err(reason) => {
                    bump(&counters.role_mismatches);
                    tracing::info!(
                        sentinel = %Addr(host, port),
                        master = %Addr(&master_host, master_port),
                        %reason,
                        "named master not usable; starting over"
                    );
                    // A Sentinel that stays stale must not keep winning step 1.
                    move_to(sentinels, sentinel, Position::Back);
                    mismatch = Some(SentinelError::NotMaster {
                        addr: Addr(&master_host, master_port).to_string(),
                        reason,
                    });
                    break;
                }
            }
        }
        let err = match mismatch {
            Some(e) => e,
            None if reachable == 0 => {
                return Err(match last {
                    Some(SentinelError::NoSentinelReachable { last, .. }) => {
                        SentinelError::NoSentinelReachable {
                            tried: list.len(),
                            last,
                        }
                    }
                    other => other.unwrap_or(SentinelError::NoSentinelReachable {
                        tried: list.len(),
                        last: None,
                    }),
                })
            }
            None => {
                return Err(SentinelError::MasterNameUnknown { name: name.clone() });
            }
        };
        if Instant::now() + START_OVER_DELAY >= deadline {
            return Err(err);
        }
        tokio::time::sleep(START_OVER_DELAY).await;
    }
}

fn unreachable(e: redis::RedisError, tried: usize) -> SentinelError {
    SentinelError::NoSentinelReachable {
        tried,
        last: Some(std::sync::Arc::new(e)),
    }
}

pub(crate) enum Position {
    Front,
    Back,
}

pub(crate) fn move_to(sentinels: &Mutex<Vec<(String, u16)>>, which: &(String, u16), to: Position) {
    let mut list = sentinels.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(i) = list.iter().position(|s| s == which) {
        let s = list.remove(i);
        match to {
            Position::Front => list.insert(0, s),
            Position::Back => list.push(s),
        }
    }
}

/// Appends Sentinels this one knows (`SENTINEL sentinels <name>`) that are not listed yet.
/// Best effort: a failure leaves the list as it was.
async fn refresh_list(
    sentinels: &Mutex<Vec<(String, u16)>>,
    conn: &mut MultiplexedConnection,
    name: &str,
) {
    let Ok(Value::Array(entries)) = redis::cmd("SENTINEL")
        .arg("SENTINELS")
        .arg(name)
        .query_async::<Value>(conn)
        .await
    else {
        return;
    };
    let mut list = sentinels.lock().unwrap_or_else(|e| e.into_inner());
    for entry in entries {
        let fields = pairs(entry);
        let ip = fields
            .iter()
            .find(|(k, _)| k == "ip")
            .map(|(_, v)| v.clone());
        let port = fields
            .iter()
            .find(|(k, _)| k == "port")
            .and_then(|(_, v)| v.parse::<u16>().ok());
        if let (Some(ip), Some(port)) = (ip, port) {
            let found = (ip, port);
            if !list.contains(&found) {
                tracing::debug!(sentinel = %Addr(&found.0, found.1), "sentinel added from SENTINEL SENTINELS");
                list.push(found);
            }
        }
    }
}

/// Step 3: connect to the named master and check `ROLE`. The error is a reason for logs.
async fn verify(config: &SentinelConfig, host: &str, port: u16) -> Result<Found, String> {
    let connect = config.redis.connect_timeout;
    let response = config.redis.response_timeout;
    let mut conn = open(data_info(config, host, port)?, connect, response)
        .await
        .map_err(|e| format!("unreachable: {e}"))?;
    let role: Value = redis::cmd("ROLE")
        .query_async(&mut conn)
        .await
        .map_err(|e| format!("ROLE failed: {e}"))?;
    let role = match &role {
        Value::Array(items) => items.first().and_then(text),
        _ => None,
    }
    .unwrap_or_default();
    if role != "master" {
        return Err(format!("ROLE is {role:?}"));
    }
    let tag = ClientTag::of(&mut conn).await;
    Ok(Found {
        host: host.to_owned(),
        port,
        conn,
        tag,
    })
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

/// A Sentinel's description of an instance (flat key/value array, or a RESP3 map).
fn pairs(v: Value) -> Vec<(String, String)> {
    match v {
        Value::Array(items) => items
            .chunks(2)
            .filter_map(|c| Some((text(c.first()?)?, text(c.get(1)?)?)))
            .collect(),
        Value::Map(map) => map
            .iter()
            .filter_map(|(k, v)| Some((text(k)?, text(v)?)))
            .collect(),
        _ => Vec::new(),
    }
}
