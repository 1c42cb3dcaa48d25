//! A small pool of large byte buffers (pack-sized), shared by the process.
//!
//! Backups and restores move gigabytes through 16 MiB pack buffers. Allocating each one
//! afresh makes the kernel fault in and zero every page again (hundreds of thousands of
//! page faults per GiB, a visible share of CPU time). Recycling a handful keeps those
//! pages resident; the pool is bounded, so memory stays bounded too.

use bytes::Bytes;
use std::sync::Mutex;

/// Buffers kept for reuse at most.
const MAX_POOLED: usize = 6;
/// Larger buffers are not kept (a damaged index may ask for huge reads).
const MAX_POOLED_CAPACITY: usize = 64 << 20;
/// Smaller requests are left to malloc, which recycles small blocks well by itself.
const MIN_POOLED_CAPACITY: usize = 1 << 20;
/// Capacities are rounded up to a multiple of this, so that packs of slightly different
/// sizes share buffers (untouched capacity costs address space, not memory).
const CAPACITY_STEP: usize = 8 << 20;

static POOL: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

/// An empty buffer with at least `capacity` bytes reserved, recycled when possible.
pub fn take(capacity: usize) -> Vec<u8> {
    if capacity < MIN_POOLED_CAPACITY {
        return Vec::with_capacity(capacity);
    }
    let capacity = capacity.div_ceil(CAPACITY_STEP) * CAPACITY_STEP;
    let recycled = {
        let mut pool = POOL.lock().expect("buffer pool mutex");
        pool.iter()
            .position(|b| b.capacity() >= capacity)
            .map(|i| pool.swap_remove(i))
    };
    match recycled {
        Some(mut buf) => {
            buf.clear();
            buf
        }
        None => Vec::with_capacity(capacity),
    }
}

/// Return a buffer for reuse (dropped if the pool is full or the buffer is huge).
pub fn give(buf: Vec<u8>) {
    if buf.capacity() < MIN_POOLED_CAPACITY || buf.capacity() > MAX_POOLED_CAPACITY {
        return;
    }
    let mut pool = POOL.lock().expect("buffer pool mutex");
    if pool.len() < MAX_POOLED {
        pool.push(buf);
    }
}

/// Wrap a buffer as `Bytes` that goes back to the pool when the last clone is dropped.
pub fn into_bytes(buf: Vec<u8>) -> Bytes {
    if buf.capacity() < MIN_POOLED_CAPACITY {
        return Bytes::from(buf);
    }
    Bytes::from_owner(Recycled(buf))
}

struct Recycled(Vec<u8>);

impl AsRef<[u8]> for Recycled {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Recycled {
    fn drop(&mut self) {
        give(std::mem::take(&mut self.0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_come_back_and_are_handed_out_empty() {
        let mut b = take(1 << 20);
        assert!(b.is_empty() && b.capacity() >= 1 << 20);
        b.extend_from_slice(b"payload");
        let ptr = b.as_ptr();
        let bytes = into_bytes(b);
        assert_eq!(&bytes[..], b"payload");
        let clone = bytes.clone();
        drop(bytes);
        assert_eq!(&clone[..], b"payload", "a live clone keeps the buffer");
        drop(clone);
        // Other tests may share the pool, so look for our buffer rather than assume order.
        let mut seen = false;
        let mut held = Vec::new();
        for _ in 0..MAX_POOLED {
            let b = take(1 << 20);
            assert!(b.is_empty());
            seen |= b.as_ptr() == ptr;
            held.push(b);
        }
        assert!(seen, "the dropped buffer was recycled");
    }

    #[test]
    fn huge_buffers_are_not_kept() {
        give(Vec::with_capacity(MAX_POOLED_CAPACITY + 1));
        let pool = POOL.lock().unwrap();
        assert!(pool.iter().all(|b| b.capacity() <= MAX_POOLED_CAPACITY));
    }
}
