//! Figures on the real Invictus IR dataset: rule 4 in tumbling 10-minute bins
//! per (identity, source IP) must match a computation written independently
//! here (plain JSON, no reconwatch code), and the published table.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use reconwatch::config::RulesConfig;
use reconwatch::decode::record::{Interner, parse_record};
use reconwatch::rules::{self, spec::RuleFile};
use reconwatch::window::engine::{Engine, EngineConfig};

const DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/invictus_aws/CloudTrail"
);

fn records() -> Vec<serde_json::Value> {
    let mut files: Vec<_> = std::fs::read_dir(DIR)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(f).unwrap()).unwrap();
        out.extend(v["Records"].as_array().unwrap().iter().cloned());
    }
    out
}

/// Independent: "YYYY-MM-DDTHH:MM:SSZ" → bin label "HH:M0" (the dataset is one day).
fn bin_label(t: &str) -> String {
    format!("{}{}0", &t[11..14], &t[14..15])
}

type Key = (String, String, String);

fn independent(recs: &[serde_json::Value]) -> BTreeMap<Key, usize> {
    let mut m: BTreeMap<Key, BTreeSet<String>> = BTreeMap::new();
    for r in recs {
        let name = r["eventName"].as_str().unwrap_or("");
        if !(name.starts_with("Describe") || name.starts_with("List") || name.starts_with("Get")) {
            continue;
        }
        let arn = r["userIdentity"]["arn"].as_str().unwrap_or("").to_string();
        if arn.is_empty() {
            continue;
        }
        let ip = r["sourceIPAddress"].as_str().unwrap_or("").to_string();
        m.entry((arn, ip, bin_label(r["eventTime"].as_str().unwrap())))
            .or_default()
            .insert(name.to_string());
    }
    m.into_iter()
        .map(|(k, v)| (k, v.len()))
        .filter(|(_, n)| *n > 10)
        .collect()
}

#[test]
fn rule4_tumbling_bins_match_independent_computation_and_published_table() {
    let recs = records();
    assert_eq!(recs.len(), 2900);
    let f: RuleFile = toml::from_str(
        r#"
[[rule]]
id = "api_recon_spike"
name = "API Reconnaissance Spike (tumbling bins, no suppression)"
kind = "threshold"
severity = "medium"
group_by = ["identity", "source_ip"]
suppress_secs = 0
window = { mode = "tumbling", size_secs = 600 }
threshold = { distinct_field = "event_name", min_distinct = 11 }
filter = [{ field = "event_name", starts_with = ["Describe", "List", "Get"] }]
"#,
    )
    .unwrap();
    let set = Arc::new(
        rules::load(&RulesConfig {
            rule: f.rule,
            ..RulesConfig::default()
        })
        .unwrap(),
    );
    let mut eng = Engine::new(set, EngineConfig::default());
    let mut out = Vec::new();
    let mut interner = Interner::default();
    let mut max = i64::MIN;
    for r in &recs {
        let e = parse_record(r.to_string().as_bytes(), &mut interner).unwrap();
        max = max.max(e.time_ms);
        eng.advance(max, &mut out);
        eng.process(e, &mut out);
    }
    eng.close_all(&mut out);
    // Final figure per (group, bin): the update if the bin grew after firing.
    let mut got: BTreeMap<Key, usize> = BTreeMap::new();
    for d in out.iter().filter(|d| d.rule.id() == "api_recon_spike") {
        let t = reconwatch::decode::time::format_ms(d.window_start_ms);
        let key = (
            d.group[0].to_string(),
            d.group[1].to_string(),
            bin_label(&t),
        );
        let n = d.distinct.len();
        let e = got.entry(key).or_default();
        *e = (*e).max(n);
    }
    assert_eq!(got, independent(&recs));

    let short = |k: &Key| {
        (
            k.0.rsplit('/').next().unwrap().to_string(),
            k.1.clone(),
            k.2.clone(),
        )
    };
    let table: BTreeSet<(String, String, String, usize)> = got
        .iter()
        .map(|(k, n)| {
            let (a, b, c) = short(k);
            (a, b, c, *n)
        })
        .collect();
    let published: BTreeSet<(String, String, String, usize)> = [
        ("bert-jan", "10.8.8.10", "12:20", 60),
        ("bert-jan", "10.8.8.10", "12:10", 29),
        ("bert-jan", "192.168.10.20", "12:00", 58),
        ("bert-jan", "192.168.10.20", "12:20", 52),
        ("bert-jan", "192.168.10.20", "11:50", 39),
        ("bert-jan", "192.168.10.20", "12:10", 31),
        ("benjamin", "10.248.16.43", "11:40", 18),
    ]
    .into_iter()
    .map(|(a, b, c, n)| (a.to_string(), b.to_string(), c.to_string(), n))
    .collect();
    assert_eq!(table, published);
}

#[test]
fn default_rules_on_invictus_fire_no_cli_rule() {
    let set = Arc::new(rules::load(&RulesConfig::default()).unwrap());
    let mut eng = Engine::new(set, EngineConfig::default());
    let mut out = Vec::new();
    let mut interner = Interner::default();
    let mut recs = records();
    recs.sort_by(|a, b| a["eventTime"].as_str().cmp(&b["eventTime"].as_str()));
    for r in &recs {
        let e = parse_record(r.to_string().as_bytes(), &mut interner).unwrap();
        eng.advance(e.time_ms, &mut out);
        eng.process(e, &mut out);
    }
    eng.close_all(&mut out);
    assert!(!out.iter().any(|d| d.rule.id() == "discovery_cli"));
    // The Terraform/Stratus traffic is programmatic discovery: rule 1b sees it.
    assert!(out.iter().any(|d| d.rule.id() == "discovery_any_client"));
}
