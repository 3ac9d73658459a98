//! Configuration: defaults, then an optional `orchestrator.toml`, then environment variables
//! (`ORCH_*`, plus the conventional `DATABASE_URL` and `REDIS_URL`), then command-line flags.
//!
//! Every key is listed once in [`KEYS`], which drives both the environment overlay and the
//! README table, so a key cannot be readable from one source and missing from another.
//! An invalid value stops start-up with one line naming the key and what it expects.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// A value that must never be printed (tokens, keys). `Debug` and `Display` show a mask.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    /// The secret itself; call only where it is used, never to log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(••••)")
    }
}

/// How a key's value is read from an environment variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Text,
    Integer,
    Boolean,
    /// Comma-separated list.
    List,
}

/// One configuration key: its path in `orchestrator.toml`, the environment variables that
/// set it (first found wins), its kind, its default as shown to people, and what it does.
#[derive(Debug)]
pub struct KeySpec {
    pub path: &'static str,
    pub env: &'static [&'static str],
    pub kind: KeyKind,
    pub default: &'static str,
    pub help: &'static str,
}

/// Every configuration key the product reads.
pub const KEYS: &[KeySpec] = &[
    KeySpec {
        path: "listen",
        env: &["ORCH_LISTEN"],
        kind: KeyKind::Text,
        default: "127.0.0.1:8080",
        help: "Address the HTTP server binds (GraphQL, health, readiness).",
    },
    KeySpec {
        path: "data_dir",
        env: &["ORCH_DATA_DIR"],
        kind: KeyKind::Text,
        default: "./data",
        help: "Directory for the SQLite database, the SQLite queue and generated keys.",
    },
    KeySpec {
        path: "database_url",
        env: &["DATABASE_URL", "ORCH_DATABASE_URL"],
        kind: KeyKind::Text,
        default: "sqlite://<data_dir>/orchestrator.db",
        help: "`sqlite://…` or `postgres://…`.",
    },
    KeySpec {
        path: "database_max_connections",
        env: &["ORCH_DATABASE_MAX_CONNECTIONS"],
        kind: KeyKind::Integer,
        default: "16",
        help: "Connection pool size.",
    },
    KeySpec {
        path: "redis_url",
        env: &["REDIS_URL", "ORCH_REDIS_URL"],
        kind: KeyKind::Text,
        default: "(unset)",
        help: "When set, the job queue lives in Redis (required for workers on several hosts).",
    },
    KeySpec {
        path: "log_format",
        env: &["ORCH_LOG_FORMAT"],
        kind: KeyKind::Text,
        default: "text",
        help: "`text` or `json`. The level filter is `RUST_LOG` (default `info`).",
    },
    KeySpec {
        path: "shutdown_timeout_secs",
        env: &["ORCH_SHUTDOWN_TIMEOUT"],
        kind: KeyKind::Integer,
        default: "30",
        help: "Seconds in-flight requests and stages get to finish after SIGTERM.",
    },
    KeySpec {
        path: "startup_timeout_secs",
        env: &["ORCH_STARTUP_TIMEOUT"],
        kind: KeyKind::Integer,
        default: "30",
        help: "Seconds start-up keeps retrying an unreachable database or Redis before it gives up.",
    },
    KeySpec {
        path: "auth.jwt_secret",
        env: &["ORCH_JWT_SECRET"],
        kind: KeyKind::Text,
        default: "generated into <data_dir>/jwt.secret",
        help: "HS256 secret for bearer tokens (at least 32 bytes). Set it explicitly when several processes serve the API.",
    },
    KeySpec {
        path: "auth.jwt_issuer",
        env: &["ORCH_JWT_ISSUER"],
        kind: KeyKind::Text,
        default: "(unset)",
        help: "When set, tokens must carry this `iss`.",
    },
    KeySpec {
        path: "auth.jwt_audience",
        env: &["ORCH_JWT_AUDIENCE"],
        kind: KeyKind::Text,
        default: "(unset)",
        help: "When set, tokens must carry this `aud`.",
    },
    KeySpec {
        path: "auth.jwt_public_key_file",
        env: &["ORCH_JWT_PUBLIC_KEY_FILE"],
        kind: KeyKind::Text,
        default: "(unset)",
        help: "PEM file with an RSA public key; RS256 tokens signed by its private key are accepted.",
    },
    KeySpec {
        path: "auth.jwks_file",
        env: &["ORCH_JWKS_FILE"],
        kind: KeyKind::Text,
        default: "(unset)",
        help: "JWKS file of RSA public keys (chosen by the token's `kid`); RS256 tokens are accepted.",
    },
    KeySpec {
        path: "auth.secret_key",
        env: &["ORCH_SECRET_KEY"],
        kind: KeyKind::Text,
        default: "generated into <data_dir>/secret.key",
        help: "Key (base64, 32 bytes) that encrypts secrets at rest.",
    },
    KeySpec {
        path: "api.introspection",
        env: &["ORCH_INTROSPECTION"],
        kind: KeyKind::Boolean,
        default: "true in standalone, false in api",
        help: "Allow GraphQL introspection.",
    },
    KeySpec {
        path: "api.graphiql",
        env: &["ORCH_GRAPHIQL"],
        kind: KeyKind::Boolean,
        default: "true in standalone, false in api",
        help: "Serve GraphiQL on `GET /graphql`.",
    },
    KeySpec {
        path: "api.cors_origins",
        env: &["ORCH_CORS_ORIGINS"],
        kind: KeyKind::List,
        default: "(none)",
        help: "Comma-separated origins allowed for browsers and websockets.",
    },
    KeySpec {
        path: "limits.max_depth",
        env: &["ORCH_LIMIT_DEPTH"],
        kind: KeyKind::Integer,
        default: "12",
        help: "Deepest selection nesting a query may have.",
    },
    KeySpec {
        path: "limits.max_complexity",
        env: &["ORCH_LIMIT_COMPLEXITY"],
        kind: KeyKind::Integer,
        default: "2000",
        help: "Largest query complexity (one point per field, lists multiply).",
    },
    KeySpec {
        path: "limits.max_aliases",
        env: &["ORCH_LIMIT_ALIASES"],
        kind: KeyKind::Integer,
        default: "30",
        help: "Most aliases in one query.",
    },
    KeySpec {
        path: "limits.max_directives_per_field",
        env: &["ORCH_LIMIT_DIRECTIVES"],
        kind: KeyKind::Integer,
        default: "4",
        help: "Most directives on one field.",
    },
    KeySpec {
        path: "limits.max_batch",
        env: &["ORCH_LIMIT_BATCH"],
        kind: KeyKind::Integer,
        default: "10",
        help: "Most operations in one batched HTTP request.",
    },
    KeySpec {
        path: "limits.max_body_bytes",
        env: &["ORCH_LIMIT_BODY_BYTES"],
        kind: KeyKind::Integer,
        default: "1048576",
        help: "Largest HTTP request body.",
    },
    KeySpec {
        path: "limits.max_query_bytes",
        env: &["ORCH_LIMIT_QUERY_BYTES"],
        kind: KeyKind::Integer,
        default: "32768",
        help: "Longest query text.",
    },
    KeySpec {
        path: "limits.request_timeout_secs",
        env: &["ORCH_REQUEST_TIMEOUT"],
        kind: KeyKind::Integer,
        default: "30",
        help: "Seconds one GraphQL request may take.",
    },
    KeySpec {
        path: "limits.max_subscriptions",
        env: &["ORCH_LIMIT_SUBSCRIPTIONS"],
        kind: KeyKind::Integer,
        default: "100",
        help: "Most active operations on one websocket.",
    },
    KeySpec {
        path: "limits.ws_init_timeout_secs",
        env: &["ORCH_WS_INIT_TIMEOUT"],
        kind: KeyKind::Integer,
        default: "10",
        help: "Seconds a websocket has to send `connection_init` (else closed with 4408).",
    },
    KeySpec {
        path: "limits.rate_per_second",
        env: &["ORCH_RATE_LIMIT_PER_SECOND"],
        kind: KeyKind::Integer,
        default: "50",
        help: "Sustained requests per second per API key, token subject or anonymous client address.",
    },
    KeySpec {
        path: "limits.rate_burst",
        env: &["ORCH_RATE_LIMIT_BURST"],
        kind: KeyKind::Integer,
        default: "200",
        help: "Requests a caller may make in a burst above the sustained rate.",
    },
    KeySpec {
        path: "queue.prefix",
        env: &["ORCH_QUEUE_PREFIX"],
        kind: KeyKind::Text,
        default: "orchestrator",
        help: "Prefix of queue names (and Redis keys).",
    },
    KeySpec {
        path: "queue.max_attempts",
        env: &["ORCH_QUEUE_MAX_ATTEMPTS"],
        kind: KeyKind::Integer,
        default: "5",
        help: "Queue-level delivery attempts of one job (crash recovery re-deliveries included).",
    },
    KeySpec {
        path: "queue.heartbeat_secs",
        env: &["ORCH_QUEUE_HEARTBEAT_SECS"],
        kind: KeyKind::Integer,
        default: "10",
        help: "Worker heartbeat interval.",
    },
    KeySpec {
        path: "queue.missed_heartbeats",
        env: &["ORCH_QUEUE_MISSED_HEARTBEATS"],
        kind: KeyKind::Integer,
        default: "3",
        help: "Missed heartbeats after which a worker's jobs are re-queued (the lease).",
    },
    KeySpec {
        path: "queue.poll_interval_ms",
        env: &["ORCH_QUEUE_POLL_INTERVAL_MS"],
        kind: KeyKind::Integer,
        default: "100",
        help: "Fallback polling interval of the queue.",
    },
    KeySpec {
        path: "worker.concurrency",
        env: &["ORCH_WORKER_CONCURRENCY"],
        kind: KeyKind::Integer,
        default: "16",
        help: "Jobs one worker process runs at once.",
    },
    KeySpec {
        path: "worker.name",
        env: &["ORCH_WORKER_NAME"],
        kind: KeyKind::Text,
        default: "<hostname>-<random>",
        help: "Worker name prefix; a random suffix keeps names unique per process.",
    },
    KeySpec {
        path: "worker.health_interval_secs",
        env: &["ORCH_WORKER_HEALTH_INTERVAL_SECS"],
        kind: KeyKind::Integer,
        default: "15",
        help: "Seconds between health probes (`GET /health`) of each registered remote worker.",
    },
    KeySpec {
        path: "metrics.listen",
        env: &["ORCH_METRICS_LISTEN"],
        kind: KeyKind::Text,
        default: "(unset)",
        help: "A second address that serves only `/metrics`, without credentials (keep it internal). The main port serves `/metrics` too, to tokens with a global role.",
    },
    KeySpec {
        path: "metrics.public",
        env: &["ORCH_METRICS_PUBLIC"],
        kind: KeyKind::Boolean,
        default: "false",
        help: "Serve `/metrics` on the main port without credentials.",
    },
    KeySpec {
        path: "outbound_allow",
        env: &["ORCH_OUTBOUND_ALLOW"],
        kind: KeyKind::List,
        default: "loopback in standalone, none in api and worker",
        help: "Comma-separated `loopback`, `private` or CIDRs (`10.1.0.0/16`) that URLs users give (custom backends, remote workers) may reach besides public addresses; `none` for public only. Link-local and metadata addresses are never allowed.",
    },
    KeySpec {
        path: "llm_url",
        env: &["ORCH_LLM_URL"],
        kind: KeyKind::Text,
        default: "(unset)",
        help: "Base URL of an OpenAI-compatible chat-completions API (e.g. `https://api.openai.com/v1`) that parses intent commands; unset, only the rule parser does. Needs `llm_model` and `llm_api_key` too.",
    },
    KeySpec {
        path: "llm_model",
        env: &["ORCH_LLM_MODEL"],
        kind: KeyKind::Text,
        default: "(unset)",
        help: "Model name sent with each intent command.",
    },
    KeySpec {
        path: "llm_api_key",
        env: &["ORCH_LLM_API_KEY"],
        kind: KeyKind::Text,
        default: "(unset)",
        help: "Bearer key for the model API; never logged.",
    },
    KeySpec {
        path: "llm_timeout_ms",
        env: &["ORCH_LLM_TIMEOUT_MS"],
        kind: KeyKind::Integer,
        default: "5000",
        help: "Milliseconds the model may take to answer before the rule parser takes over.",
    },
    KeySpec {
        path: "kubeconfig",
        env: &["ORCH_KUBECONFIG"],
        kind: KeyKind::Text,
        default: "(inferred)",
        help: "Kubeconfig file for deploying to Kubernetes. Unset: the in-cluster service account, else `KUBECONFIG` or `~/.kube/config`.",
    },
    KeySpec {
        path: "kube_context",
        env: &["ORCH_KUBE_CONTEXT"],
        kind: KeyKind::Text,
        default: "(current context)",
        help: "Context of the kubeconfig to deploy with.",
    },
    KeySpec {
        path: "deploy_platform",
        env: &["ORCH_DEPLOY_PLATFORM"],
        kind: KeyKind::Text,
        default: "docker",
        help: "Platform of deployments whose command and options name none: `docker` or `kubernetes`.",
    },
    KeySpec {
        path: "deploy_ready_timeout_secs",
        env: &["ORCH_DEPLOY_READY_TIMEOUT_SECS"],
        kind: KeyKind::Integer,
        default: "300",
        help: "Seconds a deployed component may take to become ready (health check passing, rollout complete) before its stage fails.",
    },
    KeySpec {
        path: "backend_check_interval_secs",
        env: &["ORCH_BACKEND_CHECK_INTERVAL_SECS"],
        kind: KeyKind::Integer,
        default: "60",
        help: "Seconds between checks of each backend by the worker processes: `GET /health` (`ACTIVE` / `UNHEALTHY`) and its live prompts against the last applied version (`DRIFTED`).",
    },
];

