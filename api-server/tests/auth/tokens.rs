//! Credentials for the tests: user JWTs signed with every kind of key the server takes (and
//! some it must refuse), and API keys.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _,
};
use serde_json::{Value, json};

pub const ISSUER: &str = "https://issuer.test";
pub const AUDIENCE: &str = "herald";
/// The HMAC secret of the servers these tests start.
pub const SECRET: &str = "a-test-secret-that-is-long-enough-for-hs256";

pub const RSA_PRIVATE: &[u8] = include_bytes!("keys/rsa-private.pem");
pub const RSA_PUBLIC: &[u8] = include_bytes!("keys/rsa-public.pem");

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Claims that the servers accept for `user`, valid for an hour.
pub fn claims(user: &str) -> Value {
    json!({"sub": user, "iss": ISSUER, "aud": AUDIENCE, "iat": now(), "exp": now() + 3600})
}

pub fn sign(header: Header, claims: &Value, key: &EncodingKey) -> String {
    jsonwebtoken::encode(&header, claims, key).expect("signing a token")
}

/// A user token signed with [`SECRET`] (HS256).
pub fn hs256(claims: &Value) -> String {
    sign(
        Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
}

pub fn user(user: &str) -> String {
    hs256(&claims(user))
}

/// A token with this header and claims and no signature: what `alg: none` looks like.
pub fn unsigned(header: &Value, claims: &Value) -> String {
    let part = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    format!("{}.{}.", part(header), part(claims))
}

/// A key pair made for the test: signs, and its public half as PEM and as a JWK.
pub struct Generated {
    pub encoding: EncodingKey,
    pub algorithm: Algorithm,
    pub public_pem: String,
    pub jwk: Value,
}

impl Generated {
    pub fn sign(&self, claims: &Value, kid: Option<&str>) -> String {
        let mut header = Header::new(self.algorithm);
        header.kid = kid.map(str::to_owned);
        sign(header, claims, &self.encoding)
    }
}

fn pem(spki: &[u8]) -> String {
    let body = STANDARD.encode(spki);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        lines.join("\n")
    )
}

/// An ECDSA P-256 key (ES256).
pub fn es256() -> Generated {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let point = pair.public_key().as_ref();
    // SubjectPublicKeyInfo of an id-ecPublicKey on prime256v1, then the uncompressed point.
    let mut spki = hex("3059301306072a8648ce3d020106082a8648ce3d030107034200");
    spki.extend_from_slice(point);
    Generated {
        encoding: EncodingKey::from_ec_der(pkcs8.as_ref()),
        algorithm: Algorithm::ES256,
        public_pem: pem(&spki),
        jwk: json!({
            "kty": "EC", "crv": "P-256", "use": "sig",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        }),
    }
}

/// An Ed25519 key (EdDSA).
pub fn ed25519() -> Generated {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    let public = pair.public_key().as_ref();
    let mut spki = hex("302a300506032b6570032100");
    spki.extend_from_slice(public);
    Generated {
        encoding: EncodingKey::from_ed_der(pkcs8.as_ref()),
        algorithm: Algorithm::EdDSA,
        public_pem: pem(&spki),
        jwk: json!({"kty": "OKP", "crv": "Ed25519", "use": "sig", "x": URL_SAFE_NO_PAD.encode(public)}),
    }
}

/// The RSA test key (RS256), from `keys/`.
pub fn rs256(claims: &Value) -> String {
    sign(
        Header::new(Algorithm::RS256),
        claims,
        &EncodingKey::from_rsa_pem(RSA_PRIVATE).unwrap(),
    )
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// An API key as the server formats them, with a fixed id so tests can name it.
pub fn api_key(id: u32) -> String {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).unwrap();
    format!("hk_{id:08x}_{}", URL_SAFE_NO_PAD.encode(secret))
}
