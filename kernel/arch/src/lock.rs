// SPDX-License-Identifier: Apache-2.0 OR MIT
//! How a core waits for a lock another core holds.
//!
//! The kernel's locks are `spin`'s, with [`Yield`] as their way of waiting:
//! each turn of the wait runs `yield`, the architecture's hint that the core
//! is spinning. On hardware it lets a core's sibling threads (where a core has
//! them) run; nothing waits on it, so no wake-up can be lost, as one could
//! with `wfe`. Under QEMU without parallel TCG (so under `-icount`, where QEMU
//! runs the cores in turn) `yield` ends the core's turn: a core that finds
//! the lock taken hands the machine to the others, among them the holder,
//! instead of spinning out the rest of a turn that can last milliseconds
//! while the holder cannot run. `core::hint::spin_loop`, `spin`'s own way,
//! is an `isb` on AArch64, which does neither.

/// `spin`'s [`spin::RelaxStrategy`] for the kernel's locks (above).
pub struct Yield;

impl spin::RelaxStrategy for Yield {
    #[inline(always)]
    fn relax() {
        // SAFETY: `yield` is a hint: it reads and writes no memory, no
        // register and no flag.
        unsafe { core::arch::asm!("yield", options(nomem, nostack, preserves_flags)) }
    }
}
