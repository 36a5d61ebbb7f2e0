// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Attributing SErrors: synchronising on exit from a partition that owns a
//! device.
//!
//! An SError (an asynchronous external abort: a device answering a write
//! with an error, say) arrives some time after the access that caused it.
//! At EL2 the kernel runs with SErrors masked (PSTATE.A, set on every
//! exception entry), so one that becomes pending while the kernel handles
//! an exit waits, and is taken as soon as the core returns to a lower
//! level: in whichever partition runs next, which the kernel would then
//! stop in the culprit's place.
//!
//! So on every exit from a partition that owns a device (the only ones
//! whose accesses reach anything but RAM), before the kernel does anything
//! on its behalf, [`synchronise`] waits for its accesses to complete
//! (`DSB SY`, which on a core without FEAT_RAS is also what makes their
//! errors pending; `ISB`), then looks at ISR_EL1.A. If an SError is
//! pending, it opens a one-instruction window with SErrors unmasked (the
//! pattern of Linux's KVM, `__guest_exit`): the SError is taken at EL2,
//! [`absorb`] recognises it as this window's and returns, and the exit
//! becomes an SError of the partition that caused it. Partitions that own
//! no device pay one load and a branch.
//!
//! What remains unattributable is in `docs/ARCHITECTURE.md`: an error that
//! becomes pending only after the barrier (a device that reports one late,
//! beyond the completion of the write), and SErrors from RAM (ECC), which
//! no partition's behaviour causes.

use core::sync::atomic::{AtomicBool, Ordering};

use hv_core::MAX_CPUS;

use crate::exception::{Kind, Source, Vector};

/// ISR_EL1.A: an SError is pending.
const ISR_A: u64 = 1 << 8;

/// Per core: the window is open, an SError taken at EL2 now is expected.
static WINDOW: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(false) }; MAX_CPUS];

/// Waits for the exiting partition's accesses to complete and takes any
/// SError they raised, at EL2, now. Returns whether there was one. Call
/// with SErrors masked (as the kernel always runs), after everything the
/// exit needs from ESR_EL2, ELR_EL2 and SPSR_EL2 has been read (an SError
/// taken here overwrites them).
pub(crate) fn synchronise() -> bool {
    aarch64_cpu::asm::barrier::dsb(aarch64_cpu::asm::barrier::SY);
    aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
    if crate::sysreg::read_isr_el1() & ISR_A == 0 {
        return false;
    }
    let window = WINDOW.get(crate::vcpu::cpu_index());
    if let Some(open) = window {
        open.store(true, Ordering::SeqCst);
    }
    crate::sysreg::take_pending_serror();
    if let Some(open) = window {
        open.store(false, Ordering::SeqCst);
    }
    true
}

/// Whether `vector` is the SError [`synchronise`] let in on this core, which
/// needs nothing more: the exception returns into the window.
pub(crate) fn absorb(vector: Vector) -> bool {
    vector.kind == Kind::SError
        && vector.source == Source::CurrentElSpx
        && WINDOW
            .get(crate::vcpu::cpu_index())
            .is_some_and(|open| open.load(Ordering::SeqCst))
}
