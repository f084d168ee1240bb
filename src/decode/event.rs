//! The compact event the rules see: only the CloudTrail fields they need,
//! with repeated strings interned so a batch costs few allocations.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use super::sym::Sym;

/// Where the identity key came from, in fallback order (rules.md: "Identity =
/// userIdentity.arn; when absent fall back to principalId / accessKeyId /
/// invokedBy").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentitySource {
    /// `userIdentity.arn`.
    Arn,
    /// `userIdentity.principalId`.
    PrincipalId,
    /// `userIdentity.accessKeyId`.
    AccessKeyId,
    /// `userIdentity.invokedBy` (an AWS service).
    InvokedBy,
    /// No identity field at all; such events are counted, not judged.
    None,
}

/// One CloudTrail record, reduced to what detection needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// `eventTime` in milliseconds since the Unix epoch (UTC).
    pub time_ms: i64,
    /// `eventID` as 128 bits (UUIDs parsed, anything else hashed).
    pub id: u128,
    /// `eventName`.
    pub name: Sym,
    /// `eventSource`, e.g. `ec2.amazonaws.com`.
    pub source: Sym,
    /// `awsRegion`.
    pub region: Sym,
    /// `sourceIPAddress` (an IP, or a service name for AWS services).
    pub source_ip: Option<Sym>,
    /// `userAgent`.
    pub user_agent: Option<Sym>,
    /// `errorCode`; `None` for successful calls.
    pub error_code: Option<Sym>,
    /// `recipientAccountId`, else `userIdentity.accountId`.
    pub account_id: Option<Sym>,
    /// The identity key used for sharding and grouping.
    pub identity: Sym,
    /// Which field [`Event::identity`] came from.
    pub identity_source: IdentitySource,
    /// `userIdentity.type` (IAMUser, AssumedRole, Root, AWSService, ...).
    pub identity_type: Option<Sym>,
    /// `userIdentity.accessKeyId`.
    pub access_key_id: Option<Sym>,
    /// `sessionCredentialFromConsole == "true"`.
    pub console_session: bool,
}

/// A shared copy of an event, for what outlives the windows: detections,
/// correlations and rule 5's hourly sample (windows hold ids into their
/// shard's [`EventLog`](crate::window::log::EventLog)).
pub type EventRef = Arc<Event>;

/// Fields a rule can filter, group or aggregate on (names as in rule files).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    /// The identity key (normally `userIdentity.arn`).
    Identity,
    /// `userIdentity.type`.
    IdentityType,
    /// `userIdentity.accessKeyId`.
    AccessKeyId,
    /// `eventName`.
    EventName,
    /// `eventSource`.
    EventSource,
    /// `awsRegion`.
    AwsRegion,
    /// `sourceIPAddress`.
    SourceIp,
    /// `userAgent`.
    UserAgent,
    /// Account id.
    AccountId,
    /// `errorCode`.
    ErrorCode,
    /// `"true"` / `"false"` for `sessionCredentialFromConsole`.
    ConsoleSession,
}

impl Field {
    /// Every field, for documentation and `rules list`.
    pub const ALL: [Field; 11] = [
        Field::Identity,
        Field::IdentityType,
        Field::AccessKeyId,
        Field::EventName,
        Field::EventSource,
        Field::AwsRegion,
        Field::SourceIp,
        Field::UserAgent,
        Field::AccountId,
        Field::ErrorCode,
        Field::ConsoleSession,
    ];

    /// The field's name in rule files.
    pub fn name(self) -> &'static str {
        match self {
            Field::Identity => "identity",
            Field::IdentityType => "identity_type",
            Field::AccessKeyId => "access_key_id",
            Field::EventName => "event_name",
            Field::EventSource => "event_source",
            Field::AwsRegion => "aws_region",
            Field::SourceIp => "source_ip",
            Field::UserAgent => "user_agent",
            Field::AccountId => "account_id",
            Field::ErrorCode => "error_code",
            Field::ConsoleSession => "console_session",
        }
    }
}

/// `sessionCredentialFromConsole` as a field value: "false", "true", kept
/// alive here so their addresses stay stable.
static CONSOLE: std::sync::LazyLock<[Sym; 2]> =
    std::sync::LazyLock::new(|| [Sym::pinned("false"), Sym::pinned("true")]);

impl Event {
    /// The value of `field` as a symbol, borrowed (map lookups by `&Sym`
    /// cost no reference-count traffic).
    pub fn sym(&self, field: Field) -> Option<&Sym> {
        match field {
            Field::Identity => Some(&self.identity),
            Field::IdentityType => self.identity_type.as_ref(),
            Field::AccessKeyId => self.access_key_id.as_ref(),
            Field::EventName => Some(&self.name),
            Field::EventSource => Some(&self.source),
            Field::AwsRegion => Some(&self.region),
            Field::SourceIp => self.source_ip.as_ref(),
            Field::UserAgent => self.user_agent.as_ref(),
            Field::AccountId => self.account_id.as_ref(),
            Field::ErrorCode => self.error_code.as_ref(),
            Field::ConsoleSession => Some(&CONSOLE[self.console_session as usize]),
        }
    }

    /// The value of `field` as text, `None` when the record lacks it.
    pub fn get(&self, field: Field) -> Option<&str> {
        self.sym(field).map(Sym::as_str)
    }

    /// The value of `field` as a shared symbol (cheap to keep).
    pub fn get_sym(&self, field: Field) -> Option<Sym> {
        self.sym(field).cloned()
    }

