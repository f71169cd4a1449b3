use redis::aio::MultiplexedConnection;

use crate::{reach, settings, unique_name, unreachable_component};

/// A connection to the test environment's Redis and a key prefix no other test uses.
pub struct TestRedis {
    pub connection: MultiplexedConnection,
    pub url: String,
    /// Prefix every key and channel with this, so parallel tests do not see each other.
    pub prefix: String,
}

pub async fn test_redis() -> TestRedis {
    let url = settings().redis_url.clone();
    let client = redis::Client::open(url.as_str())
        .unwrap_or_else(|e| panic!("REDIS_URL {url} is not a Redis URL: {e}"));
    let mut connection = reach("redis", &url, client.get_multiplexed_async_connection()).await;
    // Connecting is lazy about some failures; a PING proves the server answers.
    let _: String = redis::cmd("PING")
        .query_async(&mut connection)
        .await
        .unwrap_or_else(|e| unreachable_component("redis", &url, e));
    TestRedis {
        connection,
        url,
        prefix: format!("{}:", unique_name("t")),
    }
}
