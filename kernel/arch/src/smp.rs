// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Starting the other cores through PSCI CPU_ON.
//!
//! [`start_cpu`] asks firmware to start a core at `bulkhead_secondary_entry`
//! (`boot.S`) with its index as the context ID. That core gets its boot stack,
//! turns on the MMU with the tables core 0 built, and calls the entry function
//! the kernel passed, with its index.

use hv_abi::smccc::{PsciError, PsciFunction};
use hv_core::MAX_CPUS;
use spin::Once;

use crate::{boot, insn, psci};

static ENTRY: Once<fn(usize) -> !> = Once::new();

/// Why a core could not be started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartError {
    /// Index 0 is the boot core, and indices run below [`MAX_CPUS`].
    BadIndex(usize),
    /// The MMU is not on yet, so the core would have no tables to use.
    MmuOff,
    /// Firmware refused.
    Firmware(PsciError),
}

/// Starts core `index` (whose MPIDR affinity is `mpidr`), which runs `entry`
/// with its index once its MMU is on. Every core runs the same `entry`: the
/// first one passed.
pub fn start_cpu(index: usize, mpidr: u64, entry: fn(usize) -> !) -> Result<(), StartError> {
    if index == 0 || index >= MAX_CPUS {
        return Err(StartError::BadIndex(index));
    }
    crate::mmu::secondary_config().ok_or(StartError::MmuOff)?;
    ENTRY.call_once(|| entry);
    // The new core starts with its caches off: push what it reads before its
    // MMU is on out to memory.
    let (config, bytes) = crate::mmu::secondary_config_bytes();
    insn::dc_civac_range(config, bytes);
    aarch64_cpu::asm::barrier::dsb(aarch64_cpu::asm::barrier::SY);
    psci::call(
        PsciFunction::CpuOn,
        mpidr,
        boot::secondary_entry_address(),
        index as u64,
    )
    .map(|_| ())
    .map_err(StartError::Firmware)
}

/// Called by the boot code on a secondary core once its MMU is on.
pub(crate) fn secondary_started(index: usize) -> ! {
    match ENTRY.get() {
        Some(entry) => entry(index),
        None => crate::cpu::park(),
    }
}
