//! A shard's applied events, kept batch by batch: rules hold an 8-byte
//! [`EvId`] into a batch instead of a shared reference per event.
//!
//! A batch stays as it arrived (the router's `Vec<Event>`) and is freed
//! whole once no rule holds any of its events. The holds are counted per
//! batch, in a small array of their own: releasing an event (a sliding
//! window's expiry, minutes after it arrived) touches that count and not
//! the event. Before, every event was an `Arc<Event>`: its release read the
//! count inside the long-cold event, and the allocation was then handed
//! back and refilled with a new event, written over cold memory. Those
//! were about a tenth of a one-core replay's last-level cache misses.
//!
//! Rules that keep events longer than their windows (rule 5's sample of an
//! hour, detections, correlations) take copies ([`Store::copy`]), so a
//! batch lives at most as long as the longest window plus the lateness,
//! and a few held events cannot keep many batches alive.

use std::sync::Arc;

use crate::decode::{Event, EventRef};

/// An event in an [`EventLog`]: its batch and its place in the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EvId {
    batch: u32,
    idx: u32,
}

/// Where the events are (read while holds change, hence a type of its own).
#[derive(Debug, Default)]
pub struct Store {
    /// By batch id; a freed batch is an empty vector until its id is reused.
    batches: Vec<Vec<Event>>,
}

impl Store {
    /// The event `id` (held, or in the batch being applied).
    #[inline]
    pub fn get(&self, id: EvId) -> &Event {
        &self.batches[id.batch as usize][id.idx as usize]
    }

    /// A shared copy of event `id`, for what outlives windows (detections,
    /// samples).
    pub fn copy(&self, id: EvId) -> EventRef {
        Arc::new(self.get(id).clone())
    }
}

/// Per batch: how many holds its events have, and whether it is still
/// being applied (it is not freed before, even with no holds).
#[derive(Debug, Default)]
pub struct Holds {
    held: Vec<u32>,
    open: Vec<bool>,
    /// Batches whose last hold was released, to free at [`EventLog::collect`].
    unheld: Vec<u32>,
}

impl Holds {
    /// Keep event `id` (and so its batch) until [`release`](Self::release).
    #[inline]
    pub fn hold(&mut self, id: EvId) {
        self.held[id.batch as usize] += 1;
    }

    /// Give back one hold of `id`.
    #[inline]
    pub fn release(&mut self, id: EvId) {
        let b = id.batch as usize;
        let n = &mut self.held[b];
        debug_assert!(*n > 0, "release without a hold");
        *n -= 1;
        if *n == 0 && !self.open[b] {
            self.unheld.push(id.batch);
        }
    }
}

/// The events of one shard, batch by batch.
#[derive(Debug, Default)]
pub struct EventLog {
    store: Store,
    holds: Holds,
    /// Ids of freed batches, for reuse.
    free: Vec<u32>,
    /// Events in batches not yet freed.
    stored: usize,
}

impl EventLog {
    /// Store `events` as a batch, open until [`seal`](Self::seal); returns
    /// the batch id.
    pub fn add(&mut self, events: Vec<Event>) -> u32 {
        self.stored += events.len();
        match self.free.pop() {
            Some(b) => {
                let i = b as usize;
                self.store.batches[i] = events;
                self.holds.held[i] = 0;
                self.holds.open[i] = true;
                b
            }
            None => {
                let b = u32::try_from(self.store.batches.len()).expect("fewer than 2^32 batches");
                self.store.batches.push(events);
                self.holds.held.push(0);
                self.holds.open.push(true);
                b
            }
        }
    }

    /// The id of event `idx` of batch `batch`.
    pub fn id(batch: u32, idx: usize) -> EvId {
        EvId {
            batch,
            idx: idx as u32,
        }
    }

    /// The batch has been applied: from now on it is freed when unheld.
    pub fn seal(&mut self, batch: u32) {
        let b = batch as usize;
        self.holds.open[b] = false;
        if self.holds.held[b] == 0 {
            self.holds.unheld.push(batch);
        }
    }

    /// Free the batches nothing holds any more (their events are dropped).
    pub fn collect(&mut self) {
        for b in std::mem::take(&mut self.holds.unheld) {
            let i = b as usize;
            // A batch is listed once per time its holds reached zero; it may
            // have been held again since (or already freed).
            if self.holds.held[i] != 0 || self.holds.open[i] {
                continue;
            }
            let events = std::mem::take(&mut self.store.batches[i]);
            self.stored -= events.len();
            self.holds.open[i] = true; // not on the free list twice
            self.free.push(b);
            drop(events);
        }
    }

    /// The events (shared) and the holds (mutable), apart.
    pub fn parts(&mut self) -> (&Store, &mut Holds) {
        (&self.store, &mut self.holds)
    }

    /// The events.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Events in batches not yet freed (held, or sharing a batch with a
    /// held one).
    pub fn stored_events(&self) -> usize {
        self.stored
    }

    /// Batches not yet freed.
    pub fn batches(&self) -> usize {
        self.store.batches.len() - self.free.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(i: u128) -> Event {
        Event::test_call(i as i64, i, "arn:aws:iam::1:user/log")
    }

    #[test]
    fn a_batch_lives_while_held_and_its_id_is_reused_after() {
        let mut log = EventLog::default();
        let a = log.add((0..3).map(ev).collect());
        let (a1, a2) = (EventLog::id(a, 1), EventLog::id(a, 2));
        {
            let (store, holds) = log.parts();
            assert_eq!(store.get(a1).id, 1);
            holds.hold(a1);
            holds.hold(a2);
            holds.hold(a2);
        }
        log.seal(a);
        log.collect();
        assert_eq!((log.batches(), log.stored_events()), (1, 3));
        // Unheld batches go at once when sealed.
        let b = log.add((10..12).map(ev).collect());
        log.seal(b);
        log.collect();
        assert_eq!((log.batches(), log.stored_events()), (1, 3));
        let (_, holds) = log.parts();
        holds.release(a2);
        holds.release(a1);
        log.collect();
        assert_eq!(log.store().get(a2).id, 2, "one hold left");
        assert_eq!(log.store().copy(a2).id, 2);
        log.parts().1.release(a2);
        log.collect();
        assert_eq!((log.batches(), log.stored_events()), (0, 0));
        // Freed ids are reused; the new batch's events are its own.
        let c = log.add((20..22).map(ev).collect());
        assert!(c == a || c == b);
        assert_eq!(log.store().get(EventLog::id(c, 1)).id, 21);
    }

    #[test]
    fn an_open_batch_is_not_freed_when_its_holds_drop_to_zero() {
        let mut log = EventLog::default();
        let a = log.add((0..2).map(ev).collect());
        let x = EventLog::id(a, 0);
        let (_, holds) = log.parts();
        holds.hold(x);
        holds.release(x);
        log.collect();
        assert_eq!(log.store().get(EventLog::id(a, 1)).id, 1);
        // Held again before it is sealed, released after.
        log.parts().1.hold(x);
        log.seal(a);
        log.collect();
        assert_eq!(log.batches(), 1);
        log.parts().1.release(x);
        log.collect();
        assert_eq!(log.batches(), 0);
    }
}
