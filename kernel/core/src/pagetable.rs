// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The kernel's own (EL2 stage-1) translation tables, computed as data.
//!
//! The kernel identity-maps what it uses: RAM as normal cacheable memory and
//! the devices it drives as device memory. Its image gets 4 KiB pages so that
//! code is read-only and executable and everything else is never executable;
//! RAM elsewhere gets the largest blocks that fit. Anything not mapped faults,
//! which is how stray pointers are caught.
//!
//! [`Builder`] fills a pool of 4 KiB tables that the architecture crate owns
//! and later installs (TTBR0_EL2). It only writes numbers into arrays, so the
//! whole of it is tested on the host. The format is the VMSAv8-64 one for a
//! single-range translation regime with a 4 KiB granule and 48-bit addresses,
//! starting at level 0.

use crate::range::PhysRange;

/// One translation table: 512 descriptors, 4 KiB.
pub type Table = [u64; ENTRIES];

/// Descriptors per table.
pub const ENTRIES: usize = 512;

/// Bits of virtual address translated: 48, so `T0SZ` = 16.
pub const VA_BITS: u32 = 48;

/// The index in MAIR_EL2 of each memory type the descriptors name.
pub mod mair {
    /// Device-nGnRE: MMIO.
    pub const DEVICE: u64 = 0;
    /// Normal memory, inner and outer write-back, read- and write-allocate.
    pub const NORMAL: u64 = 1;
    /// The MAIR_EL2 value that gives the indices above their meaning.
    pub const VALUE: u64 = 0x04 | (0xff << 8);
}

const VALID: u64 = 1 << 0;
const TABLE_OR_PAGE: u64 = 1 << 1;
const ATTR_INDEX_SHIFT: u32 = 2;
/// AP[2]: read-only.
const READ_ONLY: u64 = 1 << 7;
/// AP[1]: RES1 in a translation regime with one privilege level.
const AP1: u64 = 1 << 6;
const INNER_SHAREABLE: u64 = 0b11 << 8;
const ACCESS_FLAG: u64 = 1 << 10;
/// XN, bit 54, in a single-range regime.
const EXECUTE_NEVER: u64 = 1 << 54;
const ADDRESS_MASK: u64 = 0x0000_ffff_ffff_f000;

/// How a range is mapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attributes {
    /// Kernel code: read-only, executable.
    Code,
    /// Read-only data, never executable.
    ReadOnly,
    /// Read-write data, never executable.
    ReadWrite,
    /// Device registers: device memory, read-write, never executable.
    Device,
}

impl Attributes {
    const fn bits(self) -> u64 {
        let normal = (mair::NORMAL << ATTR_INDEX_SHIFT) | INNER_SHAREABLE;
        let common = ACCESS_FLAG | AP1;
        match self {
            Self::Code => common | normal | READ_ONLY,
            Self::ReadOnly => common | normal | READ_ONLY | EXECUTE_NEVER,
            Self::ReadWrite => common | normal | EXECUTE_NEVER,
            Self::Device => common | (mair::DEVICE << ATTR_INDEX_SHIFT) | EXECUTE_NEVER,
        }
    }

    fn from_bits(bits: u64) -> Self {
        let device = (bits >> ATTR_INDEX_SHIFT) & 0b111 == mair::DEVICE;
        match (device, bits & READ_ONLY != 0, bits & EXECUTE_NEVER != 0) {
            (true, _, _) => Self::Device,
            (false, true, false) => Self::Code,
            (false, true, true) => Self::ReadOnly,
            (false, false, _) => Self::ReadWrite,
        }
    }
}

/// Why a range could not be mapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapError {
    /// The range is not 4 KiB aligned, or lies beyond the 48-bit address space.
    BadRange(PhysRange),
    /// Part of the range is mapped already.
    AlreadyMapped(u64),
    /// The table pool is used up.
    OutOfTables,
    /// A table descriptor points outside the pool: the tables are corrupt.
    Corrupt,
}

/// Fills a pool of translation tables with an identity map. Table 0 of the
/// pool is the root (level 0).
pub struct Builder<'t> {
    tables: &'t mut [Table],
    /// The physical address of `tables[0]`; the others follow contiguously.
    pool_base: u64,
    used: usize,
}

impl<'t> Builder<'t> {
    /// A builder over `tables`, which sit at physical address `pool_base`.
    /// Clears the root table.
    pub fn new(tables: &'t mut [Table], pool_base: u64) -> Result<Self, MapError> {
        let root = tables.first_mut().ok_or(MapError::OutOfTables)?;
        *root = [0; ENTRIES];
        Ok(Self {
            tables,
            pool_base,
            used: 1,
        })
    }

    /// The physical address of the root table, for TTBR0_EL2.
    #[must_use]
    pub fn root_address(&self) -> u64 {
        self.pool_base
    }

    /// How many tables of the pool are in use.
    #[must_use]
    pub fn tables_used(&self) -> usize {
        self.used
    }

