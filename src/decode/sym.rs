//! Interned strings: one process-wide allocation per distinct value.
//!
//! The rule engine keys its maps by identities, event names and IPs and
//! looks them up several times per event. With one allocation per value,
//! equality is an address comparison and the hash is computed once, when
//! the value is first interned, instead of over 60-odd bytes of ARN at
//! every lookup. Before, each decoder thread interned on its own: with two
//! threads, half of the engine's lookups found a copy at another address
//! and compared bytes.
//!
//! Decoder threads keep their own cache in front of the process-wide
//! table ([`crate::decode::record::Interner`]), so the table's lock is
//! taken once per value a thread has not seen lately, not per field.
//! Values nobody holds any more are dropped from the table when it grows.
//!
//! Values of low-cardinality fields are pinned ([`Sym::pin`]): kept for
//! the life of the process, up to [`MAX_PINNED`], so that the several of
//! them every event holds cost no atomic update when events are made,
//! cloned into the engine's keys and freed, often on another thread.
//! `Arc` has no such state, so the reference count here is this module's
//! own; its `unsafe` is the pointer it dereferences and frees, under the
//! same rules as `Arc`'s.
#![allow(unsafe_code)]

use std::hash::{BuildHasher, Hash, Hasher};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering, fence};
use std::sync::{LazyLock, Mutex};

use hashbrown::HashTable;
use rustc_hash::FxBuildHasher;

/// An interned string. Cloning is a reference-count bump, or nothing for a
/// pinned symbol; equality is identity, hashing writes the hash computed at
/// interning.
pub struct Sym(NonNull<Inner>);

// SAFETY: a `Sym` is a shared reference to an `Inner` that lives as long as
// any `Sym` of it (the count below, as `Arc` keeps it); `Inner` is only
// read after construction, apart from its atomics.
unsafe impl Send for Sym {}
// SAFETY: as for `Send`: `&Sym` gives only shared reads and atomic updates.
unsafe impl Sync for Sym {}

struct Inner {
    /// References, the table's own included, as in `Arc`; pinning adds one
    /// that is never given back, so a pinned value's count stays above one
    /// (kept by purges, never freed) whichever of its holders saw the flag.
    count: AtomicUsize,
    /// Set once, never cleared: clones and drops then leave `count` alone.
    pinned: AtomicBool,
    /// [`text_hash`] of `text`.
    hash: u64,
    text: Box<str>,
}

/// The hash a symbol carries: `FxHasher` over the `str`, the same as
/// [`crate::shard::shard_of`] computes for a plain string.
pub fn text_hash(s: &str) -> u64 {
    FxBuildHasher.hash_one(s)
}

/// Lock shards of the table (a power of two): decoder threads intern
/// concurrently.
const SHARDS: usize = 16;

/// Entries a table shard may hold before values nobody holds are dropped
/// (then twice what stays, so a purge costs O(1) per insert, amortised).
const PURGE_AT: usize = 4096;

/// At most this many values are ever pinned (about 6 MB with the table's
/// entries); past it, [`Sym::pin`] leaves values counted, so a stream of
/// made-up event names cannot grow memory without bound.
pub const MAX_PINNED: usize = 1 << 16;

static PINNED: AtomicUsize = AtomicUsize::new(0);

/// Take one of `max` slots counted by `used`; `false` when all are taken.
fn take_slot(used: &AtomicUsize, max: usize) -> bool {
    // Checked first so that, once full, callers pay a load, not two writes
    // to a shared counter.
    if used.load(Ordering::Relaxed) >= max {
        return false;
    }
    if used.fetch_add(1, Ordering::Relaxed) >= max {
        // Taken past the end: give it back.
        used.fetch_sub(1, Ordering::Relaxed);
        return false;
    }
    true
}

struct Shard {
    table: HashTable<Sym>,
    purge_at: usize,
}

static TABLE: LazyLock<[Mutex<Shard>; SHARDS]> = LazyLock::new(|| {
    std::array::from_fn(|_| {
        Mutex::new(Shard {
            table: HashTable::new(),
            purge_at: PURGE_AT,
        })
    })
});

