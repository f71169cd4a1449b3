//! A real browser: Chromium's EventSource and WebSocket with the user's token in the query,
//! and fetch with an Authorization header, from an allowed origin and from a foreign one.

use serde_json::Value;
use tokio::sync::OnceCell;

use crate::clients::npm_modules;
use crate::common::free_port;
use crate::{Secured, tokens};

const CHROMIUM: &str = "/usr/bin/chromium";

async fn playwright() -> &'static std::path::PathBuf {
    static MODULES: OnceCell<std::path::PathBuf> = OnceCell::const_new();
    MODULES
        .get_or_init(|| npm_modules("playwright-core-1", "playwright-core@1", "playwright-core"))
        .await
}

fn messages<'a>(seen: &'a [Value], via: &str) -> Vec<&'a str> {
    seen.iter()
        .filter(|e| e["via"] == via && e["kind"] == "notification")
        .filter_map(|e| e["message"].as_str())
        .collect()
}

#[tokio::test]
async fn a_browser_streams_its_own_notifications_and_a_foreign_origin_is_refused() {
    assert!(
        std::path::Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: scripts/testenv install puts Debian's chromium there"
    );
    let (allowed_port, foreign_port) = (free_port(), free_port());
    let origin = format!("http://127.0.0.1:{allowed_port}");
    let secured = Secured::embedded(&[("CORS_ALLOWED_ORIGINS", origin.as_str())]).await;
    let output = tokio::process::Command::new("node")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/browser/run.cjs"
        ))
        .env("NODE_PATH", playwright().await)
        .env("API", &secured.server.base)
        .env("TOKEN", tokens::user("alice"))
        .env("PUBLISH_KEY", &secured.keys.publisher)
        .env("ALLOWED_PORT", allowed_port.to_string())
        .env("FOREIGN_PORT", foreign_port.to_string())
        .env("CHROMIUM", CHROMIUM)
        .kill_on_drop(true)
        .output()
        .await
        .expect("running node");
    assert!(
        output.status.success(),
        "the browser run failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let seen: Value = serde_json::from_slice(&output.stdout).expect("one JSON line");
    let allowed = seen["allowed"].as_array().unwrap();
    for via in ["sse", "ws"] {
        let got = messages(allowed, via);
        for wanted in ["browser alice", "browser everyone", "browser end"] {
            assert!(
                got.contains(&wanted),
                "{via} missed {wanted:?}: {allowed:?}"
            );
        }
        assert!(
            !got.contains(&"browser bob"),
            "{via} got bob's: {allowed:?}"
        );
    }
    assert!(
        allowed
            .iter()
            .any(|e| e["via"] == "fetch" && e["status"] == 200),
        "{allowed:?}"
    );
    // The foreign page: CORS blocks the EventSource and the fetch, the server the WebSocket.
    let foreign = seen["foreign"].as_array().unwrap();
    assert!(
        !foreign
            .iter()
            .any(|e| e["kind"] == "recovered" || e["kind"] == "notification"),
        "a foreign origin streamed: {foreign:?}"
    );
    assert!(
        foreign
            .iter()
            .any(|e| e["via"] == "sse" && e["kind"] == "error")
    );
    assert!(
        foreign
            .iter()
            .any(|e| e["via"] == "fetch" && e["kind"] == "blocked")
    );
    assert!(
        foreign
            .iter()
            .any(|e| e["via"] == "ws" && e["kind"] == "close" && e["code"] == 1006)
    );
}
