//! Planning a deployment: parse the command, apply the caller's options over it, find the
//! deployment it acts on (for scale, update, restart and remove), and render the plan with
//! the blueprint engine. Nothing is written here, so `planDeployment` and dry runs are
//! instant and a bad command leaves no trace.

use std::collections::BTreeMap;

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use orchestrator_entity::{IntentStatus, intents, projects};

use super::llm::{LlmParser, ParsedBy, parse_intent};
use super::{IntentAction, ParseFailure, ParsedIntent};
use crate::blueprint::browse::{params_by_blueprint, preview_of, project_label, render_error};
use crate::blueprint::{
    Catalogue, ObjectRef, Platform, RenderRequest, is_dns_label, render, store,
};
use crate::context::CoreContext;
use crate::error::{CoreError, CoreResult, InputProblem};

/// Longest command accepted.
pub const MAX_COMMAND_LEN: usize = 500;
/// Most replicas a deployment may ask for.
pub const MAX_REPLICAS: u32 = 100;

/// What the caller sets beside the command; each set option overrides what the text says.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeployOptions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<bool>,
    /// `{ "<blueprint>": { "<parameter>": value } }`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<Value>,
    /// `remove`: delete the deployment's volumes too (kept by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remove_volumes: Option<bool>,
}

/// One component of a stored plan, as people may see it (secrets masked).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlannedComponent {
    pub name: String,
    pub platform: Platform,
    /// Kubernetes manifests or the Docker container, secret values masked.
    pub manifests: String,
    /// What applying it creates.
    pub objects: Vec<ObjectRef>,
}

/// The plan stored on an intent: enough to render it again identically (with the intent's
/// encrypted secrets), and to show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredPlan {
    /// Who understood the command.
    pub parsed_by: ParsedBy,
    /// The render request, without secrets.
    pub request: RenderRequest,
    /// Components in install order.
    pub components: Vec<PlannedComponent>,
    /// The docker-compose export (Docker); secrets are `${VARIABLES}`.
    #[serde(default)]
    pub compose: Option<String>,
    /// Requested things that were not done.
    #[serde(default)]
    pub warnings: Vec<String>,
    /// Remove volumes with the deployment (`remove`, rollback of an install).
    #[serde(default)]
    pub remove_volumes: bool,
    /// The completed intent whose deployment this one changes (scale, update, restart,
    /// remove, or a repeated install).
    #[serde(default)]
    pub previous_intent: Option<Uuid>,
}

impl StoredPlan {
    /// The component names in install order.
    pub fn component_names(&self) -> Vec<String> {
        self.components.iter().map(|c| c.name.clone()).collect()
    }
}

/// A planned deployment: what was understood, the plan, and the secrets to store encrypted.
#[derive(Debug, Clone)]
pub struct Planned {
    pub parsed: ParsedIntent,
    pub plan: StoredPlan,
    /// Every secret of the deployment, keyed `<component>.<name>`; never shown.
    pub secrets: BTreeMap<String, String>,
}

/// A completed deployment of an application: its intent, plan and secrets.
pub(crate) struct Deployment {
    pub intent: intents::Model,
    pub plan: StoredPlan,
    pub secrets: BTreeMap<String, String>,
}

