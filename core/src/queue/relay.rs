//! Carries push notifications between processes over Redis pub/sub: every push publishes the
//! queue name on `<prefix>:wake`, and each worker process relays what it hears to its own
//! [`WakeHub`]. Pub/sub is fire-and-forget; the interval poll covers a missed message.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;

use super::wake::WakeHub;
use crate::config::redact_url;

/// The pub/sub channel of a queue prefix.
pub fn wake_channel(prefix: &str) -> String {
    format!("{prefix}:wake")
}

/// Subscribes to the wake channel and feeds `hub` until the task is aborted, reconnecting
/// with a growing pause when Redis goes away.
pub async fn relay_wakes(url: String, channel: String, hub: Arc<WakeHub>) {
    let mut pause = Duration::from_millis(100);
    loop {
        match subscribe(&url, &channel).await {
            Ok(mut messages) => {
                pause = Duration::from_millis(100);
                tracing::debug!(%channel, "listening for queue wake-ups");
                while let Some(msg) = messages.next().await {
                    if let Ok(queue) = msg.get_payload::<String>() {
                        hub.notify(&queue);
                    }
                }
                tracing::warn!(%channel, "wake-up subscription ended; reconnecting");
            }
            Err(err) => {
                tracing::warn!(
                    url = %redact_url(&url),
                    error = %err,
                    "cannot subscribe to queue wake-ups; polling meanwhile"
                );
            }
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(5));
    }
}

async fn subscribe(url: &str, channel: &str) -> redis::RedisResult<redis::aio::PubSubStream> {
    let client = redis::Client::open(url)?;
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.subscribe(channel).await?;
    Ok(pubsub.into_on_message())
}
