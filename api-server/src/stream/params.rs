//! Query parameters of the SSE and WebSocket endpoints (and the REST list's `userId`).

use std::collections::HashMap;

use axum::extract::Query;
use axum::extract::rejection::QueryRejection;
use herald_core::notification::check_user_id;

use super::replay::Start;
use crate::error::{ApiError, ApiResult};

pub type RawQuery = Result<Query<HashMap<String, String>>, QueryRejection>;

#[derive(Debug)]
pub struct StreamParams {
    pub since: Option<i64>,
    pub user_id: Option<String>,
}

impl StreamParams {
    pub fn parse(query: RawQuery) -> ApiResult<Self> {
        let Query(params) =
            query.map_err(|rejection| ApiError::invalid_query("query", rejection.body_text()))?;
        let since = params
            .get("since")
            .map(|raw| parse_sequence(raw).ok_or_else(|| invalid_sequence("since", raw)))
            .transpose()?;
        let user_id = user_id_filter(&params)?;
        Ok(Self { since, user_id })
    }

    pub fn start(&self) -> Start {
        self.since.map_or(Start::Live, Start::After)
    }
}

/// The `userId` query parameter, which streams and the REST list filter by.
pub fn user_id_filter(params: &HashMap<String, String>) -> ApiResult<Option<String>> {
    let Some(user) = params.get("userId") else {
        return Ok(None);
    };
    check_user_id(user)
        .map_err(|problem| ApiError::invalid_query("userId", format!("userId {problem}")))?;
    Ok(Some(user.clone()))
}

/// A sequence number as clients send it: a whole number, 0 or more.
pub fn parse_sequence(raw: &str) -> Option<i64> {
    raw.trim().parse::<i64>().ok().filter(|s| *s >= 0)
}

pub fn invalid_sequence(field: &'static str, raw: &str) -> ApiError {
    ApiError::invalid_query(
        field,
        format!("{field} must be a sequence number (a whole number, 0 or more), not {raw:?}"),
    )
}
