//! The per-shard detection engine: all rule state for the identities hashed
//! to one shard, on event time.
//!
//! Time model: the watermark is the newest event time seen (by any shard)
//! minus the allowed lateness. An event older than the watermark is *late*:
//! counted in `reconwatch_events_late_total` and not applied, because the
//! windows it belongs to may already be evicted. State older than the
//! watermark minus a rule's look-back is evicted (state nothing touches,
//! within a minute), so memory is bounded by the
//! event rate × (window + lateness), and by `max_events_per_group`.
//!
//! Detections fire as soon as a threshold is crossed, not when a window
//! closes. A tumbling window that alerted sends a final `update` with its
//! complete figures when the watermark closes it.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use rustc_hash::{FxHashMap, FxHashSet};

use crate::decode::{Event, EventRef, Field, IdentitySource, Sym};
use serde::{Deserialize, Serialize};

use super::log::{EvId, EventLog, Holds, Store};
use super::state_map::{Lookup, StateMap};
use crate::rules::alert::{
    BaselineFacts, Detection, GroupKey, GroupKeyRef, alert_id, episode, sort_distinct,
};
use crate::rules::density::{Dist, Fit, round4};
use crate::rules::gate::{GateMemo, RuleBits};
use crate::rules::spec::{BaselineSpec, RuleKind, WindowMode};
use crate::rules::{CompiledRule, RuleSet};
use crate::telemetry::metrics;

/// Engine tunables.
#[derive(Debug, Clone, Copy)]
pub struct EngineConfig {
    /// Allowed lateness in ms.
    pub lateness_ms: i64,
    /// Cap on events buffered per (rule, group).
    pub max_events_per_group: usize,
}

impl From<&crate::config::PipelineConfig> for EngineConfig {
    fn from(p: &crate::config::PipelineConfig) -> Self {
        Self {
            lateness_ms: p.allowed_lateness_secs as i64 * 1000,
            max_events_per_group: p.max_events_per_group,
        }
    }
}

/// The configuration file's defaults (15 min lateness, 20,000 events).
impl Default for EngineConfig {
    fn default() -> Self {
        (&crate::config::PipelineConfig::default()).into()
    }
}

const DAY_MS: i64 = 86_400_000;

/// Minimum watermark progress between two eviction passes.
const EVICT_EVERY_MS: i64 = 1_000;

/// Watermark progress between sweeps of state that nothing touches: sliding
/// groups without new events, new-terms and baseline histories (kept for
/// days, so a minute late is nothing). Sweeping every group every second
/// was a tenth of the engine's time.
const SWEEP_EVERY_MS: i64 = 60_000;

/// Per-batch counters flushed to the global metrics once per batch.
#[derive(Debug, Default)]
struct LocalCounts {
    late: u64,
    duplicate: u64,
    no_identity: u64,
    evictions: u64,
    matches: Vec<u64>,
    suppressed: Vec<u64>,
}

/// All detection state of one shard.
#[derive(Debug)]
pub struct Engine {
    rules: Arc<RuleSet>,
    cfg: EngineConfig,
    watermark_ms: i64,
    /// Newest event time applied: the "now" for retention of persisted
    /// history when `close_all` moves the watermark to +inf.
    newest_event_ms: i64,
    /// Watermark at the last eviction pass (passes cost O(groups)).
    evicted_at_ms: i64,
    /// Watermark at the last sweep of idle state (see [`SWEEP_EVERY_MS`]).
    swept_at_ms: i64,
    dedup: Dedup,
    states: Vec<RuleState>,
    /// For each rule index, the consumer rules fed by its detections.
    consumers: Vec<Vec<usize>>,
    /// Rules that take events directly (all but correlations, which take
    /// detections).
    direct: RuleBits,
    counts: LocalCounts,
    /// Filter outcomes per field value.
    gate: GateMemo,
    /// The applied events that rules hold, batch by batch.
    log: EventLog,
    /// A batch's admitted events (index, rules that accept it), kept for
    /// the next batch.
    admitted: Vec<(usize, RuleBits)>,
}

#[derive(Debug)]
enum RuleState {
    Sliding(StateMap<GroupKey, SlidingGroup>, Suppression),
    Tumbling(StateMap<GroupKey, TumblingGroup>, Suppression),
    Match(Suppression),
    NewTerms(NewTermsState, Suppression),
    Correlation(FxHashMap<Sym, Vec<Detection>>, Suppression),
    Baseline(BaselineState),
}

const HOUR_MS: i64 = 3_600_000;

/// Events of an hour kept for its alert (the first ones).
const SAMPLE: usize = 20;

/// An identity's open hours, sorted (see [`BaselineState::open`]).
type OpenHours = smallvec::SmallVec<[(i64, HourAcc); 1]>;

/// One identity's open (not yet sealed) hour.
#[derive(Debug, Default)]
struct HourAcc {
    count: u64,
    /// What the hour keeps for its alert, only if it can alert at all
    /// (see [`may_alert`]). Most hours cannot, and their whole entry in
    /// the identity map is then 48 bytes, in one or two cache lines.
    alert: Option<Box<HourAlert>>,
}

/// An open hour that can alert: its evidence and its judge.
#[derive(Debug, Default)]
struct HourAlert {
    /// The first 50 distinct event names, the most recently called first
    /// (see [`baseline_count`]); a short vector costs a fraction of a tree
    /// node per identity.
    commands: Vec<Sym>,
    /// The hour's first events, copied (held for the hour, they would keep
    /// their whole batches alive).
    sample: Vec<Event>,
    /// (alert id, count) when it alerted.
    alerted: Option<(String, u64)>,
    /// The group's threshold, looked up on the hour's first event: the
    /// history changes only when an hour is sealed, restored or forgotten,
    /// and those reset it (`None`: not looked up since).
    judge: Option<Option<Judge>>,
}

/// What an open hour is judged against (see [`baseline_count`]).
#[derive(Debug, Clone, Copy)]
struct Judge {
    upper: f64,
    dist: Dist,
    samples: usize,
    bucket: u32,
    weekend: bool,
}

/// Past hourly counts of one (hour bucket, weekend) group of an identity.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct GroupHistory {
    /// (hour start ms, successful calls).
    samples: Vec<(i64, u64)>,
    #[serde(skip)]
    upper: Option<(f64, Dist)>,
}

/// All groups of one identity: "HHd" / "HHw" (bucket start, weekday/weekend).
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct IdentityBaseline {
    groups: BTreeMap<String, GroupHistory>,
}

#[derive(Debug, Default)]
struct BaselineState {
    /// Open hours per identity, sorted by hour (one or two, rarely more);
    /// the first inline in the map's entry, not a second allocation to
    /// reach for every event.
    open: StateMap<Sym, OpenHours>,
    identities: FxHashMap<Sym, IdentityBaseline>,
    dirty: FxHashSet<Sym>,
}

/// UTC hour of day and weekend flag of an hour start.
fn hour_facts(hour_ms: i64) -> (u32, bool) {
    let hod = hour_ms.div_euclid(HOUR_MS).rem_euclid(24) as u32;
    // 1970-01-01 was a Thursday: Monday = 0 … Sunday = 6.
    let weekday = (hour_ms.div_euclid(86_400_000) + 3).rem_euclid(7);
    (hod, weekday >= 5)
}

/// A baseline group's name, "HHd" / "HHw", built on the stack: it is looked
/// up for every matching event.
struct GroupName([u8; 3]);

impl GroupName {
    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("ASCII digits and a letter")
    }
}

fn group_name(spec: &BaselineSpec, hour_ms: i64) -> (GroupName, u32, bool) {
    let (hod, weekend) = hour_facts(hour_ms);
    let bucket = hod / spec.hour_bucket_hours * spec.hour_bucket_hours;
    let weekend = spec.split_weekend && weekend;
    let name = GroupName([
        b'0' + (bucket / 10) as u8,
        b'0' + (bucket % 10) as u8,
        if weekend { b'w' } else { b'd' },
    ]);
    (name, bucket, weekend)
}

impl GroupHistory {
    fn threshold(&mut self, spec: &BaselineSpec) -> Option<(f64, Dist)> {
        if self.upper.is_none() {
            let xs: Vec<f64> = self.samples.iter().map(|(_, c)| *c as f64).collect();
            self.upper = Fit::fit_by(spec.dist, &xs).map(|f| (f.upper(spec.tail), f.dist()));
        }
        self.upper
    }
}

impl SlidingGroup {
    /// Sort the appended tail in (a stable sort: among equal times, arrival
    /// order is kept).
    fn normalize(&mut self) {
        if self.sorted < self.events.len() {
            sort_tail_in(self.events.make_contiguous(), self.sorted);
            self.sorted = self.events.len();
            self.front_t = self.events.front().map_or(i64::MAX, |x| x.t);
        }
    }

    fn push_back(&mut self, x: Buffered) {
        if self.events.is_empty() {
            self.front_t = x.t;
        }
        self.events.push_back(x);
    }

    fn pop_front(&mut self) -> Option<Buffered> {
        let x = self.events.pop_front()?;
        self.sorted = self.sorted.saturating_sub(1);
        // The next item is beside the one just read.
        self.front_t = self.events.front().map_or(i64::MAX, |x| x.t);
        Some(x)
    }