    /// Identity-maps `range` with `attributes`, using the largest blocks that
    /// fit. Fails, without leaving a half-made mapping that could be used, if
    /// any page of it is already mapped.
    pub fn map(&mut self, range: PhysRange, attributes: Attributes) -> Result<(), MapError> {
        let aligned = range.start().is_multiple_of(4096) && range.end().is_multiple_of(4096);
        if !aligned || range.end() > 1 << VA_BITS {
            return Err(MapError::BadRange(range));
        }
        if let Some(addr) = self.first_mapped(range) {
            return Err(MapError::AlreadyMapped(addr));
        }
        self.map_in(0, 0, range.start(), range.end(), attributes.bits())
    }

    /// What `addr` is mapped as, if it is mapped.
    #[must_use]
    pub fn lookup(&self, addr: u64) -> Option<Attributes> {
        lookup(&self.tables[..self.used], self.pool_base, addr)
    }

    fn first_mapped(&self, range: PhysRange) -> Option<u64> {
        let mut addr = range.start();
        while addr < range.end() {
            if self.lookup(addr).is_some() {
                return Some(addr);
            }
            // Skip an unmapped hole as large as the level it was found at.
            let step = self.hole_size(addr);
            addr = (addr & !(step - 1)).checked_add(step)?;
        }
        None
    }

    /// The size of the unmapped region around `addr` that one descriptor covers.
    fn hole_size(&self, addr: u64) -> u64 {
        let mut table = 0;
        for level in 0..4 {
            let entry = self.tables[table][index(addr, level)];
            if entry & VALID == 0 || level == 3 || entry & TABLE_OR_PAGE == 0 {
                return level_size(level);
            }
            match self.table_index(entry) {
                Ok(next) => table = next,
                Err(_) => return level_size(level),
            }
        }
        level_size(3)
    }

    fn map_in(
        &mut self,
        table: usize,
        level: u32,
        start: u64,
        end: u64,
        bits: u64,
    ) -> Result<(), MapError> {
        let size = level_size(level);
        let mut addr = start;
        while addr < end {
            let slot_end = (addr & !(size - 1)) + size;
            let chunk_end = slot_end.min(end);
            let i = index(addr, level);
            let entry = self.tables[table][i];
            let whole = addr.is_multiple_of(size) && chunk_end == slot_end;
            // Blocks exist at levels 1 and 2; pages at level 3.
            if whole && level >= 1 && entry & VALID == 0 {
                let kind = if level == 3 {
                    VALID | TABLE_OR_PAGE
                } else {
                    VALID
                };
                self.tables[table][i] = addr | bits | kind;
            } else {
                let next = if entry & VALID == 0 {
                    let next = self.allocate_table()?;
                    self.tables[table][i] = self.table_address(next) | VALID | TABLE_OR_PAGE;
                    next
                } else if entry & TABLE_OR_PAGE != 0 && level < 3 {
                    self.table_index(entry)?
                } else {
                    return Err(MapError::AlreadyMapped(addr));
                };
                self.map_in(next, level + 1, addr, chunk_end, bits)?;
            }
            addr = chunk_end;
        }
        Ok(())
    }

    fn allocate_table(&mut self) -> Result<usize, MapError> {
        let table = self
            .tables
            .get_mut(self.used)
            .ok_or(MapError::OutOfTables)?;
        *table = [0; ENTRIES];
        self.used += 1;
        Ok(self.used - 1)
    }

    fn table_address(&self, index: usize) -> u64 {
        self.pool_base + (index as u64) * 4096
    }

    fn table_index(&self, entry: u64) -> Result<usize, MapError> {
        table_index(self.used, self.pool_base, entry)
    }
}

/// What `addr` is mapped as in the finished `tables` (table 0 the root, at
/// `pool_base`), if it is mapped. Used by the builder and, once the tables are
/// live, by the architecture crate.
#[must_use]
pub fn lookup(tables: &[Table], pool_base: u64, addr: u64) -> Option<Attributes> {
    let mut table = 0;
    for level in 0..4 {
        let entry = tables.get(table)?[index(addr, level)];
        if entry & VALID == 0 {
            return None;
        }
        if level == 3 || entry & TABLE_OR_PAGE == 0 {
            let mask = !(level_size(level) - 1);
            // Identity map: the output address must equal the input.
            return (entry & ADDRESS_MASK & mask == addr & mask)
                .then(|| Attributes::from_bits(entry));
        }
        table = table_index(tables.len(), pool_base, entry).ok()?;
    }
    None
}

fn table_index(used: usize, pool_base: u64, entry: u64) -> Result<usize, MapError> {
    let offset = (entry & ADDRESS_MASK)
        .checked_sub(pool_base)
        .ok_or(MapError::Corrupt)?;
    let index = usize::try_from(offset / 4096).map_err(|_| MapError::Corrupt)?;
    if index < used {
        Ok(index)
    } else {
        Err(MapError::Corrupt)
    }
}

