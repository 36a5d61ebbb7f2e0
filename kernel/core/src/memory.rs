// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The physical memory map at boot: what is in use and what is free.
//!
//! At boot the kernel knows the RAM banks (from the device tree) and what
//! already sits in RAM: its own image, the device tree itself, and whatever the
//! firmware reserved. [`MemoryMap::new`] subtracts those from the banks, and
//! [`MemoryMap::allocate`] carves regions (the kernel heap, later partition
//! memory) out of what is left, so nothing is ever handed out twice.

use crate::range::{PhysRange, TooManyRanges, subtract};

/// The most free regions the map tracks.
pub const MAX_FREE_REGIONS: usize = 32;

/// The most in-use regions the map records for the boot report.
pub const MAX_USED_REGIONS: usize = 64;

/// What an in-use region of RAM holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Use {
    /// The kernel image: code, data, stacks and page tables.
    KernelImage,
    /// The flattened device tree the loader passed.
    DeviceTree,
    /// Reserved by the firmware (`/memreserve/` or `/reserved-memory`).
    Firmware,
    /// The kernel heap.
    KernelHeap,
    /// A partition's RAM.
    Partition,
    /// Memory shared between partitions.
    Shared,
    /// A partition's stage-2 translation tables.
    Stage2Tables,
}

impl Use {
    /// A short name for the boot report.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::KernelImage => "kernel image",
            Self::DeviceTree => "device tree",
            Self::Firmware => "firmware reserved",
            Self::KernelHeap => "kernel heap",
            Self::Partition => "partition RAM",
            Self::Shared => "shared memory",
            Self::Stage2Tables => "stage-2 tables",
        }
    }
}

/// Why a memory map could not be made or a region not allocated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapError {
    /// The kernel image lies outside every RAM bank.
    ImageOutsideRam,
    /// More regions than the fixed-size tables hold.
    TooManyRegions,
    /// The range asked for is not free (or not page-aligned).
    NotFree(PhysRange),
    /// No free region is large enough.
    OutOfMemory {
        /// The size asked for, in bytes.
        size: u64,
    },
}

impl core::fmt::Display for MapError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::ImageOutsideRam => {
                f.write_str("the kernel image lies outside the RAM the device tree lists")
            }
            Self::TooManyRegions => {
                f.write_str("the memory map has more regions than the kernel tracks")
            }
            Self::NotFree(range) => write!(f, "{range} is not free RAM (or not page-aligned)"),
            Self::OutOfMemory { size } => {
                write!(f, "no free RAM region holds {}", crate::range::Size(*size))
            }
        }
    }
}

impl From<TooManyRanges> for MapError {
    fn from(_: TooManyRanges) -> Self {
        Self::TooManyRegions
    }
}

/// RAM split into what is in use (and by whom) and what is free.
#[derive(Debug)]
pub struct MemoryMap {
    used: heapless::Vec<(PhysRange, Use), MAX_USED_REGIONS>,
    free: heapless::Vec<PhysRange, MAX_FREE_REGIONS>,
}

impl MemoryMap {
    /// The map of `banks` with `used` taken out. Parts of `used` outside
    /// every bank (a device tree in flash, say) are simply not RAM; the image,
    /// though, must be in RAM.
    pub fn new(banks: &[PhysRange], used: &[(PhysRange, Use)]) -> Result<Self, MapError> {
        let image_in_ram = used
            .iter()
            .filter(|(_, u)| *u == Use::KernelImage)
            .all(|(r, _)| banks.iter().any(|b| b.covers(*r)));
        if !image_in_ram {
            return Err(MapError::ImageOutsideRam);
        }
        let mut cut: heapless::Vec<PhysRange, MAX_USED_REGIONS> = heapless::Vec::new();
        let mut kept: heapless::Vec<(PhysRange, Use), MAX_USED_REGIONS> = heapless::Vec::new();
        for &(range, what) in used {
            // Page granularity: nothing else may share a page with a used region.
            let range = range.align_out(PAGE_SIZE).ok_or(MapError::TooManyRegions)?;
            cut.push(range).map_err(|_| MapError::TooManyRegions)?;
            kept.push((range, what))
                .map_err(|_| MapError::TooManyRegions)?;
        }
        let mut aligned: heapless::Vec<PhysRange, MAX_FREE_REGIONS> = heapless::Vec::new();
        for bank in banks {
            let bank = bank.align_in(PAGE_SIZE);
            if !bank.is_empty() {
                aligned.push(bank).map_err(|_| MapError::TooManyRegions)?;
            }
        }
        let free = subtract(&aligned, &cut)?;
        Ok(Self { used: kept, free })
    }

    /// Takes `size` bytes aligned to `align` (a power of two, at least a page)
    /// from the lowest free region that can hold them, records them as used by
    /// `what`, and returns them.
    pub fn allocate(&mut self, size: u64, align: u64, what: Use) -> Result<PhysRange, MapError> {
        let align = align.max(PAGE_SIZE);
        let size = size
            .checked_next_multiple_of(PAGE_SIZE)
            .ok_or(MapError::OutOfMemory { size })?;
        for (i, region) in self.free.iter().enumerate() {
            let Some(start) = region.start().checked_next_multiple_of(align) else {
                continue;
            };
            let Some(found) = PhysRange::new(start, size) else {
                continue;
            };
            if !region.covers(found) {
                continue;
            }
            let rest = subtract::<2>(&[*region], &[found])?;
            self.used
                .push((found, what))
                .map_err(|_| MapError::TooManyRegions)?;
            self.free.remove(i);
            for piece in rest {
                self.free
                    .push(piece)
                    .map_err(|_| MapError::TooManyRegions)?;
            }
            self.free.sort_unstable();
            return Ok(found);
        }
        Err(MapError::OutOfMemory { size })
    }

