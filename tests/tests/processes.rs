//! The real binary: start-up errors, the embedded default, and a scaled setup where an `api`
//! process enqueues and separate `worker` processes share the backlog.

use std::collections::HashMap;
use std::time::Duration;

use orchestrator_tests::process::{self, Process};
use orchestrator_tests::{Services, product_binary, service_env};
use orchestrator_tests::{global_admin_token, post_gql};
use serde_json::{Value, json};

fn base_env(data_dir: &std::path::Path) -> HashMap<String, String> {
    [("ORCH_DATA_DIR".to_string(), data_dir.display().to_string())]
        .into_iter()
        .collect()
}

/// The error output must be one line that says what is wrong.
fn assert_one_line(stderr: &str, needle: &str) {
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one line, got:\n{stderr}");
    assert!(
        lines[0].contains(needle),
        "expected {needle:?} in {:?}",
        lines[0]
    );
}

#[tokio::test]
async fn startup_errors_are_one_clear_line() {
    let bin = product_binary!();
    let tmp = tempfile::tempdir().unwrap();

    let (code, _, stderr) = process::run(&bin, &["--no-such-flag"], &base_env(tmp.path())).await;
    assert_ne!(code, Some(0));
    assert!(stderr.contains("--no-such-flag"), "{stderr}");

    // A data dir that cannot be created (a file is in the way).
    let blocker = tmp.path().join("file");
    std::fs::write(&blocker, "x").unwrap();
    let bad_dir = blocker.join("data");
    let (code, _, stderr) =
        process::run(&bin, &["--listen", "127.0.0.1:0"], &base_env(&bad_dir)).await;
    assert_eq!(code, Some(1));
    assert_one_line(&stderr, "data dir");

    // An invalid configuration value names the key.
    let mut env = base_env(&tmp.path().join("d1"));
    env.insert("ORCH_QUEUE_MAX_ATTEMPTS".into(), "lots".into());
    let (code, _, stderr) = process::run(&bin, &[], &env).await;
    assert_eq!(code, Some(1));
    assert_one_line(&stderr, "ORCH_QUEUE_MAX_ATTEMPTS");

    // Unreachable database and Redis: one line, and no database file half-created.
    let dir = tmp.path().join("d2");
    let mut env = base_env(&dir);
    env.insert(
        "DATABASE_URL".into(),
        "postgres://nobody:secretpw@127.0.0.1:1/none".into(),
    );
    env.insert("ORCH_STARTUP_TIMEOUT".into(), "1".into());
    let (code, _, stderr) = process::run(&bin, &["api", "--listen", "127.0.0.1:0"], &env).await;
    assert_eq!(code, Some(1));
    assert_one_line(&stderr, "cannot connect to the database");
    assert!(!stderr.contains("secretpw"), "password leaked: {stderr}");

    let dir = tmp.path().join("d3");
    let mut env = base_env(&dir);
    env.insert("REDIS_URL".into(), "redis://127.0.0.1:1".into());
    env.insert("ORCH_STARTUP_TIMEOUT".into(), "1".into());
    let (code, _, stderr) = process::run(&bin, &["worker", "--listen", "127.0.0.1:0"], &env).await;
    assert_eq!(code, Some(1));
    assert_one_line(&stderr, "Redis");

    // Every subcommand has --help.
    for sub in ["standalone", "api", "worker", "migrate", "schema", "token"] {
        let (code, stdout, _) = process::run(&bin, &[sub, "--help"], &HashMap::new()).await;
        assert_eq!(code, Some(0), "{sub} --help");
        assert!(stdout.contains("Usage"), "{sub}: {stdout}");
    }
}

