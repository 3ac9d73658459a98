//! Backends through GraphQL, with the reference custom backend as a real process: types and
//! their forms, `validateService` (each check failing on purpose once), adoption (refused
//! with the failing checks and nothing stored, `CONFLICT` twice), `removeBackend`, the
//! `FORBIDDEN` delete of a custom backend, `backendUpdated`, and every address class the
//! outbound guard refuses, with a canary listener proving nothing was contacted.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use orchestrator::Mode;
use orchestrator_tests::custom_backend::CustomBackend;
use orchestrator_tests::ws::{Protocol, WsClient};
use orchestrator_tests::{
    Services, TestApp, custom_backend_binary, error_code, spawn_app, spawn_app_with,
};
use serde_json::{Value, json};

const ADOPT: &str = "mutation($in: AdoptBackendInput!) { adoptBackend(input: $in) { id name status url backendType statusMessage } }";
const VALIDATE: &str = "query($in: ValidateServiceInput!) { validateService(input: $in) { ok checks { name ok skipped latencyMs message } } }";

async fn backend_count(app: &TestApp, p: &str) -> i64 {
    app.admin(
        "query($p: ID!) { backends(projectId: $p) { totalCount } }",
        json!({ "p": p }),
    )
    .await["backends"]["totalCount"]
        .as_i64()
        .unwrap()
}

async fn adopt(app: &TestApp, p: &str, name: &str, url: &str) -> Value {
    app.gql(
        Some(&app.admin_token),
        ADOPT,
        json!({ "in": { "projectId": p, "name": name, "url": url } }),
    )
    .await
}

#[tokio::test]
async fn backend_types_describe_their_forms() {
    let app = spawn_app(&Services::Embedded).await;
    let types = app
        .admin(
            "{ backendTypes { name capabilities { create adopt delete updatePrompts } features configurationFields { name type required secret } promptFields { name type } blueprint } }",
            json!({}),
        )
        .await["backendTypes"]
        .clone();
    let managed = &types[0];
    assert_eq!(managed["name"], "managed");
    assert_eq!(
        managed["capabilities"],
        json!({ "create": true, "adopt": true, "delete": true, "updatePrompts": true })
    );
    assert_eq!(managed["blueprint"], "aaf-backend");
    assert!(
        managed["configurationFields"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["secret"] == true),
        "{managed:#}"
    );
    let custom = &types[1];
    assert_eq!(custom["name"], "custom");
    assert_eq!(
        custom["capabilities"],
        json!({ "create": false, "adopt": true, "delete": false, "updatePrompts": true })
    );
    app.stop().await;
}

#[tokio::test]
async fn validate_service_reports_each_check_and_each_failure() {
    let app = spawn_app(&Services::Embedded).await;
    let p = app.default_project().await;
    let bin = custom_backend_binary!();
    let good = CustomBackend::start(&bin, &[]).await;
    let report = app
        .admin(
            VALIDATE,
            json!({ "in": { "projectId": p, "backendType": "custom", "url": good.url } }),
        )
        .await["validateService"]
        .clone();
    assert_eq!(report["ok"], true, "{report:#}");
    let names: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "reachable",
            "health",
            "prompt_management",
            "schema",
            "prompts"
        ]
    );
    assert!(report["checks"][1]["latencyMs"].is_number());

    for (breakage, check) in [
        ("health", "health"),
        ("prompt-management", "prompt_management"),
        ("schema", "schema"),
        ("prompts", "prompts"),
    ] {
        let broken = CustomBackend::start(&bin, &["--break", breakage]).await;
        let report = app
            .admin(
                VALIDATE,
                json!({ "in": { "projectId": p, "backendType": "custom", "url": broken.url } }),
            )
            .await["validateService"]
            .clone();
        assert_eq!(report["ok"], false, "{breakage}: {report:#}");
        let failed: Vec<&Value> = report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["ok"] == false && c["skipped"] == false)
            .collect();
        assert_eq!(failed.len(), 1, "{breakage}: {report:#}");
        assert_eq!(failed[0]["name"], check, "{breakage}: {report:#}");
        assert!(!failed[0]["message"].as_str().unwrap().is_empty());

        // Adopting it is refused with the failing check, and nothing is stored.
        let body = adopt(&app, &p, "broken", &broken.url).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body:#}");
        assert!(body.to_string().contains(check), "{body:#}");
        assert_eq!(backend_count(&app, &p).await, 0);
    }
    app.stop().await;
}

