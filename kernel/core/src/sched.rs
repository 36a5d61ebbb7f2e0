// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Scheduling vocabulary: vCPU IDs and the O(1) queues vCPUs wait in.
//!
//! A vCPU is in at most one queue at a time (a core's ready queue, an
//! endpoint's queue of senders or receivers, a notification's waiters), so
//! one pair of links per vCPU ([`Links`]) threads it through whichever queue
//! it is in, and a [`Queue`] is just a head and a tail. Every operation is
//! O(1), including taking a vCPU out of the middle of a queue (needed when
//! its partition stops), and nothing allocates.
//!
//! [`RunQueue`] is a core's ready queue: one FIFO per priority (0 to 255,
//! higher runs first) and a 256-bit map of the non-empty ones, so the highest
//! ready priority is found with at most four `leading_zeros`.
//!
//! The policy (who is pinned where, when to preempt, when to kick another
//! core) is in [`crate::state`]; this module is only the data structures.

use hv_image::MAX_SYSTEM_VCPUS;

/// Priority levels: 0 (lowest) to 255 (highest).
pub const PRIORITIES: usize = 256;

// IDs are `u8`; and a `u8` priority indexes the per-priority tables, so
// `RunQueue` can index them directly without a check that could fail.
const _: () = assert!(MAX_SYSTEM_VCPUS <= 255 && PRIORITIES == 256);

/// A virtual CPU, by its index in the kernel's table (a partition's vCPUs
/// are numbered consecutively, in seed order).
///
/// An enum of the [`MAX_SYSTEM_VCPUS`] indices rather than a `u8`, so that
/// the compiler knows every ID is in range: `Option<VcpuId>` is one byte
/// (`None` is the first value past the last index), and indexing a table of
/// `MAX_SYSTEM_VCPUS` entries with one needs no bounds check. Both matter on
/// the IPC fast path, which reads and writes several of them.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
#[rustfmt::skip]
pub enum VcpuId {
    #[doc(hidden)] V0, #[doc(hidden)] V1, #[doc(hidden)] V2, #[doc(hidden)] V3, #[doc(hidden)] V4, #[doc(hidden)] V5, #[doc(hidden)] V6, #[doc(hidden)] V7, #[doc(hidden)] V8, #[doc(hidden)] V9, #[doc(hidden)] V10, #[doc(hidden)] V11, #[doc(hidden)] V12, #[doc(hidden)] V13, #[doc(hidden)] V14, #[doc(hidden)] V15, #[doc(hidden)] V16, #[doc(hidden)] V17, #[doc(hidden)] V18, #[doc(hidden)] V19, #[doc(hidden)] V20, #[doc(hidden)] V21, #[doc(hidden)] V22, #[doc(hidden)] V23, #[doc(hidden)] V24, #[doc(hidden)] V25, #[doc(hidden)] V26, #[doc(hidden)] V27, #[doc(hidden)] V28, #[doc(hidden)] V29, #[doc(hidden)] V30, #[doc(hidden)] V31,
}

const _: () = assert!(MAX_SYSTEM_VCPUS == 32);
const _: () = assert!(size_of::<Option<VcpuId>>() == 1);

impl VcpuId {
    /// Every ID, in order.
    #[rustfmt::skip]
    const ALL: [Self; MAX_SYSTEM_VCPUS] = [
        Self::V0, Self::V1, Self::V2, Self::V3, Self::V4, Self::V5, Self::V6, Self::V7, Self::V8, Self::V9, Self::V10, Self::V11, Self::V12, Self::V13, Self::V14, Self::V15, Self::V16, Self::V17, Self::V18, Self::V19, Self::V20, Self::V21, Self::V22, Self::V23, Self::V24, Self::V25, Self::V26, Self::V27, Self::V28, Self::V29, Self::V30, Self::V31,
    ];

    /// The vCPU with index `index`, if there can be one.
    #[must_use]
    pub const fn new(index: usize) -> Option<Self> {
        if index < MAX_SYSTEM_VCPUS {
            Some(Self::ALL[index])
        } else {
            None
        }
    }

    /// The vCPU with index `index` (a byte), if there can be one.
    #[must_use]
    pub const fn of(index: u8) -> Option<Self> {
        Self::new(index as usize)
    }

    /// The index of this vCPU in the kernel's table.
    #[must_use]
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The index as a byte (what the ABI and the image use).
    #[must_use]
    pub const fn byte(self) -> u8 {
        self as u8
    }
}

