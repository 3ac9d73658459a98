//! Read-only views of the queue for the queue board: recent jobs with their state and
//! payload, and the queue worker processes with their last heartbeat. Nothing here changes
//! the queue.
//!
//! Job states are the same on both storages: `waiting` (due, not taken), `scheduled` (due
//! later: a retry's backoff), `running` (taken by a worker), `done`, `failed`, `dead` (out of
//! attempts or aborted). On Redis a job's state is where its id is: the `<queue>:active`
//! list and the due part of `<queue>:scheduled` (waiting), the rest of that set (scheduled),
//! the worker's `<queue>:inflight:<worker>` set (running), `<queue>:done` and `<queue>:dead`;
//! payloads are in the `<queue>:data` hash, attempts in `<queue>:meta:<id>`.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use apalis_sqlite::SqlitePool;
use redis::aio::ConnectionLike;
use serde::Serialize;
use serde_json::Value;

/// One job as the board shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct JobSummary {
    pub id: String,
    pub queue: String,
    /// `waiting`, `scheduled`, `running`, `done`, `failed` or `dead`.
    pub state: &'static str,
    pub attempts: Option<i64>,
    /// When it is (or was) due, in seconds since the epoch.
    pub run_at: Option<i64>,
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
    /// Last heartbeat, in seconds since the epoch.
    pub last_seen: Option<i64>,
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs() as i64
}

fn payload_of(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned()))
}

type SqliteJobRow = (
    String,
    String,
    String,
    i64,
    Option<i64>,
    Option<i64>,
    Option<String>,
    Vec<u8>,
);

/// The `limit` most recent jobs of `queues` in the SQLite queue file.
pub async fn sqlite_jobs(
    pool: &SqlitePool,
    queues: &[String],
    limit: u32,
) -> Result<Vec<JobSummary>, sqlx::Error> {
    let now = now_secs();
    let mut jobs = Vec::new();
    for queue in queues {
        let rows: Vec<SqliteJobRow> = sqlx::query_as(
            "SELECT id, job_type, status, attempts, run_at, done_at, lock_by, job FROM Jobs
             WHERE job_type = ?1 ORDER BY COALESCE(done_at, run_at) DESC LIMIT ?2",
        )
        .bind(queue)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await?;
        for (id, queue, status, attempts, run_at, done_at, lock_by, job) in rows {
            let state = match status.as_str() {
                "Pending" if run_at.is_some_and(|due| due > now) => "scheduled",
                "Pending" => "waiting",
                "Queued" | "Running" => "running",
                "Done" => "done",
                "Failed" => "failed",
                _ => "dead",
            };
            jobs.push(JobSummary {
                id,
                queue,
                state,
                attempts: Some(attempts),
                run_at,
                done_at,
                worker: lock_by,
                payload: payload_of(&job),
            });
        }
    }
    Ok(newest_first(jobs, limit))
}

/// The queue worker processes of `queues` registered in the SQLite queue file.
pub async fn sqlite_workers(
    pool: &SqlitePool,
    queues: &[String],
) -> Result<Vec<QueueWorker>, sqlx::Error> {
    let mut workers = Vec::new();
    for queue in queues {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT id, worker_type, last_seen FROM Workers WHERE worker_type = ?1
             ORDER BY last_seen DESC",
        )
        .bind(queue)
        .fetch_all(pool)
        .await?;
        workers.extend(
            rows.into_iter()
                .map(|(name, queue, last_seen)| QueueWorker {
                    name,
                    queue,
                    last_seen: Some(last_seen),
                }),
        );
    }
    Ok(workers)
}

fn newest_first(mut jobs: Vec<JobSummary>, limit: u32) -> Vec<JobSummary> {
    jobs.sort_by_key(|j| std::cmp::Reverse(j.done_at.or(j.run_at).unwrap_or(i64::MAX)));
    jobs.truncate(limit as usize);
    jobs
}

/// The queue worker processes of one Redis queue (`<queue>:workers`, scored by heartbeat).
async fn redis_queue_workers<C: ConnectionLike + Send>(
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
    Ok(members
        .into_iter()
        .map(|(name, seen)| QueueWorker {
            name,
            queue: queue.to_string(),
            last_seen: Some(seen as i64),
        })
        .collect())
}

/// The queue worker processes of `queues` in Redis.
pub async fn redis_workers<C: ConnectionLike + Send>(
    conn: &mut C,
    queues: &[String],
) -> redis::RedisResult<Vec<QueueWorker>> {
    let mut workers = Vec::new();
    for queue in queues {
        workers.extend(redis_queue_workers(conn, queue).await?);
    }
    Ok(workers)
}

