//! Rule semantics on event time, driven through the public engine API with
//! the shipped default rules (or a variant of one).

use std::sync::Arc;

use reconwatch::config::RulesConfig;
use reconwatch::decode::Event;
use reconwatch::decode::record::{Interner, parse_record};
use reconwatch::rules::alert::Detection;
use reconwatch::rules::spec::{RuleFile, WindowMode};
use reconwatch::rules::{self, RuleSet};
use reconwatch::window::engine::{Engine, EngineConfig};

const ALICE: &str = "arn:aws:iam::111122223333:user/alice";
const CLI: &str = "aws-cli/2.15.30 Python/3.11.8 Linux/6.5.0";
const BOTO: &str = "Boto3/1.34.69 md/Botocore#1.34.69";

/// Base time 2026-11-20T10:00:00Z in ms.
const T0: i64 = 1_795_168_800_000;

const DISCOVERY: [&str; 12] = [
    "DescribeInstances",
    "DescribeVpcs",
    "DescribeSubnets",
    "DescribeSecurityGroups",
    "DescribeVolumes",
    "DescribeSnapshots",
    "DescribeImages",
    "DescribeKeyPairs",
    "DescribeAddresses",
    "DescribeRouteTables",
    "DescribeNatGateways",
    "DescribeInternetGateways",
];

#[derive(Clone)]
struct Ev {
    ms: i64,
    arn: String,
    typ: String,
    name: String,
    source: String,
    region: String,
    ip: String,
    ua: String,
    console: bool,
    id: u64,
}

impl Ev {
    fn new(ms: i64, name: &str) -> Self {
        Self {
            ms,
            arn: ALICE.into(),
            typ: "IAMUser".into(),
            name: name.into(),
            source: "ec2.amazonaws.com".into(),
            region: "us-east-1".into(),
            ip: "203.0.113.50".into(),
            ua: CLI.into(),
            console: false,
            id: 0,
        }
    }
    fn event(&self) -> Event {
        let secs = self.ms.div_euclid(1000);
        let t = time::OffsetDateTime::from_unix_timestamp(secs).unwrap();
        let j = serde_json::json!({
            "eventTime": format!("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", t.year(), t.month() as u8, t.day(),
                                 t.hour(), t.minute(), t.second(), self.ms.rem_euclid(1000)),
            "eventName": self.name, "eventSource": self.source, "awsRegion": self.region,
            "sourceIPAddress": self.ip, "userAgent": self.ua,
            "eventID": format!("00000000-0000-4000-8000-{:012x}", self.id),
            "sessionCredentialFromConsole": if self.console { "true" } else { "false" },
            "userIdentity": {"type": self.typ, "arn": self.arn, "accountId": "111122223333"},
            "recipientAccountId": "111122223333"
        });
        parse_record(j.to_string().as_bytes(), &mut Interner::default()).unwrap()
    }
}

/// A burst of `n` distinct discovery calls by alice from `start_ms`, `gap_ms` apart.
fn burst(start_ms: i64, n: usize, gap_ms: i64, id0: u64) -> Vec<Ev> {
    (0..n)
        .map(|i| {
            let mut e = Ev::new(start_ms + i as i64 * gap_ms, DISCOVERY[i % DISCOVERY.len()]);
            e.id = id0 + i as u64;
            e
        })
        .collect()
}

fn rules_with(extra: &str) -> Arc<RuleSet> {
    let f: RuleFile = toml::from_str(extra).unwrap();
    Arc::new(
        rules::load(&RulesConfig {
            rule: f.rule,
            ..RulesConfig::default()
        })
        .unwrap(),
    )
}

fn engine(rules: Arc<RuleSet>) -> Engine {
    Engine::new(rules, EngineConfig::default())
}

/// Feed events in order, advancing the clock like the router does.
fn run(eng: &mut Engine, events: &[Ev]) -> Vec<Detection> {
    let mut out = Vec::new();
    let mut max = i64::MIN;
    for e in events {
        max = max.max(e.ms);
        eng.advance(max, &mut out);
        eng.process(e.event(), &mut out);
    }
    out
}

