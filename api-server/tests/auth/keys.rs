//! Credentials that change while the server runs: API keys rotated in a mounted file, keys
//! made and revoked with the CLI, and an identity provider's JWKS rotating its keys.

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::common::Server;
use crate::tokens::{self, now};
use crate::{Secured, cli, eventually, list_as, run_api_server};

async fn status(server: &Server, token: &str) -> u16 {
    list_as(server, token).await.0
}

#[tokio::test]
async fn a_rotated_keys_file_applies_without_a_restart_with_both_keys_valid_meanwhile() {
    let secured = Secured::embedded(&[]).await;
    let server = &secured.server;
    let (old, new) = (secured.keys.reader.clone(), tokens::api_key(0x77));
    assert_eq!(status(server, &old).await, 200);
    assert_eq!(status(server, &new).await, 401);
    // Step 1 of a rotation: both keys are listed; clients move to the new one.
    std::fs::write(
        &secured.keys.file,
        format!("old read:all {old}\nnew read:all {new}\n"),
    )
    .unwrap();
    eventually("the new key is accepted", async || {
        status(server, &new).await == 200
    })
    .await;
    assert_eq!(
        status(server, &old).await,
        200,
        "the old key must stay valid meanwhile"
    );
    // Step 2: the old key is removed.
    std::fs::write(&secured.keys.file, format!("new read:all {new}\n")).unwrap();
    eventually("the old key is refused", async || {
        status(server, &old).await == 401
    })
    .await;
    assert_eq!(status(server, &new).await, 200);
    // A broken file (a half-written Secret) keeps the keys that were valid.
    std::fs::write(&secured.keys.file, "new read:all hk_broken\n").unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(status(server, &new).await, 200);
}

#[tokio::test]
async fn a_rotated_jwt_secret_applies_without_a_restart() {
    let secured = Secured::embedded(&[]).await;
    let server = &secured.server;
    let old = tokens::user("alice");
    // Verified, so remembered: the rotation must forget it.
    assert_eq!(status(server, &old).await, 200);
    let secret = "a-rotated-secret-that-is-long-enough-for-hs256";
    std::fs::write(&secured.jwt_secret_file, secret).unwrap();
    let new = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &tokens::claims("alice"),
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap();
    eventually("the new secret is used", async || {
        status(server, &new).await == 200
    })
    .await;
    assert_eq!(
        list_as(server, &old).await,
        (401, "invalid_signature".into())
    );
}

#[tokio::test]
async fn keys_made_with_the_cli_work_until_revoked() {
    let secured = Secured::embedded(&[]).await;
    let server = &secured.server;
    let key = cli(
        server,
        &[
            "keys",
            "create",
            "--name",
            "billing",
            "--scopes",
            "publish,read:all",
        ],
    )
    .await
    .unwrap();
    assert!(key.starts_with("hk_"), "{key}");
    eventually("the new key is accepted", async || {
        status(server, &key).await == 200
    })
    .await;
    let listed = cli(server, &["keys", "list"]).await.unwrap();
    assert!(
        listed.contains("billing") && listed.contains("publish,read:all"),
        "{listed}"
    );
    assert!(
        !listed.contains(&key[12..]),
        "the list shows the secret: {listed}"
    );
    cli(server, &["keys", "revoke", "billing"]).await.unwrap();
    eventually("the revoked key is refused", async || {
        status(server, &key).await == 401
    })
    .await;
    let error = cli(server, &["keys", "revoke", "billing"])
        .await
        .unwrap_err();
    assert!(error.contains("no unrevoked key"), "{error}");
    let error = cli(
        server,
        &["keys", "create", "--name", "x", "--scopes", "write"],
    )
    .await
    .unwrap_err();
    assert!(error.contains("unknown scope"), "{error}");
}

