//! Traces over OTLP/HTTP: with `OTEL_EXPORTER_OTLP_ENDPOINT` set, the spans of one execution
//! (the API request that started it, every queue job and stage, the calls to the remote
//! worker) reach the collector in the caller's trace, and the remote worker receives the
//! W3C `traceparent` of the call.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::{get, post};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use orchestrator_tests::process;
use orchestrator_tests::{Services, global_admin_token, post_gql, product_binary, service_env};
use prost::Message;
use serde_json::{Value, json};

/// One exported span, as the collector saw it.
#[derive(Debug, Clone)]
struct ExportedSpan {
    name: String,
    trace_id: String,
    span_id: String,
    /// String attributes (the span's fields).
    attributes: Vec<(String, String)>,
}

/// Serves `router` on a free loopback port.
async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    addr
}

type Spans = Arc<Mutex<Vec<ExportedSpan>>>;

async fn collect(State(spans): State<Spans>, body: Bytes) -> &'static str {
    let request = ExportTraceServiceRequest::decode(body).expect("an OTLP protobuf body");
    let mut spans = spans.lock().unwrap();
    for resource in request.resource_spans {
        for scope in resource.scope_spans {
            for span in scope.spans {
                let attributes = span
                    .attributes
                    .iter()
                    .filter_map(|kv| match kv.value.as_ref()?.value.as_ref()? {
                        AnyValue::StringValue(v) => Some((kv.key.clone(), v.clone())),
                        _ => None,
                    })
                    .collect();
                spans.push(ExportedSpan {
                    name: span.name,
                    trace_id: hex::encode(span.trace_id),
                    span_id: hex::encode(span.span_id),
                    attributes,
                });
            }
        }
    }
    ""
}

/// The `traceparent` headers a remote worker received, by path.
type Received = Arc<Mutex<Vec<(String, Option<String>)>>>;

