//! Secrets stay out of what the server shows: `--help`, start-up errors, logs; and clients
//! cannot mint metric series with made-up methods.

use reqwest::Method;

use crate::{Secured, run_api_server};

const SECRET: &str = "TopSecretPassw0rd";

#[tokio::test]
async fn connection_passwords_never_show() {
    let database = format!("postgres://herald:{SECRET}@db.invalid/herald");
    let redis = format!("redis://:{SECRET}@127.0.0.1:1");
    let kafka = format!("sasl.password={SECRET}");
    let env = [
        ("DATABASE_URL", database.as_str()),
        ("REDIS_URL", redis.as_str()),
        ("KAFKA_PROPERTIES", kafka.as_str()),
    ];
    let (ok, help) = run_api_server(&["--help"], &env).await;
    assert!(ok && help.contains("DATABASE_URL"), "{help}");
    assert!(!help.contains(SECRET), "--help shows a secret:\n{help}");

    let mysql = format!("mysql://herald:{SECRET}@db/herald");
    let (ok, error) = run_api_server(&[], &[("DATABASE_URL", mysql.as_str())]).await;
    assert!(!ok && error.contains("unsupported database URL"), "{error}");
    assert!(!error.contains(SECRET), "{error}");
    assert!(error.contains("mysql://herald:***@db/herald"), "{error}");

    let (ok, error) = run_api_server(&[], &[("REDIS_URL", redis.as_str())]).await;
    assert!(
        !ok && error.contains("connecting to Redis at redis://:***@127.0.0.1:1"),
        "{error}"
    );
    assert!(!error.contains(SECRET), "{error}");
}

#[tokio::test]
async fn a_made_up_method_is_counted_as_other() {
    let secured = Secured::embedded(&[]).await;
    let server = &secured.server;
    let made_up = Method::from_bytes(b"BREW").unwrap();
    let response = server
        .client()
        .request(made_up, server.url("/api/notifications"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    let metrics = secured.metrics().await;
    assert!(!metrics.contains("BREW"), "{metrics}");
    assert!(metrics.contains(r#"method="other""#), "{metrics}");
}
