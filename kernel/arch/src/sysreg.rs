// SPDX-License-Identifier: Apache-2.0 OR MIT
//! System registers that `aarch64-cpu` does not describe, read and written
//! by name.
//!
//! The one place outside `.S` files where a raw `mrs` or `msr` appears
//! (STYLE.md, rule 7). Every other register goes through `aarch64-cpu`'s
//! typed fields (11.2, the workspace's version), which lacks these:
//! PMCCNTR_EL0, PMUSERENR_EL0, CTR_EL0, ID_AA64ISAR2_EL1, ISR_EL1,
//! CNTHP_TVAL_EL2, the GICv3 CPU interface registers ICC_PMR_EL1,
//! ICC_IGRPEN1_EL1, ICC_IAR1_EL1, ICC_EOIR1_EL1, ICC_DIR_EL1 and
//! ICC_SGI1R_EL1, and writes of ICC_CTLR_EL1 (which it can only read), and
//! the PSTATE.A window of [`take_pending_serror`]. The `.S` files (boot,
//! vectors, context switch) access registers in assembly because they run
//! where Rust cannot (no stack yet, or mid-switch). Each read has no side
//! effect unless its comment says so.

use core::arch::asm;

/// PMCCNTR_EL0: the PMU cycle counter, started at entry by `boot.S`. Under
/// QEMU with `-icount shift=0` it counts retired instructions exactly; on
/// hardware, cycles.
pub fn cycle_counter() -> u64 {
    let value: u64;
    // SAFETY: reading PMCCNTR_EL0 at EL2 has no side effect and touches no memory.
    unsafe {
        asm!("mrs {}, pmccntr_el0", out(reg) value, options(nomem, nostack, preserves_flags))
    };
    value
}

/// CTR_EL0: the cache type. Bits 19:16 (DminLine) are log2 of the words in
/// the smallest data cache line of any cache the core has.
pub fn read_ctr_el0() -> u64 {
    let value: u64;
    // SAFETY: reading CTR_EL0 has no side effect and touches no memory.
    unsafe { asm!("mrs {}, ctr_el0", out(reg) value, options(nomem, nostack, preserves_flags)) };
    value
}

/// ID_AA64ISAR2_EL1 (`S3_0_C0_C6_2`; `aarch64-cpu` lacks it): bits 31:28
/// say whether `CLRBHB` exists. On a core older than the register it is in
/// the reserved ID space, which reads as zero.
pub fn read_id_aa64isar2_el1() -> u64 {
    let value: u64;
    // SAFETY: reading an ID register has no side effect and touches no memory.
    unsafe {
        asm!("mrs {}, S3_0_C0_C6_2", out(reg) value, options(nomem, nostack, preserves_flags))
    };
    value
}

/// ISR_EL1 (`aarch64-cpu` lacks it): at EL2, which physical interrupts
/// are pending; bit 8 (A) an SError.
pub fn read_isr_el1() -> u64 {
    let value: u64;
    // SAFETY: reading ISR_EL1 has no side effect and touches no memory.
    unsafe { asm!("mrs {}, isr_el1", out(reg) value, options(nomem, nostack, preserves_flags)) };
    value
}

/// Unmasks SErrors for one instruction (PSTATE.A), so that a pending one is
/// taken at EL2 (by the ISB at the latest), then masks them again. Only
/// for `crate::serror`, whose handler expects it.
pub(crate) fn take_pending_serror() {
    // SAFETY: the SError taken in the window goes to the EL2 vectors, whose
    // handler (`crate::serror::absorb`) returns straight into the window; the
    // exception saves and restores every register, so nothing here changes
    // but ELR_EL2, SPSR_EL2 and ESR_EL2, which the caller no longer needs.
    unsafe {
        asm!(
            "msr daifclr, #4",
            "isb",
            "msr daifset, #4",
            options(nostack, preserves_flags)
        )
    };
}

/// Defines a function writing one system register by name.
macro_rules! write_register {
    ($(#[$doc:meta])* $name:ident, $register:literal) => {
        $(#[$doc])*
        pub fn $name(value: u64) {
            // SAFETY: the callers (the GIC driver, the timer) write these
            // registers with values the architecture defines; none of them
            // changes memory or the kernel's own translation.
            unsafe { asm!(concat!("msr ", $register, ", {}"), in(reg) value, options(nostack, preserves_flags)) };
        }
    };
}

write_register!(
    /// ICC_PMR_EL1: the priority mask.
    write_icc_pmr_el1, "S3_0_C4_C6_0");
write_register!(
    /// ICC_CTLR_EL1: CPU interface control (`aarch64-cpu` only reads it).
    write_icc_ctlr_el1, "S3_0_C12_C12_4");
write_register!(
    /// ICC_IGRPEN1_EL1: group 1 interrupts enabled.
    write_icc_igrpen1_el1, "S3_0_C12_C12_7");
write_register!(
    /// ICC_EOIR1_EL1: end of interrupt.
    write_icc_eoir1_el1, "S3_0_C12_C12_1");
write_register!(
    /// ICC_DIR_EL1: deactivate an interrupt (EOI mode 1).
    write_icc_dir_el1, "S3_0_C12_C11_1");
write_register!(
    /// ICC_SGI1R_EL1: generate a group 1 SGI.
    write_icc_sgi1r_el1, "S3_0_C12_C11_5");
write_register!(
    /// CNTHP_TVAL_EL2: ticks until the EL2 physical timer fires.
    write_cnthp_tval_el2, "cnthp_tval_el2");
write_register!(
    /// CNTHP_CVAL_EL2: the counter value at which the EL2 physical timer
    /// fires (`aarch64-cpu` does not define it).
    write_cnthp_cval_el2, "cnthp_cval_el2");

write_register!(
    /// PMUSERENR_EL0: what EL0 may do with the PMU.
    write_pmuserenr_el0, "pmuserenr_el0");

/// ICC_IAR1_EL1: acknowledge the highest-priority pending group 1 interrupt.
pub fn read_icc_iar1_el1() -> u64 {
    let value: u64;
    // SAFETY: acknowledging changes the GIC's state for this core only (the
    // interrupt becomes active); the caller ends it with EOIR. No memory is touched.
    unsafe {
        asm!("mrs {}, S3_0_C12_C12_0", out(reg) value, options(nomem, nostack, preserves_flags))
    };
    value
}
