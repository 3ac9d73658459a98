//! Checks on the `${variables}` of a blueprint: on its own (parameters declared, secrets
//! only where they stay secret, dependencies listed) and against a catalogue (dependencies
//! exist, referenced exports exist, no cycle).

use super::catalogue::Catalogue;
use super::model::{Blueprint, PlatformSupport};
use super::parse::BlueprintError;
use super::quantity::parse_quantity;
use super::resolve::ResolveError;
use super::source_map::{join_index, join_key};
use super::suggest::{closest, did_you_mean};
use super::template::{VarRef, references};
use super::validate::IMPLICIT_PARAMETERS;

/// Where a templated value is used, which limits what it may reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Use {
    /// Environment and exports: anything, secrets included.
    Env,
    /// Command, args and health-check commands: no secrets (they would be visible).
    Command,
    /// Volume sizes and resources: parameters and the namespace only.
    Amount,
}

/// Every templated value of `blueprint` with its path and use.
pub(crate) fn template_fields(blueprint: &Blueprint) -> Vec<(String, &str, Use)> {
    let mut fields = Vec::new();
    for (key, value) in &blueprint.environment {
        fields.push((join_key("environment", key), value.as_str(), Use::Env));
    }
    for (key, value) in &blueprint.exports {
        fields.push((join_key("exports", key), value.as_str(), Use::Env));
    }
    let lists = [
        ("command", blueprint.command.as_ref()),
        ("args", blueprint.args.as_ref()),
        (
            "healthcheck.command",
            blueprint
                .healthcheck
                .as_ref()
                .and_then(|h| h.command.as_ref()),
        ),
    ];
    for (name, list) in lists {
        for (index, item) in list.into_iter().flatten().enumerate() {
            fields.push((join_index(name, index), item.as_str(), Use::Command));
        }
    }
    for (index, volume) in blueprint.volumes.iter().enumerate() {
        fields.push((
            format!("volumes[{index}].size"),
            volume.size.as_str(),
            Use::Amount,
        ));
    }
    if let Some(resources) = &blueprint.defaults.resources {
        for (kind, amounts) in [
            ("requests", &resources.requests),
            ("limits", &resources.limits),
        ] {
            let Some(amounts) = amounts else { continue };
            for (name, value) in [("cpu", &amounts.cpu), ("memory", &amounts.memory)] {
                if let Some(value) = value {
                    fields.push((
                        format!("defaults.resources.{kind}.{name}"),
                        value.as_str(),
                        Use::Amount,
                    ));
                }
            }
        }
    }
    fields
}

pub(crate) fn check_template(
    bp: &Blueprint,
    field: &str,
    text: &str,
    use_: Use,
    errors: &mut Vec<BlueprintError>,
) {
    let refs = match references(text) {
        Ok(refs) => refs,
        Err(message) => {
            errors.push(BlueprintError::new(field, message));
            return;
        }
    };
    if refs.is_empty() && use_ == Use::Amount && parse_quantity(text).is_none() {
        errors.push(BlueprintError::new(
            field,
            format!("'{text}' is not a quantity like 500m, 2, 512Mi or 10Gi"),
        ));
    }
    for reference in refs {
        let problem = match (&reference, use_) {
            (VarRef::Param(name), _) if name == "resources" => Some("the resources parameter is an object and cannot be substituted into text".to_owned()),
            (VarRef::Param(name), _) if !bp.parameters.contains_key(name) && !IMPLICIT_PARAMETERS.contains(&name.as_str()) => {
                let known = bp.parameters.keys().map(String::as_str).chain(["image", "replicas"]);
                Some(format!("unknown parameter '{name}'{}; declare it under parameters", did_you_mean(&closest(name, known))))
            }
            (VarRef::Secret(_), Use::Command | Use::Amount) => {
                Some("secrets may only be used in environment and exports, where they are carried as secrets".to_owned())
            }
            (VarRef::Dep { .. } | VarRef::ServiceHost | VarRef::ServicePort, Use::Amount) => {
                Some("sizes and resources may only reference parameters and ${namespace}".to_owned())
            }
            (VarRef::Dep { blueprint, .. }, _) if !bp.dependencies.contains(blueprint) => {
                let suggestion = did_you_mean(&closest(blueprint, bp.dependencies.iter().map(String::as_str)));
                Some(format!("'{blueprint}' is not a dependency of {}{suggestion}; add it to dependencies", bp.name))
            }
            (VarRef::ServicePort, _) if bp.defaults.port.is_none() && bp.ports.is_empty() => {
                Some("${service.port} needs defaults.port or a ports entry".to_owned())
            }
            _ => None,
        };
        if let Some(message) = problem {
            errors.push(BlueprintError::new(field, message));
        }
    }
}