impl core::fmt::Debug for VcpuId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_tuple("VcpuId").field(&self.byte()).finish()
    }
}

/// Each vCPU's place in the one queue it is in.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Links {
    next: [Option<VcpuId>; MAX_SYSTEM_VCPUS],
    prev: [Option<VcpuId>; MAX_SYSTEM_VCPUS],
}

impl Default for Links {
    fn default() -> Self {
        Self::new()
    }
}

impl Links {
    /// No vCPU in any queue.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            next: [None; MAX_SYSTEM_VCPUS],
            prev: [None; MAX_SYSTEM_VCPUS],
        }
    }

    /// The vCPU after `v` in its queue.
    #[must_use]
    pub fn next(&self, v: VcpuId) -> Option<VcpuId> {
        self.next.get(v.index()).copied().flatten()
    }

    /// The vCPU before `v` in its queue.
    #[must_use]
    pub fn prev(&self, v: VcpuId) -> Option<VcpuId> {
        self.prev.get(v.index()).copied().flatten()
    }

    fn set_next(&mut self, v: VcpuId, to: Option<VcpuId>) {
        if let Some(slot) = self.next.get_mut(v.index()) {
            *slot = to;
        }
    }

    fn set_prev(&mut self, v: VcpuId, to: Option<VcpuId>) {
        if let Some(slot) = self.prev.get_mut(v.index()) {
            *slot = to;
        }
    }
}

/// A FIFO of vCPUs, linked through [`Links`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Queue {
    head: Option<VcpuId>,
    tail: Option<VcpuId>,
}

impl Queue {
    /// An empty queue.
    pub const EMPTY: Self = Self {
        head: None,
        tail: None,
    };

    /// The vCPU at the front.
    #[must_use]
    pub const fn head(&self) -> Option<VcpuId> {
        self.head
    }

    /// The vCPU at the back.
    #[must_use]
    pub const fn tail(&self) -> Option<VcpuId> {
        self.tail
    }

    /// Whether the queue is empty.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.head.is_none()
    }

    /// Appends `v`, which must be in no queue.
    #[inline]
    pub fn push_back(&mut self, links: &mut Links, v: VcpuId) {
        links.set_prev(v, self.tail);
        links.set_next(v, None);
        match self.tail {
            Some(t) => links.set_next(t, Some(v)),
            None => self.head = Some(v),
        }
        self.tail = Some(v);
    }

    /// Puts `v`, which must be in no queue, at the front.
    pub fn push_front(&mut self, links: &mut Links, v: VcpuId) {
        links.set_next(v, self.head);
        links.set_prev(v, None);
        match self.head {
            Some(h) => links.set_prev(h, Some(v)),
            None => self.tail = Some(v),
        }
        self.head = Some(v);
    }

    /// Takes the vCPU at the front.
    #[inline(always)]
    pub fn pop_front(&mut self, links: &mut Links) -> Option<VcpuId> {
        let v = self.head?;
        let next = links.next(v);
        self.head = next;
        match next {
            Some(n) => links.set_prev(n, None),
            None => self.tail = None,
        }
        links.set_next(v, None);
        Some(v)
    }

    /// Takes `v` out of this queue, wherever it is. Returns `false`, changing
    /// nothing, if `v` is visibly not in this queue.
    pub fn remove(&mut self, links: &mut Links, v: VcpuId) -> bool {
        let (prev, next) = (links.prev(v), links.next(v));
        if (prev.is_none() && self.head != Some(v)) || (next.is_none() && self.tail != Some(v)) {
            return false;
        }
        match prev {
            Some(p) => links.set_next(p, next),
            None => self.head = next,
        }
        match next {
            Some(n) => links.set_prev(n, prev),
            None => self.tail = prev,
        }
        links.set_next(v, None);
        links.set_prev(v, None);
        true
    }

    /// The vCPUs in the queue, front first. Stops after [`MAX_SYSTEM_VCPUS`] even if
    /// the links were to loop, so callers checking invariants can detect it.
    pub fn iter<'a>(&self, links: &'a Links) -> impl Iterator<Item = VcpuId> + 'a {
        let mut at = self.head;
        core::iter::from_fn(move || {
            let v = at?;
            at = links.next(v);
            Some(v)
        })
        .take(MAX_SYSTEM_VCPUS + 1)
    }
}