async fn adopt_remove_and_delete(services: Services) {
    let app = spawn_app(&services).await;
    let p = app.default_project().await;
    let service = CustomBackend::start(&custom_backend_binary!(), &[]).await;

    // Watch the project's backends while they change.
    let (mut ws, ack) = WsClient::connect(
        app.addr,
        Protocol::TransportWs,
        json!({ "Authorization": format!("Bearer {}", app.admin_token) }),
    )
    .await;
    assert_eq!(ack["type"], "connection_ack");
    ws.start(
        "b",
        "subscription($p: ID!) { backendUpdated(projectId: $p) { id status } }",
        json!({ "p": p }),
    )
    .await;

    let body = adopt(&app, &p, "support bot", &service.url).await;
    let backend = body["data"]["adoptBackend"].clone();
    assert_eq!(backend["status"], "ACTIVE", "{body:#}");
    assert_eq!(backend["backendType"], "custom");
    let id = backend["id"].as_str().unwrap().to_owned();

    // The same service twice in one project is a conflict.
    let again = adopt(&app, &p, "again", &service.url).await;
    assert_eq!(error_code(&again), "CONFLICT", "{again:#}");
    assert_eq!(backend_count(&app, &p).await, 1);

    // A custom backend is not ours to delete.
    let body = app
        .gql(
            Some(&app.admin_token),
            "mutation($b: ID!) { deleteBackend(id: $b) { id } }",
            json!({ "b": id }),
        )
        .await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body:#}");
    assert!(body.to_string().contains("removeBackend"), "{body:#}");

    // Stop managing it: the service keeps running untouched, and can be adopted again.
    let removed = app
        .admin(
            "mutation($b: ID!) { removeBackend(id: $b) { status url } }",
            json!({ "b": id }),
        )
        .await["removeBackend"]
        .clone();
    assert_eq!(removed["status"], "REMOVED");
    assert!(removed["url"].is_null());
    let health: Value = reqwest::get(format!("{}/health", service.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "healthy");
    assert_eq!(backend_count(&app, &p).await, 0);
    let readopted = adopt(&app, &p, "support bot", &service.url).await;
    assert_eq!(
        readopted["data"]["adoptBackend"]["status"], "ACTIVE",
        "{readopted:#}"
    );

    let mut seen = Vec::new();
    while seen.len() < 3 {
        let msg = ws.next_message(Duration::from_secs(10)).await;
        assert_eq!(msg["type"], "next", "{msg}");
        let item = &msg["payload"]["data"]["backendUpdated"];
        seen.push(format!(
            "{} {}",
            item["id"].as_str().unwrap() == id,
            item["status"]
        ));
    }
    assert_eq!(
        seen,
        ["true \"ACTIVE\"", "true \"REMOVED\"", "false \"ACTIVE\""],
        "{seen:?}"
    );

    // Another project's caller cannot see it.
    app.admin(
        "mutation { createProject(input: {slug: \"other\", name: \"Other\"}) { id } }",
        json!({}),
    )
    .await;
    let outsider = orchestrator_tests::project_token("other", "admin");
    let body = app
        .gql(
            Some(&outsider),
            "query($b: ID!) { backend(id: $b) { id } }",
            json!({ "b": readopted["data"]["adoptBackend"]["id"] }),
        )
        .await;
    assert_eq!(error_code(&body), "NOT_FOUND", "{body:#}");
    app.stop().await;
}

orchestrator_tests::on_all_services! {
    lifecycle => super::adopt_remove_and_delete;
}

/// A TCP listener that counts the connections it accepts.
async fn canary() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    tokio::spawn(async move {
        while let Ok((_socket, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });
    (format!("http://127.0.0.1:{port}"), hits)
}

#[tokio::test]
async fn the_outbound_guard_refuses_every_forbidden_address_without_contacting_it() {
    // An API process as deployed: no loopback or private addresses allowed.
    let app = spawn_app_with(
        &Services::Embedded,
        Mode::Standalone,
        &[("ORCH_OUTBOUND_ALLOW", "none")],
    )
    .await;
    let p = app.default_project().await;
    let (loopback, hits) = canary().await;
    let localhost = loopback.replace("127.0.0.1", "localhost");
    let cases = [
        (loopback.as_str(), "loopback"),
        (localhost.as_str(), "loopback"),
        ("http://[::1]:9/", "loopback"),
        ("http://169.254.169.254/latest/meta-data", "never"),
        ("http://[fd00:ec2::254]/", "never"),
        ("http://10.1.2.3:8080", "private"),
        ("http://192.168.1.10", "private"),
        ("http://172.16.0.1", "private"),
        ("http://100.64.0.1", "100.64"),
        ("http://0.0.0.0:80", "unspecified"),
        ("http://[::ffff:127.0.0.1]:9", "loopback"),
        ("http://user:secret@example.com", "credentials"),
        ("ftp://example.com/", "scheme"),
        ("file:///etc/passwd", "scheme"),
    ];
    for (url, _class) in cases {
        for (query, vars) in [
            (
                ADOPT,
                json!({ "in": { "projectId": p, "name": "x", "url": url } }),
            ),
            (
                "mutation($p: ID!, $u: String!) { registerWorker(input: {projectId: $p, name: \"w\", url: $u, capabilities: [\"x\"]}) { token } }",
                json!({ "p": p, "u": url }),
            ),
        ] {
            let body = app.gql(Some(&app.admin_token), query, vars).await;
            assert_eq!(error_code(&body), "BAD_USER_INPUT", "{url}: {body:#}");
            assert_eq!(
                body["errors"][0]["extensions"]["field"], "input.url",
                "{url}: {body:#}"
            );
        }
        // validateService refuses the URL, or reports the refusal as a failed first check.
        let body = app
            .gql(
                Some(&app.admin_token),
                VALIDATE,
                json!({ "in": { "projectId": p, "backendType": "custom", "url": url } }),
            )
            .await;
        if body.get("errors").is_some() {
            assert_eq!(error_code(&body), "BAD_USER_INPUT", "{url}: {body:#}");
        } else {
            let report = &body["data"]["validateService"];
            assert_eq!(report["ok"], false, "{url}: {report:#}");
            assert_eq!(report["checks"][0]["name"], "reachable");
            assert_eq!(report["checks"][0]["ok"], false, "{url}: {report:#}");
        }
    }
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "a refused address was contacted"
    );
    assert_eq!(backend_count(&app, &p).await, 0);
    app.stop().await;
}
