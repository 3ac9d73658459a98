//! The deployer's error policy: which API failures are worth another attempt.
//!
//! Retryable: the API server could not be reached, answered 5xx, a conflict (409), too many
//! requests (429) or a request timeout (408). Everything else (422 invalid, 403 forbidden,
//! 404 on apply, bad configuration) would fail the same way again and is permanent. The
//! API server's own message is kept, with secret values masked.

use super::redaction::Redactor;
use crate::deploy::DeployError;

/// A [`DeployError`] for `error`, raised while doing `action` ("applying Secret auth/x").
pub(super) fn api_failure(action: &str, error: kube::Error, redactor: &Redactor) -> DeployError {
    // The API server lists each rejected field of an invalid object as a cause.
    let details: Vec<String> = match &error {
        kube::Error::Api(status) => status
            .details
            .iter()
            .flat_map(|details| &details.causes)
            .map(|cause| match cause.field.is_empty() {
                true => redactor.scrub(&cause.message),
                false => redactor.scrub(&format!("{}: {}", cause.field, cause.message)),
            })
            .collect(),
        _ => Vec::new(),
    };
    let (reason, retryable) = match &error {
        kube::Error::Api(status) => {
            let message = if status.message.is_empty() {
                status.reason.clone()
            } else {
                status.message.clone()
            };
            // Code 0 means the answer carried no code at all, which is not the
            // client's fault.
            let retryable = matches!(status.code, 0 | 408 | 409 | 429 | 500..);
            (format!("{message} (HTTP {})", status.code), retryable)
        }
        kube::Error::HyperError(_) | kube::Error::Service(_) => (
            format!("cannot reach the Kubernetes API server: {error}"),
            true,
        ),
        other => (other.to_string(), false),
    };
    let message = redactor.scrub(&format!("{action} failed: {reason}"));
    tracing::debug!(retryable, "{message}");
    DeployError {
        message,
        retryable,
        details,
    }
}

/// True when `error` is the API server saying the object does not exist.
pub(super) fn is_not_found(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.is_not_found())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::Status;

    fn api_error(code: u16, message: &str) -> kube::Error {
        kube::Error::Api(Status::failure(message, "Reason").with_code(code).boxed())
    }

    #[test]
    fn classifies_status_codes() {
        let redactor = Redactor::default();
        for (code, retryable) in [
            (503, true),
            (500, true),
            (409, true),
            (429, true),
            (422, false),
            (403, false),
            (404, false),
        ] {
            let error = api_failure("applying Secret a/b", api_error(code, "no"), &redactor);
            assert_eq!(error.retryable, retryable, "HTTP {code}");
            assert_eq!(
                error.message,
                format!("applying Secret a/b failed: no (HTTP {code})")
            );
        }
    }

    #[test]
    fn masks_secret_values_in_server_messages() {
        let redactor = Redactor::new(["hunter2hunter2"]);
        let error = api_failure(
            "applying Secret a/b",
            api_error(422, "Invalid value: \"hunter2hunter2\""),
            &redactor,
        );
        assert!(!error.message.contains("hunter2"), "{}", error.message);
    }

    #[test]
    fn rejected_fields_become_details() {
        let status: Status = serde_json::from_value(serde_json::json!({
            "status": "Failure", "code": 422, "reason": "Invalid",
            "message": "Secret \"x\" is invalid",
            "details": {"name": "x", "kind": "secrets", "causes": [{
                "reason": "FieldValueInvalid",
                "message": "Invalid value: \"hunter2hunter2\"",
                "field": "stringData[KEY]",
            }]},
        }))
        .unwrap();
        let redactor = Redactor::new(["hunter2hunter2"]);
        let error = api_failure(
            "applying Secret a/x",
            kube::Error::Api(status.boxed()),
            &redactor,
        );
        assert_eq!(
            error.details,
            ["stringData[KEY]: Invalid value: \"<redacted>\""]
        );
    }
}
