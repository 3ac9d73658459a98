//! Start-up against services that may not be up yet (containers start in any order): retry
//! with backoff for a bounded time, saying what we wait for, then give up with one clear error.

use std::future::Future;
use std::time::{Duration, Instant};

/// Calls `attempt` until it succeeds or `limit` has passed; the last error is returned.
pub async fn retry_until<T, F, Fut>(
    what: &str,
    limit: Duration,
    mut attempt: F,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    let started = Instant::now();
    let mut delay = Duration::from_millis(200);
    loop {
        match attempt().await {
            Ok(value) => return Ok(value),
            Err(err) if started.elapsed() + delay < limit => {
                tracing::warn!(
                    waiting_for = what,
                    error = %format!("{err:#}"),
                    retry_in_ms = delay.as_millis() as u64,
                    "waiting for {what}"
                );
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
            Err(err) => return Err(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn retries_then_succeeds_or_gives_up() {
        let calls = AtomicU32::new(0);
        let value = retry_until("thing", Duration::from_secs(5), || {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            async move {
                if n < 2 {
                    anyhow::bail!("not yet")
                } else {
                    Ok(n)
                }
            }
        })
        .await
        .unwrap();
        assert_eq!(value, 2);
        let err = retry_until("thing", Duration::from_millis(300), || async {
            anyhow::bail!("down") as anyhow::Result<()>
        })
        .await
        .unwrap_err();
        assert_eq!(err.to_string(), "down");
    }
}
