//! Structural checks on a deserialized blueprint that need nothing else: names, parameters,
//! dependencies, ports, volumes and health checks. Variables are checked in
//! [`super::references`].

use std::collections::HashSet;

use super::model::Blueprint;
use super::parse::BlueprintError;
use super::references::{check_template, template_fields};
use super::source_map::{join_index, join_key};
use super::template::is_identifier;

/// Parameters every blueprint accepts without declaring them.
pub const IMPLICIT_PARAMETERS: [&str; 3] = ["image", "replicas", "resources"];

/// Whether `name` is a DNS label: `^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`.
pub fn is_dns_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

fn is_port_name(name: &str) -> bool {
    name.len() <= 15
        && is_dns_label(name)
        && name.bytes().any(|b| b.is_ascii_lowercase())
        && !name.contains("--")
}

fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn check_port(errors: &mut Vec<BlueprintError>, field: String, port: u32) {
    if !(1..=65535).contains(&port) {
        errors.push(BlueprintError::new(
            field,
            format!("port {port} is out of range 1..=65535"),
        ));
    }
}

const DNS_RULE: &str = "use lowercase letters, digits and '-', start and end with a letter or digit, at most 63 characters";

/// Checks that need nothing but the blueprint itself.
pub(crate) fn validate_local(bp: &Blueprint) -> Vec<BlueprintError> {
    let mut errors = Vec::new();
    if !is_dns_label(&bp.name) {
        errors.push(BlueprintError::new(
            "name",
            format!("'{}' is not a valid name: {DNS_RULE}", bp.name),
        ));
    }
    if bp.defaults.image.trim().is_empty() || bp.defaults.image.contains(char::is_whitespace) {
        errors.push(BlueprintError::new(
            "defaults.image",
            "image must be a reference like 'postgres:16' without spaces",
        ));
    }
    if let Some(port) = bp.defaults.port {
        check_port(&mut errors, "defaults.port".into(), port);
    }
    for (name, parameter) in &bp.parameters {
        let field = join_key("parameters", name);
        if IMPLICIT_PARAMETERS.contains(&name.as_str()) {
            errors.push(BlueprintError::new(
                &field,
                format!("'{name}' is an implicit parameter of every blueprint; remove it here"),
            ));
        } else if !is_identifier(name) {
            errors.push(BlueprintError::new(
                &field,
                format!(
                    "'{name}' is not a valid parameter name: use lowercase letters, digits and '_'"
                ),
            ));
        }
        if let Some(default) = &parameter.default
            && !parameter.kind.accepts(default)
        {
            errors.push(BlueprintError::new(
                join_key(&field, "default"),
                format!(
                    "default {default} is not of type {}",
                    parameter.kind.as_str()
                ),
            ));
        }
    }
    let mut seen = HashSet::new();
    for (index, dependency) in bp.dependencies.iter().enumerate() {
        let field = join_index("dependencies", index);
        if !is_dns_label(dependency) {
            errors.push(BlueprintError::new(
                &field,
                format!("'{dependency}' is not a valid blueprint name: {DNS_RULE}"),
            ));
        } else if dependency == &bp.name {
            errors.push(BlueprintError::new(
                &field,
                "a blueprint cannot depend on itself",
            ));
        } else if !seen.insert(dependency) {
            errors.push(BlueprintError::new(
                &field,
                format!("'{dependency}' is listed twice"),
            ));
        }
    }
    check_ports(bp, &mut errors);
    check_volumes(bp, &mut errors);
    check_healthcheck(bp, &mut errors);
    for key in bp.environment.keys() {
        if !is_env_name(key) {
            errors.push(BlueprintError::new(
                join_key("environment", key),
                format!("'{key}' is not a valid variable name: use letters, digits and '_', not starting with a digit"),
            ));
        }
    }
    for key in bp.exports.keys() {
        if !is_identifier(key) {
            errors.push(BlueprintError::new(
                join_key("exports", key),
                format!(
                    "'{key}' is not a valid export name: use lowercase letters, digits and '_'"
                ),
            ));
        }
    }
    for (field, text, use_) in template_fields(bp) {
        check_template(bp, &field, text, use_, &mut errors);
    }
    errors
}