impl Sym {
    /// The symbol for `s`: the one allocation every `Sym` of this text
    /// shares while any is alive.
    pub fn new(s: &str) -> Self {
        let hash = text_hash(s);
        // The top bits pick the shard; hashbrown uses the low and top 7.
        let shard = &TABLE[(hash >> 32) as usize % SHARDS];
        let mut shard = shard.lock().unwrap_or_else(|p| p.into_inner());
        let sym_hash = |s: &Sym| s.inner().hash;
        if let Some(found) = shard.table.find(hash, |c| c.as_str() == s) {
            return found.clone();
        }
        if shard.table.len() >= shard.purge_at {
            // A count of one is the table's own reference: no one else can
            // clone it, and lookups clone under this lock, so it is safe to
            // drop; whoever interns the text again gets a new allocation.
            // Pinned values hold a reference of their own, so they stay.
            shard
                .table
                .retain(|c| c.inner().count.load(Ordering::Acquire) > 1);
            shard.purge_at = PURGE_AT.max(2 * shard.table.len());
        }
        let inner = Box::new(Inner {
            count: AtomicUsize::new(1),
            pinned: AtomicBool::new(false),
            hash,
            text: s.into(),
        });
        let sym = Sym(NonNull::from(Box::leak(inner)));
        shard.table.insert_unique(hash, sym.clone(), sym_hash);
        sym
    }

    /// [`Sym::new`], pinned ([`Sym::pin`]).
    pub fn pinned(s: &str) -> Self {
        let sym = Self::new(s);
        sym.pin();
        sym
    }

    /// Keep this value for the life of the process, so that clones and
    /// drops cost no atomic update; `false` when [`MAX_PINNED`] values are
    /// pinned already (the value then stays counted).
    #[inline]
    pub fn pin(&self) -> bool {
        // Inlined for the decoder, which asks for every pinned field it
        // reads; only the first time for a value goes on.
        self.is_pinned() || self.pin_slow()
    }

    #[cold]
    #[inline(never)]
    fn pin_slow(&self) -> bool {
        let inner = self.inner();
        if !take_slot(&PINNED, MAX_PINNED) {
            return false;
        }
        // The pin's own reference (this `Sym` is counted: it was not made
        // from a pinned one), taken before the flag can let a clone skip
        // the count.
        inner.count.fetch_add(1, Ordering::Relaxed);
        if inner.pinned.swap(true, Ordering::Relaxed) {
            // Another thread pinned it first, with its slot and reference;
            // this `Sym` still holds one, so the count cannot reach zero.
            inner.count.fetch_sub(1, Ordering::Relaxed);
            PINNED.fetch_sub(1, Ordering::Relaxed);
        }
        true
    }

    /// Whether the value is pinned ([`Sym::pin`]).
    pub fn is_pinned(&self) -> bool {
        self.inner().pinned.load(Ordering::Relaxed)
    }

    /// The empty string (a missing grouping field), without a table lookup.
    pub fn empty() -> Self {
        Self::empty_ref().clone()
    }

    /// [`Sym::empty`], borrowed (it lives as long as the process).
    pub fn empty_ref() -> &'static Sym {
        static EMPTY: LazyLock<Sym> = LazyLock::new(|| Sym::pinned(""));
        &EMPTY
    }

    fn inner(&self) -> &Inner {
        // SAFETY: the pointer came from `Box::leak` and the allocation is
        // freed only when the last `Sym` of it is dropped (see `Drop`), so
        // it is valid for as long as `self` is.
        unsafe { self.0.as_ref() }
    }

    /// The allocation's address: the symbol's identity while it is alive.
    /// A key for maps that hold the symbol alive some other way (the
    /// events they count), so the address cannot be reused under them.
    pub fn addr(&self) -> usize {
        self.0.as_ptr() as usize
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.inner().text
    }

    /// Whether both are the same allocation (for symbols: the same value).
    pub fn ptr_eq(a: &Sym, b: &Sym) -> bool {
        a.0 == b.0
    }

    /// The hash computed at interning ([`text_hash`] of the text).
    pub fn text_hash(&self) -> u64 {
        self.inner().hash
    }

    /// The live reference count (the table's own included), for tests of
    /// other modules that release symbols.
    #[cfg(test)]
    pub(crate) fn ref_count(&self) -> usize {
        self.inner().count.load(Ordering::SeqCst)
    }
}

