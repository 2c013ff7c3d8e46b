//! [`Router`]: sends each request to the primary that serves it, over one multiplexed
//! connection per node, with a slot map of its own.
//!
//! Why not the `redis` crate's async cluster client: in 1.8.1 it can stop answering for good
//! when slots move under concurrent requests. Measured with 100 concurrent `GET`s through
//! one connection during `redis-cli --cluster reshard`: its slot-map rebuild ("beginning slot
//! refresh") never completed, and every later request on that connection timed out for as
//! long as the process ran, with `retries(0)` too; 16 concurrent requests mostly got through.
//! The rebuild waits for a write lock that requests the client has stopped polling still
//! hold. Here nothing waits on a lock across an `await`: the map is swapped in whole, a
//! request that finds it stale is redirected by the node (`MOVED`, `ASK`: see
//! [`follow`](crate::follow)) and corrects it slot by slot, and one refresh at a time
//! (`CLUSTER SLOTS`) runs beside the requests, never in front of them.

pub(crate) mod keys;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::{
    AsyncConnectionConfig, Cmd, ConnectionAddr, ConnectionInfo, ErrorKind, Pipeline, RedisError,
    RedisResult, Value,
};
use session_redis::keys::SLOTS;

pub(crate) use keys::Dest;

/// A node, by `host` and `port` as the cluster names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct NodeAddr {
    pub(crate) host: Arc<str>,
    pub(crate) port: u16,
}

impl NodeAddr {
    pub(crate) fn new(host: &str, port: u16) -> Self {
        NodeAddr {
            host: host.into(),
            port,
        }
    }
}

impl std::fmt::Display for NodeAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// No primary known for a slot.
const UNKNOWN: u16 = u16::MAX;

#[derive(Default)]
struct Map {
    /// Distinct primaries, in the order `CLUSTER SLOTS` named them.
    primaries: Vec<NodeAddr>,
    /// Per slot, an index into `primaries`, or [`UNKNOWN`].
    owner: Vec<u16>,
}

/// See the [module](self) docs.
pub(crate) struct Router {
    /// Credentials, TLS and database of every node's connection; the address is replaced.
    template: ConnectionInfo,
    config: AsyncConnectionConfig,
    seeds: Vec<NodeAddr>,
    map: RwLock<Map>,
    conns: RwLock<HashMap<NodeAddr, MultiplexedConnection>>,
    /// One `CLUSTER SLOTS` refresh at a time.
    refreshing: tokio::sync::Mutex<()>,
    /// Turns for [`Dest::Any`], so a repeat goes to another primary than a dead one.
    turn: AtomicUsize,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field("seeds", &self.seeds)
            .finish_non_exhaustive()
    }
}

impl Router {
    /// A router learning the cluster from `seeds` (the first one's credentials serve every
    /// node), with each node's connection bounded by the two timeouts. Learns the slot map
    /// before it returns.
    ///
    /// # Errors
    /// No seed answered `CLUSTER SLOTS`; no seed given.
    pub(crate) async fn connect(
        seeds: Vec<ConnectionInfo>,
        connect_timeout: Duration,
        response_timeout: Duration,
    ) -> RedisResult<Arc<Router>> {
        let template = seeds
            .first()
            .cloned()
            .ok_or_else(|| RedisError::from((ErrorKind::InvalidClientConfig, "no seed node")))?;
        let seeds = seeds
            .iter()
            .filter_map(|info| match info.addr() {
                ConnectionAddr::Tcp(host, port) => Some(NodeAddr::new(host, *port)),
                ConnectionAddr::TcpTls { host, port, .. } => Some(NodeAddr::new(host, *port)),
                _ => None,
            })
            .collect();
        let router = Arc::new(Router {
            template,
            config: AsyncConnectionConfig::new()
                .set_connection_timeout(Some(connect_timeout))
                .set_response_timeout(Some(response_timeout)),
            seeds,
            map: RwLock::new(Map {
                primaries: Vec::new(),
                owner: vec![UNKNOWN; usize::from(SLOTS)],
            }),
            conns: RwLock::default(),
            refreshing: tokio::sync::Mutex::new(()),
            turn: AtomicUsize::new(0),
        });
        router.refresh().await?;
        Ok(router)
    }

