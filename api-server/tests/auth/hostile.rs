//! Hostile and mistaken credentials on every surface, each with its exact status and code.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::Method;
use serde_json::{Value, json};

use crate::tokens::{self, claims, hs256, now, unsigned};
use crate::{Secured, cli, for_user};

struct Case {
    name: &'static str,
    method: Method,
    path: String,
    /// The `Authorization: Bearer` token.
    token: Option<String>,
    /// Extra headers (an `Origin`, a WebSocket handshake, another scheme).
    headers: Vec<(&'static str, String)>,
    body: Option<Value>,
    status: u16,
    code: &'static str,
}

fn case(name: &'static str, method: Method, path: &str, token: Option<String>) -> Case {
    Case {
        name,
        method,
        path: path.to_owned(),
        token,
        headers: Vec::new(),
        body: None,
        status: 401,
        code: "",
    }
}

impl Case {
    fn expect(mut self, status: u16, code: &'static str) -> Self {
        self.status = status;
        self.code = code;
        self
    }

    fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.to_owned()));
        self
    }

    fn websocket(self) -> Self {
        self.header("connection", "upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-version", "13")
            .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
    }

    fn body(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }
}

fn with(changes: Value) -> Value {
    let mut claims = claims("alice");
    for (key, value) in changes.as_object().unwrap() {
        if value.is_null() {
            claims.as_object_mut().unwrap().remove(key);
        } else {
            claims[key] = value.clone();
        }
    }
    claims
}

fn user_token(changes: Value) -> Option<String> {
    Some(hs256(&with(changes)))
}