/// Fully resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address of the HTTP server.
    pub listen: SocketAddr,
    /// Directory for embedded data and generated keys.
    pub data_dir: PathBuf,
    /// Database URL (`sqlite://` or `postgres://`).
    pub database_url: String,
    /// Pool size.
    pub database_max_connections: u32,
    /// Redis URL; `None` selects the SQLite queue in the data dir.
    pub redis_url: Option<String>,
    /// Log output format.
    pub log_format: LogFormat,
    /// Grace period after SIGTERM.
    pub shutdown_timeout: Duration,
    /// How long start-up waits for the database and Redis.
    pub startup_timeout: Duration,
    /// Token and encryption settings.
    pub auth: AuthConfig,
    /// GraphQL surface settings.
    pub api: ApiConfig,
    /// Limits on requests and connections.
    pub limits: Limits,
    /// Job queue settings.
    pub queue: QueueConfig,
    /// Worker process settings.
    pub worker: WorkerConfig,
    /// Where and to whom `/metrics` is served.
    pub metrics: MetricsConfig,
    /// What user-given outbound URLs may reach besides public addresses; `None` means "the
    /// default of the process mode" (see [`Config::settle_outbound_allow`]).
    pub outbound_allow: Option<crate::outbound::AllowList>,
    /// Model that parses intent commands; `None` leaves them to the rule parser.
    pub llm: Option<LlmConfig>,
    /// Kubeconfig file for the Kubernetes deployer; `None` infers the cluster (in-cluster
    /// service account, then `KUBECONFIG` or `~/.kube/config`).
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context to deploy with; `None` means the file's current context.
    pub kube_context: Option<String>,
    /// Platform of deployments that name none.
    pub deploy_platform: crate::blueprint::Platform,
    /// How long a deployed component may take to become ready.
    pub deploy_ready_timeout: Duration,
    /// Pause between two health and drift checks of one backend.
    pub backend_check_interval: Duration,
}

