//! Remote stages through the handshake protocol against a real HTTP worker (an axum server in
//! the test): the happy path, refusals (another worker, or wait), and reported failures (not
//! retried; `retryExecution` re-runs them) — with the auth headers and `Idempotency-Key`
//! checked on every call. Faults (timeouts, 5xx, connection refused, cancel) are in
//! `engine_remote_faults`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use orchestrator_tests::engine::{
    assert_protocol_headers, create_pipeline, packets, register_worker, script, stage, start,
    three_stage_pipeline, wait_ended, wait_for, worker,
};
use orchestrator_tests::fake_worker::{FakeWorker, Reply, default_script};
use orchestrator_tests::{Services, on_all_services, spawn_app};
use serde_json::{Value, json};

const SECS: Duration = Duration::from_secs(20);

async fn happy_path(services: Services) {
    let app = spawn_app(&services).await;
    let project = app.default_project().await;
    let fake = FakeWorker::start("granulator", default_script()).await;
    let (worker_id, token) =
        register_worker(&app, &project, "granulator", &fake.url(), &["granulate"], 2).await;
    assert_eq!(worker(&app, &worker_id).await["healthStatus"], "HEALTHY");
    three_stage_pipeline(&app, &project, "course", json!({})).await;

    let id = start(
        &app,
        &project,
        "course",
        json!({ "topic": "AI Development" }),
        "NORMAL",
    )
    .await;
    let done = wait_ended(&app, &id, SECS).await;
    assert_eq!(done["status"], "SUCCEEDED", "{done:#}");
    assert_eq!(done["progress"], json!({ "completed": 3, "total": 3 }));

    // Results flow: execution input + static input → remote inputData → result → next input.
    let remote = stage(&done, "granulate");
    let expected_input = json!({ "topic": "AI Development", "structure_type": "course" });
    assert_eq!(remote["input"], expected_input);
    assert_eq!(remote["output"]["echo"], expected_input);
    assert_eq!(stage(&done, "publish")["input"], remote["output"]);
    assert_eq!(done["output"], remote["output"]);
    assert_eq!(remote["workerId"], worker_id.as_str());

    // Metrics per stage and summed per execution.
    assert_eq!(remote["metrics"]["tokensUsed"], 1500);
    assert_eq!(remote["metrics"]["costUsd"], 0.003);
    assert_eq!(remote["metrics"]["attempts"], 1);
    assert!(remote["metrics"]["durationMs"].as_i64().is_some());
    assert_eq!(done["metrics"]["tokensUsed"], 1500);
    assert_eq!(done["metrics"]["costUsd"], 0.003);
    assert_eq!(done["metrics"]["attempts"], 3);
    assert!(done["metrics"]["durationMs"].as_i64().is_some());

    // Every packet is on the stage, in order, with the answers' status.
    let ok = Some(200);
    assert_eq!(
        packets(remote),
        [
            ("SENT".into(), "handshake".into(), None),
            ("RECEIVED".into(), "handshake".into(), ok),
            ("SENT".into(), "process".into(), None),
            ("RECEIVED".into(), "process".into(), ok),
        ]
    );
    let sent = &remote["handshakes"][0]["payload"];
    assert_eq!(sent["executionId"], id.as_str());
    assert_eq!(sent["stageId"], remote["id"]);
    assert_eq!(sent["action"], "granulate");
    assert_eq!(sent["inputData"], expected_input);
    assert!(sent["resourceRequirements"]["timeoutMs"].as_u64().unwrap() > 0);
    assert_eq!(remote["handshakes"][1]["payload"]["accepted"], true);
    assert_eq!(remote["handshakes"][3]["payload"]["status"], "completed");

    // The worker saw the protocol: token, instance id, key = stage:1 on both calls.
    let calls = fake.calls();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_protocol_headers(&calls, &token);
    let key = format!("{}:1", remote["id"].as_str().unwrap());
    assert!(
        calls
            .iter()
            .all(|c| c.idempotency_key.as_deref() == Some(key.as_str()))
    );
    assert_eq!(
        calls[1].body,
        json!({ "executionId": id, "stageId": remote["id"] })
    );

    let w = worker(&app, &worker_id).await;
    assert_eq!(w["activeStages"], 0);
    assert!(w["lastSeenAt"].is_string());
    // Logs name their stage and level.
    let logs = done["logs"].as_array().unwrap();
    assert!(logs.iter().any(|l| {
        l["stageId"] == remote["id"]
            && l["level"] == "INFO"
            && l["message"]
                .as_str()
                .unwrap()
                .contains("granulate succeeded")
    }));
    app.stop().await;
}

