//! API keys and the audit log: `apiKeys`, `createApiKey`, `revokeApiKey`, `auditLog`.

use async_graphql::{Context, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};
use orchestrator_core::CoreContext;
use orchestrator_core::paging::PageRequest;
use orchestrator_entity::{api_keys, audit_log};

use super::enums::Role;
use super::projects::parse_id;
use super::scalars::{CountedConnection, connection};
use crate::auth::caller;
use crate::error::{GqlResult, IntoGql};

/// A project API key (the secret itself is shown only once, by `createApiKey`).
#[derive(SimpleObject)]
pub struct ApiKey {
    pub id: ID,
    pub project_id: ID,
    pub name: String,
    pub role: Role,
    /// The visible start of the key, to recognise it.
    pub prefix: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<api_keys::Model> for ApiKey {
    fn from(m: api_keys::Model) -> Self {
        ApiKey {
            id: ID(m.id.to_string()),
            project_id: ID(m.project_id.to_string()),
            name: m.name,
            role: m.role.into(),
            prefix: m.prefix,
            created_by: m.created_by,
            created_at: m.created_at,
            last_used_at: m.last_used_at,
            revoked_at: m.revoked_at,
        }
    }
}

/// A new key and its secret. Store the secret now: it cannot be read again.
#[derive(SimpleObject)]
pub struct CreatedApiKey {
    pub api_key: ApiKey,
    /// Send it as `X-API-Key`.
    pub secret: String,
}

/// One audit log entry.
#[derive(SimpleObject)]
pub struct AuditEntry {
    pub id: ID,
    /// Token subject or `apikey:<name>`.
    pub actor: String,
    /// The mutation.
    pub action: String,
    /// The id or name the mutation acted on.
    pub target: Option<String>,
    /// `OK` or the error code.
    pub outcome: String,
    pub created_at: DateTime<Utc>,
}

impl From<audit_log::Model> for AuditEntry {
    fn from(m: audit_log::Model) -> Self {
        AuditEntry {
            id: ID(m.id.to_string()),
            actor: m.actor,
            action: m.action,
            target: m.target,
            outcome: m.outcome,
            created_at: m.created_at,
        }
    }
}

#[derive(Default)]
pub struct AccessQuery;

#[Object]
impl AccessQuery {
    /// API keys of a project (project admins).
    async fn api_keys(&self, ctx: &Context<'_>, project_id: ID) -> GqlResult<Vec<ApiKey>> {
        let who = caller(ctx)?;
        let core = ctx.data::<CoreContext>()?;
        let project_id = parse_id(&project_id, "project")?;
        let rows = orchestrator_core::api_keys::list(core, who, project_id)
            .await
            .gql()?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// Who changed what in a project, newest first (project admins).
    async fn audit_log(
        &self,
        ctx: &Context<'_>,
        project_id: ID,
        first: Option<i32>,
        after: Option<String>,
    ) -> GqlResult<CountedConnection<AuditEntry>> {
        let who = caller(ctx)?;
        let core = ctx.data::<CoreContext>()?;
        let project_id = parse_id(&project_id, "project")?;
        let page = PageRequest::new(first, after.as_deref()).gql()?;
        let rows = orchestrator_core::audit::list(core, who, project_id, page)
            .await
            .gql()?;
        Ok(connection(rows, AuditEntry::from))
    }
}

#[derive(Default)]
pub struct AccessMutation;

#[Object]
impl AccessMutation {
    /// Creates an API key with `role` in a project (project admins). The secret is in the
    /// answer and nowhere else.
    async fn create_api_key(
        &self,
        ctx: &Context<'_>,
        project_id: ID,
        name: String,
        role: Role,
    ) -> GqlResult<CreatedApiKey> {
        let who = caller(ctx)?;
        let core = ctx.data::<CoreContext>()?;
        let project_id = parse_id(&project_id, "project")?;
        let created =
            orchestrator_core::api_keys::create(core, who, project_id, &name, role.into())
                .await
                .gql()?;
        Ok(CreatedApiKey {
            api_key: created.key.into(),
            secret: created.secret,
        })
    }

    /// Revokes an API key; requests with it fail from now on.
    async fn revoke_api_key(&self, ctx: &Context<'_>, id: ID) -> GqlResult<ApiKey> {
        let who = caller(ctx)?;
        let core = ctx.data::<CoreContext>()?;
        let id = parse_id(&id, "API key")?;
        Ok(orchestrator_core::api_keys::revoke(core, who, id)
            .await
            .gql()?
            .into())
    }
}
