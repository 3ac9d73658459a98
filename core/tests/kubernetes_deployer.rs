//! The Kubernetes deployer against a fake API server, one named scenario per behaviour:
//! builtin blueprints are rendered with the blueprint engine, applied and removed, and each
//! scenario checks the exact requests the API server received and what the caller was told.

#[path = "kubernetes_deployer/fake_api.rs"]
mod fake_api;
#[path = "kubernetes_deployer/harness.rs"]
mod harness;
#[path = "kubernetes_deployer/removal.rs"]
mod removal;

use std::time::Duration;

use http::Method;
use orchestrator_core::deploy::kubernetes::KubernetesDeployer;
use serde_json::json;

use harness::{APPLY, MINUTE, apply, deployer, install_crypto_provider, plan};

#[tokio::test]
async fn fresh_apply_creates_the_namespace_then_each_document_in_order() {
    let (deployer, fake) = deployer();
    let plan = plan(&["redis"], "cache", |_| {});
    let outcome = apply(&deployer, &plan, "redis", "cache", MINUTE).await;

    let report = outcome.ok();
    assert_eq!(
        fake.lines(),
        [
            "GET /api/v1/namespaces/cache (metadata)".to_owned(),
            format!("PATCH /api/v1/namespaces/cache{APPLY} <- Namespace/cache"),
            "GET /api/v1/namespaces/cache/secrets/redis-secrets (metadata)".to_owned(),
            format!(
                "PATCH /api/v1/namespaces/cache/secrets/redis-secrets{APPLY} <- Secret/redis-secrets"
            ),
            "GET /apis/apps/v1/namespaces/cache/statefulsets/redis (metadata)".to_owned(),
            format!(
                "PATCH /apis/apps/v1/namespaces/cache/statefulsets/redis{APPLY} <- StatefulSet/redis"
            ),
            "GET /api/v1/namespaces/cache/services/redis (metadata)".to_owned(),
            format!("PATCH /api/v1/namespaces/cache/services/redis{APPLY} <- Service/redis"),
            "GET /apis/apps/v1/namespaces/cache/statefulsets/redis".to_owned(),
        ]
    );
    let rendered = &plan.component("redis").unwrap().objects;
    let patches: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.method == Method::PATCH)
        .collect();
    for (patch, object) in patches.iter().zip(rendered) {
        assert_eq!(
            patch.content_type.as_deref(),
            Some("application/apply-patch+yaml")
        );
        let body = patch.body.as_ref().unwrap();
        assert_eq!(
            body["metadata"]["annotations"]["orchestrator.dev/spec-hash"],
            object.spec_hash.as_str()
        );
    }
    assert_eq!(report.objects.len(), 4);
    assert_eq!(report.changed, report.objects);
    assert!(outcome.said("applied StatefulSet cache/redis"));
    assert!(outcome.said("redis ready after"));
    outcome.assert_no_secret_of(&plan);
}

