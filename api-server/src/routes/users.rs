//! `/api/users/{userId}`: a user's counters (kept by the user-sync job) and marking what the
//! user has seen.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use herald_core::db::{Db, UserSummary};
use herald_core::notification::check_user_id;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};

pub fn routes(db: Db) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(get_one))
        .routes(routes!(mark_seen))
        .with_state(db)
}

fn valid_user(user_id: &str) -> ApiResult<()> {
    check_user_id(user_id).map_err(|problem| ApiError {
        field: Some("userId"),
        ..ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_path",
            format!("userId {problem}"),
        )
    })
}

/// A user's counters as of the last user-sync run (unreadCount counts what arrived after
/// lastSeenAt).
#[utoipa::path(get, path = "/api/users/{userId}", tag = "users",
    params(("userId" = String, Path)),
    responses((status = OK, body = serde_json::Value,
        description = "userId, notificationCount, unreadCount, lastNotificationAt, lastSeenAt"),
        (status = UNAUTHORIZED, body = ErrorBody),
        (status = FORBIDDEN, body = ErrorBody, description = "Another user's id with a user token, or a key without read:all"),
        (status = NOT_FOUND, body = ErrorBody)))]
pub async fn get_one(
    Caller(caller): Caller,
    State(db): State<Db>,
    Path(user_id): Path<String>,
) -> ApiResult<Json<UserSummary>> {
    valid_user(&user_id)?;
    caller.user_access(&user_id, false)?;
    db.user_summary(&user_id).await?.map(Json).ok_or_else(|| {
        ApiError::not_found(format!(
            "no user {user_id:?} is known yet (user-sync has not seen them)"
        ))
    })
}

/// Marks everything created until now as seen by the user; `unreadCount` follows at the next
/// user-sync.
#[utoipa::path(put, path = "/api/users/{userId}/seen", tag = "users",
    params(("userId" = String, Path)),
    responses((status = NO_CONTENT), (status = BAD_REQUEST, body = ErrorBody),
        (status = UNAUTHORIZED, body = ErrorBody),
        (status = FORBIDDEN, body = ErrorBody, description = "Another user's id with a user token, or a key without admin")))]
pub async fn mark_seen(
    Caller(caller): Caller,
    State(db): State<Db>,
    Path(user_id): Path<String>,
) -> ApiResult<StatusCode> {
    valid_user(&user_id)?;
    caller.user_access(&user_id, true)?;
    db.mark_user_seen(&user_id, chrono::Utc::now()).await?;
    Ok(StatusCode::NO_CONTENT)
}
