//! The filter gate: which rules an event passes, decided one field at a time.
//!
//! Every filter condition reads one field, and so does every allowlist entry
//! (identity globs and role names read the identity, user-agent globs the
//! user agent, CIDRs the source IP, accounts the account id). A rule accepts
//! an event when no field's value rules it out. So the gate keeps, per field,
//! the set of rules each value rules out, computed on first sight: an event
//! costs one lookup per field that some rule reads (8 with the default rules),
//! not one per condition per rule (30-odd) plus three ARN parses.
//!
//! Field values are interned, so a value is looked up by its address. The
//! memo keeps a clone of each value it has an entry for, so an address cannot
//! be freed and reused for another value while its entry exists.
//!
//! Events repeat: a workload role makes the same few calls from the same
//! client and address all day. So each field keeps a small direct-mapped
//! cache of the values it saw last in front of its exact memo: an event
//! costs one compare per field, in memory that stays cached.

use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::CompiledRule;
use super::filter::{Allowlist, CompiledCondition};
use crate::decode::{Event, Field, Sym};

/// Most rules a rule set may enable (the width of [`RuleBits`]).
pub const MAX_RULES: usize = 256;

/// A set of rule indexes (below [`MAX_RULES`]). Fixed width: it is cleared
/// and merged once per field per event, which must not cost a call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RuleBits([u64; MAX_RULES / 64]);

impl RuleBits {
    fn insert(&mut self, rule: usize) {
        self.0[rule / 64] |= 1 << (rule % 64);
    }

    /// Whether `rule` is in the set.
    pub fn contains(&self, rule: usize) -> bool {
        self.0[rule / 64] & (1 << (rule % 64)) != 0
    }

    fn union_with(&mut self, other: &RuleBits) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a |= b;
        }
    }

    /// The set of these rule indexes.
    pub fn of(rules: impl IntoIterator<Item = usize>) -> Self {
        let mut bits = Self::default();
        for r in rules {
            bits.insert(r);
        }
        bits
    }

    /// The rules in `self` and not in `other`.
    pub fn without(&self, other: &RuleBits) -> RuleBits {
        let mut out = *self;
        for (a, b) in out.0.iter_mut().zip(other.0) {
            *a &= !b;
        }
        out
    }

    /// The indexes in the set, ascending.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.0.iter().enumerate().flat_map(|(w, &word)| {
            let mut bits = word;
            std::iter::from_fn(move || {
                if bits == 0 {
                    return None;
                }
                let b = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                Some(w * 64 + b)
            })
        })
    }
}

/// Who may rule out a rule on one field.
#[derive(Debug)]
enum Test {
    /// A filter condition of a rule: the rule is out when it fails.
    Condition(usize, CompiledCondition),
    /// A rule's allowlist (`Some(rule)`) or the global one (`None`, every
    /// rule): out when an entry on this field matches.
    Allowlist(Option<usize>, Allowlist),
}

/// The tests that read one field.
#[derive(Debug)]
struct FieldTests {
    field: Field,
    tests: Vec<Test>,
}

/// The compiled gate of a rule set (shared, immutable).
#[derive(Debug)]
pub struct Gate {
    rules: usize,
    fields: Vec<FieldTests>,
}

impl Gate {
    /// Build the gate of `rules` (indexes as in the rule set) and the global
    /// allowlist.
    pub fn new(rules: &[Arc<CompiledRule>], global: &Allowlist) -> Self {
        let mut fields: Vec<FieldTests> = Vec::new();
        let mut add = |field: Field, test: Test| match fields.iter_mut().find(|f| f.field == field)
        {
            Some(f) => f.tests.push(test),
            None => fields.push(FieldTests {
                field,
                tests: vec![test],
            }),
        };
        for r in rules {
            for c in &r.conditions {
                add(c.field(), Test::Condition(r.index, c.clone()));
            }
            for f in r.allowlist.fields() {
                add(f, Test::Allowlist(Some(r.index), r.allowlist.clone()));
            }
        }
        for f in global.fields() {
            add(f, Test::Allowlist(None, global.clone()));
        }
        Self {
            rules: rules.len(),
            fields,
        }
    }

