//! The queue board under `/board`: the apalis-board web app and its API, for global admins
//! only (by header or by the cookie a browser gets from `/board/login`), read-only, and
//! showing what the engine's queues hold. Answers are decoded into apalis-core's own types,
//! the ones the web app decodes them into.

use apalis_core::backend::{QueueInfo, RunningWorker, Statistic};
use apalis_core::task::ExecutionContext;
use apalis_core::task::status::Status;
use orchestrator::Mode;
use orchestrator_tests::{Services, TestApp, project_token, spawn_app_with};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// The board's paths: the app, a route inside it, an asset, and the API.
fn pages(app: &TestApp) -> Vec<String> {
    let normal = normal_queue(app);
    let mut pages: Vec<String> = [
        "/board",
        "/board/queues",
        "/board/assets/board.js",
        "/board/api/v1/queues",
        "/board/api/v1/overview",
        "/board/api/v1/tasks",
        "/board/api/v1/workers",
    ]
    .map(String::from)
    .to_vec();
    pages.push(format!("/board/api/v1/queues/{normal}/stats"));
    pages.push(format!("/board/api/v1/queues/{normal}/tasks"));
    pages.push(format!("/board/api/v1/queues/{normal}/workers"));
    pages
}

fn normal_queue(app: &TestApp) -> String {
    format!("{}:run-stage:normal", app.env["ORCH_QUEUE_PREFIX"])
}

async fn json_of(app: &TestApp, path: &str) -> Value {
    let response = get(app, path, Some(&app.admin_token)).await;
    let status = response.status();
    let body = response.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
}

fn stat(stats: &[Statistic], title: &str) -> String {
    stats
        .iter()
        .find(|s| s.title == title)
        .unwrap_or_else(|| panic!("no {title} in {stats:?}"))
        .value
        .clone()
}

/// A task as the web app reads it: its args and its execution context.
fn task(value: &Value) -> (Value, ExecutionContext) {
    let ctx = serde_json::from_value(value["ctx"].clone())
        .unwrap_or_else(|e| panic!("ctx does not decode: {e}: {value:#}"));
    (value["args"].clone(), ctx)
}

