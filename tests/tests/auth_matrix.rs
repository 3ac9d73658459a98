//! Every query and mutation in the schema, called by every role: no credentials →
//! `UNAUTHENTICATED`; a role below the field's minimum → `FORBIDDEN`; at or above it → allowed.
//! The field list comes from the schema itself, so a new field without an entry here fails.

use std::collections::BTreeMap;

use orchestrator_tests::{Services, project_token, spawn_app};
use serde_json::{Value, json};

/// Who may call a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Need {
    Nobody,
    Viewer,
    Operator,
    Admin,
    GlobalAdmin,
}

/// Field → (minimum role, an operation calling it). `$p` is the project id, `$e` an execution
/// id, `$k` an API key id and `$w` a remote worker id of that project.
fn table() -> BTreeMap<&'static str, (Need, &'static str)> {
    use Need::*;
    BTreeMap::from([
        ("health", (Nobody, "{ health { status } }")),
        ("viewer", (Viewer, "{ viewer { subject } }")),
        ("projects", (Viewer, "{ projects { id } }")),
        (
            "project",
            (Viewer, "query($p: ID!) { project(id: $p) { id } }"),
        ),
        (
            "apiKeys",
            (Admin, "query($p: ID!) { apiKeys(projectId: $p) { id } }"),
        ),
        (
            "auditLog",
            (
                Admin,
                "query($p: ID!) { auditLog(projectId: $p) { totalCount } }",
            ),
        ),
        (
            "pipelines",
            (
                Viewer,
                "query($p: ID!) { pipelines(projectId: $p) { name } }",
            ),
        ),
        (
            "executions",
            (
                Viewer,
                "query($p: ID!) { executions(projectId: $p) { totalCount } }",
            ),
        ),
        (
            "execution",
            (Viewer, "query($e: ID!) { execution(id: $e) { id } }"),
        ),
        (
            "createProject",
            (
                GlobalAdmin,
                "mutation { createProject(input: {slug: \"matrix-new\", name: \"New\"}) { id } }",
            ),
        ),
        (
            "createApiKey",
            (
                Admin,
                "mutation($p: ID!) { createApiKey(projectId: $p, name: \"m\", role: VIEWER) { secret } }",
            ),
        ),
        (
            "revokeApiKey",
            (Admin, "mutation($k: ID!) { revokeApiKey(id: $k) { id } }"),
        ),
        (
            "startExecution",
            (
                Operator,
                "mutation($p: ID!) { startExecution(input: {projectId: $p, pipeline: \"noop\"}) { id } }",
            ),
        ),
        (
            "cancelExecution",
            (
                Operator,
                "mutation($e: ID!) { cancelExecution(id: $e) { id } }",
            ),
        ),
        (
            "retryExecution",
            (
                Operator,
                "mutation($e: ID!) { retryExecution(id: $e) { id } }",
            ),
        ),
        (
            "createPipeline",
            (
                Operator,
                "mutation($p: ID!) { createPipeline(input: {projectId: $p, name: \"matrix\", stages: [{name: \"a\", action: \"noop\"}]}) { name } }",
            ),
        ),
        (
            "deletePipeline",
            (
                Operator,
                "mutation($p: ID!) { deletePipeline(projectId: $p, name: \"matrix\") { name } }",
            ),
        ),
        (
            "workers",
            (Viewer, "query($p: ID!) { workers(projectId: $p) { id } }"),
        ),
        (
            "worker",
            (Viewer, "query($w: ID!) { worker(id: $w) { id } }"),
        ),
        (
            "registerWorker",
            (
                Admin,
                "mutation($p: ID!) { registerWorker(input: {projectId: $p, name: \"matrix\", url: \"http://127.0.0.1:9\", capabilities: [\"x\"]}) { token } }",
            ),
        ),
        (
            "deregisterWorker",
            (
                Admin,
                "mutation($w: ID!) { deregisterWorker(id: $w) { id } }",
            ),
        ),
        (
            "blueprints",
            (
                Viewer,
                "query($p: ID!) { blueprints(projectId: $p) { name } }",
            ),
        ),
        (
            "blueprint",
            (
                Viewer,
                "query($p: ID!) { blueprint(projectId: $p, name: \"redis\") { name } }",
            ),
        ),
        (
            "blueprintDependencies",
            (
                Viewer,
                "query($p: ID!) { blueprintDependencies(projectId: $p, name: \"authentik\") { name } }",
            ),
        ),
        (
            "renderBlueprint",
            (
                Viewer,
                "query($p: ID!) { renderBlueprint(projectId: $p, name: \"redis\", platform: DOCKER) { compose } }",
            ),
        ),
        (
            "upsertBlueprint",
            (
                Admin,
                "mutation($p: ID!) { upsertBlueprint(projectId: $p, yaml: \"name: matrix\\ndefaults: { image: busybox }\\n\") { name } }",
            ),
        ),
        ("backendTypes", (Viewer, "{ backendTypes { name } }")),
        (
            "backends",
            (
                Viewer,
                "query($p: ID!) { backends(projectId: $p) { totalCount } }",
            ),
        ),
        (
            "backend",
            (Viewer, "query($b: ID!) { backend(id: $b) { id } }"),
        ),
        (
            "validateService",
            (
                Operator,
                "query($p: ID!) { validateService(input: {projectId: $p, backendType: \"custom\", url: \"http://127.0.0.1:9\"}) { ok } }",
            ),
        ),
        (
            "orphanedServices",
            (
                Operator,
                "query($p: ID!) { orphanedServices(projectId: $p, platform: KUBERNETES) { name } }",
            ),
        ),
        (
            "adoptBackend",
            (
                Operator,
                "mutation($p: ID!) { adoptBackend(input: {projectId: $p, name: \"m\", url: \"http://127.0.0.1:9\"}) { id } }",
            ),
        ),
        (
            "createBackend",
            (
                Operator,
                "mutation($p: ID!) { createBackend(input: {projectId: $p, name: \"m\", backendType: \"custom\"}) { id } }",
            ),
        ),
        (
            "deleteBackend",
            (Admin, "mutation($b: ID!) { deleteBackend(id: $b) { id } }"),
        ),
        (
            "removeBackend",
            (
                Operator,
                "mutation($b: ID!) { removeBackend(id: $b) { id } }",
            ),
        ),
        (
            "promptSchema",
            (
                Viewer,
                "query($b: ID!) { promptSchema(backendId: $b) { source } }",
            ),
        ),
        (
            "prompts",
            (
                Viewer,
                "query($b: ID!) { prompts(backendId: $b) { liveError } }",
            ),
        ),
        (
            "promptVersions",
            (
                Viewer,
                "query($b: ID!) { promptVersions(backendId: $b) { totalCount } }",
            ),
        ),
        (
            "promptDiff",
            (
                Viewer,
                "query($b: ID!) { promptDiff(backendId: $b, from: 1, to: 2) { field } }",
            ),
        ),
        (
            "updatePrompts",
            (
                Operator,
                "mutation($b: ID!) { updatePrompts(backendId: $b, prompts: {}, message: \"m\") { id } }",
            ),
        ),
        (
            "rollbackPrompts",
            (
                Operator,
                "mutation($b: ID!) { rollbackPrompts(backendId: $b, version: 1) { id } }",
            ),
        ),
        (
            "bulkUpdatePrompts",
            (
                Operator,
                "mutation($p: ID!, $b: ID!) { bulkUpdatePrompts(projectId: $p, backendIds: [$b], prompts: {}) { results { backendId } } }",
            ),
        ),
        (
            "importLivePrompts",
            (
                Operator,
                "mutation($b: ID!) { importLivePrompts(backendId: $b) { id } }",
            ),
        ),
        (
            "intents",
            (
                Viewer,
                "query($p: ID!) { intents(projectId: $p) { totalCount } }",
            ),
        ),
        (
            "intent",
            (Viewer, "query($i: ID!) { intent(id: $i) { id status } }"),
        ),
        (
            "planDeployment",
            (
                Viewer,
                "query($p: ID!) { planDeployment(input: {projectId: $p, command: \"install redis\"}) { components { name } } }",
            ),
        ),
        (
            "deploy",
            (
                Operator,
                "mutation($p: ID!) { deploy(input: {projectId: $p, command: \"install redis\", dryRun: true}) { id } }",
            ),
        ),
        (
            "retryIntent",
            (Operator, "mutation($i: ID!) { retryIntent(id: $i) { id } }"),
        ),
        (
            "cancelIntent",
            (
                Operator,
                "mutation($i: ID!) { cancelIntent(id: $i) { id } }",
            ),
        ),
        (
            "rollbackIntent",
            (
                Operator,
                "mutation($i: ID!) { rollbackIntent(id: $i) { id } }",
            ),
        ),
        (
            "deleteBlueprint",
            (
                Admin,
                "mutation($p: ID!) { deleteBlueprint(projectId: $p, name: \"matrix\") { name } }",
            ),
        ),
    ])
}

