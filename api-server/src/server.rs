//! Start-up, serving and graceful shutdown.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use herald_core::db::Db;
use herald_core::fanout::{Fanout, FanoutItem};
use herald_core::jobs::schedule;
use tokio_util::sync::CancellationToken;

use crate::auth::cli::{KeysCommand, TokenArgs};
use crate::auth::{self, Authenticator, Expectations, Guard, Origins, RateLimits, Sources};
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

/// `api-server keys ...`, on the database the server would use.
pub async fn keys(args: &ServerArgs, command: KeysCommand) -> anyhow::Result<()> {
    auth::cli::keys(command, &connect_db(args).await?).await
}

/// `api-server token`: prints a user token signed with JWT_SECRET_FILE, or in embedded mode
/// with the development secret.
pub fn token(args: &ServerArgs, token: &TokenArgs) -> anyhow::Result<()> {
    let path = match &args.auth.jwt_secret_file {
        Some(path) => path.clone(),
        None if args.database.database_url.is_none() => {
            args.data_dir.join(auth::dev::JWT_SECRET_FILE)
        }
        None => anyhow::bail!(
            "`api-server token` signs with an HMAC secret: set JWT_SECRET_FILE (tokens for \
             RS/ES/EdDSA keys and JWKS come from your identity provider)"
        ),
    };
    let secret = std::fs::read(&path).with_context(|| {
        format!(
            "reading the JWT secret {} (in embedded mode the server makes it at its first start)",
            path.display()
        )
    })?;
    println!(
        "{}",
        auth::cli::token(token, secret.trim_ascii(), &expectations(args))?
    );
    Ok(())
}

fn expectations(args: &ServerArgs) -> Expectations {
    Expectations {
        issuer: args.auth.jwt_issuer.clone(),
        audience: args.auth.jwt_audience.clone(),
        leeway: args.auth.jwt_leeway_seconds,
    }
}

/// The guard of every route, and the sources to keep reloading it from (none when
/// authentication is off). Refuses to start a server no credential could get into, unless
/// told `--insecure-no-auth`.
async fn guard(
    args: &ServerArgs,
    db: &Db,
    metrics: &Arc<Metrics>,
) -> anyhow::Result<(Arc<Guard>, Option<Sources>)> {
    let origins = Origins::parse(&args.cors_allowed_origins)?;
    let limits = Arc::new(RateLimits::new(
        args.auth.rate_limit_publish,
        args.auth.rate_limit_connect,
        args.auth.rate_limit_auth_failures,
        metrics.clone(),
    ));
    let make = |auth| {
        Arc::new(Guard {
            auth: Arc::new(auth),
            limits: limits.clone(),
            origins: origins.clone(),
            metrics: metrics.clone(),
        })
    };
    if args.auth.insecure_no_auth {
        tracing::warn!(
            "authentication is OFF (--insecure-no-auth): anyone who reaches this server may \
             publish and read every user's notifications"
        );
        return Ok((make(Authenticator::off()), None));
    }
    let mut sources = Sources {
        jwt_secret_file: args.auth.jwt_secret_file.clone(),
        jwt_public_key_file: args.auth.jwt_public_key_file.clone(),
        api_keys_file: args.auth.api_keys_file.clone(),
        db: db.clone(),
    };
    if args.database.database_url.is_none() && !args.auth.names_a_credential() {
        let dev = auth::dev::ensure(&args.data_dir, db).await?;
        sources.jwt_secret_file = Some(dev.jwt_secret_file.clone());
        let local = format!("http://localhost:{}", args.port);
        eprintln!(
            "\nDevelopment credentials (embedded mode, no credential configured):\n  \
             admin API key:  {key}\n  \
             user tokens:    api-server token --user alice   (signed with {secret})\n\
             Try:\n  curl -H \"Authorization: Bearer $(cat {key})\" {local}/api/notifications\n",
            key = dev.api_key_file.display(),
            secret = dev.jwt_secret_file.display(),
        );
    }
    let authenticator = Authenticator::new(expectations(args));
    sources
        .load(&authenticator, args.auth.jwks_url.as_deref())
        .await?;
    anyhow::ensure!(
        authenticator.accepts_anything(),
        "no credential is configured, so no one could use this server: set JWT_SECRET_FILE, \
         JWT_PUBLIC_KEY_FILE or JWKS_URL for user tokens, and API_KEYS_FILE or `api-server keys \
         create` for services; or pass --insecure-no-auth (HERALD_INSECURE_NO_AUTH=true) on a \
         trusted network"
    );
    Ok((make(authenticator), Some(sources)))
}

pub async fn serve(args: ServerArgs) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    let db = connect_db(&args).await?;
    let metrics = Arc::new(Metrics::new().context("registering metrics")?);
    let (guard, auth_sources) = guard(&args, &db, &metrics).await?;
    let cache_ttl = Duration::from_secs(args.cache_ttl_seconds);
    let (cache, fanout) = match &args.redis.redis_url {
        Some(url) => {
            let client = redis::Client::open(url.as_str()).context("REDIS_URL")?;
            let connection = redis::aio::ConnectionManager::new(client)
                .await
                .with_context(|| {
                    let url = herald_core::config::redacted(url);
                    format!("connecting to Redis at {url}")
                })?;
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
        guard: guard.clone(),
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
    tasks.spawn(guard.limits.clone().forget_idle(shutdown.clone()));
    if let Some(sources) = auth_sources {
        tasks.spawn(auth::keep_loaded(
            guard.auth.clone(),
            sources,
            args.auth.jwks_url.is_some(),
            Duration::from_secs(args.auth.auth_reload_seconds.max(1)),
            shutdown.clone(),
        ));
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
    if let Some(port) = args.metrics_port {
        let address = std::net::SocketAddr::new(args.bind, port);
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .with_context(|| format!("listening for /metrics on {address}"))?;
        tracing::info!(%address, "metrics listening");
        let (app, stop) = (routes::metrics_router(metrics.clone()), shutdown.clone());
        tasks.spawn(herald_runtime::http::serve(
            listener,
            app,
            |socket| (socket, ()),
            async move { stop.cancelled().await },
        ));
    }
    let api = Api {
        db,
        cache,
        writer: Arc::new(writer),
        fanout,
        kafka: probe,
        metrics,
    };
    let app = routes::router(api, hub, guard.clone()).layer(guard.origins.cors());
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
