// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The EL2 physical timer (CNTHP): the kernel's own tick on each core.
//!
//! Partitions never see it: its interrupt (a PPI, 26 on QEMU's virt machine)
//! is taken at EL2, and EL1/EL0 have no access to the physical timer. The
//! EL1 physical timer (CNTP, denied to EL1 and EL0 too) is the kernel's
//! second: it wakes guest vCPUs whose virtual timer is not loaded
//! ([`wake_at`]).

use aarch64_cpu::registers::{
    CNTHCTL_EL2, CNTHP_CTL_EL2, CNTP_CTL_EL0, CNTP_CVAL_EL0, ReadWriteable, Writeable,
};

use crate::sysreg;

/// Fires the timer after `ticks` counter ticks (see
/// [`crate::cpu::timer_frequency`]), and keeps it enabled and unmasked.
pub fn arm(ticks: u64) {
    sysreg::write_cnthp_tval_el2(ticks);
    CNTHP_CTL_EL2.write(CNTHP_CTL_EL2::ENABLE::SET + CNTHP_CTL_EL2::IMASK::CLEAR);
}

/// Fires the timer when the physical counter reaches `deadline` (at once if
/// it has), and keeps it enabled and unmasked.
pub fn arm_at(deadline: u64) {
    sysreg::write_cnthp_cval_el2(deadline);
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

/// Fires the EL1 physical timer (CNTP, which EL1 and EL0 are denied: see
/// [`deny_lower_levels`]) when the physical counter reaches `deadline`:
/// the kernel's wake-up for guests whose virtual timers are not loaded.
pub fn wake_at(deadline: u64) {
    CNTP_CVAL_EL0.set(deadline);
    CNTP_CTL_EL0.write(CNTP_CTL_EL0::ENABLE::SET + CNTP_CTL_EL0::IMASK::CLEAR);
}

/// Stops the wake-up timer.
pub fn stop_wake() {
    CNTP_CTL_EL0.write(CNTP_CTL_EL0::ENABLE::CLEAR);
}
