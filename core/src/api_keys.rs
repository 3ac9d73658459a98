//! API keys: long-lived credentials for scripts and services, scoped to one project and role.
//! The secret is shown once at creation; only its SHA-256 hash is stored.

use chrono::Utc;
use rand::Rng;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use orchestrator_entity::{Role, api_keys, projects};

use crate::auth::Identity;
use crate::context::CoreContext;
use crate::error::{CoreError, CoreResult};

/// Every key starts with this, so leaked keys are easy to scan for.
pub const KEY_PREFIX: &str = "ork_";
/// `lastUsedAt` is written at most this often per key.
const LAST_USED_RESOLUTION_SECS: i64 = 60;

/// A new key with its secret (the only time the secret is available).
#[derive(Debug, Clone)]
pub struct CreatedKey {
    pub key: api_keys::Model,
    pub secret: String,
}

fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn random_chars(n: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..n)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Creates a key in a project (project admins only).
#[tracing::instrument(skip_all, fields(project_id = %project_id))]
pub async fn create(
    ctx: &CoreContext,
    who: &Identity,
    project_id: Uuid,
    name: &str,
    role: Role,
) -> CoreResult<CreatedKey> {
    let project = crate::projects::get_authorized(ctx, who, project_id, Role::Admin).await?;
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(CoreError::bad_input("name", "must be 1-100 characters"));
    }
    let visible = random_chars(8);
    let secret = format!("{KEY_PREFIX}{visible}_{}", random_chars(40));
    let key = api_keys::ActiveModel {
        id: Set(Uuid::new_v4()),
        project_id: Set(project.id),
        name: Set(name.to_string()),
        role: Set(role),
        prefix: Set(format!("{KEY_PREFIX}{visible}")),
        key_hash: Set(hash(&secret)),
        created_by: Set(who.subject.clone()),
        created_at: Set(Utc::now()),
        last_used_at: Set(None),
        revoked_at: Set(None),
    }
    .insert(&ctx.db)
    .await?;
    Ok(CreatedKey { key, secret })
}

/// Keys of a project, newest first (project admins only).
pub async fn list(
    ctx: &CoreContext,
    who: &Identity,
    project_id: Uuid,
) -> CoreResult<Vec<api_keys::Model>> {
    crate::projects::get_authorized(ctx, who, project_id, Role::Admin).await?;
    Ok(api_keys::Entity::find()
        .filter(api_keys::Column::ProjectId.eq(project_id))
        .order_by_desc(api_keys::Column::CreatedAt)
        .all(&ctx.db)
        .await?)
}

/// Revokes a key; it stops working at once.
pub async fn revoke(ctx: &CoreContext, who: &Identity, id: Uuid) -> CoreResult<api_keys::Model> {
    let key = api_keys::Entity::find_by_id(id)
        .one(&ctx.db)
        .await?
        .ok_or(CoreError::NotFound { entity: "API key" })?;
    crate::projects::get_authorized(ctx, who, key.project_id, Role::Admin)
        .await
        .map_err(|e| match e {
            CoreError::NotFound { .. } => CoreError::NotFound { entity: "API key" },
            other => other,
        })?;
    if key.revoked_at.is_some() {
        return Ok(key);
    }
    let mut active: api_keys::ActiveModel = key.into();
    active.revoked_at = Set(Some(Utc::now()));
    Ok(active.update(&ctx.db).await?)
}

/// The identity of a presented key, or `None` when it is unknown or revoked.
pub async fn authenticate(
    ctx: &CoreContext,
    presented: &str,
) -> CoreResult<Option<(Identity, Uuid)>> {
    if !presented.starts_with(KEY_PREFIX) || presented.len() > 200 {
        return Ok(None);
    }
    let Some(key) = api_keys::Entity::find()
        .filter(api_keys::Column::KeyHash.eq(hash(presented)))
        .one(&ctx.db)
        .await?
    else {
        return Ok(None);
    };
    if key.revoked_at.is_some() {
        return Ok(None);
    }
    let Some(project) = projects::Entity::find_by_id(key.project_id)
        .one(&ctx.db)
        .await?
    else {
        return Ok(None);
    };
    let now = Utc::now();
    if key
        .last_used_at
        .is_none_or(|t| (now - t).num_seconds() >= LAST_USED_RESOLUTION_SECS)
    {
        let mut active: api_keys::ActiveModel = key.clone().into();
        active.last_used_at = Set(Some(now));
        active.update(&ctx.db).await?;
    }
    Ok(Some((
        Identity {
            subject: format!("apikey:{}", key.name),
            global_role: None,
            project_roles: [(project.slug, key.role)].into_iter().collect(),
        },
        key.id,
    )))
}