    /// Takes exactly `range` (page-aligned, entirely free), records it as used
    /// by `what`, and returns it: for memory the manifest places itself.
    pub fn claim(&mut self, range: PhysRange, what: Use) -> Result<PhysRange, MapError> {
        let aligned =
            range.start().is_multiple_of(PAGE_SIZE) && range.end().is_multiple_of(PAGE_SIZE);
        let Some(i) = self
            .free
            .iter()
            .position(|f| f.covers(range))
            .filter(|_| aligned && !range.is_empty())
        else {
            return Err(MapError::NotFree(range));
        };
        let region = self.free[i];
        let rest = subtract::<2>(&[region], &[range])?;
        self.used
            .push((range, what))
            .map_err(|_| MapError::TooManyRegions)?;
        self.free.remove(i);
        for piece in rest {
            self.free
                .push(piece)
                .map_err(|_| MapError::TooManyRegions)?;
        }
        self.free.sort_unstable();
        Ok(range)
    }

    /// The free regions, sorted by address.
    #[must_use]
    pub fn free(&self) -> &[PhysRange] {
        &self.free
    }

    /// The in-use regions in the order they were recorded.
    #[must_use]
    pub fn used(&self) -> &[(PhysRange, Use)] {
        &self.used
    }

    /// The total number of free bytes.
    #[must_use]
    pub fn free_bytes(&self) -> u64 {
        self.free.iter().map(|r| r.size()).sum()
    }
}

/// The translation granule: 4 KiB.
pub const PAGE_SIZE: u64 = 4096;

#[cfg(test)]
mod tests {
    use super::{MapError, MemoryMap, PAGE_SIZE, Use};
    use crate::range::PhysRange;

    fn r(start: u64, size: u64) -> PhysRange {
        PhysRange::new(start, size).unwrap()
    }

    #[test]
    fn free_memory_excludes_image_and_device_tree() {
        let bank = r(0x4000_0000, 0x2000_0000);
        let image = r(0x4020_0000, 0x12345);
        let dtb = r(0x4800_0000, 0x100);
        let map = MemoryMap::new(
            &[bank],
            &[(image, Use::KernelImage), (dtb, Use::DeviceTree)],
        )
        .unwrap();
        assert_eq!(
            map.free(),
            &[
                r(0x4000_0000, 0x20_0000),
                PhysRange::from_bounds(0x4021_3000, 0x4800_0000).unwrap(),
                PhysRange::from_bounds(0x4800_1000, 0x6000_0000).unwrap(),
            ]
        );
        assert_eq!(map.free_bytes(), 0x2000_0000 - 0x13000 - PAGE_SIZE);
    }

    #[test]
    fn allocation_never_overlaps_what_is_used() {
        let bank = r(0x4000_0000, 0x100_0000);
        let image = r(0x4000_0000, 0x3000);
        let mut map = MemoryMap::new(&[bank], &[(image, Use::KernelImage)]).unwrap();
        let heap = map.allocate(0x10_0000, 0x20_0000, Use::KernelHeap).unwrap();
        assert_eq!(heap, r(0x4020_0000, 0x10_0000));
        let next = map.allocate(0x1000, PAGE_SIZE, Use::KernelHeap).unwrap();
        assert_eq!(next, r(0x4000_3000, 0x1000));
        for (used, _) in map.used() {
            assert!(map.free().iter().all(|f| !f.overlaps(*used)));
        }
        assert_eq!(
            map.allocate(0x100_0000, PAGE_SIZE, Use::KernelHeap),
            Err(MapError::OutOfMemory { size: 0x100_0000 })
        );
    }

    #[test]
    fn claims_take_exactly_what_is_asked_and_only_if_free() {
        let bank = r(0x4000_0000, 0x100_0000);
        let mut map =
            MemoryMap::new(&[bank], &[(r(0x4000_0000, 0x1000), Use::KernelImage)]).unwrap();
        let fixed = r(0x4080_0000, 0x10_0000);
        assert_eq!(map.claim(fixed, Use::Partition), Ok(fixed));
        assert_eq!(
            map.claim(fixed, Use::Partition),
            Err(MapError::NotFree(fixed))
        );
        assert_eq!(
            map.claim(r(0x4000_0000, 0x2000), Use::Partition),
            Err(MapError::NotFree(r(0x4000_0000, 0x2000)))
        );
        assert_eq!(
            map.claim(r(0x4100_0000, 0x1000), Use::Partition),
            Err(MapError::NotFree(r(0x4100_0000, 0x1000)))
        );
        assert_eq!(map.free_bytes(), 0x100_0000 - 0x1000 - 0x10_0000);
    }

    #[test]
    fn an_image_outside_ram_is_refused() {
        let bank = r(0x4000_0000, 0x100_0000);
        assert_eq!(
            MemoryMap::new(&[bank], &[(r(0x1000, 0x1000), Use::KernelImage)]).unwrap_err(),
            MapError::ImageOutsideRam
        );
    }

    #[test]
    fn a_device_tree_outside_ram_is_ignored() {
        let bank = r(0x4000_0000, 0x100_0000);
        let map = MemoryMap::new(
            &[bank],
            &[
                (r(0x4000_0000, 0x1000), Use::KernelImage),
                (r(0, 0x1000), Use::DeviceTree),
            ],
        )
        .unwrap();
        assert_eq!(map.free_bytes(), 0x100_0000 - 0x1000);
    }
}
