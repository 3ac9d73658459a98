//! A project's own blueprints through the GraphQL API: every upsert a new version, shadows
//! of builtins that apply only in their project, other projects that never see them, and
//! deletes refused while another blueprint or a deployment uses them.

use chrono::Utc;
use orchestrator_entity::{IntentStatus, blueprints, intents};
use orchestrator_tests::{Services, TestApp, on_all_services, project_token, spawn_app};
use sea_orm::{ActiveModelTrait, EntityTrait, PaginatorTrait, Set};
use serde_json::{Value, json};
use uuid::Uuid;

const BUILTINS: [&str; 10] = [
    "aaf-backend",
    "authentik",
    "database",
    "mongodb",
    "nginx",
    "postgresql",
    "redis",
    "simple-service",
    "traefik",
    "webapp",
];

const UPSERT: &str = "mutation($p: ID!, $y: String!) { upsertBlueprint(projectId: $p, yaml: $y) { name source shadowsBuiltin currentVersion versions { version yaml } defaults { image } } }";
const DELETE: &str = "mutation($p: ID!, $n: String!) { deleteBlueprint(projectId: $p, name: $n) { name versions { version deletedAt } } }";
const ONE: &str = "query($p: ID!, $n: String!) { blueprint(projectId: $p, name: $n) { name source shadowsBuiltin currentVersion defaults { image } versions { version yaml } } }";
const LIST: &str = "query($p: ID!) { blueprints(projectId: $p) { name source shadowsBuiltin } }";
const RENDER: &str = "query($p: ID!, $n: String!, $pl: Platform!, $params: JSON) { renderBlueprint(projectId: $p, name: $n, platform: $pl, params: $params) { manifests compose warnings components { name platform manifests } } }";

fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or("<none>")
}

async fn stored_rows(app: &TestApp) -> u64 {
    blueprints::Entity::find()
        .count(&app.core.db)
        .await
        .expect("count blueprints")
}

async fn create_project(app: &TestApp, slug: &str) -> String {
    let data = app
        .admin(
            "mutation($s: String!) { createProject(input: {slug: $s, name: $s}) { id } }",
            json!({ "s": slug }),
        )
        .await;
    data["createProject"]["id"].as_str().unwrap().to_owned()
}

fn names(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].as_str().unwrap())
        .collect()
}

fn first_problem(body: &Value) -> &Value {
    &body["errors"][0]["extensions"]["errors"][0]
}

async fn every_upsert_adds_a_version(services: Services) {
    let app = spawn_app(&services).await;
    let p = app.default_project().await;
    let first = "name: site\ndefaults: { image: \"nginx:1.26\", port: 80 }\n";
    let second = "name: site\ndefaults: { image: \"nginx:1.27\", port: 80 }\n";
    let data = app.admin(UPSERT, json!({ "p": p, "y": first })).await;
    assert_eq!(data["upsertBlueprint"]["currentVersion"], 1);
    assert_eq!(data["upsertBlueprint"]["source"], "PROJECT");
    let data = app.admin(UPSERT, json!({ "p": p, "y": second })).await;
    let site = &data["upsertBlueprint"];
    assert_eq!(site["currentVersion"], 2);
    assert_eq!(site["defaults"]["image"], "nginx:1.27");
    assert_eq!(
        site["versions"],
        json!([{ "version": 1, "yaml": first }, { "version": 2, "yaml": second }])
    );
    assert_eq!(stored_rows(&app).await, 2);
    app.stop().await;
}

const VALKEY_REDIS: &str = "name: redis\ncategory: cache\ndefaults: { image: \"valkey/valkey:8\", port: 6379 }\nenvironment:\n  VALKEY_PASSWORD: ${secret.password}\nexports:\n  host: ${service.host}\n  port: ${service.port}\n  password: ${secret.password}\n  url: redis://${service.host}:${service.port}\n";

