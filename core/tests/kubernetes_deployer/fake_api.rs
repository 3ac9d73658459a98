//! A fake Kubernetes API server for the deployer scenarios, behind a `tower-test` mock
//! service: it keeps the objects applied to it, answers the reads, applies, deletes and
//! label-selected lists the deployer makes the way a real API server would, records every
//! request, and can be told to fail a request or to report scripted workload statuses.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use http::{Method, Request, Response, StatusCode};
use kube::Client;
use kube::client::Body;
use serde_json::{Value, json};

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: Method,
    pub path: String,
    /// Decoded query parameters, sorted.
    pub query: Vec<(String, String)>,
    pub content_type: Option<String>,
    /// The client asked for metadata only (`PartialObjectMetadata`).
    pub metadata_only: bool,
    pub body: Option<Value>,
}

impl Seen {
    /// `METHOD path?sorted-query`, then ` (metadata)` for metadata reads or
    /// ` <- Kind/name` for requests with an object body.
    pub fn line(&self) -> String {
        let mut line = format!("{} {}", self.method, self.path);
        if !self.query.is_empty() {
            let pairs: Vec<String> = self.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
            line = format!("{line}?{}", pairs.join("&"));
        }
        if self.metadata_only {
            line.push_str(" (metadata)");
        }
        if let Some(body) = &self.body
            && let (Some(kind), Some(name)) =
                (body["kind"].as_str(), body["metadata"]["name"].as_str())
        {
            line.push_str(&format!(" <- {kind}/{name}"));
        }
        line
    }
}

enum Failure {
    Status(u16, String),
    Connection,
}

#[derive(Default)]
struct State {
    /// Objects by their API path.
    objects: BTreeMap<String, Value>,
    requests: Vec<Seen>,
    failures: Vec<(Method, String, Failure)>,
    /// Statuses reported for a workload path, one per read; the last one repeats.
    statuses: HashMap<String, VecDeque<Value>>,
}

/// Handle on the fake server's state.
#[derive(Clone)]
pub struct FakeApi {
    state: Arc<Mutex<State>>,
}

impl FakeApi {
    /// Starts the server; it stops when the last clone of the client is dropped.
    pub fn start() -> (Client, FakeApi) {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let fake = FakeApi {
            state: Arc::default(),
        };
        let server = fake.clone();
        tokio::spawn(async move {
            while let Some((request, send)) = handle.next_request().await {
                let (parts, body) = request.into_parts();
                let bytes = body.collect_bytes().await.expect("request body");
                let seen = Seen {
                    method: parts.method.clone(),
                    path: parts.uri.path().to_owned(),
                    query: parse_query(parts.uri.query().unwrap_or("")),
                    content_type: header(&parts.headers, http::header::CONTENT_TYPE),
                    metadata_only: header(&parts.headers, http::header::ACCEPT)
                        .is_some_and(|accept| accept.contains("as=PartialObjectMetadata")),
                    body: serde_json::from_slice(&bytes).ok(),
                };
                match server.answer(seen) {
                    Ok((status, value)) => send.send_response(
                        Response::builder()
                            .status(status)
                            .header(http::header::CONTENT_TYPE, "application/json")
                            .body(Body::from(serde_json::to_vec(&value).unwrap()))
                            .unwrap(),
                    ),
                    Err(error) => send.send_error(error),
                }
            }
        });
        (Client::new(service, "default"), fake)
    }

    /// Stores `object` at `path`, as if something else had created it.
    pub fn insert(&self, path: &str, object: Value) {
        self.lock().objects.insert(path.to_owned(), object);
    }

    /// Forgets the object at `path`, as if something else had deleted it.
    pub fn forget(&self, path: &str) {
        self.lock().objects.remove(path);
    }

    /// The object stored at `path`.
    pub fn object(&self, path: &str) -> Option<Value> {
        self.lock().objects.get(path).cloned()
    }

    /// Answers every `method` request on `path` with HTTP `code` and `message`.
    pub fn fail(&self, method: Method, path: &str, code: u16, message: &str) {
        let failure = Failure::Status(code, message.to_owned());
        self.lock()
            .failures
            .push((method, path.to_owned(), failure));
    }

    /// Breaks the connection of every `method` request on `path`.
    pub fn drop_connection(&self, method: Method, path: &str) {
        let failure = Failure::Connection;
        self.lock()
            .failures
            .push((method, path.to_owned(), failure));
    }

