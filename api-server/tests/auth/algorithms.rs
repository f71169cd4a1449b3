//! Each kind of public key verifies its own tokens, and only with its own algorithms.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

use crate::common::Server;
use crate::list_as;
use crate::tokens::{self, claims, now};

/// A server verifying user tokens with this PEM public key; the file lives as long as the
/// directory returned with it.
async fn public_key_server(pem: &[u8], env: &[(&str, &str)]) -> (Server, tempfile::TempDir) {
    let files = tempfile::tempdir().unwrap();
    let public = files.path().join("key.pem");
    std::fs::write(&public, pem).unwrap();
    let public = public.display().to_string();
    let mut vars = vec![
        ("HERALD_INSECURE_NO_AUTH", "false"),
        ("JWT_PUBLIC_KEY_FILE", public.as_str()),
    ];
    vars.extend_from_slice(env);
    (Server::embedded(&vars).await, files)
}

#[tokio::test]
async fn an_hmac_token_signed_with_the_public_key_is_refused_by_an_rsa_server() {
    let env = [
        ("JWT_ISSUER", tokens::ISSUER),
        ("JWT_AUDIENCE", tokens::AUDIENCE),
    ];
    let (server, _files) = public_key_server(tokens::RSA_PUBLIC, &env).await;
    // The classic confusion: the RSA public key used as an HMAC secret.
    let confused = tokens::sign(
        Header::new(Algorithm::HS256),
        &claims("alice"),
        &EncodingKey::from_secret(tokens::RSA_PUBLIC),
    );
    assert_eq!(
        list_as(&server, &confused).await,
        (401, "invalid_algorithm".into())
    );
    let rs = tokens::rs256(&claims("alice"));
    assert_eq!(list_as(&server, &rs).await, (200, String::new()));
    // PS256 with the same key is accepted too.
    let ps = tokens::sign(
        Header::new(Algorithm::PS256),
        &claims("alice"),
        &EncodingKey::from_rsa_pem(tokens::RSA_PRIVATE).unwrap(),
    );
    assert_eq!(list_as(&server, &ps).await, (200, String::new()));
}

#[tokio::test]
async fn es256_and_eddsa_public_keys_verify_their_tokens_only() {
    for (key, other) in [
        (tokens::es256(), tokens::ed25519()),
        (tokens::ed25519(), tokens::es256()),
    ] {
        let (server, _files) = public_key_server(key.public_pem.as_bytes(), &[]).await;
        let good = key.sign(&json!({"sub": "alice", "exp": now() + 60}), None);
        let answer = list_as(&server, &good).await;
        assert_eq!(answer, (200, String::new()), "{:?}", key.algorithm);
        let foreign = other.sign(&json!({"sub": "alice", "exp": now() + 60}), None);
        let answer = list_as(&server, &foreign).await;
        assert_eq!(
            answer,
            (401, "invalid_algorithm".into()),
            "{:?}",
            key.algorithm
        );
    }
}