    /// Drop events older than `cutoff` from the front (those of the
    /// unsorted tail wait for the next sort).
    fn expire_front(&mut self, cutoff: i64, holds: &mut Holds) {
        debug_assert_eq!(self.front_t, self.events.front().map_or(i64::MAX, |x| x.t));
        while self.front_t < cutoff {
            let old = self.pop_front().expect("front exists");
            self.forget(old.value);
            holds.release(old.ev);
        }
    }

    fn remember(&mut self, value: usize) {
        if let Some(counts) = &mut self.counts {
            remember(counts, value);
        }
    }

    fn forget(&mut self, value: usize) {
        if let Some(counts) = &mut self.counts {
            forget(counts, value);
        }
    }

    /// Whether the buffer may hold `min_distinct` distinct values: a cheap
    /// upper bound on any window's, so that most inserts skip the sweep.
    /// The counts are kept only while the buffer is long enough to reach
    /// `min_distinct` at all (its length bounds them too), and dropped
    /// when it falls below half that: most groups hold a few events and
    /// never pay for the counts' table, a cache miss per insert and per
    /// expiry. Made from the buffer when it gets long, which at most every
    /// `min_distinct / 2` inserts costs one pass over as many items.
    fn may_reach(&mut self, min_distinct: usize) -> bool {
        if min_distinct == 0 {
            return true;
        }
        if self.events.len() < min_distinct {
            if self.events.len() < min_distinct / 2 {
                self.counts = None;
            }
            return false;
        }
        let counts = self.counts.get_or_insert_with(|| {
            let mut counts = StateMap::default();
            for x in &self.events {
                remember(&mut counts, x.value);
            }
            counts
        });
        counts.len() >= min_distinct
    }
}

/// Sort `s`, whose first `sorted` items are in order, by time, stably (as
/// `s.sort_by_key(|x| x.t)` would). Only the part of the prefix later than
/// the tail's earliest item is merged: a busy identity's buffer holds
/// minutes to hours, the tail only the last object's shuffled seconds, and
/// sorting it all each time read the whole buffer through the cache (the
/// same instructions, 2 % fewer of replay's L2 misses in cachegrind).
fn sort_tail_in(s: &mut [Buffered], sorted: usize) {
    let (head, tail) = s.split_at_mut(sorted);
    tail.sort_by_key(|x| x.t);
    let Some(first) = tail.first().map(|x| x.t) else {
        return;
    };
    // Items of the prefix at `first` or earlier stay ahead of the tail (and
    // of its items at `first`: they arrived earlier).
    let from = head.partition_point(|x| x.t <= first);
    // Two sorted runs: the stable sort merges them.
    s[from..].sort_by_key(|x| x.t);
}

/// Last fired window start per group, to suppress repeats.
#[derive(Debug, Default)]
struct Suppression(StateMap<GroupKey, i64>);

impl Suppression {
    fn suppressed(
        &self,
        rule: &CompiledRule,
        group: &impl Lookup<GroupKey>,
        start_ms: i64,
    ) -> bool {
        rule.suppress_ms > 0
            && self
                .0
                .get(group)
                .is_some_and(|last| (start_ms - last).abs() < rule.suppress_ms)
    }
    fn record(&mut self, group: GroupKey, start_ms: i64) {
        self.0.insert(group, start_ms);
    }
    fn evict(&mut self, rule: &CompiledRule, watermark_ms: i64) {
        // A window that a non-late event can still open starts up to one
        // window length before the watermark; a mark that could still
        // suppress it must stay, or the outcome would depend on when the
        // eviction pass happened to run.
        let keep = rule.suppress_ms.saturating_add(rule.window_ms);
        self.0
            .retain(|_, last| last.saturating_add(keep) >= watermark_ms);
    }
}

#[derive(Debug)]
struct SlidingGroup {
    /// Sorted by event time up to `sorted`; later arrivals are appended and
    /// sorted in only when a sweep or an eviction needs order. Records within
    /// a CloudTrail object are shuffled, so a sorted insert per event would
    /// shift half a busy identity's buffer every time. Changed only through
    /// the methods, which keep `front_t`.
    events: VecDeque<Buffered>,
    sorted: usize,
    /// The time of `events.front()` (`i64::MAX` when empty), kept beside
    /// the header: each insert checks it for expiry, and the front of a
    /// busy group's buffer is the far end of the ring, written minutes ago
    /// and out of the cache (a last-level miss per insert, most often to
    /// learn that nothing expires).
    front_t: i64,
    /// Distinct-field value counts over the whole buffer (a cheap upper bound
    /// that skips the window sweep for groups that cannot cross), by the
    /// value's [address](Sym::addr): the buffered events hold the values
    /// alive, so an address here is always a live value's. `None` while
    /// the buffer is too short to need them ([`SlidingGroup::may_reach`]).
    counts: Option<StateMap<usize, u32>>,
}

impl Default for SlidingGroup {
    fn default() -> Self {
        Self {
            events: VecDeque::new(),
            sorted: 0,
            front_t: i64::MAX,
            counts: None,
        }
    }
}

/// A buffered event with what windows read of it kept beside its id:
/// sorting, the window bounds, counting and expiry then touch no event
/// (those of a busy identity's buffer are minutes old, out of the cache).
#[derive(Debug, Clone)]
struct Buffered {
    /// Event time.
    t: i64,
    /// The distinct field's value, by [address](Sym::addr) (0: none).
    value: usize,
    /// The event, held in the engine's [`EventLog`].
    ev: EvId,
}

#[derive(Debug, Default)]
struct Bucket {
    counts: FxHashMap<Sym, u64>,
    events: u64,
    /// Held in the engine's [`EventLog`] until the bucket closes.
    sample: Vec<EvId>,
    /// (alert id, events, distinct) at the time it fired.
    fired: Option<(String, u64, usize)>,
}

#[derive(Debug, Default)]
struct TumblingGroup {
    buckets: BTreeMap<i64, Bucket>,
}

/// Key under which a new-terms rule's learning start is persisted.
const LEARNING_START_KEY: &str = "\u{0}learning_start";

/// Terms a group has few of (an identity's source IPs) are searched by
/// address in a short vector; past this many they move to a hash map.
const FEW_TERMS: usize = 8;

/// One group's terms → (first seen, last seen).
///
/// A new-terms rule with no filter of its own (rule 6 learns every
/// event's source IP) looks its group's terms up for every event. Kept in
/// a hash map of their own, that was a second cache miss per event after
/// the group's; a group's first few terms now sit inline in its entry.
#[derive(Debug)]
enum Terms {
    Few(smallvec::SmallVec<[(Sym, (i64, i64)); 2]>),
    Many(FxHashMap<Sym, (i64, i64)>),
}

impl Default for Terms {
    fn default() -> Self {
        Terms::Few(smallvec::SmallVec::new())
    }
}

impl Terms {
    fn get(&self, term: &Sym) -> Option<&(i64, i64)> {
        match self {
            Terms::Few(v) => v.iter().find(|(t, _)| t == term).map(|(_, x)| x),
            Terms::Many(m) => m.get(term),
        }
    }

    fn get_mut(&mut self, term: &Sym) -> Option<&mut (i64, i64)> {
        match self {
            Terms::Few(v) => v.iter_mut().find(|(t, _)| t == term).map(|(_, x)| x),
            Terms::Many(m) => m.get_mut(term),
        }
    }

    /// Add a term not present.
    fn insert_new(&mut self, term: Sym, seen: (i64, i64)) {
        match self {
            Terms::Few(v) if v.len() < FEW_TERMS => v.push((term, seen)),
            Terms::Few(v) => {
                let mut m: FxHashMap<Sym, (i64, i64)> = v.drain(..).collect();
                m.insert(term, seen);
                *self = Terms::Many(m);
            }
            Terms::Many(m) => {
                m.insert(term, seen);
            }
        }
    }

    fn retain(&mut self, mut keep: impl FnMut(&(i64, i64)) -> bool) {
        match self {
            Terms::Few(v) => v.retain(|(_, x)| keep(x)),
            Terms::Many(m) => m.retain(|_, x| keep(x)),
        }
    }

    fn is_empty(&self) -> bool {
        match self {
            Terms::Few(v) => v.is_empty(),
            Terms::Many(m) => m.is_empty(),
        }
    }

    fn iter(&self) -> Box<dyn Iterator<Item = (&Sym, &(i64, i64))> + '_> {
        match self {
            Terms::Few(v) => Box::new(v.iter().map(|(t, x)| (t, x))),
            Terms::Many(m) => Box::new(m.iter()),
        }
    }
}

impl FromIterator<(Sym, (i64, i64))> for Terms {
    fn from_iter<I: IntoIterator<Item = (Sym, (i64, i64))>>(it: I) -> Self {
        let mut t = Terms::default();
        for (term, seen) in it {
            match t.get_mut(&term) {
                Some(x) => *x = seen,
                None => t.insert_new(term, seen),
            }
        }
        t
    }
}

#[derive(Debug, Default)]
struct NewTermsState {
    /// Earliest event time the rule has learnt from (warm-up origin).
    learning_start_ms: Option<i64>,
    /// group → term → (first seen, last seen).
    seen: StateMap<GroupKey, Terms>,
    /// Groups changed since the last persist.
    dirty: StateMap<GroupKey, ()>,
}