    /// Reports `statuses` for the workload at `path`, one per full read.
    pub fn script_status(&self, path: &str, statuses: Vec<Value>) {
        self.lock()
            .statuses
            .insert(path.to_owned(), statuses.into());
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Seen> {
        self.lock().requests.clone()
    }

    /// Every request so far, one [`Seen::line`] each.
    pub fn lines(&self) -> Vec<String> {
        self.requests().iter().map(Seen::line).collect()
    }

    /// Forgets the requests seen so far.
    pub fn clear_requests(&self) {
        self.lock().requests.clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }

    fn answer(&self, seen: Seen) -> Result<(StatusCode, Value), std::io::Error> {
        let mut state = self.lock();
        state.requests.push(seen.clone());
        let path = seen.path.as_str();
        if let Some((_, _, failure)) = state
            .failures
            .iter()
            .find(|(method, failing, _)| *method == seen.method && failing == path)
        {
            return match failure {
                Failure::Status(code, message) => Ok(status(*code, message)),
                Failure::Connection => Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "connection reset by peer",
                )),
            };
        }
        let selector = seen.query.iter().find(|(k, _)| k == "labelSelector");
        Ok(match (seen.method.clone(), selector) {
            (Method::GET, Some((_, selector))) => (StatusCode::OK, list(&state, path, selector)),
            (Method::GET, None) => match state.objects.get(path).cloned() {
                Some(mut object) => {
                    if !seen.metadata_only && is_workload(path) {
                        object["status"] = workload_status(&mut state, path, &object);
                    }
                    (StatusCode::OK, object)
                }
                None => not_found(path),
            },
            (Method::PATCH, None) => {
                let mut object = seen.body.clone().unwrap_or(Value::Null);
                let generation = state
                    .objects
                    .get(path)
                    .and_then(|old| old["metadata"]["generation"].as_i64())
                    .unwrap_or(0);
                object["metadata"]["generation"] = json!(generation + 1);
                state.objects.insert(path.to_owned(), object.clone());
                (StatusCode::OK, object)
            }
            (Method::DELETE, None) => match state.objects.remove(path) {
                Some(_) => (
                    StatusCode::OK,
                    json!({"kind": "Status", "apiVersion": "v1", "status": "Success"}),
                ),
                None => not_found(path),
            },
            (method, _) => status(405, &format!("{method} is not served by the fake")),
        })
    }
}

fn header(headers: &http::HeaderMap, name: http::header::HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn status(code: u16, message: &str) -> (StatusCode, Value) {
    let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": "Fake", "code": code});
    (StatusCode::from_u16(code).unwrap(), body)
}

fn not_found(path: &str) -> (StatusCode, Value) {
    let name = path.rsplit('/').next().unwrap_or_default();
    let (code, mut body) = status(404, &format!("\"{name}\" not found"));
    body["reason"] = json!("NotFound");
    (code, body)
}

fn is_workload(path: &str) -> bool {
    path.contains("/deployments/") || path.contains("/statefulsets/")
}

/// The next scripted status, or that of a finished rollout of the stored spec.
fn workload_status(state: &mut State, path: &str, object: &Value) -> Value {
    if let Some(script) = state.statuses.get_mut(path) {
        let next = if script.len() > 1 {
            script.pop_front()
        } else {
            script.front().cloned()
        };
        if let Some(next) = next {
            return next;
        }
    }
    let replicas = object["spec"]["replicas"].as_i64().unwrap_or(1);
    json!({
        "observedGeneration": object["metadata"]["generation"],
        "replicas": replicas, "updatedReplicas": replicas,
        "readyReplicas": replicas, "availableReplicas": replicas,
        "currentRevision": "rev-1", "updateRevision": "rev-1",
    })
}

fn list(state: &State, collection: &str, selector: &str) -> Value {
    let wanted: Vec<(&str, &str)> = selector
        .split(',')
        .filter_map(|pair| pair.split_once('='))
        .collect();
    let items: Vec<Value> = state
        .objects
        .iter()
        .filter(|(path, _)| {
            path.strip_prefix(collection)
                .is_some_and(|rest| rest.starts_with('/') && !rest[1..].contains('/'))
        })
        .filter(|(_, object)| {
            wanted
                .iter()
                .all(|(key, value)| object["metadata"]["labels"][*key] == *value)
        })
        .map(|(_, object)| object.clone())
        .collect();
    json!({"kind": "List", "apiVersion": "v1", "metadata": {}, "items": items})
}

fn parse_query(query: &str) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(key), percent_decode(value))
        })
        .collect();
    pairs.sort();
    pairs
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'%' if index + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[index + 1..index + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(byte) => {
                        out.push(byte);
                        index += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            byte => out.push(byte),
        }
        index += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