impl Clone for Sym {
    fn clone(&self) -> Self {
        let inner = self.inner();
        // `pinned` only ever goes from false to true, and a clone that saw
        // it set is dropped after that read, so its drop sees it set too
        // and gives back nothing it did not take.
        if !inner.pinned.load(Ordering::Relaxed) {
            // Relaxed, as in `Arc`: a new reference is made from an
            // existing one, which keeps the allocation alive meanwhile.
            let old = inner.count.fetch_add(1, Ordering::Relaxed);
            if old > isize::MAX as usize {
                // Billions of leaked clones: stop rather than wrap.
                std::process::abort();
            }
        }
        Sym(self.0)
    }
}

impl Drop for Sym {
    fn drop(&mut self) {
        let inner = self.inner();
        if inner.pinned.load(Ordering::Relaxed) {
            return;
        }
        // As in `Arc`: Release so this holder's reads happen before the
        // free, Acquire (the fence) so the free happens after every other
        // holder's.
        if inner.count.fetch_sub(1, Ordering::Release) != 1 {
            return;
        }
        fence(Ordering::Acquire);
        // SAFETY: the count reached zero, so this was the last `Sym` of the
        // allocation (the table holds one while it has the entry, and it
        // drops it only under its lock; a pinned value's own reference is
        // never given back); nothing can reach it any more.
        drop(unsafe { Box::from_raw(self.0.as_ptr()) });
    }
}

impl PartialEq for Sym {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl Eq for Sym {}

impl Hash for Sym {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.inner().hash)
    }
}

impl PartialOrd for Sym {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Sym {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl std::ops::Deref for Sym {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Sym {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl From<&str> for Sym {
    fn from(s: &str) -> Self {
        Self::new(s)
    }
}

impl From<String> for Sym {
    fn from(s: String) -> Self {
        Self::new(&s)
    }
}

impl std::fmt::Debug for Sym {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl std::fmt::Display for Sym {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_allocation_per_text() {
        let a = Sym::new("arn:aws:iam::1:user/a");
        let again = Sym::from(String::from("arn:aws:iam::1:user/a"));
        assert!(Sym::ptr_eq(&a, &again));
        assert_eq!(a, again);
        assert_ne!(a, Sym::new("arn:aws:iam::1:user/b"));
        assert_eq!(a.text_hash(), text_hash("arn:aws:iam::1:user/a"));
        assert!(Sym::new("a") < Sym::new("b"));
        assert_eq!(
            format!("{a} {a:?}"),
            r#"arn:aws:iam::1:user/a "arn:aws:iam::1:user/a""#
        );
        let m: std::collections::HashMap<Sym, u8> = [(again, 1)].into();
        assert_eq!(m.get(&a), Some(&1));
    }

    #[test]
    fn interned_from_many_threads_is_one_value() {
        let syms: Vec<Sym> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..4)
                .map(|_| s.spawn(|| Sym::new("shared across threads")))
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(syms.windows(2).all(|w| Sym::ptr_eq(&w[0], &w[1])));
    }

    #[test]
    fn clones_and_drops_keep_the_count_of_a_counted_value() {
        let a = Sym::new("counted value, cloned and dropped");
        assert!(!a.is_pinned());
        assert_eq!(a.ref_count(), 2, "the table's reference and this one");
        let clones: Vec<Sym> = (0..10).map(|_| a.clone()).collect();
        assert_eq!(a.ref_count(), 12);
        drop(clones);
        assert_eq!(a.ref_count(), 2);
        let moved = std::thread::spawn({
            let b = a.clone();
            move || {
                let c = b.clone();
                drop(b);
                c
            }
        })
        .join()
        .unwrap();
        assert_eq!(a.ref_count(), 3);
        drop(moved);
        assert_eq!(a.ref_count(), 2);
    }

