//! Compiled filter conditions and allowlists: the per-event predicates.

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};
use ipnet::IpNet;
use rustc_hash::FxHashSet;

use super::spec::Condition;
use crate::config::AllowlistConfig;
use crate::decode::{Event, Field};

fn glob(pattern: &str) -> Result<Glob, String> {
    // `*` crosses `/` so `arn:aws:iam::*:role/*scanner*` works on ARNs.
    GlobBuilder::new(pattern)
        .literal_separator(false)
        .build()
        .map_err(|e| format!("bad glob {pattern:?}: {e}"))
}

fn globset(patterns: &[String]) -> Result<Option<GlobSet>, String> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        b.add(glob(p)?);
    }
    b.build().map(Some).map_err(|e| e.to_string())
}

fn set(values: &[String]) -> FxHashSet<Box<str>> {
    values.iter().map(|v| Box::from(v.as_str())).collect()
}

/// One compiled condition.
#[derive(Debug, Clone)]
pub struct CompiledCondition {
    field: Field,
    in_: FxHashSet<Box<str>>,
    not_in: FxHashSet<Box<str>>,
    starts_with: Vec<String>,
    not_starts_with: Vec<String>,
    glob: Option<GlobSet>,
    not_glob: Option<GlobSet>,
    exists: Option<bool>,
}

impl CompiledCondition {
    /// Compile; `Err` names the problem (the caller adds rule and index).
    pub fn compile(c: &Condition) -> Result<Self, String> {
        let field = c.field.ok_or("field is required")?;
        let has_op = !c.in_.is_empty()
            || !c.not_in.is_empty()
            || !c.starts_with.is_empty()
            || !c.not_starts_with.is_empty()
            || !c.glob.is_empty()
            || !c.not_glob.is_empty()
            || c.exists.is_some();
        if !has_op {
            return Err(
                "needs at least one of in, not_in, starts_with, not_starts_with, glob, not_glob, exists"
                    .into(),
            );
        }
        Ok(Self {
            field,
            in_: set(&c.in_),
            not_in: set(&c.not_in),
            starts_with: c.starts_with.clone(),
            not_starts_with: c.not_starts_with.clone(),
            glob: globset(&c.glob)?,
            not_glob: globset(&c.not_glob)?,
            exists: c.exists,
        })
    }

    /// Whether the event satisfies every operator.
    pub fn matches(&self, e: &Event) -> bool {
        let v = e.get(self.field).filter(|s| !s.is_empty());
        if let Some(want) = self.exists
            && v.is_some() != want
        {
            return false;
        }
        if !self.in_.is_empty() && !v.is_some_and(|v| self.in_.contains(v)) {
            return false;
        }
        if !self.starts_with.is_empty()
            && !v.is_some_and(|v| self.starts_with.iter().any(|p| v.starts_with(p.as_str())))
        {
            return false;
        }
        if let Some(g) = &self.glob
            && !v.is_some_and(|v| g.is_match(v))
        {
            return false;
        }
        if let Some(v) = v
            && (self.not_in.contains(v)
                || self
                    .not_starts_with
                    .iter()
                    .any(|p| v.starts_with(p.as_str()))
                || self.not_glob.as_ref().is_some_and(|g| g.is_match(v)))
        {
            return false;
        }
        true
    }
}

/// Outcome cache of one condition. A condition reads one field, and field
/// values are interned, so the outcome is a function of the value's address
/// for as long as the cache keeps the value alive (it holds a clone). Eight
/// of nine default rules test every event; this turns their prefix and set
/// tests into one pointer-keyed lookup.
#[derive(Debug, Default)]
pub struct ConditionMemo {
    map: rustc_hash::FxHashMap<usize, (Option<crate::decode::Sym>, bool)>,
}

/// Entries before a memo starts over (high-cardinality fields: IPs, keys).
const MEMO_CAP: usize = 16_384;

impl ConditionMemo {
    /// `c.matches(e)`, remembered.
    pub fn matches(&mut self, c: &CompiledCondition, e: &Event) -> bool {
        let key = e.get(c.field).map_or(0, |v| v.as_ptr() as usize);
        if let Some((_, hit)) = self.map.get(&key) {
            return *hit;
        }
        let outcome = c.matches(e);
        if self.map.len() >= MEMO_CAP {
            self.map.clear();
        }
        // `console_session` is a static string, not interned: nothing to keep.
        let keep = match c.field {
            Field::ConsoleSession => None,
            f => e.get_sym(f),
        };
        self.map.insert(key, (keep, outcome));
        outcome
    }
}

