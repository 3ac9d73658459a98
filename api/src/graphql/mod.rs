//! The GraphQL schema: queries and mutations per feature, merged into one root each.

mod enums;
mod executions;
mod loaders;
mod projects;
mod scalars;
mod system;

use async_graphql::dataloader::DataLoader;
use async_graphql::{EmptySubscription, MergedObject, Schema, SchemaBuilder};
use orchestrator_core::CoreContext;

pub use enums::*;

/// Every query field.
#[derive(MergedObject, Default)]
pub struct QueryRoot(
    system::SystemQuery,
    projects::ProjectQuery,
    executions::ExecutionQuery,
);

/// Every mutation field.
#[derive(MergedObject, Default)]
pub struct MutationRoot(projects::ProjectMutation, executions::ExecutionMutation);

/// The product's schema type.
pub type OrchestratorSchema = Schema<QueryRoot, MutationRoot, EmptySubscription>;

/// Surface options that differ between process modes.
#[derive(Debug, Clone, Copy)]
pub struct SchemaOptions {
    /// Allow `__schema` / `__type` queries (also turns "did you mean" suggestions on).
    pub introspection: bool,
}

fn builder() -> SchemaBuilder<QueryRoot, MutationRoot, EmptySubscription> {
    Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        EmptySubscription,
    )
}

/// Builds the schema with its data (database, queue, loaders) and limits.
pub fn build_schema(core: CoreContext, options: SchemaOptions) -> OrchestratorSchema {
    let mut b = builder()
        .data(DataLoader::new(
            loaders::StagesByExecution(core.clone()),
            tokio::spawn,
        ))
        .data(core)
        .limit_depth(12)
        .limit_complexity(2_000)
        .limit_recursive_depth(32);
    if !options.introspection {
        b = b.disable_introspection().disable_suggestions();
    }
    b.finish()
}

/// The SDL of the schema, as checked in at `schema.graphql`.
pub fn sdl() -> String {
    builder().finish().sdl()
}
