//! Pipelines through the API: typed and JSON definitions, validation that names the field
//! and writes nothing, and projects that cannot see each other's executions, workers or
//! pipelines (`NOT_FOUND`, exactly like a missing id).

use orchestrator_entity::pipelines;
use orchestrator_tests::engine::{create_pipeline, register_worker, stage, start, wait_ended};
use orchestrator_tests::fake_worker::{FakeWorker, default_script};
use orchestrator_tests::{Services, TestApp, on_all_services, project_token, spawn_app};
use sea_orm::{EntityTrait, PaginatorTrait};
use serde_json::{Value, json};

fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or("<none>")
}

fn field(body: &Value) -> &str {
    body["errors"][0]["extensions"]["field"]
        .as_str()
        .unwrap_or("<none>")
}

const CREATE_TYPED: &str = "mutation($p: ID!, $n: String!, $s: [PipelineStageInput!]!) {
  createPipeline(input: {projectId: $p, name: $n, stages: $s}) { name builtin stages { name action capability } } }";
const CREATE_JSON: &str = "mutation($p: ID!, $d: JSON!) {
  createPipeline(input: {projectId: $p, definition: $d}) { name definition } }";

async fn pipeline_count(app: &TestApp) -> u64 {
    pipelines::Entity::find().count(&app.core.db).await.unwrap()
}

