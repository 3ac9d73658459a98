//! Live status over websockets: a third-party client library sees every status in order, a
//! subscriber on one API process sees changes made by other processes (Redis), and a
//! subscriber that stops reading neither slows the others nor misses the final state.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use orchestrator::Mode;
use orchestrator_tests::process;
use orchestrator_tests::ws::{Protocol, WsClient};
use orchestrator_tests::{Services, on_all_services, product_binary, service_env, spawn_app_with};
use serde_json::{Value, json};

fn js_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/js"))
}

/// Node and the npm client packages (installed by scripts/test.sh with `npm ci`).
fn node_client_available() -> bool {
    let ok = js_dir().join("node_modules/graphql-ws").exists()
        && std::process::Command::new("node")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            !orchestrator_tests::services_required(),
            "node and tests/js/node_modules are required: run `npm ci --prefix tests/js`"
        );
        eprintln!("skipped: node or tests/js/node_modules missing");
    }
    ok
}

async fn graphql_ws_library_sees_every_status(services: Services) {
    if !node_client_available() {
        return;
    }
    let app = spawn_app_with(
        &services,
        Mode::Standalone,
        &[("ORCH_WORKER_CONCURRENCY", "1")],
    )
    .await;
    let project = app.default_project().await;
    let out = tokio::process::Command::new("node")
        .arg(js_dir().join("subscribe_execution.mjs"))
        .args([
            &format!("http://{}", app.addr),
            &app.admin_token,
            &project,
            "sleep",
        ])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "node client failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let line: Value = serde_json::from_slice(out.stdout.trim_ascii()).unwrap();
    assert_eq!(
        line["statuses"],
        json!(["QUEUED", "RUNNING", "SUCCEEDED"]),
        "{line}"
    );
    assert_eq!(line["completed"], true);
    app.stop().await;
}

async fn subscribe(
    addr: std::net::SocketAddr,
    token: &str,
    query: &str,
    variables: Value,
) -> WsClient {
    let (mut ws, ack) = WsClient::connect(
        addr,
        Protocol::TransportWs,
        json!({ "Authorization": format!("Bearer {token}") }),
    )
    .await;
    assert_eq!(ack["type"], "connection_ack", "{ack}");
    ws.start("1", query, variables).await;
    ws
}

/// Statuses of `executionUpdated` until completion.
async fn collect_statuses(ws: &mut WsClient, timeout: Duration) -> Vec<String> {
    let mut statuses = Vec::new();
    loop {
        let msg = ws.next_message(timeout).await;
        match msg["type"].as_str() {
            Some("next") => {
                assert!(msg["payload"]["errors"].is_null(), "{msg}");
                statuses.push(
                    msg["payload"]["data"]["executionUpdated"]["status"]
                        .as_str()
                        .unwrap()
                        .to_string(),
                );
            }
            Some("complete") => return statuses,
            _ => panic!("unexpected message {msg} after {statuses:?}"),
        }
    }
}

async fn legacy_protocol_and_foreign_ids(services: Services) {
    let app = spawn_app_with(&services, Mode::Standalone, &[]).await;
    let project = app.default_project().await;
    let id = app
        .admin("mutation($p: ID!) { startExecution(input: {projectId: $p, pipeline: \"noop\"}) { id } }", json!({ "p": project }))
        .await["startExecution"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    // graphql-ws (legacy) subprotocol: data messages, then complete after the terminal state.
    let (mut ws, ack) = WsClient::connect(
        app.addr,
        Protocol::LegacyWs,
        json!({ "Authorization": format!("Bearer {}", app.admin_token) }),
    )
    .await;
    assert_eq!(ack["type"], "connection_ack");
    ws.start(
        "9",
        "subscription($id: ID!) { executionUpdated(id: $id) { status } }",
        json!({ "id": id }),
    )
    .await;
    let mut last = String::new();
    loop {
        let msg = ws.next_message(Duration::from_secs(20)).await;
        match msg["type"].as_str() {
            Some("data") => {
                last = msg["payload"]["data"]["executionUpdated"]["status"]
                    .as_str()
                    .unwrap()
                    .to_string()
            }
            Some("complete") => break,
            _ => panic!("{msg}"),
        }
    }
    assert_eq!(last, "SUCCEEDED");
    // Another project's token gets NOT_FOUND for this execution's subscription.
    let other = orchestrator_tests::project_token("elsewhere", "admin");
    let mut ws = subscribe(
        app.addr,
        &other,
        "subscription($id: ID!) { executionUpdated(id: $id) { status } }",
        json!({ "id": id }),
    )
    .await;
    let msg = ws.next_message(Duration::from_secs(5)).await;
    let code = match msg["type"].as_str() {
        Some("error") => &msg["payload"][0]["extensions"]["code"],
        _ => &msg["payload"]["errors"][0]["extensions"]["code"],
    };
    assert_eq!(code, "NOT_FOUND", "{msg}");
    assert!(
        msg["payload"]["data"].is_null() || msg["payload"]["data"]["executionUpdated"].is_null(),
        "{msg}"
    );
    // Logs: everything so far, in order, then completion (the execution has ended).
    let mut ws = subscribe(
        app.addr,
        &app.admin_token,
        "subscription($id: ID!) { executionLogs(id: $id) { id message } }",
        json!({ "id": id }),
    )
    .await;
    let mut ids = Vec::new();
    loop {
        let msg = ws.next_message(Duration::from_secs(10)).await;
        match msg["type"].as_str() {
            Some("next") => ids.push(
                msg["payload"]["data"]["executionLogs"]["id"]
                    .as_i64()
                    .unwrap(),
            ),
            Some("complete") => break,
            _ => panic!("{msg}"),
        }
    }
    assert!(ids.len() >= 4, "{ids:?}");
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "in order, no duplicates: {ids:?}"
    );
    app.stop().await;
}

