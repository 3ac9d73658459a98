//! Queue housekeeping. The job queue keeps every finished job, and the engine never needs one
//! again (the stage rows hold the state), so worker processes remove finished jobs
//! periodically: on SQLite so that the queue file and its indexes stay small, on Redis so
//! that memory does not grow with every job ever run.
//!
//! On Redis, processes that serve the API also promote due jobs ([`promote_due_redis`]):
//! apalis-redis puts every push in the sorted set `<queue>:scheduled`, and only a worker's
//! fetch moves the due ones to the list `<queue>:active`. Doing that move every second from
//! the API makes the list's length the number of due, untaken jobs whether or not a worker is
//! running, which is what KEDA's Redis list scaler reads (so workers can scale from zero).
//! The move is the first step of apalis-redis's own fetch script, done earlier.
//!
//! On SQLite the planner is also told, once, that a worker id matches many jobs: without
//! statistics it drives the queue's acknowledgement statement from the `lock_by` index, which
//! makes every acknowledgement scan all jobs the worker ever ran.

use std::time::Duration;

use apalis_sqlite::SqlitePool;
use redis::aio::ConnectionLike;

/// How long a finished job stays in the SQLite queue (for dashboards) before it is removed.
pub const KEEP_FINISHED: Duration = Duration::from_secs(60);

/// Most finished jobs removed from one Redis queue per call.
const REDIS_BATCH: usize = 500;

/// Most due jobs moved per promotion script call (Lua's `unpack` has a stack limit).
const PROMOTE_BATCH: usize = 1000;

/// Moves the due jobs of `queue` from `<queue>:scheduled` to the tail of `<queue>:active`,
/// oldest due first, exactly as a worker's fetch does before it takes jobs; returns how many
/// moved. Jobs due later (retry backoff) stay where they are.
pub async fn promote_due_redis<C: ConnectionLike + Send>(
    conn: &mut C,
    queue: &str,
    now_secs: u64,
) -> redis::RedisResult<u64> {
    let script = redis::Script::new(
        r#"
        local due = redis.call('ZRANGEBYSCORE', KEYS[1], 0, ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
        if #due > 0 then
            redis.call('RPUSH', KEYS[2], unpack(due))
            redis.call('ZREM', KEYS[1], unpack(due))
            redis.call('DEL', KEYS[3])
            redis.call('LPUSH', KEYS[3], 1)
        end
        return #due
        "#,
    );
    let mut moved = 0;
    loop {
        let batch: u64 = script
            .key(format!("{queue}:scheduled"))
            .key(format!("{queue}:active"))
            .key(format!("{queue}:signal"))
            .arg(now_secs)
            .arg(PROMOTE_BATCH)
            .invoke_async(conn)
            .await?;
        moved += batch;
        if batch < PROMOTE_BATCH as u64 {
            return Ok(moved);
        }
    }
}

/// Seeds the planner statistics of the SQLite queue unless real ones exist (see the module
/// doc). Applications may write `sqlite_stat1` for exactly this purpose.
pub async fn tune_sqlite_planner(pool: &SqlitePool) -> Result<(), sqlx::Error> {
    sqlx::query("ANALYZE sqlite_schema").execute(pool).await?;
    let has_stats: Option<(i64,)> = sqlx::query_as(
        "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'sqlite_stat1'",
    )
    .fetch_optional(pool)
    .await?;
    if has_stats.is_none() {
        sqlx::query("ANALYZE Jobs").execute(pool).await?;
    }
    sqlx::query(
        "INSERT INTO sqlite_stat1 (tbl, idx, stat)
         SELECT 'Jobs', 'LIdx', '1000000 10000'
         WHERE NOT EXISTS (SELECT 1 FROM sqlite_stat1 WHERE tbl = 'Jobs' AND idx = 'LIdx'
                           AND CAST(substr(stat, instr(stat, ' ') + 1) AS INTEGER) > 100)",
    )
    .execute(pool)
    .await?;
    // Connections read the statistics when they open, or when told to reload them.
    sqlx::query("ANALYZE sqlite_schema").execute(pool).await?;
    Ok(())
}

/// Removes jobs of `queue` that finished successfully more than [`KEEP_FINISHED`] ago.
pub async fn purge_sqlite(pool: &SqlitePool, queue: &str) -> Result<u64, sqlx::Error> {
    let result = sqlx::query(
        "DELETE FROM Jobs WHERE job_type = ?1 AND status = 'Done'
         AND done_at IS NOT NULL AND done_at < strftime('%s', 'now') - ?2",
    )
    .bind(queue)
    .bind(KEEP_FINISHED.as_secs() as i64)
    .execute(pool)
    .await?;
    Ok(result.rows_affected())
}

/// Removes up to a batch of successfully finished jobs of `queue` (payload and metadata).
pub async fn purge_redis<C: ConnectionLike + Send>(
    conn: &mut C,
    queue: &str,
) -> redis::RedisResult<u64> {
    let script = redis::Script::new(
        r#"
        local ids = redis.call('SPOP', KEYS[1], tonumber(ARGV[1]))
        for _, id in ipairs(ids) do
            redis.call('HDEL', KEYS[2], id)
            redis.call('HDEL', KEYS[3] .. ':result', id)
            redis.call('DEL', KEYS[3] .. ':' .. id)
        end
        return #ids
        "#,
    );
    script
        .key(format!("{queue}:done"))
        .key(format!("{queue}:data"))
        .key(format!("{queue}:meta"))
        .arg(REDIS_BATCH)
        .invoke_async(conn)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use apalis_sqlite::{SqliteConnectOptions, SqlitePoolOptions, SqliteStorage};

    const ACK: &str =
        "EXPLAIN QUERY PLAN WITH j AS (SELECT value ->> 'task_id' AS task_id FROM json_each('[]'))
        UPDATE Jobs SET status = 'Done' FROM j WHERE Jobs.id = j.task_id AND Jobs.lock_by = 'w'";

    #[tokio::test]
    async fn acknowledgements_look_jobs_up_by_id_and_finished_jobs_go() {
        let dir = tempfile::tempdir().unwrap();
        let options = SqliteConnectOptions::new()
            .filename(dir.path().join("queue.db"))
            .create_if_missing(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .unwrap();
        SqliteStorage::setup(&pool).await.unwrap();
        tune_sqlite_planner(&pool).await.unwrap();
        let plan: Vec<(i64, i64, i64, String)> =
            sqlx::query_as(ACK).fetch_all(&pool).await.unwrap();
        let plan: Vec<&str> = plan.iter().map(|row| row.3.as_str()).collect();
        assert!(plan[0].starts_with("SCAN json_each"), "{plan:?}");
        assert!(!plan.iter().any(|step| step.contains("LIdx")), "{plan:?}");

        for (id, age) in [("old", 3600), ("new", 0)] {
            sqlx::query(
                "INSERT INTO Jobs (job, id, job_type, status, done_at)
                 VALUES (x'00', ?1, 'q', 'Done', strftime('%s', 'now') - ?2)",
            )
            .bind(id)
            .bind(age)
            .execute(&pool)
            .await
            .unwrap();
        }
        assert_eq!(purge_sqlite(&pool, "q").await.unwrap(), 1);
        assert_eq!(purge_sqlite(&pool, "other").await.unwrap(), 0);
        let left: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM Jobs")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(left.0, 1, "recent finished jobs stay a while");
    }
}
