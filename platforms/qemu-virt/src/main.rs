// SPDX-License-Identifier: Apache-2.0 OR MIT
//! plat-qemu-virt: Bulkhead on QEMU's `virt` machine.
//!
//! This binary crate is the whole of a board: it names the kernel entry,
//! the console (a PL011, `plat_pl011_console`) and the facts from
//! `platform.toml`. The kernel finds everything else (RAM, cores, GICv2 or
//! GICv3, timer) in the device tree QEMU passes.
//!
//! Unsafe code: none but the assembly trampoline that `kernel_entry!` emits.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

use hv_core::platform::Uart;
use hv_core::range::PhysRange;
use hv_kernel::console::Console;
use hv_kernel::{Early, Platform};

include!(concat!(env!("OUT_DIR"), "/platform.rs"));

/// QEMU's `virt` machine.
struct QemuVirt;

impl Platform for QemuVirt {
    const NAME: &'static str = "qemu-virt";

    const CONSOLE: Uart = match PhysRange::new(CONSOLE_BASE, CONSOLE_SIZE) {
        Some(registers) => Uart {
            registers,
            irq: Some(CONSOLE_INTID),
        },
        None => panic!("platform.toml's console range overflows"),
    };

    const DEVICES: &'static [hv_core::devices::Peripheral] = DEVICES;

    fn console(early: &Early, uart: &Uart) -> &'static dyn Console {
        plat_pl011_console::pl011(early, uart, CONSOLE_CLOCK_HZ, || {})
    }
}

hv_arch_aarch64::kernel_entry!(hv_kernel::start::<QemuVirt>);
