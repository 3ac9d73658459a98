//! Reading a project's blueprints: the catalogue as a list, one blueprint with its history,
//! install order, and rendered previews with every secret masked. Viewers may read.

use std::collections::BTreeMap;

use uuid::Uuid;

use orchestrator_entity::{Role, blueprints, projects};

use super::catalogue::{BUILTIN_SOURCES, Catalogue, Origin};
use super::model::{Blueprint, Platform};
use super::render::{RenderError, RenderRequest, RenderedPlan, render};
use super::resolve::ResolveError;
use super::store::ProjectBlueprints;
use crate::auth::Identity;
use crate::context::CoreContext;
use crate::error::{CoreError, CoreResult};

/// One blueprint as a project sees it.
#[derive(Debug, Clone)]
pub struct CatalogueEntry {
    /// The parsed blueprint.
    pub blueprint: Blueprint,
    /// A builtin, or the project's own.
    pub origin: Origin,
    /// The project's own blueprint replaces a builtin of the same name.
    pub shadows_builtin: bool,
    /// The YAML text: the builtin file, or the current stored version.
    pub yaml: String,
    /// Stored versions, oldest first, deleted ones included; empty for builtins.
    pub versions: Vec<blueprints::Model>,
}

/// Which blueprints `list` returns; `None` matches everything.
#[derive(Debug, Clone, Default)]
pub struct BlueprintFilter {
    /// Category, compared without regard to case.
    pub category: Option<String>,
    /// Only blueprints that can be rendered for this platform.
    pub platform: Option<Platform>,
}

fn entry(stored: &ProjectBlueprints, catalogue: &Catalogue, name: &str) -> Option<CatalogueEntry> {
    let blueprint = catalogue.get(name)?.clone();
    let origin = catalogue.origin(name)?;
    let (yaml, versions) = match origin {
        Origin::Builtin => (builtin_source(name)?.to_owned(), Vec::new()),
        Origin::User => (
            stored.current_of(name)?.yaml.clone(),
            stored.versions_of(name),
        ),
    };
    Some(CatalogueEntry {
        blueprint,
        origin,
        shadows_builtin: origin == Origin::User && Catalogue::builtin().contains(name),
        yaml,
        versions,
    })
}

fn builtin_source(name: &str) -> Option<&'static str> {
    BUILTIN_SOURCES
        .iter()
        .find(|(builtin, _)| *builtin == name)
        .map(|(_, source)| *source)
}

/// A project the caller may view (none: the builtins alone), its stored blueprints and its
/// catalogue.
struct Visible {
    project: Option<projects::Model>,
    stored: ProjectBlueprints,
    catalogue: Catalogue,
}

async fn load_visible(
    ctx: &CoreContext,
    who: &Identity,
    project_id: Option<Uuid>,
) -> CoreResult<Visible> {
    let Some(project_id) = project_id else {
        let stored = ProjectBlueprints::default();
        let catalogue = stored.catalogue();
        return Ok(Visible {
            project: None,
            stored,
            catalogue,
        });
    };
    let project = crate::projects::get_authorized(ctx, who, project_id, Role::Viewer).await?;
    let stored = ProjectBlueprints::load(&ctx.db, project.id).await?;
    let catalogue = stored.catalogue();
    Ok(Visible {
        project: Some(project),
        stored,
        catalogue,
    })
}

fn not_found() -> CoreError {
    CoreError::NotFound {
        entity: "blueprint",
    }
}

/// The builtins and the project's own blueprints matching `filter`, by name.
pub async fn list(
    ctx: &CoreContext,
    who: &Identity,
    project_id: Option<Uuid>,
    filter: &BlueprintFilter,
) -> CoreResult<Vec<CatalogueEntry>> {
    let Visible {
        stored, catalogue, ..
    } = load_visible(ctx, who, project_id).await?;
    Ok(catalogue
        .iter()
        .filter(|bp| {
            filter
                .category
                .as_deref()
                .is_none_or(|category| bp.category.eq_ignore_ascii_case(category))
        })
        .filter(|bp| filter.platform.is_none_or(|p| bp.platform.supports(p)))
        .filter_map(|bp| entry(&stored, &catalogue, &bp.name))
        .collect())
}

