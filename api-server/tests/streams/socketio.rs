use serde_json::json;

use crate::broadcast;
use crate::clients::SocketIoClient;
use crate::common::{Backing, Server};

#[tokio::test]
async fn socket_io_client_receives_notifications_as_the_seed_did() {
    let backing = Backing::real().await;
    let server = Server::start(&backing, &[]).await;
    let mut client = SocketIoClient::connect(&server.base, None).await;
    client.expect("connect").await;
    let recovered = client.expect("recovered").await;
    assert_eq!(recovered["args"][0]["complete"], true);

    let created = server.create(broadcast("hello over Socket.IO")).await;
    let event = client.expect("notification").await;
    assert_eq!(
        event["args"][0], created,
        "the first argument is the plain notification"
    );
    assert_eq!(
        event["args"][1], created["sequence"],
        "the second is the stream position"
    );
    client.close().await;
}

#[tokio::test]
async fn reconnecting_with_the_last_sequence_recovers_the_missed_notifications() {
    let backing = Backing::real().await;
    let server = Server::start(&backing, &[]).await;
    let mut created = Vec::new();
    for n in 0..4 {
        created.push(server.create(broadcast(&format!("missed {n}"))).await);
    }
    let auth = json!({"lastSequence": created[0]["sequence"]});
    let mut client = SocketIoClient::connect(&server.base, Some(auth)).await;
    client.expect("connect").await;
    for expected in &created[1..] {
        // Replayed events carry the notification as it is now, so compare identities.
        let replayed = client.expect("notification").await;
        assert_eq!(replayed["args"][0]["id"], expected["id"]);
        assert_eq!(replayed["args"][0]["message"], expected["message"]);
    }
    let recovered = client.expect("recovered").await;
    assert_eq!(recovered["args"][0]["complete"], true);
    let last = recovered["args"][0]["lastSequence"].as_i64().unwrap();
    assert!(
        last >= created[3]["sequence"].as_i64().unwrap(),
        "{recovered}"
    );
    let live = server.create(broadcast("live")).await;
    assert_eq!(
        client.expect("notification").await["args"][0],
        live,
        "no duplicate, no gap"
    );
    client.close().await;
}

#[tokio::test]
async fn invalid_handshake_auth_is_refused_with_a_reason() {
    let server = Server::embedded(&[]).await;
    let mut client =
        SocketIoClient::connect(&server.base, Some(json!({"lastSequence": "later"}))).await;
    let refused = client.expect("connect_error").await;
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("lastSequence"),
        "{refused}"
    );
}
