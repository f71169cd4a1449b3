use std::time::Duration;

use serde_json::json;

use crate::broadcast;
use crate::clients::{SocketIoClient, Transports};
use crate::common::{Backing, Server};

#[tokio::test]
async fn socket_io_client_receives_notifications_as_the_seed_did() {
    let backing = Backing::real().await;
    let server = Server::start(&backing, &[]).await;
    for transports in Transports::ALL {
        let mut client = SocketIoClient::connect_over(transports, &server.base, None).await;
        client.expect("connect").await;
        let recovered = client.expect("recovered").await;
        assert_eq!(recovered["args"][0]["complete"], true, "{transports:?}");

        let created = server.create(broadcast("hello over Socket.IO")).await;
        let event = client.expect("notification").await;
        assert_eq!(
            event["args"][0], created,
            "{transports:?}: the first argument is the plain notification"
        );
        assert_eq!(
            event["args"][1], created["sequence"],
            "{transports:?}: the second is the stream position"
        );
        let updated = client.expect("notification:updated").await;
        assert_eq!(updated["args"][0]["id"], created["id"], "{transports:?}");
        assert_eq!(updated["args"][0]["status"], "delivered", "{transports:?}");
        client.close().await;
    }
}

#[tokio::test]
async fn reconnecting_with_the_last_sequence_recovers_the_missed_notifications() {
    let backing = Backing::real().await;
    let server = Server::start(&backing, &[]).await;
    for transports in Transports::ALL {
        let mut created = Vec::new();
        for n in 0..4 {
            created.push(
                server
                    .create(broadcast(&format!("missed {n} ({transports:?})")))
                    .await,
            );
        }
        let auth = json!({"lastSequence": created[0]["sequence"]});
        let mut client = SocketIoClient::connect_over(transports, &server.base, Some(auth)).await;
        client.expect("connect").await;
        for expected in &created[1..] {
            // Replayed events carry the notification as it is now, so compare identities.
            let replayed = client.expect("notification").await;
            assert_eq!(replayed["args"][0]["id"], expected["id"], "{transports:?}");
            assert_eq!(replayed["args"][0]["message"], expected["message"]);
        }
        let recovered = client.expect("recovered").await;
        assert_eq!(recovered["args"][0]["complete"], true, "{transports:?}");
        let last = recovered["args"][0]["lastSequence"].as_i64().unwrap();
        assert!(
            last >= created[3]["sequence"].as_i64().unwrap(),
            "{transports:?}: {recovered}"
        );
        let live = server.create(broadcast("live")).await;
        assert_eq!(
            client.expect("notification").await["args"][0],
            live,
            "{transports:?}: no duplicate, no gap"
        );
        client.close().await;
    }
}

#[tokio::test]
async fn invalid_handshake_auth_is_refused_with_a_reason() {
    let server = Server::embedded(&[]).await;
    for transports in Transports::ALL {
        for (auth, names) in [
            (json!({"lastSequence": "later"}), "lastSequence"),
            (json!({"userId": 7}), "userId"),
        ] {
            let mut client =
                SocketIoClient::connect_over(transports, &server.base, Some(auth)).await;
            let refused = client.expect("connect_error").await;
            assert!(
                refused["message"].as_str().unwrap().contains(names),
                "{transports:?}: {refused}"
            );
        }
    }
}

#[tokio::test]
async fn a_namespace_other_than_the_root_is_refused() {
    let server = Server::embedded(&[]).await;
    for transports in Transports::ALL {
        let url = format!("{}/admin", server.base);
        let mut client = SocketIoClient::connect_over(transports, &url, None).await;
        let refused = client.expect("connect_error").await;
        assert_eq!(refused["message"], "Invalid namespace", "{transports:?}");
    }
}

