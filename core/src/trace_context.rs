//! W3C trace context (`traceparent`) across process boundaries: read from incoming HTTP
//! requests, carried inside queue jobs, and sent on calls to remote workers, so one trace
//! spans the API request, the worker that runs each stage and the remote worker it calls.
//!
//! The ids come from the OpenTelemetry layer of the process's `tracing` subscriber. Without
//! that layer (no OTLP endpoint configured) spans have no ids: [`TraceParent::current`] is
//! `None` and nothing is propagated.

use std::fmt;
use std::str::FromStr;

use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The HTTP header (and job field) name.
pub const HEADER: &str = "traceparent";

/// A parsed `traceparent` value: `00-<trace id>-<parent span id>-<flags>`. Small and `Copy`,
/// so job payloads that carry one stay `Copy`; serialised as the header text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceParent {
    trace_id: u128,
    span_id: u64,
    flags: u8,
}

impl TraceParent {
    /// The context of the current `tracing` span, when it has one (see the module doc).
    pub fn current() -> Option<TraceParent> {
        let cx = tracing::Span::current().context();
        let span = cx.span();
        let sc = span.span_context();
        sc.is_valid().then(|| TraceParent {
            trace_id: u128::from_be_bytes(sc.trace_id().to_bytes()),
            span_id: u64::from_be_bytes(sc.span_id().to_bytes()),
            flags: sc.trace_flags().to_u8(),
        })
    }

    /// The `traceparent` header of an incoming request, when present and well formed.
    pub fn from_headers(headers: &http::HeaderMap) -> Option<TraceParent> {
        headers
            .get(HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
    }

    /// The trace this context belongs to, as 32 lower-case hex digits.
    pub fn trace_id_hex(&self) -> String {
        format!("{:032x}", self.trace_id)
    }

    /// Makes `span` a child of this remote context. Call it before the span is first entered;
    /// afterwards, or without the OpenTelemetry layer, it does nothing.
    pub fn adopt(self, span: &tracing::Span) {
        let sc = SpanContext::new(
            TraceId::from_bytes(self.trace_id.to_be_bytes()),
            SpanId::from_bytes(self.span_id.to_be_bytes()),
            TraceFlags::new(self.flags),
            true,
            TraceState::NONE,
        );
        let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(sc));
    }
}

/// Makes `span` continue the trace of `parent`, when there is one.
pub fn continue_trace(span: &tracing::Span, parent: Option<TraceParent>) {
    if let Some(parent) = parent {
        parent.adopt(span);
    }
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{:032x}-{:016x}-{:02x}",
            self.trace_id, self.span_id, self.flags
        )
    }
}

/// Why a `traceparent` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a W3C traceparent value")]
pub struct InvalidTraceParent;

impl FromStr for TraceParent {
    type Err = InvalidTraceParent;

    /// Accepts version `00` exactly, and later versions by their first four fields (as the
    /// W3C recommendation asks); all-zero ids and version `ff` are refused.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let mut parts = text.split('-');
        let (Some(version), Some(trace), Some(span), Some(flags)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(InvalidTraceParent);
        };
        let hex = |s: &str, len: usize| {
            s.len() == len
                && s.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        };
        if !(hex(version, 2) && hex(trace, 32) && hex(span, 16) && hex(flags, 2))
            || version == "ff"
            || (version == "00" && parts.next().is_some())
        {
            return Err(InvalidTraceParent);
        }
        let parsed = TraceParent {
            trace_id: u128::from_str_radix(trace, 16).map_err(|_| InvalidTraceParent)?,
            span_id: u64::from_str_radix(span, 16).map_err(|_| InvalidTraceParent)?,
            flags: u8::from_str_radix(flags, 16).map_err(|_| InvalidTraceParent)?,
        };
        if parsed.trace_id == 0 || parsed.span_id == 0 {
            return Err(InvalidTraceParent);
        }
        Ok(parsed)
    }
}

impl Serialize for TraceParent {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for TraceParent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn the_header_text_round_trips() {
        let parsed: TraceParent = SAMPLE.parse().unwrap();
        assert_eq!(parsed.to_string(), SAMPLE);
        assert_eq!(parsed.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        let json = serde_json::to_string(&parsed).unwrap();
        assert_eq!(json, format!("\"{SAMPLE}\""));
        assert_eq!(serde_json::from_str::<TraceParent>(&json).unwrap(), parsed);
    }

    #[test]
    fn malformed_values_are_refused() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            assert!(bad.parse::<TraceParent>().is_err(), "{bad:?}");
        }
        let later: TraceParent = format!("01-{}-extra", &SAMPLE[3..]).parse().unwrap();
        assert_eq!(later.to_string(), SAMPLE);
    }

    #[test]
    fn without_an_opentelemetry_layer_there_is_no_current_context() {
        let span = tracing::info_span!("request");
        let _entered = span.enter();
        assert_eq!(TraceParent::current(), None);
    }
}