fn fired<'a>(d: &'a [Detection], rule: &str) -> Vec<&'a Detection> {
    d.iter()
        .filter(|x| x.rule.id() == rule && !x.is_update)
        .collect()
}

const TUMBLING_RULE1: &str = r#"
[[rule]]
id = "discovery_cli"
name = "rule 1, tumbling (Elastic parity)"
kind = "threshold"
severity = "low"
risk_score = 21
window = { mode = "tumbling", size_secs = 10 }
threshold = { distinct_field = "event_name", min_distinct = 6 }
filter = [
  { field = "event_name", starts_with = ["Describe", "List", "Get", "Generate"] },
  { field = "user_agent", starts_with = ["aws-cli/"] },
  { field = "console_session", not_in = ["true"] },
  { field = "identity_type", not_in = ["AWSService"] },
]
"#;

#[test]
fn rule1_fires_at_threshold_not_one_below() {
    let r = rules_with("");
    assert_eq!(
        r.get("discovery_cli").unwrap().window_mode,
        WindowMode::Sliding
    );
    let mut e = engine(r.clone());
    let d = run(&mut e, &burst(T0 + 1000, 5, 500, 1));
    assert!(
        fired(&d, "discovery_cli").is_empty(),
        "5 distinct is not more than 5"
    );
    let mut e = engine(r);
    let d = run(&mut e, &burst(T0 + 1000, 6, 500, 1));
    let f = fired(&d, "discovery_cli");
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].distinct.len(), 6);
    assert_eq!(f[0].window_start_ms, T0 + 1000);
    assert_eq!(f[0].window_end_ms, T0 + 3500);
    // Fired on the crossing event, not at window close: it is the last output.
    assert_eq!(f[0].group[0].as_ref(), ALICE);
}

#[test]
fn straddling_burst_sliding_fires_tumbling_does_not() {
    // 8 distinct calls from :08 to :11.5 - Elastic's date_trunc splits them 4 + 4.
    let ev = burst(T0 + 8000, 8, 500, 1);
    let mut sliding = engine(rules_with(""));
    assert_eq!(fired(&run(&mut sliding, &ev), "discovery_cli").len(), 1);
    let mut tumbling = engine(rules_with(TUMBLING_RULE1));
    assert!(fired(&run(&mut tumbling, &ev), "discovery_cli").is_empty());
    // Tumbling still fires when the burst sits inside one bucket.
    let mut tumbling = engine(rules_with(TUMBLING_RULE1));
    let d = run(&mut tumbling, &burst(T0 + 20_000, 8, 500, 100));
    let f = fired(&d, "discovery_cli");
    assert_eq!(f.len(), 1);
    assert_eq!(
        (f[0].window_start_ms, f[0].window_end_ms),
        (T0 + 20_000, T0 + 30_000)
    );
}

#[test]
fn sliding_window_is_strictly_shorter_than_size() {
    // Six distinct calls spanning exactly 10 s: not "within 10 seconds".
    let mut ev = burst(T0, 5, 1000, 1);
    let mut last = Ev::new(T0 + 10_000, "DescribeImages");
    last.id = 99;
    ev.push(last);
    let mut e = engine(rules_with(""));
    assert!(fired(&run(&mut e, &ev), "discovery_cli").is_empty());
}

#[test]
fn out_of_order_arrival_is_detected_with_the_same_alert_id() {
    let ev = burst(T0 + 1000, 8, 700, 1);
    let mut in_order = engine(rules_with(""));
    let a = run(&mut in_order, &ev);
    let mut rev = ev.clone();
    rev.reverse();
    // Interleave with another identity's traffic, as separate files would.
    let mut mixed = Vec::new();
    for (i, e) in rev.into_iter().enumerate() {
        mixed.push(e);
        let mut other = Ev::new(T0 + 60_000 + i as i64, "PutObject");
        other.arn = "arn:aws:iam::111122223333:user/bob".into();
        other.id = 1000 + i as u64;
        mixed.push(other);
    }
    let mut out_of_order = engine(rules_with(""));
    let b = run(&mut out_of_order, &mixed);
    let (fa, fb) = (fired(&a, "discovery_cli"), fired(&b, "discovery_cli"));
    assert_eq!(fa.len(), 1);
    assert_eq!(fb.len(), 1);
    assert_eq!(fa[0].alert_id, fb[0].alert_id, "same burst, same alert id");
}

