//! Reading a blueprint from YAML, with errors a person can fix: each names the field (as a
//! path like `ports[0].port`), the line and column where known, and what to change.

use serde::Serialize;

use super::catalogue::Catalogue;
use super::model::Blueprint;
use super::references::validate_against;
use super::source_map::{Position, SourceMap, join_key};
use super::suggest::{closest, did_you_mean};
use super::validate::validate_local;

/// One problem in a blueprint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{}{field}: {message}", location_prefix(*line, *column))]
pub struct BlueprintError {
    /// Path of the offending field, e.g. `ports[0].port`; empty for the whole document.
    pub field: String,
    /// 1-based line in the YAML text, when known.
    pub line: Option<u32>,
    /// 1-based column in the YAML text, when known.
    pub column: Option<u32>,
    /// What is wrong and how to fix it.
    pub message: String,
}

fn location_prefix(line: Option<u32>, column: Option<u32>) -> String {
    match (line, column) {
        (Some(line), Some(column)) => format!("line {line}, column {column}: "),
        (Some(line), None) => format!("line {line}: "),
        _ => String::new(),
    }
}

impl BlueprintError {
    /// An error about `field` without a position yet.
    pub(crate) fn new(field: impl Into<String>, message: impl Into<String>) -> BlueprintError {
        BlueprintError {
            field: field.into(),
            line: None,
            column: None,
            message: message.into(),
        }
    }

    fn at(mut self, position: Option<Position>) -> BlueprintError {
        if let Some(position) = position {
            self.line = Some(position.line);
            self.column = Some(position.column);
        }
        self
    }
}

/// Parses and checks one blueprint on its own: syntax, keys, types, names, ports, and that
/// every `${variable}` is well formed and refers to something the blueprint declares.
///
/// Checks that need other blueprints (dependencies exist, referenced exports exist, no
/// cycles) are in [`validate_against`] and [`parse_blueprint_in`].
pub fn parse_blueprint(yaml: &str) -> Result<Blueprint, Vec<BlueprintError>> {
    let map = SourceMap::build(yaml);
    let blueprint = deserialize(yaml, &map)?;
    let errors = validate_local(&blueprint);
    if errors.is_empty() {
        Ok(blueprint)
    } else {
        Err(locate(errors, &map))
    }
}

/// Parses a blueprint and checks it against `catalogue` too, with line numbers on every
/// error. This is what accepting a user's blueprint should call.
pub fn parse_blueprint_in(
    yaml: &str,
    catalogue: &Catalogue,
) -> Result<Blueprint, Vec<BlueprintError>> {
    let map = SourceMap::build(yaml);
    let blueprint = deserialize(yaml, &map)?;
    let mut errors = validate_local(&blueprint);
    if let Err(more) = validate_against(&blueprint, catalogue) {
        errors.extend(more);
    }
    if errors.is_empty() {
        Ok(blueprint)
    } else {
        Err(locate(errors, &map))
    }
}

fn locate(errors: Vec<BlueprintError>, map: &SourceMap) -> Vec<BlueprintError> {
    errors
        .into_iter()
        .map(|error| {
            let position = map.value(&error.field);
            error.at(position)
        })
        .collect()
}

fn deserialize(yaml: &str, map: &SourceMap) -> Result<Blueprint, Vec<BlueprintError>> {
    if yaml.trim().is_empty() {
        return Err(vec![BlueprintError::new(
            "",
            "the document is empty; a blueprint needs at least name and defaults.image",
        )]);
    }
    let deserializer = serde_norway::Deserializer::from_str(yaml);
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        vec![describe(&path, &inner, map)]
    })
}

