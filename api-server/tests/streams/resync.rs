//! Redis pub/sub keeps no history: when a replica's subscription drops, its streams catch up
//! from the event log.

use std::collections::HashSet;

use herald_core::db::Db;
use herald_core::notification::{NewNotification, NotificationType};

use crate::broadcast;
use crate::clients::{SseClient, WsClient};
use crate::common::{Backing, Server};

#[tokio::test]
async fn streams_catch_up_from_the_log_when_the_redis_subscription_drops() {
    let backing = Backing::real().await;
    let server = Server::start(&backing, &[]).await;
    let mut ws = WsClient::connect(&server.ws_url("/api/ws")).await;
    ws.expect("recovered").await;
    let mut sse = SseClient::open(server.client().get(server.url("/api/sse/notifications"))).await;
    sse.expect("recovered").await;

    // Stored but never published, as when Redis is down at the moment of the create.
    let db = Db::connect(&backing.database.url, 1)
        .await
        .expect("connecting to the test database");
    let new = NewNotification::new(
        "missed by the fan-out".into(),
        NotificationType::Error,
        None,
        None,
    )
    .expect("a valid notification");
    let unpublished = db
        .create_notification(&new, None, None)
        .await
        .expect("creating directly");
    kill_fanout_subscription(&backing.redis_url, server.pid()).await;

    let frame = ws.expect("notification").await;
    assert_eq!(
        frame["notification"]["id"],
        unpublished.notification.id.to_string()
    );
    let event = sse.expect("notification").await;
    assert_eq!(event.json()["id"], unpublished.notification.id.to_string());
    // Live again, with nothing repeated.
    let live = server.create(broadcast("after the resubscription")).await;
    assert_eq!(ws.expect("notification").await["notification"], live);
    assert_eq!(sse.expect("notification").await.json(), live);
}

/// Closes the server's Redis pub/sub connection (and only that: other tests share the Redis),
/// found by matching the server's sockets against Redis's client list.
async fn kill_fanout_subscription(redis_url: &str, pid: u32) {
    let ports = local_ports_of(pid);
    let client = redis::Client::open(redis_url).expect("REDIS_URL");
    let mut connection = client
        .get_multiplexed_async_connection()
        .await
        .expect("connecting to Redis");
    let clients: String = redis::cmd("CLIENT")
        .arg("LIST")
        .arg("TYPE")
        .arg("pubsub")
        .query_async(&mut connection)
        .await
        .expect("CLIENT LIST");
    let ids: Vec<String> = clients
        .lines()
        .filter_map(|line| {
            let field = |name: &str| {
                line.split(' ')
                    .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
            };
            let port: u16 = field("addr")?.rsplit(':').next()?.parse().ok()?;
            ports
                .contains(&port)
                .then(|| field("id").map(str::to_owned))?
        })
        .collect();
    assert_eq!(
        ids.len(),
        1,
        "one pub/sub connection of the server in:\n{clients}"
    );
    let _: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("ID")
        .arg(&ids[0])
        .query_async(&mut connection)
        .await
        .expect("CLIENT KILL");
}

/// The local TCP ports of a process's sockets, from /proc.
fn local_ports_of(pid: u32) -> HashSet<u16> {
    let inodes: HashSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("listing the server's file descriptors")
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .filter_map(|target| {
            let target = target.to_string_lossy().into_owned();
            Some(
                target
                    .strip_prefix("socket:[")?
                    .strip_suffix(']')?
                    .to_owned(),
            )
        })
        .collect();
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|table| std::fs::read_to_string(table).ok())
        .flat_map(|table| {
            table
                .lines()
                .skip(1)
                .filter_map(|line| {
                    let fields: Vec<&str> = line.split_whitespace().collect();
                    let port = fields.get(1)?.rsplit(':').next()?;
                    let inode = fields.get(9)?;
                    inodes
                        .contains(*inode)
                        .then(|| u16::from_str_radix(port, 16).ok())?
                })
                .collect::<Vec<_>>()
        })
        .collect()
}
