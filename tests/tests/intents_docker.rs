//! Intents deployed to a real Docker engine through GraphQL: "install redis" answers PING
//! through its published port, re-deploying changes nothing, a two-level dependency deploys
//! in order with the dependent wired to its dependency, a failing health check fails the
//! intent with the container's own log lines and a retry resumes from it, cancel stops before
//! the next component, and rollback leaves no container, network or volume behind.
//!
//! Needs `ORCH_TEST_DOCKER=1` and the local images `scripts/test.sh` builds
//! (`ORCH_TEST_REDIS_IMAGE`, `ORCH_TEST_BUSYBOX_IMAGE`); under `ORCH_TEST_REQUIRE_SERVICES=1`
//! their absence is a failure.

use std::process::Command;
use std::time::Duration;

use orchestrator::Mode;
use orchestrator_tests::ws::{Protocol, WsClient};
use orchestrator_tests::{Services, TestApp, services_required, spawn_app_with};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const DEPLOY: &str = "mutation($in: DeployInput!) { deploy(input: $in) { id status } }";
const INTENT: &str = "query($i: ID!) { intent(id: $i) { id status error action application plan { components { name manifests } } resources { kind name component deletedAt } logs(first: 1000) { level message } execution { id pipeline status stages { name status attempt } } } }";

struct Images {
    redis: String,
    busybox: String,
}

fn images() -> Option<Images> {
    let docker = std::env::var("ORCH_TEST_DOCKER").is_ok_and(|v| v == "1");
    let redis = std::env::var("ORCH_TEST_REDIS_IMAGE")
        .ok()
        .filter(|s| !s.is_empty());
    let busybox = std::env::var("ORCH_TEST_BUSYBOX_IMAGE")
        .ok()
        .filter(|s| !s.is_empty());
    match (docker, redis, busybox) {
        (true, Some(redis), Some(busybox)) => Some(Images { redis, busybox }),
        _ if services_required() => panic!(
            "ORCH_TEST_REQUIRE_SERVICES=1 but no Docker engine or test images (ORCH_TEST_DOCKER, ORCH_TEST_REDIS_IMAGE, ORCH_TEST_BUSYBOX_IMAGE)"
        ),
        _ => {
            eprintln!("skipped: needs a Docker engine and the test images (scripts/test.sh)");
            None
        }
    }
}

/// Runs the docker CLI; returns stdout (trimmed).
fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("docker CLI");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Containers, networks and volumes labelled as belonging to `intent`.
fn leftovers(intent: &str) -> Vec<String> {
    let label = format!("label=orchestrator.dev/intent={intent}");
    let mut found = Vec::new();
    for (what, args) in [
        (
            "container",
            vec!["ps", "-a", "-q", "--filter", label.as_str()],
        ),
        (
            "network",
            vec!["network", "ls", "-q", "--filter", label.as_str()],
        ),
        (
            "volume",
            vec!["volume", "ls", "-q", "--filter", label.as_str()],
        ),
    ] {
        for line in docker(&args).lines().filter(|l| !l.is_empty()) {
            found.push(format!("{what} {line}"));
        }
    }
    found
}

/// Removes whatever a test left under `namespace` (on failure paths too).
struct Cleanup(String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let prefix = format!("name=default-{}-", self.0);
        for id in docker(&["ps", "-a", "-q", "--filter", prefix.as_str()]).lines() {
            docker(&["rm", "-f", "-v", id]);
        }
        docker(&["network", "rm", &format!("default-{}", self.0)]);
        for id in docker(&["volume", "ls", "-q", "--filter", prefix.as_str()]).lines() {
            docker(&["volume", "rm", "-f", id]);
        }
    }
}

fn namespace(test: &str) -> (String, Cleanup) {
    let ns = format!(
        "t{}-{test}",
        &uuid::Uuid::new_v4().simple().to_string()[..6]
    );
    (ns.clone(), Cleanup(ns))
}

async fn start() -> TestApp {
    spawn_app_with(
        &Services::Embedded,
        Mode::Standalone,
        &[("ORCH_DEPLOY_READY_TIMEOUT_SECS", "60")],
    )
    .await
}

async fn deploy(app: &TestApp, p: &str, command: &str, options: Value) -> String {
    let data = app
        .admin(
            DEPLOY,
            json!({ "in": { "projectId": p, "command": command, "options": options } }),
        )
        .await;
    data["deploy"]["id"].as_str().unwrap().to_owned()
}

async fn intent(app: &TestApp, id: &str) -> Value {
    app.admin(INTENT, json!({ "i": id })).await["intent"].clone()
}