/// Token and encryption settings.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// HS256 secret; `None` means "use or generate the one in the data dir".
    pub jwt_secret: Option<Secret>,
    pub jwt_issuer: Option<String>,
    pub jwt_audience: Option<String>,
    /// RSA public key (PEM) for RS256 tokens.
    pub jwt_public_key_file: Option<PathBuf>,
    /// JWKS file for RS256 tokens.
    pub jwks_file: Option<PathBuf>,
    /// Encryption key for secrets at rest; `None` means "use or generate the one in the data dir".
    pub secret_key: Option<Secret>,
}

/// GraphQL surface settings; `None` means "the default of the process mode".
#[derive(Debug, Clone, Default)]
pub struct ApiConfig {
    pub introspection: Option<bool>,
    pub graphiql: Option<bool>,
    pub cors_origins: Vec<String>,
}

/// Limits on requests and connections; every input has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_depth: usize,
    pub max_complexity: usize,
    pub max_aliases: usize,
    pub max_directives_per_field: usize,
    pub max_batch: usize,
    pub max_body_bytes: usize,
    pub max_query_bytes: usize,
    pub request_timeout: Duration,
    pub max_subscriptions: usize,
    pub ws_init_timeout: Duration,
    pub rate_per_second: u32,
    pub rate_burst: u32,
}

