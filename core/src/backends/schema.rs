//! A backend's prompt schema (`GET /api/prompts/schema`, CONTRACTS §3): reading it from the
//! wire and checking that it is well formed before anything relies on it.

use std::collections::HashSet;

use serde::Serialize;
use serde_json::Value;

use super::form::{FieldType, FormField, kind};

/// Most fields a prompt schema may have.
pub const MAX_SCHEMA_FIELDS: usize = 200;
/// Longest field name.
pub const MAX_FIELD_NAME: usize = 128;

/// The field types the custom-backend contract allows in a prompt schema.
pub const PROMPT_FIELD_TYPES: [FieldType; 5] = [
    FieldType::Text,
    FieldType::Textarea,
    FieldType::Number,
    FieldType::Select,
    FieldType::Boolean,
];

/// The prompt fields of a backend, in the order the backend listed them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PromptSchema {
    pub fields: Vec<FormField>,
}

/// Everything wrong with a schema, each problem with its place (`fields[2].type: …`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.join("; "))]
pub struct SchemaError(pub Vec<String>);

impl PromptSchema {
    /// A schema of these fields (a type's template, or one already checked).
    pub fn from_fields(fields: Vec<FormField>) -> PromptSchema {
        PromptSchema { fields }
    }

    /// The field named `name`.
    pub fn field(&self, name: &str) -> Option<&FormField> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// Reads a schema answer and checks it: an object with a `fields` array; each field with
    /// a unique, non-empty `name`, a known `type`, a boolean `required` (default false), a
    /// string `label` (default: the name); a `select` with at least one option; a `default`
    /// of the field's type. Unknown keys on a field are ignored.
    pub fn from_json(answer: &Value) -> Result<PromptSchema, SchemaError> {
        let list = match answer.get("fields") {
            Some(Value::Array(list)) => list,
            Some(other) => {
                return Err(SchemaError(vec![format!(
                    "fields: must be an array, got {}",
                    kind(other)
                )]));
            }
            None => {
                return Err(SchemaError(vec![
                    "must be an object with a \"fields\" array".into(),
                ]));
            }
        };
        if list.len() > MAX_SCHEMA_FIELDS {
            return Err(SchemaError(vec![format!(
                "fields: has {} entries, at most {MAX_SCHEMA_FIELDS} are accepted",
                list.len()
            )]));
        }
        let mut problems = Vec::new();
        let mut fields = Vec::new();
        let mut names = HashSet::new();
        for (i, entry) in list.iter().enumerate() {
            match read_field(entry) {
                Ok(field) => {
                    if !names.insert(field.name.clone()) {
                        problems.push(format!(
                            "fields[{i}].name: {:?} is listed twice",
                            field.name
                        ));
                    }
                    fields.push(field);
                }
                Err(found) => problems.extend(found.into_iter().map(|p| format!("fields[{i}]{p}"))),
            }
        }
        if problems.is_empty() {
            Ok(PromptSchema { fields })
        } else {
            Err(SchemaError(problems))
        }
    }
}

