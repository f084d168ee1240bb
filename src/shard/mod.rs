//! Shard stage: routes each event to the window actor that owns its
//! identity (`hash(identity) % shards`), in batches, and keeps the shared
//! event clock that drives every actor's watermark.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rustc_hash::FxHashMap;

use crate::decode::{Event, EventOut};
use crate::ingest::ack::Ack;
use crate::telemetry::metrics;
use crate::window::ShardHandle;

/// Wall clock in Unix ms.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The newest event time seen by any fetcher, plus when events last arrived,
/// so an idle stream still advances the watermark.
#[derive(Debug)]
pub struct EventClock {
    max_event_ms: AtomicI64,
    /// Replay: the lowest delivery slot among objects not yet started; the
    /// watermark may not pass it (objects started hold it themselves).
    ceiling_ms: AtomicI64,
    /// Holds of objects being read: the watermark may not pass the lowest,
    /// so objects that arrive together (a catch-up after an outage) do not
    /// make each other late.
    in_flight: Mutex<FxHashMap<u64, Arc<HoldState>>>,
    next_hold: AtomicU64,
    /// Wall time before which the watermark does not move (after a restart,
    /// SQS redelivers unacknowledged messages only when their visibility
    /// timeout expires; they must not arrive "late").
    hold_until_wall_ms: AtomicI64,
    last_arrival_ms: AtomicI64,
    /// `None` disables the idle advance (replay: wall time is meaningless).
    idle_timeout_ms: Option<i64>,
    /// Event-time ms the effective time may advance per wall-clock ms
    /// (`None`: unlimited). A backlog delivered in seconds, in any order,
    /// then cannot push the watermark past objects not yet received.
    max_speed: Option<f64>,
    /// Last effective time handed out and the wall time it was handed out.
    throttle: Mutex<(i64, i64)>,
}

impl EventClock {
    /// A clock; `idle_timeout_ms` as in [`EventClock::effective_max_ms`],
    /// no speed limit.
    pub fn new(idle_timeout_ms: Option<i64>) -> Self {
        Self::with_max_speed(idle_timeout_ms, None)
    }

    /// A clock whose effective time advances at most `max_speed` times as
    /// fast as the wall clock.
    pub fn with_max_speed(idle_timeout_ms: Option<i64>, max_speed: Option<f64>) -> Self {
        Self {
            max_event_ms: AtomicI64::new(i64::MIN),
            ceiling_ms: AtomicI64::new(i64::MAX),
            in_flight: Mutex::new(FxHashMap::default()),
            next_hold: AtomicU64::new(0),
            hold_until_wall_ms: AtomicI64::new(i64::MIN),
            last_arrival_ms: AtomicI64::new(now_ms()),
            idle_timeout_ms,
            max_speed,
            throttle: Mutex::new((i64::MIN, 0)),
        }
    }

    /// Note a batch whose newest event is `max_ms`.
    pub fn observe(&self, max_ms: i64) {
        let prev = self.max_event_ms.fetch_max(max_ms, Ordering::AcqRel);
        if max_ms > prev {
            metrics().watermark_ms.set(max_ms);
        }
        self.last_arrival_ms.store(now_ms(), Ordering::Release);
    }

    /// Hold the watermark at or below `slot_ms` until the guard is dropped.
    pub fn hold(self: &Arc<Self>, slot_ms: i64) -> SlotGuard {
        self.register(HoldState::fixed(slot_ms))
    }

    /// Hold the watermark for a CloudTrail object delivered at `slot_ms`
    /// that follows its read progress: at `slot_ms` at first, then at the
    /// newest event time of the batches every shard has applied, minus
    /// `disorder_ms` (how far back in time the object's later records may
    /// go), whichever is later. A backfill object that spans hours then
    /// keeps only `disorder_ms` (plus lateness and windows) of its past in
    /// memory, not all of it. The object's router reports its batches
    /// ([`Router::with_progress`]).
    pub fn hold_following(self: &Arc<Self>, slot_ms: i64, disorder_ms: i64) -> SlotGuard {
        self.register(HoldState::following(slot_ms, disorder_ms))
    }