/// Plans `command` for `project`. `intent_id` becomes the deployment's label when the
/// command starts a new deployment.
pub async fn plan(
    ctx: &CoreContext,
    project: &projects::Model,
    intent_id: Uuid,
    command: &str,
    options: &DeployOptions,
) -> CoreResult<Planned> {
    let command = command.trim();
    if command.is_empty() {
        return Err(CoreError::bad_input(
            "input.command",
            "say what to do, e.g. \"install redis\"",
        ));
    }
    if command.chars().count() > MAX_COMMAND_LEN {
        return Err(CoreError::bad_input(
            "input.command",
            format!("must be at most {MAX_COMMAND_LEN} characters"),
        ));
    }
    let catalogue = store::catalogue_for(ctx, project.id).await?;
    let described: Vec<(String, String)> = catalogue
        .iter()
        .map(|bp| (bp.name.clone(), bp.description.clone()))
        .collect();
    let llm = LlmParser::from_config(&ctx.config);
    let (mut parsed, parsed_by) = parse_intent(llm.as_ref(), command, &described)
        .await
        .map_err(parse_error)?;
    apply_options(&mut parsed, options)?;
    let platform = parsed.platform.unwrap_or(ctx.config.deploy_platform);
    parsed.platform = Some(platform);
    let namespace = parsed
        .namespace
        .clone()
        .unwrap_or_else(|| "default".to_owned());
    parsed.namespace = Some(namespace.clone());

    let previous =
        current_deployment(ctx, project.id, &parsed.application, &namespace, platform).await?;
    let needs_previous = !matches!(parsed.action, IntentAction::Install);
    if needs_previous && previous.is_none() {
        return Err(CoreError::bad_input(
            "input.command",
            format!(
                "{} is not deployed in namespace {namespace} on {platform}; install it first",
                parsed.application
            ),
        ));
    }
    let params = params_by_blueprint(options.params.as_ref()).map_err(|_| params_shape_error())?;
    let mut request = match (&previous, parsed.action) {
        (Some(prev), action) if action != IntentAction::Install => prev.plan.request.clone(),
        _ => {
            let mut request = RenderRequest::new(&[parsed.application.as_str()], platform);
            request.namespace = namespace.clone();
            request.project = project_label(&project.slug);
            request.intent = previous
                .as_ref()
                .map_or_else(|| intent_id.to_string(), |p| p.plan.request.intent.clone());
            request
        }
    };
    for (blueprint, values) in params {
        request.params.entry(blueprint).or_default().extend(values);
    }
    if parsed.features.tls {
        request.features.tls = true;
    }
    if parsed.features.ingress {
        request.features.ingress = true;
    }
    if parsed.domain.is_some() {
        request.domain = parsed.domain.clone();
    }
    if parsed.replicas.is_some() {
        request.replicas = parsed.replicas;
    }
    if let Some(version) = &parsed.version {
        set_version(&catalogue, &mut request, &parsed.application, version)?;
    }
    request.secrets = previous
        .as_ref()
        .map(|p| p.secrets.clone())
        .unwrap_or_default();

    let rendered = render(&catalogue, &request).map_err(|e| prefixed(render_error(e)))?;
    let preview = preview_of(&rendered);
    let components = rendered
        .components
        .iter()
        .zip(preview.components)
        .map(|(component, shown)| PlannedComponent {
            name: component.name.clone(),
            platform: component.platform,
            manifests: shown.manifests,
            objects: component.objects.clone(),
        })
        .collect();
    let secrets = rendered.secrets.clone();
    request.secrets = BTreeMap::new();
    let remove_volumes = options.remove_volumes.unwrap_or(false);
    Ok(Planned {
        parsed,
        plan: StoredPlan {
            parsed_by,
            request,
            components,
            compose: preview.compose,
            warnings: preview.warnings,
            remove_volumes,
            previous_intent: previous.map(|p| p.intent.id),
        },
        secrets,
    })
}

fn parse_error(failure: ParseFailure) -> CoreError {
    let mut details: Vec<InputProblem> = Vec::new();
    for part in &failure.understood {
        details.push(problem(format!("understood: {part}")));
    }
    for words in &failure.not_understood {
        details.push(problem(format!("not understood: {words}")));
    }
    if !failure.suggestions.is_empty() {
        details.push(problem(format!(
            "closest blueprints: {}",
            failure.suggestions.join(", ")
        )));
    }
    CoreError::Invalid {
        field: "input.command".into(),
        message: failure.message,
        details,
    }
}

fn problem(message: String) -> InputProblem {
    InputProblem {
        field: "command".into(),
        line: None,
        column: None,
        message,
    }
}

fn params_shape_error() -> CoreError {
    CoreError::bad_input(
        "input.options.params",
        "expected an object of objects: { \"<blueprint>\": { \"<parameter>\": value } }",
    )
}

/// Render errors name `params`, `platform`, `namespace` or `name`; on `deploy` those are
/// options (or the command, for the application itself).
fn prefixed(err: CoreError) -> CoreError {
    match err {
        CoreError::BadInput { field, message } => {
            let field = match field.as_str() {
                "name" => "input.command".to_owned(),
                other => format!("input.options.{other}"),
            };
            CoreError::BadInput { field, message }
        }
        other => other,
    }
}