async fn refusals_move_on_or_wait(services: Services) {
    let app = spawn_app(&services).await;
    let project = app.default_project().await;
    let busy = FakeWorker::start(
        "busy",
        script(|c| (c.path == "/api/handshake").then(|| Reply::refuse("queue full"))),
    )
    .await;
    let free = FakeWorker::start("free", default_script()).await;
    let (busy_id, _) =
        register_worker(&app, &project, "a-busy", &busy.url(), &["granulate"], 4).await;
    let (free_id, token) =
        register_worker(&app, &project, "b-free", &free.url(), &["granulate"], 4).await;
    three_stage_pipeline(&app, &project, "course", json!({})).await;

    // The least loaded worker comes first (ties by name): the busy one refuses, the free one runs it.
    let id = start(&app, &project, "course", json!({}), "NORMAL").await;
    let done = wait_ended(&app, &id, SECS).await;
    assert_eq!(done["status"], "SUCCEEDED", "{done:#}");
    let remote = stage(&done, "granulate");
    assert_eq!(remote["workerId"], free_id.as_str());
    assert_eq!(remote["attempt"], 1, "a refusal is not a failed attempt");
    let refused: Vec<&Value> = remote["handshakes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["workerId"] == busy_id.as_str() && p["direction"] == "RECEIVED")
        .collect();
    assert_eq!(refused[0]["payload"]["reason"], "queue full");
    assert_protocol_headers(&free.calls(), &token);

    // With only refusing workers, the stage waits (same attempt, same key) and goes ahead once
    // a worker accepts.
    let accept = Arc::new(AtomicBool::new(false));
    let gate = accept.clone();
    let picky = FakeWorker::start(
        "picky",
        script(move |c| {
            (c.path == "/api/handshake" && !gate.load(Ordering::SeqCst))
                .then(|| Reply::refuse("warming up"))
        }),
    )
    .await;
    app.admin("mutation($a: ID!, $b: ID!) { a: deregisterWorker(id: $a) { id } b: deregisterWorker(id: $b) { id } }",
        json!({ "a": busy_id, "b": free_id })).await;
    register_worker(&app, &project, "picky", &picky.url(), &["granulate"], 1).await;
    let id = start(&app, &project, "course", json!({}), "NORMAL").await;
    wait_for(&app, &id, SECS, "waiting for a worker", |e| {
        e["logs"].as_array().unwrap().iter().any(|l| {
            l["message"]
                .as_str()
                .unwrap()
                .contains("waits for a worker")
        }) && picky.calls_to("/api/handshake").len() >= 2
    })
    .await;
    accept.store(true, Ordering::SeqCst);
    let done = wait_ended(&app, &id, SECS).await;
    assert_eq!(done["status"], "SUCCEEDED", "{done:#}");
    assert_eq!(stage(&done, "granulate")["attempt"], 1);
    let keys: std::collections::BTreeSet<_> = picky
        .calls()
        .iter()
        .map(|c| c.idempotency_key.clone().unwrap())
        .collect();
    assert_eq!(
        keys.len(),
        1,
        "waiting keeps the attempt and its key: {keys:?}"
    );
    app.stop().await;
}

async fn reported_failures_are_not_retried(services: Services) {
    let app = spawn_app(&services).await;
    let project = app.default_project().await;
    let healed = Arc::new(AtomicBool::new(false));
    let flag = healed.clone();
    let fake = FakeWorker::start(
        "strict",
        script(move |c| match c.path.as_str() {
            "/api/process" if !flag.load(Ordering::SeqCst) => {
                Some(Reply::failed("document is empty"))
            }
            _ => None,
        }),
    )
    .await;
    let (_, token) =
        register_worker(&app, &project, "strict", &fake.url(), &["granulate"], 2).await;
    three_stage_pipeline(&app, &project, "course", json!({ "maxAttempts": 3 })).await;

    let id = start(&app, &project, "course", json!({ "topic": "x" }), "NORMAL").await;
    let done = wait_ended(&app, &id, SECS).await;
    assert_eq!(done["status"], "FAILED", "{done:#}");
    assert!(
        done["error"]
            .as_str()
            .unwrap()
            .contains("document is empty"),
        "{done:#}"
    );
    let remote = stage(&done, "granulate");
    assert_eq!(remote["status"], "FAILED");
    assert_eq!(remote["attempt"], 1, "a reported failure is not retried");
    assert_eq!(stage(&done, "publish")["status"], "SKIPPED");
    assert_eq!(fake.calls_to("/api/process").len(), 1);

    // retryExecution re-runs from the failed stage with a new attempt (and key), keeping the
    // first stage's result.
    healed.store(true, Ordering::SeqCst);
    let prepare_output = stage(&done, "prepare")["output"].clone();
    app.admin(
        "mutation($id: ID!) { retryExecution(id: $id) { id status } }",
        json!({ "id": id }),
    )
    .await;
    let done = wait_ended(&app, &id, SECS).await;
    assert_eq!(done["status"], "SUCCEEDED", "{done:#}");
    assert_eq!(stage(&done, "prepare")["attempt"], 1);
    assert_eq!(stage(&done, "prepare")["output"], prepare_output);
    let remote = stage(&done, "granulate");
    assert_eq!(remote["attempt"], 2);
    let starts = done["logs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| {
            l["message"]
                .as_str()
                .unwrap()
                .starts_with("stage prepare started")
        })
        .count();
    assert_eq!(starts, 1, "the succeeded stage did not run again");
    let attempts: Vec<i32> = fake
        .calls_to("/api/process")
        .iter()
        .map(|c| c.attempt().unwrap())
        .collect();
    assert_eq!(attempts, [1, 2]);
    assert_protocol_headers(&fake.calls(), &token);

    // A 4xx on the handshake fails the attempt at once, with the worker's message.
    let rejecting = FakeWorker::start(
        "rejecting",
        script(|c| {
            (c.path == "/api/handshake")
                .then(|| Reply::status(422, json!({ "error": "unsupported structure_type" })))
        }),
    )
    .await;
    let (_, token) = register_worker(
        &app,
        &project,
        "rejecting",
        &rejecting.url(),
        &["reject"],
        2,
    )
    .await;
    create_pipeline(
        &app,
        &project,
        json!({ "name": "rejected", "stages": [
        { "name": "only", "action": "remote", "capability": "reject", "maxAttempts": 4 } ] }),
    )
    .await;
    let id = start(&app, &project, "rejected", json!({}), "NORMAL").await;
    let done = wait_ended(&app, &id, SECS).await;
    assert_eq!(done["status"], "FAILED");
    assert!(
        done["error"]
            .as_str()
            .unwrap()
            .contains("unsupported structure_type"),
        "{done:#}"
    );
    assert_eq!(stage(&done, "only")["attempt"], 1);
    assert_eq!(
        packets(stage(&done, "only"))[1],
        ("RECEIVED".into(), "handshake".into(), Some(422))
    );
    assert_eq!(rejecting.calls().len(), 1);
    assert_protocol_headers(&rejecting.calls(), &token);
    app.stop().await;
}

on_all_services! {
    remote_happy_path => super::happy_path;
    remote_refusals => super::refusals_move_on_or_wait;
    remote_reported_failures => super::reported_failures_are_not_retried;
}
