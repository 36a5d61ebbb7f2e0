// SPDX-License-Identifier: Apache-2.0 OR MIT
//! plat-pl011-console: the kernel's console on a PL011 UART, shared by every
//! board whose console is one (`platforms/qemu-virt`, `platforms/rpi4`), so
//! that a board crate holds only what is its own.
//!
//! Unsafe code: only [`mmio`], which places the register block.
#![no_std]
#![deny(unsafe_code)]

#[expect(
    unsafe_code,
    reason = "the platform's MMIO module: a register block at a device address"
)]
mod mmio;

pub use mmio::{Pl011, pl011};