    /// The rules `value` of field `tests.field` rules out.
    fn ruled_out(&self, tests: &FieldTests, value: Option<&str>) -> RuleBits {
        let mut out = RuleBits::default();
        for t in &tests.tests {
            match t {
                Test::Condition(i, c) => {
                    if !c.matches_value(value) {
                        out.insert(*i);
                    }
                }
                Test::Allowlist(rule, a) => {
                    if a.matches_field(tests.field, value) {
                        match rule {
                            Some(i) => out.insert(*i),
                            None => (0..self.rules).for_each(|i| out.insert(i)),
                        }
                    }
                }
            }
        }
        out
    }
}

/// Entries per field before a memo starts over (high-cardinality fields:
/// IPs, user agents, keys).
const MEMO_CAP: usize = 16_384;

/// Slots of a field's direct-mapped cache of recent values (a power of two).
const RECENT_SLOTS: usize = 256;

/// One field's memo: the outcome for each value seen, by the value's
/// address.
///
/// Outcomes are few (a field's values rule out one of a handful of rule
/// sets), so the exact map stores each once, by index. In front of it sits
/// a small direct-mapped cache of (address, outcome index): an event's
/// values are answered from it with a compare per field, in 4 KB per field
/// that stays cached (with the outcome itself in each slot, 40 bytes, each
/// field took 10 KB, and the default rules' fields together more than the
/// first-level cache). Before, the whole combination of an event's values was
/// looked up in one table of up to 65,536 entries of 128 bytes: nearly
/// every lookup missed the cache (half of the gate's time in a one-core
/// replay was that one load; in cachegrind on the bench slice the gate's
/// last-level misses went from 67 k to 14 k).
#[derive(Debug)]
struct FieldMemo {
    /// Distinct outcomes, by index.
    outcomes: Vec<RuleBits>,
    /// Index of the outcome for events without a value, once known.
    none: Option<u32>,
    /// Value address → (the value, kept alive so the address cannot be
    /// reused for another value while the entry exists; outcome index).
    exact: FxHashMap<usize, (Sym, u32)>,
    /// Direct-mapped by address: (address, outcome index); address 0 is an
    /// empty slot. Every address here is a key of `exact`.
    recent: Box<[(usize, u32)]>,
}

impl FieldMemo {
    fn new() -> Self {
        Self {
            outcomes: Vec::new(),
            none: None,
            exact: FxHashMap::default(),
            recent: vec![(0, 0); RECENT_SLOTS].into_boxed_slice(),
        }
    }

    fn slot(addr: usize) -> usize {
        // Symbols are separate heap allocations: the low bits are alignment,
        // the bits above them vary (Fibonacci hashing spreads them).
        ((addr as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - RECENT_SLOTS.trailing_zeros()))
            as usize
    }

    /// The index of `out`, stored once.
    fn intern(&mut self, out: RuleBits) -> u32 {
        match self.outcomes.iter().position(|o| *o == out) {
            Some(i) => i as u32,
            None => {
                self.outcomes.push(out);
                (self.outcomes.len() - 1) as u32
            }
        }
    }

    /// The rules `value` of field `tests.field` rules out.
    #[inline]
    fn ruled_out(&mut self, gate: &Gate, tests: &FieldTests, value: Option<&Sym>) -> RuleBits {
        match value {
            None => match self.none {
                Some(i) => self.outcomes[i as usize],
                None => {
                    let i = self.intern(gate.ruled_out(tests, None));
                    self.none = Some(i);
                    self.outcomes[i as usize]
                }
            },
            Some(v) => {
                let addr = v.addr();
                let (a, i) = self.recent[Self::slot(addr)];
                if a == addr {
                    self.outcomes[i as usize]
                } else {
                    self.miss(gate, tests, v)
                }
            }
        }
    }

    #[cold]
    #[inline(never)]
    fn miss(&mut self, gate: &Gate, tests: &FieldTests, v: &Sym) -> RuleBits {
        let addr = v.addr();
        let i = match self.exact.get(&addr) {
            Some((_, i)) => *i,
            None => {
                if self.exact.len() >= MEMO_CAP {
                    // Start over; the cached addresses may now be freed and
                    // reused, so the cache goes too.
                    self.exact.clear();
                    self.recent.fill((0, 0));
                }
                let i = self.intern(gate.ruled_out(tests, Some(v.as_str())));
                self.exact.insert(addr, (v.clone(), i));
                i
            }
        };
        self.recent[Self::slot(addr)] = (addr, i);
        self.outcomes[i as usize]
    }
}

