//! [`ClusterConn`]: a connection to a Redis Cluster, either routing by key (what the Redis
//! backend sends for one session) or pinned to one node (node-wide work). Requests go through
//! the [`Router`] (one multiplexed connection per node, a slot map of its own; see there why
//! not the `redis` crate's cluster client) and [`follow`](crate::follow) redirections.
//! Writes a replicated durability setting covers go out with `WAIT` on a connection of their
//! own (see `durable`).

use std::sync::Arc;

use redis::aio::ConnectionLike;
use redis::{Cmd, Pipeline, RedisFuture, Value};
use session_redis::durability::Request;

use crate::durable::{Durable, Plan};
use crate::follow::{asking_cmd, asking_pipeline, every_second, follow, Follow};
use crate::router::keys::{dest_of, dest_of_pipe};
use crate::router::{Dest, NodeAddr, Router};

/// A connection to a Redis Cluster: each request goes to the primary serving its keys' slot
/// (or to the one node a pinned connection names) over one multiplexed connection per node,
/// following `MOVED` and `ASK` as [`Follow`](crate::Follow) says. Cloning is cheap: clones
/// share the node connections and the slot map.
#[derive(Clone)]
pub struct ClusterConn {
    router: Arc<Router>,
    /// `Some`: every command goes to this node.
    node: Option<NodeAddr>,
    /// Replicated writes, when a durability setting asks for them.
    durable: Option<Arc<Durable>>,
    /// How redirections and refusals are followed (see `follow`).
    follow: Follow,
}

impl std::fmt::Debug for ClusterConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterConn")
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

impl ClusterConn {
    /// Routes by key through `router`, following `MOVED` and `ASK`. Every write is sent as it
    /// is (asynchronous); [`ClusterStore::connect`](crate::ClusterStore) sets up the
    /// replicated mode its config asks for.
    pub(crate) fn new(router: Arc<Router>) -> Self {
        ClusterConn {
            router,
            node: None,
            durable: None,
            follow: Follow::default(),
        }
    }

    /// The same connection, following redirections and refusals as `follow` says.
    pub fn with_follow(mut self, follow: Follow) -> Self {
        self.follow = follow;
        self
    }

    pub(crate) fn with_durable(mut self, durable: Option<Durable>) -> Self {
        self.durable = durable.map(Arc::new);
        self
    }

    /// How `request` goes out with its `WAIT`, if it needs one.
    fn replicated(&self, request: Request<'_>) -> Option<Plan> {
        let pinned = self.node.as_ref().map(|n| (&*n.host, n.port));
        Durable::plan(self.durable.as_ref()?, pinned, request)
    }

    /// The same connection, sending everything to `host:port`.
    pub fn to_node(&self, host: String, port: u16) -> Self {
        ClusterConn {
            router: self.router.clone(),
            node: Some(NodeAddr::new(&host, port)),
            durable: self.durable.clone(),
            follow: self.follow,
        }
    }

    /// Where a request goes, `by_key` its own destination.
    fn dest(&self, by_key: impl FnOnce() -> Dest) -> Dest {
        match &self.node {
            None => by_key(),
            Some(node) => Dest::Node(node.clone()),
        }
    }
}

impl ConnectionLike for ClusterConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        if let Some(plan) = self.replicated(Request::Cmd(cmd)) {
            return Box::pin(async move {
                let mut values = plan.send(&self.router, Request::Cmd(cmd)).await?;
                Ok(values.pop().unwrap_or(Value::Nil))
            });
        }
        let dest = self.dest(|| dest_of(cmd));
        Box::pin(async move {
            let router = &self.router;
            follow(router, self.follow, dest, |node, asking| async move {
                if asking {
                    let mut values = router.send_pipe(&node, &asking_cmd(cmd), 1, 1).await?;
                    Ok(values.pop().unwrap_or(Value::Nil))
                } else {
                    router.send_cmd(&node, cmd).await
                }
            })
            .await
        })
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
            return Box::pin(plan.send(&self.router, request));
        }
        let dest = self.dest(|| dest_of_pipe(cmd));
        Box::pin(async move {
            let router = &self.router;
            follow(router, self.follow, dest, |node, asking| async move {
                if !asking {
                    return router.send_pipe(&node, cmd, offset, count).await;
                }
                let asked = asking_pipeline(cmd, offset, count);
                let values = router
                    .send_pipe(&node, &asked.pipe, asked.offset, asked.count)
                    .await?;
                Ok(if asked.interleaved {
                    every_second(values)
                } else {
                    values
                })
            })
            .await
        })
    }

    fn get_db(&self) -> i64 {
        0
    }
}
