//! Test harness: start the real product on port 0 with a fresh database and queue, and talk
//! to it the way a frontend does (GraphQL over HTTP and websockets).
//!
//! Every test runs against the embedded setup (SQLite + SQLite queue) and, when
//! `ORCH_TEST_POSTGRES_URL` and `ORCH_TEST_REDIS_URL` are set, against PostgreSQL + Redis
//! too, each test with its own database and queue-key namespace. With
//! `ORCH_TEST_REQUIRE_SERVICES=1` a missing service fails the test instead of skipping it.

pub mod custom_backend;
pub mod engine;
pub mod fake_worker;
pub mod process;
pub mod ws;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use orchestrator::{Application, Mode};
use orchestrator_core::CoreContext;
use orchestrator_core::auth::{Claims, mint_hs256};
use orchestrator_core::config::{CliOverrides, Config, Secret};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::sync::oneshot;

/// Token-signing secret every test process shares.
pub const TEST_JWT_SECRET: &str = "test-secret-test-secret-test-secret-0123";

/// Which external services a test runs on.
#[derive(Debug, Clone)]
pub enum Services {
    /// SQLite file and SQLite queue in the data dir.
    Embedded,
    /// PostgreSQL (fresh database) and Redis (fresh key prefix).
    PostgresRedis {
        admin_url: String,
        redis_url: String,
    },
}

