//! What an outbound exchange gives back: a complete answer read within its bounds, or the
//! reason there is none.

use std::time::Duration;

use serde_json::Value;

/// Longest excerpt of an answer body put into an error message.
pub const EXCERPT_CHARS: usize = 200;

/// Why an exchange with a checked URL produced no usable answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutboundError {
    /// The whole exchange (connect, request, answer body) took longer than allowed.
    #[error("timed out after {0} ms")]
    Timeout(u128),
    /// No connection (refused, unreachable, TLS failure).
    #[error("cannot connect: {0}")]
    Connect(String),
    /// A 3xx answer; redirects are never followed.
    #[error(
        "answered HTTP {status}, a redirect; redirects are not followed, so give the final URL"
    )]
    Redirect { status: u16 },
    /// The answer body is larger than the limit; reading stopped there.
    #[error("answer is larger than {limit} bytes; reading stopped there")]
    TooLarge { limit: usize },
    /// Anything else that broke the exchange.
    #[error("{0}")]
    Transport(String),
}

/// A complete, bounded answer.
#[derive(Debug, Clone)]
pub struct HttpAnswer {
    /// HTTP status (never 3xx).
    pub status: u16,
    /// The body, at most the limit given.
    pub body: Vec<u8>,
    /// Time from sending the request to the end of the body.
    pub elapsed: Duration,
}

impl HttpAnswer {
    /// True for 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as JSON.
    pub fn json(&self) -> Result<Value, String> {
        serde_json::from_slice(&self.body).map_err(|e| format!("the body is not JSON ({e})"))
    }

    /// The start of the body as one line of at most [`EXCERPT_CHARS`] characters.
    pub fn excerpt(&self) -> String {
        excerpt(&String::from_utf8_lossy(&self.body))
    }

    /// Milliseconds the exchange took.
    pub fn latency_ms(&self) -> u64 {
        u64::try_from(self.elapsed.as_millis()).unwrap_or(u64::MAX)
    }
}

/// `text` on one line, cut to [`EXCERPT_CHARS`] characters (marked with `…` when cut).
pub fn excerpt(text: &str) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.is_empty() {
        return "(empty body)".into();
    }
    match line.char_indices().nth(EXCERPT_CHARS) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line,
    }
}

pub(super) fn classify(err: &reqwest::Error, timeout: Duration) -> OutboundError {
    if err.is_timeout() {
        OutboundError::Timeout(timeout.as_millis())
    } else if err.is_connect() || err.is_request() {
        OutboundError::Connect(root_cause(err))
    } else {
        OutboundError::Transport(root_cause(err))
    }
}

/// The innermost cause of `err` (e.g. "Connection refused (os error 111)").
pub fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut source = err;
    while let Some(next) = source.source() {
        source = next;
    }
    source.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_are_one_short_line() {
        assert_eq!(excerpt("  a\n  b  "), "a b");
        assert_eq!(excerpt(""), "(empty body)");
        let long = "é".repeat(500);
        let cut = excerpt(&long);
        assert_eq!(cut.chars().count(), EXCERPT_CHARS + 1);
        assert!(cut.ends_with('…'));
    }
}