/// A compiled allowlist; `matches` = the event is to be ignored.
#[derive(Debug, Clone, Default)]
pub struct Allowlist {
    identities: Option<GlobSet>,
    role_names: FxHashSet<Box<str>>,
    user_agents: Option<GlobSet>,
    cidrs: Vec<IpNet>,
    accounts: FxHashSet<Box<str>>,
}

/// The role name in an IAM role or STS assumed-role ARN.
/// `arn:aws:iam::1:role/path/Name` → `Name`; `arn:aws:sts::1:assumed-role/Name/sess` → `Name`.
pub fn role_name(arn: &str) -> Option<&str> {
    let resource = arn.splitn(6, ':').nth(5)?;
    if let Some(rest) = resource.strip_prefix("assumed-role/") {
        return rest.split('/').next();
    }
    resource
        .strip_prefix("role/")
        .and_then(|r| r.rsplit('/').next())
}

impl Allowlist {
    /// Compile; `Err` lists every bad entry.
    pub fn compile(a: &AllowlistConfig) -> Result<Self, Vec<String>> {
        let mut errs = Vec::new();
        let identities = globset(&a.identities).unwrap_or_else(|e| {
            errs.push(format!("identities: {e}"));
            None
        });
        let user_agents = globset(&a.user_agents).unwrap_or_else(|e| {
            errs.push(format!("user_agents: {e}"));
            None
        });
        let mut cidrs = Vec::new();
        for c in &a.cidrs {
            match c.parse::<IpNet>() {
                Ok(n) => cidrs.push(n),
                Err(_) => match c.parse::<std::net::IpAddr>() {
                    Ok(ip) => cidrs.push(IpNet::from(ip)),
                    Err(_) => errs.push(format!("cidrs: {c:?} is not a CIDR")),
                },
            }
        }
        if !errs.is_empty() {
            return Err(errs);
        }
        Ok(Self {
            identities,
            role_names: set(&a.role_names),
            user_agents,
            cidrs,
            accounts: set(&a.accounts),
        })
    }

    /// Whether nothing is listed.
    pub fn is_empty(&self) -> bool {
        self.identities.is_none()
            && self.role_names.is_empty()
            && self.user_agents.is_none()
            && self.cidrs.is_empty()
            && self.accounts.is_empty()
    }

