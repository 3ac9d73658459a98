//! Draining: once the process is asked to stop it keeps serving what is in flight, `/ready`
//! answers 503 so load balancers stop sending new work, and open websockets are closed with
//! 1001 (going away) so their clients reconnect elsewhere.
//!
//! The process assembly adds a [`Draining`] to the router as an extension; handlers that care
//! read it with `Option<Extension<Draining>>` (routers built without it never drain).

use tokio::sync::watch;

/// Whether the process is draining; cheap to clone.
#[derive(Debug, Clone)]
pub struct Draining(watch::Receiver<bool>);

impl Draining {
    /// Follows `stopping`, which turns true when the process is asked to stop.
    pub fn new(stopping: watch::Receiver<bool>) -> Self {
        Draining(stopping)
    }

    /// True once the process was asked to stop.
    pub fn is_draining(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves when the process is asked to stop (never, if the sender is gone first).
    pub async fn started(&self) {
        let mut rx = self.0.clone();
        if rx.wait_for(|stopping| *stopping).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
