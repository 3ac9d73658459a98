//! Draining after SIGTERM: `/ready` answers 503 at once while the running stage finishes and
//! the API keeps answering, websockets are closed with 1001 (going away), and the process
//! exits 0 once the stage is done.

use std::time::Duration;

use orchestrator_tests::process;
use orchestrator_tests::ws::{Protocol, WsClient};
use orchestrator_tests::{post_gql, product_binary};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_turns_ready_to_503_closes_websockets_and_finishes_the_stage() {
    let process::Sleeping {
        mut proc,
        token,
        execution_id: id,
        env,
        data_dir: _data_dir,
    } = process::standalone_with_sleep(&product_binary!(), 3000).await;
    let auth = json!({ "Authorization": format!("Bearer {token}") });
    let (mut socket, ack) = WsClient::connect(proc.addr, Protocol::TransportWs, auth).await;
    assert_eq!(ack["type"], "connection_ack", "{ack}");
    socket
        .start(
            "1",
            "subscription($id: ID!) { executionUpdated(id: $id) { status } }",
            json!({ "id": id }),
        )
        .await;
    // Wait until the stage runs.
    loop {
        let update = socket.next_message(Duration::from_secs(10)).await;
        if update["payload"]["data"]["executionUpdated"]["status"] == "RUNNING" {
            break;
        }
        assert!(update.get("closed").is_none(), "{update}");
    }

    proc.terminate();
    let http = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    loop {
        let ready = http
            .get(format!("http://{}/ready", proc.addr))
            .send()
            .await
            .expect("the listener stays open while the stage drains");
        if ready.status() == 503 {
            let body: serde_json::Value = ready.json().await.unwrap();
            assert_eq!(body["status"], "draining");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "/ready still {} after SIGTERM",
            ready.status()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Liveness and the API itself keep answering during the drain.
    let health = http
        .get(format!("http://{}/health", proc.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let during = post_gql(
        proc.addr,
        &token,
        "query($id: ID!) { execution(id: $id) { status } }",
        json!({ "id": id }),
    )
    .await;
    assert_eq!(during["execution"]["status"], "RUNNING");

    let closed = loop {
        let message = socket.next_message(Duration::from_secs(5)).await;
        if let Some(code) = message.get("closed") {
            break code.clone();
        }
    };
    assert_eq!(closed, json!(1001));

    let status = tokio::time::timeout(Duration::from_secs(20), proc.child.wait())
        .await
        .expect("exits after the stage")
        .unwrap();
    assert!(
        status.success(),
        "exit status {status}:\n{}",
        proc.log_text()
    );
    let db_url = format!("sqlite://{}/orchestrator.db?mode=rwc", env["ORCH_DATA_DIR"]);
    let db = orchestrator_core::db::connect(&db_url, 1).await.unwrap();
    use sea_orm::EntityTrait;
    let execution =
        orchestrator_entity::executions::Entity::find_by_id(uuid::Uuid::parse_str(&id).unwrap())
            .one(&db)
            .await
            .unwrap()
            .unwrap();
    assert_eq!(
        execution.status,
        orchestrator_entity::ExecutionStatus::Succeeded,
        "{}",
        proc.log_text()
    );
}
