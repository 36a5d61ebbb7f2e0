// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Translation tables, computed as data: the kernel's own and each partition's.
//!
//! Two translation regimes use the VMSAv8-64 format with a 4 KiB granule:
//! - [`Regime::El2`]: the kernel's stage-1 tables (TTBR0_EL2), 48-bit, from
//!   level 0. The kernel identity-maps what it uses: its image with 4 KiB
//!   pages (code read-only and executable, the rest never executable), RAM with
//!   the largest blocks that fit, its devices as device memory.
//! - [`Regime::Stage2`]: a partition's stage-2 tables (VTTBR_EL2), 39-bit
//!   intermediate physical addresses (IPA), from level 1. They say which
//!   physical memory a partition may touch at all, and how.
//!
//! [`Builder`] fills a pool of 4 KiB tables that the architecture crate owns
//! and later installs; [`translate`] reads finished tables. Both only do
//! arithmetic on arrays, so all of it is tested on the host. Anything not
//! mapped faults.

// A partition's stage-2 regime translates the manifest's address spaces
// (`hv_image::IPA_BITS`, 39 bits): VTCR_EL2.T0SZ = 25, starting at level 1
// (VTCR_EL2.SL0 = 1) with one root table.
use hv_image::IPA_BITS;

use crate::range::PhysRange;

/// One translation table: 512 descriptors in one 4 KiB-aligned page, so that
/// a slice of them allocated anywhere is a valid table pool.
#[repr(C, align(4096))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Table(pub [u64; ENTRIES]);

impl Table {
    /// A table with every descriptor invalid.
    pub const EMPTY: Self = Self([0; ENTRIES]);
}

/// Descriptors per table.
pub const ENTRIES: usize = 512;

/// Bits of virtual address the kernel's regime translates: 48, so `T0SZ` = 16.
pub const VA_BITS: u32 = 48;

/// The index in MAIR_EL2 of each memory type the kernel's descriptors name.
pub mod mair {
    /// Device-nGnRE: MMIO.
    pub const DEVICE: u64 = 0;
    /// Normal memory, inner and outer write-back, read- and write-allocate.
    pub const NORMAL: u64 = 1;
    /// The MAIR_EL2 value that gives the indices above their meaning.
    pub const VALUE: u64 = 0x04 | (0xff << 8);
}

/// A translation regime: which descriptor format and address size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Regime {
    /// The kernel's own stage-1 tables: 48-bit, start at level 0.
    El2,
    /// A partition's stage-2 tables: 39-bit IPA, start at level 1.
    Stage2,
}

impl Regime {
    const fn start_level(self) -> u32 {
        match self {
            Self::El2 => 0,
            Self::Stage2 => 1,
        }
    }

    /// The size of the input address space.
    #[must_use]
    pub const fn input_bits(self) -> u32 {
        match self {
            Self::El2 => VA_BITS,
            Self::Stage2 => IPA_BITS,
        }
    }
}

const VALID: u64 = 1 << 0;
const TABLE_OR_PAGE: u64 = 1 << 1;
/// Stage 1: AttrIndx\[2:0\] at bits 4:2. Stage 2: MemAttr\[3:0\] at bits 5:2.
const ATTR_SHIFT: u32 = 2;
/// Stage 1: AP\[2\], read-only.
const S1_READ_ONLY: u64 = 1 << 7;
/// Stage 1: AP\[1\], RES1 in a translation regime with one privilege level.
const S1_AP1: u64 = 1 << 6;
/// Stage 2: S2AP\[0\], readable.
const S2_READ: u64 = 1 << 6;
/// Stage 2: S2AP\[1\], writable.
const S2_WRITE: u64 = 1 << 7;
/// Stage 2 MemAttr: Device-nGnRE.
const S2_DEVICE: u64 = 0b0001;
/// Stage 2 MemAttr: Normal, outer and inner write-back.
const S2_NORMAL: u64 = 0b1111;
const INNER_SHAREABLE: u64 = 0b11 << 8;
const ACCESS_FLAG: u64 = 1 << 10;
/// XN (stage 1, single range) and XN\[1\] (stage 2): bit 54.
const EXECUTE_NEVER: u64 = 1 << 54;
const ADDRESS_MASK: u64 = 0x0000_ffff_ffff_f000;