async fn refused(app: &TestApp, path: &str, status: StatusCode, field: &str) {
    let response = get(app, path, Some(&app.admin_token)).await;
    assert_eq!(response.status(), status, "{path}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["field"], field, "{path}: {body:#}");
    assert!(body["error"].is_string(), "{path}: {body:#}");
}

async fn get(app: &TestApp, path: &str, token: Option<&str>) -> reqwest::Response {
    let mut request = app.http.get(app.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

fn global(role: &str) -> String {
    orchestrator_tests::mint(&orchestrator_core::auth::Claims {
        sub: format!("global-{role}"),
        exp: chrono::Utc::now().timestamp() + 3600,
        nbf: None,
        iat: None,
        role: Some(role.into()),
        projects: Default::default(),
    })
}

/// A client that keeps cookies but follows no redirects.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn only_global_admins_see_the_board(services: Services) {
    // An API without workers, so the jobs stay where the board can see them.
    let app = spawn_app_with(&services, Mode::Api, &[]).await;
    let project = app.default_project().await;
    let key = app
        .admin(
            "mutation($p: ID!) { createApiKey(projectId: $p, name: \"board\", role: ADMIN) { secret } }",
            json!({ "p": project }),
        )
        .await["createApiKey"]["secret"]
        .as_str()
        .unwrap()
        .to_string();

    for path in pages(&app) {
        let path = path.as_str();
        assert_eq!(
            get(&app, path, None).await.status(),
            StatusCode::UNAUTHORIZED,
            "{path}"
        );
        assert_eq!(
            get(&app, path, Some("garbage")).await.status(),
            StatusCode::UNAUTHORIZED,
            "{path}"
        );
        for token in [
            project_token("default", "viewer"),
            project_token("default", "admin"),
            global("viewer"),
            global("operator"),
        ] {
            assert_eq!(
                get(&app, path, Some(&token)).await.status(),
                StatusCode::FORBIDDEN,
                "{path}"
            );
        }
        let with_key = app
            .http
            .get(app.url(path))
            .header("X-API-Key", &key)
            .send()
            .await
            .unwrap();
        assert_eq!(
            with_key.status(),
            StatusCode::FORBIDDEN,
            "{path} with a project admin key"
        );
        let admin = get(&app, path, Some(&app.admin_token)).await;
        assert_eq!(
            admin.status(),
            StatusCode::OK,
            "{path}: {}",
            admin.text().await.unwrap()
        );
    }

    // A browser without credentials gets the sign-in form.
    let page = app
        .http
        .get(app.url("/board"))
        .header("Accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::UNAUTHORIZED);
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("action=\"/board/login\"")
    );
    app.stop().await;
}

async fn the_board_shows_waiting_jobs_and_never_changes_them(services: Services) {
    // An API without workers, so the jobs stay where the board can see them.
    let app = spawn_app_with(&services, Mode::Api, &[]).await;
    let project = app.default_project().await;
    for _ in 0..3 {
        app.admin(
            "mutation($i: StartExecutionInput!) { startExecution(input: $i) { id } }",
            json!({ "i": { "projectId": project, "pipeline": "noop" } }),
        )
        .await;
    }
    let normal = normal_queue(&app);

    let queues: Vec<QueueInfo> =
        serde_json::from_value(json_of(&app, "/board/api/v1/queues").await).unwrap();
    assert_eq!(queues.len(), 4, "one queue per priority");
    let row = queues.iter().find(|q| q.name == normal).unwrap();
    assert_eq!(stat(&row.stats, "PENDING_JOBS"), "3");
    assert_eq!(stat(&row.stats, "QUEUE_BACKLOG"), "3");
    assert_eq!(stat(&row.stats, "TOTAL_JOBS"), "3");
    assert!(row.workers.is_empty(), "{:?}", row.workers);
    let overview: Vec<Statistic> =
        serde_json::from_value(json_of(&app, "/board/api/v1/overview").await).unwrap();
    assert_eq!(stat(&overview, "TOTAL_JOBS"), "3");
    assert_eq!(stat(&overview, "RUNNING_JOBS"), "0");
    let stats: Vec<Statistic> = serde_json::from_value(
        json_of(&app, &format!("/board/api/v1/queues/{normal}/stats")).await,
    )
    .unwrap();
    assert_eq!(stat(&stats, "PENDING_JOBS"), "3");

    // The listing the web app asks for, with its empty parameters.
    let listed = json_of(
        &app,
        "/board/api/v1/tasks?&page=1&page_size=15&queue=&status=",
    )
    .await;
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 3, "{listed:#?}");
    let mut ids = Vec::new();
    for value in listed {
        let (args, ctx) = task(value);
        assert!(args["stage_id"].is_string(), "{value:#}");
        assert_eq!(ctx.queue().unwrap().to_string(), normal);
        assert_eq!(ctx.status(), Status::Pending);
        ids.push(ctx.task_id().unwrap().to_string());
    }
    for status in ["Pending", "Queued"] {
        let pending = json_of(&app, &format!("/board/api/v1/tasks?status={status}")).await;
        assert_eq!(pending.as_array().unwrap().len(), 3, "{status}");
    }
    let done = json_of(
        &app,
        &format!("/board/api/v1/queues/{normal}/tasks?status=Done"),
    )
    .await;
    assert_eq!(done, json!([]));

    // Pages do not overlap and end.
    let mut paged = Vec::new();
    for page in 1..=3 {
        let one = json_of(
            &app,
            &format!("/board/api/v1/queues/{normal}/tasks?page={page}&page_size=1"),
        )
        .await;
        let one = one.as_array().unwrap();
        assert_eq!(one.len(), 1, "page {page}");
        paged.push(task(&one[0]).1.task_id().unwrap().to_string());
    }
    paged.sort();
    ids.sort();
    assert_eq!(paged, ids);
    let past = json_of(&app, "/board/api/v1/tasks?page=2&page_size=3").await;
    assert_eq!(past, json!([]));

    // One task by id.
    let one = json_of(
        &app,
        &format!("/board/api/v1/queues/{normal}/tasks/{}", ids[0]),
    )
    .await;
    assert_eq!(task(&one).1.task_id().unwrap().to_string(), ids[0]);

    // Bad input names its field; unknown things are 404.
    let bad = StatusCode::BAD_REQUEST;
    refused(&app, "/board/api/v1/tasks?status=Sleeping", bad, "status").await;
    refused(&app, "/board/api/v1/tasks?page=0", bad, "page").await;
    refused(&app, "/board/api/v1/tasks?page=x", bad, "page").await;
    refused(&app, "/board/api/v1/tasks?page_size=101", bad, "page_size").await;
    let missing = StatusCode::NOT_FOUND;
    refused(&app, "/board/api/v1/tasks?queue=nope", missing, "queue").await;
    refused(&app, "/board/api/v1/queues/nope/stats", missing, "queue").await;
    let unknown_task = format!("/board/api/v1/queues/{normal}/tasks/01HF7YAT3VTSV4RRFFQ69G5FAV");
    refused(&app, &unknown_task, missing, "task_id").await;
    let unknown = get(&app, "/board/api/v2/queues", Some(&app.admin_token)).await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);

    // The board only reads: no method but GET, and the queue is as it was.
    let mut writes = pages(&app);
    writes.push(format!("/board/api/v1/queues/{normal}/tasks/{}", ids[0]));
    for path in writes {
        for method in [
            reqwest::Method::POST,
            reqwest::Method::PUT,
            reqwest::Method::DELETE,
        ] {
            let write = app
                .http
                .request(method.clone(), app.url(&path))
                .bearer_auth(&app.admin_token)
                .json(&json!({ "stage_id": "injected" }))
                .send()
                .await
                .unwrap();
            assert_eq!(
                write.status(),
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}"
            );
        }
    }
    let overview: Vec<Statistic> =
        serde_json::from_value(json_of(&app, "/board/api/v1/overview").await).unwrap();
    assert_eq!(stat(&overview, "TOTAL_JOBS"), "3", "nothing was written");
    app.stop().await;
}

