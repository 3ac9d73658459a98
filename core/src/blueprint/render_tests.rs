//! Tests of rendering: dependency wiring and secrets on both platforms, for every builtin.
//! The helpers here are shared with [`super::render_options_tests`].

use serde::Deserialize;
use serde_json::{Value, json};

use super::{Catalogue, Platform, RenderRequest, RenderedPlan, parse_blueprint, render};

pub(super) fn plan(request: &RenderRequest) -> RenderedPlan {
    render(&Catalogue::builtin(), request).unwrap_or_else(|e| panic!("render failed: {e}"))
}

pub(super) fn documents(text: &str) -> Vec<Value> {
    serde_norway::Deserializer::from_str(text)
        .map(|doc| Value::deserialize(doc).expect("valid YAML document"))
        .collect()
}

pub(super) fn document<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in {docs:#?}"))
}

pub(super) fn env_var<'a>(workload: &'a Value, name: &str) -> &'a Value {
    let env = workload["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .expect("env");
    env.iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("no env {name}"))
}

pub(super) fn workload(docs: &[Value]) -> &Value {
    docs.iter()
        .find(|d| d["kind"] == "Deployment" || d["kind"] == "StatefulSet")
        .expect("a workload")
}

#[test]
fn authentik_on_kubernetes_is_wired_to_its_dependencies() {
    let plan = plan(&RenderRequest::new(&["authentik"], Platform::Kubernetes));
    let names: Vec<&str> = plan.components.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["postgresql", "redis", "authentik"]);
    let docs = documents(&plan.component("authentik").expect("authentik").manifests);
    let app = workload(&docs);
    assert_eq!(
        env_var(app, "AUTHENTIK_POSTGRESQL__HOST")["value"],
        "postgresql.default.svc.cluster.local"
    );
    assert_eq!(env_var(app, "AUTHENTIK_POSTGRESQL__PORT")["value"], "5432");
    assert_eq!(env_var(app, "AUTHENTIK_POSTGRESQL__NAME")["value"], "app");
    assert_eq!(
        env_var(app, "AUTHENTIK_REDIS__HOST")["value"],
        "redis.default.svc.cluster.local"
    );
    for secret_env in [
        "AUTHENTIK_SECRET_KEY",
        "AUTHENTIK_POSTGRESQL__PASSWORD",
        "AUTHENTIK_REDIS__PASSWORD",
    ] {
        let var = env_var(app, secret_env);
        assert_eq!(var.get("value"), None, "{secret_env} must not be literal");
        assert_eq!(
            var["valueFrom"]["secretKeyRef"],
            json!({ "name": "authentik-secrets", "key": secret_env })
        );
    }
    let secret_key = &plan.secrets["authentik.secret_key"];
    let stored = &document(&docs, "Secret")["stringData"];
    assert_eq!(stored["AUTHENTIK_SECRET_KEY"], secret_key.as_str());
    assert_eq!(
        stored["AUTHENTIK_POSTGRESQL__PASSWORD"],
        plan.secrets["postgresql.password"].as_str()
    );
    let app_text = serde_json::to_string(app).expect("json");
    assert!(
        !app_text.contains(secret_key.as_str()),
        "secret key leaked into the workload"
    );
    assert!(
        !plan.preview().contains(secret_key.as_str()),
        "preview must mask secrets"
    );
}

#[test]
fn authentik_on_docker_is_wired_and_keeps_secrets_out_of_the_plan() {
    let plan = plan(&RenderRequest::new(&["authentik"], Platform::Docker));
    let docker = plan.docker.as_ref().expect("docker plan");
    assert_eq!(
        docker.start_order,
        [
            "default-default-postgresql",
            "default-default-redis",
            "default-default-authentik"
        ]
    );
    let app = plan
        .component("authentik")
        .and_then(|c| c.docker.as_ref())
        .expect("container");
    assert!(app.env.contains(&(
        "AUTHENTIK_POSTGRESQL__HOST".into(),
        "default-default-postgresql".into()
    )));
    assert!(
        app.secret_env
            .contains(&("AUTHENTIK_SECRET_KEY".into(), "authentik.secret_key".into()))
    );
    assert!(app.secret_env.contains(&(
        "AUTHENTIK_POSTGRESQL__PASSWORD".into(),
        "postgresql.password".into()
    )));
    assert_eq!(app.command.as_deref(), Some(&["server".to_owned()][..]));
    assert_eq!(
        app.depends_on,
        ["default-default-postgresql", "default-default-redis"]
    );
    let compose: Value =
        serde_norway::from_str(plan.compose.as_deref().expect("compose")).expect("compose YAML");
    let service = &compose["services"]["authentik"];
    assert_eq!(
        service["depends_on"]["postgresql"]["condition"],
        "service_healthy"
    );
    assert_eq!(
        service["environment"]["AUTHENTIK_SECRET_KEY"],
        "${AUTHENTIK_SECRET_KEY}"
    );
    assert_eq!(
        service["environment"]["AUTHENTIK_POSTGRESQL__PASSWORD"],
        "${POSTGRESQL_PASSWORD}"
    );
    assert_eq!(
        compose["networks"]["orchestrator"]["name"],
        "default-default"
    );
    assert_eq!(
        compose["volumes"]["postgresql-data"]["name"],
        "default-default-postgresql-data"
    );
}

