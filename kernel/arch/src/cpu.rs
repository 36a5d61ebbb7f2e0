// SPDX-License-Identifier: Apache-2.0 OR MIT
//! This core: who it is, what it can do, and how it waits.

use aarch64_cpu::registers::{
    CNTFRQ_EL0, CNTPCT_EL0, CurrentEL, DAIF, HCR_EL2, ID_AA64MMFR0_EL1, MPIDR_EL1, ReadWriteable,
    Readable, SCTLR_EL2,
};

/// This core's MPIDR affinity fields (Aff3..Aff0), as the device tree's `cpu`
/// nodes write them.
pub fn mpidr_affinity() -> u64 {
    MPIDR_EL1.get() & 0xff_00ff_ffff
}

/// The generic timer's frequency in Hz, as firmware set it.
pub fn timer_frequency() -> u64 {
    CNTFRQ_EL0.get()
}

/// The number of physical address bits this core implements.
pub fn physical_address_bits() -> u32 {
    match ID_AA64MMFR0_EL1.read(ID_AA64MMFR0_EL1::PARange) {
        0 => 32,
        1 => 36,
        2 => 40,
        3 => 42,
        4 => 44,
        5 => 48,
        _ => 52,
    }
}

/// Whether this core may use exclusive loads and stores (locks, `Once`):
/// only once its MMU and data cache are on, so that the kernel's memory is
/// Normal and cacheable (see [`crate::early`]). Before, the only core
/// running is the boot core (or a secondary in its first instructions, which
/// take no lock). A kernel entered at EL1 (which only says it cannot boot)
/// cannot read SCTLR_EL2, and its MMU is not its own: no.
pub fn exclusives_work() -> bool {
    CurrentEL.read(CurrentEL::EL) == 2
        && SCTLR_EL2.is_set(SCTLR_EL2::M)
        && SCTLR_EL2.is_set(SCTLR_EL2::C)
}

/// Parks this core for good: it waits for events that never call it back.
pub fn park() -> ! {
    loop {
        aarch64_cpu::asm::wfe();
    }
}

/// Waits a little, letting other cores (and, under QEMU, the emulator) run:
/// the kernel locks' way of waiting ([`crate::lock::Yield`]).
pub fn relax() {
    <crate::lock::Yield as spin::RelaxStrategy>::relax();
}

/// This core's index: 0 for the boot core, then in device-tree order.
pub fn index() -> usize {
    crate::vcpu::cpu_index()
}

/// The generic timer's physical count, which ticks at [`timer_frequency`].
pub fn counter() -> u64 {
    CNTPCT_EL0.get()
}

/// Sleeps until an interrupt arrives, takes it (through the exception vectors)
/// and returns with interrupts masked again.
pub fn wait_for_interrupt() {
    aarch64_cpu::asm::barrier::dsb(aarch64_cpu::asm::barrier::SY);
    DAIF.modify(DAIF::I::Unmasked);
    aarch64_cpu::asm::wfi();
    DAIF.modify(DAIF::I::Masked);
}

/// Routes physical IRQs, FIQs and SErrors to EL2 (HCR_EL2.IMO/FMO/AMO), so
/// the kernel takes every interrupt, whatever runs below it.
pub fn take_interrupts_at_el2() {
    HCR_EL2.modify(
        HCR_EL2::IMO::EnableVirtualIRQ + HCR_EL2::FMO::EnableVirtualFIQ + HCR_EL2::AMO::SET,
    );
}
