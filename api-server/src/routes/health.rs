//! Liveness and readiness.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use herald_core::db::Db;
use herald_core::fanout::Fanout;
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Caller, Scope};
use crate::error::ApiError;
use crate::relay::KafkaProbe;

/// What readiness checks.
#[derive(Clone)]
pub struct Dependencies {
    pub db: Db,
    pub fanout: Fanout,
    /// `None` in embedded mode.
    pub kafka: Option<Arc<KafkaProbe>>,
}

pub fn routes(dependencies: Dependencies) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(ready))
        .with_state(dependencies)
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Health {
    status: &'static str,
}

/// Liveness: the process answers. Checks no dependency, so a database outage does not get
/// every replica restarted.
#[utoipa::path(get, path = "/api/health", tag = "health", security(()), responses((status = OK, body = Health)))]
pub async fn health() -> Json<Health> {
    Json(Health { status: "ok" })
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Readiness {
    /// `ready`, or `unavailable` when a dependency does not answer.
    status: &'static str,
    /// Each dependency: `ok`, `unavailable: <reason>`, or `embedded`; shown to admin keys
    /// only, since the reasons describe the infrastructure.
    #[serde(skip_serializing_if = "Option::is_none")]
    checks: Option<Checks>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct Checks {
    database: String,
    redis: String,
    kafka: String,
}

/// Readiness: PostgreSQL (or the embedded database), Redis and Kafka answer; says which does not.
#[utoipa::path(get, path = "/api/ready", tag = "health", security(()), responses(
    (status = OK, body = Readiness), (status = SERVICE_UNAVAILABLE, body = Readiness)))]
pub async fn ready(
    caller: Result<Caller, ApiError>,
    State(state): State<Dependencies>,
) -> (StatusCode, Json<Readiness>) {
    let detailed = caller.is_ok_and(|Caller(caller)| caller.require(Scope::Admin).is_ok());
    let database = async { state.db.ping().await.map_err(|e| e.to_string()) };
    let redis = async { state.fanout.ping().await.map_err(|e| e.to_string()) };
    let kafka = async {
        match &state.kafka {
            Some(probe) => probe.check().await.map(|()| "ok"),
            None => Ok("embedded"),
        }
    };
    let (database, redis, kafka) = tokio::join!(database, redis, kafka);
    let healthy = database.is_ok() && redis.is_ok() && kafka.is_ok();
    let show = |result: Result<&'static str, String>| match result {
        Ok(word) => word.to_owned(),
        Err(reason) => format!("unavailable: {reason}"),
    };
    let checks = Checks {
        database: show(database.map(|()| "ok")),
        redis: show(redis.map(|()| {
            if state.fanout.is_redis() {
                "ok"
            } else {
                "embedded"
            }
        })),
        kafka: show(kafka),
    };
    let (status, word) = if healthy {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
    };
    (
        status,
        Json(Readiness {
            status: word,
            checks: detailed.then_some(checks),
        }),
    )
}