/// The blueprint `name` as the project sees it; `NOT_FOUND` when there is none.
pub async fn get(
    ctx: &CoreContext,
    who: &Identity,
    project_id: Option<Uuid>,
    name: &str,
) -> CoreResult<CatalogueEntry> {
    let visible = load_visible(ctx, who, project_id).await?;
    entry(&visible.stored, &visible.catalogue, name).ok_or_else(not_found)
}

/// What installing `name` installs, dependencies first and `name` last.
pub async fn install_order(
    ctx: &CoreContext,
    who: &Identity,
    project_id: Option<Uuid>,
    name: &str,
) -> CoreResult<Vec<CatalogueEntry>> {
    let Visible {
        stored, catalogue, ..
    } = load_visible(ctx, who, project_id).await?;
    if !catalogue.contains(name) {
        return Err(not_found());
    }
    let order = catalogue
        .resolve_install_order(&[name])
        .map_err(|e| CoreError::bad_input("name", e.to_string()))?;
    order
        .iter()
        .map(|component| entry(&stored, &catalogue, component).ok_or_else(not_found))
        .collect()
}

/// What to preview.
#[derive(Debug, Clone)]
pub struct PreviewRequest {
    /// The blueprint; its dependencies are rendered too.
    pub name: String,
    /// Target platform.
    pub platform: Platform,
    /// Kubernetes namespace, or the Docker network's name.
    pub namespace: String,
    /// `{ "<blueprint>": { "<parameter>": value } }`, as `deploy` takes them.
    pub params: Option<serde_json::Value>,
}

/// A rendered blueprint for people to read: secret values masked everywhere.
#[derive(Debug, Clone, PartialEq)]
pub struct BlueprintPreview {
    /// Every component's manifests, multi-document YAML in install order.
    pub manifests: String,
    /// The docker-compose export (Docker only); secrets are `${VARIABLES}` to supply.
    pub compose: Option<String>,
    /// Per component, in install order.
    pub components: Vec<ComponentPreview>,
    /// Requested things that were not done.
    pub warnings: Vec<String>,
}

/// One component of a [`BlueprintPreview`].
#[derive(Debug, Clone, PartialEq)]
pub struct ComponentPreview {
    /// Blueprint name.
    pub name: String,
    /// Platform rendered for.
    pub platform: Platform,
    /// Its manifests (Kubernetes) or container (Docker), secrets masked.
    pub manifests: String,
}

/// Renders `request.name` with its dependencies for the project, without deploying
/// anything. Fresh secrets are generated and never shown: the answer holds masks only.
#[tracing::instrument(skip_all, fields(project_id = ?project_id, blueprint = %request.name))]
pub async fn render_preview(
    ctx: &CoreContext,
    who: &Identity,
    project_id: Option<Uuid>,
    request: &PreviewRequest,
) -> CoreResult<BlueprintPreview> {
    let Visible {
        project, catalogue, ..
    } = load_visible(ctx, who, project_id).await?;
    if !catalogue.contains(&request.name) {
        return Err(not_found());
    }
    let mut render_request = RenderRequest::new(&[request.name.as_str()], request.platform);
    render_request.namespace = request.namespace.clone();
    render_request.project = project
        .as_ref()
        .map_or_else(|| "preview".to_owned(), |p| project_label(&p.slug));
    render_request.params = params_by_blueprint(request.params.as_ref())?;
    let plan = render(&catalogue, &render_request).map_err(render_error)?;
    Ok(preview_of(&plan))
}

/// A project slug shortened to the 40 characters render labels allow.
pub(crate) fn project_label(slug: &str) -> String {
    let short: String = slug.chars().take(40).collect();
    short.trim_end_matches('-').to_owned()
}

type ParamsByBlueprint = BTreeMap<String, BTreeMap<String, serde_json::Value>>;

pub(crate) fn params_by_blueprint(
    params: Option<&serde_json::Value>,
) -> CoreResult<ParamsByBlueprint> {
    match params {
        None | Some(serde_json::Value::Null) => Ok(BTreeMap::new()),
        Some(value) => serde_json::from_value(value.clone()).map_err(|_| {
            CoreError::bad_input(
                "params",
                "expected an object of objects: { \"<blueprint>\": { \"<parameter>\": value } }",
            )
        }),
    }
}