    #[test]
    fn a_pinned_value_is_never_freed_and_clones_leave_its_count_alone() {
        let a = Sym::new("pinned after some clones");
        let before = a.clone();
        assert!(a.pin() && a.is_pinned() && before.is_pinned());
        let n = a.ref_count();
        let clones: Vec<Sym> = (0..100).map(|_| a.clone()).collect();
        assert_eq!(a.ref_count(), n, "no count traffic once pinned");
        drop(clones);
        // Drops after the pin do not decrement either: the clone made
        // before it is not given back, so the count never reaches zero.
        drop(before);
        drop(a);
        let again = Sym::new("pinned after some clones");
        assert!(again.is_pinned());
        assert_eq!(again.ref_count(), n);
        // Purges keep it even though nobody holds it.
        for i in 0..(SHARDS * PURGE_AT * 3) {
            drop(Sym::new(&format!("purge filler {i}")));
        }
        let addr = again.addr();
        drop(again);
        assert_eq!(Sym::new("pinned after some clones").addr(), addr);
        assert!(Sym::pinned("").is_pinned() && Sym::empty_ref().is_pinned());
        assert!(Sym::ptr_eq(Sym::empty_ref(), &Sym::new("")));
    }

    #[test]
    fn a_pinned_value_keeps_a_reference_of_its_own() {
        // Holders on threads that have not seen the flag yet give their
        // counted references back; the table's and the pin's remain, so
        // purges, which read only the count, keep the value.
        let a = Sym::new("pinned, then released as if unseen");
        let b = a.clone();
        assert_eq!(a.ref_count(), 3);
        assert!(a.pin());
        for s in [a, b] {
            // What a drop that read the flag as still clear does.
            s.inner().count.fetch_sub(1, Ordering::Release);
            std::mem::forget(s);
        }
        let again = Sym::new("pinned, then released as if unseen");
        assert_eq!(again.ref_count(), 2, "the table's and the pin's");
        for i in 0..(SHARDS * PURGE_AT * 3) {
            drop(Sym::new(&format!("own reference filler {i}")));
        }
        assert!(Sym::ptr_eq(
            &again,
            &Sym::new("pinned, then released as if unseen")
        ));
    }

    #[test]
    fn pinning_races_with_clones_and_drops_on_other_threads() {
        // Threads clone and drop their own copies while one of them pins
        // the value; whichever side of the pin each operation falls on,
        // nothing is freed while held (a use after free would show as a
        // wrong text or a crash) and the value ends up pinned.
        for round in 0..50 {
            let text = format!("raced value {round}");
            let base = Sym::new(&text);
            std::thread::scope(|s| {
                for t in 0..4 {
                    let mine = base.clone();
                    let text = &text;
                    s.spawn(move || {
                        for i in 0..2_000 {
                            if t == 0 && i == 1_000 {
                                mine.pin();
                            }
                            let c = mine.clone();
                            assert_eq!(c.as_str(), text);
                            drop(c);
                        }
                    });
                }
            });
            assert!(base.is_pinned());
            assert_eq!(base.as_str(), text);
        }
    }

    #[test]
    fn the_cap_stops_taking_slots() {
        let used = AtomicUsize::new(0);
        assert!((0..5).all(|_| take_slot(&used, 5)));
        assert!(!take_slot(&used, 5) && !take_slot(&used, 5));
        assert_eq!(
            used.load(Ordering::Relaxed),
            5,
            "refusals give back what they took"
        );
        // From many threads at once: exactly `max` are granted.
        let used = AtomicUsize::new(0);
        let granted: usize = std::thread::scope(|s| {
            let hs: Vec<_> = (0..4)
                .map(|_| s.spawn(|| (0..1_000).filter(|_| take_slot(&used, 1_500)).count()))
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(granted, 1_500);
        assert_eq!(used.load(Ordering::Relaxed), 1_500);
    }

    #[test]
    fn values_no_one_holds_are_purged_and_held_ones_survive() {
        let held = Sym::new("held through purges");
        // Enough distinct, immediately dropped values to purge every shard
        // several times over.
        for i in 0..(SHARDS * PURGE_AT * 3) {
            drop(Sym::new(&format!("transient value {i}")));
        }
        assert!(Sym::ptr_eq(&held, &Sym::new("held through purges")));
        let sizes: usize = TABLE.iter().map(|s| s.lock().unwrap().table.len()).sum();
        assert!(
            sizes < SHARDS * PURGE_AT * 2,
            "purges keep the table bounded: {sizes}"
        );
        // A dropped value interned again is a working symbol.
        let back = Sym::new("transient value 7");
        assert_eq!(back.as_str(), "transient value 7");
        assert!(Sym::ptr_eq(&back, &Sym::new("transient value 7")));
    }
}
