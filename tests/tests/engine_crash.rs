//! Crash recovery and graceful shutdown with real processes on PostgreSQL + Redis: an `api`
//! process and `worker` processes. A worker killed with `kill -9` mid-stage loses nothing; a
//! worker stopped with SIGTERM finishes its running stages and returns the rest.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::time::Duration;

use orchestrator_tests::fake_worker::{Call, FakeWorker, Reply};
use orchestrator_tests::process::{self, Process};
use orchestrator_tests::{Services, product_binary, service_env};
use serde_json::{Value, json};

async fn gql(addr: SocketAddr, query: &str, variables: Value) -> Value {
    let token = orchestrator_tests::mint(&orchestrator_core::auth::Claims {
        sub: "crash-test".into(),
        exp: chrono::Utc::now().timestamp() + 600,
        nbf: None,
        iat: None,
        role: Some("admin".into()),
        projects: Default::default(),
    });
    let body: Value = reqwest::Client::new()
        .post(format!("http://{addr}/graphql"))
        .bearer_auth(token)
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(body.get("errors").is_none(), "{body:#}");
    body["data"].clone()
}

fn start_worker(
    env: &HashMap<String, String>,
    dir: &std::path::Path,
    name: &str,
    slots: &str,
) -> Process {
    let mut env = env.clone();
    env.insert("ORCH_WORKER_NAME".into(), name.into());
    env.insert("ORCH_WORKER_CONCURRENCY".into(), slots.into());
    process::start(&product_binary!(), &["worker"], &env, dir, name)
}

