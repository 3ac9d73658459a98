//! A reference custom backend: the smallest service the orchestrator can adopt as a `custom`
//! backend and manage the prompts of (CONTRACTS §3). It keeps its prompts in memory and
//! answers `GET /health`, `GET /api/prompts/schema`, `GET /api/prompts` and
//! `PUT /api/prompts`. `--break <check>` breaks one part of the contract on purpose, so the
//! orchestrator's `validateService` can be seen failing for each reason.
//!
//! The binary (`src/main.rs`) and in-process tests share [`app`].

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use clap::{Parser, ValueEnum};
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;

/// Command-line options (each also an environment variable).
#[derive(Debug, Clone, Parser)]
#[command(
    name = "custom-backend",
    version,
    about = "Reference custom backend for the orchestrator"
)]
pub struct Options {
    /// Address to listen on; port 0 picks a free port. The first line on stdout is
    /// `listening on <address>`.
    #[arg(long, env = "CUSTOM_BACKEND_LISTEN", default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// The `backend_type` reported on `GET /health`.
    #[arg(long, env = "CUSTOM_BACKEND_TYPE", default_value = "custom")]
    pub backend_type: String,
    /// Break one part of the contract on purpose (repeatable).
    #[arg(long = "break", value_enum)]
    pub breaks: Vec<Breakage>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            backend_type: "custom".into(),
            breaks: Vec::new(),
        }
    }
}

impl Options {
    /// The same options with `breakage` added.
    pub fn breaking(mut self, breakage: Breakage) -> Options {
        self.breaks.push(breakage);
        self
    }

    fn breaks(&self, breakage: Breakage) -> bool {
        self.breaks.contains(&breakage)
    }
}

/// A part of the contract to break.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Breakage {
    /// `GET /health` answers 503 with `"status": "unhealthy"`.
    Health,
    /// `GET /health` says prompt management is disabled.
    PromptManagement,
    /// `GET /api/prompts/schema` has a select without options and an unknown field type.
    Schema,
    /// `GET /api/prompts` lacks a required field, has a wrong type and an unknown field.
    Prompts,
}

/// The prompt schema this service serves.
pub fn schema() -> Value {
    json!({ "fields": [
        { "name": "main_prompt", "label": "Main prompt", "type": "textarea", "required": true,
          "default": "You are a helpful assistant." },
        { "name": "greeting", "label": "Greeting", "type": "text", "required": false,
          "default": "Hello! How can I help?" },
        { "name": "model", "label": "Model", "type": "select", "required": true,
          "options": ["small", "large"], "default": "small" },
        { "name": "temperature", "label": "Temperature", "type": "number", "required": false,
          "default": 0.7 },
        { "name": "remember_history", "label": "Remember the conversation", "type": "boolean",
          "required": false, "default": true }
    ]})
}

fn broken_schema() -> Value {
    json!({ "fields": [
        { "name": "main_prompt", "label": "Main prompt", "type": "textarea", "required": true },
        { "name": "model", "label": "Model", "type": "select", "required": true },
        { "name": "tone", "label": "Tone", "type": "colour" }
    ]})
}

/// The values a fresh service starts with: every field's default.
pub fn initial_prompts() -> Map<String, Value> {
    fields()
        .iter()
        .filter_map(|f| Some((f["name"].as_str()?.to_string(), f.get("default")?.clone())))
        .collect()
}

