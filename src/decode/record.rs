//! One CloudTrail record (a JSON object) → [`Event`].
//!
//! A hand-written single-pass scanner (not serde): it borrows the members the
//! rules read straight from the record's bytes and skips everything else:
//! nested values, which are most of the bytes (`requestParameters`,
//! `responseElements`, `tlsDetails`), a block of 64 bytes at a time (the
//! `simd` module), other strings 16 bytes per compare. Strings that repeat
//! across records (event names, regions, identities, user agents) are
//! interned. The unit tests check it against a serde_json reference on every
//! bundled dataset record.

use rustc_hash::FxHashMap;

use super::event::{Event, IdentitySource, Sym, fnv128, parse_uuid_bytes};
use super::simd::{self, MAX_DEPTH, SkipError, find_quote_or_backslash};
use super::time::parse_rfc3339_ms;

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

/// A decoder thread's cache in front of the process-wide symbol table
/// ([`Sym::new`]); cleared when it grows past its cap so memory stays
/// bounded with high-cardinality fields (IPs, access keys).
///
/// Keyed by bytes: a record's strings are looked up before they are checked
/// as UTF-8, so only the first sighting of a string pays for the check.
#[derive(Debug)]
pub struct Interner {
    map: FxHashMap<Box<[u8]>, Sym>,
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
        self.intern_as::<false>(s)
    }

    /// [`Interner::intern`]; `PIN` pins the value ([`Sym::pin`]): for
    /// low-cardinality fields only.
    fn intern_as<const PIN: bool>(&mut self, s: &str) -> Sym {
        if let Some(v) = self.map.get(s.as_bytes()) {
            return Self::hit::<PIN>(v);
        }
        self.insert::<PIN>(s)
    }

    /// The shared symbol for `bytes`, which must be UTF-8.
    fn intern_bytes<const PIN: bool>(&mut self, bytes: &[u8]) -> Result<Sym, std::str::Utf8Error> {
        if let Some(v) = self.map.get(bytes) {
            return Ok(Self::hit::<PIN>(v));
        }
        Ok(self.insert::<PIN>(std::str::from_utf8(bytes)?))
    }

    #[inline(always)]
    fn hit<const PIN: bool>(v: &Sym) -> Sym {
        // A value first seen in a field that is not pinned (an empty
        // string, say) is pinned when a pinned field brings it.
        if PIN {
            v.pin();
        }
        v.clone()
    }

    fn insert<const PIN: bool>(&mut self, s: &str) -> Sym {
        if self.map.len() >= self.cap {
            self.map.clear();
        }
        let sym = Sym::new(s);
        if PIN {
            sym.pin();
        }
        self.map.insert(Box::from(s.as_bytes()), sym.clone());
        sym
    }

    fn text<const PIN: bool>(&mut self, t: &Text<'_>, field: &str) -> Result<Sym, RecordError> {
        match t {
            Text::Raw(b) => self
                .intern_bytes::<PIN>(b)
                .map_err(|_| RecordError::Invalid(format!("field `{field}` is not valid UTF-8"))),
            Text::Owned(s) => Ok(self.intern_as::<PIN>(s)),
        }
    }

    fn opt_text<const PIN: bool>(
        &mut self,
        t: Option<Text<'_>>,
        field: &str,
    ) -> Result<Option<Sym>, RecordError> {
        t.filter(|t| !t.is_empty())
            .map(|t| self.text::<PIN>(&t, field))
            .transpose()
    }
}

/// Whether a field's values are pinned ([`Sym::pin`]): event names,
/// sources, regions, error codes, identity types and accounts come from
/// small sets; identities, IPs, user agents and keys do not.
const PINNED: bool = true;
const COUNTED: bool = false;

/// A string member's contents: borrowed raw bytes (no escapes; UTF-8 is
/// checked when interned), or unescaped and checked.
#[derive(Debug, Clone)]
enum Text<'a> {
    Raw(&'a [u8]),
    Owned(String),
}

impl Text<'_> {
    fn as_bytes(&self) -> &[u8] {
        match self {
            Text::Raw(b) => b,
            Text::Owned(s) => s.as_bytes(),
        }
    }

    fn is_empty(&self) -> bool {
        self.as_bytes().is_empty()
    }
}

impl PartialEq for Text<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

