//! Tests of rendering options: TLS and ingress, workload kinds, parameters, replicas,
//! request checks and errors.

use serde_json::{Value, json};

use super::render_tests::{documents, env_var, plan, workload};
use super::{Blueprint, Catalogue, Platform, RenderError, RenderRequest, parse_blueprint, render};

#[test]
fn tls_and_ingress_with_a_domain_add_a_certificate_backed_ingress() {
    let mut request = RenderRequest::new(&["authentik"], Platform::Kubernetes);
    request.namespace = "auth".into();
    request.project = "acme".into();
    request.intent = "b7f1c9a2-0000-4000-8000-000000000042".into();
    request.domain = Some("auth.example.com".into());
    request.features.tls = true;
    request.features.ingress = true;
    let plan = plan(&request);
    let first = documents(&plan.components[0].manifests);
    assert_eq!(first[0]["kind"], "Namespace");
    assert_eq!(first[0]["metadata"]["name"], "auth");
    let docs = documents(&plan.manifests());
    let ingresses: Vec<&Value> = docs.iter().filter(|d| d["kind"] == "Ingress").collect();
    assert_eq!(ingresses.len(), 1, "only the root gets an Ingress");
    let ingress = ingresses[0];
    assert_eq!(ingress["apiVersion"], "networking.k8s.io/v1");
    assert_eq!(
        ingress["metadata"]["annotations"]["cert-manager.io/cluster-issuer"],
        "letsencrypt"
    );
    assert_eq!(
        ingress["spec"]["tls"],
        json!([{ "hosts": ["auth.example.com"], "secretName": "authentik-tls" }])
    );
    assert_eq!(ingress["spec"]["rules"][0]["host"], "auth.example.com");
    assert_eq!(
        ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"],
        json!({ "name": "authentik", "port": { "name": "http" } })
    );
    assert_eq!(
        env_var(
            workload(&documents(&plan.components[2].manifests)),
            "AUTHENTIK_POSTGRESQL__HOST"
        )["value"],
        "postgresql.auth.svc.cluster.local"
    );
    for doc in &docs {
        let labels = &doc["metadata"]["labels"];
        assert_eq!(
            labels["app.kubernetes.io/managed-by"], "orchestrator",
            "{doc}"
        );
        assert_eq!(labels["orchestrator.dev/project"], "acme");
        assert_eq!(
            labels["orchestrator.dev/intent"],
            "b7f1c9a2-0000-4000-8000-000000000042"
        );
        assert!(
            labels["app.kubernetes.io/name"].is_string()
                && labels["orchestrator.dev/blueprint"].is_string()
        );
    }
    assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
}

#[test]
fn tls_without_a_domain_warns_instead_of_rendering_an_ingress() {
    let mut request = RenderRequest::new(&["nginx"], Platform::Kubernetes);
    request.features.tls = true;
    let plan = plan(&request);
    assert!(!plan.manifests().contains("kind: Ingress"));
    assert!(
        plan.warnings[0].contains("without a domain"),
        "{:?}",
        plan.warnings
    );
    let plain = super::render(
        &Catalogue::builtin(),
        &RenderRequest::new(&["nginx"], Platform::Kubernetes),
    )
    .expect("render");
    assert!(!plain.manifests().contains("kind: Ingress") && plain.warnings.is_empty());
}

