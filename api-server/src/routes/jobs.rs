//! `/api/jobs`: the batch job runs recorded in `job_runs`, because a CronJob pod's logs and
//! metrics go when it ends.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Query, State};
use herald_core::db::{Db, JobRun};
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::auth::{Caller, Scope};
use crate::error::{ApiError, ApiResult, ErrorBody};

const JOBS: [&str; 3] = ["cleanup", "report", "user-sync"];

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobRunPage {
    /// Newest first: id, job, status (running, succeeded, failed), dryRun, parameters, counts,
    /// error, startedAt, finishedAt.
    #[schema(value_type = Vec<Object>)]
    runs: Vec<JobRun>,
    /// Pass as `before` for the next (older) page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_before: Option<Uuid>,
}

pub fn routes(db: Db) -> OpenApiRouter {
    OpenApiRouter::new().routes(routes!(list)).with_state(db)
}

/// List batch job runs, newest first.
#[utoipa::path(get, path = "/api/jobs", tag = "jobs",
    params(
        ("limit" = Option<u32>, Query, description = "1 to 500, default 50"),
        ("job" = Option<String>, Query, description = "cleanup, report or user-sync"),
        ("before" = Option<Uuid>, Query, description = "Only runs older than this run id (nextBefore of the previous page)"),
    ),
    responses((status = OK, body = JobRunPage), (status = BAD_REQUEST, body = ErrorBody),
        (status = UNAUTHORIZED, body = ErrorBody), (status = FORBIDDEN, body = ErrorBody, description = "Needs an admin key")))]
pub async fn list(
    Caller(caller): Caller,
    State(db): State<Db>,
    Query(params): Query<HashMap<String, String>>,
) -> ApiResult<Json<JobRunPage>> {
    caller.require(Scope::Admin)?;
    let limit = super::notifications::parse_limit(params.get("limit"))?;
    let job = match params.get("job") {
        Some(job) if !JOBS.contains(&job.as_str()) => {
            return Err(ApiError::invalid_query(
                "job",
                format!("job {job:?} is not one of cleanup, report, user-sync"),
            ));
        }
        other => other.map(String::as_str),
    };
    let before = params
        .get("before")
        .map(|raw| {
            Uuid::parse_str(raw).map_err(|_| {
                ApiError::invalid_query("before", format!("before must be a run id, not {raw:?}"))
            })
        })
        .transpose()?;
    let runs = db.job_runs(limit, job, before).await?;
    let next_before = (runs.len() == limit as usize)
        .then(|| runs.last().map(|run| run.id))
        .flatten();
    Ok(Json(JobRunPage { runs, next_before }))
}
