//! What follows the end of an execution that carries out something else: the intent it
//! deploys ends with it, and prompt versions its sync left pending are settled. Runs after
//! the end is committed, from the process that committed it (every execution change is
//! published through [`crate::events::publish_execution_row`], which calls [`execution_changed`]).

use orchestrator_entity::executions;

use crate::context::CoreContext;

/// Hands an ended execution to the domain it belongs to; changes that are not an end cost
/// nothing.
pub async fn execution_changed(ctx: &CoreContext, execution: &executions::Model) {
    if !execution.status.is_terminal() {
        return;
    }
    if execution.intent_id.is_some() {
        crate::intent::service::follow_execution(ctx, execution).await;
    }
    if crate::backends::sync::is_sync_pipeline(&execution.pipeline) {
        crate::backends::sync::follow_execution(ctx, execution).await;
    }
}