/// The bytes one descriptor at `level` covers: 512 GiB, 1 GiB, 2 MiB, 4 KiB.
const fn level_size(level: u32) -> u64 {
    1 << (12 + 9 * (3 - level))
}

fn index(addr: u64, level: u32) -> usize {
    ((addr >> (12 + 9 * (3 - level))) & 0x1ff) as usize
}

#[cfg(test)]
mod tests {
    use super::{Attributes, Builder, MapError, Table};
    use crate::range::PhysRange;

    fn r(start: u64, end: u64) -> PhysRange {
        PhysRange::from_bounds(start, end).unwrap()
    }

    fn pool(n: usize) -> Vec<Table> {
        vec![[0u64; 512]; n]
    }

    #[test]
    fn ram_uses_large_blocks_and_the_image_uses_pages() {
        let mut tables = pool(8);
        let mut b = Builder::new(&mut tables, 0x4100_0000).unwrap();
        let code = r(0x4020_0000, 0x4021_0000);
        let data = r(0x4021_0000, 0x4030_0000);
        b.map(code, Attributes::Code).unwrap();
        b.map(data, Attributes::ReadWrite).unwrap();
        b.map(r(0x4000_0000, 0x4020_0000), Attributes::ReadWrite)
            .unwrap();
        b.map(r(0x4040_0000, 0x1_0000_0000), Attributes::ReadWrite)
            .unwrap();
        b.map(r(0x4030_0000, 0x4040_0000), Attributes::ReadWrite)
            .unwrap();
        b.map(r(0x0900_0000, 0x0900_1000), Attributes::Device)
            .unwrap();
        assert_eq!(b.lookup(0x4020_0000), Some(Attributes::Code));
        assert_eq!(b.lookup(0x4020_ffff), Some(Attributes::Code));
        assert_eq!(b.lookup(0x4021_0000), Some(Attributes::ReadWrite));
        assert_eq!(b.lookup(0xffff_f000), Some(Attributes::ReadWrite));
        assert_eq!(b.lookup(0x0900_0fff), Some(Attributes::Device));
        assert_eq!(b.lookup(0x0900_1000), None);
        assert_eq!(b.lookup(0x1_0000_0000), None);
        // root, L1, L2 for 0x40000000, L3 for the image's 2 MiB, and L2 + L3 for the UART.
        assert_eq!(b.tables_used(), 6);
    }

    #[test]
    fn overlapping_maps_are_refused() {
        let mut tables = pool(8);
        let mut b = Builder::new(&mut tables, 0).unwrap();
        b.map(r(0x4000_0000, 0x8000_0000), Attributes::ReadWrite)
            .unwrap();
        assert_eq!(
            b.map(r(0x7fff_f000, 0x8000_1000), Attributes::Code),
            Err(MapError::AlreadyMapped(0x7fff_f000))
        );
        // Nothing of the refused range was mapped.
        assert_eq!(b.lookup(0x8000_0000), None);
    }

    #[test]
    fn misaligned_or_too_high_ranges_are_refused() {
        let mut tables = pool(2);
        let mut b = Builder::new(&mut tables, 0).unwrap();
        assert!(matches!(
            b.map(r(0x10, 0x1000), Attributes::Code),
            Err(MapError::BadRange(_))
        ));
        assert!(matches!(
            b.map(r(1 << 48, (1 << 48) + 0x1000), Attributes::Code),
            Err(MapError::BadRange(_))
        ));
    }

    #[test]
    fn running_out_of_tables_is_an_error() {
        let mut tables = pool(2);
        let mut b = Builder::new(&mut tables, 0).unwrap();
        assert_eq!(
            b.map(r(0x1000, 0x2000), Attributes::Device),
            Err(MapError::OutOfTables)
        );
    }

    proptest::proptest! {
        /// Whatever is mapped reads back with its own attributes, and what is
        /// not mapped reads back as unmapped.
        #[test]
        fn lookup_agrees_with_map(pages in proptest::collection::vec((0u64..2048, 1u64..600, 0u8..4), 1..8)) {
            let mut tables = pool(64);
            let mut b = Builder::new(&mut tables, 0x8000_0000).unwrap();
            let mut model: Vec<(PhysRange, Attributes)> = Vec::new();
            for (first, count, kind) in pages {
                let range = r(first * 4096 + 0x4000_0000, (first + count) * 4096 + 0x4000_0000);
                let attributes = [Attributes::Code, Attributes::ReadOnly, Attributes::ReadWrite, Attributes::Device][kind as usize];
                let clash = model.iter().any(|(m, _)| m.overlaps(range));
                let result = b.map(range, attributes);
                proptest::prop_assert_eq!(result.is_ok(), !clash);
                if !clash { model.push((range, attributes)); }
            }
            for page in 0..2700u64 {
                let addr = 0x4000_0000 + page * 4096;
                let want = model.iter().find(|(m, _)| m.contains(addr)).map(|(_, a)| *a);
                proptest::prop_assert_eq!(b.lookup(addr), want);
            }
        }
    }
}
