//! The JSON Schema of the blueprint format, generated from the Rust types so editors and
//! the checked-in `blueprints/schema.json` never drift from what the parser accepts.

use super::model::Blueprint;

/// The JSON Schema (draft 2020-12) of a blueprint document, pretty-printed with a final
/// newline, exactly as checked in at `blueprints/schema.json`.
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(Blueprint);
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fails when the checked-in schema differs from the types. To regenerate:
    /// `UPDATE_SCHEMA=1 cargo test -p orchestrator-core blueprint::schema`.
    #[test]
    fn checked_in_schema_matches_the_types() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../blueprints/schema.json");
        let generated = json_schema();
        if std::env::var_os("UPDATE_SCHEMA").is_some_and(|v| v == "1") {
            std::fs::write(path, &generated).expect("write blueprints/schema.json");
            return;
        }
        let checked_in = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            checked_in == generated,
            "blueprints/schema.json is out of date with the blueprint types; regenerate it with \
             `UPDATE_SCHEMA=1 cargo test -p orchestrator-core blueprint::schema` and commit the result"
        );
    }

    #[test]
    fn schema_rejects_unknown_keys_and_names_camel_case_fields() {
        let schema: serde_json::Value = serde_json::from_str(&json_schema()).expect("valid JSON");
        assert_eq!(schema["additionalProperties"], serde_json::json!(false));
        let volume = &schema["$defs"]["VolumeSpec"]["properties"];
        assert!(volume.get("mountPath").is_some(), "{volume}");
        let port = &schema["$defs"]["PortSpec"]["properties"];
        assert!(port.get("targetPort").is_some(), "{port}");
    }
}