#[test]
fn volumes_make_a_stateful_set_and_stateless_apps_a_deployment() {
    let kinds = |name: &str| -> Vec<String> {
        let plan = plan(&RenderRequest::new(&[name], Platform::Kubernetes));
        documents(&plan.manifests())
            .iter()
            .map(|d| d["kind"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    assert_eq!(kinds("postgresql"), ["Secret", "StatefulSet", "Service"]);
    assert_eq!(kinds("nginx"), ["Deployment", "Service"]);
    let docs =
        documents(&plan(&RenderRequest::new(&["postgresql"], Platform::Kubernetes)).manifests());
    let claim = &workload(&docs)["spec"]["volumeClaimTemplates"][0];
    assert_eq!(claim["spec"]["resources"]["requests"]["storage"], "10Gi");
}

#[test]
fn spec_hashes_ignore_metadata_such_as_the_intent() {
    let mut request = RenderRequest::new(&["nginx"], Platform::Kubernetes);
    let first = plan(&request);
    request.intent = "another-intent".into();
    let second = plan(&request);
    assert_eq!(first.components[0].objects, second.components[0].objects);
    assert_eq!(first.components[0].objects[0].spec_hash.len(), 64);
    request.replicas = Some(3);
    let scaled = plan(&request);
    assert_ne!(
        first.components[0].objects[0].spec_hash,
        scaled.components[0].objects[0].spec_hash
    );
}

#[test]
fn parameters_override_defaults_and_replicas_apply_to_roots_only() {
    let mut request = RenderRequest::new(&["authentik"], Platform::Kubernetes);
    request.replicas = Some(3);
    request.params.insert(
        "postgresql".into(),
        [
            ("database".to_owned(), json!("authentik")),
            ("image".to_owned(), json!("registry.local/postgres:16")),
        ]
        .into(),
    );
    request.params.insert(
        "redis".into(),
        [(
            "resources".to_owned(),
            json!({ "limits": { "memory": "2Gi" } }),
        )]
        .into(),
    );
    let plan = plan(&request);
    let pg = documents(&plan.components[0].manifests);
    assert_eq!(workload(&pg)["spec"]["replicas"], 1);
    assert_eq!(
        workload(&pg)["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.local/postgres:16"
    );
    let redis = documents(&plan.components[1].manifests);
    assert_eq!(
        workload(&redis)["spec"]["template"]["spec"]["containers"][0]["resources"],
        json!({ "limits": { "memory": "2Gi" } })
    );
    let app = documents(&plan.components[2].manifests);
    assert_eq!(workload(&app)["spec"]["replicas"], 3);
    assert_eq!(
        env_var(workload(&app), "AUTHENTIK_POSTGRESQL__NAME")["value"],
        "authentik"
    );
}

#[test]
fn bad_parameters_are_explained() {
    let catalogue = Catalogue::builtin();
    let with = |bp: &str, name: &str, value: Value| {
        let mut request = RenderRequest::new(&["authentik"], Platform::Kubernetes);
        request
            .params
            .insert(bp.into(), [(name.to_owned(), value)].into());
        render(&catalogue, &request)
            .expect_err("rejected")
            .to_string()
    };
    assert_eq!(
        with("postgresql", "databse", json!("x")),
        "postgresql has no parameter 'databse'; did you mean 'database'?"
    );
    assert_eq!(
        with("postgresql", "database", json!(5)),
        "parameter 'database' of postgresql must be string, got 5"
    );
    assert!(with("authentik", "replicas", json!(-1)).contains("whole number"));
    assert!(
        with("mongodb", "user", json!("x"))
            .starts_with("parameters given for 'mongodb', which is not part of this deployment")
    );
}

#[test]
fn required_parameters_must_be_supplied() {
    let bp = parse_blueprint("name: app\ndefaults: { image: busybox }\nparameters:\n  token: { type: string, required: true, description: the token }\nenvironment:\n  TOKEN: ${token}\n").expect("valid");
    let catalogue = Catalogue::from_blueprints(vec![bp]);
    let error =
        render(&catalogue, &RenderRequest::new(&["app"], Platform::Docker)).expect_err("missing");
    assert_eq!(
        error.to_string(),
        "parameter 'token' of app is required (the token)"
    );
}

#[test]
fn an_unresolvable_variable_is_an_error_not_text() {
    // Deserialized without validation, as a blueprint stored by an older version might be.
    let bp: Blueprint = serde_norway::from_str(
        "name: app\ndefaults: { image: busybox }\nenvironment:\n  A: ${nope}\n",
    )
    .expect("yaml");
    let catalogue = Catalogue::from_blueprints(vec![bp]);
    let error = render(
        &catalogue,
        &RenderRequest::new(&["app"], Platform::Kubernetes),
    )
    .expect_err("unresolvable");
    assert!(
        matches!(error, RenderError::Unresolvable { ref field, .. } if field == "environment.A"),
        "{error}"
    );
}

#[test]
fn docker_publishes_root_ports_only() {
    let plan = plan(&RenderRequest::new(&["authentik"], Platform::Docker));
    let ports = |name: &str| {
        plan.component(name)
            .and_then(|c| c.docker.as_ref())
            .map(|c| c.ports.clone())
            .unwrap_or_default()
    };
    assert!(ports("postgresql").iter().all(|p| p.host_port.is_none()));
    assert_eq!(ports("authentik")[0].host_port, Some(9000));
}

#[test]
fn requests_are_checked() {
    let catalogue = Catalogue::builtin();
    let mut request = RenderRequest::new(&["nginx"], Platform::Kubernetes);
    request.namespace = "Bad_NS".into();
    assert!(matches!(
        render(&catalogue, &request),
        Err(RenderError::InvalidRequest(_))
    ));
    let unknown = render(
        &catalogue,
        &RenderRequest::new(&["ngnix"], Platform::Kubernetes),
    )
    .expect_err("unknown");
    assert_eq!(
        unknown.to_string(),
        "no blueprint named 'ngnix'; did you mean 'nginx'?"
    );
    let docker_only =
        parse_blueprint("name: box\nplatform: docker\ndefaults: { image: busybox }\n")
            .expect("valid");
    let catalogue = catalogue.with_overlay(vec![docker_only]);
    let error = render(
        &catalogue,
        &RenderRequest::new(&["box"], Platform::Kubernetes),
    )
    .expect_err("platform");
    assert_eq!(error.to_string(), "box cannot be deployed on kubernetes");
}
