// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Deliberate faults, so tests can prove the kernel reports them.
//!
//! Each function here always raises an exception and is safe: it touches no
//! memory that Rust knows about. The kernel calls them only when built with
//! its `fault-injection` feature and asked to on the command line.

use core::arch::asm;

/// Why [`read_unmapped`] refused to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapped(pub u64);

/// Reads one byte at `addr`, which the kernel's tables must leave unmapped, so
/// the read takes a translation fault. Refuses a mapped address, whose read
/// could have side effects (a device register) instead of faulting.
pub fn read_unmapped(addr: u64) -> Result<u8, Mapped> {
    if crate::mmu::lookup(addr).is_some() {
        return Err(Mapped(addr));
    }
    let value: u32;
    // SAFETY: `addr` is not mapped (checked above), so the load faults and
    // reads nothing; it touches no memory Rust owns.
    unsafe { asm!("ldrb {v:w}, [{a}]", a = in(reg) addr, v = out(reg) value, options(nostack)) };
    Ok(value as u8)
}

/// Executes a permanently undefined instruction (`udf #0`).
pub fn undefined_instruction() {
    // SAFETY: UDF only raises an exception; it has no other effect.
    unsafe { asm!("udf #0", options(nostack, nomem)) };
}