/// Checks `blueprint` against the blueprints it depends on: each dependency exists (else the
/// closest names are suggested), runs on a common platform, exports what is referenced, no
/// dependency cycle arises, and no secret reaches a command line. Errors carry no line
/// numbers; [`super::parse_blueprint_in`] adds them.
pub fn validate_against(
    blueprint: &Blueprint,
    catalogue: &Catalogue,
) -> Result<(), Vec<BlueprintError>> {
    let mut errors = Vec::new();
    for (index, name) in blueprint.dependencies.iter().enumerate() {
        let field = join_index("dependencies", index);
        match catalogue.get(name) {
            None if name != &blueprint.name => {
                let suggestion = did_you_mean(&catalogue.closest(name));
                errors.push(BlueprintError::new(
                    field,
                    format!("no blueprint named '{name}' exists{suggestion}"),
                ));
            }
            Some(dependency) if !shares_platform(blueprint.platform, dependency.platform) => {
                errors.push(BlueprintError::new(
                    field,
                    format!(
                        "'{name}' does not run on the platforms {} runs on",
                        blueprint.name
                    ),
                ));
            }
            _ => {}
        }
    }
    for (field, text, use_) in template_fields(blueprint) {
        for reference in references(text).unwrap_or_default() {
            let VarRef::Dep {
                blueprint: dep,
                export,
            } = reference
            else {
                continue;
            };
            let Some(dependency) = catalogue.get(&dep) else {
                continue;
            };
            if !dependency.exports.contains_key(&export) {
                let keys: Vec<&str> = dependency.exports.keys().map(String::as_str).collect();
                errors.push(BlueprintError::new(
                    &field,
                    missing_export_message(&dep, &keys, &export),
                ));
            } else if use_ == Use::Command && export_carries_secret(catalogue, &dep, &export, 0) {
                errors.push(BlueprintError::new(
                    &field,
                    format!(
                        "{dep}'s '{export}' carries a secret, which may only be used in environment"
                    ),
                ));
            }
        }
    }
    let with_this = catalogue.with_overlay(vec![blueprint.clone()]);
    if let Err(ResolveError::Cycle { path }) =
        with_this.resolve_install_order(&[blueprint.name.as_str()])
    {
        errors.push(BlueprintError::new(
            "dependencies",
            format!("dependency cycle: {}", path.join(" -> ")),
        ));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

fn shares_platform(a: PlatformSupport, b: PlatformSupport) -> bool {
    a == b || a == PlatformSupport::Both || b == PlatformSupport::Both
}

/// `redis exports no 'pasword'; did you mean 'password'? (redis exports: host, port)`.
pub(crate) fn missing_export_message(name: &str, keys: &[&str], export: &str) -> String {
    if keys.is_empty() {
        return format!("{name} exports nothing, so '{export}' cannot be referenced");
    }
    let suggestion = did_you_mean(&closest(export, keys.iter().copied()));
    format!(
        "{name} exports no '{export}'{suggestion} ({name} exports: {})",
        keys.join(", ")
    )
}

/// Whether an export's value contains a secret, directly or through its own dependencies.
pub(crate) fn export_carries_secret(
    catalogue: &Catalogue,
    blueprint: &str,
    export: &str,
    depth: usize,
) -> bool {
    let Some(bp) = catalogue.get(blueprint) else {
        return false;
    };
    let Some(value) = bp.exports.get(export) else {
        return false;
    };
    depth < 16
        && references(value.as_str())
            .unwrap_or_default()
            .iter()
            .any(|reference| match reference {
                VarRef::Secret(_) => true,
                VarRef::Param(name) => bp.parameters.get(name).is_some_and(|p| p.secret),
                VarRef::Dep { blueprint, export } => {
                    export_carries_secret(catalogue, blueprint, export, depth + 1)
                }
                _ => false,
            })
}
