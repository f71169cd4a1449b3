//! Logs and traces for every Herald binary: JSON lines on stdout (for Loki) or readable text on
//! a terminal, and OTLP traces (for Tempo) when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.

use anyhow::Context;
use clap::{Args, ValueEnum};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
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

/// Flushes pending spans when dropped; keep it alive until the process ends.
#[must_use = "dropping the guard flushes and stops trace export"]
pub struct TelemetryGuard {
    tracer_provider: Option<SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.tracer_provider.take()
            && let Err(error) = provider.shutdown()
        {
            eprintln!("flushing traces failed: {error}");
        }
    }
}

/// Installs the global subscriber: logs per `args`, and OTLP traces when an endpoint is set.
pub fn init(service_name: &'static str, args: &TelemetryArgs) -> anyhow::Result<TelemetryGuard> {
    let filter = EnvFilter::try_new(&args.log_level)
        .with_context(|| format!("invalid log level filter {:?}", args.log_level))?;
    let logs = match args.log_format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .boxed(),
        LogFormat::Text => tracing_subscriber::fmt::layer().boxed(),
    };

    let tracer_provider = match &args.otlp_endpoint {
        Some(endpoint) => {
            // The exporter reads the endpoint from the environment; a flag must reach it too.
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
                .build()
                .context("building the OTLP trace exporter")?;
            let name = std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| service_name.into());
            let resource = Resource::builder().with_service_name(name).build();
            Some(
                SdkTracerProvider::builder()
                    .with_batch_exporter(exporter)
                    .with_resource(resource)
                    .build(),
            )
        }
        None => None,
    };
    let traces = tracer_provider
        .as_ref()
        .map(|provider| tracing_opentelemetry::layer().with_tracer(provider.tracer(service_name)));
    if let Some(provider) = &tracer_provider {
        opentelemetry::global::set_tracer_provider(provider.clone());
    }
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());

    tracing_subscriber::registry()
        .with(filter)
        .with(logs)
        .with(traces)
        .try_init()
        .context("installing the tracing subscriber")?;
    Ok(TelemetryGuard { tracer_provider })
}
