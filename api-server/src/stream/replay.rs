//! What every transport shares: catch up from the event log, then go live from the fan-out,
//! with no gap and no duplicate.
//!
//! A [`Feed`] subscribes to the fan-out *before* reading the log, so an event committed while
//! the replay runs is either in the log pages or waiting in the subscription (often both; the
//! duplicate is dropped). Per connection it keeps O(1) state: the highest delivered sequence,
//! a small ring of recently delivered sequences and at most one page of the log.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use herald_core::db::{Db, DbError};
use herald_core::event::Event;
use herald_core::fanout::{Broadcast, Fanout, FanoutItem};
use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio_util::sync::CancellationToken;

use super::audience::Audience;
use super::window::WindowReads;
use super::wire::Recovered;

/// Events read from the log per query while catching up.
const PAGE: u32 = 256;
/// How many delivered sequences are remembered to drop duplicates. Events arrive out of
/// sequence order only when transactions commit out of order, which spans a few events.
const RECENT: usize = 256;
/// How often a transport blocked on a slow client checks whether it fell too far behind.
const LAG_CHECK: Duration = Duration::from_millis(50);

/// Where a client wants its stream to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Only what happens from now on.
    Live,
    /// Everything after this sequence, then live.
    After(i64),
}

/// What [`Feed::try_next`] found.
#[derive(Debug)]
pub enum Step {
    Ready(Delivery),
    /// Nothing to send until the fan-out sends more.
    Idle,
    /// The event log must be read first: call [`Feed::read_log`].
    ReadLog,
}

/// The next thing to send to a client.
#[derive(Debug)]
pub enum Delivery {
    Event(Arc<Broadcast>),
    /// The catch-up after connecting is over; from here on the stream is live.
    /// `complete` is false when a [`Delivery::Reset`] preceded it.
    Recovered(Recovered),
    /// Events the client missed are no longer kept: it should refetch its state (e.g. the
    /// REST list); the stream continues live after `latest`.
    Reset {
        latest: i64,
    },
    /// The client fell more than the stream buffer behind: disconnect it.
    SlowConsumer,
    /// The server is shutting down: tell the client to reconnect, then end.
    Shutdown,
    /// Time to show an idle client that the connection is alive.
    KeepAlive,
    /// The client's token expired: tell it, then end; it reconnects with a new token and
    /// resumes from its position.
    Expired,
}

/// Where feeds read from: the event log, the fan-out, and when to stop.
pub struct FeedSource {
    pub db: Db,
    pub fanout: Fanout,
    /// The event log's replay window, read once for streams that open together.
    pub windows: WindowReads,
    /// Events a client may fall behind before it is disconnected.
    pub buffer: usize,
    /// Cancelled on SIGTERM: feeds end with [`Delivery::Shutdown`].
    pub shutdown: CancellationToken,
}

pub struct Feed {
    source: Arc<FeedSource>,
    live: Receiver<FanoutItem>,
    /// The fan-out's count of items sent when this feed subscribed, plus the items this feed
    /// has taken from it since: how far it got, for [`Stalls`](super::stall::Stalls).
    progress: Arc<AtomicU64>,
    user_id: Option<String>,
    position: Position,
    /// Control messages to send before anything else.
    queued: VecDeque<Delivery>,
    page: VecDeque<Event>,
    catch_up: Option<CatchUp>,
    /// When the client's credential expires; nothing is delivered after it.
    expires: Option<tokio::time::Instant>,
}

struct CatchUp {
    /// Highest sequence read from the log so far.
    cursor: i64,
    /// Whether this is the catch-up after connecting (which ends with `Recovered`).
    initial: bool,
    /// Whether to check first that the log still holds everything after `cursor`.
    check_gap: bool,
    done: bool,
}

impl Feed {
    /// Subscribes to the fan-out, then decides where the stream starts. Call this before
    /// answering the client's request, so nothing published afterwards can be missed.
    pub async fn open(
        source: &Arc<FeedSource>,
        audience: Audience,
        start: Start,
    ) -> Result<Self, DbError> {
        let progress = Arc::new(AtomicU64::new(source.fanout.sent()));
        let live = source.fanout.subscribe();
        let ticket = source.windows.ticket();
        let window = source.windows.read(&source.db, ticket).await?;
        let latest = window.latest.unwrap_or(0);
        let mut feed = Self {
            source: source.clone(),
            live,
            progress,
            user_id: audience.user,
            position: Position::live(latest),
            queued: VecDeque::new(),
            page: VecDeque::new(),
            catch_up: None,
            expires: None,
        };
        feed.expire_at(audience.expires);
        match start {
            Start::Live => {
                feed.queued.push_back(Delivery::Recovered(Recovered {
                    complete: true,
                    last_sequence: latest,
                }));
            }
            // A client ahead of the log resumes from another database (or one that was reset):
            // its position means nothing here.
            Start::After(after) if window.has_gap_after(after) || after > latest => {
                feed.reset_to(latest);
                feed.queued.push_back(Delivery::Recovered(Recovered {
                    complete: false,
                    last_sequence: latest,
                }));
            }
            Start::After(after) => {
                feed.position = Position::after(after);
                feed.catch_up = Some(CatchUp {
                    cursor: after,
                    initial: true,
                    // Just checked.
                    check_gap: false,
                    done: false,
                });
            }
        }
        Ok(feed)
    }

