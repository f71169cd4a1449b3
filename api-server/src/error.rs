//! The one error type of the HTTP API: every failure becomes a JSON body
//! `{"error": {"code", "message", "field"?}}` with a fitting status.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use herald_core::db::DbError;
use serde::Serialize;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<&'static str>,
    /// Seconds to send in `Retry-After` (429s; a 503 always says 1).
    pub retry_after: Option<u64>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Serialize, utoipa::ToSchema)]
struct ErrorDetail {
    /// Stable, machine-readable: e.g. `invalid_field`, `malformed_json`, `not_found`.
    code: &'static str,
    message: String,
    /// The JSON field or query parameter at fault, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'static str>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
            retry_after: None,
        }
    }

    /// 401: no credential, or one that is not valid. `code` says which (`missing_credentials`,
    /// `invalid_token`, `token_expired`, `invalid_api_key`, ...).
    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, message)
    }

    /// 403: a valid credential that does not allow this (`insufficient_scope`,
    /// `forbidden_user`, `origin_not_allowed`).
    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, message)
    }

    /// 429, to retry after `seconds`.
    pub fn rate_limited(message: impl Into<String>, seconds: u64) -> Self {
        Self {
            retry_after: Some(seconds),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message)
        }
    }

    pub fn invalid_field(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field: Some(field),
            ..Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", message)
        }
    }

    pub fn invalid_query(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field: Some(field),
            ..Self::new(StatusCode::BAD_REQUEST, "invalid_query", message)
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }
}

impl From<DbError> for ApiError {
    fn from(error: DbError) -> Self {
        Self::from(&error)
    }
}

impl From<crate::writer::WriteError> for ApiError {
    fn from(error: crate::writer::WriteError) -> Self {
        match error {
            crate::writer::WriteError::Db(error) => Self::from(&error),
            crate::writer::WriteError::ShuttingDown => {
                Self::unavailable("the server is shutting down; retry on another replica")
            }
        }
    }
}

impl From<&DbError> for ApiError {
    fn from(error: &DbError) -> Self {
        match error {
            DbError::Shared(error) => Self::from(error.as_ref()),
            DbError::IdempotencyKeyReused(_) => Self {
                field: Some("Idempotency-Key"),
                ..Self::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "idempotency_key_reused",
                    error.to_string(),
                )
            },
            error if error.is_unavailable() => {
                tracing::warn!(%error, "database unavailable");
                Self::unavailable("the database is unavailable; retry shortly")
            }
            error => {
                tracing::error!(%error, "database error");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message,
                field: self.field,
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        let headers = response.headers_mut();
        let retry_after = match self.status {
            StatusCode::SERVICE_UNAVAILABLE => Some(1),
            _ => self.retry_after,
        };
        if let Some(seconds) = retry_after {
            headers.insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        // RFC 6750: what kind of credential to send, and why this one failed.
        let challenge = match (self.status, self.code) {
            (StatusCode::UNAUTHORIZED, "missing_credentials") => Some(r#"Bearer realm="herald""#),
            (StatusCode::UNAUTHORIZED, _) => {
                Some(r#"Bearer realm="herald", error="invalid_token""#)
            }
            (StatusCode::FORBIDDEN, "insufficient_scope") => {
                Some(r#"Bearer realm="herald", error="insufficient_scope""#)
            }
            _ => None,
        };
        if let Some(challenge) = challenge {
            headers.insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static(challenge),
            );
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
