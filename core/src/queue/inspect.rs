//! Read-only views of the queue for the queue board: how many jobs each queue holds in each
//! state, pages of jobs with their payload, one job by id, and the queue worker processes with
//! their heartbeat. Nothing here changes the queue.
//!
//! Listings group jobs as the board does: pending (due or due later), running, done, failed
//! and killed (out of attempts or aborted), in that order; within a group the newest first.
//! Each job also carries a finer `state`: `waiting` (due, not taken), `scheduled` (due later:
//! a retry's backoff), `running`, `done`, `failed` or `dead`.
//!
//! Where a job is:
//! * SQLite: the `Jobs` row (`job_type` is the queue), its `status` column.
//! * Redis (apalis-redis): its id is in the `<queue>:active` list or the `<queue>:scheduled`
//!   set (pending), a worker's `<queue>:inflight:<worker>` set (running), or one of the sets
//!   `<queue>:done`, `:failed`, `:dead`; the payload is in the `<queue>:data` hash, attempts
//!   and times in the `<queue>:meta:<id>` hash. Ids are ULIDs, so sorting them sorts by push
//!   time.

use std::collections::HashMap;

use apalis_sqlite::SqlitePool;
use redis::aio::ConnectionLike;
use serde::Serialize;
use serde_json::Value;

/// The groups a listing can be narrowed to, in listing order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobGroup {
    Pending,
    Running,
    Done,
    Failed,
    Killed,
}

impl JobGroup {
    /// Every group, in listing order.
    pub const ALL: [JobGroup; 5] = [
        JobGroup::Pending,
        JobGroup::Running,
        JobGroup::Done,
        JobGroup::Failed,
        JobGroup::Killed,
    ];

    /// The `status` values of SQLite rows in this group.
    fn sqlite_statuses(self) -> &'static str {
        match self {
            JobGroup::Pending => "'Pending'",
            JobGroup::Running => "'Queued', 'Running'",
            JobGroup::Done => "'Done'",
            JobGroup::Failed => "'Failed'",
            JobGroup::Killed => "'Killed'",
        }
    }

    fn of_sqlite_status(status: &str) -> JobGroup {
        match status {
            "Pending" => JobGroup::Pending,
            "Queued" | "Running" => JobGroup::Running,
            "Done" => JobGroup::Done,
            "Failed" => JobGroup::Failed,
            _ => JobGroup::Killed,
        }
    }

    /// The Redis set that holds the finished jobs of this group.
    fn redis_set(self, queue: &str) -> Option<String> {
        match self {
            JobGroup::Done => Some(format!("{queue}:done")),
            JobGroup::Failed => Some(format!("{queue}:failed")),
            JobGroup::Killed => Some(format!("{queue}:dead")),
            JobGroup::Pending | JobGroup::Running => None,
        }
    }
}

/// How many jobs of one queue are in each group.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct JobCounts {
    pub pending: u64,
    pub running: u64,
    pub done: u64,
    pub failed: u64,
    pub killed: u64,
}

impl JobCounts {
    /// The count of `group`.
    pub fn of(&self, group: JobGroup) -> u64 {
        match group {
            JobGroup::Pending => self.pending,
            JobGroup::Running => self.running,
            JobGroup::Done => self.done,
            JobGroup::Failed => self.failed,
            JobGroup::Killed => self.killed,
        }
    }

    fn slot(&mut self, group: JobGroup) -> &mut u64 {
        match group {
            JobGroup::Pending => &mut self.pending,
            JobGroup::Running => &mut self.running,
            JobGroup::Done => &mut self.done,
            JobGroup::Failed => &mut self.failed,
            JobGroup::Killed => &mut self.killed,
        }
    }

    /// Every job of the queue.
    pub fn total(&self) -> u64 {
        JobGroup::ALL.iter().map(|g| self.of(*g)).sum()
    }
}

/// The sum of two queues' counts.
impl std::ops::Add for JobCounts {
    type Output = JobCounts;

    fn add(mut self, other: JobCounts) -> JobCounts {
        for group in JobGroup::ALL {
            *self.slot(group) += other.of(group);
        }
        self
    }
}

impl std::iter::Sum for JobCounts {
    fn sum<I: Iterator<Item = JobCounts>>(counts: I) -> JobCounts {
        counts.fold(JobCounts::default(), |sum, c| sum + c)
    }
}