    /// Whether the event is allowlisted.
    pub fn matches(&self, e: &Event) -> bool {
        if self.is_empty() {
            return false;
        }
        if self
            .identities
            .as_ref()
            .is_some_and(|g| g.is_match(&*e.identity))
        {
            return true;
        }
        if !self.role_names.is_empty()
            && role_name(&e.identity).is_some_and(|r| self.role_names.contains(r))
        {
            return true;
        }
        if let (Some(g), Some(ua)) = (&self.user_agents, e.user_agent.as_deref())
            && g.is_match(ua)
        {
            return true;
        }
        if !self.cidrs.is_empty()
            && let Some(ip) = e
                .source_ip
                .as_deref()
                .and_then(|s| s.parse::<std::net::IpAddr>().ok())
            && self.cidrs.iter().any(|n| n.contains(&ip))
        {
            return true;
        }
        if let Some(acct) = e.account_id.as_deref()
            && self.accounts.contains(acct)
        {
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::IdentitySource;
    use std::sync::Arc;

    fn ev(identity: &str, ua: &str, ip: &str) -> Event {
        Event {
            time_ms: 0,
            id: 1,
            name: Arc::from("DescribeInstances"),
            source: Arc::from("ec2.amazonaws.com"),
            region: Arc::from("us-east-1"),
            source_ip: Some(Arc::from(ip)),
            user_agent: Some(Arc::from(ua)),
            error_code: None,
            account_id: Some(Arc::from("111122223333")),
            identity: Arc::from(identity),
            identity_source: IdentitySource::Arn,
            identity_type: Some(Arc::from("AssumedRole")),
            access_key_id: None,
            console_session: false,
        }
    }

    #[test]
    fn memo_agrees_with_direct_evaluation_as_values_come_and_go() {
        let cond = |toml_text: &str| {
            let c: Condition = toml::from_str(toml_text).unwrap();
            CompiledCondition::compile(&c).unwrap()
        };
        let conds = [
            cond(
                r#"field = "user_agent"
starts_with = ["aws-cli/", "[aws-cli/"]"#,
            ),
            cond(
                r#"field = "source_ip"
not_glob = ["*.amazonaws.com"]"#,
            ),
            cond(
                r#"field = "console_session"
not_in = ["true"]"#,
            ),
            cond(
                r#"field = "error_code"
exists = false"#,
            ),
        ];
        let mut memos: Vec<ConditionMemo> =
            (0..conds.len()).map(|_| ConditionMemo::default()).collect();
        let uas = ["aws-cli/2.15 Python", "[aws-cli/2.1]", "Boto3/1.34", ""];
        let ips = ["203.0.113.9", "config.amazonaws.com", "198.51.100.1"];
        // Fresh allocations every round: freed values' addresses get reused,
        // which must never return another value's outcome.
        for round in 0..MEMO_CAP * 2 + 50 {
            let mut e = ev("arn:aws:iam::1:user/a", uas[round % 4], ips[round % 3]);
            e.console_session = round % 5 == 0;
            if round % 7 == 0 {
                e.error_code = Some(Arc::from("AccessDenied"));
            }
            for (c, m) in conds.iter().zip(memos.iter_mut()) {
                assert_eq!(m.matches(c, &e), c.matches(&e), "round {round}");
            }
        }
        assert!(memos.iter().all(|m| m.map.len() <= MEMO_CAP));
    }

    #[test]
    fn role_names_from_arns() {
        assert_eq!(
            role_name("arn:aws:sts::1:assumed-role/Scanner/i-123"),
            Some("Scanner")
        );
        assert_eq!(
            role_name(
                "arn:aws:iam::1:role/aws-service-role/config.amazonaws.com/AWSServiceRoleForConfig"
            ),
            Some("AWSServiceRoleForConfig")
        );
        assert_eq!(role_name("arn:aws:iam::1:user/bob"), None);
        assert_eq!(role_name("AIDAXYZ"), None);
    }

    #[test]
    fn conditions() {
        let e = ev(
            "arn:aws:sts::1:assumed-role/R/s",
            "aws-cli/2.15.0",
            "10.1.2.3",
        );
        let c = |t: &str| {
            let c: Condition = toml::from_str(t).unwrap();
            CompiledCondition::compile(&c).unwrap().matches(&e)
        };
        assert!(c(r#"field = "event_name"
starts_with = ["Describe", "List"]"#));
        assert!(!c(r#"field = "event_name"
not_starts_with = ["Describe"]"#));
        assert!(c(r#"field = "user_agent"
glob = ["aws-cli/*"]"#));
        assert!(c(r#"field = "error_code"
exists = false"#));
        assert!(
            c(r#"field = "error_code"
not_in = ["AccessDenied"]"#),
            "a missing value passes not_in"
        );
        assert!(
            !c(r#"field = "error_code"
in = ["AccessDenied"]"#),
            "a missing value fails in"
        );
        assert!(c(r#"field = "console_session"
in = ["false"]"#));
        let empty: Condition = toml::from_str(r#"field = "event_name""#).unwrap();
        assert!(CompiledCondition::compile(&empty).is_err());
    }

    #[test]
    fn allowlist_entries() {
        let e = ev(
            "arn:aws:sts::1:assumed-role/WizScanner/s",
            "Boto3/1.2",
            "10.1.2.3",
        );
        let a = |t: &str| {
            let c: AllowlistConfig = toml::from_str(t).unwrap();
            Allowlist::compile(&c).unwrap().matches(&e)
        };
        assert!(!a(""));
        assert!(a(r#"identities = ["arn:aws:sts::*:assumed-role/Wiz*"]"#));
        assert!(a(r#"role_names = ["WizScanner"]"#));
        assert!(a(r#"user_agents = ["Boto3/*"]"#));
        assert!(a(r#"cidrs = ["10.0.0.0/8"]"#));
        assert!(!a(r#"cidrs = ["192.168.0.0/16"]"#));
        assert!(a(r#"accounts = ["111122223333"]"#));
        let bad: AllowlistConfig = toml::from_str(r#"cidrs = ["10.0.0.0/33"]"#).unwrap();
        assert!(Allowlist::compile(&bad).is_err());
    }
}
