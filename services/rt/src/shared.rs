// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Shared memory: regions that `kind = "shared-memory"` channels map into
//! several partitions.
//!
//! The manifest compiler places each region at the same IPA in every
//! partition that is an end of its channel (docs/manifest.md, "What the
//! compiler decides"); [`crate::shared!`] names that placement at compile
//! time as a [`Window`], and [`Region::new`] turns it into something a
//! service can read and write.
//!
//! Other partitions change the region while this one looks at it, so no
//! Rust reference to plain bytes in it ever exists: every access is an atomic
//! load or store of one byte or one aligned word, which may race with the
//! other side's without undefined behaviour. There are deliberately no
//! read-modify-write operations: exclusive accesses are only defined on
//! normal memory, and a [`Region`] may have been pointed at a device by
//! mistake. A region mapped read-only faults on a store; the kernel then
//! stops the partition and reports it, as for any access the manifest did not
//! grant.

use core::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};

use crate::Start;
use crate::mmio::InRam;

/// Where the manifest put a shared region: its IPA and size in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// The region's first byte, in this partition's address space.
    pub ipa: u64,
    /// Its size in bytes (whole pages).
    pub size: u64,
}

impl Window {
    /// Parses `"<ipa>:<size>"` (both decimal), the form of the
    /// `BULKHEAD_SHARED_<NAME>` variables that [`crate::shared!`] reads.
    ///
    /// # Panics
    /// At compile time (it is used in constants), if `text` has another form.
    #[must_use]
    pub const fn parse(text: &str) -> Self {
        let bytes = text.as_bytes();
        let mut ipa: u64 = 0;
        let mut size: u64 = 0;
        let mut seen_colon = false;
        let mut digits = 0;
        let mut i = 0;
        while i < bytes.len() {
            let byte = bytes[i];
            if byte == b':' {
                assert!(
                    !seen_colon && digits > 0,
                    "a shared window is `<ipa>:<size>`"
                );
                seen_colon = true;
                digits = 0;
            } else {
                assert!(byte.is_ascii_digit(), "a shared window is `<ipa>:<size>`");
                let digit = (byte - b'0') as u64;
                if seen_colon {
                    size = size * 10 + digit;
                } else {
                    ipa = ipa * 10 + digit;
                }
                digits += 1;
            }
            i += 1;
        }
        assert!(
            seen_colon && digits > 0,
            "a shared window is `<ipa>:<size>`"
        );
        Self { ipa, size }
    }
}

/// A shared region, ready for atomic accesses.
///
/// # Invariants
/// `base..base + size` lies outside the partition's RAM, so it aliases no
/// Rust object (the program, its statics and its stacks all live in RAM).
#[derive(Clone, Copy, Debug)]
pub struct Region {
    base: usize,
    size: usize,
}

impl Region {
    /// The region that `window` describes, if it lies outside this
    /// partition's RAM (described by `start`).
    pub fn new(start: &Start, window: Window) -> Result<Self, InRam> {
        let base = usize::try_from(window.ipa).map_err(|_| InRam)?;
        let size = usize::try_from(window.size).map_err(|_| InRam)?;
        let ram_start = start.ram_base as usize;
        let ram_end = ram_start.saturating_add(start.ram_size as usize);
        let end = base.checked_add(size).ok_or(InRam)?;
        if base < ram_end && ram_start < end {
            return Err(InRam);
        }
        Ok(Self { base, size })
    }

    /// Its size in bytes.
    #[must_use]
    pub fn size(&self) -> usize {
        self.size
    }

    /// The address of the `width` bytes at `offset`, if they are inside the
    /// region and aligned to `width`.
    fn address(&self, offset: usize, width: usize) -> Option<usize> {
        (offset.checked_add(width)? <= self.size && offset.is_multiple_of(width))
            .then(|| self.base + offset)
    }

