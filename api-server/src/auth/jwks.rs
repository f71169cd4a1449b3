//! Verification keys from a JWKS URL (an identity provider's `jwks_uri`), cached by `kid`. A
//! token naming an unknown `kid` makes the set be fetched again (the provider rotated its
//! keys), at most once per [`REFETCH_AFTER`], so garbage tokens cannot make this server
//! hammer the provider.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey};

use super::refusal::TokenError;
use super::static_key::StaticKey;

const REFETCH_AFTER: Duration = Duration::from_secs(10);
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

pub struct Jwks {
    url: String,
    client: reqwest::Client,
    keys: RwLock<HashMap<String, Arc<StaticKey>>>,
    /// When the set was last fetched; also serializes fetches.
    fetched: tokio::sync::Mutex<Option<Instant>>,
    /// The document last fetched, and how many times it changed: what was verified with an
    /// earlier set (whose key may be gone now) is checked again.
    document: Mutex<String>,
    generation: AtomicU64,
}

impl Jwks {
    pub fn new(url: String) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .build()
            .map_err(|error| format!("creating the JWKS client: {error}"))?;
        Ok(Self {
            url,
            client,
            keys: RwLock::default(),
            fetched: tokio::sync::Mutex::new(None),
            document: Mutex::default(),
            generation: AtomicU64::new(0),
        })
    }

    /// The key named `kid`, fetching the set again if it is unknown and was not just fetched.
    pub async fn key(&self, kid: &str) -> Result<Arc<StaticKey>, TokenError> {
        if let Some(key) = self.cached(kid) {
            return Ok(key);
        }
        let mut fetched = self.fetched.lock().await;
        // Another request may have fetched while this one waited.
        if let Some(key) = self.cached(kid) {
            return Ok(key);
        }
        if fetched.is_none_or(|at| at.elapsed() >= REFETCH_AFTER) {
            *fetched = Some(Instant::now());
            if let Err(error) = self.refresh().await {
                tracing::warn!(url = %self.url, %error, "could not fetch the JWKS");
            }
        }
        drop(fetched);
        self.cached(kid).ok_or_else(|| {
            TokenError::new(
                "unknown_key",
                "the token's kid names no key this service knows",
            )
        })
    }

    /// How many times the set changed since the start.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Fetches the set now: at start-up, so the first requests need not wait, and every few
    /// minutes, so a key the provider dropped is dropped here too. The number of keys.
    pub async fn refresh(&self) -> Result<usize, String> {
        let text = self
            .client
            .get(&self.url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|error| error.without_url().to_string())?
            .text()
            .await
            .map_err(|error| error.without_url().to_string())?;
        let set: JwkSet =
            serde_json::from_str(&text).map_err(|error| format!("not a JWKS document: {error}"))?;
        let mut document = self.document.lock().unwrap_or_else(PoisonError::into_inner);
        if *document == text {
            return Ok(self
                .keys
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .len());
        }
        let keys: HashMap<String, Arc<StaticKey>> = set
            .keys
            .iter()
            .filter_map(|jwk| Some((jwk.common.key_id.clone()?, Arc::new(usable(jwk)?))))
            .collect();
        let count = keys.len();
        *self.keys.write().unwrap_or_else(PoisonError::into_inner) = keys;
        *document = text;
        self.generation.fetch_add(1, Ordering::AcqRel);
        Ok(count)
    }

    fn cached(&self, kid: &str) -> Option<Arc<StaticKey>> {
        self.keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(kid)
            .cloned()
    }
}

/// A public key of the set with the algorithms it allows; symmetric keys are skipped, since a
/// secret published in a JWKS would be no secret.
fn usable(jwk: &Jwk) -> Option<StaticKey> {
    use Algorithm::{ES256, ES384, EdDSA, PS256, PS384, PS512, RS256, RS384, RS512};
    let family = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => vec![RS256, RS384, RS512, PS256, PS384, PS512],
        AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
            EllipticCurve::P256 => vec![ES256],
            EllipticCurve::P384 => vec![ES384],
            _ => return None,
        },
        AlgorithmParameters::OctetKeyPair(_) => vec![EdDSA],
        AlgorithmParameters::OctetKey(_) => return None,
    };
    // A key that names its algorithm allows only that one.
    let algorithms = match jwk.common.key_algorithm {
        Some(named) => {
            let named: Algorithm = named.to_string().parse().ok()?;
            family.contains(&named).then(|| vec![named])?
        }
        None => family,
    };
    Some(StaticKey::new(DecodingKey::from_jwk(jwk).ok()?, algorithms))
}
