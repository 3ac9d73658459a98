//! Helpers for execution-engine tests: register remote workers, define pipelines, start
//! executions and read them back with every detail, all through the GraphQL API.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::TestApp;
use crate::fake_worker::{Call, Reply, Script};

/// Everything about an execution the engine tests look at.
pub const EXECUTION_DETAIL: &str = "query($id: ID!) { execution(id: $id) {
  id status error cancelRequested priority output
  progress { completed total }
  metrics { tokensUsed costUsd durationMs attempts }
  stages { id name position action capability status attempt maxAttempts error workerId
    input output startedAt finishedAt nextAttemptAt
    metrics { tokensUsed costUsd durationMs attempts }
    handshakes { direction packetType payload httpStatus attempt workerId createdAt } }
  logs(first: 1000) { id level message stageId }
} }";

/// Registers a remote worker in `project`; returns (worker id, token).
pub async fn register_worker(
    app: &TestApp,
    project: &str,
    name: &str,
    url: &str,
    capabilities: &[&str],
    max_concurrent: i32,
) -> (String, String) {
    let data = app
        .admin(
            "mutation($i: RegisterWorkerInput!) { registerWorker(input: $i) { token worker { id healthStatus } } }",
            json!({ "i": { "projectId": project, "name": name, "url": url,
                "capabilities": capabilities, "maxConcurrent": max_concurrent } }),
        )
        .await;
    let registered = &data["registerWorker"];
    (
        registered["worker"]["id"].as_str().unwrap().to_string(),
        registered["token"].as_str().unwrap().to_string(),
    )
}

/// Creates a pipeline from its JSON definition (`{ "name", "stages": [...] }`).
pub async fn create_pipeline(app: &TestApp, project: &str, definition: Value) {
    app.admin(
        "mutation($p: ID!, $d: JSON!) { createPipeline(input: {projectId: $p, definition: $d}) { name } }",
        json!({ "p": project, "d": definition }),
    )
    .await;
}

/// Starts `pipeline` with `input` at `priority`; returns the execution id.
pub async fn start(
    app: &TestApp,
    project: &str,
    pipeline: &str,
    input: Value,
    priority: &str,
) -> String {
    let data = app
        .admin(
            "mutation($i: StartExecutionInput!) { startExecution(input: $i) { id status } }",
            json!({ "i": { "projectId": project, "pipeline": pipeline, "input": input,
                "priority": priority } }),
        )
        .await;
    data["startExecution"]["id"].as_str().unwrap().to_string()
}

/// The execution with stages, handshake packets, metrics and logs.
pub async fn detail(app: &TestApp, id: &str) -> Value {
    app.admin(EXECUTION_DETAIL, json!({ "id": id })).await["execution"].clone()
}

/// Polls the execution until `done` says so; panics with its detail after `timeout`.
pub async fn wait_for(
    app: &TestApp,
    id: &str,
    timeout: Duration,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let execution = detail(app, id).await;
        if done(&execution) {
            return execution;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "execution {id}: not {what} after {timeout:?}: {execution:#}"
        );
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

/// Waits until the execution ended (succeeded, failed or cancelled).
pub async fn wait_ended(app: &TestApp, id: &str, timeout: Duration) -> Value {
    wait_for(app, id, timeout, "ended", |e| {
        ["SUCCEEDED", "FAILED", "CANCELLED"].contains(&e["status"].as_str().unwrap_or(""))
    })
    .await
}

/// The stage called `name`.
pub fn stage<'a>(execution: &'a Value, name: &str) -> &'a Value {
    execution["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no stage {name}: {execution:#}"))
}

/// Every call carries the worker's token, an orchestrator instance id, and an
/// `Idempotency-Key` of the form `<stageId>:<attempt>` naming the stage in the body.
pub fn assert_protocol_headers(calls: &[Call], token: &str) {
    assert!(!calls.is_empty(), "the worker was never called");
    for call in calls {
        assert_eq!(
            call.authorization.as_deref(),
            Some(format!("Bearer {token}").as_str()),
            "Authorization on {call:?}"
        );
        assert!(
            call.worker_id.as_deref().is_some_and(|w| !w.is_empty()),
            "X-Worker-ID on {call:?}"
        );
        let key = call.idempotency_key.as_deref().unwrap_or_default();
        let stage = call.stage_id().unwrap_or_default();
        assert!(
            key.starts_with(&format!("{stage}:")) && call.attempt().is_some(),
            "Idempotency-Key {key:?} on {call:?}"
        );
    }
}

/// `(direction, packetType, httpStatus)` of a stage's packets, in order.
pub fn packets(stage: &Value) -> Vec<(String, String, Option<i64>)> {
    stage["handshakes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["direction"].as_str().unwrap().to_string(),
                p["packetType"].as_str().unwrap().to_string(),
                p["httpStatus"].as_i64(),
            )
        })
        .collect()
}

/// The worker as the API shows it.
pub async fn worker(app: &TestApp, id: &str) -> Value {
    app.admin(
        "query($id: ID!) { worker(id: $id) { id name healthStatus healthMessage activeStages maxConcurrent lastSeenAt capabilities } }",
        json!({ "id": id }),
    )
    .await["worker"]
        .clone()
}

/// `prepare` (noop with a static input) → `granulate` (remote) → `publish` (noop).
pub async fn three_stage_pipeline(app: &TestApp, project: &str, name: &str, remote: Value) {
    let mut remote_stage = json!({ "name": "granulate", "action": "remote", "capability": "granulate",
        "backoff": { "initialMs": 50, "maxMs": 200 } });
    for (k, v) in remote.as_object().unwrap() {
        remote_stage[k] = v.clone();
    }
    create_pipeline(
        app,
        project,
        json!({ "name": name, "stages": [
            { "name": "prepare", "action": "noop", "input": { "structure_type": "course" } },
            remote_stage,
            { "name": "publish", "action": "noop" },
        ] }),
    )
    .await;
}

pub fn script(f: impl Fn(&Call) -> Option<Reply> + Send + Sync + 'static) -> Script {
    Arc::new(f)
}
