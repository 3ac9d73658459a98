//! How Docker Engine failures become [`DeployError`]s. What another attempt could fix — the
//! engine unreachable or timing out, a 5xx, a conflict with a concurrent change — is
//! retryable; anything else the engine rejects (a bad request, a missing object) is not.

use bollard::errors::Error;

use crate::deploy::DeployError;

/// The HTTP status the engine answered with, if it answered at all.
pub(super) fn status_of(error: &Error) -> Option<u16> {
    match error {
        Error::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

/// The engine says the object does not exist.
pub(super) fn is_not_found(error: &Error) -> bool {
    status_of(error) == Some(404)
}

/// A [`DeployError`] for `doing` ("creating container x") having failed with `error`.
pub(super) fn engine_error(doing: &str, error: &Error) -> DeployError {
    let retryable = match error {
        Error::DockerResponseServerError { status_code, .. } => {
            *status_code == 409 || *status_code >= 500
        }
        Error::RequestTimeoutError
        | Error::IOError { .. }
        | Error::HyperResponseError { .. }
        | Error::HyperLegacyError { .. }
        | Error::SocketNotFoundError(_) => true,
        _ => false,
    };
    let cause = match error {
        Error::DockerResponseServerError {
            status_code,
            message,
        } => format!("{message} (HTTP {status_code})"),
        other => other.to_string(),
    };
    DeployError {
        message: format!("Docker engine: {doing} failed: {cause}"),
        retryable,
        details: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answered(status_code: u16) -> Error {
        Error::DockerResponseServerError {
            status_code,
            message: "boom".to_owned(),
        }
    }

    #[test]
    fn conflicts_server_errors_and_connection_failures_are_retryable() {
        assert!(engine_error("x", &answered(409)).retryable);
        assert!(engine_error("x", &answered(500)).retryable);
        assert!(engine_error("x", &answered(503)).retryable);
        assert!(engine_error("x", &Error::RequestTimeoutError).retryable);
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert!(engine_error("x", &Error::IOError { err: refused }).retryable);
    }

    #[test]
    fn rejected_requests_are_permanent_and_say_what_failed() {
        let error = engine_error("creating container web", &answered(400));
        assert!(!error.retryable);
        assert_eq!(
            error.message,
            "Docker engine: creating container web failed: boom (HTTP 400)"
        );
        assert!(is_not_found(&answered(404)));
        assert!(!is_not_found(&answered(409)));
    }
}