/// Event IDs applied within the horizon, kept per minute of event time.
///
/// A redelivered record is byte-identical, so its copy falls in the same
/// minute as the original. One set for the whole horizon (tens of thousands
/// of random 128-bit keys) missed the cache on nearly every event; the
/// minutes an object's events fall in are a few small sets that stay
/// cached, and eviction drops whole minutes instead of removing every ID.
///
/// The minutes are a hash map, not a search tree: an event finds its
/// minute in one probe (a tree search per event was a fortieth of the
/// engine), and eviction scans the few dozen minutes of the horizon.
///
/// A new minute's set starts as large as the largest one held or last
/// evicted: grown from empty, a minute of a busy shard rehashed about ten
/// times.
#[derive(Debug)]
struct Dedup {
    by_minute: FxHashMap<i64, FxHashSet<u128>>,
    horizon_ms: i64,
    minute_capacity: usize,
}

impl Dedup {
    /// Whether `id` at `t` is new (and now remembered).
    fn insert(&mut self, id: u128, t: i64) -> bool {
        let minute = t.div_euclid(60_000);
        if let Some(ids) = self.by_minute.get_mut(&minute) {
            return ids.insert(id);
        }
        // A new minute starts as large as the largest one held or last
        // evicted, with a quarter to spare: grown from empty, or from a
        // size just short of its own, a busy minute rehashed several times.
        let held = self.by_minute.values().map(|ids| ids.len()).max();
        let n = held.unwrap_or(0).max(self.minute_capacity);
        let mut ids = FxHashSet::with_capacity_and_hasher(n + n / 4, Default::default());
        ids.insert(id);
        self.by_minute.insert(minute, ids);
        true
    }
    fn evict(&mut self, watermark_ms: i64) {
        let cutoff = watermark_ms
            .saturating_sub(self.horizon_ms)
            .div_euclid(60_000);
        let mut largest = None;
        self.by_minute.retain(|&minute, ids| {
            let keep = minute >= cutoff;
            if !keep {
                largest = largest.max(Some(ids.len()));
            }
            keep
        });
        if let Some(n) = largest {
            self.minute_capacity = n;
        }
    }
}

/// The state under `key`, created empty on first use (the key is cloned
/// only then: lookups by reference cost no reference-count traffic).
fn group_mut<'m, K: Clone + Eq + std::hash::Hash, G: Default>(
    groups: &'m mut FxHashMap<K, G>,
    key: &K,
) -> &'m mut G {
    if !groups.contains_key(key) {
        groups.insert(key.clone(), G::default());
    }
    groups.get_mut(key).expect("present or just inserted")
}

/// The event's group under `rule`, borrowed from its fields (a missing
/// field groups as the empty string).
fn group_key<'e>(rule: &CompiledRule, e: &'e Event) -> GroupKeyRef<'e> {
    let mut parts = smallvec::SmallVec::new();
    for f in &rule.spec.group_by {
        parts.push(e.sym(*f).unwrap_or(Sym::empty_ref()));
    }
    GroupKeyRef::new(parts)
}

impl Engine {
    /// A fresh engine for `rules`.
    pub fn new(rules: Arc<RuleSet>, cfg: EngineConfig) -> Self {
        let n = rules.rules.len();
        let mut consumers = vec![Vec::new(); n];
        let index_of = |id: &str| rules.get(id).map(|r| r.index);
        for r in &rules.rules {
            let inputs: Vec<&String> = match r.spec.kind {
                RuleKind::Correlation => r
                    .spec
                    .correlation
                    .iter()
                    .flat_map(|c| c.require.iter().chain(c.any_of.iter()))
                    .collect(),
                RuleKind::NewTerms => r
                    .spec
                    .new_terms
                    .iter()
                    .filter_map(|n| n.trigger.as_ref())
                    .collect(),
                _ => Vec::new(),
            };
            for id in inputs {
                if let Some(i) = index_of(id)
                    && !consumers[i].contains(&r.index)
                {
                    consumers[i].push(r.index);
                }
            }
        }
        let states = rules
            .rules
            .iter()
            .map(|r| match r.spec.kind {
                RuleKind::Threshold if r.window_mode == WindowMode::Tumbling => {
                    RuleState::Tumbling(StateMap::default(), Suppression::default())
                }
                RuleKind::Threshold => {
                    RuleState::Sliding(StateMap::default(), Suppression::default())
                }
                RuleKind::Match => RuleState::Match(Suppression::default()),
                RuleKind::NewTerms => {
                    RuleState::NewTerms(NewTermsState::default(), Suppression::default())
                }
                RuleKind::Correlation => {
                    RuleState::Correlation(FxHashMap::default(), Suppression::default())
                }
                RuleKind::Baseline => RuleState::Baseline(BaselineState::default()),
            })
            .collect();
        let horizon_ms = rules.max_horizon_ms().max(60_000);
        let gate = GateMemo::new(&rules.gate);
        let direct = RuleBits::of(
            rules
                .rules
                .iter()
                .filter(|r| r.spec.kind != RuleKind::Correlation)
                .map(|r| r.index),
        );
        Self {
            counts: LocalCounts {
                matches: vec![0; n],
                suppressed: vec![0; n],
                ..LocalCounts::default()
            },
            rules,
            cfg,
            watermark_ms: i64::MIN,
            newest_event_ms: i64::MIN,
            evicted_at_ms: i64::MIN,
            swept_at_ms: i64::MIN,
            dedup: Dedup {
                by_minute: FxHashMap::default(),
                horizon_ms,
                minute_capacity: 0,
            },
            states,
            consumers,
            direct,
            gate,
            log: EventLog::default(),
            admitted: Vec::new(),
        }
    }

    /// Current watermark (events older than this are late).
    pub fn watermark_ms(&self) -> i64 {
        self.watermark_ms
    }

    /// Apply one event (the watermark stays where it is); detections are
    /// appended to `out`.
    pub fn process(&mut self, e: Event, out: &mut Vec<Detection>) {
        self.apply_events(vec![e], out);
    }

    /// The checks every event passes before the rules see it, in order:
    /// an identity, not late, not a duplicate (remembered from now on); then
    /// the rules whose filters accept it. `None`: counted and not applied.
    /// Applying an event never moves the watermark, so a batch's events can
    /// all be admitted before the first is applied.
    fn admit(&mut self, e: &Event) -> Option<RuleBits> {
        if e.identity_source == IdentitySource::None {
            self.counts.no_identity += 1;
            return None;
        }
        if e.time_ms < self.watermark_ms {
            self.counts.late += 1;
            tracing::debug!(
                event_time = e.time_ms,
                watermark = self.watermark_ms,
                "Late event not applied."
            );
            return None;
        }
        if !self.dedup.insert(e.id, e.time_ms) {
            self.counts.duplicate += 1;
            return None;
        }
        Some(
            self.direct
                .without(&self.gate.rejected(&self.rules.gate, e)),
        )
    }