fn err_at(what: &str, pos: usize) -> RecordError {
    RecordError::Invalid(format!("{what} at byte {pos}"))
}

#[cold]
#[inline(never)]
fn unterminated(open: usize) -> RecordError {
    RecordError::Invalid(format!("unterminated string starting at byte {open}"))
}

fn non_empty(v: Option<Text<'_>>) -> Option<Text<'_>> {
    v.filter(|s| !s.is_empty())
}

/// The `userIdentity` members the rules read, borrowed from the record.
#[derive(Debug, Default, PartialEq)]
struct IdentityFields<'a> {
    kind: Option<Text<'a>>,
    arn: Option<Text<'a>>,
    principal_id: Option<Text<'a>>,
    access_key_id: Option<Text<'a>>,
    invoked_by: Option<Text<'a>>,
    account_id: Option<Text<'a>>,
}

/// The record members the rules read, borrowed from the record.
#[derive(Debug, Default, PartialEq)]
struct Fields<'a> {
    event_time: Option<Text<'a>>,
    event_name: Option<Text<'a>>,
    event_source: Option<Text<'a>>,
    aws_region: Option<Text<'a>>,
    source_ip: Option<Text<'a>>,
    user_agent: Option<Text<'a>>,
    error_code: Option<Text<'a>>,
    event_id: Option<Text<'a>>,
    recipient_account_id: Option<Text<'a>>,
    identity: Option<IdentityFields<'a>>,
    console_session: Option<bool>,
}

