//! What is waiting in a queue, read without touching it: how many jobs are due and not yet
//! taken by a worker, and how long the oldest of them has waited. Metrics and the queue
//! board read it; workers never do.
//!
//! Where the jobs wait depends on the storage:
//! * SQLite: rows of `Jobs` with `job_type = <queue>`, `status = 'Pending'` and `run_at` in
//!   the past.
//! * Redis (apalis-redis): every push lands in the sorted set `<queue>:scheduled`, scored by
//!   its due time in seconds; a worker's fetch moves the due ones to the list
//!   `<queue>:active` and takes its batch from the head of that list. Waiting jobs are the
//!   list plus the due part of the set. Job ids are ULIDs, whose first ten characters encode
//!   the push time.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use apalis_sqlite::SqlitePool;
use redis::aio::ConnectionLike;

use super::now_secs;

/// The backlog of one queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backlog {
    /// Jobs that are due and not yet taken by a worker.
    pub depth: u64,
    /// How long the oldest of them has waited; `None` when there are none.
    pub oldest_age: Option<Duration>,
}

fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

/// The backlog of `queue` in the SQLite queue file.
pub async fn sqlite(pool: &SqlitePool, queue: &str) -> Result<Backlog, sqlx::Error> {
    let now = now_secs() as i64;
    let (depth, oldest): (i64, Option<i64>) = sqlx::query_as(
        "SELECT COUNT(*), MIN(run_at) FROM Jobs
         WHERE job_type = ?1 AND status = 'Pending' AND run_at <= ?2",
    )
    .bind(queue)
    .bind(now)
    .fetch_one(pool)
    .await?;
    Ok(Backlog {
        depth: depth.max(0) as u64,
        oldest_age: oldest.map(|due| Duration::from_secs(now.saturating_sub(due).max(0) as u64)),
    })
}

/// The backlog of `queue` in Redis (see the module doc for the keys).
pub async fn redis<C: ConnectionLike + Send>(
    conn: &mut C,
    queue: &str,
) -> redis::RedisResult<Backlog> {
    let now = now_secs();
    let active = format!("{queue}:active");
    let scheduled = format!("{queue}:scheduled");
    let (listed, due, head, first_due): (u64, u64, Option<String>, Vec<(String, f64)>) =
        redis::pipe()
            .cmd("LLEN")
            .arg(&active)
            .cmd("ZCOUNT")
            .arg(&scheduled)
            .arg("-inf")
            .arg(now)
            .cmd("LINDEX")
            .arg(&active)
            .arg(0)
            .cmd("ZRANGEBYSCORE")
            .arg(&scheduled)
            .arg("-inf")
            .arg(now)
            .arg("WITHSCORES")
            .arg("LIMIT")
            .arg(0)
            .arg(1)
            .query_async(conn)
            .await?;
    let now_ms = now_millis();
    let listed_age = head
        .as_deref()
        .and_then(ulid_millis)
        .map(|pushed| Duration::from_millis(now_ms.saturating_sub(pushed)));
    let due_age = first_due
        .first()
        .map(|(_, score)| Duration::from_secs(now.saturating_sub(*score as u64)));
    Ok(Backlog {
        depth: listed + due,
        oldest_age: listed_age.max(due_age),
    })
}

/// The creation time (milliseconds since the epoch) encoded in a ULID.
fn ulid_millis(id: &str) -> Option<u64> {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let head = id.get(..10)?;
    head.bytes().try_fold(0u64, |acc, c| {
        let digit = ALPHABET.iter().position(|a| *a == c.to_ascii_uppercase())?;
        Some(acc * 32 + digit as u64)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulids_carry_their_push_time() {
        // The first ten characters are the time in Crockford base 32, most significant first.
        assert_eq!(
            ulid_millis("01HF7YAT3VTSV4RRFFQ69G5FAV"),
            Some(1_700_000_000_123)
        );
        assert_eq!(
            ulid_millis("01hf7yat3vtsv4rrffq69g5fav"),
            Some(1_700_000_000_123)
        );
        assert_eq!(ulid_millis("0000000001XXXXXXXXXXXXXXXX"), Some(1));
        assert_eq!(ulid_millis("short"), None);
        assert_eq!(ulid_millis("01ARZ3NDE!TSV4RRFFQ69G5FAV"), None);
    }
}
