// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Instructions a partition may not execute, for the tests that check the
//! kernel contains them: each one faults the partition, which the kernel
//! reports and its fault policy handles; none reaches firmware or hardware
//! state. No service has a use for them otherwise.

use core::arch::asm;

/// Executes `smc #0` with `function` in x0 (a PSCI call, say
/// `SYSTEM_OFF`). At EL0 the instruction is undefined, so it traps to the
/// kernel, which faults the partition: firmware never sees it. Returns only
/// if the kernel let the instruction complete, which it must not.
pub fn smc(function: u64) -> u64 {
    let mut x0 = function;
    // SAFETY: the instruction traps before it does anything; were it to
    // complete, an SMCCC call clobbers only x0..x17, as declared.
    unsafe {
        asm!("smc #0", inout("x0") x0, out("x1") _, out("x2") _, out("x3") _, out("x4") _,
             out("x5") _, out("x6") _, out("x7") _, out("x8") _, out("x9") _, out("x10") _,
             out("x11") _, out("x12") _, out("x13") _, out("x14") _, out("x15") _,
             out("x16") _, out("x17") _, options(nostack));
    }
    x0
}
