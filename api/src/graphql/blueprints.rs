//! Blueprints: `blueprints`, `blueprint`, `blueprintDependencies`, `renderBlueprint`,
//! `upsertBlueprint`, `deleteBlueprint`. The resolvers only translate; the catalogue, its
//! checks and the secret masking live in `orchestrator_core::blueprint`.

mod types;

use async_graphql::{Context, ID, Json, Object, SimpleObject};
use orchestrator_core::CoreContext;
use orchestrator_core::blueprint::browse::{
    self, BlueprintFilter, BlueprintPreview, PreviewRequest,
};
use orchestrator_core::blueprint::{self as engine, store};
use serde_json::Value;

use types::{Blueprint, BlueprintVersion};

use super::Platform;
use super::projects::parse_id;
use crate::auth::caller;
use crate::error::{GqlResult, IntoGql};

/// One component of a rendered blueprint.
#[derive(SimpleObject)]
pub struct RenderedComponent {
    pub name: String,
    pub platform: Platform,
    /// Kubernetes: its manifests; Docker: its container. Secret values are masked.
    pub manifests: String,
}

/// A blueprint rendered with its dependencies, for reading: nothing is applied and secret
/// values are masked.
#[derive(SimpleObject)]
pub struct RenderedBlueprint {
    /// All components' manifests, multi-document YAML in install order.
    pub manifests: String,
    /// The docker-compose export (Docker only); secrets are `${VARIABLES}` to supply.
    pub compose: Option<String>,
    /// Components in install order.
    pub components: Vec<RenderedComponent>,
    /// Requested things that were not done.
    pub warnings: Vec<String>,
}

impl From<BlueprintPreview> for RenderedBlueprint {
    fn from(preview: BlueprintPreview) -> Self {
        RenderedBlueprint {
            manifests: preview.manifests,
            compose: preview.compose,
            components: preview
                .components
                .into_iter()
                .map(|c| RenderedComponent {
                    name: c.name,
                    platform: to_api_platform(c.platform),
                    manifests: c.manifests,
                })
                .collect(),
            warnings: preview.warnings,
        }
    }
}

/// What `deleteBlueprint` removed.
#[derive(SimpleObject)]
pub struct DeletedBlueprint {
    pub name: String,
    /// Every version, now marked deleted; the texts are kept.
    pub versions: Vec<BlueprintVersion>,
}

pub(super) fn to_engine_platform(platform: Platform) -> engine::Platform {
    match platform {
        Platform::Docker => engine::Platform::Docker,
        Platform::Kubernetes => engine::Platform::Kubernetes,
    }
}

pub(super) fn to_api_platform(platform: engine::Platform) -> Platform {
    match platform {
        engine::Platform::Docker => Platform::Docker,
        engine::Platform::Kubernetes => Platform::Kubernetes,
    }
}

#[derive(Default)]
pub struct BlueprintQuery;

#[Object]
impl BlueprintQuery {
    /// The builtins and — given `projectId` — the project's own blueprints, by name, optionally
    /// only those of a category or those that run on a platform.
    async fn blueprints(
        &self,
        ctx: &Context<'_>,
        project_id: Option<ID>,
        category: Option<String>,
        platform: Option<Platform>,
    ) -> GqlResult<Vec<Blueprint>> {
        let who = caller(ctx)?;
        let core = ctx.data::<CoreContext>()?;
        let project_id = project_id.map(|p| parse_id(&p, "project")).transpose()?;
        let filter = BlueprintFilter {
            category,
            platform: platform.map(to_engine_platform),
        };
        let entries = browse::list(core, who, project_id, &filter).await.gql()?;
        Ok(entries.into_iter().map(Into::into).collect())
    }

    /// One blueprint as the project sees it (its own shadows a builtin of the same name).
    async fn blueprint(
        &self,
        ctx: &Context<'_>,
        project_id: Option<ID>,
        name: String,
    ) -> GqlResult<Blueprint> {
        let who = caller(ctx)?;
        let core = ctx.data::<CoreContext>()?;
        let project_id = project_id.map(|p| parse_id(&p, "project")).transpose()?;
        Ok(browse::get(core, who, project_id, &name)
            .await
            .gql()?
            .into())
    }

    /// What installing the blueprint installs, in order: dependencies first, itself last.
    async fn blueprint_dependencies(
        &self,
        ctx: &Context<'_>,
        project_id: Option<ID>,
        name: String,
    ) -> GqlResult<Vec<Blueprint>> {
        let who = caller(ctx)?;
        let core = ctx.data::<CoreContext>()?;
        let project_id = project_id.map(|p| parse_id(&p, "project")).transpose()?;
        let order = browse::install_order(core, who, project_id, &name)
            .await
            .gql()?;
        Ok(order.into_iter().map(Into::into).collect())
    }

    /// Renders the blueprint and its dependencies without deploying anything. `params` is
    /// `{ "<blueprint>": { "<parameter>": value } }` as `deploy` takes it. Secrets are
    /// generated for the preview and never shown.
    async fn render_blueprint(
        &self,
        ctx: &Context<'_>,
        project_id: Option<ID>,
        name: String,
        platform: Platform,
        params: Option<Json<Value>>,
        #[graphql(default = "default")] namespace: String,
    ) -> GqlResult<RenderedBlueprint> {
        let who = caller(ctx)?;
        let core = ctx.data::<CoreContext>()?;
        let project_id = project_id.map(|p| parse_id(&p, "project")).transpose()?;
        let request = PreviewRequest {
            name,
            platform: to_engine_platform(platform),
            namespace,
            params: params.map(|p| p.0),
        };
        let preview = browse::render_preview(core, who, project_id, &request)
            .await
            .gql()?;
        Ok(preview.into())
    }
}

#[derive(Default)]
pub struct BlueprintMutation;

#[Object]
impl BlueprintMutation {
    /// Stores the YAML as the next version of the blueprint it names (project admins).
    /// Every problem is reported at once under `extensions.errors` with field, line and
    /// column; nothing is stored then.
    async fn upsert_blueprint(
        &self,
        ctx: &Context<'_>,
        project_id: ID,
        yaml: String,
    ) -> GqlResult<Blueprint> {
        let who = caller(ctx)?;
        let core = ctx.data::<CoreContext>()?;
        let project_id = parse_id(&project_id, "project")?;
        let row = store::upsert(core, who, project_id, &yaml).await.gql()?;
        Ok(browse::get(core, who, Some(project_id), &row.name)
            .await
            .gql()?
            .into())
    }

    /// Deletes the project's blueprint (project admins); a builtin it shadowed comes back.
    /// Refused with `CONFLICT` while another blueprint or a deployment uses it.
    async fn delete_blueprint(
        &self,
        ctx: &Context<'_>,
        project_id: ID,
        name: String,
    ) -> GqlResult<DeletedBlueprint> {
        let who = caller(ctx)?;
        let core = ctx.data::<CoreContext>()?;
        let project_id = parse_id(&project_id, "project")?;
        let versions = store::delete(core, who, project_id, &name).await.gql()?;
        Ok(DeletedBlueprint {
            name,
            versions: versions.into_iter().map(Into::into).collect(),
        })
    }
}
