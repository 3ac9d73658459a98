//! The API boundary's error mapping: every domain error becomes a GraphQL error with a stable
//! `extensions.code`. Internal causes are logged with an error id; the client sees only the id.

use async_graphql::ErrorExtensions;
use orchestrator_core::{CoreError, ErrorCode, InputProblem};

/// Converts a domain error into a GraphQL error with its code.
pub fn to_graphql(err: CoreError) -> async_graphql::Error {
    match err {
        CoreError::Internal(cause) => internal(&cause),
        CoreError::BadInput { field, message } => {
            async_graphql::Error::new(format!("{field}: {message}")).extend_with(|_, e| {
                e.set("code", ErrorCode::BadUserInput.as_str());
                e.set("field", field.clone());
            })
        }
        CoreError::Invalid {
            field,
            message,
            details,
        } => {
            let errors: Vec<async_graphql::Value> = details.iter().map(problem_value).collect();
            async_graphql::Error::new(format!("{field}: {message}")).extend_with(|_, e| {
                e.set("code", ErrorCode::BadUserInput.as_str());
                e.set("field", field.clone());
                e.set("errors", async_graphql::Value::List(errors.clone()));
            })
        }
        other => {
            let code = other.code();
            async_graphql::Error::new(other.to_string())
                .extend_with(|_, e| e.set("code", code.as_str()))
        }
    }
}

/// `{ field, line, column, message }` of one problem inside an input text.
fn problem_value(problem: &InputProblem) -> async_graphql::Value {
    let json = serde_json::json!({
        "field": problem.field,
        "line": problem.line,
        "column": problem.column,
        "message": problem.message,
    });
    async_graphql::Value::from_json(json).unwrap_or_default()
}

/// Logs `cause` under a fresh error id and returns the masked error.
pub fn internal(cause: &anyhow::Error) -> async_graphql::Error {
    let error_id = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
    tracing::error!(error_id = %error_id, error = %format!("{cause:#}"), "internal error");
    async_graphql::Error::new(format!("internal error (id {error_id})")).extend_with(|_, e| {
        e.set("code", ErrorCode::Internal.as_str());
        e.set("errorId", error_id.clone());
    })
}

/// An error with just a code and a message.
pub fn coded(code: ErrorCode, message: impl Into<String>) -> async_graphql::Error {
    async_graphql::Error::new(message.into()).extend_with(|_, e| e.set("code", code.as_str()))
}

/// Result alias for resolvers.
pub type GqlResult<T> = async_graphql::Result<T>;

/// `?`-friendly conversion for service results.
pub trait IntoGql<T> {
    /// Maps the error side through [`to_graphql`].
    fn gql(self) -> GqlResult<T>;
}

impl<T> IntoGql<T> for Result<T, CoreError> {
    fn gql(self) -> GqlResult<T> {
        self.map_err(to_graphql)
    }
}