#[test]
fn burst_split_across_files_minutes_apart_is_still_detected() {
    // Half the burst arrives, then 8 minutes of other traffic, then the rest
    // (a later CloudTrail file): within the 15-minute lateness.
    let ev = burst(T0 + 1000, 8, 500, 1);
    let mut seq: Vec<Ev> = ev[..4].to_vec();
    for i in 0..8 {
        let mut o = Ev::new(T0 + (i + 1) * 60_000, "PutObject");
        o.arn = "arn:aws:iam::111122223333:user/bob".into();
        o.id = 500 + i as u64;
        seq.push(o);
    }
    seq.extend_from_slice(&ev[4..]);
    let mut e = engine(rules_with(""));
    assert_eq!(fired(&run(&mut e, &seq), "discovery_cli").len(), 1);
}

#[test]
fn events_later_than_the_lateness_are_counted_not_applied() {
    let ev = burst(T0 + 1000, 8, 500, 1);
    let mut seq: Vec<Ev> = ev[..4].to_vec();
    let mut o = Ev::new(T0 + 20 * 60_000, "PutObject");
    o.arn = "arn:aws:iam::111122223333:user/bob".into();
    o.id = 777;
    seq.push(o);
    seq.extend_from_slice(&ev[4..]);
    let mut e = engine(rules_with(""));
    let late_before = reconwatch::telemetry::metrics().events_late.get();
    let d = run(&mut e, &seq);
    e.flush_metrics();
    assert!(fired(&d, "discovery_cli").is_empty());
    assert!(reconwatch::telemetry::metrics().events_late.get() - late_before >= 4);
}

#[test]
fn allowlisted_identity_console_session_and_aws_service_do_not_fire() {
    let base = burst(T0 + 1000, 10, 300, 1);
    // Allowlisted role by name, globally.
    let mut cfg = RulesConfig::default();
    cfg.allowlist.role_names = vec!["scanner".into()];
    let mut e = engine(Arc::new(rules::load(&cfg).unwrap()));
    let scanner: Vec<Ev> = base
        .iter()
        .map(|x| {
            let mut y = x.clone();
            y.arn = "arn:aws:sts::111122223333:assumed-role/scanner/s1".into();
            y.typ = "AssumedRole".into();
            y
        })
        .collect();
    assert!(run(&mut e, &scanner).is_empty());
    // The same role without the allowlist does fire.
    let mut e = engine(rules_with(""));
    assert_eq!(fired(&run(&mut e, &scanner), "discovery_cli").len(), 1);
    // Console session.
    let console: Vec<Ev> = base
        .iter()
        .map(|x| {
            let mut y = x.clone();
            y.console = true;
            y
        })
        .collect();
    let mut e = engine(rules_with(""));
    let d = run(&mut e, &console);
    assert!(fired(&d, "discovery_cli").is_empty());
    assert!(fired(&d, "discovery_any_client").is_empty());
    // AWS service identity.
    let service: Vec<Ev> = base
        .iter()
        .map(|x| {
            let mut y = x.clone();
            y.typ = "AWSService".into();
            y.arn = String::new();
            y
        })
        .collect();
    let mut e = engine(rules_with(""));
    let d = run(&mut e, &service);
    assert!(fired(&d, "discovery_cli").is_empty());
    assert!(fired(&d, "discovery_any_client").is_empty());
}

