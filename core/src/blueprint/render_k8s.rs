//! Kubernetes rendering: typed `k8s_openapi` objects per component — Namespace (first
//! component only), Secret, Deployment or StatefulSet, Service, Ingress — serialized as
//! multi-document YAML. Every object carries the orchestrator's labels.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Namespace, Secret, Service, ServicePort, ServiceSpec};
use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressRule,
    IngressServiceBackend, IngressSpec, IngressTLS, ServiceBackendPort,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::{Metadata, Resource};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::component::Component;
use super::k8s_workload::{Workload, container, selector_labels, workload};
use super::model::Platform;
use super::render::{ObjectRef, RenderError, RenderRequest, RenderedComponent};

/// Namespaces the orchestrator uses but never creates (and so never deletes).
const SYSTEM_NAMESPACES: [&str; 4] = ["default", "kube-system", "kube-public", "kube-node-lease"];

/// Labels on every object of `component`.
pub(crate) fn object_labels(request: &RenderRequest, component: &str) -> BTreeMap<String, String> {
    let mut labels = deployment_labels(request);
    labels.insert("app.kubernetes.io/name".to_owned(), component.to_owned());
    labels.insert(
        "orchestrator.dev/blueprint".to_owned(),
        component.to_owned(),
    );
    labels
}

/// Labels on objects shared by all components of a deployment (a Docker network).
pub(crate) fn deployment_labels(request: &RenderRequest) -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            "app.kubernetes.io/managed-by".to_owned(),
            "orchestrator".to_owned(),
        ),
        (
            "orchestrator.dev/project".to_owned(),
            request.project.clone(),
        ),
        ("orchestrator.dev/intent".to_owned(), request.intent.clone()),
    ])
}

/// SHA-256 (hex) of a serialized object without its `metadata`.
pub(crate) fn spec_hash(value: &impl Serialize) -> Result<String, RenderError> {
    let mut json = serde_json::to_value(value).map_err(|e| RenderError::Serialize {
        what: "object".into(),
        message: e.to_string(),
    })?;
    if let Some(object) = json.as_object_mut() {
        object.remove("metadata");
    }
    let bytes = serde_json::to_vec(&json).map_err(|e| RenderError::Serialize {
        what: "object".into(),
        message: e.to_string(),
    })?;
    Ok(hex::encode(Sha256::digest(bytes)))
}

pub(crate) fn to_yaml(value: &impl Serialize, what: &str) -> Result<String, RenderError> {
    serde_norway::to_string(value).map_err(|e| RenderError::Serialize {
        what: what.to_owned(),
        message: e.to_string(),
    })
}

/// Collects the documents and object references of one component.
#[derive(Default)]
struct Documents {
    manifests: Vec<String>,
    preview: Vec<String>,
    objects: Vec<ObjectRef>,
}

impl Documents {
    fn add<K>(&mut self, object: &K, preview: Option<&K>) -> Result<(), RenderError>
    where
        K: Resource + Metadata<Ty = ObjectMeta> + Serialize,
    {
        let meta = object.metadata();
        let name = meta.name.clone().unwrap_or_default();
        let text = to_yaml(object, K::KIND)?;
        self.preview.push(match preview {
            Some(preview) => to_yaml(preview, K::KIND)?,
            None => text.clone(),
        });
        self.manifests.push(text);
        self.objects.push(ObjectRef {
            api_version: K::API_VERSION.to_owned(),
            kind: K::KIND.to_owned(),
            name,
            namespace: meta.namespace.clone(),
            spec_hash: spec_hash(object)?,
        });
        Ok(())
    }
}

