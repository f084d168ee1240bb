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

use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::{Arc, LazyLock, Mutex};

use hashbrown::HashTable;
use rustc_hash::FxBuildHasher;

/// An interned string. Cloning is a reference-count bump; equality is
/// identity, hashing writes the hash computed at interning.
#[derive(Clone)]
pub struct Sym(Arc<Inner>);

struct Inner {
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
        let sym_hash = |s: &Sym| s.0.hash;
        if let Some(found) = shard.table.find(hash, |c| c.as_str() == s) {
            return found.clone();
        }
        if shard.table.len() >= shard.purge_at {
            // A count of one is the table's own reference: no one else can
            // clone it, and lookups clone under this lock, so it is safe to
            // drop; whoever interns the text again gets a new allocation.
            shard.table.retain(|c| Arc::strong_count(&c.0) > 1);
            shard.purge_at = PURGE_AT.max(2 * shard.table.len());
        }
        let sym = Sym(Arc::new(Inner {
            hash,
            text: s.into(),
        }));
        shard.table.insert_unique(hash, sym.clone(), sym_hash);
        sym
    }

    /// The empty string (a missing grouping field), without a table lookup.
    pub fn empty() -> Self {
        Self::empty_ref().clone()
    }

    /// [`Sym::empty`], borrowed (it lives as long as the process).
    pub fn empty_ref() -> &'static Sym {
        static EMPTY: LazyLock<Sym> = LazyLock::new(|| Sym::new(""));
        &EMPTY
    }

    /// The allocation's address: the symbol's identity while it is alive.
    /// A key for maps that hold the symbol alive some other way (the
    /// events they count), so the address cannot be reused under them.
    pub fn addr(&self) -> usize {
        Arc::as_ptr(&self.0) as usize
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0.text
    }

    /// Whether both are the same allocation (for symbols: the same value).
    pub fn ptr_eq(a: &Sym, b: &Sym) -> bool {
        Arc::ptr_eq(&a.0, &b.0)
    }

    /// The hash computed at interning ([`text_hash`] of the text).
    pub fn text_hash(&self) -> u64 {
        self.0.hash
    }
}

impl PartialEq for Sym {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Sym {}

impl Hash for Sym {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.0.hash)
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