    /// Give an admitted event to the rules in `accepted`.
    fn apply(&mut self, id: EvId, accepted: RuleBits, out: &mut Vec<Detection>) {
        let start = out.len();
        // Fields borrowed apart, not `self.rules.clone()`: an atomic
        // reference-count round trip per event drains the store buffer.
        let Self {
            rules,
            states,
            counts,
            cfg,
            watermark_ms,
            newest_event_ms,
            log,
            ..
        } = self;
        // A block: the keys borrow the event, which is in the log.
        {
            let (store, holds) = log.parts();
            let ev: &Event = store.get(id);
            *newest_event_ms = (*newest_event_ms).max(ev.time_ms);
            // Most rules group by identity alone: that key is made once per
            // event and lent to each of them. Keys borrow the event's symbols;
            // state maps clone them only when they create a group.
            let by_identity = GroupKeyRef::one(&ev.identity);
            let mut other: GroupKeyRef<'_>;
            // Only the rules that accept the event, in rule order.
            for index in accepted.iter() {
                let rule = &rules.rules[index];
                counts.matches[rule.index] += 1;
                let key: &GroupKeyRef<'_> = if rule.by_identity {
                    &by_identity
                } else {
                    other = group_key(rule, ev);
                    &other
                };
                let det = match &mut states[rule.index] {
                    RuleState::Sliding(groups, sup) => {
                        let wm = *watermark_ms;
                        let at = (store, &mut *holds);
                        sliding_insert(rule, groups, sup, key, ev, id, at, wm, &*cfg, counts)
                    }
                    RuleState::Tumbling(groups, sup) => {
                        tumbling_insert(rule, groups, sup, key, id, (store, &mut *holds), &*cfg)
                    }
                    RuleState::Match(sup) => {
                        if sup.suppressed(rule, key, ev.time_ms) {
                            counts.suppressed[rule.index] += 1;
                            None
                        } else {
                            sup.record(key.to_owned_key(), ev.time_ms);
                            Some(single_event_detection(
                                rule,
                                key.to_owned_key(),
                                store.copy(id),
                                Vec::new(),
                            ))
                        }
                    }
                    RuleState::NewTerms(st, sup) => {
                        let triggered = rule
                            .spec
                            .new_terms
                            .as_ref()
                            .is_some_and(|n| n.trigger.is_some());
                        new_terms_learn(rule, st, sup, key, ev, triggered)
                    }
                    RuleState::Correlation(..) => None,
                    RuleState::Baseline(st) => baseline_count(rule, st, ev, *watermark_ms),
                };
                if let Some(d) = det {
                    out.push(d);
                }
            }
        }
        self.feed_consumers(start, out);
    }

    /// Give detections from `out[start..]` to the rules that consume them
    /// (correlations, triggered new-terms); their detections are appended
    /// and fed in turn.
    fn feed_consumers(&mut self, start: usize, out: &mut Vec<Detection>) {
        let Self {
            rules,
            states,
            consumers,
            ..
        } = self;
        let mut i = start;
        while i < out.len() {
            let src = out[i].rule.index;
            if out[i].is_update {
                i += 1;
                continue;
            }
            for &ci in &consumers[src] {
                let rule = &rules.rules[ci];
                let det = match &mut states[ci] {
                    RuleState::Correlation(by_identity, sup) => {
                        correlate(rule, by_identity, sup, &out[i])
                    }
                    RuleState::NewTerms(st, sup) => new_terms_triggered(rule, st, sup, &out[i]),
                    _ => None,
                };
                if let Some(d) = det {
                    out.push(d);
                }
            }
            i += 1;
        }
    }

    /// Apply one batch as a shard actor does: [`advance`](Self::advance) to
    /// `max_event_ms`, then [`process`](Self::process) each event.
    pub fn apply_batch(&mut self, max_event_ms: i64, events: Vec<Event>, out: &mut Vec<Detection>) {
        self.advance(max_event_ms, out);
        self.apply_events(events, out);
    }

    /// Admit and apply `events`, kept in the log as one batch.
    ///
    /// Every event is admitted first, then the admitted ones applied: the
    /// admission of one event does not wait for the rules' state of the one
    /// before (a cold identity's costs a run of cache misses), so the
    /// checks' lookups of a whole batch overlap.
    fn apply_events(&mut self, events: Vec<Event>, out: &mut Vec<Detection>) {
        let mut admitted = std::mem::take(&mut self.admitted);
        admitted.clear();
        let mut touched = 0u64;
        for (i, e) in events.iter().enumerate() {
            if let Some(accepted) = self.admit(e) {
                // Every rule's key reads the identity's symbol.
                touched ^= e.identity.text_hash();
                admitted.push((i, accepted));
            }
        }
        std::hint::black_box(touched);
        let batch = self.log.add(events);
        for &(i, accepted) in &admitted {
            self.apply(EventLog::id(batch, i), accepted, out);
        }
        self.admitted = admitted;
        self.log.seal(batch);
        self.log.collect();
    }

    /// Move the watermark to `max_event_ms - lateness` (never backwards),
    /// close tumbling windows and evict expired state. Final updates of
    /// closed windows are appended to `out`.
    pub fn advance(&mut self, max_event_ms: i64, out: &mut Vec<Detection>) {
        let wm = max_event_ms.saturating_sub(self.cfg.lateness_ms);
        if wm <= self.watermark_ms {
            return;
        }
        self.watermark_ms = wm;
        // Eviction passes run once per second of watermark progress, not
        // before every batch; what they scan is limited further in `evict`.
        // Idle state lives at most a minute longer (`SWEEP_EVERY_MS`);
        // lateness checks use the exact watermark.
        if wm.saturating_sub(self.evicted_at_ms) >= EVICT_EVERY_MS {
            let previous = std::mem::replace(&mut self.evicted_at_ms, wm);
            self.evict(previous, out);
        }
    }

    /// Close every window (end of a replay): final updates go to `out`.
    pub fn close_all(&mut self, out: &mut Vec<Detection>) {
        self.watermark_ms = i64::MAX;
        let previous = std::mem::replace(&mut self.evicted_at_ms, i64::MAX);
        self.evict(previous, out);
    }

    /// Evict what the watermark's move from `previous` expired. Work that
    /// only aligned boundaries can make due (tumbling buckets, baseline
    /// hours) runs when the watermark crossed one; idle groups and long
    /// histories are swept every [`SWEEP_EVERY_MS`] of watermark.
    fn evict(&mut self, previous: i64, out: &mut Vec<Detection>) {
        let wm = self.watermark_ms;
        let sweep = wm == i64::MAX || wm.saturating_sub(self.swept_at_ms) >= SWEEP_EVERY_MS;
        if sweep {
            self.swept_at_ms = wm;
        }
        // A bucket [b, b + w) closes when the watermark reaches b + w, a
        // multiple of w. Every bucket still open after the previous pass,
        // and every one made since (by events at or after that watermark),
        // ends after `previous`: none can close before the watermark
        // reaches the next multiple.
        let crossed = |w: i64| w > 0 && wm.div_euclid(w) != previous.div_euclid(w);
        // Windows close at +inf, but persisted history is kept relative to
        // the data's own time.
        let retain_wm = if wm == i64::MAX {
            self.newest_event_ms
        } else {
            wm
        };
        self.dedup.evict(wm);
        let rules = self.rules.clone();
        let (store, holds) = self.log.parts();
        for rule in &rules.rules {
            match &mut self.states[rule.index] {
                RuleState::Sliding(groups, sup) => {
                    // Groups that receive events expire their own fronts
                    // (`sliding_insert`); this pass is for idle ones. It
                    // does not sort the appended tails in: an event behind
                    // a younger front (arrival order is event order give or
                    // take an object's spread) leaves with it, and only a
                    // window sweep needs the order (sorting every group's
                    // tail each minute was a tenth of the rules' time).
                    if sweep {
                        let cutoff = wm.saturating_sub(rule.window_ms);
                        groups.retain(|_, g| {
                            g.expire_front(cutoff, holds);
                            !g.events.is_empty()
                        });
                    }
                    sup.evict(rule, wm);
                }
                RuleState::Tumbling(groups, sup) => {
                    if crossed(rule.window_ms) {
                        groups.retain(|key, g| {
                            while let Some((&b, _)) = g.buckets.first_key_value() {
                                if b.saturating_add(rule.window_ms) > wm {
                                    break;
                                }
                                let (b, bucket) = g.buckets.pop_first().expect("first exists");
                                if let Some(d) = tumbling_final(rule, key, b, &bucket, store) {
                                    out.push(d);
                                }
                                for id in bucket.sample {
                                    holds.release(id);
                                }
                            }
                            !g.buckets.is_empty()
                        });
                    }
                    sup.evict(rule, wm);
                }
                RuleState::Match(sup) => sup.evict(rule, wm),
                RuleState::NewTerms(st, sup) if sweep => {
                    let hist = rule
                        .spec
                        .new_terms
                        .as_ref()
                        .map(|n| n.history_days as i64 * DAY_MS)
                        .unwrap_or(i64::MAX);
                    let cutoff = retain_wm.saturating_sub(hist);
                    st.seen.retain(|_, terms| {
                        terms.retain(|(_, last)| *last >= cutoff);
                        !terms.is_empty()
                    });
                    sup.evict(rule, wm);
                }
                RuleState::NewTerms(_, sup) => sup.evict(rule, wm),
                RuleState::Baseline(st) => {
                    if crossed(HOUR_MS) {
                        baseline_seal(rule, st, wm, out);
                    }
                    if sweep {
                        baseline_forget(rule, st, retain_wm);
                    }
                }
                RuleState::Correlation(by_identity, sup) => {
                    let horizon = rule
                        .spec
                        .correlation
                        .as_ref()
                        .map(|c| c.horizon_secs as i64 * 1000)
                        .unwrap_or(0);
                    let cutoff = wm.saturating_sub(horizon);
                    by_identity.retain(|_, v| {
                        v.retain(|d| d.window_end_ms >= cutoff);
                        !v.is_empty()
                    });
                    sup.evict(rule, wm);
                }
            }
        }
        self.log.collect();
    }

    /// State namespaces this engine persists: `baseline/<rule>` and
    /// `new_terms/<rule>`.
    pub fn persisted_namespaces(&self) -> Vec<String> {
        self.rules
            .rules
            .iter()
            .filter_map(|r| match r.spec.kind {
                RuleKind::Baseline => Some(format!("baseline/{}", r.id())),
                RuleKind::NewTerms => Some(format!("new_terms/{}", r.id())),
                _ => None,
            })
            .collect()
    }

    /// Load persisted entries of namespace `ns`, keeping those whose identity
    /// `keep` accepts (the shard's own). Unreadable entries are logged and skipped.
    pub fn restore(
        &mut self,
        ns: &str,
        entries: Vec<(String, Vec<u8>)>,
        keep: impl Fn(&str) -> bool,
    ) {
        let Some((kind, id)) = ns.split_once('/') else {
            return;
        };
        let Some(rule) = self.rules.get(id).cloned() else {
            return;
        };
        match (&mut self.states[rule.index], kind) {
            (RuleState::Baseline(st), "baseline") => {
                for (k, v) in entries {
                    if !keep(&k) {
                        continue;
                    }
                    match serde_json::from_slice::<IdentityBaseline>(&v) {
                        Ok(b) => {
                            let identity = Sym::from(k);
                            if let Some(hours) = st.open.get_mut(&identity) {
                                reset_judges(hours);
                                // Restored history may make them judged;
                                // their alert shows the events from now on.
                                for (_, acc) in hours.iter_mut() {
                                    acc.alert.get_or_insert_default();
                                }
                            }
                            st.identities.insert(identity, b);
                        }
                        Err(e) => {
                            tracing::error!(ns, key = %k, error = %e, "Unreadable baseline entry skipped.")
                        }
                    }
                }
            }
            (RuleState::NewTerms(st, _), "new_terms") => {
                for (k, v) in entries {
                    if k == LEARNING_START_KEY {
                        if let Ok(t) = serde_json::from_slice::<i64>(&v) {
                            st.learning_start_ms =
                                Some(st.learning_start_ms.map_or(t, |s| s.min(t)));
                        }
                        continue;
                    }
                    let identity = k.split('\u{1f}').next().unwrap_or("");
                    if !keep(identity) {
                        continue;
                    }
                    match serde_json::from_slice::<BTreeMap<String, (i64, i64)>>(&v) {
                        Ok(terms) => {
                            let key: GroupKey = k.split('\u{1f}').map(Sym::new).collect();
                            st.seen.insert(
                                key,
                                terms.into_iter().map(|(t, v)| (Sym::new(&t), v)).collect(),
                            );
                        }
                        Err(e) => {
                            tracing::error!(ns, key = %k, error = %e, "Unreadable new-terms entry skipped.")
                        }
                    }
                }
            }
            _ => {}
        }
    }

    /// Entries changed since the last call, per namespace, ready to save.
    pub fn take_dirty(&mut self) -> Vec<(String, crate::state::Entries)> {
        let mut out = Vec::new();
        let rules = self.rules.clone();
        for rule in &rules.rules {
            match &mut self.states[rule.index] {
                RuleState::Baseline(st) if !st.dirty.is_empty() => {
                    let items = std::mem::take(&mut st.dirty)
                        .into_iter()
                        .filter_map(|k| {
                            let b = st.identities.get(&k)?;
                            Some((k.to_string(), serde_json::to_vec(b).ok()?))
                        })
                        .collect();
                    out.push((format!("baseline/{}", rule.id()), items));
                }
                RuleState::NewTerms(st, _) if !st.dirty.is_empty() => {
                    let mut items: Vec<(String, Vec<u8>)> = std::mem::take(&mut st.dirty)
                        .into_keys()
                        .filter_map(|k| {
                            let terms = st.seen.get(&k)?;
                            let m: BTreeMap<&str, (i64, i64)> =
                                terms.iter().map(|(t, v)| (&**t, *v)).collect();
                            let key: Vec<&str> = k.iter().map(|s| &**s).collect();
                            Some((key.join("\u{1f}"), serde_json::to_vec(&m).ok()?))
                        })
                        .collect();
                    if let Some(t) = st.learning_start_ms {
                        items.push((
                            LEARNING_START_KEY.to_string(),
                            serde_json::to_vec(&t).unwrap_or_default(),
                        ));
                    }
                    out.push((format!("new_terms/{}", rule.id()), items));
                }
                _ => {}
            }
        }
        out
    }

    /// Publish the counters accumulated since the last call.
    pub fn flush_metrics(&mut self) {
        let m = metrics();
        let c = &mut self.counts;
        m.events_late.add(std::mem::take(&mut c.late));
        m.events_duplicate.add(std::mem::take(&mut c.duplicate));
        m.events_no_identity.add(std::mem::take(&mut c.no_identity));
        m.group_evictions.add(std::mem::take(&mut c.evictions));
        for r in &self.rules.rules {
            let n = std::mem::take(&mut c.matches[r.index]);
            if n > 0 {
                m.rule_matches.add(r.id(), n);
            }
            let s = std::mem::take(&mut c.suppressed[r.index]);
            if s > 0 {
                m.alerts_suppressed.add(r.id(), s);
            }
        }
    }

    /// Events held in sliding windows' buffers, over all rules and groups
    /// (for tests).
    pub fn buffered_events(&self) -> usize {
        self.states
            .iter()
            .map(|s| match s {
                RuleState::Sliding(g, _) => g.values().map(|g| g.events.len()).sum(),
                _ => 0,
            })
            .sum()
    }

    /// Events the engine's log still keeps: those held by windows and the
    /// others of their batches (for tests).
    pub fn stored_events(&self) -> usize {
        self.log.stored_events()
    }

    /// Number of (rule, group) states held; for tests and metrics.
    pub fn group_count(&self) -> usize {
        self.states
            .iter()
            .map(|s| match s {
                RuleState::Sliding(g, _) => g.len(),
                RuleState::Tumbling(g, _) => g.len(),
                RuleState::Match(_) => 0,
                RuleState::NewTerms(st, _) => st.seen.len(),
                RuleState::Correlation(g, _) => g.len(),
                RuleState::Baseline(st) => st.identities.len() + st.open.len(),
            })
            .sum()
    }
}

