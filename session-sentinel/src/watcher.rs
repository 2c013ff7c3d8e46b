//! The Sentinel event subscriber: one background task per connection, subscribed on every
//! Sentinel in the list (re-subscribing to any that drop, once a second), so the failover
//! leader's announcements are heard first-hand rather than a second later through the other
//! Sentinels' hello messages. It only speeds things up; requests re-resolve on errors
//! whether or not a message arrives (the spec's rule).
//!
//! - `+switch-master <name> <old-ip> <old-port> <new-ip> <new-port>`: re-resolve, asking the
//!   announcing Sentinel first (it has the newer configuration; the others may still name the
//!   old master, which stays writable after `SENTINEL FAILOVER`).
//! - `+selected-slave … @ <name> <ip> <port>`: a failover of that master has started; fence
//!   writes to it (see `fence`).
//! - `-failover-abort-slave-timeout master <name> <ip> <port>`: that failover was given up;
//!   lift the fence.
//!
//! The subscriber knows the connection only through [`Listener`], so this module does not
//! depend on the connection's internals.

use std::collections::HashSet;
use std::sync::{Arc, Weak};
use std::time::Duration;

use futures::stream::{self, BoxStream, SelectAll};
use futures::StreamExt as _;

use crate::config::SentinelConfig;
use crate::discovery::sentinel_info;
use crate::error::Addr;

/// How often Sentinels without a live subscription are tried again.
const RESUBSCRIBE_EVERY: Duration = Duration::from_secs(1);

type Sentinel = (String, u16);
/// `(sentinel, Some((channel, payload)))` per message; `(sentinel, None)` when it dropped.
type Events = BoxStream<'static, (Sentinel, Option<(String, String)>)>;

/// What the subscriber reports to: the connection's shared state.
pub(crate) trait Listener: Send + Sync + 'static {
    /// The Sentinels to subscribe on.
    fn sentinel_list(&self) -> Vec<Sentinel>;
    /// Timeouts and credentials for the subscriptions.
    fn config(&self) -> &SentinelConfig;
    /// A `+switch-master` payload announced by `from`.
    fn switch_master(self: Arc<Self>, from: &Sentinel, payload: &str);
    /// A `+selected-slave` payload: a failover has started.
    fn failover_started(&self, payload: &str);
    /// A `-failover-abort-slave-timeout` payload: a started failover was given up.
    fn failover_aborted(&self, payload: &str);
}

/// The channels subscribed to on every Sentinel.
const CHANNELS: [&str; 3] = [
    "+switch-master",
    "+selected-slave",
    "-failover-abort-slave-timeout",
];

/// Starts the subscriber. It holds only a weak reference and stops when the connection's
/// last clone is dropped or `shutdown` fires.
pub(crate) fn spawn<L: Listener>(listener: &Arc<L>, shutdown: tokio::sync::watch::Receiver<()>) {
    let weak = Arc::downgrade(listener);
    tokio::spawn(run(weak, shutdown));
}

async fn run<L: Listener>(weak: Weak<L>, mut shutdown: tokio::sync::watch::Receiver<()>) {
    let mut events: SelectAll<Events> = SelectAll::new();
    let mut active: HashSet<Sentinel> = HashSet::new();
    let mut tick = tokio::time::interval(RESUBSCRIBE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tick.tick() => {
                let Some(inner) = weak.upgrade() else { return };
                let missing: Vec<Sentinel> = inner
                    .sentinel_list()
                    .into_iter()
                    .filter(|s| !active.contains(s))
                    .collect();
                let config = inner.config().clone();
                drop(inner);
                for sentinel in missing {
                    if let Some(stream) = subscribe(&config, &sentinel).await {
                        active.insert(sentinel);
                        events.push(stream);
                    }
                }
            }
            Some((sentinel, event)) = events.next(), if !events.is_empty() => {
                let Some(inner) = weak.upgrade() else { return };
                match event {
                    Some((channel, payload)) => {
                        tracing::info!(sentinel = %Addr(&sentinel.0, sentinel.1), %channel, %payload, "sentinel event");
                        match channel.as_str() {
                            "+switch-master" => inner.switch_master(&sentinel, &payload),
                            "+selected-slave" => inner.failover_started(&payload),
                            "-failover-abort-slave-timeout" => inner.failover_aborted(&payload),
                            _ => {}
                        }
                    }
                    None => {
                        tracing::debug!(sentinel = %Addr(&sentinel.0, sentinel.1), "subscription dropped");
                        active.remove(&sentinel);
                    }
                }
            }
        }
    }
}

async fn subscribe(config: &SentinelConfig, sentinel: &Sentinel) -> Option<Events> {
    let timeout = config.sentinel_timeout;
    let info = sentinel_info(config, &sentinel.0, sentinel.1).ok()?;
    let client = redis::Client::open(info).ok()?;
    let mut pubsub = tokio::time::timeout(timeout, client.get_async_pubsub())
        .await
        .ok()?
        .ok()?;
    tokio::time::timeout(timeout, pubsub.subscribe(&CHANNELS))
        .await
        .ok()?
        .ok()?;
    let (from, end) = (sentinel.clone(), sentinel.clone());
    let messages = pubsub.into_on_message().map(move |m| {
        let payload = m.get_payload::<String>().unwrap_or_default();
        (
            from.clone(),
            Some((m.get_channel_name().to_owned(), payload)),
        )
    });
    Some(
        messages
            .chain(stream::once(async move { (end, None) }))
            .boxed(),
    )
}
