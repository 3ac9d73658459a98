//! Pipelines: a name and ordered stages. Builtins are defined here; user pipelines are
//! stored per project with the same shape.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{CoreError, CoreResult};

/// Default attempts of a stage when its definition does not say.
pub const DEFAULT_STAGE_ATTEMPTS: u32 = 3;
/// The action of stages that a registered remote worker runs.
pub const REMOTE_ACTION: &str = "remote";

/// Retry delays between attempts of a stage.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Backoff {
    /// Delay before the second attempt.
    pub initial_ms: u64,
    /// Upper bound of any delay.
    pub max_ms: u64,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial_ms: 500,
            max_ms: 30_000,
        }
    }
}

/// One stage of a pipeline.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StageSpec {
    pub name: String,
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capability: Option<String>,
    /// Static JSON merged over what the stage receives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff: Option<Backoff>,
}

/// A pipeline definition.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PipelineSpec {
    pub name: String,
    pub stages: Vec<StageSpec>,
}

fn stage(name: &str, action: &str) -> StageSpec {
    StageSpec {
        name: name.into(),
        action: action.into(),
        capability: None,
        input: None,
        timeout_ms: None,
        max_attempts: None,
        backoff: None,
    }
}

/// The pipelines that exist in every project.
pub fn builtin_pipelines() -> Vec<PipelineSpec> {
    vec![
        PipelineSpec {
            name: "noop".into(),
            stages: vec![
                stage("first", "noop"),
                stage("second", "noop"),
                stage("third", "noop"),
            ],
        },
        PipelineSpec {
            name: "sleep".into(),
            stages: vec![stage("sleep", "sleep")],
        },
    ]
}

/// The builtin pipeline called `name`.
pub fn builtin(name: &str) -> Option<PipelineSpec> {
    builtin_pipelines().into_iter().find(|p| p.name == name)
}

/// Shallow-merges `overlay` (an object) over `base`; a non-object base is replaced.
pub fn merge_input(base: &Value, overlay: Option<&Value>) -> Value {
    match (base, overlay) {
        (_, None) => base.clone(),
        (Value::Object(b), Some(Value::Object(o))) => {
            let mut merged = b.clone();
            for (k, v) in o {
                merged.insert(k.clone(), v.clone());
            }
            Value::Object(merged)
        }
        (_, Some(o)) => o.clone(),
    }
}

/// Most stages one pipeline may have.
pub const MAX_STAGES: usize = 50;
/// Most attempts one stage may have.
pub const MAX_STAGE_ATTEMPTS: u32 = 20;
/// Longest stage timeout (a day).
pub const MAX_TIMEOUT_MS: u64 = 86_400_000;
/// Longest delay between attempts (an hour).
pub const MAX_BACKOFF_MS: u64 = 3_600_000;
/// Largest static stage input, serialized.
pub const MAX_STATIC_INPUT_BYTES: usize = 64 * 1024;

