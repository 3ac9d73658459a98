//! Lists load their children in batches: a page of 50 executions with their stages, packets
//! and metrics costs the same number of SQL queries as a page of 5.

use orchestrator::Mode;
use orchestrator_tests::{Services, TestApp, on_all_services, spawn_app_with};
use serde_json::json;

const PAGE: &str = "query($p: ID!, $n: Int!) { executions(projectId: $p, first: $n) {
  totalCount edges { node { id status progress { completed total }
    metrics { tokensUsed costUsd durationMs attempts }
    stages { id name status attempt metrics { attempts } handshakes { direction packetType } } } } } }";

/// Runs the page query and returns (rows, statements it cost).
async fn page_cost(app: &TestApp, project: &str, n: usize) -> (usize, u64) {
    let before = app.core.db_queries.get();
    let data = app.admin(PAGE, json!({ "p": project, "n": n })).await;
    let cost = app.core.db_queries.get() - before;
    let edges = data["executions"]["edges"].as_array().unwrap();
    assert!(
        edges
            .iter()
            .all(|e| e["node"]["stages"].as_array().unwrap().len() == 3)
    );
    (edges.len(), cost)
}

async fn a_page_costs_a_constant_number_of_queries(services: Services) {
    // An API-only process: no workers run queries in the background while we count.
    let app = spawn_app_with(&services, Mode::Api, &[]).await;
    let project = app.default_project().await;
    for i in 0..55 {
        app.admin(
            "mutation($p: ID!, $i: JSON) { startExecution(input: {projectId: $p, pipeline: \"noop\", input: $i}) { id } }",
            json!({ "p": project, "i": { "n": i } }),
        )
        .await;
    }
    let (small_rows, small) = page_cost(&app, &project, 5).await;
    let (large_rows, large) = page_cost(&app, &project, 50).await;
    assert_eq!((small_rows, large_rows), (5, 50));
    assert_eq!(
        small, large,
        "a page of 50 costs {large} queries, a page of 5 costs {small}"
    );
    // Project check, count, page, stages, packets: counted, and not one more per row.
    assert!((4..=6).contains(&large), "a page costs {large} queries");
    app.stop().await;
}

on_all_services! {
    dataloader_page_cost => super::a_page_costs_a_constant_number_of_queries;
}