/// How a range is mapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attributes {
    /// Code: read-only, executable.
    Code,
    /// Read-only data, never executable.
    ReadOnly,
    /// Read-write data, never executable.
    ReadWrite,
    /// Read, write and execute: a partition's own RAM (stage 2 only; the
    /// kernel's regime has WXN set).
    ReadWriteExecute,
    /// Device registers: device memory, read-write, never executable.
    Device,
}

impl Attributes {
    const fn bits(self, regime: Regime) -> u64 {
        match regime {
            Regime::El2 => {
                let normal = (mair::NORMAL << ATTR_SHIFT) | INNER_SHAREABLE;
                let common = ACCESS_FLAG | S1_AP1;
                match self {
                    Self::Code => common | normal | S1_READ_ONLY,
                    Self::ReadOnly => common | normal | S1_READ_ONLY | EXECUTE_NEVER,
                    Self::ReadWrite => common | normal | EXECUTE_NEVER,
                    Self::ReadWriteExecute => common | normal,
                    Self::Device => common | (mair::DEVICE << ATTR_SHIFT) | EXECUTE_NEVER,
                }
            }
            Regime::Stage2 => {
                let normal = (S2_NORMAL << ATTR_SHIFT) | INNER_SHAREABLE | ACCESS_FLAG;
                match self {
                    Self::Code => normal | S2_READ,
                    Self::ReadOnly => normal | S2_READ | EXECUTE_NEVER,
                    Self::ReadWrite => normal | S2_READ | S2_WRITE | EXECUTE_NEVER,
                    Self::ReadWriteExecute => normal | S2_READ | S2_WRITE,
                    Self::Device => {
                        (S2_DEVICE << ATTR_SHIFT) | ACCESS_FLAG | S2_READ | S2_WRITE | EXECUTE_NEVER
                    }
                }
            }
        }
    }

    fn from_bits(bits: u64, regime: Regime) -> Self {
        let execute = bits & EXECUTE_NEVER == 0;
        let (device, write) = match regime {
            Regime::El2 => (
                (bits >> ATTR_SHIFT) & 0b111 == mair::DEVICE,
                bits & S1_READ_ONLY == 0,
            ),
            Regime::Stage2 => (
                (bits >> ATTR_SHIFT) & 0b1111 == S2_DEVICE,
                bits & S2_WRITE != 0,
            ),
        };
        match (device, write, execute) {
            (true, _, _) => Self::Device,
            (false, false, true) => Self::Code,
            (false, false, false) => Self::ReadOnly,
            (false, true, false) => Self::ReadWrite,
            (false, true, true) => Self::ReadWriteExecute,
        }
    }
}

/// Why a range could not be mapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapError {
    /// The range or its output is not 4 KiB aligned, or lies beyond the
    /// regime's address space.
    BadRange(PhysRange),
    /// Part of the range is mapped already.
    AlreadyMapped(u64),
    /// The table pool is used up.
    OutOfTables,
    /// A table descriptor points outside the pool: the tables are corrupt.
    Corrupt,
}

/// What an input address translates to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Translation {
    /// The output (physical) address.
    pub output: u64,
    /// How it is mapped.
    pub attributes: Attributes,
}

/// Fills a pool of translation tables. Table 0 of the pool is the root.
pub struct Builder<'t> {
    tables: &'t mut [Table],
    /// The physical address of `tables[0]`; the others follow contiguously.
    pool_base: u64,
    regime: Regime,
    used: usize,
}

impl<'t> Builder<'t> {
    /// A builder for `regime` over `tables`, which sit at physical address
    /// `pool_base`. Clears the root table.
    pub fn new(tables: &'t mut [Table], pool_base: u64, regime: Regime) -> Result<Self, MapError> {
        let root = tables.first_mut().ok_or(MapError::OutOfTables)?;
        *root = Table::EMPTY;
        Ok(Self {
            tables,
            pool_base,
            regime,
            used: 1,
        })
    }

    /// The physical address of the root table, for TTBR0_EL2 or VTTBR_EL2.
    #[must_use]
    pub fn root_address(&self) -> u64 {
        self.pool_base
    }

    /// How many tables of the pool are in use.
    #[must_use]
    pub fn tables_used(&self) -> usize {
        self.used
    }

    /// Identity-maps `range` with `attributes`.
    pub fn map(&mut self, range: PhysRange, attributes: Attributes) -> Result<(), MapError> {
        self.map_to(range, range.start(), attributes)
    }

