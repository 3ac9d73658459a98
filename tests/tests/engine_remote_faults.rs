//! Remote stages when things go wrong, against a real HTTP worker (an axum server in the
//! test): timeouts and 5xx are retried with backoff and a new `Idempotency-Key`, a refused
//! connection is retried until the worker is back (the probe marks it healthy again), and a
//! cancel mid-process tells the worker — with the auth headers checked on every call.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use orchestrator_tests::engine::{
    assert_protocol_headers, create_pipeline, detail, packets, register_worker, script, stage,
    start, three_stage_pipeline, wait_ended, wait_for, worker,
};
use orchestrator_tests::fake_worker::{FakeWorker, Reply, default_script};
use orchestrator_tests::{Services, on_all_services, spawn_app};
use serde_json::{Value, json};

const SECS: Duration = Duration::from_secs(20);

async fn timeouts_and_server_errors_are_retried_with_new_keys(services: Services) {
    let app = spawn_app(&services).await;
    let project = app.default_project().await;
    // Stages whose input says `"slow": true` hang on attempt 1; others answer 503 on attempt 1.
    let slow = Arc::new(Mutex::new(HashSet::<String>::new()));
    let marked = slow.clone();
    let fake = FakeWorker::start(
        "flaky",
        script(move |c| {
            let stage = c.stage_id().unwrap_or_default().to_string();
            match (c.path.as_str(), c.attempt()) {
                ("/api/handshake", _) => {
                    if c.body["inputData"]["slow"] == true {
                        marked.lock().unwrap().insert(stage);
                    }
                    None
                }
                ("/api/process", Some(1)) if marked.lock().unwrap().contains(&stage) => Some(
                    Reply::completed(json!({ "late": true }), 1, 0.0).after(Duration::from_secs(5)),
                ),
                ("/api/process", Some(1)) => {
                    Some(Reply::status(503, json!({ "error": "overloaded" })))
                }
                _ => None,
            }
        }),
    )
    .await;
    let (_, token) = register_worker(
        &app,
        &project,
        "flaky",
        &fake.url(),
        &["granulate", "slow"],
        4,
    )
    .await;
    three_stage_pipeline(&app, &project, "course", json!({ "maxAttempts": 3 })).await;
    create_pipeline(
        &app,
        &project,
        json!({ "name": "slow", "stages": [
        { "name": "granulate", "action": "remote", "capability": "slow", "timeoutMs": 500,
          "maxAttempts": 3, "backoff": { "initialMs": 100, "maxMs": 400 } } ] }),
    )
    .await;

    let id = start(&app, &project, "course", json!({}), "NORMAL").await;
    let done = wait_ended(&app, &id, SECS).await;
    assert_eq!(done["status"], "SUCCEEDED", "{done:#}");
    let remote = stage(&done, "granulate");
    assert_eq!(remote["attempt"], 2);
    assert_eq!(remote["metrics"]["attempts"], 2);
    assert!(packets(remote).contains(&("RECEIVED".into(), "process".into(), Some(503))));
    assert!(done["logs"].as_array().unwrap().iter().any(|l| l["level"] == "WARN"
        && l["message"].as_str().unwrap().contains("retrying in")));

    let slow = start(&app, &project, "slow", json!({ "slow": true }), "NORMAL").await;
    let done = wait_ended(&app, &slow, SECS).await;
    assert_eq!(done["status"], "SUCCEEDED", "{done:#}");
    let remote = stage(&done, "granulate");
    assert_eq!(remote["attempt"], 2);
    let stage_id = remote["id"].as_str().unwrap();
    let process: Vec<i32> = fake
        .calls_to("/api/process")
        .iter()
        .filter(|c| c.stage_id() == Some(stage_id))
        .map(|c| c.attempt().unwrap())
        .collect();
    assert_eq!(process, [1, 2], "a retry uses a new Idempotency-Key");
    // The abandoned attempt was cancelled on the worker.
    let cancels: Vec<i32> = fake
        .calls_to("/api/cancel")
        .iter()
        .filter(|c| c.stage_id() == Some(stage_id))
        .map(|c| c.attempt().unwrap())
        .collect();
    assert_eq!(cancels, [1]);
    // Backoff: the second attempt came at least the initial delay (minus jitter) later.
    let sent: Vec<&Value> = remote["handshakes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["direction"] == "SENT" && p["packetType"] == "handshake")
        .collect();
    let at =
        |p: &Value| chrono::DateTime::parse_from_rfc3339(p["createdAt"].as_str().unwrap()).unwrap();
    assert!(
        (at(sent[1]) - at(sent[0])).num_milliseconds() >= 500 + 80,
        "{sent:#?}"
    );
    assert_protocol_headers(&fake.calls(), &token);
    app.stop().await;
}

async fn connection_refused_is_retried_until_the_worker_is_back(services: Services) {
    let app = spawn_app(&services).await;
    let project = app.default_project().await;
    let mut fake = FakeWorker::start("sometimes", default_script()).await;
    let (worker_id, token) =
        register_worker(&app, &project, "sometimes", &fake.url(), &["granulate"], 2).await;
    create_pipeline(
        &app,
        &project,
        json!({ "name": "one", "stages": [
        { "name": "granulate", "action": "remote", "capability": "granulate", "maxAttempts": 5,
          "backoff": { "initialMs": 100, "maxMs": 300 } } ] }),
    )
    .await;
    fake.stop().await;

    let id = start(&app, &project, "one", json!({}), "NORMAL").await;
    let retrying = wait_for(&app, &id, SECS, "retrying", |e| {
        e["stages"][0]["attempt"].as_i64() >= Some(2)
    })
    .await;
    let error = retrying["stages"][0]["error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(error.contains("cannot reach the worker"), "{retrying:#}");
    let w = worker(&app, &worker_id).await;
    assert_eq!(w["healthStatus"], "UNHEALTHY", "{w}");
    assert!(w["healthMessage"].is_string());
    assert_eq!(w["activeStages"], 0);

    // The worker comes back; the probe marks it healthy and the stage goes ahead.
    fake.restart().await;
    let done = wait_ended(&app, &id, SECS).await;
    assert_eq!(done["status"], "SUCCEEDED", "{done:#}");
    assert!(done["stages"][0]["attempt"].as_i64().unwrap() >= 2);
    assert_eq!(worker(&app, &worker_id).await["healthStatus"], "HEALTHY");
    let calls = fake.calls();
    assert_protocol_headers(&calls, &token);
    assert!(
        calls.iter().all(|c| c.attempt() >= Some(2)),
        "attempt 1 never reached it"
    );
    app.stop().await;
}

async fn cancel_mid_process_tells_the_worker(services: Services) {
    let app = spawn_app(&services).await;
    let project = app.default_project().await;
    let fake = FakeWorker::start(
        "patient",
        script(|c| {
            (c.path == "/api/process")
                .then(|| Reply::failed("cancelled by the orchestrator").when_cancelled())
        }),
    )
    .await;
    let (worker_id, token) =
        register_worker(&app, &project, "patient", &fake.url(), &["granulate"], 1).await;
    three_stage_pipeline(&app, &project, "course", json!({})).await;
    let id = start(&app, &project, "course", json!({}), "NORMAL").await;
    wait_for(&app, &id, SECS, "processing", |e| {
        stage(e, "granulate")["status"] == "RUNNING"
    })
    .await;
    tokio::time::timeout(SECS, async {
        while fake.in_flight() == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap();

    let data = app.admin("mutation($id: ID!) { cancelExecution(id: $id) { cancelRequested stages { name status } } }",
        json!({ "id": id })).await;
    assert_eq!(data["cancelExecution"]["cancelRequested"], true);
    assert_eq!(
        data["cancelExecution"]["stages"][2]["status"], "CANCELLED",
        "waiting stages at once"
    );
    let done = wait_ended(&app, &id, Duration::from_secs(5)).await;
    assert_eq!(done["status"], "CANCELLED", "{done:#}");
    assert_eq!(stage(&done, "granulate")["status"], "CANCELLED");
    assert_eq!(stage(&done, "publish")["status"], "CANCELLED");
    assert_eq!(stage(&done, "prepare")["status"], "SUCCEEDED");
    let cancels = fake.calls_to("/api/cancel");
    assert_eq!(cancels.len(), 1);
    let stage_id = stage(&done, "granulate")["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(cancels[0].idempotency_key, Some(format!("{stage_id}:1")));
    assert_eq!(
        cancels[0].body,
        json!({ "executionId": id, "stageId": stage_id })
    );
    assert!(packets(stage(&done, "granulate")).contains(&("SENT".into(), "cancel".into(), None)));
    assert_protocol_headers(&fake.calls(), &token);
    assert_eq!(
        worker(&app, &worker_id).await["activeStages"],
        0,
        "the slot was given back"
    );
    // Cancelling again changes nothing; a finished execution cannot be cancelled.
    let again = app
        .admin(
            "mutation($id: ID!) { cancelExecution(id: $id) { status } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(again["cancelExecution"]["status"], "CANCELLED");
    let _ = detail(&app, &id).await;
    app.stop().await;
}

on_all_services! {
    remote_timeouts_and_5xx => super::timeouts_and_server_errors_are_retried_with_new_keys;
    remote_connection_refused => super::connection_refused_is_retried_until_the_worker_is_back;
    remote_cancel_mid_process => super::cancel_mid_process_tells_the_worker;
}
