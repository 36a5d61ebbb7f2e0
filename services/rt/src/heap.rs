// SPDX-License-Identifier: Apache-2.0 OR MIT
//! An optional heap, for a service that wants `alloc` (`Vec`, `String`,
//! `Box`, ...).
//!
//! A service opts in with one line, which reserves `BYTES` of its RAM (in
//! its `.bss`, so the manifest's `memory` must hold it) and installs the
//! allocator:
//!
//! ```ignore
//! extern crate alloc;
//! svc_rt::heap!(16 * 1024);
//! ```
//!
//! It is a buddy allocator (`buddy_system_allocator`) behind a spin lock, so
//! every vCPU of the partition may allocate. Running out is not the
//! kernel's business: a failed allocation returns null, so `try_reserve`
//! and friends see an error, and the infallible calls panic, which the
//! runtime reports as the partition's fault like any other panic.
//!
//! The one `unsafe` here is what `GlobalAlloc` (an unsafe trait) and the
//! allocator's one-time `init` require.

use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;

use buddy_system_allocator::LockedHeap;
use spin::Once;

/// The heap's memory, aligned for any allocation a service makes.
#[repr(C, align(4096))]
struct Memory<const BYTES: usize>(UnsafeCell<[u8; BYTES]>);

/// A heap of `BYTES` bytes; see the module documentation. Declare one with
/// [`crate::heap!`], not by hand.
pub struct Heap<const BYTES: usize> {
    memory: Memory<BYTES>,
    allocator: LockedHeap<32>,
    ready: Once<()>,
}

// SAFETY: the memory is handed to the allocator once (under `ready`) and
// from then on touched only through the allocator, whose spin lock
// serialises every vCPU's use.
unsafe impl<const BYTES: usize> Sync for Heap<BYTES> {}

impl<const BYTES: usize> Heap<BYTES> {
    /// An empty heap; its memory is given to the allocator on first use.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            memory: Memory(UnsafeCell::new([0; BYTES])),
            allocator: LockedHeap::empty(),
            ready: Once::new(),
        }
    }

    /// The allocator, given the memory on first use.
    fn allocator(&self) -> &LockedHeap<32> {
        self.ready.call_once(|| {
            let start = self.memory.0.get() as usize;
            // SAFETY: [start, start + BYTES) is this heap's own memory: a
            // static array nothing else names, given to the allocator
            // exactly once (under `ready`).
            unsafe { self.allocator.lock().init(start, BYTES) };
        });
        &self.allocator
    }
}

impl<const BYTES: usize> Default for Heap<BYTES> {
    fn default() -> Self {
        Self::new()
    }
}

// SAFETY: every call is passed on to `LockedHeap`, a correct `GlobalAlloc`,
// whose memory is this heap's own (see `allocator`).
unsafe impl<const BYTES: usize> GlobalAlloc for Heap<BYTES> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is passed on unchanged.
        unsafe { self.allocator().alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as for `alloc`: `ptr` came from this allocator.
        unsafe { self.allocator().dealloc(ptr, layout) }
    }
}

/// Gives the service a heap of `$bytes` bytes (see [`crate::heap`]).
#[macro_export]
macro_rules! heap {
    ($bytes:expr) => {
        #[global_allocator]
        static __SVC_RT_HEAP: $crate::heap::Heap<{ $bytes }> = $crate::heap::Heap::new();
    };
}
