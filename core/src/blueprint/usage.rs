//! What uses a blueprint: other blueprints that depend on it, and deployments made from it.
//! Changing or deleting a user blueprint is refused while it would break either.

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect};
use uuid::Uuid;

use orchestrator_entity::{IntentStatus, intents, resources};

use super::catalogue::Catalogue;
use super::parse::BlueprintError;
use super::references::validate_against;
use crate::error::{CoreError, CoreResult};

/// A blueprint that would stop working if a catalogue change went ahead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokenDependent {
    /// The dependent blueprint.
    pub name: String,
    /// What goes wrong in it, as its own validation reports it.
    pub problem: BlueprintError,
}

/// Blueprints that depend on `name` directly and are valid in `before` but not in `after`
/// (an export they use is gone, the dependency no longer exists or runs elsewhere, or a
/// cycle appears). `name` itself is not checked.
pub fn broken_dependents(
    name: &str,
    before: &Catalogue,
    after: &Catalogue,
) -> Vec<BrokenDependent> {
    let mut broken = Vec::new();
    for dependent in after.iter() {
        if dependent.name == name || !dependent.dependencies.iter().any(|d| d == name) {
            continue;
        }
        let Err(problems) = validate_against(dependent, after) else {
            continue;
        };
        let known: Vec<BlueprintError> = before
            .get(&dependent.name)
            .and_then(|earlier| validate_against(earlier, before).err())
            .unwrap_or_default();
        broken.extend(
            problems
                .into_iter()
                .filter(|problem| !known.contains(problem))
                .map(|problem| BrokenDependent {
                    name: dependent.name.clone(),
                    problem,
                }),
        );
    }
    broken
}

/// Intent statuses whose deployment is (or is about to be) running.
const LIVE_STATUSES: [IntentStatus; 5] = [
    IntentStatus::Pending,
    IntentStatus::Parsing,
    IntentStatus::Generating,
    IntentStatus::Deploying,
    IntentStatus::Completed,
];

/// Intent actions that take an application away rather than deploy it.
const REMOVAL_ACTIONS: [&str; 3] = ["remove", "uninstall", "delete"];

/// Ids of the project's deployments that use blueprint `name`, oldest first.
///
/// This is the one place that decides whether a deployment still uses a blueprint. A
/// deployment uses it when
/// * its intent is not finished, or finished `COMPLETED` (and was not a removal), and its
///   `application` is `name` or its `plan` lists `name` among `components[].name` (the
///   shape of a serialized [`super::RenderedPlan`]); or
/// * it created resources for a component called `name` that are not deleted yet.
pub async fn deployments_using(
    db: &impl ConnectionTrait,
    project_id: Uuid,
    name: &str,
) -> CoreResult<Vec<Uuid>> {
    let live = intents::Entity::find()
        .filter(intents::Column::ProjectId.eq(project_id))
        .filter(intents::Column::Status.is_in(LIVE_STATUSES))
        .all(db)
        .await?;
    let mut using: Vec<(chrono::DateTime<chrono::Utc>, Uuid)> = live
        .iter()
        .filter(|intent| intent_uses(intent, name))
        .map(|intent| (intent.created_at, intent.id))
        .collect();
    let with_resources: Vec<Uuid> = resources::Entity::find()
        .select_only()
        .column(resources::Column::IntentId)
        .filter(resources::Column::ProjectId.eq(project_id))
        .filter(resources::Column::Component.eq(name))
        .filter(resources::Column::DeletedAt.is_null())
        .distinct()
        .into_tuple()
        .all(db)
        .await?;
    let missing: Vec<Uuid> = with_resources
        .into_iter()
        .filter(|id| !using.iter().any(|(_, known)| known == id))
        .collect();
    if !missing.is_empty() {
        let owners = intents::Entity::find()
            .filter(intents::Column::Id.is_in(missing))
            .all(db)
            .await?;
        using.extend(owners.iter().map(|intent| (intent.created_at, intent.id)));
    }
    using.sort();
    Ok(using.into_iter().map(|(_, id)| id).collect())
}

