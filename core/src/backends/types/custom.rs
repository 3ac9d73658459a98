//! `custom`: an existing AI service the orchestrator adopts after checking that it speaks the
//! custom-backend contract (CONTRACTS §3). Only its prompts are managed; it is never created
//! or deleted, only taken under management and released.

use super::{BackendType, Capabilities};
use crate::backends::form::{FieldType, FormField};

/// The custom backend type.
#[derive(Debug, Clone, Copy)]
pub struct Custom;

impl BackendType for Custom {
    fn name(&self) -> &'static str {
        "custom"
    }

    fn label(&self) -> &'static str {
        "Custom"
    }

    fn description(&self) -> &'static str {
        "An existing AI service brought under unified prompt control; it keeps running as it is."
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            create: false,
            adopt: true,
            delete: false,
            update_prompts: true,
        }
    }

    fn features(&self) -> Vec<&'static str> {
        vec!["prompt_management"]
    }

    fn configuration_fields(&self) -> Vec<FormField> {
        vec![
            FormField::new("url", "Service URL", FieldType::Text)
                .required()
                .help("Base URL of the service, e.g. https://bot.example.com; it must answer GET /health and the /api/prompts endpoints."),
        ]
    }

    fn prompt_fields(&self) -> Vec<FormField> {
        vec![FormField::new("main_prompt", "Main prompt", FieldType::Textarea).required()]
    }
}