#[test]
fn per_rule_allowlist_by_user_agent_and_cidr() {
    let extra = r#"
[[rule]]
id = "discovery_cli"
name = "rule 1 with allowlist"
kind = "threshold"
severity = "low"
window = { size_secs = 10 }
threshold = { distinct_field = "event_name", min_distinct = 6 }
filter = [{ field = "user_agent", starts_with = ["aws-cli/"] }]
allowlist = { cidrs = ["203.0.113.0/24"] }
"#;
    let mut e = engine(rules_with(extra));
    assert!(fired(&run(&mut e, &burst(T0, 8, 300, 1)), "discovery_cli").is_empty());
}

#[test]
fn duplicate_event_ids_count_once() {
    // 5 distinct names, each delivered three times (SQS redelivery): still 5.
    let ev = burst(T0 + 1000, 5, 500, 1);
    let mut dup = ev.clone();
    dup.extend(ev.clone());
    dup.extend(ev);
    let mut e = engine(rules_with(
        r#"
[[rule]]
id = "many_calls"
name = "event count"
kind = "threshold"
severity = "low"
window = { size_secs = 60 }
threshold = { min_events = 6 }
"#,
    ));
    let before = reconwatch::telemetry::metrics().events_duplicate.get();
    let d = run(&mut e, &dup);
    e.flush_metrics();
    assert!(
        fired(&d, "many_calls").is_empty(),
        "5 unique events must not reach 6"
    );
    assert_eq!(
        reconwatch::telemetry::metrics().events_duplicate.get() - before,
        10
    );
}

#[test]
fn repeats_are_suppressed_then_a_new_episode_alerts_again() {
    let mut ev = burst(T0, 8, 300, 1);
    ev.extend(burst(T0 + 60_000, 8, 300, 100)); // within 600 s suppression
    ev.extend(burst(T0 + 1_200_000, 8, 300, 200)); // a new episode
    let mut e = engine(rules_with(""));
    let d = run(&mut e, &ev);
    let f = fired(&d, "discovery_cli");
    assert_eq!(f.len(), 2);
    assert_ne!(f[0].alert_id, f[1].alert_id);
}

#[test]
fn sdk_clients_fire_rule_1b_but_not_rule_1() {
    let ev: Vec<Ev> = burst(T0, 9, 300, 1)
        .into_iter()
        .map(|mut e| {
            e.ua = BOTO.into();
            e
        })
        .collect();
    let mut e = engine(rules_with(""));
    let d = run(&mut e, &ev);
    assert!(fired(&d, "discovery_cli").is_empty());
    assert_eq!(fired(&d, "discovery_any_client").len(), 1);
}

fn sweep(start: i64, regions: usize, id0: u64) -> Vec<Ev> {
    (0..regions)
        .map(|i| {
            let mut e = Ev::new(start + i as i64 * 2000, "DescribeInstances");
            e.region = format!("region-{i}");
            e.ua = BOTO.into();
            e.id = id0 + i as u64;
            e
        })
        .collect()
}

#[test]
fn rule2_needs_ten_regions_and_is_a_signal_by_default() {
    let mut e = engine(rules_with(""));
    let d = run(&mut e, &sweep(T0, 9, 1));
    assert!(fired(&d, "ec2_multi_region_describe").is_empty());
    let mut e = engine(rules_with(""));
    let d = run(&mut e, &sweep(T0, 10, 1));
    let f = fired(&d, "ec2_multi_region_describe");
    assert_eq!(f.len(), 1);
    assert!(!f[0].rule.is_alert(), "rule 2 is a building block");
    // Alone it does not make a correlation.
    assert!(fired(&d, "recon_chain").is_empty());
}

