//! Metrics of GraphQL operations: every HTTP operation is counted by operation name and
//! outcome (`ok` or the first error's code) and timed; every running subscription is counted
//! while it runs. Operation names are the client's choice, so they are bounded (see
//! `orchestrator_core::metrics`): anonymous operations, names over 64 characters and names
//! beyond the first few hundred share one label.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextPrepareRequest, NextRequest,
};
use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, OperationType};
use async_graphql::{Request, Response, ServerResult, Value, Variables};
use orchestrator_core::ErrorCode;
use orchestrator_core::metrics::{self, OpenGuard};

/// The extension factory; one per schema.
pub struct GraphqlMetrics;

impl ExtensionFactory for GraphqlMetrics {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(GraphqlMetricsExtension::default())
    }
}

/// One per operation.
#[derive(Default)]
struct GraphqlMetricsExtension {
    /// The `operationName` the client asked for.
    requested: Mutex<Option<String>>,
    /// The name of the operation the document runs, once parsed.
    operation: Mutex<Option<String>>,
    /// Held while a subscription runs; dropped with the extension when its stream ends.
    subscription: Mutex<Option<OpenGuard>>,
}

/// The name of the operation a document runs: the requested one, or the only operation's
/// name; `None` for an anonymous operation.
fn operation_name(doc: &ExecutableDocument, requested: Option<&str>) -> Option<String> {
    match (&doc.operations, requested) {
        (_, Some(name)) => Some(name.to_string()),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => {
            ops.keys().next().map(|name| name.to_string())
        }
        _ => None,
    }
}

fn is_subscription(doc: &ExecutableDocument, requested: Option<&str>) -> bool {
    let ty = match (&doc.operations, requested) {
        (DocumentOperations::Single(op), _) => Some(op.node.ty),
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name).map(|op| op.node.ty),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => {
            ops.values().next().map(|op| op.node.ty)
        }
        _ => None,
    };
    ty == Some(OperationType::Subscription)
}

/// `ok`, or the code of the first error; errors without a code are the client's doing
/// (syntax, validation), as the HTTP route reports them.
fn outcome(response: &Response) -> String {
    let Some(first) = response.errors.first() else {
        return "ok".into();
    };
    match first.extensions.as_ref().and_then(|ext| ext.get("code")) {
        Some(Value::String(code)) => code.clone(),
        Some(Value::Enum(code)) => code.to_string(),
        _ => ErrorCode::BadUserInput.as_str().into(),
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[async_trait::async_trait]
impl Extension for GraphqlMetricsExtension {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let started = Instant::now();
        let response = next.run(ctx).await;
        let operation = lock(&self.operation).take();
        metrics::observe_graphql_request(
            operation.as_deref(),
            &outcome(&response),
            started.elapsed(),
        );
        response
    }

    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        lock(&self.requested).clone_from(&request.operation_name);
        next.run(ctx, request).await
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let doc = next.run(ctx, query, variables).await?;
        let requested = lock(&self.requested).clone();
        *lock(&self.operation) = operation_name(&doc, requested.as_deref());
        if is_subscription(&doc, requested.as_deref()) {
            *lock(&self.subscription) = Some(metrics::subscription_opened());
        }
        Ok(doc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::parser::parse_query;

    #[test]
    fn the_operation_name_comes_from_the_request_or_the_only_operation() {
        let named = parse_query("mutation StartIt { a }").unwrap();
        assert_eq!(operation_name(&named, None).as_deref(), Some("StartIt"));
        let anonymous = parse_query("{ a }").unwrap();
        assert_eq!(operation_name(&anonymous, None), None);
        let two = parse_query("query A { a } query B { b }").unwrap();
        assert_eq!(operation_name(&two, None), None);
        assert_eq!(operation_name(&two, Some("B")).as_deref(), Some("B"));
        let sub = parse_query("subscription S { a }").unwrap();
        assert!(is_subscription(&sub, None));
        assert!(!is_subscription(&named, None));
    }
}
