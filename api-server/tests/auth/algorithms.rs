//! Each kind of public key verifies its own tokens, and only with its own algorithms.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::Method;
use serde_json::json;

use crate::call;
use crate::tokens::{self, claims, now};

#[tokio::test]
async fn an_hmac_token_signed_with_the_public_key_is_refused_by_an_rsa_server() {
    let files = tempfile::tempdir().unwrap();
    let public = files.path().join("rsa.pem");
    std::fs::write(&public, tokens::RSA_PUBLIC).unwrap();
    let public = public.display().to_string();
    let server = crate::common::Server::embedded(&[
        ("HERALD_INSECURE_NO_AUTH", "false"),
        ("JWT_PUBLIC_KEY_FILE", public.as_str()),
        ("JWT_ISSUER", tokens::ISSUER),
        ("JWT_AUDIENCE", tokens::AUDIENCE),
    ])
    .await;
    // The classic confusion: the RSA public key used as an HMAC secret.
    let confused = tokens::sign(
        Header::new(Algorithm::HS256),
        &claims("alice"),
        &EncodingKey::from_secret(tokens::RSA_PUBLIC),
    );
    let (status, _, body) = call(
        &server,
        Method::GET,
        "/api/notifications",
        Some(&confused),
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("invalid_algorithm")),
        "{body}"
    );
    let (status, _, body) = call(
        &server,
        Method::GET,
        "/api/notifications",
        Some(&tokens::rs256(&claims("alice"))),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // PS256 with the same key is accepted too; a token for another audience is not.
    let ps = tokens::sign(
        Header::new(Algorithm::PS256),
        &claims("alice"),
        &EncodingKey::from_rsa_pem(tokens::RSA_PRIVATE).unwrap(),
    );
    assert_eq!(
        call(&server, Method::GET, "/api/notifications", Some(&ps), None)
            .await
            .0,
        200
    );
}

#[tokio::test]
async fn es256_and_eddsa_public_keys_verify_their_tokens_only() {
    for (key, other) in [
        (tokens::es256(), tokens::ed25519()),
        (tokens::ed25519(), tokens::es256()),
    ] {
        let files = tempfile::tempdir().unwrap();
        let public = files.path().join("key.pem");
        std::fs::write(&public, &key.public_pem).unwrap();
        let public = public.display().to_string();
        let server = crate::common::Server::embedded(&[
            ("HERALD_INSECURE_NO_AUTH", "false"),
            ("JWT_PUBLIC_KEY_FILE", public.as_str()),
        ])
        .await;
        let good = key.sign(&json!({"sub": "alice", "exp": now() + 60}), None);
        let (status, _, body) = call(
            &server,
            Method::GET,
            "/api/notifications",
            Some(&good),
            None,
        )
        .await;
        assert_eq!(status, 200, "{:?}: {body}", key.algorithm);
        let foreign = other.sign(&json!({"sub": "alice", "exp": now() + 60}), None);
        let (status, _, body) = call(
            &server,
            Method::GET,
            "/api/notifications",
            Some(&foreign),
            None,
        )
        .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (401, Some("invalid_algorithm")),
            "{body}"
        );
    }
}