fn apply_options(parsed: &mut ParsedIntent, options: &DeployOptions) -> CoreResult<()> {
    if let Some(platform) = options.platform {
        parsed.platform = Some(platform);
    }
    if let Some(namespace) = &options.namespace {
        if !is_dns_label(namespace) {
            return Err(CoreError::bad_input(
                "input.options.namespace",
                "must be a DNS label: 1-63 lowercase letters, digits or '-', starting and ending with a letter or digit",
            ));
        }
        parsed.namespace = Some(namespace.clone());
    }
    if let Some(domain) = &options.domain {
        if !is_host_name(domain) {
            return Err(CoreError::bad_input(
                "input.options.domain",
                "must be a host name such as auth.example.com",
            ));
        }
        parsed.domain = Some(domain.to_ascii_lowercase());
    }
    if let Some(replicas) = options.replicas {
        if replicas > MAX_REPLICAS {
            return Err(CoreError::bad_input(
                "input.options.replicas",
                format!("must be between 0 and {MAX_REPLICAS}"),
            ));
        }
        parsed.replicas = Some(replicas);
    }
    if let Some(tls) = options.tls {
        parsed.features.tls = tls;
    }
    if parsed.action == IntentAction::Scale && parsed.replicas.is_none() {
        return Err(CoreError::bad_input(
            "input.command",
            "scale needs a replica count, e.g. \"scale grafana to 3\"",
        ));
    }
    Ok(())
}

fn is_host_name(text: &str) -> bool {
    text.len() <= 253
        && text.contains('.')
        && text
            .split('.')
            .all(|label| is_dns_label(&label.to_ascii_lowercase()))
}

/// `update … to version V`: the root's image with its tag replaced, unless the caller set an
/// image parameter.
fn set_version(
    catalogue: &Catalogue,
    request: &mut RenderRequest,
    application: &str,
    version: &str,
) -> CoreResult<()> {
    let params = request.params.entry(application.to_owned()).or_default();
    let base = match params.get("image").and_then(Value::as_str) {
        Some(image) => image.to_owned(),
        None => catalogue
            .get(application)
            .map(|bp| bp.defaults.image.clone())
            .ok_or_else(|| CoreError::bad_input("input.command", "unknown application"))?,
    };
    let repository = match base.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => repo.to_owned(),
        _ => base.clone(),
    };
    params.insert("image".into(), json!(format!("{repository}:{version}")));
    Ok(())
}

/// The completed deployment of `application` in `namespace` on `platform`, if it is still
/// deployed: the newest `COMPLETED` intent for it, unless that one removed it.
pub(crate) async fn current_deployment(
    ctx: &CoreContext,
    project_id: Uuid,
    application: &str,
    namespace: &str,
    platform: Platform,
) -> CoreResult<Option<Deployment>> {
    let candidates = intents::Entity::find()
        .filter(intents::Column::ProjectId.eq(project_id))
        .filter(intents::Column::Application.eq(application))
        .filter(intents::Column::Status.eq(IntentStatus::Completed))
        .filter(intents::Column::DryRun.eq(false))
        .order_by_desc(intents::Column::CreatedAt)
        .all(&ctx.db)
        .await?;
    for intent in candidates {
        let Some(plan) = stored_plan(&intent) else {
            continue;
        };
        if plan.request.namespace != namespace || plan.request.platform != platform {
            continue;
        }
        if intent.action.as_deref() == Some(IntentAction::Remove.as_str()) {
            return Ok(None);
        }
        let secrets = secrets_of(ctx, &intent)?;
        return Ok(Some(Deployment {
            intent,
            plan,
            secrets,
        }));
    }
    Ok(None)
}

/// The plan stored on `intent`, if it has one.
pub fn stored_plan(intent: &intents::Model) -> Option<StoredPlan> {
    intent
        .plan
        .as_ref()
        .and_then(|v| serde_json::from_value(v.clone()).ok())
}

/// The intent's secrets, decrypted.
pub(crate) fn secrets_of(
    ctx: &CoreContext,
    intent: &intents::Model,
) -> CoreResult<BTreeMap<String, String>> {
    let Some(stored) = &intent.secrets else {
        return Ok(BTreeMap::new());
    };
    Ok(crate::crypto::open_json(&ctx.config, stored)?)
}

/// `secrets` encrypted for storage on an intent; `None` when there are none.
pub(crate) fn seal_secrets(
    ctx: &CoreContext,
    secrets: &BTreeMap<String, String>,
) -> CoreResult<Option<String>> {
    if secrets.is_empty() {
        return Ok(None);
    }
    Ok(Some(crate::crypto::seal_json(&ctx.config, secrets)?))
}

/// The intent's stored plan rendered again with its secrets (the render is deterministic).
pub async fn render_stored(
    ctx: &CoreContext,
    intent: &intents::Model,
) -> CoreResult<crate::blueprint::RenderedPlan> {
    let plan =
        stored_plan(intent).ok_or_else(|| CoreError::Conflict("the intent has no plan".into()))?;
    let catalogue = store::catalogue_for(ctx, intent.project_id).await?;
    let mut request = plan.request;
    request.secrets = secrets_of(ctx, intent)?;
    render(&catalogue, &request)
        .map_err(|e| CoreError::Conflict(format!("the plan no longer renders: {e}")))
}