    /// The primary serving `slot`, as last learned.
    pub(crate) fn owner(&self, slot: u16) -> Option<NodeAddr> {
        let map = self.map.read().unwrap_or_else(|e| e.into_inner());
        let index = *map.owner.get(usize::from(slot))?;
        map.primaries.get(usize::from(index)).cloned()
    }

    /// Every primary, as last learned (the seeds before any map).
    pub(crate) fn primaries(&self) -> Vec<NodeAddr> {
        let map = self.map.read().unwrap_or_else(|e| e.into_inner());
        if map.primaries.is_empty() {
            self.seeds.clone()
        } else {
            map.primaries.clone()
        }
    }

    /// `MOVED`: `slot` is served by `node` now.
    pub(crate) fn moved(&self, slot: u16, node: NodeAddr) {
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        let index = match map.primaries.iter().position(|n| *n == node) {
            Some(i) => i,
            None => {
                map.primaries.push(node);
                map.primaries.len() - 1
            }
        };
        if let (Some(entry), Ok(index)) =
            (map.owner.get_mut(usize::from(slot)), u16::try_from(index))
        {
            *entry = index;
        }
    }

    /// Learns the slot map again in the background, unless a refresh is under way.
    pub(crate) fn refresh_soon(self: &Arc<Self>) {
        let router = self.clone();
        tokio::spawn(async move {
            if let Ok(_one) = router.refreshing.try_lock() {
                if let Err(e) = router.fetch_map().await {
                    tracing::debug!(error = %e, "refreshing the cluster slot map");
                }
            }
        });
    }

    /// Learns the slot map again (waiting for a refresh under way, then doing its own).
    ///
    /// # Errors
    /// No known node answered `CLUSTER SLOTS`.
    pub(crate) async fn refresh(&self) -> RedisResult<()> {
        let _one = self.refreshing.lock().await;
        self.fetch_map().await
    }

