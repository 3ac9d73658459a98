//! Process assembly shared by the CLI and the integration tests: connect, migrate, then run
//! the API, the workers, or both until a shutdown signal.

pub mod cli;

use std::future::Future;
use std::net::SocketAddr;

use anyhow::Context;
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
    mode: Mode,
}

impl Application {
    /// Prepares the data dir, connects to the database (migrating it) and the queue, makes sure
    /// the default project exists, and binds the listen address (port 0 picks a free port).
    pub async fn build(config: Config, mode: Mode) -> anyhow::Result<Application> {
        prepare_data_dir(&config)?;
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let core = CoreContext::connect(config).await?;
        if mode != Mode::Worker {
            orchestrator_core::projects::ensure_default(&core)
                .await
                .map_err(|e| anyhow::anyhow!("cannot create the default project: {e}"))?;
        }
        Ok(Application {
            core,
            listener,
            mode,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("bound listener has an address")
    }

    /// The shared database/queue handles.
    pub fn core(&self) -> &CoreContext {
        &self.core
    }

    /// Serves until `shutdown` resolves, then drains requests and running stages.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (stop_tx, stop_rx) = watch::channel(false);
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        });
        let wait_stop = |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|stopped| *stopped).await;
        };

        let router = match self.mode {
            Mode::Worker => orchestrator_api::routes::probe_router(self.core.clone()),
            Mode::Standalone | Mode::Api => {
                let api_mode = if self.mode == Mode::Standalone {
                    ApiMode::Standalone
                } else {
                    ApiMode::Api
                };
                orchestrator_api::app(orchestrator_api::build_state(self.core.clone(), api_mode)?)
            }
        };
        let server = axum::serve(
            self.listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(wait_stop(stop_rx.clone()));
        let server = tokio::spawn(async move { server.await.context("HTTP server failed") });

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

        let timeout = self.core.config.shutdown_timeout;
        server.await.context("HTTP server task")??;
        if let Some(workers) = workers {
            match tokio::time::timeout(timeout + std::time::Duration::from_secs(1), workers).await {
                Ok(joined) => joined.context("worker task")??,
                Err(_) => tracing::warn!("workers did not stop within the shutdown timeout"),
            }
        }
        Ok(())
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
