//! User blueprints stored per project: versioned YAML in the `blueprints` table, overlaid on
//! the builtins to form the project's catalogue.
//!
//! Every write validates first and writes nothing when anything is wrong. Every upsert adds
//! a version and deleting only marks versions deleted, so history is never rewritten. A user
//! blueprint named like a builtin shadows it in its own project only.

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set,
    sea_query::Expr,
};
use uuid::Uuid;

use orchestrator_entity::{Role, blueprints};

use super::catalogue::Catalogue;
use super::model::Blueprint;
use super::parse::{BlueprintError, parse_blueprint, parse_blueprint_in};
use super::source_map::SourceMap;
use super::usage::{broken_dependents, ensure_removable};
use crate::auth::Identity;
use crate::context::CoreContext;
use crate::error::{CoreError, CoreResult, InputProblem};

/// Largest blueprint text accepted, in bytes.
pub const MAX_BLUEPRINT_BYTES: usize = 256 * 1024;

/// Attempts of an upsert whose version number a concurrent upsert took first.
const VERSION_RACE_ATTEMPTS: usize = 3;

/// Every stored version of every user blueprint of one project.
#[derive(Debug, Clone, Default)]
pub struct ProjectBlueprints {
    /// Ordered by name, then version.
    rows: Vec<blueprints::Model>,
}

impl ProjectBlueprints {
    /// Loads the project's rows, deleted versions included.
    pub async fn load(db: &impl ConnectionTrait, project_id: Uuid) -> CoreResult<Self> {
        let rows = blueprints::Entity::find()
            .filter(blueprints::Column::ProjectId.eq(project_id))
            .order_by_asc(blueprints::Column::Name)
            .order_by_asc(blueprints::Column::Version)
            .all(db)
            .await?;
        Ok(ProjectBlueprints { rows })
    }

    /// The current version of each blueprint that is not deleted, by name.
    pub fn current(&self) -> impl Iterator<Item = &blueprints::Model> {
        self.rows.iter().enumerate().filter_map(|(index, row)| {
            let latest = self
                .rows
                .get(index + 1)
                .is_none_or(|next| next.name != row.name);
            (latest && row.deleted_at.is_none()).then_some(row)
        })
    }

    /// The current version of `name`, unless it is deleted or was never stored.
    pub fn current_of(&self, name: &str) -> Option<&blueprints::Model> {
        self.current().find(|row| row.name == name)
    }

    /// Every stored version of `name`, oldest first, deleted ones included.
    pub fn versions_of(&self, name: &str) -> Vec<blueprints::Model> {
        self.rows
            .iter()
            .filter(|row| row.name == name)
            .cloned()
            .collect()
    }

    /// The number the next upsert of `name` gets.
    pub fn next_version(&self, name: &str) -> i32 {
        self.rows
            .iter()
            .filter(|row| row.name == name)
            .map(|row| row.version)
            .max()
            .unwrap_or(0)
            + 1
    }

    /// The builtins overlaid with the current versions, optionally leaving `without` out.
    fn catalogue_except(&self, without: Option<&str>) -> Catalogue {
        let user = self
            .current()
            .filter(|row| Some(row.name.as_str()) != without)
            .filter_map(readable)
            .collect();
        Catalogue::builtin().with_overlay(user)
    }

    /// The builtins overlaid with the current versions.
    pub fn catalogue(&self) -> Catalogue {
        self.catalogue_except(None)
    }
}

/// A stored row that no longer parses (the format changed under it) is left out with a
/// warning rather than making the whole project's catalogue unusable.
fn readable(row: &blueprints::Model) -> Option<Blueprint> {
    match parse_blueprint(&row.yaml) {
        Ok(blueprint) => Some(blueprint),
        Err(errors) => {
            tracing::warn!(
                blueprint = %row.name,
                version = row.version,
                project_id = %row.project_id,
                problems = ?errors,
                "stored blueprint no longer parses; left out of the catalogue"
            );
            None
        }
    }
}

/// The catalogue project `project_id` deploys from: the builtins overlaid with its current
/// user blueprints. The caller has checked access to the project.
pub async fn catalogue_for(ctx: &CoreContext, project_id: Uuid) -> CoreResult<Catalogue> {
    Ok(ProjectBlueprints::load(&ctx.db, project_id)
        .await?
        .catalogue())
}

