//! Reading blueprints through the GraphQL API: the builtin catalogue with its details, install
//! order, and rendering for both platforms with no variable left and every secret masked.
//! A project's own blueprints are in `project_blueprints_api.rs`, validation errors in
//! `blueprint_validation_api.rs`.

use orchestrator_tests::{Services, on_all_services, project_token, spawn_app};
use serde_json::{Value, json};

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

const ONE: &str = "query($p: ID!, $n: String!) { blueprint(projectId: $p, name: $n) { name source shadowsBuiltin currentVersion defaults { image } versions { version yaml } } }";
const LIST: &str = "query($p: ID!) { blueprints(projectId: $p) { name source shadowsBuiltin } }";
const RENDER: &str = "query($p: ID!, $n: String!, $pl: Platform!, $params: JSON) { renderBlueprint(projectId: $p, name: $n, platform: $pl, params: $params) { manifests compose warnings components { name platform manifests } } }";

fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or("<none>")
}

fn names(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].as_str().unwrap())
        .collect()
}

async fn every_builtin_is_listed_with_its_details(services: Services) {
    let app = spawn_app(&services).await;
    let p = app.default_project().await;
    let viewer = project_token("default", "viewer");
    let body = app.gql(Some(&viewer), LIST, json!({ "p": p })).await;
    let list = &body["data"]["blueprints"];
    assert_eq!(names(list), BUILTINS, "{body}");
    for bp in list.as_array().unwrap() {
        assert_eq!(bp["source"], "BUILTIN", "{bp}");
        assert_eq!(bp["shadowsBuiltin"], false, "{bp}");
    }
    let data = app
        .admin(
            "query($p: ID!) { auth: blueprints(projectId: $p, category: \"AUTH\") { name } docker: blueprints(projectId: $p, platform: DOCKER) { name } }",
            json!({ "p": p }),
        )
        .await;
    assert_eq!(names(&data["auth"]), ["authentik"]);
    assert_eq!(names(&data["docker"]).len(), BUILTINS.len());

    let data = app
        .admin(
            "query($p: ID!) { blueprint(projectId: $p, name: \"authentik\") { name category platform source currentVersion versions { version } yaml dependencies parameters { name type required default } exports { name value } ports { name port targetPort protocol } volumes { name mountPath size } healthcheck { http port } } }",
            json!({ "p": p }),
        )
        .await;
    let authentik = &data["blueprint"];
    assert_eq!(authentik["platform"], "BOTH");
    assert_eq!(authentik["dependencies"], json!(["postgresql", "redis"]));
    assert_eq!(authentik["currentVersion"], Value::Null);
    assert_eq!(authentik["versions"], json!([]));
    assert!(
        authentik["yaml"]
            .as_str()
            .unwrap()
            .starts_with("name: authentik\n")
    );
    assert!(
        authentik["parameters"].as_array().unwrap().contains(
            &json!({ "name": "log_level", "type": "STRING", "required": false, "default": "info" })
        ),
        "{authentik}"
    );
    assert_eq!(
        authentik["exports"][0],
        json!({ "name": "host", "value": "${service.host}" })
    );
    assert_eq!(
        authentik["ports"][0],
        json!({ "name": "http", "port": 9000, "targetPort": 9000, "protocol": "TCP" })
    );
    assert_eq!(authentik["volumes"][0]["mountPath"], "/media");
    assert_eq!(authentik["healthcheck"]["http"], "/-/health/live/");

    let body = app
        .gql(Some(&viewer), ONE, json!({ "p": p, "n": "no-such-thing" }))
        .await;
    assert_eq!(code(&body), "NOT_FOUND", "{body}");
    app.stop().await;
}

async fn authentik_installs_after_postgresql_and_redis(services: Services) {
    let app = spawn_app(&services).await;
    let p = app.default_project().await;
    let data = app
        .admin(
            "query($p: ID!) { blueprintDependencies(projectId: $p, name: \"authentik\") { name source } }",
            json!({ "p": p }),
        )
        .await;
    assert_eq!(
        names(&data["blueprintDependencies"]),
        ["postgresql", "redis", "authentik"]
    );
    app.stop().await;
}

/// The Secret document called `name` in multi-document YAML.
fn secret_document<'a>(manifests: &'a str, name: &str) -> &'a str {
    manifests
        .split("---\n")
        .find(|doc| doc.contains("kind: Secret") && doc.contains(&format!("name: {name}\n")))
        .unwrap_or_else(|| panic!("no Secret {name} in:\n{manifests}"))
}

