//! The remote-worker registry through the API: validated registration, the token shown once
//! (only its hash stored), health at registration, deregistration.

use orchestrator_entity::workers;
use orchestrator_tests::fake_worker::{FakeWorker, default_script};
use orchestrator_tests::{Services, on_all_services, spawn_app};
use sea_orm::{EntityTrait, PaginatorTrait};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

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

async fn worker_registration_is_validated_and_the_token_is_shown_once(services: Services) {
    let app = spawn_app(&services).await;
    let project = app.default_project().await;
    let register = "mutation($i: RegisterWorkerInput!) { registerWorker(input: $i) { token worker { id name capabilities maxConcurrent healthStatus activeStages } } }";
    let input = |url: &str, caps: Value, max: i32| json!({ "i": { "projectId": project, "name": "w", "url": url, "capabilities": caps, "maxConcurrent": max } });
    for (vars, expected) in [
        (input("ftp://127.0.0.1/x", json!(["a"]), 1), "input.url"),
        (
            input("http://user:secret@127.0.0.1:1", json!(["a"]), 1),
            "input.url",
        ),
        (input("not a url", json!(["a"]), 1), "input.url"),
        (
            input("http://127.0.0.1:1", json!([]), 1),
            "input.capabilities",
        ),
        (
            input("http://127.0.0.1:1", json!(["a", "a"]), 1),
            "input.capabilities[1]",
        ),
        (
            input("http://127.0.0.1:1", json!(["a"]), 0),
            "input.maxConcurrent",
        ),
    ] {
        let body = app
            .gql(Some(&app.admin_token), register, vars.clone())
            .await;
        assert_eq!(
            (code(&body), field(&body)),
            ("BAD_USER_INPUT", expected),
            "{vars}: {body}"
        );
        assert!(
            !body.to_string().contains("secret"),
            "credentials echoed: {body}"
        );
    }
    assert_eq!(
        workers::Entity::find().count(&app.core.db).await.unwrap(),
        0
    );

    let fake = FakeWorker::start("ok", default_script()).await;
    let data = app
        .admin(
            register,
            input(&fake.url(), json!(["granulate", "summarise"]), 3),
        )
        .await;
    let token = data["registerWorker"]["token"].as_str().unwrap();
    assert_eq!(data["registerWorker"]["worker"]["healthStatus"], "HEALTHY");
    assert_eq!(
        data["registerWorker"]["worker"]["capabilities"],
        json!(["granulate", "summarise"])
    );
    let row = workers::Entity::find()
        .one(&app.core.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        row.token_hash,
        hex::encode(Sha256::digest(token.as_bytes())),
        "only the hash is kept"
    );
    assert_ne!(row.token_hash, token);
    let body = app
        .gql(
            Some(&app.admin_token),
            register,
            input(&fake.url(), json!(["x"]), 1),
        )
        .await;
    assert_eq!(code(&body), "CONFLICT", "{body}");
    // An unreachable worker registers, but unhealthy, with the reason.
    let data = app
        .admin(
            register,
            json!({ "i": { "projectId": project, "name": "gone",
        "url": "http://127.0.0.1:9", "capabilities": ["granulate"] } }),
        )
        .await;
    assert_eq!(
        data["registerWorker"]["worker"]["healthStatus"],
        "UNHEALTHY"
    );
    // Deregistered workers leave the list and free their name.
    let id = data["registerWorker"]["worker"]["id"].as_str().unwrap();
    app.admin(
        "mutation($id: ID!) { deregisterWorker(id: $id) { deregisteredAt } }",
        json!({ "id": id }),
    )
    .await;
    let list = app.admin("query($p: ID!) { workers(projectId: $p) { name } all: workers(projectId: $p, includeDeregistered: true) { name } }",
        json!({ "p": project })).await;
    assert_eq!(list["workers"], json!([{ "name": "w" }]));
    assert_eq!(list["all"].as_array().unwrap().len(), 2);
    app.admin(
        register,
        json!({ "i": { "projectId": project, "name": "gone",
        "url": fake.url(), "capabilities": ["granulate"] } }),
    )
    .await;
    app.stop().await;
}

on_all_services! {
    worker_registration => super::worker_registration_is_validated_and_the_token_is_shown_once;
}