/// An identity provider's `jwks_uri`, whose key set the test changes.
async fn jwks_endpoint(set: Arc<Mutex<Value>>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let app = axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(move || {
            let set = set.lock().unwrap().clone();
            async move { axum::Json(set) }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{address}/jwks.json")
}

#[tokio::test]
async fn jwks_keys_verify_and_a_rotated_key_is_fetched_on_first_use() {
    let (ec, ed) = (tokens::es256(), tokens::ed25519());
    let mut first = ec.jwk.clone();
    first["kid"] = "k1".into();
    let set = Arc::new(Mutex::new(json!({"keys": [first]})));
    let url = jwks_endpoint(set.clone()).await;
    let server = Server::embedded(&[
        ("HERALD_INSECURE_NO_AUTH", "false"),
        ("JWKS_URL", url.as_str()),
        ("RATE_LIMIT_AUTH_FAILURES", "0"),
    ])
    .await;
    let claims = json!({"sub": "alice", "exp": now() + 60});
    let first_token = ec.sign(&claims, Some("k1"));
    assert_eq!(status(&server, &first_token).await, 200);
    assert_eq!(
        list_as(&server, &ec.sign(&claims, None)).await,
        (401, "invalid_token".into())
    );
    // The provider adds an Ed25519 key; the first token naming it makes the server refetch.
    let mut second = ed.jwk.clone();
    second["kid"] = "k2".into();
    second["alg"] = "EdDSA".into();
    set.lock().unwrap()["keys"]
        .as_array_mut()
        .unwrap()
        .push(second);
    assert_eq!(status(&server, &ed.sign(&claims, Some("k2"))).await, 200);
    // A kid nobody published, and a known kid with the other key's signature.
    assert_eq!(
        list_as(&server, &ed.sign(&claims, Some("k9"))).await,
        (401, "unknown_key".into())
    );
    assert_eq!(status(&server, &ed.sign(&claims, Some("k1"))).await, 401);
    // The provider drops k1. Once the set is fetched again (an unknown kid, at most every
    // 10 s), a token it signed is refused, although it verified before and was remembered.
    assert_eq!(status(&server, &first_token).await, 200);
    set.lock().unwrap()["keys"]
        .as_array_mut()
        .unwrap()
        .remove(0);
    tokio::time::sleep(std::time::Duration::from_millis(10_500)).await;
    assert_eq!(status(&server, &ed.sign(&claims, Some("k8"))).await, 401);
    assert_eq!(
        list_as(&server, &first_token).await,
        (401, "unknown_key".into())
    );
    assert_eq!(status(&server, &ed.sign(&claims, Some("k2"))).await, 200);
}

#[tokio::test]
async fn a_server_without_any_credential_refuses_to_start_unless_told_insecure() {
    let backing = crate::common::Backing::real().await;
    let url = backing.database.url.as_str();
    let env = [("DATABASE_URL", url), ("HERALD_INSECURE_NO_AUTH", "false")];
    let (ok, error) = run_api_server(&[], &env).await;
    assert!(!ok);
    assert!(
        error.contains("no credential is configured") && error.contains("--insecure-no-auth"),
        "{error}"
    );
    // Told so, it starts, and says at every start that authentication is off.
    let insecure = Server::start(&backing, &[("HERALD_INSECURE_NO_AUTH", "true")]).await;
    assert!(
        insecure.log().contains("authentication is OFF"),
        "{}",
        insecure.log()
    );
}

#[tokio::test]
async fn embedded_mode_with_nothing_configured_makes_development_credentials() {
    let server = Server::embedded(&[("HERALD_INSECURE_NO_AUTH", "false")]).await;
    let path = server.data_dir().join("dev-api-key");
    let key = std::fs::read_to_string(&path).unwrap();
    let key = key.trim();
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(
        mode & 0o077,
        0,
        "the key file is readable by others: {mode:o}"
    );
    assert_eq!(status(&server, key).await, 200);
    let token = cli(&server, &["token", "--user", "alice"]).await.unwrap();
    assert_eq!(status(&server, &token).await, 200);
    assert_eq!(status(&server, "garbage").await, 401);
    assert!(!server.log().contains(key), "the log shows the key");
    assert!(server.log().contains("dev-api-key"), "{}", server.log());
}
