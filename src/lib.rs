//! Process assembly shared by the CLI and the integration tests: connect, migrate, then run
//! the API, the workers, or both until a shutdown signal.

pub mod cli;
pub mod telemetry;

use std::future::Future;
use std::net::SocketAddr;

use anyhow::Context;
use axum::serve::ListenerExt;
use orchestrator_api::ApiMode;
use orchestrator_core::CoreContext;
use orchestrator_core::config::Config;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// What a process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// API and workers in one process.
    Standalone,
    /// API only.
    Api,
    /// Workers only (plus `/health` and `/ready`).
    Worker,
}

/// A started process: bound, migrated, ready to serve.
pub struct Application {
    core: CoreContext,
    listener: TcpListener,
    /// The separate `/metrics` listener, when `metrics.listen` is set.
    metrics_listener: Option<TcpListener>,
    mode: Mode,
}

impl Application {
    /// Prepares the data dir, connects to the database (migrating it) and the queue, makes sure
    /// the default project exists, and binds the listen address (port 0 picks a free port).
    pub async fn build(mut config: Config, mode: Mode) -> anyhow::Result<Application> {
        prepare_data_dir(&config)?;
        // User-given URLs may reach loopback only where the mode's default (or the
        // configuration) says so.
        config.settle_outbound_allow(match mode {
            Mode::Standalone => orchestrator_core::outbound::ProcessMode::Standalone,
            Mode::Api => orchestrator_core::outbound::ProcessMode::Api,
            Mode::Worker => orchestrator_core::outbound::ProcessMode::Worker,
        });
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let metrics_listener = match config.metrics.listen {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("cannot listen on {addr} (metrics.listen)"))?,
            ),
            None => None,
        };
        let core = CoreContext::connect(config).await?;
        if mode != Mode::Worker {
            orchestrator_core::projects::ensure_default(&core)
                .await
                .map_err(|e| anyhow::anyhow!("cannot create the default project: {e}"))?;
        }
        Ok(Application {
            core,
            listener,
            metrics_listener,
            mode,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("bound listener has an address")
    }

    /// The bound address of the separate `/metrics` listener, if configured.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    /// The shared database/queue handles.
    pub fn core(&self) -> &CoreContext {
        &self.core
    }

    /// Serves until `shutdown` resolves, then drains: `/ready` answers 503 and websockets
    /// are closed at once, while the HTTP server keeps answering until the running stages
    /// have finished (bounded by the shutdown timeout); then it stops accepting, lets
    /// in-flight requests finish, and returns.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (stop_tx, stop_rx) = watch::channel(false);
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        });
        // The HTTP listeners close only after the workers have drained.
        let (http_stop_tx, http_stop_rx) = watch::channel(false);
        let wait_stop = |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|stopped| *stopped).await;
        };

        let router = match self.mode {
            Mode::Worker => orchestrator_api::metrics_route::worker_router(self.core.clone())?,
            Mode::Standalone | Mode::Api => {
                let api_mode = if self.mode == Mode::Standalone {
                    ApiMode::Standalone
                } else {
                    ApiMode::Api
                };
                orchestrator_api::app(orchestrator_api::build_state(self.core.clone(), api_mode)?)
            }
        };
        let router = router.layer(axum::Extension(orchestrator_api::drain::Draining::new(
            stop_rx.clone(),
        )));
        // Writes are batched by the websocket loop itself; Nagle's algorithm would only hold a
        // change back waiting for the client's acknowledgement of the previous one.
        let listener = self.listener.tap_io(|tcp| {
            if let Err(err) = tcp.set_nodelay(true) {
                tracing::debug!(error = %err, "cannot set TCP_NODELAY");
            }
        });
        let server = axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(wait_stop(http_stop_rx.clone()));
        let mut server = tokio::spawn(async move { server.await.context("HTTP server failed") });
        let metrics_server = self.metrics_listener.map(|listener| {
            let router = orchestrator_api::metrics_route::open_router(self.core.clone());
            let serve = axum::serve(listener, router)
                .with_graceful_shutdown(wait_stop(http_stop_rx.clone()));
            tokio::spawn(async move { serve.await.context("metrics server failed") })
        });

        // On Redis, keep each queue's `:active` list the count of due jobs, for autoscalers.
        let promoter = if self.mode == Mode::Worker {
            None
        } else {
            self.core
                .queue
                .spawn_promoter::<orchestrator_core::jobs::RunStage>()
        };
        let workers = if self.mode == Mode::Api {
            None
        } else {
            let core = self.core.clone();
            let rx = stop_rx.clone();
            Some(tokio::spawn(orchestrator_worker::run_workers(
                core,
                wait_stop(rx),
            )))
        };

        tokio::select! {
            ended = &mut server => {
                // The server stopped on its own: that is a failure, whatever it says.
                ended.context("HTTP server task")??;
                anyhow::bail!("the HTTP server stopped unexpectedly");
            }
            _ = wait_stop(stop_rx.clone()) => {}
        }
        tracing::info!("draining: not ready, finishing running stages and requests");
        let timeout = self.core.config.shutdown_timeout;
        let drained = match workers {
            Some(workers) => {
                match tokio::time::timeout(timeout + std::time::Duration::from_secs(1), workers)
                    .await
                {
                    Ok(joined) => joined.context("worker task").and_then(|r| r),
                    Err(_) => {
                        tracing::warn!("workers did not stop within the shutdown timeout");
                        Ok(())
                    }
                }
            }
            None => Ok(()),
        };
        if let Some(promoter) = promoter {
            promoter.abort();
        }
        let _ = http_stop_tx.send(true);
        server.await.context("HTTP server task")??;
        if let Some(metrics_server) = metrics_server {
            metrics_server.await.context("metrics server task")??;
        }
        drained
    }
}

/// Creates the data dir when missing and checks it is writable, with one clear error line.
fn prepare_data_dir(config: &Config) -> anyhow::Result<()> {
    let dir = &config.data_dir;
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the data dir {}", dir.display()))?;
    let probe = dir.join(".write-test");
    std::fs::write(&probe, b"")
        .with_context(|| format!("the data dir {} is not writable", dir.display()))?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}
