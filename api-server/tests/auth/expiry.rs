//! A token that expires while its stream is open: the stream says `token_expired` and ends;
//! the client reconnects with a new token from where it was, and nothing is lost.

use serde_json::{Value, json};

use crate::clients::{SocketIoClient, SseClient, WsClient, WsItem};
use crate::tokens::{self, claims, hs256, now};
use crate::{Secured, broadcast};

/// A user token that expires in `seconds`.
fn short_lived(user: &str, seconds: u64) -> String {
    let mut claims = claims(user);
    claims["exp"] = (now() + seconds).into();
    hs256(&claims)
}

#[tokio::test]
async fn an_expiring_token_ends_each_stream_and_a_new_one_resumes_without_loss() {
    let secured = Secured::embedded(&[
        ("JWT_LEEWAY_SECONDS", "0"),
        ("STREAM_KEEPALIVE_SECONDS", "1"),
    ])
    .await;
    let server = &secured.server;

    // SSE: an `error` event, then the end of the stream.
    let mut sse = SseClient::open(
        server
            .client()
            .get(server.url("/api/sse/notifications"))
            .bearer_auth(short_lived("alice", 3)),
    )
    .await;
    sse.expect("recovered").await;
    let before = secured.publish(broadcast("sse before expiry")).await;
    assert_eq!(sse.expect("notification").await.json()["id"], before["id"]);
    let error = sse.expect("error").await.json();
    assert_eq!(error["code"], "token_expired", "{error}");
    assert!(
        sse.next().await.is_none(),
        "the SSE stream goes on after expiry"
    );
    let after = secured.publish(broadcast("sse after expiry")).await;
    let last = error["lastSequence"].as_i64().unwrap();
    let mut renewed = SseClient::open(
        server
            .client()
            .get(server.url(&format!("/api/sse/notifications?since={last}")))
            .bearer_auth(tokens::user("alice")),
    )
    .await;
    assert_eq!(
        renewed.expect("notification").await.json()["id"],
        after["id"]
    );

    // WebSocket: an `error` frame, then close 4001.
    let token = short_lived("alice", 3);
    let mut ws = WsClient::connect(&server.ws_url(&format!("/api/ws?access_token={token}"))).await;
    ws.expect("recovered").await;
    let before = secured.publish(broadcast("ws before expiry")).await;
    assert_eq!(
        ws.expect("notification").await["notification"]["id"],
        before["id"]
    );
    let error = ws.expect("error").await;
    assert_eq!(error["code"], "token_expired", "{error}");
    match ws.next().await {
        WsItem::Closed(Some(close)) => assert_eq!(u16::from(close.code), 4001, "{close:?}"),
        other => panic!("expected close 4001, got {other:?}"),
    }
    let after = secured.publish(broadcast("ws after expiry")).await;
    let last = error["lastSequence"].as_i64().unwrap();
    let fresh = tokens::user("alice");
    let mut renewed =
        WsClient::connect(&server.ws_url(&format!("/api/ws?access_token={fresh}&since={last}")))
            .await;
    assert_eq!(
        renewed.expect("notification").await["notification"]["id"],
        after["id"]
    );
    renewed.close().await;

    // Socket.IO: an `error` event, then `io server disconnect`.
    let auth = json!({"token": short_lived("alice", 3)});
    let mut io = SocketIoClient::connect(&server.base, Some(auth)).await;
    io.expect("connect").await;
    io.expect("recovered").await;
    let before = secured.publish(broadcast("socket.io before expiry")).await;
    assert_eq!(
        io.expect("notification").await["args"][0]["id"],
        before["id"]
    );
    let error: Value = io.expect("error").await["args"][0].clone();
    assert_eq!(error["code"], "token_expired", "{error}");
    assert_eq!(
        io.expect("disconnect").await["reason"],
        "io server disconnect"
    );
    let after = secured.publish(broadcast("socket.io after expiry")).await;
    let auth = json!({"token": tokens::user("alice"), "lastSequence": error["lastSequence"]});
    let mut renewed = SocketIoClient::connect(&server.base, Some(auth)).await;
    renewed.expect("connect").await;
    assert_eq!(
        renewed.expect("notification").await["args"][0]["id"],
        after["id"]
    );
    renewed.close().await;

    // An expired token cannot connect at all; socket.io-client gets the reason as data.code.
    let mut expired = claims("alice");
    expired["exp"] = (now() - 1).into();
    let auth = json!({"token": hs256(&expired)});
    let mut refused = SocketIoClient::connect(&server.base, Some(auth)).await;
    let error = refused.expect("connect_error").await;
    assert_eq!(error["data"]["code"], "token_expired", "{error}");
    let mut anonymous = SocketIoClient::connect(&server.base, None).await;
    let error = anonymous.expect("connect_error").await;
    assert_eq!(error["data"]["code"], "missing_credentials", "{error}");
}