async fn the_web_app_is_served_for_its_prefix(services: Services) {
    let app = spawn_app_with(&services, Mode::Api, &[]).await;
    for route in ["/board", "/board/", "/board/queues", "/board/tasks/Done"] {
        let page = get(&app, route, Some(&app.admin_token)).await;
        assert_eq!(page.status(), StatusCode::OK, "{route}");
        let kind = page.headers()["content-type"].to_str().unwrap().to_string();
        assert!(kind.starts_with("text/html"), "{kind}");
        let html = page.text().await.unwrap();
        assert!(html.contains("/board/assets/board.js"), "{html}");
        assert!(html.contains("/board/assets/board_bg.wasm"), "{html}");
    }

    let script = get(&app, "/board/assets/board.js", Some(&app.admin_token)).await;
    assert_eq!(script.status(), StatusCode::OK);
    let kind = script.headers()["content-type"].to_str().unwrap();
    assert!(kind.starts_with("text/javascript"), "{kind}");
    let wasm = get(&app, "/board/assets/board_bg.wasm", Some(&app.admin_token)).await;
    assert_eq!(wasm.status(), StatusCode::OK);
    assert_eq!(wasm.headers()["content-type"], "application/wasm");
    let etag = wasm.headers()["etag"].to_str().unwrap().to_string();
    let bytes = wasm.bytes().await.unwrap();
    assert!(bytes.starts_with(b"\0asm"), "a WebAssembly module");
    // Compiled for this prefix: the app calls the API under /board, not at the site root.
    assert!(String::from_utf8_lossy(&bytes).contains("/board/api/v1"));
    let again = app
        .http
        .get(app.url("/board/assets/board_bg.wasm"))
        .bearer_auth(&app.admin_token)
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    let css = get(&app, "/board/assets/board.css", Some(&app.admin_token)).await;
    assert_eq!(css.status(), StatusCode::OK);
    let missing = get(&app, "/board/assets/other.js", Some(&app.admin_token)).await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);

    // The live feed answers as an event stream, to an admin only.
    let events = get(&app, "/board/api/v1/events", Some(&app.admin_token)).await;
    assert_eq!(events.status(), StatusCode::OK);
    let kind = events.headers()["content-type"].to_str().unwrap();
    assert!(kind.starts_with("text/event-stream"), "{kind}");
    drop(events);
    let anonymous = get(&app, "/board/api/v1/events", None).await;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    app.stop().await;
}

