//! The components a command needs, from their settings: a missing or malformed setting is a
//! usage error (exit 2), a component that does not answer a runtime one.

use herald_core::config::{DatabaseArgs, KafkaArgs, RedisArgs};
use herald_core::db::{Db, DbError};

use crate::failure::Failure;

/// Connects to DATABASE_URL and brings its schema up to date.
pub async fn connect_db(args: &DatabaseArgs) -> Result<Db, Failure> {
    let url = args.database_url.as_deref().ok_or_else(|| {
        Failure::usage(
            "DATABASE_URL (or --database-url) is required: postgres://... or sqlite://PATH",
        )
    })?;
    let db = Db::connect(url, args.database_max_connections)
        .await
        .map_err(|error| match error {
            DbError::UnsupportedUrl(_) => Failure::usage(error.to_string()),
            error => {
                Failure::Runtime(anyhow::Error::new(error).context("connecting to the database"))
            }
        })?;
    db.migrate()
        .await
        .map_err(|e| anyhow::Error::new(e).context("migrating the database"))?;
    Ok(db)
}

pub fn require_brokers(args: &KafkaArgs) -> Result<&str, Failure> {
    args.kafka_brokers
        .as_deref()
        .ok_or_else(|| Failure::usage("KAFKA_BROKERS (or --kafka-brokers) is required"))
}

pub fn require_redis(args: &RedisArgs) -> Result<&str, Failure> {
    args.redis_url.as_deref().ok_or_else(|| {
        Failure::usage(
            "REDIS_URL (or --redis-url) is required: the fan-out to clients goes through it",
        )
    })
}