fn remember(counts: &mut StateMap<usize, u32>, value: usize) {
    if value != 0 {
        *counts.get_or_default(&value) += 1;
    }
}

fn forget(counts: &mut StateMap<usize, u32>, value: usize) {
    if value != 0
        && let Some(n) = counts.get_mut(&value)
    {
        *n -= 1;
        if *n == 0 {
            counts.remove(&value);
        }
    }
}

fn distinct_of(events: &[EventRef], field: Option<Field>) -> Vec<(Sym, u64)> {
    let Some(f) = field else {
        return Vec::new();
    };
    let mut m: FxHashMap<Sym, u64> = FxHashMap::default();
    for e in events {
        if let Some(v) = e.get_sym(f) {
            *m.entry(v).or_default() += 1;
        }
    }
    let mut v: Vec<(Sym, u64)> = m.into_iter().collect();
    sort_distinct(&mut v);
    v
}

#[allow(clippy::too_many_arguments)]
fn sliding_insert(
    rule: &Arc<CompiledRule>,
    groups: &mut StateMap<GroupKey, SlidingGroup>,
    sup: &mut Suppression,
    key: &GroupKeyRef<'_>,
    e: &Event,
    id: EvId,
    (store, holds): (&Store, &mut Holds),
    watermark_ms: i64,
    cfg: &EngineConfig,
    counts: &mut LocalCounts,
) -> Option<Detection> {
    let field = rule.distinct_field;
    let (min_d, min_e) = (rule.min_distinct, rule.min_events);
    let w = rule.window_ms;
    let t = e.time_ms;
    let value = field.and_then(|f| e.sym(f)).map_or(0, Sym::addr);
    let g = groups.get_or_default(key);
    // No window that a non-late event can join reaches before this.
    let cutoff = watermark_ms.saturating_sub(w);
    g.expire_front(cutoff, holds);
    g.remember(value);
    if g.sorted == g.events.len() && g.events.back().is_none_or(|b| b.t <= t) {
        g.sorted += 1;
    }
    g.push_back(Buffered { t, value, ev: id });
    holds.hold(id);
    // The cap is enforced with 1/8 slack so a group at its cap sorts once
    // per cap/8 events, not on every event.
    let cap = cfg.max_events_per_group.max(1);
    if g.events.len() > cap + cap / 8 {
        g.normalize();
        g.expire_front(cutoff, holds);
        while g.events.len() > cap {
            let old = g.pop_front().expect("non-empty");
            g.forget(old.value);
            holds.release(old.ev);
            counts.evictions += 1;
        }
        if !g.events.is_empty() && g.front_t > t {
            // The new event itself was among the oldest dropped.
            return None;
        }
    }
    if g.events.len() < min_e.max(1) || !g.may_reach(min_d) {
        return None;
    }
    if sup.suppressed(rule, key, t) {
        // Inside a suppression period the sweep is skipped entirely; this is
        // what keeps a noisy identity cheap once it has alerted.
        counts.suppressed[rule.index] += 1;
        return None;
    }
    g.normalize();
    // The new event is the last of those at time t (stable sort, appended).
    let idx = g.events.partition_point(|x| x.t <= t) - 1;
    // Sweep every window of length w that contains the new event, in order of
    // its right edge; the first one over the threshold is the detection.
    let ev = g.events.make_contiguous();
    let lo = ev.partition_point(|x| x.t <= t - w);
    let hi = ev.partition_point(|x| x.t < t.saturating_add(w));
    let mut window: FxHashMap<usize, u32> = FxHashMap::default();
    let mut l = lo;
    for r in lo..hi {
        if ev[r].value != 0 {
            *window.entry(ev[r].value).or_default() += 1;
        }
        while ev[r].t - ev[l].t >= w {
            if ev[l].value != 0 {
                let n = window.get_mut(&ev[l].value).expect("counted on entry");
                *n -= 1;
                if *n == 0 {
                    window.remove(&ev[l].value);
                }
            }
            l += 1;
        }
        if r >= idx && l <= idx && window.len() >= min_d && r + 1 - l >= min_e {
            let events: Vec<EventRef> = ev[l..=r].iter().map(|x| store.copy(x.ev)).collect();
            let start = ev[l].t;
            let group = key.to_owned_key();
            sup.record(group.clone(), start);
            return Some(Detection {
                alert_id: alert_id(rule.id(), &group, episode(rule, start)),
                window_start_ms: start,
                window_end_ms: ev[r].t,
                event_count: events.len() as u64,
                distinct: distinct_of(&events, field),
                events,
                rule: rule.clone(),
                group,
                signals: Vec::new(),
                new_terms: Vec::new(),
                is_update: false,
                baseline: None,
            });
        }
        if r > idx && l > idx {
            break;
        }
    }
    None
}

