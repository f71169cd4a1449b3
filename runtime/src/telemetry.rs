//! Logs and traces for every Herald binary: JSON lines on stdout (for Loki) or readable text on
//! a terminal, and OTLP traces (for Tempo) when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.

use anyhow::Context;
use clap::{Args, ValueEnum};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line, for Loki and other collectors.
    Json,
    /// Human-readable lines.
    Text,
}

/// Logging and tracing flags, shared by every binary.
#[derive(Debug, Clone, Args)]
pub struct TelemetryArgs {
    /// Log format; `json` suits log collectors such as Loki.
    #[arg(
        long,
        env = "LOG_FORMAT",
        value_enum,
        default_value = "json",
        global = true
    )]
    pub log_format: LogFormat,

    /// Log filter in tracing's EnvFilter syntax, e.g. `info` or `info,herald=debug`.
    #[arg(long, env = "LOG_LEVEL", default_value = "info", global = true)]
    pub log_level: String,

    /// OTLP/HTTP endpoint for traces (Tempo or a collector), e.g. http://tempo:4318.
    /// Unset: no traces are exported. `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES`
    /// are honoured as the OpenTelemetry specification says.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT", global = true)]
    pub otlp_endpoint: Option<String>,
}

/// Where log lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogOutput {
    /// Services: stdout, where container runtimes and Loki's agents collect it.
    Stdout,
    /// Commands whose stdout is their result (a report, a listing): logs stay out of it.
    Stderr,
}

/// Flushes pending spans when dropped; keep it alive until the process ends.
#[must_use = "dropping the guard flushes and stops trace export"]
pub struct TelemetryGuard {
    tracer_provider: SdkTracerProvider,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Err(error) = self.tracer_provider.shutdown() {
            eprintln!("flushing traces failed: {error}");
        }
    }
}

/// Installs the global subscriber: logs per `args`, trace context on every span, and OTLP
/// export when an endpoint is set.
pub fn init(
    service_name: &'static str,
    args: &TelemetryArgs,
    output: LogOutput,
) -> anyhow::Result<TelemetryGuard> {
    let filter = EnvFilter::try_new(&args.log_level)
        .with_context(|| format!("invalid log level filter {:?}", args.log_level))?;
    let writer = match output {
        LogOutput::Stdout => BoxMakeWriter::new(std::io::stdout),
        LogOutput::Stderr => BoxMakeWriter::new(std::io::stderr),
    };
    let logs = match args.log_format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(writer)
            .boxed(),
        LogFormat::Text => tracing_subscriber::fmt::layer().with_writer(writer).boxed(),
    };

    // Spans get trace ids even without an exporter, so logs carry trace_id and traces
    // propagate through Kafka headers to services that do export.
    let name = std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| service_name.into());
    let mut provider = SdkTracerProvider::builder()
        .with_resource(Resource::builder().with_service_name(name).build());
    if let Some(endpoint) = &args.otlp_endpoint {
        // The exporter reads the endpoint from the environment; a flag must reach it too.
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
            .build()
            .context("building the OTLP trace exporter")?;
        provider = provider.with_batch_exporter(exporter);
    }
    let tracer_provider = provider.build();
    let traces = tracing_opentelemetry::layer().with_tracer(tracer_provider.tracer(service_name));
    opentelemetry::global::set_tracer_provider(tracer_provider.clone());
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());

    tracing_subscriber::registry()
        .with(filter)
        .with(logs)
        .with(traces)
        .try_init()
        .context("installing the tracing subscriber")?;
    Ok(TelemetryGuard { tracer_provider })
}

/// The W3C `traceparent` of the current span, to carry the trace across Kafka; `None` when
/// the span belongs to no trace (e.g. telemetry was not initialised).
pub fn current_traceparent() -> Option<String> {
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    let context = tracing::Span::current().context();
    let mut carrier = std::collections::HashMap::new();
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, &mut carrier);
    });
    carrier.remove("traceparent")
}

/// Records the span's trace id in its `trace_id` field (declared `Empty` by the caller), so
/// JSON log lines inside the span carry it and can be joined with the trace in Tempo.
pub fn record_trace_id(span: &tracing::Span) {
    use opentelemetry::trace::TraceContextExt as _;
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    let context = span.context();
    let span_context = context.span().span_context().clone();
    if span_context.is_valid() {
        span.record("trace_id", span_context.trace_id().to_string());
    }
}

/// Makes `span` continue the trace whose context `carrier` holds (HTTP or Kafka headers).
pub fn continue_trace(span: &tracing::Span, carrier: &dyn opentelemetry::propagation::Extractor) {
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    let parent =
        opentelemetry::global::get_text_map_propagator(|propagator| propagator.extract(carrier));
    // Fails only when no OpenTelemetry layer is installed, i.e. tracing is off.
    let _ = span.set_parent(parent);
}
