// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The kernel heap: a buddy allocator over a region the kernel chose.
//!
//! The kernel picks the region from the free memory map (`hv-core`'s
//! `MemoryMap`) and hands it to [`init`], which checks that the MMU maps all
//! of it read-write and that it lies outside the kernel image before the
//! allocator may use it. Until then every allocation fails.

use core::sync::atomic::{AtomicBool, Ordering};

use buddy_system_allocator::LockedHeap;
use hv_core::pagetable::Attributes;
use hv_core::range::PhysRange;

#[global_allocator]
static HEAP: LockedHeap<33> = LockedHeap::empty();

static INITIALISED: AtomicBool = AtomicBool::new(false);
static REGION: spin::Once<PhysRange> = spin::Once::new();

/// The heap's memory, once set up.
pub fn region() -> Option<PhysRange> {
    REGION.get().copied()
}

/// Why a region cannot become the heap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeapError {
    /// The heap was set up already.
    AlreadyInitialised,
    /// Part of the region is not mapped read-write, or it overlaps the image.
    NotUsable(u64),
}

/// Makes `region` the kernel heap. The caller must not use the region for
/// anything else; the memory map it came from guarantees that.
pub fn init(region: PhysRange) -> Result<(), HeapError> {
    let image = crate::boot::params().image.whole;
    if region.overlaps(image) {
        return Err(HeapError::NotUsable(region.start()));
    }
    let mut page = region.start();
    while page < region.end() {
        if crate::mmu::lookup(page) != Some(Attributes::ReadWrite) {
            return Err(HeapError::NotUsable(page));
        }
        page += 4096;
    }
    if INITIALISED.swap(true, Ordering::AcqRel) {
        return Err(HeapError::AlreadyInitialised);
    }
    // SAFETY: (1) every page of the region is mapped read-write (checked
    // above); (2) it lies outside the image, and the kernel got it from the
    // memory map, which hands each byte out once; (3) `INITIALISED` makes
    // this happen once.
    unsafe {
        HEAP.lock()
            .init(region.start() as usize, region.size() as usize)
    };
    Ok(())
}

/// Bytes allocated and bytes in the heap, for reports.
pub fn usage() -> (usize, usize) {
    let heap = HEAP.lock();
    (heap.stats_alloc_actual(), heap.stats_total_bytes())
}