fn tumbling_insert(
    rule: &Arc<CompiledRule>,
    groups: &mut StateMap<GroupKey, TumblingGroup>,
    sup: &mut Suppression,
    key: &GroupKeyRef<'_>,
    id: EvId,
    (store, holds): (&Store, &mut Holds),
    cfg: &EngineConfig,
) -> Option<Detection> {
    let e = store.get(id);
    let field = rule.distinct_field;
    let (min_d, min_e) = (rule.min_distinct, rule.min_events);
    let w = rule.window_ms;
    let b = e.time_ms.div_euclid(w) * w;
    let g = groups.get_or_default(key);
    let bucket = g.buckets.entry(b).or_default();
    if let Some(v) = field.and_then(|f| e.sym(f)) {
        *group_mut(&mut bucket.counts, v) += 1;
    }
    bucket.events += 1;
    if bucket.sample.len() < cfg.max_events_per_group {
        bucket.sample.push(id);
        holds.hold(id);
    }
    if bucket.fired.is_some()
        || bucket.counts.len() < min_d
        || (bucket.events as usize) < min_e.max(1)
    {
        return None;
    }
    if sup.suppressed(rule, key, b) {
        return None;
    }
    let group = key.to_owned_key();
    sup.record(group.clone(), b);
    let alert = alert_id(rule.id(), &group, episode(rule, b));
    bucket.fired = Some((alert.clone(), bucket.events, bucket.counts.len()));
    Some(bucket_detection(
        rule, group, b, bucket, alert, false, store,
    ))
}

fn bucket_detection(
    rule: &Arc<CompiledRule>,
    key: GroupKey,
    b: i64,
    bucket: &Bucket,
    id: String,
    is_update: bool,
    store: &Store,
) -> Detection {
    let mut distinct: Vec<(Sym, u64)> =
        bucket.counts.iter().map(|(k, v)| (k.clone(), *v)).collect();
    sort_distinct(&mut distinct);
    Detection {
        rule: rule.clone(),
        group: key,
        alert_id: id,
        window_start_ms: b,
        window_end_ms: b + rule.window_ms,
        events: bucket.sample.iter().map(|id| store.copy(*id)).collect(),
        event_count: bucket.events,
        distinct,
        signals: Vec::new(),
        new_terms: Vec::new(),
        is_update,
        baseline: None,
    }
}

fn tumbling_final(
    rule: &Arc<CompiledRule>,
    key: &GroupKey,
    b: i64,
    bucket: &Bucket,
    store: &Store,
) -> Option<Detection> {
    let (id, events, distinct) = bucket.fired.clone()?;
    if events == bucket.events && distinct == bucket.counts.len() {
        return None;
    }
    Some(bucket_detection(
        rule,
        key.clone(),
        b,
        bucket,
        id,
        true,
        store,
    ))
}

fn single_event_detection(
    rule: &Arc<CompiledRule>,
    key: GroupKey,
    e: EventRef,
    new_terms: Vec<Sym>,
) -> Detection {
    let t = e.time_ms;
    Detection {
        alert_id: alert_id(rule.id(), &key, episode(rule, t)),
        rule: rule.clone(),
        group: key,
        window_start_ms: t,
        window_end_ms: t,
        event_count: 1,
        distinct: Vec::new(),
        events: vec![e],
        signals: Vec::new(),
        new_terms,
        is_update: false,
        baseline: None,
    }
}

fn warmed_up(rule: &CompiledRule, st: &NewTermsState, t: i64) -> bool {
    let spec = rule.spec.new_terms.as_ref().expect("validated");
    let warmup = spec.warmup_days.unwrap_or(spec.history_days) as i64 * DAY_MS;
    st.learning_start_ms
        .is_some_and(|s| t >= s.saturating_add(warmup))
}

/// Learn the event's term; for untriggered rules, detect a new term.
fn new_terms_learn(
    rule: &Arc<CompiledRule>,
    st: &mut NewTermsState,
    sup: &mut Suppression,
    key: &GroupKeyRef<'_>,
    e: &Event,
    triggered_rule: bool,
) -> Option<Detection> {
    let spec = rule.spec.new_terms.as_ref().expect("validated");
    let term = e.sym(spec.term_field).filter(|s| !s.is_empty())?;
    let t = e.time_ms;
    st.learning_start_ms = Some(st.learning_start_ms.map_or(t, |s| s.min(t)));
    let hist = spec.history_days as i64 * DAY_MS;
    let terms = st.seen.get_or_default(key);
    let (is_new, changed) = match terms.get_mut(term) {
        Some((first, last)) => {
            let was_forgotten = t.saturating_sub(*last) > hist;
            let new_first = if was_forgotten { t } else { (*first).min(t) };
            // Last-seen is saved when it enters a new hour, so the saved
            // value is at most an hour old: it only decides when a term is
            // forgotten (after days), and saving on every event would rewrite
            // a busy identity's terms constantly.
            let changed = new_first != *first
                || (t > *last && t.div_euclid(HOUR_MS) != last.div_euclid(HOUR_MS));
            *first = new_first;
            *last = (*last).max(t);
            (was_forgotten, changed)
        }
        None => {
            terms.insert_new(term.clone(), (t, t));
            (true, true)
        }
    };
    if changed {
        st.dirty.get_or_default(key);
    }
    if triggered_rule || !is_new || !warmed_up(rule, st, t) {
        return None;
    }
    if sup.suppressed(rule, key, t) {
        return None;
    }
    let group = key.to_owned_key();
    sup.record(group.clone(), t);
    Some(single_event_detection(
        rule,
        group,
        Arc::new(e.clone()),
        vec![term.clone()],
    ))
}

/// A trigger rule detected: report the terms of its events that were first
/// seen for the identity no earlier than the burst itself.
fn new_terms_triggered(
    rule: &Arc<CompiledRule>,
    st: &mut NewTermsState,
    sup: &mut Suppression,
    trigger: &Detection,
) -> Option<Detection> {
    let spec = rule.spec.new_terms.as_ref().expect("validated");
    if !warmed_up(rule, st, trigger.window_start_ms) {
        return None;
    }
    let identity = trigger.group.first()?.clone();
    let key: GroupKey = rule
        .spec
        .group_by
        .iter()
        .map(|f| match f {
            Field::Identity => identity.clone(),
            other => trigger
                .events
                .first()
                .and_then(|e| e.get_sym(*other))
                .unwrap_or_else(Sym::empty),
        })
        .collect();
    let terms = st.seen.get(&key)?;
    let mut new: Vec<Sym> = Vec::new();
    for e in &trigger.events {
        if let Some(v) = e.get_sym(spec.term_field) {
            let fresh = terms
                .get(&v)
                .is_none_or(|(first, _)| *first >= trigger.window_start_ms);
            if fresh && !new.contains(&v) {
                new.push(v);
            }
        }
    }
    if new.is_empty() || sup.suppressed(rule, &key, trigger.window_start_ms) {
        return None;
    }
    new.sort();
    sup.record(key.clone(), trigger.window_start_ms);
    Some(Detection {
        alert_id: alert_id(rule.id(), &key, episode(rule, trigger.window_start_ms)),
        rule: rule.clone(),
        group: key,
        window_start_ms: trigger.window_start_ms,
        window_end_ms: trigger.window_end_ms,
        events: trigger.events.clone(),
        event_count: trigger.event_count,
        distinct: trigger.distinct.clone(),
        signals: vec![trigger.as_signal()],
        new_terms: new,
        is_update: false,
        baseline: None,
    })
}

fn correlate(
    rule: &Arc<CompiledRule>,
    by_identity: &mut FxHashMap<Sym, Vec<Detection>>,
    sup: &mut Suppression,
    d: &Detection,
) -> Option<Detection> {
    let spec = rule.spec.correlation.as_ref().expect("validated");
    let horizon = spec.horizon_secs as i64 * 1000;
    let identity = d.group.first()?.clone();
    let held = by_identity.entry(identity.clone()).or_default();
    // Keep the newest detection per contributing rule.
    held.retain(|x| x.rule.index != d.rule.index);
    held.push(d.clone());
    let newest = held
        .iter()
        .map(|x| x.window_end_ms)
        .max()
        .unwrap_or(d.window_end_ms);
    held.retain(|x| x.window_end_ms >= newest - horizon);
    let find = |id: &String| held.iter().find(|x| x.rule.spec.id == *id);
    let required: Option<Vec<&Detection>> = spec.require.iter().map(find).collect();
    let required = required?;
    let extra: Vec<&Detection> = spec.any_of.iter().filter_map(find).collect();
    if !spec.any_of.is_empty() && extra.is_empty() {
        return None;
    }
    let parts: Vec<&Detection> = required.iter().chain(extra.iter()).copied().collect();
    let start = parts.iter().map(|x| x.window_start_ms).min()?;
    let end = parts.iter().map(|x| x.window_end_ms).max()?;
    if end - start > horizon {
        return None;
    }
    let key: GroupKey = std::iter::once(identity).collect();
    let anchor = required.iter().map(|x| x.window_start_ms).min()?;
    if sup.suppressed(rule, &key, anchor) {
        return None;
    }
    sup.record(key.clone(), anchor);
    let mut events: Vec<EventRef> = parts
        .iter()
        .flat_map(|x| x.events.iter().cloned())
        .collect();
    events.sort_by_key(|e| e.time_ms);
    events.dedup_by_key(|e| e.id);
    let mut signals: Vec<_> = parts.iter().map(|x| x.as_signal()).collect();
    signals.sort_by(|a, b| a.rule_id.cmp(&b.rule_id));
    Some(Detection {
        alert_id: alert_id(rule.id(), &key, episode(rule, anchor)),
        rule: rule.clone(),
        group: key,
        window_start_ms: start,
        window_end_ms: end,
        event_count: events.len() as u64,
        distinct: Vec::new(),
        events,
        signals,
        new_terms: Vec::new(),
        is_update: false,
        baseline: None,
    })
}

