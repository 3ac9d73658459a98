//! `managed` (seed name: AAF): a LangSwarm-powered chatbot backend the orchestrator creates
//! from the `aaf-backend` blueprint, can delete, and whose prompts it edits.

use serde_json::json;

use super::{BackendType, Capabilities};
use crate::backends::form::{FieldType, FormField};

/// The managed backend type.
#[derive(Debug, Clone, Copy)]
pub struct Managed;

impl BackendType for Managed {
    fn name(&self) -> &'static str {
        "managed"
    }

    fn label(&self) -> &'static str {
        "Managed (AAF)"
    }

    fn description(&self) -> &'static str {
        "LangSwarm-powered chatbot backend with the complete feature set, created and run by the orchestrator."
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            create: true,
            adopt: true,
            delete: true,
            update_prompts: true,
        }
    }

    fn features(&self) -> Vec<&'static str> {
        vec![
            "demo_management",
            "knowledge_base",
            "multi_tools",
            "config_editor",
            "prompt_management",
        ]
    }

    fn configuration_fields(&self) -> Vec<FormField> {
        vec![
            FormField::new("instance_name", "Instance name", FieldType::Text)
                .required()
                .help("Lowercase letters, digits and '-'; names the deployed service."),
            FormField::new("openai_api_key", "OpenAI API key", FieldType::Password)
                .required()
                .secret()
                .help("Stored encrypted; never shown again."),
            FormField::new("openai_base_url", "Model API URL", FieldType::Text)
                .default_value(json!("https://api.openai.com/v1"))
                .help("Base URL of an OpenAI-compatible API."),
            FormField::new("model", "Default model", FieldType::Text)
                .default_value(json!("gpt-4o-mini")),
            FormField::new("bigquery_dataset_id", "BigQuery dataset", FieldType::Text)
                .help("Dataset that keeps chat sessions, when they are exported."),
        ]
    }

    fn prompt_fields(&self) -> Vec<FormField> {
        vec![
            FormField::new("system_prompt", "System prompt", FieldType::Textarea)
                .required()
                .default_value(json!("You are a helpful assistant.")),
            FormField::new("model", "Model", FieldType::Text).default_value(json!("gpt-4o-mini")),
            FormField::new("temperature", "Temperature", FieldType::Number)
                .default_value(json!(0.7))
                .help("0 is focused, 1 is creative."),
        ]
    }

    fn blueprint(&self) -> Option<&'static str> {
        Some("aaf-backend")
    }

    fn health_names(&self) -> Vec<&'static str> {
        // The aaf-backend image speaks the custom-backend contract and says so.
        vec!["managed", "aaf", "custom"]
    }
}
