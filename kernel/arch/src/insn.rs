// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The raw instructions `aarch64-cpu` does not wrap: TLB and cache
//! maintenance, and firmware calls.
//!
//! Each is a safe function where the instruction cannot break memory safety on
//! its own; the callers ([`crate::mmu`], [`crate::psci`]) are where ordering
//! matters and is explained.

use core::arch::asm;

/// Invalidates every EL2 TLB entry on this core.
pub fn tlbi_alle2() {
    // SAFETY: TLB invalidation only drops cached translations; the next access
    // walks the tables again. No memory is read or written.
    unsafe { asm!("tlbi alle2", options(nostack, preserves_flags)) };
}

/// The smallest data cache line of this core, in bytes (CTR_EL0.DminLine):
/// the step for cleaning a range line by line, so that no line is skipped
/// on a core whose lines are shorter than 64 bytes.
#[must_use]
pub fn dcache_line() -> usize {
    4 << ((crate::sysreg::read_ctr_el0() >> 16) & 0xf)
}

/// Cleans and invalidates every data cache line holding a byte of
/// `[addr, addr + len)` to the point of coherency.
pub fn dc_civac_range(addr: usize, len: usize) {
    let step = dcache_line();
    let mut line = addr & !(step - 1);
    while line < addr.saturating_add(len) {
        dc_civac(line);
        line += step;
    }
}

/// Invalidates every data cache line holding a byte of `[addr, addr + len)`
/// to the point of coherency, without writing any back: for memory written
/// with the caches off, whose older copies a cache may still hold. A line
/// that is only partly in the range is dropped whole, so the range must be
/// whole lines of memory no cache holds dirty (the boot protocol has the
/// loader clean the image and device tree to the point of coherency).
pub fn dc_ivac_range(addr: usize, len: usize) {
    let step = dcache_line();
    let mut line = addr & !(step - 1);
    while line < addr.saturating_add(len) {
        // SAFETY: invalidating drops cached copies; memory keeps what was
        // written with the caches off. The caller's range holds no dirty
        // line (above), so nothing written is lost.
        unsafe { asm!("dc ivac, {}", in(reg) line, options(nostack, preserves_flags)) };
        line += step;
    }
}

/// Cleans every data cache line holding a byte of `[addr, addr + len)` to
/// the point of unification.
pub fn dc_cvau_range(addr: usize, len: usize) {
    let step = dcache_line();
    let mut line = addr & !(step - 1);
    while line < addr.saturating_add(len) {
        dc_cvau(line);
        line += step;
    }
}

/// Cleans and invalidates the data cache line holding `addr` to the point of
/// coherency, so that a core whose MMU and caches are still off reads what
/// this core wrote.
pub fn dc_civac(addr: usize) {
    // SAFETY: clean-and-invalidate writes a dirty line back and drops it; the
    // memory's contents are unchanged, so no Rust invariant can be broken.
    unsafe { asm!("dc civac, {}", in(reg) addr, options(nostack, preserves_flags)) };
}

/// Cleans the data cache line holding `addr` to the point of unification, so
/// that instruction fetches see what was written there.
pub fn dc_cvau(addr: usize) {
    // SAFETY: cleaning a line writes it back; memory contents are unchanged.
    unsafe { asm!("dc cvau, {}", in(reg) addr, options(nostack, preserves_flags)) };
}

/// Invalidates every core's instruction cache to the point of unification
/// (inner shareable).
pub fn ic_ialluis() {
    // SAFETY: dropping instruction cache lines only forces refetches.
    unsafe { asm!("ic ialluis", options(nostack, preserves_flags)) };
}

/// Invalidates the whole instruction cache to the point of unification.
pub fn ic_iallu() {
    // SAFETY: dropping instruction cache lines only forces refetches.
    unsafe { asm!("ic iallu", options(nostack, preserves_flags)) };
}

/// Calls firmware through SMC with SMCCC argument registers x0 to x3 and
/// returns x0.
pub fn smc(function: u32, x1: u64, x2: u64, x3: u64) -> u64 {
    let ret: u64;
    // SAFETY: an SMCCC call may clobber x0-x17 and nothing else; firmware does
    // not write to our memory for the calls the kernel makes (PSCI).
    unsafe {
        asm!("smc #0", inout("x0") u64::from(function) => ret, inout("x1") x1 => _,
             inout("x2") x2 => _, inout("x3") x3 => _, out("x4") _, out("x5") _, out("x6") _,
             out("x7") _, out("x8") _, out("x9") _, out("x10") _, out("x11") _, out("x12") _,
             out("x13") _, out("x14") _, out("x15") _, out("x16") _, out("x17") _,
             options(nostack));
    }
    ret
}

/// Calls firmware through HVC (only when not running at EL2) with SMCCC
/// argument registers x0 to x3 and returns x0.
pub fn hvc(function: u32, x1: u64, x2: u64, x3: u64) -> u64 {
    let ret: u64;
    // SAFETY: as for `smc`.
    unsafe {
        asm!("hvc #0", inout("x0") u64::from(function) => ret, inout("x1") x1 => _,
             inout("x2") x2 => _, inout("x3") x3 => _, out("x4") _, out("x5") _, out("x6") _,
             out("x7") _, out("x8") _, out("x9") _, out("x10") _, out("x11") _, out("x12") _,
             out("x13") _, out("x14") _, out("x15") _, out("x16") _, out("x17") _,
             options(nostack));
    }
    ret
}

/// Cleans and invalidates one data or unified cache line by set and way
/// (`DC CISW`; the operand as [`hv_core::speculation::CacheGeometry::operand`]
/// makes it).
pub fn dc_cisw(set_way: u64) {
    // SAFETY: clean and invalidate together write a dirty line back before
    // dropping it, so memory keeps every value; no address is accessed.
    unsafe { asm!("dc cisw, {}", in(reg) set_way, options(nostack, preserves_flags)) };
}

/// Invalidates every stage 1 and stage 2 EL1&0 TLB entry on this core, of
/// every VMID (`TLBI ALLE1`), and waits for it.
pub fn tlbi_alle1() {
    // SAFETY: TLB invalidation only drops cached translations of the
    // partitions; the kernel's own (EL2) stay. No memory is accessed.
    unsafe {
        asm!(
            "tlbi alle1",
            "dsb nsh",
            "isb",
            options(nostack, preserves_flags)
        )
    };
}

/// Overwrites the branch history: `count` taken branches (at least 1: the
/// caller checks, since 0 would loop 2^64 times),
/// then `dsb nsh; isb` (Arm's Spectre-BHB loop, as Linux's
/// `__mitigate_spectre_bhb_loop`).
#[inline(always)]
pub fn branch_history_loop(count: u8) {
    // SAFETY: branches to the next instruction and a counter in a scratch
    // register; no memory is accessed.
    unsafe {
        asm!(
            "2:",
            "b 3f",
            "3:",
            "subs {n}, {n}, #1",
            "b.ne 2b",
            "dsb nsh",
            "isb",
            n = inout(reg) u64::from(count) => _,
            options(nostack),
        );
    }
}

/// `CLRBHB` (`hint #22`, FEAT_CLRBHB), then `isb`: clears the branch
/// history.
pub fn clear_branch_history() {
    // SAFETY: a hint that changes only predictor state.
    unsafe { asm!("hint #22", "isb", options(nostack, preserves_flags)) };
}