#[tokio::test]
async fn component_without_a_namespace_document_still_ensures_the_namespace() {
    let (deployer, fake) = deployer();
    let plan = plan(&["authentik"], "auth", |request| {
        request.domain = Some("auth.example.com".to_owned());
        request.features.tls = true;
    });
    let outcome = apply(&deployer, &plan, "authentik", "auth", MINUTE).await;

    outcome.ok();
    assert_eq!(
        fake.lines(),
        [
            "GET /api/v1/namespaces/auth (metadata)".to_owned(),
            format!("PATCH /api/v1/namespaces/auth{APPLY} <- Namespace/auth"),
            "GET /api/v1/namespaces/auth/secrets/authentik-secrets (metadata)".to_owned(),
            format!(
                "PATCH /api/v1/namespaces/auth/secrets/authentik-secrets{APPLY} <- Secret/authentik-secrets"
            ),
            "GET /apis/apps/v1/namespaces/auth/statefulsets/authentik (metadata)".to_owned(),
            format!(
                "PATCH /apis/apps/v1/namespaces/auth/statefulsets/authentik{APPLY} <- StatefulSet/authentik"
            ),
            "GET /api/v1/namespaces/auth/services/authentik (metadata)".to_owned(),
            format!("PATCH /api/v1/namespaces/auth/services/authentik{APPLY} <- Service/authentik"),
            "GET /apis/networking.k8s.io/v1/namespaces/auth/ingresses/authentik (metadata)"
                .to_owned(),
            format!(
                "PATCH /apis/networking.k8s.io/v1/namespaces/auth/ingresses/authentik{APPLY} <- Ingress/authentik"
            ),
            "GET /apis/apps/v1/namespaces/auth/statefulsets/authentik".to_owned(),
        ]
    );
    let namespace = fake.object("/api/v1/namespaces/auth").unwrap();
    assert_eq!(
        namespace["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "orchestrator"
    );
    let ingress = fake
        .object("/apis/networking.k8s.io/v1/namespaces/auth/ingresses/authentik")
        .unwrap();
    assert_eq!(
        ingress["metadata"]["annotations"]["cert-manager.io/cluster-issuer"],
        "letsencrypt"
    );
    assert!(outcome.said("authentik ready after"));
    outcome.assert_no_secret_of(&plan);

    // The next component finds the namespace and leaves it alone.
    fake.clear_requests();
    apply(&deployer, &plan, "redis", "auth", MINUTE).await.ok();
    let lines = fake.lines();
    assert_eq!(lines[0], "GET /api/v1/namespaces/auth (metadata)");
    assert!(
        !lines
            .iter()
            .any(|l| l.starts_with("PATCH /api/v1/namespaces/auth?")),
        "{lines:#?}"
    );
}

#[tokio::test]
async fn unchanged_component_is_only_read_and_a_change_patches_only_what_differs() {
    let (deployer, fake) = deployer();
    let first = plan(&["redis"], "cache", |_| {});
    apply(&deployer, &first, "redis", "cache", MINUTE)
        .await
        .ok();

    fake.clear_requests();
    let again = apply(&deployer, &first, "redis", "cache", MINUTE).await;
    assert!(again.ok().changed.is_empty());
    assert_eq!(again.ok().objects.len(), 4);
    assert_eq!(
        fake.lines(),
        [
            "GET /api/v1/namespaces/cache (metadata)",
            "GET /api/v1/namespaces/cache/secrets/redis-secrets (metadata)",
            "GET /apis/apps/v1/namespaces/cache/statefulsets/redis (metadata)",
            "GET /api/v1/namespaces/cache/services/redis (metadata)",
            "GET /apis/apps/v1/namespaces/cache/statefulsets/redis",
        ]
    );
    assert!(again.said("unchanged Secret cache/redis-secrets"));

    // Same secrets, two replicas: only the StatefulSet's spec differs.
    let scaled = plan(&["redis"], "cache", |request| {
        request.replicas = Some(2);
        request.secrets = first.secrets.clone();
    });
    fake.clear_requests();
    let outcome = apply(&deployer, &scaled, "redis", "cache", MINUTE).await;
    let changed: Vec<_> = outcome
        .ok()
        .changed
        .iter()
        .map(|o| o.kind.as_str())
        .collect();
    assert_eq!(changed, ["StatefulSet"]);
    let patches: Vec<_> = fake
        .lines()
        .into_iter()
        .filter(|l| l.starts_with("PATCH"))
        .collect();
    assert_eq!(
        patches,
        [format!(
            "PATCH /apis/apps/v1/namespaces/cache/statefulsets/redis{APPLY} <- StatefulSet/redis"
        )]
    );
}

const NGINX: &str = "/apis/apps/v1/namespaces/web/deployments/nginx";

#[tokio::test]
async fn rollout_waits_until_the_new_generation_is_observed() {
    let (deployer, fake) = deployer();
    let plan = plan(&["nginx"], "web", |_| {});
    let counts =
        json!({"replicas": 1, "updatedReplicas": 1, "readyReplicas": 1, "availableReplicas": 1});
    let mut stale = counts.clone();
    stale["observedGeneration"] = json!(0);
    let mut current = counts;
    current["observedGeneration"] = json!(1);
    fake.script_status(NGINX, vec![stale, current]);

    let outcome = apply(&deployer, &plan, "nginx", "web", MINUTE).await;

    outcome.ok();
    let reads: Vec<_> = fake
        .lines()
        .into_iter()
        .filter(|l| l == &format!("GET {NGINX}"))
        .collect();
    assert_eq!(reads.len(), 2, "{:#?}", fake.lines());
    assert!(outcome.said("waiting for Deployment web/nginx: 1/1 ready, 1 updated, 1 available, 1 total, generation 0 of 1 observed"));
    assert!(outcome.said("nginx ready after"));
}

#[tokio::test]
async fn rollout_that_never_finishes_fails_at_the_timeout_naming_the_workload() {
    let (deployer, fake) = deployer();
    let plan = plan(&["nginx"], "web", |_| {});
    fake.script_status(
        NGINX,
        vec![json!({"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "readyReplicas": 0, "availableReplicas": 0,
            "conditions": [
                {"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated"},
                {"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable",
                 "message": "Deployment does not have minimum availability."}]})],
    );

    let outcome = apply(&deployer, &plan, "nginx", "web", Duration::from_millis(200)).await;

    let error = outcome.err();
    assert!(!error.retryable);
    assert_eq!(
        error.message,
        "Deployment web/nginx was not ready after 0.2 s: 0/1 ready, 1 updated, 0 available, 1 total, generation 1 of 1 observed"
    );
    assert_eq!(
        error.details,
        ["Available: MinimumReplicasUnavailable: Deployment does not have minimum availability."]
    );
    let reads = fake
        .lines()
        .into_iter()
        .filter(|l| l == &format!("GET {NGINX}"))
        .count();
    assert!(reads >= 2, "polled {reads} times");
}

const REDIS_SECRET: &str = "/api/v1/namespaces/cache/secrets/redis-secrets";
const REDIS_SET: &str = "/apis/apps/v1/namespaces/cache/statefulsets/redis";

#[tokio::test]
async fn invalid_object_is_a_permanent_error_with_the_servers_message() {
    let (deployer, fake) = deployer();
    let plan = plan(&["redis"], "cache", |_| {});
    let password = plan.secrets.values().next().expect("redis has a secret");
    fake.fail(
        Method::PATCH,
        REDIS_SECRET,
        422,
        &format!("Secret \"redis-secrets\" is invalid: stringData[REDIS_PASSWORD]: Invalid value: \"{password}\": rejected"),
    );

    let outcome = apply(&deployer, &plan, "redis", "cache", MINUTE).await;

    let error = outcome.err();
    assert!(!error.retryable);
    assert!(
        error.message.starts_with(
            "applying Secret cache/redis-secrets failed: Secret \"redis-secrets\" is invalid"
        ),
        "{}",
        error.message
    );
    assert!(
        error
            .message
            .ends_with("Invalid value: \"<redacted>\": rejected (HTTP 422)"),
        "{}",
        error.message
    );
    outcome.assert_no_secret_of(&plan);
    let last = fake.lines().pop().unwrap();
    assert_eq!(
        last,
        format!("PATCH {REDIS_SECRET}{APPLY} <- Secret/redis-secrets"),
        "nothing is applied after a failure"
    );
}

#[tokio::test]
async fn unavailable_api_server_is_retryable() {
    let (deployer, fake) = deployer();
    let plan = plan(&["redis"], "cache", |_| {});
    fake.fail(
        Method::PATCH,
        REDIS_SET,
        503,
        "the server is currently unable to handle the request",
    );
    let outcome = apply(&deployer, &plan, "redis", "cache", MINUTE).await;
    let error = outcome.err();
    assert!(error.retryable);
    assert!(
        error
            .message
            .contains("applying StatefulSet cache/redis failed"),
        "{}",
        error.message
    );
    assert!(error.message.contains("HTTP 503"), "{}", error.message);

    let (deployer, fake) = self::deployer();
    fake.drop_connection(Method::GET, "/api/v1/namespaces/cache");
    let outcome = apply(&deployer, &plan, "redis", "cache", MINUTE).await;
    assert!(outcome.err().retryable, "{}", outcome.err().message);
    outcome.assert_no_secret_of(&plan);
}

#[tokio::test]
async fn configuration_comes_from_a_kubeconfig_file_and_context() {
    install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubeconfig");
    std::fs::write(
        &path,
        "apiVersion: v1\nkind: Config\ncurrent-context: dev\n\
         clusters:\n- name: dev\n  cluster: {server: 'https://127.0.0.1:6443', insecure-skip-tls-verify: true}\n\
         - name: staging\n  cluster: {server: 'https://10.0.0.1:6443', insecure-skip-tls-verify: true}\n\
         users:\n- name: ops\n  user: {token: not-a-real-token}\n\
         contexts:\n- name: dev\n  context: {cluster: dev, user: ops}\n\
         - name: staging\n  context: {cluster: staging, user: ops, namespace: apps}\n",
    )
    .unwrap();

    assert!(
        KubernetesDeployer::from_config(Some(&path), None)
            .await
            .is_ok()
    );
    assert!(
        KubernetesDeployer::from_config(Some(&path), Some("staging"))
            .await
            .is_ok()
    );
    let Err(error) = KubernetesDeployer::from_config(Some(&path), Some("prod")).await else {
        panic!("an unknown context is accepted");
    };
    assert!(!error.retryable);
    assert!(error.message.contains("prod"), "{}", error.message);
    assert!(
        !error.message.contains("not-a-real-token"),
        "{}",
        error.message
    );
    let Err(error) = KubernetesDeployer::from_config(Some(&dir.path().join("absent")), None).await
    else {
        panic!("a missing file is accepted");
    };
    assert!(
        error.message.starts_with("cannot read kubeconfig"),
        "{}",
        error.message
    );
}