/// Every line the engine writes about an execution (queued, each stage started and
/// succeeded, the end) is also an `LOG_APPENDED` event, with the line as stored.
async fn engine_log_lines_are_events(services: Services) {
    let app = spawn_app_with(&services, Mode::Standalone, &[]).await;
    let project = app.default_project().await;
    let mut ws = subscribe(
        app.addr,
        &app.admin_token,
        "subscription($p: ID!) { events(projectId: $p, kinds: [LOG_APPENDED]) { kind entityId parentId payload } }",
        json!({ "p": project }),
    )
    .await;
    // `events` sends nothing until the first event: give the server a moment to start the
    // subscription before the execution does.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let id = app
        .admin("mutation($p: ID!) { startExecution(input: {projectId: $p, pipeline: \"noop\"}) { id } }", json!({ "p": project }))
        .await["startExecution"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let stored = |data: &Value| -> Vec<(i64, String)> {
        data["execution"]["logs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                (
                    l["id"].as_i64().unwrap(),
                    l["message"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let mut seen: Vec<(i64, String)> = Vec::new();
    loop {
        let msg = ws.next_message(Duration::from_secs(20)).await;
        assert_eq!(msg["type"], "next", "{msg}");
        let event = &msg["payload"]["data"]["events"];
        assert_eq!(event["kind"], "LOG_APPENDED", "{msg}");
        assert_eq!(event["parentId"], json!(id), "{msg}");
        let message = event["payload"]["message"].as_str().unwrap().to_string();
        seen.push((event["payload"]["id"].as_i64().unwrap(), message.clone()));
        if message == "execution succeeded" {
            break;
        }
    }
    let data = app
        .admin(
            "query($id: ID!) { execution(id: $id) { status logs(first: 100) { id message } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(data["execution"]["status"], "SUCCEEDED", "{data}");
    let mut expected = stored(&data);
    expected.sort();
    seen.sort();
    assert_eq!(seen, expected, "every stored line was published, once");
    assert!(expected.len() >= 8, "{expected:?}");
    app.stop().await;
}

on_all_services! {
    engine_log_lines_are_published_as_events => super::engine_log_lines_are_events;
    graphql_ws_client_library_sees_every_status => super::graphql_ws_library_sees_every_status;
    legacy_protocol_logs_and_foreign_ids => super::legacy_protocol_and_foreign_ids;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_on_one_api_process_sees_changes_made_by_others() {
    let Some(services) = Services::postgres_redis() else {
        return;
    };
    let bin = product_binary!();
    let tmp = tempfile::tempdir().unwrap();
    let env: HashMap<String, String> = service_env(&services, tmp.path()).await;
    let mut api_a = process::start(&bin, &["api"], &env, tmp.path(), "api-a");
    let mut api_b = process::start(&bin, &["api"], &env, tmp.path(), "api-b");
    api_a.wait_ready("/ready", Duration::from_secs(30)).await;
    api_b.wait_ready("/ready", Duration::from_secs(30)).await;
    let token = orchestrator_tests::mint(&orchestrator_core::auth::Claims {
        sub: "t".into(),
        exp: chrono::Utc::now().timestamp() + 600,
        nbf: None,
        iat: None,
        role: Some("admin".into()),
        projects: Default::default(),
    });
    let client = reqwest::Client::new();
    let post = |addr: std::net::SocketAddr, query: &'static str, variables: Value| {
        let client = client.clone();
        let token = token.clone();
        async move {
            let body: Value = client
                .post(format!("http://{addr}/graphql"))
                .bearer_auth(token)
                .json(&json!({ "query": query, "variables": variables }))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert!(body["errors"].is_null(), "{body}");
            body["data"].clone()
        }
    };
    let project =
        post(api_b.addr, "{ projects { id } }", json!({})).await["projects"][0]["id"].clone();
    let id = post(
        api_b.addr,
        "mutation($p: ID!) { startExecution(input: {projectId: $p, pipeline: \"noop\"}) { id } }",
        json!({ "p": project }),
    )
    .await["startExecution"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut ws = subscribe(
        api_a.addr,
        &token,
        "subscription($id: ID!) { executionUpdated(id: $id) { status progress { completed } } }",
        json!({ "id": id }),
    )
    .await;
    let first = ws.next_message(Duration::from_secs(10)).await;
    assert_eq!(
        first["payload"]["data"]["executionUpdated"]["status"], "QUEUED",
        "{first}"
    );
    // Only now does a worker process start running stages.
    let mut worker = process::start(&bin, &["worker"], &env, tmp.path(), "worker");
    worker.wait_ready("/ready", Duration::from_secs(30)).await;
    let rest = collect_statuses(&mut ws, Duration::from_secs(30)).await;
    assert_eq!(
        rest.first().map(String::as_str),
        Some("RUNNING"),
        "{rest:?}"
    );
    assert_eq!(
        rest.last().map(String::as_str),
        Some("SUCCEEDED"),
        "{rest:?}"
    );
    let mut dedup = rest.clone();
    dedup.dedup();
    assert_eq!(
        dedup,
        vec!["RUNNING", "SUCCEEDED"],
        "each status once per change: {rest:?}"
    );
    for p in [&api_a, &api_b, &worker] {
        p.terminate();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_subscriber_that_stops_reading_does_not_hold_back_others() {
    let app = spawn_app_with(
        &Services::Embedded,
        Mode::Standalone,
        &[
            ("ORCH_RATE_LIMIT_BURST", "100000"),
            ("ORCH_RATE_LIMIT_PER_SECOND", "100000"),
        ],
    )
    .await;
    let project = app.default_project().await;
    let start = |pipeline: &'static str, input: Value| {
        let app = &app;
        let project = project.clone();
        async move {
            app.admin("mutation($p: ID!, $n: String!, $i: JSON) { startExecution(input: {projectId: $p, pipeline: $n, input: $i}) { id } }", json!({ "p": project, "n": pipeline, "i": input }))
                .await["startExecution"]["id"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    // The slow subscriber watches a long execution and the project's whole event stream on one
    // socket, and stops reading.
    let long = start("sleep", json!({ "ms": 4000 })).await;
    let mut slow = subscribe(
        app.addr,
        &app.admin_token,
        "subscription($id: ID!) { executionUpdated(id: $id) { status } }",
        json!({ "id": long }),
    )
    .await;
    slow.start(
        "2",
        "subscription($p: ID!) { events(projectId: $p) { kind sequence payload } }",
        json!({ "p": project }),
    )
    .await;
    // A flood of changes while it is not reading.
    for _ in 0..150 {
        start("noop", json!({ "pad": "x".repeat(4000) })).await;
    }
    // A fast subscriber is not held back.
    let last = start("noop", json!({})).await;
    let mut fast = subscribe(
        app.addr,
        &app.admin_token,
        "subscription($id: ID!) { executionUpdated(id: $id) { status } }",
        json!({ "id": last }),
    )
    .await;
    let began = std::time::Instant::now();
    let statuses = collect_statuses(&mut fast, Duration::from_secs(60)).await;
    assert_eq!(
        statuses.last().map(String::as_str),
        Some("SUCCEEDED"),
        "{statuses:?}"
    );
    assert!(
        began.elapsed() < Duration::from_secs(45),
        "fast subscriber waited {:?}",
        began.elapsed()
    );
    // The slow one resumes and still ends with the final state of its execution.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut final_status = None;
    while tokio::time::Instant::now() < deadline {
        let msg = slow.next_message(Duration::from_secs(30)).await;
        if msg["id"] == "1" && msg["type"] == "next" {
            final_status = msg["payload"]["data"]["executionUpdated"]["status"]
                .as_str()
                .map(str::to_string);
        }
        if msg["id"] == "1" && msg["type"] == "complete" {
            break;
        }
    }
    assert_eq!(final_status.as_deref(), Some("SUCCEEDED"));
    app.stop().await;
}
