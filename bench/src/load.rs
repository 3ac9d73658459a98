//! Load and measurement over GraphQL: submit executions (as fast as possible, or at a fixed
//! rate), wait for them, and read back when each execution was created and when each of its
//! stages started and finished (the product's own timestamps).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::bail;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde_json::{Value, json};

use crate::product::Deployment;

const START: &str = "mutation($p: ID!, $i: JSON) { startExecution(input: {projectId: $p, pipeline: \"noop\", input: $i}) { id } }";

/// When an execution was created and when each of its stages ran.
#[derive(Debug, Clone)]
pub struct Timeline {
    pub created: DateTime<Utc>,
    /// `(started, finished)` per stage, in order.
    pub stages: Vec<(DateTime<Utc>, DateTime<Utc>)>,
}

/// The id of the `default` project.
pub async fn default_project(dep: &Deployment, addr: SocketAddr) -> anyhow::Result<String> {
    let data = dep.gql(addr, "{ projects { id slug } }", json!({})).await?;
    data["projects"]
        .as_array()
        .and_then(|list| list.iter().find(|p| p["slug"] == "default"))
        .and_then(|p| p["id"].as_str())
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("no default project"))
}

/// Starts `n` executions of the 3-stage `noop` pipeline with `clients` requests in flight.
pub async fn submit_burst(
    dep: &Deployment,
    addr: SocketAddr,
    project: &str,
    n: usize,
    clients: usize,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let results: Vec<anyhow::Result<Value>> = futures::stream::iter(0..n)
        .map(|i| dep.gql(addr, START, json!({ "p": project, "i": { "n": i } })))
        .buffer_unordered(clients)
        .collect()
        .await;
    for r in results {
        r?;
    }
    Ok(started.elapsed())
}

/// Starts executions at `rate` per second for `seconds` (open loop: a slow answer does not
/// delay the next start). Returns how many were started.
pub async fn submit_at_rate(
    dep: Arc<Deployment>,
    addr: SocketAddr,
    project: &str,
    rate: u32,
    seconds: u32,
) -> anyhow::Result<usize> {
    let total = (rate * seconds) as usize;
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let failures = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::with_capacity(total);
    for i in 0..total {
        ticker.tick().await;
        let dep = dep.clone();
        let project = project.to_string();
        let failures = failures.clone();
        tasks.push(tokio::spawn(async move {
            if dep
                .gql(addr, START, json!({ "p": project, "i": { "n": i } }))
                .await
                .is_err()
            {
                failures.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    let failed = failures.load(Ordering::Relaxed);
    if failed > 0 {
        bail!("{failed} of {total} starts failed");
    }
    Ok(total)
}

/// Waits until `n` executions of the project have succeeded.
pub async fn wait_succeeded(
    dep: &Deployment,
    addr: SocketAddr,
    project: &str,
    n: usize,
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let data = dep
            .gql(
                addr,
                "query($p: ID!) { ok: executions(projectId: $p, status: SUCCEEDED, first: 0) { totalCount } bad: executions(projectId: $p, status: FAILED, first: 0) { totalCount } }",
                json!({ "p": project }),
            )
            .await?;
        let done = data["ok"]["totalCount"].as_u64().unwrap_or(0) as usize;
        let failed = data["bad"]["totalCount"].as_u64().unwrap_or(0);
        if failed > 0 {
            bail!("{failed} executions failed");
        }
        if done >= n {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("only {done} of {n} executions succeeded within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn time(v: &Value) -> anyhow::Result<DateTime<Utc>> {
    let text = v
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("missing timestamp"))?;
    Ok(DateTime::parse_from_rfc3339(text)?.with_timezone(&Utc))
}

/// Reads the timeline of every execution of the project.
pub async fn timelines(
    dep: &Deployment,
    addr: SocketAddr,
    project: &str,
) -> anyhow::Result<Vec<Timeline>> {
    let query = "query($p: ID!, $after: String) { executions(projectId: $p, first: 100, after: $after) {
        pageInfo { hasNextPage endCursor } edges { node { createdAt stages { startedAt finishedAt } } } } }";
    let mut out = Vec::new();
    let mut after = Value::Null;
    loop {
        let data = dep
            .gql(addr, query, json!({ "p": project, "after": after }))
            .await?;
        let page = &data["executions"];
        for edge in page["edges"].as_array().into_iter().flatten() {
            let node = &edge["node"];
            let mut stages = Vec::new();
            for s in node["stages"].as_array().into_iter().flatten() {
                stages.push((time(&s["startedAt"])?, time(&s["finishedAt"])?));
            }
            out.push(Timeline {
                created: time(&node["createdAt"])?,
                stages,
            });
        }
        if page["pageInfo"]["hasNextPage"] != true {
            return Ok(out);
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
}
