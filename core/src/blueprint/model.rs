//! The blueprint document: what a blueprint YAML file may contain.
//!
//! Keys are camelCase (`mountPath`, `targetPort`) and unknown keys are rejected, so a typo in a
//! user's blueprint is reported instead of silently ignored. `blueprints/schema.json` is
//! generated from these types (see [`crate::blueprint::json_schema`]).

use std::borrow::Cow;

use indexmap::IndexMap;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize};

/// A deployable application template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(title = "Orchestrator blueprint")]
pub struct Blueprint {
    /// Unique name, a DNS label: lowercase letters, digits and `-`, at most 63 characters.
    pub name: String,
    /// One line saying what the application is.
    #[serde(default)]
    pub description: String,
    /// Free text used for filtering (`database`, `auth`, `cache`, …).
    #[serde(default)]
    pub category: String,
    /// Which platforms the blueprint can be rendered for.
    #[serde(default)]
    pub platform: PlatformSupport,
    /// Version of the application the blueprint deploys (informative).
    #[serde(default)]
    pub version: String,
    /// Image, replica count, main port and resources used unless a parameter overrides them.
    pub defaults: Defaults,
    /// What a user may set, by name. `image`, `replicas` and `resources` are always accepted.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub parameters: IndexMap<String, Parameter>,
    /// Blueprints that are installed first; their exports can be referenced as
    /// `${deps.<name>.<export>}`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dependencies: Vec<String>,
    /// Ports the container listens on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PortSpec>,
    /// Persistent volumes. A blueprint with volumes becomes a StatefulSet on Kubernetes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<VolumeSpec>,
    /// Container environment, in order. Values may contain `${variables}`.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub environment: IndexMap<String, TemplateValue>,
    /// What dependents may reference as `${deps.<this name>.<key>}`.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub exports: IndexMap<String, TemplateValue>,
    /// How the platform decides the application is alive and ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Healthcheck>,
    /// Replaces the image's entrypoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// Replaces the image's default arguments (`CMD`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,
}

/// Platforms a blueprint supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PlatformSupport {
    /// Kubernetes only.
    Kubernetes,
    /// Docker only.
    Docker,
    /// Both Kubernetes and Docker.
    #[default]
    Both,
}

impl PlatformSupport {
    /// Whether a blueprint with this support can be rendered for `platform`.
    pub fn supports(self, platform: Platform) -> bool {
        matches!(
            (self, platform),
            (PlatformSupport::Both, _)
                | (PlatformSupport::Kubernetes, Platform::Kubernetes)
                | (PlatformSupport::Docker, Platform::Docker)
        )
    }
}

/// A platform a plan is rendered for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    /// Kubernetes manifests.
    Kubernetes,
    /// Docker containers (and a docker-compose export).
    Docker,
}

impl Platform {
    /// The lowercase name used in blueprints and requests.
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Kubernetes => "kubernetes",
            Platform::Docker => "docker",
        }
    }
}

impl From<Platform> for orchestrator_entity::Platform {
    fn from(platform: Platform) -> Self {
        match platform {
            Platform::Kubernetes => orchestrator_entity::Platform::Kubernetes,
            Platform::Docker => orchestrator_entity::Platform::Docker,
        }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Values used unless the user overrides them with the implicit parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Defaults {
    /// Container image with a pinned tag, e.g. `postgres:16`. Overridden by the `image` parameter.
    pub image: String,
    /// Replica count. Overridden by the `replicas` parameter or the request's replicas.
    #[serde(default = "one")]
    pub replicas: u32,
    /// The main port; `${service.port}` resolves to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u32>,
    /// Requests and limits. Overridden by the `resources` parameter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
}

fn one() -> u32 {
    1
}

/// Compute resources, in Kubernetes quantity notation (`250m`, `512Mi`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Resources {
    /// What the scheduler reserves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<ResourceAmounts>,
    /// The most the container may use. Docker applies only these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<ResourceAmounts>,
}

/// A CPU and memory amount.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourceAmounts {
    /// CPU cores: `0.5`, `500m`, `2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<TemplateValue>,
    /// Memory: `256Mi`, `1Gi`, `512M`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<TemplateValue>,
}