/// One job as the board shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct JobSummary {
    pub id: String,
    pub queue: String,
    /// `waiting`, `scheduled`, `running`, `done`, `failed` or `dead`.
    pub state: &'static str,
    pub attempts: Option<i64>,
    pub max_attempts: Option<i64>,
    /// When it is (or was) due, in seconds since the epoch.
    pub run_at: Option<i64>,
    /// When a worker took it, in seconds since the epoch.
    pub lock_at: Option<i64>,
    /// When it finished, in seconds since the epoch.
    pub done_at: Option<i64>,
    /// The queue worker that holds or held it.
    pub worker: Option<String>,
    /// The job payload (ids only).
    pub payload: Value,
}

/// One queue worker process (one per priority level and process).
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct QueueWorker {
    pub name: String,
    pub queue: String,
    /// When it registered, in seconds since the epoch, where the storage keeps it.
    pub started_at: Option<i64>,
    /// Last heartbeat, in seconds since the epoch.
    pub last_seen: Option<i64>,
    /// The storage it consumes (`SqliteStorage`, `RedisStorage`, …), where known.
    pub backend: Option<String>,
    /// Its service stack, as apalis describes it, where known.
    pub layers: Option<String>,
}

/// A page of a listing: skip `offset` jobs, return at most `limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub offset: u64,
    pub limit: u64,
}

fn now_secs() -> i64 {
    super::now_secs() as i64
}

fn payload_of(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned()))
}

/// The part of `page` that falls in each part of a listing made of `parts` (a key and how
/// many jobs it holds, in listing order): `(key, offset within the part, how many)`.
pub fn spans<K: Copy>(parts: impl IntoIterator<Item = (K, u64)>, page: Page) -> Vec<(K, u64, u64)> {
    let mut skip = page.offset;
    let mut left = page.limit;
    let mut spans = Vec::new();
    for (key, count) in parts {
        if left == 0 {
            break;
        }
        if skip >= count {
            skip -= count;
            continue;
        }
        let take = left.min(count - skip);
        spans.push((key, skip, take));
        left -= take;
        skip = 0;
    }
    spans
}

// ---------------------------------------------------------------------------------------
// SQLite

type SqliteJobRow = (
    String,
    String,
    String,
    i64,
    i64,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<String>,
    Vec<u8>,
);

const SQLITE_JOB_COLUMNS: &str =
    "id, job_type, status, attempts, max_attempts, run_at, lock_at, done_at, lock_by, job";

fn sqlite_summary(row: SqliteJobRow, now: i64) -> JobSummary {
    let (id, queue, status, attempts, max_attempts, run_at, lock_at, done_at, lock_by, job) = row;
    let group = JobGroup::of_sqlite_status(&status);
    let state = match group {
        JobGroup::Pending if run_at.is_some_and(|due| due > now) => "scheduled",
        JobGroup::Pending => "waiting",
        JobGroup::Running => "running",
        JobGroup::Done => "done",
        JobGroup::Failed => "failed",
        JobGroup::Killed => "dead",
    };
    JobSummary {
        id,
        queue,
        state,
        attempts: Some(attempts),
        max_attempts: Some(max_attempts),
        run_at,
        lock_at,
        done_at,
        worker: lock_by,
        payload: payload_of(&job),
    }
}

/// How many jobs of `queue` the SQLite queue file holds in each group.
pub async fn sqlite_counts(pool: &SqlitePool, queue: &str) -> Result<JobCounts, sqlx::Error> {
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT status, COUNT(*) FROM Jobs WHERE job_type = ?1 GROUP BY status")
            .bind(queue)
            .fetch_all(pool)
            .await?;
    let mut counts = JobCounts::default();
    for (status, count) in rows {
        *counts.slot(JobGroup::of_sqlite_status(&status)) += count.max(0) as u64;
    }
    Ok(counts)
}

