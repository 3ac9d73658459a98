//! Real `orchestrator` processes for tests that need several of them (API and workers on
//! Redis, crash and signal tests).

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

/// Path of the product binary cargo built for the integration tests (expands inside the
/// test crate, where cargo defines it).
#[macro_export]
macro_rules! product_binary {
    () => {
        std::path::PathBuf::from(env!("CARGO_BIN_EXE_orchestrator-under-test"))
    };
}

/// A free port on 127.0.0.1.
pub fn free_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// A running product process.
pub struct Process {
    pub child: Child,
    pub addr: SocketAddr,
    pub log: PathBuf,
}

/// Starts `orchestrator <args>` with `env` (plus `ORCH_LISTEN` on a free port), logging to a
/// file in `log_dir`.
pub fn start(
    bin: &std::path::Path,
    args: &[&str],
    env: &HashMap<String, String>,
    log_dir: &std::path::Path,
    label: &str,
) -> Process {
    let addr = free_addr();
    let log = log_dir.join(format!("{label}.log"));
    let file = std::fs::File::create(&log).unwrap();
    let child = Command::new(bin)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "info")
        .envs(env)
        .env("ORCH_LISTEN", addr.to_string())
        .stdin(Stdio::null())
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .kill_on_drop(true)
        .spawn()
        .expect("start orchestrator process");
    Process { child, addr, log }
}

impl Process {
    /// Waits until `path` answers 200, or panics with the process log.
    pub async fn wait_ready(&mut self, path: &str, timeout: Duration) {
        let client = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Ok(resp) = client
                .get(format!("http://{}{}", self.addr, path))
                .send()
                .await
                && resp.status().is_success()
            {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "process exited with {status} before {path} answered:\n{}",
                    self.log_text()
                );
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{path} did not answer within {timeout:?}:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The process output so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
    }

    /// Sends SIGKILL.
    pub fn kill9(&self) {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }
}

/// Runs `orchestrator <args>` to completion with `env`; returns (exit code, stdout, stderr).
pub async fn run(
    bin: &std::path::Path,
    args: &[&str],
    env: &HashMap<String, String>,
) -> (Option<i32>, String, String) {
    let out = Command::new(bin)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env)
        .stdin(Stdio::null())
        .output()
        .await
        .expect("run orchestrator");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A standalone product process on the embedded default with one `sleep` execution started.
pub struct Sleeping {
    pub proc: Process,
    /// Global admin token.
    pub token: String,
    /// The started execution.
    pub execution_id: String,
    /// The process's environment (database URL and the rest).
    pub env: HashMap<String, String>,
    /// The data dir; removed when dropped, so keep it while the process runs.
    pub data_dir: tempfile::TempDir,
}

/// Starts a standalone process and a `sleep` execution of `ms` milliseconds in it.
pub async fn standalone_with_sleep(bin: &std::path::Path, ms: u64) -> Sleeping {
    let data_dir = tempfile::tempdir().unwrap();
    let env = crate::service_env(&crate::Services::Embedded, data_dir.path()).await;
    let mut proc = start(bin, &[], &env, data_dir.path(), "standalone");
    proc.wait_ready("/ready", Duration::from_secs(20)).await;
    let token = crate::global_admin_token();
    let project = crate::post_gql(
        proc.addr,
        &token,
        "{ projects { id } }",
        serde_json::json!({}),
    )
    .await["projects"][0]["id"]
        .clone();
    let execution_id = crate::post_gql(
        proc.addr,
        &token,
        "mutation($p: ID!, $in: JSON) { startExecution(input: {projectId: $p, pipeline: \"sleep\", input: $in}) { id } }",
        serde_json::json!({ "p": project, "in": { "ms": ms } }),
    )
    .await["startExecution"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    Sleeping {
        proc,
        token,
        execution_id,
        env,
        data_dir,
    }
}
