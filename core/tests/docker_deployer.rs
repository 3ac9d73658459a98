//! The Docker deployer against a real Docker Engine, with plans rendered by the real
//! blueprint engine: the builtin redis blueprint on the local test image, a dependency
//! chain, failures (a health check that fails, a container that exits, an image that is
//! missing) and changes (a parameter, the replica count).
//!
//! Needs `ORCH_TEST_DOCKER=1` and the test images of `scripts/services.sh`
//! (`ORCH_TEST_REDIS_IMAGE`, `ORCH_TEST_BUSYBOX_IMAGE`); without them the tests say why and
//! pass, unless `ORCH_TEST_REQUIRE_SERVICES=1` makes that a failure.

#[path = "docker_deployer/blueprints.rs"]
mod blueprints;
#[path = "docker_deployer/support.rs"]
mod support;

use std::time::Duration;

use orchestrator_core::blueprint::{
    BUILTIN_SOURCES, Catalogue, Platform, RenderRequest, RenderedPlan, render,
};
use orchestrator_core::deploy::docker::DockerDeployer;
use orchestrator_core::deploy::{ApplyRequest, Deployer, RecordedObject};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use blueprints::{APP, FLAKY, GREETER, QUITTER, STORE};
use support::{Deployment, blueprint, engine};

const READY: Duration = Duration::from_secs(30);

/// The builtin redis blueprint, checking health every second instead of every ten.
fn quick_redis() -> Catalogue {
    let (_, source) = BUILTIN_SOURCES
        .iter()
        .find(|(name, _)| *name == "redis")
        .expect("redis is a builtin");
    assert!(source.contains("  periodSeconds: 10\n"));
    let quick = source.replace("  periodSeconds: 10\n", "  periodSeconds: 1\n");
    Catalogue::builtin().with_overlay(vec![blueprint(&quick)])
}

fn container_of<'p>(plan: &'p RenderedPlan, component: &str) -> &'p str {
    &plan
        .component(component)
        .unwrap()
        .docker
        .as_ref()
        .unwrap()
        .name
}

/// Sends `AUTH password` and `PING` to the Redis server at `port` and returns its answers.
async fn auth_and_ping(port: u16, password: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("the published port accepts connections");
    let command = format!(
        "*2\r\n$4\r\nAUTH\r\n${}\r\n{password}\r\n*1\r\n$4\r\nPING\r\n",
        password.len()
    );
    stream.write_all(command.as_bytes()).await.unwrap();
    let mut answers = String::new();
    let mut buffer = [0u8; 256];
    while answers.matches("\r\n").count() < 2 {
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buffer))
            .await
            .expect("Redis answers within 5 s")
            .unwrap();
        assert!(read > 0, "Redis closed the connection after {answers:?}");
        answers.push_str(&String::from_utf8_lossy(&buffer[..read]));
    }
    answers
}