/// A page of the jobs of `queue` in `group` in the SQLite queue file, newest first.
pub async fn sqlite_jobs(
    pool: &SqlitePool,
    queue: &str,
    group: JobGroup,
    page: Page,
) -> Result<Vec<JobSummary>, sqlx::Error> {
    // The status list is one of the constants above, never request input.
    let sql = format!(
        "SELECT {SQLITE_JOB_COLUMNS} FROM Jobs WHERE job_type = ?1 AND status IN ({})
         ORDER BY COALESCE(done_at, lock_at, run_at) DESC, id DESC LIMIT ?2 OFFSET ?3",
        group.sqlite_statuses()
    );
    let rows: Vec<SqliteJobRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(queue)
        .bind(page.limit as i64)
        .bind(page.offset as i64)
        .fetch_all(pool)
        .await?;
    let now = now_secs();
    Ok(rows
        .into_iter()
        .map(|row| sqlite_summary(row, now))
        .collect())
}

/// One job of `queue` in the SQLite queue file.
pub async fn sqlite_job(
    pool: &SqlitePool,
    queue: &str,
    id: &str,
) -> Result<Option<JobSummary>, sqlx::Error> {
    let sql = format!("SELECT {SQLITE_JOB_COLUMNS} FROM Jobs WHERE job_type = ?1 AND id = ?2");
    let row: Option<SqliteJobRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(queue)
        .bind(id)
        .fetch_optional(pool)
        .await?;
    Ok(row.map(|row| sqlite_summary(row, now_secs())))
}

/// id, queue, storage, layers, last heartbeat, start.
type SqliteWorkerRow = (String, String, String, Option<String>, i64, Option<i64>);

/// The queue worker processes of `queue` registered in the SQLite queue file.
pub async fn sqlite_workers(
    pool: &SqlitePool,
    queue: &str,
) -> Result<Vec<QueueWorker>, sqlx::Error> {
    let rows: Vec<SqliteWorkerRow> = sqlx::query_as(
        "SELECT id, worker_type, storage_name, layers, last_seen, started_at FROM Workers
         WHERE worker_type = ?1 ORDER BY last_seen DESC",
    )
    .bind(queue)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(name, queue, backend, layers, last_seen, started_at)| QueueWorker {
                name,
                queue,
                started_at,
                last_seen: Some(last_seen),
                backend: Some(backend),
                layers,
            },
        )
        .collect())
}

// ---------------------------------------------------------------------------------------
// Redis

/// The queue worker processes of one Redis queue (`<queue>:workers`, scored by heartbeat,
/// with `<queue>:workers:metadata:<name>`).
pub async fn redis_workers<C: ConnectionLike + Send>(
    conn: &mut C,
    queue: &str,
) -> redis::RedisResult<Vec<QueueWorker>> {
    let members: Vec<(String, f64)> = redis::cmd("ZRANGE")
        .arg(format!("{queue}:workers"))
        .arg(0)
        .arg(-1)
        .arg("WITHSCORES")
        .query_async(conn)
        .await?;
    if members.is_empty() {
        return Ok(Vec::new());
    }
    let mut lookups = redis::pipe();
    for (name, _) in &members {
        lookups
            .cmd("HGETALL")
            .arg(format!("{queue}:workers:metadata:{name}"));
    }
    let metadata: Vec<HashMap<String, String>> = lookups.query_async(conn).await?;
    let mut workers: Vec<QueueWorker> = members
        .into_iter()
        .zip(metadata)
        .map(|((name, seen), meta)| QueueWorker {
            name,
            queue: queue.to_string(),
            started_at: None,
            last_seen: Some(seen as i64),
            backend: meta.get("backend_name").cloned(),
            layers: meta.get("service").cloned(),
        })
        .collect();
    workers.sort_by_key(|w| std::cmp::Reverse(w.last_seen));
    Ok(workers)
}

/// Each worker's in-flight job ids (`<queue>:inflight:<worker>`), as `(id, worker)`, newest
/// first.
async fn redis_running<C: ConnectionLike + Send>(
    conn: &mut C,
    queue: &str,
) -> redis::RedisResult<Vec<(String, String)>> {
    let mut running = Vec::new();
    for worker in redis_workers(conn, queue).await? {
        let ids: Vec<String> = redis::cmd("SMEMBERS")
            .arg(format!("{queue}:inflight:{}", worker.name))
            .query_async(conn)
            .await?;
        running.extend(ids.into_iter().map(|id| (id, worker.name.clone())));
    }
    running.sort_by(|a, b| b.0.cmp(&a.0));
    Ok(running)
}

