// SPDX-License-Identifier: Apache-2.0 OR MIT
//! A single-producer, single-consumer byte ring in a shared [`Region`].
//!
//! Layout, from the ring's offset in the region:
//!
//! | offset | size | what | written by |
//! |---:|---:|---|---|
//! | 0 | 4 | `head`: bytes ever written, wrapping at 2^32 | the producer only |
//! | 64 | 4 | `tail`: bytes ever read, wrapping at 2^32 | the consumer only |
//! | 128 | `capacity` | the bytes; byte `n` of the stream sits at `n % capacity` | the producer |
//!
//! `capacity` is a power of two, so the free-running counters wrap cleanly.
//! The producer writes bytes, then publishes `head` with release order; the
//! consumer reads `head` with acquire order, reads the bytes, then publishes
//! `tail` with release order, which the producer reads with acquire order
//! before reusing the space. The two counters sit on separate cache lines.
//!
//! Neither side trusts the other: the counters are re-read from the region on
//! every call (the other partition may write anything there), and if they say
//! more than `capacity` bytes are in flight the ring is corrupt. The producer
//! then sees no free space, and the consumer drops what it has not read
//! (sets `tail` to `head`) and sees nothing: a broken peer can stall or
//! garble this one ring, never make either side panic or touch memory outside
//! it. Nothing here waits: pair the ring with notifications (see the services
//! that use it).

use core::sync::atomic::Ordering;

use crate::shared::Region;

/// Bytes of header before the data: two counters on separate cache lines.
pub const HEADER: usize = 128;

const HEAD: usize = 0;
const TAIL: usize = 64;

/// A byte ring at a fixed place in a shared region.
#[derive(Clone, Copy, Debug)]
pub struct Ring {
    region: Region,
    offset: usize,
    capacity: u32,
}

impl Ring {
    /// The ring whose header starts at `offset` in `region` (64-byte
    /// aligned), with `capacity` bytes of data (a power of two, at most
    /// 2^31); `None` if it does not fit.
    #[must_use]
    pub fn new(region: Region, offset: usize, capacity: usize) -> Option<Self> {
        let end = offset.checked_add(HEADER)?.checked_add(capacity)?;
        let fits = end <= region.size()
            && offset.is_multiple_of(64)
            && capacity.is_power_of_two()
            && capacity <= 1 << 31;
        fits.then_some(Self {
            region,
            offset,
            capacity: u32::try_from(capacity).ok()?,
        })
    }

    /// Bytes a ring of `capacity` occupies in its region.
    #[must_use]
    pub const fn footprint(capacity: usize) -> usize {
        HEADER + capacity
    }

    /// Its capacity in bytes.
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.capacity as usize
    }

    fn counter(&self, which: usize, order: Ordering) -> u32 {
        self.region.load32(self.offset + which, order).unwrap_or(0)
    }

    fn publish(&self, which: usize, value: u32) {
        self.region
            .store32(self.offset + which, value, Ordering::Release);
    }

    /// (head, tail, bytes in flight), or `None` if the counters are corrupt.
    fn state(&self, head_order: Ordering, tail_order: Ordering) -> Option<(u32, u32, u32)> {
        let head = self.counter(HEAD, head_order);
        let tail = self.counter(TAIL, tail_order);
        let used = head.wrapping_sub(tail);
        (used <= self.capacity).then_some((head, tail, used))
    }

    fn data(&self, position: u32) -> usize {
        self.offset + HEADER + (position & (self.capacity - 1)) as usize
    }

    /// Producer: bytes that can be pushed now.
    #[must_use]
    pub fn free(&self) -> usize {
        self.state(Ordering::Relaxed, Ordering::Acquire)
            .map_or(0, |(_, _, used)| (self.capacity - used) as usize)
    }

    /// Producer: appends as much of `bytes` as fits; returns how much.
    pub fn push(&self, bytes: &[u8]) -> usize {
        let Some((head, _, used)) = self.state(Ordering::Relaxed, Ordering::Acquire) else {
            return 0;
        };
        let count = bytes.len().min((self.capacity - used) as usize);
        let mut done = 0;
        while done < count {
            let position = head.wrapping_add(done as u32);
            let start = self.data(position);
            let contiguous = (self.capacity - (position & (self.capacity - 1))) as usize;
            let take = contiguous.min(count - done);
            if !self.region.write(start, &bytes[done..done + take]) {
                break;
            }
            done += take;
        }
        if done > 0 {
            self.publish(HEAD, head.wrapping_add(done as u32));
        }
        done
    }

    /// Consumer: bytes waiting to be read.
    #[must_use]
    pub fn available(&self) -> usize {
        match self.state(Ordering::Acquire, Ordering::Relaxed) {
            Some((_, _, used)) => used as usize,
            None => {
                self.resynchronise();
                0
            }
        }
    }

    /// Consumer: copies up to `into.len()` waiting bytes without consuming
    /// them; returns how many.
    pub fn peek(&self, into: &mut [u8]) -> usize {
        let Some((_, tail, used)) = self.state(Ordering::Acquire, Ordering::Relaxed) else {
            self.resynchronise();
            return 0;
        };
        let count = into.len().min(used as usize);
        let mut done = 0;
        while done < count {
            let position = tail.wrapping_add(done as u32);
            let start = self.data(position);
            let contiguous = (self.capacity - (position & (self.capacity - 1))) as usize;
            let take = contiguous.min(count - done);
            if !self.region.read(start, &mut into[done..done + take]) {
                break;
            }
            done += take;
        }
        done
    }

    /// Consumer: consumes `count` bytes (at most those waiting), freeing
    /// their space for the producer.
    pub fn advance(&self, count: usize) {
        let Some((_, tail, used)) = self.state(Ordering::Acquire, Ordering::Relaxed) else {
            self.resynchronise();
            return;
        };
        let count = count.min(used as usize) as u32;
        if count > 0 {
            self.publish(TAIL, tail.wrapping_add(count));
        }
    }

    /// Consumer: reads and consumes up to `into.len()` bytes; returns how many.
    pub fn pop(&self, into: &mut [u8]) -> usize {
        let count = self.peek(into);
        self.advance(count);
        count
    }

    /// Consumer: the counters are corrupt; drop everything in flight.
    fn resynchronise(&self) {
        let head = self.counter(HEAD, Ordering::Acquire);
        self.publish(TAIL, head);
    }
}
