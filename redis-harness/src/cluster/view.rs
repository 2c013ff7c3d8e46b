//! What one node says about the cluster (`CLUSTER INFO`, `CLUSTER SLOTS`, `CLUSTER NODES`,
//! `ROLE`), read over a short-lived plain connection, and the checks built on those views.

use std::time::Duration;

use redis::Value;

/// Every hash slot of a Redis Cluster.
pub const SLOT_COUNT: u16 = 16384;

/// One range of hash slots and the primary that serves it, as `CLUSTER SLOTS` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotRange {
    /// The first slot of the range.
    pub start: u16,
    /// The last slot of the range (inclusive).
    pub end: u16,
    /// The port of the primary serving it.
    pub primary: u16,
}

impl SlotRange {
    /// Whether `slot` lies in this range.
    pub fn contains(&self, slot: u16) -> bool {
        (self.start..=self.end).contains(&slot)
    }

    fn len(&self) -> usize {
        usize::from(self.end - self.start) + 1
    }
}

/// A node's own idea of its role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Primary,
    /// `linked`: the replication link is up and the initial sync is done.
    Replica {
        of: u16,
        linked: bool,
    },
}

/// One line of `CLUSTER NODES`.
#[derive(Debug, Clone)]
pub(crate) struct NodeLine {
    pub(crate) port: u16,
    pub(crate) flags: Vec<String>,
    /// Slot fields; open (migrating/importing) slots look like `[42->-id]`.
    pub(crate) slots: Vec<String>,
}

impl NodeLine {
    pub(crate) fn has_flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }
}

/// Everything the readiness checks need from one node, read in one round trip.
#[derive(Debug, Clone)]
pub(crate) struct NodeView {
    pub(crate) state_ok: bool,
    pub(crate) known_nodes: usize,
    pub(crate) slots: Vec<SlotRange>,
    pub(crate) nodes: Vec<NodeLine>,
    pub(crate) role: Role,
}

impl NodeView {
    pub(crate) fn myself(&self) -> Option<&NodeLine> {
        self.nodes.iter().find(|n| n.has_flag("myself"))
    }
}

/// A blocking connection to `127.0.0.1:port` with short timeouts: a dead or hung node must
/// fail a check, not stall it.
pub(crate) fn connect(port: u16) -> Result<redis::Connection, String> {
    let client =
        redis::Client::open(format!("redis://127.0.0.1:{port}/")).map_err(|e| e.to_string())?;
    let con = client
        .get_connection_with_timeout(Duration::from_millis(500))
        .map_err(|e| format!("connect {port}: {e}"))?;
    con.set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(|e| e.to_string())?;
    Ok(con)
}

/// One command on a fresh connection to the node on `port`.
pub(crate) fn query<T: redis::FromRedisValue>(port: u16, cmd: &redis::Cmd) -> Result<T, String> {
    cmd.query(&mut connect(port)?)
        .map_err(|e| format!("{port}: {e}"))
}

pub(crate) fn role(port: u16) -> Result<Role, String> {
    parse_role(&query(port, &redis::cmd("ROLE"))?).ok_or_else(|| format!("{port}: odd ROLE"))
}

/// The node's `CLUSTER SLOTS`, sorted by start.
pub(crate) fn slot_map(port: u16) -> Result<Vec<SlotRange>, String> {
    let value: Value = query(port, redis::cmd("CLUSTER").arg("SLOTS"))?;
    parse_slots(&value).ok_or_else(|| format!("{port}: odd CLUSTER SLOTS"))
}

pub(crate) fn node_view(port: u16) -> Result<NodeView, String> {
    let mut pipe = redis::pipe();
    pipe.cmd("CLUSTER")
        .arg("INFO")
        .cmd("CLUSTER")
        .arg("SLOTS")
        .cmd("CLUSTER")
        .arg("NODES")
        .cmd("ROLE");
    let (info, slots, nodes, role): (String, Value, String, Value) = pipe
        .query(&mut connect(port)?)
        .map_err(|e| format!("{port}: {e}"))?;
    let field = |name: &str| {
        info.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .map(str::trim)
    };
    Ok(NodeView {
        state_ok: field("cluster_state") == Some("ok"),
        known_nodes: field("cluster_known_nodes")
            .and_then(|n| n.parse().ok())
            .unwrap_or(0),
        slots: parse_slots(&slots).ok_or_else(|| format!("{port}: odd CLUSTER SLOTS"))?,
        nodes: nodes.lines().filter_map(parse_node_line).collect(),
        role: parse_role(&role).ok_or_else(|| format!("{port}: odd ROLE"))?,
    })
}

