// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The EL2 MMU: the kernel's own translation tables, installed once.
//!
//! Core 0 calls [`build`] once, with the MMU still off, to fill the table pool
//! (what to map is decided by the kernel through `hv-core`'s `Builder`), then
//! [`enable`]. Secondary cores turn theirs on with the same tables in
//! `boot.S`, before they touch their stacks, through the same
//! `bulkhead_mmu_on` (`mmu.S`). After [`build`] returns, the tables are never
//! written again, so [`lookup`] may read them from any core.
//!
//! # Invariants
//! - `POOL` is borrowed mutably only inside [`build`], while `STATE` is
//!   `BUILDING`, which exactly one caller ever sees (it holds the one
//!   [`Early`]).
//! - From `BUILT` on, `POOL` is only read.

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

use aarch64_cpu::asm::barrier;
use aarch64_cpu::registers::{Readable, SCTLR_EL2, TCR_EL2};
use hv_core::pagetable::{self, Attributes, Builder, MapError, Regime, Table, VA_BITS, mair};

use crate::early::{Early, EarlyOnce};
use crate::insn;

/// Translation tables available to the kernel: enough for its image in pages,
/// a few devices and RAM in blocks.
const POOL_TABLES: usize = 32;

#[repr(C)]
struct Pool(UnsafeCell<[Table; POOL_TABLES]>);

// SAFETY: see the module's invariants: one writer, before any reader.
unsafe impl Sync for Pool {}

static POOL: Pool = Pool(UnsafeCell::new([Table::EMPTY; POOL_TABLES]));

const EMPTY: u8 = 0;
const BUILDING: u8 = 1;
const BUILT: u8 = 2;
static STATE: AtomicU8 = AtomicU8::new(EMPTY);
static TABLES_USED: AtomicUsize = AtomicUsize::new(0);

/// The register values every core loads to turn its MMU on, in the order
/// `mmu.S` reads them.
#[repr(C, align(64))]
pub(crate) struct MmuConfig {
    mair: u64,
    tcr: u64,
    ttbr0: u64,
    /// The SCTLR_EL2 bits to set: MMU, caches, write-implies-never-execute.
    sctlr: u64,
}

/// Read by secondary cores with their caches off (`boot.S`), at its own
/// address: the value comes first in an [`EarlyOnce`].
pub(crate) static CONFIG: EarlyOnce<MmuConfig> = EarlyOnce::new();

core::arch::global_asm!(include_str!("mmu.S"));

unsafe extern "C" {
    /// Turns this core's MMU and caches on with `config` (`mmu.S`).
    fn bulkhead_mmu_on(config: &MmuConfig);
}

/// TCR_EL2 bits that are RES1 without VHE.
const TCR_EL2_RES1: u64 = (1 << 31) | (1 << 23);

/// Why the tables could not be built or turned on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MmuError {
    /// [`build`] was called before, or [`enable`] before [`build`].
    WrongOrder,
    /// The MMU is on already, so its live tables must not be rewritten.
    AlreadyOn,
    /// The builder refused a mapping.
    Map(MapError),
}

fn pool_base() -> u64 {
    POOL.0.get() as u64
}

