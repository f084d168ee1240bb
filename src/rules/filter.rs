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

    /// The field the condition reads.
    pub fn field(&self) -> Field {
        self.field
    }

    /// Whether the event satisfies every operator.
    pub fn matches(&self, e: &Event) -> bool {
        self.matches_value(e.get(self.field))
    }

    /// Whether a value of the condition's field (`None`: the record lacks
    /// it) satisfies every operator. An empty value counts as missing.
    pub fn matches_value(&self, v: Option<&str>) -> bool {
        let v = v.filter(|s| !s.is_empty());
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

    /// The fields the entries read (each entry reads one).
    pub fn fields(&self) -> Vec<Field> {
        let mut out = Vec::new();
        if self.identities.is_some() || !self.role_names.is_empty() {
            out.push(Field::Identity);
        }
        if self.user_agents.is_some() {
            out.push(Field::UserAgent);
        }
        if !self.cidrs.is_empty() {
            out.push(Field::SourceIp);
        }
        if !self.accounts.is_empty() {
            out.push(Field::AccountId);
        }
        out
    }

    /// Whether the event is allowlisted.
    pub fn matches(&self, e: &Event) -> bool {
        self.fields()
            .into_iter()
            .any(|f| self.matches_field(f, e.get(f)))
    }

    /// Whether an entry on `field` matches its value (`None`: missing).
    pub fn matches_field(&self, field: Field, value: Option<&str>) -> bool {
        let Some(v) = value else {
            return false;
        };
        match field {
            Field::Identity => {
                self.identities.as_ref().is_some_and(|g| g.is_match(v))
                    || (!self.role_names.is_empty()
                        && role_name(v).is_some_and(|r| self.role_names.contains(r)))
            }
            Field::UserAgent => self.user_agents.as_ref().is_some_and(|g| g.is_match(v)),
            Field::SourceIp => {
                !self.cidrs.is_empty()
                    && v.parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| self.cidrs.iter().any(|n| n.contains(&ip)))
            }
            Field::AccountId => self.accounts.contains(v),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::IdentitySource;
    use crate::decode::Sym;

    fn ev(identity: &str, ua: &str, ip: &str) -> Event {
        Event {
            time_ms: 0,
            id: 1,
            name: Sym::from("DescribeInstances"),
            source: Sym::from("ec2.amazonaws.com"),
            region: Sym::from("us-east-1"),
            source_ip: Some(Sym::from(ip)),
            user_agent: Some(Sym::from(ua)),
            error_code: None,
            account_id: Some(Sym::from("111122223333")),
            identity: Sym::from(identity),
            identity_source: IdentitySource::Arn,
            identity_type: Some(Sym::from("AssumedRole")),
            access_key_id: None,
            console_session: false,
        }
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
