//! Substituting `${variables}`: parameters (typed, with defaults), secrets (generated once per
//! deployment and kept by the caller), dependency exports, and the service's own address.
//!
//! A substituted value keeps secrets apart from literal text ([`Rendered`]), so each
//! renderer decides how a secret travels: a Kubernetes Secret, a Docker secret env entry, a
//! compose `${VAR}` placeholder. An unresolvable variable is an error, never left as text.

use std::collections::BTreeMap;

use indexmap::IndexMap;
use rand::Rng;
use serde_json::Value;

use super::model::{Blueprint, ParamType, Resources};
use super::references::missing_export_message;
use super::render::RenderError;
use super::suggest::{closest, did_you_mean};
use super::template::{Part, VarRef, parse_template};
use super::validate::IMPLICIT_PARAMETERS;

/// One piece of a rendered value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Segment {
    /// Plain text, safe to show.
    Text(String),
    /// The secret stored under this key (`<component>.<name>`).
    Secret(String),
}

/// A value after substitution, secrets not yet revealed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Rendered(pub Vec<Segment>);

impl Rendered {
    pub fn text(text: impl Into<String>) -> Rendered {
        Rendered(vec![Segment::Text(text.into())])
    }

    pub fn secret(key: impl Into<String>) -> Rendered {
        Rendered(vec![Segment::Secret(key.into())])
    }

    /// Whether any part is secret.
    pub fn is_secret(&self) -> bool {
        self.0
            .iter()
            .any(|segment| matches!(segment, Segment::Secret(_)))
    }

    /// The key when the value is exactly one secret and nothing else.
    pub fn sole_secret(&self) -> Option<&str> {
        let mut parts = self
            .0
            .iter()
            .filter(|s| !matches!(s, Segment::Text(t) if t.is_empty()));
        match (parts.next(), parts.next()) {
            (Some(Segment::Secret(key)), None) => Some(key),
            _ => None,
        }
    }

    /// The value with each secret turned into `secret(key)` and text into `text(..)`.
    pub fn map(
        &self,
        mut text: impl FnMut(&str) -> String,
        mut secret: impl FnMut(&str) -> String,
    ) -> String {
        self.0
            .iter()
            .map(|segment| match segment {
                Segment::Text(t) => text(t),
                Segment::Secret(key) => secret(key),
            })
            .collect()
    }

    /// The full value, secrets included. Missing keys reveal as empty (they were generated
    /// during the same render, so this does not happen).
    pub fn reveal(&self, secrets: &BTreeMap<String, String>) -> String {
        self.map(str::to_owned, |key| {
            secrets.get(key).cloned().unwrap_or_default()
        })
    }

    /// The value with secrets shown as `<secret:key>`, safe for logs and plans.
    pub fn masked(&self) -> String {
        self.map(str::to_owned, |key| format!("<secret:{key}>"))
    }

    /// The value when it contains no secret.
    pub fn plain(&self) -> Option<String> {
        (!self.is_secret()).then(|| self.map(str::to_owned, |_| String::new()))
    }

    fn extend(&mut self, other: &Rendered) {
        self.0.extend(other.0.iter().cloned());
    }
}

/// Generates a secret: 32 URL-safe random characters.
pub(crate) fn generate_secret() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut rng = rand::rng();
    (0..32)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

/// Parameters of one component after applying what the user supplied.
#[derive(Debug)]
pub(crate) struct Params {
    /// Declared parameters (and `image`, `replicas`) as substitutable values.
    pub values: BTreeMap<String, Rendered>,
    pub image: String,
    pub replicas: u32,
    pub resources: Option<Resources>,
}

/// What a component's parameters are resolved from.
pub(crate) struct ParamInput<'a> {
    pub supplied: Option<&'a BTreeMap<String, Value>>,
    /// The request's replica count, for roots.
    pub replicas: Option<u32>,
    /// The request's domain, offered to a root's `domain` parameter.
    pub domain: Option<&'a str>,
}