#[tokio::test]
async fn every_hostile_credential_gets_its_exact_status_and_code() {
    let secured = Secured::embedded(&[("RATE_LIMIT_AUTH_FAILURES", "0")]).await;
    let server = &secured.server;
    let bobs = secured.publish(for_user("for bob only", "bob")).await;
    let bobs_id = bobs["id"].as_str().unwrap().to_owned();
    // A key that existed and was revoked.
    let revoked = cli(
        server,
        &["keys", "create", "--name", "gone", "--scopes", "admin"],
    )
    .await
    .unwrap();
    cli(server, &["keys", "revoke", "gone"]).await.unwrap();

    let alice = tokens::user("alice");
    let keys = &secured.keys;
    let list = "/api/notifications";
    let tampered = {
        let token = tokens::user("alice");
        let parts: Vec<&str> = token.split('.').collect();
        let bob_claims = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            claims("bob").to_string(),
        );
        format!("{}.{}.{}", parts[0], bob_claims, parts[2])
    };
    let wrong_secret = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims("alice"),
        &EncodingKey::from_secret(b"not-the-server-secret-not-the-server-secret"),
    )
    .unwrap();
    let cases = vec![
        case("no credential", Method::GET, list, None).expect(401, "missing_credentials"),
        case("garbage token", Method::GET, list, Some("garbage".into()))
            .expect(401, "invalid_token"),
        case("Basic scheme", Method::GET, list, None)
            .header("authorization", "Basic YWxpY2U6cGFzc3dvcmQ=")
            .expect(401, "invalid_token"),
        case("Bearer with nothing", Method::GET, list, None)
            .header("authorization", "Bearer")
            .expect(401, "invalid_token"),
        case("wrong HMAC secret", Method::GET, list, Some(wrong_secret))
            .expect(401, "invalid_signature"),
        case(
            "alg none",
            Method::GET,
            list,
            Some(unsigned(
                &json!({"alg": "none", "typ": "JWT"}),
                &claims("alice"),
            )),
        )
        .expect(401, "invalid_token"),
        case(
            "alg None",
            Method::GET,
            list,
            Some(unsigned(&json!({"alg": "None"}), &claims("alice"))),
        )
        .expect(401, "invalid_token"),
        case(
            "RS256 token on an HMAC server",
            Method::GET,
            list,
            Some(tokens::rs256(&claims("alice"))),
        )
        .expect(401, "invalid_algorithm"),
        case(
            "claims changed after signing",
            Method::GET,
            list,
            Some(tampered),
        )
        .expect(401, "invalid_signature"),
        case(
            "expired",
            Method::GET,
            list,
            user_token(json!({"exp": now() - 60})),
        )
        .expect(401, "token_expired"),
        case(
            "not yet valid",
            Method::GET,
            list,
            user_token(json!({"nbf": now() + 600})),
        )
        .expect(401, "token_not_yet_valid"),
        case(
            "wrong audience",
            Method::GET,
            list,
            user_token(json!({"aud": "another-service"})),
        )
        .expect(401, "invalid_audience"),
        case(
            "no audience",
            Method::GET,
            list,
            user_token(json!({"aud": null})),
        )
        .expect(401, "invalid_token"),
        case(
            "wrong issuer",
            Method::GET,
            list,
            user_token(json!({"iss": "https://evil.test"})),
        )
        .expect(401, "invalid_issuer"),
        case(
            "no issuer",
            Method::GET,
            list,
            user_token(json!({"iss": null})),
        )
        .expect(401, "invalid_token"),
        case(
            "no sub",
            Method::GET,
            list,
            user_token(json!({"sub": null})),
        )
        .expect(401, "invalid_token"),
        case(
            "empty sub",
            Method::GET,
            list,
            user_token(json!({"sub": ""})),
        )
        .expect(401, "invalid_token"),
        case(
            "no exp",
            Method::GET,
            list,
            user_token(json!({"exp": null})),
        )
        .expect(401, "invalid_token"),
        case(
            "API key-shaped garbage",
            Method::GET,
            list,
            Some("hk_nothing".into()),
        )
        .expect(401, "invalid_api_key"),
        case(
            "unknown API key",
            Method::GET,
            list,
            Some(tokens::api_key(0xdead)),
        )
        .expect(401, "invalid_api_key"),
        case("revoked API key", Method::GET, list, Some(revoked)).expect(401, "invalid_api_key"),
        case(
            "publish key reads",
            Method::GET,
            list,
            Some(keys.publisher.clone()),
        )
        .expect(403, "insufficient_scope"),
        case(
            "read key publishes",
            Method::POST,
            list,
            Some(keys.reader.clone()),
        )
        .body(json!({"message": "x", "type": "info"}))
        .expect(403, "insufficient_scope"),
        case("user publishes", Method::POST, list, Some(alice.clone()))
            .body(json!({"message": "x", "type": "info"}))
            .expect(403, "insufficient_scope"),
        case(
            "user lists another user's",
            Method::GET,
            "/api/notifications?userId=bob",
            Some(alice.clone()),
        )
        .expect(403, "forbidden_user"),
        case(
            "user reads another user's notification",
            Method::GET,
            &format!("/api/notifications/{bobs_id}"),
            Some(alice.clone()),
        )
        .expect(404, "not_found"),
        case(
            "user reads another user's counters",
            Method::GET,
            "/api/users/bob",
            Some(alice.clone()),
        )
        .expect(403, "forbidden_user"),
        case(
            "user marks another user's seen",
            Method::PUT,
            "/api/users/bob/seen",
            Some(alice.clone()),
        )
        .expect(403, "forbidden_user"),
        case(
            "read key marks seen",
            Method::PUT,
            "/api/users/bob/seen",
            Some(keys.reader.clone()),
        )
        .expect(403, "insufficient_scope"),
        case(
            "user lists job runs",
            Method::GET,
            "/api/jobs",
            Some(alice.clone()),
        )
        .expect(403, "insufficient_scope"),
        case(
            "metrics without a credential",
            Method::GET,
            "/metrics",
            None,
        )
        .expect(401, "missing_credentials"),
        case(
            "metrics with a read key",
            Method::GET,
            "/metrics",
            Some(keys.reader.clone()),
        )
        .expect(403, "insufficient_scope"),
        case(
            "SSE without a credential",
            Method::GET,
            "/api/sse/notifications",
            None,
        )
        .expect(401, "missing_credentials"),
        case(
            "SSE with a garbage access_token",
            Method::GET,
            "/api/sse/notifications?access_token=garbage",
            None,
        )
        .expect(401, "invalid_token"),
        case(
            "SSE with an expired access_token",
            Method::GET,
            &format!(
                "/api/sse/notifications?access_token={}",
                hs256(&with(json!({"exp": now() - 60})))
            ),
            None,
        )
        .expect(401, "token_expired"),
        case(
            "SSE for another user",
            Method::GET,
            "/api/sse/notifications?userId=bob",
            Some(alice.clone()),
        )
        .expect(403, "forbidden_user"),
        case(
            "SSE with a publish key",
            Method::GET,
            "/api/sse/notifications",
            Some(keys.publisher.clone()),
        )
        .expect(403, "insufficient_scope"),
        case(
            "WebSocket from a foreign origin",
            Method::GET,
            "/api/ws",
            Some(alice.clone()),
        )
        .websocket()
        .header("origin", "https://evil.example")
        .expect(403, "origin_not_allowed"),
        case(
            "WebSocket without a credential",
            Method::GET,
            "/api/ws",
            None,
        )
        .websocket()
        .expect(401, "missing_credentials"),
        case(
            "WebSocket for another user",
            Method::GET,
            &format!("/api/ws?userId=bob&access_token={alice}"),
            None,
        )
        .websocket()
        .expect(403, "forbidden_user"),
        case(
            "Socket.IO WebSocket from a foreign origin",
            Method::GET,
            "/socket.io/?EIO=4&transport=websocket",
            None,
        )
        .websocket()
        .header("origin", "https://evil.example")
        .expect(403, "origin_not_allowed"),
    ];
    assert!(cases.len() >= 30);
    let mut failures = Vec::new();
    for case in &cases {
        let mut request = server
            .client()
            .request(case.method.clone(), server.url(&case.path));
        if let Some(token) = &case.token {
            request = request.bearer_auth(token);
        }
        for (name, value) in &case.headers {
            request = request.header(*name, value);
        }
        if let Some(body) = &case.body {
            request = request.json(body);
        }
        let response = request.send().await.expect("a response");
        let status = response.status().as_u16();
        let challenge = response.headers().get("www-authenticate").cloned();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let code = body["error"]["code"].as_str().unwrap_or("");
        if status != case.status || code != case.code {
            failures.push(format!(
                "{}: got {status} {code:?}, expected {} {:?} ({body})",
                case.name, case.status, case.code
            ));
        }
        if status == 401 && challenge.is_none() {
            failures.push(format!("{}: a 401 without WWW-Authenticate", case.name));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The refusals are counted by reason.
    let metrics = secured.metrics().await;
    assert!(
        metrics.contains(r#"herald_auth_failures_total{code="token_expired"} 2"#),
        "{metrics}"
    );
}
