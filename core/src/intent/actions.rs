//! The stage actions of the intent pipelines, run by worker processes. Each loads the intent
//! its execution carries out, renders the stored plan again with the intent's secrets (the
//! render is deterministic), and hands one component to the platform's deployer, writing what
//! the deployer reports to the execution's log as it goes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use chrono::Utc;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::OnceCell;
use uuid::Uuid;

use orchestrator_entity::{IntentStatus, executions, intents, logs, resources};

use super::pipeline::actions as names;
use super::plan::{StoredPlan, secrets_of, stored_plan};
use super::service::set_status;
use crate::blueprint::{Platform, RenderedPlan, render, store};
use crate::context::CoreContext;
use crate::deploy::docker::DockerDeployer;
use crate::deploy::kubernetes::KubernetesDeployer;
use crate::deploy::{ApplyRequest, DeployError, Deployer, RecordedObject};
use crate::engine::action::{ActionContext, ActionError, ActionOutput, StageAction};

/// The deployers of one process, connected on first use.
#[derive(Default)]
pub struct Deployers {
    docker: OnceCell<Arc<dyn Deployer>>,
    kubernetes: OnceCell<Arc<dyn Deployer>>,
}

impl std::fmt::Debug for Deployers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deployers").finish_non_exhaustive()
    }
}

impl Deployers {
    /// Deployers that use `deployer` for its platform instead of connecting one.
    pub fn with(self, deployer: Arc<dyn Deployer>) -> Deployers {
        let cell = OnceCell::new_with(Some(deployer.clone()));
        match deployer.platform() {
            Platform::Docker => Deployers {
                docker: cell,
                ..self
            },
            Platform::Kubernetes => Deployers {
                kubernetes: cell,
                ..self
            },
        }
    }

    async fn get(
        &self,
        platform: Platform,
        core: &CoreContext,
    ) -> Result<Arc<dyn Deployer>, ActionError> {
        let connected = match platform {
            Platform::Docker => {
                self.docker
                    .get_or_try_init(|| async {
                        DockerDeployer::connect().map(|d| Arc::new(d) as Arc<dyn Deployer>)
                    })
                    .await
            }
            Platform::Kubernetes => {
                self.kubernetes
                    .get_or_try_init(|| async {
                        KubernetesDeployer::from_config(
                            core.config.kubeconfig.as_deref(),
                            core.config.kube_context.as_deref(),
                        )
                        .await
                        .map(|d| Arc::new(d) as Arc<dyn Deployer>)
                    })
                    .await
            }
        };
        connected
            .cloned()
            .map_err(|e| ActionError::Retryable(format!("cannot reach {platform}: {e}")))
    }
}

/// The intent actions, sharing one set of deployers.
pub fn intent_actions() -> Vec<Arc<dyn StageAction>> {
    intent_actions_with(Arc::new(Deployers::default()))
}

/// The intent actions over the given deployers.
pub fn intent_actions_with(deployers: Arc<Deployers>) -> Vec<Arc<dyn StageAction>> {
    vec![
        Arc::new(ParseStage),
        Arc::new(PlanStage),
        Arc::new(ApplyStage(deployers.clone())),
        Arc::new(RemoveStage(deployers.clone())),
        Arc::new(RestartStage(deployers)),
        Arc::new(VerifyStage),
    ]
}

fn internal(err: impl std::fmt::Display) -> ActionError {
    ActionError::Retryable(err.to_string())
}

/// The intent an action works for, with its plan and secrets.
struct Loaded {
    intent: intents::Model,
    plan: StoredPlan,
    secrets: BTreeMap<String, String>,
}

async fn load_intent(core: &CoreContext, intent_id: Uuid) -> Result<Loaded, ActionError> {
    let intent = intents::Entity::find_by_id(intent_id)
        .one(&core.db)
        .await
        .map_err(internal)?
        .ok_or_else(|| ActionError::Permanent(format!("intent {intent_id} no longer exists")))?;
    let plan = stored_plan(&intent)
        .ok_or_else(|| ActionError::Permanent("the intent has no plan".into()))?;
    let secrets = secrets_of(core, &intent).map_err(internal)?;
    Ok(Loaded {
        intent,
        plan,
        secrets,
    })
}

