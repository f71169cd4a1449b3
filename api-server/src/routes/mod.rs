//! The HTTP API. Routes are registered through utoipa-axum, so `/api/openapi.json` is generated
//! from the routes that really exist.

mod health;
#[cfg(test)]
mod in_process_tests;
mod jobs;
mod notifications;
mod users;

use std::sync::Arc;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use herald_core::db::Db;
use herald_core::fanout::Fanout;
use tracing::Instrument as _;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::auth::{Caller, Guard, Scope};
use crate::cache::ListCache;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::relay::KafkaProbe;
use crate::stream::{self, Hub};
use crate::writer::Writer;

/// Requests slower than this are logged at info like failed ones.
const SLOW_REQUEST: std::time::Duration = std::time::Duration::from_secs(1);

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Herald API",
        description = "Notifications over REST, Server-Sent Events, Socket.IO v4 and WebSocket."
    ),
    modifiers(&SecuritySchemes),
    security(("userToken" = []), ("apiKey" = []))
)]
struct ApiDoc;

/// The credentials the API takes; every route needs one unless it says `security: []`.
struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme,
        };
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "userToken",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "A user's JWT (`sub` = user id, `exp` required): the user's own \
                         notifications and broadcasts",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "apiKey",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("hk_<id>_<secret>")
                    .description(Some(
                        "A service's API key, with scopes publish, read:all or admin",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "accessTokenQuery",
            SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::with_description(
                "access_token",
                "Streams only (EventSource and WebSocket cannot set headers): a short-lived \
                 user token or an API key; never logged",
            ))),
        );
    }
}

/// What the HTTP API is built from.
pub struct Api {
    pub db: Db,
    pub cache: Arc<ListCache>,
    pub writer: Arc<Writer>,
    pub fanout: Fanout,
    /// `None` in embedded mode.
    pub kafka: Option<Arc<KafkaProbe>>,
    pub metrics: Arc<Metrics>,
}

pub fn router(api: Api, streams: Arc<Hub>, guard: Arc<Guard>) -> Router {
    let metrics = api.metrics.clone();
    let (api, openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(health::routes(health::Dependencies {
            db: api.db.clone(),
            fanout: api.fanout,
            kafka: api.kafka,
        }))
        .merge(notifications::routes(notifications::Handles {
            db: api.db.clone(),
            cache: api.cache,
            writer: api.writer,
            metrics: api.metrics,
        }))
        .merge(jobs::routes(api.db.clone()))
        .merge(users::routes(api.db))
        .merge(stream::routes(streams.clone()))
        .split_for_parts();
    let openapi_json = openapi.to_pretty_json().unwrap_or_default();

    let router = api
        .route(
            "/api/openapi.json",
            get(move || async move { ([("content-type", "application/json")], openapi_json) }),
        )
        .route(
            "/metrics",
            get(render_admin_metrics).with_state(metrics.clone()),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::max(
            notifications::MAX_BODY_BYTES,
        ))
        .layer(middleware::from_fn_with_state(metrics, record_request));
    stream::attach_socket_io(router, &streams).layer(axum::Extension(guard))
}

/// `/metrics` alone, for the metrics port: no credential, so keep that port private.
pub fn metrics_router(metrics: Arc<Metrics>) -> Router {
    Router::new().route("/metrics", get(render_metrics).with_state(metrics))
}

/// On the API port, `/metrics` needs an admin key: it shows the traffic of every user.
async fn render_admin_metrics(
    Caller(caller): Caller,
    State(metrics): State<Arc<Metrics>>,
) -> Result<Response, ApiError> {
    caller.require(Scope::Admin)?;
    Ok(render_metrics(State(metrics)).await.into_response())
}

async fn render_metrics(State(metrics): State<Arc<Metrics>>) -> impl IntoResponse {
    (
        [("content-type", "text/plain; version=0.0.4")],
        metrics.render(),
    )
}

async fn not_found(request: Request) -> ApiError {
    ApiError::not_found(format!(
        "no route for {} {}",
        request.method(),
        request.uri().path()
    ))
}

async fn method_not_allowed(request: Request) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!(
            "{} is not allowed on {}",
            request.method(),
            request.uri().path()
        ),
    )
}

/// The method as a metrics label and log field: the standard ones by name, any other (a
/// client may send any token) as `other`, so clients cannot add series at will.
fn method_label(method: &axum::http::Method) -> &'static str {
    const KNOWN: [&str; 9] = [
        "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "CONNECT", "TRACE",
    ];
    KNOWN
        .into_iter()
        .find(|known| *known == method.as_str())
        .unwrap_or("other")
}

/// Reads W3C trace context from HTTP headers.
struct HeaderCarrier<'a>(&'a axum::http::HeaderMap);

impl opentelemetry::propagation::Extractor for HeaderCarrier<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(axum::http::HeaderName::as_str).collect()
    }
}

/// Runs every request in a span that continues the caller's trace (`traceparent`), and counts
/// and times it by route template (not the raw path, which would give one series per id).
async fn record_request(
    State(metrics): State<Arc<Metrics>>,
    request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let method = method_label(request.method()).to_owned();
    let span = tracing::info_span!(
        "request",
        %method,
        %route,
        caller = tracing::field::Empty,
        trace_id = tracing::field::Empty
    );
    herald_runtime::telemetry::continue_trace(&span, &HeaderCarrier(request.headers()));
    herald_runtime::telemetry::record_trace_id(&span);
    let started = std::time::Instant::now();
    let response = next.run(request).instrument(span.clone()).await;
    let elapsed = started.elapsed();
    let status = response.status().as_u16().to_string();
    let labels = [route.as_str(), method.as_str(), status.as_str()];
    metrics.http_requests.with_label_values(&labels).inc();
    metrics
        .http_duration
        .with_label_values(&labels)
        .observe(elapsed.as_secs_f64());
    // The access log: failed and slow requests at info; every request at debug (a log line
    // costs more than a cached read, so logging each at info would halve throughput; the
    // metrics count them all). Probes and scrapes are left out: they would drown it.
    if !matches!(route.as_str(), "/api/health" | "/api/ready" | "/metrics") {
        let duration_ms = elapsed.as_secs_f64() * 1000.0;
        span.in_scope(|| {
            if response.status().is_client_error()
                || response.status().is_server_error()
                || elapsed >= SLOW_REQUEST
            {
                tracing::info!(status = %status, duration_ms, "request");
            } else {
                tracing::debug!(status = %status, duration_ms, "request");
            }
        });
    }
    response
}
