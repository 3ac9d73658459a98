//! The registry of remote workers: register (the token is shown once), deregister, list,
//! read, and the health bookkeeping the engine and the health probe share.
//!
//! A worker's token is what the orchestrator presents to it as `Authorization: Bearer …`.
//! It is derived from the product's secret key and the worker id (HMAC-SHA256), so the
//! database keeps only its SHA-256 hash, yet every process holding the key can call the worker.

use chrono::Utc;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use orchestrator_entity::{Role, WorkerHealth, workers};

use crate::auth::Identity;
use crate::config::Secret;
use crate::context::CoreContext;
use crate::error::{CoreError, CoreResult};
use crate::outbound::{OutboundGuard, Refusal, validate_outbound_url};
use crate::remote::RemoteWorkerClient;

/// Most capabilities one worker may declare.
pub const MAX_CAPABILITIES: usize = 32;
/// Largest `maxConcurrent`.
pub const MAX_CONCURRENT_LIMIT: i32 = 1000;

/// Input of [`register_worker`].
#[derive(Debug, Clone)]
pub struct NewWorker {
    pub project_id: Uuid,
    pub name: String,
    pub url: String,
    pub capabilities: Vec<String>,
    pub max_concurrent: i32,
}

/// A freshly registered worker and its token (shown this once).
#[derive(Debug, Clone)]
pub struct RegisteredWorker {
    pub worker: workers::Model,
    pub token: Secret,
}

/// The bearer token the orchestrator presents to worker `worker_id`.
pub fn worker_token(key: &Secret, worker_id: Uuid) -> Secret {
    let mac = hmac_sha256(
        key.expose().as_bytes(),
        format!("remote-worker-token:{worker_id}").as_bytes(),
    );
    Secret::new(format!("owt_{}", hex::encode(mac)))
}

/// The hash kept in `workers.token_hash`.
pub fn token_hash(token: &Secret) -> String {
    hex::encode(Sha256::digest(token.expose().as_bytes()))
}

