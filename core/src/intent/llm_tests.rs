//! Model parsing against a real HTTP server on 127.0.0.1 that answers in the chat-completions
//! format: what the request carries, when the answer is used, and every way it falls back.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use super::llm::{LlmParser, ParsedBy, parse_intent};
use super::model::{IntentAction, IntentFeatures, ParsedIntent};
use super::parse::parse_command;
use crate::blueprint::Platform;
use crate::config::{CliOverrides, Config};

const API_KEY: &str = "sk-test-7f3a9c";
const MODEL: &str = "intent-model-1";

/// How the fake model API answers.
#[derive(Clone)]
enum Reply {
    /// 200 with a chat completion whose message content is this text.
    Content(String),
    /// This status and a plain-text body.
    Status(u16),
    /// As `Content`, after this delay.
    Slow(Duration, String),
}

/// One request the fake model API received.
#[derive(Debug, Clone)]
struct Seen {
    authorization: Option<String>,
    body: Value,
}

#[derive(Clone)]
struct FakeState {
    reply: Reply,
    seen: Arc<Mutex<Vec<Seen>>>,
}

struct FakeModel {
    base_url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl FakeModel {
    async fn start(reply: Reply) -> FakeModel {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let state = FakeState {
            reply,
            seen: seen.clone(),
        };
        let app = Router::new()
            .route("/v1/chat/completions", post(answer))
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        FakeModel {
            base_url: format!("http://{address}/v1"),
            seen,
        }
    }

    fn parser(&self, timeout_ms: u64) -> LlmParser {
        let timeout = timeout_ms.to_string();
        let env: HashMap<&str, &str> = HashMap::from([
            ("ORCH_LLM_URL", self.base_url.as_str()),
            ("ORCH_LLM_MODEL", MODEL),
            ("ORCH_LLM_API_KEY", API_KEY),
            ("ORCH_LLM_TIMEOUT_MS", timeout.as_str()),
        ]);
        let config = Config::load_with_env(None, &CliOverrides::default(), |name| {
            env.get(name).map(|v| (*v).to_owned())
        })
        .unwrap();
        LlmParser::from_config(&config).expect("the model is configured")
    }

    fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

async fn answer(State(state): State<FakeState>, headers: HeaderMap, body: String) -> Response {
    let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    state.seen.lock().unwrap().push(Seen {
        authorization: headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body,
    });
    match state.reply {
        Reply::Content(content) => axum::Json(completion(&content)).into_response(),
        Reply::Status(status) => {
            (StatusCode::from_u16(status).unwrap(), "upstream trouble").into_response()
        }
        Reply::Slow(delay, content) => {
            tokio::time::sleep(delay).await;
            axum::Json(completion(&content)).into_response()
        }
    }
}

fn completion(content: &str) -> Value {
    json!({
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": MODEL,
        "choices": [{
            "index": 0,
            "message": { "role": "assistant", "content": content },
            "finish_reason": "stop",
        }],
    })
}

fn catalogue() -> Vec<(String, String)> {
    [
        (
            "authentik",
            "authentik open-source identity provider (SSO, OAuth2/OIDC, SAML)",
        ),
        ("postgresql", "PostgreSQL relational database"),
        ("redis", "Redis in-memory cache and message broker"),
    ]
    .into_iter()
    .map(|(name, description)| (name.to_owned(), description.to_owned()))
    .collect()
}

const NAMES: &[&str] = &["authentik", "postgresql", "redis"];

/// The model's answer for "put redis on kubernetes in the cache namespace".
fn redis_on_kubernetes() -> String {
    json!({
        "action": "install",
        "application": "redis",
        "platform": "kubernetes",
        "namespace": "cache",
        "domain": null,
        "replicas": null,
        "version": null,
        "features": { "tls": false, "ingress": false, "persistence": true },
    })
    .to_string()
}

fn install_redis() -> ParsedIntent {
    ParsedIntent {
        action: IntentAction::Install,
        application: "redis".into(),
        platform: None,
        namespace: None,
        domain: None,
        replicas: None,
        version: None,
        features: IntentFeatures::default(),
    }
}

const FREE_TEXT: &str = "could you put a redis cache with persistent storage on our kubernetes cluster, in the cache namespace?";

#[tokio::test]
async fn a_valid_model_answer_is_used_where_the_rules_give_up() {
    assert!(
        parse_command(FREE_TEXT, NAMES).is_err(),
        "the rules must not parse this"
    );
    let model = FakeModel::start(Reply::Content(redis_on_kubernetes())).await;
    let parser = model.parser(5000);

    let (intent, by) = parse_intent(Some(&parser), FREE_TEXT, &catalogue())
        .await
        .unwrap();

    assert_eq!(by, ParsedBy::Model);
    assert_eq!(
        intent,
        ParsedIntent {
            platform: Some(Platform::Kubernetes),
            namespace: Some("cache".into()),
            features: IntentFeatures {
                persistence: true,
                ..IntentFeatures::default()
            },
            ..install_redis()
        }
    );
}

#[tokio::test]
async fn the_request_carries_key_model_catalogue_and_schema() {
    let model = FakeModel::start(Reply::Content(redis_on_kubernetes())).await;
    parse_intent(Some(&model.parser(5000)), FREE_TEXT, &catalogue())
        .await
        .unwrap();

    let requests = model.requests();
    assert_eq!(requests.len(), 1);
    let Seen {
        authorization,
        body,
    } = &requests[0];
    assert_eq!(
        authorization.as_deref(),
        Some(format!("Bearer {API_KEY}").as_str())
    );
    assert_eq!(body["model"], MODEL);
    assert_eq!(body["messages"][0]["role"], "system");
    assert_eq!(body["messages"][1]["role"], "user");
    assert_eq!(body["messages"][1]["content"], FREE_TEXT);
    let system = body["messages"][0]["content"].as_str().unwrap();
    for (name, description) in catalogue() {
        assert!(
            system.contains(&format!("- {name}: {description}")),
            "{system}"
        );
    }
    assert!(system.contains("JSON schema"), "{system}");
    assert!(
        system.contains("\"additionalProperties\":false"),
        "the schema is in the message"
    );

    let format = &body["response_format"];
    assert_eq!(format["type"], "json_schema");
    assert_eq!(format["json_schema"]["strict"], true);
    let schema = &format["json_schema"]["schema"];
    assert_eq!(schema["additionalProperties"], false);
    assert_eq!(schema["required"].as_array().unwrap().len(), 8);
    assert_eq!(
        schema["properties"]["application"]["enum"],
        json!(["authentik", "postgresql", "redis", ""])
    );
    assert_eq!(
        schema["properties"]["action"]["enum"],
        json!(["install", "remove", "scale", "update", "restart"])
    );
}

#[tokio::test]
async fn a_slow_model_gives_way_to_the_rules() {
    let model = FakeModel::start(Reply::Slow(Duration::from_secs(3), redis_on_kubernetes())).await;
    let parser = model.parser(200);
    let started = Instant::now();

    let (intent, by) = parse_intent(Some(&parser), "install redis", &catalogue())
        .await
        .unwrap();

    assert_eq!((intent, by), (install_redis(), ParsedBy::Rules));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(model.requests().len(), 1, "the model was asked");
}

#[tokio::test]
async fn unusable_or_invalid_answers_give_way_to_the_rules() {
    let with = |change: &dyn Fn(&mut Value)| {
        let mut answer: Value = serde_json::from_str(&redis_on_kubernetes()).unwrap();
        change(&mut answer);
        Reply::Content(answer.to_string())
    };
    let cases = [
        (
            "unknown application",
            with(&|a| a["application"] = json!("grafana")),
        ),
        (
            "bad namespace",
            with(&|a| a["namespace"] = json!("Cache_NS")),
        ),
        (
            "replicas out of range",
            with(&|a| a["replicas"] = json!(500)),
        ),
        ("negative replicas", with(&|a| a["replicas"] = json!(-1))),
        (
            "unknown action",
            with(&|a| a["action"] = json!("obliterate")),
        ),
        ("extra field", with(&|a| a["priority"] = json!("high"))),
        ("no application", with(&|a| a["application"] = json!(""))),
        (
            "malformed JSON",
            Reply::Content("Sure! {\"action\": \"install\",".into()),
        ),
        ("HTTP 500", Reply::Status(500)),
        ("HTTP 401", Reply::Status(401)),
    ];
    for (case, reply) in cases {
        let model = FakeModel::start(reply).await;
        let result = parse_intent(Some(&model.parser(5000)), "install redis", &catalogue()).await;
        assert_eq!(result, Ok((install_redis(), ParsedBy::Rules)), "{case}");
        assert_eq!(model.requests().len(), 1, "{case}: the model was asked");
    }
}

#[tokio::test]
async fn when_both_fail_the_rule_failure_is_returned() {
    let model = FakeModel::start(Reply::Status(500)).await;
    let text = "install redis quickly please";

    let failure = parse_intent(Some(&model.parser(5000)), text, &catalogue())
        .await
        .unwrap_err();

    assert_eq!(failure, parse_command(text, NAMES).unwrap_err());
    assert_eq!(failure.not_understood, vec!["quickly please".to_owned()]);
}

#[tokio::test]
async fn empty_or_too_long_commands_never_reach_the_model() {
    let model = FakeModel::start(Reply::Content(redis_on_kubernetes())).await;
    let parser = model.parser(5000);
    for text in [String::new(), "install redis ".repeat(50)] {
        let failure = parse_intent(Some(&parser), &text, &catalogue())
            .await
            .unwrap_err();
        assert!(
            failure.message.starts_with("the command is"),
            "{}",
            failure.message
        );
    }
    assert!(model.requests().is_empty());
}

#[tokio::test]
async fn without_a_model_the_rules_parse() {
    let result = parse_intent(None, "remove redis", &catalogue())
        .await
        .unwrap();
    assert_eq!(
        result,
        (
            ParsedIntent {
                action: IntentAction::Remove,
                ..install_redis()
            },
            ParsedBy::Rules
        )
    );
}

#[test]
fn the_model_is_configured_by_all_three_keys_or_none() {
    let load = |pairs: &[(&str, &str)]| {
        let env: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::load_with_env(None, &CliOverrides::default(), |name| {
            env.get(name).cloned()
        })
    };
    assert!(LlmParser::from_config(&load(&[]).unwrap()).is_none());

    let err = load(&[
        ("ORCH_LLM_URL", "http://127.0.0.1:9/v1"),
        ("ORCH_LLM_API_KEY", API_KEY),
    ])
    .unwrap_err();
    assert!(err.to_string().contains("llm_model"), "{err}");
    let err = load(&[
        ("ORCH_LLM_URL", "ftp://models.example.com"),
        ("ORCH_LLM_MODEL", MODEL),
        ("ORCH_LLM_API_KEY", API_KEY),
    ])
    .unwrap_err();
    assert!(err.to_string().contains("llm_url"), "{err}");

    let config = load(&[
        ("ORCH_LLM_URL", "https://models.example.com/v1"),
        ("ORCH_LLM_MODEL", MODEL),
        ("ORCH_LLM_API_KEY", API_KEY),
    ])
    .unwrap();
    let llm = config.llm.as_ref().unwrap();
    assert_eq!(llm.timeout, Duration::from_millis(5000));
    let parser = LlmParser::from_config(&config).unwrap();
    assert_eq!(parser.model(), MODEL);
    assert!(
        !format!("{parser:?} {config:?}").contains(API_KEY),
        "the key never prints"
    );
}
