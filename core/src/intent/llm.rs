//! Optional parsing of intent commands by a model behind an OpenAI-compatible
//! chat-completions API (`ORCH_LLM_URL`, `ORCH_LLM_MODEL`, `ORCH_LLM_API_KEY`).
//!
//! The model sees the command, the caller's blueprint catalogue and a JSON schema of the
//! intent; its answer is decoded strictly and then checked by exactly the rules the rule
//! parser applies to a person's words. Whenever the model is not configured, too slow, failing
//! or wrong, [`parse_intent`] falls back to [`parse_command`], so configuring a model can only
//! widen what is understood, never make a command that parses today fail.

mod prompt;

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::{Config, LlmConfig, Secret};
use crate::outbound::endpoint;

use super::model::{ParseFailure, ParsedIntent};
use super::parse::{check_length, join_sentences, parse_command};
use super::validate::check_intent;

/// Largest answer read from the model API.
const MAX_ANSWER_BYTES: usize = 256 * 1024;

/// Which parser produced an intent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ParsedBy {
    /// The grammar of [`parse_command`].
    Rules,
    /// The configured model.
    Model,
}

impl ParsedBy {
    /// The lowercase name, as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            ParsedBy::Rules => "rules",
            ParsedBy::Model => "model",
        }
    }
}

/// Why the model's parse was not used. None of these reaches the caller of
/// [`parse_intent`]: they are logged and the rule parser takes over.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    /// No complete answer within the configured timeout.
    #[error("no answer within {} ms", .0.as_millis())]
    Timeout(Duration),
    /// The API answered with a status other than 2xx.
    #[error("the model API answered HTTP {0}")]
    Status(u16),
    /// The API could not be reached or the connection broke.
    #[error("the model API could not be reached: {0}")]
    Transport(String),
    /// The answer is not a chat completion holding one intent in the expected shape.
    #[error("unusable answer: {0}")]
    Answer(String),
    /// The intent is well-formed but breaks a rule (unknown application, bad namespace…).
    #[error("invalid intent: {0}")]
    Invalid(String),
}

/// A client for the configured model; cheap to clone, one per process is enough.
#[derive(Debug, Clone)]
pub struct LlmParser {
    http: reqwest::Client,
    endpoint: String,
    model: String,
    api_key: Secret,
    timeout: Duration,
}

impl LlmParser {
    /// The parser for `config`, or `None` when no model is configured.
    pub fn from_config(config: &Config) -> Option<LlmParser> {
        config.llm.as_ref().map(LlmParser::new)
    }

    /// A parser for these settings.
    pub fn new(settings: &LlmConfig) -> LlmParser {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("orchestrator/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("a reqwest client with static settings builds");
        LlmParser {
            http,
            endpoint: endpoint(&settings.url, "/chat/completions"),
            model: settings.model.clone(),
            api_key: settings.api_key.clone(),
            timeout: settings.timeout,
        }
    }

    /// The model name sent with each request.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// Asks the model to parse `text` against `catalogue` (name, one-line description) and
    /// checks its answer like user input. Gives up after the configured timeout.
    pub async fn parse(
        &self,
        text: &str,
        catalogue: &[(String, String)],
    ) -> Result<ParsedIntent, LlmError> {
        let body = prompt::request_body(&self.model, text, catalogue);
        let bytes = tokio::time::timeout(self.timeout, self.call(&body))
            .await
            .map_err(|_| LlmError::Timeout(self.timeout))??;
        let mut intent = prompt::decode_answer(&bytes).map_err(LlmError::Answer)?;
        let names: Vec<&str> = catalogue.iter().map(|(name, _)| name.as_str()).collect();
        let problems = check_intent(&mut intent, &names);
        if !problems.is_empty() {
            return Err(LlmError::Invalid(join_sentences(&problems.messages)));
        }
        Ok(intent)
    }

    async fn call(&self, body: &serde_json::Value) -> Result<Vec<u8>, LlmError> {
        let transport = |e: reqwest::Error| LlmError::Transport(e.without_url().to_string());
        let mut response = self
            .http
            .post(&self.endpoint)
            .bearer_auth(self.api_key.expose())
            .json(body)
            .send()
            .await
            .map_err(transport)?;
        let status = response.status();
        if !status.is_success() {
            return Err(LlmError::Status(status.as_u16()));
        }
        let mut answer = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(transport)? {
            if answer.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(LlmError::Answer(format!(
                    "longer than {MAX_ANSWER_BYTES} bytes"
                )));
            }
            answer.extend_from_slice(&chunk);
        }
        Ok(answer)
    }
}

/// Parses an intent command: by the model when one is configured and its answer passes the
/// checks, else by the rule parser. `catalogue` holds the caller's blueprints as
/// (name, one-line description).
///
/// A failure is always the rule parser's: it says what was and was not understood in the
/// user's own words. Why the model's answer was not used is logged as a warning.
pub async fn parse_intent(
    llm: Option<&LlmParser>,
    text: &str,
    catalogue: &[(String, String)],
) -> Result<(ParsedIntent, ParsedBy), ParseFailure> {
    check_length(text)?;
    if let Some(llm) = llm
        && !catalogue.is_empty()
    {
        match llm.parse(text.trim(), catalogue).await {
            Ok(intent) => return Ok((intent, ParsedBy::Model)),
            Err(reason) => tracing::warn!(
                model = %llm.model,
                %reason,
                "intent model answer not used; parsing by rules"
            ),
        }
    }
    let names: Vec<&str> = catalogue.iter().map(|(name, _)| name.as_str()).collect();
    parse_command(text, &names).map(|intent| (intent, ParsedBy::Rules))
}