/// Checks that the live nodes form a healthy cluster that agrees with itself:
/// - every live node says `cluster_state:ok` and knows all `total` nodes;
/// - every live node's `CLUSTER SLOTS` is the same map, covering all 16384 slots, and no
///   node has an open (migrating or importing) slot;
/// - every primary in that map is live and says `ROLE` master;
/// - every live node that serves no slots is a replica of a live node, its link up and
///   synced; with `want_replicas`, exactly that many such replicas;
/// - no live node flags another live node `fail` or `fail?`.
///
/// Returns the agreed map, or what is missing.
pub(crate) fn check(
    live: &[u16],
    total: usize,
    want_replicas: Option<usize>,
) -> Result<Vec<SlotRange>, String> {
    let views = live
        .iter()
        .map(|p| node_view(*p).map(|v| (*p, v)))
        .collect::<Result<Vec<_>, _>>()?;
    let (first, first_view) = views.first().ok_or("no live node")?;
    let map = &first_view.slots;
    for (port, view) in &views {
        if !view.state_ok {
            return Err(format!("{port}: cluster_state is not ok"));
        }
        if view.known_nodes != total {
            return Err(format!(
                "{port} knows {} of {total} nodes",
                view.known_nodes
            ));
        }
        if view.slots != *map {
            return Err(format!("{first} and {port} disagree on the slot map"));
        }
        if let Some(open) = view
            .myself()
            .and_then(|m| m.slots.iter().find(|s| s.starts_with('[')))
        {
            return Err(format!("{port} has an open slot {open}"));
        }
        for line in &view.nodes {
            if live.contains(&line.port) && (line.has_flag("fail") || line.has_flag("fail?")) {
                return Err(format!(
                    "{port} flags live node {} {:?}",
                    line.port, line.flags
                ));
            }
        }
    }
    let covered: usize = map.iter().map(SlotRange::len).sum();
    if covered != usize::from(SLOT_COUNT) {
        return Err(format!("{covered} of {SLOT_COUNT} slots covered"));
    }
    let mut replicas = 0;
    for (port, view) in &views {
        let serves = map.iter().any(|r| r.primary == *port);
        match view.role {
            Role::Primary => {}
            Role::Replica { .. } if serves => {
                return Err(format!("{port} serves slots but is a replica"))
            }
            Role::Replica { of, linked } => {
                if !live.contains(&of) || !linked {
                    return Err(format!("replica {port} not synced with {of}"));
                }
                replicas += 1;
            }
        }
    }
    if let Some(r) = map.iter().find(|r| !live.contains(&r.primary)) {
        return Err(format!(
            "slots {}-{} served by dead {}",
            r.start, r.end, r.primary
        ));
    }
    if want_replicas.is_some_and(|want| want != replicas) {
        return Err(format!(
            "{replicas} replicas synced, want {want_replicas:?}"
        ));
    }
    Ok(map.clone())
}

/// `ROLE`: `["master", offset, [...]]` or `["slave", ip, port, state, offset]`.
fn parse_role(value: &Value) -> Option<Role> {
    let Value::Array(items) = value else {
        return None;
    };
    match text(items.first()?)?.as_str() {
        "master" => Some(Role::Primary),
        "slave" => Some(Role::Replica {
            of: int(items.get(2)?)?,
            linked: text(items.get(3)?)? == "connected",
        }),
        _ => None,
    }
}

/// `CLUSTER SLOTS`: `[[start, end, [ip, port, id, ...], replicas...], ...]`, sorted by start.
fn parse_slots(value: &Value) -> Option<Vec<SlotRange>> {
    let Value::Array(ranges) = value else {
        return None;
    };
    let mut map = ranges
        .iter()
        .map(|range| {
            let Value::Array(fields) = range else {
                return None;
            };
            let Value::Array(primary) = fields.get(2)? else {
                return None;
            };
            Some(SlotRange {
                start: int(fields.first()?)?,
                end: int(fields.get(1)?)?,
                primary: int(primary.get(1)?)?,
            })
        })
        .collect::<Option<Vec<_>>>()?;
    map.sort_by_key(|r| r.start);
    Some(map)
}

/// `<id> <ip:port@cport[,hostname]> <flags> <primary> <ping> <pong> <epoch> <link> <slots>...`
fn parse_node_line(line: &str) -> Option<NodeLine> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let addr = fields.get(1)?.split(['@', ',']).next()?;
    Some(NodeLine {
        port: addr.rsplit(':').next()?.parse().ok()?,
        flags: fields.get(2)?.split(',').map(String::from).collect(),
        slots: fields.iter().skip(8).map(|s| s.to_string()).collect(),
    })
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

fn int<T: TryFrom<i64>>(value: &Value) -> Option<T> {
    match value {
        Value::Int(i) => T::try_from(*i).ok(),
        other => text(other)?
            .parse::<i64>()
            .ok()
            .and_then(|i| T::try_from(i).ok()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_lines_parse() {
        let line =
            "591a 127.0.0.1:42004@43004 myself,master - 0 17959 7 connected 0-99 [100->-abc]";
        let node = parse_node_line(line).unwrap();
        assert_eq!(node.port, 42004);
        assert!(node.has_flag("myself") && node.has_flag("master"));
        assert_eq!(node.slots, ["0-99", "[100->-abc]"]);
        let replica = parse_node_line("e397 127.0.0.1:42005@43005,host slave 0055 0 1 2 connected");
        assert_eq!(replica.unwrap().port, 42005);
    }

    #[test]
    fn roles_parse() {
        let bulk = |s: &str| Value::BulkString(s.as_bytes().to_vec());
        let replica = Value::Array(vec![
            bulk("slave"),
            bulk("127.0.0.1"),
            Value::Int(42001),
            bulk("connected"),
            Value::Int(0),
        ]);
        assert_eq!(
            parse_role(&replica),
            Some(Role::Replica {
                of: 42001,
                linked: true
            })
        );
        let primary = Value::Array(vec![bulk("master"), Value::Int(0), Value::Array(vec![])]);
        assert_eq!(parse_role(&primary), Some(Role::Primary));
    }
}
