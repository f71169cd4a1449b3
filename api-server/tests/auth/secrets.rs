//! Secrets stay out of what the server shows: `--help`, start-up errors, logs; and clients
//! cannot mint metric series with made-up methods.

use reqwest::Method;

use crate::Secured;

const SECRET: &str = "TopSecretPassw0rd";

async fn api_server(args: &[&str], env: &[(&str, String)]) -> (bool, String) {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_api-server"))
        .args(args)
        .env_remove("KAFKA_BROKERS")
        .env("HERALD_INSECURE_NO_AUTH", "true")
        .env("HERALD_DATA_DIR", tempfile::tempdir().unwrap().path())
        .env("PORT", "0")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .await
        .expect("running api-server");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[tokio::test]
async fn connection_passwords_never_show() {
    let env = [
        (
            "DATABASE_URL",
            format!("postgres://herald:{SECRET}@db.invalid/herald"),
        ),
        ("REDIS_URL", format!("redis://:{SECRET}@127.0.0.1:1")),
        ("KAFKA_PROPERTIES", format!("sasl.password={SECRET}")),
    ];
    let (ok, help) = api_server(&["--help"], &env).await;
    assert!(ok && help.contains("DATABASE_URL"), "{help}");
    assert!(!help.contains(SECRET), "--help shows a secret:\n{help}");

    let env = [("DATABASE_URL", format!("mysql://herald:{SECRET}@db/herald"))];
    let (ok, error) = api_server(&[], &env).await;
    assert!(!ok && error.contains("unsupported database URL"), "{error}");
    assert!(!error.contains(SECRET), "{error}");
    assert!(error.contains("mysql://herald:***@db/herald"), "{error}");

    let env = [("REDIS_URL", format!("redis://:{SECRET}@127.0.0.1:1"))];
    let (ok, error) = api_server(&[], &env).await;
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
    let metrics = server
        .client()
        .get(server.url("/metrics"))
        .bearer_auth(&secured.keys.admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!metrics.contains("BREW"), "{metrics}");
    assert!(metrics.contains(r#"method="other""#), "{metrics}");
}
