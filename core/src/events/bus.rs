//! The event bus: a bounded in-process broadcast, fed either directly (embedded) or by one
//! Redis pub/sub subscription per process (scaled). A slow subscriber never blocks a
//! publisher: it falls behind, is told it lagged, and re-reads the current state.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use futures::StreamExt;
use tokio::sync::broadcast;

use super::Event;
use crate::config::redact_url;

/// Events buffered per subscriber before it counts as lagging.
pub const CHANNEL_CAPACITY: usize = 1024;

/// Counters for metrics and tests.
#[derive(Debug, Default)]
pub struct BusStats {
    /// Events handed to the bus by this process.
    pub published: AtomicU64,
    /// Events that could not be published (Redis unreachable).
    pub dropped: AtomicU64,
}

/// Publishes and delivers events. Cheap to clone.
#[derive(Clone)]
pub struct EventBus {
    local: broadcast::Sender<Arc<Event>>,
    redis: Option<(redis::aio::ConnectionManager, String)>,
    stats: Arc<BusStats>,
}

impl std::fmt::Debug for EventBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventBus")
            .field("redis", &self.redis.as_ref().map(|(_, ch)| ch))
            .field("subscribers", &self.local.receiver_count())
            .finish()
    }
}

impl EventBus {
    /// A bus that delivers within this process only.
    pub fn in_process() -> EventBus {
        let (local, _) = broadcast::channel(CHANNEL_CAPACITY);
        EventBus {
            local,
            redis: None,
            stats: Arc::default(),
        }
    }

    /// A bus over Redis pub/sub channel `channel`: every process publishing on it reaches every
    /// process subscribed to it. The subscription reconnects by itself.
    pub async fn redis(url: &str, channel: String) -> anyhow::Result<EventBus> {
        let client = redis::Client::open(url)
            .with_context(|| format!("invalid Redis URL {}", redact_url(url)))?;
        let publisher = tokio::time::timeout(
            Duration::from_secs(10),
            redis::aio::ConnectionManager::new(client.clone()),
        )
        .await
        .map_err(|_| anyhow::anyhow!("timed out connecting to Redis at {}", redact_url(url)))?
        .with_context(|| format!("cannot connect to Redis at {}", redact_url(url)))?;
        let (local, _) = broadcast::channel(CHANNEL_CAPACITY);
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        tokio::spawn(relay(
            client,
            channel.clone(),
            local.clone(),
            Some(ready_tx),
        ));
        // Subscribed before the first publish, so this process sees its own events.
        let _ = tokio::time::timeout(Duration::from_secs(10), ready_rx).await;
        Ok(EventBus {
            local,
            redis: Some((publisher, channel)),
            stats: Arc::default(),
        })
    }

    /// Publishes a committed change. Never fails the caller: an undeliverable event is
    /// logged and counted; subscribers catch up from the database.
    pub async fn publish(&self, event: Event) {
        self.publish_many(vec![event]).await
    }

    /// Publishes several committed changes in order, over Redis in one round trip (see
    /// [`EventBus::publish`]).
    pub async fn publish_many(&self, events: Vec<Event>) {
        if events.is_empty() {
            return;
        }
        let count = events.len() as u64;
        self.stats.published.fetch_add(count, Ordering::Relaxed);
        match &self.redis {
            None => {
                for event in events {
                    let _ = self.local.send(Arc::new(event));
                }
            }
            Some((conn, channel)) => {
                let mut pipe = redis::pipe();
                for event in &events {
                    if let Ok(text) = serde_json::to_string(event) {
                        pipe.cmd("PUBLISH").arg(channel).arg(text).ignore();
                    }
                }
                let mut conn = conn.clone();
                let sent: redis::RedisResult<()> = pipe.query_async(&mut conn).await;
                if let Err(err) = sent {
                    self.stats.dropped.fetch_add(count, Ordering::Relaxed);
                    tracing::warn!(error = %err, "events not published; subscribers will re-sync");
                }
            }
        }
    }

    /// A receiver of every event from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.local.subscribe()
    }

    /// Publish and drop counters.
    pub fn stats(&self) -> &BusStats {
        &self.stats
    }
}

/// Forwards the Redis channel into the local broadcast, reconnecting with backoff.
async fn relay(
    client: redis::Client,
    channel: String,
    local: broadcast::Sender<Arc<Event>>,
    mut ready: Option<tokio::sync::oneshot::Sender<()>>,
) {
    let mut delay = Duration::from_millis(100);
    loop {
        match client.get_async_pubsub().await {
            Ok(mut pubsub) => {
                if pubsub.subscribe(&channel).await.is_ok() {
                    delay = Duration::from_millis(100);
                    if let Some(tx) = ready.take() {
                        let _ = tx.send(());
                    }
                    let mut messages = pubsub.on_message();
                    while let Some(msg) = messages.next().await {
                        let Ok(text) = msg.get_payload::<String>() else {
                            continue;
                        };
                        match serde_json::from_str::<Event>(&text) {
                            Ok(event) => {
                                let _ = local.send(Arc::new(event));
                            }
                            Err(err) => tracing::warn!(error = %err, "ignoring a malformed event"),
                        }
                    }
                }
            }
            Err(err) => tracing::warn!(error = %err, "event subscription lost; reconnecting"),
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}
