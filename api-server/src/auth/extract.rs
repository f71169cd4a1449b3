//! Axum extractors that identify a request's caller through the [`Guard`] the router puts in
//! every request's extensions.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts, Query};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};

use super::Guard;
use super::limits::Limit;
use super::principal::Principal;
use super::scopes::Scope;
use crate::connection::Peer;
use crate::error::ApiError;

/// The authenticated caller of a REST request (`Authorization: Bearer <token>`).
pub struct Caller(pub Principal);

/// A caller with the `publish` scope, within its publish rate limit.
pub struct Publisher;

/// The caller opening a stream: `Authorization: Bearer`, or the `access_token` query
/// parameter for browsers (whose `EventSource` and `WebSocket` cannot set headers); from an
/// allowed origin, within its connect rate limit.
pub struct Subscriber(pub Principal);

fn guard(parts: &Parts) -> Result<Arc<Guard>, ApiError> {
    parts
        .extensions
        .get::<Arc<Guard>>()
        .cloned()
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the router has no guard",
            )
        })
}

fn address(parts: &Parts) -> Option<IpAddr> {
    parts
        .extensions
        .get::<ConnectInfo<Peer>>()
        .and_then(|ConnectInfo(peer)| peer.address)
}

/// The token of an `Authorization: Bearer` header, if there is one.
fn bearer(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let malformed = || {
        ApiError::unauthorized(
            "invalid_token",
            "the Authorization header must be `Bearer <token>`",
        )
    };
    let value = value.to_str().map_err(|_| malformed())?;
    let (scheme, token) = value.split_once(' ').ok_or_else(malformed)?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(malformed());
    }
    Ok(Some(token.trim()))
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let guard = guard(parts)?;
        let token = bearer(&parts.headers)?;
        guard.identify(token, address(parts)).await.map(Self)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Publisher {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Caller(principal) = Caller::from_request_parts(parts, state).await?;
        principal.require(Scope::Publish)?;
        if let Some(key) = principal.limit_key() {
            guard(parts)?.limits.check(Limit::Publish, &key)?;
        }
        Ok(Self)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Subscriber {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let guard = guard(parts)?;
        guard.origins.check(&parts.headers)?;
        let query = Query::<HashMap<String, String>>::try_from_uri(&parts.uri).ok();
        let from_query = query.as_ref().and_then(|Query(q)| q.get("access_token"));
        let token = match bearer(&parts.headers)? {
            Some(token) => Some(token),
            None => from_query.map(String::as_str),
        };
        let address = address(parts);
        let principal = guard.identify(token, address).await?;
        guard.connect(&principal, address)?;
        Ok(Self(principal))
    }
}