/// One engine's memo of the gate's outcomes (single-threaded, per shard).
#[derive(Debug)]
pub struct GateMemo {
    /// Per gate field, in gate order.
    fields: Vec<FieldMemo>,
}

impl GateMemo {
    /// An empty memo for `gate` (one per field it reads).
    pub fn new(gate: &Gate) -> Self {
        Self {
            fields: gate.fields.iter().map(|_| FieldMemo::new()).collect(),
        }
    }

    /// The rules that do not accept `e`: a condition fails, or an allowlist
    /// (the rule's or the global one) matches. `gate` is the one the memo
    /// was made for.
    pub fn rejected(&mut self, gate: &Gate, e: &Event) -> RuleBits {
        let mut rejected = RuleBits::default();
        for (tests, memo) in gate.fields.iter().zip(self.fields.iter_mut()) {
            rejected.union_with(&memo.ruled_out(gate, tests, e.sym(tests.field)));
        }
        rejected
    }

    /// Values remembered, over all fields (for tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.fields.iter().map(|m| m.exact.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RulesConfig;
    use crate::decode::IdentitySource;

    fn event(round: usize) -> Event {
        let pick = |xs: &[&str], k: usize| -> Sym { Sym::from(xs[(round / k) % xs.len()]) };
        let names = [
            "DescribeInstances",
            "ListBuckets",
            "GetCallerIdentity",
            "PutObject",
            "CreateSnapshot",
            "DescribeCapacityReservations",
        ];
        let sources = [
            "ec2.amazonaws.com",
            "s3.amazonaws.com",
            "sts.amazonaws.com",
            "iam.amazonaws.com",
        ];
        let uas = [
            "aws-cli/2.15 Python/3.11",
            "[aws-cli/2.15]",
            "Boto3/1.34",
            "",
            "Terraform/1.7",
        ];
        let ips = [
            "203.0.113.9",
            "config.amazonaws.com",
            "198.51.100.1",
            "10.1.2.3",
        ];
        let ids = [
            "arn:aws:iam::111122223333:role/aws-service-role/config.amazonaws.com/AWSServiceRoleForConfig",
            "arn:aws:sts::111122223333:assumed-role/Scanner/s1",
            "arn:aws:iam::111122223333:user/alice",
        ];
        let types = ["AssumedRole", "IAMUser", "AWSService"];
        Event {
            time_ms: 0,
            id: round as u128,
            name: pick(&names, 1),
            source: pick(&sources, 2),
            region: Sym::from("us-east-1"),
            source_ip: (!round.is_multiple_of(11)).then(|| pick(&ips, 3)),
            user_agent: (!round.is_multiple_of(13)).then(|| pick(&uas, 5)),
            error_code: round.is_multiple_of(7).then(|| Sym::from("AccessDenied")),
            account_id: Some(pick(&["111122223333", "444455556666"], 17)),
            identity: pick(&ids, 19),
            identity_source: IdentitySource::Arn,
            identity_type: Some(pick(&types, 23)),
            access_key_id: None,
            console_session: round.is_multiple_of(29),
        }
    }

    #[test]
    fn rule_bits_of_without_and_iter() {
        let all = RuleBits::of([0, 3, 63, 64, 130, 255]);
        assert_eq!(all.iter().collect::<Vec<_>>(), vec![0, 3, 63, 64, 130, 255]);
        let out = RuleBits::of([3, 64, 200]);
        let left = all.without(&out);
        assert_eq!(left.iter().collect::<Vec<_>>(), vec![0, 63, 130, 255]);
        assert!(left.contains(130) && !left.contains(64));
        assert_eq!(RuleBits::default().iter().count(), 0);
    }