/// How many jobs of `queue` Redis holds in each group.
pub async fn redis_counts<C: ConnectionLike + Send>(
    conn: &mut C,
    queue: &str,
) -> redis::RedisResult<JobCounts> {
    let (active, scheduled, done, failed, killed): (u64, u64, u64, u64, u64) = redis::pipe()
        .cmd("LLEN")
        .arg(format!("{queue}:active"))
        .cmd("ZCARD")
        .arg(format!("{queue}:scheduled"))
        .cmd("SCARD")
        .arg(format!("{queue}:done"))
        .cmd("SCARD")
        .arg(format!("{queue}:failed"))
        .cmd("SCARD")
        .arg(format!("{queue}:dead"))
        .query_async(conn)
        .await?;
    let running = redis_running(conn, queue).await?.len() as u64;
    Ok(JobCounts {
        pending: active + scheduled,
        running,
        done,
        failed,
        killed,
    })
}

/// Where a Redis job was found: its state, due time and worker.
type Located = (String, &'static str, Option<i64>, Option<String>);

/// The ids of a span of the pending group: the `:active` list first (taken next), then the
/// `:scheduled` set by due time.
async fn redis_pending<C: ConnectionLike + Send>(
    conn: &mut C,
    queue: &str,
    offset: u64,
    take: u64,
) -> redis::RedisResult<Vec<Located>> {
    let now = now_secs();
    let listed: u64 = redis::cmd("LLEN")
        .arg(format!("{queue}:active"))
        .query_async(conn)
        .await?;
    let mut found = Vec::new();
    if take == 0 {
        return Ok(found);
    }
    if offset < listed {
        let end = (offset + take).min(listed) - 1;
        let ids: Vec<String> = redis::cmd("LRANGE")
            .arg(format!("{queue}:active"))
            .arg(offset)
            .arg(end)
            .query_async(conn)
            .await?;
        found.extend(ids.into_iter().map(|id| (id, "waiting", None, None)));
    }
    let left = take - found.len() as u64;
    if left > 0 {
        let start = offset.saturating_sub(listed);
        let due: Vec<(String, f64)> = redis::cmd("ZRANGE")
            .arg(format!("{queue}:scheduled"))
            .arg(start)
            .arg(start + left - 1)
            .arg("WITHSCORES")
            .query_async(conn)
            .await?;
        found.extend(due.into_iter().map(|(id, score)| {
            let due = score as i64;
            let state = if due > now { "scheduled" } else { "waiting" };
            (id, state, Some(due), None)
        }));
    }
    Ok(found)
}

/// Adds payload and metadata to located jobs.
async fn redis_describe<C: ConnectionLike + Send>(
    conn: &mut C,
    queue: &str,
    found: Vec<Located>,
) -> redis::RedisResult<Vec<JobSummary>> {
    if found.is_empty() {
        return Ok(Vec::new());
    }
    let mut lookups = redis::pipe();
    for (id, ..) in &found {
        lookups
            .cmd("HGET")
            .arg(format!("{queue}:data"))
            .arg(id)
            .cmd("HGETALL")
            .arg(format!("{queue}:meta:{id}"));
    }
    let flat: Vec<redis::Value> = lookups.query_async(conn).await?;
    let described = found
        .into_iter()
        .zip(flat.chunks(2))
        .map(|(located, pair)| {
            let (id, state, due, worker) = located;
            let data: Option<Vec<u8>> = redis::FromRedisValue::from_redis_value_ref(&pair[0])
                .ok()
                .flatten();
            let meta: HashMap<String, String> =
                redis::FromRedisValue::from_redis_value_ref(&pair[1]).unwrap_or_default();
            let number = |key: &str| meta.get(key).and_then(|v| v.parse::<i64>().ok());
            JobSummary {
                id,
                queue: queue.to_string(),
                state,
                attempts: number("attempts"),
                max_attempts: number("max_attempts"),
                run_at: due.or_else(|| number("run_at")),
                lock_at: number("lock_at"),
                done_at: number("done_at"),
                worker: worker.or_else(|| meta.get("lock_by").cloned()),
                payload: data.as_deref().map(payload_of).unwrap_or(Value::Null),
            }
        });
    Ok(described.collect())
}

fn finished_state(group: JobGroup) -> &'static str {
    match group {
        JobGroup::Done => "done",
        JobGroup::Failed => "failed",
        _ => "dead",
    }
}

