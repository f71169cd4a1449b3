//! Cache-aside for notification list pages: Redis when configured (shared by every replica),
//! otherwise a small in-process map.
//!
//! A generation counter makes invalidation race-free: a reader remembers the generation it saw
//! on a miss and stores its page only if no write has bumped the counter meanwhile, so a page
//! read before a create can never be cached after it. Cache failures never fail a request:
//! the database answers instead and `cache_errors_total` counts it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use redis::aio::ConnectionManager;

/// Bounds every cache round trip: a stalled Redis must not stall the API.
const REDIS_TIMEOUT: Duration = Duration::from_millis(250);
/// Pages kept by the in-process cache.
const LOCAL_CAPACITY: usize = 1024;

pub enum Lookup {
    Hit(Bytes),
    /// Not cached; store the page with [`ListCache::put`] and this generation.
    Miss(Option<String>),
}

pub enum ListCache {
    Redis(RedisCache),
    Local(Mutex<LocalCache>),
}

pub struct RedisCache {
    connection: ConnectionManager,
    generation_key: String,
    pages_key: String,
    ttl: Duration,
}

pub struct LocalCache {
    generation: u64,
    ttl: Duration,
    pages: HashMap<String, (Instant, Bytes)>,
}

const PUT_IF_CURRENT: &str = r"
if (redis.call('GET', KEYS[1]) or '0') == ARGV[1] then
  redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
  redis.call('PEXPIRE', KEYS[2], ARGV[4])
  return 1
end
return 0";

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("redis did not answer within {REDIS_TIMEOUT:?}")]
    Timeout,
}

async fn bounded<T>(
    operation: impl Future<Output = redis::RedisResult<T>>,
) -> Result<T, CacheError> {
    tokio::time::timeout(REDIS_TIMEOUT, operation)
        .await
        .map_err(|_| CacheError::Timeout)?
        .map_err(CacheError::from)
}

impl ListCache {
    pub fn redis(connection: ConnectionManager, prefix: &str, ttl: Duration) -> Self {
        // One hash tag, so both keys live in the same slot of a Redis Cluster.
        Self::Redis(RedisCache {
            connection,
            generation_key: format!("{prefix}{{list}}:generation"),
            pages_key: format!("{prefix}{{list}}:pages"),
            ttl,
        })
    }

    pub fn local(ttl: Duration) -> Self {
        Self::Local(Mutex::new(LocalCache {
            generation: 0,
            ttl,
            pages: HashMap::new(),
        }))
    }

    pub async fn get(&self, key: &str) -> Result<Lookup, CacheError> {
        match self {
            Self::Redis(cache) => {
                let mut connection = cache.connection.clone();
                let (generation, page): (Option<String>, Option<Vec<u8>>) = bounded(
                    redis::pipe()
                        .get(&cache.generation_key)
                        .hget(&cache.pages_key, key)
                        .query_async(&mut connection),
                )
                .await?;
                Ok(match page {
                    Some(page) => Lookup::Hit(Bytes::from(page)),
                    None => Lookup::Miss(Some(generation.unwrap_or_else(|| "0".into()))),
                })
            }
            Self::Local(cache) => {
                let cache = lock(cache);
                Ok(match cache.pages.get(key) {
                    Some((stored, page)) if stored.elapsed() < cache.ttl => {
                        Lookup::Hit(page.clone())
                    }
                    _ => Lookup::Miss(Some(cache.generation.to_string())),
                })
            }
        }
    }

    pub async fn put(
        &self,
        key: &str,
        generation: Option<String>,
        page: Bytes,
    ) -> Result<(), CacheError> {
        let Some(generation) = generation else {
            return Ok(());
        };
        match self {
            Self::Redis(cache) => {
                let mut connection = cache.connection.clone();
                let ttl_ms = u64::try_from(cache.ttl.as_millis()).unwrap_or(u64::MAX);
                let _: i64 = bounded(
                    redis::Script::new(PUT_IF_CURRENT)
                        .key(&cache.generation_key)
                        .key(&cache.pages_key)
                        .arg(generation)
                        .arg(key)
                        .arg(page.as_ref())
                        .arg(ttl_ms)
                        .invoke_async(&mut connection),
                )
                .await?;
                Ok(())
            }
            Self::Local(cache) => {
                let mut cache = lock(cache);
                if cache.generation.to_string() == generation {
                    if cache.pages.len() >= LOCAL_CAPACITY {
                        cache.pages.clear();
                    }
                    cache.pages.insert(key.to_owned(), (Instant::now(), page));
                }
                Ok(())
            }
        }
    }

    /// Forgets every cached page; called whenever a notification is created or changes.
    pub async fn invalidate(&self) -> Result<(), CacheError> {
        match self {
            Self::Redis(cache) => {
                let mut connection = cache.connection.clone();
                let () = bounded(
                    redis::pipe()
                        .incr(&cache.generation_key, 1)
                        .ignore()
                        .del(&cache.pages_key)
                        .ignore()
                        .query_async(&mut connection),
                )
                .await?;
                Ok(())
            }
            Self::Local(cache) => {
                let mut cache = lock(cache);
                cache.generation += 1;
                cache.pages.clear();
                Ok(())
            }
        }
    }
}

fn lock(cache: &Mutex<LocalCache>) -> std::sync::MutexGuard<'_, LocalCache> {
    // A panic while holding the lock leaves nothing half-written worth refusing.
    cache
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
