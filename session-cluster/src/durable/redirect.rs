//! What a node answered instead of running a replicated write: a redirection or a refusal
//! for now. In each case the write did not run there (a transaction's `EXEC` answers
//! `EXECABORT` once a command in it was redirected or refused), so sending it again is safe.

use redis::{ServerError, Value};

use super::pool::Node;

/// A redirection or refusal, from the replies to a write (its `WAIT`'s left out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Redirect {
    /// `MOVED slot host:port`: the slot is served by another node now.
    Moved { slot: u16, node: Node },
    /// `ASK slot host:port`: the slot is migrating and the keys are not here; ask `node`
    /// (after `ASKING`), this once.
    Ask(Node),
    /// `TRYAGAIN` (a command's keys split by a migrating slot), `CLUSTERDOWN`, `LOADING`,
    /// `MASTERDOWN`: the same node, a moment later.
    Refused,
    /// `READONLY`: the node became a replica (a failover under way); the map is stale.
    Demoted,
}

impl Redirect {
    /// The first redirection or refusal among `replies`, if any. `at`: the node that sent
    /// them (a redirection may leave out its host: then it is the same).
    pub(super) fn find(replies: &[Value], at: &Node) -> Option<Redirect> {
        replies.iter().find_map(|reply| match reply {
            Value::ServerError(e) => Self::of(e, at),
            _ => None,
        })
    }

    fn of(error: &ServerError, at: &Node) -> Option<Redirect> {
        let target = || {
            let mut details = error.details()?.split_ascii_whitespace();
            let slot: u16 = details.next()?.parse().ok()?;
            let (host, port) = details.next()?.rsplit_once(':')?;
            let host = if host.is_empty() { &*at.host } else { host };
            Some((slot, Node::new(host, port.parse().ok()?)))
        };
        // By code: the client knows these kinds, but an error it was handed as an
        // extension has its code only.
        match error.code() {
            "MOVED" => target().map(|(slot, node)| Redirect::Moved { slot, node }),
            "ASK" => target().map(|(_, node)| Redirect::Ask(node)),
            "TRYAGAIN" | "CLUSTERDOWN" | "LOADING" | "MASTERDOWN" => Some(Redirect::Refused),
            "READONLY" => Some(Redirect::Demoted),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(line: &str) -> Value {
        let (code, details) = line.split_once(' ').unwrap_or((line, ""));
        let err = redis::make_extension_error(code.to_owned(), Some(details.to_owned()));
        Value::ServerError(ServerError::try_from(err).unwrap())
    }

    #[test]
    fn redirections_and_refusals_are_read_from_the_replies() {
        let at = Node::new("10.0.0.1", 7000);
        let queued = Value::SimpleString("QUEUED".into());
        // A transaction whose write was redirected: its `EXEC` aborted.
        let replies = [
            Value::Okay,
            error("MOVED 3999 10.0.0.2:7001"),
            error("EXECABORT Transaction discarded"),
        ];
        assert_eq!(
            Redirect::find(&replies, &at),
            Some(Redirect::Moved {
                slot: 3999,
                node: Node::new("10.0.0.2", 7001)
            })
        );
        // No host: the node that answered.
        assert_eq!(
            Redirect::find(&[error("ASK 12 :7002")], &at),
            Some(Redirect::Ask(Node::new("10.0.0.1", 7002)))
        );
        assert_eq!(
            Redirect::find(&[error("ASK 12 ::1:7002")], &at),
            Some(Redirect::Ask(Node::new("::1", 7002)))
        );
        for refusal in [
            "TRYAGAIN Multiple keys request during rehashing of slot",
            "CLUSTERDOWN The cluster is down",
            "LOADING Redis is loading the dataset in memory",
        ] {
            assert_eq!(
                Redirect::find(&[queued.clone(), error(refusal)], &at),
                Some(Redirect::Refused),
                "{refusal}"
            );
        }
        assert_eq!(
            Redirect::find(
                &[error(
                    "READONLY You can't write against a read only replica."
                )],
                &at
            ),
            Some(Redirect::Demoted)
        );
        // Anything else is the write's own answer.
        for own in [
            error("NOSCRIPT No matching script"),
            error("WRONGTYPE Operation against a key holding the wrong kind of value"),
            Value::Int(1),
        ] {
            assert_eq!(Redirect::find(&[own], &at), None);
        }
    }
}