/// A position in one record's bytes.
///
/// The record is walked once. Members the rules read are checked strictly
/// (type, UTF-8, escapes); the values of all other members are only checked
/// for terminated strings and balanced brackets. That is what keeps parsing
/// fast: most of a CloudTrail record is `requestParameters` /
/// `responseElements`, which are skipped a block at a time instead of being
/// tokenised.
struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    fn err(&self, what: &str) -> RecordError {
        err_at(what, self.i)
    }

    #[inline]
    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn eat(&mut self, c: u8, what: &str) -> Result<(), RecordError> {
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(self.err(what))
        }
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), RecordError> {
        if self.b[self.i..].starts_with(word) {
            self.i += word.len();
            Ok(())
        } else {
            Err(self.err("invalid literal"))
        }
    }

    fn found(&self) -> &'static str {
        match self.peek() {
            Some(b'"') => "a string",
            Some(b'{') => "an object",
            Some(b'[') => "an array",
            Some(b't' | b'f') => "a boolean",
            Some(b'n') => "null",
            Some(b'-' | b'0'..=b'9') => "a number",
            Some(_) => "invalid JSON",
            None => "the end of the record",
        }
    }

    #[cold]
    #[inline(never)]
    fn type_error(&self, field: &str, expected: &str) -> RecordError {
        RecordError::Invalid(format!(
            "field `{field}`: expected {expected}, found {} at byte {}",
            self.found(),
            self.i
        ))
    }

    /// At an opening quote: the raw contents and whether they hold escapes;
    /// leaves the cursor after the closing quote.
    #[inline]
    fn raw_string(&mut self) -> Result<(&'a [u8], bool), RecordError> {
        let start = self.i + 1;
        let mut j = start;
        let mut escaped = false;
        while j <= self.b.len() {
            let Some(k) = find_quote_or_backslash(&self.b[j..]) else {
                break;
            };
            let p = j + k;
            if self.b[p] == b'"' {
                self.i = p + 1;
                return Ok((&self.b[start..p], escaped));
            }
            escaped = true;
            j = p + 2;
        }
        Err(unterminated(self.i))
    }

    /// A string value, borrowed unless it holds escapes.
    fn string(&mut self) -> Result<Text<'a>, RecordError> {
        self.text("string")
    }

    /// At an opening quote: the contents, borrowed unless they hold escapes
    /// (unescaped, a bad escape reported as a bad `what`).
    ///
    /// Inlined: a record has some 30 strings the scanner reads (member
    /// names, the rules' fields), and the call and its `Result` cost more
    /// than finding a short string's end. Escapes take the cold path.
    #[inline(always)]
    fn text(&mut self, what: &str) -> Result<Text<'a>, RecordError> {
        let open = self.i;
        let (raw, escaped) = self.raw_string()?;
        if !escaped {
            return Ok(Text::Raw(raw));
        }
        self.unescape(open, what)
    }

    /// The string from `open` to the cursor, unescaped by serde_json's rules.
    #[cold]
    #[inline(never)]
    fn unescape(&self, open: usize, what: &str) -> Result<Text<'a>, RecordError> {
        serde_json::from_slice::<String>(&self.b[open..self.i])
            .map(Text::Owned)
            .map_err(|e| RecordError::Invalid(format!("bad {what} at byte {open}: {e}")))
    }

    /// A member that must be a string or null (inlined, as [`Self::text`]).
    #[inline(always)]
    fn opt_string(&mut self, field: &str) -> Result<Option<Text<'a>>, RecordError> {
        match self.peek() {
            Some(b'"') => self.string().map(Some),
            Some(b'n') => self.literal(b"null").map(|_| None),
            _ => Err(self.type_error(field, "a string")),
        }
    }

    /// Skip one value of any type.
    fn skip_value(&mut self) -> Result<(), RecordError> {
        match self.peek() {
            Some(b'"') => self.raw_string().map(|_| ()),
            Some(b'{' | b'[') => self.skip_nested(),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(b'-' | b'0'..=b'9') => {
                while let Some(b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9') = self.b.get(self.i)
                {
                    self.i += 1;
                }
                Ok(())
            }
            Some(_) => Err(self.err("expected a value")),
            None => Err(self.err("unexpected end of record")),
        }
    }

    /// Skip an object or array: strings must end, brackets must match
    /// (`simd::skip_nested` does it a block at a time).
    fn skip_nested(&mut self) -> Result<(), RecordError> {
        match simd::skip_nested(self.b, self.i) {
            Ok(end) => {
                self.i = end;
                Ok(())
            }
            Err(SkipError::End) => Err(err_at("record ends inside a nested value", self.b.len())),
            Err(SkipError::Unterminated(p)) => Err(unterminated(p)),
            Err(SkipError::Mismatch(p)) => Err(err_at("mismatched bracket", p)),
            Err(SkipError::TooDeep(p)) => Err(err_at(
                &format!("nesting deeper than {MAX_DEPTH} levels"),
                p,
            )),
        }
    }

    /// Walk an object's members; `member` is called at each value with the
    /// (unescaped) key and must consume the value.
    fn object<F>(&mut self, mut member: F) -> Result<(), RecordError>
    where
        F: FnMut(&mut Self, &[u8]) -> Result<(), RecordError>,
    {
        self.eat(b'{', "expected '{'")?;
        self.ws();
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Ok(());
        }
        loop {
            if self.peek() != Some(b'"') {
                return Err(self.err("expected a member name"));
            }
            let key = self.text("member name")?;
            self.ws();
            self.eat(b':', "expected ':'")?;
            self.ws();
            member(self, key.as_bytes())?;
            self.ws();
            match self.peek() {
                Some(b',') => {
                    self.i += 1;
                    self.ws();
                }
                Some(b'}') => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return Err(self.err("expected ',' or '}'")),
            }
        }
    }
}

fn duplicate(seen: &mut u32, bit: u32, name: &str) -> Result<(), RecordError> {
    if *seen & (1 << bit) != 0 {
        return Err(RecordError::Invalid(format!("duplicate field `{name}`")));
    }
    *seen |= 1 << bit;
    Ok(())
}

fn scan_identity<'a>(c: &mut Cursor<'a>) -> Result<Option<IdentityFields<'a>>, RecordError> {
    match c.peek() {
        Some(b'n') => return c.literal(b"null").map(|_| None),
        Some(b'{') => {}
        _ => return Err(c.type_error("userIdentity", "an object")),
    }
    let mut u = IdentityFields::default();
    let mut seen = 0u32;
    c.object(|c, key| {
        let (bit, name, slot) = match key {
            b"type" => (0, "userIdentity.type", &mut u.kind),
            b"arn" => (1, "userIdentity.arn", &mut u.arn),
            b"principalId" => (2, "userIdentity.principalId", &mut u.principal_id),
            b"accessKeyId" => (3, "userIdentity.accessKeyId", &mut u.access_key_id),
            b"invokedBy" => (4, "userIdentity.invokedBy", &mut u.invoked_by),
            b"accountId" => (5, "userIdentity.accountId", &mut u.account_id),
            _ => return c.skip_value(),
        };
        duplicate(&mut seen, bit, name)?;
        *slot = c.opt_string(name)?;
        Ok(())
    })?;
    Ok(Some(u))
}

