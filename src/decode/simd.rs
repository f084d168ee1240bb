//! The two scans that read most of a record's bytes, a block at a time:
//! skipping a nested value (an object or array no rule reads), and finding
//! where a string ends.
//!
//! Most of a CloudTrail record's bytes are in members the rules never look
//! at: `requestParameters`, `responseElements`, `sessionContext`,
//! `tlsDetails`, `resources`. Walking them string by string was about a third
//! of parsing's instructions (callgrind), most of it the fixed cost of each
//! short string. Here a 64-byte block is classified at once into bit masks
//! (quotes, backslashes, brackets), the bytes inside strings are masked out
//! with a prefix XOR of the quote mask, and only the brackets outside strings
//! are visited one by one, to match them.
//!
//! The checks are exactly those of the byte-by-byte walk this replaced, which
//! the tests keep as the reference and compare against: strings must end (a
//! backslash inside a string escapes the byte after it; outside strings it
//! is an ordinary byte), brackets must match, nesting is at most
//! [`MAX_DEPTH`]; errors name the same byte.
//!
//! On x86_64 the blocks are classified with SSE2, which every x86_64 CPU
//! has; elsewhere one byte at a time (the same masks, tested to agree).

// Only for calling the SSE2 functions, which need no more than the
// x86_64 baseline: see `classify_block` and `quote_or_backslash_16`.
#![allow(unsafe_code)]

/// Same nesting limit as serde_json's default recursion limit.
pub(super) const MAX_DEPTH: u32 = 128;

const BLOCK: usize = 64;

/// Why a nested value could not be skipped; positions index the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SkipError {
    /// The input ends inside the value, outside any string.
    End,
    /// The string opened at this byte runs to the end of the input.
    Unterminated(usize),
    /// A closing bracket of the other kind than the one it would close.
    Mismatch(usize),
    /// An opening bracket that would nest deeper than [`MAX_DEPTH`].
    TooDeep(usize),
}

/// One block's bytes of each kind that matters, bit `i` for byte `i`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Masks {
    quote: u64,
    backslash: u64,
    /// Bytes with `c | 0x26 == 0x7f`: the four brackets, and `Y`, `_`, `y`
    /// and DEL, which valid JSON has only inside strings. One compare finds
    /// them; the walk reads the byte to tell them apart.
    bracket: u64,
}

/// Skip the object or array that opens at `b[start]`: the index just after
/// its closing bracket.
pub(super) fn skip_nested(b: &[u8], start: usize) -> Result<usize, SkipError> {
    debug_assert!(matches!(b.get(start), Some(b'{' | b'[')));
    // Bit d is set when the bracket opened at depth d is '['.
    let mut kinds: u128 = 0;
    let mut depth: u32 = 0;
    let mut in_string = false;
    // A string's backslash was the previous block's last byte.
    let mut escape_first = false;
    let mut open_quote = 0usize;
    let mut base = start;
    while base < b.len() {
        let m = classify(&b[base..]);
        let quotes = if m.backslash == 0 && !escape_first {
            m.quote
        } else {
            real_quotes(&m, in_string, &mut escape_first)
        };
        // Bit i: byte i is inside a string (its opening quote included, its
        // closing quote not).
        let mut inside = prefix_xor(quotes);
        if in_string {
            inside = !inside;
        }
        let opening = quotes & inside;
        if opening != 0 {
            open_quote = base + (63 - opening.leading_zeros()) as usize;
        }
        in_string = inside >> 63 == 1;
        let mut brackets = m.bracket & !inside;
        while brackets != 0 {
            let i = brackets.trailing_zeros();
            brackets &= brackets - 1;
            let pos = base + i as usize;
            // In bounds: past the input's end the masks are empty.
            let c = b[pos];
            let square = c & 0x20 == 0;
            match c | 0x20 {
                b'{' => {
                    if depth == MAX_DEPTH {
                        return Err(SkipError::TooDeep(pos));
                    }
                    if square {
                        kinds |= 1 << depth;
                    } else {
                        kinds &= !(1 << depth);
                    }
                    depth += 1;
                }
                b'}' => {
                    // The first bracket opens, so a close always has a depth.
                    depth -= 1;
                    if ((kinds >> depth) & 1 == 1) != square {
                        return Err(SkipError::Mismatch(pos));
                    }
                    if depth == 0 {
                        return Ok(pos + 1);
                    }
                }
                _ => {}
            }
        }
        base += BLOCK;
    }
    if in_string {
        Err(SkipError::Unterminated(open_quote))
    } else {
        Err(SkipError::End)
    }
}

