//! What KEDA's Redis scaler reads: the length of each stage queue's `<queue>:active` list.
//! apalis-redis puts every push in `<queue>:scheduled`; the API process moves the due ones to
//! `:active` every second, so the list counts the jobs waiting for a worker even when no
//! worker runs (scaling from zero), and leaves jobs due later alone.

use std::time::Duration;

use orchestrator::Mode;
use orchestrator_tests::{Services, process, product_binary, spawn_app_with};
use serde_json::json;

async fn llen(conn: &mut redis::aio::MultiplexedConnection, key: &str) -> u64 {
    redis::cmd("LLEN").arg(key).query_async(conn).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_active_lists_count_waiting_jobs_without_any_worker() {
    let Some(services) = Services::postgres_redis() else {
        return;
    };
    let Services::PostgresRedis { redis_url, .. } = &services else {
        unreachable!()
    };
    let mut conn = redis::Client::open(redis_url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    // An API without workers.
    let app = spawn_app_with(&services, Mode::Api, &[]).await;
    let project = app.default_project().await;
    let prefix = app.env["ORCH_QUEUE_PREFIX"].clone();
    let normal = format!("{prefix}:run-stage:normal");
    let high = format!("{prefix}:run-stage:high");

    // A job due in an hour (a retry's backoff) must stay scheduled.
    let later = chrono::Utc::now().timestamp() + 3600;
    let _: i64 = redis::cmd("ZADD")
        .arg(format!("{normal}:scheduled"))
        .arg(later)
        .arg("01HF7YAT3VTSV4RRFFQ69G5FAV")
        .query_async(&mut conn)
        .await
        .unwrap();

    let mut ids = Vec::new();
    for priority in ["NORMAL", "NORMAL", "NORMAL", "HIGH"] {
        let started = app
            .admin(
                "mutation($i: StartExecutionInput!) { startExecution(input: $i) { id } }",
                json!({ "i": { "projectId": project, "pipeline": "noop", "priority": priority } }),
            )
            .await;
        ids.push(
            started["startExecution"]["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let (n, h) = (
            llen(&mut conn, &format!("{normal}:active")).await,
            llen(&mut conn, &format!("{high}:active")).await,
        );
        if (n, h) == (3, 1) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "active lists hold {n} and {h}, not 3 and 1"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let scheduled: Vec<String> = redis::cmd("ZRANGE")
        .arg(format!("{normal}:scheduled"))
        .arg(0)
        .arg(-1)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        scheduled,
        ["01HF7YAT3VTSV4RRFFQ69G5FAV"],
        "only the job due later"
    );
    let _: i64 = redis::cmd("ZREM")
        .arg(format!("{normal}:scheduled"))
        .arg("01HF7YAT3VTSV4RRFFQ69G5FAV")
        .query_async(&mut conn)
        .await
        .unwrap();

    // A worker that starts now (KEDA's first replica) takes the promoted jobs and runs them.
    let tmp = tempfile::tempdir().unwrap();
    let mut worker = process::start(&product_binary!(), &["worker"], &app.env, tmp.path(), "w");
    worker.wait_ready("/ready", Duration::from_secs(30)).await;
    for id in &ids {
        let execution = app.wait_execution(id, Duration::from_secs(30)).await;
        assert_eq!(execution["status"], "SUCCEEDED", "{}", worker.log_text());
    }
    assert_eq!(llen(&mut conn, &format!("{normal}:active")).await, 0);
    worker.terminate();
    let _ = tokio::time::timeout(Duration::from_secs(20), worker.child.wait()).await;
    app.stop().await;
}
