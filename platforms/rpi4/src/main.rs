// SPDX-License-Identifier: Apache-2.0 OR MIT
//! plat-rpi4: Bulkhead on the Raspberry Pi 4.
//!
//! This binary crate is the whole of a board: it names the kernel entry,
//! supplies the console driver ([`mmio`]: UART0, with GPIO 14 and 15 switched
//! to it) and the facts from
//! `platform.toml`. The kernel finds everything else (RAM, the cores and their spin
//! table, the GIC-400, the timer) in the device tree the firmware (or QEMU
//! 10's `raspi4b`) passes.
//!
//! Unsafe code: only [`mmio`], and the assembly trampoline that
//! `kernel_entry!` emits.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

#[expect(
    unsafe_code,
    reason = "the platform's MMIO module: register blocks at device addresses"
)]
mod mmio;

use hv_core::platform::Uart;
use hv_core::range::PhysRange;
use hv_kernel::console::Console;
use hv_kernel::{Early, Platform};

include!(concat!(env!("OUT_DIR"), "/platform.rs"));

/// The Raspberry Pi 4 (BCM2711).
struct RaspberryPi4;

impl Platform for RaspberryPi4 {
    const NAME: &'static str = "rpi4";

    const CONSOLE: Uart = match PhysRange::new(CONSOLE_BASE, CONSOLE_SIZE) {
        Some(registers) => Uart {
            registers,
            irq: Some(CONSOLE_INTID),
        },
        None => panic!("platform.toml's console range overflows"),
    };

    const DEVICES: &'static [hv_core::devices::Peripheral] = DEVICES;

    fn console(early: &Early, uart: &Uart) -> &'static dyn Console {
        mmio::pl011(early, uart)
    }
}

hv_arch_aarch64::kernel_entry!(hv_kernel::start::<RaspberryPi4>);
