//! One CloudTrail record (a JSON object) → [`Event`].
//!
//! Deserialisation borrows from the input where it can and skips every field
//! the rules do not use; strings that repeat across records (event names,
//! regions, identities, user agents) are interned.

use std::borrow::Cow;
use std::sync::Arc;

use rustc_hash::FxHashMap;
use serde::Deserialize;

use super::event::{Event, IdentitySource, Sym, fnv128, parse_uuid};
use super::time::parse_rfc3339_ms;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRecord<'a> {
    #[serde(borrow)]
    event_time: Option<Cow<'a, str>>,
    #[serde(borrow)]
    event_name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    event_source: Option<Cow<'a, str>>,
    #[serde(borrow)]
    aws_region: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "sourceIPAddress")]
    source_ip_address: Option<Cow<'a, str>>,
    #[serde(borrow)]
    user_agent: Option<Cow<'a, str>>,
    #[serde(borrow)]
    error_code: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "eventID")]
    event_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    recipient_account_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    user_identity: Option<RawIdentity<'a>>,
    #[serde(borrow, default)]
    session_credential_from_console: Option<BoolOrString<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawIdentity<'a> {
    #[serde(borrow, rename = "type")]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    arn: Option<Cow<'a, str>>,
    #[serde(borrow)]
    principal_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    access_key_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    invoked_by: Option<Cow<'a, str>>,
    #[serde(borrow)]
    account_id: Option<Cow<'a, str>>,
}

/// CloudTrail writes `"sessionCredentialFromConsole": "true"`; accept a bool too.
#[derive(Deserialize)]
#[serde(untagged)]
enum BoolOrString<'a> {
    Bool(bool),
    #[serde(borrow)]
    Str(Cow<'a, str>),
}

/// Why a record was skipped. Bounded set: used as a metric label.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// Not valid JSON, a wrong type, or invalid UTF-8.
    #[error("invalid record: {0}")]
    Invalid(String),
    /// A field the rules need is absent.
    #[error("record lacks required field `{0}`")]
    Missing(&'static str),
    /// `eventTime` is not a timestamp.
    #[error("record has an unparseable eventTime {0:?}")]
    BadTime(String),
}

impl RecordError {
    /// Short label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            RecordError::Invalid(_) => "invalid_json",
            RecordError::Missing(_) => "missing_field",
            RecordError::BadTime(_) => "bad_event_time",
        }
    }
}

/// Interns strings; cleared when it grows past its cap so memory stays bounded
/// with high-cardinality fields (IPs, access keys).
#[derive(Debug)]
pub struct Interner {
    map: FxHashMap<Box<str>, Sym>,
    cap: usize,
}

impl Default for Interner {
    fn default() -> Self {
        Self::with_capacity(65_536)
    }
}

impl Interner {
    /// An interner holding at most `cap` strings.
    pub fn with_capacity(cap: usize) -> Self {
        Self {
            map: FxHashMap::default(),
            cap,
        }
    }

    /// The shared symbol for `s`.
    pub fn intern(&mut self, s: &str) -> Sym {
        if let Some(v) = self.map.get(s) {
            return v.clone();
        }
        if self.map.len() >= self.cap {
            self.map.clear();
        }
        let sym: Sym = Arc::from(s);
        self.map.insert(Box::from(s), sym.clone());
        sym
    }
}

