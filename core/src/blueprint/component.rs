//! One blueprint with parameters applied and variables substituted, before it becomes
//! Kubernetes objects or a Docker container. Both renderers start from this.

use std::collections::BTreeMap;

use indexmap::IndexMap;

use super::model::{Blueprint, Platform, PortSpec, Protocol, Resources};
use super::quantity::parse_quantity;
use super::render::{RenderError, RenderRequest};
use super::render_docker::container_name;
use super::vars::{ParamInput, Rendered, Scope, resolve_params};

/// A blueprint ready to be turned into platform objects.
#[derive(Debug)]
pub(crate) struct Component<'a> {
    pub blueprint: &'a Blueprint,
    pub is_root: bool,
    pub image: String,
    pub replicas: u32,
    /// `cpu` / `memory` requests, as quantities.
    pub requests: BTreeMap<String, String>,
    /// `cpu` / `memory` limits, as quantities.
    pub limits: BTreeMap<String, String>,
    pub env: Vec<(String, Rendered)>,
    pub command: Option<Vec<String>>,
    pub args: Option<Vec<String>>,
    pub ports: Vec<PortSpec>,
    pub volumes: Vec<Volume>,
    pub probe: Option<Probe>,
    pub exports: IndexMap<String, Rendered>,
}

impl Component<'_> {
    /// The component (blueprint) name.
    pub fn name(&self) -> &str {
        &self.blueprint.name
    }
}

/// A volume with its size resolved.
#[derive(Debug)]
pub(crate) struct Volume {
    pub name: String,
    pub mount_path: String,
    pub size: String,
}

/// A health check with its command resolved and timings defaulted.
#[derive(Debug)]
pub(crate) struct Probe {
    pub check: Check,
    /// Exec command; Docker prefers it to `check`.
    pub command: Option<Vec<String>>,
    pub initial_delay_seconds: u32,
    pub period_seconds: u32,
    pub timeout_seconds: u32,
    pub failure_threshold: u32,
}

/// The primary check of a probe.
#[derive(Debug)]
pub(crate) enum Check {
    Http { path: String, port: u32 },
    Tcp { port: u32 },
    Command,
}

/// Applies parameters and substitutes every variable of `blueprint`.
pub(crate) fn build_component<'a>(
    blueprint: &'a Blueprint,
    is_root: bool,
    request: &RenderRequest,
    exports: &BTreeMap<String, IndexMap<String, Rendered>>,
    secrets: &mut BTreeMap<String, String>,
) -> Result<Component<'a>, RenderError> {
    let input = ParamInput {
        supplied: request.params.get(&blueprint.name),
        replicas: request.replicas.filter(|_| is_root),
        domain: request.domain.as_deref().filter(|_| is_root),
    };
    let params = resolve_params(blueprint, &input, secrets)?;
    let mut ports = blueprint.ports.clone();
    if ports.is_empty()
        && let Some(port) = blueprint.defaults.port
    {
        ports.push(PortSpec {
            name: "main".to_owned(),
            port,
            target_port: None,
            protocol: Protocol::Tcp,
        });
    }
    let service_host = match request.platform {
        Platform::Kubernetes => {
            format!("{}.{}.svc.cluster.local", blueprint.name, request.namespace)
        }
        Platform::Docker => container_name(request, &blueprint.name),
    };
    let mut scope = Scope {
        blueprint,
        params: &params.values,
        service_host,
        service_port: blueprint.defaults.port.or(ports.first().map(|p| p.port)),
        namespace: &request.namespace,
        exports,
        secrets,
    };
    let mut env = Vec::with_capacity(blueprint.environment.len());
    for (key, value) in &blueprint.environment {
        env.push((
            key.clone(),
            scope.render(&format!("environment.{key}"), value.as_str())?,
        ));
    }
    let mut rendered_exports = IndexMap::with_capacity(blueprint.exports.len());
    for (key, value) in &blueprint.exports {
        rendered_exports.insert(
            key.clone(),
            scope.render(&format!("exports.{key}"), value.as_str())?,
        );
    }
    let command = render_list(&mut scope, "command", blueprint.command.as_deref())?;
    let args = render_list(&mut scope, "args", blueprint.args.as_deref())?;
    let mut volumes = Vec::with_capacity(blueprint.volumes.len());
    for (index, volume) in blueprint.volumes.iter().enumerate() {
        let field = format!("volumes[{index}].size");
        let size = scope.render_plain(&field, volume.size.as_str())?;
        volumes.push(Volume {
            name: volume.name.clone(),
            mount_path: volume.mount_path.clone(),
            size: quantity(blueprint, &field, size)?,
        });
    }
    let (requests, limits) = resources(&mut scope, params.resources.as_ref())?;
    let probe = match &blueprint.healthcheck {
        None => None,
        Some(check) => {
            let command = render_list(&mut scope, "healthcheck.command", check.command.as_deref())?;
            let kind = match (&check.http, check.tcp) {
                (Some(path), _) => Check::Http {
                    path: path.clone(),
                    port: check.port.or(blueprint.defaults.port).unwrap_or(80),
                },
                (None, Some(port)) => Check::Tcp { port },
                (None, None) => Check::Command,
            };
            Some(Probe {
                check: kind,
                command,
                initial_delay_seconds: check.initial_delay_seconds.unwrap_or(10),
                period_seconds: check.period_seconds.unwrap_or(10),
                timeout_seconds: check.timeout_seconds.unwrap_or(5),
                failure_threshold: check.failure_threshold.unwrap_or(3),
            })
        }
    };
    Ok(Component {
        blueprint,
        is_root,
        image: params.image,
        replicas: params.replicas,
        requests,
        limits,
        env,
        command,
        args,
        ports,
        volumes,
        probe,
        exports: rendered_exports,
    })
}

fn render_list(
    scope: &mut Scope<'_>,
    name: &str,
    items: Option<&[String]>,
) -> Result<Option<Vec<String>>, RenderError> {
    let Some(items) = items else { return Ok(None) };
    let mut out = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        out.push(scope.render_plain(&format!("{name}[{index}]"), item)?);
    }
    Ok(Some(out))
}

type Amounts = BTreeMap<String, String>;

fn resources(
    scope: &mut Scope<'_>,
    resources: Option<&Resources>,
) -> Result<(Amounts, Amounts), RenderError> {
    let mut requests = BTreeMap::new();
    let mut limits = BTreeMap::new();
    let Some(resources) = resources else {
        return Ok((requests, limits));
    };
    for (kind, amounts, out) in [
        ("requests", &resources.requests, &mut requests),
        ("limits", &resources.limits, &mut limits),
    ] {
        let Some(amounts) = amounts else { continue };
        for (name, value) in [("cpu", &amounts.cpu), ("memory", &amounts.memory)] {
            let Some(value) = value else { continue };
            let field = format!("resources.{kind}.{name}");
            let text = scope.render_plain(&field, value.as_str())?;
            out.insert(name.to_owned(), quantity(scope.blueprint, &field, text)?);
        }
    }
    Ok((requests, limits))
}

fn quantity(blueprint: &Blueprint, field: &str, text: String) -> Result<String, RenderError> {
    if parse_quantity(&text).is_some() {
        Ok(text)
    } else {
        Err(RenderError::InvalidValue {
            component: blueprint.name.clone(),
            field: field.to_owned(),
            message: format!("'{text}' is not a quantity like 500m, 2, 512Mi or 10Gi"),
        })
    }
}