async fn a_shadow_replaces_the_builtin_only_in_its_project(services: Services) {
    let app = spawn_app(&services).await;
    let a = create_project(&app, "team-a").await;
    let b = create_project(&app, "team-b").await;
    let admin_a = project_token("team-a", "admin");
    let body = app
        .gql(Some(&admin_a), UPSERT, json!({ "p": a, "y": VALKEY_REDIS }))
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    let redis = &body["data"]["upsertBlueprint"];
    assert_eq!(redis["source"], "PROJECT");
    assert_eq!(redis["shadowsBuiltin"], true);

    let body = app.gql(Some(&admin_a), LIST, json!({ "p": a })).await;
    let list = body["data"]["blueprints"].as_array().unwrap();
    assert_eq!(
        list.len(),
        BUILTINS.len(),
        "the shadow replaces, not adds: {body}"
    );
    assert!(
        list.contains(&json!({ "name": "redis", "source": "PROJECT", "shadowsBuiltin": true }))
    );
    let body = app
        .gql(
            Some(&admin_a),
            RENDER,
            json!({ "p": a, "n": "authentik", "pl": "DOCKER" }),
        )
        .await;
    let compose = body["data"]["renderBlueprint"]["compose"].as_str().unwrap();
    assert!(
        compose.contains("valkey/valkey:8"),
        "authentik in team-a uses the shadow"
    );

    let viewer_b = project_token("team-b", "viewer");
    let body = app
        .gql(Some(&viewer_b), ONE, json!({ "p": b, "n": "redis" }))
        .await;
    let redis = &body["data"]["blueprint"];
    assert_eq!(redis["source"], "BUILTIN", "{body}");
    assert_eq!(redis["defaults"]["image"], "redis:7");

    // A shadow that drops an export authentik reads is refused, naming authentik.
    let bare = "name: redis\ndefaults: { image: \"valkey/valkey:8\" }\nexports:\n  host: ${service.host}\n";
    let body = app
        .gql(Some(&admin_a), UPSERT, json!({ "p": a, "y": bare }))
        .await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
    let problem = first_problem(&body);
    assert_eq!(problem["field"], "exports", "{body}");
    assert!(
        problem["message"]
            .as_str()
            .unwrap()
            .starts_with("authentik depends on redis"),
        "{body}"
    );
    assert_eq!(stored_rows(&app).await, 1);

    // Deleting the shadow brings the builtin back.
    app.admin(DELETE, json!({ "p": a, "n": "redis" })).await;
    let data = app.admin(ONE, json!({ "p": a, "n": "redis" })).await;
    assert_eq!(data["blueprint"]["source"], "BUILTIN");
    app.stop().await;
}

async fn other_projects_never_see_a_project_blueprint(services: Services) {
    let app = spawn_app(&services).await;
    let a = create_project(&app, "team-a").await;
    let b = create_project(&app, "team-b").await;
    let yaml = "name: team-a-app\ndefaults: { image: busybox }\n";
    app.admin(UPSERT, json!({ "p": a, "y": yaml })).await;
    let admin_b = project_token("team-b", "admin");
    for (project, name) in [(&b, "team-a-app"), (&a, "team-a-app"), (&a, "redis")] {
        let body = app
            .gql(Some(&admin_b), ONE, json!({ "p": project, "n": name }))
            .await;
        assert_eq!(code(&body), "NOT_FOUND", "{body}");
    }
    let body = app.gql(Some(&admin_b), LIST, json!({ "p": b })).await;
    assert!(
        !names(&body["data"]["blueprints"]).contains(&"team-a-app"),
        "{body}"
    );
    let body = app.gql(Some(&admin_b), LIST, json!({ "p": a })).await;
    assert_eq!(code(&body), "NOT_FOUND", "{body}");
    let body = app
        .gql(
            Some(&admin_b),
            RENDER,
            json!({ "p": b, "n": "team-a-app", "pl": "DOCKER" }),
        )
        .await;
    assert_eq!(code(&body), "NOT_FOUND", "{body}");
    let body = app
        .gql(Some(&admin_b), DELETE, json!({ "p": a, "n": "team-a-app" }))
        .await;
    assert_eq!(code(&body), "NOT_FOUND", "{body}");
    let body = app
        .gql(
            Some(&admin_b),
            UPSERT,
            json!({ "p": a, "y": "name: intruder\ndefaults: { image: busybox }\n" }),
        )
        .await;
    assert_eq!(code(&body), "NOT_FOUND", "{body}");
    assert_eq!(stored_rows(&app).await, 1);
    app.stop().await;
}