/// The ids in `<queue>:active`, `:scheduled` (with due times), `:done` and `:dead`.
type QueueSets = (Vec<String>, Vec<(String, f64)>, Vec<String>, Vec<String>);

/// A job's payload (from `<queue>:data`) and metadata (`<queue>:meta:<id>`).
type DataAndMeta = (Option<Vec<u8>>, HashMap<String, String>);

/// Up to `limit` jobs of each state of `queues` in Redis, newest first, `limit` in all.
pub async fn redis_jobs<C: ConnectionLike + Send>(
    conn: &mut C,
    queues: &[String],
    limit: u32,
) -> redis::RedisResult<Vec<JobSummary>> {
    let now = now_secs();
    let n = i64::from(limit.max(1));
    let mut jobs = Vec::new();
    for queue in queues {
        // (id, state, due or done time, worker)
        let mut found: Vec<(String, &'static str, Option<i64>, Option<String>)> = Vec::new();
        let (active, scheduled, done, dead): QueueSets = redis::pipe()
            .cmd("LRANGE")
            .arg(format!("{queue}:active"))
            .arg(0)
            .arg(n - 1)
            .cmd("ZRANGE")
            .arg(format!("{queue}:scheduled"))
            .arg(0)
            .arg(n - 1)
            .arg("WITHSCORES")
            .cmd("SRANDMEMBER")
            .arg(format!("{queue}:done"))
            .arg(n)
            .cmd("SRANDMEMBER")
            .arg(format!("{queue}:dead"))
            .arg(n)
            .query_async(conn)
            .await?;
        found.extend(active.into_iter().map(|id| (id, "waiting", None, None)));
        found.extend(scheduled.into_iter().map(|(id, due)| {
            let due = due as i64;
            let state = if due > now { "scheduled" } else { "waiting" };
            (id, state, Some(due), None)
        }));
        for worker in redis_queue_workers(conn, queue).await? {
            let running: Vec<String> = redis::cmd("SMEMBERS")
                .arg(format!("{queue}:inflight:{}", worker.name))
                .query_async(conn)
                .await?;
            found.extend(
                running
                    .into_iter()
                    .map(|id| (id, "running", None, Some(worker.name.clone()))),
            );
        }
        found.extend(done.into_iter().map(|id| (id, "done", None, None)));
        found.extend(dead.into_iter().map(|id| (id, "dead", None, None)));
        if found.is_empty() {
            continue;
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
        let answers: Vec<DataAndMeta> = {
            let flat: Vec<redis::Value> = lookups.query_async(conn).await?;
            flat.chunks(2)
                .map(|pair| {
                    let data: Option<Vec<u8>> =
                        redis::FromRedisValue::from_redis_value_ref(&pair[0])
                            .ok()
                            .flatten();
                    let meta: HashMap<String, String> =
                        redis::FromRedisValue::from_redis_value_ref(&pair[1]).unwrap_or_default();
                    (data, meta)
                })
                .collect()
        };
        for ((id, state, time, worker), (data, meta)) in found.into_iter().zip(answers) {
            let number = |key: &str| meta.get(key).and_then(|v| v.parse::<i64>().ok());
            let finished = matches!(state, "done" | "dead");
            jobs.push(JobSummary {
                id,
                queue: queue.clone(),
                state,
                attempts: number("attempts"),
                run_at: if finished { None } else { time },
                done_at: if finished { number("done_at") } else { None },
                worker,
                payload: data.as_deref().map(payload_of).unwrap_or(Value::Null),
            });
        }
    }
    Ok(newest_first(jobs, limit))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: &str, run_at: Option<i64>, done_at: Option<i64>) -> JobSummary {
        JobSummary {
            id: id.into(),
            queue: "q".into(),
            state: "waiting",
            attempts: None,
            run_at,
            done_at,
            worker: None,
            payload: Value::Null,
        }
    }

    #[test]
    fn newest_jobs_come_first_and_undated_ones_lead() {
        let jobs = newest_first(
            vec![
                job("old", Some(10), None),
                job("finished", Some(5), Some(30)),
                job("undated", None, None),
                job("new", Some(20), None),
            ],
            3,
        );
        let ids: Vec<&str> = jobs.iter().map(|j| j.id.as_str()).collect();
        assert_eq!(ids, ["undated", "finished", "new"]);
    }
}