/// HMAC-SHA256 (RFC 2104).
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block_key = [0u8; BLOCK];
    if key.len() > BLOCK {
        block_key[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block_key[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block_key.map(|k| k ^ byte);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

/// Checks the registration input; the error names the field.
fn validate(input: &NewWorker) -> CoreResult<Vec<String>> {
    let name = input.name.trim();
    if name.is_empty() || name.len() > 64 || !name.chars().all(is_name_char) {
        return Err(CoreError::bad_input(
            "input.name",
            "must be 1-64 letters, digits, '-', '_' or '.'",
        ));
    }
    validate_outbound_url("input.url", &input.url)?;
    if input.capabilities.is_empty() || input.capabilities.len() > MAX_CAPABILITIES {
        return Err(CoreError::bad_input(
            "input.capabilities",
            format!("must list 1 to {MAX_CAPABILITIES} capabilities"),
        ));
    }
    let mut capabilities = Vec::new();
    for (i, capability) in input.capabilities.iter().enumerate() {
        let c = capability.trim();
        if c.is_empty() || c.len() > 64 || !c.chars().all(is_name_char) {
            return Err(CoreError::bad_input(
                format!("input.capabilities[{i}]"),
                "must be 1-64 letters, digits, '-', '_' or '.'",
            ));
        }
        if capabilities.iter().any(|seen| seen == c) {
            return Err(CoreError::bad_input(
                format!("input.capabilities[{i}]"),
                format!("duplicate capability {c:?}"),
            ));
        }
        capabilities.push(c.to_string());
    }
    if !(1..=MAX_CONCURRENT_LIMIT).contains(&input.max_concurrent) {
        return Err(CoreError::bad_input(
            "input.maxConcurrent",
            format!("must be between 1 and {MAX_CONCURRENT_LIMIT}"),
        ));
    }
    Ok(capabilities)
}

/// Registers a remote worker (project admins). Its health is probed once right away, so a
/// reachable worker can take stages at once; the periodic probe keeps it current.
#[tracing::instrument(skip_all, fields(project_id = %input.project_id, worker = %input.name))]
pub async fn register_worker(
    ctx: &CoreContext,
    who: &Identity,
    input: NewWorker,
) -> CoreResult<RegisteredWorker> {
    let project = crate::projects::get_authorized(ctx, who, input.project_id, Role::Admin).await?;
    let capabilities = validate(&input)?;
    let key = crate::keys::secret_key(&ctx.config)?;
    let id = Uuid::new_v4();
    let token = worker_token(&key, id);
    let name = input.name.trim().to_string();
    let url = input.url.trim().trim_end_matches('/').to_string();

    // The address rules refuse the registration; a host that does not resolve yet only
    // makes the worker start unhealthy.
    let guard = OutboundGuard::from_config(&ctx.config);
    let probe = match guard.inspect(&url).await {
        Ok(_) => RemoteWorkerClient::with_guard(guard).health(&url).await,
        Err(unresolvable @ Refusal::Unresolvable { .. }) => Err(unresolvable.to_string()),
        Err(refusal) => return Err(CoreError::bad_input("input.url", refusal.to_string())),
    };
    let (health, message) = match probe {
        Ok(()) => (WorkerHealth::Healthy, None),
        Err(why) => (WorkerHealth::Unhealthy, Some(why)),
    };
    let now = Utc::now();
    let txn = crate::db::begin_write(&ctx.db).await?;
    let holder = workers::Entity::find()
        .filter(workers::Column::ProjectId.eq(project.id))
        .filter(workers::Column::Name.eq(&name))
        .one(&txn)
        .await?;
    if let Some(old) = holder {
        if old.deregistered_at.is_none() {
            return Err(CoreError::Conflict(format!(
                "a worker named {name:?} is already registered in this project"
            )));
        }
        // A deregistered worker keeps its history under a name that frees the old one.
        let mut retired: workers::ActiveModel = old.clone().into();
        let short = &old.id.simple().to_string()[..8];
        let mut kept = old.name.clone();
        kept.truncate(64 - short.len() - 1);
        retired.name = Set(format!("{kept}~{short}"));
        retired.update(&txn).await?;
    }
    let worker = workers::ActiveModel {
        id: Set(id),
        project_id: Set(project.id),
        name: Set(name),
        url: Set(url),
        capabilities: Set(serde_json::json!(capabilities)),
        max_concurrent: Set(input.max_concurrent),
        active_stages: Set(0),
        health_status: Set(health),
        last_seen_at: Set((health == WorkerHealth::Healthy).then_some(now)),
        health_checked_at: Set(Some(now)),
        health_message: Set(message),
        token_hash: Set(token_hash(&token)),
        sequence: Set(1),
        created_at: Set(now),
        deregistered_at: Set(None),
    }
    .insert(&txn)
    .await?;
    txn.commit().await?;
    crate::events::publish_worker(ctx, worker.id).await;
    tracing::info!(worker_id = %worker.id, health = ?health, "remote worker registered");
    Ok(RegisteredWorker { worker, token })
}

/// The worker with `id`, if the caller may read its project; otherwise `NOT_FOUND`.
pub async fn get_worker(ctx: &CoreContext, who: &Identity, id: Uuid) -> CoreResult<workers::Model> {
    get_with_role(ctx, who, id, Role::Viewer).await
}

async fn get_with_role(
    ctx: &CoreContext,
    who: &Identity,
    id: Uuid,
    role: Role,
) -> CoreResult<workers::Model> {
    let not_found = || CoreError::NotFound { entity: "worker" };
    let worker = workers::Entity::find_by_id(id)
        .one(&ctx.db)
        .await?
        .ok_or_else(not_found)?;
    match crate::projects::get_authorized(ctx, who, worker.project_id, role).await {
        Ok(_) => Ok(worker),
        Err(CoreError::NotFound { .. }) => Err(not_found()),
        Err(other) => Err(other),
    }
}

/// Workers of a project by name; deregistered ones only when asked for.
pub async fn list_workers(
    ctx: &CoreContext,
    who: &Identity,
    project_id: Uuid,
    include_deregistered: bool,
) -> CoreResult<Vec<workers::Model>> {
    crate::projects::get_authorized(ctx, who, project_id, Role::Viewer).await?;
    let mut query = workers::Entity::find().filter(workers::Column::ProjectId.eq(project_id));
    if !include_deregistered {
        query = query.filter(workers::Column::DeregisteredAt.is_null());
    }
    Ok(query
        .order_by_asc(workers::Column::Name)
        .all(&ctx.db)
        .await?)
}

/// Takes a worker out of the registry (project admins): it gets no new stages; stages it is
/// running finish normally.
#[tracing::instrument(skip_all, fields(worker_id = %id))]
pub async fn deregister_worker(
    ctx: &CoreContext,
    who: &Identity,
    id: Uuid,
) -> CoreResult<workers::Model> {
    let worker = get_with_role(ctx, who, id, Role::Admin).await?;
    if worker.deregistered_at.is_some() {
        return Ok(worker);
    }
    let txn = crate::db::begin_write(&ctx.db).await?;
    workers::Entity::update_many()
        .col_expr(workers::Column::DeregisteredAt, Expr::value(Utc::now()))
        .col_expr(
            workers::Column::Sequence,
            Expr::col(workers::Column::Sequence).add(1),
        )
        .filter(workers::Column::Id.eq(id))
        .filter(workers::Column::DeregisteredAt.is_null())
        .exec(&txn)
        .await?;
    let updated = workers::Entity::find_by_id(id)
        .one(&txn)
        .await?
        .ok_or(CoreError::NotFound { entity: "worker" })?;
    txn.commit().await?;
    crate::events::publish_worker(ctx, updated.id).await;
    tracing::info!("remote worker deregistered");
    Ok(updated)
}

/// Records the outcome of a probe or a call: healthy (with `last_seen_at`) or unhealthy with
/// the reason. A healthy worker that was seen within the last second is not written again.
pub async fn record_health(
    ctx: &CoreContext,
    worker_id: Uuid,
    outcome: Result<(), String>,
) -> CoreResult<()> {
    let now = Utc::now();
    let mut update = workers::Entity::update_many()
        .col_expr(
            workers::Column::Sequence,
            Expr::col(workers::Column::Sequence).add(1),
        )
        .filter(workers::Column::Id.eq(worker_id));
    match outcome {
        Ok(()) => {
            update = update
                .col_expr(
                    workers::Column::HealthStatus,
                    Expr::value(WorkerHealth::Healthy),
                )
                .col_expr(workers::Column::LastSeenAt, Expr::value(now))
                .col_expr(
                    workers::Column::HealthMessage,
                    Expr::value(Option::<String>::None),
                )
                .filter(
                    workers::Column::HealthStatus
                        .ne(WorkerHealth::Healthy)
                        .or(workers::Column::LastSeenAt.is_null())
                        .or(workers::Column::LastSeenAt.lt(now - chrono::Duration::seconds(1))),
                );
        }
        Err(message) => {
            let mut message = message;
            message.truncate(500);
            update = update
                .col_expr(
                    workers::Column::HealthStatus,
                    Expr::value(WorkerHealth::Unhealthy),
                )
                .col_expr(workers::Column::HealthMessage, Expr::value(message));
        }
    }
    if update.exec(&ctx.db).await?.rows_affected > 0 {
        crate::events::publish_worker(ctx, worker_id).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn tokens_differ_per_worker_and_hash_is_not_the_token() {
        let key = Secret::new("k".repeat(32));
        let a = worker_token(&key, Uuid::new_v4());
        let b = worker_token(&key, Uuid::new_v4());
        assert_ne!(a.expose(), b.expose());
        assert_ne!(token_hash(&a), a.expose());
        assert_eq!(token_hash(&a).len(), 64);
    }

    fn input() -> NewWorker {
        NewWorker {
            project_id: Uuid::new_v4(),
            name: "gpu-1".into(),
            url: "http://127.0.0.1:9000".into(),
            capabilities: vec!["granulate".into()],
            max_concurrent: 2,
        }
    }

    #[test]
    fn validation_names_the_field() {
        let mut bad = input();
        bad.capabilities.push("granulate".into());
        let err = validate(&bad).unwrap_err().to_string();
        assert!(err.starts_with("input.capabilities[1]"), "{err}");
        let mut bad = input();
        bad.max_concurrent = 0;
        assert!(
            validate(&bad)
                .unwrap_err()
                .to_string()
                .starts_with("input.maxConcurrent")
        );
        let mut bad = input();
        bad.url = "http://u:p@h".into();
        assert!(
            validate(&bad)
                .unwrap_err()
                .to_string()
                .starts_with("input.url")
        );
        assert!(validate(&input()).is_ok());
    }
}
