//! [`ClusterConn`]: the `redis` crate's async cluster connection, either routing by key (what
//! the Redis backend sends for one session) or pinned to one node (node-wide work). Writes a
//! replicated durability setting covers go out with `WAIT` on a connection of their own
//! (see `durable`).

use std::sync::Arc;

use redis::aio::ConnectionLike;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::{Cmd, Pipeline, RedisFuture, Value};
use session_redis::durability::Request;

use crate::durable::{Durable, Plan};

/// A connection to a Redis Cluster (see the [module](self) docs). Cloning is cheap: clones
/// share the cluster client's node connections and slot map.
#[derive(Clone)]
pub struct ClusterConn {
    inner: ClusterConnection,
    /// Where commands naming no key of theirs go.
    pin: Pin,
    /// Replicated writes, when a durability setting asks for them.
    durable: Option<Arc<Durable>>,
}

/// Where a [`ClusterConn`] sends its commands.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pin {
    /// Each by its keys (the cluster client's routing).
    ByKey,
    /// Every command to this node.
    Node(String, u16),
    /// Every command to the primary serving this slot, as the cluster client knows it: how
    /// replicated writes ask the node that serves a write for the slot map (see `durable`).
    SlotPrimary(u16),
}

impl std::fmt::Debug for ClusterConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterConn")
            .field("pin", &self.pin)
            .finish_non_exhaustive()
    }
}

impl ClusterConn {
    /// Routes by key: the cluster client sends each command (and each pipeline, whose
    /// commands share a slot) to the primary serving it, following `MOVED` and `ASK`. Every
    /// write is sent as it is (asynchronous); [`ClusterStore::connect`](crate::ClusterStore)
    /// sets up the replicated mode its config asks for.
    pub fn new(inner: ClusterConnection) -> Self {
        ClusterConn {
            inner,
            pin: Pin::ByKey,
            durable: None,
        }
    }

    pub(crate) fn with_durable(mut self, durable: Option<Durable>) -> Self {
        self.durable = durable.map(Arc::new);
        self
    }

    /// How `request` goes out with its `WAIT`, if it needs one.
    fn replicated(&self, request: Request<'_>) -> Option<Plan> {
        let pinned = match &self.pin {
            Pin::Node(host, port) => Some((host.as_str(), *port)),
            Pin::ByKey | Pin::SlotPrimary(_) => None,
        };
        Durable::plan(self.durable.as_ref()?, pinned, request)
    }

    /// The same connection, sending everything to `host:port`.
    pub fn to_node(&self, host: String, port: u16) -> Self {
        ClusterConn {
            inner: self.inner.clone(),
            pin: Pin::Node(host, port),
            durable: self.durable.clone(),
        }
    }

    /// A connection sending everything to the primary the cluster client has for `slot`,
    /// with no replicated writes.
    pub(crate) fn to_slot_primary(inner: ClusterConnection, slot: u16) -> Self {
        ClusterConn {
            inner,
            pin: Pin::SlotPrimary(slot),
            durable: None,
        }
    }

    /// The node every command goes to, if pinned to one.
    pub(crate) fn node(&self) -> Option<(&str, u16)> {
        match &self.pin {
            Pin::Node(host, port) => Some((host, *port)),
            Pin::ByKey | Pin::SlotPrimary(_) => None,
        }
    }

    /// Where a command naming no key of its own goes: `None` for the cluster client's
    /// routing.
    fn routing(&self) -> Option<SingleNodeRoutingInfo> {
        match &self.pin {
            Pin::ByKey => None,
            Pin::Node(host, port) => Some(SingleNodeRoutingInfo::ByAddress {
                host: host.clone(),
                port: *port,
            }),
            Pin::SlotPrimary(slot) => Some(SingleNodeRoutingInfo::SpecificNode(Route::new(
                *slot,
                SlotAddr::Master,
            ))),
        }
    }

    /// The underlying cluster connection.
    pub fn cluster(&self) -> &ClusterConnection {
        &self.inner
    }
}

impl ConnectionLike for ClusterConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        if let Some(plan) = self.replicated(Request::Cmd(cmd)) {
            return Box::pin(async move {
                let mut values = plan.send(&self.inner, Request::Cmd(cmd)).await?;
                Ok(values.pop().unwrap_or(Value::Nil))
            });
        }
        match self.routing() {
            None => self.inner.req_packed_command(cmd),
            Some(route) => Box::pin(
                self.inner
                    .route_command(cmd.clone(), RoutingInfo::SingleNode(route)),
            ),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        let request = Request::Pipe {
            pipe: cmd,
            offset,
            count,
        };
        if let Some(plan) = self.replicated(request) {
            return Box::pin(plan.send(&self.inner, request));
        }
        match self.routing() {
            None => self.inner.req_packed_commands(cmd, offset, count),
            Some(route) => Box::pin(self.inner.route_pipeline(cmd.clone(), offset, count, route)),
        }
    }

    fn get_db(&self) -> i64 {
        0
    }
}
