//! Which browser origins may call the API: the CORS allowlist, and the same check on
//! WebSocket and Socket.IO upgrades, which browsers do not subject to CORS.

use anyhow::Context as _;
use axum::http::{HeaderMap, HeaderValue, header};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::error::ApiError;

#[derive(Debug, Clone)]
pub struct Origins {
    any: bool,
    allowed: Vec<HeaderValue>,
}

impl Origins {
    /// From `CORS_ALLOWED_ORIGINS`: none by default, `*` for any.
    pub fn parse(origins: &[String]) -> anyhow::Result<Self> {
        let origins: Vec<&str> = origins
            .iter()
            .map(|o| o.trim())
            .filter(|o| !o.is_empty())
            .collect();
        let allowed = origins
            .iter()
            .filter(|o| **o != "*")
            .map(|origin| {
                HeaderValue::from_str(origin).with_context(|| {
                    format!("CORS_ALLOWED_ORIGINS: {origin:?} is not a valid origin")
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Self {
            any: origins.contains(&"*"),
            allowed,
        })
    }

    /// An upgrade from a browser page on an origin not allowed is refused; clients that are not
    /// browsers send no `Origin`.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        match headers.get(header::ORIGIN) {
            Some(origin) if !self.any && !self.allowed.contains(origin) => {
                Err(ApiError::forbidden(
                    "origin_not_allowed",
                    format!(
                        "the origin {:?} is not allowed (CORS_ALLOWED_ORIGINS)",
                        String::from_utf8_lossy(origin.as_bytes())
                    ),
                ))
            }
            _ => Ok(()),
        }
    }

    /// The CORS layer: lets allowed browser apps call the API and open streams, with the
    /// `Authorization` header.
    pub fn cors(&self) -> CorsLayer {
        let allow = if self.any {
            AllowOrigin::any()
        } else {
            AllowOrigin::list(self.allowed.clone())
        };
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([
                axum::http::Method::GET,
                axum::http::Method::POST,
                axum::http::Method::PUT,
            ])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                axum::http::HeaderName::from_static("idempotency-key"),
                axum::http::HeaderName::from_static("last-event-id"),
                axum::http::HeaderName::from_static("traceparent"),
            ])
            .expose_headers([
                header::LOCATION,
                header::RETRY_AFTER,
                header::WWW_AUTHENTICATE,
                axum::http::HeaderName::from_static("idempotent-replayed"),
            ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(origin: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::ORIGIN, HeaderValue::from_str(origin).unwrap());
        headers
    }

    #[test]
    fn only_listed_origins_may_upgrade() {
        let none = Origins::parse(&[]).unwrap();
        assert!(none.check(&HeaderMap::new()).is_ok());
        assert!(none.check(&from("https://evil.example")).is_err());
        let listed = Origins::parse(&["https://app.example".into()]).unwrap();
        assert!(listed.check(&from("https://app.example")).is_ok());
        assert!(listed.check(&from("https://app.example.evil")).is_err());
        assert!(
            Origins::parse(&["*".into()])
                .unwrap()
                .check(&from("https://x"))
                .is_ok()
        );
        assert!(Origins::parse(&["bad\norigin".into()]).is_err());
    }
}