#[test]
fn rule3_correlates_sweep_with_discovery_burst_once() {
    let mut ev = sweep(T0, 12, 1);
    // The discovery burst 5 minutes later (within the 30-minute horizon), arriving first.
    let mut b: Vec<Ev> = burst(T0 + 300_000, 9, 300, 100)
        .into_iter()
        .map(|mut e| {
            e.ua = BOTO.into();
            e
        })
        .collect();
    b.append(&mut ev);
    let mut e = engine(rules_with(""));
    let d = run(&mut e, &b);
    let c = fired(&d, "recon_chain");
    assert_eq!(c.len(), 1, "exactly one correlation alert");
    let sig: Vec<&str> = c[0].signals.iter().map(|s| s.rule_id.as_str()).collect();
    assert!(
        sig.contains(&"ec2_multi_region_describe") && sig.contains(&"discovery_any_client"),
        "{sig:?}"
    );
    // Outside the horizon: no correlation.
    let mut far = sweep(T0, 12, 1);
    far.extend(
        burst(T0 + 40 * 60_000, 9, 300, 100)
            .into_iter()
            .map(|mut e| {
                e.ua = BOTO.into();
                e
            }),
    );
    let mut e = engine(rules_with(""));
    assert!(fired(&run(&mut e, &far), "recon_chain").is_empty());
}

#[test]
fn rule3_with_snapshot_activity_and_first_get_caller_identity() {
    let mut ev = vec![{
        let mut g = Ev::new(T0 - 5000, "GetCallerIdentity");
        g.source = "sts.amazonaws.com".into();
        g.id = 900;
        g
    }];
    ev.extend(sweep(T0, 10, 1));
    let mut e = engine(rules_with(""));
    let d = run(&mut e, &ev);
    let c = fired(&d, "recon_chain");
    assert_eq!(c.len(), 1);
    assert!(
        c[0].signals
            .iter()
            .any(|s| s.rule_id == "first_get_caller_identity")
    );

    let mut ev = sweep(T0, 10, 1);
    let mut snap = Ev::new(T0 + 120_000, "CreateSnapshot");
    snap.id = 901;
    ev.push(snap);
    let mut e = engine(rules_with(""));
    let c = run(&mut e, &ev);
    assert!(
        fired(&c, "recon_chain")[0]
            .signals
            .iter()
            .any(|s| s.rule_id == "snapshot_ami_activity")
    );
}

/// One Boto3 `ListBuckets` a day from the office IP, for `days` days.
fn office_days(days: i64) -> Vec<Ev> {
    (0..days)
        .map(|d| {
            let mut x = Ev::new(T0 + d * 86_400_000, "ListBuckets");
            x.ua = BOTO.into();
            x.ip = "198.51.100.7".into();
            x.source = "s3.amazonaws.com".into();
            x.id = 10_000 + d as u64;
            x
        })
        .collect()
}

#[test]
fn rule6_new_source_ip_after_learning_period() {
    const DAY: i64 = 86_400_000;
    // 15 days of ordinary calls from the office IP.
    let mut ev = office_days(15);
    // A burst from the office IP: known, no rule-6 alert.
    let office: Vec<Ev> = burst(T0 + 15 * DAY, 9, 300, 1)
        .into_iter()
        .map(|mut e| {
            e.ua = BOTO.into();
            e.ip = "198.51.100.7".into();
            e
        })
        .collect();
    ev.extend(office);
    // Two hours later, a burst from a never-seen IP.
    let stranger: Vec<Ev> = burst(T0 + 15 * DAY + 7_200_000, 9, 300, 100)
        .into_iter()
        .map(|mut e| {
            e.ua = BOTO.into();
            e.ip = "203.0.113.66".into();
            e
        })
        .collect();
    ev.extend(stranger);
    let mut e = Engine::new(rules_with(""), EngineConfig::default());
    let d = run(&mut e, &ev);
    let f = fired(&d, "discovery_new_source_ip");
    assert_eq!(
        f.len(),
        1,
        "{:?}",
        f.iter().map(|x| &x.new_terms).collect::<Vec<_>>()
    );
    assert_eq!(
        f[0].new_terms
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>(),
        vec!["203.0.113.66"]
    );

    // Without 14 days of history the rule only learns.
    let mut e = engine(rules_with(""));
    let young: Vec<Ev> = ev[14..].to_vec();
    assert!(fired(&run(&mut e, &young), "discovery_new_source_ip").is_empty());
}