#[tokio::test]
async fn the_embedded_default_answers_with_a_cli_token() {
    let bin = product_binary!();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut proc = process::start(&bin, &[], &base_env(&data), tmp.path(), "standalone");
    proc.wait_ready("/health", Duration::from_secs(20)).await;
    let log = proc.log_text();
    assert!(log.contains("/graphql"), "prints the GraphQL URL: {log}");
    assert!(
        log.contains("orchestrator token --data-dir"),
        "prints the token command: {log}"
    );

    // The generated secret is private to its owner.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join("jwt.secret"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let (code, token, stderr) = process::run(
        &bin,
        &[
            "token",
            "--data-dir",
            data.to_str().unwrap(),
            "--role",
            "admin",
            "--ttl",
            "10m",
        ],
        &HashMap::new(),
    )
    .await;
    assert_eq!(code, Some(0), "{stderr}");
    let body: Value = reqwest::Client::new()
        .post(format!("http://{}/graphql", proc.addr))
        .bearer_auth(token.trim())
        .json(&json!({ "query": "{ projects { slug } }" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["data"]["projects"][0]["slug"], "default", "{body}");
    let (code, _, stderr) = process::run(
        &bin,
        &[
            "token",
            "--data-dir",
            data.to_str().unwrap(),
            "--role",
            "root",
        ],
        &HashMap::new(),
    )
    .await;
    assert_ne!(code, Some(0));
    assert!(stderr.contains("--role"), "{stderr}");

    // `schema` prints what is checked in.
    let (code, sdl, _) = process::run(&bin, &["schema"], &HashMap::new()).await;
    assert_eq!(code, Some(0));
    let checked_in =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../schema.graphql")).unwrap();
    assert_eq!(sdl, checked_in);

    proc.terminate();
    let status = tokio::time::timeout(Duration::from_secs(20), proc.child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(
        status.success(),
        "exit status {status}:\n{}",
        proc.log_text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_enqueues_and_two_workers_share_the_backlog() {
    let Some(services) = Services::postgres_redis() else {
        return;
    };
    let bin = product_binary!();
    let tmp = tempfile::tempdir().unwrap();
    let env = service_env(&services, tmp.path()).await;

    let mut api = process::start(&bin, &["api"], &env, tmp.path(), "api");
    api.wait_ready("/ready", Duration::from_secs(30)).await;
    let token = global_admin_token();
    let data = post_gql(api.addr, &token, "{ projects { id } }", json!({})).await;
    let project = data["projects"][0]["id"].as_str().unwrap().to_string();

    // A backlog queued while no worker runs.
    let mut ids = Vec::new();
    for i in 0..24 {
        let data = post_gql(
            api.addr,
            &token,
            "mutation($p: ID!, $i: JSON) { startExecution(input: {projectId: $p, pipeline: \"sleep\", input: $i}) { id } }",
            json!({ "p": project, "i": { "ms": 50, "n": i } }),
        )
        .await;
        ids.push(data["startExecution"]["id"].as_str().unwrap().to_string());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let data = post_gql(
        api.addr,
        &token,
        "query($p: ID!) { executions(projectId: $p, status: QUEUED) { totalCount } }",
        json!({ "p": project }),
    )
    .await;
    assert_eq!(
        data["executions"]["totalCount"], 24,
        "the api process runs no stages"
    );

    let mut workers: Vec<Process> = (0..2)
        .map(|i| {
            let mut env = env.clone();
            env.insert("ORCH_WORKER_NAME".into(), format!("w{i}"));
            env.insert("ORCH_WORKER_CONCURRENCY".into(), "2".into());
            process::start(&bin, &["worker"], &env, tmp.path(), &format!("worker{i}"))
        })
        .collect();
    for w in &mut workers {
        w.wait_ready("/ready", Duration::from_secs(30)).await;
    }

    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let data = post_gql(
            api.addr,
            &token,
            "query($p: ID!) { executions(projectId: $p, status: SUCCEEDED) { totalCount } }",
            json!({ "p": project }),
        )
        .await;
        if data["executions"]["totalCount"] == 24 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "backlog not drained: {data}\n{}\n{}",
            workers[0].log_text(),
            workers[1].log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Each stage ran exactly once, and both worker processes took part.
    let mut ran_on = HashMap::<String, usize>::new();
    for id in &ids {
        let data = post_gql(
            api.addr,
            &token,
            "query($id: ID!) { execution(id: $id) { stages { attempt status } logs { message } } }",
            json!({ "id": id }),
        )
        .await;
        let stage = &data["execution"]["stages"][0];
        assert_eq!(stage["attempt"], 1);
        assert_eq!(stage["status"], "SUCCEEDED");
        let starts: Vec<String> = data["execution"]["logs"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|l| l["message"].as_str())
            .filter(|m| m.contains(" started "))
            .map(str::to_string)
            .collect();
        assert_eq!(starts.len(), 1, "stage ran more than once: {starts:?}");
        let worker = starts[0]
            .rsplit(" on ")
            .next()
            .unwrap()
            .split('-')
            .next()
            .unwrap()
            .to_string();
        *ran_on.entry(worker).or_default() += 1;
    }
    assert_eq!(
        ran_on.len(),
        2,
        "both workers should share the backlog: {ran_on:?}"
    );
    for mut w in workers {
        w.terminate();
        let status = tokio::time::timeout(Duration::from_secs(20), w.child.wait())
            .await
            .unwrap()
            .unwrap();
        assert!(status.success(), "{}", w.log_text());
    }
    api.terminate();
}
