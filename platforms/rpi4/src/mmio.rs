// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The GPIO pins the kernel's console needs.
//!
//! On the Raspberry Pi 4, UART0 (the PL011) reaches header pins 8 and 10
//! only once GPIO 14 and 15 are switched to function ALT0 (otherwise they
//! carry the mini UART, and the PL011 goes to Bluetooth): [`pl011`] does that
//! first, and turns the pins' pull resistors off, as a UART's pins want; the
//! console itself is `plat_pl011_console`'s, as on every board with a PL011.
//!
//! The one place in this crate that turns a physical address into a register
//! block.

use hv_core::platform::Uart;
use hv_kernel::Early;
use plat_pl011_console::Pl011;
use tock_registers::interfaces::ReadWriteable;
use tock_registers::registers::ReadWrite;
use tock_registers::{register_bitfields, register_structs};

/// The PL011 that `uart` describes, set up as the console (at `clock_hz`,
/// the board's `clock-hz`) with GPIO 14 and 15 switched to it first.
pub(crate) fn pl011(early: &Early, uart: &Uart, clock_hz: Option<u32>) -> &'static Pl011 {
    plat_pl011_console::pl011(early, uart, clock_hz, uart0_pins)
}

/// The BCM2711's GPIO block, as the CPU sees it (the device tree's
/// `/soc/gpio@7e200000`, through `/soc`'s ranges).
const GPIO_BASE: usize = 0xfe20_0000;

register_bitfields! {u32,
    /// GPFSEL1: functions of GPIO 10..19, three bits each.
    GPFSEL1 [
        FSEL14 OFFSET(12) NUMBITS(3) [Alt0 = 0b100],
        FSEL15 OFFSET(15) NUMBITS(3) [Alt0 = 0b100],
    ],
    /// GPIO_PUP_PDN_CNTRL_REG0: pull resistors of GPIO 0..15, two bits each.
    PUP_PDN0 [
        PULL14 OFFSET(28) NUMBITS(2) [None = 0],
        PULL15 OFFSET(30) NUMBITS(2) [None = 0],
    ],
}

register_structs! {
    /// The part of the GPIO block the console needs.
    Gpio {
        (0x00 => _gpfsel0),
        (0x04 => gpfsel1: ReadWrite<u32, GPFSEL1::Register>),
        (0x08 => _reserved),
        (0xe4 => pup_pdn0: ReadWrite<u32, PUP_PDN0::Register>),
        (0xe8 => @END),
    }
}

/// Switches GPIO 14 and 15 to UART0 (ALT0: TXD0, RXD0), without pulls.
/// Runs once, on core 0, before the MMU is on (every address is then
/// device memory); nothing else in the kernel drives the GPIO block.
fn uart0_pins() {
    // SAFETY: the BCM2711's GPIO registers sit at GPIO_BASE; the kernel
    // touches them only here, once, before any other core or partition
    // runs (no partition may be given the GPIO block: platform.toml does
    // not list it), so no one else changes these two registers meanwhile.
    let gpio = unsafe { &*(GPIO_BASE as *const Gpio) };
    gpio.gpfsel1
        .modify(GPFSEL1::FSEL14::Alt0 + GPFSEL1::FSEL15::Alt0);
    gpio.pup_pdn0
        .modify(PUP_PDN0::PULL14::None + PUP_PDN0::PULL15::None);
}