impl Default for Limits {
    fn default() -> Self {
        RawLimits::default().resolve().expect("defaults are valid")
    }
}

/// Job queue settings.
#[derive(Debug, Clone)]
pub struct QueueConfig {
    pub prefix: String,
    pub max_attempts: u32,
    pub heartbeat: Duration,
    pub missed_heartbeats: u32,
    pub poll_interval: Duration,
}

/// Worker process settings.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub concurrency: u32,
    pub name: Option<String>,
    /// Pause between health probes of one remote worker.
    pub health_interval: Duration,
}

/// Where and to whom `/metrics` is served.
#[derive(Debug, Clone, Default)]
pub struct MetricsConfig {
    /// A second listener serving only `/metrics`, to anyone who can reach it.
    pub listen: Option<SocketAddr>,
    /// Serve `/metrics` on the main port without credentials.
    pub public: bool,
}

/// An OpenAI-compatible chat-completions API that parses intent commands.
#[derive(Debug, Clone)]
pub struct LlmConfig {
    /// Base URL; requests go to `{url}/chat/completions`.
    pub url: String,
    /// Model name sent with each request.
    pub model: String,
    /// Sent as `Authorization: Bearer`.
    pub api_key: Secret,
    /// How long one answer may take.
    pub timeout: Duration,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// A configuration problem, phrased as one line naming the key.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(pub String);

/// Values given on the command line; they override everything else.
#[derive(Debug, Clone, Default)]
pub struct CliOverrides {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    database_max_connections: Option<u32>,
    redis_url: Option<String>,
    outbound_allow: Option<Vec<String>>,
    log_format: Option<String>,
    shutdown_timeout_secs: Option<u64>,
    startup_timeout_secs: Option<u64>,
    #[serde(default)]
    auth: RawAuth,
    #[serde(default)]
    api: RawApi,
    #[serde(default)]
    queue: RawQueue,
    #[serde(default)]
    worker: RawWorker,
    #[serde(default)]
    metrics: RawMetrics,
    #[serde(default)]
    limits: RawLimits,
    llm_url: Option<String>,
    llm_model: Option<String>,
    llm_api_key: Option<String>,
    llm_timeout_ms: Option<u64>,
    kubeconfig: Option<PathBuf>,
    kube_context: Option<String>,
    deploy_platform: Option<String>,
    deploy_ready_timeout_secs: Option<u64>,
    backend_check_interval_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    max_depth: Option<u32>,
    max_complexity: Option<u32>,
    max_aliases: Option<u32>,
    max_directives_per_field: Option<u32>,
    max_batch: Option<u32>,
    max_body_bytes: Option<u32>,
    max_query_bytes: Option<u32>,
    request_timeout_secs: Option<u32>,
    max_subscriptions: Option<u32>,
    ws_init_timeout_secs: Option<u32>,
    rate_per_second: Option<u32>,
    rate_burst: Option<u32>,
}

impl RawLimits {
    fn resolve(self) -> Result<Limits, ConfigError> {
        let get = |key: &str, v: Option<u32>, default: u32| {
            positive(&format!("limits.{key}"), v.unwrap_or(default))
        };
        Ok(Limits {
            max_depth: get("max_depth", self.max_depth, 12)? as usize,
            max_complexity: get("max_complexity", self.max_complexity, 2000)? as usize,
            max_aliases: get("max_aliases", self.max_aliases, 30)? as usize,
            max_directives_per_field: get(
                "max_directives_per_field",
                self.max_directives_per_field,
                4,
            )? as usize,
            max_batch: get("max_batch", self.max_batch, 10)? as usize,
            max_body_bytes: get("max_body_bytes", self.max_body_bytes, 1024 * 1024)? as usize,
            max_query_bytes: get("max_query_bytes", self.max_query_bytes, 32 * 1024)? as usize,
            request_timeout: Duration::from_secs(
                get("request_timeout_secs", self.request_timeout_secs, 30)?.into(),
            ),
            max_subscriptions: get("max_subscriptions", self.max_subscriptions, 100)? as usize,
            ws_init_timeout: Duration::from_secs(
                get("ws_init_timeout_secs", self.ws_init_timeout_secs, 10)?.into(),
            ),
            rate_per_second: get("rate_per_second", self.rate_per_second, 50)?,
            rate_burst: get("rate_burst", self.rate_burst, 200)?,
        })
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuth {
    jwt_secret: Option<String>,
    jwt_issuer: Option<String>,
    jwt_audience: Option<String>,
    jwt_public_key_file: Option<PathBuf>,
    jwks_file: Option<PathBuf>,
    secret_key: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApi {
    introspection: Option<bool>,
    graphiql: Option<bool>,
    cors_origins: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQueue {
    prefix: Option<String>,
    max_attempts: Option<u32>,
    heartbeat_secs: Option<u64>,
    missed_heartbeats: Option<u32>,
    poll_interval_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWorker {
    concurrency: Option<u32>,
    name: Option<String>,
    health_interval_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetrics {
    listen: Option<String>,
    public: Option<bool>,
}

impl RawMetrics {
    fn resolve(self) -> Result<MetricsConfig, ConfigError> {
        let listen = match self.listen {
            None => None,
            Some(text) => Some(text.parse::<SocketAddr>().map_err(|_| {
                ConfigError(format!(
                    "metrics.listen: expected an address like 0.0.0.0:9090, got {text:?}"
                ))
            })?),
        };
        Ok(MetricsConfig {
            listen,
            public: self.public.unwrap_or(false),
        })
    }
}

impl Config {
    /// Loads the configuration from an optional file, the process environment and CLI flags.
    pub fn load(file: Option<&Path>, cli: &CliOverrides) -> Result<Config, ConfigError> {
        Self::load_with_env(file, cli, |name| std::env::var(name).ok())
    }

    /// As [`Config::load`], reading variables through `env` (tests pass a map).
    pub fn load_with_env(
        file: Option<&Path>,
        cli: &CliOverrides,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let mut table = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    ConfigError(format!("cannot read config file {}: {e}", path.display()))
                })?;
                text.parse::<toml::Table>().map_err(|e| {
                    ConfigError(format!("{}: {}", path.display(), one_line(&e.to_string())))
                })?
            }
            None => toml::Table::new(),
        };
        for key in KEYS {
            let Some((var, value)) = key
                .env
                .iter()
                .find_map(|var| env(var).filter(|v| !v.is_empty()).map(|v| (*var, v)))
            else {
                continue;
            };
            let value = env_value(key, var, &value)?;
            insert_path(&mut table, key.path, value);
        }
        if let Some(listen) = &cli.listen {
            insert_path(&mut table, "listen", toml::Value::String(listen.clone()));
        }
        if let Some(dir) = &cli.data_dir {
            insert_path(
                &mut table,
                "data_dir",
                toml::Value::String(dir.to_string_lossy().into_owned()),
            );
        }
        let raw: RawConfig = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError(one_line(&e.to_string())))?;
        raw.resolve()
    }

    /// Fills in the mode's default for `outbound_allow` when it is not configured (loopback in
    /// standalone, nothing extra in `api` and `worker`). Processes call it once at start-up,
    /// before the configuration is shared.
    pub fn settle_outbound_allow(&mut self, mode: crate::outbound::ProcessMode) {
        if self.outbound_allow.is_none() {
            self.outbound_allow = Some(crate::outbound::AllowList::default_for(mode));
        }
    }

    /// True when the embedded SQLite queue is in use.
    pub fn uses_embedded_queue(&self) -> bool {
        self.redis_url.is_none()
    }

    /// Path of the SQLite queue file (used when no Redis URL is configured).
    pub fn queue_file(&self) -> PathBuf {
        self.data_dir.join("queue.db")
    }
}

impl RawConfig {
    fn resolve(self) -> Result<Config, ConfigError> {
        let listen_text = self.listen.unwrap_or_else(|| "127.0.0.1:8080".into());
        let listen: SocketAddr = listen_text.parse().map_err(|_| {
            ConfigError(format!(
                "listen: expected an address like 127.0.0.1:8080, got {listen_text:?}"
            ))
        })?;
        let data_dir = self.data_dir.unwrap_or_else(|| PathBuf::from("./data"));
        let database_url = match self.database_url {
            Some(url) => {
                if !(url.starts_with("sqlite:")
                    || url.starts_with("postgres://")
                    || url.starts_with("postgresql://"))
                {
                    return Err(ConfigError(format!(
                        "database_url: expected a sqlite://… or postgres://… URL, got {:?}",
                        redact_url(&url)
                    )));
                }
                url
            }
            None => format!(
                "sqlite://{}?mode=rwc",
                data_dir.join("orchestrator.db").display()
            ),
        };
        if let Some(url) = &self.redis_url
            && !(url.starts_with("redis://") || url.starts_with("rediss://"))
        {
            return Err(ConfigError(format!(
                "redis_url: expected a redis://… URL, got {:?}",
                redact_url(url)
            )));
        }
        let log_format = match self.log_format.as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(ConfigError(format!(
                    "log_format: expected `text` or `json`, got {other:?}"
                )));
            }
        };
        let jwt_secret = self.auth.jwt_secret.map(Secret::new);
        if let Some(secret) = &jwt_secret
            && secret.expose().len() < 32
        {
            return Err(ConfigError(
                "auth.jwt_secret: expected at least 32 bytes".into(),
            ));
        }
        let outbound_allow = match &self.outbound_allow {
            Some(entries) => Some(
                crate::outbound::AllowList::parse(entries)
                    .map_err(|why| ConfigError(format!("outbound_allow: {why}")))?,
            ),
            None => None,
        };
        let queue = QueueConfig {
            prefix: self.queue.prefix.unwrap_or_else(|| "orchestrator".into()),
            max_attempts: positive("queue.max_attempts", self.queue.max_attempts.unwrap_or(5))?,
            heartbeat: Duration::from_secs(positive_u64(
                "queue.heartbeat_secs",
                self.queue.heartbeat_secs.unwrap_or(10),
            )?),
            missed_heartbeats: positive(
                "queue.missed_heartbeats",
                self.queue.missed_heartbeats.unwrap_or(3),
            )?,
            poll_interval: Duration::from_millis(positive_u64(
                "queue.poll_interval_ms",
                self.queue.poll_interval_ms.unwrap_or(100),
            )?),
        };
        if !queue
            .prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            || queue.prefix.is_empty()
        {
            return Err(ConfigError(format!(
                "queue.prefix: expected letters, digits, '-' or '_', got {:?}",
                queue.prefix
            )));
        }
        Ok(Config {
            listen,
            data_dir,
            database_url,
            database_max_connections: positive(
                "database_max_connections",
                self.database_max_connections.unwrap_or(16),
            )?,
            redis_url: self.redis_url,
            outbound_allow,
            log_format,
            shutdown_timeout: Duration::from_secs(self.shutdown_timeout_secs.unwrap_or(30)),
            startup_timeout: Duration::from_secs(self.startup_timeout_secs.unwrap_or(30)),
            auth: AuthConfig {
                jwt_secret,
                jwt_issuer: self.auth.jwt_issuer,
                jwt_audience: self.auth.jwt_audience,
                jwt_public_key_file: self.auth.jwt_public_key_file,
                jwks_file: self.auth.jwks_file,
                secret_key: self.auth.secret_key.map(Secret::new),
            },
            api: ApiConfig {
                introspection: self.api.introspection,
                graphiql: self.api.graphiql,
                cors_origins: self.api.cors_origins.unwrap_or_default(),
            },
            queue,
            limits: self.limits.resolve()?,
            llm: resolve_llm(
                self.llm_url,
                self.llm_model,
                self.llm_api_key,
                self.llm_timeout_ms,
            )?,
            worker: WorkerConfig {
                concurrency: positive("worker.concurrency", self.worker.concurrency.unwrap_or(16))?,
                name: self.worker.name,
                health_interval: Duration::from_secs(positive_u64(
                    "worker.health_interval_secs",
                    self.worker.health_interval_secs.unwrap_or(15),
                )?),
            },
            metrics: self.metrics.resolve()?,
            kubeconfig: self.kubeconfig,
            kube_context: self.kube_context,
            deploy_platform: match self.deploy_platform.as_deref().unwrap_or("docker") {
                "docker" => crate::blueprint::Platform::Docker,
                "kubernetes" => crate::blueprint::Platform::Kubernetes,
                other => {
                    return Err(ConfigError(format!(
                        "deploy_platform: expected docker or kubernetes, got {other:?}"
                    )));
                }
            },
            deploy_ready_timeout: Duration::from_secs(positive_u64(
                "deploy_ready_timeout_secs",
                self.deploy_ready_timeout_secs.unwrap_or(300),
            )?),
            backend_check_interval: Duration::from_secs(positive_u64(
                "backend_check_interval_secs",
                self.backend_check_interval_secs.unwrap_or(60),
            )?),
        })
    }
}