    /// Whether the identity is an AWS service acting on the account's behalf.
    pub fn is_aws_service(&self) -> bool {
        self.identity_type.as_deref() == Some("AWSService")
    }

    /// The event ID back in UUID text form.
    pub fn id_string(&self) -> String {
        format_uuid(self.id)
    }

    /// For tests: an S3 `ListBuckets` call by the IAM ARN `identity`, with
    /// none of the optional fields.
    #[cfg(test)]
    pub(crate) fn test_call(time_ms: i64, id: u128, identity: &str) -> Event {
        Event {
            time_ms,
            id,
            name: Sym::new("ListBuckets"),
            source: Sym::new("s3.amazonaws.com"),
            region: Sym::new("us-east-1"),
            source_ip: None,
            user_agent: None,
            error_code: None,
            account_id: None,
            identity: Sym::new(identity),
            identity_source: IdentitySource::Arn,
            identity_type: None,
            access_key_id: None,
            console_session: false,
        }
    }
}

/// Render 128 bits as a lowercase hyphenated UUID.
pub fn format_uuid(v: u128) -> String {
    let h = format!("{v:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Parse a hyphenated UUID; `None` if it is not one.
pub fn parse_uuid(s: &str) -> Option<u128> {
    parse_uuid_bytes(s.as_bytes())
}

/// [`parse_uuid`] on bytes: hyphens at 8, 13, 18 and 23, hex digits
/// everywhere else.
pub fn parse_uuid_bytes(b: &[u8]) -> Option<u128> {
    let b: &[u8; 36] = b.try_into().ok()?;
    if b[8] != b'-' || b[13] != b'-' || b[18] != b'-' || b[23] != b'-' {
        return None;
    }
    // Digits accumulate without a branch each; a non-digit's table value
    // (0xff) sets the high bit of `bad`. Two 64-bit halves: 128-bit shifts
    // per nibble are several times slower.
    let mut bad = 0u8;
    let mut hex = |digits: &[u8], acc: &mut u64| {
        for &c in digits {
            let d = HEX[c as usize];
            bad |= d;
            *acc = (*acc << 4) | u64::from(d & 0x0f);
        }
    };
    let (mut hi, mut lo) = (0u64, 0u64);
    hex(&b[..8], &mut hi);
    hex(&b[9..13], &mut hi);
    hex(&b[14..18], &mut hi);
    hex(&b[19..23], &mut lo);
    hex(&b[24..], &mut lo);
    (bad & 0x80 == 0).then_some((u128::from(hi) << 64) | u128::from(lo))
}

/// Hex digit values; 0xff for anything else.
static HEX: [u8; 256] = {
    let mut t = [0xffu8; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        t[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

/// Stable 128-bit FNV-1a, for event IDs that are not UUIDs. Stable across
/// processes and versions, unlike `std`'s hasher, because ids are persisted.
pub fn fnv128(data: &[u8]) -> u128 {
    const OFFSET: u128 = 0x6c62272e07bb014262b821756295c58d;
    const PRIME: u128 = 0x0000000001000000000000000000013B;
    let mut h = OFFSET;
    for &b in data {
        h ^= b as u128;
        h = h.wrapping_mul(PRIME);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_parse_agrees_with_a_digit_walk() {
        // The digit-at-a-time parse this replaced.
        fn reference(b: &[u8]) -> Option<u128> {
            if b.len() != 36 || [8, 13, 18, 23].iter().any(|&i| b[i] != b'-') {
                return None;
            }
            let digits: Vec<u8> = b.iter().copied().filter(|&c| c != b'-').collect();
            if digits.len() != 32 {
                return None;
            }
            let text = std::str::from_utf8(&digits).ok()?;
            if !text.bytes().all(|c| c.is_ascii_hexdigit()) {
                return None;
            }
            u128::from_str_radix(text, 16).ok()
        }
        let mut rng = fastrand::Rng::with_seed(9);
        const POOL: &[u8] = b"0123456789abcdefABCDEF-g \xff";
        let mut valid = 0;
        for _ in 0..50_000 {
            let mut b: Vec<u8> = format_uuid(rng.u128(..)).into_bytes();
            for _ in 0..rng.usize(0..3) {
                let i = rng.usize(..b.len());
                b[i] = POOL[rng.usize(..POOL.len())];
            }
            if rng.u8(..16) == 0 {
                b.truncate(rng.usize(..b.len()));
            }
            let want = reference(&b);
            valid += usize::from(want.is_some());
            assert_eq!(
                parse_uuid_bytes(&b),
                want,
                "{}",
                String::from_utf8_lossy(&b)
            );
        }
        assert!(valid > 10_000 && valid < 45_000, "{valid}");
    }

    #[test]
    fn uuid_roundtrip() {
        let s = "f0cce5bc-5f9e-4ee1-bb48-e20fecb32403";
        let v = parse_uuid(s).unwrap();
        assert_eq!(format_uuid(v), s);
        assert_eq!(parse_uuid("F0CCE5BC-5F9E-4EE1-BB48-E20FECB32403"), Some(v));
        assert_eq!(parse_uuid("not-a-uuid"), None);
        assert_eq!(parse_uuid("f0cce5bc-5f9e-4ee1-bb48-e20fecb3240z"), None);
    }

    #[test]
    fn fnv_is_stable() {
        assert_eq!(fnv128(b""), 0x6c62272e07bb014262b821756295c58d);
        assert_ne!(fnv128(b"a"), fnv128(b"b"));
    }
}
