//! The object kinds the deployer handles, mapped to their API resources from a static table
//! rather than API discovery: the renderer emits a known, small set of kinds, and discovery
//! would cost round trips and list permissions for nothing.

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, PersistentVolumeClaim, Secret, Service};
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{ApiResource, DynamicObject};
use kube::{Api, Client};

/// A kind the deployer can apply and delete.
#[derive(Debug, Clone)]
pub(super) struct KnownKind {
    /// Group, version, kind and plural, as the API server expects them in paths.
    pub resource: ApiResource,
    /// Whether objects of the kind live in a namespace.
    pub namespaced: bool,
}

impl KnownKind {
    /// The kind's `apiVersion`, e.g. `apps/v1`.
    pub fn api_version(&self) -> &str {
        &self.resource.api_version
    }

    /// An API handle for objects of this kind in `namespace` (ignored for cluster-wide kinds).
    pub fn api(&self, client: &Client, namespace: Option<&str>) -> Api<DynamicObject> {
        match namespace {
            Some(namespace) if self.namespaced => {
                Api::namespaced_with(client.clone(), namespace, &self.resource)
            }
            _ => Api::all_with(client.clone(), &self.resource),
        }
    }
}

/// The table entry for `kind`, or `None` for a kind the deployer does not handle.
pub(super) fn known_kind(kind: &str) -> Option<KnownKind> {
    let (resource, namespaced) = match kind {
        "Namespace" => (ApiResource::erase::<Namespace>(&()), false),
        "Secret" => (ApiResource::erase::<Secret>(&()), true),
        "ConfigMap" => (ApiResource::erase::<ConfigMap>(&()), true),
        "Service" => (ApiResource::erase::<Service>(&()), true),
        "PersistentVolumeClaim" => (ApiResource::erase::<PersistentVolumeClaim>(&()), true),
        "Deployment" => (ApiResource::erase::<Deployment>(&()), true),
        "StatefulSet" => (ApiResource::erase::<StatefulSet>(&()), true),
        "Ingress" => (ApiResource::erase::<Ingress>(&()), true),
        _ => return None,
    };
    Some(KnownKind {
        resource,
        namespaced,
    })
}

/// How progress lines and errors name an object: `Deployment auth/authentik`, `Namespace auth`.
pub(super) fn describe(kind: &str, namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(namespace) => format!("{kind} {namespace}/{name}"),
        None => format!("{kind} {name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_maps_kinds_to_their_api_paths() {
        let deployment = known_kind("Deployment").unwrap();
        assert_eq!(deployment.api_version(), "apps/v1");
        assert_eq!(deployment.resource.plural, "deployments");
        assert!(deployment.namespaced);
        let ingress = known_kind("Ingress").unwrap();
        assert_eq!(ingress.api_version(), "networking.k8s.io/v1");
        let namespace = known_kind("Namespace").unwrap();
        assert!(!namespace.namespaced);
        assert!(known_kind("CronJob").is_none());
    }
}
