// SPDX-License-Identifier: Apache-2.0 OR MIT
//! hv-core: Bulkhead's hardware-independent kernel logic.
//!
//! Everything the kernel decides, as opposed to everything it pokes, lives
//! here, so that it can be tested on the host: what the device tree says about
//! the machine ([`platform`]), which physical memory is free ([`range`],
//! [`memory`]), what the kernel's own page tables contain ([`pagetable`]), and
//! what an exception syndrome means ([`esr`]), which devices a partition may
//! be given on this machine ([`devices`]), and how long to wait for a
//! UART the kernel prints through ([`uart`]). Capabilities, IPC state and the
//! scheduler join it with partitions, and [`lower`] decides how a compiled
//! manifest becomes them.
//!
//! Design rules:
//! - `no_std`, no `unsafe`, no allocation: fixed-capacity `heapless` tables,
//!   sized by the constants in this crate.
//! - No panics on input: every function that takes data from outside (a
//!   device tree, a hypercall argument) returns a `Result` with an error that
//!   says what was wrong.
//! - Architecture effects (writing a system register, touching memory) stay in
//!   `hv-arch-aarch64`; this crate only computes what to write.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

pub mod cap;
pub mod devices;
pub mod devicetree;
pub mod elf;
pub mod esr;
#[cfg(test)]
mod fixtures;
pub mod lower;
pub mod memory;
pub mod pagetable;
pub mod platform;
pub mod range;
pub mod sched;
pub mod speculation;
pub mod state;
pub mod traps;
pub mod uart;

/// The most cores the kernel drives. Cores beyond this are left off and the
/// boot report says so.
pub const MAX_CPUS: usize = 8;
