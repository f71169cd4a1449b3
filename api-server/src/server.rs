//! Start-up, serving and graceful shutdown.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use herald_core::db::Db;
use herald_core::fanout::{Fanout, FanoutItem};
use herald_core::jobs::schedule;
use tokio_util::sync::CancellationToken;

use crate::cache::ListCache;
use crate::config::ServerArgs;
use crate::connection;
use crate::metrics::Metrics;
use crate::relay::{self, Destination, KafkaDestination, Relay};
use crate::routes::{self, Api};
use crate::stream::{self, DirectStreams, FeedSource, Hub, OpenStreams, Stalls};
use crate::writer::{self, Announce, Writer};

async fn connect_db(args: &ServerArgs) -> anyhow::Result<Db> {
    let url = args.database_url();
    if args.database.database_url.is_none() {
        std::fs::create_dir_all(&args.data_dir)
            .with_context(|| format!("creating the data directory {}", args.data_dir.display()))?;
        tracing::info!(path = %args.data_dir.display(), "embedded mode: SQLite database");
    }
    let db = Db::connect(&url, args.database.database_max_connections)
        .await
        .context("connecting to the database")?;
    db.migrate().await.context("migrating the database")?;
    Ok(db)
}

pub async fn migrate(args: &ServerArgs) -> anyhow::Result<()> {
    connect_db(args).await?;
    tracing::info!("migrations applied");
    Ok(())
}

pub async fn serve(args: ServerArgs) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    let db = connect_db(&args).await?;
    let metrics = Arc::new(Metrics::new().context("registering metrics")?);
    let cache_ttl = Duration::from_secs(args.cache_ttl_seconds);
    let (cache, fanout) = match &args.redis.redis_url {
        Some(url) => {
            let client = redis::Client::open(url.as_str()).context("REDIS_URL")?;
            let connection = redis::aio::ConnectionManager::new(client)
                .await
                .with_context(|| format!("connecting to Redis at {url}"))?;
            let fanout = Fanout::redis(
                url,
                args.redis.fanout_channel.clone(),
                args.stream_buffer,
                true,
                shutdown.clone(),
            )
            .await
            .context("connecting the fan-out to Redis")?;
            let prefix = format!("{}:", args.redis.fanout_channel);
            (ListCache::redis(connection, &prefix, cache_ttl), fanout)
        }
        None => (
            ListCache::local(cache_ttl),
            Fanout::in_process(args.stream_buffer),
        ),
    };
    let cache = Arc::new(cache);
    let kafka = match &args.kafka.kafka_brokers {
        Some(brokers) => {
            let config = args
                .kafka
                .client_config(brokers)
                .map_err(anyhow::Error::msg)?;
            Some(
                KafkaDestination::new(config, args.kafka.notifications_topic.clone())
                    .context("creating the Kafka producer")?,
            )
        }
        None => None,
    };
    let (destination, probe) = match kafka {
        Some((destination, probe)) => (Destination::Kafka(destination), Some(Arc::new(probe))),
        None => (Destination::InProcess, None),
    };
    // Without Kafka this process is the processor too, batch jobs included.
    let scheduled = match destination {
        Destination::InProcess => args.schedule.jobs().context("the job schedules")?,
        Destination::Kafka(_) => Vec::new(),
    };

    let (relay_handoff, handed_over) = relay::Handoff::new();
    let announce = Announce {
        cache: cache.clone(),
        fanout: fanout.clone(),
        metrics: metrics.clone(),
        relay: relay_handoff,
    };
    let (writer, lanes) = Writer::new(usize::from(args.write_lanes), db.clone(), announce);
    let open_streams = Arc::new(OpenStreams::new(metrics.clone()));
    let (direct_streams, shards) = DirectStreams::new(
        std::thread::available_parallelism().map_or(1, usize::from),
        fanout.clone(),
        open_streams.clone(),
        shutdown.clone(),
    );
    let stalls = Arc::new(Stalls::new(
        fanout.clone(),
        args.stream_buffer,
        metrics.clone(),
    ));
    let keepalive = Duration::from_secs(args.keepalive_seconds);
    let hub = Arc::new(Hub {
        feeds: Arc::new(FeedSource {
            db: db.clone(),
            fanout: fanout.clone(),
            windows: stream::WindowReads::default(),
            buffer: args.stream_buffer,
            shutdown: shutdown.clone(),
        }),
        direct: direct_streams.clone(),
        stalls: stalls.clone(),
        open: open_streams.clone(),
        keepalive,
    });

    // Cancelled once no request is left: the writer and the relay finish what they hold.
    let drained = CancellationToken::new();
    let mut tasks = tokio::task::JoinSet::new();
    writer::spawn(lanes, &drained, &mut tasks);
    tasks.spawn(stream::cut_stalled_streams(stalls, shutdown.clone()));
    for shard in shards {
        tasks.spawn(stream::serve_direct_streams(direct_streams.clone(), shard));
    }
    tasks.spawn(stream::send_keep_alives(
        fanout.clone(),
        keepalive,
        shutdown.clone(),
    ));
    let relay = Relay {
        db: db.clone(),
        fanout: fanout.clone(),
        metrics: metrics.clone(),
    };
    tasks.spawn(relay::run(relay, destination, handed_over, drained.clone()));
    if !scheduled.is_empty() {
        let (db, stop) = (db.clone(), drained.clone());
        tasks.spawn(async move {
            if let Err(error) = schedule::run_schedule(db, scheduled, stop).await {
                tracing::error!(%error, "the job schedule stopped");
            }
        });
    }
    tasks.spawn(invalidate_on_changes(
        fanout.clone(),
        cache.clone(),
        metrics.clone(),
        drained.clone(),
    ));

    let address = std::net::SocketAddr::new(args.bind, args.port);
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("listening on {address}"))?;
    tracing::info!(%address, "api-server listening");
    let api = Api {
        db,
        cache,
        writer: Arc::new(writer),
        fanout,
        kafka: probe,
        metrics,
    };
    let app = routes::router(api, hub).layer(cors(&args.cors_allowed_origins)?);
    let signal_token = shutdown.clone();
    herald_runtime::http::serve(listener, app, connection::accept, async move {
        herald_runtime::shutdown::signal().await;
        tracing::info!("shutting down: finishing requests, closing streams, flushing the relay");
        signal_token.cancel();
    })
    .await;
    shutdown.cancel();
    // WebSocket streams outlive the HTTP connections: let them tell their clients to reconnect.
    open_streams.closed().await;
    drained.cancel();
    while tasks.join_next().await.is_some() {}
    Ok(())
}