    fn register(self: &Arc<Self>, state: HoldState) -> SlotGuard {
        let id = self.next_hold.fetch_add(1, Ordering::Relaxed);
        let state = Arc::new(state);
        self.in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, state.clone());
        SlotGuard {
            clock: self.clone(),
            id,
            state,
        }
    }

    fn oldest_in_flight(&self) -> i64 {
        self.in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .map(|h| h.at_ms.load(Ordering::Acquire))
            .min()
            .unwrap_or(i64::MAX)
    }

    /// Keep the watermark where it is until the wall clock reaches `wall_ms`.
    pub fn hold_until(&self, wall_ms: i64) {
        self.hold_until_wall_ms.store(wall_ms, Ordering::Release);
    }

    /// Cap the effective time (replay: the lowest slot of the objects not
    /// yet started).
    pub fn set_ceiling(&self, ms: i64) {
        self.ceiling_ms.store(ms, Ordering::Release);
    }

    /// Newest event time seen, advanced by the wall-clock time spent idle
    /// beyond the idle timeout (so windows close on a quiet stream).
    pub fn effective_max_ms(&self) -> i64 {
        if now_ms() < self.hold_until_wall_ms.load(Ordering::Acquire) {
            return i64::MIN;
        }
        let max = self
            .max_event_ms
            .load(Ordering::Acquire)
            .min(self.ceiling_ms.load(Ordering::Acquire))
            .min(self.oldest_in_flight());
        if max == i64::MIN {
            return max;
        }
        let candidate = match self.idle_timeout_ms {
            Some(idle) => {
                let quiet = now_ms() - self.last_arrival_ms.load(Ordering::Acquire) - idle;
                max.saturating_add(quiet.max(0))
            }
            None => max,
        };
        let Some(speed) = self.max_speed else {
            return candidate;
        };
        let now = now_ms();
        let mut t = self.throttle.lock().unwrap_or_else(|p| p.into_inner());
        let (prev, prev_wall) = *t;
        let effective = if prev == i64::MIN {
            candidate
        } else {
            let allowed = prev.saturating_add(((now - prev_wall).max(0) as f64 * speed) as i64);
            candidate.min(allowed)
        };
        *t = (prev.max(effective), now);
        effective
    }
}

/// Where one object holds the watermark, and (when it follows read
/// progress) which of its batches have been applied.
#[derive(Debug)]
struct HoldState {
    at_ms: AtomicI64,
    /// `None`: the hold stays at `at_ms`.
    follow: Option<Follow>,
}

#[derive(Debug)]
struct Follow {
    slot_ms: i64,
    disorder_ms: i64,
    applied: Mutex<AppliedPrefix>,
}

/// Batches applied out of order are kept until every earlier one is
/// applied too: only a complete prefix of the object may move the hold, or
/// a batch still queued for a slow shard could become late.
#[derive(Debug, Default)]
struct AppliedPrefix {
    /// Sequence number of the first batch not yet applied.
    next: u64,
    /// Applied batches after `next` (sequence → newest event time).
    ahead: BTreeMap<u64, i64>,
    /// Newest event time of the applied prefix.
    max_ms: i64,
}

impl HoldState {
    fn fixed(at_ms: i64) -> Self {
        Self {
            at_ms: AtomicI64::new(at_ms),
            follow: None,
        }
    }

    fn following(slot_ms: i64, disorder_ms: i64) -> Self {
        Self {
            at_ms: AtomicI64::new(slot_ms),
            follow: Some(Follow {
                slot_ms,
                disorder_ms,
                applied: Mutex::new(AppliedPrefix {
                    max_ms: i64::MIN,
                    ..AppliedPrefix::default()
                }),
            }),
        }
    }

    fn applied(&self, seq: u64, max_ms: i64) {
        let Some(f) = &self.follow else { return };
        let mut p = f.applied.lock().unwrap_or_else(|p| p.into_inner());
        p.ahead.insert(seq, max_ms);
        let before = p.max_ms;
        loop {
            let next = p.next;
            let Some(m) = p.ahead.remove(&next) else {
                break;
            };
            p.max_ms = p.max_ms.max(m);
            p.next += 1;
        }
        if p.max_ms > before {
            let at = f.slot_ms.max(p.max_ms.saturating_sub(f.disorder_ms));
            self.at_ms.fetch_max(at, Ordering::AcqRel);
        }
    }
}

