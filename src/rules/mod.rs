//! Rules stage: loading, validating and compiling the declarative rules of
//! `config/rules/*.toml` (embedded in the binary) plus the operator's files
//! and inline rules. The window actors evaluate the compiled [`RuleSet`].

pub mod alert;
pub mod density;
pub mod filter;
pub mod gate;
pub mod spec;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use filter::{Allowlist, CompiledCondition};
use spec::{RuleFile, RuleKind, RuleSpec, WindowMode};

use crate::config::{ConfigError, RulesConfig};
use crate::decode::{Event, Field};

/// The rule files compiled into the binary, in load order.
pub const DEFAULT_RULE_FILES: [(&str, &str); 4] = [
    (
        "config/rules/elastic.toml",
        include_str!("../../config/rules/elastic.toml"),
    ),
    (
        "config/rules/recon.toml",
        include_str!("../../config/rules/recon.toml"),
    ),
    (
        "config/rules/correlation.toml",
        include_str!("../../config/rules/correlation.toml"),
    ),
    (
        "config/rules/baseline.toml",
        include_str!("../../config/rules/baseline.toml"),
    ),
];

/// A validated rule ready for evaluation.
#[derive(Debug)]
pub struct CompiledRule {
    /// The rule as written.
    pub spec: RuleSpec,
    /// Index in the rule set (for per-rule state arrays).
    pub index: usize,
    conditions: Vec<CompiledCondition>,
    allowlist: Allowlist,
    /// Window length in ms (threshold rules).
    pub window_ms: i64,
    /// Sliding or tumbling (threshold rules).
    pub window_mode: WindowMode,
    /// Suppression / episode length in ms.
    pub suppress_ms: i64,
    /// Grouped by the identity alone, as most rules are: the engine makes
    /// that key once per event and lends it to each of them. This and the
    /// threshold's figures below are read for every event a rule takes, so
    /// they are derived from the spec once, here.
    pub by_identity: bool,
    /// The threshold's distinct field, if any.
    pub distinct_field: Option<Field>,
    /// The threshold's minimum distinct values (0: none).
    pub min_distinct: usize,
    /// The threshold's minimum events (0: none).
    pub min_events: usize,
}

impl CompiledRule {
    /// Rule id.
    pub fn id(&self) -> &str {
        &self.spec.id
    }

    /// Filter and allowlists (the rule's and the global one), evaluated
    /// directly. The engine asks the rule set's [`gate::Gate`] instead, which
    /// remembers outcomes per field value.
    pub fn accepts(&self, e: &Event, global: &Allowlist) -> bool {
        self.conditions.iter().all(|c| c.matches(e))
            && !self.allowlist.matches(e)
            && !global.matches(e)
    }

    /// Whether detections go to the sinks.
    pub fn is_alert(&self) -> bool {
        self.spec.output == spec::Output::Alert
    }
}

/// Every enabled rule, compiled.
#[derive(Debug)]
pub struct RuleSet {
    /// Rules in evaluation order.
    pub rules: Vec<Arc<CompiledRule>>,
    /// The global allowlist.
    pub global_allowlist: Allowlist,
    /// Every rule's filter and allowlists, and the global allowlist, by field.
    pub gate: gate::Gate,
}

impl RuleSet {
    /// Find a rule by id.
    pub fn get(&self, id: &str) -> Option<&Arc<CompiledRule>> {
        self.rules.iter().find(|r| r.spec.id == id)
    }

    /// Longest time any rule looks back (window, horizon), in ms.
    pub fn max_horizon_ms(&self) -> i64 {
        self.rules
            .iter()
            .map(|r| match r.spec.kind {
                RuleKind::Threshold => r.window_ms,
                RuleKind::Correlation => r
                    .spec
                    .correlation
                    .as_ref()
                    .map(|c| c.horizon_secs as i64 * 1000)
                    .unwrap_or(0),
                _ => 0,
            })
            .max()
            .unwrap_or(0)
    }
}