async fn delete_is_refused_while_something_uses_it(services: Services) {
    let app = spawn_app(&services).await;
    let p = app.default_project().await;
    app.admin(UPSERT, json!({ "p": p, "y": "name: base\ndefaults: { image: busybox }\nexports: { greeting: hello }\n" }))
        .await;
    app.admin(UPSERT, json!({ "p": p, "y": "name: app\ndefaults: { image: busybox }\ndependencies: [base]\nenvironment: { GREETING: \"${deps.base.greeting}\" }\n" }))
        .await;
    let body = app
        .gql(
            Some(&app.admin_token),
            DELETE,
            json!({ "p": p, "n": "base" }),
        )
        .await;
    assert_eq!(code(&body), "CONFLICT", "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("app depends on it"),
        "{body}"
    );
    let data = app.admin(ONE, json!({ "p": p, "n": "base" })).await;
    assert_eq!(data["blueprint"]["currentVersion"], 1, "still there");

    // A deployment that is running `app` keeps it too.
    let project_id = Uuid::parse_str(&p).unwrap();
    intents::ActiveModel {
        id: Set(Uuid::new_v4()),
        project_id: Set(project_id),
        command: Set("install app".into()),
        action: Set(Some("install".into())),
        application: Set(Some("app".into())),
        status: Set(IntentStatus::Deploying),
        parsed: Set(None),
        options: Set(json!({})),
        plan: Set(None),
        secrets: Set(None),
        dry_run: Set(false),
        execution_id: Set(None),
        error: Set(None),
        created_by: Set("test".into()),
        sequence: Set(1),
        created_at: Set(Utc::now()),
        updated_at: Set(Utc::now()),
    }
    .insert(&app.core.db)
    .await
    .expect("insert intent");
    let body = app
        .gql(
            Some(&app.admin_token),
            DELETE,
            json!({ "p": p, "n": "app" }),
        )
        .await;
    assert_eq!(code(&body), "CONFLICT", "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("deployments use it"),
        "{body}"
    );
    intents::Entity::delete_many()
        .exec(&app.core.db)
        .await
        .expect("clear intents");

    let data = app.admin(DELETE, json!({ "p": p, "n": "app" })).await;
    assert!(data["deleteBlueprint"]["versions"][0]["deletedAt"].is_string());
    app.admin(DELETE, json!({ "p": p, "n": "base" })).await;
    let body = app
        .gql(Some(&app.admin_token), ONE, json!({ "p": p, "n": "base" }))
        .await;
    assert_eq!(code(&body), "NOT_FOUND", "{body}");
    assert_eq!(
        stored_rows(&app).await,
        2,
        "deleted versions keep their text"
    );
    let body = app
        .gql(
            Some(&app.admin_token),
            DELETE,
            json!({ "p": p, "n": "redis" }),
        )
        .await;
    assert_eq!(
        code(&body),
        "BAD_USER_INPUT",
        "builtins cannot be deleted: {body}"
    );
    // Upserting after a delete continues the numbering.
    let data = app
        .admin(
            UPSERT,
            json!({ "p": p, "y": "name: base\ndefaults: { image: busybox }\n" }),
        )
        .await;
    assert_eq!(data["upsertBlueprint"]["currentVersion"], 2);
    app.stop().await;
}

on_all_services! {
    every_upsert_adds_a_version => super::every_upsert_adds_a_version;
    a_shadow_replaces_the_builtin_only_in_its_project => super::a_shadow_replaces_the_builtin_only_in_its_project;
    other_projects_never_see_a_project_blueprint => super::other_projects_never_see_a_project_blueprint;
    delete_is_refused_while_something_uses_it => super::delete_is_refused_while_something_uses_it;
}
