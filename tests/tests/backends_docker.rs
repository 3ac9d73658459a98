//! A managed backend on a real Docker engine, driven through a real product process: created
//! from the `aaf-backend` blueprint (the image is the reference custom backend, imported
//! locally), validated and `ACTIVE`, then deleted through the intent rollback path — nothing
//! left behind. Its API key appears in no API answer and no log line.

use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;

use orchestrator_tests::process::{self, Process};
use orchestrator_tests::{
    Services, custom_backend_binary, global_admin_token, post_gql, product_binary,
    services_required,
};
use serde_json::{Value, json};

const IMAGE: &str = "orchestrator-test/custom-backend:test";
const API_KEY: &str = "sk-test-do-not-leak-7f3a9c2e51d84b06";

fn docker_available() -> bool {
    let docker = std::env::var("ORCH_TEST_DOCKER").is_ok_and(|v| v == "1");
    if !docker && services_required() {
        panic!("ORCH_TEST_REQUIRE_SERVICES=1 but ORCH_TEST_DOCKER is not set");
    }
    if !docker {
        eprintln!("skipped: needs a Docker engine (scripts/test.sh starts one)");
    }
    docker
}

/// Imports the reference custom backend as an image: the binary with its libraries, busybox
/// for the health check's `wget`, listening on 0.0.0.0:8080 like the aaf-backend image.
fn build_image() {
    let bin = custom_backend_binary!();
    let script = format!(
        r#"set -eu
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/usr/local/bin" "$root/bin" "$root/tmp" "$root/data" "$root/etc"
cp -L "{bin}" "$root/usr/local/bin/custom-backend"
for lib in $(ldd "{bin}" | grep -o '/[^ ]*'); do
  mkdir -p "$root$(dirname "$lib")"; cp -L "$lib" "$root$lib"
done
cp -L /bin/busybox "$root/bin/busybox"
for applet in sh wget; do ln -s busybox "$root/bin/$applet"; done
echo 'hosts: files dns' > "$root/etc/nsswitch.conf"
tar -C "$root" -c . | docker import \
  --change 'ENV PATH=/usr/local/bin:/bin' \
  --change 'ENV CUSTOM_BACKEND_LISTEN=0.0.0.0:8080' \
  --change 'CMD ["custom-backend"]' - {IMAGE} >/dev/null
"#,
        bin = bin.display()
    );
    let status = Command::new("bash")
        .arg("-c")
        .arg(script)
        .status()
        .expect("bash");
    assert!(status.success(), "could not build {IMAGE}");
}

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("docker CLI");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

async fn gql(proc: &Process, query: &str, vars: Value) -> Value {
    post_gql(proc.addr, &global_admin_token(), query, vars).await
}

async fn backend(proc: &Process, id: &str) -> Value {
    gql(
        proc,
        "query($b: ID!) { backend(id: $b) { id status statusMessage url configuration secretFields intentId } }",
        json!({ "b": id }),
    )
    .await["backend"]
        .clone()
}

async fn wait_status(proc: &Process, id: &str, wanted: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let now = backend(proc, id).await;
        if now["status"] == wanted {
            return now;
        }
        assert!(
            tokio::time::Instant::now() < deadline && now["status"] != "FAILED",
            "backend {id} is {now:#}, waiting for {wanted}:\n{}",
            proc.log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_managed_backend_is_created_on_docker_and_deleted_without_a_trace() {
    if !docker_available() {
        return;
    }
    orchestrator_tests::init_crypto();
    build_image();
    let data = tempfile::tempdir().unwrap();
    let mut env: HashMap<String, String> =
        orchestrator_tests::service_env(&Services::Embedded, data.path()).await;
    env.insert("ORCH_DEPLOY_READY_TIMEOUT_SECS".into(), "60".into());
    env.insert("RUST_LOG".into(), "debug".into());
    let mut proc = process::start(&product_binary!(), &[], &env, data.path(), "managed");
    proc.wait_ready("/ready", Duration::from_secs(30)).await;
    let projects = gql(&proc, "{ projects { id slug } }", json!({})).await;
    let p = projects["projects"][0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{projects:#}\n{}", proc.log_text()))
        .to_owned();
    let namespace = format!("m{}", &uuid::Uuid::new_v4().simple().to_string()[..6]);

    let created = gql(
        &proc,
        "mutation($in: CreateBackendInput!) { createBackend(input: $in) { id status configuration secretFields } }",
        json!({ "in": {
            "projectId": p,
            "name": "support",
            "configuration": { "instance_name": "support", "openai_api_key": API_KEY },
            "platform": "DOCKER",
            "namespace": namespace,
            "params": { "aaf-backend": { "image": IMAGE } },
        } }),
    )
    .await;
    let id = created["createBackend"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{created:#}"))
        .to_owned();
    assert_eq!(created["createBackend"]["status"], "PROVISIONING");
    assert_eq!(
        created["createBackend"]["secretFields"],
        json!(["openai_api_key"])
    );

    let active = wait_status(&proc, &id, "ACTIVE").await;
    assert!(
        active["url"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:"),
        "{active:#}"
    );
    let health: Value = reqwest::get(format!("{}/health", active["url"].as_str().unwrap()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "healthy");
    let intent = active["intentId"].as_str().unwrap().to_owned();
    let deployed = gql(
        &proc,
        "query($i: ID!) { intent(id: $i) { status plan { components { manifests } } logs(first: 1000) { message } resources { kind name } } }",
        json!({ "i": intent }),
    )
    .await;
    assert_eq!(deployed["intent"]["status"], "COMPLETED");
    let container = format!("default-{namespace}-aaf-backend");
    assert!(
        docker(&["ps", "-q", "--filter", &format!("name={container}")]).len() > 1,
        "the backend container runs"
    );

    // The key reached the container, and nothing else.
    let env_lines = docker(&[
        "inspect",
        "-f",
        "{{range .Config.Env}}{{println .}}{{end}}",
        &container,
    ]);
    assert!(env_lines.contains(&format!("OPENAI_API_KEY={API_KEY}")));
    for answer in [&created, &json!(active), &deployed] {
        assert!(
            !answer.to_string().contains(API_KEY),
            "the key leaked: {answer:#}"
        );
    }

    let deleting = gql(
        &proc,
        "mutation($b: ID!) { deleteBackend(id: $b) { status } }",
        json!({ "b": id }),
    )
    .await;
    assert_eq!(
        deleting["deleteBackend"]["status"], "DELETING",
        "{deleting:#}"
    );
    let deleted = wait_status(&proc, &id, "DELETED").await;
    assert!(deleted["url"].is_null());
    let label = format!("label=orchestrator.dev/intent={intent}");
    assert_eq!(docker(&["ps", "-a", "-q", "--filter", &label]), "");
    assert_eq!(docker(&["network", "ls", "-q", "--filter", &label]), "");
    assert_eq!(docker(&["volume", "ls", "-q", "--filter", &label]), "");

    let log = proc.log_text();
    assert!(!log.is_empty());
    let leaks: Vec<&str> = log.lines().filter(|l| l.contains(API_KEY)).collect();
    assert!(leaks.is_empty(), "the key is in the log: {leaks:#?}");
    let _ = proc.child.kill().await;
}
