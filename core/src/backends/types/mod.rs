//! The backend types the product knows, each a module implementing [`BackendType`]: what it
//! can do, which features it has, and the form templates frontends render for it.
//!
//! Adding a type is one module implementing the trait and one line in [`REGISTRY`].

mod custom;
mod managed;

use serde::Serialize;

use super::form::FormField;

pub use custom::Custom;
pub use managed::Managed;

/// What the orchestrator can do with backends of a type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Capabilities {
    /// Create new instances (from a blueprint).
    pub create: bool,
    /// Adopt a running service after validating it.
    pub adopt: bool,
    /// Delete the service itself (not just stop managing it).
    pub delete: bool,
    /// Edit its prompts through its API.
    pub update_prompts: bool,
}

/// One kind of backend.
pub trait BackendType: Send + Sync + std::fmt::Debug {
    /// Stable identifier (`managed`, `custom`), as stored and as given in the API.
    fn name(&self) -> &'static str;
    /// Name shown to people.
    fn label(&self) -> &'static str;
    /// One sentence on what it is and when to choose it.
    fn description(&self) -> &'static str;
    /// What the orchestrator can do with it.
    fn capabilities(&self) -> Capabilities;
    /// Features it offers (`knowledge_base`, `prompt_management`, ...).
    fn features(&self) -> Vec<&'static str>;
    /// The form for creating or adopting one; secret fields are stored encrypted.
    fn configuration_fields(&self) -> Vec<FormField>;
    /// The prompt form a new instance starts with; an adopted service's own schema
    /// (`GET /api/prompts/schema`) takes precedence.
    fn prompt_fields(&self) -> Vec<FormField>;
    /// The blueprint instances are created from, for types that can be created.
    fn blueprint(&self) -> Option<&'static str> {
        None
    }
    /// The `backend_type` values its services may report on `GET /health`.
    fn health_names(&self) -> Vec<&'static str> {
        vec![self.name()]
    }
}

/// Every backend type, in the order frontends list them.
pub static REGISTRY: &[&dyn BackendType] = &[&Managed, &Custom];

/// Every backend type.
pub fn registry() -> &'static [&'static dyn BackendType] {
    REGISTRY
}

/// The type named `name`, if there is one.
pub fn backend_type(name: &str) -> Option<&'static dyn BackendType> {
    REGISTRY.iter().copied().find(|t| t.name() == name)
}

/// The names of every type, for "expected one of" messages.
pub fn type_names() -> Vec<&'static str> {
    REGISTRY.iter().map(|t| t.name()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn registry_holds_the_seed_types() {
        assert_eq!(type_names(), vec!["managed", "custom"]);
        let managed = backend_type("managed").unwrap();
        assert_eq!(
            managed.capabilities(),
            Capabilities {
                create: true,
                adopt: true,
                delete: true,
                update_prompts: true
            }
        );
        assert_eq!(managed.blueprint(), Some("aaf-backend"));
        let custom = backend_type("custom").unwrap();
        assert_eq!(
            custom.capabilities(),
            Capabilities {
                create: false,
                adopt: true,
                delete: false,
                update_prompts: true
            }
        );
        assert_eq!(custom.blueprint(), None);
        assert!(backend_type("aaf").is_none());
    }

    #[test]
    fn templates_are_well_formed() {
        for ty in registry() {
            for fields in [ty.configuration_fields(), ty.prompt_fields()] {
                let mut seen = HashSet::new();
                for field in &fields {
                    assert!(seen.insert(field.name.clone()), "{}: duplicate", ty.name());
                    if let Some(default) = &field.default {
                        field.check_value(default).unwrap();
                    }
                    if field.field_type == crate::backends::FieldType::Select {
                        assert!(!field.options.is_empty(), "{}", field.name);
                    }
                }
            }
        }
    }

    #[test]
    fn api_keys_are_secret() {
        for ty in registry() {
            for field in ty.configuration_fields() {
                if field.name.contains("key") || field.name.contains("token") {
                    assert!(field.secret, "{}.{} must be secret", ty.name(), field.name);
                }
            }
        }
    }
}
