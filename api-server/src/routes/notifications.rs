//! `/api/notifications`: create, list (cache-aside through Redis) and read one.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use herald_core::db::{Db, ListQuery, RequestFingerprint};
use herald_core::notification::{NewNotification, Notification, NotificationType};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::auth::{Caller, Principal, Publisher};
use crate::cache::{ListCache, Lookup};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::metrics::Metrics;
use crate::writer::Writer;

/// Largest accepted request body: a maximal message and metadata with room for JSON escaping.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 500;
const MAX_IDEMPOTENCY_KEY: usize = 255;

/// The body of `POST /api/notifications` (documentation; the handler validates the raw JSON
/// itself, so every error can name its field).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[expect(
    dead_code,
    reason = "schema only: the handler validates the raw JSON so each error names its field"
)]
pub struct CreateNotification {
    /// 1 to 4096 characters.
    message: String,
    #[serde(rename = "type")]
    kind: NotificationType,
    /// The user it is for; absent means a broadcast.
    user_id: Option<String>,
    /// Any JSON object up to 8 KiB.
    #[schema(value_type = Option<Object>)]
    metadata: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NotificationPage {
    /// Newest first.
    notifications: Vec<Notification>,
    /// Pass as `before` to get the next (older) page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_before: Option<i64>,
}

/// What these handlers use.
#[derive(Clone)]
pub struct Handles {
    pub db: Db,
    pub cache: Arc<ListCache>,
    pub writer: Arc<Writer>,
    pub metrics: Arc<Metrics>,
}

pub fn routes(handles: Handles) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get_one))
        .with_state(handles)
}

/// Create a notification. It is stored with its `notification.created` event in one
/// transaction before the answer, then published to Kafka and to every stream.
#[utoipa::path(post, path = "/api/notifications", tag = "notifications",
    request_body = CreateNotification,
    params(("Idempotency-Key" = Option<String>, Header,
        description = "A retry with the same key returns the first response and creates nothing (keys are kept 24 h)")),
    responses(
        (status = CREATED, body = Notification),
        (status = BAD_REQUEST, body = ErrorBody, description = "Malformed JSON or header"),
        (status = UNAUTHORIZED, body = ErrorBody),
        (status = FORBIDDEN, body = ErrorBody, description = "The credential lacks the publish scope"),
        (status = PAYLOAD_TOO_LARGE, body = ErrorBody),
        (status = TOO_MANY_REQUESTS, body = ErrorBody, description = "Over the publish rate limit; see Retry-After"),
        (status = UNSUPPORTED_MEDIA_TYPE, body = ErrorBody),
        (status = UNPROCESSABLE_ENTITY, body = ErrorBody, description = "A field is missing or invalid"),
    ))]
pub async fn create(
    _: Publisher,
    State(state): State<Handles>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    require_json(&headers)?;
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("the body is larger than {} bytes", MAX_BODY_BYTES),
            )
        } else {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "unreadable_body",
                rejection.body_text(),
            )
        }
    })?;
    let new = parse_new_notification(&body)?;
    let fingerprint = idempotency_key(&headers)?.map(|key| RequestFingerprint {
        key,
        request_hash: format!("{:x}", Sha256::digest(&body)),
    });
    let traceparent = herald_runtime::telemetry::current_traceparent();

    let created = match fingerprint {
        Some(fingerprint) => {
            state
                .writer
                .create_keyed(&new, &fingerprint, traceparent)
                .await?
        }
        None => state.writer.create(new, traceparent).await?,
    };

    let location = format!("/api/notifications/{}", created.notification.id);
    let mut response = (StatusCode::CREATED, Json(&created.notification)).into_response();
    let response_headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response_headers.insert(header::LOCATION, value);
    }
    if created.replayed {
        response_headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(response)
}

fn require_json(headers: &HeaderMap) -> ApiResult<()> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case("application/json") {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("Content-Type must be application/json, not {content_type:?}"),
        ))
    }
}

