// SPDX-License-Identifier: Apache-2.0 OR MIT
//! System registers that `aarch64-cpu` does not describe, read by name.
//!
//! The one place outside `.S` files where a raw `mrs` appears (STYLE.md, rule
//! 7). Each function reads one register and has no side effect.

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