#[tokio::test]
async fn a_client_that_connects_while_the_database_is_down_is_told_to_come_back() {
    let postgres = test_support::PrivateEnv::start(&["postgres"]).await;
    let backing = Backing::real().await;
    let server = Server::start(&backing, &[("DATABASE_URL", postgres.var("DATABASE_URL"))]).await;
    let before = server.create(broadcast("before the outage")).await;
    postgres.stop("postgres").await;
    let auth = json!({"lastSequence": before["sequence"]});
    for transports in Transports::ALL {
        let mut client =
            SocketIoClient::connect_over(transports, &server.base, Some(auth.clone())).await;
        client.expect("connect").await;
        let error = client.expect("error").await;
        assert_eq!(error["args"][0]["code"], "unavailable", "{transports:?}");
        assert_eq!(
            error["args"][0]["lastSequence"], before["sequence"],
            "{transports:?}: where to resume is still where the client asked"
        );
        client.expect("disconnect").await;
    }

    postgres.restart("postgres").await;
    // Pooled connections to the old server fail once each and are replaced.
    let mut attempts = 0;
    let during = loop {
        attempts += 1;
        assert!(
            attempts < 50,
            "POST still fails after the database returned"
        );
        let response = server
            .client()
            .post(server.url("/api/notifications"))
            .json(&broadcast("after the outage"))
            .send()
            .await
            .unwrap();
        if response.status() == 201 {
            break response.json::<serde_json::Value>().await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for transports in Transports::ALL {
        let mut client =
            SocketIoClient::connect_over(transports, &server.base, Some(auth.clone())).await;
        client.expect("connect").await;
        let replayed = client.expect("notification").await;
        assert_eq!(replayed["args"][0]["id"], during["id"], "{transports:?}");
        let recovered = client.expect("recovered").await;
        assert_eq!(recovered["args"][0]["complete"], true, "{transports:?}");
        client.close().await;
    }
    drop(postgres);
}

#[tokio::test]
async fn a_websocket_client_that_answers_no_ping_is_closed() {
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let server = Server::embedded(&[("STREAM_KEEPALIVE_SECONDS", "1")]).await;
    let mut socket = crate::clients::stalled_socket_io(server.port).await;
    // Read everything, answer nothing: the second unanswered ping ends the connection.
    let pings = crate::clients::within("the connection to close", async {
        let mut pings = 0;
        loop {
            match socket.next().await {
                Some(Ok(Message::Text(text))) if text.as_str() == "2" => pings += 1,
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return pings,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(pings >= 2, "closed after {pings} pings");
}

#[tokio::test]
async fn clients_that_answer_pings_stay_connected() {
    let server = Server::embedded(&[("STREAM_KEEPALIVE_SECONDS", "1")]).await;
    for transports in Transports::ALL {
        let mut client = SocketIoClient::connect_over(transports, &server.base, None).await;
        client.expect("connect").await;
        client.expect("recovered").await;
        // Several pings go by; a client the server thought silent would be closed by now.
        tokio::time::sleep(Duration::from_millis(3500)).await;
        let created = server.create(broadcast("still here")).await;
        assert_eq!(
            client.expect("notification").await["args"][0],
            created,
            "{transports:?}"
        );
        client.close().await;
    }
}

#[tokio::test]
async fn shutdown_closes_connections_so_clients_reconnect() {
    let backing = Backing::real().await;
    let mut server = Server::start(&backing, &[]).await;
    let mut clients = Vec::new();
    for transports in Transports::ALL {
        let mut client = SocketIoClient::connect_over(transports, &server.base, None).await;
        client.expect("connect").await;
        client.expect("recovered").await;
        clients.push((transports, client));
    }
    assert!(
        server.terminate().await,
        "api-server exited non-zero:\n{}",
        server.log()
    );
    for (transports, mut client) in clients {
        let disconnect = client.expect("disconnect").await;
        // "io server disconnect" would tell socket.io-client not to reconnect; a transport
        // reason makes it reconnect ("transport error" if a long-polling client's next poll
        // finds the session gone before it saw the close).
        let reason = disconnect["reason"].as_str().unwrap_or_default();
        assert!(
            ["transport close", "transport error"].contains(&reason),
            "{transports:?}: {disconnect}"
        );
    }
}
