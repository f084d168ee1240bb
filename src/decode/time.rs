//! Event-time parsing and formatting (UTC, millisecond precision).
//!
//! CloudTrail writes `eventTime` as `2023-07-10T12:11:15Z`; a hand-written
//! parser for that shape is several times faster than a general RFC 3339
//! parser, which remains the fallback for anything else.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

fn digits(b: &[u8]) -> Option<i64> {
    let mut v = 0i64;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (c - b'0') as i64;
    }
    Some(v)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parse an RFC 3339 timestamp into Unix milliseconds.
pub fn parse_rfc3339_ms(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    // Fast path: YYYY-MM-DDTHH:MM:SS[.fraction]Z
    if b.len() >= 20
        && b[4] == b'-'
        && b[7] == b'-'
        && (b[10] == b'T' || b[10] == b't')
        && b[13] == b':'
        && b[16] == b':'
        && (b[b.len() - 1] == b'Z' || b[b.len() - 1] == b'z')
    {
        let y = digits(&b[0..4])?;
        let mo = digits(&b[5..7])?;
        let d = digits(&b[8..10])?;
        let h = digits(&b[11..13])?;
        let mi = digits(&b[14..16])?;
        let se = digits(&b[17..19])?;
        if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
            return None;
        }
        let mut ms = 0i64;
        let rest = &b[19..b.len() - 1];
        if !rest.is_empty() {
            if rest[0] != b'.' || rest.len() < 2 {
                return None;
            }
            let frac = &rest[1..];
            let take = frac.len().min(3);
            ms = digits(&frac[..take])?;
            for _ in take..3 {
                ms *= 10;
            }
            digits(&frac[take..])?;
        }
        let days = days_from_civil(y, mo, d);
        return Some(((days * 24 + h) * 60 + mi) * 60_000 + se * 1000 + ms);
    }
    let t = OffsetDateTime::parse(s, &Rfc3339).ok()?;
    Some((t.unix_timestamp_nanos() / 1_000_000) as i64)
}

/// Format Unix milliseconds as `2023-07-10T12:11:15.000Z`.
pub fn format_ms(ms: i64) -> String {
    match OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            t.year(),
            t.month() as u8,
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            t.millisecond()
        ),
        Err(_) => ms.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cloudtrail_times() {
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339_ms("2023-07-10T12:11:15Z"),
            Some(1_688_991_075_000)
        );
        assert_eq!(
            parse_rfc3339_ms("2023-07-10T12:11:15.5Z"),
            Some(1_688_991_075_500)
        );
        assert_eq!(
            parse_rfc3339_ms("2023-07-10T12:11:15.123456Z"),
            Some(1_688_991_075_123)
        );
        // Offsets go through the general parser.
        assert_eq!(
            parse_rfc3339_ms("2023-07-10T14:11:15+02:00"),
            Some(1_688_991_075_000)
        );
        assert_eq!(
            parse_rfc3339_ms("2024-02-29T00:00:00Z"),
            Some(1_709_164_800_000)
        );
    }

    #[test]
    fn rejects_garbage() {
        for s in [
            "",
            "yesterday",
            "2023-13-10T12:11:15Z",
            "2023-07-10T12:11:1xZ",
            "2023-07-10 12:11:15",
        ] {
            assert_eq!(parse_rfc3339_ms(s), None, "{s}");
        }
    }

    #[test]
    fn formats_with_millis() {
        assert_eq!(format_ms(1_688_991_075_500), "2023-07-10T12:11:15.500Z");
    }
}
