//! The workload part of a Kubernetes rendering: the container (env, ports, probes,
//! resources, mounts) and the Deployment or StatefulSet around it.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, StatefulSet, StatefulSetSpec};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EnvVar, EnvVarSource, ExecAction, HTTPGetAction,
    PersistentVolumeClaim, PersistentVolumeClaimSpec, PodSpec, PodTemplateSpec, Probe,
    ResourceRequirements, SecretKeySelector, TCPSocketAction, VolumeMount,
    VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::component::{Check, Component};

/// Labels that select a component's pods; they never change after the first install.
pub(crate) fn selector_labels(component: &str, project: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_owned(), component.to_owned()),
        ("orchestrator.dev/project".to_owned(), project.to_owned()),
    ])
}

fn int(value: u32) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

/// The application container. Env values carrying secrets come from `secret_name` by
/// `secretKeyRef` (keyed by the variable name), never literally.
pub(crate) fn container(component: &Component<'_>, secret_name: &str) -> Container {
    let env = component
        .env
        .iter()
        .map(|(name, value)| match value.plain() {
            Some(text) => EnvVar {
                name: name.clone(),
                value: Some(text),
                value_from: None,
            },
            None => EnvVar {
                name: name.clone(),
                value: None,
                value_from: Some(EnvVarSource {
                    secret_key_ref: Some(SecretKeySelector {
                        name: secret_name.to_owned(),
                        key: name.clone(),
                        optional: None,
                    }),
                    ..Default::default()
                }),
            },
        })
        .collect::<Vec<_>>();
    let ports = component
        .ports
        .iter()
        .map(|port| ContainerPort {
            name: Some(port.name.clone()),
            container_port: int(port.container_port()),
            protocol: Some(port.protocol.as_str().to_owned()),
            ..Default::default()
        })
        .collect::<Vec<_>>();
    let mounts = component
        .volumes
        .iter()
        .map(|volume| VolumeMount {
            name: volume.name.clone(),
            mount_path: volume.mount_path.clone(),
            ..Default::default()
        })
        .collect::<Vec<_>>();
    let quantities = |amounts: &BTreeMap<String, String>| {
        (!amounts.is_empty()).then(|| {
            amounts
                .iter()
                .map(|(k, v)| (k.clone(), Quantity(v.clone())))
                .collect()
        })
    };
    let resources = (!component.requests.is_empty() || !component.limits.is_empty()).then(|| {
        ResourceRequirements {
            requests: quantities(&component.requests),
            limits: quantities(&component.limits),
            ..Default::default()
        }
    });
    Container {
        name: component.name().to_owned(),
        image: Some(component.image.clone()),
        command: component.command.clone(),
        args: component.args.clone(),
        env: (!env.is_empty()).then_some(env),
        ports: (!ports.is_empty()).then_some(ports),
        volume_mounts: (!mounts.is_empty()).then_some(mounts),
        resources,
        readiness_probe: probe(component, false),
        liveness_probe: probe(component, true),
        ..Default::default()
    }
}

fn probe(component: &Component<'_>, liveness: bool) -> Option<Probe> {
    let spec = component.probe.as_ref()?;
    let mut probe = Probe {
        initial_delay_seconds: Some(int(spec.initial_delay_seconds)),
        period_seconds: Some(int(spec.period_seconds)),
        timeout_seconds: Some(int(spec.timeout_seconds)),
        failure_threshold: Some(int(spec.failure_threshold)),
        ..Default::default()
    };
    if liveness {
        // Restarting is harsher than holding back traffic: give start-up more time.
        probe.initial_delay_seconds = Some(int(spec.initial_delay_seconds.max(30)));
    }
    match &spec.check {
        Check::Http { path, port } => {
            probe.http_get = Some(HTTPGetAction {
                path: Some(path.clone()),
                port: IntOrString::Int(int(*port)),
                ..Default::default()
            });
        }
        Check::Tcp { port } => {
            probe.tcp_socket = Some(TCPSocketAction {
                port: IntOrString::Int(int(*port)),
                host: None,
            });
        }
        Check::Command => {
            probe.exec = Some(ExecAction {
                command: spec.command.clone(),
            })
        }
    }
    Some(probe)
}

/// A workload object, Deployment or StatefulSet.
pub(crate) enum Workload {
    Deployment(Box<Deployment>),
    StatefulSet(Box<StatefulSet>),
}

/// A StatefulSet with volume claim templates when the component has volumes, else a
/// Deployment. `pod_annotations` go on the pod template (a change rolls the pods).
pub(crate) fn workload(
    component: &Component<'_>,
    metadata: ObjectMeta,
    pod_labels: BTreeMap<String, String>,
    pod_annotations: BTreeMap<String, String>,
    container: Container,
    project: &str,
) -> Workload {
    let selector = LabelSelector {
        match_labels: Some(selector_labels(component.name(), project)),
        ..Default::default()
    };
    let template = PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(pod_labels.clone()),
            annotations: (!pod_annotations.is_empty()).then_some(pod_annotations),
            ..Default::default()
        }),
        spec: Some(PodSpec {
            containers: vec![container],
            ..Default::default()
        }),
    };
    let replicas = Some(int(component.replicas));
    if component.volumes.is_empty() {
        return Workload::Deployment(Box::new(Deployment {
            metadata,
            spec: Some(DeploymentSpec {
                replicas,
                selector,
                template,
                ..Default::default()
            }),
            status: None,
        }));
    }
    let claims = component
        .volumes
        .iter()
        .map(|volume| PersistentVolumeClaim {
            metadata: ObjectMeta {
                name: Some(volume.name.clone()),
                labels: Some(pod_labels.clone()),
                ..Default::default()
            },
            spec: Some(PersistentVolumeClaimSpec {
                access_modes: Some(vec!["ReadWriteOnce".to_owned()]),
                resources: Some(VolumeResourceRequirements {
                    requests: Some(BTreeMap::from([(
                        "storage".to_owned(),
                        Quantity(volume.size.clone()),
                    )])),
                    limits: None,
                }),
                ..Default::default()
            }),
            status: None,
        })
        .collect();
    Workload::StatefulSet(Box::new(StatefulSet {
        metadata,
        spec: Some(StatefulSetSpec {
            replicas,
            selector,
            service_name: Some(component.name().to_owned()),
            template,
            volume_claim_templates: Some(claims),
            ..Default::default()
        }),
        status: None,
    }))
}
