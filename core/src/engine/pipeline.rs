//! Pipelines: a name and ordered stages. Builtins are defined here; user pipelines are
//! stored per project with the same shape.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{CoreError, CoreResult};

/// Default attempts of a stage when its definition does not say.
pub const DEFAULT_STAGE_ATTEMPTS: u32 = 3;

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

/// Checks the shape of a stage list (names unique, actions known, capabilities present).
pub fn validate(spec: &PipelineSpec, known_action: impl Fn(&str) -> bool) -> CoreResult<()> {
    if spec.stages.is_empty() {
        return Err(CoreError::bad_input(
            "input.stages",
            "a pipeline needs at least one stage",
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for (i, s) in spec.stages.iter().enumerate() {
        let field = format!("input.stages[{i}]");
        if !seen.insert(s.name.as_str()) {
            return Err(CoreError::bad_input(
                format!("{field}.name"),
                format!("duplicate stage name {:?}", s.name),
            ));
        }
        if s.action == "remote" {
            if s.capability.as_deref().is_none_or(str::is_empty) {
                return Err(CoreError::bad_input(
                    format!("{field}.capability"),
                    "a remote stage needs the capability a worker must have",
                ));
            }
        } else if !known_action(&s.action) {
            return Err(CoreError::bad_input(
                format!("{field}.action"),
                format!("unknown action {:?}", s.action),
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
        let err = validate(&spec, |_| true).unwrap_err();
        assert!(err.to_string().contains("stages[1].name"), "{err}");
        let mut spec = builtin("noop").unwrap();
        spec.stages[2].action = "remote".into();
        let err = validate(&spec, |_| true).unwrap_err();
        assert!(err.to_string().contains("stages[2].capability"), "{err}");
    }
}