/// Renders every component for Kubernetes. `secrets` must hold every key the components
/// reference (the variable pass generated the missing ones).
pub(crate) fn render_kubernetes(
    components: &[Component<'_>],
    request: &RenderRequest,
    secrets: &BTreeMap<String, String>,
    warnings: &mut Vec<String>,
) -> Result<Vec<RenderedComponent>, RenderError> {
    let ingress_root = ingress_root(components, request, warnings);
    let mut rendered = Vec::with_capacity(components.len());
    for (index, component) in components.iter().enumerate() {
        let name = component.name();
        let labels = object_labels(request, name);
        let meta = |object_name: String| ObjectMeta {
            name: Some(object_name),
            namespace: Some(request.namespace.clone()),
            labels: Some(labels.clone()),
            ..Default::default()
        };
        let mut docs = Documents::default();
        if index == 0 && !SYSTEM_NAMESPACES.contains(&request.namespace.as_str()) {
            let namespace = Namespace {
                metadata: ObjectMeta {
                    name: Some(request.namespace.clone()),
                    labels: Some(labels.clone()),
                    ..Default::default()
                },
                ..Default::default()
            };
            docs.add(&namespace, None)?;
        }
        let secret_name = format!("{name}-secrets");
        let mut pod_annotations = BTreeMap::new();
        let secret_env: Vec<_> = component
            .env
            .iter()
            .filter(|(_, value)| value.is_secret())
            .collect();
        if !secret_env.is_empty() {
            let data: BTreeMap<String, String> = secret_env
                .iter()
                .map(|(key, value)| (key.clone(), value.reveal(secrets)))
                .collect();
            let masked = secret_env
                .iter()
                .map(|(key, value)| (key.clone(), value.masked()))
                .collect();
            let secret = Secret {
                metadata: meta(secret_name.clone()),
                string_data: Some(data),
                type_: Some("Opaque".to_owned()),
                ..Default::default()
            };
            let preview = Secret {
                string_data: Some(masked),
                ..secret.clone()
            };
            // Pods restart when a secret value changes; the hash reveals nothing.
            pod_annotations.insert(
                "orchestrator.dev/secret-hash".to_owned(),
                spec_hash(&secret)?,
            );
            docs.add(&secret, Some(&preview))?;
        }
        let mut pod_labels = selector_labels(name, &request.project);
        pod_labels.insert(
            "app.kubernetes.io/managed-by".to_owned(),
            "orchestrator".to_owned(),
        );
        pod_labels.insert("orchestrator.dev/blueprint".to_owned(), name.to_owned());
        let container = container(component, &secret_name);
        match workload(
            component,
            meta(name.to_owned()),
            pod_labels,
            pod_annotations,
            container,
            &request.project,
        ) {
            Workload::Deployment(deployment) => docs.add(deployment.as_ref(), None)?,
            Workload::StatefulSet(set) => docs.add(set.as_ref(), None)?,
        }
        if !component.ports.is_empty() {
            docs.add(
                &service(component, meta(name.to_owned()), &request.project),
                None,
            )?;
        }
        if ingress_root == Some(index) {
            docs.add(&ingress(component, meta(name.to_owned()), request), None)?;
        }
        rendered.push(RenderedComponent {
            name: name.to_owned(),
            platform: Platform::Kubernetes,
            manifests: docs.manifests.join("---\n"),
            preview: docs.preview.join("---\n"),
            objects: docs.objects,
            exports: component
                .exports
                .iter()
                .map(|(k, v)| (k.clone(), v.masked()))
                .collect(),
            docker: None,
        });
    }
    Ok(rendered)
}

/// The index of the root that gets the Ingress, if TLS or ingress was asked for and
/// possible; otherwise explains why not in `warnings`.
fn ingress_root(
    components: &[Component<'_>],
    request: &RenderRequest,
    warnings: &mut Vec<String>,
) -> Option<usize> {
    let features = request.features;
    if !features.tls && !features.ingress {
        return None;
    }
    if request.domain.is_none() {
        warnings.push("TLS/ingress was requested without a domain; no Ingress was created (add \"on domain <host>\")".to_owned());
        return None;
    }
    let mut roots = components
        .iter()
        .enumerate()
        .filter(|(_, c)| c.is_root && !c.ports.is_empty());
    let (index, chosen) = roots.next()?;
    for (_, other) in roots {
        warnings.push(format!(
            "only {} gets the Ingress for the domain; {} is reachable inside the cluster",
            chosen.name(),
            other.name()
        ));
    }
    Some(index)
}

fn service(component: &Component<'_>, metadata: ObjectMeta, project: &str) -> Service {
    let ports = component
        .ports
        .iter()
        .map(|port| ServicePort {
            name: Some(port.name.clone()),
            port: i32::try_from(port.port).unwrap_or(i32::MAX),
            target_port: Some(IntOrString::String(port.name.clone())),
            protocol: Some(port.protocol.as_str().to_owned()),
            ..Default::default()
        })
        .collect();
    Service {
        metadata,
        spec: Some(ServiceSpec {
            selector: Some(selector_labels(component.name(), project)),
            ports: Some(ports),
            type_: Some("ClusterIP".to_owned()),
            ..Default::default()
        }),
        status: None,
    }
}

fn ingress(
    component: &Component<'_>,
    mut metadata: ObjectMeta,
    request: &RenderRequest,
) -> Ingress {
    let domain = request.domain.clone().unwrap_or_default();
    let port = component
        .ports
        .iter()
        .find(|p| p.name == "http")
        .or(component.ports.first())
        .map(|p| p.name.clone());
    if request.features.tls {
        metadata.annotations = Some(BTreeMap::from([(
            "cert-manager.io/cluster-issuer".to_owned(),
            "letsencrypt".to_owned(),
        )]));
    }
    let backend = IngressBackend {
        service: Some(IngressServiceBackend {
            name: component.name().to_owned(),
            port: Some(ServiceBackendPort {
                name: port,
                number: None,
            }),
        }),
        resource: None,
    };
    let rule = IngressRule {
        host: Some(domain.clone()),
        http: Some(HTTPIngressRuleValue {
            paths: vec![HTTPIngressPath {
                backend,
                path: Some("/".to_owned()),
                path_type: "Prefix".to_owned(),
            }],
        }),
    };
    let tls = request.features.tls.then(|| {
        vec![IngressTLS {
            hosts: Some(vec![domain]),
            secret_name: Some(format!("{}-tls", component.name())),
        }]
    });
    Ingress {
        metadata,
        spec: Some(IngressSpec {
            rules: Some(vec![rule]),
            tls,
            ..Default::default()
        }),
        status: None,
    }
}