/// Root field names of `type <name> { … }` in the SDL.
fn root_fields(sdl: &str, type_name: &str) -> Vec<String> {
    let start = sdl
        .find(&format!("type {type_name} {{"))
        .unwrap_or_else(|| panic!("no type {type_name} in the schema"));
    let body = &sdl[start..];
    let body = &body[body.find('{').unwrap() + 1..body.find("\n}").unwrap()];
    let mut fields = Vec::new();
    let mut depth = 0i32;
    let mut in_doc = false;
    for line in body.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("\"\"\"") {
            in_doc = !(in_doc || (trimmed.len() > 3 && trimmed.ends_with("\"\"\"")));
            continue;
        }
        if in_doc || trimmed.is_empty() || trimmed.starts_with('"') {
            continue;
        }
        if depth == 0 {
            let name: String = trimmed
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                fields.push(name);
            }
        }
        depth += trimmed.matches('(').count() as i32 - trimmed.matches(')').count() as i32;
    }
    fields
}

#[test]
fn every_schema_field_has_a_row() {
    let sdl = orchestrator_api::sdl();
    let table = table();
    let mut missing = Vec::new();
    for ty in ["QueryRoot", "MutationRoot"] {
        for field in root_fields(&sdl, ty) {
            if !table.contains_key(field.as_str()) {
                missing.push(format!("{ty}.{field}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "fields without a role in the matrix: {missing:?}"
    );
}

fn code(body: &Value) -> Option<&str> {
    body["errors"][0]["extensions"]["code"].as_str()
}

/// A managed backend row without a deployment, so `deleteBackend` has something it may
/// delete (a custom one would be `FORBIDDEN` for everyone).
async fn managed_backend_fixture(app: &orchestrator_tests::TestApp, project: &str) -> String {
    use orchestrator_entity::{BackendStatus, backends};
    use sea_orm::{ActiveModelTrait, Set};
    let now = chrono::Utc::now();
    let id = uuid::Uuid::new_v4();
    backends::ActiveModel {
        id: Set(id),
        project_id: Set(project.parse().unwrap()),
        name: Set("matrix".into()),
        backend_type: Set("managed".into()),
        status: Set(BackendStatus::Active),
        status_message: Set(None),
        url: Set(None),
        platform: Set(None),
        configuration: Set(json!({})),
        secrets: Set(None),
        intent_id: Set(None),
        drift: Set(None),
        last_checked_at: Set(None),
        prompt_schema: Set(None),
        sequence: Set(1),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&app.core.db)
    .await
    .unwrap();
    id.to_string()
}

async fn matrix(services: Services) {
    let app = spawn_app(&services).await;
    let p = app.default_project().await;
    let e = app
        .admin("mutation($p: ID!) { startExecution(input: {projectId: $p, pipeline: \"noop\"}) { id } }", json!({ "p": p }))
        .await["startExecution"]["id"]
        .clone();
    let k = app
        .admin("mutation($p: ID!) { createApiKey(projectId: $p, name: \"fixture\", role: VIEWER) { apiKey { id } } }", json!({ "p": p }))
        .await["createApiKey"]["apiKey"]["id"]
        .clone();
    let w = app
        .admin(
            "mutation($p: ID!) { registerWorker(input: {projectId: $p, name: \"fixture\", url: \"http://127.0.0.1:9\", capabilities: [\"x\"]}) { worker { id } } }",
            json!({ "p": p }),
        )
        .await["registerWorker"]["worker"]["id"]
        .clone();
    let i = app
        .admin(
            "mutation($p: ID!) { deploy(input: {projectId: $p, command: \"install redis\", dryRun: true}) { id } }",
            json!({ "p": p }),
        )
        .await["deploy"]["id"]
        .clone();
    let b = managed_backend_fixture(&app, &p).await;
    let vars = json!({ "p": p, "e": e, "k": k, "w": w, "i": i, "b": b });
    let callers: Vec<(&str, Option<String>, Need)> = vec![
        ("anonymous", None, Need::Nobody),
        (
            "viewer",
            Some(project_token("default", "viewer")),
            Need::Viewer,
        ),
        (
            "operator",
            Some(project_token("default", "operator")),
            Need::Operator,
        ),
        (
            "project admin",
            Some(project_token("default", "admin")),
            Need::Admin,
        ),
        (
            "global admin",
            Some(app.admin_token.clone()),
            Need::GlobalAdmin,
        ),
    ];
    for (field, (need, operation)) in table() {
        for (who, token, has) in &callers {
            let body = app.gql(token.as_deref(), operation, vars.clone()).await;
            let got = code(&body);
            if *has == Need::Nobody && need != Need::Nobody {
                assert_eq!(got, Some("UNAUTHENTICATED"), "{field} as {who}: {body}");
            } else if *has < need {
                assert_eq!(got, Some("FORBIDDEN"), "{field} as {who}: {body}");
            } else {
                assert!(
                    !matches!(got, Some("FORBIDDEN" | "UNAUTHENTICATED" | "INTERNAL")),
                    "{field} as {who} must be allowed: {body}"
                );
            }
        }
    }
    app.stop().await;
}

orchestrator_tests::on_all_services! {
    role_matrix => super::matrix;
}