/// Keeps an object's hold in [`EventClock`]'s in-flight set until dropped.
#[derive(Debug)]
pub struct SlotGuard {
    clock: Arc<EventClock>,
    id: u64,
    state: Arc<HoldState>,
}

impl SlotGuard {
    /// Progress reporting for a router: see [`Router::with_progress`].
    pub fn progress(&self) -> Progress {
        Progress {
            state: self.state.clone(),
            next_seq: Arc::new(AtomicU64::new(0)),
        }
    }
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        self.clock
            .in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.id);
    }
}

/// Numbers one object's batches; see [`EventClock::hold_following`].
#[derive(Debug, Clone)]
pub struct Progress {
    state: Arc<HoldState>,
    next_seq: Arc<AtomicU64>,
}

impl Progress {
    /// A ticket for the next batch, whose newest event is `max_ms`.
    fn ticket(&self, max_ms: i64) -> Arc<Ticket> {
        Arc::new(Ticket {
            state: self.state.clone(),
            seq: self.next_seq.fetch_add(1, Ordering::Relaxed),
            max_ms,
        })
    }
}

/// Travels with a batch's per-shard parts; the last one dropped (every shard
/// has applied its part) reports the batch applied.
#[derive(Debug)]
pub struct Ticket {
    state: Arc<HoldState>,
    seq: u64,
    max_ms: i64,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.state.applied(self.seq, self.max_ms);
    }
}

/// What a shard drops once it has applied a batch: the SQS message's
/// [`Ack`] and the object's progress [`Ticket`].
#[derive(Debug, Clone, Default)]
pub struct Applied {
    /// The message's completion token.
    pub ack: Option<Ack>,
    /// The object's progress ticket.
    pub ticket: Option<Arc<Ticket>>,
}

/// Shard index of an identity.
pub fn shard_of(identity: &str, shards: usize) -> usize {
    shard_of_hash(crate::decode::sym::text_hash(identity), shards)
}

/// [`shard_of`] from the identity's hash (a [`Sym`]'s, computed when it
/// was interned).
///
/// [`Sym`]: crate::decode::Sym
pub fn shard_of_hash(hash: u64, shards: usize) -> usize {
    (hash % shards as u64) as usize
}

/// Routes decoded events to shard actors. One per fetch task; cheap to make.
#[derive(Debug, Clone)]
pub struct Router {
    shards: Arc<[ShardHandle]>,
    clock: Arc<EventClock>,
    batch_events: usize,
    ack: Option<Ack>,
    progress: Option<Progress>,
}

impl Router {
    /// A router over `shards`.
    pub fn new(shards: Arc<[ShardHandle]>, clock: Arc<EventClock>, batch_events: usize) -> Self {
        Self {
            shards,
            clock,
            batch_events,
            ack: None,
            progress: None,
        }
    }

    /// The shared clock.
    pub fn clock(&self) -> &Arc<EventClock> {
        &self.clock
    }

    /// The same router, attaching `ack` to every batch it sends.
    pub fn with_ack(&self, ack: Ack) -> Self {
        Self {
            ack: Some(ack),
            ..self.clone()
        }
    }

    /// The same router, reporting the batches it sends as applied to the
    /// object's hold (one router per object: batches are numbered in send
    /// order).
    pub fn with_progress(&self, progress: Progress) -> Self {
        Self {
            progress: Some(progress),
            ..self.clone()
        }
    }
}