/// The quotes that open or close strings in a block with backslashes (or
/// whose first byte is escaped), in order: a backslash inside a string hides
/// the byte after it. `escape_first` carries an escape into the next block.
#[cold]
fn real_quotes(m: &Masks, mut in_string: bool, escape_first: &mut bool) -> u64 {
    let mut bits = m.quote | m.backslash;
    if std::mem::take(escape_first) {
        bits &= !1;
    }
    let mut real = 0;
    while bits != 0 {
        let i = bits.trailing_zeros();
        let bit = 1u64 << i;
        bits &= bits - 1;
        if m.quote & bit != 0 {
            real |= bit;
            in_string = !in_string;
        } else if in_string {
            if i == 63 {
                *escape_first = true;
            } else {
                bits &= !(bit << 1);
            }
        }
    }
    real
}

/// Bit i = XOR of bits 0..=i: set between an opening quote and its closing
/// one.
#[inline(always)]
fn prefix_xor(mut x: u64) -> u64 {
    x ^= x << 1;
    x ^= x << 2;
    x ^= x << 4;
    x ^= x << 8;
    x ^= x << 16;
    x ^= x << 32;
    x
}

/// The masks of the next block of `rest`; past its end, bytes count as
/// zeros, which are none of the kinds.
#[inline(always)]
fn classify(rest: &[u8]) -> Masks {
    match rest.first_chunk::<BLOCK>() {
        Some(block) => classify_block(block),
        None => {
            let mut block = [0u8; BLOCK];
            block[..rest.len()].copy_from_slice(rest);
            classify_block(&block)
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn classify_block(block: &[u8; BLOCK]) -> Masks {
    // SAFETY: the function needs SSE2 and nothing else; SSE2 is part of the
    // x86_64 baseline (every x86_64 CPU has it, and Rust's x86_64 targets
    // are built assuming it), so it is always available here.
    unsafe { sse2::classify(block) }
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn classify_block(block: &[u8; BLOCK]) -> Masks {
    classify_bytewise(block)
}

/// One byte at a time: the classifier on other architectures, and the
/// tests' reference for the SSE2 one.
#[cfg(any(test, not(target_arch = "x86_64")))]
fn classify_bytewise(block: &[u8; BLOCK]) -> Masks {
    let mut m = Masks::default();
    for (i, &c) in block.iter().enumerate() {
        let bit = 1u64 << i;
        match c {
            b'"' => m.quote |= bit,
            b'\\' => m.backslash |= bit,
            _ if c | 0x26 == 0x7f => m.bracket |= bit,
            _ => {}
        }
    }
    m
}

/// First `"` or `\\` in `hay`: 16 bytes per compare for the short strings
/// that are most of a record's (keys, names, ids), `memchr` past 64 bytes.
#[inline(always)]
pub(super) fn find_quote_or_backslash(hay: &[u8]) -> Option<usize> {
    let mut i = 0;
    while let Some(chunk) = hay[i..].first_chunk::<16>() {
        let m = quote_or_backslash_16(chunk);
        if m != 0 {
            return Some(i + m.trailing_zeros() as usize);
        }
        i += 16;
        if i == 64 {
            return memchr::memchr2(b'"', b'\\', &hay[i..]).map(|k| i + k);
        }
    }
    hay[i..]
        .iter()
        .position(|&c| c == b'"' || c == b'\\')
        .map(|k| i + k)
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn quote_or_backslash_16(b: &[u8; 16]) -> u32 {
    // SAFETY: as for `classify_block`: SSE2 is always there on x86_64.
    unsafe { sse2::quote_or_backslash(b) }
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn quote_or_backslash_16(b: &[u8; 16]) -> u32 {
    quote_or_backslash_bytewise(b)
}

/// Bit i set when `b[i]` is `"` or `\\`: the finder on other
/// architectures, and the tests' reference for the SSE2 one.
#[cfg(any(test, not(target_arch = "x86_64")))]
fn quote_or_backslash_bytewise(b: &[u8; 16]) -> u32 {
    b.iter().enumerate().fold(0, |m, (i, &c)| {
        m | (u32::from(c == b'"' || c == b'\\') << i)
    })
}

#[cfg(target_arch = "x86_64")]
mod sse2 {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_movemask_epi8, _mm_or_si128, _mm_set_epi64x, _mm_set1_epi8,
    };

    use super::{BLOCK, Masks};

    #[target_feature(enable = "sse2")]
    #[inline]
    fn load(b: &[u8; 16]) -> __m128i {
        let (lo, hi) = b.split_at(8);
        let word = |s: &[u8]| {
            let mut w = [0u8; 8];
            w.copy_from_slice(s);
            i64::from_le_bytes(w)
        };
        // One unaligned 16-byte load once compiled; no pointer needed.
        _mm_set_epi64x(word(hi), word(lo))
    }

    #[target_feature(enable = "sse2")]
    #[inline]
    fn bits(v: __m128i) -> u64 {
        _mm_movemask_epi8(v) as u32 as u64
    }

    /// Four 16-byte compares per kind; `c | 0x26` folds the four brackets
    /// onto 0x7f (and `Y`, `_`, `y`, which the walk tells apart).
    #[target_feature(enable = "sse2")]
    #[inline]
    pub(super) fn classify(block: &[u8; BLOCK]) -> Masks {
        let quote = _mm_set1_epi8(b'"' as i8);
        let backslash = _mm_set1_epi8(b'\\' as i8);
        let fold = _mm_set1_epi8(0x26);
        let bracket = _mm_set1_epi8(0x7f);
        let mut m = Masks::default();
        let (chunks, _) = block.as_chunks::<16>();
        for (k, chunk) in chunks.iter().enumerate() {
            let v = load(chunk);
            let at = 16 * k;
            m.quote |= bits(_mm_cmpeq_epi8(v, quote)) << at;
            m.backslash |= bits(_mm_cmpeq_epi8(v, backslash)) << at;
            m.bracket |= bits(_mm_cmpeq_epi8(_mm_or_si128(v, fold), bracket)) << at;
        }
        m
    }

    /// Bit i set when `b[i]` is `"` or `\\`.
    #[target_feature(enable = "sse2")]
    #[inline]
    pub(super) fn quote_or_backslash(b: &[u8; 16]) -> u32 {
        let v = load(b);
        let hit = _mm_or_si128(
            _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8)),
            _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8)),
        );
        _mm_movemask_epi8(hit) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The byte-by-byte walk this module replaced, as it was.
    fn reference(b: &[u8], start: usize) -> Result<usize, SkipError> {
        let mut kinds: u128 = 0;
        let mut depth: u32 = 0;
        let mut i = start;
        loop {
            while i < b.len() && !matches!(b[i], b'"' | b'{' | b'}' | b'[' | b']') {
                i += 1;
            }
            let Some(&c) = b.get(i) else {
                return Err(SkipError::End);
            };
            match c {
                b'"' => {
                    let open = i;
                    let mut j = i + 1;
                    loop {
                        match b.get(j) {
                            None => return Err(SkipError::Unterminated(open)),
                            Some(b'"') => break,
                            Some(b'\\') => j += 2,
                            Some(_) => j += 1,
                        }
                    }
                    i = j + 1;
                    continue;
                }
                b'{' | b'[' => {
                    if depth == MAX_DEPTH {
                        return Err(SkipError::TooDeep(i));
                    }
                    if c == b'[' {
                        kinds |= 1 << depth;
                    } else {
                        kinds &= !(1 << depth);
                    }
                    depth += 1;
                }
                _ => {
                    depth -= 1;
                    let want = if (kinds >> depth) & 1 == 1 {
                        b']'
                    } else {
                        b'}'
                    };
                    if c != want {
                        return Err(SkipError::Mismatch(i));
                    }
                    if depth == 0 {
                        return Ok(i + 1);
                    }
                }
            }
            i += 1;
        }
    }

    fn check(b: &[u8], start: usize) -> Result<usize, SkipError> {
        let want = reference(b, start);
        assert_eq!(
            skip_nested(b, start),
            want,
            "start {start}: {}",
            String::from_utf8_lossy(b)
        );
        want
    }

    #[test]
    fn sse2_classifier_agrees_with_bytewise() {
        let mut rng = fastrand::Rng::with_seed(3);
        const POOL: &[u8] = b"\"\\{}[]Y_y\x7f a\x00\xff\x3b\x1b\xdb\xfd";
        for _ in 0..20_000 {
            let mut block = [0u8; BLOCK];
            for c in &mut block {
                *c = if rng.bool() {
                    POOL[rng.usize(..POOL.len())]
                } else {
                    rng.u8(..)
                };
            }
            assert_eq!(classify_block(&block), classify_bytewise(&block));
            let half = block.first_chunk::<16>().unwrap();
            assert_eq!(
                quote_or_backslash_16(half),
                quote_or_backslash_bytewise(half)
            );
        }
    }

    #[test]
    fn finds_the_first_quote_or_backslash() {
        let mut rng = fastrand::Rng::with_seed(5);
        for _ in 0..20_000 {
            let n = rng.usize(0..150);
            let hay: Vec<u8> = (0..n)
                .map(|_| match rng.u8(0..40) {
                    0 => b'"',
                    1 => b'\\',
                    _ => rng.u8(..),
                })
                .filter(|&c| n < 100 || (c != b'"' && c != b'\\'))
                .collect();
            let want = hay.iter().position(|&c| c == b'"' || c == b'\\');
            assert_eq!(find_quote_or_backslash(&hay), want, "{hay:?}");
        }
        for n in 0..200 {
            let mut hay = vec![b'a'; n];
            assert_eq!(find_quote_or_backslash(&hay), None);
            hay.push(b'\\');
            assert_eq!(find_quote_or_backslash(&hay), Some(n));
        }
        let mut block = [b'a'; 16];
        for i in 0..16 {
            block[i] = b'"';
            assert_eq!(quote_or_backslash_16(&block), 1 << i);
            block[i] = b'a';
        }
    }

    #[test]
    fn skips_what_it_should_and_stops_where_it_should() {
        let cases: &[(&str, Result<usize, SkipError>)] = &[
            ("{}", Ok(2)),
            ("[]x", Ok(2)),
            (r#"{"a":{"b":[1,2,{"c":"}]"}]}} , "next""#, Ok(28)),
            (r#"{"a":"x\"}"}"#, Ok(12)),
            (r#"{"a":"x\\"}"#, Ok(11)),
            (r#"{"a":"x\\\"}"}"#, Ok(14)),
            // Outside strings a backslash is an ordinary byte.
            (r#"[\"]"]"#, Ok(6)),
            (r#"{"a":[1}"#, Err(SkipError::Mismatch(7))),
            (r#"{"a":"open}"#, Err(SkipError::Unterminated(5))),
            (r#"{"a":1"#, Err(SkipError::End)),
            (r#"{"a":"x\"#, Err(SkipError::Unterminated(5))),
        ];
        for (text, want) in cases {
            assert_eq!(check(text.as_bytes(), 0), *want, "{text}");
        }
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert_eq!(check(deep.as_bytes(), 0), Err(SkipError::TooDeep(128)));
        let ok = format!("{}{}", "[".repeat(128), "]".repeat(128));
        assert_eq!(check(ok.as_bytes(), 0), Ok(256));
    }

    /// Escapes, strings and brackets on every side of a block edge.
    #[test]
    fn block_edges_change_nothing() {
        let mut ends = Vec::new();
        for pad in 0..(2 * BLOCK) {
            for tail in [
                r#""\"]}""#,
                r#""\\"]}"#,
                r#""\\\"]}"]"#,
                r#""[{"]"#,
                r#"{"k":[]}]"#,
                r#""\"#,
                r#"}"#,
            ] {
                let text = format!("[{}{tail} ]", " ".repeat(pad));
                ends.push(check(text.as_bytes(), 0).is_ok());
                let text = format!("[\"{}{tail}\"]", "x".repeat(pad));
                ends.push(check(text.as_bytes(), 0).is_ok());
            }
        }
        assert!(ends.contains(&true) && ends.contains(&false));
    }

    /// Random bytes rich in the kinds that matter, from every opening
    /// bracket: the same end or the same error as the reference.
    #[test]
    fn agrees_with_the_bytewise_walk_on_random_input() {
        let mut rng = fastrand::Rng::with_seed(11);
        const POOL: &[u8] = b"\"\"\\{}[]  ab:,y_";
        let mut oks = 0;
        for _ in 0..1_500 {
            let n = rng.usize(1..400);
            let mut b: Vec<u8> = (0..n).map(|_| POOL[rng.usize(..POOL.len())]).collect();
            b[0] = if rng.bool() { b'{' } else { b'[' };
            for start in 0..b.len() {
                if matches!(b[start], b'{' | b'[') && check(&b, start).is_ok() {
                    oks += 1;
                }
            }
        }
        assert!(oks > 500, "{oks}");
    }
}
