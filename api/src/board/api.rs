//! The apalis-board HTTP API (`/board/api/v1`) over the engine's queues: the paths, query
//! parameters and JSON of `apalis-board-api` 1.0, so the apalis-board web UI reads it as is.
//! JSON shapes are apalis-core's own types (`QueueInfo`, `Statistic`, `RunningWorker`, and a
//! task as `{ args, ctx }` with its `ExecutionContext`).
//!
//! Bad input is refused with 400 and `{ "error": …, "field": … }`; an unknown queue or task
//! with 404.

use std::convert::Infallible;

use apalis_core::backend::queue::Queue;
use apalis_core::backend::{QueueInfo, RunningWorker, StatType, Statistic};
use apalis_core::task::builder::TaskBuilder;
use apalis_core::task::status::Status;
use apalis_core::task::task_id::TaskId;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use futures::StreamExt;
use orchestrator_core::jobs::RunStage;
use orchestrator_core::queue::inspect::{JobCounts, JobGroup, JobSummary, Page, QueueWorker};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::drain::Draining;
use crate::state::ApiState;

/// Rows per page when the request names none (apalis-core's default).
const DEFAULT_PAGE_SIZE: u32 = 10;
/// Most rows one page may ask for.
pub const MAX_PAGE_SIZE: u32 = 100;
/// Highest page number accepted (keeps offsets small).
pub const MAX_PAGE: u32 = 100_000;

/// The routes under `/board/api/v1`.
pub fn router() -> Router<ApiState> {
    Router::new()
        .route("/queues", get(queues))
        .route("/overview", get(overview))
        .route("/tasks", get(all_tasks))
        .route("/workers", get(all_workers))
        .route("/events", get(events))
        .route("/queues/{queue}/tasks", get(queue_tasks))
        .route("/queues/{queue}/stats", get(queue_stats))
        .route("/queues/{queue}/workers", get(queue_workers))
        .route("/queues/{queue}/tasks/{task_id}", get(task))
        .fallback(unknown)
}

/// Any other path under `/board/api`.
pub async fn unknown() -> Response {
    error(StatusCode::NOT_FOUND, "no such board API path", None)
}

fn error(status: StatusCode, message: &str, field: Option<&str>) -> Response {
    (status, Json(json!({ "error": message, "field": field }))).into_response()
}

/// A refused request: its status, what is wrong, and the field at fault.
#[derive(Debug)]
pub struct Refusal {
    status: StatusCode,
    message: String,
    field: Option<&'static str>,
}

impl Refusal {
    fn new(status: StatusCode, message: impl Into<String>, field: &'static str) -> Refusal {
        Refusal {
            status,
            message: message.into(),
            field: Some(field),
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        error(self.status, &self.message, self.field)
    }
}

fn internal(err: anyhow::Error) -> Response {
    let id = uuid::Uuid::new_v4();
    tracing::error!(error_id = %id, error = %format!("{err:#}"), "queue board read failed");
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        &format!("internal error (id {id})"),
        None,
    )
}

/// The engine's queues, most urgent first.
fn queue_names(state: &ApiState) -> Vec<String> {
    state.core.queue.queue_names::<RunStage>()
}

/// `queue` if it is one of the engine's queues, else a 404.
fn known_queue(state: &ApiState, queue: &str) -> Result<String, Refusal> {
    queue_names(state)
        .into_iter()
        .find(|q| q == queue)
        .ok_or_else(|| {
            Refusal::new(
                StatusCode::NOT_FOUND,
                format!("no queue named {queue:?}"),
                "queue",
            )
        })
}

/// The query of a task listing: `status`, `page` (from 1), `page_size`; `queue` narrows
/// `/tasks` to one queue. Empty values count as absent (the UI sends `status=`); `sort` is
/// accepted and ignored (listings are newest first).
#[derive(Debug, Default, Deserialize)]
pub struct TaskQuery {
    status: Option<String>,
    page: Option<String>,
    page_size: Option<String>,
    queue: Option<String>,
}

fn present(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

fn number(
    value: &Option<String>,
    field: &'static str,
    min: u32,
    max: u32,
) -> Result<Option<u32>, Refusal> {
    let Some(raw) = present(value) else {
        return Ok(None);
    };
    match raw.parse::<u32>() {
        Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
        _ => Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            format!("{field} must be a whole number from {min} to {max}"),
            field,
        )),
    }
}