/// A page of the jobs of `queue` in `group` in Redis.
pub async fn redis_jobs<C: ConnectionLike + Send>(
    conn: &mut C,
    queue: &str,
    group: JobGroup,
    page: Page,
) -> redis::RedisResult<Vec<JobSummary>> {
    let Page { offset, limit } = page;
    let found: Vec<Located> = match group {
        JobGroup::Pending => redis_pending(conn, queue, offset, limit).await?,
        JobGroup::Running => redis_running(conn, queue)
            .await?
            .into_iter()
            .skip(offset as usize)
            .take(limit as usize)
            .map(|(id, worker)| (id, "running", None, Some(worker)))
            .collect(),
        finished => {
            let Some(set) = finished.redis_set(queue) else {
                return Ok(Vec::new());
            };
            let ids: Vec<String> = redis::cmd("SORT")
                .arg(set)
                .arg("ALPHA")
                .arg("DESC")
                .arg("LIMIT")
                .arg(offset)
                .arg(limit)
                .query_async(conn)
                .await?;
            let state = finished_state(finished);
            ids.into_iter().map(|id| (id, state, None, None)).collect()
        }
    };
    redis_describe(conn, queue, found).await
}

/// One job of `queue` in Redis, found by where its id is.
pub async fn redis_job<C: ConnectionLike + Send>(
    conn: &mut C,
    queue: &str,
    id: &str,
) -> redis::RedisResult<Option<JobSummary>> {
    let (stored, position, due, done, failed, dead): (
        bool,
        Option<i64>,
        Option<f64>,
        bool,
        bool,
        bool,
    ) = redis::pipe()
        .cmd("HEXISTS")
        .arg(format!("{queue}:data"))
        .arg(id)
        .cmd("LPOS")
        .arg(format!("{queue}:active"))
        .arg(id)
        .cmd("ZSCORE")
        .arg(format!("{queue}:scheduled"))
        .arg(id)
        .cmd("SISMEMBER")
        .arg(format!("{queue}:done"))
        .arg(id)
        .cmd("SISMEMBER")
        .arg(format!("{queue}:failed"))
        .arg(id)
        .cmd("SISMEMBER")
        .arg(format!("{queue}:dead"))
        .arg(id)
        .query_async(conn)
        .await?;
    if !stored {
        return Ok(None);
    }
    let located: Located = if position.is_some() {
        (id.to_string(), "waiting", None, None)
    } else if let Some(due) = due {
        let due = due as i64;
        let state = if due > now_secs() {
            "scheduled"
        } else {
            "waiting"
        };
        (id.to_string(), state, Some(due), None)
    } else if done || failed || dead {
        let group = if done {
            JobGroup::Done
        } else if failed {
            JobGroup::Failed
        } else {
            JobGroup::Killed
        };
        (id.to_string(), finished_state(group), None, None)
    } else {
        let worker = redis_running(conn, queue)
            .await?
            .into_iter()
            .find(|(running, _)| running == id)
            .map(|(_, worker)| worker);
        // Stored but in no set: between two steps of a worker's script; shown as running.
        (id.to_string(), "running", None, worker)
    };
    Ok(redis_describe(conn, queue, vec![located]).await?.pop())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_spans_the_parts_in_order() {
        let parts = [("a", 3), ("b", 2), ("c", 0), ("d", 10)];
        let page = |offset, limit| Page { offset, limit };
        assert_eq!(spans(parts, page(0, 4)), [("a", 0, 3), ("b", 0, 1)]);
        assert_eq!(spans(parts, page(4, 4)), [("b", 1, 1), ("d", 0, 3)]);
        assert_eq!(spans(parts, page(14, 4)), [("d", 9, 1)]);
        assert_eq!(spans(parts, page(15, 4)), []);
        assert_eq!(spans(parts, page(0, 0)), []);
    }

    #[test]
    fn counts_add_up() {
        let c = JobCounts {
            pending: 3,
            running: 2,
            done: 10,
            ..JobCounts::default()
        };
        assert_eq!(c.total(), 15);
        assert_eq!((c + c).of(JobGroup::Done), 20);
        assert_eq!([c, c, c].into_iter().sum::<JobCounts>().total(), 45);
    }
}