fn check_ports(bp: &Blueprint, errors: &mut Vec<BlueprintError>) {
    let mut names = HashSet::new();
    let mut numbers = HashSet::new();
    for (index, port) in bp.ports.iter().enumerate() {
        let field = join_index("ports", index);
        if !is_port_name(&port.name) {
            errors.push(BlueprintError::new(
                join_key(&field, "name"),
                format!("'{}' is not a valid port name: lowercase letters, digits and '-', at least one letter, at most 15 characters", port.name),
            ));
        } else if !names.insert(port.name.as_str()) {
            errors.push(BlueprintError::new(
                join_key(&field, "name"),
                format!("port name '{}' is used twice", port.name),
            ));
        }
        check_port(errors, join_key(&field, "port"), port.port);
        if let Some(target) = port.target_port {
            check_port(errors, join_key(&field, "targetPort"), target);
        }
        if !numbers.insert((port.port, port.protocol)) {
            errors.push(BlueprintError::new(
                join_key(&field, "port"),
                format!("port {} is declared twice", port.port),
            ));
        }
    }
}

fn check_volumes(bp: &Blueprint, errors: &mut Vec<BlueprintError>) {
    let mut names = HashSet::new();
    let mut paths = HashSet::new();
    for (index, volume) in bp.volumes.iter().enumerate() {
        let field = join_index("volumes", index);
        if !is_dns_label(&volume.name) {
            errors.push(BlueprintError::new(
                join_key(&field, "name"),
                format!("'{}' is not a valid volume name: {DNS_RULE}", volume.name),
            ));
        } else if !names.insert(volume.name.as_str()) {
            errors.push(BlueprintError::new(
                join_key(&field, "name"),
                format!("volume name '{}' is used twice", volume.name),
            ));
        }
        if !volume.mount_path.starts_with('/') {
            errors.push(BlueprintError::new(
                join_key(&field, "mountPath"),
                format!("mountPath '{}' must be an absolute path", volume.mount_path),
            ));
        } else if !paths.insert(volume.mount_path.as_str()) {
            errors.push(BlueprintError::new(
                join_key(&field, "mountPath"),
                format!("'{}' is mounted twice", volume.mount_path),
            ));
        }
    }
}

fn check_healthcheck(bp: &Blueprint, errors: &mut Vec<BlueprintError>) {
    let Some(check) = &bp.healthcheck else { return };
    if check.http.is_some() && check.tcp.is_some() {
        errors.push(BlueprintError::new(
            "healthcheck",
            "use either http or tcp, not both",
        ));
    }
    if check.http.is_none() && check.tcp.is_none() && check.command.is_none() {
        errors.push(BlueprintError::new(
            "healthcheck",
            "give one of http (with port), tcp or command",
        ));
    }
    if let Some(path) = &check.http {
        if !path.starts_with('/') {
            errors.push(BlueprintError::new(
                "healthcheck.http",
                format!("'{path}' must be a path starting with '/'"),
            ));
        }
        if check.port.is_none() && bp.defaults.port.is_none() {
            errors.push(BlueprintError::new(
                "healthcheck.port",
                "an http check needs a port (here or in defaults.port)",
            ));
        }
    } else if check.port.is_some() {
        errors.push(BlueprintError::new(
            "healthcheck.port",
            "port belongs to an http check; for a TCP check write tcp: <port>",
        ));
    }
    if let Some(port) = check.port {
        check_port(errors, "healthcheck.port".into(), port);
    }
    if let Some(port) = check.tcp {
        check_port(errors, "healthcheck.tcp".into(), port);
    }
    if check.command.as_ref().is_some_and(Vec::is_empty) {
        errors.push(BlueprintError::new(
            "healthcheck.command",
            "command must not be empty",
        ));
    }
}
