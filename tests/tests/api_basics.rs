//! The GraphQL skeleton through HTTP and websockets: auth required, projects, error codes,
//! request limits, and a first execution through the queue.

use std::time::Duration;

use orchestrator_tests::ws::{Protocol, WsClient};
use orchestrator_tests::{Services, on_all_services, project_token, spawn_app};
use serde_json::json;

fn code(body: &serde_json::Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or("<none>")
}

async fn health_and_readiness(services: Services) {
    let app = spawn_app(&services).await;
    let body = app
        .gql(None, "{ health { status version } }", json!({}))
        .await;
    assert_eq!(body["data"]["health"]["status"], "ok", "{body}");
    let ready = app.http.get(app.url("/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let live = app.http.get(app.url("/health")).send().await.unwrap();
    assert_eq!(live.status(), 200);
    app.stop().await;
}

async fn every_operation_but_health_needs_a_token(services: Services) {
    let app = spawn_app(&services).await;
    for query in [
        "{ projects { id } }",
        "{ viewer { subject } }",
        "{ pipelines { name } }",
    ] {
        let body = app.gql(None, query, json!({})).await;
        assert_eq!(code(&body), "UNAUTHENTICATED", "{query}: {body}");
        let body = app.gql(Some("not-a-token"), query, json!({})).await;
        assert_eq!(code(&body), "UNAUTHENTICATED", "{query}: {body}");
    }
    let body = app
        .gql(
            None,
            "mutation { createProject(input: {slug: \"x\", name: \"X\"}) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&body), "UNAUTHENTICATED", "{body}");
    let count = orchestrator_entity::projects::Entity::find_count(&app.core.db).await;
    assert_eq!(count, 1, "only the default project exists");
    app.stop().await;
}

async fn projects_are_created_and_scoped(services: Services) {
    let app = spawn_app(&services).await;
    let data = app
        .admin(
            "mutation { createProject(input: {slug: \"team-a\", name: \"Team A\"}) { id slug name } }",
            json!({}),
        )
        .await;
    let a_id = data["createProject"]["id"].as_str().unwrap().to_string();
    let data = app.admin("{ projects { slug } }", json!({})).await;
    let slugs: Vec<&str> = data["projects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["slug"].as_str().unwrap())
        .collect();
    assert_eq!(slugs, ["default", "team-a"]);

    // A token for project team-a sees only team-a, and the default project does not exist for it.
    let token = project_token("team-a", "viewer");
    let body = app.gql(Some(&token), "{ projects { slug } viewer { subject globalRole projects { role project { slug } } } }", json!({})).await;
    assert_eq!(
        body["data"]["projects"],
        json!([{ "slug": "team-a" }]),
        "{body}"
    );
    assert_eq!(body["data"]["viewer"]["projects"][0]["role"], "VIEWER");
    let default_id = app.default_project().await;
    let body = app
        .gql(
            Some(&token),
            "query($id: ID!) { project(id: $id) { slug } }",
            json!({ "id": default_id }),
        )
        .await;
    assert_eq!(code(&body), "NOT_FOUND", "{body}");
    let body = app
        .gql(
            Some(&token),
            "query($id: ID!) { project(id: $id) { slug } }",
            json!({ "id": a_id }),
        )
        .await;
    assert_eq!(body["data"]["project"]["slug"], "team-a", "{body}");
    // Only global admins create projects.
    let body = app
        .gql(
            Some(&project_token("team-a", "admin")),
            "mutation { createProject(input: {slug: \"b\", name: \"B\"}) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&body), "FORBIDDEN", "{body}");
    app.stop().await;
}

async fn bad_project_input_writes_nothing(services: Services) {
    let app = spawn_app(&services).await;
    let create = "mutation($slug: String!, $name: String!) { createProject(input: {slug: $slug, name: $name}) { id } }";
    for (slug, name, field) in [
        ("Bad Slug", "x", "input.slug"),
        ("-x", "x", "input.slug"),
        ("ok", "", "input.name"),
    ] {
        let body = app
            .gql(
                Some(&app.admin_token),
                create,
                json!({ "slug": slug, "name": name }),
            )
            .await;
        assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
        assert_eq!(body["errors"][0]["extensions"]["field"], field, "{body}");
    }
    app.admin(create, json!({ "slug": "dup", "name": "Dup" }))
        .await;
    let body = app
        .gql(
            Some(&app.admin_token),
            create,
            json!({ "slug": "dup", "name": "Again" }),
        )
        .await;
    assert_eq!(code(&body), "CONFLICT", "{body}");
    let count = orchestrator_entity::projects::Entity::find_count(&app.core.db).await;
    assert_eq!(count, 2, "default + dup, nothing from the refused inputs");
    app.stop().await;
}

async fn malformed_requests_are_bad_user_input(services: Services) {
    let app = spawn_app(&services).await;
    let token = app.admin_token.clone();
    for (query, variables) in [
        ("{ projects { id ", json!({})),
        ("{ projects { nosuchfield } }", json!({})),
        (
            "query($id: ID!) { project(id: $id) { id } }",
            json!({ "id": { "nested": true } }),
        ),
        ("query($id: ID!) { project(id: $id) { id } }", json!({})),
        (
            "mutation { createProject(input: {slug: 5, name: \"x\"}) { id } }",
            json!({}),
        ),
    ] {
        let body = app.gql(Some(&token), query, variables).await;
        assert_eq!(code(&body), "BAD_USER_INPUT", "{query}: {body}");
    }
    // Not JSON at all, and JSON that is not a request.
    for raw in ["this is not json", "{\"nope\": 1}", "[]"] {
        let resp = app
            .http
            .post(app.url("/graphql"))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(raw)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{raw}");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(code(&body), "BAD_USER_INPUT", "{raw}: {body}");
    }
    // A batch larger than the limit.
    let batch: Vec<_> = (0..11)
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
    // A batch within the limit works.
    let batch: Vec<_> = (0..3)
        .map(|_| json!({ "query": "{ health { status } }" }))
        .collect();
    let body: serde_json::Value = app
        .http
        .post(app.url("/graphql"))
        .json(&batch)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body.as_array().unwrap().len(), 3);
    // The server still answers.
    let body = app.gql(None, "{ health { status } }", json!({})).await;
    assert_eq!(body["data"]["health"]["status"], "ok");
    app.stop().await;
}

async fn websocket_speaks_both_protocols(services: Services) {
    let app = spawn_app(&services).await;
    for protocol in [Protocol::TransportWs, Protocol::LegacyWs] {
        let (mut ws, ack) = WsClient::connect(
            app.addr,
            protocol,
            json!({ "Authorization": format!("Bearer {}", app.admin_token) }),
        )
        .await;
        assert_eq!(ack["type"], "connection_ack", "{protocol:?}: {ack}");
        ws.start("1", "{ projects { slug } }", json!({})).await;
        let msg = ws.next_message(Duration::from_secs(5)).await;
        let data = match protocol {
            Protocol::TransportWs => {
                assert_eq!(msg["type"], "next", "{msg}");
                &msg["payload"]["data"]
            }
            Protocol::LegacyWs => {
                assert_eq!(msg["type"], "data", "{msg}");
                &msg["payload"]["data"]
            }
        };
        assert_eq!(data["projects"][0]["slug"], "default", "{msg}");
        let done = ws.next_message(Duration::from_secs(5)).await;
        assert_eq!(done["type"], "complete", "{done}");
    }
    // Without credentials the operation is refused.
    let (mut ws, _) = WsClient::connect(app.addr, Protocol::TransportWs, json!({})).await;
    ws.start("1", "{ projects { slug } }", json!({})).await;
    let msg = ws.next_message(Duration::from_secs(5)).await;
    let text = msg.to_string();
    assert!(text.contains("UNAUTHENTICATED"), "{msg}");
    app.stop().await;
}

async fn an_execution_runs_through_the_queue(services: Services) {
    let app = spawn_app(&services).await;
    let project = app.default_project().await;
    let data = app
        .admin(
            "mutation($p: ID!) { startExecution(input: {projectId: $p, pipeline: \"noop\", input: {greeting: \"hi\"}, priority: HIGH}) { id status priority progress { total } } }",
            json!({ "p": project }),
        )
        .await;
    let started = &data["startExecution"];
    assert_eq!(started["status"], "QUEUED");
    assert_eq!(started["priority"], "HIGH");
    assert_eq!(started["progress"]["total"], 3);
    let id = started["id"].as_str().unwrap();
    let done = app.wait_execution(id, Duration::from_secs(20)).await;
    assert_eq!(done["status"], "SUCCEEDED", "{done:#}");
    assert_eq!(done["progress"]["completed"], 3);
    assert_eq!(done["output"], json!({ "greeting": "hi" }));
    for stage in done["stages"].as_array().unwrap() {
        assert_eq!(stage["status"], "SUCCEEDED");
        assert_eq!(stage["attempt"], 1);
    }
    let data = app
        .admin(
            "query($p: ID!) { executions(projectId: $p, status: SUCCEEDED) { totalCount edges { node { id } } pageInfo { hasNextPage } } }",
            json!({ "p": project }),
        )
        .await;
    assert_eq!(data["executions"]["totalCount"], 1);
    // An unknown pipeline is refused and nothing is written.
    let body = app
        .gql(
            Some(&app.admin_token),
            "mutation($p: ID!) { startExecution(input: {projectId: $p, pipeline: \"nope\"}) { id } }",
            json!({ "p": project }),
        )
        .await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
    let count = orchestrator_entity::executions::Entity::find_count(&app.core.db).await;
    assert_eq!(count, 1);
    // A viewer cannot start executions.
    let body = app
        .gql(
            Some(&project_token("default", "viewer")),
            "mutation($p: ID!) { startExecution(input: {projectId: $p, pipeline: \"noop\"}) { id } }",
            json!({ "p": project }),
        )
        .await;
    assert_eq!(code(&body), "FORBIDDEN", "{body}");
    app.stop().await;
}

on_all_services! {
    health_and_readiness => super::health_and_readiness;
    every_operation_but_health_needs_a_token => super::every_operation_but_health_needs_a_token;
    projects_are_created_and_scoped => super::projects_are_created_and_scoped;
    bad_project_input_writes_nothing => super::bad_project_input_writes_nothing;
    malformed_requests_are_bad_user_input => super::malformed_requests_are_bad_user_input;
    websocket_speaks_both_protocols => super::websocket_speaks_both_protocols;
    an_execution_runs_through_the_queue => super::an_execution_runs_through_the_queue;
}

/// Counting helper on entities.
trait FindCount {
    async fn find_count(db: &sea_orm::DatabaseConnection) -> u64;
}

impl<E: sea_orm::EntityTrait> FindCount for E
where
    E::Model: Sync,
{
    async fn find_count(db: &sea_orm::DatabaseConnection) -> u64 {
        use sea_orm::PaginatorTrait;
        E::find().count(db).await.unwrap()
    }
}