    #[test]
    fn agrees_with_direct_evaluation_of_every_rule() {
        // The default rules plus allowlists on every field, rule-level and global.
        let cfg: RulesConfig = toml::from_str(
            r#"
[allowlist]
user_agents = ["Terraform/*"]
cidrs = ["10.0.0.0/8"]
[[rule]]
id = "allow_all_fields"
name = "every allowlist field"
kind = "match"
severity = "low"
risk_score = 1
summary = "x"
filter = [{ field = "event_name", starts_with = ["Describe", "List"] }]
allowlist = { identities = ["*:user/alice"], role_names = ["Scanner"], accounts = ["444455556666"], user_agents = ["Boto3/*"], cidrs = ["198.51.100.0/24"] }
"#,
        )
        .unwrap();
        let set = crate::rules::load(&cfg).unwrap();
        let rules = &set.rules;
        let mut memo = GateMemo::new(&set.gate);
        let mut accepted = vec![0usize; rules.len()];
        // Fresh allocations every round: freed values' addresses get reused,
        // which must never return another value's outcome.
        for round in 0..MEMO_CAP * 2 + 500 {
            let e = event(round);
            let out = memo.rejected(&set.gate, &e);
            for r in rules {
                let direct = r.accepts(&e, &set.global_allowlist);
                assert_eq!(
                    !out.contains(r.index),
                    direct,
                    "rule {} round {round}",
                    r.id()
                );
                accepted[r.index] += direct as usize;
            }
        }
        assert!(memo.len() <= MEMO_CAP * set.gate.fields.len());
        // The mix exercises both outcomes of the rules with filters.
        for r in rules {
            if !r.conditions.is_empty() {
                assert!(accepted[r.index] > 0, "{} never accepts", r.id());
            }
        }
        assert!(accepted.iter().any(|&n| n < MEMO_CAP * 2 + 500));
    }

    #[test]
    fn repeated_values_are_answered_from_the_cache() {
        let set = crate::rules::load(&RulesConfig::default()).unwrap();
        let mut memo = GateMemo::new(&set.gate);
        // The same 300 events (the same value allocations) seen five times.
        let pool: Vec<Event> = (0..300).map(event).collect();
        for _ in 0..5 {
            for e in &pool {
                let out = memo.rejected(&set.gate, e);
                for r in &set.rules {
                    assert_eq!(!out.contains(r.index), r.accepts(e, &set.global_allowlist));
                }
            }
        }
        // One entry per distinct value of each field, not per event; each
        // outcome stored once.
        let distinct: usize = set
            .gate
            .fields
            .iter()
            .map(|f| {
                let mut v: Vec<usize> = pool
                    .iter()
                    .filter_map(|e| e.sym(f.field).map(Sym::addr))
                    .collect();
                v.sort_unstable();
                v.dedup();
                v.len()
            })
            .sum();
        assert_eq!(memo.len(), distinct);
        for (f, m) in set.gate.fields.iter().zip(&memo.fields) {
            assert!(m.outcomes.len() <= m.exact.len() + 1, "{:?}", f.field);
            let mut o = m.outcomes.clone();
            o.dedup();
            assert_eq!(o.len(), m.outcomes.len());
        }
    }

    #[test]
    fn colliding_values_share_a_slot_and_keep_their_own_outcome() {
        let set = crate::rules::load(&RulesConfig::default()).unwrap();
        let name = set
            .gate
            .fields
            .iter()
            .position(|f| f.field == Field::EventName)
            .unwrap();
        // Find two event names whose addresses map to the same slot.
        let mut by_slot: FxHashMap<usize, Sym> = FxHashMap::default();
        let mut pair = None;
        for i in 0.. {
            let s = Sym::from(if i % 2 == 0 {
                format!("DescribeThing{i}")
            } else {
                format!("PutThing{i}")
            });
            match by_slot.get(&FieldMemo::slot(s.addr())) {
                Some(o) if o.starts_with("Describe") != s.starts_with("Describe") => {
                    pair = Some((o.clone(), s));
                    break;
                }
                Some(_) => {}
                None => {
                    by_slot.insert(FieldMemo::slot(s.addr()), s);
                }
            }
        }
        let (a, b) = pair.unwrap();
        let mut memo = GateMemo::new(&set.gate);
        let m = &mut memo.fields[name];
        let tests = &set.gate.fields[name];
        for _ in 0..3 {
            for v in [&a, &b] {
                let got = m.ruled_out(&set.gate, tests, Some(v));
                assert_eq!(got, set.gate.ruled_out(tests, Some(v.as_str())), "{v}");
            }
        }
        assert_eq!(m.exact.len(), 2);
    }
}
