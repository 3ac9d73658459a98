//! Every kind of invalid blueprint sent through `upsertBlueprint`: refused with
//! `BAD_USER_INPUT`, each problem named by field, line and column in `extensions.errors`, and
//! nothing written.

use orchestrator_entity::blueprints;
use orchestrator_tests::{Services, TestApp, on_all_services, spawn_app};
use sea_orm::{EntityTrait, PaginatorTrait};
use serde_json::{Value, json};

const UPSERT: &str =
    "mutation($p: ID!, $y: String!) { upsertBlueprint(projectId: $p, yaml: $y) { name } }";

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

/// A blueprint the validation rejects, where the first problem is, and what it must say.
struct Rejected {
    what: &'static str,
    yaml: &'static str,
    field: &'static str,
    line: u64,
    says: &'static str,
}

const REJECTED: [Rejected; 7] = [
    Rejected {
        what: "YAML syntax error",
        yaml: "name: app\ndefaults: { image: busybox\nports: []\n",
        field: "defaults",
        line: 3,
        says: "expected ',' or '}'",
    },
    Rejected {
        what: "unknown key",
        yaml: "name: app\ndefaults: { image: busybox }\nportz: []\n",
        field: "portz",
        line: 3,
        says: "did you mean 'ports'",
    },
    Rejected {
        what: "wrong type",
        yaml: "name: app\ndefaults: { image: busybox, replicas: many }\n",
        field: "defaults.replicas",
        line: 2,
        says: "wrong type",
    },
    Rejected {
        what: "invalid name",
        yaml: "name: My_App\ndefaults: { image: busybox }\n",
        field: "name",
        line: 1,
        says: "lowercase",
    },
    Rejected {
        what: "port out of range",
        yaml: "name: app\ndefaults: { image: busybox }\nports:\n  - { name: http, port: 70000 }\n",
        field: "ports[0].port",
        line: 4,
        says: "65535",
    },
    Rejected {
        what: "misspelt export",
        yaml: "name: app\ndefaults: { image: busybox }\ndependencies: [redis]\nenvironment:\n  REDIS_PASSWORD: ${deps.redis.pasword}\n",
        field: "environment.REDIS_PASSWORD",
        line: 5,
        says: "did you mean 'password'",
    },
    Rejected {
        what: "unknown dependency",
        yaml: "name: app\ndefaults: { image: busybox }\ndependencies: [postgress]\n",
        field: "dependencies[0]",
        line: 3,
        says: "did you mean 'postgresql'",
    },
];

fn first_problem(body: &Value) -> &Value {
    &body["errors"][0]["extensions"]["errors"][0]
}

async fn each_validation_error_names_its_place_and_writes_nothing(services: Services) {
    let app = spawn_app(&services).await;
    let p = app.default_project().await;
    for case in REJECTED {
        let body = app
            .gql(
                Some(&app.admin_token),
                UPSERT,
                json!({ "p": p, "y": case.yaml }),
            )
            .await;
        let what = case.what;
        assert_eq!(code(&body), "BAD_USER_INPUT", "{what}: {body}");
        assert_eq!(
            body["errors"][0]["extensions"]["field"], "yaml",
            "{what}: {body}"
        );
        let problem = first_problem(&body);
        assert_eq!(problem["field"], case.field, "{what}: {body}");
        assert_eq!(problem["line"], case.line, "{what}: {body}");
        assert!(problem["column"].as_u64().is_some(), "{what}: {body}");
        let message = problem["message"].as_str().unwrap();
        assert!(message.contains(case.says), "{what}: {message}");
        let top = body["errors"][0]["message"].as_str().unwrap();
        assert!(
            top.contains(&format!("line {}", case.line)),
            "{what}: {top}"
        );
        assert_eq!(stored_rows(&app).await, 0, "{what} wrote a row");
    }
    // A cycle is reported with its full path, and nothing is written.
    for yaml in [
        "name: cyc-a\ndefaults: { image: busybox }\n",
        "name: cyc-b\ndefaults: { image: busybox }\ndependencies: [cyc-a]\n",
        "name: cyc-c\ndefaults: { image: busybox }\ndependencies: [cyc-b]\n",
    ] {
        app.admin(UPSERT, json!({ "p": p, "y": yaml })).await;
    }
    let body = app
        .gql(
            Some(&app.admin_token),
            UPSERT,
            json!({ "p": p, "y": "name: cyc-a\ndefaults: { image: busybox }\ndependencies: [cyc-c]\n" }),
        )
        .await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
    let problem = first_problem(&body);
    assert_eq!(problem["field"], "dependencies", "{body}");
    assert_eq!(problem["line"], 3, "{body}");
    assert!(
        problem["message"]
            .as_str()
            .unwrap()
            .contains("cyc-a -> cyc-c -> cyc-b -> cyc-a"),
        "{body}"
    );
    assert_eq!(stored_rows(&app).await, 3);
    app.stop().await;
}

on_all_services! {
    each_validation_error_names_its_place_and_writes_nothing => super::each_validation_error_names_its_place_and_writes_nothing;
}
