//! Watching backends: every `backend_check_interval`, each backend with a service URL is
//! asked `GET /health` (→ `ACTIVE` / `UNHEALTHY`) and, when healthy, `GET /api/prompts`,
//! whose values are compared with the last `APPLIED` version (→ `DRIFTED` with the per-field
//! difference in `drift`, back to `ACTIVE` once they match again).
//!
//! Worker processes share the work: a process checks a backend only after claiming the round
//! with a conditional update of `last_checked_at`, so each backend is checked once per
//! interval in all. Backends being provisioned, deleted, removed or that failed are left alone.

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Map, Value};
use uuid::Uuid;

use orchestrator_entity::{BackendStatus, PromptVersionStatus, backends, prompt_versions};

use super::client::HealthAnswer;
use super::prompts::{ChangeKind, FieldChange, diff};
use super::service::client_for;
use crate::context::CoreContext;
use crate::error::CoreResult;

/// Backend checks running at once in one process.
const PARALLEL_CHECKS: usize = 8;

/// The statuses the monitor moves between; backends in any other status are not checked.
pub const MONITORED: [BackendStatus; 3] = [
    BackendStatus::Active,
    BackendStatus::Unhealthy,
    BackendStatus::Drifted,
];

/// What one check found.
#[derive(Debug, Clone, PartialEq)]
pub enum Finding {
    /// `GET /health` or `GET /api/prompts` failed, with why.
    Unhealthy(String),
    /// Healthy, and the live values differ from `version`.
    Drifted {
        version: i32,
        changes: Vec<FieldChange>,
    },
    /// Healthy, and the live values are those of `version`.
    InStep { version: i32 },
    /// Healthy; the values were not compared (no applied version yet, or a sync in flight).
    Healthy,
}

/// Checks every monitored backend whose last check is older than `interval`; returns how
/// many this process checked.
pub async fn check_due(ctx: &CoreContext, interval: Duration) -> anyhow::Result<usize> {
    let stale_before = Utc::now() - chrono::Duration::from_std(interval)?;
    let due = backends::Entity::find()
        .filter(backends::Column::Status.is_in(MONITORED))
        .filter(backends::Column::Url.is_not_null())
        .filter(
            backends::Column::LastCheckedAt
                .is_null()
                .or(backends::Column::LastCheckedAt.lt(stale_before)),
        )
        .all(&ctx.db)
        .await?;
    let checked = futures::stream::iter(due)
        .map(|backend| async move {
            match claim(ctx, backend.id, stale_before).await {
                Ok(false) => false,
                Ok(true) => {
                    let finding = check(ctx, &backend).await;
                    if let Err(err) = record(ctx, &backend, &finding).await {
                        tracing::warn!(backend_id = %backend.id, error = %err, "cannot record a backend check");
                    }
                    true
                }
                Err(err) => {
                    tracing::warn!(backend_id = %backend.id, error = %err, "cannot claim a backend check");
                    false
                }
            }
        })
        .buffer_unordered(PARALLEL_CHECKS)
        .filter(|checked| std::future::ready(*checked))
        .count()
        .await;
    Ok(checked)
}

/// Claims this round's check of a backend; false when another process got there first.
async fn claim(ctx: &CoreContext, id: Uuid, stale_before: DateTime<Utc>) -> CoreResult<bool> {
    let claimed = backends::Entity::update_many()
        .col_expr(
            backends::Column::LastCheckedAt,
            Expr::value(Some(Utc::now())),
        )
        .filter(backends::Column::Id.eq(id))
        .filter(
            backends::Column::LastCheckedAt
                .is_null()
                .or(backends::Column::LastCheckedAt.lt(stale_before)),
        )
        .exec(&ctx.db)
        .await?;
    Ok(claimed.rows_affected > 0)
}

/// Why a health answer is not healthy, if it is not.
pub fn health_problem(answer: &HealthAnswer) -> Option<String> {
    (answer.status != "healthy").then(|| format!("GET /health answered status {:?}", answer.status))
}

/// The fields whose live value differs from the applied one. Numbers compare by value, so a
/// service that writes `1` back as `1.0` has not drifted.
pub fn drift_between(applied: &Value, live: &Map<String, Value>) -> Vec<FieldChange> {
    diff(applied, &Value::Object(live.clone()))
        .into_iter()
        .filter(|change| {
            let same_number = change.kind == ChangeKind::Changed
                && matches!(
                    (
                        change.before.as_ref().and_then(Value::as_f64),
                        change.after.as_ref().and_then(Value::as_f64),
                    ),
                    (Some(a), Some(b)) if a == b
                );
            !same_number
        })
        .collect()
}

