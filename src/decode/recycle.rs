//! Reuse of spent event allocations: the shards hand back the events they
//! hold the last reference to, and the router refills them with new ones.
//!
//! Every event is shared ([`EventRef`]) so that rules can buffer it, and a
//! buffered one is released minutes later (a sliding window's events live
//! for the lateness plus the window), long out of the cache and in another
//! order than allocated. `free` then walked the allocator's bins among cold
//! neighbours, and `malloc` did again for the next event: with the event's
//! release, about 8 % of a one-core replay's samples. A reused allocation
//! skips both, and the old event's fields are dropped when the new one is
//! written over it.
//!
//! Memory stays bounded: at most [`SPARE_CAP`] allocations wait here, each
//! still holding its old event (and so its symbols) until reused. Beyond
//! the cap a released event is simply dropped.

use std::sync::{Arc, Mutex};

use super::event::{Event, EventRef};

/// Spent allocations kept for reuse, over all shards.
pub const SPARE_CAP: usize = 8_192;

/// Spent events a shard collects before handing them back in one lock.
const GIVE_EVERY: usize = 256;

/// Allocations of events no one holds any more, waiting for new events.
static SPARE: Mutex<Vec<EventRef>> = Mutex::new(Vec::new());

fn spare() -> std::sync::MutexGuard<'static, Vec<EventRef>> {
    // A panic while holding the lock leaves a vector of valid references.
    SPARE.lock().unwrap_or_else(|p| p.into_inner())
}

/// Turns decoded events into shared ones, reusing spent allocations.
#[derive(Debug, Default)]
pub struct Sharer {
    reuse: Vec<EventRef>,
}

impl Sharer {
    /// Take spent allocations for up to `n` events (one lock).
    pub fn reserve(&mut self, n: usize) {
        let mut spare = spare();
        let take = n.saturating_sub(self.reuse.len()).min(spare.len());
        let from = spare.len() - take;
        self.reuse.extend(spare.drain(from..));
        drop(spare);
        touch(&self.reuse);
    }

    /// `e` as a shared event: in a reserved allocation when one is left,
    /// else in a new one.
    pub fn share(&mut self, e: Event) -> EventRef {
        match self.reuse.pop() {
            Some(mut slot) => {
                // Only unique references are handed back (`Spent::put`),
                // and nothing can have cloned one since.
                *Arc::get_mut(&mut slot).expect("a spent event is unique") = e;
                slot
            }
            None => Arc::new(e),
        }
    }
}

impl Drop for Sharer {
    fn drop(&mut self) {
        give(&mut self.reuse);
    }
}

/// A shard's released events, handed back in batches.
#[derive(Debug, Default)]
pub struct Spent {
    events: Vec<EventRef>,
}

impl Spent {
    /// Release `e`: kept for reuse when this was its last reference, else
    /// just dropped (another holder still has it).
    #[inline]
    pub fn put(&mut self, mut e: EventRef) {
        if Arc::get_mut(&mut e).is_some() {
            self.events.push(e);
            if self.events.len() >= GIVE_EVERY {
                self.flush();
            }
        }
    }

    /// Hand the collected events back (one lock).
    pub fn flush(&mut self) {
        give(&mut self.events);
    }
}

impl Drop for Spent {
    fn drop(&mut self) {
        self.flush();
    }
}

/// Load every field of `events` and the symbols they point to, so that
/// their cache misses overlap: the spent events are minutes old, and
/// writing over them one at a time (which drops each field) waited for
/// each miss in turn.
fn touch(events: &[EventRef]) {
    let mut acc = 0u64;
    for e in events {
        acc ^= e.time_ms as u64 ^ e.id as u64;
        for s in [&e.name, &e.source, &e.region, &e.identity] {
            acc ^= s.text_hash();
        }
        for s in [
            &e.source_ip,
            &e.user_agent,
            &e.error_code,
            &e.account_id,
            &e.identity_type,
            &e.access_key_id,
        ]
        .into_iter()
        .flatten()
        {
            acc ^= s.text_hash();
        }
    }
    std::hint::black_box(acc);
}

