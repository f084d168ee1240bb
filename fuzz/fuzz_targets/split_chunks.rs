//! The record splitter and parser must not depend on where reads end.
//!
//! The input (after a few control bytes) is split once whole and once in
//! pseudo-random small chunks: the pieces, their parsed events or skip
//! reasons, and the final verdict must be the same. Records that lie in one
//! chunk take the in-place fast path and records that straddle chunks the
//! capture path, so this compares the two paths on the same bytes. Each
//! fast-path record is also parsed again with `parse_record`, which must
//! agree with it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reconwatch::decode::Event;
use reconwatch::decode::record::{Interner, parse_record};
use reconwatch::decode::splitter::{Piece, RecordSplitter, SplitError};

#[derive(Debug, PartialEq)]
enum Out {
    Event(Box<Event>),
    Skipped(&'static str),
    Oversized,
    NonObject,
}

fn run(chunks: &[&[u8]], max_record_bytes: usize) -> (Vec<Out>, Result<(), SplitError>) {
    let mut interner = Interner::default();
    let mut splitter = RecordSplitter::new(max_record_bytes);
    let mut outs = Vec::new();
    for chunk in chunks {
        let res = splitter.feed(chunk, &mut |piece| {
            let out = match piece {
                Piece::Scanned(s) => {
                    let bytes = s.bytes();
                    let fast = s.into_event(&mut interner);
                    let slow = parse_record(bytes, &mut interner);
                    match (&fast, &slow) {
                        (Ok(a), Ok(b)) => assert_eq!(a, b, "fast and slow paths differ"),
                        (Err(a), Err(b)) => assert_eq!(a.reason(), b.reason()),
                        _ => panic!("fast path {fast:?}, slow path {slow:?}"),
                    }
                    fast
                }
                Piece::Record(b) => parse_record(b, &mut interner),
                Piece::Oversized => return outs.push(Out::Oversized),
                Piece::NonObject => return outs.push(Out::NonObject),
            };
            outs.push(match out {
                Ok(e) => Out::Event(Box::new(e)),
                Err(e) => Out::Skipped(e.reason()),
            });
        });
        if let Err(e) = res {
            return (outs, Err(e));
        }
    }
    let end = splitter.finish();
    (outs, end)
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 9 {
        return;
    }
    let max_record_bytes = match data[0] {
        0 => 1 << 20,
        b => usize::from(b) * 8,
    };
    let mut seed = u64::from_le_bytes(data[1..9].try_into().unwrap()) | 1;
    let body = &data[9..];
    let mut chunks = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        // xorshift64: chunk lengths 1..=64, now and then up to 4 KiB.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let n = if seed % 8 == 0 {
            (seed >> 8) as usize % 4096 + 1
        } else {
            (seed >> 8) as usize % 64 + 1
        };
        let (a, b) = rest.split_at(n.min(rest.len()));
        chunks.push(a);
        rest = b;
    }
    let whole = run(&[body], max_record_bytes);
    let split = run(&chunks, max_record_bytes);
    assert_eq!(
        whole,
        split,
        "chunk lengths {:?}",
        chunks.iter().map(|c| c.len()).collect::<Vec<_>>()
    );
});