async fn running_jobs_and_queue_processes_show_up(services: Services) {
    let app = spawn_app_with(&services, Mode::Standalone, &[]).await;
    let project = app.default_project().await;
    let id = app
        .admin(
            "mutation($i: StartExecutionInput!) { startExecution(input: $i) { id } }",
            json!({ "i": { "projectId": project, "pipeline": "sleep", "input": { "ms": 1500 } } }),
        )
        .await["startExecution"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    let running = loop {
        let listed = json_of(&app, "/board/api/v1/tasks?status=Running").await;
        if let Some(first) = listed.as_array().unwrap().first() {
            break task(first).1;
        }
        assert!(tokio::time::Instant::now() < deadline, "{listed:#}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(running.status(), Status::Running);
    let holder = running
        .lock_by()
        .expect("a running task names its worker")
        .to_string();
    let workers: Vec<RunningWorker> =
        serde_json::from_value(json_of(&app, "/board/api/v1/workers").await).unwrap();
    assert_eq!(workers.len(), 4, "one per priority: {workers:?}");
    assert!(workers.iter().any(|w| w.id == holder), "{workers:?}");
    assert!(workers.iter().all(|w| w.last_heartbeat > 0), "{workers:?}");
    let normal = normal_queue(&app);
    let of_queue: Vec<RunningWorker> = serde_json::from_value(
        json_of(&app, &format!("/board/api/v1/queues/{normal}/workers")).await,
    )
    .unwrap();
    assert_eq!(of_queue.len(), 1);
    assert_eq!(of_queue[0].queue, normal);
    let queues: Vec<QueueInfo> =
        serde_json::from_value(json_of(&app, "/board/api/v1/queues").await).unwrap();
    assert!(queues.iter().all(|q| q.workers.len() == 1), "{queues:?}");

    app.wait_execution(&id, std::time::Duration::from_secs(20))
        .await;
    let done = json_of(&app, "/board/api/v1/tasks?status=Done").await;
    let finished: Vec<String> = done
        .as_array()
        .unwrap()
        .iter()
        .map(|t| task(t).1.task_id().unwrap().to_string())
        .collect();
    assert!(
        finished.contains(&running.task_id().unwrap().to_string()),
        "{done:#}"
    );
    app.stop().await;
}

async fn a_browser_signs_in_with_a_token_and_keeps_it_in_a_cookie(services: Services) {
    let app = spawn_app_with(&services, Mode::Api, &[]).await;
    let client = browser();
    let login = app.url("/board/login");
    assert_eq!(
        client.get(&login).send().await.unwrap().status(),
        StatusCode::OK
    );
    let form = |token: &str| {
        client
            .post(&login)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("token={token}"))
    };

    assert_eq!(
        form("garbage").send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    let viewer = form(&global("viewer")).send().await.unwrap();
    assert_eq!(viewer.status(), StatusCode::FORBIDDEN);
    assert!(viewer.headers().get("set-cookie").is_none());

    let signed_in = form(&app.admin_token).send().await.unwrap();
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    assert_eq!(signed_in.headers()["location"], "/board");
    let cookie = signed_in.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(cookie.contains("Path=/board"), "{cookie}");
    let pair = cookie.split(';').next().unwrap().to_string();

    for path in pages(&app) {
        let page = client
            .get(app.url(&path))
            .header("Cookie", &pair)
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), StatusCode::OK, "{path}");
    }
    // The cookie is the board's alone: GraphQL does not read it.
    let graphql: Value = client
        .post(app.url("/graphql"))
        .header("Cookie", &pair)
        .json(&json!({ "query": "{ viewer { subject } }" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(orchestrator_tests::error_code(&graphql), "UNAUTHENTICATED");

    let logout = client
        .post(app.url("/board/logout"))
        .header("Cookie", &pair)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), StatusCode::SEE_OTHER);
    assert!(
        logout.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    app.stop().await;
}

orchestrator_tests::on_all_services! {
    access => super::only_global_admins_see_the_board;
    contents => super::the_board_shows_waiting_jobs_and_never_changes_them;
    login => super::a_browser_signs_in_with_a_token_and_keeps_it_in_a_cookie;
    running => super::running_jobs_and_queue_processes_show_up;
    web_app => super::the_web_app_is_served_for_its_prefix;
}

/// Chromium and the npm packages (installed by scripts/test.sh).
fn browser_available() -> Option<std::path::PathBuf> {
    let js = std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/js"));
    let chromium =
        std::env::var("ORCH_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let ok = js.join("node_modules/playwright-core").exists()
        && std::path::Path::new(&chromium).exists();
    if !ok {
        assert!(
            !orchestrator_tests::services_required(),
            "Chromium ({chromium}) and tests/js/node_modules are required: run scripts/test.sh"
        );
        eprintln!("skipped: Chromium or tests/js/node_modules missing");
        return None;
    }
    Some(js)
}

/// The apalis-board web app, in a real browser, signs in, loads under `/board`, reads its
/// API under `/board/api/v1` and shows the engine's queues and tasks.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_operator_sees_the_queues_in_a_browser() {
    let Some(js) = browser_available() else {
        return;
    };
    let app = spawn_app_with(&Services::Embedded, Mode::Api, &[]).await;
    let project = app.default_project().await;
    for _ in 0..2 {
        app.admin(
            "mutation($i: StartExecutionInput!) { startExecution(input: $i) { id } }",
            json!({ "i": { "projectId": project, "pipeline": "noop" } }),
        )
        .await;
    }
    let out = tokio::process::Command::new("node")
        .arg(js.join("board_browser.mjs"))
        .args([&format!("http://{}", app.addr), &app.admin_token])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "browser run failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value = serde_json::from_slice(out.stdout.trim_ascii()).unwrap();
    assert_eq!(seen["errors"], json!([]), "{seen:#}");
    let overview = seen["overview"].as_str().unwrap();
    for level in ["critical", "high", "normal", "low"] {
        let queue = format!("{}:run-stage:{level}", app.env["ORCH_QUEUE_PREFIX"]);
        assert!(overview.contains(&queue), "{overview}");
    }
    let words = overview.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(words.contains("Pending Jobs 2 Running Jobs 0"), "{words}");
    let tasks = seen["tasks"].as_str().unwrap();
    assert!(tasks.contains("Pending"), "{tasks}");
    let urls: Vec<&str> = seen["urls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap())
        .collect();
    assert!(urls.contains(&"/board/assets/board_bg.wasm"), "{urls:?}");
    assert!(urls.contains(&"/board/api/v1/overview"), "{urls:?}");
    assert!(
        urls.iter().any(|u| u.starts_with("/board/api/v1/tasks")),
        "{urls:?}"
    );
    assert!(
        urls.iter().all(|u| u.starts_with("/board")),
        "everything under /board: {urls:?}"
    );
    app.stop().await;
}