#[test]
fn every_builtin_renders_on_both_platforms_without_variables_or_leaked_secrets() {
    let catalogue = Catalogue::builtin();
    for name in catalogue.names() {
        for platform in [Platform::Kubernetes, Platform::Docker] {
            let plan = render(&catalogue, &RenderRequest::new(&[name], platform))
                .unwrap_or_else(|e| panic!("{name}/{platform}: {e}"));
            let mut outputs = vec![plan.manifests(), plan.preview()];
            outputs.extend(
                plan.docker
                    .iter()
                    .map(|d| serde_json::to_string(d).expect("json")),
            );
            for text in &outputs {
                assert!(
                    !text.contains("${"),
                    "{name}/{platform}: unresolved variable in\n{text}"
                );
            }
            for component in &plan.components {
                assert!(
                    !component.objects.is_empty(),
                    "{name}/{platform}: {} tracks no objects",
                    component.name
                );
            }
            let secrets: Vec<&String> = plan.secrets.values().filter(|v| !v.is_empty()).collect();
            let non_secret_docs: Vec<Value> = documents(&plan.manifests())
                .into_iter()
                .filter(|d| d["kind"] != "Secret")
                .collect();
            let visible = [
                serde_json::to_string(&non_secret_docs).expect("json"),
                outputs[1].clone(),
                outputs.get(2).cloned().unwrap_or_default(),
            ];
            for secret in secrets {
                for text in &visible {
                    assert!(
                        !text.contains(secret.as_str()),
                        "{name}/{platform}: a secret value is visible"
                    );
                }
            }
            if let Some(compose) = &plan.compose {
                assert_compose_placeholders_are_secrets(name, compose, &plan);
            }
        }
    }
}

/// Every `${…}` left in a compose file is a placeholder for a secret of the plan.
fn assert_compose_placeholders_are_secrets(name: &str, compose: &str, plan: &RenderedPlan) {
    let allowed: Vec<String> = plan
        .secrets
        .keys()
        .map(|k| super::compose::secret_variable(k))
        .collect();
    let unescaped = compose.replace("$$", "");
    for piece in unescaped.split("${").skip(1) {
        let variable = piece.split('}').next().unwrap_or_default();
        assert!(
            allowed.iter().any(|a| a == variable),
            "{name}: compose has ${{{variable}}}, which is no secret"
        );
    }
    for value in plan.secrets.values().filter(|v| !v.is_empty()) {
        assert!(
            !compose.contains(value.as_str()),
            "{name}: secret value in compose"
        );
    }
}

#[test]
fn re_rendering_with_the_returned_secrets_is_identical() {
    for platform in [Platform::Kubernetes, Platform::Docker] {
        let mut request = RenderRequest::new(&["authentik", "mongodb", "aaf-backend"], platform);
        let first = plan(&request);
        let key = &first.secrets["authentik.secret_key"];
        assert_eq!(key.len(), 32);
        assert!(
            key.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            "{key}"
        );
        request.secrets = first.secrets.clone();
        let second = plan(&request);
        assert_eq!(first.manifests(), second.manifests());
        assert_eq!(first.compose, second.compose);
        assert_eq!(first.secrets, second.secrets);
        let fresh = plan(&RenderRequest::new(&["authentik"], platform));
        assert_ne!(
            fresh.secrets["authentik.secret_key"],
            first.secrets["authentik.secret_key"]
        );
    }
}

#[test]
fn values_mixing_secrets_and_text_travel_as_secrets() {
    let app = parse_blueprint("name: app\ndefaults: { image: busybox }\ndependencies: [redis]\nenvironment:\n  REDIS_URL: ${deps.redis.url}\n").expect("valid");
    let catalogue = Catalogue::builtin().with_overlay(vec![app]);
    let docker =
        render(&catalogue, &RenderRequest::new(&["app"], Platform::Docker)).expect("render");
    let container = docker
        .component("app")
        .and_then(|c| c.docker.as_ref())
        .expect("container");
    assert_eq!(
        container.secret_env,
        [("REDIS_URL".to_owned(), "app.env.REDIS_URL".to_owned())]
    );
    let password = &docker.secrets["redis.password"];
    assert_eq!(
        docker.secrets["app.env.REDIS_URL"],
        format!("redis://:{password}@default-default-redis:6379/0")
    );
    let compose = docker.compose.as_deref().expect("compose");
    assert!(
        compose.contains("REDIS_URL: redis://:${REDIS_PASSWORD}@default-default-redis:6379/0"),
        "{compose}"
    );
    let k8s = render(
        &catalogue,
        &RenderRequest::new(&["app"], Platform::Kubernetes),
    )
    .expect("render");
    let docs = documents(&k8s.component("app").expect("app").manifests);
    let url = document(&docs, "Secret")["stringData"]["REDIS_URL"]
        .as_str()
        .expect("url")
        .to_owned();
    assert_eq!(
        url,
        format!(
            "redis://:{}@redis.default.svc.cluster.local:6379/0",
            k8s.secrets["redis.password"]
        )
    );
}

#[test]
fn secret_parameters_are_kept_as_secrets_and_reused() {
    let mut request = RenderRequest::new(&["aaf-backend"], Platform::Docker);
    request.params.insert(
        "aaf-backend".into(),
        [("openai_api_key".to_owned(), json!("sk-test-123"))].into(),
    );
    let first = plan(&request);
    let container = first.components[0].docker.as_ref().expect("container");
    assert!(container.secret_env.contains(&(
        "OPENAI_API_KEY".into(),
        "aaf-backend.param.openai_api_key".into()
    )));
    assert!(
        !first
            .compose
            .as_deref()
            .unwrap_or_default()
            .contains("sk-test-123")
    );
    let mut again = RenderRequest::new(&["aaf-backend"], Platform::Kubernetes);
    again.secrets = first.secrets.clone();
    let second = plan(&again);
    let docs = documents(&second.manifests());
    assert_eq!(
        document(&docs, "Secret")["stringData"]["OPENAI_API_KEY"],
        "sk-test-123"
    );
    assert!(
        !serde_json::to_string(workload(&docs))
            .expect("json")
            .contains("sk-test-123")
    );
}