fn idempotency_key(headers: &HeaderMap) -> ApiResult<Option<String>> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let invalid = || ApiError {
        field: Some("Idempotency-Key"),
        ..ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_header",
            format!("Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters"),
        )
    };
    let key = value.to_str().map_err(|_| invalid())?.trim();
    if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY {
        return Err(invalid());
    }
    Ok(Some(key.to_owned()))
}

/// Validates the body field by field, so each error names its field.
fn parse_new_notification(body: &[u8]) -> ApiResult<NewNotification> {
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|error| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            format!("the body is not valid JSON: {error}"),
        )
    })?;
    let serde_json::Value::Object(mut object) = value else {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            "the body must be a JSON object",
        ));
    };
    let message = match object.remove("message") {
        Some(serde_json::Value::String(message)) => message,
        None | Some(serde_json::Value::Null) => {
            return Err(ApiError::invalid_field("message", "message is required"));
        }
        Some(_) => {
            return Err(ApiError::invalid_field(
                "message",
                "message must be a string",
            ));
        }
    };
    let kind = match object.remove("type") {
        Some(serde_json::Value::String(kind)) => {
            NotificationType::parse(&kind).ok_or_else(|| {
                ApiError::invalid_field(
                    "type",
                    format!("type {kind:?} is not one of info, warning, error, success"),
                )
            })?
        }
        None | Some(serde_json::Value::Null) => {
            return Err(ApiError::invalid_field(
                "type",
                "type is required: info, warning, error or success",
            ));
        }
        Some(_) => return Err(ApiError::invalid_field("type", "type must be a string")),
    };
    let user_id = match object.remove("userId") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(user)) => Some(user),
        Some(_) => return Err(ApiError::invalid_field("userId", "userId must be a string")),
    };
    let metadata = match object.remove("metadata") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::Object(metadata)) => Some(metadata),
        Some(_) => {
            return Err(ApiError::invalid_field(
                "metadata",
                "metadata must be a JSON object",
            ));
        }
    };
    NewNotification::new(message, kind, user_id, metadata)
        .map_err(|invalid| ApiError::invalid_field(invalid.field, invalid.message))
}

/// List notifications, newest first. Served from the cache when possible.
#[utoipa::path(get, path = "/api/notifications", tag = "notifications",
    params(
        ("limit" = Option<u32>, Query, description = "1 to 500, default 50"),
        ("before" = Option<String>, Query, description = "Only older than this notification: its id or sequence (nextBefore of the previous page)"),
        ("type" = Option<NotificationType>, Query),
        ("userId" = Option<String>, Query, description = "Only notifications addressed to this user (a user token: only its own)"),
    ),
    responses((status = OK, body = NotificationPage), (status = BAD_REQUEST, body = ErrorBody),
        (status = UNAUTHORIZED, body = ErrorBody), (status = FORBIDDEN, body = ErrorBody)))]
pub async fn list(
    Caller(caller): Caller,
    State(state): State<Handles>,
    Query(params): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    let query = parse_list_query(&caller, &state, &params).await?;
    // Only the first page of each view is cached: its keys are as many as the views callers
    // may have (limit x type x user seen), while `before` and a service's `userId` are values a
    // client could vary without end to fill Redis, which also carries the fan-out.
    let key = cache_key(&query);
    let generation = match &key {
        None => None,
        Some(key) => match state.cache.get(key).await {
            Ok(Lookup::Hit(page)) => {
                state.metrics.cache_hits.inc();
                return Ok(json_bytes(page));
            }
            Ok(Lookup::Miss(generation)) => {
                state.metrics.cache_misses.inc();
                generation
            }
            Err(error) => {
                state.metrics.cache_errors.inc();
                tracing::warn!(%error, "list cache unavailable; reading the database");
                None
            }
        },
    };
    let notifications = state.db.list_notifications(&query).await?;
    let next_before = (notifications.len() == query.limit as usize)
        .then(|| notifications.last().map(|n| n.sequence))
        .flatten();
    let page = Bytes::from(
        serde_json::to_vec(&NotificationPage {
            notifications,
            next_before,
        })
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?,
    );
    if let Some(key) = &key
        && let Err(error) = state.cache.put(key, generation, page.clone()).await
    {
        state.metrics.cache_errors.inc();
        tracing::warn!(%error, "could not store a list page in the cache");
    }
    Ok(json_bytes(page))
}

