//! The blueprint as GraphQL shows it: its YAML fields as typed objects, where it comes from,
//! and its stored versions.

use async_graphql::{Enum, Json, SimpleObject};
use chrono::{DateTime, Utc};
use orchestrator_core::blueprint::browse::CatalogueEntry;
use orchestrator_core::blueprint::{self as engine, Origin};
use orchestrator_entity::blueprints;
use serde_json::Value;

/// Where a blueprint comes from.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum BlueprintSource {
    /// Shipped with the orchestrator, present in every project.
    Builtin,
    /// Added to this project with `upsertBlueprint`.
    Project,
}

/// Platforms a blueprint can be rendered for.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "engine::PlatformSupport")]
pub enum BlueprintPlatform {
    Kubernetes,
    Docker,
    Both,
}

/// Type of a blueprint parameter's value.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "engine::ParamType")]
pub enum BlueprintParameterType {
    String,
    Integer,
    Number,
    Boolean,
}

/// Transport protocol of a port.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "engine::Protocol")]
pub enum PortProtocol {
    Tcp,
    Udp,
    Sctp,
}

/// Values used unless parameters override them.
#[derive(SimpleObject)]
pub struct BlueprintDefaults {
    pub image: String,
    pub replicas: u32,
    /// The main port (`${service.port}`).
    pub port: Option<u32>,
    /// Requests and limits, as in the YAML.
    pub resources: Option<Json<Value>>,
}

/// A parameter a user may set when deploying.
#[derive(SimpleObject)]
pub struct BlueprintParameter {
    pub name: String,
    #[graphql(name = "type")]
    pub kind: BlueprintParameterType,
    pub required: bool,
    pub default: Option<Json<Value>>,
    pub description: String,
    /// Carried as a secret: never shown in rendered output.
    pub secret: bool,
}

/// A named text that may contain `${variables}` (an environment entry or an export).
#[derive(SimpleObject)]
pub struct BlueprintValue {
    pub name: String,
    pub value: String,
}

/// A port the container listens on.
#[derive(SimpleObject)]
pub struct BlueprintPort {
    pub name: String,
    /// Port the Service (or the Docker host) exposes.
    pub port: u32,
    /// Port inside the container.
    pub target_port: u32,
    pub protocol: PortProtocol,
}

/// A persistent volume.
#[derive(SimpleObject)]
pub struct BlueprintVolume {
    pub name: String,
    pub mount_path: String,
    /// Requested capacity; may reference parameters.
    pub size: String,
}

/// How liveness and readiness are checked.
#[derive(SimpleObject)]
pub struct BlueprintHealthcheck {
    pub http: Option<String>,
    pub port: Option<u32>,
    pub tcp: Option<u32>,
    pub command: Option<Vec<String>>,
    pub initial_delay_seconds: Option<u32>,
    pub period_seconds: Option<u32>,
    pub timeout_seconds: Option<u32>,
    pub failure_threshold: Option<u32>,
}

/// One stored version of a project blueprint. Versions are never rewritten.
#[derive(SimpleObject)]
pub struct BlueprintVersion {
    pub version: i32,
    pub yaml: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    /// Set when the blueprint was deleted.
    pub deleted_at: Option<DateTime<Utc>>,
}

impl From<blueprints::Model> for BlueprintVersion {
    fn from(row: blueprints::Model) -> Self {
        BlueprintVersion {
            version: row.version,
            yaml: row.yaml,
            created_by: row.created_by,
            created_at: row.created_at,
            deleted_at: row.deleted_at,
        }
    }
}

/// An application template, as the project sees it.
#[derive(SimpleObject)]
pub struct Blueprint {
    pub name: String,
    pub description: String,
    pub category: String,
    pub platform: BlueprintPlatform,
    /// Version of the application it deploys (from the YAML).
    pub version: String,
    pub source: BlueprintSource,
    /// A project blueprint that replaces the builtin of the same name in this project.
    pub shadows_builtin: bool,
    pub defaults: BlueprintDefaults,
    pub parameters: Vec<BlueprintParameter>,
    /// Installed first, in this order.
    pub dependencies: Vec<String>,
    /// What dependents read as `${deps.<name>.<export>}`.
    pub exports: Vec<BlueprintValue>,
    pub environment: Vec<BlueprintValue>,
    pub ports: Vec<BlueprintPort>,
    pub volumes: Vec<BlueprintVolume>,
    pub healthcheck: Option<BlueprintHealthcheck>,
    /// The YAML text: the builtin file, or the current stored version.
    pub yaml: String,
    /// The current stored version of a project blueprint.
    pub current_version: Option<i32>,
    /// Every stored version of a project blueprint, oldest first; empty for builtins.
    pub versions: Vec<BlueprintVersion>,
}

impl From<CatalogueEntry> for Blueprint {
    fn from(entry: CatalogueEntry) -> Self {
        let bp = entry.blueprint;
        Blueprint {
            current_version: entry
                .versions
                .iter()
                .rev()
                .find(|v| v.deleted_at.is_none())
                .map(|v| v.version),
            versions: entry.versions.into_iter().map(Into::into).collect(),
            source: match entry.origin {
                Origin::Builtin => BlueprintSource::Builtin,
                Origin::User => BlueprintSource::Project,
            },
            shadows_builtin: entry.shadows_builtin,
            yaml: entry.yaml,
            defaults: BlueprintDefaults {
                resources: bp
                    .defaults
                    .resources
                    .as_ref()
                    .and_then(|r| serde_json::to_value(r).ok())
                    .map(Json),
                image: bp.defaults.image,
                replicas: bp.defaults.replicas,
                port: bp.defaults.port,
            },
            parameters: bp
                .parameters
                .into_iter()
                .map(|(name, p)| BlueprintParameter {
                    name,
                    kind: p.kind.into(),
                    required: p.required,
                    default: p.default.map(Json),
                    description: p.description,
                    secret: p.secret,
                })
                .collect(),
            exports: named_values(bp.exports),
            environment: named_values(bp.environment),
            ports: bp
                .ports
                .into_iter()
                .map(|p| BlueprintPort {
                    target_port: p.container_port(),
                    name: p.name,
                    port: p.port,
                    protocol: p.protocol.into(),
                })
                .collect(),
            volumes: bp
                .volumes
                .into_iter()
                .map(|v| BlueprintVolume {
                    name: v.name,
                    mount_path: v.mount_path,
                    size: v.size.0,
                })
                .collect(),
            healthcheck: bp.healthcheck.map(|h| BlueprintHealthcheck {
                http: h.http,
                port: h.port,
                tcp: h.tcp,
                command: h.command,
                initial_delay_seconds: h.initial_delay_seconds,
                period_seconds: h.period_seconds,
                timeout_seconds: h.timeout_seconds,
                failure_threshold: h.failure_threshold,
            }),
            name: bp.name,
            description: bp.description,
            category: bp.category,
            platform: bp.platform.into(),
            version: bp.version,
            dependencies: bp.dependencies,
        }
    }
}

fn named_values(
    values: impl IntoIterator<Item = (String, engine::TemplateValue)>,
) -> Vec<BlueprintValue> {
    values
        .into_iter()
        .map(|(name, value)| BlueprintValue {
            name,
            value: value.0,
        })
        .collect()
}
