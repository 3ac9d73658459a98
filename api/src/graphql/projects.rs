//! Projects: `projects`, `project(id)`, `createProject`.

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use orchestrator_core::CoreContext;
use orchestrator_core::projects::NewProject;
use orchestrator_entity::Role as DbRole;
use orchestrator_entity::projects;
use uuid::Uuid;

use crate::auth::caller;
use crate::error::{GqlResult, IntoGql};

/// A tenant: every other object belongs to exactly one project.
#[derive(SimpleObject, Clone)]
pub struct Project {
    pub id: ID,
    /// Unique short name, used in token claims.
    pub slug: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

impl From<projects::Model> for Project {
    fn from(m: projects::Model) -> Self {
        Project {
            id: ID(m.id.to_string()),
            slug: m.slug,
            name: m.name,
            created_at: m.created_at,
        }
    }
}

/// Parses an id argument; a malformed id is `NOT_FOUND`, like an id that does not exist.
pub fn parse_id(id: &ID, entity: &'static str) -> GqlResult<Uuid> {
    Uuid::parse_str(id.as_str())
        .map_err(|_| orchestrator_core::CoreError::NotFound { entity })
        .gql()
}

#[derive(Default)]
pub struct ProjectQuery;

#[Object]
impl ProjectQuery {
    /// Projects the caller can see.
    async fn projects(&self, ctx: &Context<'_>) -> GqlResult<Vec<Project>> {
        let who = caller(ctx)?;
        let core = ctx.data::<CoreContext>()?;
        let rows = orchestrator_core::projects::list_visible(core, who)
            .await
            .gql()?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// One project; `NOT_FOUND` when it does not exist or the caller cannot see it.
    async fn project(&self, ctx: &Context<'_>, id: ID) -> GqlResult<Project> {
        let who = caller(ctx)?;
        let core = ctx.data::<CoreContext>()?;
        let id = parse_id(&id, "project")?;
        let row = orchestrator_core::projects::get_authorized(core, who, id, DbRole::Viewer)
            .await
            .gql()?;
        Ok(row.into())
    }
}

/// Input of `createProject`.
#[derive(InputObject)]
pub struct CreateProjectInput {
    /// 1-63 lowercase letters, digits and '-', starting with a letter.
    pub slug: String,
    /// Display name.
    pub name: String,
}

#[derive(Default)]
pub struct ProjectMutation;

#[Object]
impl ProjectMutation {
    /// Creates a project (global admins only).
    async fn create_project(
        &self,
        ctx: &Context<'_>,
        input: CreateProjectInput,
    ) -> GqlResult<Project> {
        let who = caller(ctx)?;
        let core = ctx.data::<CoreContext>()?;
        let row = orchestrator_core::projects::create_project(
            core,
            who,
            NewProject {
                slug: input.slug,
                name: input.name,
            },
        )
        .await
        .gql()?;
        Ok(row.into())
    }
}
