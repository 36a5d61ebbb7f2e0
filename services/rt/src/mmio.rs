// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Device registers, for driver partitions.
//!
//! The manifest maps a partition's devices into its address space at IPA =
//! PA, always outside its RAM. [`Device::new`] refuses any address inside the
//! partition's RAM, so a `Device` can never alias memory that Rust owns, and
//! its volatile accesses are safe: an address the manifest did not map simply
//! faults, and the kernel stops the partition and reports it.
//!
//! A driver reaches its device either word by word ([`Device::read32`],
//! [`Device::write32`]) or, for a device described with `tock-registers`,
//! through its typed register block ([`Device::registers`]). The register
//! blocks a partition may be given are vouched for here, one `unsafe impl`
//! of [`RegisterBlock`] each, so the audit stays in this module.

use crate::Start;

/// A `tock-registers` register block that [`Device::registers`] may lay
/// over a device.
///
/// # Safety
///
/// The type must be a `register_structs!` block: `repr(C)`, made only of
/// `tock-registers` register cells (`ReadWrite`, `ReadOnly`, `WriteOnly`,
/// each a volatile `UnsafeCell` of an integer) and reserved padding, so
/// that a reference to it over device memory is only ever used for volatile
/// accesses of its registers.
pub unsafe trait RegisterBlock: Sized {}

// SAFETY: `drv_pl011::Registers` is a `register_structs!` block of 32-bit
// `ReadWrite`, `ReadOnly` and `WriteOnly` cells and padding.
unsafe impl RegisterBlock for drv_pl011::Registers {}

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

    /// The device's registers as the block `T`, for the life of the
    /// partition (the manifest's mapping never goes away); `None` if `T` is
    /// larger than the device or its base is not aligned for `T`.
    pub fn registers<T: RegisterBlock>(&self) -> Option<&'static T> {
        if size_of::<T>() > self.size || !self.base.is_multiple_of(align_of::<T>()) {
            return None;
        }
        // SAFETY: the block lies inside the device's range, which is outside
        // RAM (type invariant), so the reference aliases no Rust object; it
        // is aligned; and `T` is made only of volatile register cells
        // (`RegisterBlock`'s contract), so every use of the reference is a
        // volatile access of a device register (or a fault, if unmapped).
        Some(unsafe { &*(self.base as *const T) })
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
