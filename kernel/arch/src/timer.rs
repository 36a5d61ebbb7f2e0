// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The EL2 physical timer (CNTHP): the kernel's own tick on each core.
//!
//! Partitions never see it: its interrupt (a PPI, 26 on QEMU's virt machine)
//! is taken at EL2, and EL1/EL0 have no access to the physical timer.

use aarch64_cpu::registers::{CNTHCTL_EL2, CNTHP_CTL_EL2, ReadWriteable, Writeable};

use crate::sysreg;

/// Fires the timer after `ticks` counter ticks (see
/// [`crate::cpu::timer_frequency`]), and keeps it enabled and unmasked.
pub fn arm(ticks: u64) {
    sysreg::write_cnthp_tval_el2(ticks);
    CNTHP_CTL_EL2.write(CNTHP_CTL_EL2::ENABLE::SET + CNTHP_CTL_EL2::IMASK::CLEAR);
}

/// Stops the timer.
pub fn stop() {
    CNTHP_CTL_EL2.write(CNTHP_CTL_EL2::ENABLE::CLEAR);
}

/// Denies EL1 and EL0 the physical timer, leaving them the physical counter.
pub fn deny_lower_levels() {
    CNTHCTL_EL2.modify(CNTHCTL_EL2::EL1PCEN::CLEAR + CNTHCTL_EL2::EL1PCTEN::SET);
}
