//! Rule-state maps looked up by borrowed keys in one probe.
//!
//! Each event looks its group up in the maps of several rules. With
//! `HashMap<GroupKey, _>`, a lookup needed an owned key: cloning its
//! symbols is an atomic reference-count increment each (and a decrement
//! when the key is dropped); in a one-core replay, those atomics were about
//! a seventh of the samples in the engine's per-event function. And
//! creating-or-finding a group took two probes. Here a lookup
//! takes any [`Lookup`] form of the key (a [`GroupKeyRef`] of borrowed
//! symbols, a `&Sym`), compares by address with the hash the key carries,
//! and makes the owned key only when it inserts.

use hashbrown::HashTable;
use hashbrown::hash_table::Entry;

use crate::decode::Sym;
use crate::rules::alert::{GroupKey, GroupKeyRef};

/// A key that carries its hash.
pub trait Hashed {
    /// The key's hash, as every [`Lookup`] form of it computes it.
    fn stored_hash(&self) -> u64;
}

/// A borrowed form of a key of type `K`.
pub trait Lookup<K> {
    /// The same hash as the owned key's [`Hashed::stored_hash`].
    fn hash(&self) -> u64;
    /// Whether `key` is this key.
    fn matches(&self, key: &K) -> bool;
    /// The owned key (for an insert).
    fn to_key(&self) -> K;
}

impl Hashed for GroupKey {
    fn stored_hash(&self) -> u64 {
        self.hash()
    }
}

impl Lookup<GroupKey> for GroupKeyRef<'_> {
    fn hash(&self) -> u64 {
        GroupKeyRef::hash(self)
    }
    fn matches(&self, key: &GroupKey) -> bool {
        self.is(key)
    }
    fn to_key(&self) -> GroupKey {
        self.to_owned_key()
    }
}

/// An owned key is its own lookup form.
impl<K: Hashed + PartialEq + Clone> Lookup<K> for K {
    fn hash(&self) -> u64 {
        self.stored_hash()
    }
    fn matches(&self, key: &K) -> bool {
        self == key
    }
    fn to_key(&self) -> K {
        self.clone()
    }
}

impl Hashed for Sym {
    fn stored_hash(&self) -> u64 {
        self.text_hash()
    }
}

/// A key that is a plain number (a symbol's address), hashed when looked up.
impl Hashed for usize {
    fn stored_hash(&self) -> u64 {
        number_hash(*self)
    }
}

fn number_hash(n: usize) -> u64 {
    use std::hash::BuildHasher;
    rustc_hash::FxBuildHasher.hash_one(n)
}

/// Rule state per key, looked up by any [`Lookup`] form of the key.
#[derive(Debug, Clone)]
pub struct StateMap<K, V>(HashTable<(K, V)>);

impl<K, V> Default for StateMap<K, V> {
    fn default() -> Self {
        Self(HashTable::new())
    }
}

impl<K: Hashed, V> StateMap<K, V> {
    /// The state under `key`.
    pub fn get(&self, key: &impl Lookup<K>) -> Option<&V> {
        self.0
            .find(key.hash(), |(k, _)| key.matches(k))
            .map(|(_, v)| v)
    }

    /// The state under `key`, mutably.
    pub fn get_mut(&mut self, key: &impl Lookup<K>) -> Option<&mut V> {
        self.0
            .find_mut(key.hash(), |(k, _)| key.matches(k))
            .map(|(_, v)| v)
    }

    /// The state under `key`, made with `make` first if there is none (one
    /// probe either way; the owned key is made only then).
    pub fn get_or_insert_with(&mut self, key: &impl Lookup<K>, make: impl FnOnce() -> V) -> &mut V {
        let entry = self.0.entry(
            key.hash(),
            |(k, _)| key.matches(k),
            |(k, _)| k.stored_hash(),
        );
        let slot = match entry {
            Entry::Occupied(o) => o.into_mut(),
            Entry::Vacant(v) => v.insert((key.to_key(), make())).into_mut(),
        };
        &mut slot.1
    }

