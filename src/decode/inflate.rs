//! Whole-object gunzip with libdeflate, for objects small enough to hold.
//!
//! libdeflate inflates a buffer held whole about twice as fast as zlib-rs
//! inflates a stream (measured on the bench corpus: 2.1x, CRC included),
//! and most CloudTrail objects are a few kilobytes to a few megabytes. An
//! object qualifies when its compressed bytes and its declared size (the
//! gzip trailer's ISIZE) fit [`WholeLimits`] and the process-wide
//! [`BUDGET_BYTES`]; it must then be exactly one gzip member whose CRC and
//! size check out. Anything else (large, multi-member, corrupt, truncated,
//! over budget) returns `None` and the caller streams it, which is also
//! what reports errors after delivering the records before them.
//!
//! This module's `unsafe` (one of three modules with any, see `lib.rs`):
//! one call into libdeflate, the allocation and release of its
//! decompressor, and marking the bytes it wrote into a buffer's spare room
//! as the buffer's contents (so the buffer is not zeroed first only to be
//! overwritten).
#![allow(unsafe_code)]

use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};

use libdeflate_sys::{
    libdeflate_alloc_decompressor, libdeflate_decompressor, libdeflate_free_decompressor,
    libdeflate_gzip_decompress_ex, libdeflate_result_LIBDEFLATE_SUCCESS,
};

/// Size caps for inflating one object whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WholeLimits {
    /// Compressed bytes read into memory before deciding (larger objects
    /// are streamed, starting with the bytes already read).
    pub max_compressed_bytes: usize,
    /// Declared decompressed size above which the object is streamed.
    pub max_decompressed_bytes: usize,
}

impl WholeLimits {
    /// Cap on one object's decompressed bytes held whole.
    pub const MAX_DECOMPRESSED_BYTES: usize = 48 << 20;
    /// 4 MiB compressed (`s3.whole_object_max_bytes`' default), 48 MiB
    /// decompressed: every object of a typical trail; a 200 MB backfill
    /// export streams.
    pub const DEFAULT: Self = Self {
        max_compressed_bytes: 4 << 20,
        max_decompressed_bytes: Self::MAX_DECOMPRESSED_BYTES,
    };
}

/// Decompressed bytes that whole-object buffers may hold at once, over all
/// objects being decoded: with many fetches in flight, objects beyond it
/// stream instead of waiting, so memory stays bounded by this plus the
/// streaming path's fixed buffers. (A buffer reused for a smaller object
/// is charged the object's size: the at most 8 kept buffers of at most
/// 1 MiB each can add 8 MiB.)
pub const BUDGET_BYTES: usize = 64 << 20;

/// Bytes reserved out of a limit.
#[derive(Debug)]
struct Budget {
    used: AtomicUsize,
    limit: usize,
}

static BUDGET: Budget = Budget {
    used: AtomicUsize::new(0),
    limit: BUDGET_BYTES,
};

/// A share of a [`Budget`], returned when dropped.
#[derive(Debug)]
struct Reservation(&'static Budget, usize);

impl Reservation {
    fn take(budget: &'static Budget, n: usize) -> Option<Self> {
        budget
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(n).filter(|t| *t <= budget.limit)
            })
            .ok()
            .map(|_| Self(budget, n))
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.0.used.fetch_sub(self.1, Ordering::AcqRel);
    }
}

/// An object's decompressed bytes, holding their share of the budget.
#[derive(Debug)]
pub struct Plain {
    buf: Vec<u8>,
    _reserved: Reservation,
}

impl std::ops::Deref for Plain {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for Plain {
    fn drop(&mut self) {
        if self.buf.capacity() <= POOLED_MAX_BYTES {
            let mut pool = POOL.lock().unwrap_or_else(|p| p.into_inner());
            if pool.len() < POOLED_BUFFERS {
                let mut buf = std::mem::take(&mut self.buf);
                buf.clear();
                pool.push(buf);
            }
        }
    }
}

/// Output buffers of finished objects, kept for the next ones: most objects
/// are small, and a buffer that is still in the cache costs no page faults.
static POOL: std::sync::Mutex<Vec<Vec<u8>>> = std::sync::Mutex::new(Vec::new());
/// Buffers kept for reuse.
const POOLED_BUFFERS: usize = 8;
/// Larger buffers are freed, not kept.
const POOLED_MAX_BYTES: usize = 1 << 20;

/// An empty buffer with room for at least `size` bytes: a kept one that is
/// large enough, else a new one. A kept one is never grown: growing copies
/// what it held, only for it to be overwritten (in replay that copy was a
/// tenth of the cache misses).
fn buffer(size: usize) -> Vec<u8> {
    let mut pool = POOL.lock().unwrap_or_else(|p| p.into_inner());
    take_fitting(&mut pool, size).unwrap_or_else(|| Vec::with_capacity(size))
}

/// The most recently kept buffer with room for `size` bytes: the one most
/// likely still in the cache. Taking the oldest that fits made objects of
/// alternating sizes alternate between buffers, each written after the other
/// had pushed it out of L2 (replay's L2 misses −9.5 % in cachegrind).
fn take_fitting(pool: &mut Vec<Vec<u8>>, size: usize) -> Option<Vec<u8>> {
    let i = pool.iter().rposition(|b| b.capacity() >= size)?;
    // `remove`, not `swap_remove`: the others keep their order by age.
    Some(pool.remove(i))
}

/// An owned libdeflate decompressor (tables of a few tens of KiB, reused).
struct Decompressor(NonNull<libdeflate_decompressor>);

impl Decompressor {
    fn new() -> Option<Self> {
        // SAFETY: no preconditions; a null result (out of memory) is
        // handled by the caller streaming instead.
        NonNull::new(unsafe { libdeflate_alloc_decompressor() }).map(Self)
    }