#[tokio::test]
async fn redis_blueprint_runs_healthy_answers_on_its_port_and_is_removed() {
    let Some(engine) = engine().await else { return };
    let mut deployment = Deployment::new(&engine, quick_redis(), &["redis"], "redis");
    deployment.param("redis", "image", engine.redis_image.as_str());
    let plan = deployment.render();
    let password = plan.secrets["redis.password"].clone();
    let container = container_of(&plan, "redis");

    let (outcome, progress) = deployment.apply(&plan, "redis", READY).await;
    let report = outcome.unwrap_or_else(|e| panic!("{e}: {:#?}", e.details));
    let kinds: Vec<&str> = report.objects.iter().map(|o| o.kind.as_str()).collect();
    assert_eq!(kinds, ["Network", "Volume", "Container"]);
    assert_eq!(report.changed, report.objects, "everything was created");
    for line in [
        "created network",
        "created volume",
        "created container",
        "redis ready after",
    ] {
        assert!(
            progress.iter().any(|l| l.starts_with(line)),
            "{line}: {progress:#?}"
        );
    }
    assert!(
        !progress.iter().any(|l| l.contains(&password)),
        "{progress:#?}"
    );

    let inspect = deployment.inspect(container).await;
    let state = inspect.state.unwrap();
    assert_eq!(state.health.unwrap().status.unwrap().to_string(), "healthy");
    let labels = inspect.config.unwrap().labels.unwrap();
    assert_eq!(
        labels["orchestrator.dev/spec-hash"],
        report.objects[2].spec_hash
    );
    let host_port = plan
        .component("redis")
        .unwrap()
        .docker
        .as_ref()
        .unwrap()
        .ports[0]
        .host_port
        .expect("a root publishes its port");
    assert_eq!(
        auth_and_ping(host_port, &password).await,
        "+OK\r\n+PONG\r\n"
    );

    let (again, progress) = deployment.apply(&plan, "redis", READY).await;
    let again = again.expect("re-applying works");
    assert!(
        again.changed.is_empty(),
        "{:?} / {progress:#?}",
        again.changed
    );
    assert_eq!(again.objects, report.objects);

    let recorded: Vec<RecordedObject> = report
        .objects
        .iter()
        .rev()
        .map(|o| RecordedObject {
            kind: o.kind.clone(),
            name: o.name.clone(),
            namespace: None,
        })
        .collect();
    let (progress, _lines) = tokio::sync::mpsc::unbounded_channel();
    deployment
        .deployer
        .remove(&recorded, true, &progress)
        .await
        .expect("removal works");
    let (containers, networks, volumes) = deployment.labelled().await;
    assert!(containers.is_empty() && networks.is_empty() && volumes.is_empty());
    // Removing again finds nothing and is fine.
    deployment
        .deployer
        .remove(&recorded, true, &progress)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_dependent_reaches_its_dependency_by_the_exported_host_name() {
    let Some(engine) = engine().await else { return };
    let catalogue = Catalogue::from_blueprints(vec![blueprint(STORE), blueprint(APP)]);
    let mut deployment = Deployment::new(&engine, catalogue, &["app"], "chain");
    deployment.param("store", "image", engine.busybox_image.as_str());
    deployment.param("app", "image", engine.busybox_image.as_str());
    let plan = deployment.render();
    let order: Vec<&str> = plan.components.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(order, ["store", "app"]);

    let (store, _) = deployment.apply(&plan, "store", READY).await;
    let store = store.unwrap_or_else(|e| panic!("{e}: {:#?}", e.details));
    assert!(store.changed.iter().any(|o| o.kind == "Network"));
    // The app's health check fetches from $STORE_HOST: healthy means the name resolved.
    let (app, progress) = deployment.apply(&plan, "app", READY).await;
    let app = app.unwrap_or_else(|e| panic!("{e}: {:#?}", e.details));
    assert!(
        !app.changed.iter().any(|o| o.kind == "Network"),
        "{progress:#?}"
    );
    assert_eq!(app.objects[0], store.objects[0], "one network for both");

    let env = deployment
        .inspect(container_of(&plan, "app"))
        .await
        .config
        .unwrap()
        .env
        .unwrap();
    let store_host = format!("STORE_HOST={}", container_of(&plan, "store"));
    assert!(env.contains(&store_host), "{env:#?}");
    assert!(env.contains(&"STORE_PORT=7000".to_owned()), "{env:#?}");
}

#[tokio::test]
async fn failing_containers_fail_permanently_with_their_logs() {
    let Some(engine) = engine().await else { return };
    let catalogue = Catalogue::from_blueprints(vec![blueprint(FLAKY), blueprint(QUITTER)]);
    let mut deployment = Deployment::new(&engine, catalogue, &["flaky", "quitter"], "fail");
    deployment.param("flaky", "image", engine.busybox_image.as_str());
    deployment.param("quitter", "image", engine.busybox_image.as_str());
    let plan = deployment.render();

    let (outcome, _) = deployment.apply(&plan, "flaky", READY).await;
    let error = outcome.expect_err("the health check never passes");
    assert!(!error.retryable);
    assert!(
        error.message.contains(container_of(&plan, "flaky")),
        "{}",
        error.message
    );
    assert!(
        error.message.contains("health check failed"),
        "{}",
        error.message
    );
    for line in ["flaky: starting up", "flaky: cannot reach the database"] {
        assert!(
            error.details.iter().any(|d| d == line),
            "{line}: {:#?}",
            error.details
        );
    }
    assert!(
        error.details.iter().any(|d| d.ends_with("not today")),
        "{:#?}",
        error.details
    );

    let (outcome, _) = deployment.apply(&plan, "quitter", READY).await;
    let error = outcome.expect_err("the process exits");
    assert!(!error.retryable);
    assert!(
        error.message.contains("exited with code 3"),
        "{}",
        error.message
    );
    assert!(
        error
            .details
            .iter()
            .any(|d| d == "quitter: configuration missing")
    );
}

#[tokio::test]
async fn missing_images_and_secrets_are_permanent_errors() {
    let Some(engine) = engine().await else { return };
    let catalogue = Catalogue::from_blueprints(vec![blueprint(QUITTER)]);
    let mut deployment = Deployment::new(&engine, catalogue, &["quitter"], "absent");
    deployment.param("quitter", "image", "orchestrator-test/absent:1");
    let plan = deployment.render();
    let (outcome, _) = deployment.apply(&plan, "quitter", READY).await;
    let error = outcome.expect_err("the image does not exist");
    assert!(!error.retryable);
    assert_eq!(
        error.message,
        "image orchestrator-test/absent:1 is not present on the Docker engine and no registry \
         pull succeeded"
    );

    let redis = Catalogue::builtin();
    let mut deployment = Deployment::new(&engine, redis, &["redis"], "nosecret");
    deployment.param("redis", "image", engine.redis_image.as_str());
    let mut plan = deployment.render();
    let password = plan.secrets.remove("redis.password").unwrap();
    let (outcome, _) = deployment.apply(&plan, "redis", READY).await;
    let error = outcome.expect_err("the secret is missing");
    assert!(!error.retryable);
    assert!(
        error.message.contains("'redis.password'"),
        "{}",
        error.message
    );
    assert!(!error.message.contains(&password));
    let (containers, networks, _) = deployment.labelled().await;
    assert!(
        containers.is_empty() && networks.is_empty(),
        "nothing created"
    );
}

#[tokio::test]
async fn changes_replace_containers_and_replicas_scale_up_and_down() {
    let Some(engine) = engine().await else { return };
    let catalogue = Catalogue::from_blueprints(vec![blueprint(GREETER)]);
    let mut deployment = Deployment::new(&engine, catalogue, &["greeter"], "change");
    deployment.param("greeter", "image", engine.busybox_image.as_str());
    let first = deployment.render();
    let name = container_of(&first, "greeter").to_owned();
    let (report, _) = deployment.apply(&first, "greeter", READY).await;
    let before = report.unwrap();
    let id_before = deployment.inspect(&name).await.id;

    deployment.param("greeter", "greeting", "bonjour");
    let second = deployment.render();
    let (report, progress) = deployment.apply(&second, "greeter", READY).await;
    let after = report.unwrap();
    assert_eq!(
        after.changed.len(),
        1,
        "only the container: {:?}",
        after.changed
    );
    let (old_hash, new_hash) = (&before.objects[1].spec_hash, &after.changed[0].spec_hash);
    assert_ne!(old_hash, new_hash);
    assert!(
        progress
            .iter()
            .any(|l| l.starts_with("replacing container")),
        "{progress:#?}"
    );
    let inspect = deployment.inspect(&name).await;
    assert_ne!(inspect.id, id_before, "a new container");
    let config = inspect.config.unwrap();
    assert_eq!(
        &config.labels.unwrap()["orchestrator.dev/spec-hash"],
        new_hash
    );
    assert!(config.env.unwrap().contains(&"GREETING=bonjour".to_owned()));

    deployment.request.replicas = Some(2);
    let doubled = deployment.render();
    let (report, _) = deployment.apply(&doubled, "greeter", READY).await;
    let names: Vec<String> = report
        .unwrap()
        .objects
        .into_iter()
        .skip(1)
        .map(|o| o.name)
        .collect();
    assert_eq!(names, [name.clone(), format!("{name}-2")]);
    let second_replica = deployment.inspect(&names[1]).await;
    assert_eq!(second_replica.state.unwrap().running, Some(true));

    deployment.request.replicas = Some(1);
    let single = deployment.render();
    deployment.apply(&single, "greeter", READY).await.0.unwrap();
    let (containers, _, _) = deployment.labelled().await;
    assert_eq!(containers, [name]);
}

#[tokio::test]
async fn an_engine_that_does_not_answer_is_a_retryable_error() {
    // A port that was free a moment ago: connections to it are refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .unwrap()
        .port();
    let client = bollard::Docker::connect_with_http(
        &format!("tcp://127.0.0.1:{port}"),
        5,
        bollard::API_DEFAULT_VERSION,
    )
    .unwrap();
    let deployer = DockerDeployer::with_client(client);
    let catalogue = Catalogue::from_blueprints(vec![blueprint(GREETER)]);
    let plan = render(
        &catalogue,
        &RenderRequest::new(&["greeter"], Platform::Docker),
    )
    .unwrap();
    let request = ApplyRequest {
        plan: &plan,
        component: "greeter",
        secrets: &plan.secrets,
        namespace: "default",
        ready_timeout: READY,
    };
    let (progress, _lines) = tokio::sync::mpsc::unbounded_channel();
    let error = deployer.apply(request, &progress).await.unwrap_err();
    assert!(error.retryable, "{error}");
    assert!(error.message.contains("network default-default"), "{error}");
}