/// Parse the default files, the configured files and the inline rules;
/// later definitions of an id replace earlier ones.
pub fn collect_specs(cfg: &RulesConfig) -> Result<Vec<RuleSpec>, ConfigError> {
    let mut problems = Vec::new();
    let mut by_id: BTreeMap<String, (usize, RuleSpec)> = BTreeMap::new();
    let mut order = 0usize;
    let mut add = |spec: RuleSpec, by_id: &mut BTreeMap<String, (usize, RuleSpec)>| {
        let pos = by_id.get(&spec.id).map(|(p, _)| *p).unwrap_or_else(|| {
            order += 1;
            order
        });
        by_id.insert(spec.id.clone(), (pos, spec));
    };
    if cfg.include_defaults {
        for (name, text) in DEFAULT_RULE_FILES {
            match toml::from_str::<RuleFile>(text) {
                Ok(f) => f.rule.into_iter().for_each(|r| add(r, &mut by_id)),
                Err(e) => problems.push(format!("{name} (embedded): {e}")),
            }
        }
    }
    for path in &cfg.files {
        match std::fs::read_to_string(path) {
            Ok(text) => match toml::from_str::<RuleFile>(&text) {
                Ok(f) => f.rule.into_iter().for_each(|r| add(r, &mut by_id)),
                Err(e) => problems.push(format!("{}: {}", path.display(), e.to_string().trim())),
            },
            Err(e) => problems.push(format!("rules.files: cannot read {}: {e}", path.display())),
        }
    }
    for r in &cfg.rule {
        add(r.clone(), &mut by_id);
    }
    for id in &cfg.disabled {
        match by_id.get_mut(id) {
            Some((_, r)) => r.enabled = false,
            None => problems.push(format!("rules.disabled: no rule with id {id:?}")),
        }
    }
    if !problems.is_empty() {
        return Err(ConfigError { problems });
    }
    let mut specs: Vec<(usize, RuleSpec)> = by_id.into_values().collect();
    specs.sort_by_key(|(p, _)| *p);
    Ok(specs.into_iter().map(|(_, r)| r).collect())
}

/// Load, validate and compile. Every problem in every rule is reported.
pub fn load(cfg: &RulesConfig) -> Result<RuleSet, ConfigError> {
    let specs = collect_specs(cfg)?;
    compile(specs, cfg)
}