    fn reset_to(&mut self, latest: i64) {
        self.position = Position::after(latest);
        self.queued.push_back(Delivery::Reset { latest });
    }

    /// Ends the stream with [`Delivery::Expired`] at `unix_seconds`. The check runs whenever
    /// the feed is asked for a delivery, so no event goes out after it; a client with
    /// nothing to receive learns it at the next keep-alive at the latest.
    fn expire_at(&mut self, unix_seconds: Option<u64>) {
        self.expires = unix_seconds.map(|at| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            let left = Duration::from_secs(at).saturating_sub(now);
            tokio::time::Instant::now() + left
        });
    }

    fn expired(&self) -> bool {
        self.expires
            .is_some_and(|at| tokio::time::Instant::now() >= at)
    }

    /// How far this feed got through the fan-out (see the field).
    pub fn progress(&self) -> Arc<AtomicU64> {
        self.progress.clone()
    }

    /// The highest sequence delivered so far: where the client would resume.
    pub fn last_sequence(&self) -> i64 {
        self.position.last
    }

    /// The next delivery. Cancel-safe: dropping the future loses nothing.
    pub async fn next(&mut self) -> Result<Delivery, DbError> {
        loop {
            match self.try_next() {
                Step::Ready(delivery) => return Ok(delivery),
                Step::ReadLog => self.read_log().await?,
                Step::Idle => {
                    let expiry = async {
                        match self.expires {
                            Some(at) => tokio::time::sleep_until(at).await,
                            None => std::future::pending().await,
                        }
                    };
                    let item = tokio::select! {
                        biased;
                        () = self.source.shutdown.cancelled() => return Ok(Delivery::Shutdown),
                        () = expiry => return Ok(Delivery::Expired),
                        item = self.live.recv() => item,
                    };
                    // Taken before anything else is awaited, so a cancelled `next` loses nothing.
                    if let Some(delivery) = self.take(item) {
                        return Ok(delivery);
                    }
                }
            }
        }
    }

    /// The next delivery if one is ready without waiting; for a caller that drives many feeds
    /// from one task and learns from the fan-out itself when to look again.
    pub fn try_next(&mut self) -> Step {
        loop {
            // Also between replayed events: a long replay must not hold up shutdown.
            if self.source.shutdown.is_cancelled() {
                return Step::Ready(Delivery::Shutdown);
            }
            if self.expired() {
                return Step::Ready(Delivery::Expired);
            }
            if let Some(delivery) = self.queued.pop_front() {
                return Step::Ready(delivery);
            }
            if let Some(event) = self.page.pop_front() {
                if self.position.accept(event.sequence) {
                    return Step::Ready(Delivery::Event(Arc::new(Broadcast::new(event))));
                }
                continue;
            }
            if let Some(catch_up) = &self.catch_up {
                if !catch_up.done {
                    return Step::ReadLog;
                }
                let initial = catch_up.initial;
                self.catch_up = None;
                // A page's worth of room is not kept for the rest of the stream.
                self.page = VecDeque::new();
                if initial {
                    return Step::Ready(Delivery::Recovered(Recovered {
                        complete: true,
                        last_sequence: self.position.last,
                    }));
                }
                continue;
            }
            let item = match self.live.try_recv() {
                Ok(item) => Ok(item),
                Err(TryRecvError::Empty) => return Step::Idle,
                Err(TryRecvError::Lagged(missed)) => Err(RecvError::Lagged(missed)),
                Err(TryRecvError::Closed) => Err(RecvError::Closed),
            };
            if let Some(delivery) = self.take(item) {
                return Step::Ready(delivery);
            }
        }
    }

    /// Does the event-log read that [`Step::ReadLog`] asked for. Cancel-safe: state changes
    /// only after the query returns.
    pub async fn read_log(&mut self) -> Result<(), DbError> {
        let Some(catch_up) = &self.catch_up else {
            return Ok(());
        };
        let cursor = catch_up.cursor;
        if catch_up.check_gap {
            let windows = &self.source.windows;
            let window = windows.read(&self.source.db, windows.ticket()).await?;
            if window.has_gap_after(cursor) {
                self.catch_up = None;
                self.reset_to(window.latest.unwrap_or(0));
            } else if let Some(catch_up) = &mut self.catch_up {
                catch_up.check_gap = false;
            }
            return Ok(());
        }
        let page = self
            .source
            .db
            .events_after(cursor, self.user_id.as_deref(), PAGE)
            .await?;
        if let Some(catch_up) = &mut self.catch_up {
            catch_up.cursor = page.events.last().map_or(cursor, |e| e.sequence);
            catch_up.done = !page.more;
        }
        self.page.extend(page.events);
        Ok(())
    }

    /// Takes one item from the fan-out: what to send for it, if anything.
    fn take(&mut self, item: Result<FanoutItem, RecvError>) -> Option<Delivery> {
        let taken = match &item {
            Err(RecvError::Lagged(missed)) => *missed,
            _ => 1,
        };
        self.progress.fetch_add(taken, Ordering::Relaxed);
        match item {
            Ok(FanoutItem::Event(event)) => (self.wants(&event.event)
                && self.position.accept(event.event.sequence))
            .then_some(Delivery::Event(event)),
            Ok(FanoutItem::KeepAlive) => Some(Delivery::KeepAlive),
            Ok(FanoutItem::Resync) => {
                self.catch_up = Some(CatchUp {
                    cursor: self.position.last,
                    initial: false,
                    check_gap: true,
                    done: false,
                });
                None
            }
            Err(RecvError::Lagged(_)) => Some(Delivery::SlowConsumer),
            // The fan-out is gone only when the server is going down.
            Err(RecvError::Closed) => Some(Delivery::Shutdown),
        }
    }

    fn wants(&self, event: &Event) -> bool {
        match (&self.user_id, &event.notification.user_id) {
            (Some(user), Some(target)) => user == target,
            _ => true,
        }
    }

    /// Resolves once the client is more than the stream buffer behind the fan-out. Transports
    /// race it against a write that the client does not drain; it never consumes an item.
    pub async fn fell_behind(&self) {
        let mut check = tokio::time::interval(LAG_CHECK);
        loop {
            check.tick().await;
            if self.is_behind() {
                return;
            }
        }
    }

    /// Whether the client is more than the stream buffer behind the fan-out.
    pub fn is_behind(&self) -> bool {
        self.live.len() > self.source.buffer
    }
}

