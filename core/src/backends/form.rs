//! Form templates: the fields a frontend renders to configure a backend or edit its prompts,
//! and the one check of a value against a field that configuration and prompts share.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Longest string value a field accepts (bytes).
pub const MAX_VALUE_BYTES: usize = 64 * 1024;

/// The widget, and the JSON type of the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    /// One line of text; a JSON string.
    Text,
    /// Several lines of text; a JSON string.
    Textarea,
    /// A JSON number.
    Number,
    /// One of `options`; a JSON string.
    Select,
    /// A JSON `true` or `false`.
    Boolean,
    /// Text shown masked (configuration forms only); a JSON string.
    Password,
}

impl FieldType {
    /// The name used on the wire (`text`, `textarea`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            FieldType::Text => "text",
            FieldType::Textarea => "textarea",
            FieldType::Number => "number",
            FieldType::Select => "select",
            FieldType::Boolean => "boolean",
            FieldType::Password => "password",
        }
    }

    /// The type named `name` (`text`, `textarea`, ...).
    pub fn parse(name: &str) -> Option<FieldType> {
        [
            FieldType::Text,
            FieldType::Textarea,
            FieldType::Number,
            FieldType::Select,
            FieldType::Boolean,
            FieldType::Password,
        ]
        .into_iter()
        .find(|t| t.as_str() == name)
    }
}

/// One field of a form template (seed 000's `configuration_fields` / `prompt_fields`, and the
/// fields of a custom backend's prompt schema).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FormField {
    /// Key of the value in the JSON object.
    pub name: String,
    /// What a person sees.
    pub label: String,
    /// Widget and value type.
    #[serde(rename = "type")]
    pub field_type: FieldType,
    /// The value must be present (and not null).
    #[serde(default)]
    pub required: bool,
    /// The allowed values of a `select`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
    /// Value used when none is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    /// The value is a secret: stored encrypted, never shown again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub secret: bool,
    /// A hint shown under the field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
}

impl FormField {
    /// An optional field of `field_type`.
    pub fn new(name: &str, label: &str, field_type: FieldType) -> FormField {
        FormField {
            name: name.into(),
            label: label.into(),
            field_type,
            required: false,
            options: Vec::new(),
            default: None,
            secret: false,
            help: None,
        }
    }

    /// The same field, required.
    pub fn required(mut self) -> FormField {
        self.required = true;
        self
    }

    /// The same field, secret.
    pub fn secret(mut self) -> FormField {
        self.secret = true;
        self
    }

    /// The same field with these `select` options.
    pub fn options(mut self, options: &[&str]) -> FormField {
        self.options = options.iter().map(|o| o.to_string()).collect();
        self
    }

    /// The same field with a default value.
    pub fn default_value(mut self, value: Value) -> FormField {
        self.default = Some(value);
        self
    }

    /// The same field with a hint.
    pub fn help(mut self, help: &str) -> FormField {
        self.help = Some(help.into());
        self
    }

    /// Checks a present, non-null `value` against the field's type (and options); the error
    /// says what was expected, for a message that names the field.
    pub fn check_value(&self, value: &Value) -> Result<(), String> {
        match self.field_type {
            FieldType::Text | FieldType::Textarea | FieldType::Password => match value {
                Value::String(s) if s.len() > MAX_VALUE_BYTES => {
                    Err(format!("must be at most {MAX_VALUE_BYTES} bytes"))
                }
                Value::String(_) => Ok(()),
                other => Err(format!("must be a string, got {}", kind(other))),
            },
            FieldType::Number => match value {
                Value::Number(_) => Ok(()),
                other => Err(format!("must be a number, got {}", kind(other))),
            },
            FieldType::Boolean => match value {
                Value::Bool(_) => Ok(()),
                other => Err(format!("must be true or false, got {}", kind(other))),
            },
            FieldType::Select => match value {
                Value::String(s) if self.options.iter().any(|o| o == s) => Ok(()),
                Value::String(s) => Err(format!(
                    "must be one of {}, got {s:?}",
                    quoted_list(&self.options)
                )),
                other => Err(format!(
                    "must be one of {}, got {}",
                    quoted_list(&self.options),
                    kind(other)
                )),
            },
        }
    }
}

/// The JSON kind of `value`, for messages.
pub fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `"a", "b", "c"`.
pub fn quoted_list(items: &[String]) -> String {
    items
        .iter()
        .map(|i| format!("{i:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_are_checked_against_the_type() {
        let text = FormField::new("t", "T", FieldType::Text);
        assert!(text.check_value(&json!("hi")).is_ok());
        assert_eq!(
            text.check_value(&json!(3)).unwrap_err(),
            "must be a string, got a number"
        );
        let number = FormField::new("n", "N", FieldType::Number);
        assert!(number.check_value(&json!(0.7)).is_ok());
        assert!(number.check_value(&json!("0.7")).is_err());
        let flag = FormField::new("b", "B", FieldType::Boolean);
        assert!(flag.check_value(&json!(false)).is_ok());
        assert!(flag.check_value(&json!("false")).is_err());
        let select = FormField::new("s", "S", FieldType::Select).options(&["a", "b"]);
        assert!(select.check_value(&json!("b")).is_ok());
        assert_eq!(
            select.check_value(&json!("c")).unwrap_err(),
            "must be one of \"a\", \"b\", got \"c\""
        );
        let long = json!("x".repeat(MAX_VALUE_BYTES + 1));
        assert!(text.check_value(&long).is_err());
    }

    #[test]
    fn fields_speak_the_seed_format() {
        let field = FormField::new("api_key", "API key", FieldType::Password)
            .required()
            .secret();
        let wire = serde_json::to_value(&field).unwrap();
        assert_eq!(
            wire,
            json!({"name": "api_key", "label": "API key", "type": "password",
                "required": true, "secret": true})
        );
        assert_eq!(FieldType::parse("textarea"), Some(FieldType::Textarea));
        assert_eq!(FieldType::parse("colour"), None);
    }
}
