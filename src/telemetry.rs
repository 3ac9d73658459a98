//! Logs and traces of the process: log lines (text or JSON) to stdout, filtered by
//! `RUST_LOG`; and, when `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`)
//! is set, every span exported over OTLP/HTTP (protobuf) to that collector.
//!
//! The exporter follows the standard `OTEL_*` variables (`OTEL_SERVICE_NAME`, default
//! `orchestrator`; `OTEL_EXPORTER_OTLP_HEADERS`; `OTEL_TRACES_SAMPLER`; `OTEL_BSP_*` for
//! batching). Spans are batched on a thread of their own; [`flush`] sends what is left when
//! the process ends.

use std::sync::OnceLock;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use orchestrator_core::config::LogFormat;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// True when an OTLP endpoint is configured in the environment.
fn otlp_configured() -> bool {
    [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ]
    .iter()
    .any(|var| std::env::var(var).is_ok_and(|v| !v.trim().is_empty()))
}

/// The span exporter, or why there is none.
fn tracer_provider() -> anyhow::Result<SdkTracerProvider> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()?;
    let mut resource = Resource::builder().with_attribute(opentelemetry::KeyValue::new(
        "service.version",
        env!("CARGO_PKG_VERSION"),
    ));
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name("orchestrator");
    }
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build())
}

/// Log targets whose debug output can carry secrets.
const SECRET_BEARING_TARGETS: &[&str] = &[
    "bollard",
    "kube",
    "kube_client",
    "hyper",
    "hyper_util",
    "reqwest",
    "h2",
    "tower_http",
];

/// Installs the process's subscriber: log lines in `format`, plus OTLP export when
/// configured. An exporter that cannot be built is reported and left out.
pub fn init(format: LogFormat) {
    let mut filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("info,sqlx=warn,sea_orm=warn,apalis=warn")
    });
    // These clients log whole request and response bodies at debug level — container
    // environments, Secret manifests — so they stay at info whatever RUST_LOG asks for.
    for quiet in SECRET_BEARING_TARGETS {
        if let Ok(directive) = format!("{quiet}=info").parse() {
            filter = filter.add_directive(directive);
        }
    }
    let (json, text) = match format {
        LogFormat::Json => (Some(tracing_subscriber::fmt::layer().json()), None),
        LogFormat::Text => (None, Some(tracing_subscriber::fmt::layer())),
    };
    let mut export_error = None;
    let otel = if otlp_configured() {
        match tracer_provider() {
            Ok(provider) => {
                let tracer = provider.tracer("orchestrator");
                let _ = PROVIDER.set(provider);
                Some(tracing_opentelemetry::layer().with_tracer(tracer))
            }
            Err(err) => {
                export_error = Some(err);
                None
            }
        }
    } else {
        None
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(json)
        .with(text)
        .with(otel)
        .init();
    match export_error {
        Some(err) => tracing::warn!(error = %format!("{err:#}"), "traces are not exported"),
        None if PROVIDER.get().is_some() => tracing::info!("exporting traces over OTLP/HTTP"),
        None => {}
    }
}

/// Sends the spans still batched and stops the exporter. Call outside the async runtime,
/// when the process is about to exit.
pub fn flush() {
    if let Some(provider) = PROVIDER.get()
        && let Err(err) = provider.shutdown()
    {
        eprintln!("warning: not every trace was exported: {err}");
    }
}