async fn pipelines_are_defined_listed_run_and_deleted(services: Services) {
    let app = spawn_app(&services).await;
    let project = app.default_project().await;
    let typed = app.admin(CREATE_TYPED, json!({ "p": project, "n": "typed", "s": [
        { "name": "one", "action": "noop", "input": { "added": 1 } },
        { "name": "two", "action": "sleep", "input": { "ms": 5 }, "timeoutMs": 1000, "maxAttempts": 2,
          "backoff": { "initialMs": 10, "maxMs": 100 } } ] })).await;
    assert_eq!(typed["createPipeline"]["builtin"], false);
    create_pipeline(
        &app,
        &project,
        json!({ "name": "json-form", "stages": [
        { "name": "remote", "action": "remote", "capability": "granulate" } ] }),
    )
    .await;

    let data = app
        .admin(
            "query($p: ID!) { pipelines(projectId: $p) { name builtin projectId } }",
            json!({ "p": project }),
        )
        .await;
    let names: Vec<(&str, bool)> = data["pipelines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].as_str().unwrap(), p["builtin"].as_bool().unwrap()))
        .collect();
    assert_eq!(
        names,
        [
            ("noop", true),
            ("sleep", true),
            ("json-form", false),
            ("typed", false)
        ]
    );
    let builtins = app.admin("{ pipelines { name } }", json!({})).await;
    assert_eq!(
        builtins["pipelines"].as_array().unwrap().len(),
        2,
        "without a project: builtins only"
    );

    // Static stage input is merged over what the stage receives.
    let id = start(
        &app,
        &project,
        "typed",
        json!({ "from": "caller" }),
        "NORMAL",
    )
    .await;
    let done = wait_ended(&app, &id, std::time::Duration::from_secs(20)).await;
    assert_eq!(done["status"], "SUCCEEDED", "{done:#}");
    assert_eq!(
        stage(&done, "one")["input"],
        json!({ "from": "caller", "added": 1 })
    );
    assert_eq!(
        stage(&done, "two")["input"],
        json!({ "from": "caller", "added": 1, "ms": 5 })
    );
    assert_eq!(stage(&done, "two")["maxAttempts"], 2);

    let deleted = app
        .admin(
            "mutation($p: ID!) { deletePipeline(projectId: $p, name: \"typed\") { name } }",
            json!({ "p": project }),
        )
        .await;
    assert_eq!(deleted["deletePipeline"]["name"], "typed");
    assert_eq!(pipeline_count(&app).await, 1);
    // The finished execution keeps its stages; starting the deleted pipeline is refused.
    let body = app.gql(Some(&app.admin_token), "mutation($p: ID!) { startExecution(input: {projectId: $p, pipeline: \"typed\"}) { id } }",
        json!({ "p": project })).await;
    assert_eq!(
        (code(&body), field(&body)),
        ("BAD_USER_INPUT", "input.pipeline"),
        "{body}"
    );
    let body = app
        .gql(
            Some(&app.admin_token),
            "mutation($p: ID!) { deletePipeline(projectId: $p, name: \"noop\") { name } }",
            json!({ "p": project }),
        )
        .await;
    assert_eq!(
        code(&body),
        "BAD_USER_INPUT",
        "builtins cannot be deleted: {body}"
    );
    app.stop().await;
}

async fn invalid_pipelines_name_the_field_and_write_nothing(services: Services) {
    let app = spawn_app(&services).await;
    let project = app.default_project().await;
    let cases = [
        (
            json!([{ "name": "a", "action": "noop" }, { "name": "b", "action": "teleport" }]),
            "input.stages[1].action",
        ),
        (
            json!([{ "name": "a", "action": "remote" }]),
            "input.stages[0].capability",
        ),
        (
            json!([{ "name": "a", "action": "noop" }, { "name": "a", "action": "noop" }]),
            "input.stages[1].name",
        ),
        (
            json!([{ "name": "a", "action": "noop", "capability": "x" }]),
            "input.stages[0].capability",
        ),
        (
            json!([{ "name": "a", "action": "noop", "maxAttempts": 0 }]),
            "input.stages[0].maxAttempts",
        ),
        (
            json!([{ "name": "a", "action": "noop", "timeoutMs": 0 }]),
            "input.stages[0].timeoutMs",
        ),
        (
            json!([{ "name": "a", "action": "noop", "input": [1, 2] }]),
            "input.stages[0].input",
        ),
        (
            json!([{ "name": "a", "action": "noop", "backoff": { "initialMs": 10, "maxMs": 1 } }]),
            "input.stages[0].backoff",
        ),
        (json!([]), "input.stages"),
    ];
    for (stages, expected) in cases {
        let body = app
            .gql(
                Some(&app.admin_token),
                CREATE_TYPED,
                json!({ "p": project, "n": "bad", "s": stages }),
            )
            .await;
        assert_eq!(
            (code(&body), field(&body)),
            ("BAD_USER_INPUT", expected),
            "{stages}: {body}"
        );
    }
    let json_cases = [
        (
            json!({ "name": "bad", "stages": [{ "name": "a", "action": "noop", "timeoutMs": "soon" }] }),
            "input.definition.stages[0].timeoutMs",
        ),
        (
            json!({ "name": "bad", "stages": [{ "name": "a", "action": "remote" }] }),
            "input.definition.stages[0].capability",
        ),
        (
            json!({ "name": "bad", "stages": [{ "name": "a", "action": "noop" }, { "name": "a", "action": "noop" }] }),
            "input.definition.stages[1].name",
        ),
        (
            json!({ "name": "bad", "stages": [{ "name": "a", "action": "nope" }] }),
            "input.definition.stages[0].action",
        ),
        (
            json!({ "name": "has space", "stages": [{ "name": "a", "action": "noop" }] }),
            "input.definition.name",
        ),
    ];
    for (definition, expected) in json_cases {
        let body = app
            .gql(
                Some(&app.admin_token),
                CREATE_JSON,
                json!({ "p": project, "d": definition }),
            )
            .await;
        assert_eq!(
            (code(&body), field(&body)),
            ("BAD_USER_INPUT", expected),
            "{definition}: {body}"
        );
    }
    let body = app
        .gql(
            Some(&app.admin_token),
            "mutation($p: ID!) { createPipeline(input: {projectId: $p, name: \"x\"}) { name } }",
            json!({ "p": project }),
        )
        .await;
    assert_eq!(
        (code(&body), field(&body)),
        ("BAD_USER_INPUT", "input"),
        "{body}"
    );
    assert_eq!(pipeline_count(&app).await, 0, "nothing was written");

    // Names: a builtin's, or one the project already has, conflict.
    let body = app
        .gql(
            Some(&app.admin_token),
            CREATE_TYPED,
            json!({ "p": project, "n": "noop", "s": [{ "name": "a", "action": "noop" }] }),
        )
        .await;
    assert_eq!(code(&body), "CONFLICT", "{body}");
    app.admin(
        CREATE_TYPED,
        json!({ "p": project, "n": "mine", "s": [{ "name": "a", "action": "noop" }] }),
    )
    .await;
    let body = app
        .gql(
            Some(&app.admin_token),
            CREATE_TYPED,
            json!({ "p": project, "n": "mine", "s": [{ "name": "a", "action": "noop" }] }),
        )
        .await;
    assert_eq!(code(&body), "CONFLICT", "{body}");
    assert_eq!(pipeline_count(&app).await, 1);
    app.stop().await;
}

async fn other_projects_see_not_found(services: Services) {
    let app = spawn_app(&services).await;
    let a = app.default_project().await;
    app.admin(
        "mutation { createProject(input: {slug: \"team-b\", name: \"B\"}) { id } }",
        json!({}),
    )
    .await;
    let fake = FakeWorker::start("a", default_script()).await;
    let (worker_a, _) = register_worker(&app, &a, "a-worker", &fake.url(), &["granulate"], 1).await;
    create_pipeline(
        &app,
        &a,
        json!({ "name": "secret", "stages": [{ "name": "s", "action": "noop" }] }),
    )
    .await;
    let execution_a = start(&app, &a, "secret", json!({}), "NORMAL").await;
    wait_ended(&app, &execution_a, std::time::Duration::from_secs(20)).await;

    let b_admin = project_token("team-b", "admin");
    let missing = uuid::Uuid::new_v4().to_string();
    let probes: Vec<(&str, Value)> = vec![
        (
            "query($id: ID!) { execution(id: $id) { id } }",
            json!({ "id": execution_a }),
        ),
        (
            "mutation($id: ID!) { cancelExecution(id: $id) { id } }",
            json!({ "id": execution_a }),
        ),
        (
            "mutation($id: ID!) { retryExecution(id: $id) { id } }",
            json!({ "id": execution_a }),
        ),
        (
            "query($id: ID!) { worker(id: $id) { id } }",
            json!({ "id": worker_a }),
        ),
        (
            "mutation($id: ID!) { deregisterWorker(id: $id) { id } }",
            json!({ "id": worker_a }),
        ),
        (
            "query($p: ID!) { workers(projectId: $p) { id } }",
            json!({ "p": a }),
        ),
        (
            "query($p: ID!) { pipelines(projectId: $p) { name } }",
            json!({ "p": a }),
        ),
        (
            "query($p: ID!) { executions(projectId: $p) { totalCount } }",
            json!({ "p": a }),
        ),
        (
            "mutation($p: ID!) { deletePipeline(projectId: $p, name: \"secret\") { name } }",
            json!({ "p": a }),
        ),
        (
            "mutation($p: ID!) { createPipeline(input: {projectId: $p, name: \"x\", stages: [{name: \"a\", action: \"noop\"}]}) { name } }",
            json!({ "p": a }),
        ),
        (
            "mutation($p: ID!) { startExecution(input: {projectId: $p, pipeline: \"secret\"}) { id } }",
            json!({ "p": a }),
        ),
        (
            "mutation($p: ID!) { registerWorker(input: {projectId: $p, name: \"x\", url: \"http://127.0.0.1:9\", capabilities: [\"x\"]}) { token } }",
            json!({ "p": a }),
        ),
    ];
    for (query, vars) in probes {
        let foreign = app.gql(Some(&b_admin), query, vars.clone()).await;
        assert_eq!(code(&foreign), "NOT_FOUND", "{query}: {foreign}");
        // Exactly like an id that does not exist.
        let vars_missing: Value = serde_json::from_str(
            &vars
                .to_string()
                .replace(&execution_a, &missing)
                .replace(&worker_a, &missing)
                .replace(&a, &missing),
        )
        .unwrap();
        let absent = app.gql(Some(&app.admin_token), query, vars_missing).await;
        assert_eq!(
            foreign["errors"][0]["message"], absent["errors"][0]["message"],
            "{query}"
        );
    }
    // Nothing of A changed.
    let data = app
        .admin(
            "query($id: ID!) { worker(id: $id) { deregisteredAt } }",
            json!({ "id": worker_a }),
        )
        .await;
    assert!(data["worker"]["deregisteredAt"].is_null());
    assert_eq!(pipeline_count(&app).await, 1);
    app.stop().await;
}

on_all_services! {
    pipelines_crud => super::pipelines_are_defined_listed_run_and_deleted;
    pipeline_validation => super::invalid_pipelines_name_the_field_and_write_nothing;
    cross_project_not_found => super::other_projects_see_not_found;
}