fn fields() -> Vec<Value> {
    match schema() {
        Value::Object(mut map) => match map.remove("fields") {
            Some(Value::Array(fields)) => fields,
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

#[derive(Clone)]
struct Service {
    options: Arc<Options>,
    prompts: Arc<Mutex<Map<String, Value>>>,
}

impl Service {
    fn prompts(&self) -> Map<String, Value> {
        self.prompts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// The routes of the service, with a fresh in-memory prompt store.
pub fn app(options: &Options) -> Router {
    let service = Service {
        options: Arc::new(options.clone()),
        prompts: Arc::new(Mutex::new(initial_prompts())),
    };
    Router::new()
        .route("/health", get(health))
        .route("/api/prompts/schema", get(prompt_schema))
        .route("/api/prompts", get(read_prompts).put(write_prompts))
        .with_state(service)
}

/// Serves [`app`] on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    options: &Options,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app(options))
        .with_graceful_shutdown(shutdown)
        .await
}

/// Binds `options.listen` and serves in a background task (for in-process tests); the bound
/// address. The task ends with the runtime.
pub async fn spawn(options: Options) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(options.listen).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { serve(listener, &options, std::future::pending()).await });
    Ok(addr)
}

/// What the binary does: bind, print `listening on <address>` as the first stdout line,
/// serve until Ctrl-C.
pub async fn run(options: Options) -> std::io::Result<()> {
    use std::io::Write;
    let listener = TcpListener::bind(options.listen).await?;
    let addr = listener.local_addr()?;
    let mut stdout = std::io::stdout();
    writeln!(stdout, "listening on {addr}")?;
    stdout.flush()?;
    serve(listener, &options, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}

async fn health(State(service): State<Service>) -> Response {
    let options = &service.options;
    let management = if options.breaks(Breakage::PromptManagement) {
        json!({ "enabled": false, "method": "manual" })
    } else {
        json!({ "enabled": true, "method": "api" })
    };
    let healthy = !options.breaks(Breakage::Health);
    let body = json!({
        "status": if healthy { "healthy" } else { "unhealthy" },
        "backend_type": options.backend_type,
        "prompt_management": management,
    });
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

async fn prompt_schema(State(service): State<Service>) -> Json<Value> {
    if service.options.breaks(Breakage::Schema) {
        Json(broken_schema())
    } else {
        Json(schema())
    }
}

async fn read_prompts(State(service): State<Service>) -> Json<Value> {
    let mut values = service.prompts();
    if service.options.breaks(Breakage::Prompts) {
        values.remove("main_prompt");
        values.insert("temperature".into(), json!("warm"));
        values.insert("mood".into(), json!("grumpy"));
    }
    Json(Value::Object(values))
}

/// Updates the fields given (the others keep their values); refuses the whole update when
/// any field is unknown or has a value of the wrong type.
async fn write_prompts(State(service): State<Service>, Json(body): Json<Value>) -> Response {
    let Value::Object(update) = body else {
        return refuse(
            None,
            "the body must be a JSON object of field values".into(),
        );
    };
    let fields = fields();
    for (name, value) in &update {
        let Some(field) = fields.iter().find(|f| f["name"] == *name) else {
            return refuse(Some(name), format!("unknown field {name:?}"));
        };
        if let Err(why) = check_value(field, value) {
            return refuse(Some(name), format!("{name}: {why}"));
        }
    }
    let mut prompts = service.prompts.lock().unwrap_or_else(|e| e.into_inner());
    let mut updated = Vec::new();
    for (name, value) in update {
        prompts.insert(name.clone(), value);
        updated.push(name);
    }
    Json(json!({ "success": true, "updated_prompts": updated })).into_response()
}

fn refuse(field: Option<&str>, message: String) -> Response {
    let body = json!({ "success": false, "error": message, "field": field });
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

/// Checks `value` against one schema field, as the orchestrator does.
fn check_value(field: &Value, value: &Value) -> Result<(), String> {
    let required = field["required"].as_bool().unwrap_or(false);
    match (field["type"].as_str().unwrap_or(""), value) {
        (_, Value::Null) if required => Err("is required".into()),
        (_, Value::Null) => Ok(()),
        ("text" | "textarea", Value::String(_)) => Ok(()),
        ("number", Value::Number(_)) => Ok(()),
        ("boolean", Value::Bool(_)) => Ok(()),
        ("select", Value::String(s)) => {
            let options = field["options"].as_array().cloned().unwrap_or_default();
            if options.iter().any(|o| o == s) {
                Ok(())
            } else {
                Err(format!("must be one of {}", Value::Array(options)))
            }
        }
        ("number", _) => Err("must be a number".into()),
        ("boolean", _) => Err("must be true or false".into()),
        _ => Err("must be a string".into()),
    }
}