/// Polls the intent until it reaches one of `statuses`.
async fn wait_for(app: &TestApp, id: &str, statuses: &[&str], timeout: Duration) -> Value {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let now = intent(app, id).await;
        let status = now["status"].as_str().unwrap_or_default();
        if statuses.contains(&status) {
            return now;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "intent {id} still {status} after {timeout:?}: {now:#}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_end(app: &TestApp, id: &str) -> Value {
    wait_for(
        app,
        id,
        &["COMPLETED", "FAILED", "CANCELLED", "ROLLED_BACK"],
        Duration::from_secs(120),
    )
    .await
}

fn log_text(intent: &Value) -> String {
    intent["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            format!(
                "{} {}",
                l["level"].as_str().unwrap(),
                l["message"].as_str().unwrap()
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Rolls the intent back and waits until it is `ROLLED_BACK`.
async fn roll_back(app: &TestApp, id: &str) -> Value {
    app.admin(
        "mutation($i: ID!) { rollbackIntent(id: $i) { id status } }",
        json!({ "i": id }),
    )
    .await;
    let rolled = wait_end(app, id).await;
    assert_eq!(rolled["status"], "ROLLED_BACK", "{rolled:#}");
    rolled
}

async fn upsert(app: &TestApp, p: &str, yaml: &str) {
    app.admin(
        "mutation($p: ID!, $y: String!) { upsertBlueprint(projectId: $p, yaml: $y) { name } }",
        json!({ "p": p, "y": yaml }),
    )
    .await;
}

/// `AUTH password` then `PING` over a plain TCP connection; returns what Redis answered.
async fn redis_ping(port: &str, password: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(format!("127.0.0.1:{port}"))
        .await
        .expect("connect to the published Redis port");
    stream
        .write_all(format!("AUTH {password}\r\nPING\r\n").as_bytes())
        .await
        .unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 64];
    while !String::from_utf8_lossy(&answer).contains("PONG") {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .expect("Redis answers")
            .unwrap();
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn install_redis_answers_ping_redeploys_idempotently_and_rolls_back_clean() {
    let Some(images) = images() else { return };
    let app = start().await;
    let p = app.default_project().await;
    let (ns, _cleanup) = namespace("redis");
    let options = json!({ "namespace": ns, "params": { "redis": { "image": images.redis } } });

    let first = deploy(&app, &p, "install redis", options.clone()).await;
    let done = wait_end(&app, &first).await;
    assert_eq!(done["status"], "COMPLETED", "{done:#}");
    let logs = log_text(&done);
    assert!(logs.contains("redis ready after"), "{logs}");
    assert!(
        !done["resources"].as_array().unwrap().is_empty(),
        "{done:#}"
    );

    let container = format!("default-{ns}-redis");
    let published = docker(&["port", &container, "6379/tcp"]);
    let port = published
        .lines()
        .next()
        .and_then(|l| l.rsplit(':').next())
        .expect("a published port")
        .to_owned();
    let env = docker(&[
        "inspect",
        "-f",
        "{{range .Config.Env}}{{println .}}{{end}}",
        &container,
    ]);
    let password = env
        .lines()
        .find_map(|l| l.strip_prefix("REDIS_PASSWORD="))
        .expect("the password is injected");
    assert!(redis_ping(&port, password).await.contains("+PONG"));
    // The generated password appears in no answer of the API.
    assert!(
        !done.to_string().contains(password),
        "a secret leaked: {done:#}"
    );

    // The same command again changes nothing.
    let id_before = docker(&["inspect", "-f", "{{.Id}}", &container]);
    let again = deploy(&app, &p, "install redis", options.clone()).await;
    let again = wait_end(&app, &again).await;
    assert_eq!(again["status"], "COMPLETED", "{again:#}");
    assert!(log_text(&again).contains("redis unchanged"), "{again:#}");
    assert_eq!(docker(&["inspect", "-f", "{{.Id}}", &container]), id_before);

    // Rolling the install back removes every container, network and volume it created.
    assert!(!leftovers(&first).is_empty());
    let rolled = roll_back(&app, &first).await;
    assert_eq!(rolled["execution"]["pipeline"], "rollback");
    assert!(leftovers(&first).is_empty(), "{:?}", leftovers(&first));
    assert!(
        rolled["resources"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| !r["deletedAt"].is_null()),
        "{rolled:#}"
    );
    app.stop().await;
}

fn store_yaml(image: &str, health_delay: u32) -> String {
    format!(
        r#"name: store
description: A tiny TCP service that answers "ok"
platform: docker
defaults: {{ image: "{image}", port: 7000 }}
ports: [ {{ name: tcp, port: 7000, targetPort: 7000 }} ]
args: [sh, -c, "sleep {health_delay}; exec nc -ll -p 7000 -e echo ok"]
exports:
  host: ${{service.host}}
  port: "7000"
healthcheck:
  command: [sh, -c, 'test "$(nc -w 1 127.0.0.1 7000 </dev/null)" = ok']
  initialDelaySeconds: 1
  periodSeconds: 1
  timeoutSeconds: 2
  failureThreshold: 30
"#
    )
}

fn app_yaml(image: &str) -> String {
    format!(
        r#"name: shop
description: Depends on store and checks it can reach it
platform: docker
defaults: {{ image: "{image}" }}
dependencies: [store]
args: [sh, -c, "echo shop started; exec sleep 3600"]
environment:
  STORE_HOST: ${{deps.store.host}}
  STORE_PORT: ${{deps.store.port}}
healthcheck:
  command: [sh, -c, 'test "$(nc -w 1 "$STORE_HOST" "$STORE_PORT" </dev/null)" = ok']
  initialDelaySeconds: 1
  periodSeconds: 1
  timeoutSeconds: 2
  failureThreshold: 10
"#
    )
}

#[tokio::test]
async fn dependencies_deploy_in_order_wired_and_watched_live() {
    let Some(images) = images() else { return };
    let app = start().await;
    let p = app.default_project().await;
    let (ns, _cleanup) = namespace("deps");
    upsert(&app, &p, &store_yaml(&images.busybox, 0)).await;
    upsert(&app, &p, &app_yaml(&images.busybox)).await;

    let id = deploy(
        &app,
        &p,
        &format!("install shop in namespace {ns}"),
        json!({}),
    )
    .await;
    let (mut ws, ack) = WsClient::connect(
        app.addr,
        Protocol::TransportWs,
        json!({ "Authorization": format!("Bearer {}", app.admin_token) }),
    )
    .await;
    assert_eq!(ack["type"], "connection_ack");
    ws.start(
        "1",
        "subscription($i: ID!) { intentUpdated(id: $i) { status } }",
        json!({ "i": id }),
    )
    .await;
    let mut seen: Vec<String> = Vec::new();
    loop {
        let msg = ws.next_message(Duration::from_secs(90)).await;
        match msg["type"].as_str() {
            Some("next") => {
                let status = msg["payload"]["data"]["intentUpdated"]["status"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                if seen.last() != Some(&status) {
                    seen.push(status);
                }
            }
            Some("complete") => break,
            other => panic!("unexpected message {other:?}: {msg}"),
        }
    }
    assert_eq!(
        seen.last().map(String::as_str),
        Some("COMPLETED"),
        "{seen:?}"
    );
    assert!(seen.contains(&"DEPLOYING".to_owned()), "{seen:?}");

    let done = intent(&app, &id).await;
    let stages: Vec<&str> = done["execution"]["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        stages,
        ["parse", "plan", "deploy-store", "deploy-shop", "verify"]
    );
    let logs = log_text(&done);
    let store_ready = logs.find("store ready after").expect("store ready line");
    let shop_ready = logs.find("shop ready after").expect("shop ready line");
    assert!(store_ready < shop_ready, "{logs}");

    let env = docker(&[
        "inspect",
        "-f",
        "{{range .Config.Env}}{{println .}}{{end}}",
        &format!("default-{ns}-shop"),
    ]);
    assert!(
        env.lines()
            .any(|l| l == format!("STORE_HOST=default-{ns}-store")),
        "{env}"
    );
    assert!(env.lines().any(|l| l == "STORE_PORT=7000"), "{env}");
    app.stop().await;
}

fn flaky_yaml(image: &str, healthy: bool) -> String {
    let check = if healthy {
        "true"
    } else {
        "test -f /tmp/never"
    };
    format!(
        r#"name: flaky
description: Prints a marker, then fails its health check unless fixed
platform: docker
defaults: {{ image: "{image}" }}
args: [sh, -c, "echo flaky-marker-line; exec sleep 3600"]
healthcheck:
  command: [sh, -c, "{check}"]
  initialDelaySeconds: 1
  periodSeconds: 1
  timeoutSeconds: 1
  failureThreshold: 2
"#
    )
}

#[tokio::test]
async fn failing_health_check_fails_with_logs_then_retry_resumes_and_rollback_cleans() {
    let Some(images) = images() else { return };
    let app = start().await;
    let p = app.default_project().await;
    let (ns, _cleanup) = namespace("flaky");
    upsert(&app, &p, &flaky_yaml(&images.busybox, false)).await;

    let id = deploy(
        &app,
        &p,
        &format!("install flaky in namespace {ns}"),
        json!({}),
    )
    .await;
    let failed = wait_end(&app, &id).await;
    assert_eq!(failed["status"], "FAILED", "{failed:#}");
    let logs = log_text(&failed);
    assert!(
        logs.contains("flaky-marker-line"),
        "the container's own output: {logs}"
    );
    assert!(
        failed["error"].as_str().unwrap().contains("flaky"),
        "{failed:#}"
    );

    // Fixed blueprint, then retry: parse and plan are not run again.
    upsert(&app, &p, &flaky_yaml(&images.busybox, true)).await;
    app.admin(
        "mutation($i: ID!) { retryIntent(id: $i) { id status } }",
        json!({ "i": id }),
    )
    .await;
    let done = wait_end(&app, &id).await;
    assert_eq!(done["status"], "COMPLETED", "{done:#}");
    let stages = done["execution"]["stages"].as_array().unwrap();
    assert_eq!(stages[0]["attempt"], 1, "parse ran once: {done:#}");
    assert_eq!(stages[2]["name"], "deploy-flaky");
    assert!(stages[2]["attempt"].as_i64().unwrap() >= 2, "{done:#}");

    roll_back(&app, &id).await;
    assert!(leftovers(&id).is_empty(), "{:?}", leftovers(&id));
    app.stop().await;
}

#[tokio::test]
async fn cancel_stops_before_the_next_component_and_a_cancelled_intent_rolls_back() {
    let Some(images) = images() else { return };
    let app = start().await;
    let p = app.default_project().await;
    let (ns, _cleanup) = namespace("cancel");
    // The store takes a few seconds to become healthy: time to cancel while it deploys.
    upsert(&app, &p, &store_yaml(&images.busybox, 4)).await;
    upsert(&app, &p, &app_yaml(&images.busybox)).await;

    let id = deploy(
        &app,
        &p,
        &format!("install shop in namespace {ns}"),
        json!({}),
    )
    .await;
    wait_for(&app, &id, &["DEPLOYING"], Duration::from_secs(60)).await;
    app.admin(
        "mutation($i: ID!) { cancelIntent(id: $i) { id } }",
        json!({ "i": id }),
    )
    .await;
    let cancelled = wait_end(&app, &id).await;
    assert_eq!(cancelled["status"], "CANCELLED", "{cancelled:#}");
    let stages = cancelled["execution"]["stages"].as_array().unwrap();
    let shop = stages.iter().find(|s| s["name"] == "deploy-shop").unwrap();
    assert_eq!(shop["status"], "CANCELLED", "{cancelled:#}");
    assert_eq!(
        docker(&[
            "ps",
            "-a",
            "-q",
            "--filter",
            &format!("name=default-{ns}-shop")
        ]),
        "",
        "the next component never started"
    );

    roll_back(&app, &id).await;
    assert!(leftovers(&id).is_empty(), "{:?}", leftovers(&id));
    app.stop().await;
}

#[tokio::test]
async fn scale_changes_replicas_and_its_rollback_restores_the_previous_spec() {
    let Some(images) = images() else { return };
    let app = start().await;
    let p = app.default_project().await;
    let (ns, _cleanup) = namespace("scale");
    upsert(&app, &p, &store_yaml(&images.busybox, 0)).await;
    let running = |ns: &str| {
        let mut names: Vec<String> = docker(&[
            "ps",
            "--format",
            "{{.Names}}",
            "--filter",
            &format!("name=default-{ns}-store"),
        ])
        .lines()
        .map(str::to_owned)
        .collect();
        names.sort();
        names
    };

    let install = deploy(
        &app,
        &p,
        &format!("install store in namespace {ns}"),
        json!({}),
    )
    .await;
    assert_eq!(wait_end(&app, &install).await["status"], "COMPLETED");
    assert_eq!(running(&ns), [format!("default-{ns}-store")]);

    let scale = deploy(
        &app,
        &p,
        &format!("scale store to 2 in namespace {ns}"),
        json!({}),
    )
    .await;
    let scaled = wait_end(&app, &scale).await;
    assert_eq!(scaled["status"], "COMPLETED", "{scaled:#}");
    assert_eq!(scaled["action"], "scale");
    assert_eq!(
        running(&ns),
        [
            format!("default-{ns}-store"),
            format!("default-{ns}-store-2")
        ]
    );

    // Rolling the scale back applies the install's spec again: one replica.
    let rolled = roll_back(&app, &scale).await;
    let stages: Vec<&str> = rolled["execution"]["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(stages, ["restore-store", "rolled-back"]);
    assert_eq!(running(&ns), [format!("default-{ns}-store")]);
    app.stop().await;
}
