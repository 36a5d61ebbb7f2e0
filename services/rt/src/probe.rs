// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Instructions a partition may not execute, for the tests that check the
//! kernel contains them: each one is refused or faults the partition, which
//! the kernel reports and its fault policy handles; none reaches firmware or
//! hardware state. No service has a use for them otherwise.

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

/// A reserved `svc` immediate: `svc #1` or `svc #0xffff` (the ABI's
/// hypercalls use `svc #0` only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reserved {
    /// `svc #1`.
    One,
    /// `svc #0xffff`.
    Max,
}

/// Executes `svc #1` or `svc #0xffff` with x0..x7 = `regs` and returns
/// x0..x7 as they came back. The immediate is reserved (`docs/abi.md`
/// §1.1): the kernel must refuse the call with `NotSupported` and change
/// nothing else, whatever x0 asks for.
pub fn svc_reserved(which: Reserved, mut regs: [u64; 8]) -> [u64; 8] {
    // SAFETY: as `call::raw`: the kernel reads and writes only x0..x7 (and
    // may clobber x8..x17).
    unsafe {
        match which {
            Reserved::One => asm!("svc #1",
                inout("x0") regs[0], inout("x1") regs[1], inout("x2") regs[2],
                inout("x3") regs[3], inout("x4") regs[4], inout("x5") regs[5],
                inout("x6") regs[6], inout("x7") regs[7],
                out("x8") _, out("x9") _, out("x10") _, out("x11") _, out("x12") _,
                out("x13") _, out("x14") _, out("x15") _, out("x16") _, out("x17") _,
                options(nostack)),
            Reserved::Max => asm!("svc #0xffff",
                inout("x0") regs[0], inout("x1") regs[1], inout("x2") regs[2],
                inout("x3") regs[3], inout("x4") regs[4], inout("x5") regs[5],
                inout("x6") regs[6], inout("x7") regs[7],
                out("x8") _, out("x9") _, out("x10") _, out("x11") _, out("x12") _,
                out("x13") _, out("x14") _, out("x15") _, out("x16") _, out("x17") _,
                options(nostack)),
        }
    }
    regs
}

/// Reads AMCNTENSET0_EL0, an activity monitors (AMU) register. The kernel
/// traps the activity monitors (CPTR_EL2.TAM), so the partition faults; on
/// a CPU without them (QEMU's) the instruction is undefined, and the
/// partition faults all the same. Returns only if the read completed, which
/// it must not.
pub fn read_activity_monitors() -> u64 {
    let value: u64;
    // SAFETY: reads a register, or traps.
    unsafe { asm!("mrs {}, s3_3_c13_c2_1", out(reg) value, options(nostack)) };
    value
}

/// Writes this very function's first instruction back over itself. Stage 2
/// maps a service's code read-only (its program's ELF segment flags), so
/// the write faults the partition. Returns only if the write went through,
/// which it must not (then it changed nothing).
pub fn write_own_code() {
    let at = write_own_code as *const () as *mut u32;
    // SAFETY: the address is this function's first instruction, in the
    // program's own code: the write faults before it changes anything, and
    // were it to go through it writes the word already there.
    unsafe { at.write_volatile(at.read_volatile()) }
}

/// `ret`, in writable data.
static RET: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0xd65f_03c0);

/// Branches to a `ret` instruction in the program's writable data. Stage 2
/// maps a service's data never executable, so fetching it faults the
/// partition. Returns only if the instruction ran, which it must not.
pub fn execute_own_data() {
    let at = RET.as_ptr() as usize;
    // SAFETY: the target is one `ret` instruction: the fetch faults before
    // it runs, and were it to run it returns here at once, clobbering only
    // what a call may.
    unsafe { asm!("blr {0}", in(reg) at, clobber_abi("C"), options(nostack)) }
}