    /// Maps the input addresses `range` to the output addresses starting at
    /// `output`, with `attributes`, using the largest blocks that fit. Fails,
    /// without mapping anything, if any page of it is already mapped.
    pub fn map_to(
        &mut self,
        range: PhysRange,
        output: u64,
        attributes: Attributes,
    ) -> Result<(), MapError> {
        let aligned = range.start().is_multiple_of(4096)
            && range.end().is_multiple_of(4096)
            && output.is_multiple_of(4096);
        let output_end = output.checked_add(range.size());
        let limit = 1u64 << self.regime.input_bits();
        if !aligned || range.end() > limit || output_end.is_none_or(|end| end > 1 << 48) {
            return Err(MapError::BadRange(range));
        }
        if let Some(addr) = self.first_mapped(range) {
            return Err(MapError::AlreadyMapped(addr));
        }
        let bits = attributes.bits(self.regime);
        let delta = output.wrapping_sub(range.start());
        self.map_in(
            0,
            self.regime.start_level(),
            range.start(),
            range.end(),
            delta,
            bits,
        )
    }

    /// What `addr` translates to, if it is mapped.
    #[must_use]
    pub fn translate(&self, addr: u64) -> Option<Translation> {
        translate(&self.tables[..self.used], self.pool_base, self.regime, addr)
    }

    /// What `addr` is mapped as, if it is identity-mapped.
    #[must_use]
    pub fn lookup(&self, addr: u64) -> Option<Attributes> {
        self.translate(addr)
            .filter(|t| t.output == addr)
            .map(|t| t.attributes)
    }

    fn first_mapped(&self, range: PhysRange) -> Option<u64> {
        let mut addr = range.start();
        while addr < range.end() {
            if self.translate(addr).is_some() {
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
        for level in self.regime.start_level()..4 {
            let entry = self
                .tables
                .get(table)
                .map_or(0, |t| t.0[index(addr, level)]);
            if entry & VALID == 0 || level == 3 || entry & TABLE_OR_PAGE == 0 {
                return level_size(level);
            }
            match table_index(self.used, self.pool_base, entry) {
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
        delta: u64,
        bits: u64,
    ) -> Result<(), MapError> {
        let size = level_size(level);
        let mut addr = start;
        while addr < end {
            let slot_end = (addr & !(size - 1)) + size;
            let chunk_end = slot_end.min(end);
            let i = index(addr, level);
            let entry = self.tables.get(table).ok_or(MapError::Corrupt)?.0[i];
            let output = addr.wrapping_add(delta);
            // A block needs its input and output aligned to its size; blocks
            // exist at levels 1 and 2, pages at level 3.
            let whole =
                addr.is_multiple_of(size) && output.is_multiple_of(size) && chunk_end == slot_end;
            if whole && level >= 1 && entry & VALID == 0 {
                let kind = if level == 3 {
                    VALID | TABLE_OR_PAGE
                } else {
                    VALID
                };
                self.tables[table].0[i] = output | bits | kind;
            } else {
                let next = if entry & VALID == 0 {
                    let next = self.allocate_table()?;
                    self.tables[table].0[i] = self.table_address(next) | VALID | TABLE_OR_PAGE;
                    next
                } else if entry & TABLE_OR_PAGE != 0 && level < 3 {
                    table_index(self.used, self.pool_base, entry)?
                } else {
                    return Err(MapError::AlreadyMapped(addr));
                };
                self.map_in(next, level + 1, addr, chunk_end, delta, bits)?;
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
        *table = Table::EMPTY;
        self.used += 1;
        Ok(self.used - 1)
    }

    fn table_address(&self, index: usize) -> u64 {
        self.pool_base + (index as u64) * 4096
    }
}

/// What `addr` translates to in the finished `tables` of `regime` (table 0
/// the root, at `pool_base`), if it is mapped. Used by the builder and, once
/// the tables are live, by the architecture crate.
#[must_use]
pub fn translate(
    tables: &[Table],
    pool_base: u64,
    regime: Regime,
    addr: u64,
) -> Option<Translation> {
    if addr >= 1 << regime.input_bits() {
        return None;
    }
    let mut table = 0;
    for level in regime.start_level()..4 {
        let entry = tables.get(table)?.0[index(addr, level)];
        if entry & VALID == 0 {
            return None;
        }
        if level == 3 || entry & TABLE_OR_PAGE == 0 {
            let offset = addr & (level_size(level) - 1);
            let base = entry & ADDRESS_MASK & !(level_size(level) - 1);
            return Some(Translation {
                output: base | offset,
                attributes: Attributes::from_bits(entry, regime),
            });
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
mod tests;