/// The model settings: all of `llm_url`, `llm_model` and `llm_api_key`, or none of them.
fn resolve_llm(
    url: Option<String>,
    model: Option<String>,
    api_key: Option<String>,
    timeout_ms: Option<u64>,
) -> Result<Option<LlmConfig>, ConfigError> {
    let timeout =
        Duration::from_millis(positive_u64("llm_timeout_ms", timeout_ms.unwrap_or(5000))?);
    let (url, model, api_key) = match (url, model, api_key) {
        (None, None, None) => return Ok(None),
        (Some(url), Some(model), Some(api_key)) => (url, model, api_key),
        (url, model, _) => {
            let missing = if url.is_none() {
                "llm_url"
            } else if model.is_none() {
                "llm_model"
            } else {
                "llm_api_key"
            };
            return Err(ConfigError(format!(
                "{missing}: llm_url, llm_model and llm_api_key go together; set all three or none"
            )));
        }
    };
    if !(url.starts_with("http://") || url.starts_with("https://")) || url.contains('@') {
        return Err(ConfigError(format!(
            "llm_url: expected an http:// or https:// URL without credentials, got {:?}",
            redact_url(&url)
        )));
    }
    if model.trim().is_empty() {
        return Err(ConfigError("llm_model: expected a model name".into()));
    }
    Ok(Some(LlmConfig {
        url,
        model,
        api_key: Secret::new(api_key),
        timeout,
    }))
}

