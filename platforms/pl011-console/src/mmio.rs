// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The PL011 UART the kernel prints through.
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
use hv_arch_aarch64::cpu::exclusives_work;
use hv_arch_aarch64::early::{Early, EarlyOnce};
use hv_core::platform::Uart;
use hv_core::uart::{Decision, Transmitter};
use hv_kernel::console::Console;

/// A PL011 the kernel prints through.
///
/// # Invariants
/// `uart`'s registers are a PL011 register block that nothing else in the
/// kernel drives.
pub struct Pl011 {
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
        // Before the MMU is on, no lock (`hv_arch_aarch64::early`): only the
        // boot core prints then, with a fresh bound each time.
        let mut spare = Transmitter::new();
        let mut guard = exclusives_work()
            .then(|| self.transmitter.try_lock())
            .flatten();
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
        exclusives_work()
            .then(|| self.transmitter.try_lock())
            .flatten()
            .map_or(0, |t| t.dropped())
    }
}

static CONSOLE: EarlyOnce<Pl011> = EarlyOnce::new();

/// The PL011 that `uart` describes, set up as the console, after
/// `prepare` (what the board must do first, such as routing the UART to its
/// pins). Only the first call's UART is used: the kernel has one console.
/// Called on the boot core, before the MMU is on. With `clock_hz` (the
/// board's `platform.toml` `clock-hz`) the kernel sets the line itself,
/// 115200 8N1; without, it keeps what the loader set.
pub fn pl011(
    early: &Early,
    uart: &Uart,
    clock_hz: Option<u32>,
    prepare: impl FnOnce(),
) -> &'static Pl011 {
    CONSOLE.call_once(early, || {
        prepare();
        let base = uart.registers.start() as usize;
        // SAFETY: the device tree (or platform.toml, when there is none) says a
        // PL011 sits at `base`; the kernel maps it as device memory and drives
        // it only through this one `Pl011` (the `EarlyOnce` above), which upholds
        // the type's invariant.
        let registers = unsafe { &*(base as *const Registers) };
        let pl011 = Pl011 {
            uart: drv_pl011::Pl011::new(registers),
            transmitter: spin::Mutex::new(Transmitter::new()),
        };
        match clock_hz {
            Some(clock) => pl011.uart.enable_at(clock),
            None => pl011.uart.enable(),
        }
        pl011
    })
}
