//! Checking a backend's configuration against its type's configuration form, and splitting
//! the secret values out so the caller can encrypt them.

use serde_json::{Map, Value};

use super::form::{FormField, kind};
use super::types::BackendType;
use crate::error::{CoreError, CoreResult};

/// Where configuration errors point.
pub const CONFIGURATION_FIELD: &str = "input.configuration";

/// A configuration that passed [`validate_configuration`], defaults filled in.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ValidatedConfiguration {
    /// Values that may be stored and shown as they are.
    pub public: Map<String, Value>,
    /// Values of secret fields; the caller encrypts them and never shows them again.
    pub secrets: Map<String, Value>,
}

/// Checks `config` (a JSON object; `null` counts as empty) against the configuration fields
/// of `ty`: no unknown keys, required fields present, values of the field's type (and one of
/// its options). Missing optional fields get their default. Errors name the field
/// (`input.configuration.<key>`) and what was expected.
pub fn validate_configuration(
    ty: &dyn BackendType,
    config: &Value,
) -> CoreResult<ValidatedConfiguration> {
    let empty = Map::new();
    let given = match config {
        Value::Null => &empty,
        Value::Object(map) => map,
        other => {
            return Err(CoreError::bad_input(
                CONFIGURATION_FIELD,
                format!("must be an object, got {}", kind(other)),
            ));
        }
    };
    let fields = ty.configuration_fields();
    if let Some(unknown) = given
        .keys()
        .find(|key| !fields.iter().any(|f| &f.name == *key))
    {
        return Err(CoreError::bad_input(
            format!("{CONFIGURATION_FIELD}.{unknown}"),
            format!(
                "is not a configuration field of {} backends; known fields: {}",
                ty.name(),
                names(&fields)
            ),
        ));
    }
    let mut out = ValidatedConfiguration::default();
    for field in &fields {
        let path = format!("{CONFIGURATION_FIELD}.{}", field.name);
        let value = match given.get(&field.name).filter(|v| !v.is_null()) {
            Some(value) => value.clone(),
            None => match (&field.default, field.required) {
                (Some(default), _) => default.clone(),
                (None, true) => return Err(CoreError::bad_input(path, "is required")),
                (None, false) => continue,
            },
        };
        field
            .check_value(&value)
            .map_err(|why| CoreError::bad_input(&path, why))?;
        if field.required && value.as_str().is_some_and(|s| s.trim().is_empty()) {
            return Err(CoreError::bad_input(
                path,
                "is required and must not be empty",
            ));
        }
        let target = if field.secret {
            &mut out.secrets
        } else {
            &mut out.public
        };
        target.insert(field.name.clone(), value);
    }
    Ok(out)
}

fn names(fields: &[FormField]) -> String {
    fields
        .iter()
        .map(|f| f.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backends::types::backend_type;
    use serde_json::json;

    fn managed() -> &'static dyn BackendType {
        backend_type("managed").unwrap()
    }

    #[test]
    fn secrets_are_split_out_and_defaults_filled_in() {
        let done = validate_configuration(
            managed(),
            &json!({"instance_name": "bot-1", "openai_api_key": "sk-test"}),
        )
        .unwrap();
        assert_eq!(
            done.secrets,
            json!({"openai_api_key": "sk-test"})
                .as_object()
                .unwrap()
                .clone()
        );
        assert_eq!(done.public["instance_name"], "bot-1");
        assert_eq!(done.public["model"], "gpt-4o-mini", "default filled in");
        assert!(!done.public.contains_key("openai_api_key"));
        assert!(!done.public.contains_key("bigquery_dataset_id"));
    }

    #[test]
    fn errors_name_the_field() {
        let err = |config: Value| {
            validate_configuration(managed(), &config)
                .unwrap_err()
                .to_string()
        };
        let text = err(json!({"instance_name": "a", "openai_api_key": "k", "colour": "red"}));
        assert!(
            text.starts_with("input.configuration.colour: is not a configuration field"),
            "{text}"
        );
        assert!(text.contains("instance_name"), "{text}");
        let text = err(json!({"instance_name": "a"}));
        assert_eq!(text, "input.configuration.openai_api_key: is required");
        let text = err(json!({"instance_name": 5, "openai_api_key": "k"}));
        assert_eq!(
            text,
            "input.configuration.instance_name: must be a string, got a number"
        );
        let text = err(json!({"instance_name": " ", "openai_api_key": "k"}));
        assert!(text.contains("must not be empty"), "{text}");
        let text = err(json!(["not", "an", "object"]));
        assert_eq!(text, "input.configuration: must be an object, got an array");
    }

    #[test]
    fn custom_backends_need_a_url() {
        let custom = backend_type("custom").unwrap();
        assert!(validate_configuration(custom, &Value::Null).is_err());
        let done =
            validate_configuration(custom, &json!({"url": "http://bot.example.com"})).unwrap();
        assert!(done.secrets.is_empty());
    }
}