async fn load(cx: &ActionContext) -> Result<Loaded, ActionError> {
    let execution = executions::Entity::find_by_id(cx.execution_id)
        .one(&cx.core.db)
        .await
        .map_err(internal)?
        .ok_or_else(|| ActionError::Permanent("the execution no longer exists".into()))?;
    let intent_id = execution
        .intent_id
        .ok_or_else(|| ActionError::Permanent("this execution carries out no intent".into()))?;
    // The worker's `stage` span leaves the field for the action to fill in.
    tracing::Span::current().record("intent_id", tracing::field::display(intent_id));
    load_intent(&cx.core, intent_id).await
}

/// Renders the stored plan again with the intent's secrets.
async fn rerender(core: &CoreContext, loaded: &Loaded) -> Result<RenderedPlan, ActionError> {
    let catalogue = store::catalogue_for(core, loaded.intent.project_id)
        .await
        .map_err(internal)?;
    let mut request = loaded.plan.request.clone();
    request.secrets = loaded.secrets.clone();
    render(&catalogue, &request).map_err(|e| {
        ActionError::Permanent(format!(
            "the plan no longer renders (blueprints changed?): {e}"
        ))
    })
}

/// Appends a log line about the stage and publishes it.
async fn log(cx: &ActionContext, level: &str, message: &str) {
    let row = logs::ActiveModel {
        project_id: Set(cx.project_id),
        execution_id: Set(Some(cx.execution_id)),
        stage_id: Set(Some(cx.stage_id)),
        intent_id: Set(None),
        level: Set(level.to_owned()),
        message: Set(message.to_owned()),
        created_at: Set(Utc::now()),
        ..Default::default()
    };
    match row.insert(&cx.core.db).await {
        Ok(row) => crate::events::publish_log(&cx.core, &row).await,
        Err(err) => tracing::warn!(error = %err, "cannot write a deployment log line"),
    }
}

async fn enter(cx: &ActionContext, intent_id: Uuid, status: IntentStatus) {
    if let Err(err) = set_status(&cx.core, intent_id, cx.execution_id, status, None).await {
        tracing::warn!(%intent_id, error = %err, "cannot record the intent's progress");
    }
}

/// Runs `work` with a progress channel whose lines go to the log as they arrive.
async fn with_progress<T>(
    cx: &ActionContext,
    work: impl AsyncFnOnce(&crate::deploy::Progress) -> T,
) -> T {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let writer = {
        let cx = cx.clone();
        tokio::spawn(async move {
            while let Some(line) = rx.recv().await {
                log(&cx, "INFO", &line).await;
            }
        })
    };
    let result = work(&tx).await;
    drop(tx);
    let _ = writer.await;
    result
}

async fn deploy_failed(cx: &ActionContext, err: DeployError) -> ActionError {
    log(cx, "ERROR", &err.message).await;
    for line in &err.details {
        log(cx, "ERROR", &format!("  | {line}")).await;
    }
    if err.retryable {
        ActionError::Retryable(err.message)
    } else {
        ActionError::Permanent(err.message)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ComponentInput {
    component: String,
    #[serde(default)]
    from_intent: Option<Uuid>,
    #[serde(default)]
    remove_volumes: bool,
    #[serde(default)]
    own_only: bool,
}

fn component_input(input: Value) -> Result<ComponentInput, ActionError> {
    serde_json::from_value(input)
        .map_err(|e| ActionError::Permanent(format!("bad stage input: {e}")))
}

fn done(output: Value) -> Result<ActionOutput, ActionError> {
    Ok(ActionOutput {
        output,
        ..Default::default()
    })
}

struct ParseStage;

#[async_trait]
impl StageAction for ParseStage {
    fn name(&self) -> &'static str {
        names::PARSE
    }
    async fn run(&self, cx: &ActionContext, _input: Value) -> Result<ActionOutput, ActionError> {
        let loaded = load(cx).await?;
        enter(cx, loaded.intent.id, IntentStatus::Parsing).await;
        let request = &loaded.plan.request;
        let by = serde_json::to_value(loaded.plan.parsed_by).unwrap_or(json!("rules"));
        log(
            cx,
            "INFO",
            &format!(
                "understood {:?} ({} parser): {} {} in namespace {} on {}",
                loaded.intent.command,
                by.as_str().unwrap_or("rules"),
                loaded.intent.action.as_deref().unwrap_or("install"),
                loaded.intent.application.as_deref().unwrap_or("?"),
                request.namespace,
                request.platform,
            ),
        )
        .await;
        done(json!({ "intentId": loaded.intent.id }))
    }
}

struct PlanStage;

#[async_trait]
impl StageAction for PlanStage {
    fn name(&self) -> &'static str {
        names::PLAN
    }
    async fn run(&self, cx: &ActionContext, input: Value) -> Result<ActionOutput, ActionError> {
        let loaded = load(cx).await?;
        enter(cx, loaded.intent.id, IntentStatus::Generating).await;
        let rendered = rerender(&cx.core, &loaded).await?;
        let order: Vec<&str> = rendered
            .components
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        let objects: usize = rendered.components.iter().map(|c| c.objects.len()).sum();
        log(
            cx,
            "INFO",
            &format!(
                "plan: {} ({} component(s), {objects} object(s))",
                order.join(" → "),
                order.len()
            ),
        )
        .await;
        for warning in &rendered.warnings {
            log(cx, "WARN", warning).await;
        }
        done(input)
    }
}