/// The cache key of a list query, if it is one of the shapes that are cached: a first page,
/// of everything or of one user's own view.
fn cache_key(query: &ListQuery) -> Option<String> {
    let own_view = query.user_id.is_none() || query.user_id == query.visible_to;
    (query.before_sequence.is_none() && own_view).then(|| {
        format!(
            "v3|{}|{}|{}|{}",
            query.limit,
            query.kind.map_or("", NotificationType::as_str),
            query.user_id.as_deref().unwrap_or(""),
            query.visible_to.as_deref().unwrap_or(""),
        )
    })
}

async fn parse_list_query(
    caller: &Principal,
    state: &Handles,
    params: &HashMap<String, String>,
) -> ApiResult<ListQuery> {
    let limit = parse_limit(params.get("limit"))?;
    let kind = params
        .get("type")
        .map(|raw| {
            NotificationType::parse(raw).ok_or_else(|| {
                ApiError::invalid_query(
                    "type",
                    format!("type {raw:?} is not one of info, warning, error, success"),
                )
            })
        })
        .transpose()?;
    let view = caller.view(crate::stream::user_id_filter(params)?)?;
    let before_sequence = match params.get("before") {
        None => None,
        Some(raw) => Some(resolve_cursor(state, raw).await?),
    };
    Ok(ListQuery {
        limit,
        before_sequence,
        kind,
        user_id: view.user,
        visible_to: view.visible_to,
    })
}

/// The `limit` query parameter of list endpoints.
pub fn parse_limit(raw: Option<&String>) -> ApiResult<u32> {
    let Some(raw) = raw else {
        return Ok(DEFAULT_LIMIT);
    };
    raw.parse::<u32>()
        .ok()
        .filter(|l| (1..=MAX_LIMIT).contains(l))
        .ok_or_else(|| {
            ApiError::invalid_query(
                "limit",
                format!("limit must be a whole number from 1 to {MAX_LIMIT}, not {raw:?}"),
            )
        })
}

/// `before` is a sequence number or a notification id.
async fn resolve_cursor(state: &Handles, raw: &str) -> ApiResult<i64> {
    if let Ok(sequence) = raw.parse::<i64>() {
        return Ok(sequence);
    }
    let id = Uuid::parse_str(raw).map_err(|_| {
        ApiError::invalid_query(
            "before",
            format!("before must be a sequence number or a notification id, not {raw:?}"),
        )
    })?;
    let notification = state.db.notification(id).await?.ok_or_else(|| {
        ApiError::invalid_query("before", format!("no notification has the id {id}"))
    })?;
    Ok(notification.sequence)
}

fn json_bytes(body: Bytes) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Read one notification.
#[utoipa::path(get, path = "/api/notifications/{id}", tag = "notifications",
    params(("id" = Uuid, Path)),
    responses((status = OK, body = Notification), (status = BAD_REQUEST, body = ErrorBody),
        (status = UNAUTHORIZED, body = ErrorBody), (status = FORBIDDEN, body = ErrorBody),
        (status = NOT_FOUND, body = ErrorBody, description = "No such notification, or not one this caller may see")))]
pub async fn get_one(
    Caller(caller): Caller,
    State(state): State<Handles>,
    Path(raw): Path<String>,
) -> ApiResult<Json<Notification>> {
    let id = Uuid::parse_str(&raw).map_err(|_| ApiError {
        field: Some("id"),
        ..ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_path",
            format!("{raw:?} is not a notification id (a UUID)"),
        )
    })?;
    caller.view(None)?;
    state
        .db
        .notification(id)
        .await?
        // Another user's notification is answered like a missing one: its existence is theirs.
        .filter(|n| caller.may_see(n.user_id.as_deref()))
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no notification has the id {id}")))
}
