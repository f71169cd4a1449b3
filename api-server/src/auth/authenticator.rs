//! Turns a presented credential into a [`Principal`]: an API key (`hk_...`) against the key
//! ring, anything else as a user JWT against the configured verifier. Both are swapped
//! whole when their sources change (see [`super::sources`]), without a restart.

use std::sync::{Arc, PoisonError, RwLock};

use super::api_keys::KeyRing;
use super::jwt::{Expectations, Verifier};
use super::principal::Principal;
use super::refusal::TokenError;

pub struct Authenticator {
    off: bool,
    expect: Expectations,
    verifier: RwLock<Option<Arc<Verifier>>>,
    keys: RwLock<Arc<KeyRing>>,
}

impl Authenticator {
    /// Everyone is [`Principal::Anyone`].
    pub fn off() -> Self {
        Self {
            off: true,
            ..Self::new(Expectations::default())
        }
    }

    pub fn new(expect: Expectations) -> Self {
        Self {
            off: false,
            expect,
            verifier: RwLock::new(None),
            keys: RwLock::new(Arc::new(KeyRing::default())),
        }
    }

    pub fn set_verifier(&self, verifier: Option<Verifier>) {
        *self
            .verifier
            .write()
            .unwrap_or_else(PoisonError::into_inner) = verifier.map(Arc::new);
    }

    pub fn set_keys(&self, keys: KeyRing) {
        *self.keys.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(keys);
    }

    /// Whether any credential could be accepted: a user token verifier or an API key.
    pub fn accepts_anything(&self) -> bool {
        self.off
            || self
                .verifier
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .is_some()
            || !self
                .keys
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .is_empty()
    }

    pub async fn authenticate(&self, token: Option<&str>) -> Result<Principal, TokenError> {
        if self.off {
            return Ok(Principal::Anyone);
        }
        let token = token.ok_or_else(|| {
            TokenError::new(
                "missing_credentials",
                "send a user token or an API key: `Authorization: Bearer <token>`",
            )
        })?;
        if token.starts_with("hk_") {
            let keys = self
                .keys
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            return keys
                .verify(token)
                .map(|(id, entry)| Principal::Service {
                    key_id: id.to_owned(),
                    name: entry.name.clone(),
                    scopes: entry.scopes,
                })
                .ok_or_else(|| {
                    // The same answer for a revoked, unknown or wrong key.
                    TokenError::new("invalid_api_key", "the API key is not valid")
                });
        }
        let verifier = self
            .verifier
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or_else(|| {
                TokenError::new(
                    "invalid_token",
                    "this server accepts no user tokens, only API keys",
                )
            })?;
        let user = verifier.verify(token, &self.expect).await?;
        Ok(Principal::User {
            id: user.user,
            expires: user.expires,
        })
    }
}