/// Count a matching event into its identity's hour; alert as soon as the
/// count exceeds the group's threshold.
fn baseline_count(
    rule: &Arc<CompiledRule>,
    st: &mut BaselineState,
    e: &Event,
    watermark_ms: i64,
) -> Option<Detection> {
    let spec = rule.spec.baseline.as_ref().expect("validated");
    let hour = e.time_ms.div_euclid(HOUR_MS) * HOUR_MS;
    let BaselineState {
        open, identities, ..
    } = st;
    let hours = open.get_or_default(&e.identity);
    let i = match hours.binary_search_by_key(&hour, |(h, _)| *h) {
        Ok(i) => i,
        Err(i) => {
            let history = identities.get(&e.identity);
            let alert = may_alert(spec, history, hours, hour, watermark_ms).then(Box::default);
            hours.insert(i, (hour, HourAcc { count: 0, alert }));
            i
        }
    };
    let acc = &mut hours[i].1;
    acc.count += 1;
    let count = acc.count;
    let Some(acc) = acc.alert.as_deref_mut() else {
        debug_assert!(
            group_samples(spec, identities.get(&e.identity), hour) < spec.min_samples,
            "an hour taken to be unable to alert has a baseline"
        );
        return None;
    };
    // Symbols compare by address, so this scan reads no text.
    // The first 50 distinct names; their order is not kept (the alert
    // sorts them), so a name found is moved to the front: an identity's
    // calls are skewed, and its busy names are then found in a compare or
    // two instead of a scan of the list (symbols compare by address).
    if acc.commands.len() < 50 {
        match acc.commands.iter().position(|c| *c == e.name) {
            Some(0) => {}
            Some(i) => acc.commands.swap(0, i),
            None => acc.commands.push(e.name.clone()),
        }
    }
    if acc.sample.len() < SAMPLE {
        if acc.sample.len() == acc.sample.capacity() {
            // Grown 1, 2, 4, … up to the cap: an identity with one call in
            // an hour keeps one event, not room for four.
            let n = acc.sample.len();
            acc.sample.reserve_exact(n.clamp(1, SAMPLE - n));
        }
        acc.sample.push(e.clone());
    }
    if acc.alerted.is_some() {
        return None;
    }
    let judge = *acc.judge.get_or_insert_with(|| {
        let (name, bucket, weekend) = group_name(spec, hour);
        let hist = identities
            .get_mut(&e.identity)?
            .groups
            .get_mut(name.as_str())?;
        if hist.samples.len() < spec.min_samples {
            return None;
        }
        let (upper, dist) = hist.threshold(spec)?;
        Some(Judge {
            upper,
            dist,
            samples: hist.samples.len(),
            bucket,
            weekend,
        })
    });
    let Judge {
        upper,
        dist,
        samples,
        bucket,
        weekend,
    } = judge?;
    let n = count as f64;
    if n <= upper || n <= round4(upper) {
        return None;
    }
    let key: GroupKey = std::iter::once(e.identity.clone()).collect();
    let id = alert_id(rule.id(), &key, hour);
    acc.alerted = Some((id.clone(), count));
    Some(baseline_detection(
        rule, key, hour, count, acc, id, false, upper, dist, samples, bucket, weekend,
    ))
}

#[allow(clippy::too_many_arguments)]
fn baseline_detection(
    rule: &Arc<CompiledRule>,
    key: GroupKey,
    hour: i64,
    count: u64,
    acc: &HourAlert,
    id: String,
    is_update: bool,
    upper: f64,
    dist: Dist,
    samples: usize,
    bucket: u32,
    weekend: bool,
) -> Detection {
    let shown = round4(upper);
    let mut distinct: Vec<(Sym, u64)> = acc.commands.iter().map(|c| (c.clone(), 1)).collect();
    sort_distinct(&mut distinct);
    Detection {
        rule: rule.clone(),
        group: key,
        alert_id: id,
        window_start_ms: hour,
        window_end_ms: hour + HOUR_MS,
        events: acc.sample.iter().map(|e| Arc::new(e.clone())).collect(),
        event_count: count,
        distinct: Vec::new(),
        signals: Vec::new(),
        new_terms: Vec::new(),
        is_update,
        baseline: Some(BaselineFacts {
            api_calls: count,
            expected_upper_threshold: shown,
            distance_from_threshold: count as f64 - shown,
            commands: distinct.iter().map(|(c, _)| c.to_string()).collect(),
            dist,
            samples,
            hour_of_day_bucket: bucket,
            is_weekend: weekend,
        }),
    }
}

/// Sealed hours in the history of `hour`'s group.
fn group_samples(spec: &BaselineSpec, history: Option<&IdentityBaseline>, hour: i64) -> usize {
    let (name, ..) = group_name(spec, hour);
    history
        .and_then(|b| b.groups.get(name.as_str()))
        .map_or(0, |g| g.samples.len())
}

/// How far back [`may_alert`] looks for hours that can still seal before
/// `hour` (a week and a day: every group recurs within a week); past it
/// the hour is taken to be able to alert.
const MAY_ALERT_LOOKBACK_HOURS: i64 = 8 * 24;

/// Whether the open hour `hour` of an identity whose sealed history is
/// `history` and whose other open hours are `open` can ever be judged, and
/// so alert: its group must hold `min_samples` sealed hours while it is
/// open. The history grows only as the identity's earlier hours seal, and
/// the earlier hours that can still seal are those open now and those not
/// yet behind the watermark `watermark_ms` (an event behind it is late,
/// so an hour wholly behind it can no longer be opened). If those cannot
/// make up the samples missing, the hour is not judged before it seals,
/// and nothing needs to be kept for its alert. That is every hour of an
/// identity without a baseline yet: a new deployment, a new identity, each
/// new role session's ARN. (A restore, which also adds history, turns it
/// back on; the shard restores before its first event.)
fn may_alert(
    spec: &BaselineSpec,
    history: Option<&IdentityBaseline>,
    open: &[(i64, HourAcc)],
    hour: i64,
    watermark_ms: i64,
) -> bool {
    let name = group_name(spec, hour).0.0;
    let group_of = |h: i64| group_name(spec, h).0.0;
    let have = group_samples(spec, history, hour);
    let Some(need) = spec.min_samples.checked_sub(have).filter(|n| *n > 0) else {
        return true;
    };
    let behind = |h: i64| h.saturating_add(HOUR_MS) <= watermark_ms;
    // Open and behind the watermark: not sealed yet (sealing runs in the
    // eviction passes).
    let mut can = open
        .iter()
        .filter(|(h, _)| *h < hour && behind(*h) && group_of(*h) == name)
        .count();
    let mut h = hour.saturating_sub(HOUR_MS);
    for _ in 0..MAY_ALERT_LOOKBACK_HOURS {
        if can >= need || behind(h) {
            return can >= need;
        }
        if group_of(h) == name {
            can += 1;
        }
        h = h.saturating_sub(HOUR_MS);
    }
    true
}

/// Seal the hours the watermark has passed: their counts join the baseline
/// (online learning); an hour that alerted sends its final count.
fn baseline_seal(
    rule: &Arc<CompiledRule>,
    st: &mut BaselineState,
    wm: i64,
    out: &mut Vec<Detection>,
) {
    let spec = rule.spec.baseline.as_ref().expect("validated");
    let keep_ms = spec.history_days as i64 * DAY_MS;
    let BaselineState {
        open,
        identities,
        dirty,
    } = st;
    open.retain(|identity, hours| {
        let mut sealed = false;
        while let Some(&(hour, _)) = hours.first() {
            if hour.saturating_add(HOUR_MS) > wm {
                break;
            }
            sealed = true;
            let (_, acc) = hours.remove(0);
            let (name, bucket, weekend) = group_name(spec, hour);
            let hist = identities
                .entry(identity.clone())
                .or_default()
                .groups
                .entry(name.as_str().to_string())
                .or_default();
            if let Some(alert) = &acc.alert
                && let Some((id, at_alert)) = &alert.alerted
                && acc.count != *at_alert
                && let Some((upper, dist)) = hist.threshold(spec)
            {
                let key: GroupKey = std::iter::once(identity.clone()).collect();
                let samples = hist.samples.len();
                out.push(baseline_detection(
                    rule,
                    key,
                    hour,
                    acc.count,
                    alert,
                    id.clone(),
                    true,
                    upper,
                    dist,
                    samples,
                    bucket,
                    weekend,
                ));
            }
            hist.samples.push((hour, acc.count));
            hist.samples.retain(|(h, _)| *h >= hour - keep_ms);
            hist.upper = None;
            dirty.insert(identity.clone());
        }
        if sealed {
            reset_judges(hours);
        }
        !hours.is_empty()
    });
}