fn positive(key: &str, value: u32) -> Result<u32, ConfigError> {
    if value == 0 {
        return Err(ConfigError(format!(
            "{key}: expected a number above 0, got 0"
        )));
    }
    Ok(value)
}

fn positive_u64(key: &str, value: u64) -> Result<u64, ConfigError> {
    if value == 0 {
        return Err(ConfigError(format!(
            "{key}: expected a number above 0, got 0"
        )));
    }
    Ok(value)
}

fn env_value(key: &KeySpec, var: &str, value: &str) -> Result<toml::Value, ConfigError> {
    Ok(match key.kind {
        KeyKind::Text => toml::Value::String(value.to_string()),
        KeyKind::Integer => {
            toml::Value::Integer(value.trim().parse().map_err(|_| {
                ConfigError(format!("{var}: expected a whole number, got {value:?}"))
            })?)
        }
        KeyKind::Boolean => {
            toml::Value::Boolean(match value.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => true,
                "0" | "false" | "no" | "off" => false,
                _ => {
                    return Err(ConfigError(format!(
                        "{var}: expected true or false, got {value:?}"
                    )));
                }
            })
        }
        KeyKind::List => toml::Value::Array(
            value
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| toml::Value::String(s.to_string()))
                .collect(),
        ),
    })
}

