// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Starting the other cores: through PSCI CPU_ON, or by releasing them from
//! a spin table.
//!
//! How each core is started is hv-core's decision, from its device-tree
//! `enable-method` ([`hv_core::platform::CpuStart`]); this module carries it
//! out. With PSCI, [`start_cpu`] asks firmware to start the core at
//! `bulkhead_secondary_entry` (`boot.S`) with its index as the context ID.
//! With a spin table (the Raspberry Pi 4), the core is already running, with
//! its MMU and caches off, in a loop that waits for an address at its
//! `cpu-release-addr`; it jumps there with x0 = 0, so it arrives at
//! `bulkhead_spin_entry`, which finds its index by its MPIDR in
//! [`SPIN_MPIDRS`]. Either way the core then gets its boot stack, turns on
//! the MMU with the tables core 0 built, and calls the entry function the
//! kernel passed, with its index.
//!
//! Everything such a core reads before its MMU is on is cleaned to the point
//! of coherency first: the MMU configuration, its [`SPIN_MPIDRS`] slot and
//! the release address itself.

use core::sync::atomic::{AtomicU64, Ordering};

use aarch64_cpu::asm::barrier;
use hv_abi::smccc::{PsciError, PsciFunction};
use hv_core::MAX_CPUS;
use hv_core::platform::{CpuStart, NoStart};
use spin::Once;

use crate::early::Cores;
use crate::{boot, insn, psci};

static ENTRY: Once<fn(usize) -> !> = Once::new();

/// Each core's MPIDR affinity by core index, for the spin-table entry in
/// `boot.S` (which reads it with its MMU off); `u64::MAX` in the slots of
/// cores not released, and in core 0's, which never enters there.
pub(crate) static SPIN_MPIDRS: [AtomicU64; MAX_CPUS] =
    [const { AtomicU64::new(u64::MAX) }; MAX_CPUS];

/// Why a core could not be started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartError {
    /// Index 0 is the boot core, and indices run below [`MAX_CPUS`].
    BadIndex(usize),
    /// The MMU is not on yet, so the core would have no tables to use.
    MmuOff,
    /// The device tree gives no way to start it.
    NoMethod(NoStart),
    /// Firmware refused.
    Firmware(PsciError),
    /// The spin table's release address is not 8-byte aligned.
    BadReleaseAddress(u64),
}

/// Starts core `index` (whose MPIDR affinity is `mpidr`) as `method` says,
/// and it runs `entry` with its index once its MMU is on. Every core runs the
/// same `entry`: the first one passed. Needs [`Cores`]: the boot core has
/// given up its [`Early`](crate::early::Early).
pub fn start_cpu(
    _: Cores,
    index: usize,
    mpidr: u64,
    method: Result<CpuStart, NoStart>,
    entry: fn(usize) -> !,
) -> Result<(), StartError> {
    if index == 0 || index >= MAX_CPUS {
        return Err(StartError::BadIndex(index));
    }
    let method = method.map_err(StartError::NoMethod)?;
    crate::mmu::secondary_config().ok_or(StartError::MmuOff)?;
    ENTRY.call_once(|| entry);
    // The new core starts with its caches off: push what it reads before its
    // MMU is on out to memory.
    let (config, bytes) = crate::mmu::secondary_config_bytes();
    insn::dc_civac_range(config, bytes);
    barrier::dsb(barrier::SY);
    match method {
        CpuStart::Psci => psci::call(
            PsciFunction::CpuOn,
            mpidr,
            boot::secondary_entry_address(),
            index as u64,
        )
        .map(|_| ())
        .map_err(StartError::Firmware),
        CpuStart::SpinTable { release } => release_from_spin_table(index, mpidr, release),
    }
}

/// Writes the spin-table entry's address to `release` for core `index`.
fn release_from_spin_table(index: usize, mpidr: u64, release: u64) -> Result<(), StartError> {
    if !release.is_multiple_of(8) {
        return Err(StartError::BadReleaseAddress(release));
    }
    let slot = &SPIN_MPIDRS[index];
    slot.store(mpidr, Ordering::Release);
    insn::dc_civac(slot.as_ptr() as usize);
    barrier::dsb(barrier::SY);
    // SAFETY: `release` is the core's `cpu-release-addr` from the device
    // tree, an aligned word of RAM that hv-core's memory map reserves (never
    // handed out) and the kernel maps read-write with the rest of RAM; the
    // waiting core is its only other user, so a volatile write is sound.
    unsafe { core::ptr::write_volatile(release as *mut u64, boot::spin_entry_address()) };
    // The waiting core reads with its caches off: clean the word to the
    // point of coherency, wait for that, then wake it from its `wfe`.
    insn::dc_civac(release as usize);
    barrier::dsb(barrier::SY);
    aarch64_cpu::asm::sev();
    Ok(())
}

/// Called by the boot code on a secondary core once its MMU is on.
pub(crate) fn secondary_started(index: usize) -> ! {
    match ENTRY.get() {
        Some(entry) => entry(index),
        None => crate::cpu::park(),
    }
}
