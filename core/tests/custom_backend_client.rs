//! The custom-backend client and `validate_service` against the reference custom backend
//! (`examples/custom-backend`, served in-process on a free port): every check passes on the
//! real thing, each `--break` fails exactly its check and skips the ones after it, and
//! prompts round-trip through `PUT /api/prompts`.

use std::net::SocketAddr;
use std::time::Duration;

use custom_backend::{Breakage, Options};
use orchestrator_core::backends::validate::CHECKS;
use orchestrator_core::backends::{
    BackendCallError, ChangeKind, CustomBackendClient, ServiceReport, backend_type, diff,
    validate_prompts, validate_service,
};
use orchestrator_core::outbound::{AllowList, EXCERPT_CHARS, OutboundGuard};
use serde_json::{Map, Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn backend(options: Options) -> String {
    let addr: SocketAddr = custom_backend::spawn(options).await.unwrap();
    format!("http://{addr}")
}

fn guard() -> OutboundGuard {
    OutboundGuard::new(AllowList::loopback())
}

async fn validate(url: &str, expected: &str) -> ServiceReport {
    validate_service(&guard(), url, backend_type(expected).unwrap()).await
}

fn check<'a>(report: &'a ServiceReport, name: &str) -> &'a orchestrator_core::backends::Check {
    report.checks.iter().find(|c| c.name == name).unwrap()
}

#[tokio::test]
async fn every_check_passes_against_the_reference_backend() {
    let url = backend(Options::default()).await;
    let report = validate(&url, "custom").await;
    assert!(report.ok, "{report:#?}");
    let names: Vec<&str> = report.checks.iter().map(|c| c.name).collect();
    assert_eq!(names, CHECKS);
    for c in &report.checks {
        assert!(c.ok && !c.skipped, "{c:?}");
        assert!(c.latency_ms.is_some(), "{c:?}");
    }
    assert!(
        check(&report, "reachable")
            .message
            .starts_with("connected to 127.0.0.1:")
    );
    assert_eq!(
        check(&report, "health").message,
        "healthy, backend_type \"custom\""
    );
    assert_eq!(
        check(&report, "schema").message,
        "5 fields: main_prompt, greeting, model, temperature, remember_history"
    );
    assert_eq!(
        check(&report, "prompts").message,
        "5 values match the schema"
    );
    assert_eq!(report.schema.as_ref().unwrap().fields.len(), 5);
    assert_eq!(
        report.prompts.as_ref().unwrap()["main_prompt"],
        "You are a helpful assistant."
    );
}

#[tokio::test]
async fn each_break_fails_its_check_and_skips_the_rest() {
    for (breakage, failing, needles) in [
        (
            Breakage::Health,
            "health",
            vec!["GET /health answered HTTP 503", "unhealthy"],
        ),
        (
            Breakage::PromptManagement,
            "prompt_management",
            vec!["prompt management is disabled"],
        ),
        (
            Breakage::Schema,
            "schema",
            vec![
                "GET /api/prompts/schema answered something that is not the contract",
                "fields[1].options: a select needs at least one option",
                "fields[2].type: unknown type \"colour\"",
            ],
        ),
        (
            Breakage::Prompts,
            "prompts",
            vec![
                "main_prompt is required",
                "temperature must be a number, got a string",
                "mood is not a field of the prompt schema",
            ],
        ),
    ] {
        let url = backend(Options::default().breaking(breakage)).await;
        let report = validate(&url, "custom").await;
        assert!(!report.ok, "{breakage:?}");
        let at = CHECKS.iter().position(|n| *n == failing).unwrap();
        for (i, c) in report.checks.iter().enumerate() {
            match i.cmp(&at) {
                std::cmp::Ordering::Less => assert!(c.ok, "{breakage:?}: {c:?}"),
                std::cmp::Ordering::Equal => {
                    assert!(!c.ok && !c.skipped, "{breakage:?}: {c:?}");
                    for needle in &needles {
                        assert!(c.message.contains(needle), "{breakage:?}: {}", c.message);
                    }
                }
                std::cmp::Ordering::Greater => {
                    assert!(!c.ok && c.skipped, "{breakage:?}: {c:?}");
                    assert_eq!(c.message, format!("not run: {failing} failed"));
                    assert_eq!(c.latency_ms, None);
                }
            }
        }
    }
}

#[tokio::test]
async fn health_names_the_wrong_backend_type() {
    let url = backend(Options {
        backend_type: "langswarm".into(),
        ..Options::default()
    })
    .await;
    let report = validate(&url, "custom").await;
    let health = check(&report, "health");
    assert!(!health.ok);
    assert_eq!(
        health.message,
        "backend_type is \"langswarm\", expected \"custom\""
    );
    // A managed backend may report `managed`; a custom one may not.
    let url = backend(Options {
        backend_type: "managed".into(),
        ..Options::default()
    })
    .await;
    assert!(validate(&url, "managed").await.ok);
    assert!(!validate(&url, "custom").await.ok);
}