#[test]
fn tumbling_window_sends_a_final_update_with_full_figures() {
    let mut ev = burst(T0 + 20_000, 6, 300, 1);
    let mut more = burst(T0 + 23_000, 10, 200, 50);
    more.drain(..6);
    ev.extend(more);
    let mut e = engine(rules_with(TUMBLING_RULE1));
    let mut d = run(&mut e, &ev);
    e.close_all(&mut d);
    let first = fired(&d, "discovery_cli");
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].distinct.len(), 6);
    let upd: Vec<&Detection> = d.iter().filter(|x| x.is_update).collect();
    assert_eq!(upd.len(), 1);
    assert_eq!(upd[0].alert_id, first[0].alert_id);
    assert_eq!(upd[0].distinct.len(), 10);
}

#[test]
fn busy_sliding_windows_hold_only_lateness_plus_window() {
    // One identity, 10 DescribeInstances calls a second for 40 minutes,
    // repeating names so no rule fires. Four sliding rules accept them
    // (aws-cli discovery and any-client discovery, 10 s windows; the EC2
    // multi-region sweep, 30 s; the recon spike, 600 s), each keeping its
    // window plus the 900 s of lateness behind the newest event.
    let mut e = engine(rules_with(""));
    let mut out = Vec::new();
    let mut max_seen = 0;
    let rate = 10;
    for i in 0..(40 * 60 * rate) {
        let mut x = Ev::new(T0 + i * 1000 / rate, "DescribeInstances");
        x.id = i as u64;
        e.advance(x.ms, &mut out);
        e.process(x.event(), &mut out);
        max_seen = max_seen.max(e.buffered_events());
    }
    let kept = |window_s: i64| ((900 + window_s) * rate + 1) as usize;
    // Eviction passes run once per second of watermark: one second of slack.
    let bound = 2 * kept(10) + kept(30) + kept(600) + 4 * rate as usize;
    assert!(
        max_seen <= bound,
        "{max_seen} events buffered, at most {bound} expected"
    );
    assert!(
        max_seen >= bound - 8 * rate as usize,
        "{max_seen} < {bound}"
    );
}

#[test]
fn group_state_is_evicted_behind_the_watermark() {
    let mut e = engine(rules_with(""));
    let mut ev = Vec::new();
    for i in 0..500u64 {
        let mut x = Ev::new(T0 + i as i64, "DescribeInstances");
        x.arn = format!("arn:aws:iam::111122223333:user/u{i}");
        x.id = i;
        ev.push(x);
    }
    run(&mut e, &ev);
    assert!(e.group_count() >= 500);
    let mut out = Vec::new();
    e.advance(T0 + 2 * 3_600_000, &mut out);
    // Windows are gone; rule 6's 14-day source-IP history and rule 5's
    // 90-day hourly baseline remain, one of each per identity.
    assert_eq!(e.group_count(), 1000);
    e.advance(T0 + 15 * 86_400_000, &mut out);
    assert_eq!(
        e.group_count(),
        500,
        "new-terms history older than 14 days is evicted"
    );
    e.advance(T0 + 91 * 86_400_000, &mut out);
    assert_eq!(
        e.group_count(),
        0,
        "baselines of identities silent for 90 days are evicted"
    );
}

#[test]
fn persisted_state_survives_close_all_and_restores_into_a_new_engine() {
    const DAY: i64 = 86_400_000;
    // 15 days of calls from the office IP, then close (end of a training run).
    let ev = office_days(15);
    let mut trained = engine(rules_with(""));
    let mut out = run(&mut trained, &ev);
    trained.close_all(&mut out);
    let dirty = trained.take_dirty();
    let ns: Vec<&str> = dirty.iter().map(|(n, _)| n.as_str()).collect();
    assert!(ns.contains(&"new_terms/discovery_new_source_ip"), "{ns:?}");
    assert!(ns.contains(&"baseline/api_calls_anomaly"), "{ns:?}");
    assert!(
        dirty.iter().all(|(_, items)| !items.is_empty()),
        "nothing may be evicted by close_all"
    );

    // A new engine restored from that state knows the office IP and is past
    // its learning period: a burst from a new IP alerts at once.
    let mut restored = engine(rules_with(""));
    for (ns, items) in dirty {
        restored.restore(&ns, items, |_| true);
    }
    let stranger: Vec<Ev> = burst(T0 + 15 * DAY, 9, 300, 100)
        .into_iter()
        .map(|mut e| {
            e.ua = BOTO.into();
            e.ip = "203.0.113.66".into();
            e
        })
        .collect();
    let d = run(&mut restored, &stranger);
    assert_eq!(fired(&d, "discovery_new_source_ip").len(), 1);
    // Without the restored state the same burst is only learnt.
    let mut fresh = engine(rules_with(""));
    assert!(fired(&run(&mut fresh, &stranger), "discovery_new_source_ip").is_empty());
}

