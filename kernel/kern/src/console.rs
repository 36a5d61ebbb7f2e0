// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The kernel's console: whole lines, whatever core prints them.
//!
//! The platform supplies a [`Console`] (a UART driver); [`println!`] formats
//! into it under a lock, so lines from several cores never interleave. The
//! panic path uses [`emergency_print`], which takes the lock if it can and
//! prints anyway if another core holds it for too long. The driver never
//! waits for its device without a bound: what it could not send it counts
//! as dropped, and the next line printed says how much was lost.

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicU64, Ordering};

use crate::shared::Mutex;
use hv_arch_aarch64::cpu::exclusives_work;
use hv_arch_aarch64::early::{Early, EarlyOnce};

/// A byte sink the kernel prints to.
pub trait Console: Sync {
    /// Writes `bytes`, turning `\n` into `\r\n` if the device needs it, and
    /// returns once they are all queued.
    fn write_bytes(&self, bytes: &[u8]);

    /// Bytes dropped so far because the device did not take them in time
    /// (a driver must never wait for its device without a bound).
    fn dropped(&self) -> u64 {
        0
    }
}

static CONSOLE: EarlyOnce<&'static dyn Console> = EarlyOnce::new();
static LOCK: Mutex<()> = Mutex::new(());
/// Dropped bytes already reported (guarded by `LOCK`'s holder).
static REPORTED: AtomicU64 = AtomicU64::new(0);

/// Makes `console` the kernel's console, on the boot core before the MMU is
/// on. The first call wins.
pub fn init(early: &Early, console: &'static dyn Console) {
    CONSOLE.call_once(early, || console);
}

struct Writer(&'static dyn Console);

impl Write for Writer {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.write_bytes(s.as_bytes());
        Ok(())
    }
}

/// Prints `args` and a newline as one line. Does nothing before [`init`].
/// Takes no lock while the MMU is off (only the boot core prints then, and
/// a lock would need exclusives: `hv_arch_aarch64::early`).
pub fn print_line(args: fmt::Arguments<'_>) {
    let Some(console) = CONSOLE.get() else { return };
    let _guard = exclusives_work().then(|| crate::shared::lock(&LOCK));
    let dropped = console.dropped();
    let reported = REPORTED.load(Ordering::Relaxed);
    if dropped > reported {
        REPORTED.store(dropped, Ordering::Relaxed);
        let _ = writeln!(
            Writer(*console),
            "bulkhead: console: {} bytes of the kernel's output dropped: the UART stopped draining",
            dropped - reported
        );
    }
    let _ = writeln!(Writer(*console), "{args}");
}

/// Prints a line even if another core holds the console lock and will never
/// let go (it may have crashed holding it).
pub fn emergency_print(args: fmt::Arguments<'_>) {
    let Some(console) = CONSOLE.get() else { return };
    let guard = exclusives_work()
        .then(|| (0..1_000_000).find_map(|_| crate::shared::try_lock(&LOCK)))
        .flatten();
    let _ = writeln!(Writer(*console), "{args}");
    drop(guard);
}

/// Prints a formatted line to the kernel console.
#[macro_export]
macro_rules! println {
    ($($arg:tt)*) => {
        $crate::console::print_line(format_args!($($arg)*))
    };
}

/// Prints one line of the boot report.
macro_rules! report {
    ($($arg:tt)*) => {
        $crate::println!("{}{}", hv_abi::console::REPORT_PREFIX, format_args!($($arg)*))
    };
}
pub(crate) use report;
