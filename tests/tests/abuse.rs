//! Hostile inputs each get a clear error and leave the server answering.

use std::time::Duration;

use orchestrator::Mode;
use orchestrator_tests::error_code as code;
use orchestrator_tests::ws::{Protocol, WsClient};
use orchestrator_tests::{Services, spawn_app_with};
use serde_json::{Value, json};

async fn still_answers(app: &orchestrator_tests::TestApp) {
    let body = app.gql(None, "{ health { status } }", json!({})).await;
    assert_eq!(body["data"]["health"]["status"], "ok", "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_queries_are_refused() {
    let app = spawn_app_with(
        &Services::Embedded,
        Mode::Standalone,
        &[("ORCH_RATE_LIMIT_BURST", "100000")],
    )
    .await;
    let token = app.admin_token.clone();

    // Depth bomb.
    let mut q = String::from(
        "{ __schema { types { fields { type { ofType { ofType { ofType { ofType { ofType { ofType { ofType { ofType { ofType { name } } } } } } } } } } } } } }",
    );
    let body = app.gql(Some(&token), &q, json!({})).await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
    assert!(body.to_string().contains("too deep"), "{body}");
    still_answers(&app).await;

    // 1,000 aliases.
    q = String::from("{ ");
    for i in 0..1000 {
        q.push_str(&format!("a{i}: health {{ status }} "));
    }
    q.push('}');
    let body = app.gql(Some(&token), &q, json!({})).await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
    assert!(body.to_string().contains("aliases"), "{body}");
    still_answers(&app).await;

    // Many directives on one field.
    let body = app.gql(Some(&token), "{ health @skip(if: false) @include(if: true) @skip(if: false) @include(if: true) @skip(if: false) { status } }", json!({})).await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");

    // Circular fragments.
    let body = app
        .gql(
            Some(&token),
            "query { ...A } fragment A on QueryRoot { ...B } fragment B on QueryRoot { ...A }",
            json!({}),
        )
        .await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
    still_answers(&app).await;

    // A batch of 1,000 operations.
    let batch: Vec<Value> = (0..1000)
        .map(|_| json!({ "query": "{ health { status } }" }))
        .collect();
    let resp = app
        .http
        .post(app.url("/graphql"))
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");

    // A 10 MiB body: refused with 413 as soon as the limit is passed. The server may answer
    // and close before the client has finished sending, which the client then sees as a
    // broken pipe; either way nothing is read past the limit and the server keeps answering.
    let huge = json!({ "query": "{ health { status } }", "variables": { "x": "y".repeat(10 * 1024 * 1024) } });
    match app.http.post(app.url("/graphql")).json(&huge).send().await {
        Ok(resp) => {
            assert_eq!(resp.status(), 413);
            let body: Value = resp.json().await.unwrap();
            assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
        }
        Err(err) => assert!(err.is_request(), "{err}"),
    }
    still_answers(&app).await;

    // A very long query text.
    let long = format!("{{ health {{ status }} }} # {}", "x".repeat(40 * 1024));
    let body = app.gql(Some(&token), &long, json!({})).await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
    still_answers(&app).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_over_their_rate_are_told_to_slow_down() {
    let app = spawn_app_with(
        &Services::Embedded,
        Mode::Standalone,
        &[
            ("ORCH_RATE_LIMIT_PER_SECOND", "1"),
            ("ORCH_RATE_LIMIT_BURST", "3"),
        ],
    )
    .await;
    let mut codes = Vec::new();
    for _ in 0..5 {
        let resp = app
            .http
            .post(app.url("/graphql"))
            .bearer_auth(&app.admin_token)
            .json(&json!({ "query": "{ viewer { subject } }" }))
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap();
        codes.push((status, code(&body).to_string()));
    }
    assert_eq!(
        codes[..3].iter().filter(|(s, _)| *s == 200).count(),
        3,
        "{codes:?}"
    );
    assert_eq!(codes[4], (429, "RATE_LIMITED".to_string()), "{codes:?}");
    // Another caller has its own budget.
    let other = orchestrator_tests::project_token("default", "viewer");
    let body = app
        .gql(Some(&other), "{ viewer { subject } }", json!({}))
        .await;
    assert_eq!(
        body["data"]["viewer"]["subject"], "default-viewer",
        "{body}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_abuse_is_contained() {
    let app = spawn_app_with(
        &Services::Embedded,
        Mode::Standalone,
        &[("ORCH_WS_INIT_TIMEOUT", "1")],
    )
    .await;

    // A socket that never sends connection_init is closed with 4408.
    let mut idle = WsClient::open(app.addr, Protocol::TransportWs).await;
    let msg = idle.next_message(Duration::from_secs(5)).await;
    assert_eq!(msg["closed"], 4408, "{msg}");

    // Invalid credentials are refused at connection_init.
    let (mut bad, first) = WsClient::connect(
        app.addr,
        Protocol::TransportWs,
        json!({ "Authorization": "Bearer forged" }),
    )
    .await;
    let refused = if first.get("closed").is_some() {
        first
    } else {
        bad.next_message(Duration::from_secs(5)).await
    };
    assert!(refused.get("closed").is_some(), "{refused}");

    // A browser page from a foreign origin may not open a socket.
    let resp = app
        .http
        .get(app.url("/graphql/ws"))
        .header("Origin", "https://evil.example")
        .header("Connection", "Upgrade")
        .header("Upgrade", "websocket")
        .header("Sec-WebSocket-Version", "13")
        .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
        .header("Sec-WebSocket-Protocol", "graphql-transport-ws")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    still_answers(&app).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_subscriptions_on_one_socket_are_capped() {
    let app = spawn_app_with(&Services::Embedded, Mode::Standalone, &[]).await;
    let project = app.default_project().await;
    let (mut ws, ack) = WsClient::connect(
        app.addr,
        Protocol::TransportWs,
        json!({ "Authorization": format!("Bearer {}", app.admin_token) }),
    )
    .await;
    assert_eq!(ack["type"], "connection_ack");
    for i in 0..10_000 {
        ws.start(
            &format!("s{i}"),
            "subscription($p: ID!) { events(projectId: $p) { kind } }",
            json!({ "p": project }),
        )
        .await;
    }
    // Everything past the first 100 is refused, each with its own error.
    let mut refused = 0;
    while refused < 9_900 {
        let msg = ws.next_message(Duration::from_secs(30)).await;
        assert_eq!(msg["type"], "error", "{msg}");
        assert!(msg.to_string().contains("at most 100"), "{msg}");
        refused += 1;
    }
    // A duplicate id of a running subscription closes the socket with 4409.
    ws.start(
        "s0",
        "subscription($p: ID!) { events(projectId: $p) { kind } }",
        json!({ "p": project }),
    )
    .await;
    let msg = ws.next_message(Duration::from_secs(10)).await;
    assert_eq!(msg["closed"], 4409, "{msg}");
    still_answers(&app).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_errors_are_masked_with_an_error_id() {
    use sea_orm::ConnectionTrait;
    let app = spawn_app_with(&Services::Embedded, Mode::Standalone, &[]).await;
    let project = app.default_project().await;
    // Break the database under the running product.
    app.core
        .db
        .execute_unprepared("DROP TABLE api_keys")
        .await
        .unwrap();
    let body = app
        .gql(
            Some(&app.admin_token),
            "query($p: ID!) { apiKeys(projectId: $p) { id } }",
            json!({ "p": project }),
        )
        .await;
    assert_eq!(code(&body), "INTERNAL", "{body}");
    let error_id = body["errors"][0]["extensions"]["errorId"]
        .as_str()
        .unwrap_or_default();
    assert_eq!(error_id.len(), 12, "{body}");
    let text = body.to_string().to_lowercase();
    for leak in ["api_keys", "no such table", "sqlite", "select"] {
        assert!(
            !text.contains(leak),
            "the database error leaked ({leak}): {body}"
        );
    }
    still_answers(&app).await;
    app.stop().await;
}