/// Move `events` into the spare pool, as many as fit; the rest are dropped.
fn give(events: &mut Vec<EventRef>) {
    if events.is_empty() {
        return;
    }
    let over = give_into(&mut spare(), events, SPARE_CAP);
    // Dropped outside the lock: each drop frees an event.
    drop(over);
}

/// Move from `events` into `pool` until it holds `cap`; what did not fit.
fn give_into(pool: &mut Vec<EventRef>, events: &mut Vec<EventRef>, cap: usize) -> Vec<EventRef> {
    let keep = cap.saturating_sub(pool.len()).min(events.len());
    let over = events.split_off(keep);
    pool.append(events);
    over
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{IdentitySource, Sym};

    fn event(id: u128, identity: &str) -> Event {
        Event {
            time_ms: id as i64,
            id,
            name: Sym::new("ListBuckets"),
            source: Sym::new("s3.amazonaws.com"),
            region: Sym::new("us-east-1"),
            source_ip: Some(Sym::new("192.0.2.1")),
            user_agent: None,
            error_code: None,
            account_id: None,
            identity: Sym::new(identity),
            identity_source: IdentitySource::Arn,
            identity_type: None,
            access_key_id: None,
            console_session: false,
        }
    }

    #[test]
    fn a_spent_allocation_is_refilled() {
        let old = Arc::new(event(1, "arn:aws:iam::1:user/old"));
        let at = Arc::as_ptr(&old);
        let mut sharer = Sharer { reuse: vec![old] };
        let new = sharer.share(event(2, "arn:aws:iam::1:user/new"));
        assert_eq!(Arc::as_ptr(&new), at);
        assert_eq!(*new, event(2, "arn:aws:iam::1:user/new"));
        // Nothing left to reuse: a new allocation.
        let third = sharer.share(event(3, "arn:aws:iam::1:user/new"));
        assert_ne!(Arc::as_ptr(&third), at);
        assert_eq!(third.id, 3);
    }

    #[test]
    fn refilling_releases_the_old_events_symbols() {
        let identity = Sym::new("arn:aws:iam::1:user/gone");
        let mut old = event(1, "x");
        old.identity = identity.clone();
        let mut sharer = Sharer {
            reuse: vec![Arc::new(old)],
        };
        let held = identity.ref_count();
        let _new = sharer.share(event(2, "arn:aws:iam::1:user/new"));
        assert_eq!(identity.ref_count(), held - 1);
    }

    #[test]
    fn only_last_references_are_kept() {
        let mut spent = Spent::default();
        let shared = Arc::new(event(1, "a"));
        let other = shared.clone();
        spent.put(shared);
        assert!(spent.events.is_empty(), "another holder still has it");
        spent.put(other);
        assert_eq!(spent.events.len(), 1);
        // Kept ones are unique, as `Sharer::share` requires.
        assert!(Arc::get_mut(&mut spent.events[0]).is_some());
        spent.events.clear();
    }

    #[test]
    fn the_pool_holds_at_most_its_cap() {
        let mut pool: Vec<EventRef> = (0..3).map(|i| Arc::new(event(i, "a"))).collect();
        let mut more: Vec<EventRef> = (10..15).map(|i| Arc::new(event(i, "b"))).collect();
        let over = give_into(&mut pool, &mut more, 5);
        assert_eq!(pool.len(), 5);
        assert_eq!(over.len(), 3);
        assert!(more.is_empty());
        let ids: Vec<u128> = pool.iter().chain(&over).map(|e| e.id).collect();
        assert_eq!(ids, [0, 1, 2, 10, 11, 12, 13, 14]);
        // A full pool takes nothing.
        let mut extra = vec![Arc::new(event(20, "c"))];
        assert_eq!(give_into(&mut pool, &mut extra, 5).len(), 1);
        assert_eq!(pool.len(), 5);
    }
}