    /// `CLUSTER SLOTS` from the known primaries, then the seeds, until one answers.
    async fn fetch_map(&self) -> RedisResult<()> {
        let mut asked = self.primaries();
        asked.extend(self.seeds.iter().cloned());
        let mut last = None;
        for node in dedup(asked) {
            let reply = match self.conn(&node).await {
                Ok(mut conn) => {
                    let reply = conn.req_packed_command(&slots_cmd()).await;
                    if let Err(e) = &reply {
                        self.forget_on(&node, e);
                    }
                    reply
                }
                Err(e) => Err(e),
            };
            match reply.and_then(|v| {
                crate::topology::parse_slots(v).ok_or_else(|| {
                    RedisError::from((ErrorKind::Parse, "malformed CLUSTER SLOTS reply"))
                })
            }) {
                Ok(ranges) if !ranges.is_empty() => {
                    let mut map = Map {
                        primaries: Vec::new(),
                        owner: vec![UNKNOWN; usize::from(SLOTS)],
                    };
                    for ((host, port), range) in ranges {
                        let addr = NodeAddr::new(&host, port);
                        let index = match map.primaries.iter().position(|n| *n == addr) {
                            Some(i) => i,
                            None => {
                                map.primaries.push(addr);
                                map.primaries.len() - 1
                            }
                        };
                        let index = u16::try_from(index).unwrap_or(UNKNOWN);
                        for slot in range {
                            if let Some(entry) = map.owner.get_mut(usize::from(slot)) {
                                *entry = index;
                            }
                        }
                    }
                    *self.map.write().unwrap_or_else(|e| e.into_inner()) = map;
                    return Ok(());
                }
                Ok(_) => {
                    last = Some(RedisError::from((
                        ErrorKind::Server(redis::ServerErrorKind::ClusterDown),
                        "the node serves no slots yet",
                    )))
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| RedisError::from((ErrorKind::Io, "no cluster node known"))))
    }

    /// The connection to `node`, opened on first use.
    ///
    /// # Errors
    /// It could not be opened within the connect timeout.
    pub(crate) async fn conn(&self, node: &NodeAddr) -> RedisResult<MultiplexedConnection> {
        if let Some(conn) = self
            .conns
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(node)
        {
            return Ok(conn.clone());
        }
        let info = self.template.clone().set_addr(match self.template.addr() {
            ConnectionAddr::TcpTls {
                insecure,
                tls_params,
                ..
            } => ConnectionAddr::TcpTls {
                host: node.host.to_string(),
                port: node.port,
                insecure: *insecure,
                tls_params: tls_params.clone(),
            },
            _ => ConnectionAddr::Tcp(node.host.to_string(), node.port),
        });
        let conn = redis::Client::open(info)?
            .get_multiplexed_async_connection_with_config(&self.config)
            .await?;
        let mut conns = self.conns.write().unwrap_or_else(|e| e.into_inner());
        Ok(conns.entry(node.clone()).or_insert(conn).clone())
    }

    /// Drops the connection to `node` after `err` if the error says the connection is
    /// unusable, so the next request opens a new one.
    pub(crate) fn forget_on(&self, node: &NodeAddr, err: &RedisError) {
        if err.is_io_error() || err.is_connection_dropped() || err.is_unrecoverable_error() {
            self.conns
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .remove(node);
        }
    }

    /// Where `dest` resolves to now (`None`: no primary known for its slot).
    pub(crate) fn resolve(&self, dest: &Dest) -> Option<Vec<NodeAddr>> {
        match dest {
            Dest::Slot(slot) => self.owner(*slot).map(|n| vec![n]),
            Dest::Node(node) => Some(vec![node.clone()]),
            Dest::Any => {
                let primaries = self.primaries();
                let turn = self.turn.fetch_add(1, Ordering::Relaxed);
                let at = turn.checked_rem(primaries.len())?;
                primaries.get(at).map(|n| vec![n.clone()])
            }
            Dest::AllPrimaries => Some(self.primaries()),
        }
    }

    /// One command to `node`.
    pub(crate) async fn send_cmd(&self, node: &NodeAddr, cmd: &Cmd) -> RedisResult<Value> {
        let mut conn = self.conn(node).await?;
        let reply = conn.req_packed_command(cmd).await;
        if let Err(e) = &reply {
            self.forget_on(node, e);
        }
        reply?.extract_error()
    }

    /// A pipeline to `node`; a redirection or refusal among the answers becomes the error.
    pub(crate) async fn send_pipe(
        &self,
        node: &NodeAddr,
        pipe: &Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisResult<Vec<Value>> {
        let mut conn = self.conn(node).await?;
        let reply = conn.req_packed_commands(pipe, offset, count).await;
        if let Err(e) = &reply {
            self.forget_on(node, e);
        }
        let values = reply?;
        if let Some(err) = values.iter().find_map(needs_action) {
            return Err(err);
        }
        Ok(values)
    }
}

/// A redirection or refusal among a pipeline's answers, as an error (the others are the
/// caller's to read).
fn needs_action(value: &Value) -> Option<RedisError> {
    match value {
        Value::ServerError(e) => match e.code() {
            "MOVED" | "ASK" | "TRYAGAIN" | "CLUSTERDOWN" | "MASTERDOWN" | "LOADING"
            | "READONLY" => Some(value.clone().extract_error().err()?),
            _ => None,
        },
        _ => None,
    }
}

fn slots_cmd() -> Cmd {
    let mut cmd = redis::cmd("CLUSTER");
    cmd.arg("SLOTS");
    cmd
}

fn dedup(nodes: Vec<NodeAddr>) -> Vec<NodeAddr> {
    let mut out: Vec<NodeAddr> = Vec::with_capacity(nodes.len());
    for n in nodes {
        if !out.contains(&n) {
            out.push(n);
        }
    }
    out
}