impl TaskQuery {
    fn group(&self) -> Result<Option<JobGroup>, Refusal> {
        let Some(status) = present(&self.status) else {
            return Ok(None);
        };
        let group = match status {
            "Pending" | "Queued" => JobGroup::Pending,
            "Running" => JobGroup::Running,
            "Done" => JobGroup::Done,
            "Failed" => JobGroup::Failed,
            "Killed" => JobGroup::Killed,
            _ => {
                return Err(Refusal::new(
                    StatusCode::BAD_REQUEST,
                    "status must be one of Pending, Queued, Running, Done, Failed, Killed",
                    "status",
                ));
            }
        };
        Ok(Some(group))
    }

    fn page(&self) -> Result<Page, Refusal> {
        let page = number(&self.page, "page", 1, MAX_PAGE)?.unwrap_or(1);
        let size =
            number(&self.page_size, "page_size", 1, MAX_PAGE_SIZE)?.unwrap_or(DEFAULT_PAGE_SIZE);
        Ok(Page {
            offset: u64::from(page - 1) * u64::from(size),
            limit: u64::from(size),
        })
    }
}

fn stat(title: &str, stat_type: StatType, value: String, priority: u64) -> Statistic {
    Statistic {
        title: title.to_string(),
        stat_type,
        value,
        priority: Some(priority),
    }
}

/// The board's statistics for `counts` (and the backlog: how many jobs are due and not taken,
/// and since when the oldest of them waits).
fn statistics(counts: &JobCounts, backlog: u64, oldest_due: Option<u64>) -> Vec<Statistic> {
    let n = |v: u64| v.to_string();
    let mut stats = vec![
        stat("PENDING_JOBS", StatType::Number, n(counts.pending), 1),
        stat("RUNNING_JOBS", StatType::Number, n(counts.running), 2),
        stat("QUEUE_BACKLOG", StatType::Number, n(backlog), 3),
        stat("DONE_JOBS", StatType::Number, n(counts.done), 4),
        stat("FAILED_JOBS", StatType::Number, n(counts.failed), 5),
        stat("KILLED_JOBS", StatType::Number, n(counts.killed), 6),
        stat("TOTAL_JOBS", StatType::Number, n(counts.total()), 7),
    ];
    let finished = counts.done + counts.failed + counts.killed;
    if finished > 0 {
        let rate = counts.done as f64 * 100.0 / finished as f64;
        stats.push(stat(
            "SUCCESS_RATE",
            StatType::Percentage,
            format!("{rate:.1}"),
            8,
        ));
    }
    if let Some(since) = oldest_due {
        stats.push(stat("OLDEST_PENDING_JOB", StatType::Timestamp, n(since), 9));
    }
    stats
}

/// Counts and backlog of each queue, most urgent first.
async fn queue_figures(
    state: &ApiState,
    queues: &[String],
) -> anyhow::Result<Vec<(JobCounts, u64, Option<u64>)>> {
    let backlog = state.core.queue.backlog::<RunStage>().await?;
    let now = orchestrator_core::queue::now_secs();
    let mut figures = Vec::with_capacity(queues.len());
    for queue in queues {
        let counts = state.core.queue.job_counts(queue).await?;
        let (depth, since) = backlog
            .iter()
            .find(|(name, _)| name == queue)
            .map(|(_, b)| {
                let since = b.oldest_age.map(|age| now.saturating_sub(age.as_secs()));
                (b.depth, since)
            })
            .unwrap_or((0, None));
        figures.push((counts, depth, since));
    }
    Ok(figures)
}

async fn queues(State(state): State<ApiState>) -> Response {
    let names = queue_names(&state);
    let figures = match queue_figures(&state, &names).await {
        Ok(figures) => figures,
        Err(err) => return internal(err),
    };
    let mut infos = Vec::with_capacity(names.len());
    for (name, (counts, depth, since)) in names.iter().zip(figures) {
        let workers = match state.core.queue.queue_workers(name).await {
            Ok(workers) => workers.into_iter().map(|w| w.name).collect(),
            Err(err) => return internal(err),
        };
        infos.push(QueueInfo {
            name: name.clone(),
            stats: statistics(&counts, depth, since),
            workers,
            // Finished jobs are purged after a while, so there is no daily history to show.
            activity: Vec::new(),
        });
    }
    Json(infos).into_response()
}

