//! Turns a presented credential into a [`Principal`]: an API key (`hk_...`) against the key
//! ring, anything else as a user JWT against the configured verifier. Both are swapped
//! whole when their sources change (see [`super::sources`]), without a restart.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use super::api_keys::KeyRing;
use super::jwt::{Expectations, UserToken, Verifier};
use super::principal::Principal;
use super::refusal::TokenError;

/// How many verified user tokens are remembered; when full, all are forgotten at once.
const REMEMBERED: usize = 16_384;

pub struct Authenticator {
    off: bool,
    expect: Expectations,
    verifier: RwLock<Option<Arc<Verifier>>>,
    keys: RwLock<Arc<KeyRing>>,
    /// User tokens verified with the current verifier, until they expire: an app sends the
    /// same token with every request, and a signature need not be checked twice. Only what
    /// verified gets in, so garbage cannot fill it; a new verifier (a rotated secret)
    /// empties it.
    verified: RwLock<HashMap<String, Remembered>>,
}

/// A verified token, and the generation of the verifier's keys that verified it.
struct Remembered {
    user: UserToken,
    generation: u64,
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
            verified: RwLock::default(),
        }
    }

    pub fn set_verifier(&self, verifier: Option<Verifier>) {
        // Locks in the order `remember` takes them: the cache, then the verifier.
        let mut verified = self
            .verified
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        *self
            .verifier
            .write()
            .unwrap_or_else(PoisonError::into_inner) = verifier.map(Arc::new);
        verified.clear();
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
        let generation = verifier.generation();
        let user = match self.remembered(token, generation) {
            Some(user) => user,
            None => {
                let user = verifier.verify(token, &self.expect).await?;
                self.remember(token, &user, &verifier, generation);
                user
            }
        };
        Ok(Principal::User {
            id: user.user,
            expires: user.expires,
        })
    }

    fn remembered(&self, token: &str, generation: u64) -> Option<UserToken> {
        let verified = self.verified.read().unwrap_or_else(PoisonError::into_inner);
        verified
            .get(token)
            .filter(|known| known.generation == generation && known.user.expires > now())
            .map(|known| known.user.clone())
    }

    /// Fetches the JWKS again, if that is where user tokens are verified.
    pub async fn refresh_keys(&self) {
        let verifier = self
            .verifier
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(verifier) = verifier
            && let Err(error) = verifier.refresh().await
        {
            tracing::warn!(%error, "could not fetch the JWKS; keeping the keys it had");
        }
    }

    /// Remembers `token` as verified by `by` with the keys of `generation` (read before the
    /// check), if `by` is still the verifier: one swapped in meanwhile (a rotated secret) must
    /// check the token itself.
    fn remember(&self, token: &str, user: &UserToken, by: &Arc<Verifier>, generation: u64) {
        let mut verified = self
            .verified
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let current = self.verifier.read().unwrap_or_else(PoisonError::into_inner);
        if !current
            .as_ref()
            .is_some_and(|current| Arc::ptr_eq(current, by))
        {
            return;
        }
        drop(current);
        if verified.len() >= REMEMBERED {
            verified.clear();
        }
        let user = user.clone();
        verified.insert(token.to_owned(), Remembered { user, generation });
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;

    use super::*;
    use crate::auth::static_key::StaticKey;

    const SECRET: &[u8] = b"a-secret-of-at-least-thirty-two-bytes";

    fn token(secret: &[u8], exp: u64) -> String {
        let claims = json!({"sub": "alice", "exp": exp});
        jsonwebtoken::encode(
            &Header::default(),
            &claims,
            &EncodingKey::from_secret(secret),
        )
        .unwrap()
    }

    fn authenticator(secret: &[u8]) -> Authenticator {
        let auth = Authenticator::new(Expectations::default());
        auth.set_verifier(Some(Verifier::Static(StaticKey::hmac(secret).unwrap())));
        auth
    }

    #[tokio::test]
    async fn a_remembered_token_is_forgotten_when_it_expires_or_the_key_changes() {
        let auth = authenticator(SECRET);
        let valid = token(SECRET, now() + 60);
        assert!(auth.authenticate(Some(&valid)).await.is_ok());
        assert!(auth.remembered(&valid, 0).is_some());
        // Expired entries are not served, even if still in the map.
        let current = auth.verifier.read().unwrap().clone().unwrap();
        auth.remember(
            "stale",
            &UserToken {
                user: "bob".into(),
                expires: now() - 1,
            },
            &current,
            0,
        );
        assert!(auth.remembered("stale", 0).is_none());
        // A rotated secret: what the old one signed is checked again, and refused.
        auth.set_verifier(Some(Verifier::Static(
            StaticKey::hmac(b"another-secret-of-at-least-thirty-two-bytes").unwrap(),
        )));
        assert!(auth.remembered(&valid, 0).is_none());
        let refused = auth.authenticate(Some(&valid)).await.unwrap_err();
        assert_eq!(refused.code, "invalid_signature");
    }

    #[tokio::test]
    async fn only_verified_tokens_are_remembered_and_the_memory_is_bounded() {
        let auth = authenticator(SECRET);
        let forged = token(b"not-the-secret-not-the-secret-not-the-secret", now() + 60);
        assert!(auth.authenticate(Some(&forged)).await.is_err());
        assert!(auth.remembered(&forged, 0).is_none());
        let current = auth.verifier.read().unwrap().clone().unwrap();
        for n in 0..REMEMBERED + 10 {
            auth.remember(
                &n.to_string(),
                &UserToken {
                    user: "u".into(),
                    expires: u64::MAX,
                },
                &current,
                0,
            );
        }
        assert!(auth.verified.read().unwrap().len() <= REMEMBERED);
        // A verifier that is no longer current remembers nothing.
        auth.set_verifier(Some(Verifier::Static(StaticKey::hmac(SECRET).unwrap())));
        let user = UserToken {
            user: "u".into(),
            expires: u64::MAX,
        };
        auth.remember("late", &user, &current, 0);
        assert!(auth.remembered("late", 0).is_none());
    }
}