/// A parameter a user may set when installing the blueprint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Parameter {
    /// Value type; a supplied value of another type is rejected.
    #[serde(rename = "type")]
    pub kind: ParamType,
    /// A required parameter without a default must be supplied.
    #[serde(default)]
    pub required: bool,
    /// Value used when the user supplies none. An optional parameter without a default
    /// renders as the empty string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<serde_json::Value>,
    /// What the parameter does, shown in forms.
    #[serde(default)]
    pub description: String,
    /// A secret parameter (an API key, a password) is carried like a generated secret: in a
    /// Kubernetes Secret, never as a literal value.
    #[serde(default)]
    pub secret: bool,
}

/// Type of a parameter value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ParamType {
    /// Text.
    String,
    /// A whole number.
    Integer,
    /// Any number.
    Number,
    /// `true` or `false`.
    Boolean,
}

impl ParamType {
    /// Whether `value` has this type.
    pub fn accepts(self, value: &serde_json::Value) -> bool {
        match self {
            ParamType::String => value.is_string(),
            ParamType::Integer => value.is_i64() || value.is_u64(),
            ParamType::Number => value.is_number(),
            ParamType::Boolean => value.is_boolean(),
        }
    }

    /// The lowercase name used in blueprints.
    pub fn as_str(self) -> &'static str {
        match self {
            ParamType::String => "string",
            ParamType::Integer => "integer",
            ParamType::Number => "number",
            ParamType::Boolean => "boolean",
        }
    }
}

/// A port the container listens on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PortSpec {
    /// Port name: lowercase letters, digits and `-`, at most 15 characters, with a letter.
    pub name: String,
    /// Port the Service (or the Docker host, for published ports) exposes, 1..=65535.
    pub port: u32,
    /// Port the container listens on; defaults to `port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_port: Option<u32>,
    /// Transport protocol; TCP unless stated.
    #[serde(default)]
    pub protocol: Protocol,
}

impl PortSpec {
    /// The port inside the container.
    pub fn container_port(&self) -> u32 {
        self.target_port.unwrap_or(self.port)
    }
}

/// Transport protocol of a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum Protocol {
    /// TCP.
    #[default]
    #[serde(alias = "tcp")]
    Tcp,
    /// UDP.
    #[serde(alias = "udp")]
    Udp,
    /// SCTP (Kubernetes only).
    #[serde(alias = "sctp")]
    Sctp,
}

impl Protocol {
    /// Uppercase name as Kubernetes spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
        }
    }
}

/// A persistent volume mounted into the container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VolumeSpec {
    /// Volume name, a DNS label.
    pub name: String,
    /// Absolute path inside the container.
    pub mount_path: String,
    /// Requested capacity (`10Gi`); may reference parameters. Docker ignores it.
    pub size: TemplateValue,
}

/// How liveness and readiness are checked.
///
/// Kubernetes probes `http` (GET `port` + path) or `tcp`, else runs `command`. Docker runs
/// `command` when given, else an HTTP or TCP probe through the image's shell, so images
/// without a shell should give a `command`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Healthcheck {
    /// HTTP path answered with 2xx/3xx when healthy, e.g. `/-/health/live/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<String>,
    /// Port for the HTTP check; defaults to `defaults.port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u32>,
    /// A TCP port that accepts connections when healthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<u32>,
    /// A command run inside the container, exit status 0 when healthy (exec form).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// Seconds to wait after start before the first check (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_delay_seconds: Option<u32>,
    /// Seconds between checks (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_seconds: Option<u32>,
    /// Seconds before a check counts as failed (default 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u32>,
    /// Consecutive failures before the container counts as unhealthy (default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_threshold: Option<u32>,
}

/// A text value that may contain `${variables}`.
///
/// YAML numbers and booleans are accepted and kept as text, so `port: 9000` and
/// `port: "9000"` mean the same.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct TemplateValue(pub String);

impl TemplateValue {
    /// The raw text, variables unexpanded.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for TemplateValue {
    fn from(value: &str) -> Self {
        TemplateValue(value.to_owned())
    }
}

impl<'de> Deserialize<'de> for TemplateValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = TemplateValue;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<TemplateValue, E> {
                Ok(TemplateValue(v.to_owned()))
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<TemplateValue, E> {
                Ok(TemplateValue(v.to_string()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<TemplateValue, E> {
                Ok(TemplateValue(v.to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<TemplateValue, E> {
                Ok(TemplateValue(v.to_string()))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<TemplateValue, E> {
                Ok(TemplateValue(v.to_string()))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl JsonSchema for TemplateValue {
    fn schema_name() -> Cow<'static, str> {
        "TemplateValue".into()
    }

    fn json_schema(_generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "Text that may contain ${variables}; numbers and booleans are taken as text.",
            "type": ["string", "number", "boolean"]
        })
    }
}