fn traceparent(headers: &HeaderMap) -> Option<String> {
    headers
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

async fn handshake(State(received): State<Received>, headers: HeaderMap) -> axum::Json<Value> {
    received
        .lock()
        .unwrap()
        .push(("/api/handshake".into(), traceparent(&headers)));
    axum::Json(json!({ "accepted": true, "estimatedCompletionMs": 10 }))
}

async fn process_stage(State(received): State<Received>, headers: HeaderMap) -> axum::Json<Value> {
    received
        .lock()
        .unwrap()
        .push(("/api/process".into(), traceparent(&headers)));
    axum::Json(json!({ "status": "completed", "result": { "done": true },
        "metrics": { "tokensUsed": 1, "processingTimeMs": 1, "costUsd": 0.0 } }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_execution_is_one_trace_from_the_request_to_the_remote_worker() {
    let spans: Spans = Arc::default();
    let collector = serve(
        Router::new()
            .route("/v1/traces", post(collect))
            .with_state(spans.clone()),
    )
    .await;
    let received: Received = Arc::default();
    let remote = serve(
        Router::new()
            .route(
                "/health",
                get(|| async { axum::Json(json!({ "status": "healthy" })) }),
            )
            .route("/api/handshake", post(handshake))
            .route("/api/process", post(process_stage))
            .with_state(received.clone()),
    )
    .await;

    let bin = product_binary!();
    let tmp = tempfile::tempdir().unwrap();
    let mut env = service_env(&Services::Embedded, tmp.path()).await;
    env.insert(
        "OTEL_EXPORTER_OTLP_ENDPOINT".into(),
        format!("http://{collector}"),
    );
    env.insert("OTEL_BSP_SCHEDULE_DELAY".into(), "100".into());
    env.insert(
        "DOCKER_HOST".into(),
        "unix:///nonexistent/docker.sock".into(),
    );
    let mut proc = process::start(&bin, &[], &env, tmp.path(), "traced");
    proc.wait_ready("/ready", Duration::from_secs(20)).await;

    let token = global_admin_token();
    let project = post_gql(proc.addr, &token, "{ projects { id } }", json!({})).await["projects"]
        [0]["id"]
        .clone();
    post_gql(
        proc.addr,
        &token,
        "mutation($i: RegisterWorkerInput!) { registerWorker(input: $i) { token } }",
        json!({ "i": { "projectId": project, "name": "traced-worker",
            "url": format!("http://{remote}"), "capabilities": ["granulate"], "maxConcurrent": 2 } }),
    )
    .await;
    post_gql(
        proc.addr,
        &token,
        "mutation($p: ID!, $d: JSON!) { createPipeline(input: {projectId: $p, definition: $d}) { name } }",
        json!({ "p": project, "d": { "name": "traced", "stages": [
            { "name": "prepare", "action": "noop" },
            { "name": "granulate", "action": "remote", "capability": "granulate" },
            { "name": "publish", "action": "noop" },
        ] } }),
    )
    .await;

    // The client starts the execution inside a trace of its own.
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let started: Value = reqwest::Client::new()
        .post(format!("http://{}/graphql", proc.addr))
        .bearer_auth(&token)
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
        .json(&json!({
            "query": "mutation($i: StartExecutionInput!) { startExecution(input: $i) { id } }",
            "variables": { "i": { "projectId": project, "pipeline": "traced" } },
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = started["data"]["startExecution"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{started:#}"))
        .to_string();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let data = post_gql(
            proc.addr,
            &token,
            "query($id: ID!) { execution(id: $id) { status error } }",
            json!({ "id": id }),
        )
        .await;
        match data["execution"]["status"].as_str() {
            Some("SUCCEEDED") => break,
            Some("FAILED" | "CANCELLED") => panic!("{data:#}\n{}", proc.log_text()),
            _ => {}
        }
        assert!(tokio::time::Instant::now() < deadline, "{data:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The remote worker was called inside the trace.
    let calls = received.lock().unwrap().clone();
    assert!(calls.len() >= 2, "{calls:?}");
    for (path, header) in &calls {
        let header = header
            .as_deref()
            .unwrap_or_else(|| panic!("{path} without traceparent"));
        assert!(
            header.starts_with(&format!("00-{trace_id}-")),
            "{path}: {header}"
        );
    }

    // The stages of an intent's execution carry the intent's id. (No Docker engine at this
    // address: the parse and plan stages run, the deployment then fails.)
    let intent = post_gql(
        proc.addr,
        &token,
        "mutation($in: DeployInput!) { deploy(input: $in) { id } }",
        json!({ "in": { "projectId": project, "command": "install redis" } }),
    )
    .await["deploy"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let data = post_gql(
            proc.addr,
            &token,
            "query($id: ID!) { intent(id: $id) { status } }",
            json!({ "id": intent }),
        )
        .await;
        if matches!(
            data["intent"]["status"].as_str(),
            Some("DEPLOYING" | "FAILED")
        ) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{data:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Ending the process flushes the exporter.
    proc.terminate();
    let status = tokio::time::timeout(Duration::from_secs(20), proc.child.wait())
        .await
        .expect("exits")
        .unwrap();
    assert!(status.success(), "{}", proc.log_text());

    let spans = spans.lock().unwrap().clone();
    for action in ["intent.parse", "intent.plan"] {
        let stage = spans
            .iter()
            .find(|s| {
                s.name == "stage"
                    && s.attributes
                        .iter()
                        .any(|(k, v)| k == "action" && v == action)
            })
            .unwrap_or_else(|| panic!("no {action} stage span in {spans:#?}"));
        assert!(
            stage
                .attributes
                .iter()
                .any(|(k, v)| k == "intent_id" && *v == intent),
            "{stage:#?}"
        );
    }
    let in_trace: Vec<&ExportedSpan> = spans.iter().filter(|s| s.trace_id == trace_id).collect();
    let count = |name: &str| in_trace.iter().filter(|s| s.name == name).count();
    assert_eq!(count("POST /graphql"), 1, "{in_trace:#?}");
    assert_eq!(count("run-stage job"), 3, "{in_trace:#?}");
    assert_eq!(count("stage"), 3, "{in_trace:#?}");
    assert_eq!(count("remote_worker_call"), calls.len(), "{in_trace:#?}");
    // Each call told the worker its own span as the parent.
    for (path, header) in &calls {
        let parent = header.as_deref().unwrap().split('-').nth(2).unwrap();
        assert!(
            in_trace
                .iter()
                .any(|s| s.name == "remote_worker_call" && s.span_id == parent),
            "{path}: no exported call span {parent}"
        );
    }
}