/// Checks supplied parameters against the blueprint and fills in defaults. Secret
/// parameters are stored in `secrets` under `<component>.param.<name>`; a later render that
/// does not supply them again reuses the stored value.
pub(crate) fn resolve_params(
    bp: &Blueprint,
    input: &ParamInput<'_>,
    secrets: &mut BTreeMap<String, String>,
) -> Result<Params, RenderError> {
    let empty = BTreeMap::new();
    let supplied = input.supplied.unwrap_or(&empty);
    let invalid = |name: &str, expected: &str, got: &Value| RenderError::InvalidParameter {
        blueprint: bp.name.clone(),
        name: name.to_owned(),
        expected: expected.to_owned(),
        got: got.to_string(),
    };
    let mut image = bp.defaults.image.clone();
    let mut replicas = bp.defaults.replicas;
    let mut resources = bp.defaults.resources.clone();
    for (name, value) in supplied {
        match name.as_str() {
            "image" => match value.as_str() {
                Some(text) if !text.trim().is_empty() && !text.contains(char::is_whitespace) => {
                    image = text.to_owned()
                }
                _ => {
                    return Err(invalid(
                        name,
                        "an image reference like 'postgres:16'",
                        value,
                    ));
                }
            },
            "replicas" => {
                replicas = value
                    .as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| invalid(name, "a whole number of replicas, 0 or more", value))?;
            }
            "resources" => {
                let parsed: Resources = serde_json::from_value(value.clone()).map_err(|_| {
                    invalid(
                        name,
                        "an object { requests: { cpu, memory }, limits: { cpu, memory } }",
                        value,
                    )
                })?;
                resources = Some(parsed);
            }
            _ => match bp.parameters.get(name) {
                None => {
                    let known = bp
                        .parameters
                        .keys()
                        .map(String::as_str)
                        .chain(IMPLICIT_PARAMETERS);
                    return Err(RenderError::UnknownParameter {
                        blueprint: bp.name.clone(),
                        name: name.clone(),
                        suggestion: did_you_mean(&closest(name, known)),
                    });
                }
                Some(parameter) if !parameter.kind.accepts(value) => {
                    return Err(invalid(name, parameter.kind.as_str(), value));
                }
                Some(_) => {}
            },
        }
    }
    if let Some(count) = input.replicas {
        replicas = count;
    }
    let mut values = BTreeMap::new();
    for (name, parameter) in &bp.parameters {
        let secret_key = format!("{}.param.{name}", bp.name);
        let domain = (name == "domain" && parameter.kind == ParamType::String)
            .then_some(input.domain)
            .flatten()
            .map(|d| Value::String(d.to_owned()));
        let value = supplied.get(name).cloned().or(domain);
        let text = match value {
            Some(value) => Some(display_value(&value)),
            None if parameter.secret && secrets.contains_key(&secret_key) => None,
            None => match &parameter.default {
                Some(default) => Some(display_value(default)),
                None if parameter.required => {
                    return Err(RenderError::MissingParameter {
                        blueprint: bp.name.clone(),
                        name: name.clone(),
                        description: parameter.description.clone(),
                    });
                }
                None => Some(String::new()),
            },
        };
        let rendered = if parameter.secret {
            if let Some(text) = text {
                secrets.insert(secret_key.clone(), text);
            }
            Rendered::secret(secret_key)
        } else {
            Rendered::text(text.unwrap_or_default())
        };
        values.insert(name.clone(), rendered);
    }
    values.insert("image".to_owned(), Rendered::text(image.clone()));
    values.insert("replicas".to_owned(), Rendered::text(replicas.to_string()));
    Ok(Params {
        values,
        image,
        replicas,
        resources,
    })
}

fn display_value(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// Everything a component's templates can refer to.
pub(crate) struct Scope<'a> {
    pub blueprint: &'a Blueprint,
    pub params: &'a BTreeMap<String, Rendered>,
    pub service_host: String,
    pub service_port: Option<u32>,
    pub namespace: &'a str,
    /// Rendered exports of the components installed before this one.
    pub exports: &'a BTreeMap<String, IndexMap<String, Rendered>>,
    pub secrets: &'a mut BTreeMap<String, String>,
}

impl Scope<'_> {
    /// Substitutes every variable in `text`, found at `field`.
    pub fn render(&mut self, field: &str, text: &str) -> Result<Rendered, RenderError> {
        let component = &self.blueprint.name;
        let unresolvable = |variable: String, reason: String| RenderError::Unresolvable {
            component: component.clone(),
            field: field.to_owned(),
            variable,
            reason,
        };
        let parts = parse_template(text).map_err(|reason| unresolvable(text.to_owned(), reason))?;
        let mut out = Rendered::default();
        for part in parts {
            let reference = match part {
                Part::Literal(text) => {
                    out.0.push(Segment::Text(text.to_owned()));
                    continue;
                }
                Part::Var(reference) => reference,
            };
            match &reference {
                VarRef::Param(name) => match self.params.get(name) {
                    Some(value) => out.extend(value),
                    None => {
                        return Err(unresolvable(
                            reference.to_string(),
                            format!("{component} declares no parameter '{name}'"),
                        ));
                    }
                },
                VarRef::Secret(name) => {
                    let key = format!("{component}.{name}");
                    self.secrets
                        .entry(key.clone())
                        .or_insert_with(generate_secret);
                    out.0.push(Segment::Secret(key));
                }
                VarRef::Dep { blueprint, export } => {
                    let exports = self
                        .exports
                        .get(blueprint)
                        .filter(|_| self.blueprint.dependencies.contains(blueprint))
                        .ok_or_else(|| {
                            unresolvable(
                                reference.to_string(),
                                format!("'{blueprint}' is not a dependency of {component}"),
                            )
                        })?;
                    let value = exports.get(export).ok_or_else(|| {
                        let keys: Vec<&str> = exports.keys().map(String::as_str).collect();
                        unresolvable(
                            reference.to_string(),
                            missing_export_message(blueprint, &keys, export),
                        )
                    })?;
                    out.extend(value);
                }
                VarRef::ServiceHost => out.0.push(Segment::Text(self.service_host.clone())),
                VarRef::ServicePort => match self.service_port {
                    Some(port) => out.0.push(Segment::Text(port.to_string())),
                    None => {
                        return Err(unresolvable(
                            reference.to_string(),
                            format!("{component} has no port"),
                        ));
                    }
                },
                VarRef::Namespace => out.0.push(Segment::Text(self.namespace.to_owned())),
            }
        }
        Ok(out)
    }

    /// Substitutes variables in a value that must not contain secrets (commands, sizes).
    pub fn render_plain(&mut self, field: &str, text: &str) -> Result<String, RenderError> {
        self.render(field, text)?
            .plain()
            .ok_or_else(|| RenderError::SecretNotAllowed {
                component: self.blueprint.name.clone(),
                field: field.to_owned(),
            })
    }
}
