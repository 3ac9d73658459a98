//! Intents through GraphQL without a platform: parse and plan errors (with nothing written),
//! `planDeployment`, dry runs, the state checks of retry/cancel/rollback, and tenant
//! isolation. Deployments to a real Docker engine are in `intents_docker.rs`.

use orchestrator_tests::{Services, TestApp, error_code, project_token, spawn_app};
use serde_json::{Value, json};

const DEPLOY: &str = "mutation($in: DeployInput!) { deploy(input: $in) { id status action application dryRun parsed plan { platform namespace components { name manifests objects { kind name } } warnings } execution { id } } }";
const PLAN: &str = "query($in: DeployInput!) { planDeployment(input: $in) { parsed parsedBy platform namespace components { name platform manifests } compose warnings } }";
const COUNTS: &str = "query($p: ID!) { intents(projectId: $p) { totalCount } executions(projectId: $p) { totalCount } }";

async fn nothing_written(app: &TestApp, p: &str) {
    let counts = app.admin(COUNTS, json!({ "p": p })).await;
    assert_eq!(counts["intents"]["totalCount"], 0, "{counts}");
    assert_eq!(counts["executions"]["totalCount"], 0, "{counts}");
}

fn field(body: &Value) -> &str {
    body["errors"][0]["extensions"]["field"]
        .as_str()
        .unwrap_or_default()
}

