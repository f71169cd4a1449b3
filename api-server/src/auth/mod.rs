//! Who may publish and who may read whose notifications.
//!
//! Users present a JWT whose `sub` is their id and see broadcasts and their own notifications;
//! services present an API key whose scopes (`publish`, `read:all`, `admin`) say what they
//! may do. The [`Guard`] is what handlers consult: it identifies the caller, applies the rate
//! limits and the origin allowlist; the [`extract`] extractors call it for handlers.

mod api_keys;
mod authenticator;
pub mod cli;
pub mod dev;
mod extract;
mod jwks;
mod jwt;
mod limits;
mod origins;
mod principal;
mod refusal;
mod scopes;
mod settings;
mod sources;
mod static_key;

pub use authenticator::Authenticator;
pub use extract::{Caller, Publisher, Subscriber};
pub use jwt::Expectations;
pub use limits::{Limit, RateLimits};
pub use origins::Origins;
pub use principal::{Denied, Principal};
pub use scopes::Scope;
pub use settings::AuthArgs;
pub use sources::{Sources, keep_loaded};

use std::net::IpAddr;
use std::sync::Arc;

use crate::error::ApiError;
use crate::metrics::Metrics;

/// What every authenticated route consults; shared by the REST handlers (as a request
/// extension) and the streams.
pub struct Guard {
    pub auth: Arc<Authenticator>,
    pub limits: Arc<RateLimits>,
    pub origins: Origins,
    pub metrics: Arc<Metrics>,
}

impl Guard {
    /// The caller that `token` proves, or the 401 (429 once an address keeps failing).
    pub async fn identify(
        &self,
        token: Option<&str>,
        address: Option<IpAddr>,
    ) -> Result<Principal, ApiError> {
        match self.auth.authenticate(token).await {
            Ok(principal) => {
                // The request's span (the access log) names who made it.
                tracing::Span::current().record("caller", principal.describe());
                Ok(principal)
            }
            Err(refused) => {
                self.metrics
                    .auth_failures
                    .with_label_values(&[refused.code])
                    .inc();
                if let Some(address) = address {
                    self.limits
                        .check(Limit::AuthFailures, &address.to_string())?;
                }
                Err(ApiError::unauthorized(refused.code, refused.message))
            }
        }
    }

    /// Counts a stream connect against the caller's limit (by address when auth is off).
    pub fn connect(&self, principal: &Principal, address: Option<IpAddr>) -> Result<(), ApiError> {
        let key = principal
            .limit_key()
            .or_else(|| address.map(|a| format!("ip:{a}")));
        match key {
            Some(key) => self.limits.check(Limit::Connect, &key),
            None => Ok(()),
        }
    }
}

impl From<Denied> for ApiError {
    fn from(denied: Denied) -> Self {
        Self::forbidden(denied.code, denied.message)
    }
}
