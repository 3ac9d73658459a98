//! The backend monitor: every `backend_check_interval`, each monitored backend is checked
//! once across all worker processes — its health, then its live prompts against the last
//! applied version (see `orchestrator_core::backends::monitor`).

use std::time::Duration;

use tokio::sync::watch;

use orchestrator_core::CoreContext;
use orchestrator_core::backends::monitor::check_due;

/// Checks backends until `stopping` turns true.
pub async fn run(core: CoreContext, mut stopping: watch::Receiver<bool>) {
    let interval = core.config.backend_check_interval;
    let tick = (interval / 2).clamp(Duration::from_millis(200), Duration::from_secs(5));
    loop {
        match check_due(&core, interval).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(checked = n, "backends checked"),
            Err(err) => tracing::warn!(error = %format!("{err:#}"), "backend check round failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = stopping.wait_for(|s| *s) => return,
        }
    }
}
