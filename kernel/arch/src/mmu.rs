// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The EL2 MMU: the kernel's own translation tables, installed once.
//!
//! Core 0 calls [`build`] once, with the MMU still off, to fill the table pool
//! (what to map is decided by the kernel through `hv-core`'s `Builder`), then
//! [`enable`]. Secondary cores reuse the same tables through
//! [`enable_on_secondary`]. After [`build`] returns, the tables are never
//! written again, so [`lookup`] may read them from any core.
//!
//! # Invariants
//! - `POOL` is borrowed mutably only inside [`build`], while `STATE` is
//!   `BUILDING`, which exactly one caller ever sees.
//! - From `BUILT` on, `POOL` is only read.

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

use aarch64_cpu::asm::barrier;
use aarch64_cpu::registers::{
    MAIR_EL2, ReadWriteable, Readable, SCTLR_EL2, TCR_EL2, TTBR0_EL2, Writeable,
};
use hv_core::pagetable::{self, Attributes, Builder, MapError, Regime, Table, VA_BITS, mair};
use spin::Once;

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

/// The register values every core loads to turn its MMU on.
#[repr(C, align(64))]
pub(crate) struct MmuConfig {
    tcr: u64,
    ttbr0: u64,
}

static CONFIG: Once<MmuConfig> = Once::new();

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
pub fn build(f: impl FnOnce(&mut Builder<'_>) -> Result<(), MapError>) -> Result<usize, MmuError> {
    if SCTLR_EL2.is_set(SCTLR_EL2::M) {
        return Err(MmuError::AlreadyOn);
    }
    if STATE
        .compare_exchange(EMPTY, BUILDING, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        return Err(MmuError::WrongOrder);
    }
    // SAFETY: the state change above succeeds for one caller only, and no
    // reader looks at the pool before `BUILT` (module invariants); the MMU is
    // off, so no walk reads the tables while they change.
    let tables = unsafe { &mut *POOL.0.get() };
    let mut builder = Builder::new(tables, pool_base(), Regime::El2).map_err(MmuError::Map)?;
    f(&mut builder).map_err(MmuError::Map)?;
    TABLES_USED.store(builder.tables_used(), Ordering::Relaxed);
    STATE.store(BUILT, Ordering::Release);
    Ok(builder.tables_used())
}

/// Turns on this core's MMU and caches with the built tables.
pub fn enable() -> Result<(), MmuError> {
    if STATE.load(Ordering::Acquire) != BUILT {
        return Err(MmuError::WrongOrder);
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
    let config = CONFIG.call_once(|| MmuConfig {
        tcr,
        ttbr0: pool_base(),
    });
    turn_on(config);
    Ok(())
}

/// Turns on a secondary core's MMU with the tables core 0 installed.
pub(crate) fn enable_on_secondary() {
    match CONFIG.get() {
        Some(config) => turn_on(config),
        None => crate::cpu::park(),
    }
}

/// The configuration secondary cores read with their caches off.
pub(crate) fn secondary_config() -> Option<&'static MmuConfig> {
    CONFIG.get()
}

/// Where the configuration's `Once` lies, as (address, bytes): all of it,
/// its state as well as the value, is what a secondary core reads with its
/// caches off.
pub(crate) fn secondary_config_bytes() -> (usize, usize) {
    (
        core::ptr::from_ref(&CONFIG) as usize,
        core::mem::size_of_val(&CONFIG),
    )
}

fn turn_on(config: &MmuConfig) {
    MAIR_EL2.set(mair::VALUE);
    TCR_EL2.set(config.tcr);
    TTBR0_EL2.set_baddr(config.ttbr0);
    // Table writes reach memory before the walker may read them; no stale
    // translation survives.
    barrier::dsb(barrier::ISH);
    insn::tlbi_alle2();
    insn::ic_iallu();
    barrier::dsb(barrier::ISH);
    barrier::isb(barrier::SY);
    SCTLR_EL2.modify(
        SCTLR_EL2::M::Enable
            + SCTLR_EL2::C::Cacheable
            + SCTLR_EL2::I::Cacheable
            + SCTLR_EL2::WXN::Enable,
    );
    barrier::isb(barrier::SY);
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