/// Stores `yaml` as the next version of the blueprint it names (project admins).
///
/// The text is checked against the project's catalogue: syntax, keys, types, names, ports,
/// variables, dependencies (with the closest names for unknown ones), exports referenced by
/// dependents, and cycles (with the full path). Every problem is returned at once as
/// [`CoreError::Invalid`] with line and column, and nothing is written.
#[tracing::instrument(skip_all, fields(project_id = %project_id))]
pub async fn upsert(
    ctx: &CoreContext,
    who: &Identity,
    project_id: Uuid,
    yaml: &str,
) -> CoreResult<blueprints::Model> {
    let project = crate::projects::get_authorized(ctx, who, project_id, Role::Admin).await?;
    if yaml.len() > MAX_BLUEPRINT_BYTES {
        return Err(CoreError::bad_input(
            "yaml",
            format!(
                "the blueprint is {} bytes; at most {MAX_BLUEPRINT_BYTES} are accepted",
                yaml.len()
            ),
        ));
    }
    let mut attempt = 1;
    loop {
        let txn = crate::db::begin_write(&ctx.db).await?;
        let stored = ProjectBlueprints::load(&txn, project.id).await?;
        let catalogue = stored.catalogue();
        let blueprint = parse_blueprint_in(yaml, &catalogue).map_err(invalid_yaml)?;
        check_dependents(&blueprint, yaml, &catalogue).map_err(invalid_yaml)?;
        let row = blueprints::ActiveModel {
            id: Set(Uuid::new_v4()),
            project_id: Set(project.id),
            name: Set(blueprint.name.clone()),
            version: Set(stored.next_version(&blueprint.name)),
            yaml: Set(yaml.to_owned()),
            created_by: Set(who.subject.clone()),
            created_at: Set(Utc::now()),
            deleted_at: Set(None),
        };
        match row.insert(&txn).await {
            Ok(row) => {
                txn.commit().await?;
                tracing::info!(blueprint = %row.name, version = row.version, "blueprint stored");
                return Ok(row);
            }
            Err(err) if is_unique_violation(&err) && attempt < VERSION_RACE_ATTEMPTS => {
                txn.rollback().await?;
                attempt += 1;
            }
            Err(err) => return Err(err.into()),
        }
    }
}

fn is_unique_violation(err: &sea_orm::DbErr) -> bool {
    matches!(
        err.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    )
}

/// Blueprints that depend on the new one must keep working with it (a shadow of `redis`
/// must still export what `authentik` reads).
fn check_dependents(
    blueprint: &Blueprint,
    yaml: &str,
    catalogue: &Catalogue,
) -> Result<(), Vec<BlueprintError>> {
    let after = catalogue.with_overlay(vec![blueprint.clone()]);
    let broken = broken_dependents(&blueprint.name, catalogue, &after);
    if broken.is_empty() {
        return Ok(());
    }
    let map = SourceMap::build(yaml);
    Err(broken
        .into_iter()
        .map(|b| {
            let field = if b.problem.field == "dependencies" {
                "dependencies"
            } else if b.problem.field.starts_with("dependencies[") {
                "platform"
            } else {
                "exports"
            };
            let position = map.key(field).or_else(|| map.key("name"));
            BlueprintError {
                field: field.to_owned(),
                line: position.map(|p| p.line),
                column: position.map(|p| p.column),
                message: format!(
                    "{} depends on {} and would break: {}: {}",
                    b.name, blueprint.name, b.problem.field, b.problem.message
                ),
            }
        })
        .collect())
}

/// Turns blueprint problems into the error the API reports under the `yaml` argument.
pub fn invalid_yaml(errors: Vec<BlueprintError>) -> CoreError {
    let message = match errors.as_slice() {
        [only] => only.to_string(),
        all => format!(
            "{} problems: {}",
            all.len(),
            all.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        ),
    };
    CoreError::Invalid {
        field: "yaml".to_owned(),
        message,
        details: errors
            .into_iter()
            .map(|e| InputProblem {
                field: e.field,
                line: e.line,
                column: e.column,
                message: e.message,
            })
            .collect(),
    }
}

