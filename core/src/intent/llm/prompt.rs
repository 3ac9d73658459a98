//! What the model is sent (instructions, catalogue, JSON schema) and how its answer is read.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::blueprint::Platform;
use crate::intent::model::{IntentAction, IntentFeatures, ParsedIntent};
use crate::intent::validate::{MAX_REPLICAS, MAX_VERSION_CHARS};

/// Longest blueprint description put in the prompt; a description is meant to be one line.
const MAX_DESCRIPTION_CHARS: usize = 200;

/// The chat-completions request for `text`: a system message with the rules, the catalogue
/// and the schema, the command as the user message, and the schema as `response_format`.
pub(super) fn request_body(model: &str, text: &str, catalogue: &[(String, String)]) -> Value {
    let schema = intent_schema(catalogue);
    json!({
        "model": model,
        "temperature": 0,
        "messages": [
            { "role": "system", "content": system_message(catalogue, &schema) },
            { "role": "user", "content": text },
        ],
        "response_format": {
            "type": "json_schema",
            "json_schema": { "name": "parsed_intent", "strict": true, "schema": schema },
        },
    })
}

fn system_message(catalogue: &[(String, String)], schema: &Value) -> String {
    let blueprints: Vec<String> = catalogue
        .iter()
        .map(|(name, description)| format!("- {name}: {}", one_line(description)))
        .collect();
    format!(
        "You turn one deployment command into a JSON object. Answer with that JSON object \
         only, no prose and no code fences, valid against this JSON schema:\n{schema}\n\n\
         Fields: action is install (also deploy, add), remove (also uninstall, delete), scale, \
         update (also upgrade) or restart. application is the name of exactly one blueprint \
         from the catalogue below; use \"\" when the command names none of them or is not a \
         deployment command. platform is kubernetes, docker or null. namespace is a DNS label \
         or null. domain is a host name such as auth.example.com or null. replicas is a whole \
         number from 0 to {MAX_REPLICAS} (0 only for scale; scale always has one) or null. \
         version is only for update, e.g. 16.2, else null. features.tls (HTTPS), \
         features.ingress and features.persistence are true only when asked for. Never \
         invent a value the command does not state: use null.\n\n\
         Blueprint catalogue:\n{}",
        blueprints.join("\n")
    )
}

/// A JSON schema of [`ParsedIntent`] in the subset strict structured outputs accept: every
/// property required, nullable ones typed with `null`, no other properties.
pub(super) fn intent_schema(catalogue: &[(String, String)]) -> Value {
    let mut names: Vec<&str> = catalogue.iter().map(|(name, _)| name.as_str()).collect();
    names.push("");
    let actions = [
        IntentAction::Install,
        IntentAction::Remove,
        IntentAction::Scale,
        IntentAction::Update,
        IntentAction::Restart,
    ]
    .map(IntentAction::as_str);
    let nullable_text =
        |description: &str| json!({ "type": ["string", "null"], "description": description });
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["action", "application", "platform", "namespace", "domain", "replicas", "version", "features"],
        "properties": {
            "action": { "type": "string", "enum": actions },
            "application": { "type": "string", "enum": names, "description": "A blueprint name from the catalogue." },
            "platform": {
                "type": ["string", "null"],
                "enum": [Platform::Kubernetes.as_str(), Platform::Docker.as_str(), null],
            },
            "namespace": nullable_text("Kubernetes namespace, a DNS label."),
            "domain": nullable_text("Host name the application is served on."),
            "replicas": { "type": ["integer", "null"], "minimum": 0, "maximum": MAX_REPLICAS },
            "version": {
                "type": ["string", "null"],
                "maxLength": MAX_VERSION_CHARS,
                "description": "Version to update to.",
            },
            "features": {
                "type": "object",
                "additionalProperties": false,
                "required": ["tls", "ingress", "persistence"],
                "properties": {
                    "tls": { "type": "boolean" },
                    "ingress": { "type": "boolean" },
                    "persistence": { "type": "boolean" },
                },
            },
        },
    })
}

fn one_line(description: &str) -> String {
    let line: String = description.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(MAX_DESCRIPTION_CHARS) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line,
    }
}

#[derive(Deserialize)]
struct Completion {
    choices: Vec<Choice>,
}

#[derive(Deserialize)]
struct Choice {
    message: Message,
}

#[derive(Deserialize)]
struct Message {
    content: Option<String>,
}

/// The intent exactly as the schema describes it; anything else in the object is an error.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelIntent {
    action: IntentAction,
    application: String,
    platform: Option<Platform>,
    namespace: Option<String>,
    domain: Option<String>,
    replicas: Option<u32>,
    version: Option<String>,
    features: ModelFeatures,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelFeatures {
    tls: bool,
    ingress: bool,
    persistence: bool,
}

/// Reads `choices[0].message.content` of a chat completion as one intent. Empty strings
/// count as null (models write `""` for "not given"); the checks come afterwards.
pub(super) fn decode_answer(body: &[u8]) -> Result<ParsedIntent, String> {
    let completion: Completion =
        serde_json::from_slice(body).map_err(|e| format!("not a chat completion ({e})"))?;
    let content = completion
        .choices
        .into_iter()
        .next()
        .and_then(|choice| choice.message.content)
        .ok_or("the completion has no message content")?;
    let answer: ModelIntent = serde_json::from_str(content.trim())
        .map_err(|e| format!("the content is not an intent object ({e})"))?;
    let given = |value: Option<String>| value.filter(|v| !v.trim().is_empty());
    Ok(ParsedIntent {
        action: answer.action,
        application: answer.application,
        platform: answer.platform,
        namespace: given(answer.namespace),
        domain: given(answer.domain),
        replicas: answer.replicas,
        version: given(answer.version),
        features: IntentFeatures {
            tls: answer.features.tls,
            ingress: answer.features.ingress,
            persistence: answer.features.persistence,
        },
    })
}