async fn rendering_shows_no_variable_and_no_secret(services: Services) {
    let app = spawn_app(&services).await;
    let p = app.default_project().await;
    let viewer = project_token("default", "viewer");
    for platform in ["KUBERNETES", "DOCKER"] {
        let body = app
            .gql(
                Some(&viewer),
                RENDER,
                json!({ "p": p, "n": "authentik", "pl": platform }),
            )
            .await;
        let rendered = &body["data"]["renderBlueprint"];
        let manifests = rendered["manifests"]
            .as_str()
            .unwrap_or_else(|| panic!("{body}"));
        assert!(
            !manifests.contains("${"),
            "{platform}: a variable is left:\n{manifests}"
        );
        assert_eq!(
            names(&rendered["components"]),
            ["postgresql", "redis", "authentik"]
        );
        for component in rendered["components"].as_array().unwrap() {
            assert_eq!(component["platform"], platform);
            assert!(!component["manifests"].as_str().unwrap().contains("${"));
        }
        if platform == "KUBERNETES" {
            assert_eq!(rendered["compose"], Value::Null);
            let secret = secret_document(manifests, "authentik-secrets");
            assert!(
                secret.contains("AUTHENTIK_SECRET_KEY: <secret:authentik.secret_key>"),
                "{secret}"
            );
            let authentik = &rendered["components"][2]["manifests"].as_str().unwrap();
            assert!(
                authentik.contains(
                    "- name: AUTHENTIK_SECRET_KEY\n          valueFrom:\n            secretKeyRef:"
                ),
                "the key is referenced, never inlined:\n{authentik}"
            );
        } else {
            let compose = rendered["compose"].as_str().unwrap();
            // Only docker-compose's own `${VARIABLE}` placeholders for secrets, never a
            // blueprint variable.
            for placeholder in compose.split("${").skip(1) {
                let variable = placeholder.split('}').next().unwrap();
                assert!(
                    variable
                        .chars()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'),
                    "blueprint variable left in compose: ${{{variable}}}"
                );
            }
            assert!(
                compose.contains("AUTHENTIK_SECRET_KEY: ${AUTHENTIK_SECRET_KEY}"),
                "{compose}"
            );
        }
    }
    // A secret parameter the caller supplies never comes back, on either platform.
    let known = "sk-test-4b1d6a7c9e2f";
    for platform in ["KUBERNETES", "DOCKER"] {
        let body = app
            .gql(
                Some(&viewer),
                RENDER,
                json!({ "p": p, "n": "aaf-backend", "pl": platform, "params": { "aaf-backend": { "openai_api_key": known } } }),
            )
            .await;
        assert!(body.get("errors").is_none(), "{body}");
        assert!(
            !body.to_string().contains(known),
            "{platform} shows the secret: {body}"
        );
    }
    // Parameters are checked.
    let body = app
        .gql(
            Some(&viewer),
            RENDER,
            json!({ "p": p, "n": "authentik", "pl": "DOCKER", "params": { "authentik": { "log_levle": "debug" } } }),
        )
        .await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
    assert_eq!(body["errors"][0]["extensions"]["field"], "params", "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("log_level"),
        "{body}"
    );
    app.stop().await;
}

on_all_services! {
    every_builtin_is_listed_with_its_details => super::every_builtin_is_listed_with_its_details;
    authentik_installs_after_postgresql_and_redis => super::authentik_installs_after_postgresql_and_redis;
    rendering_shows_no_variable_and_no_secret => super::rendering_shows_no_variable_and_no_secret;
}

/// Without `projectId` the catalogue is the builtins alone (as CONTRACTS §1 names the
/// queries); any authenticated caller may read it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn builtins_are_readable_without_a_project() {
    let app = orchestrator_tests::spawn_app(&orchestrator_tests::Services::Embedded).await;
    let token = orchestrator_tests::project_token("default", "viewer");
    let body = app
        .gql(
            Some(&token),
            "{ blueprints(category: \"auth\") { name source } blueprint(name: \"redis\") { name } blueprintDependencies(name: \"authentik\") { name } renderBlueprint(name: \"redis\", platform: DOCKER) { compose } }",
            serde_json::json!({}),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    assert_eq!(body["data"]["blueprints"][0]["name"], "authentik", "{body}");
    assert_eq!(body["data"]["blueprints"][0]["source"], "BUILTIN");
    let order: Vec<&str> = body["data"]["blueprintDependencies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].as_str().unwrap())
        .collect();
    assert_eq!(order, ["postgresql", "redis", "authentik"]);
    assert!(
        body["data"]["renderBlueprint"]["compose"]
            .as_str()
            .unwrap()
            .contains("redis")
    );
    let body = app
        .gql(None, "{ blueprints { name } }", serde_json::json!({}))
        .await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
        "{body}"
    );
    app.stop().await;
}