#[test]
fn new_terms_last_seen_is_saved_once_per_hour_not_per_event() {
    let mut e = engine(rules_with(""));
    let at = |ms: i64, id: u64| {
        let mut x = Ev::new(ms, "DescribeInstances");
        x.id = id;
        x
    };
    let saved = |e: &mut Engine| -> Option<(String, String)> {
        let dirty = e.take_dirty();
        let (_, items) = dirty
            .into_iter()
            .find(|(ns, _)| ns == "new_terms/discovery_new_source_ip")?;
        items
            .into_iter()
            .find(|(k, _)| k == ALICE)
            .map(|(k, v)| (k, String::from_utf8(v).unwrap()))
    };
    let (t1, t2, t3) = (T0 + 60_000, T0 + 1_800_000, T0 + 3_660_000);
    run(&mut e, &[at(t1, 1)]);
    let first = saved(&mut e).expect("a new term is saved");
    assert_eq!(first.1, format!(r#"{{"203.0.113.50":[{t1},{t1}]}}"#));
    // Seen again within the same hour: nothing worth a write.
    run(&mut e, &[at(t2, 2)]);
    assert_eq!(saved(&mut e), None);
    // Seen in the next hour: saved, with every update so far.
    run(&mut e, &[at(t3, 3)]);
    let later = saved(&mut e).expect("an hour later last-seen is saved");
    assert_eq!(later.1, format!(r#"{{"203.0.113.50":[{t1},{t3}]}}"#));
}

#[test]
fn rule5_an_hour_open_while_an_earlier_one_seals_is_judged_on_the_new_history() {
    const HOUR: i64 = 3_600_000;
    const DAY: i64 = 24 * HOUR;
    // Monday 2026-11-23 00:00 UTC.
    let monday = T0 + 3 * DAY - 10 * HOUR;
    let mut id = 50_000u64;
    let mut calls = |start: i64, n: i64, step_ms: i64| -> Vec<Ev> {
        (0..n)
            .map(|k| {
                let mut x = Ev::new(start + k * step_ms, "DescribeInstances");
                id += 1;
                x.id = id;
                x
            })
            .collect()
    };
    // Three weeks of weekday 08:00 hours (the "08d" group): 15 samples of
    // 10 to 12 calls, one fewer than the rule's 16 needed to judge.
    let mut ev = Vec::new();
    for week in 0..3 {
        for wd in 0..5 {
            let day = monday + (week * 7 + wd) * DAY;
            ev.extend(calls(day + 8 * HOUR, 10 + (week * 5 + wd) % 3, 60_000));
        }
    }
    // Week four, Monday: the 16th sample at 08:00, then 09:00 opens (same
    // group) while 08:00 is still open, so 09:00 is first looked at with
    // 15 samples. 08:00 seals when the watermark passes 09:00 (lateness
    // 900 s: at the event of 09:20), and 09:00 then goes on to 200 calls.
    let day = monday + 21 * DAY;
    ev.extend(calls(day + 8 * HOUR, 11, 60_000));
    ev.extend(calls(day + 9 * HOUR + 10 * 60_000, 1, 1));
    ev.extend(calls(day + 9 * HOUR + 20 * 60_000, 200, 10_000));
    let mut e = engine(rules_with(""));
    let out = run(&mut e, &ev);
    let hits = fired(&out, "api_calls_anomaly");
    assert_eq!(hits.len(), 1, "{hits:#?}");
    assert_eq!(hits[0].window_start_ms, day + 9 * HOUR);
    let facts = hits[0].baseline.as_ref().unwrap();
    assert_eq!(
        facts.samples, 16,
        "judged on the history that includes 08:00"
    );
    // 09:00 opened with 15 samples, one short of being judged, beside the
    // open 08:00 that would make 16: it kept its sample from its first
    // event, so the alert shows the hour's calls up to the one that
    // crossed the threshold.
    let times: Vec<i64> = hits[0].events.iter().map(|e| e.time_ms).collect();
    let first: Vec<i64> = std::iter::once(day + 9 * HOUR + 10 * 60_000)
        .chain((0..).map(|k| day + 9 * HOUR + 20 * 60_000 + k * 10_000))
        .take(facts.api_calls as usize)
        .collect();
    assert!(facts.api_calls > 2, "{facts:?}");
    assert_eq!(times, first);
    assert_eq!(facts.commands, ["DescribeInstances"]);
}

#[test]
fn a_batch_is_applied_as_its_events_one_by_one() {
    // Bursts of two identities with redeliveries inside the same batch and
    // across batches, and records older than the lateness: `apply_batch`
    // admits a whole batch before applying any of it, which must decide
    // exactly what processing the events in turn decides.
    let mut seq: Vec<Ev> = Vec::new();
    for (k, arn) in [ALICE, "arn:aws:iam::111122223333:user/bob"]
        .into_iter()
        .enumerate()
    {
        for mut e in burst(T0 + 1_000 + k as i64 * 700, 12, 400, 100 * k as u64 + 1) {
            e.arn = arn.into();
            seq.push(e);
        }
    }
    seq.sort_by_key(|e| e.ms);
    let mut with_dups = Vec::new();
    for (i, e) in seq.iter().enumerate() {
        with_dups.push(e.clone());
        if i % 3 == 0 {
            with_dups.push(e.clone()); // same batch
        }
        if i % 5 == 0 && i >= 8 {
            with_dups.push(seq[i - 8].clone()); // an earlier batch's
        }
    }
    let mut late = Ev::new(T0 + 40 * 60_000, "ListBuckets");
    late.id = 9_000;
    with_dups.push(late);
    for i in 0..4 {
        let mut old = Ev::new(T0 + i * 1000, DISCOVERY[i as usize]);
        old.id = 9_100 + i as u64;
        with_dups.push(old);
    }
    let rules = Arc::new(rules::load(&RulesConfig::default()).unwrap());
    let summary = |d: &[Detection]| -> Vec<(String, String, i64, i64, u64)> {
        d.iter()
            .map(|x| {
                (
                    x.rule.id().to_string(),
                    x.alert_id.clone(),
                    x.window_start_ms,
                    x.window_end_ms,
                    x.event_count,
                )
            })
            .collect()
    };
    let (mut one, mut batched) = (engine(rules.clone()), engine(rules));
    let (mut d1, mut d2) = (Vec::new(), Vec::new());
    for chunk in with_dups.chunks(7) {
        let events: Vec<Event> = chunk.iter().map(Ev::event).collect();
        let max = chunk.iter().map(|e| e.ms).max().unwrap();
        one.advance(max, &mut d1);
        for e in events.iter().cloned() {
            one.process(e, &mut d1);
        }
        batched.apply_batch(max, events, &mut d2);
    }
    assert!(!fired(&d1, "discovery_cli").is_empty(), "the bursts alert");
    assert_eq!(summary(&d1), summary(&d2));
    assert_eq!(one.buffered_events(), batched.buffered_events());
    assert_eq!(one.group_count(), batched.group_count());
    one.close_all(&mut d1);
    batched.close_all(&mut d2);
    assert_eq!(summary(&d1), summary(&d2));
}