    fn byte(&self, offset: usize) -> Option<&AtomicU8> {
        let address = self.address(offset, 1)?;
        // SAFETY: the byte is inside the region, which lies outside RAM (type
        // invariant), so it aliases no Rust object and is only ever accessed
        // atomically from this partition; other partitions' accesses are not
        // Rust's to order. If the manifest did not map it (or mapped it
        // read-only and this is a store), the access faults and the kernel
        // stops the partition: no memory is corrupted either way.
        Some(unsafe { AtomicU8::from_ptr(address as *mut u8) })
    }

    fn word32(&self, offset: usize) -> Option<&AtomicU32> {
        let address = self.address(offset, 4)?;
        // SAFETY: as for `byte`; the address is 4-byte aligned.
        Some(unsafe { AtomicU32::from_ptr(address as *mut u32) })
    }

    fn word64(&self, offset: usize) -> Option<&AtomicU64> {
        let address = self.address(offset, 8)?;
        // SAFETY: as for `byte`; the address is 8-byte aligned.
        Some(unsafe { AtomicU64::from_ptr(address as *mut u64) })
    }

    /// Loads the aligned 32-bit word at `offset`; `None` if it is outside the
    /// region or misaligned. `order` is `Relaxed`, `Acquire` or `SeqCst`.
    #[must_use]
    pub fn load32(&self, offset: usize, order: Ordering) -> Option<u32> {
        Some(self.word32(offset)?.load(load_order(order)))
    }

    /// Stores the aligned 32-bit word at `offset`; `false` if it is outside
    /// the region or misaligned. `order` is `Relaxed`, `Release` or `SeqCst`.
    pub fn store32(&self, offset: usize, value: u32, order: Ordering) -> bool {
        self.word32(offset)
            .map(|word| word.store(value, store_order(order)))
            .is_some()
    }

    /// Loads the aligned 64-bit word at `offset` (as [`Self::load32`]).
    #[must_use]
    pub fn load64(&self, offset: usize, order: Ordering) -> Option<u64> {
        Some(self.word64(offset)?.load(load_order(order)))
    }

    /// Stores the aligned 64-bit word at `offset` (as [`Self::store32`]).
    pub fn store64(&self, offset: usize, value: u64, order: Ordering) -> bool {
        self.word64(offset)
            .map(|word| word.store(value, store_order(order)))
            .is_some()
    }

    /// Copies `into.len()` bytes from `offset` (relaxed byte loads); `false`,
    /// copying nothing, if they are not all inside the region.
    pub fn read(&self, offset: usize, into: &mut [u8]) -> bool {
        if offset
            .checked_add(into.len())
            .is_none_or(|end| end > self.size)
        {
            return false;
        }
        for (i, slot) in into.iter_mut().enumerate() {
            match self.byte(offset + i) {
                Some(byte) => *slot = byte.load(Ordering::Relaxed),
                None => return false,
            }
        }
        true
    }

    /// Copies `from` to `offset` (relaxed byte stores); `false`, copying
    /// nothing, if it does not fit inside the region.
    pub fn write(&self, offset: usize, from: &[u8]) -> bool {
        if offset
            .checked_add(from.len())
            .is_none_or(|end| end > self.size)
        {
            return false;
        }
        for (i, value) in from.iter().enumerate() {
            match self.byte(offset + i) {
                Some(byte) => byte.store(*value, Ordering::Relaxed),
                None => return false,
            }
        }
        true
    }
}

/// `order` as a load may use it (a store-only order becomes its load half).
fn load_order(order: Ordering) -> Ordering {
    match order {
        Ordering::Release => Ordering::Relaxed,
        Ordering::AcqRel => Ordering::Acquire,
        other => other,
    }
}

/// `order` as a store may use it (a load-only order becomes its store half).
fn store_order(order: Ordering) -> Ordering {
    match order {
        Ordering::Acquire => Ordering::Relaxed,
        Ordering::AcqRel => Ordering::Release,
        other => other,
    }
}