pub(crate) fn render_error(err: RenderError) -> CoreError {
    let field = match &err {
        RenderError::Serialize { .. } => return CoreError::Internal(anyhow::Error::new(err)),
        RenderError::UnknownParameter { .. }
        | RenderError::InvalidParameter { .. }
        | RenderError::MissingParameter { .. }
        | RenderError::ParamsForUnknownComponent { .. } => "params",
        RenderError::UnsupportedPlatform { .. } => "platform",
        RenderError::InvalidRequest(_) => "namespace",
        RenderError::Resolve(ResolveError::Unknown { .. } | ResolveError::Cycle { .. })
        | RenderError::Unresolvable { .. }
        | RenderError::SecretNotAllowed { .. }
        | RenderError::InvalidValue { .. } => "name",
    };
    CoreError::bad_input(field, err.to_string())
}

/// The people-facing view of a plan: [`RenderedPlan::preview`] texts, and as a last guard
/// every secret value of the plan replaced by a mask wherever it might still appear.
pub fn preview_of(plan: &RenderedPlan) -> BlueprintPreview {
    let mask = |text: &str| mask_secrets(text, plan);
    BlueprintPreview {
        manifests: mask(&plan.preview()),
        compose: plan.compose.as_deref().map(mask),
        components: plan
            .components
            .iter()
            .map(|component| ComponentPreview {
                name: component.name.clone(),
                platform: component.platform,
                manifests: mask(&component.preview),
            })
            .collect(),
        warnings: plan.warnings.iter().map(|w| mask(w)).collect(),
    }
}

/// Secret values shorter than this are not searched for: a value like `1` would mask
/// unrelated text. Generated secrets are far longer.
const MIN_MASKED_SECRET_LEN: usize = 6;

fn mask_secrets(text: &str, plan: &RenderedPlan) -> String {
    let mut masked = text.to_owned();
    for (key, value) in &plan.secrets {
        if value.len() >= MIN_MASKED_SECRET_LEN && masked.contains(value.as_str()) {
            masked = masked.replace(value.as_str(), &format!("<secret:{key}>"));
        }
    }
    masked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_preview_of_any_builtin_contains_a_secret_value() {
        let catalogue = Catalogue::builtin();
        for name in catalogue.names() {
            for platform in [Platform::Kubernetes, Platform::Docker] {
                let mut request = RenderRequest::new(&[name], platform);
                if name == "aaf-backend" {
                    request.params.insert(
                        name.to_owned(),
                        BTreeMap::from([("openai_api_key".to_owned(), "sk-known-value".into())]),
                    );
                }
                let plan = render(&catalogue, &request).expect("renders");
                assert!(!plan.secrets.is_empty() || name != "authentik");
                // The renderer's own masking must already hold, without the last guard.
                let texts = [plan.preview(), plan.compose.clone().unwrap_or_default()];
                for (key, value) in &plan.secrets {
                    if value.is_empty() {
                        continue;
                    }
                    for text in &texts {
                        assert!(
                            !text.contains(value.as_str()),
                            "{name} on {platform} shows {key}"
                        );
                    }
                }
                let preview = preview_of(&plan);
                assert_eq!(preview.components.len(), plan.components.len());
            }
        }
    }

    #[test]
    fn the_last_guard_masks_a_leaked_value() {
        let catalogue = Catalogue::builtin();
        let mut plan = render(
            &catalogue,
            &RenderRequest::new(&["redis"], Platform::Docker),
        )
        .expect("renders");
        let (key, value) = plan
            .secrets
            .iter()
            .next()
            .map(|(k, v)| (k.clone(), v.clone()))
            .expect("redis has a password");
        plan.warnings.push(format!("leaked {value}"));
        let preview = preview_of(&plan);
        assert_eq!(
            preview.warnings.last(),
            Some(&format!("leaked <secret:{key}>"))
        );
    }

    #[test]
    fn params_must_be_grouped_by_blueprint() {
        let ok = params_by_blueprint(Some(
            &serde_json::json!({ "redis": { "image": "valkey/valkey:8" } }),
        ))
        .expect("valid");
        assert_eq!(ok["redis"]["image"], "valkey/valkey:8");
        let err = params_by_blueprint(Some(&serde_json::json!({ "image": "valkey/valkey:8" })))
            .expect_err("flat params");
        assert!(
            err.to_string()
                .starts_with("params: expected an object of objects"),
            "{err}"
        );
        assert_eq!(
            project_label(&"a-".repeat(30)),
            "a-".repeat(20).trim_end_matches('-')
        );
    }
}
