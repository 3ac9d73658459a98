//! Process lifecycle: SIGTERM lets a running stage finish and exits 0; an API started before
//! its database and Redis waits for them and becomes ready once they answer.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use orchestrator_tests::process;
use orchestrator_tests::{Services, product_binary, service_env};
use orchestrator_tests::{global_admin_token, post_gql};
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_the_running_stage_finish_and_exits_zero() {
    let process::Sleeping {
        mut proc,
        token,
        execution_id: id,
        env,
        data_dir: _data_dir,
    } = process::standalone_with_sleep(&product_binary!(), 1500).await;
    // Wait until the stage runs, then ask the process to stop.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let data = post_gql(
            proc.addr,
            &token,
            "query($id: ID!) { execution(id: $id) { status } }",
            json!({ "id": id }),
        )
        .await;
        if data["execution"]["status"] == "RUNNING" {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never ran: {data}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    proc.terminate();
    // While draining, readiness turns 503 (or the listener is already closed).
    let status = tokio::time::timeout(Duration::from_secs(20), proc.child.wait())
        .await
        .expect("exits")
        .unwrap();
    assert!(
        status.success(),
        "exit status {status}:\n{}",
        proc.log_text()
    );

    // Nothing is left RUNNING: the stage finished before the process exited.
    let db = orchestrator_core::db::connect(&env_db_url(&env), 1)
        .await
        .unwrap();
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
    let stages = orchestrator_entity::stages::Entity::find()
        .all(&db)
        .await
        .unwrap();
    assert!(
        stages
            .iter()
            .all(|s| s.status != orchestrator_entity::StageStatus::Running)
    );
}

fn env_db_url(env: &HashMap<String, String>) -> String {
    env.get("DATABASE_URL")
        .cloned()
        .unwrap_or_else(|| format!("sqlite://{}/orchestrator.db?mode=rwc", env["ORCH_DATA_DIR"]))
}

/// Forwards every connection on `listener` to `target` (a stand-in for a service coming up).
async fn forward(listener: TcpListener, target: SocketAddr) {
    loop {
        let Ok((mut inbound, _)) = listener.accept().await else {
            return;
        };
        tokio::spawn(async move {
            if let Ok(mut outbound) = TcpStream::connect(target).await {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
    }
}

fn host_port(url: &str) -> SocketAddr {
    let rest = url.split("://").nth(1).unwrap();
    let rest = rest.rsplit('@').next().unwrap();
    let hostport = rest.split(['/', '?']).next().unwrap();
    hostport.parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_waits_for_its_database_and_redis() {
    let Some(services) = Services::postgres_redis() else {
        return;
    };
    let bin = product_binary!();
    let tmp = tempfile::tempdir().unwrap();
    let mut env = service_env(&services, tmp.path()).await;
    // Point the process at ports where nothing listens yet.
    let pg_real = host_port(&env["DATABASE_URL"]);
    let redis_real = host_port(&env["REDIS_URL"]);
    let pg_late = process::free_addr();
    let redis_late = process::free_addr();
    env.insert(
        "DATABASE_URL".into(),
        env["DATABASE_URL"].replace(&pg_real.to_string(), &pg_late.to_string()),
    );
    env.insert(
        "REDIS_URL".into(),
        env["REDIS_URL"].replace(&redis_real.to_string(), &redis_late.to_string()),
    );
    env.insert("ORCH_STARTUP_TIMEOUT".into(), "60".into());
    let mut proc = process::start(&bin, &["api"], &env, tmp.path(), "api-early");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !proc.log_text().contains("waiting for the database") {
        assert!(
            proc.child.try_wait().unwrap().is_none(),
            "gave up too early:\n{}",
            proc.log_text()
        );
        assert!(
            tokio::time::Instant::now() < deadline,
            "never says what it waits for:\n{}",
            proc.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The services come up.
    tokio::spawn(forward(TcpListener::bind(pg_late).await.unwrap(), pg_real));
    tokio::spawn(forward(
        TcpListener::bind(redis_late).await.unwrap(),
        redis_real,
    ));
    proc.wait_ready("/ready", Duration::from_secs(30)).await;
    let data = post_gql(
        proc.addr,
        &global_admin_token(),
        "{ projects { slug } }",
        json!({}),
    )
    .await;
    assert_eq!(data["projects"][0]["slug"], "default");
    proc.terminate();
}
