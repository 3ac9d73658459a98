//! Scheduling: priorities decide who starts first when the workers are saturated, and a
//! remote worker's `maxConcurrent` holds across every worker process.

use std::time::Duration;

use chrono::{DateTime, FixedOffset};
use orchestrator::Mode;
use orchestrator_tests::engine::{
    create_pipeline, detail, register_worker, start, wait_ended, worker,
};
use orchestrator_tests::fake_worker::{FakeWorker, Reply};
use orchestrator_tests::process;
use orchestrator_tests::{Services, on_all_services, product_binary, spawn_app_with};
use serde_json::{Value, json};

fn started_at(stage: &Value) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(stage["startedAt"].as_str().expect("stage started")).unwrap()
}

fn stage_starts(execution: &Value) -> Vec<DateTime<FixedOffset>> {
    execution["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(started_at)
        .collect()
}

/// One running-stage slot per process. A LOW execution holds it; five LOW executions queue
/// behind it; then a HIGH one arrives. HIGH runs all its stages before any waiting LOW stage.
async fn higher_priority_goes_first(services: Services) {
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
        json!({ "name": "three-sleeps", "stages": [
        { "name": "a", "action": "sleep", "input": { "ms": 40 } },
        { "name": "b", "action": "sleep", "input": { "ms": 40 } },
        { "name": "c", "action": "sleep", "input": { "ms": 40 } } ] }),
    )
    .await;

    let blocker = start(&app, &project, "sleep", json!({ "ms": 700 }), "LOW").await;
    let mut waiting = Vec::new();
    for _ in 0..5 {
        waiting.push(start(&app, &project, "three-sleeps", json!({}), "LOW").await);
    }
    tokio::time::sleep(Duration::from_millis(150)).await;
    let high = start(&app, &project, "three-sleeps", json!({}), "HIGH").await;
    let critical = start(&app, &project, "sleep", json!({ "ms": 10 }), "CRITICAL").await;

    let high = wait_ended(&app, &high, Duration::from_secs(30)).await;
    assert_eq!(high["status"], "SUCCEEDED");
    assert_eq!(high["priority"], "HIGH");
    let critical = wait_ended(&app, &critical, Duration::from_secs(30)).await;
    let blocker = wait_ended(&app, &blocker, Duration::from_secs(30)).await;
    let blocker_end =
        DateTime::parse_from_rfc3339(blocker["stages"][0]["finishedAt"].as_str().unwrap()).unwrap();
    let high_starts = stage_starts(&high);
    let high_last = *high_starts.iter().max().unwrap();
    // CRITICAL, submitted last, starts first; then every HIGH stage, back to back.
    assert!(stage_starts(&critical)[0] >= blocker_end);
    assert!(
        stage_starts(&critical)[0] <= high_starts[0],
        "{critical:#}\n{high:#}"
    );
    let mut everything = vec![blocker.clone(), high.clone(), critical.clone()];
    for id in &waiting {
        let low = wait_ended(&app, id, Duration::from_secs(30)).await;
        everything.push(low.clone());
        assert_eq!(low["status"], "SUCCEEDED");
        let first_low = *stage_starts(&low).iter().min().unwrap();
        assert!(
            first_low > high_last,
            "a LOW stage that was waiting started at {first_low} before HIGH's last stage at {high_last}:\n{low:#}\n{high:#}"
        );
    }
    // One slot: no two stages ever ran at the same time.
    let mut spans: Vec<(DateTime<FixedOffset>, DateTime<FixedOffset>)> = everything
        .iter()
        .flat_map(|e| e["stages"].as_array().unwrap().clone())
        .map(|s| {
            (
                started_at(&s),
                DateTime::parse_from_rfc3339(s["finishedAt"].as_str().unwrap()).unwrap(),
            )
        })
        .collect();
    spans.sort();
    for pair in spans.windows(2) {
        assert!(pair[1].0 >= pair[0].1, "stages overlapped: {pair:?}");
    }
    app.stop().await;
}

/// A worker with `maxConcurrent: 2` never processes more than two stages at once, while ten
/// executions compete for it — from two worker processes when PostgreSQL and Redis are there.
async fn max_concurrent_holds_across_processes(services: Services) {
    let app = spawn_app_with(&services, Mode::Standalone, &[]).await;
    let project = app.default_project().await;
    let fake = FakeWorker::start(
        "narrow",
        std::sync::Arc::new(|c: &orchestrator_tests::fake_worker::Call| {
            (c.path == "/api/process").then(|| {
                Reply::completed(json!({ "ok": true }), 10, 0.001).after(Duration::from_millis(250))
            })
        }),
    )
    .await;
    let (worker_id, _) =
        register_worker(&app, &project, "narrow", &fake.url(), &["narrow"], 2).await;
    create_pipeline(
        &app,
        &project,
        json!({ "name": "narrow", "stages": [
        { "name": "work", "action": "remote", "capability": "narrow",
          "backoff": { "initialMs": 50, "maxMs": 200 } } ] }),
    )
    .await;

    let tmp = tempfile::tempdir().unwrap();
    let mut second = None;
    if matches!(services, Services::PostgresRedis { .. }) {
        let mut env = app.env.clone();
        env.insert("ORCH_WORKER_NAME".into(), "second".into());
        let mut worker_process =
            process::start(&product_binary!(), &["worker"], &env, tmp.path(), "second");
        worker_process
            .wait_ready("/ready", Duration::from_secs(30))
            .await;
        second = Some(worker_process);
    }

    // Enough executions that both worker processes get a share of the waiting stages.
    let mut ids = Vec::new();
    for i in 0..24 {
        ids.push(start(&app, &project, "narrow", json!({ "n": i }), "NORMAL").await);
    }
    let mut waited = false;
    for id in &ids {
        let done = wait_ended(&app, id, Duration::from_secs(60)).await;
        assert_eq!(done["status"], "SUCCEEDED", "{done:#}");
        waited |= done["logs"].as_array().unwrap().iter().any(|l| {
            l["message"]
                .as_str()
                .unwrap()
                .contains("waits for a worker")
        });
    }
    assert_eq!(
        fake.max_in_flight(),
        2,
        "the limit is used and never exceeded"
    );
    assert!(waited, "stages waited for a free slot");
    assert_eq!(worker(&app, &worker_id).await["activeStages"], 0);
    if let Some(second) = second {
        let ran_there = fake.calls().iter().any(|c| {
            c.worker_id
                .as_deref()
                .is_some_and(|w| w.starts_with("second-"))
        });
        assert!(
            ran_there,
            "the second process took part:\n{}",
            second.log_text()
        );
        second.terminate();
    }
    let _ = detail(&app, &ids[0]).await;
    app.stop().await;
}

on_all_services! {
    priority_under_saturation => super::higher_priority_goes_first;
    max_concurrent_across_processes => super::max_concurrent_holds_across_processes;
}
