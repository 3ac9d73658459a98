//! The lifecycle of executions with built-in stages: results flowing from stage to stage,
//! progress, metrics and paged logs; cancel (running, queued, finished); retry after a
//! permanent failure; and a retryable failure retried with backoff up to `maxAttempts`.

use std::time::Duration;

use orchestrator::Mode;
use orchestrator_tests::engine::{create_pipeline, detail, stage, start, wait_ended, wait_for};
use orchestrator_tests::{Services, on_all_services, spawn_app, spawn_app_with};
use serde_json::{Value, json};

const SECS: Duration = Duration::from_secs(20);

fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or("<none>")
}

async fn results_progress_metrics_and_logs(services: Services) {
    let app = spawn_app(&services).await;
    let project = app.default_project().await;
    let id = start(&app, &project, "noop", json!({ "doc": "a.pdf" }), "NORMAL").await;
    let done = wait_ended(&app, &id, SECS).await;
    assert_eq!(done["status"], "SUCCEEDED");
    assert_eq!(done["progress"], json!({ "completed": 3, "total": 3 }));
    for s in done["stages"].as_array().unwrap() {
        assert_eq!(
            s["input"],
            json!({ "doc": "a.pdf" }),
            "output of one is input of the next"
        );
        assert_eq!(s["metrics"]["attempts"], 1);
        assert!(s["metrics"]["durationMs"].as_i64().is_some());
    }
    assert_eq!(done["output"], json!({ "doc": "a.pdf" }));
    assert_eq!(done["metrics"]["attempts"], 3);
    assert_eq!(done["metrics"]["tokensUsed"], 0);

    // Logs page with `first`/`after`, oldest first, each with a level and (mostly) a stage.
    let all = done["logs"].as_array().unwrap().clone();
    assert!(all.len() >= 7, "{all:#?}");
    assert!(
        all.iter()
            .all(|l| ["INFO", "WARN", "ERROR"].contains(&l["level"].as_str().unwrap()))
    );
    let stage_ids: Vec<&Value> = done["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| &s["id"])
        .collect();
    assert!(
        stage_ids
            .iter()
            .all(|id| all.iter().any(|l| &&l["stageId"] == id))
    );
    let query = "query($id: ID!, $after: Int) { execution(id: $id) { logs(first: 2, after: $after) { id message } } }";
    let mut seen = Vec::new();
    let mut after = Value::Null;
    loop {
        let page = app.admin(query, json!({ "id": id, "after": after })).await;
        let lines = page["execution"]["logs"].as_array().unwrap().clone();
        if lines.is_empty() {
            break;
        }
        assert!(lines.len() <= 2);
        after = lines.last().unwrap()["id"].clone();
        seen.extend(lines.into_iter().map(|l| l["id"].clone()));
    }
    let ids: Vec<Value> = all.iter().map(|l| l["id"].clone()).collect();
    assert_eq!(seen, ids);
    let body = app
        .gql(
            Some(&app.admin_token),
            "query($id: ID!) { execution(id: $id) { logs(first: 5000) { id } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(code(&body), "BAD_USER_INPUT");
    app.stop().await;
}

async fn cancel_stops_running_and_queued_executions(services: Services) {
    let app = spawn_app_with(
        &services,
        Mode::Standalone,
        &[("ORCH_WORKER_CONCURRENCY", "1")],
    )
    .await;
    let project = app.default_project().await;
    create_pipeline(
        &app,
        &project,
        json!({ "name": "long", "stages": [
        { "name": "wait", "action": "sleep", "input": { "ms": 30000 } },
        { "name": "after", "action": "noop" } ] }),
    )
    .await;
    let running = start(&app, &project, "long", json!({}), "NORMAL").await;
    wait_for(&app, &running, SECS, "running", |e| {
        e["stages"][0]["status"] == "RUNNING"
    })
    .await;
    // The only slot is busy, so this one waits in the queue.
    let queued = start(&app, &project, "noop", json!({}), "NORMAL").await;

    let cancelled = app
        .admin(
            "mutation($id: ID!) { cancelExecution(id: $id) { status stages { status } } }",
            json!({ "id": queued }),
        )
        .await;
    assert_eq!(
        cancelled["cancelExecution"]["status"], "CANCELLED",
        "nothing ran: cancelled at once"
    );
    assert!(
        cancelled["cancelExecution"]["stages"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["status"] == "CANCELLED")
    );

    let started = std::time::Instant::now();
    app.admin(
        "mutation($id: ID!) { cancelExecution(id: $id) { id } }",
        json!({ "id": running }),
    )
    .await;
    let done = wait_ended(&app, &running, Duration::from_secs(5)).await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "a running sleep stops promptly"
    );
    assert_eq!(done["status"], "CANCELLED");
    assert_eq!(stage(&done, "wait")["status"], "CANCELLED");
    assert_eq!(stage(&done, "after")["status"], "CANCELLED");
    // The queued job of the cancelled execution never runs.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let later = detail(&app, &queued).await;
    assert!(
        later["stages"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["startedAt"].is_null()),
        "{later:#}"
    );

    let finished = start(&app, &project, "noop", json!({}), "NORMAL").await;
    wait_ended(&app, &finished, SECS).await;
    let body = app
        .gql(
            Some(&app.admin_token),
            "mutation($id: ID!) { cancelExecution(id: $id) { id } }",
            json!({ "id": finished }),
        )
        .await;
    assert_eq!(code(&body), "CONFLICT", "{body}");
    let body = app
        .gql(
            Some(&app.admin_token),
            "mutation($id: ID!) { retryExecution(id: $id) { id } }",
            json!({ "id": finished }),
        )
        .await;
    assert_eq!(
        code(&body),
        "CONFLICT",
        "only failed executions are retried: {body}"
    );
    app.stop().await;
}

async fn failures_retries_and_retry_execution(services: Services) {
    let app = spawn_app(&services).await;
    let project = app.default_project().await;
    // A permanent failure (bad `ms`) fails at once; later stages are skipped.
    create_pipeline(
        &app,
        &project,
        json!({ "name": "fragile", "stages": [
        { "name": "first", "action": "noop" },
        { "name": "nap", "action": "sleep", "maxAttempts": 3 },
        { "name": "last", "action": "noop" } ] }),
    )
    .await;
    let id = start(&app, &project, "fragile", json!({ "ms": "soon" }), "NORMAL").await;
    let failed = wait_ended(&app, &id, SECS).await;
    assert_eq!(failed["status"], "FAILED");
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("stage nap failed"),
        "{failed:#}"
    );
    assert_eq!(stage(&failed, "nap")["attempt"], 1);
    assert_eq!(stage(&failed, "last")["status"], "SKIPPED");
    assert!(
        failed["logs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["level"] == "ERROR")
    );

    // Retrying re-runs the failed stage only; it fails the same way, with a new attempt.
    let retried = app
        .admin(
            "mutation($id: ID!) { retryExecution(id: $id) { status error } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(retried["retryExecution"]["status"], "RUNNING");
    assert!(retried["retryExecution"]["error"].is_null());
    let again = wait_ended(&app, &id, SECS).await;
    assert_eq!(again["status"], "FAILED");
    assert_eq!(stage(&again, "nap")["attempt"], 2);
    assert_eq!(stage(&again, "first")["attempt"], 1);
    app.stop().await;
}

async fn stage_timeouts_are_retried_then_fail(services: Services) {
    let app = spawn_app(&services).await;
    let project = app.default_project().await;
    create_pipeline(
        &app,
        &project,
        json!({ "name": "too-slow", "stages": [
        { "name": "nap", "action": "sleep", "input": { "ms": 2000 }, "timeoutMs": 100,
          "maxAttempts": 3, "backoff": { "initialMs": 150, "maxMs": 300 } } ] }),
    )
    .await;
    let id = start(&app, &project, "too-slow", json!({}), "NORMAL").await;
    let done = wait_ended(&app, &id, SECS).await;
    assert_eq!(done["status"], "FAILED");
    let nap = stage(&done, "nap");
    assert_eq!(nap["attempt"], 3, "timeouts are retried up to maxAttempts");
    assert!(
        nap["error"].as_str().unwrap().contains("timed out"),
        "{nap:#}"
    );
    // Exponential backoff with jitter between attempts: ~150 ms, then ~300 ms.
    let starts = done["logs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| {
            l["message"]
                .as_str()
                .unwrap()
                .starts_with("stage nap started")
        })
        .count();
    assert_eq!(starts, 3);
    let retry_lines: Vec<String> = done["logs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l["message"].as_str())
        .filter(|m| m.contains("retrying in"))
        .map(str::to_string)
        .collect();
    let delays: Vec<u64> = retry_lines
        .iter()
        .map(|m| {
            m.split("retrying in ")
                .nth(1)
                .unwrap()
                .trim_end_matches(" ms")
                .parse()
                .unwrap()
        })
        .collect();
    assert_eq!(delays.len(), 2, "{retry_lines:?}");
    assert!(
        (120..=180).contains(&delays[0]) && (240..=360).contains(&delays[1]),
        "{delays:?}"
    );
    app.stop().await;
}

on_all_services! {
    lifecycle_results_and_logs => super::results_progress_metrics_and_logs;
    lifecycle_cancel => super::cancel_stops_running_and_queued_executions;
    lifecycle_retry_execution => super::failures_retries_and_retry_execution;
    lifecycle_timeouts => super::stage_timeouts_are_retried_then_fail;
}
