//! Two users on one server, over each transport: neither ever receives the other's
//! notifications, live or replayed after a reconnect, and the REST API agrees.

use reqwest::Method;
use serde_json::{Value, json};

use crate::clients::{SocketIoClient, SseClient, WsClient, WsItem};
use crate::common::Backing;
use crate::{Secured, broadcast, call, for_user, tokens};

#[derive(Debug, Clone, Copy)]
enum Transport {
    Sse,
    WebSocket,
    SocketIo,
}

/// A stream of one user's, reduced to what matters here: the notifications it carries.
enum Stream {
    Sse(SseClient),
    Ws(WsClient),
    SocketIo(SocketIoClient),
}

impl Stream {
    /// Opens a stream with `token` (from `since` when given) and waits for `recovered`; the
    /// notifications replayed before it.
    async fn open(
        secured: &Secured,
        transport: Transport,
        token: &str,
        since: Option<i64>,
    ) -> (Self, Vec<Value>) {
        let server = &secured.server;
        let since_query = since.map_or(String::new(), |s| format!("&since={s}"));
        let mut stream = match transport {
            Transport::Sse => Self::Sse(
                SseClient::open(
                    server
                        .client()
                        .get(server.url(&format!("/api/sse/notifications?x=1{since_query}")))
                        .bearer_auth(token),
                )
                .await,
            ),
            // Browsers cannot set headers on a WebSocket: the query parameter.
            Transport::WebSocket => Self::Ws(
                WsClient::connect(
                    &server.ws_url(&format!("/api/ws?access_token={token}{since_query}")),
                )
                .await,
            ),
            Transport::SocketIo => {
                let mut auth = json!({"token": token});
                if let Some(since) = since {
                    auth["lastSequence"] = since.into();
                }
                let mut client = SocketIoClient::connect(&server.base, Some(auth)).await;
                client.expect("connect").await;
                Self::SocketIo(client)
            }
        };
        let replayed = stream.until(|kind, _| kind == "recovered").await;
        (stream, replayed)
    }

    /// The next item: its kind and the notification it carries (if any).
    async fn next(&mut self) -> (String, Option<Value>) {
        match self {
            Self::Sse(client) => {
                let event = client.next().await.expect("the SSE stream ended");
                let notification = event
                    .event
                    .starts_with("notification")
                    .then(|| event.json());
                (event.event, notification)
            }
            Self::Ws(client) => match client.next().await {
                WsItem::Frame(frame) => {
                    let kind = frame["type"].as_str().unwrap().to_owned();
                    (kind, frame.get("notification").cloned())
                }
                WsItem::Closed(close) => panic!("the WebSocket closed: {close:?}"),
            },
            Self::SocketIo(client) => {
                let event = client.next().await.expect("the Socket.IO client exited");
                let kind = event["event"].as_str().unwrap().to_owned();
                let notification = kind
                    .starts_with("notification")
                    .then(|| event["args"][0].clone());
                (kind, notification)
            }
        }
    }

    /// Every notification (created or updated) until an item `stop` accepts.
    async fn until(&mut self, stop: impl Fn(&str, Option<&Value>) -> bool) -> Vec<Value> {
        let mut seen = Vec::new();
        loop {
            let (kind, notification) = self.next().await;
            if stop(&kind, notification.as_ref()) {
                if let Some(notification) = notification {
                    seen.push(notification);
                }
                return seen;
            }
            seen.extend(notification);
        }
    }

    async fn close(self) {
        match self {
            Self::Sse(_) => {}
            Self::Ws(client) => client.close().await,
            Self::SocketIo(client) => client.close().await,
        }
    }
}

fn messages(notifications: &[Value]) -> Vec<String> {
    let mut messages: Vec<String> = notifications
        .iter()
        .map(|n| n["message"].as_str().unwrap().to_owned())
        .collect();
    messages.sort();
    messages.dedup();
    messages
}

/// Fails unless every notification is a broadcast or `user`'s.
fn only_for(user: &str, notifications: &[Value], context: &str) {
    for notification in notifications {
        let target = notification["userId"].as_str();
        assert!(
            target.is_none_or(|t| t == user),
            "{context}: {user} received {notification}"
        );
    }
}

#[tokio::test]
async fn users_never_receive_each_others_notifications_on_any_transport() {
    let backing = Backing::real().await;
    let secured = Secured::real(&backing, &[]).await;
    let users = ["alice", "bob"];
    let tokens: Vec<String> = users.iter().map(|u| tokens::user(u)).collect();
    for transport in [Transport::Sse, Transport::WebSocket, Transport::SocketIo] {
        let tag = format!("{transport:?}");
        let mut streams = Vec::new();
        for token in &tokens {
            streams.push(Stream::open(&secured, transport, token, None).await.0);
        }
        let first = secured
            .publish(for_user(&format!("{tag} alice 1"), "alice"))
            .await;
        secured
            .publish(for_user(&format!("{tag} bob 1"), "bob"))
            .await;
        secured.publish(broadcast(&format!("{tag} everyone"))).await;
        let end = format!("{tag} end");
        secured.publish(broadcast(&end)).await;
        for ((user, stream), token) in users.iter().zip(&mut streams).zip(&tokens) {
            let live = stream
                .until(|_, n| n.is_some_and(|n| n["message"] == end.as_str()))
                .await;
            only_for(user, &live, &format!("{tag} live"));
            // Status updates of the previous transport's notifications may still arrive.
            let ours: Vec<String> = messages(&live)
                .into_iter()
                .filter(|m| m.starts_with(&tag))
                .collect();
            assert_eq!(
                ours,
                [
                    format!("{tag} {user} 1"),
                    format!("{tag} end"),
                    format!("{tag} everyone")
                ],
                "{tag} live"
            );
            // Reconnecting from before the first of them replays the same, and no more.
            let since = first["sequence"].as_i64().unwrap() - 1;
            let (replay, replayed) = Stream::open(&secured, transport, token, Some(since)).await;
            only_for(user, &replayed, &format!("{tag} replay"));
            assert!(
                messages(&replayed).contains(&format!("{tag} {user} 1")),
                "{tag} replay: {replayed:?}"
            );
            replay.close().await;
        }
        for stream in streams {
            stream.close().await;
        }
    }
    // The REST API agrees: each user's list and reads.
    for (user, token) in users.iter().zip(&tokens) {
        let (status, _, page) = call(
            &secured.server,
            Method::GET,
            "/api/notifications?limit=500",
            Some(token),
            None,
        )
        .await;
        assert_eq!(status, 200, "{page}");
        let listed = page["notifications"].as_array().unwrap();
        only_for(user, listed, "the REST list");
        assert!(listed.iter().any(|n| n["userId"] == *user));
        assert!(listed.iter().any(|n| n["userId"].is_null()));
    }
    // A service with read:all sees both.
    let (_, _, page) = call(
        &secured.server,
        Method::GET,
        "/api/notifications?limit=500",
        Some(&secured.keys.reader),
        None,
    )
    .await;
    let all = page["notifications"].as_array().unwrap();
    for user in users {
        assert!(
            all.iter().any(|n| n["userId"] == user),
            "{user} missing for read:all"
        );
    }
}
