// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The PL011 UART the kernel prints through, and the GPIO pins it needs.
//!
//! On the Raspberry Pi 4, UART0 (the PL011) reaches header pins 8 and 10
//! only once GPIO 14 and 15 are switched to function ALT0 (otherwise they
//! carry the mini UART, and the PL011 goes to Bluetooth): [`pl011`] does that
//! first, and turns the pins' pull resistors off, as a UART's pins want.
//!
//! The one place in this crate that turns a physical address into a register
//! block. The registers and what is done with them are `drv_pl011`'s (the
//! UART driver partition drives the same device through the same crate);
//! this module only places the block and keeps the kernel's rule for it. The
//! kernel identity-maps the UART as device memory, so the same address works
//! before and after the MMU is turned on.
//!
//! Every wait on the UART is bounded ([`hv_core::uart::Transmitter`]
//! decides): a partition that owns the UART, or a UART that never drains,
//! costs the kernel dropped output, never a hang.

use drv_pl011::Registers;
use hv_core::platform::Uart;
use hv_core::uart::{Decision, Transmitter};
use hv_kernel::console::Console;
use spin::Once;
use tock_registers::interfaces::ReadWriteable;
use tock_registers::registers::ReadWrite;
use tock_registers::{register_bitfields, register_structs};

/// A PL011 the kernel prints through.
///
/// # Invariants
/// `uart`'s registers are a PL011 register block that nothing else in the
/// kernel drives.
pub(crate) struct Pl011 {
    uart: drv_pl011::Pl011<'static>,
    /// Whether the UART was found stalled, and what was dropped. Writers
    /// hold the kernel's console lock, so this lock is free but for the
    /// panic path, which then waits with a bound of its own.
    transmitter: spin::Mutex<Transmitter>,
}

// SAFETY: every access is a volatile read or write of a device register; two
// cores writing at once can interleave characters (the kernel's console lock
// prevents that) but cannot break memory safety.
unsafe impl Sync for Pl011 {}

// SAFETY: as for `Sync`: the register block is a device, not memory owned by
// one core, so the handle may move between cores.
unsafe impl Send for Pl011 {}

impl Pl011 {
    fn put(&self, transmitter: &mut Transmitter, byte: u8) {
        if transmitter.admit(|| self.uart.transmit_full()) == Decision::Send {
            self.uart.send(byte);
        }
    }
}

impl Console for Pl011 {
    fn write_bytes(&self, bytes: &[u8]) {
        // Another core panicking while this one prints: a fresh bound.
        let mut spare = Transmitter::new();
        let mut guard = self.transmitter.try_lock();
        let transmitter = guard.as_deref_mut().unwrap_or(&mut spare);
        for &byte in bytes {
            if byte == b'\n' {
                self.put(transmitter, b'\r');
            }
            self.put(transmitter, byte);
        }
        transmitter.drain(|| self.uart.busy());
    }

    fn dropped(&self) -> u64 {
        self.transmitter.try_lock().map_or(0, |t| t.dropped())
    }
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

static CONSOLE: Once<Pl011> = Once::new();

/// The PL011 that `uart` describes, set up as the console. Only the first
/// call's UART is used: the kernel has one console.
pub(crate) fn pl011(uart: &Uart) -> &'static Pl011 {
    CONSOLE.call_once(|| {
        uart0_pins();
        let base = uart.registers.start() as usize;
        // SAFETY: the device tree (or platform.toml, when there is none) says a
        // PL011 sits at `base`; the kernel maps it as device memory and drives
        // it only through this one `Pl011` (the `Once` above), which upholds
        // the type's invariant.
        let registers = unsafe { &*(base as *const Registers) };
        let pl011 = Pl011 {
            uart: drv_pl011::Pl011::new(registers),
            transmitter: spin::Mutex::new(Transmitter::new()),
        };
        pl011.uart.enable();
        pl011
    })
}