    /// Inflate `gz`, which must be exactly one gzip member, into the
    /// empty `out`'s spare room; the bytes written (now `out`'s contents),
    /// or `None` for anything else (bad data, CRC or size mismatch, output
    /// larger than the room, bytes after the member), leaving `out` empty.
    fn gunzip_member(&mut self, gz: &[u8], out: &mut Vec<u8>) -> Option<usize> {
        debug_assert!(out.is_empty());
        let room = out.spare_capacity_mut();
        let mut consumed = 0usize;
        let mut written = 0usize;
        // SAFETY: `self.0` is a live decompressor used by one thread at a
        // time (`&mut self`); the input pointer and length come from one
        // live slice, as do the output's (the vector's spare room, which
        // libdeflate only writes), so libdeflate reads at most `gz.len()`
        // bytes and writes at most `room.len()` bytes; both out-parameters
        // point at live locals.
        let result = unsafe {
            libdeflate_gzip_decompress_ex(
                self.0.as_ptr(),
                gz.as_ptr().cast(),
                gz.len(),
                room.as_mut_ptr().cast(),
                room.len(),
                &mut consumed,
                &mut written,
            )
        };
        if result != libdeflate_result_LIBDEFLATE_SUCCESS || consumed != gz.len() {
            return None;
        }
        assert!(written <= out.capacity(), "libdeflate wrote past its room");
        // SAFETY: on success libdeflate has written `written` bytes from the
        // start of the spare room (the vector was empty), so the first
        // `written` bytes are initialised, and `written` is within the
        // capacity (checked above).
        unsafe { out.set_len(written) };
        Some(written)
    }
}

impl Drop for Decompressor {
    fn drop(&mut self) {
        // SAFETY: allocated by `libdeflate_alloc_decompressor`, freed once.
        unsafe { libdeflate_free_decompressor(self.0.as_ptr()) }
    }
}

thread_local! {
    static DECOMPRESSOR: std::cell::RefCell<Option<Decompressor>> =
        std::cell::RefCell::new(Decompressor::new());
}

/// The declared decompressed size of a gzip object: the last member's
/// ISIZE (its size mod 2^32). Only a hint for sizing the buffer; the
/// inflate checks it against what the data produces.
fn declared_size(gz: &[u8]) -> Option<usize> {
    // Header (10) + empty deflate block (2) + trailer (8).
    if gz.len() < 20 || !super::is_gzip(gz) {
        return None;
    }
    let t: [u8; 4] = gz[gz.len() - 4..].try_into().ok()?;
    usize::try_from(u32::from_le_bytes(t)).ok()
}

/// `gz` (a whole gzip object) inflated in one call, or `None` when it does
/// not qualify (see the module header) and must be streamed.
pub fn gunzip_whole(gz: &[u8], limits: WholeLimits) -> Option<Plain> {
    gunzip_within(gz, limits, &BUDGET)
}

fn gunzip_within(gz: &[u8], limits: WholeLimits, budget: &'static Budget) -> Option<Plain> {
    if gz.len() > limits.max_compressed_bytes {
        return None;
    }
    let size = declared_size(gz)?;
    if size > limits.max_decompressed_bytes {
        return None;
    }
    let reserved = Reservation::take(budget, size)?;
    let mut plain = Plain {
        buf: buffer(size),
        _reserved: reserved,
    };
    let written =
        DECOMPRESSOR.with_borrow_mut(|d| d.as_mut()?.gunzip_member(gz, &mut plain.buf))?;
    // libdeflate has checked ISIZE against the bytes produced (mod 2^32);
    // a shorter output can only come from a size that wrapped.
    (written == size).then_some(plain)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn text(n: usize) -> Vec<u8> {
        (0..n)
            .map(|i| format!("{{\"n\":{i},\"name\":\"DescribeInstances\"}},"))
            .collect::<String>()
            .into_bytes()
    }

    #[test]
    fn the_newest_kept_buffer_that_fits_is_taken() {
        let mut pool: Vec<Vec<u8>> = [100, 400, 200, 300]
            .into_iter()
            .map(Vec::with_capacity)
            .collect();
        let caps = |p: &Vec<Vec<u8>>| p.iter().map(|b| b.capacity()).collect::<Vec<_>>();
        // The newest (300) fits 150; for 250 the newest left (200) is too
        // small and the next newer one that fits (400) is taken.
        assert_eq!(
            take_fitting(&mut pool, 150).map(|b| b.capacity()),
            Some(300)
        );
        assert_eq!(caps(&pool), [100, 400, 200]);
        assert_eq!(
            take_fitting(&mut pool, 250).map(|b| b.capacity()),
            Some(400)
        );
        assert_eq!(caps(&pool), [100, 200], "the rest keep their order");
        assert!(take_fitting(&mut pool, 500).is_none());
        assert_eq!(take_fitting(&mut pool, 50).map(|b| b.capacity()), Some(200));
    }

    #[test]
    fn one_member_inflates_whole() {
        let data = text(5_000);
        let z = gz(&data);
        let p = gunzip_whole(&z, WholeLimits::DEFAULT).expect("qualifies");
        assert_eq!(&p[..], &data[..]);
    }

    #[test]
    fn anything_else_is_left_to_the_stream() {
        let data = text(5_000);
        let z = gz(&data);
        // Two members: the second must not be silently ignored.
        let mut two = z.clone();
        two.extend(gz(b"more"));
        assert!(gunzip_whole(&two, WholeLimits::DEFAULT).is_none());
        // Trailing garbage after the member.
        let mut trailing = z.clone();
        trailing.extend(b"garbage!");
        assert!(gunzip_whole(&trailing, WholeLimits::DEFAULT).is_none());
        // Truncated.
        assert!(gunzip_whole(&z[..z.len() / 2], WholeLimits::DEFAULT).is_none());
        // Corrupt CRC.
        let mut bad = z.clone();
        let n = bad.len();
        bad[n - 8] ^= 0xff;
        assert!(gunzip_whole(&bad, WholeLimits::DEFAULT).is_none());
        // A trailer that understates the size: the output does not fit.
        let mut small = z.clone();
        small[n - 4..].copy_from_slice(&100u32.to_le_bytes());
        assert!(gunzip_whole(&small, WholeLimits::DEFAULT).is_none());
        // Over the caps.
        let tight = WholeLimits {
            max_compressed_bytes: z.len() - 1,
            ..WholeLimits::DEFAULT
        };
        assert!(gunzip_whole(&z, tight).is_none());
        let tight = WholeLimits {
            max_decompressed_bytes: data.len() - 1,
            ..WholeLimits::DEFAULT
        };
        assert!(gunzip_whole(&z, tight).is_none());
        // Not gzip at all.
        assert!(gunzip_whole(&data, WholeLimits::DEFAULT).is_none());
    }

    #[test]
    fn a_kept_buffer_holds_exactly_the_next_object() {
        // A large object, then smaller ones that get its buffer (or
        // another kept one): each must read back as its own bytes only,
        // and an understated size must still be refused with room to spare.
        let big = text(20_000);
        drop(gunzip_whole(&gz(&big), WholeLimits::DEFAULT).unwrap());
        for n in [1, 700, 5_000, 20_000] {
            let data = text(n);
            let p = gunzip_whole(&gz(&data), WholeLimits::DEFAULT).unwrap();
            assert_eq!(&p[..], &data[..], "{n} records");
        }
        let data = text(3_000);
        let mut small = gz(&data);
        let at = small.len() - 4;
        small[at..].copy_from_slice(&100u32.to_le_bytes());
        assert!(gunzip_whole(&small, WholeLimits::DEFAULT).is_none());
        let empty = gz(b"");
        assert_eq!(gunzip_whole(&empty, WholeLimits::DEFAULT).unwrap().len(), 0);
    }

    #[test]
    fn the_budget_bounds_buffers_held_at_once() {
        static SMALL: Budget = Budget {
            used: AtomicUsize::new(0),
            limit: 5 << 20,
        };
        let data = vec![b'x'; 1 << 20];
        let z = gz(&data);
        let held: Vec<Plain> =
            std::iter::from_fn(|| gunzip_within(&z, WholeLimits::DEFAULT, &SMALL))
                .take(10)
                .collect();
        assert_eq!(held.len(), 5);
        assert_eq!(SMALL.used.load(Ordering::Acquire), 5 << 20);
        drop(held);
        assert_eq!(SMALL.used.load(Ordering::Acquire), 0);
        assert!(gunzip_within(&z, WholeLimits::DEFAULT, &SMALL).is_some());
    }
}