impl EventOut for Router {
    async fn push(&mut self, events: &mut Vec<Event>) -> Result<(), ()> {
        let n = self.shards.len();
        let max = events.iter().map(|e| e.time_ms).max().unwrap_or(i64::MIN);
        if max == i64::MIN {
            events.clear();
            return Ok(());
        }
        // Events travel by value: a shard keeps each batch as it arrives
        // (`window::log`). The decoder refills a buffer of the same room.
        let per: Vec<Vec<Event>> = if n == 1 {
            vec![std::mem::replace(
                events,
                Vec::with_capacity(events.capacity()),
            )]
        } else {
            // Room for an even split and some skew, so a part does not
            // regrow from empty.
            let room = events.len().div_ceil(n) + events.len() / (4 * n);
            let mut per: Vec<Vec<Event>> = (0..n).map(|_| Vec::with_capacity(room)).collect();
            for e in events.drain(..) {
                per[shard_of_hash(e.identity.text_hash(), n)].push(e);
            }
            per
        };
        self.clock.observe(max);
        if let Some(a) = &self.ack {
            a.observe(max);
        }
        let applied = Applied {
            ack: self.ack.clone(),
            ticket: self.progress.as_ref().map(|p| p.ticket(max)),
        };
        for (i, mut evs) in per.into_iter().enumerate() {
            while !evs.is_empty() {
                let rest = if evs.len() > self.batch_events {
                    evs.split_off(self.batch_events)
                } else {
                    Vec::new()
                };
                self.shards[i].send(evs, applied.clone()).await?;
                evs = rest;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_of_is_stable_and_in_range() {
        let sym = crate::decode::Sym::new("arn:aws:iam::1:user/a");
        for n in 1..8 {
            let a = shard_of("arn:aws:iam::1:user/a", n);
            assert!(a < n);
            assert_eq!(a, shard_of("arn:aws:iam::1:user/a", n));
            assert_eq!(a, shard_of_hash(sym.text_hash(), n));
        }
    }

    #[test]
    fn clock_tracks_max_and_idle_advance() {
        let c = EventClock::new(None);
        assert_eq!(c.effective_max_ms(), i64::MIN);
        c.observe(1000);
        c.observe(500);
        assert_eq!(c.effective_max_ms(), 1000);
        c.set_ceiling(700);
        assert_eq!(c.effective_max_ms(), 700);
        let c = Arc::new(EventClock::new(None));
        c.observe(5000);
        let g1 = c.hold(3000);
        let g2 = c.hold(4000);
        assert_eq!(c.effective_max_ms(), 3000);
        drop(g1);
        assert_eq!(c.effective_max_ms(), 4000);
        drop(g2);
        assert_eq!(c.effective_max_ms(), 5000);
        // Speed-limited: a jump of an hour of event time is taken slowly.
        let c = EventClock::with_max_speed(None, Some(10.0));
        c.observe(1_000_000);
        assert_eq!(c.effective_max_ms(), 1_000_000);
        c.observe(1_000_000 + 3_600_000);
        let e = c.effective_max_ms();
        assert!((1_000_000..1_000_000 + 3_600_000).contains(&e), "{e}");
        let idle = EventClock::new(Some(0));
        idle.observe(1000);
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(idle.effective_max_ms() >= 1010);
    }

    #[test]
    fn a_following_hold_moves_only_past_a_complete_applied_prefix() {
        let c = Arc::new(EventClock::new(None));
        c.observe(50_000);
        let g = c.hold_following(10_000, 1_000);
        assert_eq!(c.effective_max_ms(), 10_000, "at the slot at first");
        let p = g.progress();
        let (t0, t1, t2) = (p.ticket(12_000), p.ticket(30_000), p.ticket(20_000));
        drop(t1);
        assert_eq!(
            c.effective_max_ms(),
            10_000,
            "batch 0 is still queued: its events must not become late"
        );
        drop(t0);
        assert_eq!(c.effective_max_ms(), 29_000, "prefix 0..=1 applied");
        drop(t2);
        assert_eq!(c.effective_max_ms(), 29_000, "never backwards");
        // Never below the slot, and a fixed hold beside it still counts.
        let early = c.hold(15_000);
        assert_eq!(c.effective_max_ms(), 15_000);
        drop(early);
        drop(g);
        assert_eq!(c.effective_max_ms(), 50_000);
        let g = c.hold_following(40_000, 60_000);
        drop(g.progress().ticket(45_000));
        assert_eq!(c.effective_max_ms(), 40_000, "the slot is the floor");
    }
}