fn non_empty(v: Option<Cow<'_, str>>) -> Option<Cow<'_, str>> {
    v.filter(|s| !s.is_empty())
}

/// Parse one record. Extra fields are ignored; identity falls back from
/// `arn` to `principalId`, `accessKeyId`, then `invokedBy`.
pub fn parse_record(bytes: &[u8], interner: &mut Interner) -> Result<Event, RecordError> {
    let raw: RawRecord<'_> = serde_json::from_slice(bytes).map_err(|e| {
        let mut msg = e.to_string();
        msg.truncate(200);
        RecordError::Invalid(msg)
    })?;
    let time_text = raw.event_time.ok_or(RecordError::Missing("eventTime"))?;
    let time_ms = parse_rfc3339_ms(&time_text)
        .ok_or_else(|| RecordError::BadTime(time_text.chars().take(64).collect()))?;
    let name = non_empty(raw.event_name).ok_or(RecordError::Missing("eventName"))?;
    let source = non_empty(raw.event_source).ok_or(RecordError::Missing("eventSource"))?;
    let region = non_empty(raw.aws_region);
    let id = match raw.event_id.as_deref() {
        Some(s) => parse_uuid(s).unwrap_or_else(|| fnv128(s.as_bytes())),
        // No eventID: derive one from the bytes so duplicates still collapse.
        None => fnv128(bytes),
    };
    let ident = raw.user_identity;
    let (identity, identity_source, identity_type, access_key_id, ident_account) = match ident {
        Some(u) => {
            let (key, src) = if let Some(a) = non_empty(u.arn) {
                (Some(a), IdentitySource::Arn)
            } else if let Some(p) = non_empty(u.principal_id) {
                (Some(p), IdentitySource::PrincipalId)
            } else if let Some(k) = u.access_key_id.as_ref().filter(|s| !s.is_empty()) {
                (Some(k.clone()), IdentitySource::AccessKeyId)
            } else if let Some(s) = non_empty(u.invoked_by) {
                (Some(s), IdentitySource::InvokedBy)
            } else {
                (None, IdentitySource::None)
            };
            (
                key.map(|k| interner.intern(&k)),
                src,
                non_empty(u.kind).map(|k| interner.intern(&k)),
                non_empty(u.access_key_id).map(|k| interner.intern(&k)),
                non_empty(u.account_id),
            )
        }
        None => (None, IdentitySource::None, None, None, None),
    };
    let console_session = match raw.session_credential_from_console {
        Some(BoolOrString::Bool(b)) => b,
        Some(BoolOrString::Str(s)) => s.eq_ignore_ascii_case("true"),
        None => false,
    };
    Ok(Event {
        time_ms,
        id,
        name: interner.intern(&name),
        source: interner.intern(&source),
        region: interner.intern(region.as_deref().unwrap_or("")),
        source_ip: non_empty(raw.source_ip_address).map(|s| interner.intern(&s)),
        user_agent: non_empty(raw.user_agent).map(|s| interner.intern(&s)),
        error_code: non_empty(raw.error_code).map(|s| interner.intern(&s)),
        account_id: non_empty(raw.recipient_account_id)
            .or(ident_account)
            .map(|s| interner.intern(&s)),
        identity: identity.unwrap_or_else(|| interner.intern("")),
        identity_source,
        identity_type,
        access_key_id,
        console_session,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Event, RecordError> {
        parse_record(s.as_bytes(), &mut Interner::default())
    }

    const FULL: &str = r#"{"eventVersion":"1.08","userIdentity":{"type":"IAMUser","principalId":"AIDA","arn":"arn:aws:iam::123:user/bert-jan","accountId":"123","accessKeyId":"AKIA1","userName":"bert-jan"},"eventTime":"2023-07-10T12:11:15Z","eventSource":"ec2.amazonaws.com","eventName":"DescribeInstances","awsRegion":"us-east-1","sourceIPAddress":"192.168.10.20","userAgent":"aws-cli/2.15.0 Python/3.11","requestParameters":{"x":[1,2,{"y":null}]},"responseElements":null,"eventID":"f0cce5bc-5f9e-4ee1-bb48-e20fecb32403","readOnly":true,"recipientAccountId":"123","sessionCredentialFromConsole":"true"}"#;

    #[test]
    fn full_record() {
        let e = parse(FULL).unwrap();
        assert_eq!(&*e.identity, "arn:aws:iam::123:user/bert-jan");
        assert_eq!(e.identity_source, IdentitySource::Arn);
        assert_eq!(e.identity_type.as_deref(), Some("IAMUser"));
        assert_eq!(e.access_key_id.as_deref(), Some("AKIA1"));
        assert_eq!(&*e.name, "DescribeInstances");
        assert_eq!(&*e.source, "ec2.amazonaws.com");
        assert_eq!(&*e.region, "us-east-1");
        assert_eq!(e.source_ip.as_deref(), Some("192.168.10.20"));
        assert_eq!(e.account_id.as_deref(), Some("123"));
        assert!(e.console_session);
        assert_eq!(e.error_code, None);
        assert_eq!(e.id_string(), "f0cce5bc-5f9e-4ee1-bb48-e20fecb32403");
        assert_eq!(e.time_ms, 1_688_991_075_000);
    }

    #[test]
    fn identity_fallbacks() {
        let base = r#""eventTime":"2023-07-10T12:11:15Z","eventSource":"s3.amazonaws.com","eventName":"GetObject""#;
        let e = parse(&format!(
            r#"{{{base},"userIdentity":{{"type":"AssumedRole","principalId":"AROA:sess"}}}}"#
        ))
        .unwrap();
        assert_eq!(
            (&*e.identity, e.identity_source),
            ("AROA:sess", IdentitySource::PrincipalId)
        );
        let e = parse(&format!(
            r#"{{{base},"userIdentity":{{"accessKeyId":"ASIA9"}}}}"#
        ))
        .unwrap();
        assert_eq!(
            (&*e.identity, e.identity_source),
            ("ASIA9", IdentitySource::AccessKeyId)
        );
        let e = parse(&format!(r#"{{{base},"userIdentity":{{"type":"AWSService","invokedBy":"config.amazonaws.com"}}}}"#)).unwrap();
        assert_eq!(
            (&*e.identity, e.identity_source),
            ("config.amazonaws.com", IdentitySource::InvokedBy)
        );
        assert!(e.is_aws_service());
        let e = parse(&format!("{{{base}}}")).unwrap();
        assert_eq!(e.identity_source, IdentitySource::None);
    }

    #[test]
    fn escaped_strings_and_bool_console_flag() {
        let e = parse(r#"{"eventTime":"2023-07-10T12:11:15Z","eventSource":"s3.amazonaws.com","eventName":"Get\u004fbject","userAgent":"a \"quoted\" agent","sessionCredentialFromConsole":false}"#).unwrap();
        assert_eq!(&*e.name, "GetObject");
        assert_eq!(e.user_agent.as_deref(), Some("a \"quoted\" agent"));
        assert!(!e.console_session);
    }

    #[test]
    fn bad_records_say_why() {
        assert_eq!(
            parse(r#"{"eventSource":"s3.amazonaws.com","eventName":"X"}"#),
            Err(RecordError::Missing("eventTime"))
        );
        assert_eq!(
            parse(r#"{"eventTime":"2023-07-10T12:11:15Z","eventSource":"s3.amazonaws.com"}"#),
            Err(RecordError::Missing("eventName"))
        );
        assert!(matches!(
            parse(r#"{"eventTime":"soon","eventSource":"s3.amazonaws.com","eventName":"X"}"#),
            Err(RecordError::BadTime(_))
        ));
        let e = parse(r#"{"eventTime":"2023-07-10T12:11:15Z","eventSource":"s3.amazonaws.com","eventName":5}"#).unwrap_err();
        assert_eq!(e.reason(), "invalid_json");
        assert!(e.to_string().contains("invalid type"), "{e}");
        let bad_utf8 = b"{\"eventTime\":\"2023-07-10T12:11:15Z\",\"eventSource\":\"s\",\"eventName\":\"\xff\xfe\"}";
        let e = parse_record(bad_utf8, &mut Interner::default()).unwrap_err();
        assert_eq!(e.reason(), "invalid_json");
    }

    #[test]
    fn interner_shares_and_stays_bounded() {
        let mut i = Interner::with_capacity(2);
        let a = i.intern("a");
        assert!(Arc::ptr_eq(&a, &i.intern("a")));
        i.intern("b");
        i.intern("c");
        assert!(i.map.len() <= 2);
    }
}