fn intent_uses(intent: &intents::Model, name: &str) -> bool {
    let removal = intent
        .action
        .as_deref()
        .is_some_and(|action| REMOVAL_ACTIONS.contains(&action));
    if intent.status == IntentStatus::Completed && removal {
        return false;
    }
    intent.application.as_deref() == Some(name)
        || intent
            .plan
            .as_ref()
            .is_some_and(|plan| plan_components(plan).any(|component| component == name))
}

/// Component names of a stored plan (`components[].name`).
fn plan_components(plan: &serde_json::Value) -> impl Iterator<Item = &str> {
    plan.get("components")
        .and_then(serde_json::Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|component| component.get("name").and_then(serde_json::Value::as_str))
}

/// Refuses with `CONFLICT` when removing `name` (turning `before` into `after`) would break a
/// blueprint that depends on it, or while a deployment uses it.
pub(crate) async fn ensure_removable(
    db: &impl ConnectionTrait,
    project_id: Uuid,
    name: &str,
    before: &Catalogue,
    after: &Catalogue,
) -> CoreResult<()> {
    let broken = broken_dependents(name, before, after);
    if !broken.is_empty() {
        let mut dependents: Vec<&str> = broken.iter().map(|b| b.name.as_str()).collect();
        dependents.dedup();
        let details: Vec<String> = broken
            .iter()
            .map(|b| format!("{}: {}", b.name, b.problem))
            .collect();
        return Err(CoreError::Conflict(format!(
            "blueprint {name} cannot be deleted: {} depend{} on it ({}); change or delete {} first",
            dependents.join(", "),
            if dependents.len() == 1 { "s" } else { "" },
            details.join("; "),
            if dependents.len() == 1 { "it" } else { "them" },
        )));
    }
    let deployments = deployments_using(db, project_id, name).await?;
    if !deployments.is_empty() {
        let ids: Vec<String> = deployments.iter().map(Uuid::to_string).collect();
        return Err(CoreError::Conflict(format!(
            "blueprint {name} cannot be deleted while deployments use it (intents {}); remove or roll them back first",
            ids.join(", ")
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blueprint::parse_blueprint;
    use serde_json::json;

    fn blueprint(yaml: &str) -> crate::blueprint::Blueprint {
        parse_blueprint(yaml).expect("valid test blueprint")
    }

    #[test]
    fn a_shadow_without_an_export_breaks_the_builtins_that_use_it() {
        let before = Catalogue::builtin();
        let redis =
            blueprint("name: redis\ndefaults: { image: valkey/valkey:8 }\nexports: { host: x }\n");
        let after = before.with_overlay(vec![redis]);
        let broken = broken_dependents("redis", &before, &after);
        assert!(!broken.is_empty());
        assert!(broken.iter().all(|b| b.name == "authentik"), "{broken:?}");
        assert!(
            broken
                .iter()
                .any(|b| b.problem.message.contains("exports no 'password'")),
            "{broken:?}"
        );
    }

    #[test]
    fn removing_a_shadow_falls_back_to_the_builtin() {
        let redis = blueprint(
            "name: redis\ndefaults: { image: valkey/valkey:8 }\nexports: { host: x, port: \"6379\", password: y, url: z }\n",
        );
        let before = Catalogue::builtin().with_overlay(vec![redis]);
        assert!(broken_dependents("redis", &before, &Catalogue::builtin()).is_empty());
    }

    #[test]
    fn removing_a_dependency_breaks_its_dependents() {
        let base = blueprint("name: base\ndefaults: { image: busybox }\n");
        let app = blueprint("name: app\ndefaults: { image: busybox }\ndependencies: [base]\n");
        let before = Catalogue::from_blueprints(vec![base, app.clone()]);
        let after = Catalogue::from_blueprints(vec![app]);
        let broken = broken_dependents("base", &before, &after);
        assert_eq!(broken.len(), 1);
        assert_eq!(broken[0].name, "app");
        assert_eq!(broken[0].problem.field, "dependencies[0]");
    }

    #[test]
    fn plans_list_their_components() {
        let plan = json!({ "components": [{ "name": "postgresql" }, { "name": "authentik" }] });
        let names: Vec<&str> = plan_components(&plan).collect();
        assert_eq!(names, ["postgresql", "authentik"]);
        assert_eq!(plan_components(&json!({ "other": 1 })).count(), 0);
    }
}
