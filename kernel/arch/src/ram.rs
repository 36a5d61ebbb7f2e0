// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Writing into RAM the kernel gives to partitions: zeroing it and loading
//! programs into it.
//!
//! The kernel maps all RAM read-write at EL2, but Rust cannot name memory
//! that no Rust object owns. These functions can, after checking that the
//! whole range is RAM mapped read-write and lies outside everything the
//! kernel itself uses (its image and boot package, its heap, the device
//! tree). So a mistake elsewhere can misplace a partition, but can never make
//! the kernel overwrite itself.

use hv_core::pagetable::Attributes;
use hv_core::range::PhysRange;

use crate::insn;

/// Why a range was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RamError {
    /// Not page-aligned, or the write would run past its end.
    BadRange(PhysRange),
    /// This page is not RAM mapped read-write.
    NotRam(u64),
    /// The range overlaps memory the kernel uses.
    KernelMemory(PhysRange),
}

fn check(range: PhysRange) -> Result<(), RamError> {
    if !range.start().is_multiple_of(4096) || !range.end().is_multiple_of(4096) {
        return Err(RamError::BadRange(range));
    }
    let params = crate::boot::params();
    let mut used = [Some(params.image.whole), crate::heap::region(), None];
    if let Ok(dt) = params.device_tree {
        used[2] = PhysRange::new(params.device_tree_address as u64, dt.len() as u64);
    }
    if let Some(clash) = used.into_iter().flatten().find(|u| u.overlaps(range)) {
        return Err(RamError::KernelMemory(clash));
    }
    let mut page = range.start();
    while page < range.end() {
        if crate::mmu::lookup(page) != Some(Attributes::ReadWrite) {
            return Err(RamError::NotRam(page));
        }
        page += 4096;
    }
    Ok(())
}

/// Fills `range` with zeros.
pub fn zero(range: PhysRange) -> Result<(), RamError> {
    check(range)?;
    // SAFETY: `check` proved the range is RAM, mapped read-write, and outside
    // every object the kernel owns; no Rust reference points into it.
    unsafe { core::ptr::write_bytes(range.start() as *mut u8, 0, range.size() as usize) };
    Ok(())
}

/// Copies `bytes` to `offset` bytes into `range`, then makes the copy visible
/// to instruction fetches (it may be code).
pub fn write(range: PhysRange, offset: u64, bytes: &[u8]) -> Result<(), RamError> {
    check(range)?;
    let start = range
        .start()
        .checked_add(offset)
        .ok_or(RamError::BadRange(range))?;
    let end = start
        .checked_add(bytes.len() as u64)
        .ok_or(RamError::BadRange(range))?;
    if end > range.end() {
        return Err(RamError::BadRange(range));
    }
    // SAFETY: [start, end) lies inside `range`, which `check` proved is RAM,
    // mapped read-write, and outside every object the kernel owns; `bytes`
    // is kernel memory (the boot package), so the two do not overlap.
    unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), start as *mut u8, bytes.len()) };
    insn::dc_cvau_range(start as usize, bytes.len());
    aarch64_cpu::asm::barrier::dsb(aarch64_cpu::asm::barrier::ISH);
    insn::ic_ialluis();
    aarch64_cpu::asm::barrier::dsb(aarch64_cpu::asm::barrier::ISH);
    aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
    Ok(())
}