/// A core's ready vCPUs: a FIFO per priority and a map of the non-empty ones.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[repr(C)]
pub struct RunQueue {
    /// Bit `w` (0 to 3): word `w` of `levels` is not zero. The IPC fast
    /// path asks "is anything ready above this?", and the usual answer,
    /// nothing ready at all, is this one byte. Bit 7 is the *gate*
    /// ([`RunQueue::set_gate`]): set on the cores of a timed system, it
    /// makes the byte non-zero so that the fast path looks further.
    summary: u8,
    /// Bit `p % 64` of word `p / 64`: queue `p` is not empty.
    levels: [u64; PRIORITIES / 64],
    queues: [Queue; PRIORITIES],
}

impl Default for RunQueue {
    fn default() -> Self {
        Self::new()
    }
}

impl RunQueue {
    /// No ready vCPU.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            summary: 0,
            levels: [0; PRIORITIES / 64],
            queues: [Queue::EMPTY; PRIORITIES],
        }
    }

    /// The gate bit of `summary`.
    const GATE: u8 = 1 << 7;

    /// Sets or clears the gate: a core of a timed system (windows or
    /// budgets) has it set, so that the one-byte test [`RunQueue::is_quiet`]
    /// fails and the IPC fast path checks time too, while an untimed
    /// system's fast path costs exactly what it did before time existed.
    pub fn set_gate(&mut self, on: bool) {
        if on {
            self.summary |= Self::GATE;
        } else {
            self.summary &= !Self::GATE;
        }
    }

    /// Whether the gate is set.
    #[must_use]
    pub const fn gated(&self) -> bool {
        self.summary & Self::GATE != 0
    }

    /// Nothing is ready and the gate is clear: one byte's test.
    #[must_use]
    #[inline(always)]
    pub const fn is_quiet(&self) -> bool {
        self.summary == 0
    }

    /// The highest priority with a ready vCPU. Unrolled: this runs on
    /// every IPC fast path, where the usual answer is "none".
    #[must_use]
    #[inline(always)]
    pub fn highest(&self) -> Option<u8> {
        // The gate alone falls through to the words, all zero: `None`.
        if self.summary == 0 {
            return None;
        }
        let [w0, w1, w2, w3] = self.levels;
        let (base, bits) = if w3 != 0 {
            (192, w3)
        } else if w2 != 0 {
            (128, w2)
        } else if w1 != 0 {
            (64, w1)
        } else if w0 != 0 {
            (0, w0)
        } else {
            return None;
        };
        // `bits` is not zero, so its top set bit is 0..=63: below 256 in all.
        Some((base + 63 - bits.leading_zeros()) as u8)
    }

    /// The queue of priority `priority`.
    #[must_use]
    pub fn queue(&self, priority: u8) -> &Queue {
        // Every u8 indexes a 256-entry table.
        &self.queues[usize::from(priority)]
    }

    /// Appends `v` (in no queue) to its priority's queue: it runs after every
    /// vCPU already ready at that priority.
    pub fn push_back(&mut self, links: &mut Links, v: VcpuId, priority: u8) {
        self.queues[usize::from(priority)].push_back(links, v);
        self.mark(priority, true);
    }

    /// Puts `v` (in no queue) at the front of its priority's queue: used for
    /// a vCPU preempted by a higher priority, which has not used up its turn.
    pub fn push_front(&mut self, links: &mut Links, v: VcpuId, priority: u8) {
        self.queues[usize::from(priority)].push_front(links, v);
        self.mark(priority, true);
    }

    /// Takes the first vCPU of the highest non-empty priority.
    pub fn pop_highest(&mut self, links: &mut Links) -> Option<VcpuId> {
        let priority = self.highest()?;
        let queue = &mut self.queues[usize::from(priority)];
        let v = queue.pop_front(links);
        if queue.is_empty() {
            self.mark(priority, false);
        }
        v
    }

    /// Takes `v` out of the queue of `priority`.
    pub fn remove(&mut self, links: &mut Links, v: VcpuId, priority: u8) -> bool {
        let queue = &mut self.queues[usize::from(priority)];
        let removed = queue.remove(links, v);
        if queue.is_empty() {
            self.mark(priority, false);
        }
        removed
    }

    /// Whether the map of non-empty priorities agrees with the queues.
    #[must_use]
    pub fn levels_agree(&self) -> bool {
        let summary = self
            .levels
            .iter()
            .enumerate()
            .fold(0u8, |s, (w, bits)| if *bits != 0 { s | 1 << w } else { s });
        summary == self.summary & !Self::GATE
            && (0..=u8::MAX).all(|p| self.is_marked(p) != self.queue(p).is_empty())
    }

    fn is_marked(&self, priority: u8) -> bool {
        let p = usize::from(priority);
        self.levels
            .get(p / 64)
            .is_some_and(|bits| bits & (1 << (p % 64)) != 0)
    }

    fn mark(&mut self, priority: u8, on: bool) {
        let p = usize::from(priority);
        if let Some(bits) = self.levels.get_mut(p / 64) {
            if on {
                *bits |= 1 << (p % 64);
            } else {
                *bits &= !(1 << (p % 64));
            }
            let word = 1 << (p / 64);
            if *bits != 0 {
                self.summary |= word;
            } else {
                self.summary &= !word;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Links, Queue, RunQueue, VcpuId};

    fn collect(q: &Queue, links: &Links) -> Vec<u8> {
        q.iter(links).map(|v| v.byte()).collect()
    }

    #[test]
    fn queue_is_fifo_and_removes_from_anywhere() {
        let mut links = Links::new();
        let mut q = Queue::EMPTY;
        for v in 0..4 {
            q.push_back(&mut links, VcpuId::of(v).unwrap());
        }
        assert_eq!(collect(&q, &links), [0, 1, 2, 3]);
        assert!(q.remove(&mut links, VcpuId::of(2).unwrap()));
        assert!(q.remove(&mut links, VcpuId::of(0).unwrap()));
        assert!(q.remove(&mut links, VcpuId::of(3).unwrap()));
        assert_eq!(collect(&q, &links), [1]);
        q.push_front(&mut links, VcpuId::of(5).unwrap());
        q.push_back(&mut links, VcpuId::of(6).unwrap());
        assert_eq!(collect(&q, &links), [5, 1, 6]);
        assert_eq!(q.pop_front(&mut links), Some(VcpuId::of(5).unwrap()));
        assert_eq!(q.pop_front(&mut links), Some(VcpuId::of(1).unwrap()));
        assert_eq!(q.pop_front(&mut links), Some(VcpuId::of(6).unwrap()));
        assert_eq!(q.pop_front(&mut links), None);
        assert!(q.is_empty());
    }

    #[test]
    fn removing_a_vcpu_that_is_not_there_changes_nothing() {
        let mut links = Links::new();
        let mut q = Queue::EMPTY;
        q.push_back(&mut links, VcpuId::of(1).unwrap());
        assert!(!q.remove(&mut links, VcpuId::of(7).unwrap()));
        // An ID past the table cannot be made at all.
        assert_eq!(VcpuId::of(200), None);
        assert_eq!(collect(&q, &links), [1]);
    }

    #[test]
    fn run_queue_serves_the_highest_priority_first_and_fifo_within() {
        let mut links = Links::new();
        let mut rq = RunQueue::new();
        assert_eq!(rq.highest(), None);
        rq.push_back(&mut links, VcpuId::of(0).unwrap(), 10);
        rq.push_back(&mut links, VcpuId::of(1).unwrap(), 200);
        rq.push_back(&mut links, VcpuId::of(2).unwrap(), 10);
        rq.push_back(&mut links, VcpuId::of(3).unwrap(), 255);
        rq.push_back(&mut links, VcpuId::of(4).unwrap(), 0);
        assert_eq!(rq.highest(), Some(255));
        let order: Vec<u8> = core::iter::from_fn(|| rq.pop_highest(&mut links))
            .map(|v| v.byte())
            .collect();
        assert_eq!(order, [3, 1, 0, 2, 4]);
        assert!(rq.levels_agree());
        assert_eq!(rq.highest(), None);
    }

    #[test]
    fn removing_the_last_vcpu_of_a_priority_clears_its_level() {
        let mut links = Links::new();
        let mut rq = RunQueue::new();
        rq.push_back(&mut links, VcpuId::of(0).unwrap(), 64);
        rq.push_front(&mut links, VcpuId::of(1).unwrap(), 63);
        assert!(rq.remove(&mut links, VcpuId::of(0).unwrap(), 64));
        assert_eq!(rq.highest(), Some(63));
        assert!(rq.levels_agree());
    }
}
