// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Device registers, for driver partitions.
//!
//! The manifest maps a partition's devices into its address space at IPA =
//! PA, always outside its RAM. [`Device::new`] refuses any address inside the
//! partition's RAM, so a `Device` can never alias memory that Rust owns, and
//! its volatile accesses are safe: an address the manifest did not map simply
//! faults, and the kernel stops the partition and reports it.

use crate::Start;

/// A block of device registers at a fixed address.
///
/// # Invariants
/// `base..base + size` lies outside the partition's RAM.
#[derive(Clone, Copy, Debug)]
pub struct Device {
    base: usize,
    size: usize,
}

/// Why a device cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InRam;

impl Device {
    /// The `size` bytes of registers at `base`, if they lie outside this
    /// partition's RAM (described by `start`).
    pub fn new(start: &Start, base: usize, size: usize) -> Result<Self, InRam> {
        let ram_start = start.ram_base as usize;
        let ram_end = ram_start.saturating_add(start.ram_size as usize);
        let end = base.checked_add(size).ok_or(InRam)?;
        if base < ram_end && ram_start < end {
            return Err(InRam);
        }
        Ok(Self { base, size })
    }

    fn address(&self, offset: usize) -> Option<usize> {
        (offset.checked_add(4)? <= self.size && offset.is_multiple_of(4))
            .then(|| self.base + offset)
    }

    /// Reads the 32-bit register at `offset`; `None` if it is outside the block.
    pub fn read32(&self, offset: usize) -> Option<u32> {
        let address = self.address(offset)?;
        // SAFETY: the address is aligned, inside the block, and outside RAM
        // (type invariant), so it aliases no Rust object; a volatile read of
        // a device register (or a fault, if unmapped) is all that happens.
        Some(unsafe { core::ptr::read_volatile(address as *const u32) })
    }

    /// Writes the 32-bit register at `offset`; `false` if it is outside the block.
    pub fn write32(&self, offset: usize, value: u32) -> bool {
        let Some(address) = self.address(offset) else {
            return false;
        };
        // SAFETY: as for `read32`.
        unsafe { core::ptr::write_volatile(address as *mut u32, value) };
        true
    }
}
