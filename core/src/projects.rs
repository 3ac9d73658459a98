//! Projects: the tenants. Every other row belongs to exactly one project.

use chrono::Utc;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set};
use uuid::Uuid;

use orchestrator_entity::projects;

use crate::auth::Identity;
use crate::context::CoreContext;
use crate::error::{CoreError, CoreResult};
use orchestrator_entity::Role;

/// Slug of the project created on first start.
pub const DEFAULT_PROJECT: &str = "default";

/// Input of [`create_project`].
#[derive(Debug, Clone)]
pub struct NewProject {
    pub slug: String,
    pub name: String,
}

/// Checks a project slug: 1–63 characters of `a-z`, `0-9` and `-`, starting with a letter.
pub fn validate_slug(field: &str, slug: &str) -> CoreResult<()> {
    let ok = !slug.is_empty()
        && slug.len() <= 63
        && slug.starts_with(|c: char| c.is_ascii_lowercase())
        && !slug.ends_with('-')
        && slug
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(CoreError::bad_input(
            field,
            format!(
                "{slug:?} is not a valid slug: use 1-63 lowercase letters, digits and '-', starting with a letter"
            ),
        ))
    }
}

/// Projects the caller may see, oldest first.
pub async fn list_visible(ctx: &CoreContext, who: &Identity) -> CoreResult<Vec<projects::Model>> {
    let mut query = projects::Entity::find().order_by_asc(projects::Column::CreatedAt);
    if !who.is_global(Role::Viewer) {
        let slugs: Vec<String> = who.project_roles.keys().cloned().collect();
        query = query.filter(projects::Column::Slug.is_in(slugs));
    }
    Ok(query.all(&ctx.db).await?)
}

/// The project with `id`, if the caller holds at least `needed` in it. A project the caller
/// cannot see answers exactly like one that does not exist.
pub async fn get_authorized(
    ctx: &CoreContext,
    who: &Identity,
    id: Uuid,
    needed: Role,
) -> CoreResult<projects::Model> {
    let project = projects::Entity::find_by_id(id)
        .one(&ctx.db)
        .await?
        .ok_or(CoreError::NotFound { entity: "project" })?;
    match who.role_in(&project.slug) {
        None => Err(CoreError::NotFound { entity: "project" }),
        Some(role) if role.allows(needed) => Ok(project),
        Some(role) => Err(CoreError::Forbidden(format!(
            "this needs the {} role in project {}; you have {}",
            role_name(needed),
            project.slug,
            role_name(role)
        ))),
    }
}

/// Creates a project. Only a global admin may do this.
pub async fn create_project(
    ctx: &CoreContext,
    who: &Identity,
    input: NewProject,
) -> CoreResult<projects::Model> {
    if !who.is_global(Role::Admin) {
        return Err(CoreError::Forbidden(
            "creating projects needs the global admin role".into(),
        ));
    }
    validate_slug("input.slug", &input.slug)?;
    let name = input.name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(CoreError::bad_input(
            "input.name",
            "must be 1-200 characters",
        ));
    }
    let exists = projects::Entity::find()
        .filter(projects::Column::Slug.eq(&input.slug))
        .one(&ctx.db)
        .await?;
    if exists.is_some() {
        return Err(CoreError::Conflict(format!(
            "a project with slug {:?} already exists",
            input.slug
        )));
    }
    let model = projects::ActiveModel {
        id: Set(Uuid::new_v4()),
        slug: Set(input.slug),
        name: Set(name.to_string()),
        created_at: Set(Utc::now()),
    };
    Ok(model.insert(&ctx.db).await?)
}

/// Creates the `default` project when the database has no project at all.
pub async fn ensure_default(ctx: &CoreContext) -> CoreResult<()> {
    let any = projects::Entity::find().one(&ctx.db).await?;
    if any.is_none() {
        let model = projects::ActiveModel {
            id: Set(Uuid::new_v4()),
            slug: Set(DEFAULT_PROJECT.to_string()),
            name: Set("Default".to_string()),
            created_at: Set(Utc::now()),
        };
        match model.insert(&ctx.db).await {
            Ok(_) => tracing::info!(slug = DEFAULT_PROJECT, "created the default project"),
            // Another process created it at the same moment.
            Err(e)
                if matches!(
                    e.sql_err(),
                    Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
                ) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Lower-case name of a role, as tokens spell it.
pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::Viewer => "viewer",
        Role::Operator => "operator",
        Role::Admin => "admin",
    }
}

/// True when the project exists and the caller holds any role in it.
pub async fn visible_to(ctx: &CoreContext, who: &Identity, project_id: Uuid) -> bool {
    match projects::Entity::find_by_id(project_id).one(&ctx.db).await {
        Ok(Some(project)) => who.role_in(&project.slug).is_some(),
        _ => false,
    }
}