/// Marks every version of the user blueprint `name` deleted (project admins) and returns
/// them. Refused with `CONFLICT` while a blueprint of the project, a builtin included,
/// would break without it, or while a deployment uses it ([`super::usage::deployments_using`]).
/// Deleting a shadow brings the builtin back.
#[tracing::instrument(skip_all, fields(project_id = %project_id, blueprint = %name))]
pub async fn delete(
    ctx: &CoreContext,
    who: &Identity,
    project_id: Uuid,
    name: &str,
) -> CoreResult<Vec<blueprints::Model>> {
    let project = crate::projects::get_authorized(ctx, who, project_id, Role::Admin).await?;
    let txn = crate::db::begin_write(&ctx.db).await?;
    let stored = ProjectBlueprints::load(&txn, project.id).await?;
    if stored.current_of(name).is_none() {
        if Catalogue::builtin().contains(name) {
            return Err(CoreError::bad_input(
                "name",
                format!("{name} is a builtin blueprint and cannot be deleted"),
            ));
        }
        return Err(CoreError::NotFound {
            entity: "blueprint",
        });
    }
    let before = stored.catalogue();
    let after = stored.catalogue_except(Some(name));
    ensure_removable(&txn, project.id, name, &before, &after).await?;
    blueprints::Entity::update_many()
        .col_expr(blueprints::Column::DeletedAt, Expr::value(Utc::now()))
        .filter(blueprints::Column::ProjectId.eq(project.id))
        .filter(blueprints::Column::Name.eq(name))
        .filter(blueprints::Column::DeletedAt.is_null())
        .exec(&txn)
        .await?;
    let versions = ProjectBlueprints::load(&txn, project.id)
        .await?
        .versions_of(name);
    txn.commit().await?;
    tracing::info!("blueprint deleted");
    Ok(versions)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, version: i32, deleted: bool) -> blueprints::Model {
        blueprints::Model {
            id: Uuid::new_v4(),
            project_id: Uuid::nil(),
            name: name.to_owned(),
            version,
            yaml: format!("name: {name}\ndefaults: {{ image: \"busybox:{version}\" }}\n"),
            created_by: "test".to_owned(),
            created_at: Utc::now(),
            deleted_at: deleted.then(Utc::now),
        }
    }

    #[test]
    fn the_latest_live_version_is_current() {
        let stored = ProjectBlueprints {
            rows: vec![
                row("app", 1, false),
                row("app", 2, false),
                row("gone", 1, true),
                row("redis", 1, false),
            ],
        };
        let current: Vec<(&str, i32)> = stored
            .current()
            .map(|r| (r.name.as_str(), r.version))
            .collect();
        assert_eq!(current, [("app", 2), ("redis", 1)]);
        assert_eq!(stored.next_version("app"), 3);
        assert_eq!(stored.next_version("gone"), 2);
        assert_eq!(stored.next_version("new"), 1);
        let catalogue = stored.catalogue();
        assert_eq!(
            catalogue.get("app").map(|b| b.defaults.image.as_str()),
            Some("busybox:2")
        );
        assert!(!catalogue.contains("gone"));
        assert_eq!(
            catalogue.get("redis").map(|b| b.defaults.image.as_str()),
            Some("busybox:1")
        );
        let without = stored.catalogue_except(Some("redis"));
        assert_eq!(
            without.get("redis").map(|b| b.defaults.image.as_str()),
            Some("redis:7")
        );
    }

    #[test]
    fn several_problems_are_reported_together_under_yaml() {
        let errors = parse_blueprint(
            "name: Bad_Name\ndefaults: { image: x }\nports: [{ name: http, port: 70000 }]\n",
        )
        .expect_err("invalid");
        let CoreError::Invalid {
            field,
            message,
            details,
        } = invalid_yaml(errors)
        else {
            panic!("not Invalid");
        };
        assert_eq!(field, "yaml");
        assert!(message.starts_with("2 problems: line 1"), "{message}");
        assert_eq!(details.len(), 2);
        assert_eq!(details[1].field, "ports[0].port");
        assert_eq!(details[1].line, Some(3));
    }
}
