//! Starts the real `orchestrator` binary for a benchmark run: the embedded default (SQLite and
//! the SQLite queue in a fresh data dir) or PostgreSQL (a fresh database) and Redis (a fresh
//! key prefix), and talks to it over GraphQL like any client.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use orchestrator_core::auth::{Claims, mint_hs256};
use orchestrator_core::config::Secret;
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};
use tokio::process::{Child, Command};

const JWT_SECRET: &str = "bench-secret-bench-secret-bench-secret-0123";

/// Where data and queue live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Services {
    /// SQLite database and SQLite queue in the data dir (no other service).
    Embedded,
    /// PostgreSQL for data, Redis for the queue and wake-ups.
    PgRedis,
}

/// Addresses of the external services for `pg-redis` runs.
#[derive(Debug, Clone)]
pub struct ServiceUrls {
    pub postgres: String,
    pub redis: String,
}

/// The environment of one run: data dir, queue prefix, database.
pub struct Deployment {
    pub env: HashMap<String, String>,
    binary: PathBuf,
    _data_dir: tempfile::TempDir,
    admin_url: Option<String>,
    database: String,
    children: Vec<Child>,
    http: reqwest::Client,
    token: String,
}

impl Deployment {
    /// Prepares a fresh deployment (nothing runs yet).
    pub async fn prepare(
        binary: &Path,
        services: Services,
        urls: &ServiceUrls,
    ) -> anyhow::Result<Self> {
        let data_dir = tempfile::tempdir()?;
        let database = format!("bench_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let mut env: HashMap<String, String> = [
            ("ORCH_DATA_DIR", data_dir.path().display().to_string()),
            ("ORCH_JWT_SECRET", JWT_SECRET.into()),
            ("ORCH_QUEUE_PREFIX", database.clone()),
            // The benchmark is one client sending far more than a person would.
            ("ORCH_RATE_LIMIT_PER_SECOND", "1000000".into()),
            ("ORCH_RATE_LIMIT_BURST", "1000000".into()),
            ("RUST_LOG", "warn".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let mut admin_url = None;
        if services == Services::PgRedis {
            let admin = sea_orm::Database::connect(urls.postgres.as_str())
                .await
                .context("connect to PostgreSQL")?;
            admin
                .execute_unprepared(&format!("CREATE DATABASE \"{database}\""))
                .await?;
            admin.close().await.ok();
            env.insert(
                "DATABASE_URL".into(),
                with_database(&urls.postgres, &database),
            );
            env.insert("REDIS_URL".into(), urls.redis.clone());
            admin_url = Some(urls.postgres.clone());
        }
        let now = chrono::Utc::now().timestamp();
        let token = mint_hs256(
            &Secret::new(JWT_SECRET),
            &Claims {
                sub: "bench".into(),
                exp: now + 24 * 3600,
                nbf: None,
                iat: Some(now),
                role: Some("admin".into()),
                projects: Default::default(),
            },
        )?;
        Ok(Deployment {
            env,
            binary: binary.to_path_buf(),
            _data_dir: data_dir,
            admin_url,
            database,
            children: Vec::new(),
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(64)
                .timeout(Duration::from_secs(60))
                .build()?,
            token,
        })
    }

    /// Starts `orchestrator <mode>` and waits until it is ready; returns its address.
    pub async fn spawn(&mut self, mode: &str) -> anyhow::Result<SocketAddr> {
        let addr = TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let log = self
            ._data_dir
            .path()
            .join(format!("{mode}-{}.log", self.children.len()));
        let file = std::fs::File::create(&log)?;
        let child = Command::new(&self.binary)
            .arg(mode)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(&self.env)
            .env("ORCH_LISTEN", addr.to_string())
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("start {}", self.binary.display()))?;
        self.children.push(child);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = self.http.get(format!("http://{addr}/ready")).send().await
                && r.status().is_success()
            {
                return Ok(addr);
            }
            if tokio::time::Instant::now() > deadline {
                bail!(
                    "{mode} not ready: {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The process id of the `index`-th process started.
    pub fn pid(&self, index: usize) -> Option<u32> {
        self.children.get(index).and_then(|c| c.id())
    }

    /// The admin token every request uses.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Posts a GraphQL operation; fails on GraphQL errors.
    pub async fn gql(
        &self,
        addr: SocketAddr,
        query: &str,
        variables: Value,
    ) -> anyhow::Result<Value> {
        let body: Value = self
            .http
            .post(format!("http://{addr}/graphql"))
            .bearer_auth(&self.token)
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await?
            .json()
            .await?;
        if let Some(errors) = body.get("errors") {
            bail!("GraphQL errors: {errors}");
        }
        Ok(body["data"].clone())
    }

    /// Stops every process (SIGKILL; nothing of the run is kept) and drops the database.
    pub async fn teardown(mut self) -> anyhow::Result<()> {
        for child in &mut self.children {
            let _ = child.kill().await;
        }
        if let Some(admin_url) = &self.admin_url {
            let admin = sea_orm::Database::connect(admin_url.as_str()).await?;
            admin
                .execute_unprepared(&format!(
                    "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                    self.database
                ))
                .await?;
            admin.close().await.ok();
        }
        Ok(())
    }
}

fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}
