//! The domain error type shared by every service function.
//!
//! Policy: service functions in this crate return [`CoreError`]. Variants other than
//! [`CoreError::Internal`] describe something the caller did (bad input, a missing or foreign
//! row, a conflict) and carry a message a person can act on; the API shows them as they are.
//! `Internal` wraps everything else (database, queue, I/O) as an `anyhow::Error`; the API logs
//! it with an error id and shows the client only that id. Binaries and glue code use `anyhow`
//! directly with `.context(..)`.

use std::fmt;

/// Stable error codes, as they appear in GraphQL `extensions.code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    BadUserInput,
    NotFound,
    Unauthenticated,
    Forbidden,
    Conflict,
    RateLimited,
    Internal,
}

impl ErrorCode {
    /// The SCREAMING_CASE name used on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadUserInput => "BAD_USER_INPUT",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::Unauthenticated => "UNAUTHENTICATED",
            ErrorCode::Forbidden => "FORBIDDEN",
            ErrorCode::Conflict => "CONFLICT",
            ErrorCode::RateLimited => "RATE_LIMITED",
            ErrorCode::Internal => "INTERNAL",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Errors returned by service functions.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// Input that cannot be accepted; `field` names the offending input path.
    #[error("{field}: {message}")]
    BadInput { field: String, message: String },
    /// Input with one or more problems, each located inside it (e.g. a YAML document with a
    /// line and column per problem). `field` names the input argument; nothing was written.
    #[error("{field}: {message}")]
    Invalid {
        field: String,
        message: String,
        details: Vec<InputProblem>,
    },
    /// The row does not exist, or belongs to a project the caller cannot see.
    #[error("{entity} not found")]
    NotFound { entity: &'static str },
    /// No or invalid credentials.
    #[error("authentication required")]
    Unauthenticated,
    /// Authenticated, but the role does not allow this operation.
    #[error("{0}")]
    Forbidden(String),
    /// The operation conflicts with existing state (duplicate name, row in use, ...).
    #[error("{0}")]
    Conflict(String),
    /// Anything else. Never shown to clients.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl CoreError {
    /// A `BadInput` error for `field`.
    pub fn bad_input(field: impl Into<String>, message: impl Into<String>) -> Self {
        CoreError::BadInput {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The stable code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            CoreError::BadInput { .. } | CoreError::Invalid { .. } => ErrorCode::BadUserInput,
            CoreError::NotFound { .. } => ErrorCode::NotFound,
            CoreError::Unauthenticated => ErrorCode::Unauthenticated,
            CoreError::Forbidden(_) => ErrorCode::Forbidden,
            CoreError::Conflict(_) => ErrorCode::Conflict,
            CoreError::Internal(_) => ErrorCode::Internal,
        }
    }
}

impl From<sea_orm::DbErr> for CoreError {
    fn from(err: sea_orm::DbErr) -> Self {
        if let Some(sea_orm::SqlErr::UniqueConstraintViolation(_)) = err.sql_err() {
            return CoreError::Conflict("a row with the same unique key already exists".into());
        }
        CoreError::Internal(anyhow::Error::new(err))
    }
}

impl From<sea_orm::TransactionError<CoreError>> for CoreError {
    fn from(err: sea_orm::TransactionError<CoreError>) -> Self {
        match err {
            sea_orm::TransactionError::Connection(db) => db.into(),
            sea_orm::TransactionError::Transaction(inner) => inner,
        }
    }
}

/// One problem inside an input text, for [`CoreError::Invalid`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputProblem {
    /// Path inside the input, e.g. `ports[0].port`; empty for the whole text.
    pub field: String,
    /// 1-based line, when known.
    pub line: Option<u32>,
    /// 1-based column, when known.
    pub column: Option<u32>,
    /// What is wrong and how to fix it.
    pub message: String,
}

/// Result alias for service functions.
pub type CoreResult<T> = Result<T, CoreError>;
