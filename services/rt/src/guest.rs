// SPDX-License-Identifier: Apache-2.0 OR MIT
//! What a virtual machine monitor reaches of its guest: its RAM and the
//! files it boots from, mapped into the monitor by the manifest compiler
//! (`docs/manifest.md`, "Virtual machines") and named at compile time by
//! the `BULKHEAD_GUEST_*` variables that `cargo xtask` passes to a monitor's
//! build.
//!
//! A guest's RAM is the guest's: while it runs, it writes there whenever it
//! likes. So nothing here hands out a Rust reference into it: [`GuestRam`]
//! is a [`Region`] (atomic accesses only), which may race with the guest's
//! accesses without undefined behaviour (a monitor should stop the guest
//! before it loads it, or the guest sees a half-written image: the guest's
//! problem, never the monitor's). A file is read-only for everyone (the
//! kernel never writes the boot package and maps files read-only), so
//! [`File`] hands out a plain slice of it.

use core::sync::atomic::Ordering;

use crate::Start;
use crate::shared::{Region, Window};

/// The guest's RAM as this monitor sees it.
#[derive(Clone, Copy, Debug)]
pub struct GuestRam {
    /// Where the monitor sees it.
    region: Region,
    /// Where the guest sees it (its RAM's IPA).
    base: u64,
}

/// A guest address range outside the guest's RAM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutOfRange {
    /// The guest address.
    pub address: u64,
    /// The length.
    pub length: u64,
}

impl GuestRam {
    /// The guest RAM that `window` shows (where this monitor sees it), which
    /// the guest sees at `base`; `None` if the window overlaps this
    /// partition's own RAM.
    #[must_use]
    pub fn new(start: &Start, window: Window, base: u64) -> Option<Self> {
        let region = Region::new(start, window).ok()?;
        Some(Self { region, base })
    }

    /// The guest's RAM base (an IPA of the guest).
    #[must_use]
    pub const fn base(&self) -> u64 {
        self.base
    }

    /// The guest's RAM size.
    #[must_use]
    pub fn size(&self) -> u64 {
        self.region.size() as u64
    }

    /// The offset in the window of guest address `address`, if `length`
    /// bytes from there are the guest's RAM.
    fn offset(&self, address: u64, length: usize) -> Result<usize, OutOfRange> {
        let out = OutOfRange {
            address,
            length: length as u64,
        };
        let offset =
            usize::try_from(address.checked_sub(self.base).ok_or(out)?).map_err(|_| out)?;
        match offset.checked_add(length) {
            Some(end) if end <= self.region.size() => Ok(offset),
            _ => Err(out),
        }
    }

    /// Copies `bytes` into the guest's RAM at guest address `address`.
    ///
    /// # Errors
    /// If any of it falls outside the guest's RAM (nothing is written then).
    pub fn write(&self, address: u64, bytes: &[u8]) -> Result<(), OutOfRange> {
        let start = self.offset(address, bytes.len())?;
        // Bytes up to an 8-byte boundary, then words, then bytes again.
        let head = (start.wrapping_neg() % 8).min(bytes.len());
        let (first, rest) = bytes.split_at(head);
        self.region.write(start, first);
        let words = rest.chunks_exact(8);
        let tail = words.remainder();
        let mut at = start + head;
        for word in words {
            let mut value = [0u8; 8];
            value.copy_from_slice(word);
            self.region
                .store64(at, u64::from_le_bytes(value), Ordering::Relaxed);
            at += 8;
        }
        self.region.write(at, tail);
        Ok(())
    }
}

/// A file the boot package carries (a guest kernel, an initramfs), mapped
/// read-only into this monitor.
#[derive(Clone, Copy, Debug)]
pub struct File {
    bytes: &'static [u8],
}

impl File {
    /// The file of `length` bytes mapped at `window`; `None` if it does not
    /// fit the window or the window overlaps this partition's RAM.
    #[must_use]
    pub fn new(start: &Start, window: Window, length: u64) -> Option<Self> {
        Region::new(start, window).ok()?;
        let length = usize::try_from(length).ok()?;
        let base = usize::try_from(window.ipa).ok()?;
        if length as u64 > window.size {
            return None;
        }
        // SAFETY: `base..base + length` is inside the window, which lies
        // outside this partition's RAM (checked above), so it aliases no
        // Rust object of this program. The manifest maps it read-only (a
        // file of the boot package), and nothing ever writes it: the
        // kernel never writes the package, and no partition may. So the
        // bytes never change while the slice lives. Were it not mapped, a
        // read would fault and the kernel would stop this partition.
        let bytes = unsafe { core::slice::from_raw_parts(base as *const u8, length) };
        Some(Self { bytes })
    }

    /// Its bytes.
    #[must_use]
    pub const fn bytes(&self) -> &'static [u8] {
        self.bytes
    }
}
