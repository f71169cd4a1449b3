//! Users' JWTs: `sub` is the user, `exp` is required; `nbf`, `iss` and `aud` are checked as
//! configured. A key allows only its own family of algorithms (an HMAC secret HS*, an RSA key
//! RS*/PS*, an EC key ES*, an Ed25519 key EdDSA), so neither `alg: none` (which the decoder
//! does not know) nor a token signed with the public key as an HMAC secret gets through.

use jsonwebtoken::Validation;
use jsonwebtoken::errors::ErrorKind;
use serde::Deserialize;

use super::jwks::Jwks;
use super::refusal::TokenError;
use super::static_key::StaticKey;

/// What the token must say besides its signature.
#[derive(Debug, Clone, Default)]
pub struct Expectations {
    pub issuer: Option<String>,
    pub audience: Option<String>,
    /// Seconds of clock skew allowed on `exp` and `nbf`.
    pub leeway: u64,
}

/// Where user tokens are verified against.
pub enum Verifier {
    Static(StaticKey),
    Jwks(Jwks),
}

/// A verified user token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserToken {
    pub user: String,
    /// Unix seconds.
    pub expires: u64,
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    exp: u64,
}

impl Verifier {
    /// Changes whenever the keys do: a token verified under another generation is checked
    /// again. A static key never changes (a new one is a new verifier).
    pub fn generation(&self) -> u64 {
        match self {
            Self::Static(_) => 0,
            Self::Jwks(jwks) => jwks.generation(),
        }
    }

    /// Fetches a JWKS again; nothing to do for a static key.
    pub async fn refresh(&self) -> Result<(), String> {
        match self {
            Self::Static(_) => Ok(()),
            Self::Jwks(jwks) => jwks.refresh().await.map(drop),
        }
    }

    pub async fn verify(
        &self,
        token: &str,
        expect: &Expectations,
    ) -> Result<UserToken, TokenError> {
        match self {
            Self::Static(key) => check(token, key, expect),
            Self::Jwks(jwks) => {
                let header = jsonwebtoken::decode_header(token).map_err(|error| refusal(&error))?;
                let kid = header.kid.ok_or_else(|| {
                    TokenError::new("invalid_token", "the token names no key (kid)")
                })?;
                let key = jwks.key(&kid).await?;
                check(token, &key, expect)
            }
        }
    }
}

fn check(token: &str, key: &StaticKey, expect: &Expectations) -> Result<UserToken, TokenError> {
    let validation = key.validation.get_or_init(|| validation(key, expect));
    let claims = jsonwebtoken::decode::<Claims>(token, &key.key, validation)
        .map_err(|error| refusal(&error))?
        .claims;
    herald_core::notification::check_user_id(&claims.sub).map_err(|problem| {
        TokenError::new("invalid_token", format!("the token's sub {problem}"))
    })?;
    Ok(UserToken {
        user: claims.sub,
        expires: claims.exp.saturating_add(expect.leeway),
    })
}

fn validation(key: &StaticKey, expect: &Expectations) -> Validation {
    let mut validation = Validation::new(key.algorithms[0]);
    validation.algorithms.clone_from(&key.algorithms);
    // A configured audience or issuer must be in the token, not merely right when present.
    let mut required = vec!["exp", "sub"];
    if expect.audience.is_some() {
        required.push("aud");
    }
    if expect.issuer.is_some() {
        required.push("iss");
    }
    validation.set_required_spec_claims(&required);
    validation.validate_nbf = true;
    validation.leeway = expect.leeway;
    validation.validate_aud = expect.audience.is_some();
    if let Some(audience) = &expect.audience {
        validation.set_audience(&[audience]);
    }
    if let Some(issuer) = &expect.issuer {
        validation.set_issuer(&[issuer]);
    }
    validation
}

fn refusal(error: &jsonwebtoken::errors::Error) -> TokenError {
    let (code, message) = match error.kind() {
        ErrorKind::ExpiredSignature => ("token_expired", "the token has expired".to_owned()),
        ErrorKind::ImmatureSignature => (
            "token_not_yet_valid",
            "the token is not valid yet (nbf)".to_owned(),
        ),
        ErrorKind::InvalidAudience => (
            "invalid_audience",
            "the token's aud is not this service".to_owned(),
        ),
        ErrorKind::InvalidIssuer => (
            "invalid_issuer",
            "the token's iss is not trusted".to_owned(),
        ),
        ErrorKind::InvalidSignature => (
            "invalid_signature",
            "the token's signature does not verify".to_owned(),
        ),
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => (
            "invalid_algorithm",
            "the token's alg is not one this service's key allows".to_owned(),
        ),
        ErrorKind::MissingRequiredClaim(claim) => {
            ("invalid_token", format!("the token has no {claim} claim"))
        }
        _ => ("invalid_token", "the token is not a valid JWT".to_owned()),
    };
    TokenError::new(code, message)
}