/// True for names of pipelines, stages and capabilities: 1-64 letters, digits, `-`, `_`, `.`.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Checks a pipeline: its name, and stages with unique names, known actions, a capability on
/// remote stages only, and bounded timeouts, attempts, backoff and static input. `field` is
/// the input path errors start with (`input`, `input.definition`); `known_action` says which
/// built-in actions exist.
pub fn validate(
    spec: &PipelineSpec,
    field: &str,
    known_action: impl Fn(&str) -> bool,
) -> CoreResult<()> {
    if !is_valid_name(&spec.name) {
        return Err(CoreError::bad_input(
            format!("{field}.name"),
            "must be 1-64 letters, digits, '-', '_' or '.'",
        ));
    }
    if spec.stages.is_empty() || spec.stages.len() > MAX_STAGES {
        return Err(CoreError::bad_input(
            format!("{field}.stages"),
            format!("a pipeline needs 1 to {MAX_STAGES} stages"),
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for (i, s) in spec.stages.iter().enumerate() {
        let at = |part: &str| format!("{field}.stages[{i}].{part}");
        if !is_valid_name(&s.name) {
            return Err(CoreError::bad_input(
                at("name"),
                "must be 1-64 letters, digits, '-', '_' or '.'",
            ));
        }
        if !seen.insert(s.name.as_str()) {
            return Err(CoreError::bad_input(
                at("name"),
                format!("duplicate stage name {:?}", s.name),
            ));
        }
        if s.action == REMOTE_ACTION {
            match s.capability.as_deref() {
                None | Some("") => {
                    return Err(CoreError::bad_input(
                        at("capability"),
                        "a remote stage needs the capability a worker must have",
                    ));
                }
                Some(c) if !is_valid_name(c) => {
                    return Err(CoreError::bad_input(
                        at("capability"),
                        "must be 1-64 letters, digits, '-', '_' or '.'",
                    ));
                }
                Some(_) => {}
            }
        } else if !known_action(&s.action) {
            return Err(CoreError::bad_input(
                at("action"),
                format!(
                    "unknown action {:?}; use a built-in action or {REMOTE_ACTION:?}",
                    s.action
                ),
            ));
        } else if s.capability.is_some() {
            return Err(CoreError::bad_input(
                at("capability"),
                "only remote stages have a capability",
            ));
        }
        if let Some(input) = &s.input {
            if !input.is_object() {
                return Err(CoreError::bad_input(at("input"), "must be a JSON object"));
            }
            if serde_json::to_vec(input).map_or(0, |v| v.len()) > MAX_STATIC_INPUT_BYTES {
                return Err(CoreError::bad_input(
                    at("input"),
                    format!("must be at most {MAX_STATIC_INPUT_BYTES} bytes of JSON"),
                ));
            }
        }
        if s.timeout_ms.is_some_and(|t| t == 0 || t > MAX_TIMEOUT_MS) {
            return Err(CoreError::bad_input(
                at("timeoutMs"),
                format!("must be between 1 and {MAX_TIMEOUT_MS}"),
            ));
        }
        if s.max_attempts
            .is_some_and(|n| n == 0 || n > MAX_STAGE_ATTEMPTS)
        {
            return Err(CoreError::bad_input(
                at("maxAttempts"),
                format!("must be between 1 and {MAX_STAGE_ATTEMPTS}"),
            ));
        }
        if let Some(b) = &s.backoff
            && (b.max_ms < b.initial_ms || b.max_ms > MAX_BACKOFF_MS)
        {
            return Err(CoreError::bad_input(
                at("backoff"),
                format!("needs initialMs <= maxMs <= {MAX_BACKOFF_MS}"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_overlays_objects() {
        let merged = merge_input(&json!({"a": 1, "b": 2}), Some(&json!({"b": 3})));
        assert_eq!(merged, json!({"a": 1, "b": 3}));
        assert_eq!(merge_input(&json!(5), None), json!(5));
    }

    #[test]
    fn validation_names_the_stage() {
        let mut spec = builtin("noop").unwrap();
        spec.stages[1].name = "first".into();
        let err = validate(&spec, "input", |_| true).unwrap_err();
        assert!(err.to_string().starts_with("input.stages[1].name"), "{err}");
        let mut spec = builtin("noop").unwrap();
        spec.stages[2].action = "remote".into();
        let err = validate(&spec, "input", |_| true).unwrap_err();
        assert!(
            err.to_string().starts_with("input.stages[2].capability"),
            "{err}"
        );
        let mut spec = builtin("noop").unwrap();
        spec.stages[0].action = "teleport".into();
        let err = validate(&spec, "input.definition", |a| a == "noop").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("input.definition.stages[0].action"),
            "{err}"
        );
        let mut spec = builtin("noop").unwrap();
        spec.stages[0].max_attempts = Some(0);
        let err = validate(&spec, "input", |_| true).unwrap_err();
        assert!(
            err.to_string().starts_with("input.stages[0].maxAttempts"),
            "{err}"
        );
        assert!(validate(&builtin("noop").unwrap(), "input", |_| true).is_ok());
    }
}