/// One field entry; problems are returned as `.key: what is wrong`.
fn read_field(entry: &Value) -> Result<FormField, Vec<String>> {
    let Value::Object(map) = entry else {
        return Err(vec![format!(": must be an object, got {}", kind(entry))]);
    };
    let mut problems = Vec::new();
    let name = match map.get("name") {
        Some(Value::String(n)) if !n.trim().is_empty() && n.chars().count() <= MAX_FIELD_NAME => {
            n.clone()
        }
        Some(Value::String(_)) => {
            problems.push(format!(".name: must be 1 to {MAX_FIELD_NAME} characters"));
            String::new()
        }
        Some(other) => {
            problems.push(format!(".name: must be a string, got {}", kind(other)));
            String::new()
        }
        None => {
            problems.push(".name: is missing".into());
            String::new()
        }
    };
    let label = match map.get("label") {
        None | Some(Value::Null) => name.clone(),
        Some(Value::String(l)) => l.clone(),
        Some(other) => {
            problems.push(format!(".label: must be a string, got {}", kind(other)));
            String::new()
        }
    };
    let allowed = PROMPT_FIELD_TYPES.map(FieldType::as_str).join(", ");
    let field_type = match map.get("type") {
        Some(Value::String(t)) => {
            match FieldType::parse(t).filter(|t| PROMPT_FIELD_TYPES.contains(t)) {
                Some(t) => Some(t),
                None => {
                    problems.push(format!(
                        ".type: unknown type {t:?}; expected one of {allowed}"
                    ));
                    None
                }
            }
        }
        Some(other) => {
            problems.push(format!(".type: must be a string, got {}", kind(other)));
            None
        }
        None => {
            problems.push(format!(".type: is missing; expected one of {allowed}"));
            None
        }
    };
    let required = match map.get("required") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            problems.push(format!(
                ".required: must be true or false, got {}",
                kind(other)
            ));
            false
        }
    };
    let options = match map.get("options") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => {
            let strings: Vec<String> = items
                .iter()
                .filter_map(|o| o.as_str().map(str::to_string))
                .collect();
            if strings.len() != items.len() {
                problems.push(".options: must be an array of strings".into());
            }
            strings
        }
        Some(other) => {
            problems.push(format!(".options: must be an array, got {}", kind(other)));
            Vec::new()
        }
    };
    let Some(field_type) = field_type else {
        return Err(problems);
    };
    if field_type == FieldType::Select && options.is_empty() {
        problems.push(".options: a select needs at least one option".into());
    }
    let field = FormField {
        name,
        label,
        field_type,
        required,
        options,
        default: map.get("default").filter(|d| !d.is_null()).cloned(),
        secret: false,
        help: map.get("help").and_then(Value::as_str).map(str::to_string),
    };
    if problems.is_empty()
        && let Some(default) = &field.default
        && let Err(why) = field.check_value(default)
    {
        problems.push(format!(".default: {why}"));
    }
    if problems.is_empty() {
        Ok(field)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_the_contract_example() {
        let schema = PromptSchema::from_json(&json!({"fields": [
            {"name": "main_prompt", "label": "Main Prompt", "type": "textarea", "required": true},
            {"name": "tone", "type": "select", "options": ["calm", "cheerful"], "default": "calm"},
            {"name": "temperature", "label": "T", "type": "number", "default": 0.5, "placeholder": "x"}
        ]}))
        .unwrap();
        assert_eq!(schema.fields.len(), 3);
        assert!(schema.field("main_prompt").unwrap().required);
        assert_eq!(
            schema.field("tone").unwrap().label,
            "tone",
            "label defaults to the name"
        );
    }

    #[test]
    fn every_problem_is_reported_with_its_place() {
        let err = PromptSchema::from_json(&json!({"fields": [
            {"name": "a", "type": "text"},
            {"name": "a", "type": "text"},
            {"name": "b", "type": "colour"},
            {"name": "c", "type": "select"},
            {"name": "d", "type": "number", "default": "high"},
            {"type": "text", "required": "yes"},
            "oops"
        ]}))
        .unwrap_err();
        let text = err.to_string();
        for needle in [
            "fields[1].name: \"a\" is listed twice",
            "fields[2].type: unknown type \"colour\"",
            "fields[3].options: a select needs at least one option",
            "fields[4].default: must be a number, got a string",
            "fields[5].name: is missing",
            "fields[5].required: must be true or false",
            "fields[6]: must be an object, got a string",
        ] {
            assert!(text.contains(needle), "{needle} missing from {text}");
        }
        assert!(PromptSchema::from_json(&json!({"fields": {}})).is_err());
        assert!(PromptSchema::from_json(&json!([1])).is_err());
        let password =
            PromptSchema::from_json(&json!({"fields": [{"name": "p", "type": "password"}]}));
        assert!(password.is_err(), "password is not a prompt field type");
    }
}
