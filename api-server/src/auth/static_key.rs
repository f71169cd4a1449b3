//! A verification key of user tokens and the algorithms it allows: an HMAC secret HS*, an RSA
//! key RS*/PS*, an EC key ES*, an Ed25519 key EdDSA; never another family.

use std::sync::OnceLock;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};

/// A static verification key and the algorithms it allows.
pub struct StaticKey {
    pub(super) key: DecodingKey,
    pub(super) algorithms: Vec<Algorithm>,
    /// The checks a token must pass, built at the first token: they depend only on the key and
    /// the process's settings, and building them allocates.
    pub(super) validation: OnceLock<Validation>,
}

impl StaticKey {
    pub fn hmac(secret: &[u8]) -> Result<Self, String> {
        if secret.len() < 32 {
            return Err("an HMAC secret must be at least 32 bytes".into());
        }
        Ok(Self {
            key: DecodingKey::from_secret(secret),
            algorithms: vec![Algorithm::HS256, Algorithm::HS384, Algorithm::HS512],
            validation: OnceLock::new(),
        })
    }

    /// An RSA, EC (P-256, P-384) or Ed25519 public key in PEM.
    pub fn pem(pem: &[u8]) -> Result<Self, String> {
        use Algorithm::{ES256, ES384, EdDSA, PS256, PS384, PS512, RS256, RS384, RS512};
        if let Ok(key) = DecodingKey::from_rsa_pem(pem) {
            let algorithms = vec![RS256, RS384, RS512, PS256, PS384, PS512];
            return Ok(Self::new(key, algorithms));
        }
        if let Ok(key) = DecodingKey::from_ec_pem(pem) {
            let algorithms = vec![ES256, ES384];
            return Ok(Self::new(key, algorithms));
        }
        if let Ok(key) = DecodingKey::from_ed_pem(pem) {
            let algorithms = vec![EdDSA];
            return Ok(Self::new(key, algorithms));
        }
        Err("not an RSA, EC or Ed25519 public key in PEM".into())
    }

    pub fn new(key: DecodingKey, algorithms: Vec<Algorithm>) -> Self {
        Self {
            key,
            algorithms,
            validation: OnceLock::new(),
        }
    }
}