/// Asks the backend and compares; never fails (a failure is what it finds).
#[tracing::instrument(skip_all, fields(backend_id = %backend.id))]
pub async fn check(ctx: &CoreContext, backend: &backends::Model) -> Finding {
    match look(ctx, backend).await {
        Ok(finding) => finding,
        Err(why) => Finding::Unhealthy(why),
    }
}

async fn look(ctx: &CoreContext, backend: &backends::Model) -> Result<Finding, String> {
    let client = client_for(ctx, backend).await.map_err(|e| e.to_string())?;
    let health = client.health().await.map_err(|e| e.to_string())?;
    if let Some(problem) = health_problem(&health) {
        return Err(problem);
    }
    let observed_at = Utc::now();
    let live = client.prompts().await.map_err(|e| e.to_string())?;
    let internal = |e: sea_orm::DbErr| format!("cannot read the backend's prompt versions: {e}");
    let pending = prompt_versions::Entity::find()
        .filter(prompt_versions::Column::BackendId.eq(backend.id))
        .filter(prompt_versions::Column::Status.eq(PromptVersionStatus::Pending))
        .count(&ctx.db)
        .await
        .map_err(internal)?;
    let applied = super::prompt_service::last_applied(ctx, backend.id)
        .await
        .map_err(|e| e.to_string())?;
    let Some(applied) = applied else {
        return Ok(Finding::Healthy);
    };
    // A version applied after the values were read may not be in them yet.
    if pending > 0 || applied.applied_at.is_some_and(|at| at >= observed_at) {
        return Ok(Finding::Healthy);
    }
    let changes = drift_between(&applied.prompts, &live);
    Ok(if changes.is_empty() {
        Finding::InStep {
            version: applied.version,
        }
    } else {
        Finding::Drifted {
            version: applied.version,
            changes,
        }
    })
}

/// The status, message and drift a finding leads to, or `None` when nothing changes.
pub fn next_state(
    backend: &backends::Model,
    finding: &Finding,
) -> Option<(BackendStatus, String, Option<Value>)> {
    let was = backend.status;
    match finding {
        Finding::Unhealthy(_) if was == BackendStatus::Unhealthy => None,
        Finding::Unhealthy(why) => Some((
            BackendStatus::Unhealthy,
            format!("unhealthy: {why}"),
            backend.drift.clone(),
        )),
        Finding::Drifted { version, changes } => {
            let drift = serde_json::to_value(changes).ok();
            if was == BackendStatus::Drifted && backend.drift == drift {
                return None;
            }
            let fields: Vec<&str> = changes.iter().map(|c| c.field.as_str()).collect();
            Some((
                BackendStatus::Drifted,
                format!(
                    "prompts on the service differ from version {version} in {} field(s): {}; update, roll back or import the live values",
                    fields.len(),
                    fields.join(", ")
                ),
                drift,
            ))
        }
        Finding::InStep { .. } if was == BackendStatus::Active && backend.drift.is_none() => None,
        Finding::InStep { version } => Some((
            BackendStatus::Active,
            if was == BackendStatus::Drifted {
                format!("prompts match version {version} again")
            } else {
                "healthy again".to_owned()
            },
            None,
        )),
        Finding::Healthy if was != BackendStatus::Unhealthy => None,
        Finding::Healthy => Some((
            if backend.drift.is_some() {
                BackendStatus::Drifted
            } else {
                BackendStatus::Active
            },
            "healthy again".to_owned(),
            backend.drift.clone(),
        )),
    }
}

/// Writes what a check found, when it changes the backend, and publishes it.
async fn record(ctx: &CoreContext, backend: &backends::Model, finding: &Finding) -> CoreResult<()> {
    if let Finding::Unhealthy(why) = finding {
        tracing::info!(backend = %backend.name, reason = %why, "backend is unhealthy");
    }
    let Some((status, message, drift)) = next_state(backend, finding) else {
        return Ok(());
    };
    set_state(ctx, backend.id, status, message, drift).await
}

/// Moves a monitored backend to `status` with `message` and `drift`, then publishes it. A
/// backend that left the monitored statuses meanwhile (removed, deleting) is not touched.
async fn set_state(
    ctx: &CoreContext,
    id: Uuid,
    status: BackendStatus,
    message: String,
    drift: Option<Value>,
) -> CoreResult<()> {
    let changed = backends::Entity::update_many()
        .col_expr(backends::Column::Status, Expr::value(status))
        .col_expr(backends::Column::StatusMessage, Expr::value(Some(message)))
        .col_expr(backends::Column::Drift, Expr::value(drift))
        .col_expr(backends::Column::UpdatedAt, Expr::value(Utc::now()))
        .col_expr(
            backends::Column::Sequence,
            Expr::col(backends::Column::Sequence).add(1),
        )
        .filter(backends::Column::Id.eq(id))
        .filter(backends::Column::Status.is_in(MONITORED))
        .exec(&ctx.db)
        .await?
        .rows_affected
        > 0;
    if changed {
        crate::events::publish_backend(ctx, id).await;
    }
    Ok(())
}

