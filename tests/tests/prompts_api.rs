//! Prompts through GraphQL, with the reference custom backend as a real process: updates the
//! backend really takes, refusals that store and send nothing, rollback as a new version,
//! per-field diffs, a bulk update with one backend down, drift found by the monitor and
//! cleared by an import, an update or the values coming back, and health transitions.

use std::time::Duration;

use orchestrator::Mode;
use orchestrator_tests::custom_backend::CustomBackend;
use orchestrator_tests::{Services, TestApp, custom_backend_binary, error_code, spawn_app_with};
use serde_json::{Value, json};

const VERSION: &str = "id version status error message author prompts appliedAt executionId";

async fn start_app(services: &Services) -> TestApp {
    spawn_app_with(
        services,
        Mode::Standalone,
        &[("ORCH_BACKEND_CHECK_INTERVAL_SECS", "1")],
    )
    .await
}

async fn adopt(app: &TestApp, p: &str, name: &str, url: &str) -> String {
    app.admin(
        "mutation($in: AdoptBackendInput!) { adoptBackend(input: $in) { id } }",
        json!({ "in": { "projectId": p, "name": name, "url": url } }),
    )
    .await["adoptBackend"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The values the backend holds, read from it directly.
async fn held_by(backend: &CustomBackend) -> Value {
    reqwest::get(format!("{}/api/prompts", backend.url))
        .await
        .expect("GET /api/prompts")
        .json()
        .await
        .expect("JSON prompts")
}

/// Changes the backend's prompts behind the orchestrator's back.
async fn change_directly(backend: &CustomBackend, values: &Value) {
    let status = reqwest::Client::new()
        .put(format!("{}/api/prompts", backend.url))
        .json(values)
        .send()
        .await
        .expect("PUT /api/prompts")
        .status();
    assert!(status.is_success(), "{status}");
}

fn initial() -> Value {
    Value::Object(custom_backend::initial_prompts())
}

fn with(field: &str, value: Value) -> Value {
    let mut values = initial();
    values[field] = value;
    values
}

async fn versions(app: &TestApp, b: &str) -> Value {
    app.admin(
        &format!(
            "query($b: ID!) {{ promptVersions(backendId: $b) {{ totalCount edges {{ node {{ {VERSION} }} }} }} }}"
        ),
        json!({ "b": b }),
    )
    .await["promptVersions"]
        .clone()
}

/// Waits for the version's sync execution and returns the version as it ended.
async fn settled(app: &TestApp, b: &str, version: &Value) -> Value {
    let execution = version["executionId"].as_str().expect("a sync execution");
    app.wait_execution(execution, Duration::from_secs(60)).await;
    let number = version["version"].as_i64().unwrap();
    versions(app, b).await["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"].clone())
        .find(|v| v["version"] == number)
        .expect("the version is listed")
}

async fn update(app: &TestApp, b: &str, prompts: &Value, message: &str) -> Value {
    app.gql(
        Some(&app.admin_token),
        &format!(
            "mutation($b: ID!, $v: JSON!, $m: String!) {{ updatePrompts(backendId: $b, prompts: $v, message: $m) {{ {VERSION} }} }}"
        ),
        json!({ "b": b, "v": prompts, "m": message }),
    )
    .await
}

async fn execution_count(app: &TestApp, p: &str) -> Value {
    app.admin(
        "query($p: ID!) { executions(projectId: $p) { totalCount } }",
        json!({ "p": p }),
    )
    .await["executions"]["totalCount"]
        .clone()
}

async fn backend_state(app: &TestApp, b: &str) -> Value {
    app.admin(
        "query($b: ID!) { backend(id: $b) { status statusMessage drift } }",
        json!({ "b": b }),
    )
    .await["backend"]
        .clone()
}

/// Polls the backend until its status is `status`.
async fn wait_status(app: &TestApp, b: &str, status: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let state = backend_state(app, b).await;
        if state["status"] == status {
            return state;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "backend still not {status}: {state:#}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn update_diff_and_rollback(services: Services) {
    let app = start_app(&services).await;
    let p = app.default_project().await;
    let backend = CustomBackend::start(&custom_backend_binary!(), &[]).await;
    let b = adopt(&app, &p, "support-bot", &backend.url).await;

    let schema = app
        .admin(
            "query($b: ID!) { promptSchema(backendId: $b) { source liveError fields { name label type required options default } } }",
            json!({ "b": b }),
        )
        .await["promptSchema"]
        .clone();
    assert_eq!(schema["source"], "LIVE", "{schema:#}");
    let model = &schema["fields"][2];
    assert_eq!(
        (&model["name"], &model["type"], &model["options"]),
        (
            &json!("model"),
            &json!("select"),
            &json!(["small", "large"])
        )
    );
    let before = app
        .admin(
            "query($b: ID!) { prompts(backendId: $b) { live liveError applied { version status } } }",
            json!({ "b": b }),
        )
        .await["prompts"]
        .clone();
    assert_eq!(before["live"], initial());
    assert_eq!(before["applied"]["version"], 1);

    let wanted = json!({ "main_prompt": "Answer in one sentence.", "greeting": "Hi!",
        "model": "large", "temperature": 0.2, "remember_history": false });
    let body = update(&app, &b, &wanted, "shorter answers").await;
    let v2 = &body["data"]["updatePrompts"];
    assert_eq!(
        (&v2["version"], &v2["status"], &v2["message"]),
        (&json!(2), &json!("PENDING"), &json!("shorter answers")),
        "{body:#}"
    );
    assert_eq!(v2["author"], "test-admin");
    let v2 = settled(&app, &b, v2).await;
    assert_eq!(v2["status"], "APPLIED", "{v2:#}");
    assert!(v2["appliedAt"].is_string());
    assert_eq!(
        held_by(&backend).await,
        wanted,
        "the backend holds version 2"
    );
    let now = app
        .admin(
            "query($b: ID!) { prompts(backendId: $b) { live applied { version } } }",
            json!({ "b": b }),
        )
        .await["prompts"]
        .clone();
    assert_eq!(
        (&now["live"], &now["applied"]["version"]),
        (&wanted, &json!(2))
    );

    let diff = app
        .admin(
            "query($b: ID!) { promptDiff(backendId: $b, from: 1, to: 2) { field before after kind } }",
            json!({ "b": b }),
        )
        .await["promptDiff"]
        .clone();
    let fields: Vec<&str> = diff
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "greeting",
            "main_prompt",
            "model",
            "remember_history",
            "temperature"
        ]
    );
    assert_eq!(
        diff[2],
        json!({ "field": "model", "before": "small", "after": "large", "kind": "CHANGED" })
    );

    let body = app
        .gql(
            Some(&app.admin_token),
            &format!(
                "mutation($b: ID!) {{ rollbackPrompts(backendId: $b, version: 1) {{ {VERSION} }} }}"
            ),
            json!({ "b": b }),
        )
        .await;
    let v3 = &body["data"]["rollbackPrompts"];
    assert_eq!(
        (&v3["version"], &v3["message"]),
        (&json!(3), &json!("rollback to version 1")),
        "{body:#}"
    );
    let v3 = settled(&app, &b, v3).await;
    assert_eq!(v3["status"], "APPLIED", "{v3:#}");
    assert_eq!(v3["prompts"], initial());
    assert_eq!(
        held_by(&backend).await,
        initial(),
        "the backend holds version 1's values"
    );
    let history = versions(&app, &b).await;
    assert_eq!(history["totalCount"], 3);
    let numbers: Vec<i64> = history["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["version"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, [3, 2, 1], "newest first");
    assert_eq!(
        history["edges"][1]["node"]["prompts"], wanted,
        "history is kept"
    );
    let back = app
        .admin(
            "query($b: ID!) { promptDiff(backendId: $b, from: 2, to: 3) { field kind } }",
            json!({ "b": b }),
        )
        .await["promptDiff"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(back, 5);
    let missing = app
        .gql(
            Some(&app.admin_token),
            "query($b: ID!) { promptDiff(backendId: $b, from: 1, to: 9) { field } }",
            json!({ "b": b }),
        )
        .await;
    assert_eq!(error_code(&missing), "NOT_FOUND", "{missing:#}");
    app.stop().await;
}

async fn invalid_prompts_store_and_send_nothing(services: Services) {
    let app = start_app(&services).await;
    let p = app.default_project().await;
    let backend = CustomBackend::start(&custom_backend_binary!(), &[]).await;
    let b = adopt(&app, &p, "support-bot", &backend.url).await;
    let executions_before = execution_count(&app, &p).await;
    let mut missing_required = initial();
    missing_required
        .as_object_mut()
        .unwrap()
        .remove("main_prompt");
    let cases = [
        (
            with("tone", json!("calm")),
            "prompts.tone",
            "is not a field",
        ),
        (
            with("temperature", json!("0.7")),
            "prompts.temperature",
            "must be a number",
        ),
        (
            with("model", json!("huge")),
            "prompts.model",
            "must be one of",
        ),
        (missing_required, "prompts.main_prompt", "is required"),
    ];
    for (values, field, says) in cases {
        let body = update(&app, &b, &values, "bad").await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{field}: {body:#}");
        let error = &body["errors"][0];
        assert_eq!(error["extensions"]["field"], field, "{body:#}");
        let message = error["message"].as_str().unwrap();
        assert!(
            message.contains(field) && message.contains(says),
            "{message}"
        );
    }
    assert_eq!(versions(&app, &b).await["totalCount"], 1, "nothing stored");
    assert_eq!(
        execution_count(&app, &p).await,
        executions_before,
        "no sync started"
    );
    assert_eq!(held_by(&backend).await, initial(), "nothing sent");

    app.admin(
        "mutation($b: ID!) { removeBackend(id: $b) { status } }",
        json!({ "b": b }),
    )
    .await;
    let body = update(&app, &b, &initial(), "too late").await;
    assert_eq!(error_code(&body), "CONFLICT", "{body:#}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("no longer managed"),
        "{body:#}"
    );
    app.stop().await;
}

async fn bulk_update_with_one_backend_down(services: Services) {
    let app = start_app(&services).await;
    let p = app.default_project().await;
    let bin = custom_backend_binary!();
    let up = CustomBackend::start(&bin, &[]).await;
    let mut down = CustomBackend::start(&bin, &[]).await;
    let b_up = adopt(&app, &p, "eu-bot", &up.url).await;
    let b_down = adopt(&app, &p, "us-bot", &down.url).await;
    down.stop().await;

    let refused = app
        .gql(
            Some(&app.admin_token),
            "mutation($p: ID!, $ids: [ID!]!, $v: JSON!) { bulkUpdatePrompts(projectId: $p, backendIds: $ids, prompts: $v) { execution { id } } }",
            json!({ "p": p, "ids": [b_up, b_down], "v": with("model", json!("huge")) }),
        )
        .await;
    assert_eq!(error_code(&refused), "BAD_USER_INPUT", "{refused:#}");
    let problems = refused["errors"][0]["extensions"]["errors"]
        .as_array()
        .unwrap();
    assert_eq!(problems.len(), 2, "one problem per backend: {refused:#}");
    for (problem, name) in problems.iter().zip(["eu-bot", "us-bot"]) {
        assert_eq!(problem["field"], "prompts.model");
        assert!(
            problem["message"].as_str().unwrap().contains(name),
            "{problem}"
        );
    }
    for b in [&b_up, &b_down] {
        assert_eq!(versions(&app, b).await["totalCount"], 1, "nothing stored");
    }

    let wanted = with("main_prompt", json!("Be kind."));
    let started = app
        .admin(
            "mutation($p: ID!, $ids: [ID!]!, $v: JSON!) { bulkUpdatePrompts(projectId: $p, backendIds: $ids, prompts: $v, message: \"kinder\") { execution { id pipeline progress { total } } results { backendId status error version { version status } } } }",
            json!({ "p": p, "ids": [b_up, b_down], "v": wanted }),
        )
        .await["bulkUpdatePrompts"]
        .clone();
    assert_eq!(started["execution"]["pipeline"], "prompt.bulk-sync");
    assert_eq!(started["execution"]["progress"]["total"], 2);
    let results = started["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(results[0]["backendId"], b_up.as_str());
    assert_eq!(results[1]["backendId"], b_down.as_str());
    assert!(
        results
            .iter()
            .all(|r| r["status"] == "PENDING" && r["version"]["version"] == 2)
    );

    let execution = app
        .wait_execution(
            started["execution"]["id"].as_str().unwrap(),
            Duration::from_secs(60),
        )
        .await;
    assert_eq!(execution["status"], "SUCCEEDED", "{execution:#}");
    let outcomes = execution["output"]["results"].as_array().unwrap();
    assert_eq!(outcomes.len(), 2, "{execution:#}");
    assert_eq!(outcomes[0]["backendId"], b_up.as_str());
    assert_eq!(outcomes[0]["status"], "APPLIED");
    assert_eq!(outcomes[1]["backendId"], b_down.as_str());
    assert_eq!(outcomes[1]["status"], "FAILED");
    assert!(
        outcomes[1]["error"]
            .as_str()
            .unwrap()
            .contains("PUT /api/prompts")
    );

    assert_eq!(held_by(&up).await, wanted);
    let up_v2 = &versions(&app, &b_up).await["edges"][0]["node"];
    assert_eq!(
        (&up_v2["version"], &up_v2["status"]),
        (&json!(2), &json!("APPLIED"))
    );
    let down_v2 = &versions(&app, &b_down).await["edges"][0]["node"];
    assert_eq!(
        (&down_v2["version"], &down_v2["status"]),
        (&json!(2), &json!("FAILED"))
    );
    assert!(
        down_v2["error"]
            .as_str()
            .unwrap()
            .contains("PUT /api/prompts"),
        "{down_v2:#}"
    );
    let applied = app
        .admin(
            "query($b: ID!) { prompts(backendId: $b) { live liveError applied { version } } }",
            json!({ "b": b_down }),
        )
        .await["prompts"]
        .clone();
    assert!(
        applied["live"].is_null() && applied["liveError"].is_string(),
        "{applied:#}"
    );
    assert_eq!(
        applied["applied"]["version"], 1,
        "the failed version is not applied"
    );
    app.stop().await;
}

async fn drift_and_health(services: Services) {
    let app = start_app(&services).await;
    let p = app.default_project().await;
    let mut backend = CustomBackend::start(&custom_backend_binary!(), &[]).await;
    let b = adopt(&app, &p, "support-bot", &backend.url).await;

    // Changed by hand, then changed back: drift is found, then it is gone.
    change_directly(&backend, &with("main_prompt", json!("Changed by hand."))).await;
    let drifted = wait_status(&app, &b, "DRIFTED").await;
    assert_eq!(
        drifted["drift"],
        json!([{ "field": "main_prompt", "before": "You are a helpful assistant.",
                 "after": "Changed by hand.", "kind": "changed" }]),
        "{drifted:#}"
    );
    let message = drifted["statusMessage"].as_str().unwrap();
    assert!(
        message.contains("version 1") && message.contains("main_prompt"),
        "{message}"
    );
    change_directly(&backend, &initial()).await;
    let back = wait_status(&app, &b, "ACTIVE").await;
    assert!(back["drift"].is_null(), "{back:#}");
    assert_eq!(back["statusMessage"], "prompts match version 1 again");

    // Drift accepted as it is: the live values become version 2, applied at once.
    let by_hand = with("greeting", json!("Yo."));
    change_directly(&backend, &by_hand).await;
    wait_status(&app, &b, "DRIFTED").await;
    let imported = app
        .admin(
            &format!("mutation($b: ID!) {{ importLivePrompts(backendId: $b) {{ {VERSION} }} }}"),
            json!({ "b": b }),
        )
        .await["importLivePrompts"]
        .clone();
    assert_eq!(
        (
            &imported["version"],
            &imported["status"],
            &imported["prompts"]
        ),
        (&json!(2), &json!("APPLIED"), &by_hand)
    );
    let cleared = backend_state(&app, &b).await;
    assert_eq!(cleared["status"], "ACTIVE", "{cleared:#}");
    assert!(cleared["drift"].is_null());
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        backend_state(&app, &b).await["status"],
        "ACTIVE",
        "the monitor agrees"
    );

    // Drift overwritten: applying a version clears it.
    change_directly(&backend, &with("model", json!("large"))).await;
    wait_status(&app, &b, "DRIFTED").await;
    let body = update(&app, &b, &initial(), "back to the defaults").await;
    let v3 = settled(&app, &b, &body["data"]["updatePrompts"]).await;
    assert_eq!(v3["status"], "APPLIED", "{v3:#}");
    let cleared = backend_state(&app, &b).await;
    assert_eq!(cleared["status"], "ACTIVE", "{cleared:#}");
    assert!(cleared["drift"].is_null());

    // The service goes away: unhealthy, with the reason.
    backend.stop().await;
    let down = wait_status(&app, &b, "UNHEALTHY").await;
    assert!(
        down["statusMessage"]
            .as_str()
            .unwrap()
            .contains("GET /health"),
        "{down:#}"
    );
    app.stop().await;
}

/// A sync cancelled between attempts leaves no version pending.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cancelled_sync_fails_its_version() {
    let app = start_app(&Services::Embedded).await;
    let p = app.default_project().await;
    let mut backend = CustomBackend::start(&custom_backend_binary!(), &[]).await;
    let b = adopt(&app, &p, "support-bot", &backend.url).await;
    backend.stop().await;
    let body = update(&app, &b, &with("greeting", json!("Hey.")), "while down").await;
    let version = &body["data"]["updatePrompts"];
    assert_eq!(version["status"], "PENDING", "{body:#}");
    let execution = version["executionId"].as_str().unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let stage = app
            .admin(
                "query($e: ID!) { execution(id: $e) { stages { status attempt } } }",
                json!({ "e": execution }),
            )
            .await["execution"]["stages"][0]
            .clone();
        if stage["status"] == "RETRYING" {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{stage:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.admin(
        "mutation($e: ID!) { cancelExecution(id: $e) { id } }",
        json!({ "e": execution }),
    )
    .await;
    let ended = app.wait_execution(execution, Duration::from_secs(20)).await;
    assert_eq!(ended["status"], "CANCELLED", "{ended:#}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let latest = versions(&app, &b).await["edges"][0]["node"].clone();
        if latest["status"] == "FAILED" {
            assert!(
                latest["error"]
                    .as_str()
                    .unwrap()
                    .contains("ended CANCELLED"),
                "{latest:#}"
            );
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{latest:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.stop().await;
}

orchestrator_tests::on_all_services! {
    update_diff_and_rollback => super::update_diff_and_rollback;
    invalid_prompts => super::invalid_prompts_store_and_send_nothing;
    bulk_update => super::bulk_update_with_one_backend_down;
    drift => super::drift_and_health;
}