/// Turns a deserializer error into a [`BlueprintError`] with the field path and position.
fn describe(path: &str, error: &serde_norway::Error, map: &SourceMap) -> BlueprintError {
    // A path the deserializer could not fully name comes from a syntax error, which is best
    // placed where the YAML library found it.
    let syntax = path.contains('?');
    let path = known_path(path);
    let raw = strip_decorations(&error.to_string(), error.location());
    let yaml_position = error.location().map(|location| Position {
        line: u32::try_from(location.line()).unwrap_or(u32::MAX),
        column: u32::try_from(location.column()).unwrap_or(u32::MAX),
    });
    if let Some((unknown, allowed)) = parse_unknown_field(&raw) {
        // The path usually ends with the unknown key already.
        let field = if path == unknown || path.ends_with(&format!(".{unknown}")) {
            path.to_owned()
        } else {
            join_key(path, &unknown)
        };
        let suggestion = did_you_mean(&closest(&unknown, allowed.iter().map(String::as_str)));
        let message = format!(
            "unknown key '{unknown}'{suggestion} (allowed here: {})",
            allowed.join(", ")
        );
        let position = map.key(&field).or(yaml_position);
        return BlueprintError::new(field, message).at(position);
    }
    if let Some((unknown, allowed)) = parse_unknown_variant(&raw) {
        let suggestion = did_you_mean(&closest(&unknown, allowed.iter().map(String::as_str)));
        let message = format!(
            "unknown value '{unknown}'{suggestion} (allowed: {})",
            allowed.join(", ")
        );
        let position = map.value(path).or(yaml_position);
        return BlueprintError::new(path, message).at(position);
    }
    if let Some(missing) = parse_missing_field(&raw) {
        let field = join_key(path, &missing);
        let message = format!("required key '{missing}' is missing");
        let position = if path.is_empty() {
            yaml_position
        } else {
            map.value(path).or(yaml_position)
        };
        return BlueprintError::new(field, message).at(position);
    }
    let message = if raw.starts_with("invalid type") || raw.starts_with("invalid value") {
        format!("wrong type: {raw}")
    } else {
        raw
    };
    // Syntax errors come without a useful path; everything else is best placed at the value.
    let position = if path.is_empty() || syntax {
        yaml_position
    } else {
        map.value(path).or(yaml_position)
    };
    BlueprintError::new(path, message).at(position)
}

/// The part of a deserializer path that names real keys: `.` is the document and `?` marks
/// a segment the deserializer could not name (inside a syntax error), so `defaults.?` is
/// reported as `defaults`.
fn known_path(path: &str) -> &str {
    let known = path.split_once('?').map_or(path, |(before, _)| before);
    known.trim_end_matches('.')
}

/// Removes the `path: ` prefix and ` at line L column C` suffix the YAML library adds.
fn strip_decorations(text: &str, location: Option<serde_norway::Location>) -> String {
    let mut text = text;
    if let Some(location) = location {
        let suffix = format!(" at line {} column {}", location.line(), location.column());
        if let Some(stripped) = text.strip_suffix(&suffix) {
            text = stripped;
        }
    }
    if let Some((prefix, rest)) = text.split_once(": ")
        && !prefix.is_empty()
        && !prefix.contains(char::is_whitespace)
        && !prefix.contains('`')
    {
        text = rest;
    }
    text.to_owned()
}

/// `unknown field `x`, expected one of `a`, `b`` → (`x`, [`a`, `b`]).
fn parse_unknown_field(message: &str) -> Option<(String, Vec<String>)> {
    split_backticked(message.strip_prefix("unknown field `")?)
}

/// `unknown variant `x`, expected one of `a`, `b`` → (`x`, [`a`, `b`]).
fn parse_unknown_variant(message: &str) -> Option<(String, Vec<String>)> {
    split_backticked(message.strip_prefix("unknown variant `")?)
}

fn split_backticked(rest: &str) -> Option<(String, Vec<String>)> {
    let (unknown, rest) = rest.split_once('`')?;
    let allowed = rest
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect();
    Some((unknown.to_owned(), allowed))
}

/// `missing field `x`` → `x`.
fn parse_missing_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("missing field `")?;
    Some(rest.split('`').next()?.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_unknown_field_messages() {
        let (unknown, allowed) =
            parse_unknown_field("unknown field `prot`, expected one of `name`, `port`")
                .expect("parsed");
        assert_eq!(unknown, "prot");
        assert_eq!(allowed, vec!["name", "port"]);
        assert_eq!(
            parse_missing_field("missing field `image`").as_deref(),
            Some("image")
        );
    }

    #[test]
    fn unnamed_path_segments_are_dropped() {
        assert_eq!(known_path("."), "");
        assert_eq!(known_path("defaults.?"), "defaults");
        assert_eq!(known_path("?"), "");
        assert_eq!(known_path("ports[0].port"), "ports[0].port");
    }

    #[test]
    fn error_display_names_position_and_field() {
        let error = BlueprintError {
            field: "ports[0].port".into(),
            line: Some(4),
            column: Some(11),
            message: "bad".into(),
        };
        assert_eq!(error.to_string(), "line 4, column 11: ports[0].port: bad");
    }
}