struct ApplyStage(Arc<Deployers>);

#[async_trait]
impl StageAction for ApplyStage {
    fn stops_on_cancel(&self) -> bool {
        false
    }
    fn name(&self) -> &'static str {
        names::APPLY
    }
    async fn run(&self, cx: &ActionContext, input: Value) -> Result<ActionOutput, ActionError> {
        let args = component_input(input.clone())?;
        let own = load(cx).await?;
        enter(cx, own.intent.id, IntentStatus::Deploying).await;
        // A rollback restores an earlier deployment: apply that one's plan.
        let source = match args.from_intent {
            Some(previous) => load_intent(&cx.core, previous).await?,
            None => own,
        };
        let rendered = rerender(&cx.core, &source).await?;
        let platform = source.plan.request.platform;
        let deployer = self.0.get(platform, &cx.core).await?;
        let started = Instant::now();
        let applied = with_progress(cx, async |progress| {
            deployer
                .apply(
                    ApplyRequest {
                        plan: &rendered,
                        component: &args.component,
                        secrets: &source.secrets,
                        namespace: &source.plan.request.namespace,
                        ready_timeout: cx.core.config.deploy_ready_timeout,
                    },
                    progress,
                )
                .await
        })
        .await;
        let report = match applied {
            Ok(report) => report,
            Err(err) => return Err(deploy_failed(cx, err).await),
        };
        record(
            cx,
            source.intent.id,
            &args.component,
            platform,
            &source.plan.request.namespace,
            &report,
        )
        .await
        .map_err(internal)?;
        let message = if report.changed.is_empty() {
            format!("{} unchanged: already as planned", args.component)
        } else {
            format!(
                "{} deployed: {} object(s) applied in {:.1} s",
                args.component,
                report.changed.len(),
                started.elapsed().as_secs_f64()
            )
        };
        log(cx, "INFO", &message).await;
        done(json!({
            "component": args.component,
            "changed": report.changed.len(),
            "objects": report.objects.len(),
        }))
    }
}

/// The live (not deleted) resource rows of the project for one object, whoever owns them.
async fn live_rows(
    cx: &ActionContext,
    platform: Platform,
    kind: &str,
    name: &str,
    namespace: &str,
) -> Result<Vec<resources::Model>, sea_orm::DbErr> {
    resources::Entity::find()
        .filter(resources::Column::ProjectId.eq(cx.project_id))
        .filter(resources::Column::Platform.eq(orchestrator_entity::Platform::from(platform)))
        .filter(resources::Column::Kind.eq(kind))
        .filter(resources::Column::Name.eq(name))
        .filter(resources::Column::Namespace.eq(namespace))
        .filter(resources::Column::DeletedAt.is_null())
        .all(&cx.core.db)
        .await
}

