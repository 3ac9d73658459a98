//! `/metrics`: every series moves by exactly what happened through the API, cluster gauges
//! come from the database and the queue, caller-chosen labels are bounded, and only the
//! right callers may read it.
//!
//! Process metrics are per test process, so the tests of this file take turns.

use std::collections::HashMap;
use std::time::Duration;

use orchestrator::Mode;
use orchestrator_tests::engine::register_worker;
use orchestrator_tests::fake_worker::{FakeWorker, default_script};
use orchestrator_tests::ws::{Protocol, WsClient};
use orchestrator_tests::{Services, TestApp, project_token, spawn_app, spawn_app_with};
use serde_json::json;
use tokio::sync::Mutex;

static ONE_AT_A_TIME: Mutex<()> = Mutex::const_new(());

/// The samples of an exposition, by series (`name{labels}`).
fn parse(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            Some((series.to_string(), value.parse().ok()?))
        })
        .collect()
}

async fn scrape(app: &TestApp) -> HashMap<String, f64> {
    let response = app
        .http
        .get(app.url("/metrics"))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    let text = response.text().await.unwrap();
    assert!(text.ends_with("# EOF\n"), "{text}");
    parse(&text)
}

fn value(samples: &HashMap<String, f64>, series: &str) -> f64 {
    samples.get(series).copied().unwrap_or(0.0)
}

fn delta(before: &HashMap<String, f64>, after: &HashMap<String, f64>, series: &str) -> f64 {
    value(after, series) - value(before, series)
}

const START: &str =
    "mutation startExecution($i: StartExecutionInput!) { startExecution(input: $i) { id } }";