    /// The state under `key`, empty first if there is none.
    pub fn get_or_default(&mut self, key: &impl Lookup<K>) -> &mut V
    where
        V: Default,
    {
        self.get_or_insert_with(key, V::default)
    }

    /// Set the state under `key` (an owned key: inserts are rare).
    pub fn insert(&mut self, key: K, value: V)
    where
        K: Lookup<K>,
    {
        let entry = self.0.entry(
            key.stored_hash(),
            |(k, _)| key.matches(k),
            |(k, _)| k.stored_hash(),
        );
        match entry {
            Entry::Occupied(mut o) => o.get_mut().1 = value,
            Entry::Vacant(v) => {
                v.insert((key, value));
            }
        }
    }

    /// Remove the state under `key`.
    pub fn remove(&mut self, key: &impl Lookup<K>) -> Option<V> {
        match self.0.find_entry(key.hash(), |(k, _)| key.matches(k)) {
            Ok(o) => Some(o.remove().0.1),
            Err(_) => None,
        }
    }

    /// Keep the states `keep` accepts.
    pub fn retain(&mut self, mut keep: impl FnMut(&K, &mut V) -> bool) {
        self.0.retain(|(k, v)| keep(k, v));
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every state.
    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.0.iter().map(|(_, v)| v)
    }

    /// The keys, consuming the map.
    pub fn into_keys(self) -> impl Iterator<Item = K> {
        self.0.into_iter().map(|(k, _)| k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(parts: &[&str]) -> GroupKey {
        parts.iter().map(|p| Sym::new(p)).collect()
    }

    #[test]
    fn borrowed_and_owned_keys_find_the_same_state() {
        let alice = Sym::new("arn:aws:iam::1:user/alice");
        let ip = Sym::new("203.0.113.9");
        let mut m: StateMap<GroupKey, u32> = StateMap::default();
        *m.get_or_default(&GroupKeyRef::new([&alice, &ip].into_iter().collect())) += 1;
        *m.get_or_default(&key(&["arn:aws:iam::1:user/alice", "203.0.113.9"])) += 1;
        assert_eq!(m.len(), 1);
        let view = GroupKeyRef::new([&alice, &ip].into_iter().collect());
        assert_eq!(m.get(&view), Some(&2));
        // Same symbols in another order, or a prefix, are other keys.
        assert!(
            m.get(&GroupKeyRef::new([&ip, &alice].into_iter().collect()))
                .is_none()
        );
        assert!(
            m.get(&GroupKeyRef::new([&alice].into_iter().collect()))
                .is_none()
        );
        m.insert(key(&["arn:aws:iam::1:user/alice", "203.0.113.9"]), 7);
        assert_eq!(m.get(&view), Some(&7));
        assert_eq!(m.remove(&view), Some(7));
        assert!(m.is_empty());
    }

    #[test]
    fn many_keys_survive_growth_and_retain() {
        let syms: Vec<Sym> = (0..5_000).map(|i| Sym::new(&format!("id-{i}"))).collect();
        let mut m: StateMap<Sym, usize> = StateMap::default();
        for (i, s) in syms.iter().enumerate() {
            *m.get_or_default(s) += i;
        }
        m.retain(|_, v| *v % 2 == 0);
        assert_eq!(m.len(), 2_500);
        for (i, s) in syms.iter().enumerate() {
            assert_eq!(m.get(s).copied(), (i % 2 == 0).then_some(i), "{i}");
        }
        let mut by_addr: StateMap<usize, u32> = StateMap::default();
        for s in &syms {
            *by_addr.get_or_default(&s.addr()) += 1;
        }
        assert_eq!(by_addr.len(), 5_000);
        assert_eq!(by_addr.get(&syms[42].addr()), Some(&1));
    }
}