fn scan_console_flag(c: &mut Cursor<'_>) -> Result<Option<bool>, RecordError> {
    match c.peek() {
        Some(b'"') => Ok(Some(c.string()?.as_bytes().eq_ignore_ascii_case(b"true"))),
        Some(b't') => c.literal(b"true").map(|_| Some(true)),
        Some(b'f') => c.literal(b"false").map(|_| Some(false)),
        Some(b'n') => c.literal(b"null").map(|_| None),
        _ => Err(c.type_error("sessionCredentialFromConsole", "a boolean or a string")),
    }
}

/// A record scanned in place: the members the rules read, borrowed from
/// its bytes. Turn it into an [`Event`] with [`Scanned::into_event`].
#[derive(Debug)]
pub struct Scanned<'a> {
    fields: Fields<'a>,
    bytes: &'a [u8],
}

impl<'a> Scanned<'a> {
    /// The record's bytes, from its `{` to its `}`.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Check the required members and intern the strings.
    pub fn into_event(self, interner: &mut Interner) -> Result<Event, RecordError> {
        build(self.fields, self.bytes, interner)
    }
}

/// Scan the record that starts at `bytes[0]` (after optional whitespace) and
/// stop after its closing brace; whatever follows is not looked at.
pub fn scan_prefix(bytes: &[u8]) -> Result<Scanned<'_>, RecordError> {
    let mut c = Cursor { b: bytes, i: 0 };
    c.ws();
    let start = c.i;
    let fields = scan_object(&mut c)?;
    Ok(Scanned {
        fields,
        bytes: &bytes[start..c.i],
    })
}

/// One pass over a record object: the members the rules read, borrowed.
fn scan_object<'a>(c: &mut Cursor<'a>) -> Result<Fields<'a>, RecordError> {
    let mut f = Fields::default();
    let mut seen = 0u32;
    if c.peek() != Some(b'{') {
        return Err(RecordError::Invalid(format!(
            "a record must be a JSON object, found {}",
            c.found()
        )));
    }
    c.object(|c, key| {
        let (bit, name, slot) = match key {
            b"eventTime" => (0, "eventTime", &mut f.event_time),
            b"eventName" => (1, "eventName", &mut f.event_name),
            b"eventSource" => (2, "eventSource", &mut f.event_source),
            b"awsRegion" => (3, "awsRegion", &mut f.aws_region),
            b"sourceIPAddress" => (4, "sourceIPAddress", &mut f.source_ip),
            b"userAgent" => (5, "userAgent", &mut f.user_agent),
            b"errorCode" => (6, "errorCode", &mut f.error_code),
            b"eventID" => (7, "eventID", &mut f.event_id),
            b"recipientAccountId" => (8, "recipientAccountId", &mut f.recipient_account_id),
            b"userIdentity" => {
                duplicate(&mut seen, 9, "userIdentity")?;
                f.identity = scan_identity(c)?;
                return Ok(());
            }
            b"sessionCredentialFromConsole" => {
                duplicate(&mut seen, 10, "sessionCredentialFromConsole")?;
                f.console_session = scan_console_flag(c)?;
                return Ok(());
            }
            _ => return c.skip_value(),
        };
        duplicate(&mut seen, bit, name)?;
        *slot = c.opt_string(name)?;
        Ok(())
    })?;
    Ok(f)
}

/// A whole record: one object and nothing else but whitespace.
fn scan(bytes: &[u8]) -> Result<Fields<'_>, RecordError> {
    let mut c = Cursor { b: bytes, i: 0 };
    c.ws();
    let f = scan_object(&mut c)?;
    c.ws();
    if c.i != bytes.len() {
        return Err(c.err("trailing characters after the record"));
    }
    Ok(f)
}

/// Parse one record. Extra fields are ignored; identity falls back from
/// `arn` to `principalId`, `accessKeyId`, then `invokedBy`.
pub fn parse_record(bytes: &[u8], interner: &mut Interner) -> Result<Event, RecordError> {
    build(scan(bytes)?, bytes, interner)
}

