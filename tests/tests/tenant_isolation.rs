//! A caller of project A gets `NOT_FOUND` for every id of project B — in queries, mutations and
//! over the websocket — and B's rows never appear in A's lists.

use std::time::Duration;

use orchestrator_tests::error_code as code;
use orchestrator_tests::ws::{Protocol, WsClient};
use orchestrator_tests::{Services, on_all_services, project_token, spawn_app};
use serde_json::json;

async fn cross_tenant(services: Services) {
    let app = spawn_app(&services).await;
    let mut ids = std::collections::HashMap::new();
    for slug in ["team-a", "team-b"] {
        let p = app
            .admin(
                "mutation($s: String!) { createProject(input: {slug: $s, name: $s}) { id } }",
                json!({ "s": slug }),
            )
            .await["createProject"]["id"]
            .as_str()
            .unwrap()
            .to_string();
        let e = app
            .admin("mutation($p: ID!) { startExecution(input: {projectId: $p, pipeline: \"noop\"}) { id } }", json!({ "p": p }))
            .await["startExecution"]["id"]
            .as_str()
            .unwrap()
            .to_string();
        let k = app
            .admin("mutation($p: ID!) { createApiKey(projectId: $p, name: \"k\", role: ADMIN) { apiKey { id } } }", json!({ "p": p }))
            .await["createApiKey"]["apiKey"]["id"]
            .as_str()
            .unwrap()
            .to_string();
        ids.insert(slug, (p, e, k));
    }
    let (_, a_exec, _) = ids["team-a"].clone();
    let (b_project, b_exec, b_key) = ids["team-b"].clone();
    let a_admin = project_token("team-a", "admin");
    let vars = json!({ "p": b_project, "e": b_exec, "k": b_key });
    let probes = [
        "query($p: ID!) { project(id: $p) { id } }",
        "query($e: ID!) { execution(id: $e) { id } }",
        "query($p: ID!) { executions(projectId: $p) { totalCount } }",
        "query($p: ID!) { apiKeys(projectId: $p) { id } }",
        "query($p: ID!) { auditLog(projectId: $p) { totalCount } }",
        "mutation($p: ID!) { startExecution(input: {projectId: $p, pipeline: \"noop\"}) { id } }",
        "mutation($p: ID!) { createApiKey(projectId: $p, name: \"x\", role: ADMIN) { secret } }",
        "mutation($k: ID!) { revokeApiKey(id: $k) { id } }",
    ];
    for probe in probes {
        let body = app.gql(Some(&a_admin), probe, vars.clone()).await;
        assert_eq!(code(&body), "NOT_FOUND", "{probe}: {body}");
        // A random id answers exactly the same way.
        let random = json!({ "p": uuid::Uuid::new_v4(), "e": uuid::Uuid::new_v4(), "k": uuid::Uuid::new_v4() });
        let other = app.gql(Some(&a_admin), probe, random).await;
        assert_eq!(
            body["errors"][0]["message"], other["errors"][0]["message"],
            "{probe}"
        );
    }
    // Nothing was written to B, and B's key still works.
    let b_view = app
        .admin("query($p: ID!) { executions(projectId: $p) { totalCount } apiKeys(projectId: $p) { name revokedAt } }", json!({ "p": b_project }))
        .await;
    assert_eq!(b_view["executions"]["totalCount"], 1);
    assert_eq!(
        b_view["apiKeys"],
        json!([{ "name": "k", "revokedAt": null }])
    );
    // A's lists never show B.
    let body = app
        .gql(
            Some(&a_admin),
            "{ projects { slug } viewer { projects { project { slug } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        body["data"]["projects"],
        json!([{ "slug": "team-a" }]),
        "{body}"
    );
    // Over the websocket too.
    let (mut ws, ack) = WsClient::connect(
        app.addr,
        Protocol::TransportWs,
        json!({ "Authorization": format!("Bearer {a_admin}") }),
    )
    .await;
    assert_eq!(ack["type"], "connection_ack");
    ws.start(
        "1",
        "query($e: ID!) { execution(id: $e) { id } }",
        json!({ "e": b_exec }),
    )
    .await;
    let msg = ws.next_message(Duration::from_secs(5)).await;
    assert_eq!(
        msg["payload"]["errors"][0]["extensions"]["code"], "NOT_FOUND",
        "{msg}"
    );
    ws.start(
        "2",
        "query($e: ID!) { execution(id: $e) { id } }",
        json!({ "e": a_exec }),
    )
    .await;
    loop {
        let msg = ws.next_message(Duration::from_secs(5)).await;
        if msg["id"] == "2" && msg["type"] == "next" {
            assert_eq!(msg["payload"]["data"]["execution"]["id"], a_exec.as_str());
            break;
        }
    }
    app.stop().await;
}

on_all_services! {
    cross_tenant_ids_are_not_found => super::cross_tenant;
}
