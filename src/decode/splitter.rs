//! Streaming record splitter: finds the byte range of each CloudTrail record
//! in a decompressed byte stream without parsing or holding the whole object.
//!
//! Three shapes are accepted, so `replay` works on what people actually have:
//! CloudTrail's own `{"Records":[{...},...]}`, a top-level JSON array of
//! records (Stratus Red Team, `jq -s` output), and newline-delimited records.
//! Only structural bytes are tracked (braces, brackets, strings; string
//! contents are jumped over with `memchr`), so one malformed record costs one
//! record. A record that lies whole inside the current chunk is scanned in
//! place by [`scan_prefix`] (one pass over its bytes); one that spans chunks,
//! or does not scan cleanly, is captured byte by byte and parsed afterwards.

use memchr::memchr2;

use super::record::{Scanned, scan_prefix};

/// What the splitter found.
// A scanned record is large but handed over once, by value; boxing it would
// cost an allocation per record.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Piece<'a> {
    /// A record that lay whole inside one chunk, already scanned in place
    /// (the fast path: one pass over its bytes).
    Scanned(Scanned<'a>),
    /// The complete bytes of one record (a JSON object) that still needs
    /// parsing: it spanned chunks, or did not scan cleanly and is handed on so
    /// the parser reports why.
    Record(&'a [u8]),
    /// A record larger than the configured cap; skipped.
    Oversized,
    /// An array element that is not an object; skipped.
    NonObject,
}

impl<'a> Piece<'a> {
    /// A record's bytes, whichever path found it; `None` for skipped pieces.
    pub fn record_bytes(&self) -> Option<&'a [u8]> {
        match self {
            Piece::Scanned(r) => Some(r.bytes()),
            Piece::Record(b) => Some(b),
            Piece::Oversized | Piece::NonObject => None,
        }
    }
}

/// A structural problem that stops the object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SplitError {
    /// The stream does not start like JSON.
    #[error("not JSON: unexpected byte 0x{byte:02x} at offset {offset}")]
    NotJson {
        /// The byte.
        byte: u8,
        /// Its offset in the decompressed stream.
        offset: u64,
    },
    /// A closing bracket with no opener.
    #[error("malformed JSON: unbalanced '{}' at offset {offset}", *byte as char)]
    Unbalanced {
        /// The byte.
        byte: u8,
        /// Its offset in the decompressed stream.
        offset: u64,
    },
    /// The stream ended inside a value.
    #[error("truncated JSON: stream ended inside a value (nesting depth {depth})")]
    Truncated {
        /// Nesting depth at the end.
        depth: u32,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Between top-level values.
    Start,
    /// Inside a top-level array: records are its elements.
    TopArray,
    /// Inside a top-level object that may be a record (NDJSON) or a
    /// `{"Records": [...]}` wrapper; captured until we know.
    Sniff,
    /// Inside the wrapper's `Records` array: records are its elements.
    RecordsArray,
    /// Inside the wrapper after its `Records` array.
    WrapperRest,
}

/// Push-based splitter; feed it chunks, then call [`RecordSplitter::finish`].
#[derive(Debug)]
pub struct RecordSplitter {
    max_record_bytes: usize,
    mode: Mode,
    depth: u32,
    in_string: bool,
    escape: bool,
    /// Depth at which record objects open (1 for a top array, 2 for Records).
    record_depth: u32,
    /// Inside a record (or a sniffed top-level object) being captured.
    capturing: bool,
    /// The current record exceeded the cap; its bytes are being skipped.
    oversized: bool,
    /// Inside a non-object array element at record depth.
    in_scalar: bool,
    buf: Vec<u8>,
    /// Content of the string being read at depth 1 of a sniffed object
    /// (first 8 bytes), to recognise the `Records` key.
    key: [u8; 8],
    key_len: usize,
    key_is_records: bool,
    records_value_next: bool,
    offset: u64,
    /// Bytes of a leading UTF-8 byte-order mark matched so far; [`BOM`]'s
    /// length once the stream's start is decided. A mark split between two
    /// reads is matched across them, so where a read ends cannot decide
    /// whether an object parses.
    bom_matched: usize,
}