fn insert_path(table: &mut toml::Table, path: &str, value: toml::Value) {
    match path.split_once('.') {
        None => {
            table.insert(path.to_string(), value);
        }
        Some((head, rest)) => {
            let entry = table
                .entry(head.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if !entry.is_table() {
                *entry = toml::Value::Table(toml::Table::new());
            }
            if let toml::Value::Table(inner) = entry {
                insert_path(inner, rest, value);
            }
        }
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Hides a password in a URL so it can appear in an error line.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}://{}:••••@{}", &url[..scheme_end], user, &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(env: &[(&str, &str)], file: Option<&str>) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("orchestrator.toml");
        if let Some(text) = file {
            std::fs::write(&path, text).unwrap();
        }
        Config::load_with_env(
            file.map(|_| path.as_path()),
            &CliOverrides::default(),
            |k| map.get(k).cloned(),
        )
    }

    #[test]
    fn defaults_select_the_embedded_setup() {
        let config = load(&[], None).unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert!(config.database_url.starts_with("sqlite://"));
        assert!(config.uses_embedded_queue());
        assert_eq!(config.queue.max_attempts, 5);
    }

    #[test]
    fn env_overrides_file() {
        let config = load(
            &[("ORCH_WORKER_CONCURRENCY", "3")],
            Some("[worker]\nconcurrency = 7\nname = \"w\"\n"),
        )
        .unwrap();
        assert_eq!(config.worker.concurrency, 3);
        assert_eq!(config.worker.name.as_deref(), Some("w"));
    }

    #[test]
    fn errors_name_the_key() {
        let err = load(&[("ORCH_LISTEN", "nowhere")], None).unwrap_err();
        assert!(err.to_string().contains("listen"), "{err}");
        let err = load(&[("ORCH_QUEUE_MAX_ATTEMPTS", "many")], None).unwrap_err();
        assert!(err.to_string().contains("ORCH_QUEUE_MAX_ATTEMPTS"), "{err}");
        let err = load(&[], Some("[queue]\nmax_atempts = 3\n")).unwrap_err();
        assert!(err.to_string().contains("max_atempts"), "{err}");
        let err = load(&[("DATABASE_URL", "mysql://u:pw@h/db")], None).unwrap_err();
        assert!(err.to_string().contains("database_url"), "{err}");
        assert!(!err.to_string().contains("pw"), "{err}");
    }

    #[test]
    fn outbound_allow_is_read_and_checked() {
        use crate::outbound::{AllowList, ProcessMode};
        let mut config = load(&[], None).unwrap();
        assert_eq!(config.outbound_allow, None);
        config.settle_outbound_allow(ProcessMode::Api);
        assert_eq!(config.outbound_allow, Some(AllowList::none()));
        let mut config = load(&[("ORCH_OUTBOUND_ALLOW", "loopback, 10.1.0.0/16")], None).unwrap();
        config.settle_outbound_allow(ProcessMode::Worker);
        let list = config.outbound_allow.unwrap();
        assert_eq!(list.to_string(), "loopback,10.1.0.0/16");
        let config = load(&[], Some("outbound_allow = [\"private\"]\n")).unwrap();
        assert_eq!(config.outbound_allow.unwrap().to_string(), "private");
        let err = load(&[("ORCH_OUTBOUND_ALLOW", "loopback,intranet")], None).unwrap_err();
        assert!(err.to_string().contains("outbound_allow"), "{err}");
        assert!(err.to_string().contains("intranet"), "{err}");
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Secret::new("hunter2");
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}

#[cfg(test)]
mod readme {
    /// The README's configuration table lists every key and variable.
    #[test]
    fn readme_lists_every_key() {
        let readme = include_str!("../../README.md");
        for key in super::KEYS {
            assert!(
                readme.contains(&format!("`{}`", key.path)),
                "README lacks {}",
                key.path
            );
            for var in key.env {
                assert!(readme.contains(&format!("`{var}`")), "README lacks {var}");
            }
        }
    }
}