/// Records what an apply left in place as the intent's resources: objects it created or
/// changed, and objects nobody has recorded yet (left by an earlier attempt that failed
/// before it could record them). One live row per object and intent, its hash kept current.
async fn record(
    cx: &ActionContext,
    intent_id: Uuid,
    component: &str,
    platform: Platform,
    namespace: &str,
    report: &crate::deploy::ApplyReport,
) -> Result<(), sea_orm::DbErr> {
    for object in &report.objects {
        let namespace = object
            .namespace
            .clone()
            .unwrap_or_else(|| namespace.to_owned());
        let live = live_rows(cx, platform, &object.kind, &object.name, &namespace).await?;
        let changed = report
            .changed
            .iter()
            .any(|c| c.kind == object.kind && c.name == object.name);
        match live.iter().find(|row| row.intent_id == intent_id) {
            Some(row) => {
                let mut row: resources::ActiveModel = row.clone().into();
                row.spec_hash = Set(object.spec_hash.clone());
                row.update(&cx.core.db).await?;
            }
            None if changed || live.is_empty() => {
                resources::ActiveModel {
                    id: Set(Uuid::new_v4()),
                    project_id: Set(cx.project_id),
                    intent_id: Set(intent_id),
                    component: Set(component.to_owned()),
                    platform: Set(orchestrator_entity::Platform::from(platform)),
                    kind: Set(object.kind.clone()),
                    name: Set(object.name.clone()),
                    namespace: Set(Some(namespace)),
                    spec_hash: Set(object.spec_hash.clone()),
                    created_at: Set(Utc::now()),
                    deleted_at: Set(None),
                }
                .insert(&cx.core.db)
                .await?;
            }
            None => {}
        }
    }
    Ok(())
}

struct RemoveStage(Arc<Deployers>);

#[async_trait]
impl StageAction for RemoveStage {
    fn stops_on_cancel(&self) -> bool {
        false
    }
    fn name(&self) -> &'static str {
        names::REMOVE
    }
    async fn run(&self, cx: &ActionContext, input: Value) -> Result<ActionOutput, ActionError> {
        let args = component_input(input)?;
        let loaded = load(cx).await?;
        enter(cx, loaded.intent.id, IntentStatus::Deploying).await;
        let request = &loaded.plan.request;
        let mut query = resources::Entity::find()
            .filter(resources::Column::ProjectId.eq(cx.project_id))
            .filter(resources::Column::Component.eq(args.component.as_str()))
            .filter(
                resources::Column::Platform
                    .eq(orchestrator_entity::Platform::from(request.platform)),
            )
            .filter(resources::Column::DeletedAt.is_null());
        if args.own_only {
            query = query.filter(resources::Column::IntentId.eq(loaded.intent.id));
        } else {
            query = query.filter(resources::Column::Namespace.eq(request.namespace.as_str()));
        }
        let mut rows = query
            .order_by_desc(resources::Column::CreatedAt)
            .all(&cx.core.db)
            .await
            .map_err(internal)?;
        // Workloads before what they use: containers and Deployments go before networks,
        // volumes, Secrets and Services.
        rows.sort_by_key(|row| removal_rank(&row.kind));
        let mut objects: Vec<RecordedObject> = rows
            .iter()
            .map(|row| RecordedObject {
                kind: row.kind.clone(),
                name: row.name.clone(),
                namespace: row.namespace.clone(),
            })
            .collect();
        if args.own_only {
            // An attempt that failed half-way may have created objects it never recorded:
            // the planned objects no deployment has recorded are this intent's to remove.
            let rendered = rerender(&cx.core, &loaded).await?;
            if let Some(component) = rendered.component(&args.component) {
                for object in &component.objects {
                    let namespace = object
                        .namespace
                        .clone()
                        .unwrap_or_else(|| request.namespace.clone());
                    let live =
                        live_rows(cx, request.platform, &object.kind, &object.name, &namespace)
                            .await
                            .map_err(internal)?;
                    if live.is_empty() {
                        objects.push(RecordedObject {
                            kind: object.kind.clone(),
                            name: object.name.clone(),
                            namespace: Some(namespace),
                        });
                    }
                }
            }
            objects.sort_by_key(|o| removal_rank(&o.kind));
        }
        if objects.is_empty() {
            log(
                cx,
                "INFO",
                &format!("{}: nothing recorded to remove", args.component),
            )
            .await;
            return done(json!({ "component": args.component, "removed": 0 }));
        }
        let deployer = self.0.get(request.platform, &cx.core).await?;
        let remove_volumes = args.remove_volumes || loaded.plan.remove_volumes;
        let removed = with_progress(cx, async |progress| {
            deployer.remove(&objects, remove_volumes, progress).await
        })
        .await;
        if let Err(err) = removed {
            return Err(deploy_failed(cx, err).await);
        }
        let now = Utc::now();
        let mut count = 0;
        for row in rows {
            if !remove_volumes && matches!(row.kind.as_str(), "Volume" | "PersistentVolumeClaim") {
                continue;
            }
            let mut row: resources::ActiveModel = row.into();
            row.deleted_at = Set(Some(now));
            row.update(&cx.core.db).await.map_err(internal)?;
            count += 1;
        }
        log(
            cx,
            "INFO",
            &format!("{} removed ({count} object(s))", args.component),
        )
        .await;
        done(json!({ "component": args.component, "removed": count }))
    }
}