const RECORDS: &[u8] = b"Records";

/// The UTF-8 byte-order mark some tools write before JSON.
const BOM: &[u8] = &[0xEF, 0xBB, 0xBF];

impl RecordSplitter {
    /// A splitter that skips records over `max_record_bytes`.
    pub fn new(max_record_bytes: usize) -> Self {
        Self {
            max_record_bytes,
            mode: Mode::Start,
            depth: 0,
            in_string: false,
            escape: false,
            record_depth: 0,
            capturing: false,
            oversized: false,
            in_scalar: false,
            buf: Vec::new(),
            key: [0; 8],
            key_len: 0,
            key_is_records: false,
            records_value_next: false,
            offset: 0,
            bom_matched: 0,
        }
    }

    /// Feed the next chunk; `out` is called for every piece it completes.
    pub fn feed(
        &mut self,
        mut chunk: &[u8],
        out: &mut impl FnMut(Piece<'_>),
    ) -> Result<(), SplitError> {
        if self.bom_matched < BOM.len() {
            while let Some((&b, rest)) = chunk.split_first() {
                if self.bom_matched == BOM.len() || b != BOM[self.bom_matched] {
                    break;
                }
                chunk = rest;
                self.bom_matched += 1;
                self.offset += 1;
            }
            if chunk.is_empty() && self.bom_matched < BOM.len() {
                // The read ended inside what may still be a mark.
                return Ok(());
            }
            if self.bom_matched != 0 && self.bom_matched < BOM.len() {
                // A mark's first bytes, then something else: not JSON, as
                // when the same bytes arrive in one read.
                self.bom_matched = BOM.len();
                return Err(Self::partial_bom());
            }
            self.bom_matched = BOM.len();
        }
        // Start of the part of `chunk` that belongs to the record being captured.
        let mut cap_start: Option<usize> = if self.capturing && !self.oversized {
            Some(0)
        } else {
            None
        };
        let mut i = 0;
        while i < chunk.len() {
            if self.in_string && !self.escape && !(self.mode == Mode::Sniff && self.depth == 1) {
                // Nothing inside a string matters but its end (or an escape).
                match memchr2(b'"', b'\\', &chunk[i..]) {
                    Some(k) => i += k,
                    None => break,
                }
            }
            let c = chunk[i];
            if self.in_string {
                if self.escape {
                    self.escape = false;
                } else if c == b'\\' {
                    self.escape = true;
                } else if c == b'"' {
                    self.in_string = false;
                    if self.mode == Mode::Sniff && self.depth == 1 {
                        self.key_is_records = &self.key[..self.key_len.min(8)] == RECORDS
                            && self.key_len == RECORDS.len();
                    }
                } else if self.mode == Mode::Sniff && self.depth == 1 {
                    if self.key_len < 8 {
                        self.key[self.key_len] = c;
                    }
                    self.key_len += 1;
                }
                i += 1;
                continue;
            }
            if c == b'{'
                && matches!(self.mode, Mode::TopArray | Mode::RecordsArray)
                && self.depth == self.record_depth
                && !self.in_scalar
                && let Some(len) = self.fast_record(&chunk[i..], out)
            {
                i += len;
                continue;
            }
            match c {
                b' ' | b'\t' | b'\n' | b'\r' => {}
                b'"' => {
                    self.in_string = true;
                    self.records_value_next = false;
                    if self.mode == Mode::Sniff && self.depth == 1 {
                        self.key_len = 0;
                        self.key_is_records = false;
                    }
                    // A string element of a records array is skipped.
                    self.in_scalar_start(out);
                }
                b'{' | b'[' => {
                    match self.mode {
                        Mode::Start => {
                            if c == b'[' {
                                self.mode = Mode::TopArray;
                                self.record_depth = 1;
                            } else {
                                self.mode = Mode::Sniff;
                                self.capturing = true;
                                self.oversized = false;
                                self.buf.clear();
                                cap_start = Some(i);
                                self.key_len = 0;
                                self.key_is_records = false;
                                self.records_value_next = false;
                            }
                        }
                        Mode::Sniff if self.depth == 1 && c == b'[' && self.records_value_next => {
                            // `"Records": [` - the object is a wrapper, not a record.
                            self.mode = Mode::RecordsArray;
                            self.record_depth = 2;
                            self.capturing = false;
                            self.oversized = false;
                            self.buf.clear();
                            cap_start = None;
                        }
                        Mode::TopArray | Mode::RecordsArray
                            if self.depth == self.record_depth && !self.in_scalar =>
                        {
                            if c == b'{' {
                                self.capturing = true;
                                self.oversized = false;
                                self.buf.clear();
                                cap_start = Some(i);
                            } else {
                                self.in_scalar = true;
                                out(Piece::NonObject);
                            }
                        }
                        _ => {}
                    }
                    self.records_value_next = false;
                    self.depth += 1;
                }
                b'}' | b']' => {
                    if self.depth == 0 {
                        return Err(SplitError::Unbalanced {
                            byte: c,
                            offset: self.offset + i as u64,
                        });
                    }
                    self.depth -= 1;
                    self.records_value_next = false;
                    match self.mode {
                        Mode::Sniff if self.depth == 0 => {
                            // A top-level object without `Records`: one NDJSON record.
                            self.emit(chunk, &mut cap_start, i, out);
                            self.mode = Mode::Start;
                        }
                        Mode::TopArray | Mode::RecordsArray
                            if self.depth == self.record_depth && self.capturing =>
                        {
                            self.emit(chunk, &mut cap_start, i, out);
                        }
                        Mode::TopArray | Mode::RecordsArray
                            if self.depth == self.record_depth - 1 =>
                        {
                            // The records array closed.
                            self.in_scalar = false;
                            self.mode = if self.mode == Mode::TopArray {
                                Mode::Start
                            } else {
                                Mode::WrapperRest
                            };
                        }
                        Mode::WrapperRest if self.depth == 0 => self.mode = Mode::Start,
                        _ => {}
                    }
                }
                b':' => {
                    if self.mode == Mode::Sniff && self.depth == 1 && self.key_is_records {
                        self.records_value_next = true;
                        self.key_is_records = false;
                    }
                }
                b',' => {
                    self.records_value_next = false;
                    if self.depth == self.record_depth {
                        self.in_scalar = false;
                    }
                }
                _ => {
                    self.records_value_next = false;
                    if self.mode == Mode::Start {
                        return Err(SplitError::NotJson {
                            byte: c,
                            offset: self.offset + i as u64,
                        });
                    }
                    self.in_scalar_start(out);
                }
            }
            i += 1;
        }
        if let Some(s) = cap_start {
            // Enforce the cap per chunk: memory stays within cap + one chunk.
            if self.buf.len() + (chunk.len() - s) > self.max_record_bytes {
                self.oversized = true;
                self.buf = Vec::new();
            } else {
                self.buf.extend_from_slice(&chunk[s..]);
            }
        }
        self.offset += chunk.len() as u64;
        Ok(())
    }

    /// Fast path at the `{` of a record: scan it in place when it ends inside
    /// this chunk and scans cleanly; returns its length. Otherwise `None`, and
    /// the byte-level path captures it (across chunks if need be).
    fn fast_record(&mut self, rest: &[u8], out: &mut impl FnMut(Piece<'_>)) -> Option<usize> {
        let rec = scan_prefix(rest).ok()?;
        let len = rec.bytes().len();
        if len > self.max_record_bytes {
            out(Piece::Oversized);
        } else {
            out(Piece::Scanned(rec));
        }
        Some(len)
    }

    /// A non-object element starting at record depth (number, string, literal).
    fn in_scalar_start(&mut self, out: &mut impl FnMut(Piece<'_>)) {
        if matches!(self.mode, Mode::TopArray | Mode::RecordsArray)
            && self.depth == self.record_depth
            && !self.in_scalar
        {
            self.in_scalar = true;
            out(Piece::NonObject);
        }
    }

    fn emit(
        &mut self,
        chunk: &[u8],
        cap_start: &mut Option<usize>,
        i: usize,
        out: &mut impl FnMut(Piece<'_>),
    ) {
        self.capturing = false;
        if self.oversized {
            self.oversized = false;
            out(Piece::Oversized);
            return;
        }
        let start = cap_start.take().unwrap_or(0);
        if self.buf.len() + (i + 1 - start) > self.max_record_bytes {
            self.buf.clear();
            out(Piece::Oversized);
            return;
        }
        if self.buf.is_empty() {
            // Zero-copy: the whole record sits inside this chunk.
            out(Piece::Record(&chunk[start..=i]));
        } else {
            self.buf.extend_from_slice(&chunk[start..=i]);
            out(Piece::Record(&self.buf));
            self.buf.clear();
        }
    }

    /// Call at end of stream; reports a value left open (truncated input).
    pub fn finish(&self) -> Result<(), SplitError> {
        if self.bom_matched != 0 && self.bom_matched < BOM.len() {
            return Err(Self::partial_bom());
        }
        if self.depth != 0 || self.in_string {
            return Err(SplitError::Truncated { depth: self.depth });
        }
        Ok(())
    }

    /// The error for a stream that starts with part of a [`BOM`] only: its
    /// first byte is not JSON.
    fn partial_bom() -> SplitError {
        SplitError::NotJson {
            byte: BOM[0],
            offset: 0,
        }
    }

    /// Decompressed bytes seen so far.
    pub fn bytes_seen(&self) -> u64 {
        self.offset
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split_chunks(chunks: &[&[u8]], max: usize) -> (Vec<String>, Result<(), SplitError>) {
        let mut s = RecordSplitter::new(max);
        let mut got = Vec::new();
        for c in chunks {
            let r = s.feed(c, &mut |p| match p {
                Piece::Oversized => got.push("<oversized>".into()),
                Piece::NonObject => got.push("<nonobject>".into()),
                rec => got.push(String::from_utf8_lossy(rec.record_bytes().unwrap()).into_owned()),
            });
            if let Err(e) = r {
                return (got, Err(e));
            }
        }
        let r = s.finish();
        (got, r)
    }

    fn split(input: &str) -> (Vec<String>, Result<(), SplitError>) {
        split_chunks(&[input.as_bytes()], 1 << 20)
    }

    #[test]
    fn cloudtrail_wrapper() {
        let (r, e) = split(r#"{"Records":[{"a":1,"b":{"c":[1,2]}},{"a":"}]{\"x"}]}"#);
        assert_eq!(r, vec![r#"{"a":1,"b":{"c":[1,2]}}"#, r#"{"a":"}]{\"x"}"#]);
        assert!(e.is_ok());
    }

    #[test]
    fn wrapper_with_other_keys_before_and_after() {
        let (r, e) = split(r#"{"x":{"Records":[1]},"Records" : [ {"a":1} ],"y":[{"z":2}]}"#);
        assert_eq!(r, vec![r#"{"a":1}"#]);
        assert!(e.is_ok());
    }

    #[test]
    fn top_level_array_and_ndjson() {
        let (r, _) = split(r#"[{"a":1}, {"a":2}]"#);
        assert_eq!(r, vec![r#"{"a":1}"#, r#"{"a":2}"#]);
        let (r, e) = split("{\"a\":1}\n{\"a\":2}\n");
        assert_eq!(r, vec![r#"{"a":1}"#, r#"{"a":2}"#]);
        assert!(e.is_ok());
    }

    #[test]
    fn records_split_across_every_possible_chunk_boundary() {
        let input = br#"{"Records":[{"k":"v\"}","n":[1,{"m":2}]},{"k":"w"}]}"#;
        for cut in 0..input.len() {
            for cut2 in cut..input.len() {
                let (r, e) =
                    split_chunks(&[&input[..cut], &input[cut..cut2], &input[cut2..]], 1 << 20);
                assert_eq!(
                    r,
                    vec![r#"{"k":"v\"}","n":[1,{"m":2}]}"#, r#"{"k":"w"}"#],
                    "cuts {cut} {cut2}"
                );
                assert!(e.is_ok());
            }
        }
    }

    #[test]
    fn non_objects_are_reported_and_skipped() {
        let (r, e) = split(r#"{"Records":[1,"two",{"a":1},[3],null,{"b":2}]}"#);
        assert_eq!(
            r,
            vec![
                "<nonobject>",
                "<nonobject>",
                r#"{"a":1}"#,
                "<nonobject>",
                "<nonobject>",
                r#"{"b":2}"#
            ]
        );
        assert!(e.is_ok());
    }

    #[test]
    fn oversized_records_are_skipped_not_buffered() {
        let big = format!(
            r#"{{"Records":[{{"a":"{}"}},{{"b":1}}]}}"#,
            "x".repeat(5000)
        );
        let (r, e) = split_chunks(&[big.as_bytes()], 1024);
        assert_eq!(r, vec!["<oversized>", r#"{"b":1}"#]);
        assert!(e.is_ok());
        // Same when the big record spans chunks.
        let (a, b) = big.as_bytes().split_at(700);
        let (r, _) = split_chunks(&[a, b], 1024);
        assert_eq!(r, vec!["<oversized>", r#"{"b":1}"#]);
    }

    #[test]
    fn truncation_and_garbage_are_errors() {
        let (r, e) = split(r#"{"Records":[{"a":1},{"b":"#);
        assert_eq!(r, vec![r#"{"a":1}"#]);
        assert_eq!(e, Err(SplitError::Truncated { depth: 3 }));
        let (_, e) = split("hello");
        assert!(matches!(e, Err(SplitError::NotJson { byte: b'h', .. })));
        let (_, e) = split("]");
        assert!(matches!(e, Err(SplitError::Unbalanced { .. })));
        let (r, e) = split("");
        assert!(r.is_empty() && e.is_ok());
    }

    #[test]
    fn bom_is_skipped() {
        let mut v = vec![0xEF, 0xBB, 0xBF];
        v.extend_from_slice(br#"{"Records":[{"a":1}]}"#);
        let (r, e) = split_chunks(&[&v], 1 << 20);
        assert_eq!(r, vec![r#"{"a":1}"#]);
        assert!(e.is_ok());
    }

    /// Found by fuzzing (`fuzz/`, `split_chunks`): a mark split between
    /// reads was kept as data, so the object failed as "not JSON" or not
    /// depending on where the first read ended.
    #[test]
    fn a_bom_split_between_reads_is_skipped_and_a_partial_one_is_refused() {
        let mut v = vec![0xEF, 0xBB, 0xBF];
        v.extend_from_slice(br#"{"Records":[{"a":1}]}"#);
        let not_json = Err(SplitError::NotJson {
            byte: 0xEF,
            offset: 0,
        });
        for cut in 0..=v.len() {
            for second in [cut, cut + 1, v.len()] {
                let second = second.clamp(cut, v.len());
                let chunks = [&v[..cut], &v[cut..second], &v[second..]];
                let (r, e) = split_chunks(&chunks, 1 << 20);
                assert_eq!(r, vec![r#"{"a":1}"#], "cut at {cut}, {second}");
                assert!(e.is_ok(), "cut at {cut}, {second}: {e:?}");
            }
        }
        for bad in [
            &[0xEF][..],
            &[0xEF, 0xBB],
            &[0xEF, b'{'],
            &[0xEF, 0xBB, b'['],
        ] {
            assert_eq!(split_chunks(&[bad], 1 << 20), (vec![], not_json.clone()));
            let (head, tail) = bad.split_at(1);
            assert_eq!(
                split_chunks(&[head, tail], 1 << 20),
                (vec![], not_json.clone()),
                "{bad:x?} in two reads"
            );
        }
    }
}