async fn statuses(api: SocketAddr, project: &str) -> BTreeMap<String, u64> {
    let data = gql(
        api,
        "query($p: ID!) { executions(projectId: $p, first: 100) { edges { node { status } } } }",
        json!({ "p": project }),
    )
    .await;
    let mut counts = BTreeMap::new();
    for edge in data["executions"]["edges"].as_array().unwrap() {
        *counts
            .entry(edge["node"]["status"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    counts
}

async fn wait_statuses(api: SocketAddr, project: &str, want: &str, n: u64, workers: &[&Process]) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        let counts = statuses(api, project).await;
        if counts.get(want) == Some(&n) {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            let logs: Vec<String> = workers.iter().map(|w| w.log_text()).collect();
            panic!(
                "expected {n} {want}, have {counts:?}\n{}",
                logs.join("\n-----\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_worker_loses_nothing_and_reruns_with_the_same_key() {
    let Some(services) = Services::postgres_redis() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let env = service_env(&services, tmp.path()).await;
    let mut api = process::start(&product_binary!(), &["api"], &env, tmp.path(), "api");
    api.wait_ready("/ready", Duration::from_secs(30)).await;
    let project = gql(api.addr, "{ projects { id } }", json!({})).await["projects"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();

    let fake = FakeWorker::start(
        "slow",
        std::sync::Arc::new(|c: &Call| {
            (c.path == "/api/process").then(|| {
                Reply::completed(json!({ "done": c.idempotency_key }), 5, 0.0)
                    .after(Duration::from_millis(1500))
            })
        }),
    )
    .await;
    gql(
        api.addr,
        "mutation($i: RegisterWorkerInput!) { registerWorker(input: $i) { token } }",
        json!({ "i": { "projectId": project, "name": "slow", "url": fake.url(),
            "capabilities": ["slow"], "maxConcurrent": 8 } }),
    )
    .await;
    gql(api.addr, "mutation($p: ID!, $d: JSON!) { createPipeline(input: {projectId: $p, definition: $d}) { name } }",
        json!({ "p": project, "d": { "name": "crashy", "stages": [
            { "name": "prepare", "action": "noop" },
            { "name": "slow", "action": "remote", "capability": "slow", "timeoutMs": 30000 },
            { "name": "finish", "action": "noop" } ] } })).await;

    let w0 = start_worker(&env, tmp.path(), "w0", "4");
    let mut w1 = start_worker(&env, tmp.path(), "w1", "4");
    let mut w0 = w0;
    w0.wait_ready("/ready", Duration::from_secs(30)).await;
    w1.wait_ready("/ready", Duration::from_secs(30)).await;

    let mut ids = Vec::new();
    for i in 0..12 {
        let data = gql(api.addr, "mutation($p: ID!, $i: JSON) { startExecution(input: {projectId: $p, pipeline: \"crashy\", input: $i}) { id } }",
            json!({ "p": project, "i": { "n": i } })).await;
        ids.push(data["startExecution"]["id"].as_str().unwrap().to_string());
    }
    // Kill w0 while the remote worker is processing a stage for it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !fake
        .calls_to("/api/process")
        .iter()
        .any(|c| c.worker_id.as_deref().is_some_and(|w| w.starts_with("w0-")))
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "w0 never ran a remote stage:\n{}",
            w0.log_text()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    w0.kill9();
    let _ = w0.child.wait().await;

    wait_statuses(api.addr, &project, "SUCCEEDED", 12, &[&w1]).await;

    // No new key for a re-run: every remote stage was only ever called with `<stage>:1`, and
    // the stage w0 was processing was processed again by w1 under that same key.
    let mut keys_by_stage: HashMap<String, BTreeSet<String>> = HashMap::new();
    let mut callers_by_key: HashMap<String, BTreeSet<String>> = HashMap::new();
    for call in fake.calls() {
        let key = call.idempotency_key.clone().unwrap();
        keys_by_stage
            .entry(call.stage_id().unwrap().to_string())
            .or_default()
            .insert(key.clone());
        let process_name = call
            .worker_id
            .clone()
            .unwrap()
            .split('-')
            .next()
            .unwrap()
            .to_string();
        callers_by_key.entry(key).or_default().insert(process_name);
    }
    assert_eq!(
        keys_by_stage.len(),
        12,
        "every execution reached the remote stage once"
    );
    for (stage, keys) in &keys_by_stage {
        assert_eq!(
            keys.iter().collect::<Vec<_>>(),
            [&format!("{stage}:1")],
            "stage {stage}"
        );
    }
    assert!(
        callers_by_key.values().any(|callers| callers.len() == 2),
        "a stage w0 was running was re-run by w1 with the same key: {callers_by_key:?}"
    );
    for id in &ids {
        let data = gql(
            api.addr,
            "query($id: ID!) { execution(id: $id) { status stages { name status attempt } } }",
            json!({ "id": id }),
        )
        .await;
        let stages = data["execution"]["stages"].as_array().unwrap();
        assert!(
            stages
                .iter()
                .all(|s| s["status"] == "SUCCEEDED" && s["attempt"] == 1),
            "{data:#}"
        );
    }
    let workers = gql(
        api.addr,
        "query($p: ID!) { workers(projectId: $p) { activeStages } }",
        json!({ "p": project }),
    )
    .await;
    assert_eq!(
        workers["workers"][0]["activeStages"], 0,
        "the dead process's slot was given back"
    );
    w1.terminate();
    api.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_running_stages_and_returns_the_rest() {
    let Some(services) = Services::postgres_redis() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let env = service_env(&services, tmp.path()).await;
    let mut api = process::start(&product_binary!(), &["api"], &env, tmp.path(), "api");
    api.wait_ready("/ready", Duration::from_secs(30)).await;
    let project = gql(api.addr, "{ projects { id } }", json!({})).await["projects"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut worker = start_worker(&env, tmp.path(), "w0", "2");
    worker.wait_ready("/ready", Duration::from_secs(30)).await;
    for _ in 0..5 {
        gql(api.addr, "mutation($p: ID!) { startExecution(input: {projectId: $p, pipeline: \"sleep\", input: {ms: 1500}}) { id } }",
            json!({ "p": project })).await;
    }
    wait_statuses(api.addr, &project, "RUNNING", 2, &[&worker]).await;
    worker.terminate();
    let status = tokio::time::timeout(Duration::from_secs(20), worker.child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{}", worker.log_text());
    // The two running stages finished before the process left; the rest went back unstarted.
    let counts = statuses(api.addr, &project).await;
    assert_eq!(
        counts.get("SUCCEEDED"),
        Some(&2),
        "{counts:?}\n{}",
        worker.log_text()
    );
    assert_eq!(counts.get("QUEUED"), Some(&3), "{counts:?}");
    let mut again = start_worker(&env, tmp.path(), "w1", "4");
    again.wait_ready("/ready", Duration::from_secs(30)).await;
    wait_statuses(api.addr, &project, "SUCCEEDED", 5, &[&again]).await;
    again.terminate();
    api.terminate();
}