/// How far a client got: the highest delivered sequence and the last [`RECENT`] delivered
/// ones; everything at or below `floor` counts as delivered.
struct Position {
    last: i64,
    floor: i64,
    recent: VecDeque<i64>,
}

impl Position {
    /// From now on: later events, and earlier ones whose transaction commits only now.
    fn live(latest: i64) -> Self {
        Self {
            last: latest,
            floor: 0,
            recent: VecDeque::new(),
        }
    }

    /// The client has everything up to `after`.
    fn after(after: i64) -> Self {
        Self {
            last: after,
            floor: after,
            recent: VecDeque::new(),
        }
    }

    /// Whether to deliver the event with this sequence; records it as delivered if so.
    fn accept(&mut self, sequence: i64) -> bool {
        // Below `last` is normal for a transaction that committed after a later one.
        if sequence <= self.last && (sequence <= self.floor || self.recent.contains(&sequence)) {
            return false;
        }
        self.last = self.last.max(sequence);
        if self.recent.len() == RECENT
            && let Some(forgotten) = self.recent.pop_front()
        {
            self.floor = self.floor.max(forgotten);
        }
        self.recent.push_back(sequence);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accepted(position: &mut Position, sequences: &[i64]) -> Vec<i64> {
        sequences
            .iter()
            .copied()
            .filter(|&s| position.accept(s))
            .collect()
    }

    #[test]
    fn resuming_skips_what_the_client_has_and_duplicates() {
        let mut position = Position::after(10);
        assert_eq!(
            accepted(&mut position, &[9, 10, 11, 12, 11, 13, 12]),
            [11, 12, 13]
        );
        assert_eq!(position.last, 13);
    }

    #[test]
    fn a_late_commit_below_the_last_sequence_is_delivered_once() {
        let mut position = Position::live(5);
        assert_eq!(accepted(&mut position, &[7, 6, 7, 6, 4]), [7, 6, 4]);
        assert_eq!(position.last, 7);
    }

    #[test]
    fn forgotten_sequences_count_as_delivered() {
        let mut position = Position::after(0);
        let all: Vec<i64> = (1..=RECENT as i64 + 2).collect();
        assert_eq!(accepted(&mut position, &all), all);
        assert_eq!(position.floor, 2);
        assert!(accepted(&mut position, &all).is_empty());
    }
}
