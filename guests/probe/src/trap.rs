// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Exceptions the probe takes at EL1, from the vector table in `entry.S`.
//!
//! An IRQ goes to the GIC driver ([`crate::gic::take`]). A synchronous
//! exception is expected only inside [`attempt`] (the hostile probes: an
//! access or call the hypervisor might answer with an injected abort or
//! undefined-instruction exception rather than emulate): it is recorded and
//! the instruction skipped. Any other exception is reported on one line,
//! `probe: unexpected exception: vector <n>, ESR <esr>, ELR <elr>, FAR
//! <far>`, and the probe halts.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::console::say;

/// The vector of a synchronous exception from EL1 on SP_EL1.
const CURRENT_SYNC: u64 = 4;
/// The vector of an IRQ at EL1 on SP_EL1.
const CURRENT_IRQ: u64 = 5;
/// Every A64 instruction's size.
const INSTRUCTION: u64 = 4;

/// A synchronous exception is expected (inside [`attempt`]).
static EXPECTING: AtomicBool = AtomicBool::new(false);
/// One was taken since [`attempt`] began.
static TAKEN: AtomicBool = AtomicBool::new(false);
/// Its syndrome.
static SYNDROME: AtomicU64 = AtomicU64::new(0);

/// Runs `f`; `Err(ESR)` if it took a synchronous exception (the faulting
/// instruction was skipped), else its result.
pub(crate) fn attempt<T>(f: impl FnOnce() -> T) -> Result<T, u64> {
    TAKEN.store(false, Ordering::SeqCst);
    EXPECTING.store(true, Ordering::SeqCst);
    let value = f();
    EXPECTING.store(false, Ordering::SeqCst);
    if TAKEN.load(Ordering::SeqCst) {
        Err(SYNDROME.load(Ordering::SeqCst))
    } else {
        Ok(value)
    }
}

/// The vector table's handler: `index` is the vector (0 to 15), `elr` where
/// the exception was taken; returns where to resume.
pub(crate) extern "C" fn on_exception(index: u64, elr: u64) -> u64 {
    match index {
        CURRENT_IRQ => {
            crate::gic::take();
            elr
        }
        CURRENT_SYNC if EXPECTING.load(Ordering::SeqCst) => {
            let (esr, _) = crate::arch::exception_syndrome();
            SYNDROME.store(esr, Ordering::SeqCst);
            TAKEN.store(true, Ordering::SeqCst);
            elr.wrapping_add(INSTRUCTION)
        }
        _ => {
            let (esr, far) = crate::arch::exception_syndrome();
            say!("unexpected exception: vector {index}, ESR {esr:#x}, ELR {elr:#x}, FAR {far:#x}");
            crate::arch::halt()
        }
    }
}