async fn counters_move_by_exactly_what_happened(services: Services) {
    let _turn = ONE_AT_A_TIME.lock().await;
    let app = spawn_app(&services).await;
    let project = app.default_project().await;
    let mut worker = FakeWorker::start("metrics-w", default_script()).await;
    register_worker(
        &app,
        &project,
        "metrics-w",
        &worker.url(),
        &["granulate"],
        3,
    )
    .await;

    let before = scrape(&app).await;
    let mut graphql_posts = 0;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let body = app
            .gql(
                Some(&app.admin_token),
                START,
                json!({ "i": { "projectId": project, "pipeline": "noop" } }),
            )
            .await;
        graphql_posts += 1;
        ids.push(
            body["data"]["startExecution"]["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    // One refused start (no such pipeline) and one anonymous query.
    let refused = app
        .gql(
            Some(&app.admin_token),
            START,
            json!({ "i": { "projectId": project, "pipeline": "no-such-pipeline" } }),
        )
        .await;
    graphql_posts += 1;
    let refused_code = refused["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap()
        .to_string();
    app.gql(Some(&app.admin_token), "{ health }", json!({}))
        .await;
    graphql_posts += 1;
    let long_name = format!("q{}", "x".repeat(64));
    app.gql(
        Some(&app.admin_token),
        &format!("query {long_name} {{ health }}"),
        json!({}),
    )
    .await;
    graphql_posts += 1;

    for id in &ids {
        loop {
            let body = app
                .gql(
                    Some(&app.admin_token),
                    "query($id: ID!) { execution(id: $id) { status } }",
                    json!({ "id": id }),
                )
                .await;
            graphql_posts += 1;
            let status = body["data"]["execution"]["status"]
                .as_str()
                .unwrap()
                .to_string();
            if status == "SUCCEEDED" {
                break;
            }
            assert_ne!(status, "FAILED", "{body}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
    orchestrator_core::metrics::record_deployment("kubernetes", "succeeded");
    let after = scrape(&app).await;

    let d = |series: &str| delta(&before, &after, series);
    assert_eq!(
        d("orchestrator_stage_duration_seconds_count{action=\"noop\"}"),
        9.0
    );
    assert_eq!(
        d("orchestrator_graphql_requests_total{operation=\"startExecution\",outcome=\"ok\"}"),
        3.0
    );
    assert_eq!(
        d(&format!(
            "orchestrator_graphql_requests_total{{operation=\"startExecution\",outcome=\"{refused_code}\"}}"
        )),
        1.0
    );
    assert_eq!(
        d("orchestrator_graphql_request_duration_seconds_count{operation=\"startExecution\"}"),
        4.0
    );
    // Anonymous and over-long names share one label; nothing is keyed by the long name.
    assert!(d("orchestrator_graphql_requests_total{operation=\"(other)\",outcome=\"ok\"}") >= 2.0);
    assert!(!after.keys().any(|k| k.contains(&long_name)));
    assert_eq!(
        d("orchestrator_http_requests_total{route=\"/graphql\",status_class=\"2xx\"}"),
        f64::from(graphql_posts)
    );
    assert_eq!(
        d("orchestrator_deployments_total{platform=\"kubernetes\",outcome=\"succeeded\"}"),
        1.0
    );
    assert!(d("orchestrator_events_published_total") >= 3.0 * 4.0);
    assert_eq!(value(&after, "orchestrator_events_dropped_total"), 0.0);

    // Cluster gauges: read from this app's database and queue.
    assert_eq!(
        value(&before, "orchestrator_executions{status=\"SUCCEEDED\"}"),
        0.0
    );
    assert_eq!(
        value(&after, "orchestrator_executions{status=\"SUCCEEDED\"}"),
        3.0
    );
    assert_eq!(
        value(&after, "orchestrator_executions{status=\"QUEUED\"}"),
        0.0
    );
    assert_eq!(
        value(&after, "orchestrator_stages{status=\"SUCCEEDED\"}"),
        9.0
    );
    assert_eq!(
        value(&after, "orchestrator_stages{status=\"RUNNING\"}"),
        0.0
    );
    assert_eq!(value(&after, "orchestrator_stages_in_flight"), 0.0);
    let prefix = &app.env["ORCH_QUEUE_PREFIX"];
    for level in ["critical", "high", "normal", "low"] {
        let queue = format!("{{queue=\"{prefix}:run-stage:{level}\"}}");
        assert_eq!(
            value(&after, &format!("orchestrator_queue_depth{queue}")),
            0.0
        );
        assert!(after.contains_key(&format!("orchestrator_queue_oldest_job_age_seconds{queue}")));
    }
    let registered: f64 = ["UNKNOWN", "HEALTHY", "UNHEALTHY"]
        .iter()
        .map(|h| {
            value(
                &after,
                &format!("orchestrator_remote_workers{{health=\"{h}\"}}"),
            )
        })
        .sum();
    assert_eq!(registered, 1.0);
    assert_eq!(
        value(
            &after,
            "orchestrator_remote_worker_slots{project=\"default\",worker=\"metrics-w\"}"
        ),
        3.0
    );
    assert_eq!(
        value(
            &after,
            "orchestrator_remote_worker_stages_in_flight{project=\"default\",worker=\"metrics-w\"}"
        ),
        0.0
    );
    assert!(
        after
            .keys()
            .any(|k| k.starts_with("orchestrator_build_info{version=\"")),
        "{after:?}"
    );
    worker.stop().await;
    app.stop().await;
}

async fn websockets_and_subscriptions_are_counted_while_open(services: Services) {
    let _turn = ONE_AT_A_TIME.lock().await;
    let app = spawn_app(&services).await;
    let project = app.default_project().await;
    let before = scrape(&app).await;
    let auth = json!({ "Authorization": format!("Bearer {}", app.admin_token) });
    let (mut client, ack) = WsClient::connect(app.addr, Protocol::TransportWs, auth).await;
    assert_eq!(ack["type"], "connection_ack", "{ack}");
    client
        .start(
            "1",
            "subscription($p: ID!) { events(projectId: $p) { kind } }",
            json!({ "p": project }),
        )
        .await;
    let open = |samples: &HashMap<String, f64>| {
        (
            value(samples, "orchestrator_websocket_connections_open"),
            value(samples, "orchestrator_graphql_subscriptions_open"),
        )
    };
    let (sockets, subscriptions) = open(&before);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let during = scrape(&app).await;
        if open(&during) == (sockets + 1.0, subscriptions + 1.0) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{:?}",
            open(&during)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(client);
    loop {
        let after = scrape(&app).await;
        if open(&after) == (sockets, subscriptions) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{:?}", open(&after));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    app.stop().await;
}

async fn queue_depth_counts_jobs_nobody_took(services: Services) {
    let _turn = ONE_AT_A_TIME.lock().await;
    // An API without workers: pushed jobs stay in the queue.
    let app = spawn_app_with(&services, Mode::Api, &[]).await;
    let project = app.default_project().await;
    for priority in ["NORMAL", "NORMAL", "HIGH"] {
        app.admin(
            START,
            json!({ "i": { "projectId": project, "pipeline": "noop", "priority": priority } }),
        )
        .await;
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let samples = scrape(&app).await;
    let prefix = &app.env["ORCH_QUEUE_PREFIX"];
    let series = |name: &str, level: &str| {
        value(
            &samples,
            &format!("orchestrator_{name}{{queue=\"{prefix}:run-stage:{level}\"}}"),
        )
    };
    assert_eq!(series("queue_depth", "normal"), 2.0);
    assert_eq!(series("queue_depth", "high"), 1.0);
    assert_eq!(series("queue_depth", "low"), 0.0);
    let age = series("queue_oldest_job_age_seconds", "normal");
    assert!((0.5..60.0).contains(&age), "oldest waits {age} s");
    assert_eq!(series("queue_oldest_job_age_seconds", "low"), 0.0);
    assert_eq!(
        value(&samples, "orchestrator_executions{status=\"QUEUED\"}"),
        3.0
    );
    assert_eq!(
        value(&samples, "orchestrator_stages{status=\"PENDING\"}"),
        9.0
    );
    app.stop().await;
}

async fn get_metrics(app: &TestApp, token: Option<&str>) -> reqwest::StatusCode {
    let mut request = app.http.get(app.url("/metrics"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap().status()
}

async fn only_global_roles_read_the_main_port(services: Services) {
    let _turn = ONE_AT_A_TIME.lock().await;
    let app = spawn_app(&services).await;
    assert_eq!(get_metrics(&app, None).await, 401);
    assert_eq!(get_metrics(&app, Some("not-a-token")).await, 401);
    assert_eq!(
        get_metrics(&app, Some(&project_token("default", "admin"))).await,
        403
    );
    let global_viewer = orchestrator_tests::mint(&orchestrator_core::auth::Claims {
        sub: "prometheus".into(),
        exp: chrono::Utc::now().timestamp() + 3600,
        nbf: None,
        iat: None,
        role: Some("viewer".into()),
        projects: Default::default(),
    });
    assert_eq!(get_metrics(&app, Some(&global_viewer)).await, 200);
    app.stop().await;

    let public = spawn_app_with(
        &services,
        Mode::Standalone,
        &[("ORCH_METRICS_PUBLIC", "true")],
    )
    .await;
    assert_eq!(get_metrics(&public, None).await, 200);
    public.stop().await;

    // The separate listener answers anyone, and serves nothing else.
    let listen = orchestrator_tests::process::free_addr();
    let separate = spawn_app_with(
        &services,
        Mode::Standalone,
        &[("ORCH_METRICS_LISTEN", &listen.to_string())],
    )
    .await;
    assert_eq!(get_metrics(&separate, None).await, 401);
    let open = separate
        .http
        .get(format!("http://{listen}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(open.status(), 200);
    assert!(
        open.text()
            .await
            .unwrap()
            .contains("orchestrator_build_info")
    );
    let other = separate
        .http
        .get(format!("http://{listen}/graphql"))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 404);
    separate.stop().await;

    // Worker processes serve /metrics beside their probes, under the same rule.
    let worker = spawn_app_with(&services, Mode::Worker, &[]).await;
    assert_eq!(get_metrics(&worker, None).await, 401);
    assert_eq!(get_metrics(&worker, Some(&worker.admin_token)).await, 200);
    worker.stop().await;
}

orchestrator_tests::on_all_services! {
    counters => super::counters_move_by_exactly_what_happened;
    websockets => super::websockets_and_subscriptions_are_counted_while_open;
    queue_depth => super::queue_depth_counts_jobs_nobody_took;
    access => super::only_global_roles_read_the_main_port;
}