async fn overview(State(state): State<ApiState>) -> Response {
    let names = queue_names(&state);
    match queue_figures(&state, &names).await {
        Ok(figures) => {
            let counts: JobCounts = figures.iter().map(|(c, ..)| *c).sum();
            let depth = figures.iter().map(|(_, d, _)| d).sum();
            let since = figures.iter().filter_map(|(.., s)| *s).min();
            Json(statistics(&counts, depth, since)).into_response()
        }
        Err(err) => internal(err),
    }
}

async fn queue_stats(State(state): State<ApiState>, Path(queue): Path<String>) -> Response {
    let queue = match known_queue(&state, &queue) {
        Ok(queue) => queue,
        Err(refused) => return refused.into_response(),
    };
    match queue_figures(&state, std::slice::from_ref(&queue)).await {
        Ok(figures) => {
            let (counts, depth, since) = figures[0];
            Json(statistics(&counts, depth, since)).into_response()
        }
        Err(err) => internal(err),
    }
}

/// A job as apalis-board shows a task: `{ args, ctx }`.
fn raw_task(job: JobSummary) -> Value {
    let status = match job.state {
        "waiting" | "scheduled" => Status::Pending,
        "running" => Status::Running,
        "done" => Status::Done,
        "failed" => Status::Failed,
        _ => Status::Killed,
    };
    let as_u64 = |v: Option<i64>| v.and_then(|v| u64::try_from(v).ok());
    let mut builder = TaskBuilder::new(job.payload)
        .task_id(TaskId::from_string(job.id))
        .queue(Queue::from(job.queue))
        .status(status)
        .attempt(as_u64(job.attempts).unwrap_or(0) as usize)
        .done_at(as_u64(job.done_at))
        .lock_at(as_u64(job.lock_at))
        .lock_by(job.worker);
    if let Some(max) = as_u64(job.max_attempts) {
        builder = builder.max_attempts(max as usize);
    }
    if let Some(run_at) = as_u64(job.run_at) {
        builder = builder.run_at_timestamp(run_at);
    }
    let task = builder.build();
    json!({ "args": task.args, "ctx": task.ctx().as_ref() })
}

async fn list_tasks(state: &ApiState, queues: &[String], query: &TaskQuery) -> Response {
    let (group, page) = match (query.group(), query.page()) {
        (Ok(group), Ok(page)) => (group, page),
        (Err(refused), _) | (_, Err(refused)) => return refused.into_response(),
    };
    match state.core.queue.jobs(queues, group, page).await {
        Ok(jobs) => Json(jobs.into_iter().map(raw_task).collect::<Vec<_>>()).into_response(),
        Err(err) => internal(err),
    }
}

async fn all_tasks(State(state): State<ApiState>, Query(query): Query<TaskQuery>) -> Response {
    let queues = match present(&query.queue) {
        Some(queue) => match known_queue(&state, queue) {
            Ok(queue) => vec![queue],
            Err(refused) => return refused.into_response(),
        },
        None => queue_names(&state),
    };
    list_tasks(&state, &queues, &query).await
}

async fn queue_tasks(
    State(state): State<ApiState>,
    Path(queue): Path<String>,
    Query(query): Query<TaskQuery>,
) -> Response {
    match known_queue(&state, &queue) {
        Ok(queue) => list_tasks(&state, &[queue], &query).await,
        Err(refused) => refused.into_response(),
    }
}

async fn task(
    State(state): State<ApiState>,
    Path((queue, task_id)): Path<(String, String)>,
) -> Response {
    let queue = match known_queue(&state, &queue) {
        Ok(queue) => queue,
        Err(refused) => return refused.into_response(),
    };
    if task_id.is_empty() || task_id.len() > 64 {
        return error(
            StatusCode::BAD_REQUEST,
            "task_id must be 1 to 64 characters",
            Some("task_id"),
        );
    }
    match state.core.queue.job(&queue, &task_id).await {
        Ok(Some(job)) => Json(raw_task(job)).into_response(),
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            &format!("no task {task_id:?} in {queue}"),
            Some("task_id"),
        ),
        Err(err) => internal(err),
    }
}