/// Make the open hours look their group's threshold up again (its history
/// changed).
fn reset_judges(hours: &mut [(i64, HourAcc)]) {
    for alert in hours
        .iter_mut()
        .filter_map(|(_, acc)| acc.alert.as_deref_mut())
    {
        alert.judge = None;
    }
}

/// Forget identities silent for longer than the history.
fn baseline_forget(rule: &CompiledRule, st: &mut BaselineState, retain_wm: i64) {
    let spec = rule.spec.baseline.as_ref().expect("validated");
    let cutoff = retain_wm.saturating_sub(spec.history_days as i64 * DAY_MS);
    let BaselineState {
        open, identities, ..
    } = st;
    identities.retain(|identity, b| {
        let keep = b
            .groups
            .values()
            .any(|g| g.samples.last().is_some_and(|(h, _)| *h >= cutoff));
        if !keep && let Some(hours) = open.get_mut(identity) {
            reset_judges(hours);
        }
        keep
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buffered(t: i64, arrival: usize) -> Buffered {
        Buffered {
            t,
            // The arrival number, to check stability.
            value: arrival,
            ev: EventLog::id(0, arrival),
        }
    }

    #[test]
    fn the_distinct_bound_is_exact_whether_or_not_counts_are_kept() {
        // Random pushes and expiries; after each, the bound agrees with a
        // recount of the buffer, and kept counts are the buffer's.
        let mut rng = fastrand::Rng::with_seed(7);
        for min in [0, 1, 3, 6, 11] {
            let mut g = SlidingGroup::default();
            let mut kept = 0;
            for step in 0..5_000 {
                if rng.usize(..10) < 6 || g.events.is_empty() {
                    // Value 0: the event has no distinct field.
                    let value = rng.usize(..14);
                    g.remember(value);
                    g.push_back(buffered(step, 0));
                    g.events.back_mut().expect("pushed").value = value;
                } else {
                    let old = g.pop_front().expect("non-empty");
                    g.forget(old.value);
                }
                let mut exact: FxHashMap<usize, u32> = FxHashMap::default();
                for x in g.events.iter().filter(|x| x.value != 0) {
                    *exact.entry(x.value).or_default() += 1;
                }
                assert_eq!(
                    g.may_reach(min),
                    exact.len() >= min,
                    "min {min}, step {step}"
                );
                if let Some(counts) = &g.counts {
                    kept += 1;
                    assert_eq!(counts.len(), exact.len());
                    for (v, n) in &exact {
                        assert_eq!(counts.get(v), Some(n));
                    }
                }
                if g.events.len() < min / 2 {
                    assert!(g.counts.is_none(), "dropped when the buffer is short");
                }
            }
            if min > 1 {
                assert!(kept > 0, "counts were made for min {min}");
            }
        }
    }

    fn baseline_spec() -> BaselineSpec {
        let rules = crate::rules::load(&crate::config::RulesConfig::default()).unwrap();
        let rule = rules.get("api_calls_anomaly").expect("a default rule");
        rule.spec.baseline.clone().expect("a baseline rule")
    }

    /// Monday 2026-11-23 00:00 UTC.
    const MONDAY: i64 = 1_795_392_000_000;

    /// `n` sealed hours of `group` ("08d": weekdays 08:00-11:59), on the
    /// days before [`MONDAY`].
    fn history(group: &str, n: usize) -> IdentityBaseline {
        let samples = (1..=n as i64).map(|k| (MONDAY - k * DAY_MS, 10)).collect();
        let g = GroupHistory {
            samples,
            upper: None,
        };
        IdentityBaseline {
            groups: [(group.to_string(), g)].into_iter().collect(),
        }
    }

    #[test]
    fn an_hour_may_alert_only_if_its_group_can_reach_min_samples_while_open() {
        let spec = baseline_spec();
        assert_eq!((spec.min_samples, spec.hour_bucket_hours), (16, 4));
        let monday = MONDAY;
        let (eight, nine) = (monday + 8 * HOUR_MS, monday + 9 * HOUR_MS);
        let open_eight = [(eight, HourAcc::default())];
        let m = |h: Option<&IdentityBaseline>, open: &[(i64, HourAcc)], hour, wm| {
            may_alert(&spec, h, open, hour, wm)
        };
        let (h15, h16) = (history("08d", 15), history("08d", 16));
        // Judged already, or never: a full group; none, or another group's.
        assert!(m(Some(&h16), &[], nine, nine - 60_000));
        assert!(!m(None, &[], nine, nine - 60_000));
        assert!(!m(Some(&history("04d", 40)), &[], nine, nine - 60_000));
        // One short: 08:00 (same group) can still seal into it while 09:00
        // is open, whether or not it is open yet, as long as it is not
        // behind the watermark...
        assert!(m(Some(&h15), &[], nine, nine - 60_000));
        assert!(m(Some(&h15), &open_eight, nine, nine - 60_000));
        // ...or, behind it, still open (sealed at the next eviction pass).
        assert!(m(Some(&h15), &open_eight, nine, nine));
        assert!(!m(Some(&h15), &[], nine, nine));
        // 07:00 is in the "04d" group: it cannot help 08:00.
        assert!(!m(Some(&h15), &[], eight, eight - 60_000));
        // Two short, and only one earlier hour of the group can seal.
        assert!(!m(Some(&history("08d", 14)), &[], nine, nine - 60_000));
        assert!(m(
            Some(&history("08d", 14)),
            &[],
            monday + 10 * HOUR_MS,
            nine - 60_000
        ));
        // No watermark yet: any earlier hour may still come.
        assert!(m(None, &[], nine, i64::MIN));
    }

    #[test]
    fn an_identity_hour_that_cannot_alert_is_a_small_entry() {
        // What `HourAcc::alert` says: the boxed part is all that grows.
        assert!(std::mem::size_of::<(Sym, OpenHours)>() <= 48);
    }

    #[test]
    fn an_hour_that_cannot_alert_keeps_no_sample() {
        let rules = Arc::new(crate::rules::load(&crate::config::RulesConfig::default()).unwrap());
        let index = rules.get("api_calls_anomaly").unwrap().index;
        let mut engine = Engine::new(rules, EngineConfig::default());
        let monday = MONDAY;
        let ev = |k: i64, who: &str| {
            let t = monday + 9 * HOUR_MS + k * 1_000;
            Event::test_call(t, (k as u128) << 8 | who.len() as u128, who)
        };
        let (new, known) = ("arn:aws:iam::1:user/new", "arn:aws:iam::1:user/known");
        let RuleState::Baseline(st) = &mut engine.states[index] else {
            panic!("rule 5 is a baseline rule");
        };
        st.identities.insert(Sym::new(known), history("08d", 16));
        let mut out = Vec::new();
        let events: Vec<Event> = (0..5).flat_map(|k| [ev(k, new), ev(k, known)]).collect();
        engine.apply_batch(monday + 9 * HOUR_MS, events, &mut out);
        let RuleState::Baseline(st) = &engine.states[index] else {
            unreachable!()
        };
        let hour = |who: &str| &st.open.get(&Sym::new(who)).expect("an open hour")[0].1;
        let (n, k) = (hour(new), hour(known));
        assert_eq!((n.count, k.count), (5, 5));
        assert!(n.alert.is_none(), "{n:?}");
        let k = k.alert.as_ref().expect("kept for the alert");
        assert_eq!((k.sample.len(), k.commands.len()), (5, 1));
    }

    #[test]
    fn sorting_the_tail_in_is_the_full_stable_sort() {
        // Prefixes and tails of every shape, many equal times.
        let mut rng = fastrand::Rng::with_seed(13);
        for _ in 0..2_000 {
            let head_len = rng.usize(..40);
            let tail_len = rng.usize(..40);
            let spread = rng.i64(1..61);
            let mut head: Vec<i64> = (0..head_len).map(|_| rng.i64(0..spread)).collect();
            head.sort();
            // The tail may start before, inside or after the prefix.
            let shift = rng.i64(0..spread) - spread / 2;
            let tail: Vec<i64> = (0..tail_len).map(|_| rng.i64(0..spread) + shift).collect();
            let times = head.iter().chain(&tail).copied();
            let mut got: Vec<Buffered> = times.enumerate().map(|(i, t)| buffered(t, i)).collect();
            let mut want = got.clone();
            want.sort_by_key(|x| x.t);
            sort_tail_in(&mut got, head_len);
            let key = |v: &[Buffered]| v.iter().map(|x| (x.t, x.value)).collect::<Vec<_>>();
            assert_eq!(key(&got), key(&want), "prefix {head_len}, tail {tail_len}");
        }
    }
}
