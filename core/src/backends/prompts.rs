//! Prompt values: checking them against a backend's schema before they are stored or pushed,
//! and the per-field difference between two versions.

use serde::Serialize;
use serde_json::{Map, Value};

use super::form::kind;
use super::schema::PromptSchema;
use crate::error::{CoreError, CoreResult, InputProblem};

/// Every problem of `values` against `schema`, as `(field name, what is wrong)`; the name is
/// empty when `values` is not an object at all. Order: the schema's fields, then unknown
/// fields by name. `null` counts as absent.
pub fn prompt_problems(schema: &PromptSchema, values: &Value) -> Vec<(String, String)> {
    let Value::Object(values) = values else {
        return vec![(
            String::new(),
            format!("must be an object of field values, got {}", kind(values)),
        )];
    };
    let mut problems = Vec::new();
    for field in &schema.fields {
        match values.get(&field.name).filter(|v| !v.is_null()) {
            None if field.required => problems.push((field.name.clone(), "is required".into())),
            None => {}
            Some(value) => {
                if let Err(why) = field.check_value(value) {
                    problems.push((field.name.clone(), why));
                }
            }
        }
    }
    let mut unknown: Vec<&String> = values
        .keys()
        .filter(|key| schema.field(key).is_none())
        .collect();
    unknown.sort();
    for key in unknown {
        problems.push((key.clone(), "is not a field of the prompt schema".into()));
    }
    problems
}

/// Checks `values` against `schema` (see [`prompt_problems`]). One problem is a
/// `BadInput` naming `<field_prefix>.<field>`; several are one `Invalid` error on
/// `field_prefix` listing each, every one naming its field.
pub fn validate_prompts(
    schema: &PromptSchema,
    values: &Value,
    field_prefix: &str,
) -> CoreResult<()> {
    let path = |name: &str| {
        if name.is_empty() {
            field_prefix.to_string()
        } else {
            format!("{field_prefix}.{name}")
        }
    };
    let problems = prompt_problems(schema, values);
    match problems.as_slice() {
        [] => Ok(()),
        [(name, message)] => Err(CoreError::bad_input(path(name), message.clone())),
        many => Err(CoreError::Invalid {
            field: field_prefix.to_string(),
            message: format!(
                "{} problems: {}",
                many.len(),
                many.iter()
                    .map(|(name, message)| format!("{} {message}", path(name)))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            details: many
                .iter()
                .map(|(name, message)| InputProblem {
                    field: path(name),
                    line: None,
                    column: None,
                    message: message.clone(),
                })
                .collect(),
        }),
    }
}

/// How one field differs between two versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    /// Only in the newer version.
    Added,
    /// Only in the older version.
    Removed,
    /// In both, with different values.
    Changed,
}

/// One field that differs between two versions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldChange {
    pub field: String,
    /// The value in the older version (`None` when added).
    pub before: Option<Value>,
    /// The value in the newer version (`None` when removed).
    pub after: Option<Value>,
    pub kind: ChangeKind,
}

/// The fields that differ from `from` to `to`, sorted by field name. A side that is not an
/// object (e.g. `null` for "no version yet") has no fields.
pub fn diff(from: &Value, to: &Value) -> Vec<FieldChange> {
    let empty = Map::new();
    let from = from.as_object().unwrap_or(&empty);
    let to = to.as_object().unwrap_or(&empty);
    let mut names: Vec<&String> = from.keys().chain(to.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter_map(|name| {
            let (before, after) = (from.get(name), to.get(name));
            let kind = match (before, after) {
                (None, Some(_)) => ChangeKind::Added,
                (Some(_), None) => ChangeKind::Removed,
                (Some(b), Some(a)) if b != a => ChangeKind::Changed,
                _ => return None,
            };
            Some(FieldChange {
                field: name.clone(),
                before: before.cloned(),
                after: after.cloned(),
                kind,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backends::form::{FieldType, FormField};
    use serde_json::json;

    fn schema() -> PromptSchema {
        PromptSchema::from_fields(vec![
            FormField::new("main_prompt", "Main", FieldType::Textarea).required(),
            FormField::new("model", "Model", FieldType::Select).options(&["small", "large"]),
            FormField::new("temperature", "T", FieldType::Number),
            FormField::new("memory", "M", FieldType::Boolean),
        ])
    }

    #[test]
    fn good_values_pass() {
        let values = json!({"main_prompt": "Hi", "model": "small", "temperature": 0.3,
            "memory": true});
        validate_prompts(&schema(), &values, "prompts").unwrap();
        validate_prompts(
            &schema(),
            &json!({"main_prompt": "Hi", "model": null}),
            "prompts",
        )
        .unwrap();
    }

    #[test]
    fn one_problem_names_its_field() {
        let cases = [
            (json!({}), "prompts.main_prompt: is required"),
            (
                json!({"main_prompt": null}),
                "prompts.main_prompt: is required",
            ),
            (
                json!({"main_prompt": 1}),
                "prompts.main_prompt: must be a string, got a number",
            ),
            (
                json!({"main_prompt": "x", "temperature": "0.7"}),
                "prompts.temperature: must be a number, got a string",
            ),
            (
                json!({"main_prompt": "x", "memory": "yes"}),
                "prompts.memory: must be true or false, got a string",
            ),
            (
                json!({"main_prompt": "x", "model": "huge"}),
                "prompts.model: must be one of \"small\", \"large\", got \"huge\"",
            ),
            (
                json!({"main_prompt": "x", "colour": "red"}),
                "prompts.colour: is not a field of the prompt schema",
            ),
            (
                json!("text"),
                "prompts: must be an object of field values, got a string",
            ),
        ];
        for (values, want) in cases {
            let err = validate_prompts(&schema(), &values, "prompts").unwrap_err();
            assert!(matches!(err, CoreError::BadInput { .. }), "{err}");
            assert_eq!(err.to_string(), want);
        }
    }

    #[test]
    fn several_problems_are_listed_each_with_its_field() {
        let err = validate_prompts(
            &schema(),
            &json!({"temperature": true, "b": 1, "a": 2}),
            "input.prompts",
        )
        .unwrap_err();
        let CoreError::Invalid { field, details, .. } = &err else {
            panic!("{err}");
        };
        assert_eq!(field, "input.prompts");
        let fields: Vec<&str> = details.iter().map(|d| d.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "input.prompts.main_prompt",
                "input.prompts.temperature",
                "input.prompts.a",
                "input.prompts.b"
            ]
        );
    }

    #[test]
    fn diff_lists_changed_fields_by_name() {
        let from = json!({"b": 1, "a": "x", "same": true, "gone": 0});
        let to = json!({"a": "y", "b": 1, "same": true, "new": [1]});
        let changes = diff(&from, &to);
        let summary: Vec<(&str, ChangeKind)> =
            changes.iter().map(|c| (c.field.as_str(), c.kind)).collect();
        assert_eq!(
            summary,
            [
                ("a", ChangeKind::Changed),
                ("gone", ChangeKind::Removed),
                ("new", ChangeKind::Added)
            ]
        );
        assert_eq!(changes[0].before, Some(json!("x")));
        assert_eq!(changes[0].after, Some(json!("y")));
        assert_eq!(changes[1].after, None);
        assert_eq!(
            diff(&Value::Null, &json!({"a": 1}))[0].kind,
            ChangeKind::Added
        );
        assert!(diff(&from, &from).is_empty());
    }
}
