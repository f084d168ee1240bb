//! An object decodes to the same events and the same verdict whichever way
//! it is read: held whole (`decode_held`: libdeflate in one call when the
//! gzip is one sound member) or streamed through a reader that returns a
//! few bytes at a time (`decode_object` with whole-object inflating off:
//! async-compression's decoder, the splitter's capture path).
//!
//! Control bytes: the first picks gzip-wrapping, damage to the gzip bytes
//! and the record cap; the next eight seed the read lengths and damage.
#![no_main]

use std::pin::Pin;
use std::task::{Context, Poll};

use libfuzzer_sys::fuzz_target;
use reconwatch::decode::{
    DecodeError, Event, EventOut, Limits, ObjectStats, decode_held, decode_object,
};
use tokio::io::{AsyncRead, ReadBuf};

#[derive(Default)]
struct Collect(Vec<Event>);

impl EventOut for Collect {
    async fn push(&mut self, events: &mut Vec<Event>) -> Result<(), ()> {
        self.0.append(events);
        Ok(())
    }
}

/// Reads of pseudo-random short lengths.
struct Trickle {
    data: Vec<u8>,
    at: usize,
    seed: u64,
}

impl Trickle {
    fn next_len(&mut self) -> usize {
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        if self.seed % 8 == 0 {
            (self.seed >> 8) as usize % 4096 + 1
        } else {
            (self.seed >> 8) as usize % 48 + 1
        }
    }
}

impl AsyncRead for Trickle {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let n = self
            .next_len()
            .min(buf.remaining())
            .min(self.data.len() - self.at);
        let at = self.at;
        buf.put_slice(&self.data[at..at + n]);
        self.at += n;
        Poll::Ready(Ok(()))
    }
}

/// What must agree: the events, and the stats or the error's kind.
#[derive(Debug, PartialEq)]
enum Verdict {
    Ok(ObjectStats),
    Read,
    NotGzip,
    Structure(String),
    Other(String),
}

fn verdict(r: Result<ObjectStats, DecodeError>) -> Verdict {
    match r {
        Ok(s) => Verdict::Ok(s),
        Err(DecodeError::Read { .. }) => Verdict::Read,
        Err(DecodeError::NotGzip(_)) => Verdict::NotGzip,
        Err(DecodeError::Structure(e)) => Verdict::Structure(e.to_string()),
        Err(e) => Verdict::Other(e.to_string()),
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 9 {
        return;
    }
    let ctl = data[0];
    let seed = u64::from_le_bytes(data[1..9].try_into().unwrap()) | 1;
    let mut bytes = data[9..].to_vec();
    let gz = ctl & 1 == 1;
    if gz {
        bytes = gzip(&bytes);
        if ctl & 2 == 2 && !bytes.is_empty() {
            // Damage one byte past the 10-byte header, or cut the tail.
            let i = 10 + (seed >> 3) as usize % bytes.len().saturating_sub(10).max(1);
            if ctl & 4 == 4 {
                bytes.truncate(i.min(bytes.len()));
            } else if i < bytes.len() {
                bytes[i] ^= (seed >> 40) as u8 | 1;
            }
        }
        if ctl & 8 == 8 {
            // A second member: multi-member objects stream.
            let again = bytes.clone();
            bytes.extend_from_slice(&again);
        }
    }
    let name = if gz { "o.json.gz" } else { "o.json" };
    let limits = Limits {
        max_decompressed_bytes: 1 << 30,
        max_records: 1 << 30,
        max_record_bytes: if ctl & 16 == 16 { 64 } else { 1 << 20 },
        whole_object_max_bytes: 4 << 20,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let (held, streamed) = rt.block_on(async {
        let mut a = Collect::default();
        let ra = decode_held(bytes.clone(), name, limits, &mut a).await;
        let mut b = Collect::default();
        let reader = Trickle {
            data: bytes.clone(),
            at: 0,
            seed,
        };
        let streaming = Limits {
            whole_object_max_bytes: 0,
            ..limits
        };
        let rb = decode_object(reader, name, streaming, &mut b).await;
        ((a.0, verdict(ra)), (b.0, verdict(rb)))
    });
    match (&held.1, &streamed.1) {
        // A read error (bad gzip) may come before or after the records in
        // the last chunk the decoder released; only the verdict must agree.
        (Verdict::Read, Verdict::Read) => {}
        _ => assert_eq!(held, streamed),
    }
});