fn build(raw: Fields<'_>, bytes: &[u8], interner: &mut Interner) -> Result<Event, RecordError> {
    let time_text = raw.event_time.ok_or(RecordError::Missing("eventTime"))?;
    let time_ms = std::str::from_utf8(time_text.as_bytes())
        .ok()
        .and_then(parse_rfc3339_ms)
        .ok_or_else(|| {
            RecordError::BadTime(
                String::from_utf8_lossy(time_text.as_bytes())
                    .chars()
                    .take(64)
                    .collect(),
            )
        })?;
    let name = non_empty(raw.event_name).ok_or(RecordError::Missing("eventName"))?;
    let source = non_empty(raw.event_source).ok_or(RecordError::Missing("eventSource"))?;
    let id = match &raw.event_id {
        Some(s) => parse_uuid_bytes(s.as_bytes()).unwrap_or_else(|| fnv128(s.as_bytes())),
        // No eventID: derive one from the bytes so duplicates still collapse.
        None => fnv128(bytes),
    };
    let (identity, identity_source, identity_type, access_key_id, ident_account) =
        match raw.identity {
            Some(u) => {
                let (key, src, field) = if let Some(a) = non_empty(u.arn) {
                    (Some(a), IdentitySource::Arn, "userIdentity.arn")
                } else if let Some(p) = non_empty(u.principal_id) {
                    (
                        Some(p),
                        IdentitySource::PrincipalId,
                        "userIdentity.principalId",
                    )
                } else if let Some(k) = u.access_key_id.as_ref().filter(|s| !s.is_empty()) {
                    (
                        Some(k.clone()),
                        IdentitySource::AccessKeyId,
                        "userIdentity.accessKeyId",
                    )
                } else if let Some(s) = non_empty(u.invoked_by) {
                    (Some(s), IdentitySource::InvokedBy, "userIdentity.invokedBy")
                } else {
                    (None, IdentitySource::None, "")
                };
                (
                    interner.opt_text::<COUNTED>(key, field)?,
                    src,
                    interner.opt_text::<PINNED>(u.kind, "userIdentity.type")?,
                    interner.opt_text::<COUNTED>(u.access_key_id, "userIdentity.accessKeyId")?,
                    u.account_id,
                )
            }
            None => (None, IdentitySource::None, None, None, None),
        };
    let account = match non_empty(raw.recipient_account_id) {
        Some(a) => interner
            .text::<PINNED>(&a, "recipientAccountId")
            .map(Some)?,
        None => interner.opt_text::<PINNED>(ident_account, "userIdentity.accountId")?,
    };
    Ok(Event {
        time_ms,
        id,
        name: interner.text::<PINNED>(&name, "eventName")?,
        source: interner.text::<PINNED>(&source, "eventSource")?,
        region: match interner.opt_text::<PINNED>(raw.aws_region, "awsRegion")? {
            Some(r) => r,
            None => Sym::empty(),
        },
        source_ip: interner.opt_text::<COUNTED>(raw.source_ip, "sourceIPAddress")?,
        user_agent: interner.opt_text::<COUNTED>(raw.user_agent, "userAgent")?,
        error_code: interner.opt_text::<PINNED>(raw.error_code, "errorCode")?,
        account_id: account,
        identity: match identity {
            Some(i) => i,
            None => Sym::empty(),
        },
        identity_source,
        identity_type,
        access_key_id,
        console_session: raw.console_session.unwrap_or(false),
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
    fn low_cardinality_fields_are_pinned_the_rest_counted() {
        // Texts of their own, so no other test's values decide the outcome.
        let rec = r#"{"userIdentity":{"type":"PinTestType","arn":"arn:aws:iam::1:user/pin-test","accountId":"pin-test-account","accessKeyId":"AKIAPINTEST"},"eventTime":"2023-07-10T12:11:15Z","eventSource":"pintest.amazonaws.com","eventName":"PinTestCall","awsRegion":"pin-test-1","sourceIPAddress":"198.51.100.77","userAgent":"pin-test-agent/1","errorCode":"PinTestDenied"}"#;
        // Twice: the second read is a hit in the interner's cache.
        let mut interner = Interner::default();
        for _ in 0..2 {
            let e = parse_record(rec.as_bytes(), &mut interner).unwrap();
            for (what, s) in [
                ("name", &e.name),
                ("source", &e.source),
                ("region", &e.region),
                ("error code", e.error_code.as_ref().unwrap()),
                ("identity type", e.identity_type.as_ref().unwrap()),
                ("account", e.account_id.as_ref().unwrap()),
            ] {
                assert!(s.is_pinned(), "{what} pinned");
            }
            for (what, s) in [
                ("identity", &e.identity),
                ("ip", e.source_ip.as_ref().unwrap()),
                ("user agent", e.user_agent.as_ref().unwrap()),
                ("access key", e.access_key_id.as_ref().unwrap()),
            ] {
                assert!(!s.is_pinned(), "{what} counted");
            }
        }
        // A counted value met later in a pinned field is pinned then.
        let ip = interner.intern("198.51.100.78");
        assert!(!ip.is_pinned());
        let rec = r#"{"eventTime":"2023-07-10T12:11:15Z","eventSource":"s3.amazonaws.com","eventName":"198.51.100.78"}"#;
        let e = parse_record(rec.as_bytes(), &mut interner).unwrap();
        assert!(e.name.is_pinned() && ip.is_pinned());
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
        assert!(
            e.to_string()
                .contains("field `eventName`: expected a string, found a number"),
            "{e}"
        );
        let bad_utf8 = b"{\"eventTime\":\"2023-07-10T12:11:15Z\",\"eventSource\":\"s\",\"eventName\":\"\xff\xfe\"}";
        let e = parse_record(bad_utf8, &mut Interner::default()).unwrap_err();
        assert_eq!(e.reason(), "invalid_json");
    }

    /// The serde_json implementation this scanner replaced, kept as the
    /// reference the scanner must agree with.
    mod reference {
        use super::super::{Fields, IdentityFields, Text};
        use serde::Deserialize;
        use std::borrow::Cow;

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

        #[derive(Deserialize)]
        #[serde(untagged)]
        enum BoolOrString<'a> {
            Bool(bool),
            #[serde(borrow)]
            Str(Cow<'a, str>),
        }

        fn t(v: Option<Cow<'_, str>>) -> Option<Text<'static>> {
            v.map(|s| Text::Owned(s.into_owned()))
        }

        pub fn scan(bytes: &[u8]) -> Option<Fields<'static>> {
            let r: RawRecord<'_> = serde_json::from_slice(bytes).ok()?;
            Some(Fields {
                event_time: t(r.event_time),
                event_name: t(r.event_name),
                event_source: t(r.event_source),
                aws_region: t(r.aws_region),
                source_ip: t(r.source_ip_address),
                user_agent: t(r.user_agent),
                error_code: t(r.error_code),
                event_id: t(r.event_id),
                recipient_account_id: t(r.recipient_account_id),
                identity: r.user_identity.map(|u| IdentityFields {
                    kind: t(u.kind),
                    arn: t(u.arn),
                    principal_id: t(u.principal_id),
                    access_key_id: t(u.access_key_id),
                    invoked_by: t(u.invoked_by),
                    account_id: t(u.account_id),
                }),
                console_session: r.session_credential_from_console.map(|v| match v {
                    BoolOrString::Bool(b) => b,
                    BoolOrString::Str(s) => s.eq_ignore_ascii_case("true"),
                }),
            })
        }
    }

    /// Every record of the bundled datasets and samples, compact and pretty.
    fn corpus() -> Vec<Vec<u8>> {
        use std::io::Read;
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = Vec::new();
        let mut dirs = vec![root.join("tests/data"), root.join("samples")];
        while let Some(d) = dirs.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    dirs.push(p);
                } else if p.to_string_lossy().ends_with(".json")
                    || p.to_string_lossy().ends_with(".json.gz")
                {
                    files.push(p);
                }
            }
        }
        let mut out = Vec::new();
        for f in files {
            let mut bytes = std::fs::read(&f).unwrap();
            if crate::decode::is_gzip(&bytes) {
                let mut plain = Vec::new();
                flate2::read::MultiGzDecoder::new(&bytes[..])
                    .read_to_end(&mut plain)
                    .unwrap();
                bytes = plain;
            }
            let values: Vec<serde_json::Value> = match serde_json::from_slice(&bytes) {
                Ok(serde_json::Value::Object(mut o)) if o.contains_key("Records") => {
                    match o.remove("Records") {
                        Some(serde_json::Value::Array(a)) => a,
                        _ => vec![],
                    }
                }
                Ok(serde_json::Value::Array(a)) => a,
                Ok(v) => vec![v],
                Err(_) => serde_json::Deserializer::from_slice(&bytes)
                    .into_iter()
                    .map(|v| v.unwrap())
                    .collect(),
            };
            for v in values {
                out.push(serde_json::to_vec(&v).unwrap());
                out.push(serde_json::to_vec_pretty(&v).unwrap());
            }
        }
        out
    }

    #[test]
    fn scanner_agrees_with_serde_on_every_bundled_record() {
        let corpus = corpus();
        assert!(corpus.len() > 2_000, "corpus has {} records", corpus.len());
        for r in &corpus {
            let want = reference::scan(r).expect("the reference parses bundled records");
            assert_eq!(scan(r).unwrap(), want, "{}", String::from_utf8_lossy(r));
        }
    }

    /// Where serde accepts a damaged record, the scanner must read the same
    /// fields; wherever it fails, it must fail with an error, never a panic.
    #[test]
    fn damaged_records_never_panic_and_agree_when_valid() {
        let corpus = corpus();
        let mut rng = fastrand::Rng::with_seed(7);
        let mut accepted_by_both = 0;
        for r in corpus.iter().step_by(7).take(400) {
            for _ in 0..40 {
                let mut m = r.clone();
                match rng.u8(0..4) {
                    0 => m.truncate(rng.usize(0..m.len())),
                    1 => {
                        let i = rng.usize(0..m.len());
                        const POOL: &[u8] = b"{}[]\",:\\ ax0\xff";
                        m[i] = POOL[rng.usize(0..POOL.len())];
                    }
                    2 => {
                        let i = rng.usize(0..m.len());
                        m.remove(i);
                    }
                    _ => {
                        let i = rng.usize(0..m.len());
                        const POOL: &[u8] = b"{}[]\",:\\";
                        m.insert(i, POOL[rng.usize(0..POOL.len())]);
                    }
                }
                let ours = scan(&m);
                if let Some(want) = reference::scan(&m) {
                    assert_eq!(ours.unwrap(), want, "{}", String::from_utf8_lossy(&m));
                    accepted_by_both += 1;
                }
            }
        }
        assert!(accepted_by_both > 100, "{accepted_by_both}");
    }

    #[test]
    fn structural_errors_are_reported_with_their_position() {
        let cases: &[(&str, &str)] = &[
            (r#"{"eventName":"X""#, "at byte"),
            (r#"{"eventName":"X",}"#, "expected a member name"),
            (r#"{"eventName" "X"}"#, "expected ':'"),
            (r#"{"requestParameters":{"a":[1,2}}"#, "mismatched bracket"),
            (
                r#"{"requestParameters":{"a":"open}}"#,
                "unterminated string",
            ),
            (r#"{"eventName":"X"} extra"#, "trailing characters"),
            (
                r#"{"eventName":"X","eventName":"Y"}"#,
                "duplicate field `eventName`",
            ),
            (
                r#"{"userIdentity":"root"}"#,
                "field `userIdentity`: expected an object",
            ),
            (r#"[1,2]"#, "a record must be a JSON object, found an array"),
            (r#"{"readOnly":tru}"#, "invalid literal"),
        ];
        for (text, want) in cases {
            let e = scan(text.as_bytes()).unwrap_err();
            assert_eq!(e.reason(), "invalid_json");
            assert!(e.to_string().contains(want), "{text}: {e}");
        }
        let deep = format!("{{\"x\":{}{}}}", "[".repeat(200), "]".repeat(200));
        assert!(
            scan(deep.as_bytes())
                .unwrap_err()
                .to_string()
                .contains("nesting")
        );
    }

    #[test]
    fn interner_shares_and_stays_bounded() {
        let mut i = Interner::with_capacity(2);
        let a = i.intern("a");
        assert!(Sym::ptr_eq(&a, &i.intern("a")));
        i.intern("b");
        i.intern("c");
        assert!(i.map.len() <= 2);
        // Another thread's cache, or this one after a clear, hands out the
        // same symbol: the table behind them is process-wide.
        assert!(Sym::ptr_eq(&a, &i.intern("a")));
        assert!(Sym::ptr_eq(&a, &Interner::default().intern("a")));
    }
}
