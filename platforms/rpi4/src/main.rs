// SPDX-License-Identifier: Apache-2.0 OR MIT
//! plat-rpi4: Bulkhead on the Raspberry Pi 4.
//!
//! This binary crate is the whole of a board: the facts from
//! `platform.toml` (which its build script turns into constants) and the
//! console ([`mmio`]: UART0, with GPIO 14 and 15 switched to it), put
//! together by `hv_kernel::board!`, which also names the kernel entry. The
//! kernel finds everything else (RAM, the cores and their spin table, the
//! GIC-400, the timer) in the device tree the firmware (or QEMU 10's
//! `raspi4b`) passes.
//!
//! Unsafe code: only [`mmio`], and the kernel entry `board!` exports by
//! name.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

#[expect(
    unsafe_code,
    reason = "the platform's MMIO module: register blocks at device addresses"
)]
mod mmio;

include!(concat!(env!("OUT_DIR"), "/platform.rs"));

hv_kernel::board! {
    /// The Raspberry Pi 4 (BCM2711).
    RaspberryPi4,
    console: mmio::pl011,
}
