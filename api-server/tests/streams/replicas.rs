use crate::broadcast;
use crate::clients::{SocketIoClient, SseClient, WsClient};
use crate::common::{Backing, Server};

#[tokio::test]
async fn replicas_sharing_redis_deliver_to_each_others_clients() {
    let backing = Backing::real().await;
    let a = Server::start(&backing, &[]).await;
    let b = Server::start(&backing, &[]).await;
    let mut sse_on_b = SseClient::open(b.client().get(b.url("/api/sse/notifications"))).await;
    sse_on_b.expect("recovered").await;
    let mut ws_on_a = WsClient::connect(&a.ws_url("/api/ws")).await;
    ws_on_a.expect("recovered").await;
    let mut socket_io_on_b = SocketIoClient::connect(&b.base, None).await;
    socket_io_on_b.expect("connect").await;
    socket_io_on_b.expect("recovered").await;

    let via_a = a.create(broadcast("created through A")).await;
    let via_b = b.create(broadcast("created through B")).await;
    for expected in [&via_a, &via_b] {
        assert_eq!(sse_on_b.expect("notification").await.json(), *expected);
        assert_eq!(
            ws_on_a.expect("notification").await["notification"],
            *expected
        );
        assert_eq!(
            socket_io_on_b.expect("notification").await["args"][0],
            *expected
        );
    }
    socket_io_on_b.close().await;
}
