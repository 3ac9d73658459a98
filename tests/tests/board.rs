//! The queue board under `/board`: global admins only (by header or by the cookie a browser
//! gets from `/board/login`), read-only, and showing what waits in the queues.

use orchestrator::Mode;
use orchestrator_tests::{Services, TestApp, project_token, spawn_app_with};
use reqwest::StatusCode;
use serde_json::{Value, json};

const PAGES: [&str; 5] = [
    "/board",
    "/board/api/queues",
    "/board/api/jobs",
    "/board/api/processes",
    "/board/api/workers",
];

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

    for path in PAGES {
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
    let app = spawn_app_with(&services, Mode::Api, &[]).await;
    let project = app.default_project().await;
    for _ in 0..2 {
        app.admin(
            "mutation($i: StartExecutionInput!) { startExecution(input: $i) { id } }",
            json!({ "i": { "projectId": project, "pipeline": "noop" } }),
        )
        .await;
    }
    let prefix = &app.env["ORCH_QUEUE_PREFIX"];
    let normal = format!("{prefix}:run-stage:normal");
    let queues: Value = get(&app, "/board/api/queues", Some(&app.admin_token))
        .await
        .json()
        .await
        .unwrap();
    let row = queues
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["queue"] == normal.as_str())
        .unwrap_or_else(|| panic!("{queues:#}"));
    assert_eq!(row["depth"], 2, "{queues:#}");
    assert_eq!(queues.as_array().unwrap().len(), 4);

    let jobs: Value = get(&app, "/board/api/jobs?limit=10", Some(&app.admin_token))
        .await
        .json()
        .await
        .unwrap();
    let jobs = jobs.as_array().unwrap_or_else(|| panic!("{jobs:#}"));
    assert_eq!(jobs.len(), 2, "{jobs:#?}");
    for job in jobs {
        assert_eq!(job["queue"], normal.as_str(), "{job:#}");
        assert_eq!(job["state"], "waiting", "{job:#}");
        assert!(job["payload"]["stage_id"].is_string(), "{job:#}");
    }
    let limited: Value = get(&app, "/board/api/jobs?limit=1", Some(&app.admin_token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(limited.as_array().unwrap().len(), 1);

    // The board only reads.
    for path in PAGES {
        let write = app
            .http
            .post(app.url(path))
            .bearer_auth(&app.admin_token)
            .send()
            .await
            .unwrap();
        assert_eq!(write.status(), StatusCode::METHOD_NOT_ALLOWED, "{path}");
    }
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
        let jobs: Value = get(&app, "/board/api/jobs", Some(&app.admin_token))
            .await
            .json()
            .await
            .unwrap();
        if let Some(job) = jobs
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["state"] == "running")
        {
            break job.clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "{jobs:#}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(running["worker"].is_string(), "{running:#}");
    let processes: Value = get(&app, "/board/api/processes", Some(&app.admin_token))
        .await
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = processes
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&running["worker"].as_str().unwrap()),
        "{processes:#}"
    );
    assert_eq!(
        processes.as_array().unwrap().len(),
        4,
        "one per priority: {processes:#}"
    );
    app.wait_execution(&id, std::time::Duration::from_secs(20))
        .await;
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

    for path in PAGES {
        let page = client
            .get(app.url(path))
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
}