fn running_worker(worker: QueueWorker, backend: &str) -> RunningWorker {
    let seen = worker.last_seen.and_then(|s| u64::try_from(s).ok());
    RunningWorker {
        id: worker.name,
        queue: worker.queue,
        backend: worker.backend.unwrap_or_else(|| backend.to_string()),
        started_at: worker
            .started_at
            .and_then(|s| u64::try_from(s).ok())
            .or(seen)
            .unwrap_or(0),
        last_heartbeat: seen.unwrap_or(0),
        layers: worker.layers.unwrap_or_default(),
    }
}

async fn workers_of(state: &ApiState, queues: &[String]) -> Response {
    let backend = match state.core.queue.backend() {
        orchestrator_core::queue::QueueBackend::Sqlite(_) => "SqliteStorage",
        orchestrator_core::queue::QueueBackend::Redis(_) => "RedisStorage",
    };
    let mut all = Vec::new();
    for queue in queues {
        match state.core.queue.queue_workers(queue).await {
            Ok(workers) => all.extend(workers.into_iter().map(|w| running_worker(w, backend))),
            Err(err) => return internal(err),
        }
    }
    Json(all).into_response()
}

async fn all_workers(State(state): State<ApiState>) -> Response {
    let queues = queue_names(&state);
    workers_of(&state, &queues).await
}

async fn queue_workers(State(state): State<ApiState>, Path(queue): Path<String>) -> Response {
    match known_queue(&state, &queue) {
        Ok(queue) => workers_of(&state, &[queue]).await,
        Err(refused) => refused.into_response(),
    }
}

/// The UI's live log feed. Stages run in worker processes, so this process has no task log
/// lines to send: the stream only keeps the connection alive, and ends when the process
/// drains so that shutdown does not wait for it.
async fn events(draining: Option<Extension<Draining>>) -> impl IntoResponse {
    let silent = futures::stream::pending::<Result<Event, Infallible>>();
    let until = async move {
        match draining {
            Some(Extension(draining)) => draining.started().await,
            None => std::future::pending().await,
        }
    };
    Sse::new(silent.take_until(until)).keep_alive(KeepAlive::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_has_the_shape_apalis_board_reads() {
        let job = JobSummary {
            id: "01HF7YAT3VTSV4RRFFQ69G5FAV".into(),
            queue: "orchestrator:run-stage:normal".into(),
            state: "scheduled",
            attempts: Some(2),
            max_attempts: Some(5),
            run_at: Some(1_700_000_000),
            lock_at: None,
            done_at: None,
            worker: None,
            payload: json!({ "stage_id": "s" }),
        };
        let value = raw_task(job);
        assert_eq!(value["args"]["stage_id"], "s");
        // The UI decodes `ctx` as apalis-core's ExecutionContext.
        let ctx: apalis_core::task::ExecutionContext =
            serde_json::from_value(value["ctx"].clone()).unwrap();
        assert_eq!(
            ctx.task_id().unwrap().to_string(),
            "01HF7YAT3VTSV4RRFFQ69G5FAV"
        );
        assert_eq!(
            ctx.queue().unwrap().to_string(),
            "orchestrator:run-stage:normal"
        );
        assert_eq!(ctx.attempt(), 2);
        assert_eq!(ctx.status(), Status::Pending);
        assert_eq!(ctx.run_at(), Some(1_700_000_000));
    }

    #[test]
    fn listing_queries_are_checked_field_by_field() {
        let query = |status: &str, page: &str, size: &str| TaskQuery {
            status: Some(status.into()),
            page: Some(page.into()),
            page_size: Some(size.into()),
            queue: None,
        };
        let ok = query("", "2", "15");
        assert_eq!(ok.group().unwrap(), None);
        assert_eq!(
            ok.page().unwrap(),
            Page {
                offset: 15,
                limit: 15
            }
        );
        assert_eq!(query("Done", "", "").group().unwrap(), Some(JobGroup::Done));
        assert_eq!(
            query("", "", "").page().unwrap(),
            Page {
                offset: 0,
                limit: 10
            }
        );
        assert!(query("Sleeping", "1", "1").group().is_err());
        for (page, size) in [
            ("0", "1"),
            ("x", "1"),
            ("1", "0"),
            ("1", "101"),
            ("-1", "5"),
        ] {
            assert!(query("", page, size).page().is_err(), "{page} {size}");
        }
    }
}
