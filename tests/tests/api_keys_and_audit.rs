//! API keys (secret shown once, only a hash stored, `X-API-Key`, revocation, `lastUsedAt`) and
//! the audit log of mutations.

use orchestrator_tests::error_code as code;
use orchestrator_tests::{Services, on_all_services, project_token, spawn_app};
use sea_orm::EntityTrait;
use serde_json::{Value, json};

async fn with_key(
    app: &orchestrator_tests::TestApp,
    key: &str,
    query: &str,
    variables: Value,
) -> Value {
    app.http
        .post(app.url("/graphql"))
        .header("X-API-Key", key)
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn api_keys(services: Services) {
    let app = spawn_app(&services).await;
    let p = app.default_project().await;
    let created = app
        .admin(
            "mutation($p: ID!) { createApiKey(projectId: $p, name: \"ci\", role: OPERATOR) { secret apiKey { id name role prefix lastUsedAt } } }",
            json!({ "p": p }),
        )
        .await;
    let secret = created["createApiKey"]["secret"]
        .as_str()
        .unwrap()
        .to_string();
    let key_id = created["createApiKey"]["apiKey"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        secret.starts_with(
            created["createApiKey"]["apiKey"]["prefix"]
                .as_str()
                .unwrap()
        )
    );
    assert_eq!(created["createApiKey"]["apiKey"]["lastUsedAt"], Value::Null);

    // Only a hash is stored.
    let rows = orchestrator_entity::api_keys::Entity::find()
        .all(&app.core.db)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_ne!(rows[0].key_hash, secret);
    assert!(!format!("{:?}", rows[0]).contains(&secret));

    // The key acts with its role in its project.
    let body = with_key(
        &app,
        &secret,
        "{ viewer { subject projects { role project { slug } } } }",
        json!({}),
    )
    .await;
    assert_eq!(body["data"]["viewer"]["subject"], "apikey:ci", "{body}");
    assert_eq!(body["data"]["viewer"]["projects"][0]["role"], "OPERATOR");
    let body = with_key(
        &app,
        &secret,
        "mutation($p: ID!) { startExecution(input: {projectId: $p, pipeline: \"noop\"}) { id } }",
        json!({ "p": p }),
    )
    .await;
    assert!(body["errors"].is_null(), "{body}");
    let body = with_key(
        &app,
        &secret,
        "mutation($p: ID!) { createApiKey(projectId: $p, name: \"x\", role: ADMIN) { secret } }",
        json!({ "p": p }),
    )
    .await;
    assert_eq!(
        code(&body),
        "FORBIDDEN",
        "an operator key cannot mint keys: {body}"
    );

    // The list never shows the secret; lastUsedAt moved.
    let listed = app
        .admin(
            "query($p: ID!) { apiKeys(projectId: $p) { id lastUsedAt } }",
            json!({ "p": p }),
        )
        .await;
    assert!(!listed.to_string().contains(&secret));
    assert!(listed["apiKeys"][0]["lastUsedAt"].is_string(), "{listed}");

    // Revoked keys stop working; unknown keys never worked.
    app.admin(
        "mutation($k: ID!) { revokeApiKey(id: $k) { revokedAt } }",
        json!({ "k": key_id }),
    )
    .await;
    let body = with_key(&app, &secret, "{ viewer { subject } }", json!({})).await;
    assert_eq!(code(&body), "UNAUTHENTICATED", "{body}");
    let body = with_key(&app, "ork_nope_nope", "{ viewer { subject } }", json!({})).await;
    assert_eq!(code(&body), "UNAUTHENTICATED", "{body}");
    let body = app
        .gql(
            Some(&project_token("default", "admin")),
            "mutation { createApiKey(projectId: \"x\", name: \"\", role: ADMIN) { secret } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&body), "NOT_FOUND", "{body}");
    let body = app
        .gql(
            Some(&project_token("default", "admin")),
            "mutation($p: ID!) { createApiKey(projectId: $p, name: \"\", role: ADMIN) { secret } }",
            json!({ "p": p }),
        )
        .await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
    let count = orchestrator_entity::api_keys::Entity::find()
        .all(&app.core.db)
        .await
        .unwrap()
        .len();
    assert_eq!(count, 1, "refused inputs write nothing");
    app.stop().await;
}

async fn audit_log(services: Services) {
    let app = spawn_app(&services).await;
    let p = app.default_project().await;
    app.admin(
        "mutation($p: ID!) { startExecution(input: {projectId: $p, pipeline: \"noop\"}) { id } }",
        json!({ "p": p }),
    )
    .await;
    let viewer = project_token("default", "viewer");
    let body = app.gql(Some(&viewer), "mutation($p: ID!) { startExecution(input: {projectId: $p, pipeline: \"noop\"}) { id } }", json!({ "p": p })).await;
    assert_eq!(code(&body), "FORBIDDEN");
    let log = app
        .admin("query($p: ID!) { auditLog(projectId: $p, first: 10) { totalCount edges { node { actor action target outcome createdAt } } } }", json!({ "p": p }))
        .await;
    let entries: Vec<&Value> = log["auditLog"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["node"])
        .collect();
    assert_eq!(log["auditLog"]["totalCount"], 2, "{log}");
    assert_eq!(entries[0]["actor"], "default-viewer");
    assert_eq!(entries[0]["outcome"], "FORBIDDEN");
    assert_eq!(entries[1]["actor"], "test-admin");
    assert_eq!(entries[1]["action"], "startExecution");
    assert_eq!(entries[1]["outcome"], "OK");
    assert!(entries[1]["target"].is_string());
    let body = app
        .gql(
            Some(&viewer),
            "query($p: ID!) { auditLog(projectId: $p) { totalCount } }",
            json!({ "p": p }),
        )
        .await;
    assert_eq!(
        code(&body),
        "FORBIDDEN",
        "only admins read the audit log: {body}"
    );
    app.stop().await;
}

async fn worker_tokens_do_not_open_graphql(services: Services) {
    let app = spawn_app(&services).await;
    let p = app.default_project().await;
    let data = app
        .admin(
            "mutation($p: ID!) { registerWorker(input: {projectId: $p, name: \"w\", url: \"http://127.0.0.1:9\", capabilities: [\"x\"]}) { token } }",
            json!({ "p": p }),
        )
        .await;
    let token = data["registerWorker"]["token"]
        .as_str()
        .unwrap()
        .to_string();
    let body = app
        .gql(Some(&token), "{ viewer { subject } }", json!({}))
        .await;
    assert_eq!(code(&body), "UNAUTHENTICATED", "as a bearer token: {body}");
    let body = with_key(&app, &token, "{ viewer { subject } }", json!({})).await;
    assert_eq!(code(&body), "UNAUTHENTICATED", "as an API key: {body}");
    app.stop().await;
}

on_all_services! {
    worker_tokens_are_not_graphql_credentials => super::worker_tokens_do_not_open_graphql;
    api_keys_are_shown_once_and_revocable => super::api_keys;
    mutations_are_audited => super::audit_log;
}