/// Lets browser apps on other origins (the seed's React frontend, say) call the API and open
/// streams; wraps Socket.IO's long-polling too.
fn cors(origins: &[String]) -> anyhow::Result<tower_http::cors::CorsLayer> {
    use tower_http::cors::{AllowOrigin, CorsLayer};
    let allow = if origins.iter().any(|o| o.trim() == "*") {
        AllowOrigin::any()
    } else {
        let parsed = origins
            .iter()
            .map(|origin| {
                axum::http::HeaderValue::from_str(origin.trim()).with_context(|| {
                    format!("CORS_ALLOWED_ORIGINS: {origin:?} is not a valid origin")
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        AllowOrigin::list(parsed)
    };
    Ok(CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([
            axum::http::Method::GET,
            axum::http::Method::POST,
            axum::http::Method::PUT,
        ])
        .allow_headers([
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderName::from_static("idempotency-key"),
            axum::http::HeaderName::from_static("last-event-id"),
            axum::http::HeaderName::from_static("traceparent"),
        ])
        .expose_headers([
            axum::http::header::LOCATION,
            axum::http::HeaderName::from_static("idempotent-replayed"),
        ]))
}

/// Status changes (from the processor) and fan-out gaps make cached list pages stale.
async fn invalidate_on_changes(
    fanout: Fanout,
    cache: Arc<ListCache>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    let mut items = fanout.subscribe();
    loop {
        let item = tokio::select! {
            () = shutdown.cancelled() => return,
            item = items.recv() => item,
        };
        let stale = match item {
            Ok(FanoutItem::Event(event)) => {
                event.event.kind != herald_core::event::EventType::Created
            }
            Ok(FanoutItem::KeepAlive) => false,
            Ok(FanoutItem::Resync) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                true
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        };
        if stale && let Err(error) = cache.invalidate().await {
            metrics.cache_errors.inc();
            tracing::warn!(%error, "could not invalidate the list cache");
        }
    }
}
