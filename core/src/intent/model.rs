//! What an intent command means, once parsed.

use serde::{Deserialize, Serialize};

use crate::blueprint::Platform;

/// What the user wants done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IntentAction {
    /// `install`, `deploy`, `add`.
    Install,
    /// `remove`, `uninstall`, `delete`.
    Remove,
    /// `scale … to N`.
    Scale,
    /// `update`, `upgrade` [to version V].
    Update,
    /// `restart`.
    Restart,
}

impl IntentAction {
    /// The lowercase name stored on the intent.
    pub fn as_str(self) -> &'static str {
        match self {
            IntentAction::Install => "install",
            IntentAction::Remove => "remove",
            IntentAction::Scale => "scale",
            IntentAction::Update => "update",
            IntentAction::Restart => "restart",
        }
    }

    /// The action called `name` (as stored by [`IntentAction::as_str`]).
    pub fn from_name(name: &str) -> Option<IntentAction> {
        [
            IntentAction::Install,
            IntentAction::Remove,
            IntentAction::Scale,
            IntentAction::Update,
            IntentAction::Restart,
        ]
        .into_iter()
        .find(|action| action.as_str() == name)
    }
}

/// Optional features named with `with …`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct IntentFeatures {
    /// `with tls`: HTTPS for the application (needs a domain).
    #[serde(default)]
    pub tls: bool,
    /// `with ingress`: reachable from outside the cluster through an Ingress.
    #[serde(default)]
    pub ingress: bool,
    /// `with persistence`: keep data in volumes (blueprints with volumes have them anyway).
    #[serde(default)]
    pub persistence: bool,
}

/// A parsed command. Fields the text did not mention are `None`; the GraphQL `options`
/// override what the text says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParsedIntent {
    pub action: IntentAction,
    /// The blueprint to act on.
    pub application: String,
    pub platform: Option<Platform>,
    pub namespace: Option<String>,
    pub domain: Option<String>,
    pub replicas: Option<u32>,
    /// `update … to version V`.
    pub version: Option<String>,
    #[serde(default)]
    pub features: IntentFeatures,
}

/// Why a command could not be parsed: what was understood, what was not, and for an unknown
/// application the closest blueprint names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ParseFailure {
    /// One sentence a person can act on; it names what was not understood.
    pub message: String,
    /// The parts that were understood, e.g. `["action: install", "namespace: auth"]`.
    pub understood: Vec<String>,
    /// The words that were not understood, as written.
    pub not_understood: Vec<String>,
    /// Closest blueprint names, best first, when the application is unknown.
    pub suggestions: Vec<String>,
}
