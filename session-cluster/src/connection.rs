//! [`ClusterConn`]: the `redis` crate's async cluster connection, either routing by key (what
//! the Redis backend sends for one session) or pinned to one node (node-wide work). Writes a
//! replicated durability setting covers go out with `WAIT` on a connection of their own
//! (see `durable`).

use std::sync::Arc;

use redis::aio::ConnectionLike;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::{Cmd, Pipeline, RedisFuture, Value};
use session_redis::durability::Request;

use crate::durable::{Durable, Plan};

/// A connection to a Redis Cluster (see the [module](self) docs). Cloning is cheap: clones
/// share the cluster client's node connections and slot map.
#[derive(Clone)]
pub struct ClusterConn {
    inner: ClusterConnection,
    /// `Some`: every command goes to this node.
    node: Option<(String, u16)>,
    /// Replicated writes, when a durability setting asks for them.
    durable: Option<Arc<Durable>>,
}

impl std::fmt::Debug for ClusterConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterConn")
            .field("node", &self.node)
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
            node: None,
            durable: None,
        }
    }

    pub(crate) fn with_durable(mut self, durable: Option<Durable>) -> Self {
        self.durable = durable.map(Arc::new);
        self
    }

    /// How `request` goes out with its `WAIT`, if it needs one.
    fn replicated(&self, request: Request<'_>) -> Option<Plan> {
        Durable::plan(self.durable.as_ref()?, self.node.as_ref(), request)
    }

    /// The same connection, sending everything to `host:port`.
    pub fn to_node(&self, host: String, port: u16) -> Self {
        ClusterConn {
            inner: self.inner.clone(),
            node: Some((host, port)),
            durable: self.durable.clone(),
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
        match &self.node {
            None => self.inner.req_packed_command(cmd),
            Some((host, port)) => {
                let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                    host: host.clone(),
                    port: *port,
                });
                Box::pin(self.inner.route_command(cmd.clone(), routing))
            }
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
        match &self.node {
            None => self.inner.req_packed_commands(cmd, offset, count),
            Some((host, port)) => {
                let route = SingleNodeRoutingInfo::ByAddress {
                    host: host.clone(),
                    port: *port,
                };
                Box::pin(self.inner.route_pipeline(cmd.clone(), offset, count, route))
            }
        }
    }

    fn get_db(&self) -> i64 {
        0
    }
}
