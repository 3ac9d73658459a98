//! Removal scenarios: deletes in the caller's order, objects already gone, namespaces kept,
//! volume claims kept unless asked for.

use orchestrator_core::deploy::RecordedObject;
use orchestrator_core::deploy::kubernetes::KubernetesDeployer;
use serde_json::json;

use super::fake_api::FakeApi;
use super::harness::{MINUTE, apply, deployer, plan, remove};
use super::{REDIS_SECRET, REDIS_SET};

/// Applies redis in `cache`, and adds the claim its StatefulSet controller would create.
async fn installed_redis(deployer: &KubernetesDeployer, fake: &FakeApi) -> Vec<RecordedObject> {
    let plan = plan(&["redis"], "cache", |_| {});
    let report = apply(deployer, &plan, "redis", "cache", MINUTE)
        .await
        .result
        .unwrap();
    let labels = json!({"app.kubernetes.io/name": "redis", "orchestrator.dev/project": "demo",
                        "app.kubernetes.io/managed-by": "orchestrator"});
    fake.insert(
        "/api/v1/namespaces/cache/persistentvolumeclaims/data-redis-0",
        json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
               "metadata": {"name": "data-redis-0", "namespace": "cache", "labels": labels}}),
    );
    fake.clear_requests();
    // The caller passes the newest first.
    report
        .objects
        .iter()
        .rev()
        .map(|o| RecordedObject {
            kind: o.kind.clone(),
            name: o.name.clone(),
            namespace: o.namespace.clone(),
        })
        .collect()
}

const CLAIMS: &str = "/api/v1/namespaces/cache/persistentvolumeclaims";
const LIST_REDIS_CLAIMS: &str = "?labelSelector=app.kubernetes.io/managed-by=orchestrator,app.kubernetes.io/name=redis (metadata)";

#[tokio::test]
async fn remove_deletes_in_the_given_order_and_keeps_claims_and_namespace() {
    let (deployer, fake) = deployer();
    let objects = installed_redis(&deployer, &fake).await;
    fake.forget(REDIS_SECRET);

    let outcome = remove(&deployer, &objects, false).await;

    outcome.ok();
    assert_eq!(
        fake.lines(),
        [
            "DELETE /api/v1/namespaces/cache/services/redis".to_owned(),
            format!("DELETE {REDIS_SET}"),
            format!("GET {CLAIMS}{LIST_REDIS_CLAIMS}"),
            format!("DELETE {REDIS_SECRET}"),
        ]
    );
    assert!(outcome.said("kept volume claim cache/data-redis-0"));
    assert!(outcome.said("Secret cache/redis-secrets was already gone"));
    assert!(outcome.said("kept Namespace cache"));
    assert!(fake.object(&format!("{CLAIMS}/data-redis-0")).is_some());
    assert!(fake.object("/api/v1/namespaces/cache").is_some());
}

#[tokio::test]
async fn remove_with_volumes_deletes_the_claims_too() {
    let (deployer, fake) = deployer();
    let mut objects = installed_redis(&deployer, &fake).await;
    objects.insert(
        0,
        RecordedObject {
            kind: "PersistentVolumeClaim".to_owned(),
            name: "scratch".to_owned(),
            namespace: Some("cache".to_owned()),
        },
    );

    let outcome = remove(&deployer, &objects, true).await;

    outcome.ok();
    assert_eq!(
        fake.lines(),
        [
            format!("DELETE {CLAIMS}/scratch"),
            "DELETE /api/v1/namespaces/cache/services/redis".to_owned(),
            format!("DELETE {REDIS_SET}"),
            format!("GET {CLAIMS}{LIST_REDIS_CLAIMS}"),
            format!("DELETE {CLAIMS}/data-redis-0"),
            format!("DELETE {REDIS_SECRET}"),
        ]
    );
    assert!(outcome.said("PersistentVolumeClaim cache/scratch was already gone"));
    assert!(outcome.said("deleted PersistentVolumeClaim cache/data-redis-0"));
    assert!(fake.object("/api/v1/namespaces/cache").is_some());
}