/// True when missing services must fail tests.
pub fn services_required() -> bool {
    std::env::var("ORCH_TEST_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

impl Services {
    /// PostgreSQL + Redis from the environment; `None` (skip) when unset, panics when
    /// services are required.
    pub fn postgres_redis() -> Option<Services> {
        let pg = std::env::var("ORCH_TEST_POSTGRES_URL")
            .ok()
            .filter(|s| !s.is_empty());
        let redis = std::env::var("ORCH_TEST_REDIS_URL")
            .ok()
            .filter(|s| !s.is_empty());
        match (pg, redis) {
            (Some(admin_url), Some(redis_url)) => Some(Services::PostgresRedis {
                admin_url,
                redis_url,
            }),
            _ if services_required() => panic!(
                "ORCH_TEST_REQUIRE_SERVICES=1 but ORCH_TEST_POSTGRES_URL or ORCH_TEST_REDIS_URL is not set"
            ),
            _ => {
                eprintln!(
                    "skipped: set ORCH_TEST_POSTGRES_URL and ORCH_TEST_REDIS_URL to run on PostgreSQL + Redis"
                );
                None
            }
        }
    }
}

/// Installs the process-wide TLS crypto provider (two are in the dependency graph).
pub fn init_crypto() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// Environment of a product process for `services`, in a fresh data dir: a new PostgreSQL
/// database or SQLite file, a unique queue prefix, short leases and fast polling.
pub async fn service_env(
    services: &Services,
    data_dir: &std::path::Path,
) -> HashMap<String, String> {
    let prefix = format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let mut env: HashMap<String, String> = [
        ("ORCH_DATA_DIR", data_dir.display().to_string()),
        ("ORCH_JWT_SECRET", TEST_JWT_SECRET.to_string()),
        ("ORCH_QUEUE_PREFIX", prefix.clone()),
        ("ORCH_QUEUE_POLL_INTERVAL_MS", "20".into()),
        ("ORCH_QUEUE_HEARTBEAT_SECS", "1".into()),
        ("ORCH_QUEUE_MISSED_HEARTBEATS", "3".into()),
        ("ORCH_SHUTDOWN_TIMEOUT", "10".into()),
        ("ORCH_WORKER_HEALTH_INTERVAL_SECS", "1".into()),
        // Fake workers and custom backends listen on loopback; every mode may reach them.
        ("ORCH_OUTBOUND_ALLOW", "loopback".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    if let Services::PostgresRedis {
        admin_url,
        redis_url,
    } = services
    {
        env.insert(
            "DATABASE_URL".into(),
            create_pg_database(admin_url, &prefix).await,
        );
        env.insert("REDIS_URL".into(), redis_url.clone());
    }
    env
}

/// Creates database `name` on the server of `admin_url`; returns its URL.
pub async fn create_pg_database(admin_url: &str, name: &str) -> String {
    init_crypto();
    use sea_orm::ConnectionTrait;
    let admin = sea_orm::Database::connect(admin_url)
        .await
        .expect("connect to ORCH_TEST_POSTGRES_URL");
    admin
        .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
        .await
        .expect("create test database");
    admin.close().await.ok();
    with_database(admin_url, name)
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

/// A running in-process application.
pub struct TestApp {
    /// The bound address.
    pub addr: SocketAddr,
    /// Database and queue handles, for assertions on what was (not) written.
    pub core: CoreContext,
    /// HTTP client.
    pub http: reqwest::Client,
    /// A global-admin token.
    pub admin_token: String,
    /// The environment the app was configured from (for starting sibling processes).
    pub env: HashMap<String, String>,
    _data_dir: TempDir,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

/// Starts the product in `Standalone` mode on port 0.
pub async fn spawn_app(services: &Services) -> TestApp {
    spawn_app_with(services, Mode::Standalone, &[]).await
}

/// Starts the product in `mode` with extra environment entries.
pub async fn spawn_app_with(services: &Services, mode: Mode, extra: &[(&str, &str)]) -> TestApp {
    init_crypto();
    let data_dir = tempfile::tempdir().expect("temp dir");
    let mut env = service_env(services, data_dir.path()).await;
    for (k, v) in extra {
        env.insert(k.to_string(), v.to_string());
    }
    let config = Config::load_with_env(
        None,
        &CliOverrides {
            listen: Some("127.0.0.1:0".into()),
            data_dir: None,
        },
        |k| env.get(k).cloned(),
    )
    .expect("test config");
    let app = Application::build(config, mode)
        .await
        .expect("application starts");
    let addr = app.local_addr();
    let core = app.core().clone();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until(async move {
        let _ = rx.await;
    }));
    TestApp {
        addr,
        core,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("http client"),
        admin_token: mint(&Claims {
            sub: "test-admin".into(),
            exp: chrono::Utc::now().timestamp() + 3600,
            nbf: None,
            iat: None,
            role: Some("admin".into()),
            projects: Default::default(),
        }),
        env,
        _data_dir: data_dir,
        shutdown: Some(tx),
        task: Some(task),
    }
}

/// Signs claims with the test secret.
pub fn mint(claims: &Claims) -> String {
    mint_hs256(&Secret::new(TEST_JWT_SECRET), claims).expect("mint token")
}

/// A token with `role` in the project with `slug` only.
pub fn project_token(slug: &str, role: &str) -> String {
    mint(&Claims {
        sub: format!("{slug}-{role}"),
        exp: chrono::Utc::now().timestamp() + 3600,
        nbf: None,
        iat: None,
        role: None,
        projects: [(slug.to_string(), role.to_string())].into_iter().collect(),
    })
}

impl TestApp {
    /// `http://addr`
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Posts a GraphQL operation; returns the whole response body.
    pub async fn gql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let mut req = self
            .http
            .post(self.url("/graphql"))
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        let resp = req.send().await.expect("POST /graphql");
        resp.json().await.expect("GraphQL JSON response")
    }

    /// As [`TestApp::gql`] with the admin token, asserting there are no errors; returns `data`.
    pub async fn admin(&self, query: &str, variables: Value) -> Value {
        let body = self.gql(Some(&self.admin_token), query, variables).await;
        assert!(body.get("errors").is_none(), "unexpected errors: {body:#}");
        body["data"].clone()
    }

    /// The id of the `default` project.
    pub async fn default_project(&self) -> String {
        let data = self.admin("{ projects { id slug } }", json!({})).await;
        data["projects"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["slug"] == "default")
            .expect("default project")["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Polls `execution(id)` until its status is terminal (or the timeout passes).
    pub async fn wait_execution(&self, id: &str, timeout: Duration) -> Value {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let data = self
                .admin(
                    "query($id: ID!) { execution(id: $id) { id status error progress { completed total } stages { name status attempt output } output } }",
                    json!({ "id": id }),
                )
                .await;
            let status = data["execution"]["status"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            if ["SUCCEEDED", "FAILED", "CANCELLED"].contains(&status.as_str()) {
                return data["execution"].clone();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "execution {id} still {status} after {timeout:?}: {data:#}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Stops the app and waits for it to finish.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(15), task).await;
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A token with the global admin role, for tests that talk to separate processes.
pub fn global_admin_token() -> String {
    mint(&Claims {
        sub: "test-admin".into(),
        exp: chrono::Utc::now().timestamp() + 3600,
        nbf: None,
        iat: None,
        role: Some("admin".into()),
        projects: Default::default(),
    })
}

/// Posts a GraphQL operation to the process at `addr`, asserting there are no errors;
/// returns `data`.
pub async fn post_gql(addr: SocketAddr, token: &str, query: &str, variables: Value) -> Value {
    let body: Value = reqwest::Client::new()
        .post(format!("http://{addr}/graphql"))
        .bearer_auth(token)
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .expect("POST /graphql")
        .json()
        .await
        .expect("GraphQL JSON response");
    assert!(body.get("errors").is_none(), "{body:#}");
    body["data"].clone()
}

/// The `extensions.code` of the first error of a GraphQL answer, or `<none>`.
pub fn error_code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or("<none>")
}

/// Runs `body` on every configured set of services: the embedded setup always, PostgreSQL +
/// Redis when configured.
#[macro_export]
macro_rules! on_all_services {
    ($($name:ident => $body:path;)+) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn embedded() {
                    $body($crate::Services::Embedded).await;
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn postgres_redis() {
                    if let Some(services) = $crate::Services::postgres_redis() {
                        $body(services).await;
                    }
                }
            }
        )+
    };
}
