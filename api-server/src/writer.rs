//! Group commit for `POST /api/notifications`: concurrent creates are gathered into one
//! transaction per lane, so many requests share one round of writes and one flush to disk.
//! Each request is answered only after the transaction holding it has committed, so
//! durability is exactly that of one transaction per request.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use herald_core::db::{Created, Db, DbError, NewEntry, Pending, RequestFingerprint};
use herald_core::fanout::Fanout;
use herald_core::notification::NewNotification;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::cache::ListCache;
use crate::metrics::Metrics;
use crate::relay::Handoff;

/// Most notifications in one transaction.
const MAX_BATCH: usize = 128;

struct Job {
    new: NewNotification,
    traceparent: Option<String>,
    reply: oneshot::Sender<Result<Created, DbError>>,
}

pub struct Writer {
    lanes: Vec<mpsc::Sender<Job>>,
    next: AtomicUsize,
    db: Db,
    announce: Arc<Announce>,
}

/// The receiving ends of the writer's lanes; run them with [`spawn`].
pub struct Lanes {
    receivers: Vec<mpsc::Receiver<Job>>,
    db: Db,
    announce: Arc<Announce>,
}

/// What a commit is announced to: the list cache, the streams (fan-out) and the relay.
pub struct Announce {
    pub cache: Arc<ListCache>,
    pub fanout: Fanout,
    pub metrics: Arc<Metrics>,
    pub relay: Handoff,
}

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error(transparent)]
    Db(DbError),
    #[error("the server is shutting down")]
    ShuttingDown,
}

impl Writer {
    /// A writer with `lanes` concurrent transactions; start them with [`spawn`].
    pub fn new(lanes: usize, db: Db, announce: Announce) -> (Self, Lanes) {
        let announce = Arc::new(announce);
        let (senders, receivers) = (0..lanes.max(1))
            .map(|_| mpsc::channel(MAX_BATCH * 4))
            .unzip();
        (
            Self {
                lanes: senders,
                next: AtomicUsize::new(0),
                db: db.clone(),
                announce: announce.clone(),
            },
            Lanes {
                receivers,
                db,
                announce,
            },
        )
    }

    /// Stores a notification with its idempotency key, in a transaction of its own (the key
    /// is claimed there), and returns it once committed, or the first response to that key.
    pub async fn create_keyed(
        &self,
        new: &NewNotification,
        fingerprint: &RequestFingerprint,
        traceparent: Option<String>,
    ) -> Result<Created, WriteError> {
        let created = self
            .db
            .create_notification(new, Some(fingerprint), traceparent.as_deref())
            .await
            .map_err(WriteError::Db)?;
        if let Some(event) = &created.event {
            let pending = Pending {
                event: event.clone(),
                traceparent,
            };
            self.announce.committed(vec![pending]).await;
        }
        Ok(created)
    }

    /// Stores a notification (in a shared transaction) and returns it once committed.
    pub async fn create(
        &self,
        new: NewNotification,
        traceparent: Option<String>,
    ) -> Result<Created, WriteError> {
        let lane = self.next.fetch_add(1, Ordering::Relaxed) % self.lanes.len();
        let (reply, answer) = oneshot::channel();
        self.lanes[lane]
            .send(Job {
                new,
                traceparent,
                reply,
            })
            .await
            .map_err(|_| WriteError::ShuttingDown)?;
        answer
            .await
            .map_err(|_| WriteError::ShuttingDown)?
            .map_err(WriteError::Db)
    }
}

/// Runs the lanes until `stop`; cancel it only once no request can arrive any more.
pub fn spawn(lanes: Lanes, stop: &CancellationToken, tasks: &mut tokio::task::JoinSet<()>) {
    for receiver in lanes.receivers {
        let lane = Lane {
            db: lanes.db.clone(),
            announce: lanes.announce.clone(),
        };
        tasks.spawn(lane.run(receiver, stop.clone()));
    }
}

struct Lane {
    db: Db,
    announce: Arc<Announce>,
}

impl Lane {
    async fn run(self, mut jobs: mpsc::Receiver<Job>, stop: CancellationToken) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        loop {
            let first = tokio::select! {
                biased;
                job = jobs.recv() => match job {
                    Some(job) => job,
                    None => return,
                },
                () = stop.cancelled() => return,
            };
            batch.push(first);
            while batch.len() < MAX_BATCH {
                match jobs.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            match self.commit(&mut batch).await {
                // The database refused something in the batch, not the batch: one request's bad
                // entry must not fail the others that happened to share its transaction.
                Err(error) if batch.len() > 1 && !error.is_unavailable() => {
                    tracing::warn!(%error, entries = batch.len(), "a shared create failed; retrying each alone");
                    for job in std::mem::take(&mut batch) {
                        let mut alone = vec![job];
                        if let Err(error) = self.commit(&mut alone).await {
                            refuse(&mut alone, error);
                        }
                    }
                }
                Err(error) => refuse(&mut batch, error),
                Ok(()) => {}
            }
        }
    }

    /// Creates `batch` in one transaction and answers its requests; on failure the batch is
    /// left unanswered.
    async fn commit(&self, batch: &mut Vec<Job>) -> Result<(), DbError> {
        let entries: Vec<NewEntry<'_>> = batch
            .iter()
            .map(|job| NewEntry {
                new: &job.new,
                traceparent: job.traceparent.as_deref(),
            })
            .collect();
        let created = self.db.create_notifications(&entries).await?;
        let pending = batch
            .iter()
            .zip(&created)
            .filter_map(|(job, created)| {
                Some(Pending {
                    event: created.event.clone()?,
                    traceparent: job.traceparent.clone(),
                })
            })
            .collect();
        self.announce.committed(pending).await;
        for (job, created) in batch.drain(..).zip(created) {
            let _ = job.reply.send(Ok(created));
        }
        Ok(())
    }
}

fn refuse(batch: &mut Vec<Job>, error: DbError) {
    let error = Arc::new(error);
    for job in batch.drain(..) {
        let _ = job.reply.send(Err(DbError::Shared(error.clone())));
    }
}

impl Announce {
    /// What follows a commit, once per batch: lists are stale, the new events go to every
    /// stream, and the relay gets them. Failures here lose nothing: streams catch up from the
    /// event log when the fan-out reconnects, the cache has a TTL, and the relay sweeps the
    /// outbox.
    async fn committed(&self, pending: Vec<Pending>) {
        if pending.is_empty() {
            return;
        }
        if let Err(error) = self.cache.invalidate().await {
            self.metrics.cache_errors.inc();
            tracing::warn!(%error, "could not invalidate the list cache");
        }
        if let Err(error) = self
            .fanout
            .publish_all(pending.iter().map(|p| &p.event))
            .await
        {
            self.metrics
                .fanout_publish_errors
                .inc_by(pending.len() as u64);
            tracing::warn!(%error, "could not fan out new notifications");
        }
        self.relay.hand_over(pending);
    }
}