fn removal_rank(kind: &str) -> u8 {
    match kind {
        "Container" | "Deployment" | "StatefulSet" | "Ingress" | "Certificate" => 0,
        "Service" | "ConfigMap" | "Secret" => 1,
        "Network" => 2,
        _ => 3,
    }
}

struct RestartStage(Arc<Deployers>);

#[async_trait]
impl StageAction for RestartStage {
    fn stops_on_cancel(&self) -> bool {
        false
    }
    fn name(&self) -> &'static str {
        names::RESTART
    }
    async fn run(&self, cx: &ActionContext, input: Value) -> Result<ActionOutput, ActionError> {
        let args = component_input(input)?;
        let loaded = load(cx).await?;
        enter(cx, loaded.intent.id, IntentStatus::Deploying).await;
        let rendered = rerender(&cx.core, &loaded).await?;
        let component = rendered.component(&args.component).ok_or_else(|| {
            ActionError::Permanent(format!("{} is not part of the plan", args.component))
        })?;
        let workloads: Vec<RecordedObject> = component
            .objects
            .iter()
            .filter(|o| matches!(o.kind.as_str(), "Container" | "Deployment" | "StatefulSet"))
            .map(|o| RecordedObject {
                kind: o.kind.clone(),
                name: o.name.clone(),
                namespace: o.namespace.clone(),
            })
            .collect();
        let request = &loaded.plan.request;
        let deployer = self.0.get(request.platform, &cx.core).await?;
        let started = Instant::now();
        let result = with_progress(cx, async |progress| {
            deployer.remove(&workloads, false, progress).await?;
            deployer
                .apply(
                    ApplyRequest {
                        plan: &rendered,
                        component: &args.component,
                        secrets: &loaded.secrets,
                        namespace: &request.namespace,
                        ready_timeout: cx.core.config.deploy_ready_timeout,
                    },
                    progress,
                )
                .await
        })
        .await;
        if let Err(err) = result {
            return Err(deploy_failed(cx, err).await);
        }
        log(
            cx,
            "INFO",
            &format!(
                "{} restarted; ready after {:.1} s",
                args.component,
                started.elapsed().as_secs_f64()
            ),
        )
        .await;
        done(json!({ "component": args.component }))
    }
}

struct VerifyStage;

#[async_trait]
impl StageAction for VerifyStage {
    fn name(&self) -> &'static str {
        names::VERIFY
    }
    async fn run(&self, cx: &ActionContext, input: Value) -> Result<ActionOutput, ActionError> {
        let loaded = load(cx).await?;
        let rollback = input.get("rollback").and_then(Value::as_bool) == Some(true);
        let live = resources::Entity::find()
            .filter(resources::Column::IntentId.eq(loaded.intent.id))
            .filter(resources::Column::DeletedAt.is_null())
            .all(&cx.core.db)
            .await
            .map_err(internal)?
            .len();
        let names = loaded.plan.component_names().join(", ");
        let request = &loaded.plan.request;
        let action = loaded.intent.action.as_deref().unwrap_or("install");
        let application = loaded.intent.application.as_deref().unwrap_or("?");
        let message = if rollback {
            format!("rolled back {action} {application}; {live} object(s) of this intent remain")
        } else if action == "remove" {
            format!(
                "remove {application} done: {names} gone from namespace {} on {}",
                request.namespace, request.platform
            )
        } else {
            format!(
                "{action} {application} done: {names} running in namespace {} on {} ({live} object(s) recorded for this intent)",
                request.namespace, request.platform
            )
        };
        log(cx, "INFO", &message).await;
        done(json!({ "intentId": loaded.intent.id, "liveObjects": live }))
    }
}
