// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Output through the PL011 the monitor emulates at `GUEST_UART`, or,
//! under Xen ([`use_xen`]), through Xen's console hypercall.
//!
//! Every register access traps to the monitor, which gathers the bytes and
//! sends whole lines to the console service, where they appear as
//! `[<guest name>] probe: ...`. Each byte waits while FR.TXFF says the
//! transmit FIFO is full (the monitor's never is; the wait is bounded, so a
//! wrong answer cannot hang the probe).

use core::fmt::{self, Write as _};
use core::sync::atomic::{AtomicBool, Ordering};

use hv_abi::vm::GUEST_UART;

/// The data register.
const DR: u64 = 0x00;
/// The flag register.
pub(crate) const FR: u64 = 0x18;
/// FR: the transmit FIFO is full.
const FR_TXFF: u32 = 1 << 5;
/// Polls of FR before a byte is written anyway.
const PATIENCE: u32 = 1000;

/// Lines go to Xen's console, not the PL011.
static XEN: AtomicBool = AtomicBool::new(false);

/// From now on, lines go to Xen's console (`HYPERVISOR_console_io`): under
/// Xen, as its hardware domain, the probe has no PL011 (Xen keeps it).
pub(crate) fn use_xen() {
    XEN.store(true, Ordering::Relaxed);
}

/// The UART, as a formatter.
struct Uart;

impl fmt::Write for Uart {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        if XEN.load(Ordering::Relaxed) {
            crate::arch::xen_console_write(text.as_bytes());
            return Ok(());
        }
        for byte in text.bytes() {
            for _ in 0..PATIENCE {
                if crate::arch::read32(GUEST_UART + FR).is_none_or(|fr| fr & FR_TXFF == 0) {
                    break;
                }
            }
            crate::arch::write32(GUEST_UART + DR, u32::from(byte));
        }
        Ok(())
    }
}

/// Prints `probe: `, the arguments and a newline.
pub(crate) fn line(args: fmt::Arguments<'_>) {
    let _ = Uart.write_str("probe: ");
    let _ = Uart.write_fmt(args);
    let _ = Uart.write_str("\n");
}

/// Prints one line, `probe: ` and the `format!`-style arguments.
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::console::line(format_args!($($arg)*))
    };
}
pub(crate) use say;

/// A number of thousandths, shown with three decimals (`12.345`): the
/// probe has no floating point.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Milli(pub(crate) u64);

impl fmt::Display for Milli {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:03}", self.0 / 1000, self.0 % 1000)
    }
}

/// An SMCCC result register as a signed number (`-1` for NOT_SUPPORTED).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Signed(pub(crate) u64);

impl fmt::Display for Signed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.cast_signed())
    }
}