/// Validate and compile specs (enabled ones only).
pub fn compile(specs: Vec<RuleSpec>, cfg: &RulesConfig) -> Result<RuleSet, ConfigError> {
    let mut problems = Vec::new();
    let global_allowlist = Allowlist::compile(&cfg.allowlist).unwrap_or_else(|errs| {
        problems.extend(errs.into_iter().map(|e| format!("rules.allowlist.{e}")));
        Allowlist::default()
    });
    let enabled: Vec<RuleSpec> = specs.into_iter().filter(|r| r.enabled).collect();
    if enabled.len() > gate::MAX_RULES {
        problems.push(format!(
            "rules: at most {} rules can be enabled (got {})",
            gate::MAX_RULES,
            enabled.len()
        ));
    }
    let kinds: BTreeMap<&str, RuleKind> = enabled.iter().map(|r| (r.id.as_str(), r.kind)).collect();
    let mut seen = HashSet::new();
    let mut compiled = Vec::new();
    for spec in &enabled {
        let mut p = |field: &str, msg: String| {
            problems.push(format!("rule {:?}: {field}: {msg}", spec.id));
        };
        if spec.id.is_empty()
            || !spec
                .id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        {
            p("id", "must be non-empty [a-z0-9_-]".into());
        }
        if !seen.insert(spec.id.clone()) {
            p("id", "duplicate".into());
        }
        if spec.name.trim().is_empty() {
            p("name", "must not be empty".into());
        }
        if spec.risk_score > 100 {
            p(
                "risk_score",
                format!("must be 0..=100 (got {})", spec.risk_score),
            );
        }
        if spec.group_by.first() != Some(&Field::Identity) {
            p(
                "group_by",
                "must start with \"identity\" (events are sharded by identity)".into(),
            );
        }
        let mut gb = HashSet::new();
        for f in &spec.group_by {
            if !gb.insert(f) {
                p("group_by", format!("{} listed twice", f.name()));
            }
        }
        let mut conditions = Vec::new();
        for (i, c) in spec.filter.iter().enumerate() {
            match CompiledCondition::compile(c) {
                Ok(c) => conditions.push(c),
                Err(e) => p(&format!("filter[{i}]"), e),
            }
        }
        let allowlist = Allowlist::compile(&spec.allowlist).unwrap_or_else(|errs| {
            for e in errs {
                p("allowlist", e);
            }
            Allowlist::default()
        });
        let only =
            |section: &str, present: bool, kind: RuleKind, p: &mut dyn FnMut(&str, String)| {
                if present && spec.kind != kind {
                    p(
                        section,
                        format!("only valid for kind = {kind:?}").to_lowercase(),
                    );
                }
            };
        only("window", spec.window.is_some(), RuleKind::Threshold, &mut p);
        only(
            "threshold",
            spec.threshold.is_some(),
            RuleKind::Threshold,
            &mut p,
        );
        only(
            "new_terms",
            spec.new_terms.is_some(),
            RuleKind::NewTerms,
            &mut p,
        );
        only(
            "correlation",
            spec.correlation.is_some(),
            RuleKind::Correlation,
            &mut p,
        );
        only(
            "baseline",
            spec.baseline.is_some(),
            RuleKind::Baseline,
            &mut p,
        );
        let (mut window_ms, mut window_mode) = (0, WindowMode::Sliding);
        match spec.kind {
            RuleKind::Threshold => {
                match &spec.window {
                    None => p("window", "required for threshold rules".into()),
                    Some(w) if w.size_secs == 0 => p("window.size_secs", "must be >= 1".into()),
                    Some(w) if w.size_secs > 7 * 86_400 => {
                        p("window.size_secs", "must be <= 604800 (7 days)".into())
                    }
                    Some(w) => {
                        window_ms = w.size_secs as i64 * 1000;
                        window_mode = w.mode;
                    }
                }
                match &spec.threshold {
                    None => p("threshold", "required for threshold rules".into()),
                    Some(t) => {
                        if t.min_distinct.is_none() && t.min_events.is_none() {
                            p("threshold", "set min_distinct and/or min_events".into());
                        }
                        if t.min_distinct.is_some() != t.distinct_field.is_some() {
                            p(
                                "threshold",
                                "distinct_field and min_distinct go together".into(),
                            );
                        }
                        if t.min_distinct == Some(0) {
                            p("threshold.min_distinct", "must be >= 1".into());
                        }
                        if t.min_events == Some(0) {
                            p("threshold.min_events", "must be >= 1".into());
                        }
                    }
                }
            }
            RuleKind::Match => {}
            RuleKind::Baseline => match &spec.baseline {
                None => p("baseline", "required for baseline rules".into()),
                Some(b) => {
                    if b.hour_bucket_hours == 0 || 24 % b.hour_bucket_hours != 0 {
                        p("baseline.hour_bucket_hours", "must divide 24".into());
                    }
                    if b.min_samples < 2 {
                        p("baseline.min_samples", "must be >= 2".into());
                    }
                    if !(b.tail > 0.0 && b.tail < 1.0) {
                        p("baseline.tail", "must be in (0, 1)".into());
                    }
                    if b.history_days == 0 {
                        p("baseline.history_days", "must be >= 1".into());
                    }
                    if spec.group_by != [Field::Identity] {
                        p("group_by", "baseline rules group by identity only".into());
                    }
                }
            },
            RuleKind::NewTerms => match &spec.new_terms {
                None => p("new_terms", "required for new_terms rules".into()),
                Some(n) => {
                    if n.history_days == 0 {
                        p("new_terms.history_days", "must be >= 1".into());
                    }
                    if let Some(t) = &n.trigger {
                        match kinds.get(t.as_str()) {
                            None => p(
                                "new_terms.trigger",
                                format!("no enabled rule with id {t:?}"),
                            ),
                            Some(RuleKind::Threshold | RuleKind::Match) => {}
                            Some(_) => p(
                                "new_terms.trigger",
                                format!("{t:?} must be a threshold or match rule"),
                            ),
                        }
                    }
                }
            },
            RuleKind::Correlation => match &spec.correlation {
                None => p("correlation", "required for correlation rules".into()),
                Some(c) => {
                    if c.horizon_secs == 0 {
                        p("correlation.horizon_secs", "must be >= 1".into());
                    }
                    if c.require.is_empty() {
                        p("correlation.require", "must name at least one rule".into());
                    }
                    for (field, ids) in [
                        ("correlation.require", &c.require),
                        ("correlation.any_of", &c.any_of),
                    ] {
                        for id in ids {
                            match kinds.get(id.as_str()) {
                                None => p(field, format!("no enabled rule with id {id:?}")),
                                Some(RuleKind::Correlation) => p(
                                    field,
                                    format!(
                                        "{id:?} is a correlation rule; correlations do not nest"
                                    ),
                                ),
                                Some(_) => {}
                            }
                        }
                    }
                }
            },
        }
        let threshold = spec.threshold.as_ref();
        compiled.push(CompiledRule {
            spec: spec.clone(),
            index: 0,
            conditions,
            allowlist,
            window_ms,
            window_mode,
            suppress_ms: spec.suppress_secs as i64 * 1000,
            by_identity: spec.group_by[..] == [Field::Identity],
            distinct_field: threshold.and_then(|t| t.distinct_field),
            min_distinct: threshold.and_then(|t| t.min_distinct).unwrap_or(0) as usize,
            min_events: threshold.and_then(|t| t.min_events).unwrap_or(0) as usize,
        });
    }
    if !problems.is_empty() {
        return Err(ConfigError { problems });
    }
    // Event-driven rules first, then those fed by detections.
    compiled.sort_by_key(|r| match r.spec.kind {
        RuleKind::Threshold | RuleKind::Match | RuleKind::Baseline => 0,
        RuleKind::NewTerms
            if r.spec
                .new_terms
                .as_ref()
                .is_some_and(|n| n.trigger.is_none()) =>
        {
            0
        }
        RuleKind::NewTerms => 1,
        RuleKind::Correlation => 2,
    });
    let rules = compiled
        .into_iter()
        .enumerate()
        .map(|(i, mut r)| {
            r.index = i;
            Arc::new(r)
        })
        .collect::<Vec<Arc<CompiledRule>>>();
    let gate = gate::Gate::new(&rules, &global_allowlist);
    Ok(RuleSet {
        rules,
        global_allowlist,
        gate,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg_with(inline: &str) -> RulesConfig {
        let f: RuleFile = toml::from_str(inline).unwrap();
        RulesConfig {
            rule: f.rule,
            ..RulesConfig::default()
        }
    }

    #[test]
    fn defaults_load_in_dependency_order() {
        let set = load(&RulesConfig::default()).unwrap();
        let ids: Vec<&str> = set.rules.iter().map(|r| r.id()).collect();
        for id in [
            "discovery_cli",
            "discovery_any_client",
            "ec2_multi_region_describe",
            "api_recon_spike",
            "first_get_caller_identity",
            "snapshot_ami_activity",
            "recon_chain",
            "discovery_new_source_ip",
        ] {
            assert!(ids.contains(&id), "{id} missing from {ids:?}");
        }
        let pos = |id: &str| ids.iter().position(|x| *x == id).unwrap();
        assert!(pos("recon_chain") > pos("ec2_multi_region_describe"));
        assert!(pos("discovery_new_source_ip") > pos("discovery_any_client"));
        assert!(!set.get("ec2_multi_region_describe").unwrap().is_alert());
    }

    #[test]
    fn per_event_facts_are_taken_from_the_spec() {
        let set = load(&RulesConfig::default()).unwrap();
        let rule = |id: &str| set.rules.iter().find(|r| r.id() == id).unwrap();
        let cli = rule("discovery_cli");
        assert!(cli.by_identity);
        assert_eq!(cli.distinct_field, Some(Field::EventName));
        assert_eq!((cli.min_distinct, cli.min_events), (6, 0));
        let spike = rule("api_recon_spike");
        assert!(!spike.by_identity, "grouped by identity and source IP");
        assert_eq!(spike.min_distinct, 11);
        let regions = rule("ec2_multi_region_describe");
        assert_eq!(regions.distinct_field, Some(Field::AwsRegion));
        assert_eq!((regions.min_distinct, regions.min_events), (10, 10));
        let baseline = rule("api_calls_anomaly");
        assert!(baseline.by_identity);
        assert_eq!(baseline.distinct_field, None);
        assert_eq!((baseline.min_distinct, baseline.min_events), (0, 0));
    }

    #[test]
    fn inline_rule_overrides_default_by_id() {
        let cfg = cfg_with(
            r#"[[rule]]
id = "discovery_cli"
name = "stricter"
kind = "threshold"
severity = "high"
window = { mode = "tumbling", size_secs = 10 }
threshold = { distinct_field = "event_name", min_distinct = 3 }
"#,
        );
        let set = load(&cfg).unwrap();
        let r = set.get("discovery_cli").unwrap();
        assert_eq!(r.spec.name, "stricter");
        assert_eq!(r.window_mode, WindowMode::Tumbling);
        assert_eq!(
            set.rules
                .iter()
                .filter(|r| r.id() == "discovery_cli")
                .count(),
            1
        );
    }

    #[test]
    fn bad_rules_are_named_with_their_fields() {
        let cfg = cfg_with(
            r#"[[rule]]
id = "bad_one"
name = "x"
kind = "threshold"
severity = "low"
risk_score = 101
group_by = ["source_ip"]
threshold = { distinct_field = "event_name" }
filter = [{ field = "event_name" }, { field = "user_agent", glob = ["[oops"] }]

[[rule]]
id = "bad_two"
name = "y"
kind = "correlation"
severity = "high"
correlation = { require = ["nope"] }
window = { size_secs = 5 }
"#,
        );
        let err = load(&cfg).unwrap_err().to_string();
        for needle in [
            r#"rule "bad_one": risk_score"#,
            r#"rule "bad_one": group_by"#,
            r#"rule "bad_one": window: required"#,
            r#"rule "bad_one": threshold: distinct_field and min_distinct"#,
            r#"rule "bad_one": filter[0]"#,
            r#"rule "bad_one": filter[1]: bad glob"#,
            r#"rule "bad_two": correlation.require: no enabled rule with id "nope""#,
            r#"rule "bad_two": window: only valid"#,
        ] {
            assert!(err.contains(needle), "missing {needle:?} in\n{err}");
        }
    }

    #[test]
    fn disabling_a_required_rule_is_an_error() {
        let cfg = RulesConfig {
            disabled: vec!["ec2_multi_region_describe".into(), "no_such_rule".into()],
            ..RulesConfig::default()
        };
        let err = load(&cfg).unwrap_err().to_string();
        assert!(err.contains("no_such_rule"), "{err}");
        let cfg = RulesConfig {
            disabled: vec!["ec2_multi_region_describe".into()],
            ..RulesConfig::default()
        };
        let err = load(&cfg).unwrap_err().to_string();
        assert!(err.contains("recon_chain"), "{err}");
    }

    #[test]
    fn at_most_max_rules_can_be_enabled() {
        let rule = |i: usize| {
            format!(
                "[[rule]]\nid = \"r{i}\"\nname = \"r\"\nkind = \"match\"\nseverity = \"low\"\n\
                 risk_score = 1\nsummary = \"x\"\nfilter = [{{ field = \"event_name\", in = [\"X{i}\"] }}]\n"
            )
        };
        let many = |n: usize| -> RulesConfig {
            toml::from_str(&(0..n).map(rule).collect::<String>()).unwrap()
        };
        let defaults = load(&RulesConfig::default()).unwrap().rules.len();
        assert!(load(&many(gate::MAX_RULES - defaults)).is_ok());
        let err = load(&many(gate::MAX_RULES - defaults + 1))
            .unwrap_err()
            .to_string();
        assert!(err.contains("at most 256 rules"), "{err}");
    }

    #[test]
    fn unknown_rule_fields_are_rejected() {
        let r = toml::from_str::<RuleFile>(
            r#"[[rule]]
id = "x"
name = "x"
kind = "match"
severity = "low"
treshold = 3
"#,
        );
        assert!(r.unwrap_err().to_string().contains("treshold"));
    }
}