/// After `version` was applied (pushed or imported): a `DRIFTED` backend is `ACTIVE` again
/// and any recorded drift is cleared. Other statuses are kept.
pub(crate) async fn clear_drift(ctx: &CoreContext, id: Uuid, version: i32) -> CoreResult<()> {
    let Some(backend) = backends::Entity::find_by_id(id).one(&ctx.db).await? else {
        return Ok(());
    };
    if backend.status != BackendStatus::Drifted && backend.drift.is_none() {
        return Ok(());
    }
    let (status, message) = match backend.status {
        BackendStatus::Drifted => (
            BackendStatus::Active,
            format!("prompt version {version} applied; drift cleared"),
        ),
        other => (
            other,
            backend
                .status_message
                .unwrap_or_else(|| format!("prompt version {version} applied")),
        ),
    };
    set_state(ctx, id, status, message, None).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn backend(status: BackendStatus, drift: Option<Value>) -> backends::Model {
        backends::Model {
            id: Uuid::new_v4(),
            project_id: Uuid::new_v4(),
            name: "b".into(),
            backend_type: "custom".into(),
            status,
            status_message: None,
            url: Some("http://127.0.0.1:1".into()),
            platform: None,
            configuration: json!({}),
            secrets: None,
            intent_id: None,
            drift,
            last_checked_at: None,
            prompt_schema: None,
            sequence: 1,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    #[test]
    fn drift_is_per_field_and_numbers_compare_by_value() {
        let applied = json!({"main_prompt": "a", "temperature": 1, "model": "small"});
        let live = json!({"main_prompt": "b", "temperature": 1.0, "model": "small", "x": true});
        let changes = drift_between(&applied, live.as_object().unwrap());
        let fields: Vec<(&str, ChangeKind)> =
            changes.iter().map(|c| (c.field.as_str(), c.kind)).collect();
        assert_eq!(
            fields,
            [
                ("main_prompt", ChangeKind::Changed),
                ("x", ChangeKind::Added)
            ]
        );
        assert!(drift_between(&applied, applied.as_object().unwrap()).is_empty());
    }

    #[test]
    fn health_answers_other_than_healthy_are_problems() {
        let answer = |status: &str| HealthAnswer {
            status: status.into(),
            backend_type: None,
            prompt_management: None,
        };
        assert_eq!(health_problem(&answer("healthy")), None);
        assert_eq!(
            health_problem(&answer("degraded")).unwrap(),
            "GET /health answered status \"degraded\""
        );
    }

    #[test]
    fn findings_move_the_status_only_when_it_changes() {
        use BackendStatus::*;
        let down = Finding::Unhealthy("GET /health: connection refused".into());
        let (status, message, _) = next_state(&backend(Active, None), &down).unwrap();
        assert_eq!(status, Unhealthy);
        assert!(message.contains("connection refused"), "{message}");
        assert_eq!(next_state(&backend(Unhealthy, None), &down), None);

        let changes = drift_between(&json!({"a": 1}), json!({"a": 2}).as_object().unwrap());
        let drifted = Finding::Drifted {
            version: 4,
            changes: changes.clone(),
        };
        let (status, message, drift) = next_state(&backend(Active, None), &drifted).unwrap();
        assert_eq!(status, Drifted);
        assert!(message.contains("version 4 in 1 field(s): a"), "{message}");
        assert_eq!(drift.as_ref().unwrap()[0]["field"], "a");
        assert_eq!(next_state(&backend(Drifted, drift.clone()), &drifted), None);

        let in_step = Finding::InStep { version: 5 };
        let (status, message, drift_after) =
            next_state(&backend(Drifted, drift.clone()), &in_step).unwrap();
        assert_eq!((status, drift_after), (Active, None));
        assert_eq!(message, "prompts match version 5 again");
        assert_eq!(next_state(&backend(Active, None), &in_step), None);
        let (status, message, _) = next_state(&backend(Unhealthy, None), &in_step).unwrap();
        assert_eq!((status, message.as_str()), (Active, "healthy again"));

        assert_eq!(
            next_state(&backend(Drifted, drift.clone()), &Finding::Healthy),
            None
        );
        let (status, _, kept) =
            next_state(&backend(Unhealthy, drift.clone()), &Finding::Healthy).unwrap();
        assert_eq!((status, kept), (Drifted, drift));
    }
}