#[tokio::test]
async fn an_unreachable_or_refused_url_fails_reachable_only() {
    let url = backend(Options::default()).await;
    let strict = OutboundGuard::new(AllowList::none());
    let report = validate_service(&strict, &url, backend_type("custom").unwrap()).await;
    let reachable = check(&report, "reachable");
    assert!(!reachable.ok && !reachable.skipped);
    assert!(
        reachable.message.contains("a loopback address"),
        "{}",
        reachable.message
    );
    assert!(
        report.checks[1..]
            .iter()
            .all(|c| c.skipped && c.message == "not run: reachable failed")
    );

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let gone = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let report = validate(&gone, "custom").await;
    let reachable = check(&report, "reachable");
    assert!(
        reachable
            .message
            .starts_with("cannot connect to 127.0.0.1:"),
        "{}",
        reachable.message
    );
    let report = validate("http://169.254.169.254", "custom").await;
    assert!(
        check(&report, "reachable")
            .message
            .contains("never allowed")
    );
}

#[tokio::test]
async fn prompts_round_trip_through_put() {
    let url = backend(Options::default()).await;
    let client = CustomBackendClient::connect(&guard(), "input.url", &url)
        .await
        .unwrap();
    let health = client.health().await.unwrap();
    assert_eq!(health.status, "healthy");
    let schema = client.prompt_schema().await.unwrap();
    let before = client.prompts().await.unwrap();
    validate_prompts(&schema, &Value::Object(before.clone()), "prompts").unwrap();

    let mut wanted = before.clone();
    wanted.insert("main_prompt".into(), json!("Answer in one sentence."));
    wanted.insert("model".into(), json!("large"));
    validate_prompts(&schema, &Value::Object(wanted.clone()), "prompts").unwrap();
    let answer = client.put_prompts(&wanted).await.unwrap();
    assert!(answer.success);
    let mut updated = answer.updated_prompts.clone();
    updated.sort();
    let mut sent: Vec<String> = wanted.keys().cloned().collect();
    sent.sort();
    assert_eq!(updated, sent);

    let after = client.prompts().await.unwrap();
    assert_eq!(after, wanted);
    let changes = diff(&Value::Object(before), &Value::Object(after));
    let changed: Vec<(&str, ChangeKind)> =
        changes.iter().map(|c| (c.field.as_str(), c.kind)).collect();
    assert_eq!(
        changed,
        [
            ("main_prompt", ChangeKind::Changed),
            ("model", ChangeKind::Changed)
        ]
    );

    // The service refuses what its schema does not have; the error quotes its answer.
    let mut wrong = Map::new();
    wrong.insert("colour".into(), json!("red"));
    let err = client.put_prompts(&wrong).await.unwrap_err();
    let BackendCallError::Status {
        status, excerpt, ..
    } = &err
    else {
        panic!("{err}");
    };
    assert_eq!(*status, 400);
    assert!(
        excerpt.contains("unknown field \\\"colour\\\""),
        "{excerpt}"
    );
    assert!(
        err.to_string()
            .starts_with("PUT /api/prompts answered HTTP 400: "),
        "{err}"
    );
    assert!(!err.is_retryable());
    assert_eq!(
        client.prompts().await.unwrap()["main_prompt"],
        "Answer in one sentence."
    );
}

#[tokio::test]
async fn contract_violations_are_explained() {
    let url = backend(Options::default().breaking(Breakage::Schema)).await;
    let client = CustomBackendClient::connect(&guard(), "input.url", &url)
        .await
        .unwrap();
    let err = client.prompt_schema().await.unwrap_err();
    assert!(matches!(err, BackendCallError::Contract { .. }), "{err}");
    assert!(err.to_string().contains("fields[2].type"), "{err}");

    let refused =
        CustomBackendClient::connect(&OutboundGuard::new(AllowList::none()), "input.url", &url)
            .await
            .unwrap_err();
    assert!(
        refused
            .to_string()
            .starts_with("input.url: is 127.0.0.1, a loopback address")
    );
}

/// A server that answers every request with `500` and a long body.
async fn long_error_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf).await;
            let body = format!("{{\"error\": \"{}\"}}", "it broke ".repeat(2000));
            let head = format!(
                "HTTP/1.1 500 Internal Server Error\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream.write_all(body.as_bytes()).await;
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn error_bodies_are_quoted_briefly() {
    let url = long_error_server().await;
    let client = CustomBackendClient::connect(&guard(), "input.url", &url)
        .await
        .unwrap()
        .with_timeout(Duration::from_secs(5));
    let err = client.prompts().await.unwrap_err();
    let BackendCallError::Status {
        status, excerpt, ..
    } = &err
    else {
        panic!("{err}");
    };
    assert_eq!(*status, 500);
    assert!(err.is_retryable());
    assert!(
        excerpt.starts_with("{\"error\": \"it broke it broke"),
        "{excerpt}"
    );
    assert!(
        excerpt.chars().count() <= EXCERPT_CHARS + 1,
        "{}",
        excerpt.len()
    );
    assert!(err.to_string().len() < 300, "{err}");
}
