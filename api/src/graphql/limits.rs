//! Query-shape limits beyond depth and complexity: query text length, aliases per query and
//! directives per field. Applied at parse time, so HTTP and websocket operations are bound alike.

use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery};
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{ErrorExtensionValues, ServerError, ServerResult, Variables};
use orchestrator_core::ErrorCode;
use orchestrator_core::config::Limits;

/// The extension factory; one per schema.
pub struct ShapeLimits(pub Limits);

impl ExtensionFactory for ShapeLimits {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ShapeLimitsExtension(self.0))
    }
}

struct ShapeLimitsExtension(Limits);

fn refuse(message: String) -> ServerError {
    let mut err = ServerError::new(message, None);
    let mut ext = ErrorExtensionValues::default();
    ext.set("code", ErrorCode::BadUserInput.as_str());
    err.extensions = Some(ext);
    err
}

#[derive(Default)]
struct Counts {
    aliases: usize,
    most_directives: usize,
}

fn walk(set: &SelectionSet, counts: &mut Counts) {
    for item in &set.items {
        match &item.node {
            Selection::Field(field) => {
                if field.node.alias.is_some() {
                    counts.aliases += 1;
                }
                counts.most_directives = counts.most_directives.max(field.node.directives.len());
                walk(&field.node.selection_set.node, counts);
            }
            Selection::FragmentSpread(spread) => {
                counts.most_directives = counts.most_directives.max(spread.node.directives.len());
            }
            Selection::InlineFragment(fragment) => {
                counts.most_directives = counts.most_directives.max(fragment.node.directives.len());
                walk(&fragment.node.selection_set.node, counts);
            }
        }
    }
}

/// Counts aliases over every operation and fragment definition, and the most directives on
/// any one field.
fn count(doc: &ExecutableDocument) -> Counts {
    let mut counts = Counts::default();
    for (_, op) in doc.operations.iter() {
        counts.most_directives = counts.most_directives.max(op.node.directives.len());
        walk(&op.node.selection_set.node, &mut counts);
    }
    for fragment in doc.fragments.values() {
        walk(&fragment.node.selection_set.node, &mut counts);
    }
    counts
}

#[async_trait::async_trait]
impl Extension for ShapeLimitsExtension {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let limits = &self.0;
        if query.len() > limits.max_query_bytes {
            return Err(refuse(format!(
                "the query is {} bytes; the limit is {}",
                query.len(),
                limits.max_query_bytes
            )));
        }
        let doc = next.run(ctx, query, variables).await?;
        let counts = count(&doc);
        if counts.aliases > limits.max_aliases {
            return Err(refuse(format!(
                "the query uses {} aliases; the limit is {}",
                counts.aliases, limits.max_aliases
            )));
        }
        if counts.most_directives > limits.max_directives_per_field {
            return Err(refuse(format!(
                "a field carries {} directives; the limit is {}",
                counts.most_directives, limits.max_directives_per_field
            )));
        }
        Ok(doc)
    }
}
