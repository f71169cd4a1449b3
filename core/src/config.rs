//! Connection settings shared by the api-server and the processor, from flags or environment.

use clap::Args;

/// `url` with its password, if any, replaced by `***`: what logs and error messages may show
/// of a connection URL (`postgres://herald:***@db/herald`).
pub fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            let hidden = if userinfo.contains(':') { ":***" } else { "" };
            format!("{scheme}://{user}{hidden}@{host}{path}")
        }
        None => url.to_owned(),
    }
}

/// Where the platform keeps its data.
#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// Database URL: postgres://user:pass@host/db, or sqlite://PATH for an embedded file.
    /// The api-server falls back to an embedded SQLite file when it is unset.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// Connections in the database pool.
    #[arg(long, env = "DATABASE_MAX_CONNECTIONS", default_value_t = 20)]
    pub database_max_connections: u32,
}

/// Redis: the list cache and the fan-out between replicas.
#[derive(Debug, Clone, Args)]
pub struct RedisArgs {
    /// Redis URL (redis://host:6379). The api-server, when it is unset, keeps its cache and
    /// fan-out in process (one replica only).
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,

    /// Pub/sub channel that carries events to every api-server replica.
    #[arg(long, env = "FANOUT_CHANNEL", default_value = "herald:events")]
    pub fanout_channel: String,
}

/// Kafka: where events are published and consumed.
#[derive(Debug, Clone, Args)]
pub struct KafkaArgs {
    /// Bootstrap brokers, comma-separated (host:9092,host2:9092). The api-server, when it is
    /// unset, hands events to the processor's logic in its own process (embedded mode).
    #[arg(long, env = "KAFKA_BROKERS")]
    pub kafka_brokers: Option<String>,

    /// Topic of notification events.
    #[arg(
        long,
        env = "KAFKA_NOTIFICATIONS_TOPIC",
        default_value = "herald.notifications"
    )]
    pub notifications_topic: String,

    /// Dead-letter topic for records the processor cannot handle.
    #[arg(
        long,
        env = "KAFKA_DEAD_LETTER_TOPIC",
        default_value = "herald.notifications.dlq"
    )]
    pub dead_letter_topic: String,

    /// Extra librdkafka settings as key=value, comma-separated, e.g.
    /// `security.protocol=SSL` for MSK with TLS.
    #[arg(
        long,
        env = "KAFKA_PROPERTIES",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub kafka_properties: Vec<String>,
}

impl KafkaArgs {
    /// A librdkafka configuration with the brokers and the extra properties applied.
    pub fn client_config(&self, brokers: &str) -> Result<rdkafka::ClientConfig, String> {
        let mut config = rdkafka::ClientConfig::new();
        config.set("bootstrap.servers", brokers);
        // Blank entries (an empty variable, a trailing comma) are what templates render for
        // "nothing to add".
        for property in self
            .kafka_properties
            .iter()
            .filter(|p| !p.trim().is_empty())
        {
            let (key, value) = property
                .split_once('=')
                .ok_or_else(|| format!("KAFKA_PROPERTIES entry {property:?} is not key=value"))?;
            config.set(key.trim(), value.trim());
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kafka_args(properties: &[&str]) -> KafkaArgs {
        KafkaArgs {
            kafka_brokers: None,
            notifications_topic: "n".into(),
            dead_letter_topic: "d".into(),
            kafka_properties: properties.iter().map(|p| (*p).to_owned()).collect(),
        }
    }

    #[test]
    fn kafka_properties_skip_blank_entries_and_refuse_malformed_ones() {
        let config = kafka_args(&["", " linger.ms = 5 ", "  "])
            .client_config("b:9092")
            .unwrap();
        assert_eq!(config.get("linger.ms"), Some("5"));
        assert_eq!(config.get("bootstrap.servers"), Some("b:9092"));
        let error = kafka_args(&["acks"]).client_config("b:9092").unwrap_err();
        assert!(error.contains("\"acks\" is not key=value"), "{error}");
    }

    #[test]
    fn passwords_in_urls_are_hidden() {
        assert_eq!(
            redacted("postgres://herald:s3cret@db:5432/herald?sslmode=require"),
            "postgres://herald:***@db:5432/herald?sslmode=require"
        );
        assert_eq!(
            redacted("redis://:s3cret@cache:6379"),
            "redis://:***@cache:6379"
        );
        assert_eq!(redacted("rediss://user@cache/0"), "rediss://user@cache/0");
        assert_eq!(
            redacted("sqlite://herald-data/herald.db"),
            "sqlite://herald-data/herald.db"
        );
        assert_eq!(redacted("not a url"), "not a url");
    }
}
