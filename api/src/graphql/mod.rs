//! The GraphQL schema: queries and mutations per feature, merged into one root each.

mod access;
mod audit_trail;
mod backends;
mod blueprints;
mod enums;
mod executions;
mod intents;
mod limits;
mod loaders;
mod metrics;
mod pipelines;
mod projects;
mod prompts;
mod scalars;
mod stages;
mod subscriptions;
mod system;
mod workers;

use async_graphql::dataloader::DataLoader;
use async_graphql::{MergedObject, Schema, SchemaBuilder};
use orchestrator_core::CoreContext;

pub use enums::*;

/// Every query field.
#[derive(MergedObject, Default)]
pub struct QueryRoot(
    system::SystemQuery,
    access::AccessQuery,
    projects::ProjectQuery,
    blueprints::BlueprintQuery,
    backends::BackendQuery,
    prompts::PromptQuery,
    executions::ExecutionQuery,
    intents::IntentQuery,
    pipelines::PipelineQuery,
    workers::WorkerQuery,
);

/// Every mutation field.
#[derive(MergedObject, Default)]
pub struct MutationRoot(
    projects::ProjectMutation,
    blueprints::BlueprintMutation,
    backends::BackendMutation,
    prompts::PromptMutation,
    access::AccessMutation,
    executions::ExecutionMutation,
    intents::IntentMutation,
    pipelines::PipelineMutation,
    workers::WorkerMutation,
);

/// The product's schema type.
pub type OrchestratorSchema = Schema<QueryRoot, MutationRoot, subscriptions::SubscriptionRoot>;

/// Surface options that differ between process modes.
#[derive(Debug, Clone, Copy)]
pub struct SchemaOptions {
    /// Allow `__schema` / `__type` queries (also turns "did you mean" suggestions on).
    pub introspection: bool,
    /// Request and query-shape limits.
    pub limits: orchestrator_core::config::Limits,
}

fn builder() -> SchemaBuilder<QueryRoot, MutationRoot, subscriptions::SubscriptionRoot> {
    Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        subscriptions::SubscriptionRoot,
    )
}

/// Builds the schema with its data (database, queue, loaders) and limits.
pub fn build_schema(core: CoreContext, options: SchemaOptions) -> OrchestratorSchema {
    let mut b = builder()
        .data(DataLoader::new(
            loaders::StagesByExecution(core.clone()),
            tokio::spawn,
        ))
        .data(DataLoader::new(
            loaders::HandshakesByStage(core.clone()),
            tokio::spawn,
        ))
        .data(core)
        .limit_depth(options.limits.max_depth)
        .limit_complexity(options.limits.max_complexity)
        .limit_recursive_depth(32)
        .extension(limits::ShapeLimits(options.limits))
        .extension(audit_trail::AuditTrail)
        .extension(metrics::GraphqlMetrics);
    if !options.introspection {
        b = b.disable_introspection().disable_suggestions();
    }
    b.finish()
}

/// The SDL of the schema, as checked in at `schema.graphql`.
pub fn sdl() -> String {
    builder().finish().sdl()
}
