//! The binary as a real process: it prints its address first, serves the contract, validates
//! updates, and breaks what it is told to.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

/// The running binary; killed when dropped.
struct Running {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(args: &[&str]) -> Running {
    let mut child = Command::new(env!("CARGO_BIN_EXE_custom-backend"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start custom-backend");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("first line is {line:?}"))
        .parse()
        .unwrap();
    Running { child, addr }
}

async fn call(method: reqwest::Method, url: String, body: Option<Value>) -> (u16, Value) {
    let mut request = reqwest::Client::new().request(method, url);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let answer = request.send().await.unwrap();
    let status = answer.status().as_u16();
    (status, answer.json().await.unwrap())
}

#[tokio::test]
async fn serves_the_contract_and_validates_updates() {
    let backend = start(&["--listen", "127.0.0.1:0"]);
    let base = format!("http://{}", backend.addr);
    let (status, health) = call(reqwest::Method::GET, format!("{base}/health"), None).await;
    assert_eq!(status, 200);
    assert_eq!(
        health,
        json!({"status": "healthy", "backend_type": "custom",
            "prompt_management": {"enabled": true, "method": "api"}})
    );
    let (_, schema) = call(
        reqwest::Method::GET,
        format!("{base}/api/prompts/schema"),
        None,
    )
    .await;
    assert_eq!(schema["fields"].as_array().unwrap().len(), 5);

    let put = |body: Value| {
        call(
            reqwest::Method::PUT,
            format!("{base}/api/prompts"),
            Some(body),
        )
    };
    let (status, answer) = put(json!({"main_prompt": "Be brief.", "temperature": 0.2})).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer,
        json!({"success": true, "updated_prompts": ["main_prompt", "temperature"]})
    );
    let (status, answer) = put(json!({"main_prompt": "x", "colour": "red"})).await;
    assert_eq!(status, 400);
    assert_eq!(answer["field"], "colour");
    let (status, _) = put(json!({"model": "huge"})).await;
    assert_eq!(status, 400);
    let (status, _) = put(json!({"temperature": "0.7"})).await;
    assert_eq!(status, 400);

    let (_, live) = call(reqwest::Method::GET, format!("{base}/api/prompts"), None).await;
    assert_eq!(
        live["main_prompt"], "Be brief.",
        "refused updates changed nothing"
    );
    assert_eq!(live["temperature"], 0.2);
    assert_eq!(live["model"], "small");
}

#[tokio::test]
async fn breaks_what_it_is_told_to() {
    let backend = start(&["--break", "health", "--backend-type", "managed"]);
    let (status, health) = call(
        reqwest::Method::GET,
        format!("http://{}/health", backend.addr),
        None,
    )
    .await;
    assert_eq!(status, 503);
    assert_eq!(health["status"], "unhealthy");
    assert_eq!(health["backend_type"], "managed");
}