fn message(body: &Value) -> String {
    body["errors"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

async fn deploy_refused(app: &TestApp, input: Value) -> Value {
    let body = app
        .gql(Some(&app.admin_token), DEPLOY, json!({ "in": input }))
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body:#}");
    body
}

async fn bad_commands_are_refused_with_nothing_written(services: Services) {
    let app = spawn_app(&services).await;
    let p = app.default_project().await;

    // An unknown application names the closest blueprints.
    let body = deploy_refused(
        &app,
        json!({ "projectId": p, "command": "install postgresq" }),
    )
    .await;
    assert_eq!(field(&body), "input.command", "{body:#}");
    assert!(message(&body).contains("postgresql"), "{body:#}");

    // Words that mean nothing are shown, with what was understood.
    let body = deploy_refused(
        &app,
        json!({ "projectId": p, "command": "install redis quickly please" }),
    )
    .await;
    let text = body.to_string();
    assert!(message(&body).contains("quickly"), "{body:#}");
    assert!(text.contains("understood"), "{body:#}");

    // Empty and over-long commands.
    deploy_refused(&app, json!({ "projectId": p, "command": "   " })).await;
    let long = format!("install redis {}", "x".repeat(600));
    deploy_refused(&app, json!({ "projectId": p, "command": long })).await;

    // Options are checked and named.
    let body = deploy_refused(
        &app,
        json!({ "projectId": p, "command": "install redis", "options": { "namespace": "Not_A_Label" } }),
    )
    .await;
    assert_eq!(field(&body), "input.options.namespace", "{body:#}");
    let body = deploy_refused(
        &app,
        json!({ "projectId": p, "command": "install redis", "options": { "replicas": 1000 } }),
    )
    .await;
    assert_eq!(field(&body), "input.options.replicas", "{body:#}");
    let body = deploy_refused(
        &app,
        json!({ "projectId": p, "command": "install redis", "options": { "params": { "redis": { "nosuch": 1 } } } }),
    )
    .await;
    assert_eq!(field(&body), "input.options.params", "{body:#}");
    assert!(message(&body).contains("nosuch"), "{body:#}");
    let body = deploy_refused(
        &app,
        json!({ "projectId": p, "command": "install redis", "options": { "params": [1, 2] } }),
    )
    .await;
    assert_eq!(field(&body), "input.options.params", "{body:#}");

    // Acting on something that is not deployed.
    let body = deploy_refused(
        &app,
        json!({ "projectId": p, "command": "scale redis to 3" }),
    )
    .await;
    assert!(message(&body).contains("not deployed"), "{body:#}");
    deploy_refused(&app, json!({ "projectId": p, "command": "remove redis" })).await;

    nothing_written(&app, &p).await;
    app.stop().await;
}

async fn plans_are_dry_runs(services: Services) {
    let app = spawn_app(&services).await;
    let p = app.default_project().await;

    let plan = app
        .admin(
            PLAN,
            json!({ "in": {
                "projectId": p,
                "command": "install authentik with TLS and ingress in namespace auth on domain auth.example.com on kubernetes",
            } }),
        )
        .await["planDeployment"]
        .clone();
    let names: Vec<&str> = plan["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["postgresql", "redis", "authentik"], "{plan:#}");
    assert_eq!(plan["platform"], "KUBERNETES");
    assert_eq!(plan["namespace"], "auth");
    assert_eq!(plan["parsed"]["action"], "install");
    assert_eq!(plan["parsed"]["domain"], "auth.example.com");
    assert_eq!(plan["parsed"]["features"]["tls"], true);
    assert_eq!(plan["parsedBy"], "rules");
    let manifests = plan["components"][2]["manifests"].as_str().unwrap();
    assert!(manifests.contains("kind: Ingress"), "{manifests}");
    assert!(manifests.contains("auth.example.com"));
    nothing_written(&app, &p).await;

    // Options override the text.
    let plan = app
        .admin(
            PLAN,
            json!({ "in": {
                "projectId": p,
                "command": "install redis on kubernetes in namespace cache",
                "options": { "platform": "DOCKER", "namespace": "other" },
            } }),
        )
        .await["planDeployment"]
        .clone();
    assert_eq!(plan["platform"], "DOCKER");
    assert_eq!(plan["namespace"], "other");
    assert!(plan["compose"].as_str().unwrap().contains("services:"));

    // A dry run is recorded with its plan; nothing runs.
    let intent = app
        .admin(
            DEPLOY,
            json!({ "in": { "projectId": p, "command": "install redis", "dryRun": true } }),
        )
        .await["deploy"]
        .clone();
    assert_eq!(intent["status"], "COMPLETED", "{intent:#}");
    assert_eq!(intent["dryRun"], true);
    assert!(intent["execution"].is_null());
    assert_eq!(intent["plan"]["components"][0]["name"], "redis");
    let counts = app.admin(COUNTS, json!({ "p": p })).await;
    assert_eq!(counts["intents"]["totalCount"], 1);
    assert_eq!(counts["executions"]["totalCount"], 0);

    // A dry run has nothing to retry, cancel or roll back.
    for op in ["retryIntent", "cancelIntent", "rollbackIntent"] {
        let body = app
            .gql(
                Some(&app.admin_token),
                &format!("mutation($i: ID!) {{ {op}(id: $i) {{ id }} }}"),
                json!({ "i": intent["id"] }),
            )
            .await;
        assert_eq!(error_code(&body), "CONFLICT", "{op}: {body:#}");
    }

    // Another project's intent does not exist for this caller.
    let other = app
        .admin(
            "mutation { createProject(input: {slug: \"other\", name: \"Other\"}) { id } }",
            json!({}),
        )
        .await["createProject"]["id"]
        .clone();
    let outsider = project_token("other", "admin");
    let body = app
        .gql(
            Some(&outsider),
            "query($i: ID!) { intent(id: $i) { id } }",
            json!({ "i": intent["id"] }),
        )
        .await;
    assert_eq!(error_code(&body), "NOT_FOUND", "{body:#}");
    let body = app
        .gql(
            Some(&outsider),
            "mutation($i: ID!) { rollbackIntent(id: $i) { id } }",
            json!({ "i": intent["id"] }),
        )
        .await;
    assert_eq!(error_code(&body), "NOT_FOUND", "{body:#}");
    let listed = app
        .gql(
            Some(&outsider),
            "query($p: ID!) { intents(projectId: $p) { totalCount } }",
            json!({ "p": other }),
        )
        .await;
    assert_eq!(listed["data"]["intents"]["totalCount"], 0, "{listed:#}");
    app.stop().await;
}

orchestrator_tests::on_all_services! {
    bad_commands => super::bad_commands_are_refused_with_nothing_written;
    plans => super::plans_are_dry_runs;
}