/// Builds the kernel's tables with `f`, once, with the MMU off. Returns the
/// number of tables used.
pub fn build(
    _: &Early,
    f: impl FnOnce(&mut Builder<'_>) -> Result<(), MapError>,
) -> Result<usize, MmuError> {
    if SCTLR_EL2.is_set(SCTLR_EL2::M) {
        return Err(MmuError::AlreadyOn);
    }
    // A load and a store, not a compare-and-swap: the MMU is off, and the
    // `Early` proves no other core runs.
    if STATE.load(Ordering::Acquire) != EMPTY {
        return Err(MmuError::WrongOrder);
    }
    STATE.store(BUILDING, Ordering::Release);
    // SAFETY: the state changed above for this one caller only, and no
    // reader looks at the pool before `BUILT` (module invariants); the MMU is
    // off, so no walk reads the tables while they change.
    let tables = unsafe { &mut *POOL.0.get() };
    let mut builder = Builder::new(tables, pool_base(), Regime::El2).map_err(MmuError::Map)?;
    f(&mut builder).map_err(MmuError::Map)?;
    TABLES_USED.store(builder.tables_used(), Ordering::Relaxed);
    STATE.store(BUILT, Ordering::Release);
    Ok(builder.tables_used())
}

/// Turns on the boot core's MMU and caches with the built tables.
///
/// Everything core 0 wrote with its MMU off went straight to memory, but its
/// caches may still hold older copies of those lines from the loader (which
/// cleaned them, as the boot protocol asks): they are invalidated first, the
/// image's writable parts (tables, stacks, data) and the device tree, so
/// that no stale line hides what was written.
pub fn enable(early: &Early) -> Result<(), MmuError> {
    if STATE.load(Ordering::Acquire) != BUILT {
        return Err(MmuError::WrongOrder);
    }
    if SCTLR_EL2.is_set(SCTLR_EL2::M) {
        return Err(MmuError::AlreadyOn);
    }
    let ps = match crate::cpu::physical_address_bits() {
        32 => TCR_EL2::PS::Bits_32,
        36 => TCR_EL2::PS::Bits_36,
        40 => TCR_EL2::PS::Bits_40,
        42 => TCR_EL2::PS::Bits_42,
        44 => TCR_EL2::PS::Bits_44,
        _ => TCR_EL2::PS::Bits_48,
    };
    let tcr = (TCR_EL2::T0SZ.val(u64::from(64 - VA_BITS))
        + TCR_EL2::IRGN0::WriteBack_ReadAlloc_WriteAlloc_Cacheable
        + TCR_EL2::ORGN0::WriteBack_ReadAlloc_WriteAlloc_Cacheable
        + TCR_EL2::SH0::Inner
        + TCR_EL2::TG0::KiB_4
        + ps)
        .value
        | TCR_EL2_RES1;
    let sctlr = (SCTLR_EL2::M::Enable
        + SCTLR_EL2::C::Cacheable
        + SCTLR_EL2::I::Cacheable
        + SCTLR_EL2::WXN::Enable)
        .value;
    let config = CONFIG.call_once(early, || MmuConfig {
        mair: mair::VALUE,
        tcr,
        ttbr0: pool_base(),
        sctlr,
    });
    let params = crate::boot::params();
    // What was written with the MMU off: the relocated GOT (the end of
    // `rodata`), data, .bss, the stacks and the tables. Code and the boot
    // package were only read.
    for written in [params.image.rodata, params.image.data] {
        insn::dc_ivac_range(written.start() as usize, written.size() as usize);
    }
    if let Ok(tree) = params.device_tree {
        insn::dc_ivac_range(tree.as_ptr() as usize, tree.len());
    }
    barrier::dsb(barrier::SY);
    // SAFETY: `config` holds tables that map the kernel's image (code
    // executable, the rest not), its stacks and everything it touches, at
    // their physical addresses (hv-kernel's `map_kernel`), so execution goes
    // on at the next instruction with the same addresses; nothing is cached
    // that memory does not hold (above).
    unsafe { bulkhead_mmu_on(config) };
    Ok(())
}

/// The configuration secondary cores read with their caches off.
pub(crate) fn secondary_config() -> Option<&'static MmuConfig> {
    CONFIG.get()
}

/// Where the configuration lies, as (address, bytes): all of it, its flag
/// as well as the value, is what a secondary core reads with its caches off.
pub(crate) fn secondary_config_bytes() -> (usize, usize) {
    (
        core::ptr::from_ref(&CONFIG) as usize,
        core::mem::size_of_val(&CONFIG),
    )
}

/// What `addr` is mapped as in the kernel's tables, once they are built.
pub fn lookup(addr: u64) -> Option<Attributes> {
    if STATE.load(Ordering::Acquire) != BUILT {
        return None;
    }
    // SAFETY: from `BUILT` on the pool is never written (module invariants),
    // so a shared borrow is sound.
    let tables = unsafe { &*POOL.0.get() };
    let used = TABLES_USED.load(Ordering::Relaxed);
    pagetable::translate(&tables[..used], pool_base(), Regime::El2, addr)
        .filter(|t| t.output == addr)
        .map(|t| t.attributes)
}
